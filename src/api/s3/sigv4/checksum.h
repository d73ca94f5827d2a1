// The flexible checksums S3 clients send as x-amz-checksum-* headers or aws-chunked
// trailers: CRC32, CRC32C, CRC64NVME, SHA1 and SHA256. On the wire each value is the
// Base64 of the checksum's big-endian bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace cairn::api::s3 {

enum class ChecksumAlgorithm { kCrc32, kCrc32c, kCrc64Nvme, kSha1, kSha256 };
inline constexpr ChecksumAlgorithm kAllChecksumAlgorithms[] = {
    ChecksumAlgorithm::kCrc32, ChecksumAlgorithm::kCrc32c, ChecksumAlgorithm::kCrc64Nvme,
    ChecksumAlgorithm::kSha1, ChecksumAlgorithm::kSha256};

// "CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256" (the x-amz-checksum-algorithm values).
std::string_view ChecksumAlgorithmName(ChecksumAlgorithm algorithm);
// Case-insensitive inverse of ChecksumAlgorithmName; InvalidArgument otherwise.
Result<ChecksumAlgorithm> ParseChecksumAlgorithm(std::string_view name);
// "x-amz-checksum-crc32", ..., lower case as they appear in canonical headers.
std::string_view ChecksumHeaderName(ChecksumAlgorithm algorithm);
// Case-insensitive inverse of ChecksumHeaderName; nullopt for any other header.
std::optional<ChecksumAlgorithm> ChecksumAlgorithmFromHeader(std::string_view header_name);
// Raw size in bytes: 4, 4, 8, 20, 32.
size_t ChecksumSize(ChecksumAlgorithm algorithm);

// Incremental CRCs (the finalized value; pass the previous result to continue a stream,
// 0 to start one).
uint32_t ExtendCrc32(uint32_t crc, std::string_view bytes);
uint32_t ExtendCrc32c(uint32_t crc, std::string_view bytes);
uint64_t ExtendCrc64Nvme(uint64_t crc, std::string_view bytes);

// One streaming checksum. Not thread-safe; one per stream. Movable.
class Checksummer {
 public:
  explicit Checksummer(ChecksumAlgorithm algorithm);
  ~Checksummer();
  Checksummer(Checksummer&&) noexcept;
  Checksummer& operator=(Checksummer&&) noexcept;
  Checksummer(const Checksummer&) = delete;
  Checksummer& operator=(const Checksummer&) = delete;

  ChecksumAlgorithm algorithm() const { return algorithm_; }
  void Update(std::string_view bytes);
  // The raw big-endian value (ChecksumSize bytes); resets for reuse.
  std::string FinishRaw();
  // Base64 of FinishRaw(), the form of the x-amz-checksum-* headers; resets for reuse.
  std::string FinishBase64();

 private:
  struct State;
  ChecksumAlgorithm algorithm_;
  std::unique_ptr<State> state_;
};

}  // namespace cairn::api::s3
