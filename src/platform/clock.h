// The OS seam for time and randomness.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "core/types.h"

namespace cairn::platform {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimestampMs NowMs() = 0;
};

// Wall clock (CLOCK_REALTIME). Never null.
Clock* SystemClock();

// A settable clock for tests. Thread-safe.
class FakeClock : public Clock {
 public:
  explicit FakeClock(TimestampMs start_ms) : now_ms_(start_ms) {}
  TimestampMs NowMs() override { return now_ms_.load(); }
  void Advance(int64_t delta_ms) { now_ms_ += delta_ms; }
  void Set(TimestampMs ms) { now_ms_ = ms; }

 private:
  std::atomic<TimestampMs> now_ms_;
};

// Cryptographically strong random bytes (getrandom). Aborts if the kernel cannot supply
// them, since ids and secrets must never be predictable.
void FillRandom(void* buffer, size_t length);
ObjectId NewObjectId();

}  // namespace cairn::platform
