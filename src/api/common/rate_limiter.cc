#include "api/common/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace cairn::api {

int64_t RateLimiter::Acquire(const std::string& tenant, int64_t now_ms) {
  if (rate_ <= 0) return 0;
  const double burst = std::max(1.0, rate_ * 2);
  std::lock_guard<std::mutex> lock(mutex_);
  if (buckets_.size() >= kMaxTenants && buckets_.find(tenant) == buckets_.end()) {
    // Drop buckets that have refilled completely: forgetting them changes nothing.
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      double refilled = it->second.tokens + (now_ms - it->second.updated_ms) * rate_ / 1000.0;
      it = refilled >= burst ? buckets_.erase(it) : std::next(it);
    }
  }
  auto [it, inserted] = buckets_.try_emplace(tenant, Bucket{burst, now_ms});
  Bucket& bucket = it->second;
  if (!inserted) {
    bucket.tokens = std::min(burst, bucket.tokens + (now_ms - bucket.updated_ms) * rate_ / 1000.0);
    bucket.updated_ms = now_ms;
  }
  if (bucket.tokens >= 1.0) {
    bucket.tokens -= 1.0;
    return 0;
  }
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil((1.0 - bucket.tokens) / rate_)));
}

}  // namespace cairn::api
