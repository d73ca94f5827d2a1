// Streaming SHA-256 and MD5 (OpenSSL EVP underneath; no OpenSSL type leaks out).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/types.h"

namespace cairn {

// Not thread-safe; one per stream.
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;

  void Update(std::string_view bytes);
  // Returns the digest and resets the hasher for reuse.
  Digest Finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

class Md5Hasher {
 public:
  Md5Hasher();
  ~Md5Hasher();
  Md5Hasher(const Md5Hasher&) = delete;
  Md5Hasher& operator=(const Md5Hasher&) = delete;

  void Update(std::string_view bytes);
  // 16 raw bytes; resets the hasher.
  std::string Finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

Digest Sha256Of(std::string_view bytes);
// Raw 32-byte HMAC-SHA256.
std::string HmacSha256(std::string_view key, std::string_view message);
// Constant-time comparison for secrets and signatures.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace cairn
