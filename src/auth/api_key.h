// API keys: "cairn_<key_id>_<secret>".
//
// The key id (16 lowercase hex characters, 64 random bits) is public: it names the key in
// the metadata store, in logs and in the CLI. The secret (43 base64url characters, 256
// random bits) is shown once at creation and only its SHA-256 is ever stored.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/status.h"
#include "core/types.h"

namespace cairn::auth {

inline constexpr std::string_view kApiKeyPrefix = "cairn_";
inline constexpr size_t kApiKeyIdBytes = 8;
inline constexpr size_t kApiKeyIdLength = 2 * kApiKeyIdBytes;  // hex
inline constexpr size_t kApiKeySecretBytes = 32;
inline constexpr size_t kApiKeySecretLength = 43;  // base64url of 32 bytes, no padding
// Random input GenerateApiKey consumes: the key id bytes, then the secret bytes.
inline constexpr size_t kApiKeyRandomBytes = kApiKeyIdBytes + kApiKeySecretBytes;
inline constexpr size_t kApiKeyLength =
    kApiKeyPrefix.size() + kApiKeyIdLength + 1 + kApiKeySecretLength;

struct GeneratedApiKey {
  std::string key_id;     // 16 lowercase hex characters
  std::string secret;     // 43 base64url characters
  std::string full_text;  // "cairn_<key_id>_<secret>", what the user presents
};

struct ParsedApiKey {
  std::string key_id;
  std::string secret;
};

// `n` bytes from /dev/urandom. Internal if the device cannot be read.
Result<std::string> RandomBytes(size_t n);

// Builds a key from exactly kApiKeyRandomBytes caller-supplied random bytes (the first
// kApiKeyIdBytes become the key id, the rest the secret); InvalidArgument otherwise.
// Deterministic, for tests.
Result<GeneratedApiKey> GenerateApiKey(std::string_view random_bytes);
// Builds a key from /dev/urandom.
Result<GeneratedApiKey> GenerateApiKey();

// True if `text` claims to be an API key (has the prefix), whether or not it is well-formed.
bool LooksLikeApiKey(std::string_view text);

// Splits and validates "cairn_<16 lowercase hex>_<43 canonical base64url>". InvalidArgument
// "malformed API key" otherwise; the message never echoes the input.
Result<ParsedApiKey> ParseApiKey(std::string_view text);

// SHA-256 of the secret's text, the form stored in ApiKeyRecord::secret_hash.
Digest HashSecret(std::string_view secret);

}  // namespace cairn::auth
