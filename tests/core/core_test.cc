#include <gtest/gtest.h>

#include <random>

#include "api/common/range.h"
#include "api/common/rate_limiter.h"
#include "core/hashing.h"
#include "core/sha256_pair.h"
#include "core/types.h"
#include "http/exchange.h"
#include "metrics/registry.h"

namespace cairn {
namespace {

TEST(Status, ReasonSurvivesContextAndResult) {
  Status plain = InvalidArgumentError("bad input");
  EXPECT_EQ(plain.reason(), ErrorReason::kNone);
  Status typed = plain.WithReason(ErrorReason::kBadDigest);
  EXPECT_EQ(typed.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(typed.reason(), ErrorReason::kBadDigest);
  EXPECT_EQ(typed.message(), "bad input");  // the reason is not spelled into the text
  Status wrapped = typed.WithContext("upload 7");
  EXPECT_EQ(wrapped.reason(), ErrorReason::kBadDigest);
  EXPECT_EQ(wrapped.message(), "upload 7: bad input");
  Result<int> result = wrapped;
  EXPECT_EQ(result.status().reason(), ErrorReason::kBadDigest);
  EXPECT_TRUE(OkStatus().WithReason(ErrorReason::kBadDigest).ok());
  EXPECT_EQ(OkStatus().WithReason(ErrorReason::kBadDigest).reason(), ErrorReason::kNone);
  EXPECT_EQ(ErrorReasonName(ErrorReason::kNoSuchUpload), "NoSuchUpload");
}

TEST(ObjectId, RoundTripsCanonicalText) {
  std::array<uint8_t, 16> random{};
  for (int i = 0; i < 16; ++i) random[i] = static_cast<uint8_t>(i * 17);
  ObjectId id = ObjectId::FromRandomBytes(random);
  std::string text = id.ToString();
  ASSERT_EQ(text.size(), 36u);
  EXPECT_EQ(text[14], '4');  // version 4
  auto parsed = ObjectId::Parse(text);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, id);
}

TEST(ObjectId, RejectsMalformed) {
  for (const char* bad : {"", "not-a-uuid", "550e8400e29b41d4a716446655440000",
                          "550e8400-e29b-41d4-a716-44665544000g",
                          "550e8400-e29b-41d4-a716-4466554400000", "../../etc/passwd"}) {
    EXPECT_FALSE(ObjectId::Parse(bad).ok()) << bad;
  }
}

TEST(Keys, ValidationFollowsTheSpec) {
  EXPECT_TRUE(ValidateKey("a").ok());
  EXPECT_TRUE(ValidateKey("../../etc/passwd").ok());  // an ordinary key, never a path
  EXPECT_TRUE(ValidateKey("dir/sub dir/\xc3\xa9t\xc3\xa9.txt").ok());
  EXPECT_TRUE(ValidateKey(std::string(1024, 'k')).ok());
  EXPECT_FALSE(ValidateKey(std::string(1025, 'k')).ok());
  EXPECT_FALSE(ValidateKey("").ok());
  EXPECT_FALSE(ValidateKey(std::string("a\0b", 3)).ok());
  EXPECT_FALSE(ValidateKey("\xc3").ok());              // truncated sequence
  EXPECT_FALSE(ValidateKey("\xc0\xaf").ok());          // overlong '/'
  EXPECT_FALSE(ValidateKey("\xed\xa0\x80").ok());      // surrogate
  EXPECT_FALSE(ValidateKey("\xf4\x90\x80\x80").ok());  // past U+10FFFF
}

TEST(Names, TenantAndNamespaceRules) {
  EXPECT_TRUE(ValidateName("tenant", "acme").ok());
  EXPECT_TRUE(ValidateName("tenant", "a.b-c_9").ok());
  EXPECT_FALSE(ValidateName("tenant", "").ok());
  EXPECT_FALSE(ValidateName("tenant", "Acme").ok());
  EXPECT_FALSE(ValidateName("tenant", ".hidden").ok());
  EXPECT_FALSE(ValidateName("tenant", "a/b").ok());
  EXPECT_FALSE(ValidateName("tenant", std::string(64, 'a')).ok());
}

TEST(Hex, DigitsCodecAndLowerCaseCheck) {
  EXPECT_EQ(HexDigitValue('0'), 0);
  EXPECT_EQ(HexDigitValue('9'), 9);
  EXPECT_EQ(HexDigitValue('a'), 10);
  EXPECT_EQ(HexDigitValue('F'), 15);
  EXPECT_EQ(HexDigitValue('g'), -1);
  EXPECT_EQ(HexDigitValue('\0'), -1);
  EXPECT_EQ(HexEncode(std::string("\x00\xff\x10", 3)), "00ff10");
  EXPECT_EQ(HexDecode("00Ff10").value(), std::string("\x00\xff\x10", 3));
  EXPECT_FALSE(HexDecode("0").ok());
  EXPECT_FALSE(HexDecode("0g").ok());
  EXPECT_TRUE(IsLowerHex("00ff10", 6));
  EXPECT_FALSE(IsLowerHex("00FF10", 6));  // upper case
  EXPECT_FALSE(IsLowerHex("00ff10", 4));  // length
  EXPECT_FALSE(IsLowerHex("00ff1z", 6));
}

TEST(Hashing, KnownVectors) {
  EXPECT_EQ(Sha256Of("").ToHex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Of("abc").ToHex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Md5Hasher md5;
  md5.Update("abc");
  EXPECT_EQ(HexEncode(md5.Finish()), "900150983cd24fb0d6963f7d28e17f72");
  Sha256Hasher streaming;
  streaming.Update("a");
  streaming.Update("bc");
  EXPECT_EQ(streaming.Finish(), Sha256Of("abc"));
}

// The pair must give exactly the digests of separate SHA-256 computations, whatever the
// piece sizes and part boundaries (block-aligned parts use the shared pass, others not).
// Odd rounds use UpdateAndCopy, whose copy must be exactly the bytes.
TEST(Sha256Pair, MatchesSeparateDigestsForRandomSplits) {
  std::mt19937_64 rng(20261123);
  std::string data(300000, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  const size_t part_sizes[] = {1, 63, 64, 65, 127, 128, 4096, 65536, 100003};
  for (int round = 0; round < 200; ++round) {
    const size_t part_size = part_sizes[round % 9];
    const size_t total = rng() % (round < 20 || part_size < 64 ? 2000 : data.size());
    Sha256Pair pair;
    const bool copying = round % 2 == 1;
    std::string copy(total, '\x5a');
    size_t offset = 0;
    size_t part_start = 0;
    while (offset < total) {
      size_t piece = std::min<size_t>(1 + rng() % 70000, total - offset);
      piece = std::min(piece, part_start + part_size - offset);  // a piece never spans parts
      if (copying) {
        pair.UpdateAndCopy(std::string_view(data).substr(offset, piece), copy.data() + offset);
      } else {
        pair.Update(std::string_view(data).substr(offset, piece));
      }
      offset += piece;
      if (offset == part_start + part_size) {
        ASSERT_EQ(pair.FinishPart(), Sha256Of(std::string_view(data).substr(part_start, part_size)))
            << "round " << round << " part at " << part_start;
        part_start = offset;
      }
    }
    ASSERT_EQ(pair.FinishPart(),
              Sha256Of(std::string_view(data).substr(part_start, total - part_start)))
        << "round " << round;
    ASSERT_EQ(pair.FinishWhole(), Sha256Of(std::string_view(data).substr(0, total)))
        << "round " << round << " total " << total;
    if (copying) {
      ASSERT_TRUE(copy == data.substr(0, total)) << "round " << round;
    }
  }
}

TEST(Sha256Pair, StartsOverAfterFinishWhole) {
  Sha256Pair pair;
  pair.Update("something else");
  (void)pair.FinishWhole();
  pair.Update("abc");
  EXPECT_EQ(pair.FinishPart(), Sha256Of("abc"));
  EXPECT_EQ(pair.FinishWhole(), Sha256Of("abc"));
  EXPECT_EQ(pair.FinishWhole(), Sha256Of(""));
}

TEST(Range, ParsesSingleRanges) {
  auto r = api::ParseRange("bytes=0-9", 100);
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->first, 0u);
  EXPECT_EQ((*r)->last, 9u);
  r = api::ParseRange("bytes=90-", 100);
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->first, 90u);
  EXPECT_EQ((*r)->last, 99u);
  r = api::ParseRange("bytes=-10", 100);
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->first, 90u);
  r = api::ParseRange("bytes=-500", 100);
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->first, 0u);
  r = api::ParseRange("bytes=50-5000", 100);
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->last, 99u);
}

