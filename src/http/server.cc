#include <utility>  // Boost 1.74 coroutine headers need it first.

#include "core/text.h"
#include "http/server.h"

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <unistd.h>

namespace cairn::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using asio::use_awaitable;

namespace {

constexpr size_t kReadBufferLimit = 1 << 20;

struct Listener {
  ListenerOptions options;
  RequestHandler handler;
  ErrorRenderer error_renderer;
  std::unique_ptr<tcp::acceptor> acceptor;
};

}  // namespace

struct Session;

using WorkGuard = asio::executor_work_guard<asio::io_context::executor_type>;

struct HttpServer::Impl {
  // The first event loop: listeners, signals and the shutdown timers live here. Each
  // connection belongs to one loop for good (see Run), so its coroutine never needs a
  // strand and never hops between threads.
  asio::io_context io_context{1};
  // The event loops of the other I/O threads, created by Run.
  std::vector<std::unique_ptr<asio::io_context>> extra_contexts;
  // Keep every loop running while no connection is open, until a stop has drained.
  std::vector<WorkGuard> keep_running;
  size_t next_context = 0;  // round robin over the loops; used by the accepting loop only
  std::vector<std::unique_ptr<Listener>> listeners;
  std::unique_ptr<asio::signal_set> signals;
  std::atomic<bool> stopping{false};
  std::mutex sessions_mutex;
  // Weak: a session ends on its own loop at any time, so whoever walks this set (the
  // shutdown code, on the first loop) must take a reference before touching one.
  std::map<Session*, std::weak_ptr<Session>> sessions;  // GUARDED_BY(sessions_mutex)
  std::unique_ptr<asio::steady_timer> drain_timer;
  int drain_timeout_seconds = 30;
  size_t max_connections = 0;  // 0 = no limit
  std::atomic<size_t> open_sessions{0};
  std::atomic<size_t> refusing{0};  // connections being answered 503 for max_connections

  void CloseIdleSessions();
  // The loop that serves the next accepted connection.
  asio::io_context& NextContext();
  void StopAllContexts();
};

struct Session {
  explicit Session(tcp::socket socket) : stream(std::move(socket)), buffer(kReadBufferLimit) {
    // Once per connection rather than a getpeername call per request.
    beast::error_code ec;
    auto endpoint = stream.socket().remote_endpoint(ec);
    if (!ec) peer = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  }
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  std::string peer;  // "127.0.0.1:5555", empty if unknown
  std::atomic<bool> idle{true};
};

asio::io_context& HttpServer::Impl::NextContext() {
  const size_t index = next_context++ % (extra_contexts.size() + 1);
  return index == 0 ? io_context : *extra_contexts[index - 1];
}

void HttpServer::Impl::StopAllContexts() {
  io_context.stop();
  for (auto& context : extra_contexts) context->stop();
}

void HttpServer::Impl::CloseIdleSessions() {
  std::lock_guard<std::mutex> lock(sessions_mutex);
  for (const auto& entry : sessions) {
    std::shared_ptr<Session> session = entry.second.lock();
    if (!session || !session->idle.load()) continue;
    // The cancel runs on the session's own loop, where its coroutine runs, so `idle` is
    // re-read there: by then the session may have started a request, which must finish.
    asio::post(session->stream.get_executor(), [weak = entry.second] {
      std::shared_ptr<Session> alive = weak.lock();
      if (!alive || !alive->idle.load()) return;
      beast::error_code ignored;
      alive->stream.socket().cancel(ignored);
    });
  }
}

namespace {

class BeastExchange : public Exchange {
 public:
  BeastExchange(Session* session, bhttp::request_parser<bhttp::buffer_body>* parser,
                const Listener* listener, RequestHead head, bool stopping)
      : session_(session),
        parser_(parser),
        listener_(listener),
        options_(listener->options),
        head_(std::move(head)),
        stopping_(stopping) {
    const std::string* expect = head_.Header("expect");
    expect_continue_ = expect != nullptr && beast::iequals(*expect, "100-continue");
  }

  const RequestHead& request() const override { return head_; }

