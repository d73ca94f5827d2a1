// Tests for src/auth: base64url, API keys, JWTs, principals and the authenticator.
//
// The authenticator runs against a small fake MetaStore (credentials only) rather than
// the memory engine: it can count lookups, which is how the cache is tested, and it can
// simulate an unavailable database.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "auth/api_key.h"
#include "auth/authenticator.h"
#include "auth/jwt.h"
#include "auth/principal.h"
#include "core/base64.h"
#include "core/hashing.h"
#include "meta/engines/open_meta_store.h"
#include "meta/meta_store.h"

namespace cairn::auth {
namespace {

using meta::ApiKeyRecord;
using meta::Scope;

constexpr char kJwtSecret[] = "0123456789abcdef0123456789abcdef-test-secret";
constexpr TimestampMs kNowMs = 1'760'000'000'000;  // 2025-10-09
constexpr int64_t kNowS = kNowMs / 1000;

// ---- Fake metadata store --------------------------------------------------------------

// Implements the credentials methods; everything else is a test bug and says so.
class FakeMetaStore : public meta::MetaStore {
 public:
  Status Ping() override { return Unused(); }
  Status BeginUpload(const meta::ObjectRecord&) override { return Unused(); }
  Status AddChunk(const ObjectId&, uint32_t, const meta::ChunkRef&, TimestampMs) override {
    return Unused();
  }
  Result<meta::CommitResult> CommitUpload(const ObjectId&, const meta::ObjectRecord&,
                                          TimestampMs) override {
    return Unused();
  }
  Result<meta::CommitResult> PutCommitted(const meta::ObjectRecord&,
                                          const std::vector<meta::ChunkRef>&,
                                          TimestampMs) override {
    return Unused();
  }
  Status AbortUpload(const ObjectId&, TimestampMs) override { return Unused(); }
  Result<meta::ObjectRecord> GetObject(const std::string&, const ObjectId&) override {
    return Unused();
  }
  Result<meta::ObjectRecord> GetObjectByKey(const std::string&, const std::string&,
                                            const std::string&) override {
    return Unused();
  }
  Result<std::vector<meta::ChunkRef>> GetChunks(const ObjectId&) override { return Unused(); }
  Status SetChunkDamaged(StorageClass, const Digest&, TimestampMs) override { return Unused(); }
  Result<meta::ListPage> ListObjects(const meta::ListRequest&) override { return Unused(); }
  Result<meta::ObjectRecord> DeleteObject(const std::string&, const ObjectId&,
                                          TimestampMs) override {
    return Unused();
  }
  Result<std::vector<meta::UsageRow>> Usage(const std::string&) override { return Unused(); }
  Result<std::vector<meta::UsageCounterRow>> UsageCounts(const std::string&) override {
    return Unused();
  }
  Result<std::vector<meta::ObjectCountRow>> CountObjects() override { return Unused(); }
  Result<std::vector<meta::StorageBytesRow>> StorageBytes() override { return Unused(); }
  Result<uint64_t> ReapStalledUploads(TimestampMs, uint32_t, TimestampMs) override {
    return Unused();
  }
  Result<uint64_t> PurgeDeletedObjects(TimestampMs, uint32_t) override { return Unused(); }
  Result<std::vector<meta::ChunkRecord>> CollectGarbageChunks(
      TimestampMs, uint32_t, const std::function<Status(const meta::ChunkRecord&)>&) override {
    return Unused();
  }
  Result<std::vector<meta::FsckReferenceRow>> CheckReferences() override { return Unused(); }
  Result<uint64_t> RepairReferences(TimestampMs) override { return Unused(); }
  Result<std::vector<meta::ChunkRecord>> ListChunks() override { return Unused(); }
  Result<std::optional<meta::ChunkRecord>> GetChunk(StorageClass, const Digest&) override {
    return Unused();
  }
  Result<std::vector<ObjectId>> DropObjectsWithChunks(StorageClass, const std::vector<Digest>&,
                                                      TimestampMs) override {
    return Unused();
  }

  Status CreateApiKey(const ApiKeyRecord& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!keys_.emplace(key.key_id, key).second) return AlreadyExistsError("key id taken");
    return OkStatus();
  }
  Result<ApiKeyRecord> GetApiKey(const std::string& key_id) override {
    get_calls_.fetch_add(1);
    std::lock_guard<std::mutex> lock(mu_);
    if (unavailable_) return UnavailableError("database is down");
    auto it = keys_.find(key_id);
    if (it == keys_.end()) return NotFoundError("api key " + key_id + " does not exist");
    return it->second;
  }
  Result<std::vector<ApiKeyRecord>> ListApiKeys() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<ApiKeyRecord> out;
    for (const auto& [id, key] : keys_) out.push_back(key);
    return out;
  }
  Status RevokeApiKey(const std::string& key_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = keys_.find(key_id);
    if (it == keys_.end()) return NotFoundError("api key " + key_id + " does not exist");
    it->second.revoked = true;
    return OkStatus();
  }

  void set_unavailable(bool unavailable) {
    std::lock_guard<std::mutex> lock(mu_);
    unavailable_ = unavailable;
  }
  int get_calls() const { return get_calls_.load(); }

 private:
  static Status Unused() { return InternalError("not implemented by FakeMetaStore"); }

  std::mutex mu_;
  std::map<std::string, ApiKeyRecord> keys_;
  bool unavailable_ = false;
  std::atomic<int> get_calls_{0};
};

// ---- Helpers -----------------------------------------------------------------------

// A token with arbitrary header and payload texts, signed with `secret`.
std::string SignRaw(std::string_view header_json, std::string_view payload_json,
                    std::string_view secret) {
  std::string input =
      Base64Encode(header_json, kBase64Url) + "." + Base64Encode(payload_json, kBase64Url);
  return input + "." + Base64Encode(HmacSha256(secret, input), kBase64Url);
}

