#include "auth/base64url.h"

#include <array>
#include <cstdint>

namespace cairn::auth {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// -1 marks a character outside the alphabet.
constexpr std::array<int8_t, 256> MakeDecodeTable() {
  std::array<int8_t, 256> table{};
  for (auto& entry : table) entry = -1;
  for (int i = 0; i < 64; ++i)
    table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
  return table;
}

constexpr std::array<int8_t, 256> kDecodeTable = MakeDecodeTable();

}  // namespace

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t group = static_cast<uint8_t>(bytes[i]) << 16 |
                     static_cast<uint8_t>(bytes[i + 1]) << 8 | static_cast<uint8_t>(bytes[i + 2]);
    out.push_back(kAlphabet[group >> 18 & 0x3f]);
    out.push_back(kAlphabet[group >> 12 & 0x3f]);
    out.push_back(kAlphabet[group >> 6 & 0x3f]);
    out.push_back(kAlphabet[group & 0x3f]);
  }
  size_t rest = bytes.size() - i;
  if (rest == 1) {
    uint32_t group = static_cast<uint8_t>(bytes[i]) << 16;
    out.push_back(kAlphabet[group >> 18 & 0x3f]);
    out.push_back(kAlphabet[group >> 12 & 0x3f]);
  } else if (rest == 2) {
    uint32_t group = static_cast<uint8_t>(bytes[i]) << 16 | static_cast<uint8_t>(bytes[i + 1]) << 8;
    out.push_back(kAlphabet[group >> 18 & 0x3f]);
    out.push_back(kAlphabet[group >> 12 & 0x3f]);
    out.push_back(kAlphabet[group >> 6 & 0x3f]);
  }
  return out;
}

Result<std::string> Base64UrlDecode(std::string_view text) {
  // One leftover character carries only 6 bits: never a whole byte.
  if (text.size() % 4 == 1) return InvalidArgumentError("base64url text has an impossible length");
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    int8_t value = kDecodeTable[static_cast<unsigned char>(c)];
    if (value < 0) return InvalidArgumentError("base64url text has an invalid character");
    buffer = (buffer << 6 | static_cast<uint32_t>(value)) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>(buffer >> bits & 0xff));
    }
  }
  // Leftover bits (2 or 4) must be zero for the text to be the canonical encoding.
  if (bits > 0 && (buffer & ((1u << bits) - 1)) != 0) {
    return InvalidArgumentError("base64url text is not canonically encoded");
  }
  return out;
}

}  // namespace cairn::auth
