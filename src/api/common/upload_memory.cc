#include "api/common/upload_memory.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace cairn::api {

UploadMemory::UploadMemory(uint64_t budget_bytes, std::chrono::milliseconds max_wait)
    : budget_(budget_bytes), max_wait_(max_wait) {}

UploadMemory::Reservation& UploadMemory::Reservation::operator=(Reservation&& other) noexcept {
  if (this != &other) {
    Release();
    owner_ = std::exchange(other.owner_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void UploadMemory::Reservation::Release() {
  if (owner_ != nullptr) owner_->Return(bytes_);
  owner_ = nullptr;
  bytes_ = 0;
}

uint64_t UploadMemory::reserved() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return reserved_;
}

size_t UploadMemory::waiting() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size();
}

void UploadMemory::Return(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  reserved_ -= std::min(reserved_, bytes);
  GrantLocked();
}

void UploadMemory::GrantLocked() {
  while (!queue_.empty() && reserved_ + queue_.front()->bytes <= budget_) {
    std::shared_ptr<Waiter> waiter = std::move(queue_.front());
    queue_.pop_front();
    reserved_ += waiter->bytes;
    waiter->granted = true;
    // A timer may only be touched on its own executor (its waiter's event loop).
    std::shared_ptr<boost::asio::steady_timer> timer = waiter->timer;
    boost::asio::post(timer->get_executor(), [timer] { timer->cancel(); });
  }
}

// GCC 12 coroutine rules (see native_api.cc): no temporaries with destructors inside a
// co_await expression, named values only.
http::Awaitable<Result<std::shared_ptr<UploadMemory::Reservation>>> UploadMemory::Reserve(
    uint64_t bytes) {
  if (budget_ == 0) co_return std::make_shared<Reservation>();
  bytes = std::min(bytes, budget_);
  auto executor = co_await boost::asio::this_coro::executor;
  auto waiter = std::make_shared<Waiter>();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // Strictly in order: a large upload at the head is not overtaken for ever by small ones.
    if (queue_.empty() && reserved_ + bytes <= budget_) {
      reserved_ += bytes;
      co_return std::make_shared<Reservation>(this, bytes);
    }
    waiter->bytes = bytes;
    waiter->timer = std::make_shared<boost::asio::steady_timer>(executor, max_wait_);
    queue_.push_back(waiter);
  }
  boost::system::error_code ec;
  co_await waiter->timer->async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
  std::lock_guard<std::mutex> lock(mutex_);
  if (waiter->granted) co_return std::make_shared<Reservation>(this, bytes);
  std::erase(queue_, waiter);
  GrantLocked();  // a head that gave up may have been blocking smaller ones behind it
  co_return UnavailableError("uploads in flight hold the whole upload memory budget (" +
                             std::to_string(budget_) + " bytes); retry shortly");
}

}  // namespace cairn::api