std::string ValidPayload() {
  return R"({"tenant":"acme","scope":"write","exp":)" + std::to_string(kNowS + 3600) + "}";
}

void ExpectUnauthenticated(const Result<Principal>& result, std::string_view what) {
  ASSERT_FALSE(result.ok()) << what;
  EXPECT_EQ(result.status().code(), StatusCode::kUnauthenticated)
      << what << ": " << result.status().ToString();
}

// ---- API keys ----------------------------------------------------------------------

std::string CountingBytes() {
  std::string bytes;
  for (size_t i = 0; i < kApiKeyRandomBytes; ++i) bytes.push_back(static_cast<char>(0xf0 + i));
  return bytes;
}

TEST(ApiKeyTest, GeneratesFromCallerBytes) {
  Result<GeneratedApiKey> key = GenerateApiKey(CountingBytes());
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(key->key_id, "f0f1f2f3f4f5f6f7");
  EXPECT_EQ(key->secret.size(), kApiKeySecretLength);
  EXPECT_EQ(key->secret, Base64Encode(CountingBytes().substr(kApiKeyIdBytes), kBase64Url));
  EXPECT_EQ(key->full_text, "cairn_" + key->key_id + "_" + key->secret);
  EXPECT_EQ(key->full_text.size(), kApiKeyLength);

  Result<ParsedApiKey> parsed = ParseApiKey(key->full_text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->key_id, key->key_id);
  EXPECT_EQ(parsed->secret, key->secret);
}

TEST(ApiKeyTest, GenerateRejectsWrongByteCount) {
  EXPECT_EQ(GenerateApiKey(std::string(39, 'x')).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(GenerateApiKey(std::string(41, 'x')).status().code(), StatusCode::kInvalidArgument);
}

TEST(ApiKeyTest, GeneratesDistinctRandomKeys) {
  Result<GeneratedApiKey> a = GenerateApiKey();
  Result<GeneratedApiKey> b = GenerateApiKey();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->key_id, b->key_id);
  EXPECT_NE(a->secret, b->secret);
  EXPECT_TRUE(ParseApiKey(a->full_text).ok());
  EXPECT_TRUE(ParseApiKey(b->full_text).ok());
}

TEST(ApiKeyTest, RandomBytesHasRequestedLength) {
  for (size_t n : {0, 1, 32, 4096}) {
    Result<std::string> bytes = RandomBytes(n);
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    EXPECT_EQ(bytes->size(), n);
  }
}

TEST(ApiKeyTest, ParsesSecretsContainingUnderscores) {
  // 0xff bytes encode as '_' characters, the same character that separates the parts.
  std::string bytes = std::string(kApiKeyIdBytes, '\x01') + std::string(kApiKeySecretBytes, '\xff');
  Result<GeneratedApiKey> key = GenerateApiKey(bytes);
  ASSERT_TRUE(key.ok());
  ASSERT_NE(key->secret.find('_'), std::string::npos);
  Result<ParsedApiKey> parsed = ParseApiKey(key->full_text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->secret, key->secret);
}

