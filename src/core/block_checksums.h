// Fast checksums that let every chunk read be verified before its bytes leave the server.
//
// A chunk's identity is the SHA-256 of its bytes, but re-hashing with SHA-256 on every read
// would cost more than the read itself. So the metadata keeps, per chunk, the CRC32C of
// each 256 KiB block: a read verifies the blocks it touches (at most one partial block at
// each end of a range), and memory per read stays one block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace cairn {

inline constexpr size_t kChecksumBlockBytes = 256 * 1024;

// CRC32C (Castagnoli, as in iSCSI and S3's x-amz-checksum-crc32c).
uint32_t Crc32c(std::string_view bytes);

// The block checksums of a whole chunk: CRC32C of each kChecksumBlockBytes block (the last
// may be shorter), 4 bytes little-endian each. Empty for an empty chunk.
std::string BlockChecksums(std::string_view chunk);

// Number of blocks of a chunk of `size_bytes`.
inline uint64_t ChecksumBlockCount(uint64_t size_bytes) {
  return (size_bytes + kChecksumBlockBytes - 1) / kChecksumBlockBytes;
}

// Whether `checksums` is well formed for a chunk of `size_bytes`.
inline bool BlockChecksumsFit(std::string_view checksums, uint64_t size_bytes) {
  return checksums.size() == 4 * ChecksumBlockCount(size_bytes);
}

// The recorded checksum of block `index`.
uint32_t BlockChecksumAt(std::string_view checksums, uint64_t index);

}  // namespace cairn
