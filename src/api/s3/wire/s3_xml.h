// The XML documents of the S3 API: renderers for the responses Cairn sends and strict,
// bounded parsers for the request bodies it accepts. Inputs and outputs are plain structs
// of standard types; the XML library stays inside the .cc files.
//
// Rendering. Every response document starts with an XML declaration and, except <Error>,
// carries S3's namespace (http://s3.amazonaws.com/doc/2006-03-01/). Text is escaped for
// XML; characters XML 1.0 forbids (C0 controls other than tab and newline) and carriage
// returns are written as numeric character references (&#1; &#13;), so a key round-trips
// through any parser that accepts them. Strict XML 1.0 parsers reject such references,
// which is why S3 offers encoding-type=url: with it, the listing renderers percent-encode
// the fields S3 encodes (see UrlEncodeForListing).
//
// Parsing. A body larger than the caller's limit is MaxMessageLengthExceeded; a DOCTYPE,
// entity declaration or entity reference other than XML's five predefined ones and
// character references is MalformedXML, as is anything that is not well-formed XML with
// the expected root element. Unknown child elements are ignored so that newer SDKs adding
// fields (checksums, conditional deletes) keep working.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/s3/wire/s3_error.h"
#include "core/types.h"

namespace cairn::s3 {

inline constexpr size_t kDefaultMaxXmlBodyBytes = 1 << 20;  // 1 MiB
inline constexpr size_t kMaxDeleteObjects = 1000;
inline constexpr size_t kMaxObjectTags = 10;
inline constexpr size_t kMaxBucketTags = 50;
inline constexpr size_t kMaxTagKeyCharacters = 128;    // Unicode characters, not bytes
inline constexpr size_t kMaxTagValueCharacters = 256;  // Unicode characters, not bytes

// ---- Rendering -----------------------------------------------------------------------

struct Owner {
  std::string id;
  std::string display_name;
};

// <Error><Code/><Message/><Resource/><RequestId/></Error>
std::string RenderError(const S3Error& error, std::string_view request_id);

struct BucketEntry {
  std::string name;
  TimestampMs creation_date = 0;
};
struct ListAllMyBucketsResult {
  Owner owner;
  std::vector<BucketEntry> buckets;
  std::optional<std::string> continuation_token;  // set when more buckets follow
  std::optional<std::string> prefix;              // echoed when the request had one
};
std::string RenderListAllMyBuckets(const ListAllMyBucketsResult& result);

struct ObjectEntry {
  std::string key;
  TimestampMs last_modified = 0;
  std::string etag;  // with or without quotes; rendered quoted
  uint64_t size = 0;
  std::string storage_class = "STANDARD";
  std::optional<Owner> owner;  // rendered when present (V1 always; V2 with fetch-owner)
};

// Fields shared by ListObjects (V1) and ListObjectsV2. Optional strings are rendered only
// when set (S3 echoes Prefix always, the others when the request carried them).
struct ListObjectsCommon {
  std::string bucket;
  std::string prefix;
  std::optional<std::string> delimiter;
  int max_keys = 1000;
  bool is_truncated = false;
  bool encoding_type_url = false;  // encode Key, Prefix, Delimiter and markers
  std::vector<ObjectEntry> contents;
  std::vector<std::string> common_prefixes;
};

struct ListBucketResultV1 {
  ListObjectsCommon common;
  std::optional<std::string> marker;       // rendered as <Marker/> (empty) when unset
  std::optional<std::string> next_marker;  // S3 sends it only with a delimiter
};
std::string RenderListBucketResultV1(const ListBucketResultV1& result);

struct ListBucketResultV2 {
  ListObjectsCommon common;
  std::optional<std::string> continuation_token;
  std::optional<std::string> next_continuation_token;
  std::optional<std::string> start_after;
};
// KeyCount is computed: contents plus common prefixes.
std::string RenderListBucketResultV2(const ListBucketResultV2& result);

// ListObjectVersions of an unversioned bucket: each object is its one version, "null",
// and the latest; no delete markers.
struct ListVersionsResult {
  ListObjectsCommon common;
  std::optional<std::string> key_marker;
  std::optional<std::string> version_id_marker;
  std::optional<std::string> next_key_marker;  // with NextVersionIdMarker "null"
};
std::string RenderListVersionsResult(const ListVersionsResult& result);

// An empty region renders <LocationConstraint/> (us-east-1, as S3 does).
std::string RenderLocationConstraint(std::string_view region);

std::string RenderInitiateMultipartUploadResult(std::string_view bucket, std::string_view key,
                                                std::string_view upload_id);

struct CompleteMultipartUploadResult {
  std::string location;  // URL of the object
  std::string bucket;
  std::string key;
  std::string etag;  // "md5-of-part-md5s-N"; rendered quoted
  // The object's checksum, when the upload asked for one: element ("ChecksumCRC32"),
  // value, and type ("COMPOSITE" or "FULL_OBJECT").
  std::string checksum_element;
  std::string checksum_value;
  std::string checksum_type;
};
std::string RenderCompleteMultipartUploadResult(const CompleteMultipartUploadResult& result);

// <CopyObjectResult> and <CopyPartResult>: LastModified and quoted ETag.
std::string RenderCopyObjectResult(TimestampMs last_modified, std::string_view etag);
std::string RenderCopyPartResult(TimestampMs last_modified, std::string_view etag);

struct DeletedEntry {
  std::string key;
};
struct DeleteErrorEntry {
  std::string key;
  std::string code;  // S3 error code, e.g. "AccessDenied"
  std::string message;
};
struct DeleteResult {
  bool quiet = false;  // quiet mode: only errors are reported
  std::vector<DeletedEntry> deleted;
  std::vector<DeleteErrorEntry> errors;
};
std::string RenderDeleteResult(const DeleteResult& result);

struct PartEntry {
  int part_number = 0;
  TimestampMs last_modified = 0;
  std::string etag;
  uint64_t size = 0;
  std::string checksum_element;  // e.g. "ChecksumCRC32" with its value; empty: none
  std::string checksum_value;
};
struct ListPartsResult {
  std::string bucket;
  std::string key;
  std::string upload_id;
  Owner initiator;  // rendered as both <Initiator> and <Owner>
  std::string storage_class = "STANDARD";
  int part_number_marker = 0;
  int next_part_number_marker = 0;
  int max_parts = 1000;
  bool is_truncated = false;
  std::string checksum_algorithm;  // "CRC32", ...; empty: the upload asked for none
  std::string checksum_type;       // "COMPOSITE" or "FULL_OBJECT"
  std::vector<PartEntry> parts;
};
std::string RenderListPartsResult(const ListPartsResult& result);

struct UploadEntry {
  std::string key;
  std::string upload_id;
  Owner initiator;  // rendered as both <Initiator> and <Owner>
  std::string storage_class = "STANDARD";
  TimestampMs initiated = 0;
};
struct ListMultipartUploadsResult {
  std::string bucket;
  std::string key_marker;
  std::string upload_id_marker;
  std::string next_key_marker;
  std::string next_upload_id_marker;
  std::string prefix;
  std::optional<std::string> delimiter;
  int max_uploads = 1000;
  bool is_truncated = false;
  bool encoding_type_url = false;  // encode Key, Prefix, Delimiter, KeyMarker, NextKeyMarker
  std::vector<UploadEntry> uploads;
  std::vector<std::string> common_prefixes;
};
std::string RenderListMultipartUploadsResult(const ListMultipartUploadsResult& result);

struct Tag {
  std::string key;
  std::string value;
  bool operator==(const Tag&) const = default;
};
std::string RenderTagging(const std::vector<Tag>& tags);

// encoding-type=url as S3 applies it: UTF-8 bytes percent-encoded with upper-case hex,
// except ASCII letters, digits and "-_.*/" which stay literal; a space becomes "%20" (as S3
// answers), which both form decoding (botocore's unquote_plus) and plain percent-decoding
// turn back into a space.
std::string UrlEncodeForListing(std::string_view text);

// ---- Parsing --------------------------------------------------------------------------

// The check every parser here runs before pugixml sees a body, for other XML readers of
// the S3 API (CORS configurations) too: MalformedXML for what pugixml would accept but a
// request body must not contain: bytes that are not UTF-8, NUL (pugixml would cut the text
// there), markup declarations (DOCTYPE, ENTITY) and references other than XML's five
// predefined entities and character references to characters XML allows.
std::optional<S3Error> PreScanXml(std::string_view body);

struct CompletedPart {
  int part_number = 0;
  std::string etag;  // surrounding quotes removed
  // Checksum elements the client sent, e.g. {"ChecksumCRC32", "AAAAAA=="}, in order.
  std::vector<std::pair<std::string, std::string>> checksums;
};
// <CompleteMultipartUpload><Part><PartNumber/><ETag/>...</Part>...</CompleteMultipartUpload>
// At least one part; part numbers 1..10000 (InvalidArgument otherwise) in
// ascending order, a number repeated in a row allowed (InvalidPartOrder otherwise).
S3Result<std::vector<CompletedPart>> ParseCompleteMultipartUpload(std::string_view body,
                                                                  size_t max_bytes);

struct ObjectToDelete {
  std::string key;  // as sent; the caller validates it and reports per-key errors
  std::optional<std::string> version_id;
};
struct DeleteRequest {
  bool quiet = false;
  std::vector<ObjectToDelete> objects;
};
// <Delete><Quiet/>?<Object><Key/><VersionId/>?</Object>...</Delete>: 1..1000 objects, each
// with a Key (MalformedXML otherwise, as S3 answers).
S3Result<DeleteRequest> ParseDelete(std::string_view body, size_t max_bytes);

// <Tagging><TagSet><Tag><Key/><Value/></Tag>...</TagSet></Tagging>. InvalidTag for more
// than `max_tags` tags (10 on objects, 50 on buckets), an empty key, a key over 128 or a
// value over 256 characters, a duplicate key, or a key in the reserved "aws:" namespace.
S3Result<std::vector<Tag>> ParseTagging(std::string_view body, size_t max_bytes,
                                        size_t max_tags = kMaxObjectTags);

// <CreateBucketConfiguration><LocationConstraint/></CreateBucketConfiguration>. An empty
// body is allowed (no configuration) and yields nullopt, as does an empty constraint.
// ---- Access control documents -----------------------------------------------------------

// Permission bits of an ACL grant. FULL_CONTROL is all four.
inline constexpr uint8_t kAclRead = 1, kAclWrite = 2, kAclReadAcp = 4, kAclWriteAcp = 8,
                         kAclFullControl = 15;

// An ACL as Cairn keeps it: what the bucket's owner, everyone (the AllUsers group) and
// every signed-in account (AuthenticatedUsers) may do. Grants to other accounts are not
// supported (ParseAccessControlPolicy refuses them).
struct AclGrants {
  uint8_t owner = kAclFullControl;
  uint8_t all_users = 0;
  uint8_t authenticated_users = 0;
  bool operator==(const AclGrants&) const = default;
};

// <AccessControlPolicy> (PutBucketAcl, PutObjectAcl). Grantees: the owner (CanonicalUser
// with `owner_id`), the AllUsers and AuthenticatedUsers groups. Another account's id is
// NotImplemented, an e-mail address UnresolvableGrantByEmailAddress, an unknown group or
// permission MalformedACLError, an <Owner> other than `owner_id` AccessDenied.
S3Result<AclGrants> ParseAccessControlPolicy(std::string_view body, size_t max_bytes,
                                             std::string_view owner_id);
std::string RenderAccessControlPolicy(const AclGrants& grants, const Owner& owner);

struct PublicAccessBlock {
  bool block_public_acls = false;
  bool ignore_public_acls = false;
  bool block_public_policy = false;
  bool restrict_public_buckets = false;
  bool operator==(const PublicAccessBlock&) const = default;
};
S3Result<PublicAccessBlock> ParsePublicAccessBlock(std::string_view body, size_t max_bytes);
std::string RenderPublicAccessBlock(const PublicAccessBlock& block);

// <OwnershipControls> with one rule: "BucketOwnerEnforced", "BucketOwnerPreferred" or
// "ObjectWriter".
S3Result<std::string> ParseOwnershipControls(std::string_view body, size_t max_bytes);
std::string RenderOwnershipControls(std::string_view ownership);

S3Result<std::optional<std::string>> ParseCreateBucketConfiguration(std::string_view body,
                                                                    size_t max_bytes);

}  // namespace cairn::s3
