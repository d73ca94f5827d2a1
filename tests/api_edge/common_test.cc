// The download, upload pipeline and range code both APIs share (src/api/common), run as
// coroutines on an io_context over a real store (tests/support/test_store.h), the
// responses going to a FakeExchange.
#include <utility>  // Boost 1.74's awaitable.hpp needs it first.

#include <gtest/gtest.h>

#include <boost/asio/this_coro.hpp>
#include <memory>
#include <optional>
#include <string>

#include "api/common/download.h"
#include "api/common/range.h"
#include "api/common/upload_pipeline.h"
#include "fake_exchange.h"
#include "test_store.h"

namespace cairn::api {
namespace {

using testing::FakeExchange;
using testing::MakeHead;
using testing::RandomBytes;
using testing::RunAwaitable;
using testing::TestStore;

constexpr uint64_t kMiB = 1024 * 1024;

std::optional<ByteRange> Range(std::string_view header, uint64_t size) {
  Result<std::optional<ByteRange>> parsed = ParseRange(header, size);
  EXPECT_TRUE(parsed.ok()) << header << ": " << parsed.status().ToString();
  return parsed.ok() ? *parsed : std::nullopt;
}

TEST(RangeTest, TheFormsOfOneRange) {
  ASSERT_TRUE(Range("bytes=0-0", 10).has_value());
  EXPECT_EQ(Range("bytes=0-0", 10)->first, 0u);
  EXPECT_EQ(Range("bytes=0-0", 10)->length(), 1u);
  EXPECT_EQ(Range("bytes=-3", 10)->first, 7u);
  EXPECT_EQ(Range("bytes=-3", 10)->last, 9u);
  EXPECT_EQ(Range("bytes=5-", 10)->first, 5u);
  EXPECT_EQ(Range("bytes=5-", 10)->last, 9u);
  EXPECT_EQ(Range("bytes=3-100", 10)->last, 9u);  // clamped to the end
  EXPECT_EQ(Range("bytes=-100", 10)->first, 0u);  // a suffix longer than the object
}

TEST(RangeTest, SyntaxTheServerIgnoresServesTheWholeObject) {
  EXPECT_FALSE(Range("", 10).has_value());
  EXPECT_FALSE(Range("items=0-1", 10).has_value());
  EXPECT_FALSE(Range("bytes=0-1,3-4", 10).has_value());
  EXPECT_FALSE(Range("bytes=x-1", 10).has_value());
}

TEST(RangeTest, ARangePastTheEndIsOutOfRange) {
  Result<std::optional<ByteRange>> past = ParseRange("bytes=10-", 10);
  ASSERT_FALSE(past.ok());
  EXPECT_EQ(past.status().code(), StatusCode::kOutOfRange);
}

TEST(SelectBodyTest, ARangeGives206AndItsContentRange) {
  http::RequestHead request = MakeHead("GET", "/", {{"Range", "bytes=2-5"}});
  http::HeaderList headers;
  Result<BodySelection> selection = SelectBody(request, 100, &headers);
  ASSERT_TRUE(selection.ok());
  EXPECT_EQ(selection->status, 206);
  EXPECT_EQ(selection->first, 2u);
  EXPECT_EQ(selection->length, 4u);
  ASSERT_EQ(headers.size(), 1u);
  EXPECT_EQ(headers[0].second, "bytes 2-5/100");

  http::HeaderList none;
  Result<BodySelection> whole = SelectBody(MakeHead("GET", "/"), 100, &none);
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(whole->status, 200);
  EXPECT_EQ(whole->length, 100u);
  EXPECT_TRUE(none.empty());
}

// Writes `data` through an UploadPipeline in pieces of `piece` bytes, then commits, or
// aborts after `abort_after` bytes.
http::Awaitable<Result<meta::CommitResult>> PipeUpload(http::BlockingPool* pool,
                                                       std::shared_ptr<objects::Upload> upload,
                                                       std::string data, size_t piece,
                                                       uint64_t abort_after) {
  auto executor = co_await boost::asio::this_coro::executor;
  UploadPipeline pipeline(pool, upload, executor);
  for (size_t at = 0; at < data.size(); at += piece) {
    if (at >= abort_after) {
      co_await pipeline.Abort();
      co_return Status(AbortedError("aborted by the test"));
    }
    std::shared_ptr<std::string> held = std::make_shared<std::string>(data.substr(at, piece));
    std::string_view bytes(*held);
    std::shared_ptr<const void> owner = held;
    Status written = co_await pipeline.Write(owner, bytes);
    if (!written.ok()) co_return written;
  }
  Result<meta::CommitResult> committed = co_await pipeline.Commit();
  co_return committed;
}

class CommonTest : public ::testing::Test {
 protected:
  std::shared_ptr<objects::Upload> Begin(const std::string& key) {
    objects::UploadRequest request;
    request.tenant = "t1";
    request.namespace_name = "ns";
    request.key = key;
    auto upload = store_.objects()->BeginUpload(std::move(request));
    EXPECT_TRUE(upload.ok()) << upload.status().ToString();
    return std::shared_ptr<objects::Upload>(std::move(upload).value());
  }