TEST(ApiKeyTest, RejectsMalformedKeys) {
  const std::string good = GenerateApiKey(CountingBytes())->full_text;
  const std::string secret = good.substr(23);
  std::vector<std::string> bad = {
      "",
      "cairn_",
      "Cairn_" + good.substr(6),                // prefix is case-sensitive
      "cairn-" + good.substr(6),                // wrong prefix separator
      "cairn_F0F1F2F3F4F5F6F7_" + secret,       // upper-case hex
      "cairn_f0f1f2f3f4f5f6fg_" + secret,       // non-hex
      "cairn_f0f1f2f3f4f5f6_" + secret + "xx",  // short id, same total length
      "cairn_f0f1f2f3f4f5f6f7-" + secret,       // wrong separator
      good.substr(0, good.size() - 1),          // short secret
      good + "A",                               // long secret
      good.substr(0, good.size() - 1) + "=",    // padding character
      good.substr(0, good.size() - 1) + "+",    // standard base64 alphabet
      " " + good,                               // surrounding whitespace
  };
  // The last character of a 32-byte secret carries 4 data bits and 2 zero bits; setting
  // the zero bits gives a second spelling of the same bytes, which must be refused.
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string noncanonical = good;
  noncanonical.back() = alphabet[alphabet.find(good.back()) ^ 1];
  bad.push_back(noncanonical);
  for (const std::string& text : bad) {
    Result<ParsedApiKey> parsed = ParseApiKey(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_EQ(parsed.status().message().find(secret), std::string::npos);
  }
}

TEST(ApiKeyTest, LooksLikeApiKeyChecksOnlyThePrefix) {
  EXPECT_TRUE(LooksLikeApiKey("cairn_whatever"));
  EXPECT_FALSE(LooksLikeApiKey("eyJhbGciOiJIUzI1NiJ9.e30.sig"));
  EXPECT_FALSE(LooksLikeApiKey(""));
}

TEST(ApiKeyTest, HashSecretIsSha256OfTheSecretText) {
  EXPECT_EQ(HashSecret("abc").ToHex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_NE(HashSecret("abc"), HashSecret("abd"));
}

// ---- Principal ---------------------------------------------------------------------

TEST(PrincipalTest, TenantsMatchExactlyOrByWildcard) {
  Principal p{"k", {"acme", "beta"}, Scope::kRead};
  EXPECT_TRUE(p.AllowsTenant("acme"));
  EXPECT_TRUE(p.AllowsTenant("beta"));
  EXPECT_FALSE(p.AllowsTenant("acm"));
  EXPECT_FALSE(p.AllowsTenant("gamma"));
  EXPECT_FALSE(p.AllowsTenant("*"));
  Principal all{"k", {"*"}, Scope::kRead};
  EXPECT_TRUE(all.AllowsTenant("anything"));
  Principal none{"k", {}, Scope::kAdmin};
  EXPECT_FALSE(none.AllowsTenant("acme"));
}

TEST(PrincipalTest, ScopesAreHierarchical) {
  const Scope scopes[] = {Scope::kRead, Scope::kWrite, Scope::kAdmin};
  for (int have = 0; have < 3; ++have) {
    for (int need = 0; need < 3; ++need) {
      Principal p{"k", {"*"}, scopes[have]};
      EXPECT_EQ(p.AllowsScope(scopes[need]), have >= need) << have << " " << need;
    }
  }
  Principal corrupt{"k", {"*"}, static_cast<Scope>(42)};
  EXPECT_FALSE(corrupt.AllowsScope(Scope::kRead));
}

// ---- JWT ---------------------------------------------------------------------------

TEST(JwtTest, RoundTripsSingleTenant) {
  std::string token = CreateJwt({{"acme"}, Scope::kWrite, kNowS + 60, std::nullopt}, kJwtSecret);
  Result<Principal> principal = VerifyJwt(token, kJwtSecret, kNowMs);
  ASSERT_TRUE(principal.ok()) << principal.status().ToString();
  EXPECT_EQ(principal->subject, "jwt");
  EXPECT_EQ(principal->tenants, std::vector<std::string>{"acme"});
  EXPECT_EQ(principal->scope, Scope::kWrite);
}

TEST(JwtTest, RoundTripsTenantListAndWildcard) {
  std::string token =
      CreateJwt({{"acme", "beta"}, Scope::kRead, kNowS + 60, kNowS - 5}, kJwtSecret);
  Result<Principal> principal = VerifyJwt(token, kJwtSecret, kNowMs);
  ASSERT_TRUE(principal.ok()) << principal.status().ToString();
  EXPECT_EQ(principal->tenants, (std::vector<std::string>{"acme", "beta"}));

  token = CreateJwt({{"*"}, Scope::kAdmin, kNowS + 60, std::nullopt}, kJwtSecret);
  principal = VerifyJwt(token, kJwtSecret, kNowMs);
  ASSERT_TRUE(principal.ok()) << principal.status().ToString();
  EXPECT_TRUE(principal->AllowsTenant("whatever"));
  EXPECT_EQ(principal->scope, Scope::kAdmin);
}

TEST(JwtTest, AcceptsTokensFromOtherIssuers) {
  // Header without "typ", extra claims, fractional exp.
  std::string token = SignRaw(R"({"alg":"HS256","kid":"k1"})",
                              R"({"sub":"ci","tenants":["acme"],"scope":"read","exp":)" +
                                  std::to_string(kNowS) + ".5,\"iat\":1}",
                              kJwtSecret);
  Result<Principal> principal = VerifyJwt(token, kJwtSecret, kNowMs);
  ASSERT_TRUE(principal.ok()) << principal.status().ToString();
  EXPECT_EQ(principal->scope, Scope::kRead);
}

TEST(JwtTest, ExpiryIsEnforced) {
  std::string token = CreateJwt({{"acme"}, Scope::kRead, kNowS, std::nullopt}, kJwtSecret);
  EXPECT_TRUE(VerifyJwt(token, kJwtSecret, kNowMs - 1).ok());
  Result<Principal> expired = VerifyJwt(token, kJwtSecret, kNowMs);
  ExpectUnauthenticated(expired, "at exp");
  EXPECT_EQ(expired.status().message(), "token expired");
  ExpectUnauthenticated(VerifyJwt(token, kJwtSecret, kNowMs + 86'400'000), "a day later");
}

TEST(JwtTest, NotBeforeIsEnforced) {
  std::string token = CreateJwt({{"acme"}, Scope::kRead, kNowS + 600, kNowS + 60}, kJwtSecret);
  Result<Principal> early = VerifyJwt(token, kJwtSecret, kNowMs);
  ExpectUnauthenticated(early, "before nbf");
  EXPECT_EQ(early.status().message(), "token is not valid yet");
  EXPECT_TRUE(VerifyJwt(token, kJwtSecret, (kNowS + 60) * 1000).ok());
}

TEST(JwtTest, RejectsWrongSecret) {
  std::string token = CreateJwt({{"acme"}, Scope::kRead, kNowS + 60, std::nullopt}, kJwtSecret);
  Result<Principal> result = VerifyJwt(token, "another-secret-another-secret-another", kNowMs);
  ExpectUnauthenticated(result, "wrong secret");
  EXPECT_EQ(result.status().message().find(kJwtSecret), std::string::npos);
  ExpectUnauthenticated(VerifyJwt(token, "", kNowMs), "empty secret");
}

TEST(JwtTest, RejectsOtherAlgorithms) {
  const std::string payload = ValidPayload();
  const std::string payload_b64 = Base64Encode(payload, kBase64Url);
  // alg "none" with an empty signature: the classic bypass.
  for (std::string header : {R"({"alg":"none"})", R"({"alg":"None","typ":"JWT"})"}) {
    std::string token = Base64Encode(header, kBase64Url) + "." + payload_b64 + ".";
    ExpectUnauthenticated(VerifyJwt(token, kJwtSecret, kNowMs), header);
  }
  // Other algorithms or malformed headers, even with a signature valid under our secret.
  for (std::string header :
       {R"({"alg":"none"})", R"({"alg":"HS512"})", R"({"alg":"hs256"})", R"({"alg":"RS256"})",
        R"({"typ":"JWT"})", R"({"alg":256})", R"({"alg":["HS256"]})", R"(["HS256"])", R"("HS256")",
        "", R"({"alg":"HS256","crit":["exp"]})", R"({"alg":"HS256")"}) {
    Result<Principal> result = VerifyJwt(SignRaw(header, payload, kJwtSecret), kJwtSecret, kNowMs);
    ExpectUnauthenticated(result, header);
  }
  Result<Principal> none =
      VerifyJwt(SignRaw(R"({"alg":"none"})", payload, kJwtSecret), kJwtSecret, kNowMs);
  EXPECT_EQ(none.status().message(), "unsupported JWT algorithm; only HS256 is accepted");
}

TEST(JwtTest, RejectsTamperedPayload) {
  std::string token = CreateJwt({{"acme"}, Scope::kRead, kNowS + 60, std::nullopt}, kJwtSecret);
  size_t first = token.find('.'), second = token.rfind('.');
  std::string forged_payload = Base64Encode(
      R"({"tenant":"*","scope":"admin","exp":)" + std::to_string(kNowS + 60) + "}", kBase64Url);
  std::string forged = token.substr(0, first + 1) + forged_payload + token.substr(second);
  Result<Principal> result = VerifyJwt(forged, kJwtSecret, kNowMs);
  ExpectUnauthenticated(result, "forged");
  EXPECT_EQ(result.status().message(), "JWT signature is invalid");
}

TEST(JwtTest, RejectsBadClaimsEvenWhenSigned) {
  const std::string exp = std::to_string(kNowS + 60);
  const std::vector<std::string> payloads = {
      "[]",
      "null",
      "not json",
      "{}",
      R"({"tenant":"acme","scope":"read"})",                       // no exp
      R"({"tenant":"acme","scope":"read","exp":")" + exp + "\"}",  // exp as string
      R"({"tenant":"acme","scope":"read","exp":true})",            // exp as bool
      R"({"tenant":"acme","scope":"read","exp":null})",
      R"({"tenant":"acme","scope":"read","exp":)" + exp + R"(,"nbf":"x"})",
      R"({"scope":"read","exp":)" + exp + "}",  // no tenant
      R"({"tenant":7,"scope":"read","exp":)" + exp + "}",
      R"({"tenant":"Bad Name","scope":"read","exp":)" + exp + "}",
      R"({"tenant":"","scope":"read","exp":)" + exp + "}",
      R"({"tenants":[],"scope":"read","exp":)" + exp + "}",
      R"({"tenants":"acme","scope":"read","exp":)" + exp + "}",
      R"({"tenants":["acme",1],"scope":"read","exp":)" + exp + "}",
      R"({"tenant":"acme","tenants":["beta"],"scope":"read","exp":)" + exp + "}",
      R"({"tenant":"acme","exp":)" + exp + "}",  // no scope
      R"({"tenant":"acme","scope":"root","exp":)" + exp + "}",
      R"({"tenant":"acme","scope":"READ","exp":)" + exp + "}",
      R"({"tenant":"acme","scope":2,"exp":)" + exp + "}",
      R"({"tenant":"acme","scope":["read"],"exp":)" + exp + "}",
  };
  for (const std::string& payload : payloads) {
    ExpectUnauthenticated(VerifyJwt(SignJwtPayload(payload, kJwtSecret), kJwtSecret, kNowMs),
                          payload);
  }
}

TEST(JwtTest, RejectsMalformedStructure) {
  std::string good = SignJwtPayload(ValidPayload(), kJwtSecret);
  ASSERT_TRUE(VerifyJwt(good, kJwtSecret, kNowMs).ok());
  for (std::string token :
       {std::string(), std::string("."), std::string(".."), std::string("a.b"),
        std::string("a.b.c.d"), good + ".", "." + good, good + "=", good + " ",
        std::string(kMaxJwtBytes + 1, 'A'), good.substr(0, good.rfind('.')) + ".!!!!"}) {
    ExpectUnauthenticated(VerifyJwt(token, kJwtSecret, kNowMs), token.substr(0, 80));
  }
}

TEST(JwtTest, SurvivesDeeplyNestedSignedPayload) {
  std::string nested = R"({"tenant":"acme","scope":"read","exp":)" + std::to_string(kNowS + 60) +
                       R"(,"x":)" + std::string(2500, '[') + std::string(2500, ']') + "}";
  Result<Principal> result = VerifyJwt(SignJwtPayload(nested, kJwtSecret), kJwtSecret, kNowMs);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  std::string unbalanced = std::string(3000, '[');
  ExpectUnauthenticated(VerifyJwt(SignJwtPayload(unbalanced, kJwtSecret), kJwtSecret, kNowMs),
                        "unbalanced");
}

TEST(JwtTest, ValidateJwtSecretRequires32Bytes) {
  EXPECT_TRUE(ValidateJwtSecret(std::string(32, 'k')).ok());
  Status short_secret = ValidateJwtSecret("hunter2");
  EXPECT_EQ(short_secret.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(short_secret.message().find("hunter2"), std::string::npos);
}

// Seeded, bounded fuzzing: mutations of a valid token must never crash and never verify;
// signed garbage payloads must never crash.
TEST(JwtFuzzTest, MutatedTokensNeverVerify) {
  const std::string original =
      CreateJwt({{"acme"}, Scope::kWrite, kNowS + 60, std::nullopt}, kJwtSecret);
  ASSERT_TRUE(VerifyJwt(original, kJwtSecret, kNowMs).ok());
  const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \x00\xff";
  std::mt19937_64 rng(20251211);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  auto random_char = [&]() {
    return pick(4) == 0 ? static_cast<char>(rng()) : alphabet[pick(alphabet.size())];
  };
  int tried = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string token = original;
    int edits = 1 + static_cast<int>(pick(3));
    for (int e = 0; e < edits; ++e) {
      switch (pick(6)) {
        case 0:
          if (!token.empty()) token[pick(token.size())] = random_char();
          break;
        case 1:
          token.insert(token.begin() + pick(token.size() + 1), random_char());
          break;
        case 2:
          if (!token.empty()) token.erase(pick(token.size()), 1);
          break;
        case 3:
          token.resize(pick(token.size() + 1));
          break;
        case 4:
          if (!token.empty()) token[pick(token.size())] ^= static_cast<char>(1 << pick(8));
          break;
        case 5:
          if (!token.empty()) std::swap(token[pick(token.size())], token[pick(token.size())]);
          break;
      }
    }
    if (token == original) continue;
    ++tried;
    Result<Principal> result = VerifyJwt(token, kJwtSecret, kNowMs);
    ASSERT_FALSE(result.ok()) << "mutated token verified: " << token;
    ASSERT_EQ(result.status().code(), StatusCode::kUnauthenticated);
  }
  EXPECT_GT(tried, 15000);
}

// Exhaustive rather than random: every one-character substitution of a valid token,
// including those that only touch the unused low bits of the signature's last character.
TEST(JwtFuzzTest, EverySingleCharacterSubstitutionFails) {
  const std::string original =
      CreateJwt({{"acme"}, Scope::kRead, kNowS + 60, std::nullopt}, kJwtSecret);
  const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";
  for (size_t at = 0; at < original.size(); ++at) {
    for (char c : alphabet) {
      if (c == original[at]) continue;
      std::string token = original;
      token[at] = c;
      ASSERT_FALSE(VerifyJwt(token, kJwtSecret, kNowMs).ok()) << "position " << at << ": " << token;
    }
  }
}

TEST(JwtFuzzTest, RandomTokensNeverVerify) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 5000; ++i) {
    std::string token(rng() % 300, '\0');
    for (char& c : token) {
      c = rng() % 8 == 0
              ? '.'
              : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[rng() % 64];
    }
    ASSERT_FALSE(VerifyJwt(token, kJwtSecret, kNowMs).ok()) << token;
  }
}

