// Encryption at rest of the S3 secrets the metadata store keeps (SigV4 needs the secret
// itself, so it cannot be hashed like an API key).
//
// A sealed secret is the text
//     enc1:<key id>:<base64url(nonce (12 bytes) | AES-256-GCM ciphertext | tag (16 bytes))>
// where the key id is the first 8 hex digits of SHA-256 of the 32-byte master key, so a
// ring of several keys (during a rotation) finds the one that sealed it. The authenticated
// data binds the format version and the access key: a sealed secret copied to another
// row does not open. The master key is kept apart from the metadata (a key file or the
// environment), so a copied database or snapshot reveals no secret.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace cairn::auth {

inline constexpr size_t kMasterKeyBytes = 32;

struct MasterKey {
  std::string bytes;  // kMasterKeyBytes raw bytes; a secret
  std::string id;     // 8 lower-case hex digits: the first 4 bytes of SHA-256(bytes)
};

// Builds a key from its 32 raw bytes.
Result<MasterKey> MasterKeyFromBytes(std::string bytes);
// Parses the text form of a key: 64 hex digits, or base64 / base64url of 32 bytes;
// surrounding whitespace is ignored. `source` names where the text came from, for errors
// (which never contain the text).
Result<MasterKey> ParseMasterKey(std::string_view text, std::string_view source);
// A fresh random key.
Result<MasterKey> GenerateMasterKey();
// The text written to a key file: 64 hex digits and a newline.
std::string MasterKeyFileText(const MasterKey& key);

// True if `stored` is a sealed secret (of any version); false for a plaintext one left by
// an older release.
bool IsSealedSecret(std::string_view stored);
// The id of the key that sealed `stored`; nullopt if it is not sealed.
std::optional<std::string> SealingKeyId(std::string_view stored);

// The master keys a process holds: one primary (seals) and any number of old ones (only
// open, during a rotation). Immutable, so thread-safe.
class SecretBox {
 public:
  SecretBox(MasterKey primary, std::vector<MasterKey> old_keys);

  const std::string& primary_id() const { return primary_.id; }
  // Every key id held, the primary first.
  std::vector<std::string> key_ids() const;
  bool HasKey(std::string_view id) const;

  // Seals `secret` of S3 key `access_key` with the primary key.
  Result<std::string> Seal(std::string_view access_key, std::string_view secret) const;
  // The secret of S3 key `access_key` from its stored form. A plaintext value (not sealed)
  // comes back as it is: an older release or node may have written it, and the next start
  // seals it. FailedPrecondition when the sealing key is not held (the message names the
  // key id needed and the ids held); DataLoss when the sealed text does not open (damaged,
  // or moved from another row).
  Result<std::string> Open(std::string_view access_key, std::string_view stored) const;

 private:
  const MasterKey* Find(std::string_view id) const;

  MasterKey primary_;
  std::vector<MasterKey> old_keys_;
};

}  // namespace cairn::auth
