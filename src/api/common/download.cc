#include "api/common/download.h"

#include <algorithm>
#include <string>
#include <string_view>

#include "api/common/range.h"

// GCC 12 coroutine rules (see native_api.cc): work for the pool is a named lambda, and no
// temporary that owns memory appears inside a co_await expression.

namespace cairn::api {
namespace {

// One buffer per transfer bounds memory per connection whatever the object size.
constexpr size_t kTransferBufferBytes = 256 * 1024;

}  // namespace

Result<BodySelection> SelectBody(const http::RequestHead& request, uint64_t size_bytes,
                                 http::HeaderList* headers) {
  BodySelection selection;
  selection.length = size_bytes;
  const std::string* range_header = request.Header("range");
  if (range_header == nullptr) return selection;
  ASSIGN_OR_RETURN(std::optional<ByteRange> range, ParseRange(*range_header, size_bytes));
  if (!range) return selection;
  selection.status = 206;
  selection.first = range->first;
  selection.length = range->length();
  headers->emplace_back("Content-Range", "bytes " + std::to_string(range->first) + "-" +
                                             std::to_string(range->last) + "/" +
                                             std::to_string(size_bytes));
  return selection;
}

http::Awaitable<Status> SendObject(http::Exchange& exchange, http::BlockingPool* pool,
                                   std::shared_ptr<objects::ObjectReader> reader,
                                   http::ResponseHead head, BodySelection selection,
                                   bool head_only) {
  head.status = selection.status;
  const meta::ObjectRecord& object = reader->object();
  if (object.inline_data && !head_only) {
    // Already in memory: head and body leave in one write, with no trip to the pool.
    const std::string& data = *object.inline_data;
    if (selection.first > data.size() || data.size() - selection.first < selection.length) {
      co_return DataLossError("object " + object.id.ToString() +
                              " has fewer inline bytes than its size");
    }
    // Borrowed from the record, which `reader` keeps alive until the write is done.
    const std::string_view body = std::string_view(data).substr(
        static_cast<size_t>(selection.first), static_cast<size_t>(selection.length));
    (void)co_await exchange.RespondBorrowed(std::move(head), body);
    co_return OkStatus();
  }
  // What can be known before the status line is checked before it, in the same pool job
  // that reads the first piece: every chunk of the range is there with its size, and the
  // first piece verifies. The client then gets an error status instead of a 200 and a cut
  // connection.
  std::shared_ptr<char[]> buffer;
  size_t first_piece = 0;
  uint64_t offset = selection.first;
  const uint64_t end = selection.first + selection.length;
  if (!object.inline_data && selection.length > 0) {
    if (!head_only) buffer.reset(new char[kTransferBufferBytes]);
    const uint64_t first = selection.first, length = selection.length;
    auto prepare_work = [reader, buffer, first, length, head_only]() -> Result<size_t> {
      RETURN_IF_ERROR(reader->Prepare(first, length, /*read_ahead=*/false));
      if (head_only) return size_t{0};
      const size_t want = static_cast<size_t>(std::min<uint64_t>(kTransferBufferBytes, length));
      ASSIGN_OR_RETURN(size_t got, reader->Read(first, want, buffer.get()));
      if (got == 0) return DataLossError("the object ends before its recorded size");
      return got;
    };
    Result<size_t> prepared = co_await pool->Run(std::move(prepare_work));
    if (!prepared.ok()) co_return prepared.status();
    first_piece = *prepared;
  }
  Status began = co_await exchange.BeginBody(std::move(head), selection.length, head_only);
  if (!began.ok() || head_only) co_return OkStatus();
  if (first_piece > 0) {
    std::string_view piece(buffer.get(), first_piece);
    Status written = co_await exchange.WriteBody(piece);
    if (!written.ok()) co_return OkStatus();
    offset += first_piece;
  }
  while (offset < end) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kTransferBufferBytes, end - offset));
    auto read_work = [reader, buffer, offset, want]() {
      return reader->Read(offset, want, buffer.get());
    };
    Result<size_t> got = co_await pool->Run(std::move(read_work));
    // A failure after the head cannot change the status: the body stops short of its
    // Content-Length and the connection is closed, which every client reports as an error.
    if (!got.ok() || *got == 0) co_return OkStatus();
    std::string_view piece(buffer.get(), *got);
    Status written = co_await exchange.WriteBody(piece);
    if (!written.ok()) co_return OkStatus();
    offset += *got;
  }
  co_return OkStatus();
}

}  // namespace cairn::api
