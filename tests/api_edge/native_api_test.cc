// The native API's coroutine paths, driven through a FakeExchange on an io_context: no
// sockets, but the real SQLite metadata store, chunk store, object service and
// authenticator beneath. Objects above one 4 MiB chunk take the pipelined chunk storage.
#include <utility>  // Boost 1.74's awaitable.hpp needs it first.

#include "api/native/native_api.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "auth/api_key.h"
#include "core/hashing.h"
#include "fake_exchange.h"
#include "meta/file_tree.h"
#include "server/key_admin.h"
#include "test_store.h"

namespace cairn::api {
namespace {

using testing::FakeExchange;
using testing::MakeHead;
using testing::Pieces;
using testing::RandomBytes;

std::string Sha256Hex(std::string_view bytes) { return Sha256Of(bytes).ToHex(); }

constexpr uint64_t kMiB = 1024 * 1024;

class NativeApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    admin_key_ = store_.AddApiKey({"*"}, meta::Scope::kAdmin);
    reader_key_ = store_.AddApiKey({"t1"}, meta::Scope::kRead);
    authenticator_ = std::make_unique<auth::Authenticator>(store_.meta(), std::nullopt);
    DeclareRequestMetrics(&registry_);
    NativeApiDependencies deps;
    deps.objects = store_.objects();
    deps.authenticator = authenticator_.get();
    deps.metrics = &registry_;
    deps.pool = store_.pool();
    deps.rate_limiter = &rate_limiter_;
    deps.max_object_bytes = 64 * kMiB;
    deps.readiness = [] { return OkStatus(); };
    deps.extra_metrics = [] { return std::string(); };
    api_ = std::make_unique<NativeApi>(std::move(deps));
  }

  void Run(FakeExchange& exchange) {
    NativeApi* api = api_.get();
    testing::RunHandler([api](http::Exchange& e) { return api->Handle(e); }, exchange);
  }

  http::HeaderList Auth(const std::string& key, http::HeaderList more = {}) {
    more.emplace_back("Authorization", "Bearer " + key);
    return more;
  }

  http::HeaderList UploadHeaders(const std::string& key_name) {
    return Auth(admin_key_, {{"X-Namespace", "ns"}, {"X-Tenant", "t1"}, {"X-Key", key_name}});
  }

  // Uploads `data` in pieces of `piece` bytes; returns the exchange.
  std::unique_ptr<FakeExchange> Upload(const std::string& key_name, const std::string& data,
                                       size_t piece = 64 * 1024) {
    auto exchange = std::make_unique<FakeExchange>(
        MakeHead("POST", "/v1/objects", UploadHeaders(key_name)), Pieces(data, piece));
    Run(*exchange);
    return exchange;
  }

  static std::string IdOf(const std::string& json) {
    const std::string marker = "\"id\":\"";
    const size_t at = json.find(marker);
    if (at == std::string::npos) return "";
    const size_t end = json.find('"', at + marker.size());
    return json.substr(at + marker.size(), end - at - marker.size());
  }

  std::unique_ptr<FakeExchange> Get(const std::string& target, http::HeaderList extra = {},
                                    const std::string& method = "GET") {
    http::HeaderList headers = Auth(admin_key_, std::move(extra));
    headers.emplace_back("X-Tenant", "t1");
    auto exchange = std::make_unique<FakeExchange>(MakeHead(method, target, std::move(headers)));
    Run(*exchange);
    return exchange;
  }

  std::unique_ptr<FakeExchange> List() { return Get("/v1/objects?namespace=ns&tenant=t1"); }

  testing::TestStore store_;
  std::unique_ptr<auth::Authenticator> authenticator_;
  metrics::Registry registry_;
  RateLimiter rate_limiter_{0};
  std::unique_ptr<NativeApi> api_;
  std::string admin_key_;
  std::string reader_key_;
};

