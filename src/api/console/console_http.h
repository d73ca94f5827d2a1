// The console's HTTP edge: reads a request (its body bounded), runs Console::Serve on the
// blocking pool, sends the answer. Thread-safety: Handle may run concurrently.
#pragma once

#include "api/console/console.h"
#include "http/blocking_pool.h"
#include "http/exchange.h"

namespace cairn::api::console {

class ConsoleApi {
 public:
  ConsoleApi(Console* console, http::BlockingPool* pool) : console_(console), pool_(pool) {}
  http::Awaitable<void> Handle(http::Exchange& exchange);

 private:
  Console* console_;
  http::BlockingPool* pool_;
};

}  // namespace cairn::api::console
