#include "api/common/range.h"

#include <cstdint>

#include "core/text.h"

namespace cairn::api {
namespace {

// A position or length is 1*DIGIT with no upper bound (RFC 9110 section 14.1.1), so a
// number too large for 64 bits is still valid syntax: it saturates at UINT64_MAX, which is
// past the end of any object. The caller then treats it as it treats any overlong value:
// a last-byte-pos is clamped to the end (206), a first-byte-pos is unsatisfiable (416), a
// suffix length selects the whole object. Only text that is not digits is invalid syntax,
// and an invalid Range header is ignored (200 with the whole object).
std::optional<uint64_t> ParseNumber(std::string_view text) {
  if (text.empty()) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) {
      value = UINT64_MAX;
    } else {
      value = value * 10 + digit;
    }
  }
  return value;
}

}  // namespace

Result<std::optional<ByteRange>> ParseRange(std::string_view header, uint64_t size) {
  header = TrimAscii(header, kHttpWhitespace);
  constexpr std::string_view kUnit = "bytes=";
  if (header.substr(0, kUnit.size()) != kUnit) return std::optional<ByteRange>();
  std::string_view spec = TrimAscii(header.substr(kUnit.size()), kHttpWhitespace);
  if (spec.find(',') != std::string_view::npos) return std::optional<ByteRange>();
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return std::optional<ByteRange>();
  std::string_view first_text = TrimAscii(spec.substr(0, dash), kHttpWhitespace);
  std::string_view last_text = TrimAscii(spec.substr(dash + 1), kHttpWhitespace);
  ByteRange range;
  if (first_text.empty()) {  // suffix: the last N bytes
    auto suffix = ParseNumber(last_text);
    if (!suffix) return std::optional<ByteRange>();
    if (*suffix == 0 || size == 0) {
      return OutOfRangeError("range " + std::string(spec) + " is not satisfiable");
    }
    range.first = *suffix >= size ? 0 : size - *suffix;
    range.last = size - 1;
    return std::optional<ByteRange>(range);
  }
  auto first = ParseNumber(first_text);
  if (!first) return std::optional<ByteRange>();
  std::optional<uint64_t> last;
  if (!last_text.empty()) {
    last = ParseNumber(last_text);
    if (!last || *last < *first) return std::optional<ByteRange>();
  }
  if (*first >= size) {
    return OutOfRangeError("range " + std::string(spec) + " starts past the end (" +
                           std::to_string(size) + " bytes)");
  }
  range.first = *first;
  range.last = last ? std::min(*last, size - 1) : size - 1;
  return std::optional<ByteRange>(range);
}

}  // namespace cairn::api
