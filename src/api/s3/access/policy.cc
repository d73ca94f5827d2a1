// Bucket policy parsing (PutBucketPolicy's validation) and evaluation.
//
// What Parse refuses, each with kInvalidArgument (→ 400 MalformedPolicy):
//   - a document over 20 KiB, empty, not UTF-8, not JSON, nested deeper than 16, or with a
//     key twice in one object (which would make "Effect" ambiguous);
//   - a top level other than an object of Version (required: "2012-10-17" or
//     "2008-10-17"), Id (optional string) and Statement (an object or a non-empty list);
//   - in a statement: an unknown element; Sid not a string, or the same Sid twice; Effect
//     not "Allow"/"Deny"; neither or both of Principal/NotPrincipal, Action/NotAction,
//     Resource/NotResource; NotPrincipal with Allow (S3 answers 400 for it);
//   - a principal other than "*" or an object of AWS/CanonicalUser/Service/Federated;
//     an AWS principal other than "*", an account id, "arn:aws:iam::ACCOUNT:root" or
//     "arn:aws:iam::ACCOUNT:user/NAME"; a partial wildcard in a principal;
//   - an action other than "*" or "s3:NAME" where NAME is a known S3 action or a wildcard
//     pattern matching at least one (any case);
//   - a resource other than "*" or "arn:aws:s3:::BUCKET[/KEY]" whose BUCKET part (a
//     pattern) covers this bucket ("Policy has invalid resource");
//   - a Condition that is not an object of operator → {key → value(s)}; an unknown
//     operator (after ForAnyValue:/ForAllValues: and IfExists); a set prefix or IfExists
//     on Null; a key without a "service:" prefix; no values; a value that is an object,
//     a list inside a list or null; a value the operator cannot read (a number for
//     Numeric*, a date for Date*, true/false for Bool and Null, a CIDR for IpAddress).
// Values may be JSON strings, numbers or booleans (AWS accepts `"aws:SecureTransport":
// false`); numbers and booleans are compared as their JSON text.
#include "api/s3/access/policy.h"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "api/s3/access/condition_values.h"
#include "core/text.h"
#include "core/types.h"

namespace cairn::s3 {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------------------
// Known actions

// Every action S3 defines for buckets and objects (the service authorization reference),
// in S3's spelling. Account-level actions (access points, Storage Lens, jobs) have no
// place in a bucket policy and are left out.
constexpr std::string_view kS3Actions[] = {
    "AbortMultipartUpload",
    "BypassGovernanceRetention",
    "CreateBucket",
    "CreateBucketMetadataTableConfiguration",
    "DeleteBucket",
    "DeleteBucketMetadataTableConfiguration",
    "DeleteBucketPolicy",
    "DeleteBucketWebsite",
    "DeleteObject",
    "DeleteObjectTagging",
    "DeleteObjectVersion",
    "DeleteObjectVersionTagging",
    "GetAccelerateConfiguration",
    "GetAnalyticsConfiguration",
    "GetBucketAcl",
    "GetBucketCORS",
    "GetBucketLocation",
    "GetBucketLogging",
    "GetBucketMetadataTableConfiguration",
    "GetBucketNotification",
    "GetBucketObjectLockConfiguration",
    "GetBucketOwnershipControls",
    "GetBucketPolicy",
    "GetBucketPolicyStatus",
    "GetBucketPublicAccessBlock",
    "GetBucketRequestPayment",
    "GetBucketTagging",
    "GetBucketVersioning",
    "GetBucketWebsite",
    "GetEncryptionConfiguration",
    "GetIntelligentTieringConfiguration",
    "GetInventoryConfiguration",
    "GetLifecycleConfiguration",
    "GetMetricsConfiguration",
    "GetObject",
    "GetObjectAcl",
    "GetObjectAttributes",
    "GetObjectLegalHold",
    "GetObjectRetention",
    "GetObjectTagging",
    "GetObjectTorrent",
    "GetObjectVersion",
    "GetObjectVersionAcl",
    "GetObjectVersionAttributes",
    "GetObjectVersionForReplication",
    "GetObjectVersionTagging",
    "GetObjectVersionTorrent",
    "GetReplicationConfiguration",
    "InitiateReplication",
    "ListAllMyBuckets",
    "ListBucket",
    "ListBucketMultipartUploads",
    "ListBucketVersions",
    "ListMultipartUploadParts",
    "ObjectOwnerOverrideToBucketOwner",
    "PutAccelerateConfiguration",
    "PutAnalyticsConfiguration",
    "PutBucketAcl",
    "PutBucketCORS",
    "PutBucketLogging",
    "PutBucketNotification",
    "PutBucketObjectLockConfiguration",
    "PutBucketOwnershipControls",
    "PutBucketPolicy",
    "PutBucketPublicAccessBlock",
    "PutBucketRequestPayment",
    "PutBucketTagging",
    "PutBucketVersioning",
    "PutBucketWebsite",
    "PutEncryptionConfiguration",
    "PutIntelligentTieringConfiguration",
    "PutInventoryConfiguration",
    "PutLifecycleConfiguration",
    "PutMetricsConfiguration",
    "PutObject",
    "PutObjectAcl",
    "PutObjectLegalHold",
    "PutObjectRetention",
    "PutObjectTagging",
    "PutObjectVersionAcl",
    "PutObjectVersionTagging",
    "PutReplicationConfiguration",
    "ReplicateDelete",
    "ReplicateObject",
    "ReplicateTags",
    "RestoreObject",
};

// ---------------------------------------------------------------------------------------
// Text helpers

bool StartsWithIgnoreCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         EqualsIgnoreCaseAscii(text.substr(0, prefix.size()), prefix);
}