TEST(Range, UnsatisfiableAndIgnored) {
  EXPECT_EQ(api::ParseRange("bytes=100-", 100).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(api::ParseRange("bytes=-0", 100).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(api::ParseRange("bytes=0-", 0).status().code(), StatusCode::kOutOfRange);
  for (const char* ignored : {"items=0-1", "bytes=5-1", "bytes=a-b", "bytes=0-1,5-6", "bytes="}) {
    auto r = api::ParseRange(ignored, 100);
    ASSERT_TRUE(r.ok()) << ignored;
    EXPECT_FALSE(r->has_value()) << ignored;
  }
}

TEST(Range, NumbersPast64BitsAreValidSyntax) {
  // An overlong last-byte-pos is clamped to the end however many digits it has.
  for (const char* header : {"bytes=0-18446744073709551615", "bytes=0-18446744073709551616",
                             "bytes=0-99999999999999999999999999999999"}) {
    auto r = api::ParseRange(header, 100);
    ASSERT_TRUE(r.ok() && r->has_value()) << header;
    EXPECT_EQ((*r)->first, 0u) << header;
    EXPECT_EQ((*r)->last, 99u) << header;
  }
  // A suffix longer than the object selects all of it; a first byte past any object's
  // end is unsatisfiable.
  auto suffix = api::ParseRange("bytes=-99999999999999999999999", 100);
  ASSERT_TRUE(suffix.ok() && suffix->has_value());
  EXPECT_EQ((*suffix)->first, 0u);
  EXPECT_EQ(api::ParseRange("bytes=99999999999999999999999-", 100).status().code(),
            StatusCode::kOutOfRange);
  EXPECT_EQ(api::ParseRange("bytes=18446744073709551616-18446744073709551617", 100).status().code(),
            StatusCode::kOutOfRange);
}

TEST(Url, PercentDecodeAndQuery) {
  EXPECT_EQ(*http::PercentDecode("a%2Fb%20c", false), "a/b c");
  EXPECT_EQ(*http::PercentDecode("a+b", true), "a b");
  EXPECT_EQ(*http::PercentDecode("a+b", false), "a+b");
  EXPECT_FALSE(http::PercentDecode("%", false).ok());
  EXPECT_FALSE(http::PercentDecode("%4", false).ok());
  EXPECT_FALSE(http::PercentDecode("%zz", false).ok());
  auto query = http::ParseQuery("namespace=ns&prefix=a%2Fb&limit=10&&flag");
  ASSERT_TRUE(query.ok());
  ASSERT_EQ(query->size(), 4u);
  EXPECT_EQ((*query)[1].second, "a/b");
  EXPECT_EQ((*query)[3].first, "flag");
  EXPECT_EQ(http::PercentEncode("a b/é"), "a%20b%2F%C3%A9");
}

TEST(RateLimiter, RefusesBeyondBurstAndRefills) {
  api::RateLimiter limiter(5);  // burst 10
  int allowed = 0;
  for (int i = 0; i < 50; ++i) allowed += limiter.Acquire("t", 1000) == 0;
  EXPECT_EQ(allowed, 10);
  EXPECT_GE(limiter.Acquire("t", 1000), 1);
  EXPECT_EQ(limiter.Acquire("other", 1000), 0);    // per tenant
  EXPECT_EQ(limiter.Acquire("t", 1000 + 400), 0);  // 2 tokens refilled
}

TEST(Metrics, RendersCountersAndCumulativeHistograms) {
  metrics::Registry registry;
  registry.DeclareCounter("c_total", "A counter.");
  registry.DeclareHistogram("h_seconds", "A histogram.", {0.1, 1});
  registry.Increment("c_total", {{"a", "x\"y"}}, 2);
  registry.Observe("h_seconds", {}, 0.05);
  registry.Observe("h_seconds", {}, 0.5);
  registry.Observe("h_seconds", {}, 5);
  std::string text = registry.Render();
  EXPECT_NE(text.find("# TYPE c_total counter"), std::string::npos);
  EXPECT_NE(text.find("c_total{a=\"x\\\"y\"} 2"), std::string::npos);
  EXPECT_NE(text.find("h_seconds_bucket{le=\"0.1\"} 1"), std::string::npos);
  EXPECT_NE(text.find("h_seconds_bucket{le=\"1\"} 2"), std::string::npos);
  EXPECT_NE(text.find("h_seconds_bucket{le=\"+Inf\"} 3"), std::string::npos);
  EXPECT_NE(text.find("h_seconds_count 3"), std::string::npos);
}

}  // namespace
}  // namespace cairn
