// Garbage collection and consistency checking over the metadata store and the chunk store.
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
#include <string>
#include <vector>

#include "chunks/chunk_store.h"
#include "meta/meta_store.h"
#include "platform/clock.h"

namespace cairn::gc {

struct GcStats {
  uint64_t reaped_uploads = 0;
  uint64_t purged_objects = 0;
  uint64_t deleted_chunks = 0;
  uint64_t deleted_chunk_bytes = 0;
  uint64_t deleted_temp_files = 0;
  uint64_t deleted_orphan_files = 0;
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
};

Result<GcStats> RunGc(meta::MetaStore* meta_store, chunks::ChunkStore* chunk_store,
                      platform::Clock* clock, const GcOptions& options);

struct FsckOptions {
  bool repair = false;
  bool verify_content = true;  // re-hash every chunk
  int64_t grace_ms = 3600 * 1000;
};

struct FsckReport {
  std::vector<std::string> missing_chunks;    // "hot/<hex>": referenced, no file
  std::vector<std::string> corrupt_chunks;    // "hot/<hex>": bytes do not hash to name
  std::vector<std::string> orphaned_chunks;   // "hot/<hex>": file without a row
  std::vector<std::string> wrong_ref_counts;  // "hot/<hex>: recorded N, actual M"
  std::vector<std::string> stale_temp_files;  // temp files older than the grace period
  std::vector<std::string> stray_files;       // files in chunks/ that are not chunks
  std::vector<std::string> repairs;           // what --repair did
  uint64_t chunks_checked = 0;
  uint64_t objects_checked = 0;
  bool ok() const;
};

Result<FsckReport> RunFsck(meta::MetaStore* meta_store, chunks::ChunkStore* chunk_store,
                           platform::Clock* clock, const FsckOptions& options);

}  // namespace cairn::gc
