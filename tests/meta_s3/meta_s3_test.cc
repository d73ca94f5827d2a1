// The metadata methods the S3 front end needs (namespaces, S3 keys, composition, metadata
// updates), run against every engine that implements them.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "meta/meta_store.h"

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
    }
    store_ = std::move(OpenMetaStore(url).value());
  }
  void TearDown() override {
    store_.reset();
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
  std::unique_ptr<MetaStore> store_;
};

TEST_P(MetaS3Test, NamespacesAreExplicitOrImpliedByObjects) {
  EXPECT_TRUE(store_->ListNamespaces("acme")->empty());
  ASSERT_TRUE(store_->CreateNamespace({"acme", "empty", 5}).ok());
  EXPECT_EQ(store_->CreateNamespace({"acme", "empty", 6}).code(), StatusCode::kAlreadyExists);
  ASSERT_TRUE(store_->PutCommitted(Object(1, "implied", "k"), {Chunk(1)}, 10).ok());
  ASSERT_TRUE(store_->CreateNamespace({"other", "empty", 7}).ok());

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

INSTANTIATE_TEST_SUITE_P(Engines, MetaS3Test, ::testing::Values("memory", "sqlite"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace cairn::meta
