// ChunkHealth: what happens when a check finds a chunk's file damaged (corrupt, short,
// missing, unreadable), whoever found it: a read, an upload that brought the same bytes, the
// scrubber. One place moves the file to quarantine, marks the chunk row damaged (so every
// owner of the chunk answers an error before it sends a byte), logs one line and counts.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "chunks/chunk_store.h"
#include "core/types.h"
#include "meta/meta_store.h"
#include "platform/clock.h"

namespace cairn::ingest {

// Counts of chunk checks that failed, by reason (for metrics).
struct IntegrityCounters {
  uint64_t checksum_mismatch = 0;  // a block or the whole chunk did not match
  uint64_t missing = 0;            // no file
  uint64_t short_file = 0;         // the file is shorter (or longer) than recorded
  uint64_t unreadable = 0;         // an I/O error
  uint64_t healed = 0;             // uploads that replaced a bad copy with a verified one
};

class ChunkHealth {
 public:
  ChunkHealth(meta::MetaStore* meta_store, chunks::ChunkStore* chunk_store, platform::Clock* clock)
      : meta_store_(meta_store), chunk_store_(chunk_store), clock_(clock) {}

  // A chunk failed a check (`why`, for the log; `owner` names who holds it, for the log;
  // `counter` names the reason; `owner` is e.g. "object <id>"): moves its file to the quarantine
  // directory (if `quarantine` and the file is still the one checked, `checked_fd` when known),
  // marks its row damaged, logs and counts. It never fails (what it cannot do is logged).
  void ReportDamaged(StorageClass storage_class, const Digest& digest, const std::string& owner,
                     const std::string& why, uint64_t IntegrityCounters::*counter, bool quarantine,
                     int checked_fd = -1);
  // A verified copy replaced a damaged one: clears the damage mark and counts the heal.
  // Readers of a damaged-marked chunk verify it in full before they trust it, so the mark
  // may be cleared as soon as the fresh copy is in place.
  void Healed(StorageClass storage_class, const Digest& digest);

  IntegrityCounters counters() const;

 private:
  meta::MetaStore* meta_store_;
  chunks::ChunkStore* chunk_store_;
  platform::Clock* clock_;
  mutable std::mutex mutex_;
  IntegrityCounters counters_;  // GUARDED_BY(mutex_)
};

}  // namespace cairn::ingest
