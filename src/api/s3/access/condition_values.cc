#include "api/s3/access/condition_values.h"

#include <arpa/inet.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <string>

namespace cairn::s3 {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads exactly `count` digits at text[at].
std::optional<int> Digits(std::string_view text, size_t at, size_t count) {
  if (at + count > text.size()) return std::nullopt;
  int value = 0;
  for (size_t i = at; i < at + count; ++i) {
    if (!IsDigit(text[i])) return std::nullopt;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

bool IsLeapYear(int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

int DaysInMonth(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && IsLeapYear(year) ? 29 : kDays[month - 1];
}

// Days from 1970-01-01 to the given proleptic Gregorian date.
int64_t DaysSinceEpoch(int year, int month, int day) {
  int64_t days = 0;
  for (int y = 1970; y < year; ++y) days += IsLeapYear(y) ? 366 : 365;
  for (int y = year; y < 1970; ++y) days -= IsLeapYear(y) ? 366 : 365;
  for (int m = 1; m < month; ++m) days += DaysInMonth(year, m);
  return days + day - 1;
}

}  // namespace

std::optional<double> ParsePolicyNumber(std::string_view text) {
  if (text.empty() || text.size() > 64) return std::nullopt;
  // from_chars accepts "inf"/"nan" and hex only when asked; a leading '+' never.
  for (char c : text) {
    if (!(IsDigit(c) || c == '-' || c == '.' || c == 'e' || c == 'E' || c == '+')) {
      return std::nullopt;
    }
  }
  double value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

std::optional<int64_t> ParsePolicyDate(std::string_view text) {
  if (text.empty() || text.size() > 40) return std::nullopt;
  bool all_digits = true;
  for (char c : text) all_digits = all_digits && IsDigit(c);
  if (all_digits) {
    if (text.size() > 12) return std::nullopt;  // beyond year 33000
    int64_t seconds = 0;
    std::from_chars(text.data(), text.data() + text.size(), seconds);
    return seconds * 1000;
  }
  // YYYY-MM-DD
  auto year = Digits(text, 0, 4);
  auto month = Digits(text, 5, 2);
  auto day = Digits(text, 8, 2);
  if (!year || !month || !day || text[4] != '-' || text[7] != '-') return std::nullopt;
  if (*month < 1 || *month > 12 || *day < 1 || *day > DaysInMonth(*year, *month)) {
    return std::nullopt;
  }
  int64_t ms = DaysSinceEpoch(*year, *month, *day) * 86400000;
  size_t at = 10;
  if (at == text.size()) return ms;
  if (text[at] != 'T' && text[at] != 't') return std::nullopt;
  // Thh:mm[:ss[.fraction]]
  auto hour = Digits(text, at + 1, 2);
  auto minute = Digits(text, at + 4, 2);
  if (!hour || !minute || at + 3 >= text.size() || text[at + 3] != ':' || *hour > 23 ||
      *minute > 59) {
    return std::nullopt;
  }
  ms += (int64_t{*hour} * 3600 + int64_t{*minute} * 60) * 1000;
  at += 6;
  if (at < text.size() && text[at] == ':') {
    auto second = Digits(text, at + 1, 2);
    if (!second || *second > 60) return std::nullopt;
    ms += int64_t{*second} * 1000;
    at += 3;
    if (at < text.size() && (text[at] == '.' || text[at] == ',')) {
      size_t first = ++at;
      int64_t fraction_ms = 0;
      int scale = 100;
      while (at < text.size() && IsDigit(text[at])) {
        fraction_ms += (text[at] - '0') * scale;
        scale /= 10;
        ++at;
      }
      if (at == first || at - first > 9) return std::nullopt;
      ms += fraction_ms;
    }
  }
  if (at == text.size()) return ms;
  // Zone: Z, +hh:mm, -hh:mm, +hhmm, -hhmm
  if ((text[at] == 'Z' || text[at] == 'z') && at + 1 == text.size()) return ms;
  if (text[at] != '+' && text[at] != '-') return std::nullopt;
  int sign = text[at] == '+' ? 1 : -1;
  auto zone_hours = Digits(text, at + 1, 2);
  std::optional<int> zone_minutes;
  if (at + 3 < text.size() && text[at + 3] == ':') {
    zone_minutes = Digits(text, at + 4, 2);
    at += 6;
  } else {
    zone_minutes = Digits(text, at + 3, 2);
    at += 5;
  }
  if (!zone_hours || !zone_minutes || at != text.size() || *zone_hours > 23 || *zone_minutes > 59) {
    return std::nullopt;
  }
  return ms - sign * (int64_t{*zone_hours} * 60 + *zone_minutes) * 60000;
}

std::optional<IpAddress> ParseIpAddress(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  if (text.empty() || text.size() > 45) return std::nullopt;  // INET6_ADDRSTRLEN - 1
  std::string copy(text);
  IpAddress address;
  if (inet_pton(AF_INET, copy.c_str(), address.bytes.data()) == 1) return address;
  if (inet_pton(AF_INET6, copy.c_str(), address.bytes.data()) != 1) return std::nullopt;
  static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(address.bytes.data(), kMappedPrefix, sizeof(kMappedPrefix)) == 0) {
    IpAddress v4;
    std::memcpy(v4.bytes.data(), address.bytes.data() + 12, 4);
    return v4;
  }
  address.v6 = true;
  return address;
}

std::optional<IpNetwork> ParseIpNetwork(std::string_view text) {
  size_t slash = text.find('/');
  std::string_view host = text.substr(0, slash);
  bool mapped = host.find(':') != std::string_view::npos;  // written as IPv6
  auto address = ParseIpAddress(host);
  if (!address) return std::nullopt;
  int max_length = address->v6 ? 128 : 32;
  int length = max_length;
  if (slash != std::string_view::npos) {
    std::string_view digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3) return std::nullopt;
    for (char c : digits) {
      if (!IsDigit(c)) return std::nullopt;
    }
    std::from_chars(digits.data(), digits.data() + digits.size(), length);
    if (mapped && !address->v6) {
      // "::ffff:192.0.2.0/120": the prefix counts the 96 bits of the mapping.
      if (length < 96 || length > 128) return std::nullopt;
      length -= 96;
    }
    if (length > max_length) return std::nullopt;
  }
  IpNetwork network{*address, length};
  for (int bit = length; bit < max_length; ++bit) {
    network.address.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  }
  return network;
}

bool NetworkContains(const IpNetwork& network, const IpAddress& address) {
  if (network.address.v6 != address.v6) return false;
  int full_bytes = network.prefix_length / 8;
  if (std::memcmp(network.address.bytes.data(), address.bytes.data(), full_bytes) != 0) {
    return false;
  }
  int rest = network.prefix_length % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xffu << (8 - rest));
  return (network.address.bytes[full_bytes] & mask) == (address.bytes[full_bytes] & mask);
}

}  // namespace cairn::s3
