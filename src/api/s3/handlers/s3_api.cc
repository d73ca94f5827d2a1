#include "api/s3/handlers/s3_api.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <set>

#include "api/common/access_log.h"
#include "api/common/download.h"
#include "api/common/error_log.h"
#include "api/common/range.h"
#include "api/common/upload_pipeline.h"
#include "api/s3/access/cors.h"
#include "api/s3/access/policy.h"
#include "api/s3/handlers/s3_access.h"
#include "api/s3/handlers/s3_failure.h"
#include "api/s3/post/form_data.h"
#include "api/s3/post/post_policy.h"
#include "api/s3/sigv4/aws_chunked.h"
#include "api/s3/sigv4/checksum.h"
#include "api/s3/sigv4/sigv4.h"
#include "api/s3/wire/s3_error.h"
#include "api/s3/wire/s3_request.h"
#include "api/s3/wire/s3_xml.h"
#include "auth/secret_box.h"
#include "core/base64.h"
#include "core/text.h"
#include "platform/clock.h"

// GCC 12 coroutine pitfalls, avoided throughout this file (see native_api.cc): lambdas
// handed to the pool are named locals, responses are built in named variables before
// co_await, and coroutine frames hold no structured bindings.

namespace cairn::api {
namespace {

// S3's largest part (UploadPart and UploadPartCopy).
constexpr uint64_t kMaxPartBytes = uint64_t{5} << 30;

namespace sig = cairn::api::s3;
namespace wire = cairn::s3;
namespace post = cairn::api::s3::post;
using http::Awaitable;
using http::Exchange;
using http::ResponseHead;

constexpr size_t kTransferBufferBytes = 256 * 1024;
constexpr size_t kMaxXmlBodyBytes = 2 * 1024 * 1024;
constexpr int64_t kKeyCacheTtlMs = 1000;
constexpr std::string_view kXmlType = "application/xml";

Failure FromS3Error(const wire::S3Error& error) {
  return {error.http_status(), std::string(error.code_name()), error.message};
}

Failure FromSigV4(const sig::SigV4Status& status) {
  return {status.http_status(), std::string(status.s3_code()), status.message()};
}

// Maps a use-case error to S3: its reason first, then its code. `not_found` names the S3
// code for a missing thing the reason does not name (an object, unless the caller knows).
Failure FromStatus(const Status& status, std::string_view not_found = "NoSuchKey") {
  const std::string& message = status.message();
  switch (status.reason()) {
    case ErrorReason::kNoSuchNamespace:
      return {404, "NoSuchBucket", message};
    case ErrorReason::kNoSuchUpload:
      return {404, "NoSuchUpload", message};
    case ErrorReason::kBadDigest:
      return {400, "BadDigest", message};
    case ErrorReason::kContentHashMismatch:
      return {400, "XAmzContentSHA256Mismatch", message};
    case ErrorReason::kBodyLengthMismatch:
      return {400, "IncompleteBody", message};
    case ErrorReason::kEntityTooSmall:
      return {400, "EntityTooSmall", message};
    case ErrorReason::kInvalidPart:
      return {400, "InvalidPart", message};
    case ErrorReason::kInvalidPartOrder:
      return {400, "InvalidPartOrder", message};
    case ErrorReason::kEmptyPartList:
      return {400, "InvalidRequest", message};
    case ErrorReason::kNotADirectory:
    case ErrorReason::kIsADirectory:
    case ErrorReason::kDirectoryNotEmpty:
    case ErrorReason::kNameTooLong:
    case ErrorReason::kTooManyLinks:
    case ErrorReason::kNoSuchAttribute:
    case ErrorReason::kNotPermitted:
    case ErrorReason::kCrossDevice:
    case ErrorReason::kFileTooLarge:
    case ErrorReason::kValueTooLarge:
    case ErrorReason::kLockConflict:
    case ErrorReason::kNone:  // the filesystem's reasons never reach S3; their code says it
      break;
  }
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
      return {400, "InvalidArgument", message};
    case StatusCode::kNotFound:
      return {404, std::string(not_found), message};
    case StatusCode::kUnauthenticated:
      return {403, "AccessDenied", message};
    case StatusCode::kPermissionDenied:
      return {403, "AccessDenied", message};
    case StatusCode::kOutOfRange:
      return {416, "InvalidRange", message};
    case StatusCode::kPayloadTooLarge:
      return {400, "EntityTooLarge", message};
    case StatusCode::kResourceExhausted:
      return {507, "InsufficientStorage", message};
    case StatusCode::kDeadlineExceeded:
      // What S3 answers when a client stops sending its body.
      return {400, "RequestTimeout", message};
    case StatusCode::kUnavailable:
      return {503, "ServiceUnavailable", message};
    case StatusCode::kAlreadyExists:
    case StatusCode::kAborted:
    case StatusCode::kFailedPrecondition:
      return {409, "OperationAborted", message};
    default:
      return {500, "InternalError", message};
  }
}

// A small request document (an XML body), or the S3 failure met while reading it.
struct SmallBody {
  std::string text;
  std::optional<Failure> failure;

  bool ok() const { return !failure.has_value(); }
  std::string& operator*() { return text; }
  std::string* operator->() { return &text; }
};

Status NoSuchBucket(const std::string& bucket) {
  return NotFoundError("the bucket '" + bucket + "' does not exist")
      .WithReason(ErrorReason::kNoSuchNamespace);
}

// A missing object in a missing bucket is reported as the bucket (S3 does the same).
Status BucketOrKeyMissing(objects::ObjectService* objects, const std::string& tenant,
                          const std::string& bucket, Status status) {
  if (status.code() == StatusCode::kNotFound && !objects->GetNamespace(tenant, bucket).ok()) {
    return NoSuchBucket(bucket);
  }
  return status;
}

std::pair<ResponseHead, std::string> RenderFailure(const Failure& failure,
                                                   const std::string& resource,
                                                   const std::string& request_id) {
  std::string body =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + EscapeXmlText(failure.code) +
      "</Code><Message>" + EscapeXmlText(failure.message) + "</Message><Resource>" +
      EscapeXmlText(resource) + "</Resource><RequestId>" + request_id + "</RequestId></Error>";
  ResponseHead head;
  head.status = failure.status;
  head.headers.emplace_back("Content-Type", std::string(kXmlType));
  head.headers.emplace_back("x-amz-request-id", request_id);
  // ServiceUnavailable (a dependency such as the metadata database is down) and SlowDown
  // are both worth retrying shortly; SDKs back off on their own, other clients read this.
  if (failure.status == 503) head.headers.emplace_back("Retry-After", "1");
  return {std::move(head), std::move(body)};
}

std::string HeaderOr(const http::RequestHead& request, std::string_view name,
                     std::string fallback = "") {
  const std::string* value = request.Header(name);
  return value ? *value : fallback;
}

std::string Quoted(const std::string& etag) { return "\"" + etag + "\""; }

std::string Unquoted(std::string etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  if (etag.rfind("W/", 0) == 0) return Unquoted(etag.substr(2));
  return etag;
}

// Whether an If-Match / If-None-Match list names `etag` ("*" names any).
bool EtagListMatches(const std::string& header, const std::string& etag) {
  for (const std::string& item : SplitCommaList(header)) {
    if (item == "*" || Unquoted(item) == etag) return true;
  }
  return false;
}

// The S3 storage classes Cairn accepts and the class each is kept in; nullopt for any
// other name (S3 answers 400 InvalidStorageClass). No header means STANDARD.
std::optional<StorageClass> StorageClassFromS3(const std::string& name) {
  if (name.empty() || name == "STANDARD" || name == "REDUCED_REDUNDANCY") return StorageClass::kHot;
  for (std::string_view cold : {"STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER",
                                "GLACIER_IR", "DEEP_ARCHIVE"}) {
    if (name == cold) return StorageClass::kCold;
  }
  return std::nullopt;
}

Failure InvalidStorageClass(const std::string& name) {
  return {400, "InvalidStorageClass",
          "The storage class you specified is not valid: '" + name.substr(0, 64) + "'"};
}

std::string S3StorageClassName(StorageClass storage_class) {
  return storage_class == StorageClass::kHot ? "STANDARD" : "STANDARD_IA";
}

// The standard headers an object keeps and returns on GET and HEAD, as S3 does.
constexpr std::pair<std::string_view, std::string_view> kStoredHeaders[] = {
    {"cache-control", "Cache-Control"},
    {"content-disposition", "Content-Disposition"},
    {"content-encoding", "Content-Encoding"},
    {"content-language", "Content-Language"},
    {"expires", "Expires"},
};

// x-amz-meta-* headers (names lower-cased by the server) -> user metadata, plus the
// standard headers the object keeps (under objects::kStoredHeaderPrefix).
std::map<std::string, std::string> UserMetadataFromHeaders(const http::RequestHead& request) {
  std::map<std::string, std::string> metadata;
  for (const auto& header : request.headers) {
    if (header.first.rfind("x-amz-meta-", 0) == 0 && header.first.size() > 11) {
      metadata[header.first.substr(11)] = header.second;
    }
  }
  for (const auto& stored : kStoredHeaders) {
    const std::string* value = request.Header(stored.first);
    if (value == nullptr) continue;
    std::string kept = *value;
    if (stored.first == "content-encoding" && kept.find("aws-chunked") != std::string::npos) {
      // "aws-chunked" names the request's framing, not the object's encoding: S3 drops it
      // and keeps the rest as given.
      const std::vector<std::string> items = SplitCommaList(kept);
      kept.clear();
      for (const std::string& item : items) {
        if (!item.empty() && item != "aws-chunked") kept += (kept.empty() ? "" : ", ") + item;
      }
    }
    if (!kept.empty())
      metadata[std::string(objects::kStoredHeaderPrefix) + std::string(stored.first)] = kept;
  }
  return metadata;
}

// Tags in user metadata <-> S3 tag sets.
std::vector<wire::Tag> TagsOf(const std::map<std::string, std::string>& metadata) {
  std::vector<wire::Tag> tags;
  const std::string prefix(objects::kTagPrefix);
  for (const auto& entry : metadata) {
    if (entry.first.rfind(prefix, 0) == 0) {
      tags.push_back({entry.first.substr(prefix.size()), entry.second});
    }
  }
  return tags;
}

std::map<std::string, std::string> WithTags(std::map<std::string, std::string> metadata,
                                            const std::vector<wire::Tag>& tags) {
  const std::string prefix(objects::kTagPrefix);
  for (auto it = metadata.begin(); it != metadata.end();) {
    it = it->first.rfind(prefix, 0) == 0 ? metadata.erase(it) : std::next(it);
  }
  for (const auto& tag : tags) metadata[prefix + tag.key] = tag.value;
  return metadata;
}

// "k1=v1&k2=v2" (x-amz-tagging) -> tags.
Result<std::vector<wire::Tag>> ParseTaggingHeader(const std::string& text) {
  ASSIGN_OR_RETURN(auto pairs, http::ParseQuery(text));
  std::vector<wire::Tag> tags;
  for (const auto& pair : pairs) tags.push_back({pair.first, pair.second});
  if (tags.size() > 10) return InvalidArgumentError("at most 10 tags per object");
  return tags;
}

http::HeaderList ObjectHeaders(const meta::ObjectRecord& object) {
  http::HeaderList headers;
  headers.emplace_back("ETag", Quoted(object.etag));
  headers.emplace_back("Last-Modified", FormatHttpDate(object.created_at_ms));
  headers.emplace_back("Accept-Ranges", "bytes");
  headers.emplace_back("Content-Type", object.content_type);
  headers.emplace_back("x-amz-storage-class", S3StorageClassName(object.storage_class));
  size_t tag_count = 0;
  const std::string stored_prefix(objects::kStoredHeaderPrefix);
  for (const auto& entry : object.user_metadata) {
    if (entry.first.rfind(objects::kTagPrefix, 0) == 0) {
      ++tag_count;
    } else if (entry.first.rfind(stored_prefix, 0) == 0) {
      for (const auto& stored : kStoredHeaders) {
        if (entry.first.compare(stored_prefix.size(), std::string::npos, stored.first) == 0) {
          headers.emplace_back(std::string(stored.second), entry.second);
        }
      }
    } else if (!objects::IsInternalMetadata(entry.first)) {
      headers.emplace_back("x-amz-meta-" + entry.first, entry.second);
    }
  }
  if (tag_count > 0) headers.emplace_back("x-amz-tagging-count", std::to_string(tag_count));
  return headers;
}

// A bucket setting Cairn does not implement, as S3 reports it on a bucket that never had it.
struct UnconfiguredSetting {
  std::string_view subresource;
  std::string_view missing_code;  // GET answers 404 with this code...
  std::string_view missing_message;
  std::string_view empty_document;  // ...or 200 with this document when S3 has a default
  bool deletable;                   // DELETE answers 204
};

constexpr std::string_view kXmlDeclaration = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

const UnconfiguredSetting* FindUnconfiguredSetting(std::string_view subresource) {
  static const UnconfiguredSetting kSettings[] = {
      {"lifecycle", "NoSuchLifecycleConfiguration", "The lifecycle configuration does not exist",
       "", true},
      {"encryption", "ServerSideEncryptionConfigurationNotFoundError",
       "The server side encryption configuration was not found (Cairn does not implement "
       "server-side encryption)",
       "", true},
      {"object-lock", "ObjectLockConfigurationNotFoundError",
       "Object Lock configuration does not exist for this bucket", "", false},
      {"replication", "ReplicationConfigurationNotFoundError",
       "The replication configuration was not found", "", true},
      {"website", "NoSuchWebsiteConfiguration",
       "The specified bucket does not have a website configuration", "", true},
      {"logging", "", "",
       "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<BucketLoggingStatus "
       "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>",
       false},
      {"notification", "", "",
       "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<NotificationConfiguration "
       "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>",
       false},
      {"accelerate", "", "",
       "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AccelerateConfiguration "
       "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>",
       false},
      {"requestPayment", "", "",
       "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<RequestPaymentConfiguration "
       "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Payer>BucketOwner</Payer>"
       "</RequestPaymentConfiguration>",
       false},
      {"versioning", "", "",
       "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<VersioningConfiguration "
       "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>",
       false},
  };
  for (const UnconfiguredSetting& setting : kSettings) {
    if (setting.subresource == subresource) return &setting;
  }
  return nullptr;
}

// Request headers that ask for a feature Cairn does not have. Never accepted and
// ignored: a client that asks for encryption, immutability or an ACL must get it or a
// clear refusal. Returns the failure to send, if any.
std::optional<Failure> RefuseUnsupportedHeaders(const http::RequestHead& request,
                                                wire::S3Operation op, const std::string& owner) {
  using Op = wire::S3Operation;
  const bool object_write = op == Op::kPutObject || op == Op::kCopyObject ||
                            op == Op::kCreateMultipartUpload || op == Op::kUploadPart ||
                            op == Op::kUploadPartCopy;
  const bool object_read = op == Op::kGetObject || op == Op::kHeadObject;
  if (const std::string* expected = request.Header("x-amz-expected-bucket-owner")) {
    if (*expected != owner) {
      return MakeFailure(403, "AccessDenied",
                         "the bucket's owner is not the expected bucket owner given in "
                         "x-amz-expected-bucket-owner");
    }
  }
  for (const auto& header : request.headers) {
    const std::string& name = header.first;  // lower-case
    const std::string& value = header.second;
    if (name.rfind("x-amz-server-side-encryption", 0) == 0) {
      if (object_read && name.rfind("x-amz-server-side-encryption-customer-", 0) == 0) {
        // What S3 answers when SSE-C parameters come with an object stored without them.
        return MakeFailure(400, "InvalidRequest",
                           "the encryption parameters are not applicable to this object "
                           "(Cairn stores no object with server-side encryption)");
      }
      if (object_write || op == Op::kCreateBucket) {
        return MakeFailure(501, "NotImplemented",
                           "Cairn does not implement server-side encryption (" + name +
                               "); the object was not stored");
      }
    }
    if (name.rfind("x-amz-copy-source-server-side-encryption-customer-", 0) == 0 &&
        (op == Op::kCopyObject || op == Op::kUploadPartCopy)) {
      return MakeFailure(400, "InvalidRequest",
                         "the copy source's encryption parameters are not applicable: "
                         "Cairn stores no object with server-side encryption");
    }
    if (name.rfind("x-amz-object-lock-", 0) == 0 && object_write) {
      // S3's answer for a bucket created without Object Lock.
      return MakeFailure(400, "InvalidRequest",
                         "Bucket is missing Object Lock Configuration (" + name +
                             "): Cairn does not implement Object Lock");
    }
    if (name == "x-amz-bucket-object-lock-enabled" && op == Op::kCreateBucket) {
      if (ToLowerAscii(value) != "false") {
        return MakeFailure(501, "NotImplemented",
                           "Cairn does not implement Object Lock; the bucket was not created");
      }
    }
    if (object_write && name == "x-amz-website-redirect-location") {
      return MakeFailure(501, "NotImplemented",
                         "Cairn does not implement website redirects "
                         "(x-amz-website-redirect-location)");
    }
  }
  return std::nullopt;
}

// A decimal header value without sign or spaces; nullopt when it is not one.
std::optional<uint64_t> ParseDecimal(std::string_view text) {
  uint64_t value = 0;
  if (text.empty() || text.size() > 19) return std::nullopt;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// The checksum a multipart upload asked for (x-amz-checksum-algorithm and -type at
// CreateMultipartUpload), kept in the upload as "<ALGORITHM>:<TYPE>".
struct UploadChecksum {
  sig::ChecksumAlgorithm algorithm = sig::ChecksumAlgorithm::kCrc32;
  bool composite = true;  // COMPOSITE (checksum of the parts' checksums) or FULL_OBJECT
};

std::optional<UploadChecksum> ParseUploadChecksum(const std::string& text) {
  const size_t colon = text.find(':');
  if (colon == std::string::npos) return std::nullopt;
  Result<sig::ChecksumAlgorithm> algorithm = sig::ParseChecksumAlgorithm(text.substr(0, colon));
  if (!algorithm.ok()) return std::nullopt;
  return UploadChecksum{*algorithm, text.substr(colon + 1) == "COMPOSITE"};
}

// "ChecksumCRC32" etc.: the XML element of an algorithm.
std::string ChecksumElement(sig::ChecksumAlgorithm algorithm) {
  return "Checksum" + std::string(sig::ChecksumAlgorithmName(algorithm));
}

// A stored objects::kChecksumField value ("x-amz-checksum-crc32:<value>") split into
// header name and value; a composite value ends in "-<parts>".
std::optional<std::pair<std::string, std::string>> SplitStoredChecksum(const std::string& text) {
  const size_t colon = text.find(':');
  if (colon == std::string::npos) return std::nullopt;
  return std::make_pair(text.substr(0, colon), text.substr(colon + 1));
}

// For a Complete of an upload with a checksum: checks the checksums the client listed
// against the parts' (InvalidPart when one differs) and returns the COMPOSITE value, the
// checksum of the parts' raw checksums in order, "-<number of parts>" (FULL_OBJECT
// uploads still get their parts checked; their value is computed over the content).
Result<std::string> CompositeChecksum(objects::MultipartService* multipart,
                                      const objects::MultipartUpload& upload,
                                      const UploadChecksum& wanted,
                                      const std::vector<wire::CompletedPart>& listed) {
  bool truncated = false;
  ASSIGN_OR_RETURN(std::vector<objects::PartInfo> parts,
                   multipart->ListParts(upload, 0, objects::kMaxPartNumber, &truncated));
  std::map<int, const objects::PartInfo*> by_number;
  for (const auto& part : parts) by_number[part.part_number] = &part;
  // As Complete counts them: a number listed twice in a row once, with its last entry.
  const std::vector<const wire::CompletedPart*> unique = objects::LastEntryPerPartNumber(listed);
  sig::Checksummer of_checksums(wanted.algorithm);
  const std::string element = ChecksumElement(wanted.algorithm);
  for (const wire::CompletedPart* entry : unique) {
    auto found = by_number.find(entry->part_number);
    if (found == by_number.end()) continue;  // Complete itself answers InvalidPart
    std::optional<std::pair<std::string, std::string>> stored =
        SplitStoredChecksum(found->second->checksum);
    if (!stored) {
      return InvalidArgumentError("part " + std::to_string(entry->part_number) + " has no " +
                                  std::string(sig::ChecksumAlgorithmName(wanted.algorithm)) +
                                  " checksum")
          .WithReason(ErrorReason::kInvalidPart);
    }
    for (const auto& given : entry->checksums) {
      if (given.first == element && given.second != stored->second) {
        return InvalidArgumentError("the " + element + " listed for part " +
                                    std::to_string(entry->part_number) +
                                    " is not the part's checksum")
            .WithReason(ErrorReason::kInvalidPart);
      }
    }
    Result<std::string> raw = Base64Decode(stored->second);
    if (!raw.ok()) return InternalError("the stored checksum of a part is not Base64");
    of_checksums.Update(*raw);
  }
  return of_checksums.FinishBase64() + "-" + std::to_string(unique.size());
}

// One part of an object for GET ?partNumber=N.
struct PartRange {
  uint64_t first = 0;
  uint64_t length = 0;
  int count = 1;  // the object's number of parts
};

// From the part layout a multipart completion records (objects::kPartLayoutField). An
// object without one is a single part, unless its ETag says it was assembled from several
// parts before layouts were recorded (kUnimplemented: the boundaries are not known).
Result<PartRange> FindPart(const meta::ObjectRecord& object, int part_number) {
  auto layout = object.user_metadata.find(std::string(objects::kPartLayoutField));
  std::vector<std::pair<uint64_t, uint64_t>> runs;  // (size, count)
  if (layout == object.user_metadata.end()) {
    const size_t dash = object.etag.rfind('-');
    if (dash != std::string::npos && object.etag.substr(dash) != "-1") {
      return FailedPreconditionError(
          "the part boundaries of this object were not recorded (it was "
          "completed by an older Cairn); read it with a Range instead");
    }
    runs.emplace_back(object.size_bytes, 1);
  } else {
    std::string_view text = layout->second;
    while (!text.empty()) {
      const size_t comma = text.find(',');
      std::string_view run = text.substr(0, comma);
      text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
      const size_t star = run.find('*');
      uint64_t size = 0, count = 0;
      if (star == std::string_view::npos ||
          std::from_chars(run.data(), run.data() + star, size).ec != std::errc() ||
          std::from_chars(run.data() + star + 1, run.data() + run.size(), count).ec !=
              std::errc()) {
        return InternalError("the part layout of " + object.key + " is damaged");
      }
      runs.emplace_back(size, count);
    }
  }
  uint64_t total_parts = 0;
  for (const auto& run : runs) total_parts += run.second;
  if (part_number < 1 || static_cast<uint64_t>(part_number) > total_parts) {
    return InvalidArgumentError("part " + std::to_string(part_number) +
                                " does not exist; the "
                                "object has " +
                                std::to_string(total_parts) + " part(s)");
  }
  PartRange range;
  range.count = static_cast<int>(total_parts);
  uint64_t index = static_cast<uint64_t>(part_number) - 1;
  for (const auto& run : runs) {
    if (index < run.second) {
      range.first += index * run.first;
      range.length = run.first;
      return range;
    }
    range.first += run.first * run.second;
    index -= run.second;
  }
  return InternalError("unreachable part layout state");
}

// The body of a listing with an optional delimiter, resuming after `cursor` (exclusive).
struct Listing {
  std::vector<meta::ObjectRecord> contents;
  std::vector<std::string> common_prefixes;
  bool truncated = false;
  std::string next_cursor;  // resume point: the last key, or a common prefix + 0xFF
  std::string last_entry;   // the last key or common prefix returned (V1 NextMarker)
};

Result<Listing> ListWithDelimiter(meta::MetaStore* store, const std::string& tenant,
                                  const std::string& bucket, const std::string& prefix,
                                  const std::string& delimiter, std::string cursor, int max_keys) {
  Listing listing;
  if (max_keys <= 0) return listing;
  // The store rolls keys up into common prefixes and seeks past each one, so a page is one
  // call whatever the number of keys under those prefixes.
  meta::ListRequest request;
  request.tenant = tenant;
  request.namespace_name = bucket;
  request.prefix = prefix;
  request.start_after = std::move(cursor);
  request.limit = static_cast<uint32_t>(std::min(max_keys, 10000));
  request.delimiter = delimiter;
  ASSIGN_OR_RETURN(meta::ListPage page, store->ListObjects(request));
  listing.truncated = page.truncated;
  // The page's last entry is the greater of its last key and its last common prefix.
  const std::string last_key = page.objects.empty() ? std::string() : page.objects.back().key;
  if (!page.common_prefixes.empty() && page.common_prefixes.back() > last_key) {
    listing.last_entry = page.common_prefixes.back();
    // 0xFF never occurs in UTF-8, so resuming there skips every key under the prefix.
    listing.next_cursor = listing.last_entry + "\xff";
  } else {
    listing.last_entry = last_key;
    listing.next_cursor = last_key;
  }
  listing.contents = std::move(page.objects);
  listing.common_prefixes = std::move(page.common_prefixes);
  return listing;
}

}  // namespace

struct S3Api::State {
  S3ApiDependencies deps;
  sig::SigningKeyCache key_cache;
  std::mutex keys_mutex;
  std::map<std::string, std::pair<meta::S3KeyRecord, int64_t>> keys;  // GUARDED_BY(keys_mutex)

