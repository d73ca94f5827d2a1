// Deterministic test data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cairn::testing {

// `size` pseudo-random bytes, the same for the same seed (std::mt19937, one byte a draw).
std::string RandomBytes(size_t size, uint32_t seed = 1);

// Splits `data` into pieces of `piece` bytes (the last one shorter).
std::vector<std::string> Pieces(std::string_view data, size_t piece);

}  // namespace cairn::testing