  Awaitable<Result<size_t>> ReadBody(char* buffer, size_t size) override {
    if (broken_) co_return Status(InternalError("request body stream is broken"));
    // "100 Continue" goes out before the first read even for an empty body: some clients
    // (botocore) otherwise mistake the next response on this connection for the interim.
    if (expect_continue_) {
      expect_continue_ = false;
      bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, 11};
      beast::error_code ec;
      session_->stream.expires_after(std::chrono::seconds(options_.io_timeout_seconds));
      co_await bhttp::async_write(session_->stream, cont, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        broken_ = true;
        co_return Status(UnavailableError("sending 100 Continue failed: " + ec.message()));
      }
    }
    if (BodyDone() || size == 0) co_return size_t{0};
    if (!parser_->chunked() && parser_->content_length()) {
      Result<size_t> got = co_await ReadFixedLengthBody(buffer, size);
      if (got.ok()) request_body_bytes_ += *got;
      co_return got;
    }
    Result<size_t> got = co_await ReadChunkedBody(buffer, size);
    if (got.ok()) request_body_bytes_ += *got;
    co_return got;
  }

  // Chunked bodies go through the parser, fed by hand rather than by http::async_read: the
  // parser can throw (a trailer field over Beast's 64 KiB field limit), and a throw inside
  // a composed read escapes to the event loop, where it would cost the connection without
  // an answer; here it is caught and answered. Feeding by hand also lets the framing be
  // checked while the parser waits for more: a line ended by a bare LF would otherwise be
  // waited on until the read timeout (the parser only knows CRLF).
  Awaitable<Result<size_t>> ReadChunkedBody(char* buffer, size_t size) {
    auto& body = parser_->get().body();
    body.data = buffer;
    body.size = size;
    parser_->eager(true);
    // Bounded: each round parses buffered bytes or reads at least one more byte from the
    // socket (or ends); a body is never longer than the rounds allow in one call because
    // every round that yields body bytes returns.
    for (int round = 0; round < 1 << 20; ++round) {
      if (session_->buffer.size() > 0) {
        beast::error_code ec;
        size_t used = 0;
        bool field_too_large = false;  // no co_await inside a handler
        try {
          used = parser_->put(session_->buffer.data(), ec);
        } catch (const std::length_error&) {
          field_too_large = true;
        }
        if (field_too_large) {
          co_return co_await FailBody(431, "HeaderFieldsTooLarge",
                                      "a chunked-body trailer field is larger than 64 KiB");
        }
        session_->buffer.consume(used);
        if (ec == bhttp::error::need_buffer) ec = {};
        const bool need_more = ec == bhttp::error::need_more;
        if (need_more) ec = {};
        if (ec) {
          co_return co_await FailBody(400, "BadRequest",
                                      "malformed chunked request body: " + ec.message());
        }
        const size_t got = size - body.size;
        if (got > 0 || parser_->is_done()) co_return got;
        if (!need_more) continue;  // framing was parsed; parse on
        // The parser waits to complete a chunk-size line, the CRLF after a chunk or the
        // trailer section: everything still buffered is framing.
        Status framing = CheckPendingFraming();
        if (!framing.ok()) {
          const int status = framing.code() == StatusCode::kPayloadTooLarge ? 431 : 400;
          co_return co_await FailBody(status, status == 431 ? "HeaderFieldsTooLarge" : "BadRequest",
                                      framing.message());
        }
      }
      const size_t room = session_->buffer.max_size() - session_->buffer.size();
      if (room == 0) {
        co_return co_await FailBody(431, "HeaderFieldsTooLarge",
                                    "chunked-body framing exceeds the read buffer");
      }
      bool rate_bound = false;
      session_->stream.expires_at(ReadDeadline(1, &rate_bound));
      beast::error_code ec;
      const auto started = std::chrono::steady_clock::now();
      const size_t n = co_await session_->stream.async_read_some(
          session_->buffer.prepare(std::min<size_t>(room, 64 * 1024)),
          asio::redirect_error(use_awaitable, ec));
      waited_ += std::chrono::steady_clock::now() - started;
      session_->buffer.commit(n);
      body_received_ += n;
      if (ec && n == 0) {
        broken_ = true;
        co_return BodyReadError(ec, rate_bound);
      }
      if (BelowMinimumRate(body_received_, waited_)) {
        broken_ = true;
        co_return TooSlowError();
      }
    }
    broken_ = true;
    co_return Status(InvalidArgumentError("request body made no progress"));
  }

