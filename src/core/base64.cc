#include "core/base64.h"

#include <array>
#include <cstdint>

namespace cairn {
namespace {

constexpr char kStandardAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kUrlAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// Each character's 6-bit value; -1 marks a character outside the alphabet.
constexpr std::array<int8_t, 256> MakeDecodeTable(const char* alphabet) {
  std::array<int8_t, 256> table{};
  for (auto& entry : table) entry = -1;
  for (int i = 0; i < 64; ++i)
    table[static_cast<unsigned char>(alphabet[i])] = static_cast<int8_t>(i);
  return table;
}

constexpr std::array<int8_t, 256> kStandardTable = MakeDecodeTable(kStandardAlphabet);
constexpr std::array<int8_t, 256> kUrlTable = MakeDecodeTable(kUrlAlphabet);

}  // namespace

std::string Base64Encode(std::string_view bytes, Base64Options options) {
  const char* alphabet =
      options.alphabet == Base64Alphabet::kUrl ? kUrlAlphabet : kStandardAlphabet;
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    out.push_back(alphabet[v >> 18]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(alphabet[(v >> 6) & 63]);
    out.push_back(alphabet[v & 63]);
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = uint32_t{p[i]} << 16;
    if (rest == 2) v |= uint32_t{p[i + 1]} << 8;
    out.push_back(alphabet[v >> 18]);
    out.push_back(alphabet[(v >> 12) & 63]);
    if (rest == 2) out.push_back(alphabet[(v >> 6) & 63]);
    if (options.padding) out.append(3 - rest, '=');
  }
  return out;
}

Result<std::string> Base64Decode(std::string_view text, Base64Options options) {
  const std::array<int8_t, 256>& table =
      options.alphabet == Base64Alphabet::kUrl ? kUrlTable : kStandardTable;
  std::string_view data = text;
  if (options.padding) {
    if (text.size() % 4 != 0) {
      return InvalidArgumentError("base64 text has length " + std::to_string(text.size()) +
                                  ", not a multiple of 4");
    }
    // At most two '=' end the text; any other '=' is refused below as outside the alphabet.
    for (int pad = 0; pad < 2 && !data.empty() && data.back() == '='; ++pad) data.remove_suffix(1);
  }
  // One leftover character carries only 6 bits: never a whole byte.
  if (data.size() % 4 == 1) return InvalidArgumentError("base64 text has an impossible length");
  std::string out;
  out.reserve(data.size() / 4 * 3 + 2);
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : data) {
    const int8_t value = table[static_cast<unsigned char>(c)];
    if (value < 0) return InvalidArgumentError("base64 text has an invalid character");
    buffer = (buffer << 6 | static_cast<uint32_t>(value)) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>(buffer >> bits & 0xff));
    }
  }
  // The 2 or 4 bits the last character carries past the last byte must be zero for the
  // text to be the canonical encoding.
  if (bits > 0 && (buffer & ((1u << bits) - 1)) != 0) {
    return InvalidArgumentError("base64 text is not canonically encoded (non-zero unused bits)");
  }
  return out;
}

}  // namespace cairn