  // The key record for an access key: from a short cache, else the store. A revoked
  // key's record is returned too: Authenticate decides what the caller may learn.
  Result<meta::S3KeyRecord> LookupKey(const std::string& access_key, int64_t now_ms) {
    {
      std::lock_guard<std::mutex> lock(keys_mutex);
      auto it = keys.find(access_key);
      if (it != keys.end() && now_ms - it->second.second < kKeyCacheTtlMs &&
          now_ms >= it->second.second) {
        return it->second.first;
      }
    }
    ASSIGN_OR_RETURN(meta::S3KeyRecord record, deps.objects->meta_store()->GetS3Key(access_key));
    // A secret this server cannot open is an error (500), never an unknown key.
    if (deps.secrets != nullptr) {
      ASSIGN_OR_RETURN(record.secret, deps.secrets->Open(access_key, record.secret));
    } else if (auth::IsSealedSecret(record.secret)) {
      return FailedPreconditionError("the secret of S3 key " + access_key +
                                     " is encrypted and this server has no master key");
    }
    std::lock_guard<std::mutex> lock(keys_mutex);
    if (keys.size() > 10000) keys.clear();
    keys[access_key] = {record, now_ms};
    return record;
  }
};

namespace {

// How a request body becomes the object's bytes: the part that differs between PutObject /
// UploadPart (a plain or aws-chunked body) and POST Object (the form's file part). The
// loop that reads, checks, hashes and stores is S3Call::ReceiveBody, written once.
class BodyContent {
 public:
  virtual ~BodyContent() = default;
  // Appends the content carried by `raw` to `content` (it may add nothing).
  virtual std::optional<Failure> Feed(std::string_view raw, std::string* content) = 0;
  // Checks the content received so far (`total` bytes) before its last piece is stored.
  virtual std::optional<Failure> Check(uint64_t /*total*/) { return std::nullopt; }
  // After the last raw byte: whether the body was complete and valid.
  virtual std::optional<Failure> Finish() = 0;
};

// The whole-body checksum of an upload (x-amz-checksum-*): verified against the value the
// client sent, or, when `computed`, computed and kept.
struct BodyChecksum {
  std::optional<sig::Checksummer> hasher;
  std::string value;  // the client's value; the computed one after Finish
  bool computed = false;

  std::optional<Failure> Finish() {
    if (!hasher) return std::nullopt;
    std::string received = hasher->FinishBase64();
    if (computed) {
      value = std::move(received);
    } else if (received != value) {
      return MakeFailure(400, "BadDigest",
                         "the checksum you specified did not match what was received");
    }
    return std::nullopt;
  }
};

// Per-request context and handlers.
class S3Call {
 public:
  S3Call(S3Api::State* state, Exchange& exchange)
      : state_(state), deps_(state->deps), exchange_(exchange), request_id_(RandomRequestId()) {}

  Awaitable<void> Run();
  int status() const { return status_; }
  const std::string& bucket_label() const { return bucket_; }
  // For the access log.
  const std::string& request_id() const { return request_id_; }
  std::string_view operation_name() const {
    return parsed_ ? wire::S3OperationName(request_.operation) : std::string_view();
  }
  const wire::S3Request& request() const { return request_; }
  const std::string& access_key() const { return access_key_; }

 private:
  const http::RequestHead& head() const { return exchange_.request(); }
  int64_t NowMs() const { return deps_.objects->clock()->NowMs(); }
  meta::MetaStore* store() const { return deps_.objects->meta_store(); }

  Awaitable<void> Fail(Failure failure);
  Awaitable<void> SendXml(int status, std::string body, http::HeaderList headers);
  Awaitable<void> SendEmpty(int status, http::HeaderList headers);
  // Without extra headers. Plain functions, so no temporary lives in a coroutine frame.
  Awaitable<void> SendXml(int status, std::string body) {
    return SendXml(status, std::move(body), http::HeaderList());
  }
  Awaitable<void> SendEmpty(int status) { return SendEmpty(status, http::HeaderList()); }
  // Reads a small request body (XML documents) completely.
  Awaitable<SmallBody> ReadSmallBody();
  // Streams the request body into `upload`, decoding aws-chunked framing and checking
  // signatures and checksums; commits only if all of them hold.
  // `required`: the checksum algorithm of the part's multipart upload; a part sent with
  // another is refused, one sent without gets it computed and kept.
  Awaitable<void> StreamUpload(std::shared_ptr<objects::Upload> upload, bool is_part,
                               std::optional<sig::ChecksumAlgorithm> required);
  // Reads the body, turns it into content (`content`; null: the body is the content),
  // hashes it into `checksum` and writes it into `pipeline`, two pieces in turn: the
  // pipeline hashes one while the next is received and decoded. `first` is content that
  // arrived before (a form's file bytes read with its fields). Refuses content beyond
  // `max_bytes`. On a failure the pipeline is aborted and the failure returned; on success
  // the caller commits.
  Awaitable<std::optional<Failure>> ReceiveBody(api::UploadPipeline& pipeline, BodyContent* content,
                                                std::shared_ptr<std::string> first,
                                                BodyChecksum& checksum, uint64_t max_bytes);
  Awaitable<Result<bool>> BucketExists();

  Awaitable<void> Authenticate(bool* ok);
  // Finds the bucket's owner (the caller's tenant, another tenant for a bucket shared
  // through an ACL or policy, or the owner of the name for an anonymous request) and its
  // settings; then decides whether the caller may do this. Sends the failure otherwise.
  Awaitable<void> ResolveBucket(bool* ok);
  std::optional<Failure> Authorize();
  // Whether the bucket takes the ACL a write asks for: not with object ownership
  // BucketOwnerEnforced (ACLs disabled) unless it is private, and not a public one under a
  // public access block that blocks public ACLs. PutObject, CopyObject, multipart, the POST
  // form and CreateBucket all ask the same.
  std::optional<Failure> RefuseWriteAcl(const wire::AclGrants& acl) const;
  // For operations on an object that a non-owner asks for: the object's ACL decides.
  std::optional<Failure> ObjectAccessFailure(const meta::ObjectRecord& object) const;
  // A missing object answers 404 only to a caller who may list the bucket (S3), else 403.
  Failure MissingObject(Failure not_found) const;
  // The bucket policy's decision on this request; `object` adds s3:ExistingObjectTag/*.
  // `key` overrides the request's key (each key of DeleteObjects).
  wire::Decision EvaluatePolicy(const meta::ObjectRecord* object, const std::string* key) const;
  Awaitable<void> BucketPolicy();
  Awaitable<void> BucketCors();
  Awaitable<void> CorsPreflight();
  // The ACL a write asked for (x-amz-acl, x-amz-grant-*) applied to new object metadata.
  void ApplyWriteAcl(std::map<std::string, std::string>* metadata) const;
  // Stores (or removes) one bucket setting of the bucket's owner.
  Awaitable<Status> StoreSetting(std::string name, std::optional<std::string> value);
  // The request's object, once the caller may see it; sends the failure otherwise.
  Awaitable<std::optional<meta::ObjectRecord>> StatObject();
  Awaitable<void> BucketAcl();
  Awaitable<void> ObjectAcl();
  Awaitable<void> PublicAccessBlockSetting();
  Awaitable<void> OwnershipControls();
  Awaitable<void> Dispatch();
  Awaitable<void> ListBuckets();
  Awaitable<void> CreateBucket();
  Awaitable<void> HeadBucket();
  Awaitable<void> DeleteBucket();
  Awaitable<void> GetBucketLocation();
  Awaitable<void> ListObjects(bool v2);
  Awaitable<void> PutObject();
  Awaitable<void> CopyObject();
  Awaitable<void> GetObject(bool head_only);
  Awaitable<void> DeleteObject();
  Awaitable<void> DeleteObjects();
  Awaitable<void> CreateMultipartUpload();
  Awaitable<void> UploadPart(bool copy);
  Awaitable<void> CompleteMultipartUpload();
  Awaitable<void> AbortMultipartUpload();
  Awaitable<void> ListParts();
  Awaitable<void> ListMultipartUploads();
  Awaitable<void> Tagging();
  Awaitable<void> GetObjectAttributes();
  // Get/Put/DeleteBucketTagging, kept as the bucket's "tagging" setting (the tag set as
  // S3 renders it). The bucket is known to exist.
  Awaitable<void> BucketTagging();
  // POST Object, an HTML form upload (see PostObject's comment).
  Awaitable<void> PostObject();
  Awaitable<void> AuthenticatePostForm(const post::PostCredentials& credentials, bool* ok);
  Awaitable<void> StorePostFile(post::FormDataParser& parser, const post::FormValues& values,
                                const std::string& key, const post::PostPolicy& policy,
                                std::shared_ptr<std::string> first_bytes);
  Awaitable<void> NotImplemented();
  // Resolves the copy source (same tenant) or sends the error; nullopt on failure.
  Awaitable<std::optional<meta::ObjectRecord>> CopySource();
  Awaitable<std::optional<objects::MultipartUpload>> FindUpload();

