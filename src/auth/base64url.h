// Base64url (RFC 4648 section 5) without padding, as used by API key secrets and JWTs.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace cairn::auth {

// Encodes without '=' padding.
std::string Base64UrlEncode(std::string_view bytes);

// Strict decoding: only [A-Za-z0-9_-], no padding, no whitespace, and the unused low bits
// of the last character must be zero. Strictness makes the encoding a bijection, so two
// different texts never decode to the same bytes; without it, a JWT signature with its
// last character altered could still verify. InvalidArgument otherwise.
Result<std::string> Base64UrlDecode(std::string_view text);

}  // namespace cairn::auth