bool HasWildcard(std::string_view text) {
  return text.find_first_of("*?") != std::string_view::npos;
}

// Length of the UTF-8 sequence starting at text[at], at least 1, never past the end.
size_t SequenceLength(std::string_view text, size_t at) {
  unsigned char lead = static_cast<unsigned char>(text[at]);
  size_t length = lead < 0xc0 ? 1 : lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4;
  return std::min(length, text.size() - at);
}

// Quotes a value for an error message, shortened and with control bytes escaped.
std::string Quote(std::string_view text) {
  constexpr size_t kMax = 80;
  std::string out = "\"";
  for (size_t i = 0; i < text.size() && i < kMax; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > kMax) out += "...";
  return out + "\"";
}

std::string TypeName(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "a list";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    default:
      return "a number";
  }
}

Status Invalid(std::string message) {
  return InvalidArgumentError("invalid bucket policy: " + std::move(message));
}

// ---------------------------------------------------------------------------------------
// Structure check: a SAX pass before the tree is built. nlohmann's parser is iterative,
// but the tree it builds is destroyed recursively, so depth is bounded here; duplicate
// keys (which nlohmann would silently resolve to the last) are refused.

class StructureCheck {
 public:
  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(json::number_integer_t) { return true; }
  bool number_unsigned(json::number_unsigned_t) { return true; }
  bool number_float(json::number_float_t, const json::string_t&) { return true; }
  bool string(json::string_t&) { return true; }
  bool binary(json::binary_t&) { return true; }
  bool start_object(std::size_t) { return Push(true); }
  bool key(json::string_t& name) {
    if (!keys_.back().insert(name).second) {
      error_ = "the key " + Quote(name) + " appears twice in one object";
      return false;
    }
    return true;
  }
  bool end_object() {
    keys_.pop_back();
    --depth_;
    return true;
  }
  bool start_array(std::size_t) { return Push(false); }
  bool end_array() {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception&) {
    error_ = "not valid JSON (at byte " + std::to_string(position) + ")";
    return false;
  }

  const std::string& error() const { return error_; }

 private:
  bool Push(bool object) {
    if (++depth_ > kMaxBucketPolicyDepth) {
      error_ = "JSON nested deeper than " + std::to_string(kMaxBucketPolicyDepth) + " levels";
      return false;
    }
    if (object) keys_.emplace_back();
    return true;
  }

  size_t depth_ = 0;
  std::vector<std::set<std::string>> keys_;
  std::string error_;
};

// ---------------------------------------------------------------------------------------
// Condition operators

enum class ValueKind { kString, kNumeric, kDate, kBool, kBinary, kIp, kArn, kNull };

struct OperatorInfo {
  std::string_view name;
  ConditionOperator op;
  ValueKind kind;
  bool negated;  // true for the Not forms: no policy value may match
};

constexpr OperatorInfo kOperators[] = {
    {"StringEquals", ConditionOperator::kStringEquals, ValueKind::kString, false},
    {"StringNotEquals", ConditionOperator::kStringNotEquals, ValueKind::kString, true},
    {"StringEqualsIgnoreCase", ConditionOperator::kStringEqualsIgnoreCase, ValueKind::kString,
     false},
    {"StringNotEqualsIgnoreCase", ConditionOperator::kStringNotEqualsIgnoreCase, ValueKind::kString,
     true},
    {"StringLike", ConditionOperator::kStringLike, ValueKind::kString, false},
    {"StringNotLike", ConditionOperator::kStringNotLike, ValueKind::kString, true},
    {"NumericEquals", ConditionOperator::kNumericEquals, ValueKind::kNumeric, false},
    {"NumericNotEquals", ConditionOperator::kNumericNotEquals, ValueKind::kNumeric, true},
    {"NumericLessThan", ConditionOperator::kNumericLessThan, ValueKind::kNumeric, false},
    {"NumericLessThanEquals", ConditionOperator::kNumericLessThanEquals, ValueKind::kNumeric,
     false},
    {"NumericGreaterThan", ConditionOperator::kNumericGreaterThan, ValueKind::kNumeric, false},
    {"NumericGreaterThanEquals", ConditionOperator::kNumericGreaterThanEquals, ValueKind::kNumeric,
     false},
    {"DateEquals", ConditionOperator::kDateEquals, ValueKind::kDate, false},
    {"DateNotEquals", ConditionOperator::kDateNotEquals, ValueKind::kDate, true},
    {"DateLessThan", ConditionOperator::kDateLessThan, ValueKind::kDate, false},
    {"DateLessThanEquals", ConditionOperator::kDateLessThanEquals, ValueKind::kDate, false},
    {"DateGreaterThan", ConditionOperator::kDateGreaterThan, ValueKind::kDate, false},
    {"DateGreaterThanEquals", ConditionOperator::kDateGreaterThanEquals, ValueKind::kDate, false},
    {"Bool", ConditionOperator::kBool, ValueKind::kBool, false},
    {"BinaryEquals", ConditionOperator::kBinaryEquals, ValueKind::kBinary, false},
    {"IpAddress", ConditionOperator::kIpAddress, ValueKind::kIp, false},
    {"NotIpAddress", ConditionOperator::kNotIpAddress, ValueKind::kIp, true},
    {"ArnEquals", ConditionOperator::kArnEquals, ValueKind::kArn, false},
    {"ArnNotEquals", ConditionOperator::kArnNotEquals, ValueKind::kArn, true},
    {"ArnLike", ConditionOperator::kArnLike, ValueKind::kArn, false},
    {"ArnNotLike", ConditionOperator::kArnNotLike, ValueKind::kArn, true},
    {"Null", ConditionOperator::kNull, ValueKind::kNull, false},
};