TEST_F(NativeApiTest, SmallUploadAndDownloadRoundTrip) {
  const std::string data = "hello, cairn";
  auto up = Upload("greeting", data);
  ASSERT_EQ(up->status, 201) << up->body;
  EXPECT_EQ(up->heads_sent, 1);
  EXPECT_EQ(up->request_body_bytes(), data.size());
  const std::string id = IdOf(up->body);
  ASSERT_FALSE(id.empty()) << up->body;

  auto down = Get("/v1/objects/" + id);
  EXPECT_EQ(down->status, 200);
  EXPECT_EQ(down->body, data);
  EXPECT_EQ(down->heads_sent, 1);
  ASSERT_NE(down->ResponseHeader("ETag"), nullptr);
  EXPECT_EQ(*down->ResponseHeader("ETag"), "\"" + Sha256Hex(data) + "\"");

  auto by_key = Get("/v1/objects/by-key/ns/t1/greeting");
  EXPECT_EQ(by_key->status, 200);
  EXPECT_EQ(by_key->body, data);
}

// 9 MiB and a bit: three chunks of the default 4 MiB, stored by the pipelined path, fed in
// odd-sized pieces that straddle the chunk boundaries.
TEST_F(NativeApiTest, MultiChunkObjectRoundTripsAndRangesCrossChunks) {
  const std::string data = RandomBytes(9 * kMiB + 123, 7);
  auto up = Upload("big", data, 1 * kMiB + 7);
  ASSERT_EQ(up->status, 201) << up->body;
  const std::string id = IdOf(up->body);

  auto down = Get("/v1/objects/" + id);
  ASSERT_EQ(down->status, 200);
  EXPECT_TRUE(down->used_begin_body);
  EXPECT_EQ(down->announced_length, data.size());
  EXPECT_GT(down->write_body_calls, 1);
  EXPECT_TRUE(down->body == data) << "the downloaded bytes differ";

  const uint64_t boundary = 4 * kMiB;
  auto range = Get("/v1/objects/" + id, {{"Range", "bytes=" + std::to_string(boundary - 10) + "-" +
                                                       std::to_string(boundary + 9)}});
  ASSERT_EQ(range->status, 206);
  EXPECT_EQ(range->body, data.substr(boundary - 10, 20));
  ASSERT_NE(range->ResponseHeader("Content-Range"), nullptr);
  EXPECT_EQ(*range->ResponseHeader("Content-Range"), "bytes " + std::to_string(boundary - 10) +
                                                         "-" + std::to_string(boundary + 9) + "/" +
                                                         std::to_string(data.size()));
}

TEST_F(NativeApiTest, RangeForms) {
  const std::string data = RandomBytes(100 * 1024, 3);
  const std::string id = IdOf(Upload("r", data)->body);
  ASSERT_FALSE(id.empty());

  auto suffix = Get("/v1/objects/" + id, {{"Range", "bytes=-10"}});
  EXPECT_EQ(suffix->status, 206);
  EXPECT_EQ(suffix->body, data.substr(data.size() - 10));

  auto open = Get("/v1/objects/" + id, {{"Range", "bytes=100000-"}});
  EXPECT_EQ(open->status, 206);
  EXPECT_EQ(open->body, data.substr(100000));

  auto clamped = Get("/v1/objects/" + id, {{"Range", "bytes=102390-99999999999999999999"}});
  EXPECT_EQ(clamped->status, 206);
  EXPECT_EQ(clamped->body, data.substr(102390));

  auto past = Get("/v1/objects/" + id, {{"Range", "bytes=200000-"}});
  EXPECT_EQ(past->status, 416);

  auto ignored = Get("/v1/objects/" + id, {{"Range", "bytes=1-2,5-6"}});
  EXPECT_EQ(ignored->status, 200);
  EXPECT_EQ(ignored->body.size(), data.size());
}

