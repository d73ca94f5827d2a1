// A small blocking HTTP/1.1 client over one keep-alive connection, for the CLI and the
// load generator. Not thread-safe: one client per thread. Bodies stream in both
// directions through caller-supplied callbacks, so memory stays bounded.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace cairn::client {

struct Endpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  // How long connecting, or any one read or write of a request, may take before it fails
  // (kUnavailable) and the connection is dropped.
  int timeout_seconds = 120;
};

// "http://host:port" (no TLS, no path).
Result<Endpoint> ParseEndpoint(std::string_view url);

struct HttpRequest {
  std::string method = "GET";
  std::string target = "/";
  std::vector<std::pair<std::string, std::string>> headers;
  // The body: `body` when set; otherwise `body_size` bytes produced by `body_source`,
  // which fills `buffer` (up to `size` bytes) and returns how many it wrote.
  std::string_view body;
  uint64_t body_size = 0;
  std::function<size_t(char* buffer, size_t size)> body_source;
};

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;         // kept when no sink is given, up to 1 MiB
  uint64_t body_bytes = 0;  // bytes received
  const std::string* Header(std::string_view name) const;  // case-insensitive
};

class HttpClient {
 public:
  explicit HttpClient(Endpoint endpoint);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends the request (reconnecting once if the kept-alive connection was closed) and
  // reads the response; `sink`, when given, receives the body in pieces instead.
  Result<HttpResponse> Send(const HttpRequest& request,
                            const std::function<void(std::string_view)>& sink = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::client
