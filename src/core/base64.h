// Base64 (RFC 4648), one strict codec for every layer: object checksums and Content-MD5
// (standard alphabet, padded), API key secrets, JWTs and listing cursors (URL-safe
// alphabet, unpadded), inline data in metadata snapshots (standard, padded).
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace cairn {

enum class Base64Alphabet {
  kStandard,  // RFC 4648 section 4: A-Z a-z 0-9 + /
  kUrl,       // RFC 4648 section 5: A-Z a-z 0-9 - _
};

struct Base64Options {
  Base64Alphabet alphabet = Base64Alphabet::kStandard;
  // Encoding writes '=' to a multiple of 4 characters; decoding requires it. Without
  // padding, encoding writes none and decoding refuses any '='.
  bool padding = true;
};

// Standard alphabet with padding (the default options).
inline constexpr Base64Options kBase64Standard{};
// URL-safe alphabet without padding (RFC 4648 section 5, as JWTs use it).
inline constexpr Base64Options kBase64Url{Base64Alphabet::kUrl, false};

std::string Base64Encode(std::string_view bytes, Base64Options options = kBase64Standard);

// Strict decoding; InvalidArgument for a character outside the alphabet (whitespace
// included), padding that is missing, misplaced or present when not expected, a length no
// encoding has, and non-zero unused bits in the last character. Strictness makes the
// encoding a bijection: two different texts never decode to the same bytes (without it,
// a JWT signature with its last character altered could still verify).
Result<std::string> Base64Decode(std::string_view text, Base64Options options = kBase64Standard);

}  // namespace cairn
