// The S3 front end: an Exchange becomes a typed S3Request (wire/), is authenticated with
// SigV4 (sigv4/), and calls the same use cases as the native API (objects/). A bucket is a
// namespace of the access key's tenant.
//
// Every blocking call runs on the BlockingPool. Request bodies stream through a bounded
// buffer; aws-chunked bodies are decoded and their signatures and trailing checksums
// checked before anything is committed. Thread-safety: Handle may run concurrently.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "api/common/rate_limiter.h"
#include "api/common/upload_memory.h"
#include "http/blocking_pool.h"
#include "http/exchange.h"
#include "meta/meta_store.h"
#include "metrics/registry.h"
#include "objects/multipart.h"
#include "objects/object_service.h"

namespace cairn::auth {
class SecretBox;
}  // namespace cairn::auth

namespace cairn::api {

struct S3ApiDependencies {
  objects::ObjectService* objects = nullptr;
  objects::MultipartService* multipart = nullptr;
  metrics::Registry* metrics = nullptr;
  http::BlockingPool* pool = nullptr;
  RateLimiter* rate_limiter = nullptr;
  // Memory budget of uploads in flight (null: none).
  UploadMemory* upload_memory = nullptr;
  // Largest object (a PUT body or a completed multipart upload); S3 EntityTooLarge beyond.
  uint64_t max_object_bytes = kDefaultMaxObjectBytes;
  // Base domains for virtual-hosted-style requests ("<bucket>.<base>").
  std::vector<std::string> virtual_host_bases = {"localhost"};
  std::string region = "us-east-1";
  // Opens the stored (sealed) S3 secrets; null: they are stored in plaintext (tests).
  const auth::SecretBox* secrets = nullptr;
  // One access log line per request (api/common/access_log.h).
  bool access_log = false;
};

class S3Api {
 public:
  explicit S3Api(S3ApiDependencies dependencies);
  ~S3Api();
  http::Awaitable<void> Handle(http::Exchange& exchange);

  struct State;

 private:
  std::unique_ptr<State> state_;
};

// S3 XML error document for failures the HTTP server detects itself.
std::pair<http::ResponseHead, std::string> RenderS3ServerError(int status, const std::string& code,
                                                               const std::string& message);

// S3 key material: a new access key id (20 upper-case alphanumerics) and secret (40).
struct GeneratedS3Key {
  std::string access_key;
  std::string secret;
};
GeneratedS3Key GenerateS3Key();

}  // namespace cairn::api
