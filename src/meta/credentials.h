// Credentials: one use case of the metadata store (meta_store.h has the contract every engine
// shares: states, reference counts, transactions, errors).
//
// Credentials: API keys (only their secrets' hashes) and S3 keys (sealed secrets).
#pragma once

#include "meta/records.h"

namespace cairn::meta {

class Credentials {
 public:
  virtual ~Credentials() = default;

  // ---- Credentials ------------------------------------------------------------------
  // kAlreadyExists if the key id is taken.
  virtual Status CreateApiKey(const ApiKeyRecord& key) = 0;
  // Revoked keys are returned too (the caller checks `revoked`). kNotFound if unknown.
  virtual Result<ApiKeyRecord> GetApiKey(const std::string& key_id) = 0;
  virtual Result<std::vector<ApiKeyRecord>> ListApiKeys() = 0;
  // kNotFound if unknown.
  virtual Status RevokeApiKey(const std::string& key_id) = 0;

  // ---- S3 credentials ---------------------------------------------------------------
  virtual Status CreateS3Key(const S3KeyRecord& key) {  // kAlreadyExists
    return NotSupportedByEngine("CreateS3Key");
  }
  virtual Result<S3KeyRecord> GetS3Key(const std::string& access_key) {  // revoked too
    return NotSupportedByEngine("GetS3Key");
  }
  virtual Result<std::vector<S3KeyRecord>> ListS3Keys() {
    return NotSupportedByEngine("ListS3Keys");
  }
  virtual Status RevokeS3Key(const std::string& access_key) {  // kNotFound
    return NotSupportedByEngine("RevokeS3Key");
  }
  // Applies every change in one transaction, or none: kAborted if a key's stored secret
  // is no longer `old_secret` or the key is gone (someone changed it meanwhile; read
  // again and retry).
  virtual Status ReplaceS3Secrets(const std::vector<S3SecretChange>& changes) {
    return NotSupportedByEngine("ReplaceS3Secrets");
  }
};

}  // namespace cairn::meta