TEST_F(NativeApiTest, HeadAnnouncesTheLengthAndSendsNoBody) {
  const std::string data = RandomBytes(50 * 1024, 4);
  const std::string id = IdOf(Upload("h", data)->body);
  auto head = Get("/v1/objects/" + id, {}, "HEAD");
  EXPECT_EQ(head->status, 200);
  EXPECT_TRUE(head->body.empty());
  EXPECT_EQ(head->write_body_calls, 0);
  // 50 KiB is chunked (not inline): the streaming path, told it is a HEAD.
  EXPECT_TRUE(head->used_begin_body);
  EXPECT_TRUE(head->head_only);
  EXPECT_EQ(head->announced_length, data.size());
  ASSERT_NE(head->ResponseHeader("X-Content-SHA256"), nullptr);
  EXPECT_EQ(*head->ResponseHeader("X-Content-SHA256"), Sha256Hex(data));
}

TEST_F(NativeApiTest, IfNoneMatchGives304) {
  const std::string data = "cached";
  const std::string id = IdOf(Upload("c", data)->body);
  auto cached = Get("/v1/objects/" + id, {{"If-None-Match", "\"" + Sha256Hex(data) + "\""}});
  EXPECT_EQ(cached->status, 304);
  EXPECT_TRUE(cached->body.empty());
}

TEST_F(NativeApiTest, DeleteThenGetIs404) {
  const std::string id = IdOf(Upload("d", "doomed")->body);
  http::HeaderList headers = Auth(admin_key_, {{"X-Tenant", "t1"}});
  FakeExchange del(MakeHead("DELETE", "/v1/objects/" + id, headers));
  Run(del);
  EXPECT_EQ(del.status, 204);
  EXPECT_EQ(Get("/v1/objects/" + id)->status, 404);
  EXPECT_EQ(Get("/v1/objects/by-key/ns/t1/d")->status, 404);
}

TEST_F(NativeApiTest, ListShowsTheKeysInOrder) {
  ASSERT_EQ(Upload("b", "2")->status, 201);
  ASSERT_EQ(Upload("a", "1")->status, 201);
  auto list = List();
  ASSERT_EQ(list->status, 200);
  const size_t a = list->body.find("\"a\"");
  const size_t b = list->body.find("\"b\"");
  ASSERT_NE(a, std::string::npos) << list->body;
  ASSERT_NE(b, std::string::npos) << list->body;
  EXPECT_LT(a, b);
}

TEST_F(NativeApiTest, BadOrMissingCredentialsAre401AndStoreNothing) {
  http::HeaderList headers = {{"X-Namespace", "ns"}, {"X-Tenant", "t1"}, {"X-Key", "k"}};
  FakeExchange none(MakeHead("POST", "/v1/objects", headers), {"data"});
  Run(none);
  EXPECT_EQ(none.status, 401);

  FakeExchange bad(MakeHead("POST", "/v1/objects", Auth(admin_key_ + "x", headers)), {"data"});
  Run(bad);
  EXPECT_EQ(bad.status, 401);

  FakeExchange bad_get(MakeHead("GET", "/v1/objects?namespace=ns&tenant=t1",
                                {{"Authorization", "Bearer not-a-key"}}));
  Run(bad_get);
  EXPECT_EQ(bad_get.status, 401);
  EXPECT_EQ(List()->body.find("\"k\""), std::string::npos);
}

TEST_F(NativeApiTest, AReadOnlyKeyCannotUpload) {
  FakeExchange up(
      MakeHead("POST", "/v1/objects",
               Auth(reader_key_, {{"X-Namespace", "ns"}, {"X-Tenant", "t1"}, {"X-Key", "ro"}})),
      {"data"});
  Run(up);
  EXPECT_EQ(up.status, 403);
  EXPECT_EQ(Get("/v1/objects/by-key/ns/t1/ro")->status, 404);
}

