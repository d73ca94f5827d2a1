// A bounded pool of threads for blocking work (disk I/O, fsync, database calls), so that
// the event loop threads never block. RunBlocking suspends the calling coroutine until
// the function has run on the pool and resumes it on its own executor.
#pragma once

#include <utility>  // Boost 1.74's awaitable.hpp needs it first.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>

namespace cairn::http {

class BlockingPool {
 public:
  // threads == 0 runs each function inline on the calling thread (for single-threaded
  // tests and fuzzing, see HttpServer::RunOneFor): the coroutine still awaits, but no
  // thread hand-off happens.
  explicit BlockingPool(size_t threads)
      : pool_(threads == 0 ? 1 : threads), inline_(threads == 0) {}
  ~BlockingPool() { pool_.join(); }
  void Stop() { pool_.join(); }

  // Runs f() on the pool and resumes the awaiting coroutine on its own executor with the
  // result; f must not throw. The work travels as a shared task, not as a by-value
  // argument of a coroutine or of async_initiate: GCC 12 with Boost 1.74 corrupts such
  // arguments when they own memory.
  template <typename F>
  boost::asio::awaitable<std::invoke_result_t<F>> Run(F f) {
    using R = std::invoke_result_t<F>;
    auto task = std::make_shared<Task<R>>();
    task->work = std::move(f);
    if (inline_) return RunInline<R>(std::move(task));
    return RunTask<R>(&pool_, std::move(task));
  }

  // Work started with Start and collected with Wait, so that a coroutine can go on (read
  // the next piece of a body, say) while the pool runs it.
  template <typename R>
  struct Job {
    explicit Job(const boost::asio::any_io_executor& executor)
        : wake(executor, boost::asio::steady_timer::time_point::max()) {}
    std::function<R()> work;
    std::optional<R> result;         // written on the pool before `done` is set
    bool done = false;               // read and written on the owner's executor only
    boost::asio::steady_timer wake;  // cancelled when done
  };

  // Runs f() on the pool now. `executor` is the calling coroutine's (its connection's event loop),
  // where the completion is recorded. The job must be collected with Wait before anything f uses is
  // released, unless f owns what it uses.
  template <typename F>
  std::shared_ptr<Job<std::invoke_result_t<F>>> Start(const boost::asio::any_io_executor& executor,
                                                      F f) {
    using R = std::invoke_result_t<F>;
    auto job = std::make_shared<Job<R>>(executor);
    job->work = std::move(f);
    if (inline_) {
      job->result.emplace(job->work());
      job->done = true;
      return job;
    }
    boost::asio::post(pool_, [job, executor]() {
      job->result.emplace(job->work());
      boost::asio::post(executor, [job]() {
        job->done = true;
        job->wake.cancel();
      });
    });
    return job;
  }

  // Resumes with the job's result once it has run; call on the executor given to Start.
  template <typename R>
  static boost::asio::awaitable<R> Wait(std::shared_ptr<Job<R>> job) {
    // Bounded: the timer never expires by itself, it only wakes us when the job is done.
    while (!job->done) {
      boost::system::error_code ignored;
      co_await job->wake.async_wait(
          boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
    }
    co_return std::move(*job->result);
  }

 private:
  template <typename R>
  struct Task {
    std::function<R()> work;
    std::optional<R> result;
  };

  template <typename R>
  static boost::asio::awaitable<R> RunTask(boost::asio::thread_pool* pool,
                                           std::shared_ptr<Task<R>> task) {
    Task<R>* raw = task.get();
    // coroutine-ok: the initiation lambda captures raw pointers only (nothing to destroy).
    co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void()>(
        [pool, raw](auto handler) {
          auto caller = boost::asio::get_associated_executor(handler);
          boost::asio::post(*pool, [handler = std::move(handler), raw, caller]() mutable {
            raw->result.emplace(raw->work());
            boost::asio::post(caller, std::move(handler));
          });
        },
        boost::asio::use_awaitable);
    co_return std::move(*raw->result);
  }

  template <typename R>
  static boost::asio::awaitable<R> RunInline(std::shared_ptr<Task<R>> task) {
    task->result.emplace(task->work());
    co_return std::move(*task->result);
  }

  boost::asio::thread_pool pool_;
  const bool inline_;
};

}  // namespace cairn::http
