// Feeds a request body into an objects::Upload on the blocking pool in a pipeline:
//
//   event loop:  receive piece k+1
//   pool:        SHA-256 of piece k (Upload::Write)  -- one job at a time, in order
//   pool:        MD5 of piece k, when one is wanted  -- one job at a time, in order
//   pool:        store the chunks sealed so far    -- one job at a time, in order
//
// so receiving, hashing and storing (file write, fsync) overlap on different cores
// instead of taking turns. Memory per upload: the caller's two pieces, plus the chunk
// being gathered, plus the sealed chunks being stored (at most one piece's bytes plus one
// chunk), and one spare chunk buffer: about 2 pieces + 3 chunks (14 MiB) whatever the object
// size.
//
// Used from one coroutine (on its connection's event loop); each call waits for what it must.
#pragma once

#include <memory>

#include "http/blocking_pool.h"
#include "http/exchange.h"
#include "objects/object_service.h"

namespace cairn::api {

// Upload bodies are read in pieces of up to 1 MiB: fewer wake-ups and pool hand-offs per
// byte than the usual transfer buffer. A smaller declared body gets a piece of its size.
inline constexpr size_t kMaxUploadPieceBytes = 1024 * 1024;
size_t UploadPieceBytes(const http::RequestHead& request);
// The most memory an upload of this request can buffer (see the class comment): what it
// reserves from UploadMemory. `decoded_copy` for bodies decoded into second pieces
// (aws-chunked).
// The error for a body over the object size limit (413; S3 EntityTooLarge).
Status ObjectTooLarge(uint64_t bytes, uint64_t limit);
uint64_t UploadBufferBytes(const http::RequestHead& request, uint64_t chunk_size,
                           bool decoded_copy);

class UploadPipeline {
 public:
  UploadPipeline(http::BlockingPool* pool, std::shared_ptr<objects::Upload> upload,
                 boost::asio::any_io_executor executor);

  // Hands `bytes` (kept alive by `owner`) to the upload and returns once the previous
  // piece is hashed, MD5 included (so the caller may refill that one). An error means the upload is
  // aborted.
  http::Awaitable<Status> Write(std::shared_ptr<const void> owner, std::string_view bytes);
  // Waits for everything in flight, then verifies and commits.
  http::Awaitable<Result<meta::CommitResult>> Commit();
  // Waits for everything in flight, then aborts.
  http::Awaitable<void> Abort();

 private:
  // Waits for the jobs in flight; the first error, if any.
  http::Awaitable<Status> Drain();

  http::BlockingPool* pool_;
  std::shared_ptr<objects::Upload> upload_;
  boost::asio::any_io_executor executor_;
  std::shared_ptr<http::BlockingPool::Job<Status>> writing_;
  std::shared_ptr<http::BlockingPool::Job<Status>> storing_;
  // The S3 ETag's MD5 runs beside the SHA-256 pass, in its own job: on one core the two
  // together were the slowest stage of an S3 upload. (The content and chunk SHA-256 stay in
  // one pass: split into two jobs they were slower on a busy machine.)
  std::shared_ptr<Md5Hasher> md5_;
  std::shared_ptr<http::BlockingPool::Job<Status>> md5ing_;
};

}  // namespace cairn::api
