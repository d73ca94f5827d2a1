// Authenticator: turns request credentials into a Principal, and checks a Principal
// against the tenant and scope a call needs.
//
// Accepted credentials:
//   Authorization: Bearer cairn_<key_id>_<secret>   an API key
//   Authorization: Bearer <header>.<payload>.<sig>  an HS256 JWT (only with a JWT secret)
//   X-API-Key: cairn_<key_id>_<secret>              an API key
// Every failure to establish identity is Unauthenticated (401); a valid credential used
// outside its tenants or scope is PermissionDenied (403).
#pragma once

#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "auth/principal.h"
#include "core/status.h"
#include "core/types.h"
#include "meta/meta_store.h"

namespace cairn::auth {

struct AuthenticatorOptions {
  // How long a validated API key is trusted without asking the store again; also the
  // longest a revocation made elsewhere can take to be honoured.
  TimestampMs cache_ttl_ms = 1000;
  // Most keys remembered at once; only keys whose secret was just verified are added, so
  // guessed key ids cannot fill it.
  size_t cache_capacity = 10000;
};

// Thread-safe.
class Authenticator {
 public:
  // `store` must outlive the authenticator. JWTs are accepted only when `jwt_secret` is
  // set and non-empty (its strength is the caller's to check, see ValidateJwtSecret).
  Authenticator(meta::MetaStore* store, std::optional<std::string> jwt_secret,
                AuthenticatorOptions options = {});

  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  // Either header may be empty (absent). Sending both is accepted only if they carry the
  // same API key. Store failures other than an unknown key come back as they are
  // (e.g. Unavailable), so an outage is not reported as a bad credential.
  Result<Principal> Authenticate(std::string_view authorization_header,
                                 std::string_view x_api_key_header, TimestampMs now_ms);

  // The same answer as Authenticate when it can be given without asking the store (a
  // JWT, a malformed credential, or an API key verified within the cache TTL); nullopt
  // when the store must be asked. Never blocks on I/O, so an event loop may call it and
  // send only cache misses to a worker pool.
  std::optional<Result<Principal>> TryAuthenticateCached(std::string_view authorization_header,
                                                         std::string_view x_api_key_header,
                                                         TimestampMs now_ms);

  // PermissionDenied unless `principal` may act on `tenant` with at least `needed`.
  static Status Authorize(const Principal& principal, const std::string& tenant,
                          meta::Scope needed);

  // Forgets a cached key so a revocation made through this process applies at once.
  void Invalidate(const std::string& key_id);
  size_t cached_key_count() const;

 private:
  struct CachedKey {
    meta::ApiKeyRecord record;
    TimestampMs fetched_at_ms = 0;
  };

  // With `cache_only`, a cache miss returns nullopt instead of asking the store.
  std::optional<Result<Principal>> AuthenticateAny(std::string_view authorization_header,
                                                   std::string_view x_api_key_header,
                                                   TimestampMs now_ms, bool cache_only);
  std::optional<Result<Principal>> AuthenticateApiKey(std::string_view text, TimestampMs now_ms,
                                                      bool cache_only);
  std::optional<meta::ApiKeyRecord> CacheLookup(const std::string& key_id, TimestampMs now_ms);
  void CacheInsert(const meta::ApiKeyRecord& record, TimestampMs now_ms);
  bool IsFresh(const CachedKey& entry, TimestampMs now_ms) const;

  meta::MetaStore* const store_;
  const std::optional<std::string> jwt_secret_;
  const AuthenticatorOptions options_;

  mutable std::mutex mu_;
  std::unordered_map<std::string, CachedKey> cache_;  // guarded by mu_
};

}  // namespace cairn::auth
