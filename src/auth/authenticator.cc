#include "auth/authenticator.h"

#include <algorithm>
#include <utility>

#include "auth/api_key.h"
#include "auth/jwt.h"
#include "core/hashing.h"
#include "core/text.h"

namespace cairn::auth {
namespace {

// One message for unknown keys and wrong secrets, so a caller probing key ids learns
// nothing about which of them exist. A revoked key is reported as revoked only to a caller
// that presents its whole secret: that caller held the key and learns nothing new (the key
// id is part of the key it sent); with a wrong secret a revoked key looks unknown too.
constexpr char kInvalidApiKey[] = "invalid API key";

Status Reject(std::string message) { return UnauthenticatedError(std::move(message)); }

// The token of "Bearer <token>" (the scheme is case-insensitive, RFC 7235).
Result<std::string_view> BearerToken(std::string_view header) {
  size_t blank = header.find_first_of(kHttpWhitespace);
  std::string_view scheme = header.substr(0, blank);
  if (!EqualsIgnoreCaseAscii(scheme, "Bearer")) {
    return Reject("unsupported authorization scheme; use 'Bearer'");
  }
  std::string_view token = blank == std::string_view::npos
                               ? std::string_view()
                               : TrimAscii(header.substr(blank), kHttpWhitespace);
  if (token.empty()) return Reject("empty bearer token");
  if (token.find_first_of(kHttpWhitespace) != std::string_view::npos) {
    return Reject("malformed bearer token");
  }
  return token;
}

std::string_view DigestBytes(const Digest& digest) {
  return std::string_view(reinterpret_cast<const char*>(digest.bytes.data()), digest.bytes.size());
}

Principal PrincipalFromKey(const meta::ApiKeyRecord& record) {
  return Principal{record.key_id, record.tenants, record.scope};
}

}  // namespace

Authenticator::Authenticator(meta::MetaStore* store, std::optional<std::string> jwt_secret,
                             AuthenticatorOptions options)
    : store_(store), jwt_secret_(std::move(jwt_secret)), options_(options) {}

Result<Principal> Authenticator::Authenticate(std::string_view authorization_header,
                                              std::string_view x_api_key_header,
                                              TimestampMs now_ms) {
  return *AuthenticateAny(authorization_header, x_api_key_header, now_ms, false);
}

std::optional<Result<Principal>> Authenticator::TryAuthenticateCached(
    std::string_view authorization_header, std::string_view x_api_key_header, TimestampMs now_ms) {
  return AuthenticateAny(authorization_header, x_api_key_header, now_ms, true);
}

std::optional<Result<Principal>> Authenticator::AuthenticateAny(
    std::string_view authorization_header, std::string_view x_api_key_header, TimestampMs now_ms,
    bool cache_only) {
  authorization_header = TrimAscii(authorization_header, kHttpWhitespace);
  x_api_key_header = TrimAscii(x_api_key_header, kHttpWhitespace);

  std::optional<std::string_view> bearer;
  if (!authorization_header.empty()) {
    Result<std::string_view> token = BearerToken(authorization_header);
    if (!token.ok()) return Result<Principal>(token.status());
    bearer = *token;
  }
  if (!x_api_key_header.empty()) {
    // Two different credentials would leave it unclear whose authority the request has.
    if (bearer && *bearer != x_api_key_header) {
      return Result<Principal>(Reject("conflicting credentials in Authorization and X-API-Key"));
    }
    return AuthenticateApiKey(x_api_key_header, now_ms, cache_only);
  }
  if (!bearer) return Result<Principal>(Reject("missing credentials"));

  if (LooksLikeApiKey(*bearer)) return AuthenticateApiKey(*bearer, now_ms, cache_only);
  if (std::count(bearer->begin(), bearer->end(), '.') == 2) {
    if (!jwt_secret_ || jwt_secret_->empty()) {
      return Result<Principal>(Reject("JWT auth is not enabled"));
    }
    return VerifyJwt(*bearer, *jwt_secret_, now_ms);
  }
  return Result<Principal>(Reject("malformed credential: expected an API key or a JWT"));
}

Status Authenticator::Authorize(const Principal& principal, const std::string& tenant,
                                meta::Scope needed) {
  if (!principal.AllowsTenant(tenant)) {
    return PermissionDeniedError("credential is not valid for tenant '" + tenant + "'");
  }
  if (!principal.AllowsScope(needed)) {
    return PermissionDeniedError("credential has scope '" +
                                 std::string(meta::ScopeName(principal.scope)) +
                                 "' but this needs '" + std::string(meta::ScopeName(needed)) + "'");
  }
  return OkStatus();
}

std::optional<Result<Principal>> Authenticator::AuthenticateApiKey(std::string_view text,
                                                                   TimestampMs now_ms,
                                                                   bool cache_only) {
  Result<ParsedApiKey> parsed = ParseApiKey(text);
  if (!parsed.ok()) return Result<Principal>(Reject("malformed API key"));
  const Digest presented = HashSecret(parsed->secret);

  // A cached record was verified against the store within the TTL; the presented secret
  // is still checked against it on every request.
  std::optional<meta::ApiKeyRecord> record = CacheLookup(parsed->key_id, now_ms);
  bool from_cache = record.has_value();
  if (!from_cache) {
    if (cache_only) return std::nullopt;
    Result<meta::ApiKeyRecord> fetched = store_->GetApiKey(parsed->key_id);
    if (!fetched.ok()) {
      if (fetched.status().code() == StatusCode::kNotFound) {
        return Result<Principal>(Reject(kInvalidApiKey));
      }
      return Result<Principal>(fetched.status().WithContext("looking up API key"));
    }
    record = std::move(fetched).value();
  }

  // Both sides are fixed-size SHA-256 digests, so the comparison time depends on neither.
  bool secret_matches =
      ConstantTimeEquals(DigestBytes(record->secret_hash), DigestBytes(presented));
  if (!secret_matches) return Result<Principal>(Reject(kInvalidApiKey));
  if (record->revoked) {
    return Result<Principal>(Reject("the API key " + record->key_id + " was revoked"));
  }

  if (!from_cache) CacheInsert(*record, now_ms);
  return Result<Principal>(PrincipalFromKey(*record));
}

bool Authenticator::IsFresh(const CachedKey& entry, TimestampMs now_ms) const {
  // An entry from the "future" (the clock went back) is treated as stale.
  return now_ms >= entry.fetched_at_ms && now_ms - entry.fetched_at_ms < options_.cache_ttl_ms;
}

std::optional<meta::ApiKeyRecord> Authenticator::CacheLookup(const std::string& key_id,
                                                             TimestampMs now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cache_.find(key_id);
  if (it == cache_.end()) return std::nullopt;
  if (!IsFresh(it->second, now_ms)) {
    cache_.erase(it);
    return std::nullopt;
  }
  return it->second.record;
}

void Authenticator::CacheInsert(const meta::ApiKeyRecord& record, TimestampMs now_ms) {
  if (options_.cache_capacity == 0 || options_.cache_ttl_ms <= 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (cache_.size() >= options_.cache_capacity && !cache_.contains(record.key_id)) {
    std::erase_if(cache_, [&](const auto& item) { return !IsFresh(item.second, now_ms); });
    // Still full of live keys: drop the oldest. This linear scan runs only when more
    // distinct keys are active within one TTL than the capacity allows.
    if (cache_.size() >= options_.cache_capacity) {
      auto oldest =
          std::min_element(cache_.begin(), cache_.end(), [](const auto& a, const auto& b) {
            return a.second.fetched_at_ms < b.second.fetched_at_ms;
          });
      cache_.erase(oldest);
    }
  }
  cache_[record.key_id] = CachedKey{record, now_ms};
}

void Authenticator::Invalidate(const std::string& key_id) {
  std::lock_guard<std::mutex> lock(mu_);
  cache_.erase(key_id);
}

size_t Authenticator::cached_key_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cache_.size();
}

}  // namespace cairn::auth