  // With the parser waiting for more input: the buffered framing must not hold a bare LF
  // (RFC 9112 7.1 frames chunks with CRLF) and must stay within the header size limit.
  Status CheckPendingFraming() const {
    auto pending = session_->buffer.data();
    std::string_view text(static_cast<const char*>(pending.data()), pending.size());
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) {
        return InvalidArgumentError("chunked request body framing has a line ended by a bare LF");
      }
    }
    if (text.size() > options_.max_header_bytes) {
      return PayloadTooLargeError("a chunk-size line or trailer section is longer than " +
                                  std::to_string(options_.max_header_bytes) + " bytes");
    }
    return OkStatus();
  }

  // Answers a body the server itself finds broken (the handler's later response is
  // dropped: see Respond) and reports the failure to the handler.
  Awaitable<Result<size_t>> FailBody(int status, std::string code, std::string message) {
    broken_ = true;
    Status failure = status == 431 ? PayloadTooLargeError(message) : InvalidArgumentError(message);
    if (!responded_) {
      responded_ = true;
      server_answered_ = true;
      std::pair<ResponseHead, std::string> rendered =
          listener_->error_renderer(status, code, message);
      response_status_ = rendered.first.status;
      bhttp::response<bhttp::string_body> response{
          static_cast<bhttp::status>(rendered.first.status), 11};
      for (const auto& header : rendered.first.headers) {
        response.insert(header.first, header.second);
      }
      response.keep_alive(false);
      response.body() = std::move(rendered.second);
      response.prepare_payload();
      beast::error_code ec;
      session_->stream.expires_after(std::chrono::seconds(options_.io_timeout_seconds));
      co_await bhttp::async_write(session_->stream, response,
                                  asio::redirect_error(use_awaitable, ec));
      if (!ec) response_body_bytes_ += response.body().size();
    }
    co_return failure;
  }

  // The time by which `more` further body bytes must have arrived: the read timeout, or
  // sooner where the body would fall below min_body_rate. Only time spent waiting for the
  // client counts, so a server busy hashing or syncing never makes a client look slow.
  std::chrono::steady_clock::time_point ReadDeadline(uint64_t more, bool* rate_bound) {
    const auto now = std::chrono::steady_clock::now();
    auto deadline = now + std::chrono::seconds(options_.io_timeout_seconds);
    *rate_bound = false;
    if (options_.min_body_rate > 0) {
      const double allowed_seconds =
          options_.min_body_rate_grace_seconds +
          static_cast<double>(body_received_ + more) / static_cast<double>(options_.min_body_rate);
      const auto allowed = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::duration<double>(allowed_seconds));
      const auto due = now + (allowed - waited_);
      if (due < deadline) {
        deadline = due;
        *rate_bound = true;
      }
    }
    return deadline;
  }

  // True when `received` body bytes after `waited` of waiting fall below min_body_rate.
  bool BelowMinimumRate(uint64_t received, std::chrono::steady_clock::duration waited) const {
    if (options_.min_body_rate == 0) return false;
    const double allowed_seconds =
        options_.min_body_rate_grace_seconds +
        static_cast<double>(received) / static_cast<double>(options_.min_body_rate);
    return std::chrono::duration<double>(waited).count() > allowed_seconds;
  }

  Status TooSlowError() const {
    return DeadlineExceededError("the request body arrived slower than the minimum rate of " +
                                 std::to_string(options_.min_body_rate) + " bytes/s");
  }

  Status BodyReadError(const beast::error_code& ec, bool rate_bound) const {
    if (ec == beast::error::timeout) {
      if (rate_bound) return TooSlowError();
      return DeadlineExceededError("no request body bytes arrived for " +
                                   std::to_string(options_.io_timeout_seconds) + " s");
    }
    return InvalidArgumentError("request body ended early or is malformed: " + ec.message());
  }

  // A body of known length bypasses the parser: bytes already buffered with the head are
  // handed out first, then the socket is read straight into the caller's buffer until it
  // is full. One wake-up per buffer instead of one per TCP segment, and no extra copy.
  Awaitable<Result<size_t>> ReadFixedLengthBody(char* buffer, size_t size) {
    if (!fixed_remaining_) fixed_remaining_ = *parser_->content_length();
    if (*fixed_remaining_ == 0) co_return size_t{0};
    size_t want = static_cast<size_t>(std::min<uint64_t>(size, *fixed_remaining_));
    size_t got = 0;
    auto buffered = session_->buffer.data();
    if (buffered.size() > 0) {
      got = asio::buffer_copy(asio::buffer(buffer, want), buffered);
      session_->buffer.consume(got);
    }
    if (got < want) {
      beast::error_code ec;
      bool rate_bound = false;
      session_->stream.expires_at(ReadDeadline(want - got, &rate_bound));
      const auto started = std::chrono::steady_clock::now();
      // Reads until the buffer is full, checking the body rate as bytes arrive: a trickle
      // is stopped at once (and answered), not at the deadline of the whole buffer.
      bool too_slow = false;
      const uint64_t before = body_received_ + got;
      const size_t need = want - got;
      auto until_full = [this, started, before, need, &too_slow](const beast::error_code& error,
                                                                 size_t n) -> size_t {
        if (error || n >= need) return 0;
        if (n > 0 &&
            BelowMinimumRate(before + n, waited_ + (std::chrono::steady_clock::now() - started))) {
          too_slow = true;
          return 0;
        }
        return std::min<size_t>(need - n, 64 * 1024);
      };
      const size_t n =
          co_await asio::async_read(session_->stream, asio::buffer(buffer + got, need), until_full,
                                    asio::redirect_error(use_awaitable, ec));
      waited_ += std::chrono::steady_clock::now() - started;
      got += n;
      if (too_slow) {
        broken_ = true;
        body_received_ += got;
        co_return TooSlowError();
      }
      if (ec && got < want) {
        broken_ = true;
        if (ec == beast::error::timeout) co_return BodyReadError(ec, rate_bound);
        co_return Status(InvalidArgumentError(
                             "request body ended after " +
                             std::to_string(*parser_->content_length() - *fixed_remaining_ + got) +
                             " of " + std::to_string(*parser_->content_length()) +
                             " declared bytes: " + ec.message())
                             .WithReason(ErrorReason::kBodyLengthMismatch));
      }
    }
    body_received_ += got;
    *fixed_remaining_ -= got;
    co_return got;
  }

  Awaitable<Status> Respond(ResponseHead head, std::string body) override {
    const std::string_view view = body;  // `body` lives in this frame until the write ends
    co_return co_await RespondBorrowed(std::move(head), view);
  }

  Awaitable<Status> RespondBorrowed(ResponseHead head, std::string_view body) override {
    if (server_answered_) co_return FailedPreconditionError("the server already answered");
    Status safe = CheckResponseHeaders(head);
    if (!safe.ok()) co_return safe;
    // The body is pointed at, not copied into the message.
    bhttp::response<bhttp::buffer_body> response{static_cast<bhttp::status>(head.status), 11};
    for (const auto& header : head.headers) response.insert(header.first, header.second);
    response.keep_alive(WantKeepAlive());
    // What prepare_payload does for a body of known size: a body on 1xx, 204 or 304 is a
    // handler bug; Content-Length is always set (0 there, the full size for HEAD).
    const bool bodiless_status =
        bhttp::to_status_class(response.result()) == bhttp::status_class::informational ||
        response.result() == bhttp::status::no_content ||
        response.result() == bhttp::status::not_modified;
    if (bodiless_status && !body.empty()) throw std::invalid_argument("invalid response body");
    response.content_length(body.size());
    const bool head_only = head_.method == "HEAD";
    response.body().data = body.empty() ? nullptr : const_cast<char*>(body.data());
    response.body().size = head_only ? 0 : body.size();
    response.body().more = false;
    beast::error_code ec;
    session_->stream.expires_after(std::chrono::seconds(options_.io_timeout_seconds));
    responded_ = true;
    response_status_ = head.status;
    if (head_only) {
      bhttp::response_serializer<bhttp::buffer_body> serializer(response);
      co_await bhttp::async_write_header(session_->stream, serializer,
                                         asio::redirect_error(use_awaitable, ec));
    } else {
      co_await bhttp::async_write(session_->stream, response,
                                  asio::redirect_error(use_awaitable, ec));
    }
    if (ec) {
      broken_ = true;
      co_return UnavailableError("writing response failed: " + ec.message());
    }
    if (!head_only) response_body_bytes_ += body.size();
    complete_ = true;
    co_return OkStatus();
  }

  Awaitable<Status> BeginBody(ResponseHead head, uint64_t content_length, bool head_only) override {
    if (server_answered_) co_return FailedPreconditionError("the server already answered");
    Status safe = CheckResponseHeaders(head);
    if (!safe.ok()) co_return safe;
    streaming_response_ = std::make_unique<bhttp::response<bhttp::buffer_body>>(
        static_cast<bhttp::status>(head.status), 11);
    for (const auto& header : head.headers) {
      streaming_response_->insert(header.first, header.second);
    }
    streaming_response_->keep_alive(WantKeepAlive());
    streaming_response_->content_length(content_length);
    streaming_response_->body().data = nullptr;
    streaming_response_->body().more = content_length > 0 && !head_only;
    serializer_ =
        std::make_unique<bhttp::response_serializer<bhttp::buffer_body>>(*streaming_response_);
    remaining_ = head_only ? 0 : content_length;
    responded_ = true;
    response_status_ = head.status;
    beast::error_code ec;
    session_->stream.expires_after(std::chrono::seconds(options_.io_timeout_seconds));
    co_await bhttp::async_write_header(session_->stream, *serializer_,
                                       asio::redirect_error(use_awaitable, ec));
    if (ec) {
      broken_ = true;
      co_return UnavailableError("writing response head failed: " + ec.message());
    }
    if (remaining_ == 0) complete_ = true;
    co_return OkStatus();
  }

  Awaitable<Status> WriteBody(std::string_view piece) override {
    if (!serializer_ || broken_) co_return FailedPreconditionError("no response body open");
    if (piece.size() > remaining_) {
      broken_ = true;
      co_return InternalError("response body longer than its Content-Length");
    }
    remaining_ -= piece.size();
    auto& body = streaming_response_->body();
    body.data = const_cast<char*>(piece.data());
    body.size = piece.size();
    body.more = remaining_ > 0;
    beast::error_code ec;
    session_->stream.expires_after(std::chrono::seconds(options_.io_timeout_seconds));
    co_await bhttp::async_write(session_->stream, *serializer_,
                                asio::redirect_error(use_awaitable, ec));
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) {
      broken_ = true;
      co_return UnavailableError("writing response body failed: " + ec.message());
    }
    response_body_bytes_ += piece.size();
    if (remaining_ == 0) complete_ = true;
    co_return OkStatus();
  }

  bool responded() const { return responded_; }
  uint64_t request_body_bytes() const override { return request_body_bytes_; }
  uint64_t response_body_bytes() const override { return response_body_bytes_; }
  int response_status() const override { return response_status_; }

  // The last line of defence against response splitting: a header value with CR, LF or
  // NUL is never written. Handlers validate what clients send before echoing it; this
  // turns a miss into a 500 (ServeConnection answers: nothing was sent) instead of
  // attacker-chosen header lines.
  Status CheckResponseHeaders(const ResponseHead& head) {
    for (const auto& header : head.headers) {
      if (!IsSafeHeaderValue(header.first) || !IsSafeHeaderValue(header.second)) {
        fprintf(stderr, "cairn: refused to send response header '%s' with a control character\n",
                header.first.c_str());
        return InternalError("response header " + header.first + " holds a control character");
      }
    }
    return OkStatus();
  }
  // The connection may carry another request.
  bool Reusable() const {
    return complete_ && !broken_ && BodyDone() && parser_->keep_alive() && !stopping_;
  }

 private:
  bool WantKeepAlive() const {
    return BodyDone() && parser_->keep_alive() && !stopping_ && !broken_;
  }
  bool BodyDone() const {
    if (fixed_remaining_) return *fixed_remaining_ == 0;
    return parser_->is_done();
  }

  Session* session_;
  bhttp::request_parser<bhttp::buffer_body>* parser_;
  const Listener* listener_;
  const ListenerOptions& options_;
  RequestHead head_;
  bool stopping_;
  bool expect_continue_ = false;
  bool broken_ = false;
  bool responded_ = false;
  bool complete_ = false;
  bool server_answered_ = false;                   // FailBody sent the response
  uint64_t body_received_ = 0;                     // body bytes read from the socket so far
  uint64_t request_body_bytes_ = 0;                // body bytes handed to the handler
  uint64_t response_body_bytes_ = 0;               // response body bytes written
  int response_status_ = 0;                        // of the response head sent, if any
  std::chrono::steady_clock::duration waited_{0};  // time spent waiting for them
  uint64_t remaining_ = 0;
  std::optional<uint64_t> fixed_remaining_;  // set once a fixed-length body is being read
  std::unique_ptr<bhttp::response<bhttp::buffer_body>> streaming_response_;
  std::unique_ptr<bhttp::response_serializer<bhttp::buffer_body>> serializer_;
};