  S3Api::State* state_;
  const S3ApiDependencies& deps_;
  Exchange& exchange_;
  std::string request_id_;
  wire::S3Request request_;
  sig::VerifiedRequest verified_;
  std::string tenant_;  // the bucket's owner, whose namespace the request works in
  // The caller's own tenant; nullopt for an anonymous request.
  std::optional<std::string> requester_;
  std::map<std::string, std::string> settings_;  // of the bucket, once resolved
  bool owner_request_ = true;                    // the caller owns the bucket
  uint8_t object_permission_ = 0;  // kAcl* bits the object's ACL must grant (non-owners)
  bool may_list_ = true;           // a non-owner may list the bucket (404 vs 403)
  bool may_delete_ = false;        // a non-owner's DeleteObjects: the bucket ACL grants WRITE
  std::optional<wire::AclGrants> write_acl_;  // asked for by a write
  std::optional<wire::BucketPolicy> policy_;  // the bucket's, once resolved
  std::string policy_action_;                 // what this request is, in policy terms
  bool policy_restricted_ = false;            // RestrictPublicBuckets with a public policy
  http::HeaderList cors_headers_;             // Access-Control-* for a request with an Origin
  meta::Scope scope_ = meta::Scope::kRead;
  std::string bucket_;
  int status_ = 0;
  bool parsed_ = false;     // request_ holds the parsed request
  std::string access_key_;  // of a key that exists, once its request was checked
};

Awaitable<void> S3Call::Fail(Failure failure) {
  std::pair<ResponseHead, std::string> rendered =
      RenderFailure(failure, request_.resource, request_id_);
  status_ = failure.status;
  for (const auto& header : cors_headers_) rendered.first.headers.push_back(header);
  LogServerError("s3", failure.status, failure.code, failure.message);
  if (head().method == "HEAD") rendered.second.clear();
  (void)co_await exchange_.Respond(std::move(rendered.first), std::move(rendered.second));
}

Awaitable<void> S3Call::SendXml(int status, std::string body, http::HeaderList headers) {
  ResponseHead response;
  response.status = status;
  response.headers = std::move(headers);
  response.headers.emplace_back("Content-Type", std::string(kXmlType));
  for (const auto& header : cors_headers_) response.headers.push_back(header);
  response.headers.emplace_back("x-amz-request-id", request_id_);
  status_ = status;
  (void)co_await exchange_.Respond(std::move(response), std::move(body));
}

Awaitable<void> S3Call::SendEmpty(int status, http::HeaderList headers) {
  ResponseHead response;
  response.status = status;
  response.headers = std::move(headers);
  response.headers.emplace_back("x-amz-request-id", request_id_);
  for (const auto& header : cors_headers_) response.headers.push_back(header);
  status_ = status;
  (void)co_await exchange_.Respond(std::move(response), "");
}

Awaitable<SmallBody> S3Call::ReadSmallBody() {
  SmallBody read;
  std::string& body = read.text;
  std::unique_ptr<char[]> buffer(new char[64 * 1024]);
  for (;;) {
    Result<size_t> got = co_await exchange_.ReadBody(buffer.get(), 64 * 1024);
    if (!got.ok()) {
      read.failure = FromStatus(got.status());
      co_return read;
    }
    if (*got == 0) break;
    body.append(buffer.get(), *got);
    if (body.size() > kMaxXmlBodyBytes) {
      read.failure = FromStatus(PayloadTooLargeError("request document is larger than 2 MiB"));
      co_return read;
    }
  }
  if (verified_.payload_mode == sig::PayloadMode::kSha256) {
    sig::SigV4Status checked = sig::CheckPayloadSha256(verified_, Sha256Of(body));
    if (!checked.ok()) {
      read.failure = FromSigV4(checked);
      co_return read;
    }
  } else if (sig::IsStreaming(verified_.payload_mode)) {
    auto options = sig::AwsChunkedOptionsFor(verified_);
    if (!options.ok()) {
      read.failure = FromSigV4(options.status());
      co_return read;
    }
    sig::AwsChunkedDecoder decoder(*options);
    std::string decoded;
    sig::SigV4Status fed = decoder.Feed(body, &decoded);
    if (fed.ok()) fed = decoder.Finish();
    if (!fed.ok()) {
      read.failure = FromSigV4(fed);
      co_return read;
    }
    body = std::move(decoded);
  }
  co_return read;
}

Awaitable<Result<bool>> S3Call::BucketExists() {
  auto* objects = deps_.objects;
  std::string tenant = tenant_, bucket = request_.bucket;
  auto work = [objects, tenant, bucket]() -> Result<bool> {
    auto found = objects->GetNamespace(tenant, bucket);
    if (found.ok()) return true;
    if (found.status().code() == StatusCode::kNotFound ||
        found.status().code() == StatusCode::kInvalidArgument) {
      return false;
    }
    return found.status();
  };
  co_return co_await deps_.pool->Run(std::move(work));
}

Awaitable<void> S3Call::Authenticate(bool* ok) {
  *ok = false;
  sig::SigningRequest signing;
  signing.method = head().method;
  signing.raw_path = head().path;
  signing.headers = head().headers;
  signing.now_ms = NowMs();
  if (request_.virtual_hosted) signing.virtual_host_bucket = request_.bucket;  // SigV2 signs it
  auto query = sig::ParseRawQuery(head().query);
  if (!query.ok())
    co_return co_await Fail(MakeFailure(400, "InvalidURI", query.status().message()));
  signing.query = std::move(query).value();
  {
    auto kind = sig::DetectAuthKind(signing);
    // A CORS preflight never carries credentials (a browser sends it before the request
    // it asks about, presigned or not): the bucket's CORS rules alone answer it.
    if (head().method == "OPTIONS" || (kind.ok() && *kind == sig::AuthKind::kAnonymous)) {
      // No credentials: the bucket's ACL or policy decides (ResolveBucket); the body is
      // unsigned, so only Content-MD5 and checksums can vouch for it.
      verified_.kind = sig::AuthKind::kAnonymous;
      verified_.payload_mode = sig::PayloadMode::kUnsigned;
      scope_ = meta::Scope::kWrite;
      *ok = true;
      co_return;
    }
  }

  S3Api::State* state = state_;
  auto verify_work = [state, signing]()
      -> std::pair<sig::SigV4Result<sig::VerifiedRequest>, std::optional<meta::S3KeyRecord>> {
    std::optional<meta::S3KeyRecord> found;
    sig::SecretLookup lookup =
        [state, &found, now = signing.now_ms](std::string_view access_key) -> Result<std::string> {
      auto record = state->LookupKey(std::string(access_key), now);
      if (!record.ok()) return record.status();
      found = *record;
      return record->secret;
    };
    sig::VerifyOptions options;
    options.key_cache = &state->key_cache;
    auto verified = sig::VerifyRequest(signing, lookup, options);
    // A revoked key is reported as revoked only to a caller whose request its secret
    // signs: that caller held the key and learns nothing new. Any other request naming it
    // gets the answer an unknown access key gets, so probing access key ids tells a caller
    // no more about revoked keys than about keys that never existed.
    if (!verified.ok() && found && found->revoked) {
      verified = sig::SigV4Status(sig::SigV4Error::kInvalidAccessKeyId,
                                  "The AWS access key Id you provided does not exist in our "
                                  "records.");
    }
    return {std::move(verified), std::move(found)};
  };
  auto outcome = co_await deps_.pool->Run(std::move(verify_work));
  if (outcome.second) access_key_ = outcome.second->access_key;
  if (!outcome.first.ok()) co_return co_await Fail(FromSigV4(outcome.first.status()));
  if (!outcome.second || outcome.second->tenants.empty()) {
    co_return co_await Fail(MakeFailure(403, "InvalidAccessKeyId", "unknown access key"));
  }
  if (outcome.second->revoked) {
    // AWS answers a deactivated key with InvalidAccessKeyId; the message says why.
    co_return co_await Fail(MakeFailure(403, "InvalidAccessKeyId",
                                        "The AWS access key Id you provided is inactive: "
                                        "access key " +
                                            outcome.second->access_key + " was revoked"));
  }
  verified_ = std::move(outcome.first).value();
  const meta::S3KeyRecord& key = *outcome.second;
  tenant_ = key.tenants.front();
  requester_ = tenant_;
  scope_ = key.scope;
  *ok = true;
}

namespace {

struct BucketOwner {
  std::string owner;  // empty: no tenant may be asked (anonymous: no such bucket)
  std::map<std::string, std::string> settings;
  bool ambiguous = false;  // several tenants hold the name explicitly
};

// Whose bucket `bucket` is for this caller. A caller's own namespace (explicit, or implied
// by objects) always wins; otherwise the one tenant that created the name explicitly.
Result<BucketOwner> FindBucketOwner(meta::MetaStore* store, objects::ObjectService* objects,
                                    const std::optional<std::string>& requester,
                                    const std::string& bucket) {
  BucketOwner found;
  if (requester) {
    ASSIGN_OR_RETURN(found.settings, store->GetNamespaceSettings(*requester, bucket));
    found.owner = *requester;
    if (!found.settings.empty()) return found;  // settings imply the caller's own row
  }
  ASSIGN_OR_RETURN(std::vector<std::string> owners, store->NamespaceOwners(bucket));
  if (requester) {
    if (owners.empty() || std::find(owners.begin(), owners.end(), *requester) != owners.end()) {
      return found;
    }
    if (objects->GetNamespace(*requester, bucket).ok()) return found;  // implied, own
  }
  if (owners.empty()) {
    found.owner.clear();
    return found;
  }
  if (owners.size() > 1) {
    found.ambiguous = true;
    return found;
  }
  found.owner = owners.front();
  ASSIGN_OR_RETURN(found.settings, store->GetNamespaceSettings(found.owner, bucket));
  return found;
}

}  // namespace

Awaitable<void> S3Call::ResolveBucket(bool* ok) {
  *ok = false;
  using Op = wire::S3Operation;
  const Op op = request_.operation;
  const bool anonymous = !requester_.has_value();
  if (request_.bucket.empty() || op == Op::kListBuckets || op == Op::kCreateBucket) {
    if (anonymous) {
      co_return co_await Fail(
          MakeFailure(403, "AccessDenied", "anonymous requests may not list or create buckets"));
    }
  } else {
    meta::MetaStore* meta_store = store();
    auto* objects = deps_.objects;
    std::optional<std::string> requester = requester_;
    std::string bucket = request_.bucket;
    auto work = [meta_store, objects, requester, bucket]() {
      return FindBucketOwner(meta_store, objects, requester, bucket);
    };
    Result<BucketOwner> found = co_await deps_.pool->Run(std::move(work));
    if (!found.ok()) co_return co_await Fail(FromStatus(found.status()));
    if (found->ambiguous) {
      co_return co_await Fail(
          MakeFailure(403, "AccessDenied", "more than one tenant holds a bucket of this name"));
    }
    if (found->owner.empty()) {
      co_return co_await Fail(MakeFailure(404, "NoSuchBucket", "the bucket does not exist"));
    }
    tenant_ = found->owner;
    settings_ = std::move(found->settings);
    owner_request_ = requester_ == tenant_;
    auto cors = settings_.find(std::string(kCorsSetting));
    const std::string* origin = head().Header("origin");
    if (cors != settings_.end() && origin != nullptr && head().method != "OPTIONS") {
      Result<wire::CorsConfiguration> config = wire::CorsConfiguration::Parse(cors->second);
      if (config.ok()) {
        const std::string* asked = head().Header("access-control-request-method");
        wire::CorsHeaders headers = config->ResponseHeaders(
            *origin, head().method, asked ? std::optional<std::string_view>(*asked) : std::nullopt);
        cors_headers_.assign(headers.begin(), headers.end());
      }
    }
  }
  // Requests are counted against the tenant whose data they reach.
  const int64_t retry_after = deps_.rate_limiter->Acquire(tenant_, NowMs());
  if (retry_after > 0) {
    metrics::Labels labels;
    labels.emplace_back("tenant", tenant_);
    deps_.metrics->Increment("cairn_throttled_requests_total", labels);
    co_return co_await Fail(
        MakeFailure(503, "SlowDown", "request rate limit exceeded for this tenant"));
  }
  if (std::optional<Failure> denied = Authorize()) co_return co_await Fail(std::move(*denied));
  *ok = true;
}

std::optional<Failure> S3Call::RefuseWriteAcl(const wire::AclGrants& acl) const {
  if (acl == wire::AclGrants{}) return std::nullopt;  // private: always allowed
  auto ownership = settings_.find(std::string(kOwnershipSetting));
  if (ownership != settings_.end() && ownership->second == "BucketOwnerEnforced") {
    return MakeFailure(400, "AccessControlListNotSupported",
                       "The bucket does not allow ACLs (object ownership BucketOwnerEnforced)");
  }
  auto block = settings_.find(std::string(kPublicAccessBlockSetting));
  if (block != settings_.end() && IsPublicAcl(acl)) {
    auto parsed = wire::ParsePublicAccessBlock(block->second, kMaxXmlBodyBytes);
    if (parsed.ok() && parsed->block_public_acls) {
      return MakeFailure(403, "AccessDenied",
                         "the bucket's public access block forbids public ACLs");
    }
  }
  return std::nullopt;
}

std::optional<Failure> S3Call::Authorize() {
  using Op = wire::S3Operation;
  const Op op = request_.operation;
  const bool anonymous = !requester_.has_value();
  auto setting = [this](std::string_view name) -> const std::string* {
    auto it = settings_.find(std::string(name));
    return it == settings_.end() ? nullptr : &it->second;
  };
  wire::PublicAccessBlock block;
  if (const std::string* stored = setting(kPublicAccessBlockSetting)) {
    auto parsed = wire::ParsePublicAccessBlock(*stored, kMaxXmlBodyBytes);
    if (parsed.ok()) block = *parsed;
  }
  const std::string* ownership = setting(kOwnershipSetting);
  const bool acls_disabled = ownership != nullptr && *ownership == "BucketOwnerEnforced";

  // The ACL a write asks for: validated before anything is stored.
  const bool acl_write = op == Op::kPutObject || op == Op::kCopyObject ||
                         op == Op::kCreateMultipartUpload || op == Op::kCreateBucket;
  if (acl_write) {
    auto asked = AclFromHeaders(head(), tenant_);
    if (asked) {
      if (auto* failure = std::get_if<Failure>(&*asked)) return *failure;
      write_acl_ = std::get<wire::AclGrants>(*asked);
      if (auto refused = RefuseWriteAcl(*write_acl_)) return refused;
    }
  }
  if (request_.bucket.empty() || op == Op::kListBuckets || op == Op::kCreateBucket) {
    return std::nullopt;
  }
  // A CORS preflight carries no credentials by design; the CORS rules decide.
  if (head().method == "OPTIONS") return std::nullopt;

  const AccessNeed need = AccessFor(op, request_.unsupported, head().method, !request_.key.empty());
  policy_action_ = need.action;
  // Decided later, with what only the handler knows: an object's tags (and its ACL), or
  // each key of a multi-object delete.
  const bool on_object = need.target == AccessTarget::kObjectAcl;
  const bool per_key = op == Op::kDeleteObjects;
  wire::Decision decision = wire::Decision::kNone;
  if (const std::string* stored = setting(kPolicySetting)) {
    Result<wire::BucketPolicy> parsed = wire::BucketPolicy::Parse(*stored, request_.bucket);
    if (parsed.ok()) {
      policy_ = std::move(parsed).value();
      policy_restricted_ = block.restrict_public_buckets && policy_->IsPublic();
      if (!on_object && !per_key) decision = EvaluatePolicy(nullptr, nullptr);
    } else if (!owner_request_) {
      return MakeFailure(403, "AccessDenied", "the bucket policy cannot be read");
    }
  }
  const bool policy_call = request_.unsupported == "policy";
  if (decision == wire::Decision::kDeny && !(owner_request_ && policy_call)) {
    // An explicit Deny binds the owner too, except for the calls that mend the policy.
    return MakeFailure(403, "AccessDenied",
                       "Access Denied (explicitly denied by the bucket policy)");
  }
  const bool ignore_acls = acls_disabled || block.ignore_public_acls;
  wire::AclGrants bucket_acl;
  if (const std::string* stored = setting(kAclSetting)) bucket_acl = ParseStoredAcl(*stored);
  if (owner_request_) {
    if (on_object && policy_) object_permission_ = need.permission;  // a Deny may still apply
    return std::nullopt;
  }
  if (policy_call) return MakeFailure(403, "AccessDenied", "only the bucket's owner may do this");
  may_list_ = AclAllows(bucket_acl, !anonymous, wire::kAclRead, ignore_acls);
  if (!may_list_ && policy_ && !policy_restricted_) {
    wire::PolicyRequest list;
    list.action = "s3:ListBucket";
    list.resource = "arn:aws:s3:::" + request_.bucket;
    list.account = requester_;
    // As if the caller listed the key itself: a grant limited by s3:prefix covers it.
    wire::ConditionContext context;
    context.Set("s3:prefix", request_.key);
    list.conditions = context.AsLookup();
    may_list_ = policy_->Evaluate(list) == wire::Decision::kAllow;
  }
  if (on_object) {
    object_permission_ = need.permission;
    return std::nullopt;
  }
  if (per_key) {
    may_delete_ = AclAllows(bucket_acl, !anonymous, wire::kAclWrite, ignore_acls);
    if (!may_delete_ && !policy_) return MakeFailure(403, "AccessDenied", "Access Denied");
    return std::nullopt;
  }
  if (decision == wire::Decision::kAllow && !policy_restricted_) return std::nullopt;
  auto denied = [] { return MakeFailure(403, "AccessDenied", "Access Denied"); };
  switch (need.target) {
    case AccessTarget::kOwnerOnly:
      return denied();
    case AccessTarget::kBucketAcl:
      if (!AclAllows(bucket_acl, !anonymous, need.permission, ignore_acls)) return denied();
      return std::nullopt;
    case AccessTarget::kObjectAcl:
      break;
  }
  return denied();
}

wire::Decision S3Call::EvaluatePolicy(const meta::ObjectRecord* object,
                                      const std::string* key) const {
  if (!policy_ || policy_action_.empty()) return wire::Decision::kNone;
  wire::ConditionContext context;
  std::string ip = head().peer;
  if (!ip.empty() && ip.front() == '[') {
    ip = ip.substr(1, ip.find(']') == std::string::npos ? std::string::npos : ip.find(']') - 1);
  } else if (std::count(ip.begin(), ip.end(), ':') == 1) {
    ip = ip.substr(0, ip.find(':'));
  }
  context.Set("aws:SourceIp", ip);
  context.Set("aws:SecureTransport", std::string("false"));
  const TimestampMs now = NowMs();
  context.Set("aws:EpochTime", std::to_string(now / 1000));
  context.Set("aws:CurrentTime", FormatTimestamp(now));
  if (requester_) context.Set("aws:PrincipalAccount", *requester_);
  for (const auto& [header, key] :
       {std::pair<std::string_view, std::string_view>{"user-agent", "aws:UserAgent"},
        {"referer", "aws:Referer"},
        {"x-amz-acl", "s3:x-amz-acl"},
        {"x-amz-copy-source", "s3:x-amz-copy-source"},
        {"x-amz-metadata-directive", "s3:x-amz-metadata-directive"},
        {"x-amz-server-side-encryption", "s3:x-amz-server-side-encryption"},
        {"x-amz-storage-class", "s3:x-amz-storage-class"},
        {"x-amz-content-sha256", "s3:x-amz-content-sha256"}}) {
    if (const std::string* value = head().Header(header)) context.Set(key, *value);
  }
  auto query = http::ParseQuery(head().query);
  if (query.ok()) {
    for (const auto& [name, value] : *query) {
      if (name == "prefix" || name == "delimiter" || name == "max-keys") {
        context.Set("s3:" + name, value);
      }
    }
  }
  if (const std::string* tagging = head().Header("x-amz-tagging")) {
    auto tags = ParseTaggingHeader(*tagging);
    if (tags.ok()) {
      std::vector<std::string> keys;
      for (const wire::Tag& tag : *tags) {
        context.Set("s3:RequestObjectTag/" + tag.key, tag.value);
        keys.push_back(tag.key);
      }
      context.Set("s3:RequestObjectTagKeys", std::move(keys));
    }
  }
  if (object != nullptr) {
    for (const wire::Tag& tag : TagsOf(object->user_metadata)) {
      context.Set("s3:ExistingObjectTag/" + tag.key, tag.value);
    }
  }
  context.Set("s3:authType",
              std::string(sig::IsPresigned(verified_.kind) ? "REST-QUERY-STRING" : "REST-HEADER"));
  wire::PolicyRequest request;
  request.action = policy_action_;
  const std::string& resource_key = key != nullptr ? *key : request_.key;
  request.resource =
      "arn:aws:s3:::" + request_.bucket + (resource_key.empty() ? "" : "/" + resource_key);
  request.account = requester_;
  request.conditions = context.AsLookup();
  return policy_->Evaluate(request);
}

std::optional<Failure> S3Call::ObjectAccessFailure(const meta::ObjectRecord& object) const {
  if (object_permission_ == 0) return std::nullopt;
  if (policy_) {
    // Now with the object's tags (s3:ExistingObjectTag conditions).
    const wire::Decision decision = EvaluatePolicy(&object, nullptr);
    if (decision == wire::Decision::kDeny) return MakeFailure(403, "AccessDenied", "Access Denied");
    if (owner_request_) return std::nullopt;
    if (decision == wire::Decision::kAllow && !policy_restricted_) return std::nullopt;
  }
  if (owner_request_) return std::nullopt;
  wire::AclGrants acl;
  auto stored = object.user_metadata.find(std::string(objects::kAclField));
  if (stored != object.user_metadata.end()) acl = ParseStoredAcl(stored->second);
  auto ownership = settings_.find(std::string(kOwnershipSetting));
  const bool acls_disabled =
      ownership != settings_.end() && ownership->second == "BucketOwnerEnforced";
  bool ignore_public = false;
  auto block = settings_.find(std::string(kPublicAccessBlockSetting));
  if (block != settings_.end()) {
    auto parsed = wire::ParsePublicAccessBlock(block->second, kMaxXmlBodyBytes);
    ignore_public = parsed.ok() && parsed->ignore_public_acls;
  }
  if (AclAllows(acl, requester_.has_value(), object_permission_, acls_disabled || ignore_public)) {
    return std::nullopt;
  }
  return MakeFailure(403, "AccessDenied", "Access Denied");
}

Failure S3Call::MissingObject(Failure not_found) const {
  if (object_permission_ != 0 && !may_list_) {
    return MakeFailure(403, "AccessDenied", "Access Denied");
  }
  return not_found;
}

void S3Call::ApplyWriteAcl(std::map<std::string, std::string>* metadata) const {
  metadata->erase(std::string(objects::kAclField));
  if (write_acl_ && *write_acl_ != wire::AclGrants{}) {
    (*metadata)[std::string(objects::kAclField)] = SerializeAcl(*write_acl_);
  }
}

Awaitable<void> S3Call::Run() {
  wire::S3AddressingOptions addressing;
  addressing.virtual_host_bases = deps_.virtual_host_bases;
  wire::S3Result<wire::S3Request> parsed = wire::ParseS3Request(head(), addressing);
  if (!parsed.ok()) {
    request_.resource = head().path.substr(0, 1024);
    co_return co_await Fail(FromS3Error(parsed.error()));
  }
  request_ = std::move(parsed).value();
  parsed_ = true;
  if (request_.operation == wire::S3Operation::kPostObject) {
    // A form upload carries its credentials in the form, not in the request's headers.
    if (ValidateName("bucket", request_.bucket).ok()) bucket_ = request_.bucket;
    co_return co_await PostObject();
  }
  bool authenticated = false;
  co_await Authenticate(&authenticated);
  if (!authenticated) co_return;
  bool allowed = false;
  co_await ResolveBucket(&allowed);
  if (!allowed) co_return;
  if (ValidateName("bucket", request_.bucket).ok()) bucket_ = request_.bucket;
  co_await Dispatch();
}

Awaitable<void> S3Call::Dispatch() {
  using Op = wire::S3Operation;
  const Op op = request_.operation;
  const bool writes = op == Op::kCreateBucket || op == Op::kDeleteBucket || op == Op::kPutObject ||
                      op == Op::kCopyObject || op == Op::kDeleteObject ||
                      op == Op::kDeleteObjects || op == Op::kCreateMultipartUpload ||
                      op == Op::kUploadPart || op == Op::kUploadPartCopy ||
                      op == Op::kCompleteMultipartUpload || op == Op::kAbortMultipartUpload ||
                      op == Op::kPutObjectTagging || op == Op::kDeleteObjectTagging ||
                      (op == Op::kNotImplemented && head().method != "GET" &&
                       head().method != "HEAD" && head().method != "OPTIONS");
  const meta::Scope needed = writes ? meta::Scope::kWrite : meta::Scope::kRead;
  if (static_cast<int>(scope_) < static_cast<int>(needed)) {
    co_return co_await Fail(MakeFailure(403, "AccessDenied", "this access key may not write"));
  }
  std::optional<Failure> refused = RefuseUnsupportedHeaders(head(), op, tenant_);
  if (refused) co_return co_await Fail(std::move(*refused));
  if ((op == Op::kPutObject || op == Op::kUploadPart) && !head().chunked &&
      !head().content_length) {
    // Without a length or chunked framing an HTTP/1.1 body is empty; S3 refuses rather
    // than store an empty object the client did not mean.
    co_return co_await Fail(MakeFailure(411, "MissingContentLength",
                                        "You must provide the Content-Length HTTP header"));
  }
  switch (op) {
    case Op::kListBuckets:
      co_return co_await ListBuckets();
    case Op::kCreateBucket:
      co_return co_await CreateBucket();
    case Op::kHeadBucket:
      co_return co_await HeadBucket();
    case Op::kDeleteBucket:
      co_return co_await DeleteBucket();
    case Op::kGetBucketLocation:
      co_return co_await GetBucketLocation();
    case Op::kListObjects:
      co_return co_await ListObjects(false);
    case Op::kListObjectsV2:
      co_return co_await ListObjects(true);
    case Op::kPutObject:
      co_return co_await PutObject();
    case Op::kCopyObject:
      co_return co_await CopyObject();
    case Op::kGetObject:
      co_return co_await GetObject(false);
    case Op::kHeadObject:
      co_return co_await GetObject(true);
    case Op::kDeleteObject:
      co_return co_await DeleteObject();
    case Op::kDeleteObjects:
      co_return co_await DeleteObjects();
    case Op::kCreateMultipartUpload:
      co_return co_await CreateMultipartUpload();
    case Op::kUploadPart:
      co_return co_await UploadPart(false);
    case Op::kUploadPartCopy:
      co_return co_await UploadPart(true);
    case Op::kCompleteMultipartUpload:
      co_return co_await CompleteMultipartUpload();
    case Op::kAbortMultipartUpload:
      co_return co_await AbortMultipartUpload();
    case Op::kListParts:
      co_return co_await ListParts();
    case Op::kListMultipartUploads:
      co_return co_await ListMultipartUploads();
    case Op::kListObjectVersions:
      co_return co_await ListObjects(false);
    case Op::kGetObjectTagging:
    case Op::kPutObjectTagging:
    case Op::kDeleteObjectTagging:
      co_return co_await Tagging();
    case Op::kGetObjectAttributes:
      co_return co_await GetObjectAttributes();
    case Op::kPostObject:
      co_return co_await PostObject();
    case Op::kNotImplemented:
      co_return co_await NotImplemented();
  }
  co_await Fail(MakeFailure(501, "NotImplemented", "operation not implemented"));
}

Awaitable<void> S3Call::ListBuckets() {
  auto* objects = deps_.objects;
  std::string tenant = tenant_;
  auto work = [objects, tenant]() { return objects->ListNamespaces(tenant); };
  Result<std::vector<meta::NamespaceRecord>> names = co_await deps_.pool->Run(std::move(work));
  if (!names.ok()) co_return co_await Fail(FromStatus(names.status()));
  wire::ListAllMyBucketsResult result;
  result.owner = wire::Owner{tenant_, tenant_};
  result.prefix = request_.prefix;
  // Pages in name order: the continuation token is the last name of the previous page.
  std::string after;
  if (request_.continuation_token) {
    auto decoded = Base64Decode(*request_.continuation_token, kBase64Url);
    if (!decoded.ok()) {
      co_return co_await Fail(
          MakeFailure(400, "InvalidArgument", "the continuation token is not valid"));
    }
    after = *decoded;
  }
  const std::string prefix = request_.prefix.value_or("");
  for (const auto& name : *names) {
    if (name.name.rfind(prefix, 0) != 0 || (!after.empty() && name.name <= after)) continue;
    if (request_.max_buckets > 0 &&
        result.buckets.size() == static_cast<size_t>(request_.max_buckets)) {
      result.continuation_token = Base64Encode(result.buckets.back().name, kBase64Url);
      break;
    }
    result.buckets.push_back({name.name, name.created_at_ms});
  }
  std::string document = wire::RenderListAllMyBuckets(result);
  co_await SendXml(200, std::move(document));
}

Awaitable<void> S3Call::CreateBucket() {
  SmallBody body = co_await ReadSmallBody();
  if (!body.ok()) co_return co_await Fail(*body.failure);
  if (!body->empty()) {
    auto config = wire::ParseCreateBucketConfiguration(*body, kMaxXmlBodyBytes);
    if (!config.ok()) co_return co_await Fail(FromS3Error(config.error()));
  }
  std::optional<std::string> ownership;
  if (const std::string* asked = head().Header("x-amz-object-ownership")) {
    if (*asked != "BucketOwnerEnforced") {
      co_return co_await Fail(MakeFailure(
          501, "NotImplemented",
          "Cairn supports object ownership 'BucketOwnerEnforced' only (the bucket's owner owns "
          "every object), not '" +
              asked->substr(0, 64) + "'"));
    }
    if (write_acl_ && *write_acl_ != wire::AclGrants{}) {
      co_return co_await Fail(
          MakeFailure(400, "InvalidBucketAclWithObjectOwnership",
                      "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced "
                      "setting"));
    }
    ownership = *asked;
  }
  auto* objects = deps_.objects;
  std::string tenant = tenant_, bucket = request_.bucket;
  auto work = [objects, tenant, bucket]() { return objects->CreateNamespace(tenant, bucket); };
  Status created = co_await deps_.pool->Run(std::move(work));
  if (created.code() == StatusCode::kPermissionDenied) {
    co_return co_await Fail(MakeFailure(
        409, "BucketAlreadyExists",
        "The requested bucket name is not available. The bucket namespace is shared by all "
        "users of the system. Please select a different name and try again."));
  }
  if (created.code() == StatusCode::kAlreadyExists && (write_acl_ || ownership)) {
    // Settings change through their own calls (PutBucketAcl, ...), never a re-create.
    co_return co_await Fail(
        MakeFailure(409, "BucketAlreadyExists",
                    "the bucket exists; change its ACL or ownership with PutBucketAcl or "
                    "PutBucketOwnershipControls"));
  }
  if (created.code() == StatusCode::kAlreadyExists && deps_.region == "us-east-1") {
    // us-east-1 answers a repeated CreateBucket of one's own bucket with success (and
    // changes nothing); every other region with BucketAlreadyOwnedByYou.
    http::HeaderList again;
    again.emplace_back("Location", "/" + request_.bucket);
    co_return co_await SendEmpty(200, std::move(again));
  }
  if (created.code() == StatusCode::kAlreadyExists) {
    co_return co_await Fail(
        MakeFailure(409, "BucketAlreadyOwnedByYou",
                    "your previous request to create the named bucket succeeded"));
  }
  if (!created.ok()) co_return co_await Fail(FromStatus(created));
  // A crash between the two commits leaves the bucket private: never more open than asked.
  if (write_acl_ && *write_acl_ != wire::AclGrants{}) {
    Status stored = co_await StoreSetting(std::string(kAclSetting), SerializeAcl(*write_acl_));
    if (!stored.ok()) co_return co_await Fail(FromStatus(stored));
  }
  if (ownership) {
    Status stored = co_await StoreSetting(std::string(kOwnershipSetting), ownership);
    if (!stored.ok()) co_return co_await Fail(FromStatus(stored));
  }
  http::HeaderList headers;
  headers.emplace_back("Location", "/" + request_.bucket);
  co_await SendEmpty(200, std::move(headers));
}

Awaitable<Status> S3Call::StoreSetting(std::string name, std::optional<std::string> value) {
  meta::MetaStore* meta_store = store();
  std::string tenant = tenant_, bucket = request_.bucket;
  const TimestampMs now = NowMs();
  auto work = [meta_store, tenant, bucket, name, value, now]() {
    return meta_store->SetNamespaceSetting(tenant, bucket, name, value, now);
  };
  Status stored = co_await deps_.pool->Run(std::move(work));
  if (stored.ok()) {
    if (value) {
      settings_[name] = *value;
    } else {
      settings_.erase(name);
    }
  }
  co_return stored;
}

Awaitable<void> S3Call::HeadBucket() {
  Result<bool> exists = co_await BucketExists();
  if (!exists.ok()) co_return co_await Fail(FromStatus(exists.status()));
  if (!*exists)
    co_return co_await Fail(MakeFailure(404, "NoSuchBucket", "the bucket does not exist"));
  http::HeaderList headers;
  headers.emplace_back("x-amz-bucket-region", deps_.region);
  co_await SendEmpty(200, std::move(headers));
}

Awaitable<void> S3Call::DeleteBucket() {
  auto* objects = deps_.objects;
  auto* multipart = deps_.multipart;
  std::string tenant = tenant_, bucket = request_.bucket;
  auto work = [objects, multipart, tenant, bucket]() -> Status {
    return objects::DeleteBucket(objects, multipart, tenant, bucket);
  };
  Status deleted = co_await deps_.pool->Run(std::move(work));
  if (deleted.code() == StatusCode::kFailedPrecondition) {
    co_return co_await Fail(
        MakeFailure(409, "BucketNotEmpty", "the bucket you tried to delete is not empty"));
  }
  if (deleted.code() == StatusCode::kNotFound) {
    co_return co_await Fail(MakeFailure(404, "NoSuchBucket", "the bucket does not exist"));
  }
  if (!deleted.ok()) co_return co_await Fail(FromStatus(deleted));
  co_await SendEmpty(204);
}

Awaitable<void> S3Call::GetBucketLocation() {
  Result<bool> exists = co_await BucketExists();
  if (!exists.ok()) co_return co_await Fail(FromStatus(exists.status()));
  if (!*exists)
    co_return co_await Fail(MakeFailure(404, "NoSuchBucket", "the bucket does not exist"));
  // us-east-1 is reported as an empty constraint, as S3 does.
  std::string document =
      wire::RenderLocationConstraint(deps_.region == "us-east-1" ? "" : deps_.region);
  co_await SendXml(200, std::move(document));
}

Awaitable<void> S3Call::ListObjects(bool v2) {
  const bool versions = request_.operation == wire::S3Operation::kListObjectVersions;
  Result<bool> exists = co_await BucketExists();
  if (!exists.ok()) co_return co_await Fail(FromStatus(exists.status()));
  if (!*exists)
    co_return co_await Fail(MakeFailure(404, "NoSuchBucket", "the bucket does not exist"));
  const std::string prefix = request_.prefix.value_or("");
  const std::string delimiter = request_.delimiter.value_or("");
  std::string cursor;
  if (v2 && request_.continuation_token) {
    auto decoded = Base64Decode(*request_.continuation_token, kBase64Url);
    if (!decoded.ok()) {
      co_return co_await Fail(
          MakeFailure(400, "InvalidArgument", "the continuation token is not valid"));
    }
    cursor = *decoded;
  } else if (v2 && request_.start_after) {
    cursor = *request_.start_after;
  } else if (!v2 && (versions ? request_.key_marker : request_.marker)) {
    cursor = versions ? *request_.key_marker : *request_.marker;
    // A marker that is a common prefix resumes after everything under it.
    if (!delimiter.empty() && cursor.size() >= delimiter.size() &&
        cursor.compare(cursor.size() - delimiter.size(), delimiter.size(), delimiter) == 0) {
      cursor += "\xff";
    }
  }
  meta::MetaStore* meta_store = store();
  std::string tenant = tenant_, bucket = request_.bucket;
  const int max_keys = request_.max_keys;
  auto work = [meta_store, tenant, bucket, prefix, delimiter, cursor, max_keys]() {
    return ListWithDelimiter(meta_store, tenant, bucket, prefix, delimiter, cursor, max_keys);
  };
  Result<Listing> listing = co_await deps_.pool->Run(std::move(work));
  if (!listing.ok()) co_return co_await Fail(FromStatus(listing.status()));

  wire::ListObjectsCommon common;
  common.bucket = request_.bucket;
  common.prefix = prefix;
  common.delimiter = request_.delimiter;
  common.max_keys = max_keys;
  common.is_truncated = listing->truncated;
  common.encoding_type_url = request_.encoding_type_url;
  for (const auto& object : listing->contents) {
    wire::ObjectEntry entry;
    entry.key = object.key;
    entry.last_modified = object.created_at_ms;
    entry.etag = object.etag;
    entry.size = object.size_bytes;
    entry.storage_class = S3StorageClassName(object.storage_class);
    if (!v2 || request_.fetch_owner) entry.owner = wire::Owner{tenant_, tenant_};
    common.contents.push_back(std::move(entry));
  }
  common.common_prefixes = listing->common_prefixes;
  if (versions) {
    wire::ListVersionsResult result;
    result.common = std::move(common);
    result.key_marker = request_.key_marker;
    result.version_id_marker = request_.version_id_marker;
    if (listing->truncated) result.next_key_marker = listing->last_entry;
    std::string document = wire::RenderListVersionsResult(result);
    co_return co_await SendXml(200, std::move(document));
  }
  if (v2) {
    wire::ListBucketResultV2 result;
    result.common = std::move(common);
    result.continuation_token = request_.continuation_token;
    result.start_after = request_.start_after;
    if (listing->truncated) {
      result.next_continuation_token = Base64Encode(listing->next_cursor, kBase64Url);
    }
    std::string document = wire::RenderListBucketResultV2(result);
    co_return co_await SendXml(200, std::move(document));
  }
  wire::ListBucketResultV1 result;
  result.common = std::move(common);
  result.marker = request_.marker;
  if (listing->truncated) result.next_marker = listing->last_entry;
  std::string document = wire::RenderListBucketResultV1(result);
  co_await SendXml(200, std::move(document));
}

// aws-chunked framing: each piece decoded (and its chunk signature checked) as it arrives.
class AwsChunkedContent : public BodyContent {
 public:
  explicit AwsChunkedContent(sig::AwsChunkedDecoder* decoder) : decoder_(decoder) {}
  std::optional<Failure> Feed(std::string_view raw, std::string* content) override {
    sig::SigV4Status fed = decoder_->Feed(raw, content);
    if (!fed.ok()) return FromSigV4(fed);
    return std::nullopt;
  }
  std::optional<Failure> Finish() override {
    sig::SigV4Status finished = decoder_->Finish();
    if (!finished.ok()) return FromSigV4(finished);
    return std::nullopt;
  }