TEST(JwtFuzzTest, SignedGarbagePayloadsNeverCrash) {
  const std::string base = R"({"tenants":["acme","beta"],"scope":"admin","exp":)" +
                           std::to_string(kNowS + 60) + R"(,"nbf":1.5e9})";
  std::mt19937_64 rng(99);
  int accepted = 0;
  for (int i = 0; i < 5000; ++i) {
    std::string payload = base;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t at = rng() % payload.size();
      switch (rng() % 3) {
        case 0:
          payload[at] = static_cast<char>(rng());
          break;
        case 1:
          payload.insert(at, 1, "{}[]\",:0-e.\\u"[rng() % 14]);
          break;
        case 2:
          payload.erase(at, 1);
          break;
      }
      if (payload.empty()) payload = "{";
    }
    Result<Principal> result = VerifyJwt(SignJwtPayload(payload, kJwtSecret), kJwtSecret, kNowMs);
    if (result.ok()) {
      ++accepted;
      EXPECT_FALSE(result->tenants.empty());
    } else {
      ASSERT_EQ(result.status().code(), StatusCode::kUnauthenticated);
    }
  }
  // Some edits (e.g. inside a tenant name) leave a valid token; most do not.
  EXPECT_LT(accepted, 5000);
}

// ---- Authenticator -----------------------------------------------------------------