RequestHead MakeHead(const bhttp::request_parser<bhttp::buffer_body>& parser,
                     const std::string& peer) {
  const auto& message = parser.get();
  RequestHead head;
  head.headers.reserve(static_cast<size_t>(std::distance(message.begin(), message.end())));
  head.method = std::string(message.method_string());
  head.target = std::string(message.target());
  size_t question = head.target.find('?');
  head.path = head.target.substr(0, question);
  if (question != std::string::npos) head.query = head.target.substr(question + 1);
  for (const auto& field : message) {
    const auto name = field.name_string();  // a Boost string_view
    head.headers.emplace_back(ToLowerAscii(std::string_view(name.data(), name.size())),
                              std::string(field.value()));
  }
  if (parser.content_length()) head.content_length = *parser.content_length();
  head.chunked = parser.chunked();
  head.peer = peer;
  return head;
}

Awaitable<void> SendError(Session* session, const Listener* listener, int status, std::string code,
                          std::string message) {
  // No structured bindings in coroutines: GCC 12 mishandles them.
  std::pair<ResponseHead, std::string> rendered = listener->error_renderer(status, code, message);
  bhttp::response<bhttp::string_body> response{static_cast<bhttp::status>(rendered.first.status),
                                               11};
  for (const auto& header : rendered.first.headers) response.insert(header.first, header.second);
  response.keep_alive(false);
  response.body() = std::move(rendered.second);
  response.prepare_payload();
  beast::error_code ec;
  session->stream.expires_after(std::chrono::seconds(listener->options.io_timeout_seconds));
  co_await bhttp::async_write(session->stream, response, asio::redirect_error(use_awaitable, ec));
}

