// The seam between the HTTP server and the APIs: one request/response exchange, with the
// request body and the response body as streams. No Beast type appears here; handlers
// are coroutines (Boost.Asio awaitables) and can be tested with a fake Exchange.
#pragma once

#include <utility>  // Boost 1.74's awaitable.hpp needs it first.

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace cairn::http {

template <typename T>
using Awaitable = boost::asio::awaitable<T>;

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct RequestHead {
  std::string method;  // "GET", "PUT", ...
  std::string target;  // raw request-target
  std::string path;    // target before '?', still percent-encoded
  std::string query;   // target after '?', still percent-encoded
  HeaderList headers;  // names lower-cased, in arrival order
  std::optional<uint64_t> content_length;
  bool chunked = false;
  std::string peer;  // "127.0.0.1:5555"

  // The first header with this lower-case name, or nullptr.
  const std::string* Header(std::string_view lower_name) const;
  bool has_body() const { return chunked || content_length.value_or(0) > 0; }
};

struct ResponseHead {
  int status = 200;
  HeaderList headers;  // Content-Length and Connection are set by the server
};

class Exchange {
 public:
  virtual ~Exchange() = default;
  virtual const RequestHead& request() const = 0;

  // Reads the next piece of the request body into `buffer`; returns 0 at its end. Sends
  // "100 Continue" first if the client asked for it. An error means the body is broken
  // (truncated, timed out, malformed chunking) and the connection will be closed.
  virtual Awaitable<Result<size_t>> ReadBody(char* buffer, size_t size) = 0;

  // Sends a whole response with a small body.
  virtual Awaitable<Status> Respond(ResponseHead head, std::string body) = 0;
  // The same with a borrowed body, which must stay valid until the call completes: no
  // copy of a body the caller already holds.
  virtual Awaitable<Status> RespondBorrowed(ResponseHead head, std::string_view body) = 0;

  // Sends the head announcing `content_length` body bytes; then WriteBody delivers them.
  // With `head_only` (HEAD requests) no body follows and WriteBody must not be called.
  virtual Awaitable<Status> BeginBody(ResponseHead head, uint64_t content_length,
                                      bool head_only) = 0;
  virtual Awaitable<Status> WriteBody(std::string_view piece) = 0;

  // What the exchange has carried so far, for the access log: request body bytes handed
  // to the handler by ReadBody (after chunked decoding), response body bytes written
  // (none for HEAD), and the status of the response head sent or being sent (0 before
  // any; the server's own when it answered a broken body itself).
  virtual uint64_t request_body_bytes() const = 0;
  virtual uint64_t response_body_bytes() const = 0;
  virtual int response_status() const = 0;
};

// True if `value` may be sent as a header field value: no CR, LF, NUL or other control
// character but HTAB (RFC 9110 5.5). A client-influenced value that fails this must be
// refused, never echoed: CR/LF would let it add header lines or split the response.
bool IsSafeHeaderValue(std::string_view value);

// Percent-decoding for paths and query values. `plus_is_space` for query strings.
Result<std::string> PercentDecode(std::string_view text, bool plus_is_space);
std::string PercentEncode(std::string_view text);  // everything but unreserved characters
// Splits "a=1&b=2" into decoded pairs.
Result<std::vector<std::pair<std::string, std::string>>> ParseQuery(std::string_view query);

}  // namespace cairn::http
