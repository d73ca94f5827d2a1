// The console's HTTP edge: reads a request (its body bounded), runs Console::Serve on the
// blocking pool, sends the answer. Thread-safety: Handle may run concurrently.
#pragma once

#include <memory>

#include "api/console/console.h"
#include "http/blocking_pool.h"
#include "http/exchange.h"

namespace cairn::api::console {

class ConsoleApi {
 public:
  ConsoleApi(Console* console, http::BlockingPool* pool) : console_(console), pool_(pool) {}
  http::Awaitable<void> Handle(http::Exchange& exchange);

 private:
  // The calls whose bodies stream (docs/console.md "Bodies"): admitted by the console
  // first, then the body goes to or comes from the object service in bounded pieces.
  http::Awaitable<void> Stream(http::Exchange& exchange, std::shared_ptr<Request> request);
  http::Awaitable<void> Upload(http::Exchange& exchange, StreamCall call);
  http::Awaitable<void> Download(http::Exchange& exchange, StreamCall call);

  Console* console_;
  http::BlockingPool* pool_;
};

}  // namespace cairn::api::console