// Closing a socket with unread input makes the kernel send a reset, which can destroy the
// response the client has not read yet (say, a 401 sent before an upload's body). So the
// server stops sending, then reads and discards what is still arriving, bounded in bytes
// and time, before it closes.
Awaitable<void> LingeringClose(Session* session) {
  constexpr size_t kMaxDrainBytes = 4 << 20;
  beast::error_code ec;
  session->stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  session->stream.expires_after(std::chrono::seconds(2));
  std::unique_ptr<char[]> scratch(new char[64 * 1024]);
  for (size_t drained = 0; !ec && drained < kMaxDrainBytes;) {
    drained += co_await session->stream.async_read_some(asio::buffer(scratch.get(), 64 * 1024),
                                                        asio::redirect_error(use_awaitable, ec));
  }
  beast::error_code ignored;
  session->stream.socket().close(ignored);
}

Awaitable<void> ServeConnection(HttpServer::Impl* server, Listener* listener,
                                std::shared_ptr<Session> session) {
  const ListenerOptions& options = listener->options;
  for (;;) {
    bhttp::request_parser<bhttp::buffer_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    beast::error_code ec;
    session->idle = true;
    if (server->stopping) break;
    session->stream.expires_after(std::chrono::seconds(options.header_timeout_seconds));
    co_await bhttp::async_read_header(session->stream, session->buffer, parser,
                                      asio::redirect_error(use_awaitable, ec));
    session->idle = false;
    if (ec == bhttp::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == beast::error::timeout || ec == asio::error::connection_reset ||
        ec == asio::error::eof) {
      break;
    }
    if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow) {
      co_await SendError(
          session.get(), listener, 431, "HeaderFieldsTooLarge",
          "request header block exceeds " + std::to_string(options.max_header_bytes) + " bytes");
      break;
    }
    if (ec) {
      co_await SendError(session.get(), listener, 400, "BadRequest",
                         "malformed HTTP request: " + ec.message());
      break;
    }
    // RFC 9112 6.1: a request whose Transfer-Encoding does not end in chunked has no
    // determinable length; answering anything else would misread the body.
    if (parser.get().find(bhttp::field::transfer_encoding) != parser.get().end() &&
        !parser.chunked()) {
      co_await SendError(session.get(), listener, 400, "BadRequest",
                         "Transfer-Encoding must end with chunked");
      break;
    }
    // RFC 9112 3.2: an HTTP/1.1 request carries exactly one Host.
    if (parser.get().version() >= 11 && parser.get().count(bhttp::field::host) != 1) {
      co_await SendError(session.get(), listener, 400, "BadRequest",
                         "an HTTP/1.1 request must carry exactly one Host header");
      break;
    }
    BeastExchange exchange(session.get(), &parser, listener, MakeHead(parser, session->peer),
                           server->stopping.load());
    co_await listener->handler(exchange);
    if (!exchange.responded()) {
      co_await SendError(session.get(), listener, 500, "Internal", "handler sent no response");
      break;
    }
    if (!exchange.Reusable()) break;
  }
  co_await LingeringClose(session.get());
}

