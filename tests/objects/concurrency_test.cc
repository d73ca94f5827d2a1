// Many uploads at once: the SQLite engine commits them in shared transactions (group
// commit). A failing write must fail alone, and every acknowledged one must survive a
// reopen of the store.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "meta/engines/open_meta_store.h"
#include "objects/object_service.h"

namespace cairn::objects {
namespace {

TEST(GroupCommit, ConcurrentUploadsCommitIndependentlyAndDurably) {
  char pattern[] = "/tmp/cairn-group-XXXXXX";
  const std::string root = mkdtemp(pattern);
  const std::string url = "sqlite://" + root + "/meta.db";
  constexpr int kThreads = 16;
  constexpr int kPerThread = 40;
  std::atomic<int> committed{0}, rejected{0}, unexpected{0};
  {
    auto chunks = std::move(
        chunks::ChunkStore::Open(platform::DefaultFileSystem(), {root + "/hot", root + "/cold"})
            .value());
    auto meta = std::move(meta::OpenMetaStore(url).value());
    ObjectService service(meta.get(), chunks.get(), platform::SystemClock(), {});
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          UploadRequest request;
          request.tenant = "acme";
          request.namespace_name = "ns";
          request.key = "t" + std::to_string(t) + "/" + std::to_string(i);
          const std::string body = request.key + " body";
          // Every fifth upload declares a wrong hash and must be rejected on its own.
          const bool bad = i % 5 == 0;
          request.expected_sha256 = bad ? Sha256Of("wrong") : Sha256Of(body);
          auto upload = service.BeginUpload(request);
          if (!upload.ok() || !(*upload)->Write(body).ok()) {
            ++unexpected;
            continue;
          }
          auto result = (*upload)->Commit();
          if (result.ok() && !bad) {
            ++committed;
          } else if (!result.ok() && bad) {
            ++rejected;
          } else {
            ++unexpected;
          }
        }
      });
    }
    for (auto& thread : threads) thread.join();
  }
  EXPECT_EQ(unexpected.load(), 0);
  EXPECT_EQ(committed.load(), kThreads * kPerThread * 4 / 5);
  EXPECT_EQ(rejected.load(), kThreads * kPerThread / 5);

  // Reopen: every acknowledged object is there, none of the rejected ones.
  auto meta = std::move(meta::OpenMetaStore(url).value());
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      const std::string key = "t" + std::to_string(t) + "/" + std::to_string(i);
      auto object = meta->GetObjectByKey("acme", "ns", key);
      if (i % 5 == 0) {
        EXPECT_EQ(object.status().code(), StatusCode::kNotFound) << key;
      } else {
        ASSERT_TRUE(object.ok()) << key << ": " << object.status().ToString();
        EXPECT_EQ(object->inline_data.value_or(""), key + " body");
      }
    }
  }
  std::filesystem::remove_all(root);
}

// Writes that fail inside the engine (a unique constraint) share batches with writes that
// succeed: each key id is created by two threads at once, exactly one wins, and every win
// survives a reopen.
TEST(GroupCommit, FailingWritesInABatchRollBackAlone) {
  char pattern[] = "/tmp/cairn-group-XXXXXX";
  const std::string root = mkdtemp(pattern);
  const std::string url = "sqlite://" + root + "/meta.db";
  constexpr int kKeys = 300;
  std::atomic<int> created{0}, duplicates{0}, unexpected{0};
  {
    auto meta = std::move(meta::OpenMetaStore(url).value());
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        // Threads 2k and 2k+1 walk the same ids.
        for (int i = (t / 2) % 4; i < kKeys; i += 4) {
          meta::ApiKeyRecord key;
          char id[17];
          snprintf(id, sizeof(id), "%016x", i);
          key.key_id = id;
          key.tenants = {"acme"};
          key.created_at_ms = 1;
          Status status = meta->CreateApiKey(key);
          if (status.ok()) {
            ++created;
          } else if (status.code() == StatusCode::kAlreadyExists) {
            ++duplicates;
          } else {
            ++unexpected;
          }
        }
      });
    }
    for (auto& thread : threads) thread.join();
  }
  EXPECT_EQ(unexpected.load(), 0);
  EXPECT_EQ(created.load(), kKeys);
  EXPECT_EQ(duplicates.load(), kKeys);
  auto meta = std::move(meta::OpenMetaStore(url).value());
  auto keys = meta->ListApiKeys();
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->size(), static_cast<size_t>(kKeys));
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace cairn::objects
