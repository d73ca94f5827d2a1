#include "auth/jwt.h"

#include <cmath>
#include <exception>
#include <nlohmann/json.hpp>
#include <utility>

#include "core/base64.h"
#include "core/hashing.h"

namespace cairn::auth {
namespace {

using nlohmann::json;

constexpr std::string_view kHeaderJson = R"({"alg":"HS256","typ":"JWT"})";
constexpr std::string_view kAlgorithm = "HS256";

Status Reject(std::string message) { return UnauthenticatedError(std::move(message)); }

// Parses untrusted text; nullopt unless it is a JSON object. Never throws on bad input.
std::optional<json> ParseObject(std::string_view text) {
  json value = json::parse(text.begin(), text.end(), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded() || !value.is_object()) return std::nullopt;
  return value;
}

// A NumericDate claim in seconds; fractions are allowed by RFC 7519.
std::optional<double> NumericDate(const json& value) {
  if (!value.is_number()) return std::nullopt;
  double seconds = value.get<double>();
  if (!std::isfinite(seconds)) return std::nullopt;
  return seconds;
}

Result<std::vector<std::string>> TenantsClaim(const json& claims) {
  auto tenant = claims.find("tenant");
  auto tenants = claims.find("tenants");
  if (tenant != claims.end() && tenants != claims.end()) {
    return Reject("JWT has both 'tenant' and 'tenants' claims");
  }
  std::vector<std::string> out;
  if (tenant != claims.end()) {
    if (!tenant->is_string()) return Reject("JWT 'tenant' claim is not a string");
    out.push_back(tenant->get<std::string>());
  } else if (tenants != claims.end()) {
    if (!tenants->is_array()) return Reject("JWT 'tenants' claim is not an array");
    for (const json& item : *tenants) {
      if (!item.is_string()) return Reject("JWT 'tenants' claim has a non-string element");
      out.push_back(item.get<std::string>());
    }
  } else {
    return Reject("JWT has no 'tenant' or 'tenants' claim");
  }
  if (out.empty()) return Reject("JWT 'tenants' claim is empty");
  for (const std::string& name : out) {
    // A malformed name could never match a real tenant; rejecting it surfaces the
    // issuer's mistake instead of producing a token that is silently useless.
    if (name != "*" && !ValidateName("tenant", name).ok()) {
      return Reject("JWT names an invalid tenant");
    }
  }
  return out;
}

Result<Principal> PrincipalFromClaims(const json& claims, TimestampMs now_ms) {
  const double now_s = static_cast<double>(now_ms) / 1000.0;

  auto exp = claims.find("exp");
  if (exp == claims.end()) return Reject("JWT has no 'exp' claim");
  std::optional<double> expires_at_s = NumericDate(*exp);
  if (!expires_at_s) return Reject("JWT 'exp' claim is not a number");
  if (now_s >= *expires_at_s) return Reject("token expired");

  auto nbf = claims.find("nbf");
  if (nbf != claims.end()) {
    std::optional<double> not_before_s = NumericDate(*nbf);
    if (!not_before_s) return Reject("JWT 'nbf' claim is not a number");
    if (now_s < *not_before_s) return Reject("token is not valid yet");
  }

  Principal principal;
  principal.subject = "jwt";
  ASSIGN_OR_RETURN(principal.tenants, TenantsClaim(claims));

  auto scope = claims.find("scope");
  if (scope == claims.end()) return Reject("JWT has no 'scope' claim");
  if (!scope->is_string()) return Reject("JWT 'scope' claim is not a string");
  Result<meta::Scope> parsed = meta::ParseScope(scope->get<std::string>());
  if (!parsed.ok()) return Reject("JWT 'scope' claim is not read, write or admin");
  principal.scope = *parsed;
  return principal;
}

Result<Principal> VerifyJwtUnguarded(std::string_view token, std::string_view secret,
                                     TimestampMs now_ms) {
  if (secret.empty()) return Reject("JWT auth is not enabled");
  if (token.size() > kMaxJwtBytes) return Reject("JWT is too long");

  size_t first_dot = token.find('.');
  size_t second_dot =
      first_dot == std::string_view::npos ? first_dot : token.find('.', first_dot + 1);
  if (second_dot == std::string_view::npos ||
      token.find('.', second_dot + 1) != std::string_view::npos) {
    return Reject("malformed JWT: expected three dot-separated parts");
  }
  std::string_view header_text = token.substr(0, first_dot);
  std::string_view payload_text = token.substr(first_dot + 1, second_dot - first_dot - 1);
  std::string_view signature_text = token.substr(second_dot + 1);

  // The header is read before the signature is checked only to refuse other algorithms
  // (notably "none") with a clear message; nothing in it changes how we verify.
  Result<std::string> header_bytes = Base64Decode(header_text, kBase64Url);
  if (!header_bytes.ok()) return Reject("malformed JWT header");
  std::optional<json> header = ParseObject(*header_bytes);
  if (!header) return Reject("malformed JWT header");
  auto alg = header->find("alg");
  if (alg == header->end() || !alg->is_string() || alg->get<std::string>() != kAlgorithm) {
    return Reject("unsupported JWT algorithm; only HS256 is accepted");
  }
  // RFC 7515 section 4.1.11: extensions we do not understand must not be ignored.
  if (header->contains("crit")) return Reject("JWT header has unsupported critical extensions");

  Result<std::string> signature = Base64Decode(signature_text, kBase64Url);
  if (!signature.ok()) return Reject("malformed JWT signature");
  std::string expected = HmacSha256(secret, token.substr(0, second_dot));
  if (!ConstantTimeEquals(*signature, expected)) return Reject("JWT signature is invalid");

  // From here on the content was produced by someone holding the secret.
  Result<std::string> payload_bytes = Base64Decode(payload_text, kBase64Url);
  if (!payload_bytes.ok()) return Reject("malformed JWT payload");
  std::optional<json> claims = ParseObject(*payload_bytes);
  if (!claims) return Reject("malformed JWT payload: not a JSON object");
  return PrincipalFromClaims(*claims, now_ms);
}

}  // namespace

Status ValidateJwtSecret(std::string_view secret) {
  if (secret.size() < kMinJwtSecretBytes) {
    return InvalidArgumentError("JWT secret must be at least " +
                                std::to_string(kMinJwtSecretBytes) + " bytes, got " +
                                std::to_string(secret.size()));
  }
  return OkStatus();
}

std::string SignJwtPayload(std::string_view payload_json, std::string_view secret) {
  std::string signing_input =
      Base64Encode(kHeaderJson, kBase64Url) + "." + Base64Encode(payload_json, kBase64Url);
  std::string signature = Base64Encode(HmacSha256(secret, signing_input), kBase64Url);
  return signing_input + "." + signature;
}

std::string CreateJwt(const JwtClaims& claims, std::string_view secret) {
  json payload = json::object();
  if (claims.tenants.size() == 1) {
    payload["tenant"] = claims.tenants.front();
  } else {
    payload["tenants"] = claims.tenants;
  }
  payload["scope"] = std::string(meta::ScopeName(claims.scope));
  payload["exp"] = claims.expires_at_s;
  if (claims.not_before_s) payload["nbf"] = *claims.not_before_s;
  // Replacing invalid UTF-8 keeps dump() from throwing; such a tenant fails verification.
  return SignJwtPayload(payload.dump(-1, ' ', false, json::error_handler_t::replace), secret);
}

Result<Principal> VerifyJwt(std::string_view token, std::string_view secret, TimestampMs now_ms) {
  // nlohmann::json reports some errors by exception (e.g. allocation, type mismatches we
  // believe are ruled out above); a hostile token must never take the server down.
  try {
    return VerifyJwtUnguarded(token, secret, now_ms);
  } catch (const std::exception&) {
    return Reject("malformed JWT");
  } catch (...) {
    return Reject("malformed JWT");
  }
}

}  // namespace cairn::auth
