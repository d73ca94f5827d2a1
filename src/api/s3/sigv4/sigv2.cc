#include "api/s3/sigv4/sigv2.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <optional>

#include "core/base64.h"
#include "core/hashing.h"
#include "core/text.h"

namespace cairn::api::s3 {
namespace {

using QueryPairs = std::vector<std::pair<std::string, std::string>>;

constexpr std::string_view kSignatureMismatchMessage =
    "The request signature we calculated does not match the signature you provided. "
    "Check your key and signing method.";
constexpr std::string_view kNeedsDateMessage =
    "AWS authentication requires a valid Date or x-amz-date header";

bool StartsWithAmz(std::string_view lower_name) { return lower_name.substr(0, 6) == "x-amz-"; }

// A header value as V2 signs it: trimmed, and a folded line (a line break with the
// whitespace around it) unfolded into one space. Other inner whitespace is kept as sent.
std::string UnfoldValue(std::string_view value) {
  value = TrimAscii(value, kAsciiWhitespace);
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size();) {
    if (value[i] == '\r' || value[i] == '\n') {
      while (!out.empty() && (out.back() == ' ' || out.back() == '\t')) out.pop_back();
      while (i < value.size() && IsAsciiWhitespace(value[i])) ++i;
      out.push_back(' ');
      continue;
    }
    out.push_back(value[i++]);
  }
  return out;
}

// The Content-MD5 or Content-Type line: the header's value; for query authentication the
// query parameter of that (lower-case) name instead when there is one.
std::string PositionalValue(const SigningRequest& request, SigV2Form form,
                            std::string_view lower_name) {
  if (form == SigV2Form::kQuery) {
    for (const auto& [name, value] : request.query) {
      if (ToLowerAscii(name) == lower_name) return std::string(TrimAscii(value, kAsciiWhitespace));
    }
  }
  auto values = HeaderValues(request, lower_name);
  return values.empty() ? std::string() : std::string(TrimAscii(values.front(), kAsciiWhitespace));
}

bool ValidAccessKey(std::string_view key) {
  return !key.empty() && key.size() <= 128 &&
         std::all_of(key.begin(), key.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// The CanonicalizedResource with `path` in place of the request's path.
std::string ResourceWithPath(const SigningRequest& request, std::string_view path) {
  std::string out;
  if (!request.virtual_host_bucket.empty()) {
    out.push_back('/');
    out += request.virtual_host_bucket;
  }
  out += path.empty() ? std::string_view("/") : path;
  std::vector<const std::pair<std::string, std::string>*> signed_pairs;
  for (const auto& pair : request.query) {
    if (IsSignedSubresourceV2(pair.first)) signed_pairs.push_back(&pair);
  }
  std::stable_sort(signed_pairs.begin(), signed_pairs.end(),
                   [](const auto* a, const auto* b) { return a->first < b->first; });
  for (size_t i = 0; i < signed_pairs.size(); ++i) {
    out.push_back(i == 0 ? '?' : '&');
    out += signed_pairs[i]->first;
    if (!signed_pairs[i]->second.empty()) {
      out.push_back('=');
      out += signed_pairs[i]->second;
    }
  }
  return out;
}

std::string StringToSignWithResource(const SigningRequest& request, SigV2Form form,
                                     std::string_view date_line, bool omit_amz_date,
                                     std::string_view resource) {
  std::string out = request.method;
  out.push_back('\n');
  out += PositionalValue(request, form, "content-md5");
  out.push_back('\n');
  out += PositionalValue(request, form, "content-type");
  out.push_back('\n');
  out += date_line;
  out.push_back('\n');
  out += CanonicalizedAmzHeadersV2(request, form, omit_amz_date);
  out += resource;
  return out;
}

// The resources a client may have signed: the one the request names and, for a
// path-style request to a bucket ("/bucket"), the same with a trailing slash, which
// botocore signs for every bucket operation (as the AWS virtual-hosted examples do).
std::vector<std::string> Resources(const SigningRequest& request) {
  std::vector<std::string> resources{CanonicalizedResourceV2(request)};
  const std::string& path = request.raw_path;
  if (request.virtual_host_bucket.empty() && path.size() > 1 && path.front() == '/' &&
      path.find('/', 1) == std::string::npos) {
    resources.push_back(ResourceWithPath(request, path + "/"));
  }
  return resources;
}

// Date and x-amz-date: the IMF-fixdate form ("Tue, 27 Mar 2007 19:36:42 +0000" or
// "... GMT") every V2 client sends, or the ISO 8601 basic form of SigV4.
Result<TimestampMs> ParseRequestDate(std::string_view text) {
  auto http = ParseHttpDate(text);
  if (http.ok()) return http;
  auto iso = ParseAmzDate(text);
  if (iso.ok()) return iso;
  return http.status();
}

// The strings a client may have signed for a header-signed request: each resource of
// Resources() with each Date line (see sigv2.h for the three used with x-amz-date).
std::vector<std::string> HeaderStringsToSign(const SigningRequest& request,
                                             const std::optional<std::string>& amz_date,
                                             const std::optional<std::string>& date) {
  std::vector<std::string> strings;
  for (const std::string& resource : Resources(request)) {
    auto add = [&](std::string_view date_line, bool omit_amz_date) {
      strings.push_back(StringToSignWithResource(request, SigV2Form::kHeader, date_line,
                                                 omit_amz_date, resource));
    };
    if (!amz_date) {
      add(date.value_or(""), false);
      continue;
    }
    add("", false);
    if (date) add(*date, false);
    add(*amz_date, true);
  }
  return strings;
}

// aws-chunked framing is signed chunk by chunk with a SigV4 signing key; a V2 request has
// none, so such a body cannot be checked.
SigV4Status RefuseAwsChunked(const SigningRequest& request) {
  constexpr std::string_view kMessage =
      "aws-chunked request bodies need Signature Version 4 (AWS4-HMAC-SHA256); this request "
      "is signed with Signature Version 2";
  for (const auto& [name, value] : request.headers) {
    std::string lower = ToLowerAscii(name);
    if (lower == "x-amz-content-sha256" &&
        TrimAscii(value, kAsciiWhitespace).substr(0, 10) == "STREAMING-") {
      return SigV4Status(SigV4Error::kInvalidRequest, std::string(kMessage));
    }
    if (lower == "x-amz-decoded-content-length" || lower == "x-amz-trailer") {
      return SigV4Status(SigV4Error::kInvalidRequest, std::string(kMessage));
    }
    if (lower == "content-encoding" &&
        ToLowerAscii(value).find("aws-chunked") != std::string::npos) {
      return SigV4Status(SigV4Error::kInvalidRequest, std::string(kMessage));
    }
  }
  return SigV4Status();
}

}  // namespace

std::string HmacSha1Base64(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &length);
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(out), length));
}

