// Credentials and the store summary as operations, written once for every caller: the
// `cairn keys` and `cairn status` commands, the server's first-start bootstrap, and the
// web console that will come. Each returns values (never prints); callers render them.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "auth/api_key.h"
#include "auth/secret_box.h"
#include "chunks/chunk_store.h"
#include "core/status.h"
#include "core/types.h"
#include "meta/file_tree.h"
#include "meta/meta_store.h"

namespace cairn::server {

// What a new key may do. `tenants` are tenant names or "*" (every tenant; API keys only).
struct KeyGrant {
  std::vector<std::string> tenants;
  meta::Scope scope = meta::Scope::kRead;
  std::string description;
};

// Checks a grant before anything is stored: at least one tenant, each "*" or a valid name;
// an S3 key's first tenant (the owner of the buckets it creates) must be a real tenant.
Status ValidateGrant(const KeyGrant& grant, bool s3);

struct CreatedApiKey {
  std::string key_id;
  std::string full_text;  // the whole key, shown once; only its hash is stored
};

// A new API key with `grant`.
Result<CreatedApiKey> CreateApiKey(meta::MetaStore* store, const KeyGrant& grant, TimestampMs now);

// Installs a key the operator chose (CAIRN_ADMIN_KEY): nothing to do when the same key is
// stored; FailedPrecondition when its id is stored with another secret or revoked. Safe
// when several nodes install it at once.
Status EnsureApiKey(meta::MetaStore* store, const auth::ParsedApiKey& key, const KeyGrant& grant,
                    TimestampMs now);

struct CreatedS3Key {
  std::string access_key;
  std::string secret;  // shown once; stored sealed with the master key
};

// A new S3 key pair with `grant`. Refused (FailedPrecondition) when stored secrets are
// sealed with a master key `secrets` lacks: a key sealed with a key the servers do not
// have would be useless to them.
Result<CreatedS3Key> CreateS3Key(meta::MetaStore* store, const auth::SecretBox& secrets,
                                 const KeyGrant& grant, TimestampMs now);

// Installs an S3 key pair the operator chose (CAIRN_S3_ACCESS_KEY / CAIRN_S3_SECRET_KEY),
// as EnsureApiKey does.
Status EnsureS3Key(meta::MetaStore* store, const auth::SecretBox& secrets,
                   const std::string& access_key, const std::string& secret, const KeyGrant& grant,
                   TimestampMs now);

// One credential as listings show it (never a secret).
struct KeyInfo {
  std::string id;  // an API key's 16-hex id, or an S3 access key
  bool s3 = false;
  meta::Scope scope = meta::Scope::kRead;
  bool revoked = false;
  TimestampMs created_at_ms = 0;
  std::vector<std::string> tenants;
  std::string description;
};

// API keys first, then S3 keys, each in the store's order.
Result<std::vector<KeyInfo>> ListKeys(meta::MetaStore* store);

// Revokes an API key (by id or by its whole text) or an S3 access key; returns the id.
Result<std::string> RevokeKey(meta::MetaStore* store, std::string_view id_or_key);

// What `cairn status` reports.
struct StoreSummary {
  std::map<std::string, uint64_t> objects_by_state;  // state name -> objects
  uint64_t logical_bytes = 0;                        // of committed objects
  uint64_t chunks = 0;
  uint64_t chunk_bytes = 0;          // physical: each stored chunk once
  uint64_t inline_bytes = 0;         // physical too: small objects kept in the metadata
  uint64_t unreferenced_chunks = 0;  // awaiting GC
  Status writable;                   // the chunk store's roots
  struct PerClass {
    uint64_t logical_bytes = 0;
    uint64_t chunks = 0;
    uint64_t chunk_bytes = 0;
    uint64_t inline_bytes = 0;
  };
  std::map<StorageClass, PerClass> by_class;
};

Result<StoreSummary> SummarizeStore(meta::MetaStore* store, chunks::ChunkStore* chunks);

// The filesystem volume as `cairn status` and the server's /health report it.
struct VolumeSummary {
  meta::VolumeRecord volume;
  meta::VolumeUsage usage;
  // Every session row, by id: a mount is alive while now < expires_ms; an expired row
  // stays until a mount or `cairn fs` reclaims it.
  std::vector<meta::SessionRecord> sessions;
  uint64_t mounts_alive = 0;
  uint64_t mounts_expired = 0;
  // Files whose last name went while open (nlink 0): held by a mount's handle, or pending
  // (let go while other mounts were alive; deleted once every mount's feed is past them).
  uint64_t orphans_held = 0;
  uint64_t orphans_pending = 0;
};

// nullopt when the store keeps no filesystem or none was formatted; `now_ms` judges the
// sessions. With `usage` false, the usage (which reads every inode row) is left at zero.
Result<std::optional<VolumeSummary>> SummarizeVolume(meta::MetaStore* store, TimestampMs now_ms,
                                                     bool usage = true);

}  // namespace cairn::server