// Counts a connection for --max-connections for as long as its coroutine frame lives (a
// frame destroyed by an escaping exception counts down too).
struct OpenSessionCount {
  explicit OpenSessionCount(std::atomic<size_t>* count) : count_(count) { ++*count_; }
  ~OpenSessionCount() { --*count_; }
  OpenSessionCount(const OpenSessionCount&) = delete;
  OpenSessionCount& operator=(const OpenSessionCount&) = delete;
  std::atomic<size_t>* count_;
};

// Past --max-connections: a short 503 so the client knows to come back, then close. These
// are bounded too; past that bound a connection is closed unanswered.
Awaitable<void> RefuseConnection(HttpServer::Impl* server, Listener* listener, tcp::socket socket) {
  OpenSessionCount refusing(&server->refusing);
  auto session = std::make_shared<Session>(std::move(socket));
  std::pair<ResponseHead, std::string> rendered = listener->error_renderer(
      503, "SlowDown", "the server has reached its connection limit; retry shortly");
  bhttp::response<bhttp::string_body> response{bhttp::status::service_unavailable, 11};
  for (const auto& header : rendered.first.headers) response.insert(header.first, header.second);
  response.set(bhttp::field::retry_after, "1");
  response.keep_alive(false);
  response.body() = std::move(rendered.second);
  response.prepare_payload();
  beast::error_code ec;
  session->stream.expires_after(std::chrono::seconds(2));
  co_await bhttp::async_write(session->stream, response, asio::redirect_error(use_awaitable, ec));
  co_await LingeringClose(session.get());
}

