#include "api/common/commit.h"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <optional>
#include <utility>

namespace cairn::api {
namespace {

struct CommitState {
  bool declined = false;  // the store did not take it: commit on the pool
  std::optional<Result<meta::CommitResult>> result;
};

}  // namespace

http::Awaitable<Result<meta::CommitResult>> CommitUpload(http::BlockingPool* pool,
                                                         std::shared_ptr<objects::Upload> upload) {
  // Shared state and raw pointers only cross into the initiation: GCC 12 with Boost 1.74
  // corrupts by-value arguments that own memory (see BlockingPool::Run).
  auto state = std::make_shared<CommitState>();
  CommitState* raw = state.get();
  objects::Upload* up = upload.get();
  auto initiation = [raw, up](auto handler) {
    using Handler = decltype(handler);
    auto caller = boost::asio::get_associated_executor(handler);
    using Executor = decltype(caller);
    // The handler (which owns the suspended coroutine) waits here; the work guard keeps
    // the event loop from running out of work, and so from returning, meanwhile.
    struct Parked {
      Handler handler;
      boost::asio::executor_work_guard<Executor> work;
    };
    auto parked =
        std::make_shared<Parked>(Parked{std::move(handler), boost::asio::make_work_guard(caller)});
    auto resume = [parked]() { std::move(parked->handler)(); };
    auto done = [raw, parked, resume](Result<meta::CommitResult> result) {
      raw->result.emplace(std::move(result));
      boost::asio::post(parked->work.get_executor(), resume);
    };
    if (!up->CommitAsync(std::move(done))) {
      raw->declined = true;
      boost::asio::post(caller, std::move(resume));
    }
  };
  co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void()>(
      std::move(initiation), boost::asio::use_awaitable);
  if (state->declined) {
    auto commit_work = [upload]() { return upload->Commit(); };
    co_return co_await pool->Run(std::move(commit_work));
  }
  co_return std::move(*state->result);
}

}  // namespace cairn::api
