#include <utility>  // Boost 1.74's awaitable.hpp needs it first.

#include "fake_exchange.h"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <cctype>
#include <cstring>

namespace cairn::testing {
namespace {

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

FakeExchange::FakeExchange(http::RequestHead head, std::vector<std::string> pieces)
    : head_(std::move(head)), pieces_(std::move(pieces)) {
  if (!head_.content_length.has_value() && !head_.chunked) {
    uint64_t total = 0;
    for (const std::string& piece : pieces_) total += piece.size();
    head_.content_length = total;
  }
}

void FakeExchange::FailReadAfter(size_t pieces, Status error) {
  fail_read_after_ = pieces;
  read_error_ = std::move(error);
}

void FakeExchange::FailWriteAfter(uint64_t bytes, Status error) {
  fail_write_after_ = bytes;
  write_error_ = std::move(error);
}

http::Awaitable<Result<size_t>> FakeExchange::ReadBody(char* buffer, size_t size) {
  if (fail_read_after_.has_value() && piece_ >= *fail_read_after_) co_return read_error_;
  if (piece_ >= pieces_.size() || size == 0) co_return size_t{0};
  const std::string& piece = pieces_[piece_];
  const size_t n = std::min(size, piece.size() - piece_offset_);
  std::memcpy(buffer, piece.data() + piece_offset_, n);
  piece_offset_ += n;
  if (piece_offset_ == piece.size()) {
    ++piece_;
    piece_offset_ = 0;
  }
  read_bytes_ += n;
  co_return n;
}

void FakeExchange::RecordHead(http::ResponseHead head) {
  ++heads_sent;
  status = head.status;
  headers = std::move(head.headers);
}

http::Awaitable<Status> FakeExchange::Respond(http::ResponseHead head, std::string body_text) {
  RecordHead(std::move(head));
  used_respond = true;
  body = std::move(body_text);
  co_return OkStatus();
}

http::Awaitable<Status> FakeExchange::RespondBorrowed(http::ResponseHead head,
                                                      std::string_view body_text) {
  RecordHead(std::move(head));
  used_respond = true;
  body.assign(body_text.data(), body_text.size());
  co_return OkStatus();
}

http::Awaitable<Status> FakeExchange::BeginBody(http::ResponseHead head, uint64_t content_length,
                                                bool is_head_only) {
  RecordHead(std::move(head));
  used_begin_body = true;
  announced_length = content_length;
  head_only = is_head_only;
  co_return OkStatus();
}

http::Awaitable<Status> FakeExchange::WriteBody(std::string_view piece) {
  ++write_body_calls;
  if (fail_write_after_.has_value() && body.size() + piece.size() > *fail_write_after_) {
    ++failed_writes;
    co_return write_error_;
  }
  body.append(piece.data(), piece.size());
  co_return OkStatus();
}

const std::string* FakeExchange::ResponseHeader(std::string_view name) const {
  for (const auto& header : headers) {
    if (EqualsIgnoringCase(header.first, name)) return &header.second;
  }
  return nullptr;
}

http::RequestHead MakeHead(std::string method, std::string target, http::HeaderList headers) {
  http::RequestHead head;
  head.method = std::move(method);
  head.target = target;
  const size_t question = target.find('?');
  head.path = target.substr(0, question);
  if (question != std::string::npos) head.query = target.substr(question + 1);
  for (auto& header : headers) {
    std::string name = header.first;
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (name == "content-length") head.content_length = std::stoull(header.second);
    if (name == "transfer-encoding") head.chunked = true;
    head.headers.emplace_back(std::move(name), std::move(header.second));
  }
  head.peer = "127.0.0.1:5555";
  return head;
}

void RunHandler(const std::function<http::Awaitable<void>(http::Exchange&)>& handler,
                http::Exchange& exchange) {
  boost::asio::io_context context;
  std::exception_ptr thrown;
  bool done = false;
  boost::asio::co_spawn(context, handler(exchange), [&](std::exception_ptr error) {
    thrown = error;
    done = true;
  });
  context.run();
  if (thrown) std::rethrow_exception(thrown);
  if (!done) throw std::runtime_error("the handler did not complete");
}

}  // namespace cairn::testing
