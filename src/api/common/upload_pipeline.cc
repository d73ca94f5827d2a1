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

Status ObjectTooLarge(uint64_t bytes, uint64_t limit) {
  return PayloadTooLargeError("the object would be at least " + std::to_string(bytes) +
                              " bytes; the largest allowed is " + std::to_string(limit) + " bytes");
}

uint64_t UploadBufferBytes(const http::RequestHead& request, uint64_t chunk_size,
                           bool decoded_copy) {
  const uint64_t piece = UploadPieceBytes(request);
  const uint64_t pieces = (decoded_copy ? 4 : 2) * piece;
  const uint64_t chunks = 3 * chunk_size;
  if (request.chunked || !request.content_length) return pieces + chunks;
  return pieces + std::min<uint64_t>(*request.content_length, chunks);
}

UploadPipeline::UploadPipeline(http::BlockingPool* pool, std::shared_ptr<objects::Upload> upload,
                               boost::asio::any_io_executor executor)
    : pool_(pool), upload_(std::move(upload)), executor_(std::move(executor)) {
  upload_->DeferChunkStorage();
  md5_ = upload_->TakeMd5();
}

namespace {

// Starts `hasher`'s Update over `bytes` on the pool, in order after its previous job (the
// caller has waited for that one).
template <typename Hasher>
std::shared_ptr<http::BlockingPool::Job<Status>> StartHashing(
    http::BlockingPool* pool, const boost::asio::any_io_executor& executor,
    std::shared_ptr<Hasher> hasher, std::shared_ptr<const void> owner, std::string_view bytes) {
  auto work = [hasher = std::move(hasher), owner = std::move(owner), bytes]() {
    hasher->Update(bytes);
    return OkStatus();
  };
  return pool->Start(executor, std::move(work));
}

}  // namespace

http::Awaitable<Status> UploadPipeline::Write(std::shared_ptr<const void> owner,
                                              std::string_view bytes) {
  // Bytes of a small object are only buffered (inline candidates): no pool trip for them.
  if (!writing_ && !storing_ && !md5ing_ && upload_->WriteStaysInMemory(bytes.size())) {
    if (md5_) md5_->Update(bytes);
    co_return upload_->Write(bytes);
  }
  if (md5ing_) {  // hashing cannot fail: this only waits until the previous piece is free
    (void)co_await http::BlockingPool::Wait(md5ing_);
    md5ing_.reset();
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
  if (md5_) md5ing_ = StartHashing(pool_, executor_, md5_, owner, bytes);
  std::shared_ptr<objects::Upload> upload = upload_;
  auto write_work = [upload, owner, bytes]() { return upload->Write(bytes); };
  writing_ = pool_->Start(executor_, std::move(write_work));
  co_return OkStatus();
}

http::Awaitable<Status> UploadPipeline::Drain() {
  Status first;
  if (md5ing_) {
    (void)co_await http::BlockingPool::Wait(md5ing_);
    md5ing_.reset();
  }
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
  if (md5_) upload_->SetMd5(md5_->Finish());
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
