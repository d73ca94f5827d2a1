#include "ingest/chunk_health.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>

namespace cairn::ingest {

void ChunkHealth::ReportDamaged(StorageClass storage_class, const Digest& digest,
                                const std::string& owner, const std::string& why,
                                uint64_t IntegrityCounters::*counter, bool quarantine,
                                int checked_fd) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    counters_.*counter += 1;
  }
  const TimestampMs now = clock_->NowMs();
  const std::string label = std::string(StorageClassName(storage_class)) + "/" + digest.ToHex();
  std::string action = "left in place";
  if (quarantine) {
    // Only the file that was checked: an upload may have installed a fresh copy meanwhile.
    bool same_file = true;
    if (checked_fd >= 0) {
      struct stat checked, current;
      same_file = ::fstat(checked_fd, &checked) == 0 &&
                  ::stat(chunk_store_->PathOf(storage_class, digest).c_str(), &current) == 0 &&
                  checked.st_ino == current.st_ino && checked.st_dev == current.st_dev;
    }
    if (same_file) {
      auto moved = chunk_store_->Quarantine(storage_class, digest, now);
      action = moved.ok() ? "moved to " + *moved
                          : "could not be quarantined: " + moved.status().message();
    } else {
      action = "already replaced by a fresh copy";
    }
  }
  Status marked =
      meta_store_->SetChunkDamaged(storage_class, digest, std::max<TimestampMs>(1, now));
  fprintf(stderr, "cairn: integrity: chunk %s (%s): %s; file %s; %s\n", label.c_str(),
          owner.c_str(), why.c_str(), action.c_str(),
          marked.ok() ? "marked damaged" : ("not marked: " + marked.message()).c_str());
}

void ChunkHealth::Healed(StorageClass storage_class, const Digest& digest) {
  meta_store_->SetChunkDamaged(storage_class, digest, 0).IgnoreError();
  std::lock_guard<std::mutex> lock(mutex_);
  counters_.healed += 1;
}

IntegrityCounters ChunkHealth::counters() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return counters_;
}

}  // namespace cairn::ingest
