// Native API v1 (see docs/api.md): routes an Exchange to one use case and renders JSON.
//
// Every blocking call (metadata, disk) runs on the BlockingPool; the coroutine only moves
// bytes between the socket and the pool. Thread-safety: Handle may run concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "api/common/rate_limiter.h"
#include "api/common/upload_memory.h"
#include "auth/authenticator.h"
#include "http/blocking_pool.h"
#include "http/exchange.h"
#include "metrics/registry.h"
#include "objects/object_service.h"

namespace cairn::api {

// The storage layer as GET /health reports it.
struct StorageHealth {
  std::optional<std::string> volume;  // the filesystem volume's name; nullopt: none
  uint64_t mounts_alive = 0;          // mounts of the volume whose heartbeat is current
  Status metadata;                    // reading the volume and its mounts
  Status chunk_store;                 // every storage root takes a new file
};

struct NativeApiDependencies {
  objects::ObjectService* objects = nullptr;
  auth::Authenticator* authenticator = nullptr;
  metrics::Registry* metrics = nullptr;
  http::BlockingPool* pool = nullptr;
  RateLimiter* rate_limiter = nullptr;
  // Memory budget of uploads in flight (null: none).
  UploadMemory* upload_memory = nullptr;
  // Largest object an upload may create (413 beyond).
  uint64_t max_object_bytes = kDefaultMaxObjectBytes;
  // OK when the metadata store and every storage root are usable (blocking).
  std::function<Status()> readiness;
  // The "storage" section of /health (blocking); null: /health has none.
  std::function<StorageHealth()> storage_health = nullptr;
  // Extra Prometheus text appended to /metrics (blocking; gauges from the store).
  std::function<std::string()> extra_metrics;
  // One access log line per request (api/common/access_log.h).
  bool access_log = false;
};

class NativeApi {
 public:
  explicit NativeApi(NativeApiDependencies dependencies);
  http::Awaitable<void> Handle(http::Exchange& exchange);

 private:
  NativeApiDependencies deps_;
};

// Declares the request metrics both APIs record.
void DeclareRequestMetrics(metrics::Registry* registry);
// JSON error body {"error":{"code","message"}} with its status, for the server's own errors.
std::pair<http::ResponseHead, std::string> RenderJsonError(int status, const std::string& code,
                                                           const std::string& message);

}  // namespace cairn::api
