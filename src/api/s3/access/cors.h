// Bucket CORS configurations: S3's CORSConfiguration document (PutBucketCors /
// GetBucketCors), rule matching, and the Access-Control-* headers of a preflight (OPTIONS)
// and of an actual cross-origin request. Pure: the handlers store the document and send
// the headers.
//
// Error mapping for the S3 layer:
//   Parse:     kInvalidArgument; `*error` tells the S3 code: kMalformedXML (not XML, a
//              DOCTYPE, wrong structure, a missing or repeated element, a bad
//              MaxAgeSeconds, more than 100 rules, an ID over 255 characters) or
//              kInvalidRequest (an unsupported method, two wildcards in an AllowedOrigin or
//              AllowedHeader, a wildcard or bad character in an ExposeHeader, a control
//              character anywhere); a body over 64 KiB is kPayloadTooLarge with
//              kMaxMessageLengthExceeded. All are 400.
//   Preflight: kInvalidArgument → 400 BadRequest (no Origin, or no
//              Access-Control-Request-Method); kPermissionDenied → 403 AccessForbidden with
//              kCorsNotAllowedMessage (no rule matches) or kCorsNotEnabledMessage (the bucket
//              has no configuration; PreflightWithoutConfiguration).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace cairn::s3 {

inline constexpr size_t kMaxCorsConfigurationBytes = 64 * 1024;
inline constexpr size_t kMaxCorsRules = 100;
inline constexpr size_t kMaxCorsRuleIdLength = 255;

// The 403 messages S3 sends for a refused preflight.
inline constexpr std::string_view kCorsNotAllowedMessage =
    "CORSResponse: This CORS request is not allowed. This is usually because the evaluation "
    "of Origin, request method / Access-Control-Request-Method or "
    "Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.";
inline constexpr std::string_view kCorsNotEnabledMessage =
    "CORSResponse: CORS is not enabled for this bucket.";
// The 400 messages for a preflight that lacks what it must carry.
inline constexpr std::string_view kCorsMissingOriginMessage =
    "Insufficient information. Origin request header needed.";
inline constexpr std::string_view kCorsMissingMethodMessage =
    "Invalid Access-Control-Request-Method: null";

// Which S3 error a failed Parse deserves (see the table above).
enum class CorsParseError { kNone, kMalformedXML, kInvalidRequest, kMaxMessageLengthExceeded };

struct CorsRule {
  std::string id;                            // optional, at most 255 characters
  std::vector<std::string> allowed_methods;  // GET, PUT, HEAD, POST, DELETE; at least one
  std::vector<std::string> allowed_origins;  // at least one; at most one '*' in each
  std::vector<std::string> allowed_headers;  // at most one '*' in each; matched any case
  std::vector<std::string> expose_headers;
  std::optional<int64_t> max_age_seconds;
};

// Response headers, in the order they are to be sent (the same type as http::HeaderList).
using CorsHeaders = std::vector<std::pair<std::string, std::string>>;

class CorsConfiguration {
 public:
  // Parses a PutBucketCors body. On failure `*error` (when given) says which S3 error to
  // answer with; on success it is kNone.
  static Result<CorsConfiguration> Parse(std::string_view xml, CorsParseError* error = nullptr);

  // The document for GET ?cors: <CORSConfiguration xmlns="http://s3.amazonaws.com/doc/
  // 2006-03-01/"> with every rule's elements in a fixed order. Parse(Render()) gives the
  // same rules back.
  std::string Render() const;

  // The first rule whose AllowedOrigin matches `origin` (case-sensitive, '*' matches any
  // run of characters), whose AllowedMethod includes `method`, and whose AllowedHeader
  // patterns (any case) cover every one of `request_headers`. nullptr when none does.
  const CorsRule* Match(std::string_view origin, std::string_view method,
                        const std::vector<std::string>& request_headers) const;

  // The answer to an OPTIONS preflight, from its Origin, Access-Control-Request-Method and
  // Access-Control-Request-Headers (nullopt when the request lacks the header). The headers:
  //   Access-Control-Allow-Origin       "*" when the rule's matching origin is exactly "*",
  //                                     else the request's Origin
  //   Access-Control-Allow-Methods      the rule's methods, ", "-separated
  //   Access-Control-Allow-Headers      the requested headers, lower-cased (when any)
  //   Access-Control-Expose-Headers     the rule's ExposeHeaders (when any)
  //   Access-Control-Max-Age            the rule's MaxAgeSeconds (when set)
  //   Access-Control-Allow-Credentials  "true", unless the origin answer is "*"
  //   Vary                              Origin, Access-Control-Request-Headers,
  //                                     Access-Control-Request-Method
  // Errors: see the table at the top of this file.
  Result<CorsHeaders> Preflight(std::optional<std::string_view> origin,
                                std::optional<std::string_view> request_method,
                                std::optional<std::string_view> request_headers) const;

  // The headers to add to the response of an actual (non-OPTIONS) request that carries an
  // Origin: the same set as a preflight's, without Access-Control-Allow-Headers. The
  // method matched is Access-Control-Request-Method when the request has one (as Ceph's
  // s3-tests expect), else the request's own method. Empty when `origin` is empty or no
  // rule matches: the request itself goes on as usual.
  CorsHeaders ResponseHeaders(std::string_view origin, std::string_view method,
                              std::optional<std::string_view> request_method = std::nullopt) const;

  const std::vector<CorsRule>& rules() const { return rules_; }

 private:
  std::vector<CorsRule> rules_;
};

// The OPTIONS answer for a bucket without a CORS configuration: always an error, 400 for a
// malformed preflight (as with a configuration), else 403 kCorsNotEnabledMessage.
Status PreflightWithoutConfiguration(std::optional<std::string_view> origin,
                                     std::optional<std::string_view> request_method);

// Access-Control-Request-Headers: "X-Amz-Date, content-type" → {"x-amz-date",
// "content-type"}; empty items are dropped.
std::vector<std::string> SplitRequestHeaders(std::string_view field);

}  // namespace cairn::s3
