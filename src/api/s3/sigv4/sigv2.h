// AWS Signature Version 2 for S3: the legacy HMAC-SHA1 scheme, as an Authorization header
// ("AWS AKID:signature") or as query parameters (AWSAccessKeyId, Expires, Signature).
//
// Pure and socket-free, like sigv4.h, whose SigningRequest, VerifiedRequest and error
// codes it shares: VerifyRequest (sigv4.h) hands V2 requests to VerifyRequestV2.
//
// StringToSign = Verb "\n" Content-MD5 "\n" Content-Type "\n" Date "\n"
//                CanonicalizedAmzHeaders CanonicalizedResource
//
// The Date line when x-amz-date is present: the AWS text says the Date line is then empty
// (s3cmd sends x-amz-date and no Date, which gives the same string), botocore's HmacV1Auth
// always sends Date and signs its value there, and the AWS documentation's own DELETE
// example puts the x-amz-date value on the Date line and leaves x-amz-date out of the
// x-amz-* lines. The verifier accepts any of the three; the request time is the
// x-amz-date value in each case.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/s3/sigv4/sigv4.h"

namespace cairn::api::s3 {

// The longest a V2 presigned URL may still be valid for: its Expires may be at most this
// far ahead of the server's clock (plus the allowed clock skew), the same 7 days SigV4
// allows for X-Amz-Expires. V2 URLs carry no signing time, so this bounds the time left.
inline constexpr int64_t kMaxPresignV2Seconds = 604800;

// Base64(HMAC-SHA1(key, data)): the V2 signature of a string to sign (and of a POST
// form's policy document).
std::string HmacSha1Base64(std::string_view key, std::string_view data);

// Whether a query parameter is one of the sub-resources S3 signs in the
// CanonicalizedResource (acl, uploadId, versionId, response-content-type, ...).
bool IsSignedSubresourceV2(std::string_view name);

// How the request carries its signature. For a presigned URL (kQuery) the x-amz-* query
// parameters count as x-amz-* headers and the content-md5 and content-type parameters as
// those headers (clients move signed headers into the URL), a parameter overriding a
// header of the same name, and x-amz-date never counts (query authentication ignores the
// request's dates).
enum class SigV2Form { kHeader, kQuery };

// "name:value\n" per x-amz-* header: names lower-cased and sorted, values trimmed (folded
// lines unfolded to one space) and repeated headers joined with ','. With omit_amz_date,
// x-amz-date is left out.
std::string CanonicalizedAmzHeadersV2(const SigningRequest& request, SigV2Form form,
                                      bool omit_amz_date = false);

// ["/" virtual_host_bucket] + the raw request path exactly as sent ("/" when empty) +
// "?" + the signed sub-resources sorted by name, each "name" or "name=value" with the
// value decoded, joined with '&'.
std::string CanonicalizedResourceV2(const SigningRequest& request);

// The whole string to sign with the given Date line (the Date header, x-amz-date, or
// Expires for query authentication).
std::string StringToSignV2(const SigningRequest& request, SigV2Form form,
                           std::string_view date_line, bool omit_amz_date = false);

struct ParsedAuthorizationV2 {
  std::string access_key;
  std::string signature;  // base64, as sent
};

// "AWS AKID:signature". kInvalidArgument unless both parts are there.
SigV4Result<ParsedAuthorizationV2> ParseAuthorizationV2(std::string_view header);

struct PresignedParametersV2 {
  std::string access_key;
  std::string signature;
  int64_t expires_seconds = 0;  // since the epoch
  std::string expires_text;     // as sent: the Date line of the string to sign
};

// AWSAccessKeyId, Signature and Expires (all three, each once); kAccessDenied when one is
// missing or Expires is not a number of seconds, kInvalidArgument when one is repeated.
SigV4Result<PresignedParametersV2> ParsePresignedQueryV2(
    const std::vector<std::pair<std::string, std::string>>& query);

// Verifies a kHeaderV2 or kPresignedV2 request (VerifyRequest calls this). Checks, in
// order: the syntax; the time (header: x-amz-date, else Date, must parse (AccessDenied)
// and be within max_skew of now (RequestTimeTooSkewed); query: Expires not past and at
// most kMaxPresignV2Seconds ahead (AccessDenied)); no aws-chunked body (InvalidRequest);
// the access key; then the signature in constant time (SignatureDoesNotMatch). The body
// is never signed: payload_mode is kUnsigned and there is no signing key.
SigV4Result<VerifiedRequest> VerifyRequestV2(const SigningRequest& request, AuthKind kind,
                                             const SecretLookup& lookup,
                                             const VerifyOptions& options);

// ---- Signing (clients: tests) ------------------------------------------------------------

// The Authorization header value for `request`, which must carry Date or x-amz-date (with
// x-amz-date the Date line is empty, as the AWS text says).
Result<std::string> SignRequestV2(const SigningRequest& request,
                                  const SigningCredentials& credentials);

// request.query plus AWSAccessKeyId, Expires and Signature for a URL valid until
// expires_seconds (since the epoch).
Result<std::vector<std::pair<std::string, std::string>>> PresignV2(
    const SigningRequest& request, const SigningCredentials& credentials, int64_t expires_seconds);

}  // namespace cairn::api::s3
