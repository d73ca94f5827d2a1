// UploadMemory: the budget of uploads in flight. Reservations within the budget are
// granted at once, later ones wait in order and are granted when memory comes back, and a
// wait that outlasts max_wait ends in kUnavailable.
#include <utility>  // Boost 1.74's awaitable.hpp needs it first.

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <optional>
#include <vector>

#include "api/common/upload_memory.h"
#include "http/exchange.h"

namespace cairn {
namespace {

using api::UploadMemory;
using Reserved = Result<std::shared_ptr<UploadMemory::Reservation>>;

// Reserves `bytes` and records the outcome and the order in which outcomes arrived.
http::Awaitable<void> ReserveInto(UploadMemory* memory, uint64_t bytes,
                                  std::optional<Reserved>* out, std::vector<int>* order, int id) {
  Reserved reserved = co_await memory->Reserve(bytes);
  *out = std::move(reserved);
  order->push_back(id);
}

http::Awaitable<void> ReleaseAfter(boost::asio::io_context* loop, std::chrono::milliseconds delay,
                                   std::optional<Reserved>* held) {
  boost::asio::steady_timer timer(*loop, delay);
  co_await timer.async_wait(boost::asio::use_awaitable);
  held->reset();
}

TEST(UploadMemory, GrantsWithinTheBudgetAndCountsWhatIsHeld) {
  boost::asio::io_context loop;
  UploadMemory memory(100, std::chrono::milliseconds(50));
  std::optional<Reserved> a, b;
  std::vector<int> order;
  boost::asio::co_spawn(loop, ReserveInto(&memory, 60, &a, &order, 1), boost::asio::detached);
  boost::asio::co_spawn(loop, ReserveInto(&memory, 40, &b, &order, 2), boost::asio::detached);
  loop.run();
  ASSERT_TRUE(a && a->ok() && b && b->ok());
  EXPECT_EQ(memory.reserved(), 100u);
  a.reset();
  EXPECT_EQ(memory.reserved(), 40u);
  b.reset();
  EXPECT_EQ(memory.reserved(), 0u);
}

TEST(UploadMemory, AWaiterIsGrantedWhenMemoryComesBack) {
  boost::asio::io_context loop;
  UploadMemory memory(100, std::chrono::seconds(10));
  std::optional<Reserved> first, second;
  std::vector<int> order;
  boost::asio::co_spawn(loop, ReserveInto(&memory, 80, &first, &order, 1), boost::asio::detached);
  boost::asio::co_spawn(loop, ReserveInto(&memory, 80, &second, &order, 2), boost::asio::detached);
  boost::asio::co_spawn(loop, ReleaseAfter(&loop, std::chrono::milliseconds(20), &first),
                        boost::asio::detached);
  const auto started = std::chrono::steady_clock::now();
  loop.run();
  ASSERT_TRUE(second && second->ok()) << second->status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  EXPECT_EQ(memory.reserved(), 80u);
  EXPECT_EQ(memory.waiting(), 0u);
}

TEST(UploadMemory, AWaitThatOutlastsMaxWaitIsUnavailable) {
  boost::asio::io_context loop;
  UploadMemory memory(100, std::chrono::milliseconds(30));
  std::optional<Reserved> held, refused;
  std::vector<int> order;
  boost::asio::co_spawn(loop, ReserveInto(&memory, 100, &held, &order, 1), boost::asio::detached);
  boost::asio::co_spawn(loop, ReserveInto(&memory, 1, &refused, &order, 2), boost::asio::detached);
  loop.run();
  ASSERT_TRUE(refused.has_value());
  ASSERT_FALSE(refused->ok());
  EXPECT_EQ(refused->status().code(), StatusCode::kUnavailable);
  EXPECT_NE(refused->status().message().find("budget"), std::string::npos);
  EXPECT_EQ(memory.waiting(), 0u);
  EXPECT_EQ(memory.reserved(), 100u);
}

TEST(UploadMemory, WaitersAreServedInOrderAndALargeOneIsNotOvertaken) {
  boost::asio::io_context loop;
  UploadMemory memory(100, std::chrono::seconds(10));
  std::optional<Reserved> held, large, small;
  std::vector<int> order;
  boost::asio::co_spawn(loop, ReserveInto(&memory, 50, &held, &order, 0), boost::asio::detached);
  // 60 does not fit beside 50; 10 would, but must queue behind the 60.
  boost::asio::co_spawn(loop, ReserveInto(&memory, 60, &large, &order, 1), boost::asio::detached);
  boost::asio::co_spawn(loop, ReserveInto(&memory, 10, &small, &order, 2), boost::asio::detached);
  boost::asio::co_spawn(loop, ReleaseAfter(&loop, std::chrono::milliseconds(20), &held),
                        boost::asio::detached);
  loop.run();
  ASSERT_TRUE(large && large->ok() && small && small->ok());
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(memory.reserved(), 70u);
}

TEST(UploadMemory, AReservationLargerThanTheBudgetTakesTheWholeBudget) {
  boost::asio::io_context loop;
  UploadMemory memory(100, std::chrono::milliseconds(30));
  std::optional<Reserved> huge;
  std::vector<int> order;
  boost::asio::co_spawn(loop, ReserveInto(&memory, 1000, &huge, &order, 1), boost::asio::detached);
  loop.run();
  ASSERT_TRUE(huge && huge->ok());
  EXPECT_EQ(huge->value()->bytes(), 100u);
}

TEST(UploadMemory, NoBudgetMeansNoLimit) {
  boost::asio::io_context loop;
  UploadMemory memory(0, std::chrono::milliseconds(30));
  std::optional<Reserved> a;
  std::vector<int> order;
  boost::asio::co_spawn(loop, ReserveInto(&memory, uint64_t{1} << 40, &a, &order, 1),
                        boost::asio::detached);
  loop.run();
  ASSERT_TRUE(a && a->ok());
  EXPECT_EQ(memory.reserved(), 0u);
}

TEST(SafeHeaderValue, RefusesControlCharactersButHtab) {
  EXPECT_TRUE(http::IsSafeHeaderValue("attachment; filename=\"a b.txt\"\tx"));
  EXPECT_TRUE(http::IsSafeHeaderValue("caf\xc3\xa9"));  // obs-text is allowed
  EXPECT_TRUE(http::IsSafeHeaderValue(""));
  for (std::string bad :
       {std::string("a\r\nSet-Cookie: x=1"), std::string("a\nb"), std::string("a\rb"),
        std::string("a\0b", 3), std::string("\x7f"), std::string("\x1b[31m")}) {
    EXPECT_FALSE(http::IsSafeHeaderValue(bad)) << bad;
  }
}

}  // namespace
}  // namespace cairn
