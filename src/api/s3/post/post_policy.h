// S3 POST Object's fields, credentials and policy document, as AWS documents them
// ("Browser-based uploads using POST", "Creating a POST policy"):
//
//   - the form's fields: names case-insensitive, repeated fields joined with ',', and
//     ${filename} replaced by the file's name in every field;
//   - the credentials: Signature Version 4 (x-amz-algorithm=AWS4-HMAC-SHA256,
//     x-amz-credential, x-amz-date, x-amz-signature = hex HMAC-SHA256 of the Base64 policy
//     with the V4 signing key) or Version 2 (AWSAccessKeyId, signature = Base64 HMAC-SHA1
//     of the Base64 policy with the secret); a form without a policy is anonymous;
//   - the policy: a Base64 JSON document {"expiration": ISO 8601, "conditions": [...]}
//     whose conditions every field must meet and name, and whose content-length-range
//     bounds the file's size.
//
// Pure: the S3 handler looks the access key up and streams the file.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/s3/post/form_data.h"
#include "api/s3/sigv4/sigv4.h"
#include "core/types.h"

namespace cairn::api::s3::post {

// The fields before the file, as S3 evaluates them: lower-case name -> value.
using FormValues = std::map<std::string, std::string>;
// Lower-cases names, joins the values of repeated names with ',' (in order) and replaces
// every "${filename}" with BaseFilename(filename).
FormValues CollectFormValues(const std::vector<FormField>& fields, std::string_view filename);

// The object key: the "key" field, required (400 InvalidArgument "Bucket POST must contain
// a field named 'key'", as S3 answers a form without one or with it after the file), at
// most 1024 bytes (KeyTooLongError) of UTF-8 without NUL (InvalidArgument).
std::optional<PostError> FindObjectKey(const FormValues& values, std::string* key);

enum class PostAuthKind { kAnonymous, kV2, kV4 };

struct PostCredentials {
  PostAuthKind kind = PostAuthKind::kAnonymous;
  std::string access_key;
  std::string signature;
  std::string policy;  // the policy field as sent (the string that was signed)
  // Signature Version 4 only.
  CredentialScope scope;
  std::string amz_date;
};

// The form's credentials. A form with a policy is signed and must carry all the fields of
// one signature version (400 InvalidArgument naming the missing field, as S3 answers);
// one without is anonymous, unless it carries signature fields (InvalidArgument: they
// need a policy). Also InvalidArgument: an x-amz-algorithm other than AWS4-HMAC-SHA256,
// a malformed x-amz-credential or x-amz-date, or a credential date other than the
// x-amz-date's day.
std::optional<PostError> ParsePostCredentials(const FormValues& values, PostCredentials* out);

// Whether `credentials.signature` signs the policy with `secret`, compared in constant
// time. `cache` (optional) holds derived V4 signing keys.
bool PostSignatureMatches(const PostCredentials& credentials, std::string_view secret,
                          SigningKeyCache* cache);

struct PolicyCondition {
  enum class Kind { kEq, kStartsWith, kContentLengthRange };
  Kind kind = Kind::kEq;
  std::string field;  // lower case, without '$'; empty for content-length-range
  std::string value;
  uint64_t min = 0;  // content-length-range
  uint64_t max = 0;
  std::string text;  // as error messages show it: ["eq", "$key", "a.txt"]
};

struct PostPolicy {
  TimestampMs expiration_ms = 0;
  std::vector<PolicyCondition> conditions;
  // Every content-length-range condition together; nullopt when there is none.
  std::optional<uint64_t> min_size;
  std::optional<uint64_t> max_size;
};

// Decodes and parses the policy field. 400 InvalidPolicyDocument ("Invalid Policy: ...")
// for anything but an object with a string "expiration" in ISO 8601 UTC
// (2007-12-01T12:00:00.000Z; fractional seconds optional) and a "conditions" list (both
// names case-sensitive) of {"field": "value"} objects with exactly one property,
// ["eq"|"starts-with", "$field", "value"] and ["content-length-range", min, max] with
// integers 0 <= min, max (operation names and fields are case-insensitive).
std::optional<PostError> ParsePostPolicy(std::string_view base64_policy, PostPolicy* policy);

// Form fields a policy need not name: the policy and signature themselves (x-amz-signature,
// signature, AWSAccessKeyId), x-ignore-* and, a Cairn decision, x-amz-checksum-*: a
// checksum only lets the server refuse bytes that do not match it, never accept more.
bool IsExemptFromPolicy(std::string_view lower_name);

// Checks what the policy says of the fields: 403 AccessDenied "Invalid according to
// Policy: ..." when it expired (at or before now_ms), when a condition fails ("Policy
// Condition failed: [...]"; values are compared case-sensitively, a missing field counts
// as empty) or when a field is named by no condition ("Extra input fields: ..."). The
// bucket condition is checked against `bucket`, the bucket the form was posted to.
// content-length-range is checked by CheckFileSize as the file streams.
std::optional<PostError> CheckPostPolicy(const PostPolicy& policy, const FormValues& values,
                                         std::string_view bucket, TimestampMs now_ms);

// content-length-range against the file's size so far: 400 EntityTooLarge over the
// maximum; once `complete`, 400 EntityTooSmall under the minimum.
std::optional<PostError> CheckFileSize(const PostPolicy& policy, uint64_t size, bool complete);

// success_action_status: 200, 201 or 204; any other value (or none) means 204.
int SuccessStatus(const FormValues& values);
// success_action_redirect (or the deprecated redirect): the URL with bucket, key and etag
// (quoted) appended as query parameters; nullopt without one, or when it is not an
// absolute http(s) URL that can be sent as a header (S3 then ignores it).
std::optional<std::string> SuccessRedirect(const FormValues& values, std::string_view bucket,
                                           std::string_view key, std::string_view etag);
// The 201 document: <PostResponse><Location/><Bucket/><Key/><ETag/></PostResponse>.
std::string RenderPostResponse(std::string_view location, std::string_view bucket,
                               std::string_view key, std::string_view etag);

}  // namespace cairn::api::s3::post