 private:
  sig::AwsChunkedDecoder* decoder_;
};

Failure BodyReadFailure(const Status& status) {
  return status.code() == StatusCode::kDeadlineExceeded
             ? FromStatus(status)
             : MakeFailure(400, "IncompleteBody", status.message());
}

Awaitable<std::optional<Failure>> S3Call::ReceiveBody(api::UploadPipeline& pipeline,
                                                      BodyContent* content,
                                                      std::shared_ptr<std::string> first,
                                                      BodyChecksum& checksum, uint64_t max_bytes) {
  const size_t piece_bytes = api::UploadPieceBytes(head());
  // Raw pieces alternate when they are stored as they are; decoded content alternates
  // when there is decoding (the raw piece is then consumed at once, so one is enough).
  std::shared_ptr<char[]> raw_pieces[2];
  std::shared_ptr<std::string> content_pieces[2] = {std::move(first), nullptr};
  bool pending = content_pieces[0] && !content_pieces[0]->empty();
  int turn = 0;
  uint64_t received = 0;
  std::optional<Failure> failure;
  // Bounded by the body: each round consumes at least one byte or ends.
  for (;;) {
    std::string_view piece;
    std::shared_ptr<const void> owner;  // keeps the piece alive until the pipeline is done
    if (pending) {
      pending = false;
      piece = *content_pieces[0];
      owner = content_pieces[0];
    } else {
      const int raw_turn = content != nullptr ? 0 : turn;
      if (!raw_pieces[raw_turn]) raw_pieces[raw_turn].reset(new char[piece_bytes]);
      std::shared_ptr<char[]> buffer = raw_pieces[raw_turn];
      Result<size_t> got = co_await exchange_.ReadBody(buffer.get(), piece_bytes);
      if (!got.ok()) {
        failure = BodyReadFailure(got.status());
        break;
      }
      if (*got == 0) break;
      piece = std::string_view(buffer.get(), *got);
      owner = buffer;
      if (content != nullptr) {
        if (!content_pieces[turn]) content_pieces[turn] = std::make_shared<std::string>();
        std::shared_ptr<std::string> decoded = content_pieces[turn];
        decoded->clear();
        failure = content->Feed(piece, decoded.get());
        if (failure) break;
        piece = *decoded;
        owner = decoded;
      }
    }
    if (piece.empty()) continue;
    received += piece.size();
    if (content != nullptr) {
      failure = content->Check(received);
      if (failure) break;
    }
    if (received > max_bytes) {  // a chunked body has no declared length to refuse early
      failure = FromStatus(api::ObjectTooLarge(received, max_bytes));
      break;
    }
    if (checksum.hasher) checksum.hasher->Update(piece);
    Status written = co_await pipeline.Write(owner, piece);
    if (!written.ok()) {
      failure = FromStatus(written);
      break;
    }
    turn = 1 - turn;
  }
  if (!failure && content != nullptr) failure = content->Finish();
  if (!failure) failure = checksum.Finish();
  if (failure) co_await pipeline.Abort();
  co_return failure;
}

Awaitable<void> S3Call::StreamUpload(std::shared_ptr<objects::Upload> upload, bool is_part,
                                     std::optional<sig::ChecksumAlgorithm> required) {
  std::optional<sig::AwsChunkedDecoder> decoder;
  if (sig::IsStreaming(verified_.payload_mode)) {
    auto options = sig::AwsChunkedOptionsFor(verified_);
    if (!options.ok()) co_return co_await Fail(FromSigV4(options.status()));
    decoder.emplace(*options);
  }
  // A checksum sent as a plain header (not a trailer) is verified over the payload too.
  BodyChecksum checksum;
  for (const auto& header : head().headers) {
    auto algorithm = sig::ChecksumAlgorithmFromHeader(header.first);
    if (algorithm && !decoder) {
      checksum.hasher.emplace(*algorithm);
      checksum.value = header.second;
    }
  }
  if (required) {
    std::optional<sig::ChecksumAlgorithm> sent;
    if (checksum.hasher) {
      sent = checksum.hasher->algorithm();
    } else if (decoder && !verified_.trailers.empty()) {
      sent = sig::ChecksumAlgorithmFromHeader(verified_.trailers.front());
    }
    if (sent && *sent != *required) {
      upload->Abort();
      co_return co_await Fail(MakeFailure(
          400, "InvalidRequest",
          "Checksum Type mismatch occurred, expected checksum Type: " +
              std::string(sig::ChecksumAlgorithmName(*required)) +
              ", actual checksum Type: " + std::string(sig::ChecksumAlgorithmName(*sent))));
    }
    if (!sent) {
      checksum.hasher.emplace(*required);
      checksum.computed = true;
    }
  }
  // S3 caps a part at 5 GiB; an object at the server's limit.
  const uint64_t max_bytes =
      is_part ? std::min<uint64_t>(kMaxPartBytes, deps_.max_object_bytes) : deps_.max_object_bytes;
  std::optional<uint64_t> declared;
  if (decoder) {
    declared = verified_.decoded_content_length;
  } else if (!head().chunked) {
    declared = head().content_length;
  }
  if (declared && *declared > max_bytes) {
    upload->Abort();
    Status too_large = api::ObjectTooLarge(*declared, max_bytes);
    co_return co_await Fail(FromStatus(too_large));
  }
  // Memory first: an upload that cannot get its buffers waits here and is refused with
  // SlowDown when the wait ends.
  std::shared_ptr<api::UploadMemory::Reservation> memory;
  if (deps_.upload_memory != nullptr) {
    const uint64_t wanted = api::UploadBufferBytes(
        head(), deps_.objects->options().chunk_size_bytes, decoder.has_value());
    Result<std::shared_ptr<api::UploadMemory::Reservation>> reserved =
        co_await deps_.upload_memory->Reserve(wanted);
    if (!reserved.ok()) {
      upload->Abort();
      co_return co_await Fail(MakeFailure(503, "SlowDown", reserved.status().message()));
    }
    memory = *reserved;
  }
  auto executor = co_await boost::asio::this_coro::executor;
  api::UploadPipeline pipeline(deps_.pool, upload, executor);
  std::optional<AwsChunkedContent> chunked;
  if (decoder) chunked.emplace(&*decoder);
  BodyContent* content = chunked ? &*chunked : nullptr;
  std::shared_ptr<std::string> no_first_content;
  std::optional<Failure> failure =
      co_await ReceiveBody(pipeline, content, no_first_content, checksum, max_bytes);
  if (failure) co_return co_await Fail(std::move(*failure));
  // The verified checksum is kept and returned to readers that ask (x-amz-checksum-mode).
  if (checksum.hasher) {
    upload->SetMetadata(
        std::string(objects::kChecksumField),
        std::string(sig::ChecksumHeaderName(checksum.hasher->algorithm())) + ":" + checksum.value);
  } else if (decoder && decoder->trailer_checksum_value() && !verified_.trailers.empty()) {
    upload->SetMetadata(std::string(objects::kChecksumField),
                        verified_.trailers.front() + ":" + *decoder->trailer_checksum_value());
  }
  Result<meta::CommitResult> committed = co_await pipeline.Commit();
  if (!committed.ok()) co_return co_await Fail(FromStatus(committed.status()));
  http::HeaderList headers;
  headers.emplace_back("ETag", Quoted(committed->object.etag));
  if (decoder && decoder->trailer_checksum_value() && !verified_.trailers.empty()) {
    headers.emplace_back(verified_.trailers.front(), *decoder->trailer_checksum_value());
  } else if (checksum.hasher) {
    headers.emplace_back(std::string(sig::ChecksumHeaderName(checksum.hasher->algorithm())),
                         checksum.value);
  }
  co_await SendEmpty(200, std::move(headers));
}

Awaitable<void> S3Call::PutObject() {
  Result<bool> exists = co_await BucketExists();
  if (!exists.ok()) co_return co_await Fail(FromStatus(exists.status()));
  if (!*exists)
    co_return co_await Fail(MakeFailure(404, "NoSuchBucket", "the bucket does not exist"));

  objects::UploadRequest upload_request;
  upload_request.tenant = tenant_;
  upload_request.namespace_name = request_.bucket;
  upload_request.key = request_.key;
  const std::string storage_class_name = HeaderOr(head(), "x-amz-storage-class");
  const std::optional<StorageClass> storage_class = StorageClassFromS3(storage_class_name);
  if (!storage_class) co_return co_await Fail(InvalidStorageClass(storage_class_name));
  upload_request.storage_class = *storage_class;
  upload_request.content_type = HeaderOr(head(), "content-type", "binary/octet-stream");
  upload_request.user_metadata = UserMetadataFromHeaders(head());
  ApplyWriteAcl(&upload_request.user_metadata);
  if (const std::string* tagging = head().Header("x-amz-tagging")) {
    auto tags = ParseTaggingHeader(*tagging);
    if (!tags.ok())
      co_return co_await Fail(MakeFailure(400, "InvalidTag", tags.status().message()));
    upload_request.user_metadata = WithTags(std::move(upload_request.user_metadata), *tags);
  }
  if (const std::string* md5 = head().Header("content-md5")) {
    auto raw = Base64Decode(*md5);
    if (!raw.ok() || raw->size() != 16) {
      co_return co_await Fail(MakeFailure(400, "InvalidDigest", "the Content-MD5 is not valid"));
    }
    upload_request.expected_md5 = *raw;
  }
  if (verified_.payload_mode == sig::PayloadMode::kSha256) {
    auto digest = Digest::FromHex(verified_.payload_sha256);
    if (digest.ok()) upload_request.expected_sha256 = *digest;
  }
  if (sig::IsStreaming(verified_.payload_mode)) {
    upload_request.expected_size = verified_.decoded_content_length;
  } else if (!head().chunked) {
    upload_request.expected_size = head().content_length.value_or(0);
  }
  // Conditional writes: If-None-Match: * (create only) and If-Match (replace that version).
  const std::string* if_none_match = head().Header("if-none-match");
  const std::string* if_match = head().Header("if-match");
  if (if_none_match || if_match) {
    auto* objects = deps_.objects;
    std::string tenant = tenant_, bucket = request_.bucket, key = request_.key;
    auto stat_work = [objects, tenant, bucket, key]() {
      return objects->StatByKey(tenant, bucket, key);
    };
    Result<meta::ObjectRecord> current = co_await deps_.pool->Run(std::move(stat_work));
    if (if_none_match && current.ok() && EtagListMatches(*if_none_match, current->etag)) {
      co_return co_await Fail(MakeFailure(412, "PreconditionFailed", "the object already exists"));
    }
    if (if_match && (!current.ok() || !EtagListMatches(*if_match, current->etag))) {
      if (!current.ok() && current.status().code() == StatusCode::kNotFound) {
        co_return co_await Fail(MakeFailure(404, "NoSuchKey", "the object does not exist"));
      }
      co_return co_await Fail(MakeFailure(412, "PreconditionFailed", "the ETag does not match"));
    }
  }
  auto begun = deps_.objects->BeginUpload(std::move(upload_request));
  if (!begun.ok()) co_return co_await Fail(FromStatus(begun.status()));
  std::shared_ptr<objects::Upload> upload = std::move(begun).value();
  co_await StreamUpload(upload, false, std::nullopt);
}

Awaitable<std::optional<meta::ObjectRecord>> S3Call::CopySource() {
  const wire::CopySource& source = *request_.copy_source;
  auto* objects = deps_.objects;
  meta::MetaStore* meta_store = store();
  std::optional<std::string> requester = requester_;
  std::string tenant = tenant_, bucket = source.bucket, key = source.key;
  const bool same_bucket = source.bucket == request_.bucket;
  // The source may be another tenant's object that its ACL lets the caller read.
  struct Found {
    Result<meta::ObjectRecord> object = Status(InternalError("not found yet"));
    std::string owner;
    std::map<std::string, std::string> settings;
  };
  auto work = [objects, meta_store, requester, tenant, bucket, key, same_bucket]() -> Found {
    Found found;
    found.owner = tenant;
    if (!same_bucket) {
      Result<BucketOwner> owner = FindBucketOwner(meta_store, objects, requester, bucket);
      if (!owner.ok()) {
        found.object = owner.status();
        return found;
      }
      if (owner->ambiguous) {
        found.object = PermissionDeniedError("more than one tenant holds the source bucket");
        return found;
      }
      if (owner->owner.empty()) {
        found.object = NoSuchBucket(bucket);
        return found;
      }
      found.owner = owner->owner;
      found.settings = std::move(owner->settings);
    }
    found.object = objects->StatByKey(found.owner, bucket, key);
    if (!found.object.ok()) {
      found.object = BucketOrKeyMissing(objects, found.owner, bucket, found.object.status());
    }
    return found;
  };
  Found lookup = co_await deps_.pool->Run(std::move(work));
  Result<meta::ObjectRecord>& found = lookup.object;
  const bool foreign = !same_bucket && requester_ != lookup.owner;
  const std::map<std::string, std::string>& source_settings =
      same_bucket ? settings_ : lookup.settings;
  // The source bucket's policy on reading the source (s3:GetObject): a Deny binds its
  // owner too; an Allow lets another tenant read it.
  wire::Decision decision = wire::Decision::kNone;
  auto policy = source_settings.find(std::string(kPolicySetting));
  if (policy != source_settings.end()) {
    Result<wire::BucketPolicy> parsed = wire::BucketPolicy::Parse(policy->second, source.bucket);
    if (parsed.ok()) {
      wire::ConditionContext context;
      if (found.ok()) {
        for (const wire::Tag& tag : TagsOf(found->user_metadata)) {
          context.Set("s3:ExistingObjectTag/" + tag.key, tag.value);
        }
      }
      wire::PolicyRequest read;
      read.action = "s3:GetObject";
      read.resource = "arn:aws:s3:::" + source.bucket + "/" + source.key;
      read.account = requester_;
      read.conditions = context.AsLookup();
      decision = parsed->Evaluate(read);
    } else if (foreign) {
      decision = wire::Decision::kDeny;  // an unreadable policy grants nothing
    }
  }
  if (decision == wire::Decision::kDeny) {
    co_await Fail(MakeFailure(403, "AccessDenied", "Access Denied"));
    co_return std::nullopt;
  }
  if (foreign && decision != wire::Decision::kAllow) {
    // What S3 checks for a source in another account's bucket: READ on the object (a
    // missing one is 404 only to a caller who may list that bucket).
    auto ownership = lookup.settings.find(std::string(kOwnershipSetting));
    bool ignore = ownership != lookup.settings.end() && ownership->second == "BucketOwnerEnforced";
    auto block = lookup.settings.find(std::string(kPublicAccessBlockSetting));
    if (block != lookup.settings.end()) {
      auto parsed = wire::ParsePublicAccessBlock(block->second, kMaxXmlBodyBytes);
      ignore = ignore || (parsed.ok() && parsed->ignore_public_acls);
    }
    wire::AclGrants acl;
    if (found.ok()) {
      auto stored = found->user_metadata.find(std::string(objects::kAclField));
      if (stored != found->user_metadata.end()) acl = ParseStoredAcl(stored->second);
    } else if (found.status().code() == StatusCode::kNotFound) {
      auto stored = lookup.settings.find(std::string(kAclSetting));
      if (stored != lookup.settings.end()) acl = ParseStoredAcl(stored->second);
    }
    if ((found.ok() || found.status().code() == StatusCode::kNotFound) &&
        !AclAllows(acl, requester_.has_value(), wire::kAclRead, ignore)) {
      co_await Fail(MakeFailure(403, "AccessDenied", "Access Denied"));
      co_return std::nullopt;
    }
  }
  if (!found.ok()) {
    co_await Fail(FromStatus(found.status(), "NoSuchKey"));
    co_return std::nullopt;
  }
  if (const std::string* match = head().Header("x-amz-copy-source-if-match")) {
    if (!EtagListMatches(*match, found->etag)) {
      co_await Fail(MakeFailure(412, "PreconditionFailed", "copy source ETag does not match"));
      co_return std::nullopt;
    }
  }
  if (const std::string* none = head().Header("x-amz-copy-source-if-none-match")) {
    if (EtagListMatches(*none, found->etag)) {
      co_await Fail(MakeFailure(412, "PreconditionFailed", "copy source ETag matches"));
      co_return std::nullopt;
    }
  }
  co_return std::move(found).value();
}

Awaitable<void> S3Call::CopyObject() {
  Result<bool> exists = co_await BucketExists();
  if (!exists.ok()) co_return co_await Fail(FromStatus(exists.status()));
  if (!*exists)
    co_return co_await Fail(MakeFailure(404, "NoSuchBucket", "the bucket does not exist"));
  // The copy keeps its source's class (a class change would have to rewrite the chunks);
  // a class name S3 does not know is still refused, as S3 refuses it.
  const std::string storage_class_name = HeaderOr(head(), "x-amz-storage-class");
  if (!StorageClassFromS3(storage_class_name)) {
    co_return co_await Fail(InvalidStorageClass(storage_class_name));
  }
  std::optional<meta::ObjectRecord> source = co_await CopySource();
  if (!source) co_return;
  objects::CopyRequest copy;
  copy.tenant = tenant_;
  copy.namespace_name = request_.bucket;
  copy.key = request_.key;
  const std::string directive = HeaderOr(head(), "x-amz-metadata-directive", "COPY");
  if (directive == "REPLACE") {
    copy.content_type = HeaderOr(head(), "content-type", "binary/octet-stream");
    copy.user_metadata = UserMetadataFromHeaders(head());
  } else if (directive != "COPY") {
    co_return co_await Fail(MakeFailure(400, "InvalidArgument", "unknown metadata directive"));
  } else if (source->namespace_name == request_.bucket && source->key == request_.key) {
    co_return co_await Fail(MakeFailure(400, "InvalidRequest",
                                        "copying an object onto itself must change its metadata"));
  }
  if (HeaderOr(head(), "x-amz-tagging-directive") == "REPLACE") {
    auto tags = ParseTaggingHeader(HeaderOr(head(), "x-amz-tagging"));
    if (!tags.ok())
      co_return co_await Fail(MakeFailure(400, "InvalidTag", tags.status().message()));
    copy.user_metadata = WithTags(copy.user_metadata.value_or(source->user_metadata), *tags);
  }
  {
    // An ACL is never copied: the copy gets the one this request asks for, or private.
    std::map<std::string, std::string> metadata =
        copy.user_metadata.value_or(source->user_metadata);
    ApplyWriteAcl(&metadata);
    copy.user_metadata = std::move(metadata);
  }
  auto* objects = deps_.objects;
  meta::ObjectRecord from = *source;
  auto work = [objects, from, copy]() { return objects->Copy(from, copy); };
  Result<meta::CommitResult> copied = co_await deps_.pool->Run(std::move(work));
  if (!copied.ok()) co_return co_await Fail(FromStatus(copied.status()));
  std::string document =
      wire::RenderCopyObjectResult(copied->object.created_at_ms, copied->object.etag);
  co_await SendXml(200, std::move(document));
}

Awaitable<void> S3Call::GetObject(bool head_only) {
  auto* objects = deps_.objects;
  std::string tenant = tenant_, bucket = request_.bucket, key = request_.key;
  auto work = [objects, tenant, bucket, key]() -> Result<std::shared_ptr<objects::ObjectReader>> {
    auto object = objects->StatByKey(tenant, bucket, key);
    if (!object.ok()) {
      if (object.status().code() == StatusCode::kNotFound &&
          !objects->GetNamespace(tenant, bucket).ok()) {
        return NoSuchBucket(bucket);
      }
      return object.status();
    }
    auto reader = objects->OpenReader(*object);
    if (!reader.ok()) return reader.status();
    return std::shared_ptr<objects::ObjectReader>(std::move(reader).value());
  };
  // A local metadata store answers from the page cache; see native_api.cc.
  Result<std::shared_ptr<objects::ObjectReader>> opened = Status(InternalError("not opened"));
  if (objects->point_reads_are_local()) {
    opened = work();
  } else {
    opened = co_await deps_.pool->Run(std::move(work));
  }
  if (!opened.ok()) {
    if (opened.status().reason() == ErrorReason::kNoSuchNamespace) {
      co_return co_await Fail(FromStatus(opened.status()));
    }
    co_return co_await Fail(MissingObject(FromStatus(opened.status())));
  }
  std::shared_ptr<objects::ObjectReader> reader = *opened;
  const meta::ObjectRecord& object = reader->object();
  if (std::optional<Failure> denied = ObjectAccessFailure(object)) {
    co_return co_await Fail(std::move(*denied));
  }

  // Conditions, in S3's order of precedence.
  const std::string* if_match = head().Header("if-match");
  const std::string* if_none_match = head().Header("if-none-match");
  const std::string* if_unmodified = head().Header("if-unmodified-since");
  const std::string* if_modified = head().Header("if-modified-since");
  const int64_t modified_s = object.created_at_ms / 1000;
  if (if_match && !EtagListMatches(*if_match, object.etag)) {
    co_return co_await Fail(MakeFailure(412, "PreconditionFailed", "If-Match did not match"));
  }
  if (!if_match && if_unmodified) {
    auto since = sig::ParseHttpDate(*if_unmodified);
    if (since.ok() && modified_s > *since / 1000) {
      co_return co_await Fail(
          MakeFailure(412, "PreconditionFailed", "modified since the given date"));
    }
  }
  bool not_modified = false;
  if (if_none_match) {
    not_modified = EtagListMatches(*if_none_match, object.etag);
  } else if (if_modified) {
    auto since = sig::ParseHttpDate(*if_modified);
    not_modified = since.ok() && modified_s <= *since / 1000;
  }
  // response-* query parameters override headers (presigned downloads use them). They
  // are echoed as header values, so a control character (CR/LF: added header lines or a
  // split response) is refused before anything is sent.
  http::HeaderList overrides;
  auto query = http::ParseQuery(head().query);
  if (query.ok()) {
    for (const auto& pair : *query) {
      static const std::pair<const char*, const char*> kOverrides[] = {
          {"response-content-type", "Content-Type"},
          {"response-content-disposition", "Content-Disposition"},
          {"response-content-encoding", "Content-Encoding"},
          {"response-content-language", "Content-Language"},
          {"response-cache-control", "Cache-Control"},
          {"response-expires", "Expires"}};
      for (const auto& override_entry : kOverrides) {
        if (pair.first != override_entry.first) continue;
        if (!http::IsSafeHeaderValue(pair.second)) {
          co_return co_await Fail(MakeFailure(
              400, "InvalidArgument",
              std::string(override_entry.first) + " must not contain control characters"));
        }
        overrides.emplace_back(override_entry.second, pair.second);
      }
    }
  }
  ResponseHead response;
  response.headers = ObjectHeaders(object);
  for (const auto& header : cors_headers_) response.headers.push_back(header);
  response.headers.emplace_back("x-amz-request-id", request_id_);
  if (not_modified) {
    response.status = 304;
    status_ = 304;
    (void)co_await exchange_.Respond(std::move(response), "");
    co_return;
  }
  for (const auto& override_header : overrides) {
    std::erase_if(response.headers,
                  [&](const auto& header) { return header.first == override_header.first; });
    response.headers.push_back(override_header);
  }
  // The stored full-object checksum, for a reader that asks for it and reads it whole.
  if (const std::string* mode = head().Header("x-amz-checksum-mode");
      mode != nullptr && request_.part_number == 0 && head().Header("range") == nullptr) {
    const std::string lower = ToLowerAscii(*mode);
    auto stored = object.user_metadata.find(std::string(objects::kChecksumField));
    if (lower == "enabled" && stored != object.user_metadata.end()) {
      std::optional<std::pair<std::string, std::string>> split =
          SplitStoredChecksum(stored->second);
      if (split) {
        response.headers.emplace_back(split->first, split->second);
        response.headers.emplace_back(
            "x-amz-checksum-type",
            split->second.find('-') != std::string::npos ? "COMPOSITE" : "FULL_OBJECT");
      }
    }
  }
  Result<BodySelection> selection = Status(InternalError("no selection"));
  if (request_.part_number > 0) {
    // GET ?partNumber=N: the bytes of part N of a multipart object (a single PUT is one
    // part), with the object's part count.
    if (head().Header("range") != nullptr) {
      co_return co_await Fail(
          MakeFailure(400, "InvalidRequest",
                      "Cannot specify both Range header and partNumber query parameter"));
    }
    Result<PartRange> part = FindPart(object, request_.part_number);
    if (!part.ok()) {
      const bool unknown = part.status().code() == StatusCode::kFailedPrecondition;
      co_return co_await Fail(MakeFailure(unknown ? 501 : 400,
                                          unknown ? "NotImplemented" : "InvalidPart",
                                          part.status().message()));
    }
    response.headers.emplace_back("x-amz-mp-parts-count", std::to_string(part->count));
    BodySelection chosen;
    chosen.first = part->first;
    chosen.length = part->length;
    chosen.status = part->count > 1 ? 206 : 200;
    if (chosen.status == 206) {
      response.headers.emplace_back("Content-Range",
                                    "bytes " + std::to_string(part->first) + "-" +
                                        std::to_string(part->first + part->length - 1) + "/" +
                                        std::to_string(object.size_bytes));
    }
    selection = chosen;
  } else {
    selection = SelectBody(head(), object.size_bytes, &response.headers);
  }
  if (!selection.ok()) {
    co_return co_await Fail(
        MakeFailure(416, "InvalidRange", "the requested range is not satisfiable"));
  }
  status_ = selection->status;
  Status sent = co_await SendObject(exchange_, deps_.pool, std::move(reader), std::move(response),
                                    *selection, head_only);
  if (!sent.ok()) co_return co_await Fail(FromStatus(sent));
}

Awaitable<void> S3Call::DeleteObject() {
  auto* objects = deps_.objects;
  std::string tenant = tenant_, bucket = request_.bucket, key = request_.key;
  auto work = [objects, tenant, bucket, key]() -> Status {
    auto deleted = objects->DeleteByKey(tenant, bucket, key);
    if (deleted.ok()) return OkStatus();
    Status status = BucketOrKeyMissing(objects, tenant, bucket, deleted.status());
    // Deleting a missing key of an existing bucket succeeds, as in S3.
    const bool missing_key =
        status.code() == StatusCode::kNotFound && status.reason() != ErrorReason::kNoSuchNamespace;
    return missing_key ? OkStatus() : status;
  };
  Status deleted = co_await deps_.pool->Run(std::move(work));
  if (!deleted.ok()) co_return co_await Fail(FromStatus(deleted));
  co_await SendEmpty(204);
}

Awaitable<void> S3Call::DeleteObjects() {
  SmallBody body = co_await ReadSmallBody();
  if (!body.ok()) co_return co_await Fail(*body.failure);
  auto parsed = wire::ParseDelete(*body, kMaxXmlBodyBytes);
  if (!parsed.ok()) co_return co_await Fail(FromS3Error(parsed.error()));
  Result<bool> exists = co_await BucketExists();
  if (!exists.ok()) co_return co_await Fail(FromStatus(exists.status()));
  if (!*exists)
    co_return co_await Fail(MakeFailure(404, "NoSuchBucket", "the bucket does not exist"));
  auto* objects = deps_.objects;
  std::string tenant = tenant_, bucket = request_.bucket;
  wire::DeleteRequest delete_request = std::move(parsed).value();
  // Each key as its own DeleteObject: the policy (a Deny binds the owner too), then for
  // others the bucket's ACL.
  std::set<std::string> refused;
  for (const auto& item : delete_request.objects) {
    const wire::Decision decision =
        policy_ ? EvaluatePolicy(nullptr, &item.key) : wire::Decision::kNone;
    const bool allowed = decision != wire::Decision::kDeny &&
                         (owner_request_ || may_delete_ ||
                          (decision == wire::Decision::kAllow && !policy_restricted_));
    if (!allowed) refused.insert(item.key);
  }
  auto work = [objects, tenant, bucket, delete_request, refused]() {
    wire::DeleteResult result;
    result.quiet = delete_request.quiet;
    for (const auto& item : delete_request.objects) {
      if (refused.count(item.key) != 0) {
        result.errors.push_back({item.key, "AccessDenied", "Access Denied"});
        continue;
      }
      if (!ValidateKey(item.key).ok()) {
        result.errors.push_back({item.key, "InvalidArgument", "invalid key"});
        continue;
      }
      auto deleted = objects->DeleteByKey(tenant, bucket, item.key);
      if (deleted.ok() || deleted.status().code() == StatusCode::kNotFound) {
        result.deleted.push_back({item.key});
      } else {
        result.errors.push_back({item.key, "InternalError", deleted.status().message()});
      }
    }
    return result;
  };
  wire::DeleteResult result = co_await deps_.pool->Run(std::move(work));
  std::string document = wire::RenderDeleteResult(result);
  co_await SendXml(200, std::move(document));
}

Awaitable<void> S3Call::CreateMultipartUpload() {
  Result<bool> exists = co_await BucketExists();
  if (!exists.ok()) co_return co_await Fail(FromStatus(exists.status()));
  if (!*exists)
    co_return co_await Fail(MakeFailure(404, "NoSuchBucket", "the bucket does not exist"));
  std::map<std::string, std::string> metadata = UserMetadataFromHeaders(head());
  ApplyWriteAcl(&metadata);
  if (const std::string* tagging = head().Header("x-amz-tagging")) {
    auto tags = ParseTaggingHeader(*tagging);
    if (!tags.ok())
      co_return co_await Fail(MakeFailure(400, "InvalidTag", tags.status().message()));
    metadata = WithTags(std::move(metadata), *tags);
  }
  http::HeaderList answer_headers;
  if (const std::string* algorithm_text = head().Header("x-amz-checksum-algorithm")) {
    Result<sig::ChecksumAlgorithm> algorithm = sig::ParseChecksumAlgorithm(*algorithm_text);
    if (!algorithm.ok())
      co_return co_await Fail(MakeFailure(400, "InvalidRequest", algorithm.status().message()));
    const bool crc64 = *algorithm == sig::ChecksumAlgorithm::kCrc64Nvme;
    const bool sha = *algorithm == sig::ChecksumAlgorithm::kSha1 ||
                     *algorithm == sig::ChecksumAlgorithm::kSha256;
    const std::string type =
        HeaderOr(head(), "x-amz-checksum-type", crc64 ? "FULL_OBJECT" : "COMPOSITE");
    if ((type != "COMPOSITE" && type != "FULL_OBJECT") || (type == "FULL_OBJECT" && sha) ||
        (type == "COMPOSITE" && crc64)) {
      co_return co_await Fail(MakeFailure(
          400, "InvalidRequest",
          "checksum type '" + type.substr(0, 32) + "' is not valid with algorithm " +
              std::string(sig::ChecksumAlgorithmName(*algorithm)) +
              " (COMPOSITE: CRC32, CRC32C, SHA1, SHA256; FULL_OBJECT: CRC32, CRC32C, CRC64NVME)"));
    }
    metadata[objects::kUploadChecksumField] =
        std::string(sig::ChecksumAlgorithmName(*algorithm)) + ":" + type;
    answer_headers.emplace_back("x-amz-checksum-algorithm",
                                std::string(sig::ChecksumAlgorithmName(*algorithm)));
    answer_headers.emplace_back("x-amz-checksum-type", type);
  } else if (head().Header("x-amz-checksum-type") != nullptr) {
    co_return co_await Fail(
        MakeFailure(400, "InvalidRequest", "x-amz-checksum-type needs x-amz-checksum-algorithm"));
  }
  auto* multipart = deps_.multipart;
  const std::string storage_class_name = HeaderOr(head(), "x-amz-storage-class");
  const std::optional<StorageClass> requested_class = StorageClassFromS3(storage_class_name);
  if (!requested_class) co_return co_await Fail(InvalidStorageClass(storage_class_name));
  std::string tenant = tenant_, bucket = request_.bucket, key = request_.key;
  StorageClass storage_class = *requested_class;
  std::string content_type = HeaderOr(head(), "content-type", "binary/octet-stream");
  auto work = [multipart, tenant, bucket, key, storage_class, content_type, metadata]() {
    return multipart->Create(tenant, bucket, key, storage_class, content_type, metadata);
  };
  Result<objects::MultipartUpload> upload = co_await deps_.pool->Run(std::move(work));
  if (!upload.ok()) co_return co_await Fail(FromStatus(upload.status()));
  std::string document =
      wire::RenderInitiateMultipartUploadResult(request_.bucket, request_.key, upload->upload_id);
  co_await SendXml(200, std::move(document), std::move(answer_headers));
}

Awaitable<std::optional<objects::MultipartUpload>> S3Call::FindUpload() {
  auto* multipart = deps_.multipart;
  std::string tenant = tenant_, bucket = request_.bucket, key = request_.key,
              upload_id = request_.upload_id;
  auto work = [multipart, tenant, bucket, key, upload_id]() {
    return multipart->Get(tenant, bucket, key, upload_id);
  };
  Result<objects::MultipartUpload> upload = co_await deps_.pool->Run(std::move(work));
  if (!upload.ok()) {
    co_await Fail(FromStatus(upload.status(), "NoSuchUpload"));
    co_return std::nullopt;
  }
  co_return std::move(upload).value();
}

Awaitable<void> S3Call::UploadPart(bool copy) {
  std::optional<objects::MultipartUpload> upload = co_await FindUpload();
  if (!upload) co_return;
  const int part_number = request_.part_number;
  if (copy) {
    std::optional<meta::ObjectRecord> source = co_await CopySource();
    if (!source) co_return;
    std::optional<std::pair<uint64_t, uint64_t>> range;
    if (request_.copy_source_range) {
      range = std::make_pair(request_.copy_source_range->first, request_.copy_source_range->last);
    }
    auto* multipart = deps_.multipart;
    objects::MultipartUpload target = *upload;
    meta::ObjectRecord from = *source;
    auto work = [multipart, target, part_number, from, range]() {
      return multipart->CopyPart(target, part_number, from, range);
    };
    Result<objects::PartInfo> part = co_await deps_.pool->Run(std::move(work));
    if (!part.ok()) co_return co_await Fail(FromStatus(part.status()));
    std::string document = wire::RenderCopyPartResult(part->last_modified_ms, part->etag);
    co_return co_await SendXml(200, std::move(document));
  }
  std::optional<uint64_t> expected_size;
  if (sig::IsStreaming(verified_.payload_mode)) {
    expected_size = verified_.decoded_content_length;
  } else if (!head().chunked) {
    expected_size = head().content_length.value_or(0);
  }
  auto begun = deps_.multipart->BeginPart(*upload, part_number, expected_size);
  if (!begun.ok()) co_return co_await Fail(FromStatus(begun.status()));
  std::shared_ptr<objects::Upload> part = std::move(begun).value();
  std::optional<UploadChecksum> upload_checksum = ParseUploadChecksum(upload->checksum);
  std::optional<sig::ChecksumAlgorithm> required;
  if (upload_checksum) required = upload_checksum->algorithm;
  co_await StreamUpload(part, true, required);
}

Awaitable<void> S3Call::CompleteMultipartUpload() {
  SmallBody body = co_await ReadSmallBody();
  if (!body.ok()) co_return co_await Fail(*body.failure);
  auto parsed = wire::ParseCompleteMultipartUpload(*body, kMaxXmlBodyBytes);
  if (!parsed.ok()) co_return co_await Fail(FromS3Error(parsed.error()));
  std::vector<objects::CompletedPartSpec> specs;
  for (const auto& part : *parsed) specs.push_back({part.part_number, part.etag});
  auto* multipart = deps_.multipart;
  std::string tenant = tenant_, bucket = request_.bucket, key = request_.key,
              upload_id = request_.upload_id;
  std::vector<wire::CompletedPart> listed = *parsed;
  // The whole object's checksum, when the client states it (x-amz-checksum-<algorithm>).
  std::vector<std::pair<std::string, std::string>> stated;
  for (const auto& header : head().headers) {
    if (sig::ChecksumAlgorithmFromHeader(header.first)) stated.push_back(header);
  }
  auto work = [multipart, tenant, bucket, key, upload_id, specs, listed,
               stated]() -> Result<meta::ObjectRecord> {
    Result<objects::MultipartUpload> upload = multipart->Get(tenant, bucket, key, upload_id);
    Status failure = upload.status();
    if (upload.ok()) {
      objects::CompletionHooks hooks;
      std::shared_ptr<sig::Checksummer> whole;
      std::optional<UploadChecksum> wanted = ParseUploadChecksum(upload->checksum);
      if (wanted) {
        Result<std::string> checksum = CompositeChecksum(multipart, *upload, *wanted, listed);
        if (!checksum.ok()) return checksum.status();
        const std::string field(objects::kChecksumField);
        const std::string header(sig::ChecksumHeaderName(wanted->algorithm));
        // A stated checksum must be the object's (with or without the "-<parts>" suffix
        // of a composite one).
        std::optional<std::string> expected;
        for (const auto& entry : stated) {
          if (entry.first == header) expected = entry.second;
        }
        auto keep = [field, header, expected](
                        const std::string& value) -> Result<std::map<std::string, std::string>> {
          if (expected && *expected != value && *expected != value.substr(0, value.find('-'))) {
            return InvalidArgumentError("the checksum you specified did not match the object's")
                .WithReason(ErrorReason::kBadDigest);
          }
          return std::map<std::string, std::string>{{field, header + ":" + value}};
        };
        if (wanted->composite) {
          std::string value = *checksum;
          hooks.finish = [keep, value]() { return keep(value); };
        } else {
          // FULL_OBJECT: a CRC of the whole content, from Complete's read pass.
          whole = std::make_shared<sig::Checksummer>(wanted->algorithm);
          hooks.observe = [whole](std::string_view bytes) { whole->Update(bytes); };
          hooks.finish = [keep, whole]() { return keep(whole->FinishBase64()); };
        }
      }
      Result<meta::CommitResult> completed = multipart->Complete(*upload, specs, hooks);
      if (completed.ok()) return completed->object;
      failure = completed.status();
    }
    // A retry whose first attempt completed the upload (or won the race against it) gets
    // the first attempt's answer, as S3 gives it.
    if (failure.code() == StatusCode::kNotFound) {
      Result<meta::ObjectRecord> done =
          multipart->CompletedFrom(tenant, bucket, key, upload_id, specs);
      if (done.ok()) return done;
    }
    return failure;
  };
  Result<meta::ObjectRecord> completed = co_await deps_.pool->Run(std::move(work));
  if (!completed.ok()) co_return co_await Fail(FromStatus(completed.status(), "NoSuchUpload"));
  wire::CompleteMultipartUploadResult result;
  result.location = "/" + request_.bucket + "/" + request_.key;
  result.bucket = request_.bucket;
  result.key = request_.key;
  result.etag = completed->etag;
  auto checksum = completed->user_metadata.find(std::string(objects::kChecksumField));
  if (checksum != completed->user_metadata.end()) {
    std::optional<std::pair<std::string, std::string>> stored =
        SplitStoredChecksum(checksum->second);
    std::optional<sig::ChecksumAlgorithm> algorithm;
    if (stored) algorithm = sig::ChecksumAlgorithmFromHeader(stored->first);
    if (algorithm) {
      result.checksum_element = ChecksumElement(*algorithm);
      result.checksum_value = stored->second;
      result.checksum_type =
          stored->second.find('-') != std::string::npos ? "COMPOSITE" : "FULL_OBJECT";
    }
  }
  std::string document = wire::RenderCompleteMultipartUploadResult(result);
  co_await SendXml(200, std::move(document));
}

Awaitable<void> S3Call::AbortMultipartUpload() {
  std::optional<objects::MultipartUpload> upload = co_await FindUpload();
  if (!upload) co_return;
  auto* multipart = deps_.multipart;
  objects::MultipartUpload target = *upload;
  auto work = [multipart, target]() { return multipart->Abort(target); };
  Status aborted = co_await deps_.pool->Run(std::move(work));
  if (!aborted.ok()) co_return co_await Fail(FromStatus(aborted, "NoSuchUpload"));
  co_await SendEmpty(204);
}

Awaitable<void> S3Call::ListParts() {
  std::optional<objects::MultipartUpload> upload = co_await FindUpload();
  if (!upload) co_return;
  auto* multipart = deps_.multipart;
  objects::MultipartUpload target = *upload;
  const int marker = request_.part_number_marker, limit = request_.max_parts;
  auto work = [multipart, target, marker, limit]() {
    bool truncated = false;
    auto parts = multipart->ListParts(target, marker, limit, &truncated);
    return std::make_pair(std::move(parts), truncated);
  };
  auto listed = co_await deps_.pool->Run(std::move(work));
  if (!listed.first.ok()) co_return co_await Fail(FromStatus(listed.first.status()));
  wire::ListPartsResult result;
  result.bucket = request_.bucket;
  result.key = request_.key;
  result.upload_id = request_.upload_id;
  result.storage_class = S3StorageClassName(upload->storage_class);
  result.initiator = wire::Owner{tenant_, tenant_};
  result.part_number_marker = marker;
  result.max_parts = limit;
  result.is_truncated = listed.second;
  std::optional<UploadChecksum> upload_checksum = ParseUploadChecksum(upload->checksum);
  if (upload_checksum) {
    result.checksum_algorithm = std::string(sig::ChecksumAlgorithmName(upload_checksum->algorithm));
    result.checksum_type = upload_checksum->composite ? "COMPOSITE" : "FULL_OBJECT";
  }
  for (const auto& part : *listed.first) {
    wire::PartEntry entry{
        part.part_number, part.last_modified_ms, part.etag, part.size_bytes, {}, {}};
    std::optional<std::pair<std::string, std::string>> stored = SplitStoredChecksum(part.checksum);
    std::optional<sig::ChecksumAlgorithm> algorithm;
    if (stored) algorithm = sig::ChecksumAlgorithmFromHeader(stored->first);
    if (algorithm) {
      entry.checksum_element = ChecksumElement(*algorithm);
      entry.checksum_value = stored->second;
    }
    result.parts.push_back(std::move(entry));
    result.next_part_number_marker = part.part_number;
  }
  std::string document = wire::RenderListPartsResult(result);
  co_await SendXml(200, std::move(document));
}

Awaitable<void> S3Call::ListMultipartUploads() {
  Result<bool> exists = co_await BucketExists();
  if (!exists.ok()) co_return co_await Fail(FromStatus(exists.status()));
  if (!*exists)
    co_return co_await Fail(MakeFailure(404, "NoSuchBucket", "the bucket does not exist"));
  auto* multipart = deps_.multipart;
  std::string tenant = tenant_, bucket = request_.bucket, prefix = request_.prefix.value_or("");
  auto work = [multipart, tenant, bucket, prefix]() {
    return multipart->ListUploads(tenant, bucket, prefix);
  };
  Result<std::vector<objects::MultipartUpload>> uploads = co_await deps_.pool->Run(std::move(work));
  if (!uploads.ok()) co_return co_await Fail(FromStatus(uploads.status()));
  wire::ListMultipartUploadsResult result;
  result.bucket = request_.bucket;
  result.prefix = prefix;
  result.delimiter = request_.delimiter;
  result.key_marker = request_.key_marker.value_or("");
  result.upload_id_marker = request_.upload_id_marker.value_or("");
  result.max_uploads = request_.max_uploads;
  result.encoding_type_url = request_.encoding_type_url;
  const std::string delimiter = request_.delimiter.value_or("");
  for (const auto& upload : *uploads) {
    if (!result.key_marker.empty() &&
        (upload.key < result.key_marker ||
         (upload.key == result.key_marker && upload.upload_id <= result.upload_id_marker))) {
      continue;
    }
    if (!delimiter.empty()) {
      size_t at = upload.key.find(delimiter, prefix.size());
      if (at != std::string::npos) {
        std::string common = upload.key.substr(0, at + delimiter.size());
        if (result.common_prefixes.empty() || result.common_prefixes.back() != common) {
          result.common_prefixes.push_back(common);
        }
        continue;
      }
    }
    if (static_cast<int>(result.uploads.size()) >= result.max_uploads) {
      result.is_truncated = true;
      break;
    }
    wire::UploadEntry entry;
    entry.key = upload.key;
    entry.upload_id = upload.upload_id;
    entry.initiated = upload.created_at_ms;
    entry.initiator = wire::Owner{tenant_, tenant_};
    entry.storage_class = S3StorageClassName(upload.storage_class);
    result.next_key_marker = upload.key;
    result.next_upload_id_marker = upload.upload_id;
    result.uploads.push_back(std::move(entry));
  }
  std::string document = wire::RenderListMultipartUploadsResult(result);
  co_await SendXml(200, std::move(document));
}

Awaitable<void> S3Call::Tagging() {
  auto* objects = deps_.objects;
  std::string tenant = tenant_;
  std::optional<meta::ObjectRecord> object = co_await StatObject();
  if (!object) co_return;
  if (request_.operation == wire::S3Operation::kGetObjectTagging) {
    std::string document = wire::RenderTagging(TagsOf(object->user_metadata));
    co_return co_await SendXml(200, std::move(document));
  }
  std::vector<wire::Tag> tags;
  if (request_.operation == wire::S3Operation::kPutObjectTagging) {
    SmallBody body = co_await ReadSmallBody();
    if (!body.ok()) co_return co_await Fail(*body.failure);
    auto parsed = wire::ParseTagging(*body, kMaxXmlBodyBytes);
    if (!parsed.ok()) co_return co_await Fail(FromS3Error(parsed.error()));
    tags = std::move(parsed).value();
  }
  ObjectId id = object->id;
  std::map<std::string, std::string> metadata = WithTags(object->user_metadata, tags);
  auto update_work = [objects, tenant, id, metadata]() {
    return objects->UpdateUserMetadata(tenant, id, metadata);
  };
  Result<meta::ObjectRecord> updated = co_await deps_.pool->Run(std::move(update_work));
  if (!updated.ok()) co_return co_await Fail(FromStatus(updated.status()));
  co_await SendEmpty(request_.operation == wire::S3Operation::kPutObjectTagging ? 200 : 204);
}

Awaitable<std::optional<meta::ObjectRecord>> S3Call::StatObject() {
  auto* objects = deps_.objects;
  std::string tenant = tenant_, bucket = request_.bucket, key = request_.key;
  auto work = [objects, tenant, bucket, key]() -> Result<meta::ObjectRecord> {
    auto found = objects->StatByKey(tenant, bucket, key);
    if (found.ok()) return found;
    return BucketOrKeyMissing(objects, tenant, bucket, found.status());
  };
  Result<meta::ObjectRecord> object = co_await deps_.pool->Run(std::move(work));
  if (!object.ok()) {
    co_await Fail(MissingObject(FromStatus(object.status())));
    co_return std::nullopt;
  }
  if (std::optional<Failure> denied = ObjectAccessFailure(*object)) {
    co_await Fail(std::move(*denied));
    co_return std::nullopt;
  }
  co_return std::move(object).value();
}

namespace {

// The ACL a PutBucketAcl / PutObjectAcl asks for: x-amz-acl or x-amz-grant-* headers, or an
// AccessControlPolicy body (not both).
std::variant<wire::AclGrants, Failure> RequestedAcl(const http::RequestHead& head,
                                                    const std::string& body,
                                                    const std::string& owner) {
  auto from_headers = AclFromHeaders(head, owner);
  const bool has_body = !TrimAscii(body, kXmlWhitespace).empty();
  if (from_headers && has_body) {
    return MakeFailure(400, "UnexpectedContent",
                       "This request does not support content together with ACL headers");
  }
  if (from_headers) {
    if (auto* failure = std::get_if<Failure>(&*from_headers)) return *failure;
    return std::get<wire::AclGrants>(*from_headers);
  }
  if (!has_body) {
    return MakeFailure(400, "MissingSecurityHeader",
                       "Your request was missing a required header: x-amz-acl, x-amz-grant-* or "
                       "an AccessControlPolicy body");
  }
  auto parsed = wire::ParseAccessControlPolicy(body, kMaxXmlBodyBytes, owner);
  if (!parsed.ok()) return FromS3Error(parsed.error());
  return *parsed;
}

}  // namespace

Awaitable<void> S3Call::BucketAcl() {
  const std::string& method = head().method;
  auto current = settings_.find(std::string(kAclSetting));
  auto enforced = settings_.find(std::string(kOwnershipSetting));
  const bool acls_disabled =
      enforced != settings_.end() && enforced->second == "BucketOwnerEnforced";
  if (method == "GET") {
    // With ACLs disabled only the owner's full control is in force, and shown.
    wire::AclGrants acl;
    if (current != settings_.end() && !acls_disabled) acl = ParseStoredAcl(current->second);
    std::string document = wire::RenderAccessControlPolicy(acl, wire::Owner{tenant_, tenant_});
    co_return co_await SendXml(200, std::move(document));
  }
  if (method != "PUT") {
    co_return co_await Fail(MakeFailure(405, "MethodNotAllowed", "an ACL takes GET or PUT"));
  }
  SmallBody body = co_await ReadSmallBody();
  if (!body.ok()) co_return co_await Fail(*body.failure);
  auto asked = RequestedAcl(head(), *body, tenant_);
  if (auto* failure = std::get_if<Failure>(&asked)) co_return co_await Fail(std::move(*failure));
  const wire::AclGrants acl = std::get<wire::AclGrants>(asked);
  if (auto refused = RefuseWriteAcl(acl)) co_return co_await Fail(std::move(*refused));
  std::optional<std::string> value;
  if (acl != wire::AclGrants{}) value = SerializeAcl(acl);
  Status stored = co_await StoreSetting(std::string(kAclSetting), value);
  if (!stored.ok()) co_return co_await Fail(FromStatus(stored));
  co_await SendEmpty(200);
}

Awaitable<void> S3Call::ObjectAcl() {
  const std::string& method = head().method;
  if (method != "GET" && method != "PUT") {
    co_return co_await Fail(MakeFailure(405, "MethodNotAllowed", "an ACL takes GET or PUT"));
  }
  std::optional<meta::ObjectRecord> object = co_await StatObject();
  if (!object) co_return;
  if (method == "GET") {
    wire::AclGrants acl;
    auto stored = object->user_metadata.find(std::string(objects::kAclField));
    auto enforced = settings_.find(std::string(kOwnershipSetting));
    const bool acls_disabled =
        enforced != settings_.end() && enforced->second == "BucketOwnerEnforced";
    if (stored != object->user_metadata.end() && !acls_disabled) {
      acl = ParseStoredAcl(stored->second);
    }
    std::string document = wire::RenderAccessControlPolicy(acl, wire::Owner{tenant_, tenant_});
    co_return co_await SendXml(200, std::move(document));
  }
  SmallBody body = co_await ReadSmallBody();
  if (!body.ok()) co_return co_await Fail(*body.failure);
  auto asked = RequestedAcl(head(), *body, tenant_);
  if (auto* failure = std::get_if<Failure>(&asked)) co_return co_await Fail(std::move(*failure));
  write_acl_ = std::get<wire::AclGrants>(asked);
  auto ownership = settings_.find(std::string(kOwnershipSetting));
  if (ownership != settings_.end() && ownership->second == "BucketOwnerEnforced" &&
      *write_acl_ != wire::AclGrants{}) {
    co_return co_await Fail(
        MakeFailure(400, "AccessControlListNotSupported", "The bucket does not allow ACLs"));
  }
  auto block = settings_.find(std::string(kPublicAccessBlockSetting));
  if (block != settings_.end() && IsPublicAcl(*write_acl_)) {
    auto parsed = wire::ParsePublicAccessBlock(block->second, kMaxXmlBodyBytes);
    if (parsed.ok() && parsed->block_public_acls) {
      co_return co_await Fail(
          MakeFailure(403, "AccessDenied", "the bucket's public access block forbids public ACLs"));
    }
  }
  std::map<std::string, std::string> metadata = object->user_metadata;
  ApplyWriteAcl(&metadata);
  auto* objects = deps_.objects;
  std::string tenant = tenant_;
  ObjectId id = object->id;
  auto work = [objects, tenant, id, metadata]() {
    return objects->UpdateUserMetadata(tenant, id, metadata);
  };
  Result<meta::ObjectRecord> updated = co_await deps_.pool->Run(std::move(work));
  if (!updated.ok()) co_return co_await Fail(FromStatus(updated.status()));
  co_await SendEmpty(200);
}

Awaitable<void> S3Call::PublicAccessBlockSetting() {
  const std::string& method = head().method;
  auto current = settings_.find(std::string(kPublicAccessBlockSetting));
  if (method == "GET") {
    if (current == settings_.end()) {
      co_return co_await Fail(MakeFailure(404, "NoSuchPublicAccessBlockConfiguration",
                                          "The public access block configuration was not found"));
    }
    std::string document = current->second;
    co_return co_await SendXml(200, std::move(document));
  }
  std::optional<std::string> value;
  if (method == "PUT") {
    SmallBody body = co_await ReadSmallBody();
    if (!body.ok()) co_return co_await Fail(*body.failure);
    auto parsed = wire::ParsePublicAccessBlock(*body, kMaxXmlBodyBytes);
    if (!parsed.ok()) co_return co_await Fail(FromS3Error(parsed.error()));
    value = wire::RenderPublicAccessBlock(*parsed);
  } else if (method != "DELETE") {
    co_return co_await Fail(
        MakeFailure(405, "MethodNotAllowed", "publicAccessBlock takes GET, PUT or DELETE"));
  }
  Status stored = co_await StoreSetting(std::string(kPublicAccessBlockSetting), value);
  if (!stored.ok()) co_return co_await Fail(FromStatus(stored));
  co_await SendEmpty(method == "PUT" ? 200 : 204);
}

Awaitable<void> S3Call::OwnershipControls() {
  const std::string& method = head().method;
  auto current = settings_.find(std::string(kOwnershipSetting));
  if (method == "GET") {
    if (current == settings_.end()) {
      co_return co_await Fail(MakeFailure(404, "OwnershipControlsNotFoundError",
                                          "The bucket ownership controls were not found"));
    }
    std::string document = wire::RenderOwnershipControls(current->second);
    co_return co_await SendXml(200, std::move(document));
  }
  std::optional<std::string> value;
  if (method == "PUT") {
    SmallBody body = co_await ReadSmallBody();
    if (!body.ok()) co_return co_await Fail(*body.failure);
    auto parsed = wire::ParseOwnershipControls(*body, kMaxXmlBodyBytes);
    if (!parsed.ok()) co_return co_await Fail(FromS3Error(parsed.error()));
    if (*parsed != "BucketOwnerEnforced") {
      co_return co_await Fail(MakeFailure(
          501, "NotImplemented",
          "Cairn supports object ownership 'BucketOwnerEnforced' only (the bucket's owner owns "
          "every object), not '" +
              *parsed + "'"));
    }
    value = *parsed;
  } else if (method != "DELETE") {
    co_return co_await Fail(
        MakeFailure(405, "MethodNotAllowed", "ownershipControls takes GET, PUT or DELETE"));
  }
  Status stored = co_await StoreSetting(std::string(kOwnershipSetting), value);
  if (!stored.ok()) co_return co_await Fail(FromStatus(stored));
  co_await SendEmpty(method == "PUT" ? 200 : 204);
}

Awaitable<void> S3Call::BucketPolicy() {
  const std::string& method = head().method;
  auto current = settings_.find(std::string(kPolicySetting));
  if (method == "GET") {
    if (current == settings_.end()) {
      co_return co_await Fail(
          MakeFailure(404, "NoSuchBucketPolicy", "The bucket policy does not exist"));
    }
    ResponseHead response;
    response.status = 200;
    response.headers.emplace_back("Content-Type", "application/json");
    response.headers.emplace_back("x-amz-request-id", request_id_);
    for (const auto& header : cors_headers_) response.headers.push_back(header);
    status_ = 200;
    std::string body = current->second;
    (void)co_await exchange_.Respond(std::move(response), std::move(body));
    co_return;
  }
  std::optional<std::string> value;
  if (method == "PUT") {
    SmallBody body = co_await ReadSmallBody();
    if (!body.ok()) co_return co_await Fail(*body.failure);
    Result<wire::BucketPolicy> parsed = wire::BucketPolicy::Parse(*body, request_.bucket);
    if (!parsed.ok()) {
      co_return co_await Fail(MakeFailure(400, "MalformedPolicy", parsed.status().message()));
    }
    auto block = settings_.find(std::string(kPublicAccessBlockSetting));
    if (block != settings_.end() && parsed->IsPublic()) {
      auto blocked = wire::ParsePublicAccessBlock(block->second, kMaxXmlBodyBytes);
      if (blocked.ok() && blocked->block_public_policy) {
        co_return co_await Fail(
            MakeFailure(403, "AccessDenied",
                        "the bucket's public access block forbids a public bucket policy"));
      }
    }
    value = std::move(body.text);
  } else if (method != "DELETE") {
    co_return co_await Fail(
        MakeFailure(405, "MethodNotAllowed", "a bucket policy takes GET, PUT or DELETE"));
  }
  Status stored = co_await StoreSetting(std::string(kPolicySetting), value);
  if (!stored.ok()) co_return co_await Fail(FromStatus(stored));
  co_await SendEmpty(204);
}

Awaitable<void> S3Call::BucketCors() {
  const std::string& method = head().method;
  auto current = settings_.find(std::string(kCorsSetting));
  if (method == "GET") {
    if (current == settings_.end()) {
      co_return co_await Fail(
          MakeFailure(404, "NoSuchCORSConfiguration", "The CORS configuration does not exist"));
    }
    std::string document = current->second;
    co_return co_await SendXml(200, std::move(document));
  }
  std::optional<std::string> value;
  if (method == "PUT") {
    SmallBody body = co_await ReadSmallBody();
    if (!body.ok()) co_return co_await Fail(*body.failure);
    wire::CorsParseError error = wire::CorsParseError::kNone;
    Result<wire::CorsConfiguration> parsed = wire::CorsConfiguration::Parse(*body, &error);
    if (!parsed.ok()) {
      std::string code = error == wire::CorsParseError::kInvalidRequest ? "InvalidRequest"
                         : error == wire::CorsParseError::kMaxMessageLengthExceeded
                             ? "MaxMessageLengthExceeded"
                             : "MalformedXML";
      co_return co_await Fail(MakeFailure(400, std::move(code), parsed.status().message()));
    }
    value = parsed->Render();
  } else if (method != "DELETE") {
    co_return co_await Fail(
        MakeFailure(405, "MethodNotAllowed", "a CORS configuration takes GET, PUT or DELETE"));
  }
  Status stored = co_await StoreSetting(std::string(kCorsSetting), value);
  if (!stored.ok()) co_return co_await Fail(FromStatus(stored));
  co_await SendEmpty(method == "PUT" ? 200 : 204);
}

Awaitable<void> S3Call::CorsPreflight() {
  auto header = [this](std::string_view name) -> std::optional<std::string_view> {
    const std::string* value = head().Header(name);
    if (value == nullptr) return std::nullopt;
    return std::string_view(*value);
  };
  auto current = settings_.find(std::string(kCorsSetting));
  Result<wire::CorsHeaders> answer = Status(InternalError("no CORS answer"));
  if (current == settings_.end()) {
    answer = wire::PreflightWithoutConfiguration(header("origin"),
                                                 header("access-control-request-method"));
  } else {
    Result<wire::CorsConfiguration> config = wire::CorsConfiguration::Parse(current->second);
    if (!config.ok()) co_return co_await Fail(FromStatus(config.status()));
    answer = config->Preflight(header("origin"), header("access-control-request-method"),
                               header("access-control-request-headers"));
  }
  if (!answer.ok()) {
    const bool bad = answer.status().code() == StatusCode::kInvalidArgument;
    co_return co_await Fail(MakeFailure(bad ? 400 : 403, bad ? "BadRequest" : "AccessForbidden",
                                        answer.status().message()));
  }
  http::HeaderList headers(answer->begin(), answer->end());
  co_await SendEmpty(200, std::move(headers));
}

Awaitable<void> S3Call::BucketTagging() {
  meta::MetaStore* meta_store = store();
  std::string tenant = tenant_, bucket = request_.bucket;
  const std::string& method = head().method;
  if (method == "GET") {
    auto work = [meta_store, tenant, bucket]() {
      return meta_store->GetNamespaceSettings(tenant, bucket);
    };
    Result<std::map<std::string, std::string>> settings = co_await deps_.pool->Run(std::move(work));
    if (!settings.ok()) co_return co_await Fail(FromStatus(settings.status()));
    auto found = settings->find("tagging");
    if (found == settings->end()) {
      co_return co_await Fail(MakeFailure(404, "NoSuchTagSet", "The TagSet does not exist"));
    }
    std::string document = found->second;
    co_return co_await SendXml(200, std::move(document));
  }
  std::optional<std::string> value;
  if (method == "PUT") {
    SmallBody body = co_await ReadSmallBody();
    if (!body.ok()) co_return co_await Fail(*body.failure);
    auto parsed = wire::ParseTagging(*body, kMaxXmlBodyBytes, wire::kMaxBucketTags);
    if (!parsed.ok()) co_return co_await Fail(FromS3Error(parsed.error()));
    value = wire::RenderTagging(*parsed);
  } else if (method != "DELETE") {
    co_return co_await Fail(
        MakeFailure(405, "MethodNotAllowed", "bucket tagging takes GET, PUT or DELETE"));
  }
  const TimestampMs now = NowMs();
  auto work = [meta_store, tenant, bucket, value, now]() {
    return meta_store->SetNamespaceSetting(tenant, bucket, "tagging", value, now);
  };
  Status stored = co_await deps_.pool->Run(std::move(work));
  if (!stored.ok()) co_return co_await Fail(FromStatus(stored));
  co_await SendEmpty(204);  // S3 answers both PutBucketTagging and DeleteBucketTagging so
}

Awaitable<void> S3Call::GetObjectAttributes() {
  // x-amz-object-attributes: which of ETag, Checksum, ObjectParts, StorageClass, ObjectSize.
  const std::string* wanted_header = head().Header("x-amz-object-attributes");
  if (wanted_header == nullptr || wanted_header->empty()) {
    co_return co_await Fail(
        MakeFailure(400, "InvalidArgument", "x-amz-object-attributes names no attribute"));
  }
  const std::vector<std::string> wanted = SplitCommaList(*wanted_header);
  for (const std::string& item : wanted) {
    if (item != "ETag" && item != "Checksum" && item != "ObjectParts" && item != "StorageClass" &&
        item != "ObjectSize") {
      co_return co_await Fail(
          MakeFailure(400, "InvalidArgument",
                      "x-amz-object-attributes: unknown attribute '" + item.substr(0, 64) + "'"));
    }
  }
  auto wants = [&wanted](std::string_view name) {
    return std::find(wanted.begin(), wanted.end(), name) != wanted.end();
  };
  int max_parts = 1000, part_marker = 0;
  if (const std::string* text = head().Header("x-amz-max-parts")) {
    auto value = ParseDecimal(*text);
    if (!value || *value > 1000) {
      co_return co_await Fail(
          MakeFailure(400, "InvalidArgument", "x-amz-max-parts is not an integer from 0 to 1000"));
    }
    max_parts = static_cast<int>(*value);
  }
  if (const std::string* text = head().Header("x-amz-part-number-marker")) {
    auto value = ParseDecimal(*text);
    if (!value || *value > 10000) {
      co_return co_await Fail(MakeFailure(
          400, "InvalidArgument", "x-amz-part-number-marker is not an integer from 0 to 10000"));
    }
    part_marker = static_cast<int>(*value);
  }
  auto* objects = deps_.objects;
  std::string tenant = tenant_, bucket = request_.bucket, key = request_.key;
  auto work = [objects, tenant, bucket, key]() -> Result<meta::ObjectRecord> {
    auto object = objects->StatByKey(tenant, bucket, key);
    if (!object.ok()) return BucketOrKeyMissing(objects, tenant, bucket, object.status());
    return object;
  };
  Result<meta::ObjectRecord> found = co_await deps_.pool->Run(std::move(work));
  if (!found.ok()) co_return co_await Fail(MissingObject(FromStatus(found.status())));
  if (std::optional<Failure> denied = ObjectAccessFailure(*found)) {
    co_return co_await Fail(std::move(*denied));
  }
  const meta::ObjectRecord& object = *found;

  std::string document =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<GetObjectAttributesResponse "
      "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  if (wants("ETag")) document += "<ETag>" + EscapeXmlText(object.etag) + "</ETag>";
  auto checksum = object.user_metadata.find(std::string(objects::kChecksumField));
  if (wants("Checksum") && checksum != object.user_metadata.end()) {
    std::optional<std::pair<std::string, std::string>> stored =
        SplitStoredChecksum(checksum->second);
    std::optional<sig::ChecksumAlgorithm> algorithm;
    if (stored) algorithm = sig::ChecksumAlgorithmFromHeader(stored->first);
    if (algorithm) {
      const std::string element = ChecksumElement(*algorithm);  // the names are upper case
      document += "<Checksum><" + element + ">" + EscapeXmlText(stored->second) + "</" + element +
                  "><ChecksumType>" +
                  (stored->second.find('-') != std::string::npos ? "COMPOSITE" : "FULL_OBJECT") +
                  "</ChecksumType></Checksum>";
    }
  }
  if (wants("ObjectParts") &&
      object.user_metadata.count(std::string(objects::kPartLayoutField)) > 0) {
    Result<PartRange> first = FindPart(object, 1);
    if (first.ok()) {
      const int total = first->count;
      // The wire name of TotalPartsCount is PartsCount.
      document += "<ObjectParts><PartsCount>" + std::to_string(total) +
                  "</PartsCount><PartNumberMarker>" + std::to_string(part_marker) +
                  "</PartNumberMarker>";
      std::string parts;
      int last = part_marker;
      for (int number = part_marker + 1; number <= total && number - part_marker <= max_parts;
           ++number) {
        Result<PartRange> part = FindPart(object, number);
        if (!part.ok()) break;
        parts += "<Part><PartNumber>" + std::to_string(number) + "</PartNumber><Size>" +
                 std::to_string(part->length) + "</Size></Part>";
        last = number;
      }
      const bool truncated = last < total;
      document += "<NextPartNumberMarker>" + std::to_string(last) +
                  "</NextPartNumberMarker><MaxParts>" + std::to_string(max_parts) +
                  "</MaxParts><IsTruncated>" + (truncated ? "true" : "false") + "</IsTruncated>" +
                  parts + "</ObjectParts>";
    }
  }
  if (wants("StorageClass")) {
    document += "<StorageClass>" + S3StorageClassName(object.storage_class) + "</StorageClass>";
  }
  if (wants("ObjectSize")) {
    document += "<ObjectSize>" + std::to_string(object.size_bytes) + "</ObjectSize>";
  }
  document += "</GetObjectAttributesResponse>";
  http::HeaderList headers;
  headers.emplace_back("Last-Modified", FormatHttpDate(object.created_at_ms));
  co_await SendXml(200, std::move(document), std::move(headers));
}

// ---- POST Object: HTML form uploads ----------------------------------------------------

// Fields are read in pieces of this size until the file part starts: nothing larger is
// held for a client whose credentials are not checked yet.
constexpr size_t kFormReadBytes = 64 * 1024;
// A PutObject's metadata is bounded by the request header limit (16 KiB by default); a
// form's fields may be larger, so its metadata gets that bound explicitly.
constexpr size_t kMaxFormMetadataBytes = 16 * 1024;

Failure FromPostError(const post::PostError& error) {
  return MakeFailure(error.status, error.code, error.message);
}

// The form's fields as the headers a PutObject would carry (acl as x-amz-acl), so that
// the same header checks and metadata rules apply to both.
http::RequestHead FormAsHeaders(const post::FormValues& values) {
  http::RequestHead form;
  form.method = "POST";
  for (const auto& entry : values) {
    form.headers.emplace_back(entry.first == "acl" ? "x-amz-acl" : entry.first, entry.second);
  }
  return form;
}

// Fields that GET and HEAD return as headers must be sendable as headers (a form field,
// unlike a request header, can hold CR and LF).
std::optional<Failure> RefuseUnsafeFormHeaders(const post::FormValues& values) {
  for (const auto& entry : values) {
    bool returned = entry.first == "content-type" || entry.first.rfind("x-amz-meta-", 0) == 0;
    for (const auto& stored : kStoredHeaders) returned = returned || entry.first == stored.first;
    if (returned && !http::IsSafeHeaderValue(entry.second)) {
      return MakeFailure(400, "InvalidArgument",
                         "the form field '" + entry.first.substr(0, 64) +
                             "' holds a character an HTTP header cannot carry");
    }
  }
  return std::nullopt;
}

// POST Object. The form's fields come before its file part; once the file part starts,
// the form's credentials and policy are checked, before a byte of the file is stored. The
// file then streams into the same upload use case as PutObject, checked against the
// policy's content-length-range as it arrives, and is committed only once all of it
// arrived and every check held: an error leaves nothing visible.
Awaitable<void> S3Call::PostObject() {
  std::string boundary;
  std::optional<post::PostError> bad =
      post::ParseFormBoundary(HeaderOr(head(), "content-type"), &boundary);
  if (bad) co_return co_await Fail(FromPostError(*bad));
  post::FormDataParser parser(boundary);
  std::unique_ptr<char[]> buffer(new char[kFormReadBytes]);
  auto first_bytes = std::make_shared<std::string>();
  while (!parser.file_started()) {
    Result<size_t> got = co_await exchange_.ReadBody(buffer.get(), kFormReadBytes);
    if (!got.ok()) co_return co_await Fail(BodyReadFailure(got.status()));
    if (*got == 0) {
      bad = parser.Finish();  // no file part: always an error
      if (!bad) bad = post::PostError{400, "MalformedPOSTRequest", "no file part"};
      co_return co_await Fail(FromPostError(*bad));
    }
    bad = parser.Feed(std::string_view(buffer.get(), *got), first_bytes.get());
    if (bad) co_return co_await Fail(FromPostError(*bad));
  }
  buffer.reset();
  const post::FormValues values = post::CollectFormValues(parser.fields(), parser.file().filename);
  std::string key;
  bad = post::FindObjectKey(values, &key);
  if (bad) co_return co_await Fail(FromPostError(*bad));
  post::PostCredentials credentials;
  bad = post::ParsePostCredentials(values, &credentials);
  if (bad) co_return co_await Fail(FromPostError(*bad));
  post::PostPolicy policy;
  if (credentials.kind == post::PostAuthKind::kAnonymous) {
    // No policy and no signature: the bucket's ACL or policy must let anyone write.
    requester_.reset();
    scope_ = meta::Scope::kWrite;
    bool allowed = false;
    co_await ResolveBucket(&allowed);
    if (!allowed) co_return;
  } else {
    bool authenticated = false;
    co_await AuthenticatePostForm(credentials, &authenticated);
    if (!authenticated) co_return;
    bad = post::ParsePostPolicy(credentials.policy, &policy);
    if (bad) co_return co_await Fail(FromPostError(*bad));
    bad = post::CheckPostPolicy(policy, values, request_.bucket, NowMs());
    if (bad) co_return co_await Fail(FromPostError(*bad));
  }
  co_await StorePostFile(parser, values, key, policy, first_bytes);
}

// The form's access key, as Authenticate treats a request's: the secret verifies the
// policy's signature, a revoked key is reported as revoked only to a form its secret
// signs, the key's first tenant owns the bucket, it must be allowed to write, and the
// tenant's rate limit applies. Sends the failure itself; *ok tells whether it passed.
Awaitable<void> S3Call::AuthenticatePostForm(const post::PostCredentials& credentials, bool* ok) {
  *ok = false;
  S3Api::State* state = state_;
  const int64_t now = NowMs();
  auto verify_work = [state, credentials, now]() -> std::pair<Result<meta::S3KeyRecord>, bool> {
    Result<meta::S3KeyRecord> record = state->LookupKey(credentials.access_key, now);
    const bool matches =
        record.ok() && post::PostSignatureMatches(credentials, record->secret, &state->key_cache);
    return {std::move(record), matches};
  };
  std::pair<Result<meta::S3KeyRecord>, bool> outcome =
      co_await deps_.pool->Run(std::move(verify_work));
  const std::string unknown_key =
      "The AWS access key Id you provided does not exist in our records.";
  if (!outcome.first.ok()) {
    const StatusCode code = outcome.first.status().code();
    if (code == StatusCode::kNotFound || code == StatusCode::kInvalidArgument) {
      co_return co_await Fail(MakeFailure(403, "InvalidAccessKeyId", unknown_key));
    }
    if (code == StatusCode::kUnavailable) {
      co_return co_await Fail(
          MakeFailure(503, "ServiceUnavailable", "the key store is unavailable"));
    }
    co_return co_await Fail(MakeFailure(500, "InternalError", "the access key could not be read"));
  }
  const meta::S3KeyRecord& record = *outcome.first;
  access_key_ = record.access_key;
  if (!outcome.second) {
    if (record.revoked)
      co_return co_await Fail(MakeFailure(403, "InvalidAccessKeyId", unknown_key));
    co_return co_await Fail(MakeFailure(403, "SignatureDoesNotMatch",
                                        "The request signature we calculated does not match the "
                                        "signature you provided. Check your key and signing "
                                        "method."));
  }
  if (record.revoked) {
    co_return co_await Fail(MakeFailure(403, "InvalidAccessKeyId",
                                        "The AWS access key Id you provided is inactive: access "
                                        "key " +
                                            record.access_key + " was revoked"));
  }
  if (record.tenants.empty()) {
    co_return co_await Fail(MakeFailure(403, "InvalidAccessKeyId", "unknown access key"));
  }
  tenant_ = record.tenants.front();
  requester_ = tenant_;
  scope_ = record.scope;
  if (static_cast<int>(scope_) < static_cast<int>(meta::Scope::kWrite)) {
    co_return co_await Fail(MakeFailure(403, "AccessDenied", "this access key may not write"));
  }
  // The bucket's owner, its ACL and policy, and the rate limit, as for any request.
  co_await ResolveBucket(ok);
}

// An anonymous form (no policy, no signature) may write only to a bucket that grants
// public write access; on success this sets tenant_ to the bucket's owner and returns
// nullopt. Cairn has no public-write bucket ACL or bucket policy yet, so every anonymous
// form is refused.
// Streams the form's file into an upload (see PostObject). `first_bytes`: the file's
// content that arrived with the fields.
// A form's file part: the bytes between its boundaries, checked against the policy's
// content-length-range as they come; whatever follows the file is read and ignored.
class FormFileContent : public BodyContent {
 public:
  FormFileContent(post::FormDataParser* parser, const post::PostPolicy* policy)
      : parser_(parser), policy_(policy) {}
  std::optional<Failure> Feed(std::string_view raw, std::string* content) override {
    if (parser_->file_complete()) return std::nullopt;  // fields after the file are ignored
    std::optional<post::PostError> bad = parser_->Feed(raw, content);
    if (bad) return FromPostError(*bad);
    return std::nullopt;
  }
  std::optional<Failure> Check(uint64_t) override {
    std::optional<post::PostError> too_large =
        post::CheckFileSize(*policy_, parser_->file_size(), false);
    if (too_large) return FromPostError(*too_large);
    return std::nullopt;
  }
  std::optional<Failure> Finish() override {
    std::optional<post::PostError> bad = parser_->Finish();
    if (!bad) bad = post::CheckFileSize(*policy_, parser_->file_size(), true);
    if (bad) return FromPostError(*bad);
    return std::nullopt;
  }

