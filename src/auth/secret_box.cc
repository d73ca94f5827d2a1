#include "auth/secret_box.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include "core/base64.h"
#include "core/hashing.h"
#include "core/text.h"
#include "core/types.h"

namespace cairn::auth {
namespace {

constexpr std::string_view kSealedPrefix = "enc1:";
constexpr size_t kKeyIdChars = 8;
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;

// Binds a sealed secret to its format version and to the S3 key it belongs to.
std::string AssociatedData(std::string_view access_key) {
  std::string aad = "cairn s3 secret v1";
  aad.push_back('\0');
  aad.append(access_key);
  return aad;
}

struct CipherContextFree {
  void operator()(EVP_CIPHER_CTX* context) const { EVP_CIPHER_CTX_free(context); }
};
using CipherContext = std::unique_ptr<EVP_CIPHER_CTX, CipherContextFree>;

// Base64 with either alphabet, padded or not.
std::optional<std::string> DecodeBase64(std::string_view text) {
  std::string url(text);
  while (!url.empty() && url.back() == '=') url.pop_back();
  std::replace(url.begin(), url.end(), '+', '-');
  std::replace(url.begin(), url.end(), '/', '_');
  auto decoded = Base64Decode(url, kBase64Url);
  if (!decoded.ok()) return std::nullopt;
  return std::move(decoded).value();
}

}  // namespace

Result<MasterKey> MasterKeyFromBytes(std::string bytes) {
  if (bytes.size() != kMasterKeyBytes) {
    return InvalidArgumentError("a master key is " + std::to_string(kMasterKeyBytes) +
                                " bytes, not " + std::to_string(bytes.size()));
  }
  MasterKey key;
  key.id = Sha256Of(bytes).ToHex().substr(0, kKeyIdChars);
  key.bytes = std::move(bytes);
  return key;
}

Result<MasterKey> ParseMasterKey(std::string_view text, std::string_view source) {
  text = TrimAscii(text, kAsciiWhitespace);
  std::optional<std::string> bytes;
  if (text.size() == 2 * kMasterKeyBytes) {
    if (auto decoded = HexDecode(text); decoded.ok()) bytes = std::move(decoded).value();
  } else {
    bytes = DecodeBase64(text);
  }
  if (!bytes || bytes->size() != kMasterKeyBytes) {
    return InvalidArgumentError(std::string(source) +
                                ": a master key is 64 hex digits or the base64 of 32 bytes "
                                "(e.g. the output of `openssl rand -hex 32`)");
  }
  return MasterKeyFromBytes(std::move(*bytes));
}

Result<MasterKey> GenerateMasterKey() {
  std::string bytes(kMasterKeyBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), kMasterKeyBytes) != 1) {
    return InternalError("the random generator failed to make a master key");
  }
  return MasterKeyFromBytes(std::move(bytes));
}

std::string MasterKeyFileText(const MasterKey& key) {
  return HexEncode(
             std::string_view(reinterpret_cast<const char*>(key.bytes.data()), key.bytes.size())) +
         "\n";
}

bool IsSealedSecret(std::string_view stored) {
  // "enc<version digits>:"; a generated secret never holds ':'.
  if (!stored.starts_with("enc")) return false;
  size_t i = 3;
  while (i < stored.size() && std::isdigit(static_cast<unsigned char>(stored[i]))) ++i;
  return i > 3 && i < stored.size() && stored[i] == ':';
}

std::optional<std::string> SealingKeyId(std::string_view stored) {
  if (!stored.starts_with(kSealedPrefix)) return std::nullopt;
  stored.remove_prefix(kSealedPrefix.size());
  size_t colon = stored.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  return std::string(stored.substr(0, colon));
}

SecretBox::SecretBox(MasterKey primary, std::vector<MasterKey> old_keys)
    : primary_(std::move(primary)), old_keys_(std::move(old_keys)) {}

std::vector<std::string> SecretBox::key_ids() const {
  std::vector<std::string> ids = {primary_.id};
  for (const MasterKey& key : old_keys_) ids.push_back(key.id);
  return ids;
}

