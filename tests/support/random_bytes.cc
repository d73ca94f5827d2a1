#include "random_bytes.h"

#include <random>

namespace cairn::testing {

std::string RandomBytes(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(size, '\0');
  for (auto& c : out) c = static_cast<char>(rng());
  return out;
}

std::vector<std::string> Pieces(std::string_view data, size_t piece) {
  std::vector<std::string> out;
  for (size_t at = 0; at < data.size(); at += piece) out.emplace_back(data.substr(at, piece));
  return out;
}

}  // namespace cairn::testing