const OperatorInfo& Info(ConditionOperator op) {
  for (const OperatorInfo& info : kOperators) {
    if (info.op == op) return info;
  }
  return kOperators[0];  // unreachable: every enumerator is in the table
}

struct ParsedOperator {
  ConditionOperator op;
  ConditionSet set;
  bool if_exists;
};

// "ForAnyValue:StringLikeIfExists" → (StringLike, ForAnyValue, IfExists). Operator names
// are matched without regard to case.
std::optional<ParsedOperator> ParseOperator(std::string_view text) {
  ParsedOperator parsed{ConditionOperator::kStringEquals, ConditionSet::kNone, false};
  if (StartsWithIgnoreCase(text, "ForAnyValue:")) {
    parsed.set = ConditionSet::kForAnyValue;
    text.remove_prefix(12);
  } else if (StartsWithIgnoreCase(text, "ForAllValues:")) {
    parsed.set = ConditionSet::kForAllValues;
    text.remove_prefix(13);
  }
  constexpr std::string_view kIfExists = "IfExists";
  if (text.size() > kIfExists.size() &&
      EqualsIgnoreCaseAscii(text.substr(text.size() - kIfExists.size()), kIfExists)) {
    parsed.if_exists = true;
    text.remove_suffix(kIfExists.size());
  }
  for (const OperatorInfo& info : kOperators) {
    if (EqualsIgnoreCaseAscii(info.name, text)) {
      parsed.op = info.op;
      return parsed;
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------
// Value comparison

enum class Compared { kMatch, kNoMatch, kInvalid };

Compared FromBool(bool match) { return match ? Compared::kMatch : Compared::kNoMatch; }

template <typename T>
Compared Order(ConditionOperator op, T request, T policy) {
  switch (op) {
    case ConditionOperator::kNumericEquals:
    case ConditionOperator::kNumericNotEquals:
    case ConditionOperator::kDateEquals:
    case ConditionOperator::kDateNotEquals:
      return FromBool(request == policy);
    case ConditionOperator::kNumericLessThan:
    case ConditionOperator::kDateLessThan:
      return FromBool(request < policy);
    case ConditionOperator::kNumericLessThanEquals:
    case ConditionOperator::kDateLessThanEquals:
      return FromBool(request <= policy);
    case ConditionOperator::kNumericGreaterThan:
    case ConditionOperator::kDateGreaterThan:
      return FromBool(request > policy);
    default:
      return FromBool(request >= policy);
  }
}

// ARNs compare component by component (arn:partition:service:region:account:resource);
// wildcards stay inside their component, except in the resource part.
Compared CompareArn(std::string_view request, std::string_view pattern) {
  auto split = [](std::string_view arn) {
    std::vector<std::string_view> parts;
    while (parts.size() < 5) {
      size_t colon = arn.find(':');
      if (colon == std::string_view::npos) break;
      parts.push_back(arn.substr(0, colon));
      arn.remove_prefix(colon + 1);
    }
    parts.push_back(arn);
    return parts;
  };
  auto request_parts = split(request);
  auto pattern_parts = split(pattern);
  if (request_parts.size() != 6 || pattern_parts.size() != 6) {
    return FromBool(pattern == request);
  }
  for (size_t i = 0; i < 6; ++i) {
    if (!PolicyWildcardMatch(pattern_parts[i], request_parts[i], false)) {
      return Compared::kNoMatch;
    }
  }
  return Compared::kMatch;
}

// The positive comparison of one request value with one policy value; the Not forms
// negate it over all policy values (see ValueSatisfies).
Compared Compare(ConditionOperator op, ValueKind kind, std::string_view request,
                 std::string_view policy) {
  switch (kind) {
    case ValueKind::kString:
      if (op == ConditionOperator::kStringLike || op == ConditionOperator::kStringNotLike) {
        return FromBool(PolicyWildcardMatch(policy, request, false));
      }
      if (op == ConditionOperator::kStringEqualsIgnoreCase ||
          op == ConditionOperator::kStringNotEqualsIgnoreCase) {
        return FromBool(EqualsIgnoreCaseAscii(request, policy));
      }
      return FromBool(request == policy);
    case ValueKind::kBinary:
      return FromBool(request == policy);
    case ValueKind::kBool:
      return FromBool(EqualsIgnoreCaseAscii(request, policy));
    case ValueKind::kNumeric: {
      auto a = ParsePolicyNumber(request);
      auto b = ParsePolicyNumber(policy);
      if (!a || !b) return Compared::kInvalid;
      return Order(op, *a, *b);
    }
    case ValueKind::kDate: {
      auto a = ParsePolicyDate(request);
      auto b = ParsePolicyDate(policy);
      if (!a || !b) return Compared::kInvalid;
      return Order(op, *a, *b);
    }
    case ValueKind::kIp: {
      auto address = ParseIpAddress(request);
      auto network = ParseIpNetwork(policy);
      if (!address || !network) return Compared::kInvalid;
      return FromBool(NetworkContains(*network, *address));
    }
    case ValueKind::kArn:
      return CompareArn(request, policy);
    case ValueKind::kNull:
      break;
  }
  return Compared::kInvalid;
}

// Whether one request value satisfies the operator: some policy value matches (positive
// forms) or none does (Not forms). A request value the operator cannot read (a word for
// NumericLessThan) satisfies neither form.
bool ValueSatisfies(const PolicyCondition& condition, const OperatorInfo& info,
                    std::string_view request) {
  bool any_match = false;
  for (const std::string& policy : condition.values) {
    Compared compared = Compare(condition.op, info.kind, request, policy);
    if (compared == Compared::kInvalid) return false;
    if (compared == Compared::kMatch) {
      any_match = true;
      break;
    }
  }
  return info.negated ? !any_match : any_match;
}

// AWS semantics:
//   - Null: "true" holds when the key is absent, "false" when it is present; several
//     values are ORed.
//   - key absent: IfExists → true; ForAllValues → true; ForAnyValue → false; otherwise
//     false for positive operators and true for the Not forms.
//   - key present: ForAllValues → every request value satisfies; ForAnyValue → some
//     does; no set prefix → some does (positive) / every one does (Not forms, so that
//     StringNotEquals over a multi-valued key means "none of them equals").
bool ConditionHolds(const PolicyCondition& condition, const std::vector<std::string>& values) {
  const OperatorInfo& info = Info(condition.op);
  if (info.kind == ValueKind::kNull) {
    bool absent = values.empty();
    for (const std::string& policy : condition.values) {
      if (EqualsIgnoreCaseAscii(policy, "true") == absent) return true;
    }
    return false;
  }
  if (values.empty()) {
    if (condition.if_exists) return true;
    switch (condition.set) {
      case ConditionSet::kForAllValues:
        return true;
      case ConditionSet::kForAnyValue:
        return false;
      case ConditionSet::kNone:
        return info.negated;
    }
  }
  bool every = condition.set == ConditionSet::kForAllValues ||
               (condition.set == ConditionSet::kNone && info.negated);
  for (const std::string& value : values) {
    bool satisfied = ValueSatisfies(condition, info, value);
    if (every && !satisfied) return false;
    if (!every && satisfied) return true;
  }
  return every;
}

// ---------------------------------------------------------------------------------------
// Parsing

class PolicyParser {
 public:
  explicit PolicyParser(std::string_view bucket) : bucket_(bucket) {}

  Status ParseStatement(const json& value, size_t index, PolicyStatement* statement);

 private:
  Status Error(const std::string& message) const { return Invalid(where_ + message); }

  Result<std::vector<std::string>> Strings(const json& value, std::string_view element) const;
  Status ParsePrincipals(const json& value, std::string_view element,
                         std::vector<PolicyPrincipal>* principals) const;
  Result<PolicyPrincipal> ParseAwsPrincipal(const std::string& text) const;
  Status CheckAction(const std::string& action) const;
  Status CheckResource(const std::string& resource) const;
  Status ParseConditions(const json& value, std::vector<PolicyCondition>* conditions) const;
  Status CheckConditionValue(const PolicyCondition& condition, const std::string& value) const;

  std::string_view bucket_;
  std::string where_;  // "statement 2 (Sid "x"): "
};

Result<std::vector<std::string>> PolicyParser::Strings(const json& value,
                                                       std::string_view element) const {
  std::vector<std::string> out;
  if (value.is_string()) {
    out.push_back(value.get<std::string>());
    return out;
  }
  if (!value.is_array()) {
    return Error(std::string(element) + " must be a string or a list of strings, not " +
                 TypeName(value));
  }
  if (value.empty()) return Error(std::string(element) + " must not be an empty list");
  for (const json& item : value) {
    if (!item.is_string()) {
      return Error(std::string(element) + " must be a list of strings; it holds " + TypeName(item));
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

bool IsPlainName(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '*' || c == '?' || c == ':' || c == '/') return false;
  }
  return true;
}

Result<PolicyPrincipal> PolicyParser::ParseAwsPrincipal(const std::string& text) const {
  PolicyPrincipal principal;
  if (text == "*") return principal;
  constexpr std::string_view kIamPrefix = "arn:aws:iam::";
  std::string_view rest = text;
  if (rest.substr(0, kIamPrefix.size()) == kIamPrefix) {
    rest.remove_prefix(kIamPrefix.size());
    size_t colon = rest.find(':');
    if (colon != std::string_view::npos) {
      std::string_view account = rest.substr(0, colon);
      std::string_view resource = rest.substr(colon + 1);
      bool account_ok = account.empty() || IsPlainName(account);
      if (account_ok && resource == "root" && !account.empty()) {
        principal.kind = PolicyPrincipal::Kind::kAccount;
        principal.account = account;
        return principal;
      }
      if (account_ok && resource.substr(0, 5) == "user/") {
        // Paths ("user/division/NAME") name the user by their last segment.
        std::string_view name = resource.substr(resource.rfind('/') + 1);
        bool path_ok = resource.find_first_of("*? \t") == std::string_view::npos;
        if (IsPlainName(name) && path_ok) {
          principal.kind = PolicyPrincipal::Kind::kUser;
          principal.account = account;
          principal.name = name;
          return principal;
        }
      }
    }
    return Error("Invalid principal in policy: " + Quote(text) +
                 " (an AWS principal is \"*\", an account id, arn:aws:iam::ACCOUNT:root or "
                 "arn:aws:iam::ACCOUNT:user/NAME)");
  }
  if (!IsPlainName(text)) {
    return Error("Invalid principal in policy: " + Quote(text) +
                 " (an AWS principal is \"*\", an account id, arn:aws:iam::ACCOUNT:root or "
                 "arn:aws:iam::ACCOUNT:user/NAME)");
  }
  principal.kind = PolicyPrincipal::Kind::kAccount;
  principal.account = text;
  return principal;
}

Status PolicyParser::ParsePrincipals(const json& value, std::string_view element,
                                     std::vector<PolicyPrincipal>* principals) const {
  if (value.is_string()) {
    if (value.get<std::string>() != "*") {
      return Error(std::string(element) + " " + Quote(value.get<std::string>()) +
                   " is not valid: use \"*\" or an object such as {\"AWS\": \"ACCOUNT\"}");
    }
    principals->push_back(PolicyPrincipal{});
    return OkStatus();
  }
  if (!value.is_object()) {
    return Error(std::string(element) + " must be \"*\" or an object, not " + TypeName(value));
  }
  if (value.empty()) return Error(std::string(element) + " must not be an empty object");
  for (const auto& [type, entries] : value.items()) {
    std::string label = std::string(element) + "." + type;
    ASSIGN_OR_RETURN(std::vector<std::string> names, Strings(entries, label));
    for (const std::string& name : names) {
      if (type == "AWS") {
        ASSIGN_OR_RETURN(PolicyPrincipal principal, ParseAwsPrincipal(name));
        principals->push_back(std::move(principal));
        continue;
      }
      PolicyPrincipal principal;
      if (type == "CanonicalUser") {
        if (!IsPlainName(name)) {
          return Error("Invalid principal in policy: CanonicalUser " + Quote(name));
        }
        principal.kind = PolicyPrincipal::Kind::kAccount;
        principal.account = name;
      } else if (type == "Service" || type == "Federated") {
        if (name.empty() || HasWildcard(name)) {
          return Error("Invalid principal in policy: " + type + " " + Quote(name));
        }
        principal.kind =
            type == "Service" ? PolicyPrincipal::Kind::kService : PolicyPrincipal::Kind::kFederated;
        principal.name = name;
      } else {
        return Error("Invalid principal in policy: unknown principal type " + Quote(type) +
                     " (expected AWS, CanonicalUser, Service or Federated)");
      }
      principals->push_back(std::move(principal));
    }
  }
  return OkStatus();
}

Status PolicyParser::CheckAction(const std::string& action) const {
  if (action == "*") return OkStatus();
  if (!StartsWithIgnoreCase(action, "s3:")) {
    return Error("Policy has invalid action: " + Quote(action) +
                 " is not an S3 action (expected \"s3:NAME\" or \"*\")");
  }
  std::string_view name = std::string_view(action).substr(3);
  if (name.empty()) return Error("Policy has invalid action: " + Quote(action));
  if (HasWildcard(name)) {
    for (std::string_view known : kS3Actions) {
      if (PolicyWildcardMatch(name, known, true)) return OkStatus();
    }
    return Error("Policy has invalid action: the pattern " + Quote(action) +
                 " matches no S3 action");
  }
  if (!IsKnownS3Action(action)) {
    return Error("Policy has invalid action: " + Quote(action) + " is not a known S3 action");
  }
  return OkStatus();
}

Status PolicyParser::CheckResource(const std::string& resource) const {
  if (resource == "*") return OkStatus();
  constexpr std::string_view kS3Prefix = "arn:aws:s3:::";
  std::string_view rest = resource;
  if (rest.substr(0, kS3Prefix.size()) != kS3Prefix) {
    return Error("Policy has invalid resource: " + Quote(resource) + " (expected arn:aws:s3:::" +
                 std::string(bucket_) + " or arn:aws:s3:::" + std::string(bucket_) + "/KEY)");
  }
  rest.remove_prefix(kS3Prefix.size());
  std::string_view bucket_part = rest.substr(0, rest.find('/'));
  if (!PolicyWildcardMatch(bucket_part, bucket_, false)) {
    return Error("Policy has invalid resource: " + Quote(resource) + " is not in bucket " +
                 Quote(bucket_));
  }
  return OkStatus();
}

Status PolicyParser::CheckConditionValue(const PolicyCondition& condition,
                                         const std::string& value) const {
  const OperatorInfo& info = Info(condition.op);
  auto bad = [&](std::string_view expected) {
    return Error("Condition " + std::string(info.name) + " on " + Quote(condition.key) + ": " +
                 Quote(value) + " is not " + std::string(expected));
  };
  switch (info.kind) {
    case ValueKind::kNumeric:
      if (!ParsePolicyNumber(value)) return bad("a number");
      break;
    case ValueKind::kDate:
      if (!ParsePolicyDate(value)) return bad("a date (ISO 8601 or epoch seconds)");
      break;
    case ValueKind::kBool:
    case ValueKind::kNull:
      if (!EqualsIgnoreCaseAscii(value, "true") && !EqualsIgnoreCaseAscii(value, "false")) {
        return bad("true or false");
      }
      break;
    case ValueKind::kIp:
      if (!ParseIpNetwork(value)) return bad("an IP address or CIDR block");
      break;
    default:
      break;
  }
  return OkStatus();
}

Status PolicyParser::ParseConditions(const json& value,
                                     std::vector<PolicyCondition>* conditions) const {
  if (!value.is_object()) return Error("Condition must be an object, not " + TypeName(value));
  for (const auto& [operator_name, block] : value.items()) {
    auto parsed = ParseOperator(operator_name);
    if (!parsed) {
      return Error("Invalid Condition type: unknown condition operator " + Quote(operator_name));
    }
    if (parsed->op == ConditionOperator::kNull &&
        (parsed->if_exists || parsed->set != ConditionSet::kNone)) {
      return Error("Invalid Condition type: " + Quote(operator_name) +
                   " (Null takes neither IfExists nor a set prefix)");
    }
    if (!block.is_object() || block.empty()) {
      return Error("Condition " + Quote(operator_name) +
                   " must be a non-empty object of condition keys to values");
    }
    for (const auto& [key, entries] : block.items()) {
      size_t colon = key.find(':');
      if (colon == 0 || colon == std::string::npos || colon + 1 == key.size()) {
        return Error("Condition " + Quote(operator_name) + ": " + Quote(key) +
                     " is not a condition key (expected \"service:name\", e.g. aws:SourceIp)");
      }
      PolicyCondition condition;
      condition.op = parsed->op;
      condition.set = parsed->set;
      condition.if_exists = parsed->if_exists;
      condition.key = key;
      std::vector<const json*> items;
      if (entries.is_array()) {
        if (entries.empty()) {
          return Error("Condition " + Quote(operator_name) + " on " + Quote(key) +
                       " has an empty list of values");
        }
        for (const json& item : entries) items.push_back(&item);
      } else {
        items.push_back(&entries);
      }
      for (const json* item : items) {
        if (item->is_string()) {
          condition.values.push_back(item->get<std::string>());
        } else if (item->is_boolean() || item->is_number()) {
          condition.values.push_back(item->dump());
        } else {
          return Error("Condition " + Quote(operator_name) + " on " + Quote(key) +
                       ": a value must be a string, number or boolean, not " + TypeName(*item));
        }
        RETURN_IF_ERROR(CheckConditionValue(condition, condition.values.back()));
      }
      conditions->push_back(std::move(condition));
    }
  }
  return OkStatus();
}

Status PolicyParser::ParseStatement(const json& value, size_t index, PolicyStatement* statement) {
  where_ = "statement " + std::to_string(index) + ": ";
  if (!value.is_object()) return Error("a statement must be an object, not " + TypeName(value));
  if (auto sid = value.find("Sid"); sid != value.end()) {
    if (!sid->is_string()) return Error("Sid must be a string, not " + TypeName(*sid));
    statement->sid = sid->get<std::string>();
    where_ = "statement " + std::to_string(index) + " (Sid " + Quote(statement->sid) + "): ";
  }
  static constexpr std::string_view kElements[] = {"Sid",          "Effect",      "Principal",
                                                   "NotPrincipal", "Action",      "NotAction",
                                                   "Resource",     "NotResource", "Condition"};
  for (const auto& [name, unused] : value.items()) {
    if (std::find(std::begin(kElements), std::end(kElements), name) == std::end(kElements)) {
      return Error("unknown element " + Quote(name));
    }
  }

  auto effect = value.find("Effect");
  if (effect == value.end()) return Error("missing Effect");
  if (!effect->is_string() ||
      (effect->get<std::string>() != "Allow" && effect->get<std::string>() != "Deny")) {
    return Error("Effect must be \"Allow\" or \"Deny\", not " +
                 (effect->is_string() ? Quote(effect->get<std::string>()) : TypeName(*effect)));
  }
  statement->effect =
      effect->get<std::string>() == "Allow" ? PolicyEffect::kAllow : PolicyEffect::kDeny;

  // Exactly one of each pair.
  auto pick = [&](const char* positive, const char* negative, bool* negated,
                  const json** found) -> Status {
    auto a = value.find(positive);
    auto b = value.find(negative);
    if (a != value.end() && b != value.end()) {
      return Error(std::string("has both ") + positive + " and " + negative);
    }
    if (a == value.end() && b == value.end()) {
      return Error(std::string("missing ") + positive + " (or " + negative + ")");
    }
    *negated = b != value.end();
    *found = *negated ? &*b : &*a;
    return OkStatus();
  };

  const json* principal = nullptr;
  RETURN_IF_ERROR(pick("Principal", "NotPrincipal", &statement->not_principal, &principal));
  if (statement->not_principal && statement->effect == PolicyEffect::kAllow) {
    return Error("NotPrincipal is not supported with \"Effect\": \"Allow\"");
  }
  RETURN_IF_ERROR(ParsePrincipals(
      *principal, statement->not_principal ? "NotPrincipal" : "Principal", &statement->principals));

  const json* actions = nullptr;
  RETURN_IF_ERROR(pick("Action", "NotAction", &statement->not_action, &actions));
  ASSIGN_OR_RETURN(statement->actions,
                   Strings(*actions, statement->not_action ? "NotAction" : "Action"));
  for (const std::string& action : statement->actions) RETURN_IF_ERROR(CheckAction(action));

  const json* resources = nullptr;
  RETURN_IF_ERROR(pick("Resource", "NotResource", &statement->not_resource, &resources));
  ASSIGN_OR_RETURN(statement->resources,
                   Strings(*resources, statement->not_resource ? "NotResource" : "Resource"));
  for (const std::string& resource : statement->resources) {
    RETURN_IF_ERROR(CheckResource(resource));
  }

  if (auto condition = value.find("Condition"); condition != value.end()) {
    RETURN_IF_ERROR(ParseConditions(*condition, &statement->conditions));
  }
  return OkStatus();
}

// ---------------------------------------------------------------------------------------
// Evaluation

bool PrincipalMatches(const PolicyPrincipal& principal, const PolicyRequest& request) {
  if (principal.kind == PolicyPrincipal::Kind::kAny) return true;
  if (!request.account) return false;  // anonymous: only the wildcard
  const std::string& account = *request.account;
  const std::string& user = request.user;
  switch (principal.kind) {
    case PolicyPrincipal::Kind::kAccount:
      return account == principal.account;
    case PolicyPrincipal::Kind::kUser:
      if (principal.account.empty()) {
        return (user == principal.name && (account.empty() || account == principal.name)) ||
               (user.empty() && account == principal.name);
      }
      return account == principal.account &&
             (user == principal.name || (user.empty() && principal.name == account));
    default:
      return false;  // Service, Federated
  }
}

bool StatementApplies(const PolicyStatement& statement, const PolicyRequest& request) {
  bool principal = std::any_of(
      statement.principals.begin(), statement.principals.end(),
      [&](const PolicyPrincipal& candidate) { return PrincipalMatches(candidate, request); });
  if (principal == statement.not_principal) return false;

  bool action = std::any_of(statement.actions.begin(), statement.actions.end(),
                            [&](const std::string& pattern) {
                              return PolicyWildcardMatch(pattern, request.action, true);
                            });
  if (action == statement.not_action) return false;

  bool resource = std::any_of(statement.resources.begin(), statement.resources.end(),
                              [&](const std::string& pattern) {
                                return PolicyWildcardMatch(pattern, request.resource, false);
                              });
  if (resource == statement.not_resource) return false;

  for (const PolicyCondition& condition : statement.conditions) {
    std::vector<std::string> values;
    if (request.conditions) values = request.conditions(condition.key);
    if (!ConditionHolds(condition, values)) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------
// IsPublic
//
// S3 calls a bucket policy public unless every statement that grants to everyone is pinned
// by a condition to fixed values. Here a statement is public when it is an Allow whose
// Principal includes "*" (or {"AWS": "*"}) and none of its conditions pins it. A condition
// pins when it is not IfExists, not ForAllValues (both pass when the key is absent), and
//   - it is IpAddress on aws:SourceIp with every block at least a /8 (IPv4) or a /32
//     (IPv6): "0.0.0.0/0" and other huge ranges do not count as a restriction; or
//   - it is StringEquals, StringEqualsIgnoreCase, StringLike, ArnEquals or ArnLike on one of
//     the keys below with values that contain no wildcard ('*', '?') and no policy variable
//     ("${"): aws:SourceArn, aws:SourceVpc, aws:SourceVpce, aws:SourceOwner,
//     aws:SourceAccount, aws:SourceOrgID, aws:PrincipalOrgID, aws:PrincipalAccount,
//     aws:PrincipalArn, aws:userid, s3:x-amz-server-side-encryption-aws-kms-key-id,
//     s3:DataAccessPointArn, s3:DataAccessPointAccount.
// Deny statements never make a policy public, and a Deny does not make a public Allow
// private (as in S3, which looks at grants only).

constexpr std::string_view kPinningKeys[] = {
    "aws:sourcearn",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourceowner",
    "aws:sourceaccount",
    "aws:sourceorgid",
    "aws:principalorgid",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:userid",
    "s3:x-amz-server-side-encryption-aws-kms-key-id",
    "s3:dataaccesspointarn",
    "s3:dataaccesspointaccount",
};

bool ConditionPins(const PolicyCondition& condition) {
  if (condition.if_exists || condition.set == ConditionSet::kForAllValues) return false;
  std::string key = ToLowerAscii(condition.key);
  if (key == "aws:sourceip") {
    if (condition.op != ConditionOperator::kIpAddress) return false;
    return std::all_of(condition.values.begin(), condition.values.end(),
                       [](const std::string& value) {
                         auto network = ParseIpNetwork(value);
                         return network && network->prefix_length >= (network->address.v6 ? 32 : 8);
                       });
  }
  if (std::find(std::begin(kPinningKeys), std::end(kPinningKeys), key) == std::end(kPinningKeys)) {
    return false;
  }
  switch (condition.op) {
    case ConditionOperator::kStringEquals:
    case ConditionOperator::kStringEqualsIgnoreCase:
    case ConditionOperator::kStringLike:
    case ConditionOperator::kArnEquals:
    case ConditionOperator::kArnLike:
      break;
    default:
      return false;
  }
  return std::none_of(condition.values.begin(), condition.values.end(),
                      [](const std::string& value) {
                        return HasWildcard(value) || value.find("${") != std::string::npos;
                      });
}

bool StatementIsPublic(const PolicyStatement& statement) {
  if (statement.effect != PolicyEffect::kAllow || statement.not_principal) return false;
  bool everyone =
      std::any_of(statement.principals.begin(), statement.principals.end(),
                  [](const PolicyPrincipal& p) { return p.kind == PolicyPrincipal::Kind::kAny; });
  if (!everyone) return false;
  return std::none_of(statement.conditions.begin(), statement.conditions.end(), ConditionPins);
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Public functions

std::string_view DecisionName(Decision decision) {
  switch (decision) {
    case Decision::kAllow:
      return "Allow";
    case Decision::kDeny:
      return "Deny";
    case Decision::kNone:
      break;
  }
  return "None";
}

std::string_view ConditionOperatorName(ConditionOperator op) { return Info(op).name; }

std::span<const std::string_view> KnownS3Actions() { return kS3Actions; }

bool IsKnownS3Action(std::string_view action) {
  if (!StartsWithIgnoreCase(action, "s3:")) return false;
  action.remove_prefix(3);
  return std::any_of(std::begin(kS3Actions), std::end(kS3Actions),
                     [&](std::string_view known) { return EqualsIgnoreCaseAscii(known, action); });
}

bool PolicyWildcardMatch(std::string_view pattern, std::string_view text, bool ignore_case) {
  // Greedy matching with one backtrack point (the last '*'): O(pattern × text) at worst.
  size_t p = 0;
  size_t t = 0;
  size_t star = std::string_view::npos;
  size_t resume = 0;
  auto same = [&](char a, char b) {
    return ignore_case ? ToLowerAscii(a) == ToLowerAscii(b) : a == b;
  };
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (p < pattern.size() && pattern[p] == '?') {
      ++p;
      t += SequenceLength(text, t);
    } else if (p < pattern.size() && same(pattern[p], text[t])) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      resume += SequenceLength(text, resume);
      t = resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::string ConditionContext::NormalizeKey(std::string_view key) {
  size_t slash = key.find('/');
  std::string out = ToLowerAscii(key.substr(0, slash));
  if (slash != std::string_view::npos) out += key.substr(slash);
  return out;
}

ConditionContext& ConditionContext::Set(std::string_view key, std::vector<std::string> values) {
  values_[NormalizeKey(key)] = std::move(values);
  return *this;
}

ConditionContext& ConditionContext::Set(std::string_view key, std::string value) {
  return Set(key, std::vector<std::string>{std::move(value)});
}

std::vector<std::string> ConditionContext::Get(std::string_view key) const {
  auto found = values_.find(NormalizeKey(key));
  return found == values_.end() ? std::vector<std::string>{} : found->second;
}

ConditionLookup ConditionContext::AsLookup() const {
  return [copy = *this](std::string_view key) { return copy.Get(key); };
}

Result<BucketPolicy> BucketPolicy::Parse(std::string_view json_text, std::string_view bucket) {
  if (json_text.size() > kMaxBucketPolicyBytes) {
    return Invalid("the document is " + std::to_string(json_text.size()) +
                   " bytes; policies must be " + std::to_string(kMaxBucketPolicyBytes) +
                   " bytes or smaller");
  }
  if (TrimAscii(json_text, kJsonWhitespace).empty()) {
    return Invalid("the document is empty");
  }
  if (!IsValidUtf8(json_text)) return Invalid("the document is not valid UTF-8");

  StructureCheck check;
  bool well_formed = false;
  try {
    well_formed = json::sax_parse(json_text.begin(), json_text.end(), &check);
  } catch (const std::exception& e) {
    return Invalid(std::string("not valid JSON: ") + e.what());
  }
  if (!well_formed) return Invalid(check.error());
  json document =
      json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded()) return Invalid("not valid JSON");
  if (!document.is_object()) {
    return Invalid("the document must be a JSON object, not " + TypeName(document));
  }

  BucketPolicy policy;
  for (const auto& [name, unused] : document.items()) {
    if (name != "Version" && name != "Id" && name != "Statement") {
      return Invalid("unknown top-level element " + Quote(name) +
                     " (expected Version, Id and Statement)");
    }
  }
  auto version = document.find("Version");
  if (version == document.end()) return Invalid("missing Version");
  if (!version->is_string()) return Invalid("Version must be a string, not " + TypeName(*version));
  policy.version_ = version->get<std::string>();
  if (policy.version_ != "2012-10-17" && policy.version_ != "2008-10-17") {
    return Invalid("unsupported Version " + Quote(policy.version_) +
                   " (expected \"2012-10-17\" or \"2008-10-17\")");
  }
  if (auto id = document.find("Id"); id != document.end()) {
    if (!id->is_string()) return Invalid("Id must be a string, not " + TypeName(*id));
    policy.id_ = id->get<std::string>();
  }

  auto statements = document.find("Statement");
  if (statements == document.end()) return Invalid("missing Statement");
  std::vector<const json*> items;
  if (statements->is_object()) {
    items.push_back(&*statements);
  } else if (statements->is_array()) {
    if (statements->empty()) return Invalid("Statement must not be an empty list");
    for (const json& item : *statements) items.push_back(&item);
  } else {
    return Invalid("Statement must be an object or a list of objects, not " +
                   TypeName(*statements));
  }

  PolicyParser parser(bucket);
  std::set<std::string> sids;
  for (size_t i = 0; i < items.size(); ++i) {
    PolicyStatement statement;
    RETURN_IF_ERROR(parser.ParseStatement(*items[i], i, &statement));
    if (!statement.sid.empty() && !sids.insert(statement.sid).second) {
      return Invalid("statement " + std::to_string(i) + ": the Sid " + Quote(statement.sid) +
                     " is used by another statement; statement ids must be unique");
    }
    policy.statements_.push_back(std::move(statement));
  }
  return policy;
}

Decision BucketPolicy::Evaluate(const PolicyRequest& request) const {
  bool allowed = false;
  for (const PolicyStatement& statement : statements_) {
    if (!StatementApplies(statement, request)) continue;
    if (statement.effect == PolicyEffect::kDeny) return Decision::kDeny;
    allowed = true;
  }
  return allowed ? Decision::kAllow : Decision::kNone;
}

bool BucketPolicy::IsPublic() const {
  return std::any_of(statements_.begin(), statements_.end(), StatementIsPublic);
}

}  // namespace cairn::s3
