#include "auth/api_key.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/base64.h"
#include "core/hashing.h"

namespace cairn::auth {
namespace {}  // namespace

Result<std::string> RandomBytes(size_t n) {
  int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return InternalError(std::string("cannot open /dev/urandom: ") + std::strerror(errno));
  }
  std::string out(n, '\0');
  size_t filled = 0;
  while (filled < n) {
    ssize_t got = ::read(fd, out.data() + filled, n - filled);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      int saved_errno = got < 0 ? errno : 0;
      ::close(fd);
      return InternalError(std::string("cannot read /dev/urandom: ") +
                           (saved_errno != 0 ? std::strerror(saved_errno) : "unexpected EOF"));
    }
    filled += static_cast<size_t>(got);
  }
  ::close(fd);
  return out;
}

Result<GeneratedApiKey> GenerateApiKey(std::string_view random_bytes) {
  if (random_bytes.size() != kApiKeyRandomBytes) {
    return InvalidArgumentError("GenerateApiKey needs exactly " +
                                std::to_string(kApiKeyRandomBytes) + " random bytes, got " +
                                std::to_string(random_bytes.size()));
  }
  GeneratedApiKey key;
  key.key_id = HexEncode(random_bytes.substr(0, kApiKeyIdBytes));
  key.secret = Base64Encode(random_bytes.substr(kApiKeyIdBytes), kBase64Url);
  key.full_text = std::string(kApiKeyPrefix) + key.key_id + "_" + key.secret;
  return key;
}

Result<GeneratedApiKey> GenerateApiKey() {
  ASSIGN_OR_RETURN(std::string random, RandomBytes(kApiKeyRandomBytes));
  return GenerateApiKey(random);
}

bool LooksLikeApiKey(std::string_view text) { return text.starts_with(kApiKeyPrefix); }

Result<ParsedApiKey> ParseApiKey(std::string_view text) {
  // The input may be a mistyped secret, so no message below quotes it.
  const Status malformed = InvalidArgumentError("malformed API key");
  if (text.size() != kApiKeyLength || !text.starts_with(kApiKeyPrefix)) return malformed;
  std::string_view key_id = text.substr(kApiKeyPrefix.size(), kApiKeyIdLength);
  std::string_view separator = text.substr(kApiKeyPrefix.size() + kApiKeyIdLength, 1);
  std::string_view secret = text.substr(kApiKeyPrefix.size() + kApiKeyIdLength + 1);
  if (separator != "_") return malformed;
  if (!IsLowerHex(key_id, kApiKeyIdLength)) return malformed;
  // Base64url has '_' in its alphabet, so the fixed layout (not a split on '_') is what
  // separates the parts. Canonical decoding keeps one key from having several spellings.
  Result<std::string> secret_bytes = Base64Decode(secret, kBase64Url);
  if (!secret_bytes.ok() || secret_bytes->size() != kApiKeySecretBytes) return malformed;
  return ParsedApiKey{std::string(key_id), std::string(secret)};
}

Digest HashSecret(std::string_view secret) {
  // Runs for every authenticated request; a hasher kept per thread saves creating and
  // freeing a digest context each time (about half the cost for a short secret).
  thread_local Sha256Hasher hasher;
  hasher.Update(secret);
  return hasher.Finish();
}

}  // namespace cairn::auth
