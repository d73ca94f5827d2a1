// Typed values of policy conditions: numbers, dates, IP addresses and CIDR blocks. Shared
// by the policy parser (which refuses policy values these cannot read) and the evaluator
// (where an unreadable request value matches nothing). Internal to this folder and its
// tests.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace cairn::s3 {

// A finite decimal number: "10", "-2.5", "1e3". No hex, no inf/nan, no surrounding space.
std::optional<double> ParsePolicyNumber(std::string_view text);

// Milliseconds since the Unix epoch, from either
//   - epoch seconds: "1700000000" (what aws:EpochTime holds), or
//   - ISO 8601: "2025-01-31", "2025-01-31T10:00Z", "2025-01-31T10:00:00.123Z",
//     "2025-01-31T10:00:00+02:00" (no zone = UTC).
std::optional<int64_t> ParsePolicyDate(std::string_view text);

struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // IPv4 uses the first 4
};

struct IpNetwork {
  IpAddress address;  // host bits cleared
  int prefix_length = 0;
};

// "192.0.2.7", "2001:db8::1", "[2001:db8::1]". An IPv4-mapped IPv6 address
// ("::ffff:192.0.2.7") is read as the IPv4 address.
std::optional<IpAddress> ParseIpAddress(std::string_view text);
// "192.0.2.0/24", "2001:db8::/32"; a bare address is a /32 or /128. Host bits may be set
// and are ignored ("192.0.2.7/24" is 192.0.2.0/24), as AWS does.
std::optional<IpNetwork> ParseIpNetwork(std::string_view text);
bool NetworkContains(const IpNetwork& network, const IpAddress& address);

}  // namespace cairn::s3
