#include <utility>  // Boost 1.74 coroutine headers (through the S3 API) need it first.

#include "server/key_admin.h"

#include "api/s3/handlers/s3_api.h"
#include "server/master_keys.h"

namespace cairn::server {
namespace {

meta::ApiKeyRecord ApiKeyRecordFor(const auth::ParsedApiKey& key, const KeyGrant& grant,
                                   TimestampMs now) {
  meta::ApiKeyRecord record;
  record.key_id = key.key_id;
  record.secret_hash = auth::HashSecret(key.secret);
  record.tenants = grant.tenants;
  record.scope = grant.scope;
  record.created_at_ms = now;
  record.description = grant.description;
  return record;
}

Result<meta::S3KeyRecord> S3KeyRecordFor(const auth::SecretBox& secrets,
                                         const std::string& access_key, const std::string& secret,
                                         const KeyGrant& grant, TimestampMs now) {
  meta::S3KeyRecord record;
  record.access_key = access_key;
  ASSIGN_OR_RETURN(record.secret, secrets.Seal(access_key, secret));
  record.tenants = grant.tenants;
  record.scope = grant.scope;
  record.created_at_ms = now;
  record.description = grant.description;
  return record;
}

}  // namespace

Status ValidateGrant(const KeyGrant& grant, bool s3) {
  if (grant.tenants.empty()) return InvalidArgumentError("a key needs at least one tenant");
  for (const std::string& tenant : grant.tenants) {
    if (tenant == "*") continue;
    RETURN_IF_ERROR(ValidateName("tenant", tenant));
  }
  if (s3 && grant.tenants.front() == "*") {
    return InvalidArgumentError(
        "an S3 key's first tenant owns the buckets it creates, so it must be a real tenant, "
        "not '*'");
  }
  return OkStatus();
}

Result<CreatedApiKey> CreateApiKey(meta::MetaStore* store, const KeyGrant& grant, TimestampMs now) {
  RETURN_IF_ERROR(ValidateGrant(grant, /*s3=*/false));
  ASSIGN_OR_RETURN(auth::GeneratedApiKey key, auth::GenerateApiKey());
  RETURN_IF_ERROR(store->CreateApiKey(ApiKeyRecordFor({key.key_id, key.secret}, grant, now)));
  return CreatedApiKey{key.key_id, key.full_text};
}

Status EnsureApiKey(meta::MetaStore* store, const auth::ParsedApiKey& key, const KeyGrant& grant,
                    TimestampMs now) {
  RETURN_IF_ERROR(ValidateGrant(grant, /*s3=*/false));
  // Twice at most: another node sharing the database may create the key between our
  // lookup and our insert; then its row is checked like any existing one.
  for (int attempt = 0;; ++attempt) {
    auto existing = store->GetApiKey(key.key_id);
    if (existing.ok()) {
      if (existing->secret_hash != auth::HashSecret(key.secret) || existing->revoked) {
        return FailedPreconditionError("API key " + key.key_id +
                                       " exists with another secret or is revoked");
      }
      return OkStatus();
    }
    if (existing.status().code() != StatusCode::kNotFound) return existing.status();
    Status created = store->CreateApiKey(ApiKeyRecordFor(key, grant, now));
    if (created.code() != StatusCode::kAlreadyExists || attempt > 0) return created;
  }
}

Result<CreatedS3Key> CreateS3Key(meta::MetaStore* store, const auth::SecretBox& secrets,
                                 const KeyGrant& grant, TimestampMs now) {
  RETURN_IF_ERROR(ValidateGrant(grant, /*s3=*/true));
  RETURN_IF_ERROR(CheckS3SecretsOpen(store, secrets));
  api::GeneratedS3Key generated = api::GenerateS3Key();
  ASSIGN_OR_RETURN(meta::S3KeyRecord record,
                   S3KeyRecordFor(secrets, generated.access_key, generated.secret, grant, now));
  RETURN_IF_ERROR(store->CreateS3Key(record));
  return CreatedS3Key{generated.access_key, generated.secret};
}

Status EnsureS3Key(meta::MetaStore* store, const auth::SecretBox& secrets,
                   const std::string& access_key, const std::string& secret, const KeyGrant& grant,
                   TimestampMs now) {
  RETURN_IF_ERROR(ValidateGrant(grant, /*s3=*/true));
  ASSIGN_OR_RETURN(meta::S3KeyRecord record,
                   S3KeyRecordFor(secrets, access_key, secret, grant, now));
  // Twice at most, as for API keys: another node may insert it concurrently.
  for (int attempt = 0;; ++attempt) {
    auto existing = store->GetS3Key(access_key);
    if (existing.ok()) {
      ASSIGN_OR_RETURN(std::string stored, secrets.Open(existing->access_key, existing->secret));
      if (stored != secret || existing->revoked) {
        return FailedPreconditionError("S3 access key " + access_key +
                                       " exists with another secret or is revoked");
      }
      return OkStatus();
    }
    if (existing.status().code() != StatusCode::kNotFound) return existing.status();
    Status created = store->CreateS3Key(record);
    if (created.code() != StatusCode::kAlreadyExists || attempt > 0) return created;
  }
}

Result<std::vector<KeyInfo>> ListKeys(meta::MetaStore* store) {
  std::vector<KeyInfo> keys;
  ASSIGN_OR_RETURN(std::vector<meta::ApiKeyRecord> api_keys, store->ListApiKeys());
  for (const meta::ApiKeyRecord& key : api_keys) {
    keys.push_back({key.key_id, false, key.scope, key.revoked, key.created_at_ms, key.tenants,
                    key.description});
  }
  ASSIGN_OR_RETURN(std::vector<meta::S3KeyRecord> s3_keys, store->ListS3Keys());
  for (const meta::S3KeyRecord& key : s3_keys) {
    keys.push_back({key.access_key, true, key.scope, key.revoked, key.created_at_ms, key.tenants,
                    key.description});
  }
  return keys;
}

Result<std::string> RevokeKey(meta::MetaStore* store, std::string_view id_or_key) {
  std::string key_id(id_or_key);
  if (auto parsed = auth::ParseApiKey(id_or_key); parsed.ok()) key_id = parsed->key_id;
  Status revoked = store->RevokeApiKey(key_id);
  if (revoked.code() == StatusCode::kNotFound) revoked = store->RevokeS3Key(key_id);
  RETURN_IF_ERROR(revoked);
  return key_id;
}

Result<StoreSummary> SummarizeStore(meta::MetaStore* store, chunks::ChunkStore* chunks) {
  StoreSummary summary;
  ASSIGN_OR_RETURN(auto counts, store->CountObjects());
  for (const auto& row : counts) {
    summary.objects_by_state[std::string(ObjectStateName(row.state))] += row.objects;
  }
  ASSIGN_OR_RETURN(auto bytes, store->StorageBytes());
  for (const auto& row : bytes) {
    summary.logical_bytes += row.logical_bytes;
    summary.inline_bytes += row.inline_bytes;
    summary.by_class[row.storage_class].logical_bytes += row.logical_bytes;
    summary.by_class[row.storage_class].inline_bytes += row.inline_bytes;
  }
  // Summed by the engine: a million chunk rows are never held here.
  ASSIGN_OR_RETURN(auto totals, store->ChunkTotals());
  for (const auto& row : totals) {
    summary.chunks += row.chunks;
    summary.chunk_bytes += row.bytes;
    summary.by_class[row.storage_class].chunks += row.chunks;
    summary.by_class[row.storage_class].chunk_bytes += row.bytes;
    summary.unreferenced_chunks += row.unreferenced;
  }
  summary.writable = chunks->CheckWritable();
  return summary;
}

Result<std::optional<VolumeSummary>> SummarizeVolume(meta::MetaStore* store, TimestampMs now_ms,
                                                     bool usage) {
  meta::FileTree* tree = store->file_tree();
  if (tree == nullptr) return std::optional<VolumeSummary>();
  ASSIGN_OR_RETURN(std::optional<meta::VolumeRecord> volume, tree->GetVolume());
  if (!volume) return std::optional<VolumeSummary>();
  VolumeSummary summary;
  // One transaction: the usage and the sessions are one moment's.
  RETURN_IF_ERROR(tree->Read([&](meta::FileTreeTransaction& tx) -> Status {
                        ASSIGN_OR_RETURN(summary.volume, tx.volume());
                        if (usage) {
                          ASSIGN_OR_RETURN(summary.usage, tx.Usage());
                        }
                        ASSIGN_OR_RETURN(summary.sessions, tx.ListSessions());
                        ASSIGN_OR_RETURN(std::vector<meta::OrphanRecord> orphans, tx.ListOrphans());
                        for (const meta::OrphanRecord& orphan : orphans) {
                          ++(orphan.session == 0 ? summary.orphans_pending : summary.orphans_held);
                        }
                        return OkStatus();
                      })
                      .WithContext("reading volume " + volume->name));
  for (const meta::SessionRecord& session : summary.sessions) {
    if (now_ms < session.expires_ms) {
      ++summary.mounts_alive;
    } else {
      ++summary.mounts_expired;
    }
  }
  return std::optional<VolumeSummary>(std::move(summary));
}

}  // namespace cairn::server
