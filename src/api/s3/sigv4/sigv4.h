// AWS Signature Version 4 for S3: canonicalization, signing-key derivation, parsing of
// the Authorization header and presigned query parameters, a verifier, and a signer.
//
// Pure and socket-free. The HTTP layer turns a request into a SigningRequest; the
// verifier answers a VerifiedRequest or a SigV4Status naming the S3 error code to send.
// Error messages name the offending input but never contain a secret, a signing key, or
// a full signature.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/types.h"

namespace cairn::api::s3 {

// The S3 error codes authentication and aws-chunked decoding can answer with.
enum class SigV4Error {
  kNone = 0,
  kAccessDenied,                       // 403, e.g. an expired presigned URL
  kAuthorizationHeaderMalformed,       // 400
  kAuthorizationQueryParametersError,  // 400, malformed presigned parameters
  kBadDigest,                          // 400, a trailing checksum does not match
  kIncompleteBody,                     // 400, the body ended early
  kInternalError,                      // 500
  kInvalidAccessKeyId,                 // 403
  kInvalidArgument,                    // 400
  kInvalidRequest,                     // 400
  kInvalidURI,                         // 400
  kMalformedTrailerError,              // 400
  kMissingContentLength,               // 411, no x-amz-decoded-content-length
  kMissingSecurityHeader,              // 400
  kRequestTimeTooSkewed,               // 403
  kServiceUnavailable,                 // 503, the secret store is not reachable
  kSignatureDoesNotMatch,              // 403
  kXAmzContentSHA256Mismatch,          // 400
};

// "SignatureDoesNotMatch", ... (empty for kNone).
std::string_view SigV4ErrorCode(SigV4Error error);
int SigV4ErrorHttpStatus(SigV4Error error);
// The Cairn status class of each S3 code, for logs and metrics.
StatusCode SigV4ErrorStatusCode(SigV4Error error);

// OK, or an S3 error code plus a message for the S3 <Message> element.
class [[nodiscard]] SigV4Status {
 public:
  SigV4Status() = default;
  SigV4Status(SigV4Error error, std::string message)
      : error_(error), message_(std::move(message)) {}

  bool ok() const { return error_ == SigV4Error::kNone; }
  SigV4Error error() const { return error_; }
  const std::string& message() const { return message_; }
  std::string_view s3_code() const { return SigV4ErrorCode(error_); }
  int http_status() const { return SigV4ErrorHttpStatus(error_); }
  Status ToStatus() const;  // OK stays OK; else SigV4ErrorStatusCode + "Code: message"
  void IgnoreError() const {}

 private:
  SigV4Error error_ = SigV4Error::kNone;
  std::string message_;
};

template <typename T>
class [[nodiscard]] SigV4Result : public ValueOrError<T, SigV4Status> {
 public:
  SigV4Result(T value)  // NOLINT: implicit by design
      : ValueOrError<T, SigV4Status>(std::move(value)) {}
  SigV4Result(SigV4Status status)  // NOLINT: implicit by design
      : ValueOrError<T, SigV4Status>(std::move(status), std::nullopt) {
    if (this->error_.ok()) this->error_ = SigV4Status(SigV4Error::kInternalError, "no value");
  }

