// Tests for the x-amz-checksum-* algorithms (the Base64 codec is tested in tests/core).
//
// Vectors: the CRC catalogue check values for "123456789" (CRC-32, CRC-32C,
// CRC-64/NVME), the NVMe NVM Command Set specification's CRC-64 examples (4096 bytes of
// 0x00 / 0xFF, 32 zero bytes), FIPS 180 SHA-1/SHA-256 of "123456789", and the AWS S3
// trailing-checksum example (66560 bytes of 'a', CRC32C "sOO8/Q==").

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "api/s3/sigv4/checksum.h"
#include "core/types.h"

namespace cairn::api::s3 {
namespace {

std::string Hex(ChecksumAlgorithm algorithm, std::string_view data) {
  Checksummer c(algorithm);
  c.Update(data);
  return HexEncode(c.FinishRaw());
}

std::string B64(ChecksumAlgorithm algorithm, std::string_view data) {
  Checksummer c(algorithm);
  c.Update(data);
  return c.FinishBase64();
}

// Bit-at-a-time reference CRCs, to cross-check the slicing-by-8 tables.
uint32_t ReferenceCrc32c(std::string_view data) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char b : data) {
    crc ^= b;
    for (int i = 0; i < 8; ++i) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
  }
  return ~crc;
}

uint64_t ReferenceCrc64Nvme(std::string_view data) {
  uint64_t crc = ~0ull;
  for (unsigned char b : data) {
    crc ^= b;
    for (int i = 0; i < 8; ++i) crc = (crc & 1) ? (crc >> 1) ^ 0x9A6C9329AC4BC9B5ull : crc >> 1;
  }
  return ~crc;
}

TEST(ChecksumTest, CheckValuesOf123456789) {
  constexpr std::string_view kCheck = "123456789";
  EXPECT_EQ(Hex(ChecksumAlgorithm::kCrc32, kCheck), "cbf43926");
  EXPECT_EQ(Hex(ChecksumAlgorithm::kCrc32c, kCheck), "e3069283");
  EXPECT_EQ(Hex(ChecksumAlgorithm::kCrc64Nvme, kCheck), "ae8b14860a799888");
  EXPECT_EQ(Hex(ChecksumAlgorithm::kSha1, kCheck), "f7c3bc1d808e04732adf679965ccc34ca7ae3441");
  EXPECT_EQ(Hex(ChecksumAlgorithm::kSha256, kCheck),
            "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225");
  EXPECT_EQ(ExtendCrc32(0, kCheck), 0xcbf43926u);
  EXPECT_EQ(ExtendCrc32c(0, kCheck), 0xe3069283u);
  EXPECT_EQ(ExtendCrc64Nvme(0, kCheck), 0xae8b14860a799888ull);
}

TEST(ChecksumTest, Crc64NvmeSpecificationVectors) {
  EXPECT_EQ(ExtendCrc64Nvme(0, std::string(4096, '\0')), 0x6482D367EB22B64Eull);
  EXPECT_EQ(ExtendCrc64Nvme(0, std::string(4096, '\xff')), 0xC0DDBA7302ECA3ACull);
  EXPECT_EQ(ExtendCrc64Nvme(0, std::string(32, '\0')), 0xCF3473434D4ECF3Bull);
  EXPECT_EQ(B64(ChecksumAlgorithm::kCrc64Nvme, "Hello, World!\n"), "SoXXbx67KpE=");
}

TEST(ChecksumTest, AwsTrailerExampleCrc32c) {
  EXPECT_EQ(B64(ChecksumAlgorithm::kCrc32c, std::string(66560, 'a')), "sOO8/Q==");
}

TEST(ChecksumTest, EmptyInput) {
  EXPECT_EQ(B64(ChecksumAlgorithm::kCrc32, ""), "AAAAAA==");
  EXPECT_EQ(B64(ChecksumAlgorithm::kCrc32c, ""), "AAAAAA==");
  EXPECT_EQ(B64(ChecksumAlgorithm::kCrc64Nvme, ""), "AAAAAAAAAAA=");
  EXPECT_EQ(B64(ChecksumAlgorithm::kSha256, ""), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
  EXPECT_EQ(B64(ChecksumAlgorithm::kSha1, ""), "2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
}

TEST(ChecksumTest, TablesMatchBitwiseReference) {
  std::mt19937 rng(7);
  for (size_t size : {0u, 1u, 7u, 8u, 9u, 15u, 16u, 17u, 63u, 1000u, 4099u}) {
    std::string data(size, '\0');
    for (char& c : data) c = static_cast<char>(rng());
    EXPECT_EQ(ExtendCrc32c(0, data), ReferenceCrc32c(data)) << size;
    EXPECT_EQ(ExtendCrc64Nvme(0, data), ReferenceCrc64Nvme(data)) << size;
  }
}

TEST(ChecksumTest, StreamingEqualsOneShotAtEverySplit) {
  std::mt19937 rng(11);
  std::string data(300, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  for (ChecksumAlgorithm algorithm : kAllChecksumAlgorithms) {
    std::string expected = Hex(algorithm, data);
    Checksummer c(algorithm);
    for (size_t split = 0; split <= data.size(); split += 13) {
      c.Update(std::string_view(data).substr(0, split));
      c.Update(std::string_view(data).substr(split));
      ASSERT_EQ(HexEncode(c.FinishRaw()), expected) << ChecksumAlgorithmName(algorithm);
    }
    EXPECT_EQ(c.FinishRaw().size(), ChecksumSize(algorithm));
  }
}

TEST(ChecksumTest, MovedChecksummerKeepsState) {
  Checksummer a(ChecksumAlgorithm::kSha256);
  a.Update("1234");
  Checksummer b = std::move(a);
  b.Update("56789");
  EXPECT_EQ(HexEncode(b.FinishRaw()),
            "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225");
}

TEST(ChecksumTest, NamesAndHeaders) {
  for (ChecksumAlgorithm algorithm : kAllChecksumAlgorithms) {
    auto parsed = ParseChecksumAlgorithm(ChecksumAlgorithmName(algorithm));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, algorithm);
    EXPECT_EQ(ChecksumAlgorithmFromHeader(ChecksumHeaderName(algorithm)), algorithm);
  }
  EXPECT_EQ(*ParseChecksumAlgorithm("crc32"), ChecksumAlgorithm::kCrc32);
  EXPECT_EQ(*ParseChecksumAlgorithm("Crc64Nvme"), ChecksumAlgorithm::kCrc64Nvme);
  EXPECT_EQ(*ParseChecksumAlgorithm("sha256"), ChecksumAlgorithm::kSha256);
  EXPECT_FALSE(ParseChecksumAlgorithm("MD5").ok());
  EXPECT_FALSE(ParseChecksumAlgorithm("").ok());
  EXPECT_FALSE(ParseChecksumAlgorithm("CRC32 ").ok());
  EXPECT_EQ(ChecksumHeaderName(ChecksumAlgorithm::kCrc32c), "x-amz-checksum-crc32c");
  EXPECT_EQ(ChecksumHeaderName(ChecksumAlgorithm::kCrc64Nvme), "x-amz-checksum-crc64nvme");
  EXPECT_EQ(ChecksumAlgorithmFromHeader("X-Amz-Checksum-SHA1"), ChecksumAlgorithm::kSha1);
  EXPECT_EQ(ChecksumAlgorithmFromHeader("x-amz-checksum-md5"), std::nullopt);
  EXPECT_EQ(ChecksumAlgorithmFromHeader("x-amz-checksum-algorithm"), std::nullopt);
}

}  // namespace
}  // namespace cairn::api::s3