 private:
  post::FormDataParser* parser_;
  const post::PostPolicy* policy_;
};

Awaitable<void> S3Call::StorePostFile(post::FormDataParser& parser, const post::FormValues& values,
                                      const std::string& key, const post::PostPolicy& policy,
                                      std::shared_ptr<std::string> first_bytes) {
  Result<bool> exists = co_await BucketExists();
  if (!exists.ok()) co_return co_await Fail(FromStatus(exists.status()));
  if (!*exists)
    co_return co_await Fail(MakeFailure(404, "NoSuchBucket", "the bucket does not exist"));
  // The fields are the headers of a PutObject: the same refusals (the acl field's canned
  // ACL included), the same metadata.
  const http::RequestHead form = FormAsHeaders(values);
  std::optional<Failure> refused =
      RefuseUnsupportedHeaders(form, wire::S3Operation::kPutObject, tenant_);
  if (!refused) refused = RefuseUnsafeFormHeaders(values);
  if (refused) co_return co_await Fail(std::move(*refused));
  // The form's acl field, as x-amz-acl of a PutObject.
  if (auto asked = AclFromHeaders(form, tenant_)) {
    if (auto* failure = std::get_if<Failure>(&*asked)) co_return co_await Fail(std::move(*failure));
    write_acl_ = std::get<wire::AclGrants>(*asked);
    if (auto refused = RefuseWriteAcl(*write_acl_)) co_return co_await Fail(std::move(*refused));
  }
  objects::UploadRequest upload_request;
  upload_request.tenant = tenant_;
  upload_request.namespace_name = request_.bucket;
  upload_request.key = key;
  const std::string storage_class_name = HeaderOr(form, "x-amz-storage-class");
  const std::optional<StorageClass> storage_class = StorageClassFromS3(storage_class_name);
  if (!storage_class) co_return co_await Fail(InvalidStorageClass(storage_class_name));
  upload_request.storage_class = *storage_class;
  // S3 takes the type from the Content-Type field, not from the file part's header.
  upload_request.content_type = HeaderOr(form, "content-type", "binary/octet-stream");
  upload_request.user_metadata = UserMetadataFromHeaders(form);
  ApplyWriteAcl(&upload_request.user_metadata);
  size_t metadata_bytes = 0;
  for (const auto& entry : upload_request.user_metadata) {
    metadata_bytes += entry.first.size() + entry.second.size();
  }
  if (metadata_bytes > kMaxFormMetadataBytes) {
    co_return co_await Fail(MakeFailure(400, "MetadataTooLarge",
                                        "Your metadata headers exceed the maximum allowed "
                                        "metadata size (" +
                                            std::to_string(kMaxFormMetadataBytes) + " bytes)"));
  }
  if (const std::string* tagging = form.Header("tagging")) {
    wire::S3Result<std::vector<wire::Tag>> tags = wire::ParseTagging(*tagging, kMaxXmlBodyBytes);
    if (!tags.ok()) co_return co_await Fail(FromS3Error(tags.error()));
    upload_request.user_metadata = WithTags(std::move(upload_request.user_metadata), *tags);
  }
  if (const std::string* md5 = form.Header("content-md5")) {
    auto raw = Base64Decode(*md5);
    if (!raw.ok() || raw->size() != 16) {
      co_return co_await Fail(MakeFailure(400, "InvalidDigest", "the Content-MD5 is not valid"));
    }
    upload_request.expected_md5 = *raw;
  }
  // A checksum field (x-amz-checksum-<algorithm>) is verified over the file and kept; an
  // x-amz-checksum-algorithm field alone asks for one to be computed and kept.
  BodyChecksum checksum;
  for (const auto& entry : values) {
    std::optional<sig::ChecksumAlgorithm> algorithm = sig::ChecksumAlgorithmFromHeader(entry.first);
    if (!algorithm) continue;
    if (checksum.hasher) {
      co_return co_await Fail(
          MakeFailure(400, "InvalidRequest", "Expecting a single x-amz-checksum- field"));
    }
    checksum.hasher.emplace(*algorithm);
    checksum.value = entry.second;
  }
  if (const std::string* named = form.Header("x-amz-checksum-algorithm")) {
    Result<sig::ChecksumAlgorithm> algorithm = sig::ParseChecksumAlgorithm(*named);
    if (!algorithm.ok() || (checksum.hasher && checksum.hasher->algorithm() != *algorithm)) {
      co_return co_await Fail(MakeFailure(
          400, "InvalidRequest",
          "Value for x-amz-checksum-algorithm is invalid or does not match the checksum sent"));
    }
    if (!checksum.hasher) {
      checksum.hasher.emplace(*algorithm);
      checksum.computed = true;
    }
  }
  auto begun = deps_.objects->BeginUpload(std::move(upload_request));
  if (!begun.ok()) co_return co_await Fail(FromStatus(begun.status()));
  std::shared_ptr<objects::Upload> upload = std::move(begun).value();
  std::shared_ptr<api::UploadMemory::Reservation> memory;
  if (deps_.upload_memory != nullptr) {
    const uint64_t wanted =
        api::UploadBufferBytes(head(), deps_.objects->options().chunk_size_bytes, true);
    Result<std::shared_ptr<api::UploadMemory::Reservation>> reserved =
        co_await deps_.upload_memory->Reserve(wanted);
    if (!reserved.ok()) {
      upload->Abort();
      co_return co_await Fail(MakeFailure(503, "SlowDown", reserved.status().message()));
    }
    memory = *reserved;
  }
  // One piece of the body is read while the file bytes parsed out of the previous one
  // are hashed.
  auto executor = co_await boost::asio::this_coro::executor;
  api::UploadPipeline pipeline(deps_.pool, upload, executor);
  FormFileContent file(&parser, &policy);
  std::optional<Failure> failure = co_await ReceiveBody(pipeline, &file, std::move(first_bytes),
                                                        checksum, deps_.max_object_bytes);
  if (failure) co_return co_await Fail(std::move(*failure));
  if (checksum.hasher) {
    upload->SetMetadata(
        std::string(objects::kChecksumField),
        std::string(sig::ChecksumHeaderName(checksum.hasher->algorithm())) + ":" + checksum.value);
  }
  Result<meta::CommitResult> committed = co_await pipeline.Commit();
  if (!committed.ok()) co_return co_await Fail(FromStatus(committed.status()));
  const std::string etag = committed->object.etag;
  http::HeaderList headers;
  headers.emplace_back("ETag", Quoted(etag));
  if (checksum.hasher) {
    headers.emplace_back(std::string(sig::ChecksumHeaderName(checksum.hasher->algorithm())),
                         checksum.value);
  }
  const std::string location =
      (request_.virtual_hosted ? "/" : "/" + request_.bucket + "/") + sig::UriEncode(key, false);
  std::optional<std::string> redirect = post::SuccessRedirect(values, request_.bucket, key, etag);
  if (redirect) {
    headers.emplace_back("Location", *redirect);
    co_return co_await SendEmpty(303, std::move(headers));
  }
  headers.emplace_back("Location", location);
  const int status = post::SuccessStatus(values);
  if (status == 201) {
    std::string document = post::RenderPostResponse(location, request_.bucket, key, etag);
    co_return co_await SendXml(201, std::move(document), std::move(headers));
  }
  co_await SendEmpty(status, std::move(headers));
}

Awaitable<void> S3Call::NotImplemented() {
  const std::string& feature = request_.unsupported;
  const std::string& method = head().method;
  if (method == "OPTIONS") {
    Result<bool> exists = co_await BucketExists();
    if (!exists.ok()) co_return co_await Fail(FromStatus(exists.status()));
    if (!*exists)
      co_return co_await Fail(MakeFailure(404, "NoSuchBucket", "the bucket does not exist"));
    co_return co_await CorsPreflight();
  }
  if (feature == "post-object") {
    co_return co_await Fail(MakeFailure(501, "NotImplemented",
                                        "Cairn does not implement the '" + feature + "' feature"));
  }
  if (!request_.key.empty()) {
    // Object subresources. Retention and legal holds need Object Lock, which no bucket has.
    if (feature == "retention" || feature == "legal-hold") {
      co_return co_await Fail(MakeFailure(400, "InvalidRequest",
                                          "Bucket is missing Object Lock Configuration: Cairn "
                                          "does not implement Object Lock"));
    }
    if (feature == "acl") co_return co_await ObjectAcl();
    co_return co_await Fail(MakeFailure(501, "NotImplemented",
                                        "Cairn does not implement the '" + feature + "' feature"));
  }
  // Bucket subresources: a setting Cairn does not implement is a setting no bucket has.
  // Reading one answers what S3 answers for an unconfigured bucket (the NoSuch... code or
  // an empty document SDKs and Terraform expect), deleting one succeeds (nothing to
  // delete), and setting one is refused.
  Result<bool> exists = co_await BucketExists();
  if (!exists.ok()) co_return co_await Fail(FromStatus(exists.status()));
  if (!*exists)
    co_return co_await Fail(MakeFailure(404, "NoSuchBucket", "the bucket does not exist"));
  if (feature == "tagging") co_return co_await BucketTagging();
  if (feature == "acl") co_return co_await BucketAcl();
  if (feature == "policy") co_return co_await BucketPolicy();
  if (feature == "cors") co_return co_await BucketCors();
  if (feature == "policyStatus" && method == "GET") {
    // Public through its policy or, as Ceph reports it, through a public bucket ACL.
    auto acl = settings_.find(std::string(kAclSetting));
    const bool is_public = (policy_ && policy_->IsPublic()) ||
                           (acl != settings_.end() && IsPublicAcl(ParseStoredAcl(acl->second)));
    std::string document = std::string(kXmlDeclaration) +
                           "<PolicyStatus xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                           "<IsPublic>" +
                           (is_public ? "true" : "false") + "</IsPublic></PolicyStatus>";
    co_return co_await SendXml(200, std::move(document));
  }
  if (feature == "publicAccessBlock") co_return co_await PublicAccessBlockSetting();
  if (feature == "ownershipControls") co_return co_await OwnershipControls();
  const UnconfiguredSetting* setting = FindUnconfiguredSetting(feature);
  if (method == "GET" && setting != nullptr) {
    if (!setting->empty_document.empty()) {
      std::string document = std::string(setting->empty_document);
      co_return co_await SendXml(200, std::move(document));
    }
    co_return co_await Fail(MakeFailure(404, std::string(setting->missing_code),
                                        std::string(setting->missing_message)));
  }
  if (method == "DELETE" && setting != nullptr && setting->deletable) {
    co_return co_await SendEmpty(204);
  }
  co_await Fail(MakeFailure(501, "NotImplemented",
                            "Cairn does not implement the bucket's '" + feature + "' setting"));
}

std::string MetricMethod(const std::string& method) {
  static const char* kKnown[] = {"GET", "HEAD", "PUT", "POST", "DELETE"};
  for (const char* known : kKnown) {
    if (method == known) return method;
  }
  return "OTHER";
}

}  // namespace

S3Api::S3Api(S3ApiDependencies dependencies) : state_(std::make_unique<State>()) {
  state_->deps = std::move(dependencies);
}
S3Api::~S3Api() = default;

Awaitable<void> S3Api::Handle(Exchange& exchange) {
  const auto start = std::chrono::steady_clock::now();
  S3Call call(state_.get(), exchange);
  co_await call.Run();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (state_->deps.access_log) {
    AccessLogEntry entry;
    entry.api = "s3";
    entry.request_id = call.request_id();
    entry.operation = call.operation_name();
    entry.method = exchange.request().method;
    entry.bucket = call.request().bucket;
    entry.key = call.request().key;
    // The status that went out: the server's own if it answered a broken body itself.
    entry.status = exchange.response_status() != 0 ? exchange.response_status() : call.status();
    entry.bytes_in = exchange.request_body_bytes();
    entry.bytes_out = exchange.response_body_bytes();
    entry.seconds = seconds;
    entry.key_id = call.access_key();
    entry.peer = exchange.request().peer;
    LogAccess(entry);
  }
  const std::string method = MetricMethod(exchange.request().method);
  metrics::Labels labels;
  labels.emplace_back("method", method);
  labels.emplace_back("status", std::to_string(call.status()));
  labels.emplace_back("namespace", call.bucket_label());
  labels.emplace_back("api", "s3");
  state_->deps.metrics->Increment("cairn_requests_total", labels);
  metrics::Labels duration_labels;
  duration_labels.emplace_back("method", method);
  duration_labels.emplace_back("namespace", call.bucket_label());
  state_->deps.metrics->Observe("cairn_request_duration_seconds", duration_labels, seconds);
}

std::pair<ResponseHead, std::string> RenderS3ServerError(int status, const std::string& code,
                                                         const std::string& message) {
  return RenderFailure(MakeFailure(status, code, message), "", RandomRequestId());
}

GeneratedS3Key GenerateS3Key() {
  static constexpr char kUpper[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  static constexpr char kSecret[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  unsigned char random[60];
  platform::FillRandom(random, sizeof(random));
  GeneratedS3Key key;
  key.access_key = "CRN";
  for (int i = 0; i < 17; ++i) key.access_key.push_back(kUpper[random[i] % 36]);
  for (int i = 0; i < 40; ++i) key.secret.push_back(kSecret[random[20 + i] % 64]);
  return key;
}

}  // namespace cairn::api
