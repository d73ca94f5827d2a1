// A file that holds disk space in reserve, so the operations that free space (deletes,
// GC) can still commit on a full disk.
//
// On a full file system a database cannot even record a delete: its log needs a few free
// blocks. The reserve is a preallocated file next to the database; when a space-freeing
// write fails for lack of space, the store releases the reserve (truncates the file) and
// tries again. While released, writes that consume space are refused at once, so the
// freed blocks go to deletes; the store takes the reserve back as soon as it can.
//
// Thread-safe. Several processes may share one reserve file (a server and `cairn gc`):
// whether it is held is read from the file's allocated size, not from memory.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

namespace cairn::platform {

class SpaceReserve {
 public:
  // `bytes` = 0 picks a size from the file system: 1% of it, between 1 and 64 MiB.
  SpaceReserve(std::string path, uint64_t bytes = 0);
  SpaceReserve(const SpaceReserve&) = delete;
  SpaceReserve& operator=(const SpaceReserve&) = delete;

  // Allocates the reserve (created 0600 if absent). Returns whether it is held now; false
  // when the file system has no room for it (or cannot preallocate).
  bool TryHold();
  // TryHold at most once per `interval_ms` (cheap enough for every write).
  bool HeldOrRetry(int64_t interval_ms = 1000);
  // Frees the reserved blocks. Returns whether there was anything to free.
  bool Release();
  bool held() const;
  uint64_t bytes() const { return bytes_; }
  const std::string& path() const { return path_; }

 private:
  const std::string path_;
  uint64_t bytes_;
  mutable std::mutex mu_;
  int64_t last_attempt_ms_ = 0;  // GUARDED_BY(mu_)
};

}  // namespace cairn::platform
