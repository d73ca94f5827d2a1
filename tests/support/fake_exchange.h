// A fake http::Exchange for handler tests without sockets: the request head and body are
// given (the body as pieces, as a socket would deliver them), reads or writes can be made
// to fail part-way, and the response is recorded: status, headers, body and which calls
// produced it. Run a handler on it with RunHandler (an io_context, no threads).
#pragma once

#include <utility>  // Boost 1.74's awaitable.hpp needs it first.

#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "core/status.h"
#include "http/exchange.h"
#include "random_bytes.h"

namespace cairn::testing {

class FakeExchange : public http::Exchange {
 public:
  // `pieces` is the request body; content_length is set to its size unless the head has
  // one (or is chunked).
  FakeExchange(http::RequestHead head, std::vector<std::string> pieces = {});

  // ReadBody fails with `error` once `pieces` pieces have been delivered.
  void FailReadAfter(size_t pieces, Status error);
  // WriteBody fails with `error` once `bytes` body bytes have been written.
  void FailWriteAfter(uint64_t bytes, Status error);

  const http::RequestHead& request() const override { return head_; }
  http::Awaitable<Result<size_t>> ReadBody(char* buffer, size_t size) override;
  http::Awaitable<Status> Respond(http::ResponseHead head, std::string body) override;
  http::Awaitable<Status> RespondBorrowed(http::ResponseHead head, std::string_view body) override;
  http::Awaitable<Status> BeginBody(http::ResponseHead head, uint64_t content_length,
                                    bool head_only) override;
  http::Awaitable<Status> WriteBody(std::string_view piece) override;
  uint64_t request_body_bytes() const override { return read_bytes_; }
  uint64_t response_body_bytes() const override { return body.size(); }
  int response_status() const override { return status; }

  // The first response header with this name (case-insensitive), or nullptr.
  const std::string* ResponseHeader(std::string_view name) const;

  // What the handler sent.
  int status = 0;
  http::HeaderList headers;
  std::string body;
  int heads_sent = 0;         // Respond, RespondBorrowed and BeginBody calls
  bool used_respond = false;  // a whole response (Respond or RespondBorrowed)
  bool used_begin_body = false;
  bool head_only = false;
  uint64_t announced_length = 0;  // BeginBody's content_length
  int write_body_calls = 0;
  int failed_writes = 0;

 private:
  void RecordHead(http::ResponseHead head);

  http::RequestHead head_;
  std::vector<std::string> pieces_;
  size_t piece_ = 0;         // the piece being delivered
  size_t piece_offset_ = 0;  // bytes of it already delivered
  uint64_t read_bytes_ = 0;
  std::optional<size_t> fail_read_after_;
  Status read_error_;
  std::optional<uint64_t> fail_write_after_;
  Status write_error_;
};

// A request head: method, target (split into path and query), headers (names lower-cased).
http::RequestHead MakeHead(std::string method, std::string target, http::HeaderList headers = {});

// Runs `handler` on a fresh io_context until it completes; rethrows what it threw.
void RunHandler(const std::function<http::Awaitable<void>(http::Exchange&)>& handler,
                http::Exchange& exchange);

// Awaits `awaitable` and keeps its value in `*out` (co_spawn needs a default-constructible
// result; Result<T> is not).
template <typename T>
http::Awaitable<void> AwaitInto(http::Awaitable<T> awaitable, std::optional<T>* out) {
  T value = co_await std::move(awaitable);
  out->emplace(std::move(value));
}

// Runs `awaitable` on a fresh io_context until it completes; returns its value.
template <typename T>
T RunAwaitable(http::Awaitable<T> awaitable) {
  boost::asio::io_context context;
  std::exception_ptr thrown;
  std::optional<T> value;
  boost::asio::co_spawn(context, AwaitInto(std::move(awaitable), &value),
                        [&](std::exception_ptr error) { thrown = error; });
  context.run();
  if (thrown) std::rethrow_exception(thrown);
  if (!value.has_value()) throw std::runtime_error("the coroutine did not complete");
  return std::move(*value);
}

}  // namespace cairn::testing