Awaitable<void> RunSession(HttpServer::Impl* server, Listener* listener, tcp::socket socket) {
  OpenSessionCount counted(&server->open_sessions);
  auto session = std::make_shared<Session>(std::move(socket));
  {
    std::lock_guard<std::mutex> lock(server->sessions_mutex);
    server->sessions.insert_or_assign(session.get(), session);  // replaces a stale entry
  }
  try {
    co_await ServeConnection(server, listener, session);
  } catch (const std::exception&) {
    // A handler bug must cost one connection, never the server.
  }
  std::lock_guard<std::mutex> lock(server->sessions_mutex);
  server->sessions.erase(session.get());
}

Awaitable<void> AcceptLoop(HttpServer::Impl* server, Listener* listener) {
  for (;;) {
    beast::error_code ec;
    tcp::socket socket(server->NextContext());
    co_await listener->acceptor->async_accept(socket, asio::redirect_error(use_awaitable, ec));
    if (server->stopping) break;
    if (ec) {
      if (ec == asio::error::operation_aborted) break;
      // EMFILE and friends: back off briefly instead of spinning.
      asio::steady_timer timer(server->io_context, std::chrono::milliseconds(50));
      co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto executor = socket.get_executor();
    if (server->max_connections > 0 && server->open_sessions.load() >= server->max_connections) {
      if (server->refusing.load() < 1024) {
        asio::co_spawn(executor, RefuseConnection(server, listener, std::move(socket)),
                       asio::detached);
      }
      continue;  // an unanswered socket closes as it goes out of scope
    }
    asio::co_spawn(executor, RunSession(server, listener, std::move(socket)), asio::detached);
  }
}

// Runs a loop until it stops. An exception that escapes a completion handler (a parser
// that throws inside a composed read, say on a huge chunked trailer) unwinds out of run()
// and would end the process; it ends only the operation that threw: unwinding destroys
// that handler and with it the connection's coroutine and socket (the client sees the
// connection close), and the loop goes on, as Asio allows (run() may be called again
// without restart()).
void RunLoop(asio::io_context& loop) {
  for (;;) {
    try {
      loop.run();
      return;
    } catch (const std::exception& e) {
      fprintf(stderr, "cairn: a connection failed and was closed: %s\n", e.what());
    } catch (...) {
      fprintf(stderr, "cairn: a connection failed and was closed (unknown exception)\n");
    }
  }
}

}  // namespace

HttpServer::HttpServer() : impl_(std::make_unique<Impl>()) {}
HttpServer::~HttpServer() = default;

Result<uint16_t> HttpServer::AddListener(ListenerOptions options, RequestHandler handler,
                                         ErrorRenderer error_renderer) {
  auto listener = std::make_unique<Listener>();
  listener->options = std::move(options);
  listener->handler = std::move(handler);
  listener->error_renderer = std::move(error_renderer);
  beast::error_code ec;
  auto address = asio::ip::make_address(listener->options.host, ec);
  if (ec) return InvalidArgumentError("bad listen address '" + listener->options.host + "'");
  tcp::endpoint endpoint(address, listener->options.port);
  auto acceptor = std::make_unique<tcp::acceptor>(impl_->io_context);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return UnavailableError("cannot listen on " + listener->options.host + ":" +
                            std::to_string(listener->options.port) + ": " + ec.message());
  }
  uint16_t port = acceptor->local_endpoint().port();
  listener->acceptor = std::move(acceptor);
  impl_->listeners.push_back(std::move(listener));
  return port;
}

void HttpServer::SetMaxConnections(size_t max_connections) {
  impl_->max_connections = max_connections;
}