bool SecretBox::HasKey(std::string_view id) const { return Find(id) != nullptr; }

const MasterKey* SecretBox::Find(std::string_view id) const {
  if (primary_.id == id) return &primary_;
  for (const MasterKey& key : old_keys_) {
    if (key.id == id) return &key;
  }
  return nullptr;
}

Result<std::string> SecretBox::Seal(std::string_view access_key, std::string_view secret) const {
  std::string sealed(kNonceBytes + secret.size() + kTagBytes, '\0');
  auto* out = reinterpret_cast<unsigned char*>(sealed.data());
  const std::string aad = AssociatedData(access_key);
  CipherContext context(EVP_CIPHER_CTX_new());
  int length = 0;
  bool ok =
      context && RAND_bytes(out, kNonceBytes) == 1 &&
      EVP_EncryptInit_ex(context.get(), EVP_aes_256_gcm(), nullptr,
                         reinterpret_cast<const unsigned char*>(primary_.bytes.data()), out) == 1 &&
      EVP_EncryptUpdate(context.get(), nullptr, &length,
                        reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) == 1 &&
      EVP_EncryptUpdate(context.get(), out + kNonceBytes, &length,
                        reinterpret_cast<const unsigned char*>(secret.data()),
                        static_cast<int>(secret.size())) == 1 &&
      static_cast<size_t>(length) == secret.size() &&
      EVP_EncryptFinal_ex(context.get(), out + kNonceBytes + length, &length) == 1 &&
      EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes,
                          out + kNonceBytes + secret.size()) == 1;
  if (!ok) return InternalError("cannot encrypt the secret of S3 key " + std::string(access_key));
  return std::string(kSealedPrefix) + primary_.id + ":" + Base64Encode(sealed, kBase64Url);
}

Result<std::string> SecretBox::Open(std::string_view access_key, std::string_view stored) const {
  if (!IsSealedSecret(stored)) return std::string(stored);
  const std::string what = "the secret of S3 key " + std::string(access_key);
  std::optional<std::string> id = SealingKeyId(stored);
  if (!id) return DataLossError(what + " is in an unknown sealed format");
  const MasterKey* key = Find(*id);
  if (key == nullptr) {
    std::string held;
    for (const std::string& own : key_ids()) held += (held.empty() ? "" : ", ") + own;
    return FailedPreconditionError(what + " is encrypted with master key " + *id +
                                   ", which this process does not have (it has " + held + ")");
  }
  auto sealed = Base64Decode(stored.substr(kSealedPrefix.size() + id->size() + 1), kBase64Url);
  if (!sealed.ok() || sealed->size() < kNonceBytes + kTagBytes) {
    return DataLossError(what + " is damaged (not a sealed secret)");
  }
  const auto* in = reinterpret_cast<const unsigned char*>(sealed->data());
  const size_t cipher_bytes = sealed->size() - kNonceBytes - kTagBytes;
  std::string secret(cipher_bytes, '\0');
  auto* out = reinterpret_cast<unsigned char*>(secret.data());
  const std::string aad = AssociatedData(access_key);
  CipherContext context(EVP_CIPHER_CTX_new());
  int length = 0;
  std::string tag = sealed->substr(kNonceBytes + cipher_bytes);
  bool ok =
      context &&
      EVP_DecryptInit_ex(context.get(), EVP_aes_256_gcm(), nullptr,
                         reinterpret_cast<const unsigned char*>(key->bytes.data()), in) == 1 &&
      EVP_DecryptUpdate(context.get(), nullptr, &length,
                        reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) == 1 &&
      EVP_DecryptUpdate(context.get(), out, &length, in + kNonceBytes,
                        static_cast<int>(cipher_bytes)) == 1 &&
      EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) == 1 &&
      EVP_DecryptFinal_ex(context.get(), out + length, &length) == 1;
  if (!ok) {
    return DataLossError(what + " does not decrypt with master key " + *id +
                         " (damaged, or copied from another key's row)");
  }
  return secret;
}

}  // namespace cairn::auth
