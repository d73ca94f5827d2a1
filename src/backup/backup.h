// Metadata snapshots as files: `cairn meta dump --out FILE` and the rotating backups of
// `cairn serve --backup-meta INTERVAL` and `cairn mount --backup-meta INTERVAL`. The format is
// meta/snapshot.h; this layer only adds durable, atomic files and rotation.
//
// A snapshot file holds S3 secrets and API key hashes: it is created mode 0600.
// Thread-safety: the functions may run concurrently with the server (the snapshot is one
// read transaction); BackupLoop's methods are called from one thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/status.h"
#include "meta/meta_store.h"
#include "platform/clock.h"
#include "platform/file_system.h"

namespace cairn::backup {

// "90" (seconds), "90s", "15m", "1h", "1h30m" -> milliseconds. "0" is 0 (off).
// kInvalidArgument for anything else.
Result<int64_t> ParseDurationMs(std::string_view text);

struct SnapshotFile {
  bool skipped = false;  // RunBackup found a snapshot younger than min_age_ms; path is empty
  std::string path;
  meta::SnapshotCounts counts;
  uint64_t size_bytes = 0;
};

// Writes a snapshot of `store` to `path` atomically: into a locked temp file next to it,
// fsync, rename over `path`, fsync the directory. On failure the temp file is removed and
// `path` is left as it was.
Result<SnapshotFile> WriteSnapshotFile(meta::MetaStore* store, platform::FileSystem* file_system,
                                       const std::string& path, const std::string& engine,
                                       TimestampMs now_ms);

struct BackupOptions {
  std::string directory;  // created if missing
  int keep = 24;          // newest snapshots kept (at least 1)
  std::string engine;     // recorded in the header
  // When > 0, RunBackup writes nothing if the newest snapshot in the directory is younger
  // than this: processes that share a directory (the mounts of one volume) then take
  // turns instead of each writing its own.
  int64_t min_age_ms = 0;
};

// Writes <directory>/meta-<UTC time>.jsonl, then removes the oldest snapshots beyond
// `keep` and temp files abandoned by a crashed writer (unlocked ones). With min_age_ms,
// may skip instead (SnapshotFile::skipped).
Result<SnapshotFile> RunBackup(meta::MetaStore* store, platform::FileSystem* file_system,
                               platform::Clock* clock, const BackupOptions& options);

// Paths of the snapshots in `directory` written by RunBackup, oldest first.
Result<std::vector<std::string>> ListBackups(platform::FileSystem* file_system,
                                             const std::string& directory);

// Calls RunBackup every `interval_ms` on its own thread until stopped, and reports each
// outcome to `on_done` (the caller logs and counts; a failure never stops the loop).
class BackupLoop {
 public:
  using Callback = std::function<void(const Result<SnapshotFile>&)>;
  BackupLoop(meta::MetaStore* store, platform::FileSystem* file_system, platform::Clock* clock,
             BackupOptions options, int64_t interval_ms, Callback on_done);
  ~BackupLoop() { Stop(); }

  void Start();
  // Waits for a backup in progress to finish.
  void Stop();

 private:
  void Loop();

  meta::MetaStore* store_;
  platform::FileSystem* file_system_;
  platform::Clock* clock_;
  const BackupOptions options_;
  const int64_t interval_ms_;
  Callback on_done_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // GUARDED_BY(mutex_)
};

}  // namespace cairn::backup
