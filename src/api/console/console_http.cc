#include "api/console/console_http.h"

#include <utility>

namespace cairn::api::console {

http::Awaitable<void> ConsoleApi::Handle(http::Exchange& exchange) {
  const http::RequestHead& head = exchange.request();
  auto request = std::make_shared<Request>();
  request->method = head.method;
  request->path = head.path;
  request->query = head.query;
  request->headers = head.headers;
  // A body larger than a console call takes is not read whole: its size is enough to
  // refuse it (and the connection closes, as the rest is not read).
  if (head.content_length.value_or(0) > Console::kMaxBodyBytes) {
    request->body.assign(Console::kMaxBodyBytes + 1, '\0');
  } else {
    char buffer[16 * 1024];
    for (;;) {
      Result<size_t> n = co_await exchange.ReadBody(buffer, sizeof(buffer));
      if (!n.ok()) co_return;  // a broken body: the server closes the connection
      if (*n == 0) break;
      request->body.append(buffer, *n);
      if (request->body.size() > Console::kMaxBodyBytes) break;
    }
  }
  Console* console = console_;
  auto work = [console, request]() { return console->Serve(*request); };
  Response response = co_await pool_->Run(std::move(work));
  http::ResponseHead out;
  out.status = response.status;
  out.headers = std::move(response.headers);
  if (head.method == "HEAD") {
    (void)co_await exchange.BeginBody(std::move(out), response.body.size(), true);
    co_return;
  }
  (void)co_await exchange.Respond(std::move(out), std::move(response.body));
}

}  // namespace cairn::api::console