bool IsSignedSubresourceV2(std::string_view name) {
  // The AWS list, the multi-object delete and response-header overrides it names
  // separately, and the further sub-resources AWS signs in practice (the ones botocore
  // signs, which it must for AWS to accept them).
  static constexpr std::string_view kNames[] = {
      "accelerate",
      "acl",
      "analytics",
      "cors",
      "delete",
      "inventory",
      "lifecycle",
      "location",
      "logging",
      "metrics",
      "notification",
      "object-lock",
      "partNumber",
      "policy",
      "replication",
      "requestPayment",
      "response-cache-control",
      "response-content-disposition",
      "response-content-encoding",
      "response-content-language",
      "response-content-type",
      "response-expires",
      "restore",
      "select",
      "select-type",
      "tagging",
      "torrent",
      "uploadId",
      "uploads",
      "versionId",
      "versioning",
      "versions",
      "website",
  };
  return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
}

std::string CanonicalizedAmzHeadersV2(const SigningRequest& request, SigV2Form form,
                                      bool omit_amz_date) {
  std::map<std::string, std::string> folded;  // sorted by lower-case name
  auto add = [&](std::string_view name, std::string_view value) {
    std::string lower = ToLowerAscii(name);
    if (!StartsWithAmz(lower)) return;
    if (lower == "x-amz-date" && (omit_amz_date || form == SigV2Form::kQuery)) return;
    auto [it, inserted] = folded.try_emplace(std::move(lower), UnfoldValue(value));
    if (!inserted) {
      it->second.push_back(',');
      it->second += UnfoldValue(value);
    }
  };
  if (form == SigV2Form::kQuery) {
    for (const auto& [name, value] : request.query) add(name, value);
  }
  // A header also given as a query parameter is the query's (the URL is what was signed).
  std::map<std::string, std::string> from_query;
  from_query.swap(folded);
  for (const auto& [name, value] : request.headers) {
    if (from_query.count(ToLowerAscii(name)) == 0) add(name, value);
  }
  folded.merge(from_query);
  std::string out;
  for (const auto& [name, value] : folded) {
    out += name;
    out.push_back(':');
    out += value;
    out.push_back('\n');
  }
  return out;
}

std::string CanonicalizedResourceV2(const SigningRequest& request) {
  return ResourceWithPath(request, request.raw_path);
}

