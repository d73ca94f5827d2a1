// Who may do what to a bucket or object that is not theirs: canned ACLs, the grants Cairn
// keeps (owner, AllUsers, AuthenticatedUsers) and the permission each S3 operation needs.
// Pure functions; the S3 handlers evaluate them, bucket policies on top.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "api/s3/handlers/s3_failure.h"
#include "api/s3/wire/s3_request.h"
#include "api/s3/wire/s3_xml.h"
#include "http/exchange.h"

namespace cairn::api {

// Names of the bucket settings (meta::MetaStore::SetNamespaceSetting) that hold them.
inline constexpr std::string_view kAclSetting = "acl";
inline constexpr std::string_view kPolicySetting = "policy";
inline constexpr std::string_view kCorsSetting = "cors";
inline constexpr std::string_view kPublicAccessBlockSetting = "public-access-block";
inline constexpr std::string_view kOwnershipSetting = "ownership";

// x-amz-acl: the canned ACLs S3 defines. bucket-owner-read and bucket-owner-full-control
// equal private here, because the bucket's owner always owns every object in it.
// 400 InvalidArgument for an unknown name; 501 for aws-exec-read and log-delivery-write.
std::variant<s3::AclGrants, Failure> CannedAcl(std::string_view name);

// The ACL a write asks for through x-amz-acl or x-amz-grant-* headers; nullopt if neither.
// Both at once is 400 InvalidRequest, as in S3.
std::optional<std::variant<s3::AclGrants, Failure>> AclFromHeaders(const http::RequestHead& head,
                                                                   std::string_view owner);

// Whether an ACL gives anything to everyone or to every signed-in account (AWS counts
// both as public).
inline bool IsPublicAcl(const s3::AclGrants& acl) {
  return acl.all_users != 0 || acl.authenticated_users != 0;
}

// Stored form of an ACL ("owner=15 all=1 auth=0"); what cannot be read back is private.
std::string SerializeAcl(const s3::AclGrants& acl);
s3::AclGrants ParseStoredAcl(std::string_view stored);

// Whether `acl` gives `permission` (kAcl* bits, all required) to a requester who is not
// the owner: signed in or anonymous. `ignore_public`: PublicAccessBlock IgnorePublicAcls.
bool AclAllows(const s3::AclGrants& acl, bool authenticated, uint8_t permission,
               bool ignore_public);

// What an operation needs from a requester other than the bucket's owner.
enum class AccessTarget {
  kBucketAcl,  // the bucket's ACL
  kObjectAcl,  // the object's ACL (checked once the object is found)
  kOwnerOnly,  // nothing in an ACL grants it; only a bucket policy can
};
struct AccessNeed {
  AccessTarget target = AccessTarget::kOwnerOnly;
  uint8_t permission = 0;  // kAcl* bits
  std::string action;      // the policy action, "s3:GetObject"; empty: no policy grants it
};
// `feature`: the subresource of a kNotImplemented operation (S3Request::unsupported);
// `has_key`: the request names an object.
AccessNeed AccessFor(s3::S3Operation op, std::string_view feature, std::string_view method,
                     bool has_key);

}  // namespace cairn::api
