// Garbage collection and consistency checking over the metadata store and the chunk store.
//
// GC never unlinks a chunk file the metadata does not account for: an orphan is moved to
// its root's quarantine directory and deleted from there after the grace period, and
// only when the process checked the store identity (see gc/store_identity.h). fsck
// --repair quarantines too and never drops an object.
//
// GC grace: a chunk whose reference count drops to zero stays on disk for `grace_ms`
// before it may be removed, so a read that resolved an object just before its delete
// finishes. Uploads never rely on the grace: they take a reference before trusting an
// existing chunk (see objects/object_service.h), and temp files being written are locked.
//
// Thread-safety: RunGc and RunFsck may run concurrently with the server, in the same or
// another process (the metadata transaction serializes chunk removal against uploads).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "chunks/chunk_store.h"
#include "meta/meta_store.h"
#include "platform/clock.h"

namespace cairn::gc {

// Where a running pass is, for a caller that shows it (the console's job list): the phase
// and how far into it. `total` is 0 when not known in advance. Called on the pass's thread
// at each phase and every few hundred items within one; it must be cheap and not throw.
struct Progress {
  const char* phase = "";
  uint64_t done = 0;
  uint64_t total = 0;
};
using ProgressFn = std::function<void(const Progress&)>;

struct GcStats {
  uint64_t reaped_uploads = 0;
  uint64_t purged_objects = 0;
  uint64_t deleted_chunks = 0;
  uint64_t deleted_chunk_bytes = 0;
  uint64_t deleted_temp_files = 0;
  uint64_t quarantined_orphan_files = 0;   // moved to <root>/quarantine, not deleted
  uint64_t deleted_quarantined_files = 0;  // quarantined longer than the grace period
  std::vector<std::string> quarantined;    // where each orphan went, for the log
  // Set when the pass stopped at the deletion cap (GcOptions::max_delete_fraction): what
  // it left undone and how to proceed.
  std::string capped;
  // Orphans left alone because there were more than the cap allows (operator attention).
  uint64_t orphans_left_by_cap = 0;
  // Why folding the usage counters' change rows failed, if it did. The pass goes on: the
  // sums stay right unfolded, and the next pass folds them.
  std::string usage_fold_error;
};

struct GcOptions {
  int64_t grace_ms = 3600 * 1000;
  // A WRITING upload is reaped only when untouched for max(grace_ms, this). An upload
  // touches its row with every chunk, and the server times out a stalled body long
  // before this, so a live upload is never reaped, even with a grace of zero.
  int64_t stalled_upload_ms = 15 * 60 * 1000;
  uint32_t batch_size = 256;
  // Orphan chunk files (no metadata row) are swept only when set: it lists every file.
  bool sweep_orphans = true;
  // Orphans are swept only when the caller checked that the metadata store and the
  // storage roots belong to one store (gc/store_identity.h; server::OpenStores does).
  // Without that check an empty or foreign metadata store makes every file an orphan.
  bool store_identity_verified = false;
  // No pass removes or quarantines more chunk files than this fraction of the store (the
  // larger of its chunk rows and chunk files; at least one file) unless allow_mass_delete.
  // Unreferenced chunks beyond the cap wait for the next pass; orphans beyond it are all
  // left alone (that many orphans means the metadata is wrong, not that they are garbage).
  double max_delete_fraction = 0.1;
  bool allow_mass_delete = false;
  ProgressFn on_progress = nullptr;  // unset: nothing reported
};

Result<GcStats> RunGc(meta::MetaStore* meta_store, chunks::ChunkStore* chunk_store,
                      platform::Clock* clock, const GcOptions& options);

struct FsckOptions {
  bool repair = false;
  bool verify_content = true;  // re-hash every chunk
  int64_t grace_ms = 3600 * 1000;
  // --repair quarantines orphaned chunk files only when set (see GcOptions).
  bool store_identity_verified = false;
  // The cap on orphans quarantined by one --repair, as for GC.
  double max_delete_fraction = 0.1;
  bool allow_mass_delete = false;
  ProgressFn on_progress = nullptr;  // unset: nothing reported
};

struct FsckReport {
  // The metadata engine's own check (SQLite integrity_check, schema version, PostgreSQL
  // reachability). When not empty nothing else is checked or repaired: every other
  // finding would be read from a damaged database.
  std::vector<std::string> metadata_problems;
  std::vector<std::string> missing_chunks;    // "hot/<hex>": referenced, no file
  std::vector<std::string> corrupt_chunks;    // "hot/<hex>": bytes do not hash to name
  std::vector<std::string> orphaned_chunks;   // "hot/<hex>": file without a row
  std::vector<std::string> wrong_ref_counts;  // "hot/<hex>: recorded N, actual M"
  // Kept usage counters (objects, bytes per tenant, namespace and class) that disagree
  // with a recount of the object rows; --repair rewrites them.
  std::vector<std::string> wrong_usage_counters;
  std::vector<std::string> stale_temp_files;  // temp files older than the grace period
  std::vector<std::string> stray_files;       // files in chunks/ that are not chunks
  // "<object id>: <label> missing|corrupt": COMMITTED objects that cannot be read whole.
  // They stay recorded (a later upload of the same content heals them).
  std::vector<std::string> affected_objects;
  // "<kind>:<id>: <label> missing|corrupt": generic chunk owners (files of a filesystem
  // front end, ...) whose chunk list names such a chunk. Their references stay too.
  std::vector<std::string> affected_owners;
  std::vector<std::string> repairs;  // what --repair did (or refused to do)
  uint64_t chunks_checked = 0;
  uint64_t objects_checked = 0;
  bool ok() const;
};

Result<FsckReport> RunFsck(meta::MetaStore* meta_store, chunks::ChunkStore* chunk_store,
                           platform::Clock* clock, const FsckOptions& options);

}  // namespace cairn::gc