std::string StringToSignV2(const SigningRequest& request, SigV2Form form,
                           std::string_view date_line, bool omit_amz_date) {
  return StringToSignWithResource(request, form, date_line, omit_amz_date,
                                  CanonicalizedResourceV2(request));
}
SigV4Result<ParsedAuthorizationV2> ParseAuthorizationV2(std::string_view header) {
  header = TrimAscii(header, kAsciiWhitespace);
  auto invalid = [] {
    return SigV4Status(SigV4Error::kInvalidArgument,
                       "AWS authorization header is invalid. Expected AwsAccessKeyId:signature");
  };
  if (header.substr(0, 4) != "AWS ") return invalid();
  std::string_view credentials = TrimAscii(header.substr(4), kAsciiWhitespace);
  size_t colon = credentials.find(':');
  if (colon == std::string_view::npos) return invalid();
  std::string_view key = credentials.substr(0, colon);
  std::string_view signature = credentials.substr(colon + 1);
  if (!ValidAccessKey(key) || signature.empty() ||
      std::any_of(signature.begin(), signature.end(),
                  [](char c) { return c <= 0x20 || c >= 0x7f; })) {
    return invalid();
  }
  return ParsedAuthorizationV2{std::string(key), std::string(signature)};
}

SigV4Result<PresignedParametersV2> ParsePresignedQueryV2(const QueryPairs& query) {
  static constexpr std::string_view kNames[] = {"AWSAccessKeyId", "Signature", "Expires"};
  std::optional<std::string_view> values[std::size(kNames)];
  for (const auto& [name, value] : query) {
    for (size_t i = 0; i < std::size(kNames); ++i) {
      if (name != kNames[i]) continue;
      if (values[i].has_value()) {
        return SigV4Status(
            SigV4Error::kInvalidArgument,
            "the " + std::string(kNames[i]) + " query parameter appears more than once");
      }
      values[i] = value;
    }
  }
  for (const auto& value : values) {
    if (!value.has_value()) {
      return SigV4Status(SigV4Error::kAccessDenied,
                         "Query-string authentication requires the Signature, Expires and "
                         "AWSAccessKeyId parameters");
    }
  }
  if (!ValidAccessKey(*values[0])) {
    return SigV4Status(SigV4Error::kAccessDenied, "AWSAccessKeyId is empty or malformed");
  }
  // A '+' left unescaped in the URL arrives as a space; Base64 has no spaces.
  std::string signature(TrimAscii(*values[1], kAsciiWhitespace));
  std::replace(signature.begin(), signature.end(), ' ', '+');
  if (signature.empty()) return SigV4Status(SigV4Error::kAccessDenied, "Signature is empty");
  std::string_view expires = TrimAscii(*values[2], kAsciiWhitespace);
  int64_t seconds = 0;
  auto [end, error] = std::from_chars(expires.data(), expires.data() + expires.size(), seconds);
  if (expires.empty() || expires.size() > 18 || error != std::errc() ||
      end != expires.data() + expires.size() || expires.front() == '-') {
    return SigV4Status(
        SigV4Error::kAccessDenied,
        "Invalid date (should be seconds since epoch): Expires " + QuoteForMessage(expires));
  }
  return PresignedParametersV2{std::string(*values[0]), std::move(signature), seconds,
                               std::string(expires)};
}

