#include "api/s3/handlers/s3_access.h"

#include <charconv>
#include <vector>

namespace cairn::api {
namespace {

using s3::AclGrants;
using Op = s3::S3Operation;

Failure Refused(int status, std::string code, std::string message) {
  return MakeFailure(status, std::move(code), std::move(message));
}

// One x-amz-grant-* value: `uri="...", id="..."` pairs, comma separated.
std::variant<uint8_t, Failure> ApplyGrantHeader(std::string_view value, std::string_view owner,
                                                uint8_t permission, AclGrants* acl) {
  size_t at = 0;
  while (at < value.size()) {
    while (at < value.size() && (value[at] == ' ' || value[at] == ',')) ++at;
    if (at >= value.size()) break;
    size_t equals = value.find('=', at);
    if (equals == std::string_view::npos) {
      return Refused(400, "InvalidArgument", "a grant header needs type=\"value\" pairs");
    }
    std::string_view type = value.substr(at, equals - at);
    while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
    size_t open = equals + 1;
    while (open < value.size() && value[open] == ' ') ++open;
    std::string_view grantee;
    if (open < value.size() && value[open] == '"') {
      size_t close = value.find('"', open + 1);
      if (close == std::string_view::npos) {
        return Refused(400, "InvalidArgument", "an unterminated grantee in a grant header");
      }
      grantee = value.substr(open + 1, close - open - 1);
      at = close + 1;
    } else {  // unquoted, as some clients send it: up to the next comma
      size_t comma = value.find(',', open);
      if (comma == std::string_view::npos) comma = value.size();
      grantee = value.substr(open, comma - open);
      while (!grantee.empty() && grantee.back() == ' ') grantee.remove_suffix(1);
      at = comma;
    }
    if (type == "uri" && grantee == "http://acs.amazonaws.com/groups/global/AllUsers") {
      acl->all_users |= permission;
    } else if (type == "uri" &&
               grantee == "http://acs.amazonaws.com/groups/global/AuthenticatedUsers") {
      acl->authenticated_users |= permission;
    } else if (type == "id" && grantee == owner) {
      acl->owner |= permission;
    } else if (type == "emailAddress") {
      return Refused(400, "UnresolvableGrantByEmailAddress",
                     "The e-mail address you provided does not match any account on record");
    } else if (type == "id" || type == "uri") {
      return Refused(501, "NotImplemented",
                     "Cairn does not implement ACL grants to other accounts or groups ('" +
                         std::string(grantee.substr(0, 64)) + "'); use a bucket policy");
    } else {
      return Refused(400, "InvalidArgument",
                     "unknown grantee type '" + std::string(type.substr(0, 32)) + "'");
    }
  }
  return uint8_t{0};
}

}  // namespace

std::variant<AclGrants, Failure> CannedAcl(std::string_view name) {
  AclGrants acl;
  if (name == "private" || name == "bucket-owner-read" || name == "bucket-owner-full-control") {
    return acl;
  }
  if (name == "public-read") {
    acl.all_users = s3::kAclRead;
    return acl;
  }
  if (name == "public-read-write") {
    acl.all_users = s3::kAclRead | s3::kAclWrite;
    return acl;
  }
  if (name == "authenticated-read") {
    acl.authenticated_users = s3::kAclRead;
    return acl;
  }
  if (name == "aws-exec-read" || name == "log-delivery-write") {
    return Refused(501, "NotImplemented",
                   "Cairn does not implement the canned ACL '" + std::string(name) + "'");
  }
  return Refused(400, "InvalidArgument",
                 "unknown canned ACL '" + std::string(name.substr(0, 64)) + "'");
}

std::optional<std::variant<AclGrants, Failure>> AclFromHeaders(const http::RequestHead& head,
                                                               std::string_view owner) {
  static constexpr std::pair<std::string_view, uint8_t> kGrantHeaders[] = {
      {"x-amz-grant-read", s3::kAclRead},
      {"x-amz-grant-write", s3::kAclWrite},
      {"x-amz-grant-read-acp", s3::kAclReadAcp},
      {"x-amz-grant-write-acp", s3::kAclWriteAcp},
      {"x-amz-grant-full-control", s3::kAclFullControl}};
  const std::string* canned = head.Header("x-amz-acl");
  bool any_grant = false;
  AclGrants acl;
  acl.owner = 0;
  for (const auto& [name, permission] : kGrantHeaders) {
    for (const auto& header : head.headers) {
      if (header.first != name) continue;
      any_grant = true;
      auto applied = ApplyGrantHeader(header.second, owner, permission, &acl);
      if (auto* failure = std::get_if<Failure>(&applied)) return *failure;
    }
  }
  if (canned && any_grant) {
    return Refused(400, "InvalidRequest",
                   "Specifying both Canned ACLs and Header Grants is not allowed");
  }
  if (canned) return CannedAcl(*canned);
  if (any_grant) return acl;
  return std::nullopt;
}

std::string SerializeAcl(const AclGrants& acl) {
  return "owner=" + std::to_string(acl.owner) + " all=" + std::to_string(acl.all_users) +
         " auth=" + std::to_string(acl.authenticated_users);
}

AclGrants ParseStoredAcl(std::string_view stored) {
  AclGrants acl;
  uint8_t* fields[] = {&acl.owner, &acl.all_users, &acl.authenticated_users};
  const std::string_view names[] = {"owner=", "all=", "auth="};
  size_t at = 0;
  for (size_t i = 0; i < 3; ++i) {
    if (stored.compare(at, names[i].size(), names[i]) != 0) return AclGrants{};
    at += names[i].size();
    unsigned value = 0;
    auto [end, error] = std::from_chars(stored.data() + at, stored.data() + stored.size(), value);
    if (error != std::errc() || value > s3::kAclFullControl) return AclGrants{};
    *fields[i] = static_cast<uint8_t>(value);
    at = static_cast<size_t>(end - stored.data());
    if (i < 2) {
      if (at >= stored.size() || stored[at] != ' ') return AclGrants{};
      ++at;
    }
  }
  if (at != stored.size()) return AclGrants{};
  return acl;
}

bool AclAllows(const AclGrants& acl, bool authenticated, uint8_t permission, bool ignore_public) {
  if (permission == 0 || ignore_public) return false;
  uint8_t held = acl.all_users;
  if (authenticated) held |= acl.authenticated_users;
  return (held & permission) == permission;
}

AccessNeed AccessFor(Op op, std::string_view feature, std::string_view method, bool has_key) {
  auto bucket = [](uint8_t permission, std::string action) {
    return AccessNeed{AccessTarget::kBucketAcl, permission, std::move(action)};
  };
  auto object = [](uint8_t permission, std::string action) {
    return AccessNeed{AccessTarget::kObjectAcl, permission, std::move(action)};
  };
  auto owner = [](std::string action) {
    return AccessNeed{AccessTarget::kOwnerOnly, 0, std::move(action)};
  };
  switch (op) {
    case Op::kListBuckets:
      return owner("s3:ListAllMyBuckets");
    case Op::kCreateBucket:
      return owner("s3:CreateBucket");
    case Op::kDeleteBucket:
      return owner("s3:DeleteBucket");
    case Op::kGetBucketLocation:
      return owner("s3:GetBucketLocation");
    case Op::kHeadBucket:
    case Op::kListObjects:
    case Op::kListObjectsV2:
      return bucket(s3::kAclRead, "s3:ListBucket");
    case Op::kListObjectVersions:
      return bucket(s3::kAclRead, "s3:ListBucketVersions");
    case Op::kListMultipartUploads:
      return bucket(s3::kAclRead, "s3:ListBucketMultipartUploads");
    case Op::kListParts:
      return bucket(s3::kAclRead, "s3:ListMultipartUploadParts");
    case Op::kPutObject:
    case Op::kPostObject:
    case Op::kCopyObject:
    case Op::kCreateMultipartUpload:
    case Op::kUploadPart:
    case Op::kUploadPartCopy:
    case Op::kCompleteMultipartUpload:
      return bucket(s3::kAclWrite, "s3:PutObject");
    case Op::kAbortMultipartUpload:
      return bucket(s3::kAclWrite, "s3:AbortMultipartUpload");
    case Op::kDeleteObject:
    case Op::kDeleteObjects:
      return bucket(s3::kAclWrite, "s3:DeleteObject");
    case Op::kGetObject:
    case Op::kHeadObject:
      return object(s3::kAclRead, "s3:GetObject");
    case Op::kGetObjectAttributes:
      return object(s3::kAclRead, "s3:GetObjectAttributes");
    case Op::kGetObjectTagging:
      return object(s3::kAclRead, "s3:GetObjectTagging");
    // No ACL permission grants tagging short of FULL_CONTROL; checked on the object so
    // that a policy may condition it on the object's tags.
    case Op::kPutObjectTagging:
      return object(s3::kAclFullControl, "s3:PutObjectTagging");
    case Op::kDeleteObjectTagging:
      return object(s3::kAclFullControl, "s3:DeleteObjectTagging");
    case Op::kNotImplemented:
      break;
  }
  const bool read = method == "GET" || method == "HEAD";
  if (feature == "acl") {
    if (has_key) {
      return object(read ? s3::kAclReadAcp : s3::kAclWriteAcp,
                    read ? "s3:GetObjectAcl" : "s3:PutObjectAcl");
    }
    return bucket(read ? s3::kAclReadAcp : s3::kAclWriteAcp,
                  read ? "s3:GetBucketAcl" : "s3:PutBucketAcl");
  }
  struct Named {
    std::string_view feature, get, put;
  };
  static constexpr Named kActions[] = {
      {"policy", "s3:GetBucketPolicy", "s3:PutBucketPolicy"},
      {"policyStatus", "s3:GetBucketPolicyStatus", ""},
      {"cors", "s3:GetBucketCORS", "s3:PutBucketCORS"},
      {"tagging", "s3:GetBucketTagging", "s3:PutBucketTagging"},
      {"publicAccessBlock", "s3:GetBucketPublicAccessBlock", "s3:PutBucketPublicAccessBlock"},
      {"ownershipControls", "s3:GetBucketOwnershipControls", "s3:PutBucketOwnershipControls"},
      {"versioning", "s3:GetBucketVersioning", "s3:PutBucketVersioning"},
      {"logging", "s3:GetBucketLogging", "s3:PutBucketLogging"},
  };
  for (const Named& named : kActions) {
    if (named.feature == feature) {
      std::string_view action = read ? named.get : named.put;
      if (method == "DELETE" && feature == "policy") action = "s3:DeleteBucketPolicy";
      return owner(std::string(action));
    }
  }
  return owner("");
}

}  // namespace cairn::api
