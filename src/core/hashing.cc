#include "core/hashing.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdlib>

namespace cairn {
namespace {

EVP_MD_CTX* NewContext(const EVP_MD* md) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr || EVP_DigestInit_ex(ctx, md, nullptr) != 1) abort();
  return ctx;
}

}  // namespace

struct Sha256Hasher::State {
  EVP_MD_CTX* ctx;
};

Sha256Hasher::Sha256Hasher() : state_(new State{NewContext(EVP_sha256())}) {}
Sha256Hasher::~Sha256Hasher() { EVP_MD_CTX_free(state_->ctx); }

void Sha256Hasher::Update(std::string_view bytes) {
  EVP_DigestUpdate(state_->ctx, bytes.data(), bytes.size());
}

Digest Sha256Hasher::Finish() {
  Digest d;
  unsigned int len = 0;
  EVP_DigestFinal_ex(state_->ctx, d.bytes.data(), &len);
  EVP_DigestInit_ex(state_->ctx, EVP_sha256(), nullptr);
  return d;
}

struct Md5Hasher::State {
  EVP_MD_CTX* ctx;
};

Md5Hasher::Md5Hasher() : state_(new State{NewContext(EVP_md5())}) {}
Md5Hasher::~Md5Hasher() { EVP_MD_CTX_free(state_->ctx); }

void Md5Hasher::Update(std::string_view bytes) {
  EVP_DigestUpdate(state_->ctx, bytes.data(), bytes.size());
}

std::string Md5Hasher::Finish() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(state_->ctx, out, &len);
  EVP_DigestInit_ex(state_->ctx, EVP_md5(), nullptr);
  return std::string(reinterpret_cast<char*>(out), len);
}

Digest Sha256Of(std::string_view bytes) {
  Sha256Hasher h;
  h.Update(bytes);
  return h.Finish();
}

std::string HmacSha256(std::string_view key, std::string_view message) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace cairn