// /health without credentials: liveness, and the storage layer beneath as it is now.
TEST_F(NativeApiTest, HealthReportsTheVolumeItsLiveMountsAndTheChunkStore) {
  auto health = [&]() {
    FakeExchange exchange(MakeHead("GET", "/health", {}));
    Run(exchange);
    EXPECT_EQ(exchange.status, 200);
    return exchange.body;
  };
  // Without a storage section (a server that wires none): the old answer.
  EXPECT_EQ(health(), "{\"status\":\"ok\"}\n");

  TimestampMs now = 1'000'000;
  Status chunk_store;
  NativeApiDependencies deps;
  deps.objects = store_.objects();
  deps.authenticator = authenticator_.get();
  deps.metrics = &registry_;
  deps.pool = store_.pool();
  deps.rate_limiter = &rate_limiter_;
  deps.readiness = [] { return OkStatus(); };
  deps.storage_health = [&] {
    StorageHealth out;
    auto volume = server::SummarizeVolume(store_.meta(), now, false);
    if (!volume.ok()) {
      out.metadata = volume.status();
    } else if (*volume) {
      out.volume = (*volume)->volume.name;
      out.mounts_alive = (*volume)->mounts_alive;
    }
    out.chunk_store = chunk_store;
    return out;
  };
  api_ = std::make_unique<NativeApi>(std::move(deps));
  EXPECT_EQ(health(),
            "{\"status\":\"ok\",\"storage\":{\"chunk_store\":{\"healthy\":true},"
            "\"metadata\":{\"healthy\":true},\"mounts_alive\":0,\"volume\":null}}\n");

  meta::FileTree* tree = store_.meta()->file_tree();
  ASSERT_NE(tree, nullptr);
  meta::VolumeRecord volume;
  volume.name = "vol";
  volume.uuid = "0b6a3c1e-2f4d-4e5a-9b8c-7d6e5f4a3b2c";
  meta::InodeRecord root;
  root.type = meta::FileType::kDirectory;
  root.mode = 0777;
  root.nlink = 2;
  ASSERT_TRUE(tree->FormatVolume(volume, root).ok());
  // Two mounts alive at `now`, one whose expiry passed.
  ASSERT_TRUE(tree->Write(
                      [&](meta::FileTreeTransaction& tx) -> Status {
                        for (uint64_t id : {1, 2, 3}) {
                          meta::SessionRecord session;
                          session.id = id;
                          session.host = "h";
                          session.mount_point = "/m" + std::to_string(id);
                          session.heartbeat_ms = now - 1000;
                          session.expires_ms = id == 3 ? now : now + 30'000;
                          RETURN_IF_ERROR(tx.PutSession(session));
                        }
                        return OkStatus();
                      },
                      now)
                  .ok());
  chunk_store = UnavailableError("storage root /nowhere is not writable");
  EXPECT_EQ(health(),
            "{\"status\":\"ok\",\"storage\":{\"chunk_store\":{\"error\":\"Unavailable: "
            "storage root /nowhere is not writable\",\"healthy\":false},\"metadata\":{"
            "\"healthy\":true},\"mounts_alive\":2,\"volume\":\"vol\"}}\n");
  // Later, every heartbeat is past.
  now += 60'000;
  chunk_store = OkStatus();
  EXPECT_NE(health().find("\"mounts_alive\":0,\"volume\":\"vol\""), std::string::npos);
}

TEST_F(NativeApiTest, UnknownObjectIs404) {
  EXPECT_EQ(Get("/v1/objects/by-key/ns/t1/never")->status, 404);
}

// A body that breaks after 6 MiB of a 10 MiB upload (one chunk stored, one in flight):
// the handler ends without committing, and nothing is visible.
TEST_F(NativeApiTest, ABodyReadErrorMidUploadLeavesNothingVisible) {
  const std::string data = RandomBytes(10 * kMiB, 9);
  FakeExchange up(MakeHead("POST", "/v1/objects", UploadHeaders("broken")), Pieces(data, kMiB));
  up.FailReadAfter(6, DataLossError("the client went away"));
  Run(up);
  EXPECT_NE(up.status, 201);
  EXPECT_EQ(Get("/v1/objects/by-key/ns/t1/broken")->status, 404);
  EXPECT_EQ(List()->body.find("broken"), std::string::npos);
  // The store still takes the same key afterwards.
  EXPECT_EQ(Upload("broken", "fine")->status, 201);
}

