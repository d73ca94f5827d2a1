// A FileSystem that forwards to another one and fails chosen operations on demand, so
// tests can show what a full disk, an I/O error or a failed fsync does to each use case.
//
// Thread-safe: faults may be armed from the test thread while others use the file system.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "platform/file_system.h"

namespace cairn::platform {

enum class FaultPoint {
  kAppend,         // WritableFile::Append
  kSync,           // WritableFile::Sync
  kRename,         // FileSystem::Rename
  kSyncDirectory,  // FileSystem::SyncDirectory
  kCreate,         // FileSystem::NewWritableFile
  kRead,           // ReadableFile::ReadAt
};

class FaultInjectingFileSystem : public FileSystem {
 public:
  explicit FaultInjectingFileSystem(FileSystem* base) : base_(base) {}

  // From now on, the `skip`+1-th and every later call at `point` fails with `status`
  // (ENOSPC is kResourceExhausted, EIO is kInternal) until Clear().
  void FailAfter(FaultPoint point, uint64_t skip, Status status);
  void Clear();
  // Calls that failed because of an armed fault.
  uint64_t injected_failures() const { return injected_failures_.load(); }

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  Result<std::unique_ptr<ReadableFile>> OpenReadable(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status RenameNoReplace(const std::string& from, const std::string& to) override;
  Status SyncDirectory(const std::string& path) override;
  Status CreateDirectories(const std::string& path) override {
    return base_->CreateDirectories(path);
  }
  Status SyncFile(const std::string& path) override;
  Status SyncFileSystem(const std::string& path) override;
  Status RemoveFile(const std::string& path) override { return base_->RemoveFile(path); }
  Status RemoveFileIfUnlocked(const std::string& path) override {
    return base_->RemoveFileIfUnlocked(path);
  }
  Result<bool> Exists(const std::string& path) override { return base_->Exists(path); }
  Result<std::vector<DirEntry>> ListDirectory(const std::string& path) override {
    return base_->ListDirectory(path);
  }
  Result<TimestampMs> ModifiedTime(const std::string& path) override {
    return base_->ModifiedTime(path);
  }
  Result<uint64_t> FileSize(const std::string& path) override { return base_->FileSize(path); }
  Status CheckWritable(const std::string& directory) override;
  Status MakePrivate(const std::string& path) override { return base_->MakePrivate(path); }

  // Returns the armed failure for one call at `point`, or OK.
  Status Check(FaultPoint point);

 private:
  FileSystem* base_;
  std::mutex mutex_;
  bool armed_ = false;                      // GUARDED_BY(mutex_)
  FaultPoint point_ = FaultPoint::kAppend;  // GUARDED_BY(mutex_)
  uint64_t remaining_skips_ = 0;            // GUARDED_BY(mutex_)
  Status status_;                           // GUARDED_BY(mutex_)
  std::atomic<uint64_t> injected_failures_{0};
};

}  // namespace cairn::platform
