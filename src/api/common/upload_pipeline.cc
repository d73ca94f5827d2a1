#include "api/common/upload_pipeline.h"

#include <algorithm>

#include "api/common/commit.h"

namespace cairn::api {

// GCC 12 coroutine rules apply here (see native_api.cc): lambdas handed to the pool are
// named locals, nothing is built inside a co_await expression.

size_t UploadPieceBytes(const http::RequestHead& request) {
  if (request.chunked || !request.content_length) return kMaxUploadPieceBytes;
  return static_cast<size_t>(
      std::clamp<uint64_t>(*request.content_length, 1, kMaxUploadPieceBytes));
}

UploadPipeline::UploadPipeline(http::BlockingPool* pool, std::shared_ptr<objects::Upload> upload,
                               boost::asio::any_io_executor executor)
    : pool_(pool), upload_(std::move(upload)), executor_(std::move(executor)) {
  upload_->DeferChunkStorage();
}

http::Awaitable<Status> UploadPipeline::Write(std::shared_ptr<const void> owner,
                                              std::string_view bytes) {
  // Bytes of a small object are only buffered (inline candidates): no pool trip for them.
  if (!writing_ && !storing_ && upload_->WriteStaysInMemory(bytes.size())) {
    co_return upload_->Write(bytes);
  }
  if (writing_) {
    Status written = co_await http::BlockingPool::Wait(writing_);
    writing_.reset();
    if (!written.ok()) {
      (void)co_await Drain();
      co_return written;  // Write aborted the upload
    }
  }
  // No Write runs now, so the sealed chunks can be taken.
  auto sealed = std::make_shared<std::vector<objects::SealedChunk>>(upload_->TakeSealedChunks());
  if (!sealed->empty()) {
    if (storing_) {
      Status stored = co_await http::BlockingPool::Wait(storing_);
      storing_.reset();
      if (!stored.ok()) {
        co_await Abort();
        co_return stored;
      }
    }
    std::shared_ptr<objects::Upload> upload = upload_;
    auto store_work = [upload, sealed]() { return upload->StoreChunks(std::move(*sealed)); };
    storing_ = pool_->Start(executor_, std::move(store_work));
  }
  std::shared_ptr<objects::Upload> upload = upload_;
  auto write_work = [upload, owner, bytes]() { return upload->Write(bytes); };
  writing_ = pool_->Start(executor_, std::move(write_work));
  co_return OkStatus();
}

http::Awaitable<Status> UploadPipeline::Drain() {
  Status first;
  if (writing_) {
    first = co_await http::BlockingPool::Wait(writing_);
    writing_.reset();
  }
  if (storing_) {
    Status stored = co_await http::BlockingPool::Wait(storing_);
    storing_.reset();
    if (first.ok()) first = stored;
  }
  co_return first;
}

http::Awaitable<Result<meta::CommitResult>> UploadPipeline::Commit() {
  Status drained = co_await Drain();
  if (!drained.ok()) {
    co_await Abort();
    co_return drained;
  }
  // A small object commits without parking a pool thread (see api/common/commit.h).
  co_return co_await CommitUpload(pool_, upload_);
}

http::Awaitable<void> UploadPipeline::Abort() {
  (void)co_await Drain();
  std::shared_ptr<objects::Upload> upload = upload_;
  auto abort_work = [upload]() -> int {
    upload->Abort();
    return 0;
  };
  (void)co_await pool_->Run(std::move(abort_work));
}

}  // namespace cairn::api
