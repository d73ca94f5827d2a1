// Bucket policies: the JSON access-policy language of S3's PutBucketPolicy, parsed and
// validated once, then evaluated per request. Pure: no storage, no sockets; the S3
// handlers store the document, build a PolicyRequest and act on the Decision.
//
// Parse errors are kInvalidArgument, which the S3 layer answers with 400 MalformedPolicy;
// the message names the statement (by index and Sid) and the offending value.
//
// Principals in Cairn. An S3 "account" is a Cairn tenant id, and a tenant's credentials
// act as the tenant itself, so a request's user is usually empty or the tenant id again.
// The mapping (PolicyRequest::account / ::user) is lenient on purpose:
//   "*", {"AWS": "*"}                    everyone, anonymous requests included
//   "ACCOUNT", "arn:aws:iam::ACCOUNT:root", {"CanonicalUser": "ACCOUNT"}
//                                        any request whose account is ACCOUNT
//   "arn:aws:iam::ACCOUNT:user/NAME"     account ACCOUNT and user NAME; a request with an
//                                        empty user counts as user ACCOUNT
//   "arn:aws:iam:::user/NAME"            (no account) user NAME in an empty account or in
//                                        account NAME, or account NAME with an empty user
//   {"Service": ...}, {"Federated": ...} accepted, never match a request
// Only the wildcard matches an anonymous request (account == nullopt).
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace cairn::s3 {

// PutBucketPolicy refuses larger documents (S3's documented limit).
inline constexpr size_t kMaxBucketPolicyBytes = 20 * 1024;
// JSON nesting beyond this is refused before a tree is built; a valid policy needs 5.
inline constexpr size_t kMaxBucketPolicyDepth = 16;

enum class Decision {
  kNone,   // no statement applies: the caller falls back to ownership / ACLs
  kAllow,  // an Allow statement applies and no Deny does
  kDeny,   // an explicit Deny applies; it wins over every Allow
};
std::string_view DecisionName(Decision decision);  // "None", "Allow", "Deny"

// Returns the values of a condition key in the request context, or none when the key is
// absent. Condition keys are case-insensitive (ConditionContext below implements that).
using ConditionLookup = std::function<std::vector<std::string>(std::string_view key)>;

struct PolicyRequest {
  std::string action;                  // "s3:GetObject"
  std::string resource;                // "arn:aws:s3:::bucket" or "arn:aws:s3:::bucket/key"
  std::optional<std::string> account;  // the tenant id; nullopt = anonymous
  std::string user;                    // may be empty (see the mapping above)
  ConditionLookup conditions;          // may be empty: then no key is present
};

// A case-insensitive map of condition keys to values, for building
// PolicyRequest::conditions. The key name is case-insensitive up to its first '/', and the
// rest is kept as given: "s3:ExistingObjectTag/Project" and "S3:existingobjecttag/Project"
// are one key; ".../project" is another (tag keys are case-sensitive).
// Keys S3 defines and the handlers are expected to set where they apply: aws:SourceIp,
// aws:SecureTransport ("true"/"false"), aws:CurrentTime (ISO 8601), aws:EpochTime,
// aws:Referer, aws:UserAgent, aws:username, aws:userid, aws:PrincipalAccount, s3:prefix,
// s3:delimiter, s3:max-keys, s3:x-amz-acl, s3:x-amz-copy-source,
// s3:x-amz-metadata-directive, s3:x-amz-server-side-encryption, s3:x-amz-storage-class,
// s3:VersionId, s3:ExistingObjectTag/<key>, s3:RequestObjectTag/<key>,
// s3:RequestObjectTagKeys (one value per tag key), s3:authType, s3:signatureversion,
// s3:signatureAge, s3:x-amz-content-sha256.
class ConditionContext {
 public:
  ConditionContext& Set(std::string_view key, std::vector<std::string> values);
  ConditionContext& Set(std::string_view key, std::string value);
  std::vector<std::string> Get(std::string_view key) const;
  // A lookup over a copy of this context.
  ConditionLookup AsLookup() const;

  // "s3:existingobjecttag/Project" for "S3:ExistingObjectTag/Project".
  static std::string NormalizeKey(std::string_view key);

 private:
  std::map<std::string, std::vector<std::string>, std::less<>> values_;
};

enum class PolicyEffect { kAllow, kDeny };

struct PolicyPrincipal {
  enum class Kind {
    kAny,        // "*" or {"AWS": "*"}
    kAccount,    // "ACCOUNT", "arn:aws:iam::ACCOUNT:root", {"CanonicalUser": ...}
    kUser,       // "arn:aws:iam::ACCOUNT:user/NAME"; account may be empty
    kService,    // {"Service": ...}: never matches
    kFederated,  // {"Federated": ...}: never matches
  };
  Kind kind = Kind::kAny;
  std::string account;
  std::string name;  // kUser: the user name; kService/kFederated: the value as written
};

enum class ConditionOperator {
  kStringEquals,
  kStringNotEquals,
  kStringEqualsIgnoreCase,
  kStringNotEqualsIgnoreCase,
  kStringLike,
  kStringNotLike,
  kNumericEquals,
  kNumericNotEquals,
  kNumericLessThan,
  kNumericLessThanEquals,
  kNumericGreaterThan,
  kNumericGreaterThanEquals,
  kDateEquals,
  kDateNotEquals,
  kDateLessThan,
  kDateLessThanEquals,
  kDateGreaterThan,
  kDateGreaterThanEquals,
  kBool,
  kBinaryEquals,
  kIpAddress,
  kNotIpAddress,
  kArnEquals,
  kArnNotEquals,
  kArnLike,
  kArnNotLike,
  kNull,
};
std::string_view ConditionOperatorName(ConditionOperator op);  // "StringEquals", ...

enum class ConditionSet {
  kNone,          // a single-valued comparison (any request value may match)
  kForAnyValue,   // "ForAnyValue:": some request value matches; false when the key is absent
  kForAllValues,  // "ForAllValues:": every request value matches; true when absent
};

// One (operator, key) pair of a Condition block. Values of Numeric*, Date*, Bool, Null,
// IpAddress and NotIpAddress were checked by Parse and are kept as written.
struct PolicyCondition {
  ConditionOperator op = ConditionOperator::kStringEquals;
  ConditionSet set = ConditionSet::kNone;
  bool if_exists = false;  // "...IfExists": true when the key is absent
  std::string key;         // as written: "aws:SourceIp"
  std::vector<std::string> values;
};

struct PolicyStatement {
  std::string sid;
  PolicyEffect effect = PolicyEffect::kDeny;
  bool not_principal = false;  // the principals came from NotPrincipal (Deny only)
  std::vector<PolicyPrincipal> principals;
  bool not_action = false;
  std::vector<std::string> actions;  // "s3:GetObject", "s3:Get*", "*"
  bool not_resource = false;
  std::vector<std::string> resources;       // "arn:aws:s3:::bucket/*", "*"
  std::vector<PolicyCondition> conditions;  // all must hold
};

class BucketPolicy {
 public:
  // Validates `json` as a bucket policy for `bucket` (see policy.cc for the rules, which
  // follow PutBucketPolicy). Every error is kInvalidArgument → 400 MalformedPolicy.
  static Result<BucketPolicy> Parse(std::string_view json, std::string_view bucket);

  // Deny if any applicable statement denies; else Allow if one allows; else None.
  Decision Evaluate(const PolicyRequest& request) const;

  // S3's PolicyStatus.IsPublic: some Allow statement grants to everyone ("*") with no
  // condition that pins the request to fixed values (see policy.cc for the exact rule).
  bool IsPublic() const;

  const std::string& version() const { return version_; }
  const std::string& id() const { return id_; }
  const std::vector<PolicyStatement>& statements() const { return statements_; }

 private:
  std::string version_;
  std::string id_;
  std::vector<PolicyStatement> statements_;
};

// The S3 action names a policy may use, without the "s3:" prefix, in S3's spelling. Action
// matching is case-insensitive; a pattern ("s3:Get*", "s3:*Object?") must match at least
// one of these, and "*" / "s3:*" match every action.
std::span<const std::string_view> KnownS3Actions();
bool IsKnownS3Action(std::string_view action);  // "s3:GetObject", any case

// Policy wildcards: '*' matches any run of characters ('/' included), '?' exactly one
// character (one UTF-8 sequence). ASCII case folding when ignore_case.
bool PolicyWildcardMatch(std::string_view pattern, std::string_view text, bool ignore_case);

}  // namespace cairn::s3
