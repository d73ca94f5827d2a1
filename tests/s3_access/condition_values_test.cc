#include "api/s3/access/condition_values.h"

#include <gtest/gtest.h>

namespace cairn::s3 {
namespace {

TEST(ParsePolicyNumber, ReadsFiniteDecimals) {
  EXPECT_EQ(ParsePolicyNumber("10"), 10.0);
  EXPECT_EQ(ParsePolicyNumber("-2.5"), -2.5);
  EXPECT_EQ(ParsePolicyNumber("1e3"), 1000.0);
  EXPECT_EQ(ParsePolicyNumber("0"), 0.0);
  for (const char* bad :
       {"", " 1", "1 ", "+1", "0x10", "inf", "nan", "1e999", "1,5", "--1", "1.2.3", "ten"}) {
    EXPECT_FALSE(ParsePolicyNumber(bad)) << bad;
  }
}

TEST(ParsePolicyDate, EpochSecondsAndIso8601) {
  EXPECT_EQ(ParsePolicyDate("0"), 0);
  EXPECT_EQ(ParsePolicyDate("1735689600"), 1735689600000);
  EXPECT_EQ(ParsePolicyDate("2025-01-01"), 1735689600000);
  EXPECT_EQ(ParsePolicyDate("2025-01-01T00:00:00Z"), 1735689600000);
  EXPECT_EQ(ParsePolicyDate("2025-01-01T00:00Z"), 1735689600000);
  EXPECT_EQ(ParsePolicyDate("2025-01-01T00:00:00"), 1735689600000);
  EXPECT_EQ(ParsePolicyDate("2025-01-01T00:00:00.250Z"), 1735689600250);
  EXPECT_EQ(ParsePolicyDate("2025-01-01T00:00:00.25Z"), 1735689600250);
  EXPECT_EQ(ParsePolicyDate("2025-01-01T02:00:00+02:00"), 1735689600000);
  EXPECT_EQ(ParsePolicyDate("2024-12-31T22:00:00-0200"), 1735689600000);
  EXPECT_EQ(ParsePolicyDate("1970-01-01T00:00:01Z"), 1000);
  EXPECT_EQ(ParsePolicyDate("2024-02-29"), 1709164800000);  // leap day
  EXPECT_EQ(ParsePolicyDate("1969-12-31T23:59:59Z"), -1000);
}

TEST(ParsePolicyDate, RefusesWhatIsNotADate) {
  for (const char* bad :
       {"", "tomorrow", "2025-13-01", "2025-02-29", "2025-00-10", "2025-01-32", "2025-1-1",
        "2025-01-01T24:00:00Z", "2025-01-01T10:60Z", "2025-01-01T10", "2025-01-01 10:00:00",
        "2025-01-01T10:00:00.Z", "2025-01-01T10:00:00+2", "2025-01-01T10:00:00Zjunk",
        "2025-01-01T10:00:00+02:00x", "-5", "9999999999999"}) {
    EXPECT_FALSE(ParsePolicyDate(bad)) << bad;
  }
}

TEST(ParseIpAddress, V4V6AndMapped) {
  auto v4 = ParseIpAddress("192.0.2.7");
  ASSERT_TRUE(v4);
  EXPECT_FALSE(v4->v6);
  EXPECT_EQ(v4->bytes[0], 192);
  EXPECT_EQ(v4->bytes[3], 7);
  auto v6 = ParseIpAddress("2001:db8::1");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->v6);
  EXPECT_EQ(v6->bytes[0], 0x20);
  EXPECT_EQ(v6->bytes[15], 1);
  auto mapped = ParseIpAddress("::ffff:192.0.2.7");
  ASSERT_TRUE(mapped);
  EXPECT_FALSE(mapped->v6);
  EXPECT_EQ(mapped->bytes[3], 7);
  EXPECT_TRUE(ParseIpAddress("[::1]"));
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4x", "::g", "[::1",
                          "1.2.3.4/8", " 1.2.3.4", "localhost"}) {
    EXPECT_FALSE(ParseIpAddress(bad)) << bad;
  }
}

TEST(ParseIpNetwork, PrefixesAndHostBits) {
  auto network = ParseIpNetwork("192.0.2.77/24");
  ASSERT_TRUE(network);
  EXPECT_EQ(network->prefix_length, 24);
  EXPECT_EQ(network->address.bytes[3], 0);  // host bits cleared
  EXPECT_EQ(ParseIpNetwork("192.0.2.7")->prefix_length, 32);
  EXPECT_EQ(ParseIpNetwork("2001:db8::")->prefix_length, 128);
  EXPECT_EQ(ParseIpNetwork("0.0.0.0/0")->prefix_length, 0);
  auto mapped = ParseIpNetwork("::ffff:192.0.2.0/120");
  ASSERT_TRUE(mapped);
  EXPECT_FALSE(mapped->address.v6);
  EXPECT_EQ(mapped->prefix_length, 24);
  for (const char* bad :
       {"192.0.2.0/33", "192.0.2.0/", "192.0.2.0/x", "192.0.2.0/-1", "2001:db8::/129",
        "::ffff:192.0.2.0/64", "/24", "192.0.2.0/2 4", "192.0.2.0/0024"}) {
    EXPECT_FALSE(ParseIpNetwork(bad)) << bad;
  }
}

TEST(NetworkContains, BitBoundaries) {
  auto network = *ParseIpNetwork("10.128.0.0/9");
  EXPECT_TRUE(NetworkContains(network, *ParseIpAddress("10.128.0.1")));
  EXPECT_TRUE(NetworkContains(network, *ParseIpAddress("10.255.255.255")));
  EXPECT_FALSE(NetworkContains(network, *ParseIpAddress("10.127.255.255")));
  auto v6 = *ParseIpNetwork("2001:db8:8000::/33");
  EXPECT_TRUE(NetworkContains(v6, *ParseIpAddress("2001:db8:ffff::1")));
  EXPECT_FALSE(NetworkContains(v6, *ParseIpAddress("2001:db8:7fff::1")));
  // Families never mix.
  EXPECT_FALSE(NetworkContains(*ParseIpNetwork("::/0"), *ParseIpAddress("1.2.3.4")));
  EXPECT_FALSE(NetworkContains(*ParseIpNetwork("0.0.0.0/0"), *ParseIpAddress("::1")));
  EXPECT_TRUE(NetworkContains(*ParseIpNetwork("::/0"), *ParseIpAddress("::1")));
}

}  // namespace
}  // namespace cairn::s3