  Result<meta::CommitResult> Pipe(const std::string& key, const std::string& data, size_t piece,
                                  uint64_t abort_after = UINT64_MAX) {
    return RunAwaitable(PipeUpload(store_.pool(), Begin(key), data, piece, abort_after));
  }

  std::shared_ptr<objects::ObjectReader> Reader(const meta::ObjectRecord& object) {
    auto reader = store_.objects()->OpenReader(object);
    EXPECT_TRUE(reader.ok()) << reader.status().ToString();
    return std::shared_ptr<objects::ObjectReader>(std::move(reader).value());
  }

  // Runs SendObject for `object` onto `exchange`.
  Status Send(FakeExchange& exchange, const meta::ObjectRecord& object, BodySelection selection,
              bool head_only) {
    http::ResponseHead head;
    head.status = selection.status;
    return RunAwaitable(
        SendObject(exchange, store_.pool(), Reader(object), head, selection, head_only));
  }

  TestStore store_;
};

TEST_F(CommonTest, ThePipelineStoresAnObjectOfSeveralChunks) {
  const std::string data = RandomBytes(9 * kMiB + 5, 21);
  Result<meta::CommitResult> committed = Pipe("big", data, kMiB - 3);
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  EXPECT_EQ(committed->object.size_bytes, data.size());

  FakeExchange exchange(MakeHead("GET", "/"));
  ASSERT_TRUE(Send(exchange, committed->object, {200, 0, data.size()}, false).ok());
  EXPECT_EQ(exchange.status, 200);
  EXPECT_EQ(exchange.announced_length, data.size());
  EXPECT_TRUE(exchange.body == data) << "the object read back differs";
}

TEST_F(CommonTest, AnAbortedPipelineLeavesNothingVisible) {
  const std::string data = RandomBytes(10 * kMiB, 22);
  Result<meta::CommitResult> aborted = Pipe("gone", data, kMiB, 6 * kMiB);
  EXPECT_FALSE(aborted.ok());
  auto stat = store_.objects()->StatByKey("t1", "ns", "gone");
  EXPECT_FALSE(stat.ok());
  EXPECT_EQ(stat.status().code(), StatusCode::kNotFound);
}

TEST_F(CommonTest, SendObjectSendsTheSelectedRangeAcrossChunks) {
  const std::string data = RandomBytes(9 * kMiB, 23);
  Result<meta::CommitResult> committed = Pipe("r", data, kMiB);
  ASSERT_TRUE(committed.ok());
  FakeExchange exchange(MakeHead("GET", "/"));
  const uint64_t first = 4 * kMiB - 100;
  ASSERT_TRUE(Send(exchange, committed->object, {206, first, 4 * kMiB + 200}, false).ok());
  EXPECT_EQ(exchange.status, 206);
  EXPECT_EQ(exchange.announced_length, 4 * kMiB + 200);
  EXPECT_TRUE(exchange.body == data.substr(first, 4 * kMiB + 200));
}

TEST_F(CommonTest, SendObjectForHeadSendsNoBody) {
  const std::string data = RandomBytes(5 * kMiB, 24);
  Result<meta::CommitResult> committed = Pipe("h", data, kMiB);
  ASSERT_TRUE(committed.ok());
  FakeExchange exchange(MakeHead("HEAD", "/"));
  ASSERT_TRUE(Send(exchange, committed->object, {200, 0, data.size()}, true).ok());
  EXPECT_TRUE(exchange.used_begin_body);
  EXPECT_TRUE(exchange.head_only);
  EXPECT_EQ(exchange.announced_length, data.size());
  EXPECT_EQ(exchange.write_body_calls, 0);
  EXPECT_TRUE(exchange.body.empty());
}

// Once the head is out a failed write can only cut the body short: SendObject stops at
// the first failure and returns OK (the connection is closed by the server).
TEST_F(CommonTest, SendObjectStopsAtTheFirstFailedWrite) {
  const std::string data = RandomBytes(9 * kMiB, 25);
  Result<meta::CommitResult> committed = Pipe("w", data, kMiB);
  ASSERT_TRUE(committed.ok());
  FakeExchange exchange(MakeHead("GET", "/"));
  exchange.FailWriteAfter(3 * kMiB, UnavailableError("connection reset"));
  EXPECT_TRUE(Send(exchange, committed->object, {200, 0, data.size()}, false).ok());
  EXPECT_EQ(exchange.failed_writes, 1);
  EXPECT_LE(exchange.body.size(), 3 * kMiB);
  EXPECT_TRUE(exchange.body == data.substr(0, exchange.body.size()));
}

TEST_F(CommonTest, SmallObjectsGoOutInOneResponse) {
  Result<meta::CommitResult> committed = Pipe("s", "tiny", 1024);
  ASSERT_TRUE(committed.ok());
  FakeExchange exchange(MakeHead("GET", "/"));
  ASSERT_TRUE(Send(exchange, committed->object, {200, 0, 4}, false).ok());
  EXPECT_EQ(exchange.heads_sent, 1);
  EXPECT_EQ(exchange.body, "tiny");
  EXPECT_EQ(exchange.write_body_calls, 0);
}

}  // namespace
}  // namespace cairn::api
