// The console's HTTP edge: reads a request (its body bounded), runs Console::Serve on the
// blocking pool, sends the answer. Thread-safety: Handle may run concurrently.
#pragma once

#include <memory>

#include "api/common/upload_memory.h"
#include "api/console/console.h"
#include "http/blocking_pool.h"
#include "http/exchange.h"

namespace cairn::api::console {

class ConsoleApi {
 public:
  // `access_log`: one line per call (api/common/access_log.h), as the other APIs write.
  // `upload_memory`: the server's budget for upload buffers, shared with the other APIs
  // (nullptr: none).
  ConsoleApi(Console* console, http::BlockingPool* pool, bool access_log,
             UploadMemory* upload_memory = nullptr)
      : console_(console), pool_(pool), access_log_(access_log), upload_memory_(upload_memory) {}
  http::Awaitable<void> Handle(http::Exchange& exchange);

 private:
  // The calls whose bodies stream (docs/console.md "Bodies"): admitted by the console
  // first, then the body goes to or comes from the object service in bounded pieces.
  // Returns the session's key id (for the access log), empty when refused before one.
  http::Awaitable<std::string> Stream(http::Exchange& exchange, std::shared_ptr<Request> request);
  http::Awaitable<void> Upload(http::Exchange& exchange, StreamCall call);
  http::Awaitable<void> Download(http::Exchange& exchange, StreamCall call);
  http::Awaitable<void> Answer(http::Exchange& exchange, std::shared_ptr<Request> request,
                               std::string* key_id);
  void Log(http::Exchange& exchange, const std::string& key_id, double seconds) const;

  Console* console_;
  http::BlockingPool* pool_;
  bool access_log_;
  UploadMemory* upload_memory_;
};

}  // namespace cairn::api::console
