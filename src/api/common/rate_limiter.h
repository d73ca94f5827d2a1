// Per-tenant request-rate limit: a token bucket per tenant refilled at `rate_per_second`
// with a burst of two seconds' worth. Over the limit, the caller answers 429 with the
// returned Retry-After. Thread-safe; the tenant table is bounded (idle buckets are
// dropped when it grows past its cap).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace cairn::api {

class RateLimiter {
 public:
  // rate_per_second <= 0 disables limiting.
  explicit RateLimiter(double rate_per_second) : rate_(rate_per_second) {}

  // Returns 0 if the request may proceed, otherwise the seconds to wait (>= 1).
  int64_t Acquire(const std::string& tenant, int64_t now_ms);

 private:
  struct Bucket {
    double tokens = 0;
    int64_t updated_ms = 0;
  };
  static constexpr size_t kMaxTenants = 100000;

  double rate_;
  std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;  // GUARDED_BY(mutex_)
};

}  // namespace cairn::api
