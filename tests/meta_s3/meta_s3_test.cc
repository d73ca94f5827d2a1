// The metadata methods the S3 front end needs (namespaces, S3 keys, composition, metadata
// updates), run against every engine that implements them: memory, SQLite and, when
// CAIRN_TEST_POSTGRES_URL names a server (scripts/postgres-test-server.sh starts one),
// PostgreSQL, on a fresh database per test. Without the variable the PostgreSQL instances
// are skipped, visibly.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "meta/engines/open_meta_store.h"
#include "meta/meta_store.h"
#include "meta/postgres/postgres_meta_store.h"
#include "postgres_test_database.h"

namespace cairn::meta {
namespace {

ObjectId Id(int n) {
  std::array<uint8_t, 16> bytes{};
  bytes[15] = static_cast<uint8_t>(n);
  bytes[14] = static_cast<uint8_t>(n >> 8);
  return ObjectId::FromRandomBytes(bytes);
}

ChunkRef Chunk(int n) {
  ChunkRef ref;
  ref.digest.bytes[0] = static_cast<uint8_t>(n);
  ref.size_bytes = 100 * n;
  return ref;
}

ObjectRecord Object(int id, std::string ns, std::string key) {
  ObjectRecord r;
  r.id = Id(id);
  r.tenant = "acme";
  r.namespace_name = std::move(ns);
  r.key = std::move(key);
  r.created_at_ms = 1000 + id;
  r.updated_at_ms = 1000 + id;
  return r;
}

class MetaS3Test : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string url = "memory:";
    if (GetParam() == "sqlite") {
      char pattern[] = "/tmp/cairn-meta-s3-XXXXXX";
      dir_ = mkdtemp(pattern);
      url = "sqlite://" + dir_ + "/meta.db";
    } else if (GetParam() == "postgres") {
      SKIP_WITHOUT_POSTGRES();
      postgres_ = std::make_unique<pgtest::PostgresDatabase>();
      url = postgres_->url();
    }
    store_ = std::move(OpenMetaStore(url).value());
  }
  void TearDown() override {
    store_.reset();  // before the database is dropped
    postgres_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  int64_t RefCount(const ChunkRef& chunk) {
    auto rows = store_->ListChunks();
    for (const auto& row : *rows) {
      if (row.digest == chunk.digest) return row.ref_count;
    }
    return -1;
  }

  std::string dir_;
  std::unique_ptr<pgtest::PostgresDatabase> postgres_;
  std::unique_ptr<MetaStore> store_;
};

TEST_P(MetaS3Test, NamespacesAreExplicitOrImpliedByObjects) {
  EXPECT_TRUE(store_->ListNamespaces("acme")->empty());
  ASSERT_TRUE(store_->CreateNamespace({"acme", "empty", 5}).ok());
  EXPECT_EQ(store_->CreateNamespace({"acme", "empty", 6}).code(), StatusCode::kAlreadyExists);
  ASSERT_TRUE(store_->PutCommitted(Object(1, "implied", "k"), {Chunk(1)}, 10).ok());
  // Explicit names are global: another tenant cannot take "empty", and has its own.
  EXPECT_EQ(store_->CreateNamespace({"other", "empty", 7}).code(), StatusCode::kPermissionDenied);
  ASSERT_TRUE(store_->CreateNamespace({"other", "its-own", 7}).ok());

  auto names = store_->ListNamespaces("acme");
  ASSERT_TRUE(names.ok());
  ASSERT_EQ(names->size(), 2u);
  EXPECT_EQ((*names)[0], (NamespaceRecord{"acme", "empty", 5}));
  EXPECT_EQ((*names)[1], (NamespaceRecord{"acme", "implied", 1001}));
  EXPECT_TRUE(store_->GetNamespace("acme", "implied").ok());
  EXPECT_EQ(store_->GetNamespace("acme", "nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetNamespace("other", "implied").status().code(), StatusCode::kNotFound);

  // Not empty -> refused; an implied namespace vanishes with its last object.
  ASSERT_TRUE(store_->CreateNamespace({"acme", "implied", 20}).ok());
  EXPECT_EQ(store_->DeleteNamespace("acme", "implied").code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store_->DeleteObject("acme", Id(1), 30).ok());
  EXPECT_TRUE(store_->DeleteNamespace("acme", "implied").ok());
  EXPECT_TRUE(store_->DeleteNamespace("acme", "empty").ok());
  EXPECT_EQ(store_->DeleteNamespace("acme", "empty").code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->ListNamespaces("acme")->empty());
  EXPECT_EQ(store_->ListNamespaces("other")->size(), 1u);
}

TEST_P(MetaS3Test, ComposeLinksChunksAndRetiresPartsAtomically) {
  ASSERT_TRUE(store_->PutCommitted(Object(1, ".parts", "u/1"), {Chunk(1), Chunk(2)}, 10).ok());
  ASSERT_TRUE(store_->PutCommitted(Object(2, ".parts", "u/2"), {Chunk(3)}, 10).ok());
  ASSERT_TRUE(store_->PutCommitted(Object(3, ".uploads", "b/u"), {}, 10).ok());

  // One missing object: nothing changes.
  auto failed = store_->PutCommittedAndDelete(
      Object(9, "bucket", "big"), {Chunk(1), Chunk(2), Chunk(3)}, {Id(1), Id(2), Id(77)}, 20);
  EXPECT_EQ(failed.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetObjectByKey("acme", "bucket", "big").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->GetObject("acme", Id(1)).ok());
  EXPECT_EQ(RefCount(Chunk(1)), 1);

  auto done = store_->PutCommittedAndDelete(
      Object(9, "bucket", "big"), {Chunk(1), Chunk(2), Chunk(3)}, {Id(1), Id(2), Id(3)}, 20);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(store_->GetObject("acme", Id(1)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetObject("acme", Id(3)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*store_->GetChunks(Id(9)), (std::vector<ChunkRef>{Chunk(1), Chunk(2), Chunk(3)}));
  // The parts' references moved to the object: counts are unchanged, fsck agrees.
  EXPECT_EQ(RefCount(Chunk(1)), 1);
  EXPECT_EQ(RefCount(Chunk(3)), 1);
  auto references = store_->CheckReferences();
  ASSERT_TRUE(references.ok());
  for (const auto& row : *references) {
    EXPECT_EQ(row.recorded_ref_count, row.actual_ref_count);
  }
}

TEST_P(MetaS3Test, UserMetadataCanBeReplacedOnCommittedObjectsOnly) {
  ObjectRecord object = Object(1, "ns", "k");
  object.user_metadata = {{"color", "blue"}};
  ASSERT_TRUE(store_->PutCommitted(object, {}, 10).ok());
  auto updated = store_->UpdateUserMetadata("acme", Id(1), {{"\x01tag:team", "ml"}}, 20);
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(updated->user_metadata.at("\x01tag:team"), "ml");
  EXPECT_EQ(store_->GetObject("acme", Id(1))->user_metadata.size(), 1u);
  EXPECT_EQ(store_->UpdateUserMetadata("evil", Id(1), {}, 30).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store_->UpdateUserMetadata("acme", Id(2), {}, 30).status().code(),
            StatusCode::kNotFound);
}

TEST_P(MetaS3Test, S3KeysRoundTripAndRevoke) {
  S3KeyRecord key{
      "AKIAEXAMPLE000000001", "secret/with+chars", {"acme"}, Scope::kWrite, 5, false, "ci"};
  ASSERT_TRUE(store_->CreateS3Key(key).ok());
  EXPECT_EQ(store_->CreateS3Key(key).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(*store_->GetS3Key(key.access_key), key);
  EXPECT_EQ(store_->GetS3Key("AKIANOPE").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->RevokeS3Key(key.access_key).ok());
  EXPECT_TRUE(store_->GetS3Key(key.access_key)->revoked);
  EXPECT_EQ(store_->ListS3Keys()->size(), 1u);
  EXPECT_EQ(store_->RevokeS3Key("AKIANOPE").code(), StatusCode::kNotFound);
}

TEST_P(MetaS3Test, S3SecretsAreReplacedAllOrNothing) {
  S3KeyRecord a{"AKIAEXAMPLE000000001", "plain-a", {"acme"}, Scope::kWrite, 5, false, ""};
  S3KeyRecord b{"AKIAEXAMPLE000000002", "plain-b", {"acme"}, Scope::kRead, 6, false, ""};
  ASSERT_TRUE(store_->CreateS3Key(a).ok());
  ASSERT_TRUE(store_->CreateS3Key(b).ok());
  ASSERT_TRUE(store_->ReplaceS3Secrets({}).ok());
  // The second change names a stale secret: neither is applied.
  Status stale = store_->ReplaceS3Secrets(
      {{a.access_key, "plain-a", "enc1:a"}, {b.access_key, "not-plain-b", "enc1:b"}});
  EXPECT_EQ(stale.code(), StatusCode::kAborted) << stale.ToString();
  EXPECT_NE(stale.message().find(b.access_key), std::string::npos) << stale.ToString();
  EXPECT_EQ(store_->GetS3Key(a.access_key)->secret, "plain-a");
  EXPECT_EQ(store_->ReplaceS3Secrets({{"AKIANOPE", "x", "y"}}).code(), StatusCode::kAborted);
  ASSERT_TRUE(store_
                  ->ReplaceS3Secrets(
                      {{a.access_key, "plain-a", "enc1:a"}, {b.access_key, "plain-b", "enc1:b"}})
                  .ok());
  S3KeyRecord read = *store_->GetS3Key(b.access_key);
  EXPECT_EQ(read.secret, "enc1:b");
  b.secret = "enc1:b";
  EXPECT_EQ(read, b);  // nothing else changed
  EXPECT_EQ(store_->GetS3Key(a.access_key)->secret, "enc1:a");
}

TEST_P(MetaS3Test, NamespacesAreListedInByteOrderAndExplicitRowsWin) {
  // Byte order, whatever the database's collation: 'B' < '_' < 'a' < 'é' (0xc3 0xa9).
  ASSERT_TRUE(store_->CreateNamespace({"acme", "a", 1}).ok());
  ASSERT_TRUE(store_->PutCommitted(Object(1, "\xc3\xa9", "k"), {}, 10).ok());
  ASSERT_TRUE(store_->PutCommitted(Object(2, "B", "k"), {}, 10).ok());
  ASSERT_TRUE(store_->PutCommitted(Object(3, "_", "k1"), {}, 10).ok());
  ASSERT_TRUE(store_->PutCommitted(Object(4, "_", "k2"), {}, 10).ok());
  ASSERT_TRUE(store_->PutCommitted(Object(5, "a", "k"), {}, 10).ok());
  // A namespace holding only DELETING objects does not exist.
  ASSERT_TRUE(store_->PutCommitted(Object(6, "gone", "k"), {}, 10).ok());
  ASSERT_TRUE(store_->DeleteObject("acme", Id(6), 20).ok());

  auto names = store_->ListNamespaces("acme");
  ASSERT_TRUE(names.ok()) << names.status().ToString();
  EXPECT_EQ(*names, (std::vector<NamespaceRecord>{{"acme", "B", 1002},
                                                  {"acme", "_", 1003},  // the oldest object
                                                  {"acme", "a", 1},     // the explicit row
                                                  {"acme", "\xc3\xa9", 1001}}));
  EXPECT_EQ(store_->GetNamespace("acme", "a")->created_at_ms, 1);
  EXPECT_EQ(store_->GetNamespace("acme", "gone").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->DeleteNamespace("acme", "gone").code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->DeleteNamespace("acme", "B").code(), StatusCode::kFailedPrecondition);
}

TEST_P(MetaS3Test, ComposeChangesNothingWhenAPartIsForeignOrTheIdTaken) {
  ASSERT_TRUE(store_->PutCommitted(Object(1, ".parts", "u/1"), {Chunk(1)}, 10).ok());
  ObjectRecord foreign = Object(2, ".parts", "u/2");
  foreign.tenant = "other";
  ASSERT_TRUE(store_->PutCommitted(foreign, {Chunk(2)}, 10).ok());
  ASSERT_TRUE(store_->PutCommitted(Object(3, "bucket", "big"), {Chunk(3)}, 10).ok());

  // Another tenant's object is indistinguishable from a missing one.
  auto failed =
      store_->PutCommittedAndDelete(Object(9, "bucket", "big"), {Chunk(1)}, {Id(1), Id(2)}, 20);
  EXPECT_EQ(failed.status().code(), StatusCode::kNotFound);
  // The id is taken (by the object at the key itself).
  failed = store_->PutCommittedAndDelete(Object(3, "bucket", "big"), {Chunk(1)}, {Id(1)}, 20);
  EXPECT_EQ(failed.status().code(), StatusCode::kAlreadyExists);

  EXPECT_TRUE(store_->GetObject("acme", Id(1)).ok());
  EXPECT_TRUE(store_->GetObject("other", Id(2)).ok());
  EXPECT_EQ(store_->GetObjectByKey("acme", "bucket", "big")->id, Id(3));
  EXPECT_EQ(RefCount(Chunk(1)), 1);
  EXPECT_EQ(RefCount(Chunk(3)), 1);

  // The composed object replaces the one at its key, like PutCommitted.
  auto done = store_->PutCommittedAndDelete(Object(9, "bucket", "big"), {Chunk(1)}, {Id(1)}, 30);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->replaced_object, Id(3));
  EXPECT_EQ(done->object.state, ObjectState::kCommitted);
  EXPECT_EQ(done->object.updated_at_ms, 30);
  EXPECT_EQ(RefCount(Chunk(1)), 1);
  EXPECT_EQ(RefCount(Chunk(3)), 0);
}

INSTANTIATE_TEST_SUITE_P(Engines, MetaS3Test, ::testing::Values("memory", "sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

// ---- PostgreSQL only: several nodes on one database -------------------------------------

class MetaS3PostgresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIP_WITHOUT_POSTGRES();
    database_ = std::make_unique<pgtest::PostgresDatabase>();
  }
  void TearDown() override { database_.reset(); }  // stores are closed by then

  // A store as one cairn node opens it.
  std::unique_ptr<MetaStore> Node() {
    auto store = OpenPostgresMetaStore(database_->url());
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  // Runs `a` and `b` on two threads released together.
  template <typename A, typename B>
  static void Race(A&& a, B&& b) {
    std::atomic<int> ready{0};
    auto start = [&] {
      ready.fetch_add(1);
      while (ready.load() < 2) std::this_thread::yield();
    };
    std::thread first([&] {
      start();
      a();
    });
    std::thread second([&] {
      start();
      b();
    });
    first.join();
    second.join();
  }

  static void ExpectCountsAgree(MetaStore& store) {
    auto references = store.CheckReferences();
    ASSERT_TRUE(references.ok()) << references.status().ToString();
    for (const auto& row : *references) {
      EXPECT_EQ(row.recorded_ref_count, row.actual_ref_count);
    }
  }

  std::unique_ptr<pgtest::PostgresDatabase> database_;
};

// Two nodes complete the same multipart upload at once (a client retrying on another
// node): exactly one composition wins, the other finds the parts gone.
TEST_F(MetaS3PostgresTest, ConcurrentCompositionsOfOneUploadExactlyOneSucceeds) {
  std::unique_ptr<MetaStore> a = Node(), b = Node();
  ASSERT_TRUE(a && b);
  for (int round = 0; round < 20; ++round) {
    const int base = 100 * (round + 1);
    const std::string upload = "u" + std::to_string(round);
    ASSERT_TRUE(
        a->PutCommitted(Object(base + 1, ".parts", upload + "/1"), {Chunk(1), Chunk(2)}, 10).ok());
    ASSERT_TRUE(a->PutCommitted(Object(base + 2, ".parts", upload + "/2"), {Chunk(3)}, 10).ok());
    const std::vector<ChunkRef> chunks = {Chunk(1), Chunk(2), Chunk(3)};
    const std::vector<ObjectId> parts = {Id(base + 1), Id(base + 2)};
    Result<CommitResult> first = InternalError("not run"), second = InternalError("not run");
    Race([&] { first = a->PutCommittedAndDelete(Object(base + 3, "b", "big"), chunks, parts, 20); },
         [&] {
           second = b->PutCommittedAndDelete(Object(base + 4, "b", "big"), chunks, parts, 20);
         });
    ASSERT_NE(first.ok(), second.ok()) << "round " << round << ": " << first.status().ToString()
                                       << " / " << second.status().ToString();
    const Result<CommitResult>& loser = first.ok() ? second : first;
    EXPECT_EQ(loser.status().code(), StatusCode::kNotFound) << loser.status().ToString();
    const ObjectId winner = first.ok() ? Id(base + 3) : Id(base + 4);
    EXPECT_EQ(a->GetObjectByKey("acme", "b", "big")->id, winner);
    EXPECT_EQ(b->GetObject("acme", first.ok() ? Id(base + 4) : Id(base + 3)).status().code(),
              StatusCode::kNotFound);
    EXPECT_EQ(*b->GetChunks(winner), chunks);
  }
  ExpectCountsAgree(*a);
  // Only the last winner is COMMITTED: each one replaced the previous one at the key.
  auto counts = a->CountObjects();
  ASSERT_TRUE(counts.ok());
  uint64_t committed = 0;
  for (const auto& row : *counts) {
    if (row.state == ObjectState::kCommitted) committed += row.objects;
  }
  EXPECT_EQ(committed, 1u);
}

// A composition racing a delete of one of its parts: exactly one of them happens.
TEST_F(MetaS3PostgresTest, CompositionRacingAPartDeleteExactlyOneSucceeds) {
  std::unique_ptr<MetaStore> a = Node(), b = Node();
  ASSERT_TRUE(a && b);
  for (int round = 0; round < 20; ++round) {
    const int base = 100 * (round + 1);
    const std::string key = "big" + std::to_string(round);
    ASSERT_TRUE(a->PutCommitted(Object(base + 1, ".parts", key + "/1"), {Chunk(1)}, 10).ok());
    ASSERT_TRUE(a->PutCommitted(Object(base + 2, ".parts", key + "/2"), {Chunk(2)}, 10).ok());
    Result<CommitResult> composed = InternalError("not run");
    Result<ObjectRecord> deleted = InternalError("not run");
    Race(
        [&] {
          composed = a->PutCommittedAndDelete(Object(base + 3, "b", key), {Chunk(1), Chunk(2)},
                                              {Id(base + 1), Id(base + 2)}, 20);
        },
        [&] { deleted = b->DeleteObject("acme", Id(base + 2), 20); });
    ASSERT_NE(composed.ok(), deleted.ok())
        << "round " << round << ": " << composed.status().ToString() << " / "
        << deleted.status().ToString();
    EXPECT_EQ((composed.ok() ? deleted.status() : composed.status()).code(), StatusCode::kNotFound);
    // A failed composition changed nothing: the other part is still there.
    EXPECT_EQ(a->GetObject("acme", Id(base + 1)).ok(), !composed.ok());
    EXPECT_EQ(a->GetObjectByKey("acme", "b", key).ok(), composed.ok());
  }
  ExpectCountsAgree(*a);
}

TEST_F(MetaS3PostgresTest, ConcurrentCreationsOfOneNamespaceOrKeyExactlyOneSucceeds) {
  std::unique_ptr<MetaStore> a = Node(), b = Node();
  ASSERT_TRUE(a && b);
  for (int round = 0; round < 10; ++round) {
    const std::string name = "bucket" + std::to_string(round);
    Status first, second;
    Race(
        [&] {
          first = a->CreateNamespace({"acme", name, 1});
        },
        [&] {
          second = b->CreateNamespace({"acme", name, 2});
        });
    ASSERT_NE(first.ok(), second.ok()) << first.ToString() << " / " << second.ToString();
    EXPECT_EQ((first.ok() ? second : first).code(), StatusCode::kAlreadyExists);

    S3KeyRecord key{"AKIARACE" + std::to_string(100000000000 + round),
                    "s",
                    {"acme"},
                    Scope::kWrite,
                    1,
                    false,
                    ""};
    Race([&] { first = a->CreateS3Key(key); }, [&] { second = b->CreateS3Key(key); });
    ASSERT_NE(first.ok(), second.ok()) << first.ToString() << " / " << second.ToString();
    EXPECT_EQ((first.ok() ? second : first).code(), StatusCode::kAlreadyExists);
  }
  EXPECT_EQ(a->ListNamespaces("acme")->size(), 10u);
  EXPECT_EQ(b->ListS3Keys()->size(), 10u);
}

// A call run on its own thread, to see whether it waits on a lock.
class Background {
 public:
  explicit Background(std::function<Status()> call)
      : thread_([this, call = std::move(call)] {
          result_ = call();
          done_ = true;
        }) {}
  ~Background() {
    if (thread_.joinable()) thread_.join();
  }
  // Whether it is still running after `ms` milliseconds.
  bool StillWaitingAfter(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return !done_;
  }
  Status Wait() {
    thread_.join();
    return result_;
  }

 private:
  Status result_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

using Settings = std::map<std::string, std::string>;

// The two orders of DeleteNamespace and SetNamespaceSetting on one namespace, each forced
// by a third connection that holds a settings row lock, so the first of the two stops with
// the namespace row locked and the second has to wait for it. Neither order leaves a
// setting without its namespace row.
TEST_F(MetaS3PostgresTest, ASetterWaitingOnADeleteRecreatesTheNamespaceWithOnlyItsSetting) {
  std::unique_ptr<MetaStore> a = Node(), b = Node();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->CreateNamespace({"acme", "b", 1}).ok());
  ASSERT_TRUE(a->SetNamespaceSetting("acme", "b", "acl", "private", 2).ok());
  ASSERT_TRUE(a->SetNamespaceSetting("acme", "b", "policy", "{}", 2).ok());
  pgtest::RawPostgres blocker(database_->url());
  blocker.Exec("BEGIN");
  blocker.Exec("SELECT 1 FROM namespace_settings WHERE name = 'acl' FOR UPDATE");
  // The delete takes the namespace row, then waits at the settings.
  Background deleter([&] { return a->DeleteNamespace("acme", "b"); });
  ASSERT_TRUE(deleter.StillWaitingAfter(500));
  // The setter waits for the deleted row.
  Background setter([&] { return b->SetNamespaceSetting("acme", "b", "tags", "new", 3); });
  ASSERT_TRUE(setter.StillWaitingAfter(500));
  blocker.Exec("COMMIT");
  EXPECT_TRUE(deleter.Wait().ok());
  EXPECT_TRUE(setter.Wait().ok());
  // As if the set had come after the delete: a new namespace with just that setting.
  EXPECT_EQ(a->GetNamespace("acme", "b").value(), (NamespaceRecord{"acme", "b", 3}));
  EXPECT_EQ(a->GetNamespaceSettings("acme", "b").value(), (Settings{{"tags", "new"}}));
}

TEST_F(MetaS3PostgresTest, ADeleteWaitingOnASetterRemovesItsSetting) {
  std::unique_ptr<MetaStore> a = Node(), b = Node();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->CreateNamespace({"acme", "b", 1}).ok());
  ASSERT_TRUE(a->SetNamespaceSetting("acme", "b", "tags", "old", 2).ok());
  pgtest::RawPostgres blocker(database_->url());
  blocker.Exec("BEGIN");
  blocker.Exec("SELECT 1 FROM namespace_settings WHERE name = 'tags' FOR UPDATE");
  // The setter locks the namespace row, then waits at its setting.
  Background setter([&] { return b->SetNamespaceSetting("acme", "b", "tags", "new", 3); });
  ASSERT_TRUE(setter.StillWaitingAfter(500));
  // The delete waits for the namespace row.
  Background deleter([&] { return a->DeleteNamespace("acme", "b"); });
  ASSERT_TRUE(deleter.StillWaitingAfter(500));
  blocker.Exec("COMMIT");
  EXPECT_TRUE(setter.Wait().ok());
  EXPECT_TRUE(deleter.Wait().ok());
  // The delete came second and took the setter's setting with the namespace.
  EXPECT_EQ(a->GetNamespace("acme", "b").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(a->GetNamespaceSettings("acme", "b")->empty());
  EXPECT_EQ(pgtest::RawPostgres(database_->url()).Query("SELECT count(*) FROM namespace_settings"),
            "0");
}

// Two nodes setting the same setting of a namespace that has no row yet, released
// together: both succeed, and one of the two values stays.
TEST_F(MetaS3PostgresTest, TwoNodesSettingOneSettingAtOnceBothSucceed) {
  std::unique_ptr<MetaStore> a = Node(), b = Node();
  ASSERT_TRUE(a && b);
  for (int round = 0; round < 20; ++round) {
    const std::string name = "bucket" + std::to_string(round);
    Status first, second;
    Race([&] { first = a->SetNamespaceSetting("acme", name, "policy", "from a", 1); },
         [&] { second = b->SetNamespaceSetting("acme", name, "policy", "from b", 2); });
    ASSERT_TRUE(first.ok()) << first.ToString();
    ASSERT_TRUE(second.ok()) << second.ToString();
    Result<Settings> settings = a->GetNamespaceSettings("acme", name);
    ASSERT_TRUE(settings.ok());
    ASSERT_EQ(settings->size(), 1u);
    EXPECT_TRUE(settings->at("policy") == "from a" || settings->at("policy") == "from b");
  }
  EXPECT_EQ(a->ListNamespaces("acme")->size(), 20u);
}

// A database created by a binary of schema version 2 (before S3) gains the S3 tables and
// the later indexes at open and keeps its objects.
TEST_F(MetaS3PostgresTest, MigratesAVersion2Database) {
  {
    std::unique_ptr<MetaStore> store = Node();
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->PutCommitted(Object(1, "ns", "k"), {Chunk(1)}, 10).ok());
  }
  {
    pgtest::RawPostgres raw(database_->url());
    raw.Exec("DROP TABLE usage_deltas");  // version 12
    raw.Exec("DROP FUNCTION cairn_count_usage CASCADE");
    raw.Exec("DROP TABLE namespaces, s3_keys");
    raw.Exec("DROP INDEX objects_committed_created");  // version 4
    raw.Exec("ALTER TABLE chunks DROP COLUMN block_checksums, DROP COLUMN damaged_ms");  // 5
    raw.Exec("DROP TABLE store_identity");      // version 6
    raw.Exec("DROP TABLE namespace_settings");  // version 7
    raw.Exec("DROP TABLE fs_sessions, fs_orphans, fs_changes, fs_locks");
    raw.Exec("DROP SEQUENCE fs_change_seq");
    raw.Exec("DROP TABLE fs_volume, fs_inodes, fs_dentries, fs_xattrs");  // version 10
    raw.Exec("DROP TABLE owner_chunks");                                  // version 9
    raw.Exec("DELETE FROM schema_version WHERE version > 2");
  }
  std::unique_ptr<MetaStore> store = Node();
  ASSERT_TRUE(store);
  EXPECT_EQ(pgtest::RawPostgres(database_->url()).Query("SELECT MAX(version) FROM schema_version"),
            std::to_string(PostgresSchemaVersion()));
  EXPECT_EQ(pgtest::RawPostgres(database_->url())
                .Query("SELECT count(*) FROM pg_indexes WHERE indexname = "
                       "'objects_committed_created'"),
            "1");
  EXPECT_TRUE(store->GetObject("acme", Id(1)).ok());
  S3KeyRecord key{"AKIAEXAMPLE000000001", "secret", {"acme"}, Scope::kWrite, 1, false, ""};
  EXPECT_TRUE(store->CreateS3Key(key).ok());
  EXPECT_TRUE(store->CreateNamespace({"acme", "empty", 5}).ok());
  EXPECT_EQ(store->ListNamespaces("acme")->size(), 2u);
  EXPECT_TRUE(store->SetNamespaceSetting("acme", "ns", "acl", "private", 20).ok());
  EXPECT_EQ(store->GetNamespaceSettings("acme", "ns").value(),
            (std::map<std::string, std::string>{{"acl", "private"}}));
}

// A database of schema version 6 (before namespace settings), with an explicit namespace,
// gains the table in place.
TEST_F(MetaS3PostgresTest, MigratesAVersion6Database) {
  {
    std::unique_ptr<MetaStore> store = Node();
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->CreateNamespace({"acme", "b", 5}).ok());
    ASSERT_TRUE(store->PutCommitted(Object(1, "implied", "k"), {Chunk(1)}, 10).ok());
  }
  {
    pgtest::RawPostgres raw(database_->url());
    raw.Exec("DROP TABLE usage_deltas");  // version 12
    raw.Exec("DROP FUNCTION cairn_count_usage CASCADE");
    raw.Exec("DROP TABLE fs_sessions, fs_orphans, fs_changes, fs_locks");
    raw.Exec("DROP SEQUENCE fs_change_seq");
    raw.Exec("DROP TABLE fs_volume, fs_inodes, fs_dentries, fs_xattrs");  // version 10
    raw.Exec("DROP TABLE owner_chunks");                                  // version 9
    raw.Exec("DROP INDEX namespaces_by_name");                            // version 8
    raw.Exec("DROP TABLE namespace_settings");                            // version 7
    raw.Exec("DELETE FROM schema_version WHERE version > 6");
  }
  std::unique_ptr<MetaStore> store = Node();
  ASSERT_TRUE(store);
  EXPECT_EQ(pgtest::RawPostgres(database_->url()).Query("SELECT MAX(version) FROM schema_version"),
            std::to_string(PostgresSchemaVersion()));
  EXPECT_TRUE(store->GetNamespaceSettings("acme", "b")->empty());
  EXPECT_TRUE(store->SetNamespaceSetting("acme", "b", "policy", "{}", 20).ok());
  EXPECT_TRUE(store->SetNamespaceSetting("acme", "implied", "acl", "private", 20).ok());
  EXPECT_EQ(store->GetNamespace("acme", "b")->created_at_ms, 5);
  EXPECT_EQ(store->GetNamespace("acme", "implied")->created_at_ms, 20);
  EXPECT_EQ(store->GetNamespaceSettings("acme", "b")->size(), 1u);
  auto problems = store->CheckIntegrity();
  ASSERT_TRUE(problems.ok()) << problems.status().ToString();
  EXPECT_TRUE(problems->empty()) << problems->front();
}

// Text PostgreSQL cannot hold (NUL, invalid UTF-8) is the caller's input error when
// written and names nothing when looked up.
TEST_F(MetaS3PostgresTest, UnstorableNamesAreRejectedOrNotFound) {
  std::unique_ptr<MetaStore> store = Node();
  ASSERT_TRUE(store);
  const std::string nul("a\0b", 3);
  EXPECT_EQ(store->CreateNamespace({"acme", nul, 1}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->CreateNamespace({"acme", "\xff", 1}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->GetNamespace("acme", "\xff").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->DeleteNamespace("acme", nul).code(), StatusCode::kNotFound);
  EXPECT_TRUE(store->ListNamespaces("\xff")->empty());
  EXPECT_EQ(store->CreateS3Key({"AKIA\xff", "s", {"acme"}, Scope::kWrite, 1, false, ""}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store->GetS3Key("AKIA\xff").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->RevokeS3Key(nul).code(), StatusCode::kNotFound);
  EXPECT_EQ(store->UpdateUserMetadata("acme", Id(1), {{"k", "\xff"}}, 1).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cairn::meta
