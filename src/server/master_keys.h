// Where the master keys that seal S3 secrets come from, and the passes that seal plaintext
// secrets and re-seal them with a new key (see "Secrets at rest" in docs/security.md).
//
// The primary key is, in this order: CAIRN_MASTER_KEY (64 hex digits or base64 of 32
// bytes), the --master-key-file, or <data-dir>/master.key, created on first use (mode
// 0600, written to a temp file, synced, renamed into place without replacing). Old keys
// (--old-master-key-file) only open secrets, during a rotation.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "auth/secret_box.h"
#include "core/status.h"
#include "meta/meta_store.h"
#include "platform/file_system.h"

namespace cairn::server {

inline constexpr char kMasterKeyFile[] = "master.key";
// The key a rotation of the default key file is moving to, until it takes master.key's
// place; loaded as an old key meanwhile, so an interrupted rotation loses nothing.
inline constexpr char kNextMasterKeyFile[] = "master.key.next";

struct MasterKeyConfig {
  std::string key_file;                    // empty: CAIRN_MASTER_KEY, else <data-dir>/master.key
  std::vector<std::string> old_key_files;  // open only
};

// True when neither CAIRN_MASTER_KEY nor a key file is configured: the key is the data
// directory's own master.key.
bool UsesDefaultMasterKey(const MasterKeyConfig& config);

// Reads a key file (any text ParseMasterKey accepts).
Result<auth::MasterKey> ReadMasterKeyFile(platform::FileSystem* file_system,
                                          const std::string& path);
// The key in `path`; if there is none, a fresh one written there atomically, never
// replacing a file another process created meanwhile (whose key is returned instead).
Result<auth::MasterKey> ReadOrCreateMasterKeyFile(platform::FileSystem* file_system,
                                                  const std::string& path);

// The keys of this process. Creates <data-dir>/master.key when it is the key and missing.
Result<std::shared_ptr<const auth::SecretBox>> LoadSecretBox(platform::FileSystem* file_system,
                                                             const std::string& data_dir,
                                                             const MasterKeyConfig& config);

struct SealReport {
  size_t sealed = 0;    // plaintext secrets sealed
  size_t resealed = 0;  // secrets moved from an old key to the primary one
};

// Checks that every stored S3 secret opens with `box`, then in one transaction seals the
// plaintext ones and, with `reseal`, re-seals those of old keys with the primary key.
// FailedPrecondition naming the key ids needed when some secret is sealed with a key the
// box lacks (nothing is changed then). Retried when another process sealed first.
Result<SealReport> SealS3Secrets(meta::MetaStore* store, const auth::SecretBox& box, bool reseal);

// FailedPrecondition (as SealS3Secrets) when some stored S3 secret is sealed with a key
// `box` lacks: a command about to seal a new secret checks it uses the store's key.
Status CheckS3SecretsOpen(meta::MetaStore* store, const auth::SecretBox& box);

// Rotates <data-dir>/master.key: a new key in master.key.next (kept if one is there from an
// interrupted run), every secret re-sealed with it in one transaction, then master.key
// replaced by it. Returns the ids of the old and new key and the report.
struct DefaultRotation {
  std::string old_id;
  std::string new_id;
  SealReport report;
};
Result<DefaultRotation> RotateDefaultMasterKey(platform::FileSystem* file_system,
                                               const std::string& data_dir, meta::MetaStore* store);

}  // namespace cairn::server
