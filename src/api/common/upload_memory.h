// A global budget for the memory that uploads in flight may buffer (--upload-memory).
//
// Each upload reserves what it can buffer at most (its two body pieces and the chunks the
// pipeline holds: see UploadPipeline) before it reads a byte of its body, and gives it back
// when it ends. Beyond the budget an upload waits, first come first served, and after
// `max_wait` is refused (the caller answers 503 SlowDown with Retry-After), so that a crowd
// of stalled or slow uploads costs bounded memory instead of a few MiB each.
//
// Thread-safe: uploads on every event loop share one budget. A waiter is woken on its own
// executor.
#pragma once

#include <utility>  // Boost 1.74's awaitable.hpp needs it first.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>

#include "core/status.h"
#include "http/exchange.h"

namespace cairn::api {

// The default object size limit: S3's largest object, 5 TiB.
inline constexpr uint64_t kDefaultMaxObjectBytes = uint64_t{5} << 40;

class UploadMemory {
 public:
  // budget_bytes 0 = no budget (every reservation succeeds at once).
  UploadMemory(uint64_t budget_bytes, std::chrono::milliseconds max_wait);
  UploadMemory(const UploadMemory&) = delete;
  UploadMemory& operator=(const UploadMemory&) = delete;

  // Memory held for one upload; returned to the budget when destroyed.
  class Reservation {
   public:
    Reservation() = default;
    Reservation(UploadMemory* owner, uint64_t bytes) : owner_(owner), bytes_(bytes) {}
    Reservation(Reservation&& other) noexcept { *this = std::move(other); }
    Reservation& operator=(Reservation&& other) noexcept;
    ~Reservation() { Release(); }
    uint64_t bytes() const { return bytes_; }
    void Release();

   private:
    UploadMemory* owner_ = nullptr;
    uint64_t bytes_ = 0;
  };

  // Reserves `bytes` (at most the whole budget), waiting up to max_wait. kUnavailable when
  // the wait ends without room.
  http::Awaitable<Result<std::shared_ptr<Reservation>>> Reserve(uint64_t bytes);

  uint64_t budget() const { return budget_; }
  uint64_t reserved() const;
  size_t waiting() const;

 private:
  struct Waiter {
    uint64_t bytes = 0;
    std::shared_ptr<boost::asio::steady_timer> timer;  // cancelled on its executor to wake it
    bool granted = false;                              // GUARDED_BY(mutex_)
  };
  void Return(uint64_t bytes);
  // Grants waiters in order while the head fits.
  void GrantLocked();

  const uint64_t budget_;
  const std::chrono::milliseconds max_wait_;
  mutable std::mutex mutex_;
  uint64_t reserved_ = 0;                      // GUARDED_BY(mutex_)
  std::deque<std::shared_ptr<Waiter>> queue_;  // GUARDED_BY(mutex_)
};

}  // namespace cairn::api