class AuthenticatorTest : public ::testing::Test {
 protected:
  GeneratedApiKey AddKey(std::vector<std::string> tenants, Scope scope) {
    Result<GeneratedApiKey> key = GenerateApiKey();
    EXPECT_TRUE(key.ok());
    ApiKeyRecord record;
    record.key_id = key->key_id;
    record.secret_hash = HashSecret(key->secret);
    record.tenants = std::move(tenants);
    record.scope = scope;
    record.created_at_ms = kNowMs;
    EXPECT_TRUE(store_.CreateApiKey(record).ok());
    return *key;
  }

  static std::string Bearer(const std::string& token) { return "Bearer " + token; }

  FakeMetaStore store_;
};

TEST_F(AuthenticatorTest, AcceptsApiKeyInEitherHeader) {
  GeneratedApiKey key = AddKey({"acme"}, Scope::kWrite);
  Authenticator auth(&store_, std::nullopt);

  Result<Principal> via_bearer = auth.Authenticate(Bearer(key.full_text), "", kNowMs);
  ASSERT_TRUE(via_bearer.ok()) << via_bearer.status().ToString();
  EXPECT_EQ(via_bearer->subject, key.key_id);
  EXPECT_EQ(via_bearer->tenants, std::vector<std::string>{"acme"});
  EXPECT_EQ(via_bearer->scope, Scope::kWrite);

  Result<Principal> via_header = auth.Authenticate("", key.full_text, kNowMs);
  ASSERT_TRUE(via_header.ok()) << via_header.status().ToString();
  EXPECT_EQ(*via_header, *via_bearer);

  // Scheme is case-insensitive; blanks around the parts are tolerated.
  EXPECT_TRUE(auth.Authenticate("  bearer   " + key.full_text + " ", "", kNowMs).ok());
  EXPECT_TRUE(auth.Authenticate("BEARER\t" + key.full_text, "", kNowMs).ok());
  // The same key in both headers is not a conflict.
  EXPECT_TRUE(auth.Authenticate(Bearer(key.full_text), key.full_text, kNowMs).ok());
}

