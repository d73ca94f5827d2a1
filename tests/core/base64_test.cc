// The Base64 codec of core (RFC 4648): test vectors of section 10, both alphabets, with
// and without padding, and the texts strict decoding refuses.
#include "core/base64.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>
#include <utility>

namespace cairn {
namespace {

constexpr Base64Options kUrlPadded{Base64Alphabet::kUrl, true};
constexpr Base64Options kStandardUnpadded{Base64Alphabet::kStandard, false};

TEST(Base64Test, Rfc4648Vectors) {
  const std::pair<std::string, std::string> kVectors[] = {{"", ""},
                                                          {"f", "Zg=="},
                                                          {"fo", "Zm8="},
                                                          {"foo", "Zm9v"},
                                                          {"foob", "Zm9vYg=="},
                                                          {"fooba", "Zm9vYmE="},
                                                          {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : kVectors) {
    EXPECT_EQ(Base64Encode(plain), encoded);
    auto decoded = Base64Decode(encoded);
    ASSERT_TRUE(decoded.ok()) << encoded;
    EXPECT_EQ(*decoded, plain);

    // The same without padding (the URL-safe alphabet agrees on these characters).
    std::string unpadded = encoded.substr(0, encoded.find('='));
    EXPECT_EQ(Base64Encode(plain, kBase64Url), unpadded);
    EXPECT_EQ(Base64Encode(plain, kStandardUnpadded), unpadded);
    auto decoded_url = Base64Decode(unpadded, kBase64Url);
    ASSERT_TRUE(decoded_url.ok()) << unpadded;
    EXPECT_EQ(*decoded_url, plain);
  }
}

TEST(Base64Test, Alphabets) {
  const std::string bytes("\xfb\xff", 2);
  EXPECT_EQ(Base64Encode(bytes), "+/8=");
  EXPECT_EQ(Base64Encode(bytes, kBase64Url), "-_8");
  EXPECT_EQ(Base64Encode(bytes, kUrlPadded), "-_8=");
  EXPECT_EQ(Base64Decode("+/8=").value(), bytes);
  EXPECT_EQ(Base64Decode("-_8", kBase64Url).value(), bytes);
  EXPECT_EQ(Base64Decode("-_8=", kUrlPadded).value(), bytes);
  // Each alphabet refuses the other's two characters.
  EXPECT_FALSE(Base64Decode("-_8=").ok());
  EXPECT_FALSE(Base64Decode("+/8", kBase64Url).ok());
}

TEST(Base64Test, RoundTripsEveryLengthAndByte) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  EXPECT_EQ(*Base64Decode(Base64Encode(all)), all);

  std::mt19937 rng(7);
  for (size_t length = 0; length < 200; ++length) {
    std::string bytes(length, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    for (Base64Options options : {kBase64Standard, kBase64Url, kUrlPadded, kStandardUnpadded}) {
      Result<std::string> decoded = Base64Decode(Base64Encode(bytes, options), options);
      ASSERT_TRUE(decoded.ok()) << length;
      EXPECT_EQ(*decoded, bytes);
    }
  }
}

TEST(Base64Test, PaddedRejectsNonCanonical) {
  for (std::string_view bad : {
           "Zg",        // padding missing
           "Zg=",       // length not a multiple of 4
           "Zm9v=",     // padding on a whole group
           "Zg===",     // too much padding
           "Z===",      // three '=': one character left over
           "====",      // nothing but padding
           "=Zg=",      // '=' not at the end
           "Zg==Zg==",  // padding inside
           "Zm=v",      // '=' inside a group
           "Zm 9v",     // whitespace
           "Zm9v\n",    // a line break
           "Zm-_",      // the URL-safe alphabet
           "Zh==",      // non-zero unused bits: "Zg==" is the only spelling of "f"
           "Zm9=",      // non-zero unused bits: "fo" is "Zm8="
       }) {
    Result<std::string> decoded = Base64Decode(bad);
    EXPECT_FALSE(decoded.ok()) << bad;
    EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(Base64Decode(std::string("Zm\0v", 4)).ok());
}

TEST(Base64Test, UnpaddedRejectsNonCanonical) {
  for (std::string_view bad : {
           "Zg==",      // padding
           "Zm9v=",     // padding
           "Zm+v",      // the standard alphabet
           "Zm/v",      // the standard alphabet
           "Zm 9v",     // whitespace
           "Z",         // one character left over: never a whole byte
           "Zm9vY",     // the same after a whole group
           "Zm9vYm\n",  // a line break
           "Zh",        // non-zero unused bits
           "Zm9",       // non-zero unused bits
       }) {
    Result<std::string> decoded = Base64Decode(bad, kBase64Url);
    EXPECT_FALSE(decoded.ok()) << bad;
    EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(Base64Decode(std::string("Zm\0v", 4), kBase64Url).ok());
  // Strictness is not overdone: unpadded partial groups are accepted.
  EXPECT_EQ(Base64Decode("Zm8", kBase64Url).value(), "fo");
  EXPECT_EQ(Base64Decode("", kBase64Url).value(), "");
}

}  // namespace
}  // namespace cairn
