// Key and status operations shared by the CLI, the server's bootstrap and the console.
#include "server/key_admin.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "auth/api_key.h"
#include "meta/memory/memory_meta_store.h"
#include "platform/file_system.h"

namespace cairn::server {
namespace {

auth::MasterKey Key(char fill) {
  return *auth::MasterKeyFromBytes(std::string(auth::kMasterKeyBytes, fill));
}

class KeyAdminTest : public ::testing::Test {
 protected:
  meta::MemoryMetaStore store_;
  auth::SecretBox box_{Key('a'), {}};
};

TEST_F(KeyAdminTest, GrantsAreValidatedBeforeAnythingIsStored) {
  EXPECT_EQ(ValidateGrant({{}, meta::Scope::kRead, ""}, false).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateGrant({{"Bad Tenant!"}, meta::Scope::kRead, ""}, false).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(ValidateGrant({{"*"}, meta::Scope::kAdmin, ""}, false).ok());
  // An S3 key's first tenant owns its buckets: '*' cannot.
  EXPECT_EQ(ValidateGrant({{"*", "acme"}, meta::Scope::kWrite, ""}, true).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(ValidateGrant({{"acme", "*"}, meta::Scope::kWrite, ""}, true).ok());

  EXPECT_FALSE(CreateApiKey(&store_, {{"no spaces"}, meta::Scope::kRead, ""}, 1).ok());
  EXPECT_FALSE(CreateS3Key(&store_, box_, {{"*"}, meta::Scope::kWrite, ""}, 1).ok());
  EXPECT_TRUE(ListKeys(&store_)->empty());
}

TEST_F(KeyAdminTest, ApiKeysAreStoredAsHashesListedAndRevoked) {
  auto created = CreateApiKey(&store_, {{"acme", "beta"}, meta::Scope::kWrite, "ci"}, 42);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  auto parsed = auth::ParseApiKey(created->full_text);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->key_id, created->key_id);
  auto stored = store_.GetApiKey(created->key_id);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->secret_hash, auth::HashSecret(parsed->secret));
  EXPECT_EQ(stored->tenants, (std::vector<std::string>{"acme", "beta"}));
  EXPECT_EQ(stored->scope, meta::Scope::kWrite);
  EXPECT_EQ(stored->created_at_ms, 42);
  EXPECT_EQ(stored->description, "ci");

  auto listed = ListKeys(&store_);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, created->key_id);
  EXPECT_FALSE((*listed)[0].s3);
  EXPECT_FALSE((*listed)[0].revoked);

  // By the whole key text, as an operator pastes it.
  auto revoked = RevokeKey(&store_, created->full_text);
  ASSERT_TRUE(revoked.ok()) << revoked.status().ToString();
  EXPECT_EQ(*revoked, created->key_id);
  EXPECT_TRUE((*ListKeys(&store_))[0].revoked);
  EXPECT_EQ(RevokeKey(&store_, "0123456789abcdef").status().code(), StatusCode::kNotFound);
}

TEST_F(KeyAdminTest, EnsureApiKeyIsIdempotentAndRefusesAnotherSecret) {
  auto generated = auth::GenerateApiKey();
  ASSERT_TRUE(generated.ok());
  auth::ParsedApiKey key{generated->key_id, generated->secret};
  KeyGrant grant{{"*"}, meta::Scope::kAdmin, "bootstrap admin key"};
  ASSERT_TRUE(EnsureApiKey(&store_, key, grant, 1).ok());
  ASSERT_TRUE(EnsureApiKey(&store_, key, grant, 2).ok());  // a second node, or a restart
  EXPECT_EQ(ListKeys(&store_)->size(), 1u);
  auth::ParsedApiKey other{generated->key_id, std::string(generated->secret.size(), 'x')};
  EXPECT_EQ(EnsureApiKey(&store_, other, grant, 3).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(RevokeKey(&store_, key.key_id).ok());
  EXPECT_EQ(EnsureApiKey(&store_, key, grant, 4).code(), StatusCode::kFailedPrecondition);
}

TEST_F(KeyAdminTest, S3SecretsAreSealedAndOpenWithTheBox) {
  auto created = CreateS3Key(&store_, box_, {{"acme"}, meta::Scope::kWrite, ""}, 7);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  auto stored = store_.GetS3Key(created->access_key);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->secret.find(created->secret), std::string::npos);  // never in plaintext
  auto opened = box_.Open(stored->access_key, stored->secret);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, created->secret);

  // Another master key cannot add a key the servers could not open.
  auth::SecretBox other(Key('b'), {});
  EXPECT_EQ(CreateS3Key(&store_, other, {{"acme"}, meta::Scope::kWrite, ""}, 8).status().code(),
            StatusCode::kFailedPrecondition);

  KeyGrant grant{{"acme"}, meta::Scope::kAdmin, "bootstrap S3 key"};
  ASSERT_TRUE(EnsureS3Key(&store_, box_, "CHOSENKEY", "chosen-secret", grant, 9).ok());
  ASSERT_TRUE(EnsureS3Key(&store_, box_, "CHOSENKEY", "chosen-secret", grant, 10).ok());
  EXPECT_EQ(EnsureS3Key(&store_, box_, "CHOSENKEY", "other-secret", grant, 11).code(),
            StatusCode::kFailedPrecondition);

  auto listed = ListKeys(&store_);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  for (const KeyInfo& key : *listed) EXPECT_TRUE(key.s3);
  auto revoked = RevokeKey(&store_, "CHOSENKEY");
  ASSERT_TRUE(revoked.ok());
  EXPECT_TRUE(store_.GetS3Key("CHOSENKEY")->revoked);
}

TEST_F(KeyAdminTest, SummaryCountsObjectsChunksAndWritableRoots) {
  char pattern[] = "/tmp/cairn-key-admin-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  const std::string root = pattern;
  {
    auto chunks =
        chunks::ChunkStore::Open(platform::DefaultFileSystem(), {root + "/hot", root + "/cold"});
    ASSERT_TRUE(chunks.ok()) << chunks.status().ToString();
    auto summary = SummarizeStore(&store_, chunks->get());
    ASSERT_TRUE(summary.ok()) << summary.status().ToString();
    EXPECT_TRUE(summary->objects_by_state.empty());
    EXPECT_EQ(summary->logical_bytes, 0u);
    EXPECT_EQ(summary->chunks, 0u);
    EXPECT_TRUE(summary->writable.ok()) << summary->writable.ToString();
  }
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace cairn::server