TEST_F(AuthenticatorTest, MissingOrMalformedCredentials) {
  GeneratedApiKey key = AddKey({"acme"}, Scope::kWrite);
  GeneratedApiKey other = AddKey({"acme"}, Scope::kRead);
  Authenticator auth(&store_, std::nullopt);

  Result<Principal> missing = auth.Authenticate("", "", kNowMs);
  ExpectUnauthenticated(missing, "missing");
  EXPECT_EQ(missing.status().message(), "missing credentials");
  ExpectUnauthenticated(auth.Authenticate("   ", " ", kNowMs), "blank");

  const std::vector<std::string> bad_authorization = {
      "Basic " + key.full_text,
      "Bearer",
      "Bearer ",
      "Bearer  ",
      key.full_text,
      "Bearer " + key.full_text + " extra",
      "Bearer hello",
      "Bearer cairn_",
      "Token abc",
      "Bearer " + key.full_text.substr(0, key.full_text.size() - 1)};
  for (const std::string& header : bad_authorization) {
    Result<Principal> result = auth.Authenticate(header, "", kNowMs);
    ExpectUnauthenticated(result, header);
    EXPECT_EQ(result.status().message().find(key.secret), std::string::npos);
  }
  ExpectUnauthenticated(auth.Authenticate("", "not-a-key", kNowMs), "x-api-key junk");
  ExpectUnauthenticated(auth.Authenticate("", "a.b.c", kNowMs), "jwt in x-api-key");
  Result<Principal> conflict = auth.Authenticate(Bearer(key.full_text), other.full_text, kNowMs);
  ExpectUnauthenticated(conflict, "two keys");
  EXPECT_EQ(conflict.status().message().find(key.secret), std::string::npos);
  EXPECT_EQ(conflict.status().message().find(other.secret), std::string::npos);
}

TEST_F(AuthenticatorTest, UnknownWrongAndRevokedKeysLookAlikeWithoutTheSecret) {
  GeneratedApiKey key = AddKey({"acme"}, Scope::kWrite);
  GeneratedApiKey revoked = AddKey({"acme"}, Scope::kWrite);
  ASSERT_TRUE(store_.RevokeApiKey(revoked.key_id).ok());
  Authenticator auth(&store_, std::nullopt);

  GeneratedApiKey unknown = *GenerateApiKey();
  GeneratedApiKey stranger = *GenerateApiKey();
  std::string wrong_secret = "cairn_" + key.key_id + "_" + stranger.secret;
  std::string revoked_wrong_secret = "cairn_" + revoked.key_id + "_" + stranger.secret;

  Result<Principal> r1 = auth.Authenticate(Bearer(unknown.full_text), "", kNowMs);
  Result<Principal> r2 = auth.Authenticate(Bearer(wrong_secret), "", kNowMs);
  Result<Principal> r3 = auth.Authenticate(Bearer(revoked_wrong_secret), "", kNowMs);
  Result<Principal> r4 = auth.Authenticate(Bearer(revoked.full_text), "", kNowMs);
  ExpectUnauthenticated(r1, "unknown");
  ExpectUnauthenticated(r2, "wrong secret");
  ExpectUnauthenticated(r3, "revoked, wrong secret");
  ExpectUnauthenticated(r4, "revoked");
  EXPECT_EQ(r1.status().message(), "invalid API key");
  EXPECT_EQ(r2.status().message(), r1.status().message());
  EXPECT_EQ(r3.status().message(), r1.status().message());
  // Whoever holds the whole key learns that it was revoked (and nothing it did not know).
  EXPECT_EQ(r4.status().message(), "the API key " + revoked.key_id + " was revoked");
  for (const auto* r : {&r1, &r2, &r3, &r4}) {
    EXPECT_EQ(r->status().message().find(stranger.secret), std::string::npos);
    EXPECT_EQ(r->status().message().find(revoked.secret), std::string::npos);
  }
  EXPECT_EQ(auth.cached_key_count(), 0u);  // failures are never cached
}

TEST_F(AuthenticatorTest, StoreOutageIsNotABadCredential) {
  GeneratedApiKey key = AddKey({"acme"}, Scope::kWrite);
  store_.set_unavailable(true);
  Authenticator auth(&store_, std::nullopt);
  Result<Principal> result = auth.Authenticate(Bearer(key.full_text), "", kNowMs);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(result.status().message().find(key.secret), std::string::npos);
}

TEST_F(AuthenticatorTest, JwtNeedsAConfiguredSecret) {
  std::string token = CreateJwt({{"acme"}, Scope::kRead, kNowS + 60, std::nullopt}, kJwtSecret);
  Authenticator without(&store_, std::nullopt);
  Result<Principal> disabled = without.Authenticate(Bearer(token), "", kNowMs);
  ExpectUnauthenticated(disabled, "disabled");
  EXPECT_EQ(disabled.status().message(), "JWT auth is not enabled");
  Authenticator empty(&store_, std::string());
  ExpectUnauthenticated(empty.Authenticate(Bearer(token), "", kNowMs), "empty secret");

  Authenticator with(&store_, std::string(kJwtSecret));
  Result<Principal> principal = with.Authenticate(Bearer(token), "", kNowMs);
  ASSERT_TRUE(principal.ok()) << principal.status().ToString();
  EXPECT_EQ(principal->subject, "jwt");
  EXPECT_EQ(principal->tenants, std::vector<std::string>{"acme"});

  Result<Principal> expired = with.Authenticate(Bearer(token), "", (kNowS + 60) * 1000);
  ExpectUnauthenticated(expired, "expired");
  EXPECT_EQ(expired.status().message(), "token expired");
  EXPECT_EQ(store_.get_calls(), 0);  // JWTs never touch the database
}

