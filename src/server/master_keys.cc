#include "server/master_keys.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>

namespace cairn::server {
namespace {

constexpr char kMasterKeyEnv[] = "CAIRN_MASTER_KEY";
constexpr size_t kMaxKeyFileBytes = 4096;

const char* MasterKeyFromEnvironment() {
  const char* text = getenv(kMasterKeyEnv);
  return text != nullptr && *text != '\0' ? text : nullptr;
}

// Never replaces: a key file that appeared meanwhile (another node) wins.
Status CreateKeyFile(platform::FileSystem* file_system, const std::string& path,
                     const auth::MasterKey& key) {
  return platform::WriteFileAtomically(file_system, path, auth::MasterKeyFileText(key),
                                       /*replace=*/false);
}

std::string JoinIds(const std::vector<std::string>& ids) {
  std::string joined;
  for (const std::string& id : ids) joined += (joined.empty() ? "" : ", ") + id;
  return joined;
}

}  // namespace

bool UsesDefaultMasterKey(const MasterKeyConfig& config) {
  return config.key_file.empty() && MasterKeyFromEnvironment() == nullptr;
}

Result<auth::MasterKey> ReadMasterKeyFile(platform::FileSystem* file_system,
                                          const std::string& path) {
  auto file = file_system->OpenReadable(path);
  if (!file.ok()) return file.status().WithContext("master key file");
  std::string text(kMaxKeyFileBytes, '\0');
  ASSIGN_OR_RETURN(size_t size, (*file)->ReadAt(0, text.size(), text.data()));
  text.resize(size);
  return auth::ParseMasterKey(text, "master key file '" + path + "'");
}

Result<auth::MasterKey> ReadOrCreateMasterKeyFile(platform::FileSystem* file_system,
                                                  const std::string& path) {
  ASSIGN_OR_RETURN(bool exists, file_system->Exists(path));
  if (exists) return ReadMasterKeyFile(file_system, path);
  ASSIGN_OR_RETURN(auth::MasterKey key, auth::GenerateMasterKey());
  Status created = CreateKeyFile(file_system, path, key);
  if (created.code() == StatusCode::kAlreadyExists) return ReadMasterKeyFile(file_system, path);
  if (!created.ok()) return created.WithContext("creating master key file '" + path + "'");
  fprintf(stderr, "cairn: created master key %s in %s (it encrypts the S3 secrets at rest)\n",
          key.id.c_str(), path.c_str());
  return key;
}

Result<std::shared_ptr<const auth::SecretBox>> LoadSecretBox(platform::FileSystem* file_system,
                                                             const std::string& data_dir,
                                                             const MasterKeyConfig& config) {
  const char* from_environment = MasterKeyFromEnvironment();
  if (from_environment != nullptr && !config.key_file.empty()) {
    return InvalidArgumentError(
        "both CAIRN_MASTER_KEY and a master key file are set; give one of them");
  }
  auth::MasterKey primary;
  if (from_environment != nullptr) {
    ASSIGN_OR_RETURN(primary, auth::ParseMasterKey(from_environment, kMasterKeyEnv));
  } else if (!config.key_file.empty()) {
    ASSIGN_OR_RETURN(primary, ReadMasterKeyFile(file_system, config.key_file));
  } else {
    ASSIGN_OR_RETURN(primary,
                     ReadOrCreateMasterKeyFile(file_system, data_dir + "/" + kMasterKeyFile));
  }
  std::vector<auth::MasterKey> old_keys;
  for (const std::string& path : config.old_key_files) {
    ASSIGN_OR_RETURN(auth::MasterKey key, ReadMasterKeyFile(file_system, path));
    old_keys.push_back(std::move(key));
  }
  if (UsesDefaultMasterKey(config)) {
    const std::string next = data_dir + "/" + kNextMasterKeyFile;
    ASSIGN_OR_RETURN(bool interrupted, file_system->Exists(next));
    if (interrupted) {
      ASSIGN_OR_RETURN(auth::MasterKey key, ReadMasterKeyFile(file_system, next));
      fprintf(stderr,
              "cairn: warning: %s is left by an interrupted `cairn keys rotate-master`; its key "
              "%s is accepted until that command is run again\n",
              next.c_str(), key.id.c_str());
      old_keys.push_back(std::move(key));
    }
  }
  return std::make_shared<const auth::SecretBox>(std::move(primary), std::move(old_keys));
}

namespace {

// FailedPrecondition naming the master keys that sealed some of `keys` and that `box`
// lacks.
Status CheckKeysHeld(const std::vector<meta::S3KeyRecord>& keys, const auth::SecretBox& box) {
  std::map<std::string, std::vector<std::string>> missing;  // key id -> S3 keys it sealed
  for (const meta::S3KeyRecord& key : keys) {
    std::optional<std::string> sealed_by = auth::SealingKeyId(key.secret);
    if (sealed_by && !box.HasKey(*sealed_by)) missing[*sealed_by].push_back(key.access_key);
  }
  if (missing.empty()) return OkStatus();
  std::string message;
  for (const auto& [id, access_keys] : missing) {
    message += (message.empty() ? "" : "; ") + std::to_string(access_keys.size()) +
               " S3 keys (e.g. " + access_keys.front() + ") are encrypted with master key " + id;
  }
  return FailedPreconditionError(
      message + ", which this process does not have (it has " + JoinIds(box.key_ids()) +
      "). Every server of one store needs the same master key (CAIRN_MASTER_KEY or "
      "--master-key-file); during a rotation give the old one with --old-master-key-file");
}

Result<SealReport> SealS3SecretsOnce(meta::MetaStore* store, const auth::SecretBox& box,
                                     bool reseal) {
  ASSIGN_OR_RETURN(std::vector<meta::S3KeyRecord> keys, store->ListS3Keys());
  RETURN_IF_ERROR(CheckKeysHeld(keys, box));
  std::vector<meta::S3SecretChange> changes;
  SealReport report;
  for (const meta::S3KeyRecord& key : keys) {
    ASSIGN_OR_RETURN(std::string secret, box.Open(key.access_key, key.secret));
    const bool plaintext = !auth::IsSealedSecret(key.secret);
    if (!plaintext && !(reseal && auth::SealingKeyId(key.secret) != box.primary_id())) continue;
    ASSIGN_OR_RETURN(std::string resealed, box.Seal(key.access_key, secret));
    changes.push_back({key.access_key, key.secret, std::move(resealed)});
    ++(plaintext ? report.sealed : report.resealed);
  }
  if (!changes.empty()) RETURN_IF_ERROR(store->ReplaceS3Secrets(changes));
  return report;
}

}  // namespace

Status CheckS3SecretsOpen(meta::MetaStore* store, const auth::SecretBox& box) {
  ASSIGN_OR_RETURN(std::vector<meta::S3KeyRecord> keys, store->ListS3Keys());
  return CheckKeysHeld(keys, box);
}

Result<SealReport> SealS3Secrets(meta::MetaStore* store, const auth::SecretBox& box, bool reseal) {
  // Nodes starting together may seal the same plaintext secrets at once: the one whose
  // change lost reads again and finds them sealed.
  for (int attempt = 1;; ++attempt) {
    auto report = SealS3SecretsOnce(store, box, reseal);
    if (report.ok() || report.status().code() != StatusCode::kAborted || attempt == 3) {
      return report;
    }
  }
}

Result<DefaultRotation> RotateDefaultMasterKey(platform::FileSystem* file_system,
                                               const std::string& data_dir,
                                               meta::MetaStore* store) {
  const std::string current_path = data_dir + "/" + kMasterKeyFile;
  const std::string next_path = data_dir + "/" + kNextMasterKeyFile;
  ASSIGN_OR_RETURN(auth::MasterKey current, ReadMasterKeyFile(file_system, current_path));
  ASSIGN_OR_RETURN(auth::MasterKey next, ReadOrCreateMasterKeyFile(file_system, next_path));
  DefaultRotation rotation;
  rotation.old_id = current.id;
  rotation.new_id = next.id;
  std::vector<auth::MasterKey> old_keys;
  if (current.id != next.id) old_keys.push_back(std::move(current));
  auth::SecretBox box(std::move(next), std::move(old_keys));
  ASSIGN_OR_RETURN(rotation.report, SealS3Secrets(store, box, /*reseal=*/true));
  // The secrets are sealed with the new key from here on: it takes master.key's place.
  RETURN_IF_ERROR(file_system->Rename(next_path, current_path));
  RETURN_IF_ERROR(file_system->SyncDirectory(data_dir));
  return rotation;
}

}  // namespace cairn::server