TEST_F(NativeApiTest, ADigestMismatchIs400AndStoresNothing) {
  http::HeaderList headers = UploadHeaders("sum");
  headers.emplace_back("X-Content-SHA256", Sha256Hex("something else"));
  const std::string data = RandomBytes(5 * kMiB, 5);
  FakeExchange up(MakeHead("POST", "/v1/objects", headers), Pieces(data, kMiB));
  Run(up);
  EXPECT_EQ(up.status, 400) << up.body;
  EXPECT_EQ(Get("/v1/objects/by-key/ns/t1/sum")->status, 404);

  http::HeaderList good = UploadHeaders("sum");
  good.emplace_back("X-Content-SHA256", Sha256Hex(data));
  FakeExchange ok(MakeHead("POST", "/v1/objects", good), Pieces(data, kMiB));
  Run(ok);
  EXPECT_EQ(ok.status, 201) << ok.body;
}

TEST_F(NativeApiTest, AContentLengthAboveTheLimitIs413AndReadsNothing) {
  http::HeaderList headers = UploadHeaders("huge");
  headers.emplace_back("Content-Length", std::to_string(65 * kMiB));
  FakeExchange up(MakeHead("POST", "/v1/objects", headers), {"x"});
  Run(up);
  EXPECT_EQ(up.status, 413);
  EXPECT_EQ(up.request_body_bytes(), 0u);
  EXPECT_EQ(Get("/v1/objects/by-key/ns/t1/huge")->status, 404);
}

// The client stops reading 5 MiB into a 9 MiB download: the handler stops writing at the
// first failed write and completes; the store serves the object whole afterwards.
TEST_F(NativeApiTest, AWriteErrorMidDownloadEndsTheHandler) {
  const std::string data = RandomBytes(9 * kMiB, 11);
  const std::string id = IdOf(Upload("w", data, kMiB)->body);
  ASSERT_FALSE(id.empty());
  http::HeaderList headers = Auth(admin_key_, {{"X-Tenant", "t1"}});
  FakeExchange down(MakeHead("GET", "/v1/objects/" + id, headers));
  down.FailWriteAfter(5 * kMiB, UnavailableError("connection reset"));
  Run(down);
  EXPECT_EQ(down.status, 200);
  EXPECT_EQ(down.failed_writes, 1) << "the handler kept writing after a failed write";
  EXPECT_LE(down.body.size(), 5 * kMiB);
  EXPECT_EQ(Get("/v1/objects/" + id)->body.size(), data.size());
}

// The body ends short of its Content-Length (the fake's ReadBody reports the end early, as
// a server that did not check would): the size check at commit refuses it.
TEST_F(NativeApiTest, ABodyShorterThanItsContentLengthIsRefused) {
  http::HeaderList headers = UploadHeaders("short");
  headers.emplace_back("Content-Length", "100000");
  FakeExchange up(MakeHead("POST", "/v1/objects", headers), {RandomBytes(50000, 12)});
  Run(up);
  EXPECT_GE(up.status, 400) << up.body;
  EXPECT_LT(up.status, 500) << up.body;
  EXPECT_EQ(Get("/v1/objects/by-key/ns/t1/short")->status, 404);
}

TEST_F(NativeApiTest, AChunkedUploadWithoutContentLengthIsStored) {
  http::HeaderList headers = UploadHeaders("chunked");
  headers.emplace_back("Transfer-Encoding", "chunked");
  const std::string data = RandomBytes(5 * kMiB + 1, 13);
  FakeExchange up(MakeHead("POST", "/v1/objects", headers), Pieces(data, 300 * 1024));
  ASSERT_FALSE(up.request().content_length.has_value());
  Run(up);
  ASSERT_EQ(up.status, 201) << up.body;
  auto down = Get("/v1/objects/by-key/ns/t1/chunked");
  EXPECT_EQ(down->status, 200);
  EXPECT_TRUE(down->body == data);
}

}  // namespace
}  // namespace cairn::api
