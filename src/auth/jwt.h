// HS256 JSON Web Tokens (RFC 7519), the alternative to API keys for callers that mint
// short-lived tokens from a shared secret.
//
// Verification accepts only {"alg":"HS256"} and requires the claims
//   "tenant": "t"  or  "tenants": ["t1", "t2"]   ("*" = every tenant)
//   "scope":  "read" | "write" | "admin"
//   "exp":    seconds since the epoch (required; the token is valid strictly before it)
//   "nbf":    seconds since the epoch (optional; the token is valid from it on)
// Every failure is Unauthenticated; no input makes it throw.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/principal.h"
#include "core/status.h"
#include "core/types.h"
#include "meta/meta_store.h"

namespace cairn::auth {

// RFC 7518 section 3.2: an HS256 key must be at least as long as the hash output.
inline constexpr size_t kMinJwtSecretBytes = 32;
// Far beyond any token we issue; bounds the work spent on hostile input.
inline constexpr size_t kMaxJwtBytes = 8192;

struct JwtClaims {
  std::vector<std::string> tenants;  // written as "tenant" when there is exactly one
  meta::Scope scope = meta::Scope::kRead;
  int64_t expires_at_s = 0;
  std::optional<int64_t> not_before_s;
};

// For startup configuration checks: InvalidArgument if the secret is shorter than
// kMinJwtSecretBytes. (The message does not include the secret.)
Status ValidateJwtSecret(std::string_view secret);

// Mints a token for `claims`, for tests and the CLI.
std::string CreateJwt(const JwtClaims& claims, std::string_view secret);
// Signs an arbitrary payload text under the header {"alg":"HS256","typ":"JWT"}; lets tests
// build tokens with unusual claims.
std::string SignJwtPayload(std::string_view payload_json, std::string_view secret);

// Verifies signature and claims at `now_ms`. The Principal's subject is "jwt".
Result<Principal> VerifyJwt(std::string_view token, std::string_view secret, TimestampMs now_ms);

}  // namespace cairn::auth
