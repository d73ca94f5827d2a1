#include "platform/fault_injection.h"

namespace cairn::platform {
namespace {

class FaultyWritableFile : public WritableFile {
 public:
  FaultyWritableFile(FaultInjectingFileSystem* owner, std::unique_ptr<WritableFile> base)
      : owner_(owner), base_(std::move(base)) {}
  Status Append(std::string_view bytes) override {
    RETURN_IF_ERROR(owner_->Check(FaultPoint::kAppend));
    return base_->Append(bytes);
  }
  void PreferDirectIo() override { base_->PreferDirectIo(); }
  Status Sync() override {
    RETURN_IF_ERROR(owner_->Check(FaultPoint::kSync));
    return base_->Sync();
  }
  Status Close() override { return base_->Close(); }
  const std::string& path() const override { return base_->path(); }

 private:
  FaultInjectingFileSystem* owner_;
  std::unique_ptr<WritableFile> base_;
};

class FaultyReadableFile : public ReadableFile {
 public:
  FaultyReadableFile(FaultInjectingFileSystem* owner, std::unique_ptr<ReadableFile> base)
      : owner_(owner), base_(std::move(base)) {}
  Result<size_t> ReadAt(uint64_t offset, size_t length, char* buffer) override {
    RETURN_IF_ERROR(owner_->Check(FaultPoint::kRead));
    return base_->ReadAt(offset, length, buffer);
  }
  Result<uint64_t> Size() override { return base_->Size(); }

 private:
  FaultInjectingFileSystem* owner_;
  std::unique_ptr<ReadableFile> base_;
};

}  // namespace

void FaultInjectingFileSystem::FailAfter(FaultPoint point, uint64_t skip, Status status) {
  std::lock_guard<std::mutex> lock(mutex_);
  armed_ = true;
  point_ = point;
  remaining_skips_ = skip;
  status_ = std::move(status);
}

void FaultInjectingFileSystem::Clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  armed_ = false;
}

Status FaultInjectingFileSystem::Check(FaultPoint point) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!armed_ || point != point_) return OkStatus();
  if (remaining_skips_ > 0) {
    --remaining_skips_;
    return OkStatus();
  }
  ++injected_failures_;
  return status_;
}

Result<std::unique_ptr<WritableFile>> FaultInjectingFileSystem::NewWritableFile(
    const std::string& path) {
  RETURN_IF_ERROR(Check(FaultPoint::kCreate));
  ASSIGN_OR_RETURN(auto file, base_->NewWritableFile(path));
  return std::unique_ptr<WritableFile>(new FaultyWritableFile(this, std::move(file)));
}

Result<std::unique_ptr<ReadableFile>> FaultInjectingFileSystem::OpenReadable(
    const std::string& path) {
  ASSIGN_OR_RETURN(auto file, base_->OpenReadable(path));
  return std::unique_ptr<ReadableFile>(new FaultyReadableFile(this, std::move(file)));
}

Status FaultInjectingFileSystem::Rename(const std::string& from, const std::string& to) {
  RETURN_IF_ERROR(Check(FaultPoint::kRename));
  return base_->Rename(from, to);
}

Status FaultInjectingFileSystem::RenameNoReplace(const std::string& from, const std::string& to) {
  RETURN_IF_ERROR(Check(FaultPoint::kRename));
  return base_->RenameNoReplace(from, to);
}

Status FaultInjectingFileSystem::SyncDirectory(const std::string& path) {
  RETURN_IF_ERROR(Check(FaultPoint::kSyncDirectory));
  return base_->SyncDirectory(path);
}

Status FaultInjectingFileSystem::SyncFile(const std::string& path) {
  RETURN_IF_ERROR(Check(FaultPoint::kSync));
  return base_->SyncFile(path);
}

Status FaultInjectingFileSystem::SyncFileSystem(const std::string& path) {
  RETURN_IF_ERROR(Check(FaultPoint::kSync));
  return base_->SyncFileSystem(path);
}

Status FaultInjectingFileSystem::CheckWritable(const std::string& directory) {
  RETURN_IF_ERROR(Check(FaultPoint::kCreate));
  return base_->CheckWritable(directory);
}

}  // namespace cairn::platform
