// An HTTP/1.1 server on Boost.Beast coroutines. It owns sockets, parsing, limits,
// timeouts and graceful shutdown; what a request means is the handler's business.
//
// One HttpServer runs one event loop per I/O thread and any number of listeners (the
// native API and S3 share them); each connection is served on one loop for good.
// Limits: the request header block is bounded (431 beyond); bodies are never buffered
// whole (the handler pulls them through Exchange::ReadBody); each read or write has a
// timeout so a stalled client cannot hold a connection forever.
// Shutdown: RequestStop stops accepting, closes idle keep-alive connections, lets
// in-flight requests finish (up to drain_timeout_seconds), then Run returns.
// Thread-safety: RequestStop may be called from any thread; the rest from one.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "http/exchange.h"

namespace cairn::http {

struct ListenerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0 = any free port
  size_t max_header_bytes = 16 * 1024;
  int header_timeout_seconds = 60;  // to receive a whole request head (also keep-alive idle)
  int io_timeout_seconds = 120;     // per body read or write
  // A request body must average at least this many bytes per second of waiting for it
  // (time the server spends processing does not count), after a grace period; a slower
  // body is cut with 408. 0 = no minimum.
  uint64_t min_body_rate = 0;
  int min_body_rate_grace_seconds = 10;
};

using RequestHandler = std::function<Awaitable<void>(Exchange&)>;
// Builds an error response for failures the server detects itself (400, 431, 500).
using ErrorRenderer = std::function<std::pair<ResponseHead, std::string>(
    int status, const std::string& code, const std::string& message)>;

class HttpServer {
 public:
  HttpServer();
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds a listening socket now (so errors surface here) and returns its port.
  Result<uint16_t> AddListener(ListenerOptions options, RequestHandler handler,
                               ErrorRenderer error_renderer);
  // At most this many connections are open at once (over all listeners); beyond it a new
  // connection gets 503 with Retry-After and is closed. 0 = no limit.
  void SetMaxConnections(size_t max_connections);
  // SIGTERM/SIGINT call `on_signal` (if set) and then RequestStop.
  void StopOnSignals(std::function<void()> on_signal);
  // Serves on `io_threads` threads until a stop has drained every connection.
  void Run(size_t io_threads, int drain_timeout_seconds);
  void RequestStop();

  // Single-threaded driving, for tests and fuzzing without TCP (instead of Run): Adopt
  // serves `fd`, an already connected stream socket (one end of a socketpair, say), as a
  // connection accepted by the listener with index `listener` (AddListener order), on
  // the first event loop; it owns and closes fd. RunOneFor then runs that loop on the
  // calling thread until one handler has run or `timeout` has passed, and returns how
  // many ran (0 when nothing was ready). An exception escaping a handler ends only its
  // connection, as under Run.
  void Adopt(size_t listener, int fd);
  size_t RunOneFor(std::chrono::milliseconds timeout);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::http
