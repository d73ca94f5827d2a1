// SecretBox: S3 secrets sealed with AES-256-GCM under a master key, opened by the key id
// they carry; bound to their access key; plaintext from older releases passes through.
#include "auth/secret_box.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cairn::auth {
namespace {

MasterKey Key(char fill) { return *MasterKeyFromBytes(std::string(kMasterKeyBytes, fill)); }

TEST(SecretBoxTest, SealedSecretsOpenAndHideThePlaintext) {
  SecretBox box(Key('a'), {});
  const std::string secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  auto sealed = box.Seal("AKIAEXAMPLE", secret);
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  EXPECT_TRUE(sealed->starts_with("enc1:" + box.primary_id() + ":")) << *sealed;
  EXPECT_EQ(sealed->find(secret), std::string::npos);
  EXPECT_TRUE(IsSealedSecret(*sealed));
  EXPECT_EQ(SealingKeyId(*sealed), box.primary_id());
  EXPECT_EQ(*box.Open("AKIAEXAMPLE", *sealed), secret);
  // A fresh nonce each time: the same secret never seals to the same text.
  EXPECT_NE(*box.Seal("AKIAEXAMPLE", secret), *sealed);
}

TEST(SecretBoxTest, KeyIdIsAFingerprint) {
  EXPECT_EQ(Key('a').id.size(), 8u);
  EXPECT_EQ(Key('a').id, Key('a').id);
  EXPECT_NE(Key('a').id, Key('b').id);
}

TEST(SecretBoxTest, ASecretMovedToAnotherKeyDoesNotOpen) {
  SecretBox box(Key('a'), {});
  std::string sealed = *box.Seal("AKIAONE", "secret-one");
  auto moved = box.Open("AKIATWO", sealed);
  EXPECT_EQ(moved.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(moved.status().message().find("AKIATWO"), std::string::npos);
  EXPECT_EQ(moved.status().message().find("secret-one"), std::string::npos);
}

TEST(SecretBoxTest, DamagedSecretsAreDataLoss) {
  SecretBox box(Key('a'), {});
  std::string sealed = *box.Seal("AKIAONE", "secret-one");
  std::string flipped = sealed;
  flipped[flipped.size() - 3] = flipped[flipped.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(box.Open("AKIAONE", flipped).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(box.Open("AKIAONE", "enc1:" + box.primary_id() + ":AAAA").status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(box.Open("AKIAONE", "enc1:nocolon").status().code(), StatusCode::kDataLoss);
}

TEST(SecretBoxTest, AnUnknownKeyIsNamedNeverTreatedAsInvalid) {
  SecretBox old_box(Key('a'), {});
  SecretBox new_box(Key('b'), {});
  std::string sealed = *old_box.Seal("AKIAONE", "secret-one");
  auto opened = new_box.Open("AKIAONE", sealed);
  EXPECT_EQ(opened.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(opened.status().message().find(old_box.primary_id()), std::string::npos)
      << opened.status().ToString();
  EXPECT_NE(opened.status().message().find(new_box.primary_id()), std::string::npos);
}

TEST(SecretBoxTest, OldKeysOpenDuringARotationButNeverSeal) {
  SecretBox old_box(Key('a'), {});
  SecretBox rolling(Key('b'), {Key('a')});
  std::string sealed = *old_box.Seal("AKIAONE", "secret-one");
  EXPECT_EQ(*rolling.Open("AKIAONE", sealed), "secret-one");
  EXPECT_EQ(SealingKeyId(*rolling.Seal("AKIAONE", "secret-one")), Key('b').id);
  EXPECT_EQ(rolling.key_ids(), (std::vector<std::string>{Key('b').id, Key('a').id}));
}

TEST(SecretBoxTest, PlaintextFromOlderReleasesPassesThrough) {
  SecretBox box(Key('a'), {});
  for (std::string plain : {"abc/DEF+123", "enc", "encrypted", "enc:x", "enc1x:y", ""}) {
    EXPECT_FALSE(IsSealedSecret(plain)) << plain;
    EXPECT_EQ(*box.Open("AKIAONE", plain), plain);
  }
  EXPECT_TRUE(IsSealedSecret("enc2:whatever"));
}

TEST(SecretBoxTest, MasterKeysParseFromHexOrBase64) {
  const std::string hex(64, 'f');
  auto from_hex = ParseMasterKey("  " + hex + "\n", "test");
  ASSERT_TRUE(from_hex.ok()) << from_hex.status().ToString();
  EXPECT_EQ(from_hex->bytes, std::string(32, '\xff'));
  auto from_base64 = ParseMasterKey("//////////////////////////////////////////8=", "test");
  ASSERT_TRUE(from_base64.ok()) << from_base64.status().ToString();
  EXPECT_EQ(from_base64->id, from_hex->id);
  auto from_base64url = ParseMasterKey(std::string(42, '_') + "8", "test");
  ASSERT_TRUE(from_base64url.ok()) << from_base64url.status().ToString();
  EXPECT_EQ(from_base64url->id, from_hex->id);
  EXPECT_EQ(MasterKeyFileText(*from_hex), hex + "\n");
  for (const std::string& bad :
       std::vector<std::string>{"", "abcd", std::string(63, 'f'), std::string(64, 'g'), "AAAA"}) {
    auto parsed = ParseMasterKey(bad, "CAIRN_MASTER_KEY");
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(parsed.status().message().find("CAIRN_MASTER_KEY"), std::string::npos);
  }
  auto generated = GenerateMasterKey();
  ASSERT_TRUE(generated.ok());
  EXPECT_NE(generated->bytes, GenerateMasterKey()->bytes);
  EXPECT_EQ(ParseMasterKey(MasterKeyFileText(*generated), "file")->id, generated->id);
}

}  // namespace
}  // namespace cairn::auth