  const SigV4Status& status() const { return this->error_; }
  SigV4Error error() const { return this->error_.error(); }
};

inline constexpr std::string_view kSigV4Algorithm = "AWS4-HMAC-SHA256";
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
inline constexpr std::string_view kStreamingSignedPayload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
inline constexpr std::string_view kStreamingSignedPayloadTrailer =
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
inline constexpr std::string_view kStreamingUnsignedPayloadTrailer =
    "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
// hex(SHA256("")).
inline constexpr std::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
// Allowed difference between a header-signed request's time and the server's.
inline constexpr int64_t kMaxClockSkewMs = 15 * 60 * 1000;
inline constexpr int64_t kMaxPresignExpiresSeconds = 604800;  // 7 days

// ---- Canonicalization ----------------------------------------------------------------

// AWS URI encoding: every byte except A-Z a-z 0-9 - . _ ~ becomes %XX (upper-case hex);
// '/' is kept when encode_slash is false.
std::string UriEncode(std::string_view text, bool encode_slash);
// Decodes %XX escapes (either case); '+' is kept. InvalidArgument on a bad escape.
Result<std::string> PercentDecode(std::string_view text);
// Splits a raw query string ("a=1&b&c=x%20y") into decoded (name, value) pairs in order.
// '+' decodes to a space (form encoding; SDKs always send %2B for a literal plus).
Result<std::vector<std::pair<std::string, std::string>>> ParseRawQuery(std::string_view raw);
// The inverse for signers: "name=value&..." with UriEncode(..., true), in the given order.
std::string EncodeQuery(const std::vector<std::pair<std::string, std::string>>& pairs);

// S3's canonical URI for a raw (still percent-encoded) request path: each '/'-separated
// segment is decoded once and re-encoded with UriEncode; no dot-segment normalization and
// no double encoding. "" becomes "/".
Result<std::string> CanonicalUri(std::string_view raw_path);
// Pairs are decoded; names and values are UriEncoded, then sorted by name, then value.
// A pair named X-Amz-Signature is left out when exclude_signature (presigned requests).
std::string CanonicalQueryString(const std::vector<std::pair<std::string, std::string>>& query,
                                 bool exclude_signature);
// Trims a header value and collapses inner runs of spaces and tabs into one space.
std::string CanonicalHeaderValue(std::string_view value);

struct SigningRequest {
  std::string method;                                        // "GET"
  std::string raw_path;                                      // "/bucket/a%20b", no query
  std::vector<std::pair<std::string, std::string>> query;    // percent-decoded
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names
  TimestampMs now_ms = 0;                                    // the server's clock
  // SigV2 only: the bucket a virtual-hosted request addresses through its Host (V2 signs
  // it as part of the resource); empty for path-style requests.
  std::string virtual_host_bucket;
};

// The values of every header named `name` (ASCII case-insensitive), in arrival order.
std::vector<std::string_view> HeaderValues(const SigningRequest& request, std::string_view name);
// The one header named `name`, trimmed: nullopt when absent, kInvalidArgument when repeated.
SigV4Result<std::optional<std::string>> SingleHeader(const SigningRequest& request,
                                                     std::string_view name);

// What a failed lookup of an access key's secret answers: InvalidAccessKeyId for an unknown
// key, ServiceUnavailable when the credential store is down, InternalError otherwise.
SigV4Status CredentialLookupFailure(const Status& status);

// "name:value\n" for each signed header (values of repeated headers joined with ','),
// or SignatureDoesNotMatch naming a signed header the request does not carry.
SigV4Result<std::string> CanonicalHeaders(const SigningRequest& request,
                                          const std::vector<std::string>& signed_headers);
// "a;b;c".
std::string JoinSignedHeaders(const std::vector<std::string>& signed_headers);

struct CredentialScope {
  std::string date;     // "20130524"
  std::string region;   // "us-east-1"
  std::string service;  // "s3"

  // "20130524/us-east-1/s3/aws4_request"
  std::string ToString() const;
  bool operator==(const CredentialScope&) const = default;
};

// method \n canonical URI \n canonical query \n canonical headers \n signed headers \n
// payload hash.
SigV4Result<std::string> CanonicalRequest(const SigningRequest& request,
                                          const std::vector<std::string>& signed_headers,
                                          std::string_view payload_hash, bool presigned);
// "AWS4-HMAC-SHA256\n" amz_date "\n" scope "\n" hex(sha256(canonical_request)).
std::string StringToSign(std::string_view amz_date, const CredentialScope& scope,
                         std::string_view canonical_request);
// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request");
// 32 raw bytes. Treat as a secret.
std::string DeriveSigningKey(std::string_view secret, const CredentialScope& scope);
// hex(HMAC(signing_key, string_to_sign)).
std::string SignString(std::string_view signing_key, std::string_view string_to_sign);

// Derived signing keys per (SHA-256 of the secret, date, region, service). A key is valid
// for a whole day, so a busy server derives it once instead of four HMACs per request.
// Thread-safe; bounded (it simply starts over when full).
class SigningKeyCache {
 public:
  explicit SigningKeyCache(size_t capacity = 1024);
  ~SigningKeyCache();
  SigningKeyCache(const SigningKeyCache&) = delete;
  SigningKeyCache& operator=(const SigningKeyCache&) = delete;

