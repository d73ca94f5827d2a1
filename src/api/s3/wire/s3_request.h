// An HTTP request head becomes a typed S3 endpoint here, before any handler runs: which
// operation, which bucket and key, and every query parameter parsed and range-checked.
// Pure and socket-free; the S3 router dispatches on S3Request::operation.
//
// Addressing: a Host of "<bucket>.<base>[:port]" for one of the configured base domains
// is virtual-hosted style (the whole path is the key); anything else is path style
// ("/<bucket>/<key>"). The path is percent-decoded with '+' kept literal (RFC 3986 paths
// have no form encoding); query values are form-decoded ('+' is a space).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/s3/wire/s3_error.h"
#include "http/exchange.h"

namespace cairn::s3 {

enum class S3Operation {
  kListBuckets,
  kCreateBucket,
  kHeadBucket,
  kDeleteBucket,
  kGetBucketLocation,
  kListObjects,    // V1: marker
  kListObjectsV2,  // list-type=2: continuation-token, start-after
  kPutObject,
  kCopyObject,  // PUT with x-amz-copy-source
  kGetObject,
  kHeadObject,
  kDeleteObject,
  kDeleteObjects,            // POST /bucket?delete
  kCreateMultipartUpload,    // POST /bucket/key?uploads
  kUploadPart,               // PUT /bucket/key?partNumber=N&uploadId=U
  kUploadPartCopy,           // the same with x-amz-copy-source
  kCompleteMultipartUpload,  // POST /bucket/key?uploadId=U
  kAbortMultipartUpload,     // DELETE /bucket/key?uploadId=U
  kListParts,                // GET /bucket/key?uploadId=U
  kListMultipartUploads,     // GET /bucket?uploads
  kListObjectVersions,       // GET /bucket?versions (unversioned: one "null" version per key)
  kGetObjectTagging,
  kPutObjectTagging,
  kDeleteObjectTagging,
  kGetObjectAttributes,  // GET /bucket/key?attributes
  kPostObject,           // POST /bucket, multipart/form-data: an HTML form upload
  // A well-formed request for an S3 feature Cairn does not implement (?acl, ?versioning,
  // ...). S3Request::unsupported names it, so the caller can answer 501 NotImplemented or
  // a harmless default (an empty ACL, "versioning never enabled").
  kNotImplemented,
};

// "ListObjectsV2": the operation's name in the S3 API reference (for logs and metrics).
std::string_view S3OperationName(S3Operation operation);

// Base domains for virtual-hosted style, e.g. {"s3.local", "localhost"}: a Host of
// "photos.s3.local:9000" addresses bucket "photos". Compared case-insensitively.
struct S3AddressingOptions {
  std::vector<std::string> virtual_host_bases;
};

// x-amz-copy-source: "bucket/key" or "/bucket/key", URL-encoded, with an optional
// "?versionId=null".
struct CopySource {
  std::string bucket;
  std::string key;  // decoded and validated like a request key
};

// x-amz-copy-source-range: "bytes=first-last", both inclusive and both required.
struct CopySourceRange {
  uint64_t first = 0;
  uint64_t last = 0;
};

inline constexpr int kMaxListEntries = 1000;  // max-keys, max-parts, max-uploads cap
inline constexpr int kMaxPartNumber = 10000;

struct S3Request {
  S3Operation operation = S3Operation::kListBuckets;
  // Set when operation == kNotImplemented: the query subresource ("acl", "versioning", ...)
  // the request asked for.
  std::string unsupported;
  bool virtual_hosted = false;
  std::string bucket;  // empty only for ListBuckets (and service-level kNotImplemented)
  std::string key;     // decoded; empty for bucket-level operations
  // "/bucket/key" for <Resource> in error documents.
  std::string resource;

  // Listing (ListObjects, ListObjectsV2, ListMultipartUploads). Optional ones are echoed
  // in the response only when the request carried them.
  std::optional<std::string> prefix;
  std::optional<std::string> delimiter;
  std::optional<std::string> marker;              // V1
  std::optional<std::string> continuation_token;  // V2
  std::optional<std::string> start_after;         // V2
  std::optional<std::string> key_marker;          // ListMultipartUploads, ListObjectVersions
  std::optional<std::string> upload_id_marker;    // ListMultipartUploads
  std::optional<std::string> version_id_marker;   // ListObjectVersions: "null" only
  // max-keys / max-uploads / max-parts: values above 1000 are lowered to 1000, as S3 does.
  int max_keys = kMaxListEntries;
  int max_uploads = kMaxListEntries;
  int max_parts = kMaxListEntries;
  int max_buckets = 0;  // ListBuckets max-buckets (1..10000); 0: all buckets, unpaginated
  bool encoding_type_url = false;  // encoding-type=url
  bool fetch_owner = false;        // V2 fetch-owner=true

  // Multipart.
  std::string upload_id;       // uploadId; non-empty for the operations that need it
  int part_number = 0;         // partNumber, 1..10000 for UploadPart(Copy); else 0
  int part_number_marker = 0;  // ListParts part-number-marker

  // CopyObject and UploadPartCopy.
  std::optional<CopySource> copy_source;
  std::optional<CopySourceRange> copy_source_range;  // UploadPartCopy only
};

// Parses `head` into a typed endpoint. Errors (each with the S3 code to answer):
//   InvalidURI        path not starting with '/', bad percent-escapes, key not UTF-8 or NUL
//   InvalidBucketName bucket name outside S3's rules (CreateBucket) or Cairn's
//   KeyTooLongError   key over 1024 bytes
//   InvalidArgument   a query parameter or copy header out of range or malformed; an
//                     UploadPart without partNumber
//   InvalidRequest    an object operation without a key (e.g. "?uploads" on the bucket root
//                     via PUT)
//   MethodNotAllowed  a method the addressed resource does not support
//   PreconditionFailed a POST to a bucket (a form upload) that is not multipart/form-data
//   NotImplemented    versionId other than "null" (Cairn keeps no versions)
S3Result<S3Request> ParseS3Request(const http::RequestHead& head,
                                   const S3AddressingOptions& options);

// S3's bucket naming rules for new buckets: 3..63 of [a-z0-9.-], starting and ending with
// a letter or digit, no "..", not an IPv4 address, none of AWS's reserved prefixes and
// suffixes ("xn--", "sthree-", "-s3alias", "--ol-s3", ...).
bool IsValidS3BucketName(std::string_view name);
// The S3 naming rule `name` breaks, in words ("it must not contain two adjacent '.'"), or
// nullopt when it follows them all.
std::optional<std::string> S3BucketNameProblem(std::string_view name);

}  // namespace cairn::s3