TEST_F(AuthenticatorTest, AuthorizeChecksTenantThenScope) {
  Principal reader{"k", {"acme", "beta"}, Scope::kRead};
  EXPECT_TRUE(Authenticator::Authorize(reader, "acme", Scope::kRead).ok());
  EXPECT_TRUE(Authenticator::Authorize(reader, "beta", Scope::kRead).ok());

  Status wrong_tenant = Authenticator::Authorize(reader, "gamma", Scope::kRead);
  EXPECT_EQ(wrong_tenant.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(wrong_tenant.message(), "credential is not valid for tenant 'gamma'");

  Status low_scope = Authenticator::Authorize(reader, "acme", Scope::kWrite);
  EXPECT_EQ(low_scope.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(low_scope.message(), "credential has scope 'read' but this needs 'write'");

  Principal admin{"k", {"*"}, Scope::kAdmin};
  for (Scope needed : {Scope::kRead, Scope::kWrite, Scope::kAdmin}) {
    EXPECT_TRUE(Authenticator::Authorize(admin, "anyone", needed).ok());
  }
  Principal writer{"k", {"acme"}, Scope::kWrite};
  EXPECT_TRUE(Authenticator::Authorize(writer, "acme", Scope::kWrite).ok());
  EXPECT_EQ(Authenticator::Authorize(writer, "acme", Scope::kAdmin).code(),
            StatusCode::kPermissionDenied);
}

TEST_F(AuthenticatorTest, EndToEndKeyAndJwtAuthorization) {
  GeneratedApiKey key = AddKey({"acme"}, Scope::kWrite);
  Authenticator auth(&store_, std::string(kJwtSecret));
  Result<Principal> from_key = auth.Authenticate("", key.full_text, kNowMs);
  ASSERT_TRUE(from_key.ok());
  EXPECT_TRUE(Authenticator::Authorize(*from_key, "acme", Scope::kWrite).ok());
  EXPECT_EQ(Authenticator::Authorize(*from_key, "beta", Scope::kRead).code(),
            StatusCode::kPermissionDenied);

  std::string token = CreateJwt({{"beta"}, Scope::kRead, kNowS + 60, std::nullopt}, kJwtSecret);
  Result<Principal> from_jwt = auth.Authenticate(Bearer(token), "", kNowMs);
  ASSERT_TRUE(from_jwt.ok());
  EXPECT_TRUE(Authenticator::Authorize(*from_jwt, "beta", Scope::kRead).ok());
  EXPECT_EQ(Authenticator::Authorize(*from_jwt, "beta", Scope::kWrite).code(),
            StatusCode::kPermissionDenied);
}

TEST_F(AuthenticatorTest, CacheAvoidsRepeatedLookupsWithinTtl) {
  GeneratedApiKey key = AddKey({"acme"}, Scope::kWrite);
  Authenticator auth(&store_, std::nullopt, {.cache_ttl_ms = 1000, .cache_capacity = 100});
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(auth.Authenticate(Bearer(key.full_text), "", kNowMs + i * 100).ok());
  }
  EXPECT_EQ(store_.get_calls(), 1);
  ASSERT_TRUE(auth.Authenticate(Bearer(key.full_text), "", kNowMs + 1000).ok());
  EXPECT_EQ(store_.get_calls(), 2);

  // A cached key still checks the presented secret, without asking the store.
  std::string wrong = "cairn_" + key.key_id + "_" + GenerateApiKey()->secret;
  ExpectUnauthenticated(auth.Authenticate(Bearer(wrong), "", kNowMs + 1000), "wrong secret");
  EXPECT_EQ(store_.get_calls(), 2);

  // A clock that steps back does not extend an entry's life.
  ASSERT_TRUE(auth.Authenticate(Bearer(key.full_text), "", kNowMs).ok());
  EXPECT_EQ(store_.get_calls(), 3);
}

TEST_F(AuthenticatorTest, CachedPathAnswersWithoutTheStoreOrDefers) {
  GeneratedApiKey key = AddKey({"acme"}, Scope::kWrite);
  Authenticator auth(&store_, std::string(kJwtSecret),
                     {.cache_ttl_ms = 1000, .cache_capacity = 100});
  // Not cached yet: the caller must go to the store (nullopt), and nothing was asked.
  EXPECT_FALSE(auth.TryAuthenticateCached(Bearer(key.full_text), "", kNowMs).has_value());
  EXPECT_EQ(store_.get_calls(), 0);
  ASSERT_TRUE(auth.Authenticate(Bearer(key.full_text), "", kNowMs).ok());
  EXPECT_EQ(store_.get_calls(), 1);

  std::optional<Result<Principal>> cached =
      auth.TryAuthenticateCached(Bearer(key.full_text), "", kNowMs + 500);
  ASSERT_TRUE(cached.has_value());
  ASSERT_TRUE(cached->ok());
  EXPECT_TRUE(Authenticator::Authorize(**cached, "acme", Scope::kWrite).ok());
  // The secret is still checked; a wrong one is refused from the cache too.
  std::string wrong = "cairn_" + key.key_id + "_" + GenerateApiKey()->secret;
  cached = auth.TryAuthenticateCached(Bearer(wrong), "", kNowMs + 500);
  ASSERT_TRUE(cached.has_value());
  ExpectUnauthenticated(*cached, "wrong secret");
  // Past the TTL the verdict is the store's again.
  EXPECT_FALSE(auth.TryAuthenticateCached(Bearer(key.full_text), "", kNowMs + 1000).has_value());
  EXPECT_EQ(store_.get_calls(), 1);

  // Credentials that need no store are answered directly.
  cached = auth.TryAuthenticateCached("", "", kNowMs);
  ASSERT_TRUE(cached.has_value());
  ExpectUnauthenticated(*cached, "missing");
  std::string token = CreateJwt({{"beta"}, Scope::kRead, kNowS + 60, std::nullopt}, kJwtSecret);
  cached = auth.TryAuthenticateCached(Bearer(token), "", kNowMs);
  ASSERT_TRUE(cached.has_value());
  EXPECT_TRUE(cached->ok());
}

TEST_F(AuthenticatorTest, RevocationTakesEffectWithinTtl) {
  GeneratedApiKey key = AddKey({"acme"}, Scope::kWrite);
  Authenticator auth(&store_, std::nullopt, {.cache_ttl_ms = 1000, .cache_capacity = 100});
  ASSERT_TRUE(auth.Authenticate(Bearer(key.full_text), "", kNowMs).ok());
  ASSERT_TRUE(store_.RevokeApiKey(key.key_id).ok());
  // Within the bound the cached verdict may still be used...
  EXPECT_TRUE(auth.Authenticate(Bearer(key.full_text), "", kNowMs + 999).ok());
  // ...but not beyond it.
  ExpectUnauthenticated(auth.Authenticate(Bearer(key.full_text), "", kNowMs + 1000), "revoked");
  ExpectUnauthenticated(auth.Authenticate(Bearer(key.full_text), "", kNowMs + 1001), "revoked");
}

TEST_F(AuthenticatorTest, InvalidateAppliesRevocationAtOnce) {
  GeneratedApiKey key = AddKey({"acme"}, Scope::kWrite);
  Authenticator auth(&store_, std::nullopt);
  ASSERT_TRUE(auth.Authenticate(Bearer(key.full_text), "", kNowMs).ok());
  ASSERT_TRUE(store_.RevokeApiKey(key.key_id).ok());
  auth.Invalidate(key.key_id);
  ExpectUnauthenticated(auth.Authenticate(Bearer(key.full_text), "", kNowMs), "revoked");
}

TEST_F(AuthenticatorTest, CacheIsBounded) {
  std::vector<GeneratedApiKey> keys;
  for (int i = 0; i < 10; ++i) keys.push_back(AddKey({"acme"}, Scope::kRead));
  Authenticator auth(&store_, std::nullopt, {.cache_ttl_ms = 60'000, .cache_capacity = 3});
  for (int round = 0; round < 3; ++round) {
    for (size_t i = 0; i < keys.size(); ++i) {
      ASSERT_TRUE(auth.Authenticate(Bearer(keys[i].full_text), "", kNowMs + round * 10 + i).ok());
      EXPECT_LE(auth.cached_key_count(), 3u);
    }
  }
  // The most recently verified key is the one still cached.
  int calls = store_.get_calls();
  ASSERT_TRUE(auth.Authenticate(Bearer(keys.back().full_text), "", kNowMs + 100).ok());
  EXPECT_EQ(store_.get_calls(), calls);
}

TEST_F(AuthenticatorTest, ZeroTtlDisablesCaching) {
  GeneratedApiKey key = AddKey({"acme"}, Scope::kRead);
  Authenticator auth(&store_, std::nullopt, {.cache_ttl_ms = 0, .cache_capacity = 100});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(auth.Authenticate("", key.full_text, kNowMs).ok());
  EXPECT_EQ(store_.get_calls(), 3);
  EXPECT_EQ(auth.cached_key_count(), 0u);
}

TEST_F(AuthenticatorTest, ConcurrentAuthenticationIsSafe) {
  std::vector<GeneratedApiKey> keys;
  for (int i = 0; i < 6; ++i) keys.push_back(AddKey({"acme"}, Scope::kWrite));
  Authenticator auth(&store_, std::string(kJwtSecret), {.cache_ttl_ms = 5, .cache_capacity = 4});
  std::string token = CreateJwt({{"acme"}, Scope::kRead, kNowS + 3600, std::nullopt}, kJwtSecret);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < 2000; ++i) {
        TimestampMs now = kNowMs + i;
        size_t which = rng() % (keys.size() + 2);
        Result<Principal> result =
            which < keys.size()    ? auth.Authenticate("", keys[which].full_text, now)
            : which == keys.size() ? auth.Authenticate(Bearer(token), "", now)
                                   : auth.Authenticate(Bearer("cairn_bogus"), "", now);
        bool expect_ok = which <= keys.size();
        if (result.ok() != expect_ok) failures.fetch_add(1);
        if (t == 0 && i % 100 == 0) auth.Invalidate(keys[rng() % keys.size()].key_id);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_LE(auth.cached_key_count(), 4u);
}

// The same flow against the real in-memory engine, to catch contract mismatches the fake
// could hide (e.g. how tenants and revocation round-trip through the store).
TEST(AuthenticatorMemoryStoreTest, AuthenticatesAgainstMemoryEngine) {
  Result<std::unique_ptr<meta::MetaStore>> store = meta::OpenMetaStore("memory:");
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Result<GeneratedApiKey> key = GenerateApiKey();
  ASSERT_TRUE(key.ok());
  ApiKeyRecord record;
  record.key_id = key->key_id;
  record.secret_hash = HashSecret(key->secret);
  record.tenants = {"acme", "beta"};
  record.scope = Scope::kWrite;
  record.created_at_ms = kNowMs;
  record.description = "test key";
  ASSERT_TRUE((*store)->CreateApiKey(record).ok());

  Authenticator auth(store->get(), std::nullopt);
  Result<Principal> principal = auth.Authenticate("Bearer " + key->full_text, "", kNowMs);
  ASSERT_TRUE(principal.ok()) << principal.status().ToString();
  EXPECT_EQ(principal->subject, key->key_id);
  EXPECT_EQ(principal->tenants, (std::vector<std::string>{"acme", "beta"}));
  EXPECT_TRUE(Authenticator::Authorize(*principal, "beta", Scope::kWrite).ok());
  EXPECT_EQ(Authenticator::Authorize(*principal, "gamma", Scope::kRead).code(),
            StatusCode::kPermissionDenied);

  Result<Principal> unknown = auth.Authenticate("", GenerateApiKey()->full_text, kNowMs);
  ExpectUnauthenticated(unknown, "unknown");
  EXPECT_EQ(unknown.status().message(), "invalid API key");

  ASSERT_TRUE((*store)->RevokeApiKey(key->key_id).ok());
  ExpectUnauthenticated(auth.Authenticate("", key->full_text, kNowMs + 1000), "revoked");
}

}  // namespace
}  // namespace cairn::auth
