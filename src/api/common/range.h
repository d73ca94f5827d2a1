// HTTP Range (RFC 9110 section 14) for a single byte range, shared by both APIs.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "core/status.h"

namespace cairn::api {

struct ByteRange {
  uint64_t first = 0;  // inclusive
  uint64_t last = 0;   // inclusive
  uint64_t length() const { return last - first + 1; }
};

// nullopt: serve the whole object (no header, a syntax the server may ignore, or several
// ranges). kOutOfRange: a well-formed range that no byte of an object of `size` satisfies
// (416).
Result<std::optional<ByteRange>> ParseRange(std::string_view header, uint64_t size);

}  // namespace cairn::api
