#include "api/s3/sigv4/checksum.h"
#include "core/base64.h"
#include "core/text.h"

#include <openssl/evp.h>
#include <zlib.h>

#include <array>
#include <cstdlib>
#include <utility>

namespace cairn::api::s3 {
namespace {

// Slicing-by-8 tables for a reflected CRC: table[s][b] is the CRC contribution of byte b
// followed by s zero bytes, so eight input bytes fold into the state with eight lookups.
template <typename T>
constexpr std::array<std::array<T, 256>, 8> MakeCrcTables(T reflected_poly) {
  std::array<std::array<T, 256>, 8> tables{};
  for (uint32_t i = 0; i < 256; ++i) {
    T crc = static_cast<T>(i);
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 1) ? (crc >> 1) ^ reflected_poly : crc >> 1;
    tables[0][i] = crc;
  }
  for (uint32_t i = 0; i < 256; ++i) {
    for (int s = 1; s < 8; ++s) {
      T prev = tables[s - 1][i];
      tables[s][i] = (prev >> 8) ^ tables[0][prev & 0xff];
    }
  }
  return tables;
}

// CRC-32C (Castagnoli), reflected polynomial of 0x1EDC6F41.
constexpr auto kCrc32cTables = MakeCrcTables<uint32_t>(0x82F63B78u);
// CRC-64/NVME, the polynomial AWS SDKs and S3 use for CRC64NVME: 0xAD93D23594C93659,
// reflected. Initial value and final xor are all ones, like CRC-32.
constexpr auto kCrc64NvmeTables = MakeCrcTables<uint64_t>(0x9A6C9329AC4BC9B5ull);

template <typename T>
T ExtendReflectedCrc(const std::array<std::array<T, 256>, 8>& tables, T crc,
                     std::string_view bytes) {
  crc = ~crc;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t n = bytes.size();
  while (n >= 8) {
    uint64_t word = 0;
    for (int i = 7; i >= 0; --i) word = (word << 8) | p[i];  // little-endian, any alignment
    word ^= static_cast<uint64_t>(crc);
    crc = tables[7][word & 0xff] ^ tables[6][(word >> 8) & 0xff] ^ tables[5][(word >> 16) & 0xff] ^
          tables[4][(word >> 24) & 0xff] ^ tables[3][(word >> 32) & 0xff] ^
          tables[2][(word >> 40) & 0xff] ^ tables[1][(word >> 48) & 0xff] ^ tables[0][word >> 56];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = (crc >> 8) ^ tables[0][(crc ^ *p++) & 0xff];
  return ~crc;
}

template <typename T>
std::string BigEndian(T value) {
  std::string out(sizeof(T), '\0');
  for (size_t i = 0; i < sizeof(T); ++i) {
    out[sizeof(T) - 1 - i] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
  return out;
}

const EVP_MD* DigestFor(ChecksumAlgorithm algorithm) {
  switch (algorithm) {
    case ChecksumAlgorithm::kSha1:
      return EVP_sha1();
    case ChecksumAlgorithm::kSha256:
      return EVP_sha256();
    default:
      return nullptr;
  }
}

}  // namespace

std::string_view ChecksumAlgorithmName(ChecksumAlgorithm algorithm) {
  switch (algorithm) {
    case ChecksumAlgorithm::kCrc32:
      return "CRC32";
    case ChecksumAlgorithm::kCrc32c:
      return "CRC32C";
    case ChecksumAlgorithm::kCrc64Nvme:
      return "CRC64NVME";
    case ChecksumAlgorithm::kSha1:
      return "SHA1";
    case ChecksumAlgorithm::kSha256:
      return "SHA256";
  }
  return "UNKNOWN";
}

Result<ChecksumAlgorithm> ParseChecksumAlgorithm(std::string_view name) {
  for (ChecksumAlgorithm algorithm : kAllChecksumAlgorithms) {
    if (EqualsIgnoreCaseAscii(name, ChecksumAlgorithmName(algorithm))) return algorithm;
  }
  if (name.size() > 32) name = name.substr(0, 32);
  return InvalidArgumentError("unknown checksum algorithm '" + std::string(name) +
                              "' (expected CRC32, CRC32C, CRC64NVME, SHA1 or SHA256)");
}

std::string_view ChecksumHeaderName(ChecksumAlgorithm algorithm) {
  switch (algorithm) {
    case ChecksumAlgorithm::kCrc32:
      return "x-amz-checksum-crc32";
    case ChecksumAlgorithm::kCrc32c:
      return "x-amz-checksum-crc32c";
    case ChecksumAlgorithm::kCrc64Nvme:
      return "x-amz-checksum-crc64nvme";
    case ChecksumAlgorithm::kSha1:
      return "x-amz-checksum-sha1";
    case ChecksumAlgorithm::kSha256:
      return "x-amz-checksum-sha256";
  }
  return "x-amz-checksum-unknown";
}

std::optional<ChecksumAlgorithm> ChecksumAlgorithmFromHeader(std::string_view header_name) {
  for (ChecksumAlgorithm algorithm : kAllChecksumAlgorithms) {
    if (EqualsIgnoreCaseAscii(header_name, ChecksumHeaderName(algorithm))) return algorithm;
  }
  return std::nullopt;
}

size_t ChecksumSize(ChecksumAlgorithm algorithm) {
  switch (algorithm) {
    case ChecksumAlgorithm::kCrc32:
    case ChecksumAlgorithm::kCrc32c:
      return 4;
    case ChecksumAlgorithm::kCrc64Nvme:
      return 8;
    case ChecksumAlgorithm::kSha1:
      return 20;
    case ChecksumAlgorithm::kSha256:
      return 32;
  }
  return 0;
}

uint32_t ExtendCrc32(uint32_t crc, std::string_view bytes) {
  return static_cast<uint32_t>(
      crc32_z(crc, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size()));
}

uint32_t ExtendCrc32c(uint32_t crc, std::string_view bytes) {
  return ExtendReflectedCrc(kCrc32cTables, crc, bytes);
}

uint64_t ExtendCrc64Nvme(uint64_t crc, std::string_view bytes) {
  return ExtendReflectedCrc(kCrc64NvmeTables, crc, bytes);
}

struct Checksummer::State {
  uint64_t crc = 0;
  EVP_MD_CTX* ctx = nullptr;

  ~State() {
    if (ctx != nullptr) EVP_MD_CTX_free(ctx);
  }
};

Checksummer::Checksummer(ChecksumAlgorithm algorithm)
    : algorithm_(algorithm), state_(std::make_unique<State>()) {
  if (const EVP_MD* md = DigestFor(algorithm)) {
    state_->ctx = EVP_MD_CTX_new();
    // Allocation failure here is as fatal as operator new failing.
    if (state_->ctx == nullptr || EVP_DigestInit_ex(state_->ctx, md, nullptr) != 1) abort();
  }
}

Checksummer::~Checksummer() = default;
Checksummer::Checksummer(Checksummer&&) noexcept = default;
Checksummer& Checksummer::operator=(Checksummer&&) noexcept = default;

void Checksummer::Update(std::string_view bytes) {
  switch (algorithm_) {
    case ChecksumAlgorithm::kCrc32:
      state_->crc = ExtendCrc32(static_cast<uint32_t>(state_->crc), bytes);
      break;
    case ChecksumAlgorithm::kCrc32c:
      state_->crc = ExtendCrc32c(static_cast<uint32_t>(state_->crc), bytes);
      break;
    case ChecksumAlgorithm::kCrc64Nvme:
      state_->crc = ExtendCrc64Nvme(state_->crc, bytes);
      break;
    case ChecksumAlgorithm::kSha1:
    case ChecksumAlgorithm::kSha256:
      EVP_DigestUpdate(state_->ctx, bytes.data(), bytes.size());
      break;
  }
}

std::string Checksummer::FinishRaw() {
  std::string out;
  switch (algorithm_) {
    case ChecksumAlgorithm::kCrc32:
    case ChecksumAlgorithm::kCrc32c:
      out = BigEndian(static_cast<uint32_t>(state_->crc));
      break;
    case ChecksumAlgorithm::kCrc64Nvme:
      out = BigEndian(state_->crc);
      break;
    case ChecksumAlgorithm::kSha1:
    case ChecksumAlgorithm::kSha256: {
      unsigned char digest[EVP_MAX_MD_SIZE];
      unsigned int len = 0;
      EVP_DigestFinal_ex(state_->ctx, digest, &len);
      EVP_DigestInit_ex(state_->ctx, DigestFor(algorithm_), nullptr);
      out.assign(reinterpret_cast<char*>(digest), len);
      break;
    }
  }
  state_->crc = 0;
  return out;
}

std::string Checksummer::FinishBase64() { return Base64Encode(FinishRaw()); }

}  // namespace cairn::api::s3