SigV4Result<VerifiedRequest> VerifyRequestV2(const SigningRequest& request, AuthKind kind,
                                             const SecretLookup& lookup,
                                             const VerifyOptions& options) {
  VerifiedRequest verified;
  verified.kind = kind;
  std::string provided_signature;
  std::vector<std::string> strings_to_sign;
  if (kind == AuthKind::kHeaderV2) {
    auto authorization = HeaderValues(request, "authorization");
    if (authorization.size() != 1) {
      return SigV4Status(SigV4Error::kInvalidArgument,
                         "a V2 request needs exactly one Authorization header");
    }
    auto parsed = ParseAuthorizationV2(authorization[0]);
    if (!parsed.ok()) return parsed.status();
    // x-amz-date wins over Date, even when it does not parse.
    auto amz_date = SingleHeader(request, "x-amz-date");
    if (!amz_date.ok()) return amz_date.status();
    auto date = SingleHeader(request, "date");
    if (!date.ok()) return date.status();
    const std::optional<std::string>& timestamp =
        amz_date.value().has_value() ? amz_date.value() : date.value();
    if (!timestamp) return SigV4Status(SigV4Error::kAccessDenied, std::string(kNeedsDateMessage));
    auto time = ParseRequestDate(*timestamp);
    if (!time.ok()) {
      return SigV4Status(SigV4Error::kAccessDenied,
                         std::string(kNeedsDateMessage) + ": " + time.status().message());
    }
    verified.request_time_ms = *time;
    verified.amz_date = FormatAmzDate(*time);
    int64_t skew = request.now_ms - verified.request_time_ms;
    if (skew > options.max_skew_ms || -skew > options.max_skew_ms) {
      return SigV4Status(SigV4Error::kRequestTimeTooSkewed,
                         "The difference between the request time " + QuoteForMessage(*timestamp) +
                             " and the current time is too large (" + std::to_string(skew / 1000) +
                             " s)");
    }
    auto token = SingleHeader(request, "x-amz-security-token");
    if (!token.ok()) return token.status();
    verified.security_token = token.value();
    verified.access_key = parsed->access_key;
    provided_signature = parsed->signature;
    strings_to_sign = HeaderStringsToSign(request, amz_date.value(), date.value());
  } else if (kind == AuthKind::kPresignedV2) {
    auto params = ParsePresignedQueryV2(request.query);
    if (!params.ok()) return params.status();
    const int64_t now_seconds = request.now_ms / 1000;
    if (now_seconds > params->expires_seconds) {
      return SigV4Status(SigV4Error::kAccessDenied, "Request has expired");
    }
    if (params->expires_seconds - now_seconds > kMaxPresignV2Seconds + options.max_skew_ms / 1000) {
      return SigV4Status(SigV4Error::kAccessDenied,
                         "Expires is more than 7 days (604800 seconds) in the future");
    }
    verified.request_time_ms = request.now_ms;
    verified.amz_date = FormatAmzDate(request.now_ms);
    verified.expires_at_ms = params->expires_seconds * 1000;
    auto token = SingleHeader(request, "x-amz-security-token");
    if (!token.ok()) return token.status();
    verified.security_token = token.value();
    for (const auto& [name, value] : request.query) {
      if (!verified.security_token && ToLowerAscii(name) == "x-amz-security-token") {
        verified.security_token = value;
      }
    }
    verified.access_key = params->access_key;
    provided_signature = params->signature;
    for (const std::string& resource : Resources(request)) {
      strings_to_sign.push_back(StringToSignWithResource(request, SigV2Form::kQuery,
                                                         params->expires_text, false, resource));
    }
  } else {
    return SigV4Status(SigV4Error::kInternalError, "not a Signature Version 2 request");
  }
  SigV4Status chunked = RefuseAwsChunked(request);
  if (!chunked.ok()) return chunked;
  verified.payload_mode = PayloadMode::kUnsigned;
  verified.payload_sha256 = std::string(kUnsignedPayload);

  auto secret = lookup(verified.access_key);
  if (!secret.ok()) return CredentialLookupFailure(secret.status());
  // Every candidate is computed and compared, so the time taken does not tell which one
  // (if any) matched.
  bool matched = false;
  for (const std::string& string_to_sign : strings_to_sign) {
    matched |= ConstantTimeEquals(HmacSha1Base64(*secret, string_to_sign), provided_signature);
  }
  if (!matched) {
    return SigV4Status(SigV4Error::kSignatureDoesNotMatch, std::string(kSignatureMismatchMessage));
  }
  return verified;
}

// ---- Signing -----------------------------------------------------------------------------

Result<std::string> SignRequestV2(const SigningRequest& request,
                                  const SigningCredentials& credentials) {
  if (!ValidAccessKey(credentials.access_key)) {
    return InvalidArgumentError("signing: malformed access key id");
  }
  std::optional<std::string> amz_date, date;
  for (const auto& [name, value] : request.headers) {
    std::string lower = ToLowerAscii(name);
    if (lower == "x-amz-date") amz_date = std::string(TrimAscii(value, kAsciiWhitespace));
    if (lower == "date") date = std::string(TrimAscii(value, kAsciiWhitespace));
  }
  if (!amz_date && !date) return InvalidArgumentError("signing: the request has no date");
  RETURN_IF_ERROR(ParseRequestDate(amz_date ? *amz_date : *date).status());
  std::string string_to_sign =
      StringToSignV2(request, SigV2Form::kHeader, amz_date ? std::string() : *date);
  return "AWS " + credentials.access_key + ":" +
         HmacSha1Base64(credentials.secret_key, string_to_sign);
}

Result<QueryPairs> PresignV2(const SigningRequest& request, const SigningCredentials& credentials,
                             int64_t expires_seconds) {
  if (!ValidAccessKey(credentials.access_key)) {
    return InvalidArgumentError("presign: malformed access key id");
  }
  if (expires_seconds < 0) return InvalidArgumentError("presign: negative expiry time");
  std::string string_to_sign =
      StringToSignV2(request, SigV2Form::kQuery, std::to_string(expires_seconds));
  QueryPairs query = request.query;
  query.emplace_back("AWSAccessKeyId", credentials.access_key);
  query.emplace_back("Expires", std::to_string(expires_seconds));
  query.emplace_back("Signature", HmacSha1Base64(credentials.secret_key, string_to_sign));
  return query;
}

}  // namespace cairn::api::s3