void HttpServer::StopOnSignals(std::function<void()> on_signal) {
  impl_->signals = std::make_unique<asio::signal_set>(impl_->io_context, SIGTERM, SIGINT);
  impl_->signals->async_wait([this, on_signal](const beast::error_code& ec, int) {
    if (ec) return;
    if (on_signal) on_signal();
    RequestStop();
  });
}

void HttpServer::Run(size_t io_threads, int drain_timeout_seconds) {
  impl_->drain_timeout_seconds = drain_timeout_seconds;
  // One event loop per thread rather than one loop shared by all: a shared loop wakes its
  // other threads for nearly every completion and moves a connection's work (and its heap
  // memory) between threads; with one loop each, a connection stays on one thread and
  // its operations need no strand.
  for (size_t i = 1; i < io_threads; ++i) {
    impl_->extra_contexts.push_back(std::make_unique<asio::io_context>(1));
  }
  impl_->keep_running.push_back(asio::make_work_guard(impl_->io_context));
  for (auto& context : impl_->extra_contexts) {
    impl_->keep_running.push_back(asio::make_work_guard(*context));
  }
  for (auto& listener : impl_->listeners) {
    asio::co_spawn(impl_->io_context, AcceptLoop(impl_.get(), listener.get()), asio::detached);
  }
  std::vector<std::thread> threads;
  for (auto& context : impl_->extra_contexts) {
    threads.emplace_back([loop = context.get()] { RunLoop(*loop); });
  }
  RunLoop(impl_->io_context);
  for (auto& thread : threads) thread.join();
}

void HttpServer::Adopt(size_t listener, int fd) {
  tcp::socket socket(impl_->io_context);
  beast::error_code ec;
  // Asio does not check the descriptor's family: a Unix-domain stream socket reads,
  // writes and shuts down as a TCP one does (it only has no peer address).
  socket.assign(tcp::v4(), fd, ec);
  if (ec || listener >= impl_->listeners.size()) {
    ::close(fd);
    return;
  }
  asio::co_spawn(impl_->io_context,
                 RunSession(impl_.get(), impl_->listeners[listener].get(), std::move(socket)),
                 asio::detached);
}

size_t HttpServer::RunOneFor(std::chrono::milliseconds timeout) {
  asio::io_context& loop = impl_->io_context;
  if (loop.stopped()) loop.restart();  // out of work last time: nothing was connected
  try {
    return loop.run_one_for(timeout);
  } catch (const std::exception& e) {
    fprintf(stderr, "cairn: a connection failed and was closed: %s\n", e.what());
  } catch (...) {
    fprintf(stderr, "cairn: a connection failed and was closed (unknown exception)\n");
  }
  return 1;
}

void HttpServer::RequestStop() {
  asio::post(impl_->io_context, [impl = impl_.get()] {
    if (impl->stopping.exchange(true)) return;
    beast::error_code ignored;
    for (auto& listener : impl->listeners) listener->acceptor->close(ignored);
    if (impl->signals) impl->signals->cancel(ignored);
    impl->CloseIdleSessions();
    // In-flight requests get drain_timeout_seconds; then everything is cut.
    impl->drain_timer = std::make_unique<asio::steady_timer>(
        impl->io_context, std::chrono::seconds(impl->drain_timeout_seconds));
    impl->drain_timer->async_wait([impl](const beast::error_code& ec) {
      if (!ec) impl->StopAllContexts();
    });
    // Poll for the last session to finish so Run returns as soon as the drain is done.
    auto poll = std::make_shared<asio::steady_timer>(impl->io_context);
    auto check = std::make_shared<std::function<void()>>();
    *check = [impl, poll, check] {
      bool empty;
      {
        std::lock_guard<std::mutex> lock(impl->sessions_mutex);
        // A session whose coroutine was destroyed without finishing (see RunLoop) never
        // erased itself: only live ones count.
        std::erase_if(impl->sessions, [](const auto& entry) { return entry.second.expired(); });
        empty = impl->sessions.empty();
      }
      if (empty) {
        beast::error_code ignored_inner;
        impl->drain_timer->cancel();
        // Every loop may now return once its last handler has run.
        for (WorkGuard& guard : impl->keep_running) guard.reset();
        *check = nullptr;  // breaks the self-reference cycle
        return;
      }
      impl->CloseIdleSessions();
      poll->expires_after(std::chrono::milliseconds(50));
      poll->async_wait([check](const beast::error_code&) {
        if (*check) (*check)();
      });
    };
    (*check)();
  });
}

// ---- Helpers shared by the APIs ----------------------------------------------------------

const std::string* RequestHead::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return &value;
  }
  return nullptr;
}

}  // namespace cairn::http