  std::string Get(std::string_view secret, const CredentialScope& scope);
  size_t size() const;
  uint64_t hits() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// ---- Time ------------------------------------------------------------------------------

// "20130524T000000Z" <-> milliseconds since the epoch (whole seconds).
std::string FormatAmzDate(TimestampMs ms);
Result<TimestampMs> ParseAmzDate(std::string_view text);
// RFC 7231 IMF-fixdate, "Fri, 24 May 2013 00:00:00 GMT" (the Date header); the zone may
// also be written "+0000" or "-0000".
Result<TimestampMs> ParseHttpDate(std::string_view text);

// ---- Parsing ---------------------------------------------------------------------------

struct Credential {
  std::string access_key;
  CredentialScope scope;
};

// "AK/20130524/us-east-1/s3/aws4_request". The date must be a real YYYYMMDD date; region
// and service [a-z0-9-]+ (service may also hold '.' and '_'); terminator "aws4_request".
// Errors are kAuthorizationHeaderMalformed unless `error` says otherwise.
SigV4Result<Credential> ParseCredential(
    std::string_view text, SigV4Error error = SigV4Error::kAuthorizationHeaderMalformed);
// "host;range;x-amz-date": lower case, strictly ascending, no duplicates, no empties.
SigV4Result<std::vector<std::string>> ParseSignedHeaders(
    std::string_view text, SigV4Error error = SigV4Error::kAuthorizationHeaderMalformed);

struct ParsedAuthorization {
  Credential credential;
  std::vector<std::string> signed_headers;
  std::string signature;  // 64 lower-case hex
};

// "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." (the spaces after
// the commas are optional). Strict: exactly these three fields, each once, in any order.
SigV4Result<ParsedAuthorization> ParseAuthorization(std::string_view header);

struct PresignedParameters {
  Credential credential;
  std::string amz_date;  // X-Amz-Date
  TimestampMs date_ms = 0;
  int64_t expires_seconds = 0;  // 1..604800
  std::vector<std::string> signed_headers;
  std::string signature;
  std::optional<std::string> security_token;  // X-Amz-Security-Token, passed through
};

// The X-Amz-* parameters of a presigned URL; kAuthorizationQueryParametersError (or
// kInvalidRequest for another algorithm) when one is missing, repeated or malformed.
SigV4Result<PresignedParameters> ParsePresignedQuery(
    const std::vector<std::pair<std::string, std::string>>& query);

// ---- Verification ----------------------------------------------------------------------

enum class AuthKind {
  kAnonymous,    // neither an Authorization header nor X-Amz-Algorithm
  kHeader,       // Authorization: AWS4-HMAC-SHA256 ...
  kPresigned,    // X-Amz-Algorithm=AWS4-HMAC-SHA256&...
  kHeaderV2,     // Authorization: AWS AKID:signature (sigv2.h)
  kPresignedV2,  // AWSAccessKeyId=...&Expires=...&Signature=... (sigv2.h)
};
// Query-string authentication (V4 or V2): S3's "REST-QUERY-STRING" auth type.
inline bool IsPresigned(AuthKind kind) {
  return kind == AuthKind::kPresigned || kind == AuthKind::kPresignedV2;
}
inline bool IsSigV2(AuthKind kind) {
  return kind == AuthKind::kHeaderV2 || kind == AuthKind::kPresignedV2;
}
// kInvalidArgument when an Authorization header comes with presigned parameters (V4 or
// V2). An Authorization header that is not "AWS ..." is kHeader (its parser names what is
// wrong with it).
SigV4Result<AuthKind> DetectAuthKind(const SigningRequest& request);

// What x-amz-content-sha256 says about the body.
enum class PayloadMode {
  kSha256,                    // a literal hex SHA-256 the S3 layer must check
  kUnsigned,                  // UNSIGNED-PAYLOAD (also every presigned URL)
  kStreamingSigned,           // STREAMING-AWS4-HMAC-SHA256-PAYLOAD
  kStreamingUnsignedTrailer,  // STREAMING-UNSIGNED-PAYLOAD-TRAILER
  kStreamingSignedTrailer,    // STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER
};
std::string_view PayloadModeName(PayloadMode mode);  // the header value; "sha256" for kSha256
bool IsStreaming(PayloadMode mode);
// Classifies an x-amz-content-sha256 value; kInvalidArgument for anything else (including
// the SigV4a streaming modes, which are not supported).
SigV4Result<PayloadMode> ParsePayloadMode(std::string_view value);

struct VerifiedRequest {
  AuthKind kind = AuthKind::kHeader;
  std::string access_key;
  CredentialScope scope;
  std::string amz_date;  // "20130524T000000Z", as signed
  TimestampMs request_time_ms = 0;
  std::optional<TimestampMs> expires_at_ms;  // presigned only
  std::vector<std::string> signed_headers;
  // 32 raw bytes. Opaque: only for aws-chunked chunk signatures; never log it.
  std::string signing_key;
  std::string seed_signature;  // hex; the first aws-chunked chunk chains from it
  PayloadMode payload_mode = PayloadMode::kUnsigned;
  std::string payload_sha256;                      // lower-case hex when kSha256
  std::vector<std::string> trailers;               // x-amz-trailer names, lower case
  std::optional<uint64_t> decoded_content_length;  // x-amz-decoded-content-length
  std::optional<std::string> security_token;       // x-amz-security-token, unchecked
};

// Maps an access key id to its secret; NotFound for an unknown key (InvalidAccessKeyId),
// Unavailable when the store is down (ServiceUnavailable), anything else InternalError.
using SecretLookup = std::function<Result<std::string>(std::string_view access_key)>;

struct VerifyOptions {
  std::string service = "s3";
  // Empty: accept any region in the credential scope (single-region servers usually do).
  std::string region;
  int64_t max_skew_ms = kMaxClockSkewMs;
  SigningKeyCache* key_cache = nullptr;  // optional
};

// Verifies a header-signed or presigned request; Signature Version 2 requests go to
// VerifyRequestV2 (sigv2.h). Checks, in order: the auth scheme and
// its syntax, the scope (service, region, date equal to the request date), the request
// time (within max_skew of now, RequestTimeTooSkewed; presigned: not expired, AccessDenied),
// that host is signed, the payload mode, the access key, and then the signature in
// constant time. The body is not read: for kSha256 call CheckPayloadSha256 once it has
// been hashed; for streaming modes use AwsChunkedDecoder.
SigV4Result<VerifiedRequest> VerifyRequest(const SigningRequest& request,
                                           const SecretLookup& lookup,
                                           const VerifyOptions& options = {});

// kXAmzContentSHA256Mismatch unless `request` is kSha256 with this digest (OK for other
// modes).
SigV4Status CheckPayloadSha256(const VerifiedRequest& request, const Digest& actual);

// ---- Signing (clients: tests and `cairn bench`) -----------------------------------------

struct SigningCredentials {
  std::string access_key;
  std::string secret_key;
  std::string region = "us-east-1";
  std::string service = "s3";
};

struct SignedRequest {
  std::string authorization;  // the Authorization header value
  std::string signature;      // hex; the seed signature for aws-chunked bodies
  std::string signing_key;    // raw; for signing aws-chunked chunks
  std::string amz_date;
  CredentialScope scope;
};

// Signs every header in request.headers, which must already hold host, x-amz-date (or
// date) and, for S3, x-amz-content-sha256 whose value is also the payload hash signed.
Result<SignedRequest> SignRequest(const SigningRequest& request,
                                  const SigningCredentials& credentials);

// The query parameters to append for a presigned URL valid from request.now_ms for
// expires_seconds, signing the headers in request.headers (at least host) and
// UNSIGNED-PAYLOAD. Returns request.query plus the X-Amz-* pairs, X-Amz-Signature last.
Result<std::vector<std::pair<std::string, std::string>>> Presign(
    const SigningRequest& request, const SigningCredentials& credentials, int64_t expires_seconds);

}  // namespace cairn::api::s3
