#include "core/block_checksums.h"

#include <isa-l/crc.h>

#include <algorithm>

namespace cairn {

uint32_t Crc32c(std::string_view bytes) {
  // ISA-L's crc32_iscsi is the raw CRC: the standard CRC32C starts from and ends with an
  // inversion. Its length is an int, so long inputs go in pieces.
  uint32_t crc = 0xFFFFFFFFu;
  auto* data = reinterpret_cast<unsigned char*>(const_cast<char*>(bytes.data()));
  size_t left = bytes.size();
  while (left > 0) {
    const int piece = static_cast<int>(std::min<size_t>(left, 1u << 30));
    crc = crc32_iscsi(data, piece, crc);
    data += piece;
    left -= static_cast<size_t>(piece);
  }
  return crc ^ 0xFFFFFFFFu;
}

std::string BlockChecksums(std::string_view chunk) {
  std::string out;
  out.reserve(4 * ChecksumBlockCount(chunk.size()));
  for (size_t offset = 0; offset < chunk.size(); offset += kChecksumBlockBytes) {
    const uint32_t crc = Crc32c(chunk.substr(offset, kChecksumBlockBytes));
    for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<char>(crc >> shift));
  }
  return out;
}

uint32_t BlockChecksumAt(std::string_view checksums, uint64_t index) {
  uint32_t crc = 0;
  for (int i = 3; i >= 0; --i) {
    crc = (crc << 8) | static_cast<unsigned char>(checksums[4 * index + static_cast<size_t>(i)]);
  }
  return crc;
}

}  // namespace cairn
