#include "api/s3/wire/s3_request.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <utility>

#include "core/text.h"
#include "core/types.h"

namespace cairn::s3 {
namespace {

using QueryPairs = std::vector<std::pair<std::string, std::string>>;

// Subresources of S3 that Cairn recognises but does not implement. Listed so such requests
// are answered 501 (or a default) instead of being mistaken for a plain listing or read.
constexpr std::string_view kUnsupportedBucketSubresources[] = {
    "accelerate",        "acl",
    "analytics",         "cors",
    "encryption",        "intelligent-tiering",
    "inventory",         "lifecycle",
    "logging",           "metrics",
    "notification",      "object-lock",
    "ownershipControls", "policy",
    "policyStatus",      "publicAccessBlock",
    "replication",       "requestPayment",
    "tagging",           "versioning",
    "website",
};
constexpr std::string_view kUnsupportedObjectSubresources[] = {
    "acl", "legal-hold", "restore", "retention", "select", "torrent",
};

// Query parameters whose value Cairn interprets: a repeated one is ambiguous (which one
// did the client sign and mean?), so it is rejected rather than silently picking one.
constexpr std::string_view kInterpretedParameters[] = {
    "prefix",
    "delimiter",
    "marker",
    "continuation-token",
    "start-after",
    "max-keys",
    "encoding-type",
    "fetch-owner",
    "list-type",
    "uploadId",
    "partNumber",
    "max-parts",
    "part-number-marker",
    "key-marker",
    "upload-id-marker",
    "max-uploads",
    "versionId",
    "version-id-marker",
    "max-buckets",
};

S3Error Error(S3ErrorCode code, std::string message, std::string resource = {}) {
  return MakeS3Error(code, std::move(message), std::move(resource));
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Unsigned decimal of at most 18 digits (no sign, no spaces), or nullopt.
std::optional<uint64_t> ParseUnsigned(std::string_view text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

const std::string* FindHeader(const http::RequestHead& head, std::string_view lower_name) {
  for (const auto& [name, value] : head.headers) {
    if (name == lower_name) return &value;
  }
  return nullptr;
}

// Whether a Content-Type names multipart/form-data (case-insensitive, parameters ignored).
bool IsFormDataContentType(const std::string* content_type) {
  if (content_type == nullptr) return false;
  std::string_view media_type(*content_type);
  media_type = TrimAscii(media_type.substr(0, media_type.find(';')), kHttpWhitespace);
  return EqualsIgnoreCaseAscii(media_type, "multipart/form-data");
}

// The decoded query, with lookups by name. Names are case-sensitive, as in S3.
class Query {
 public:
  explicit Query(QueryPairs pairs) : pairs_(std::move(pairs)) {}

  bool Has(std::string_view name) const { return Get(name) != nullptr; }
  const std::string* Get(std::string_view name) const {
    for (const auto& [key, value] : pairs_) {
      if (key == name) return &value;
    }
    return nullptr;
  }
  // The first interpreted parameter that appears more than once, or nullptr.
  const std::string* FindRepeatedInterpreted() const {
    for (std::string_view name : kInterpretedParameters) {
      int count = 0;
      for (const auto& [key, value] : pairs_) {
        if (key == name && ++count == 2) return &key;
      }
    }
    return nullptr;
  }

 private:
  QueryPairs pairs_;
};

// Host "photos.s3.local:9000" with base "s3.local" -> "photos". The longest matching base
// wins, so bases "s3.local" and "local" coexist.
std::optional<std::string> VirtualHostBucket(const std::string* host_header,
                                             const S3AddressingOptions& options) {
  if (host_header == nullptr) return std::nullopt;
  std::string host = ToLowerAscii(*host_header);
  if (host.empty() || host.front() == '[') return std::nullopt;  // IPv6 literal
  size_t colon = host.rfind(':');
  if (colon != std::string::npos) host.resize(colon);
  if (!host.empty() && host.back() == '.') host.pop_back();  // fully-qualified form
  std::optional<std::string> best;
  size_t best_base_size = 0;
  for (const std::string& configured : options.virtual_host_bases) {
    std::string base = ToLowerAscii(configured);
    if (base.empty() || host.size() <= base.size() + 1) continue;
    if (host.compare(host.size() - base.size(), base.size(), base) != 0) continue;
    if (host[host.size() - base.size() - 1] != '.') continue;
    if (base.size() > best_base_size) {
      best_base_size = base.size();
      best = host.substr(0, host.size() - base.size() - 1);
    }
  }
  return best;
}

// Buckets that already exist are Cairn namespaces ([a-z0-9._-]{1,63}), a superset of S3's
// rules: accepting them lets S3 tools reach namespaces made through the native API.
std::optional<S3Error> CheckExistingBucketName(std::string_view name) {
  Status status = ValidateName("bucket name", name);
  if (status.ok()) return std::nullopt;
  return Error(S3ErrorCode::kInvalidBucketName, status.message(), "/" + std::string(name));
}

std::optional<S3Error> CheckKey(std::string_view key, std::string_view what,
                                const std::string& resource) {
  if (key.size() > kMaxKeyBytes) {
    return Error(
        S3ErrorCode::kKeyTooLongError,
        std::string(what) + " is " + std::to_string(key.size()) + " bytes; the limit is 1024",
        resource);
  }
  Status status = ValidateKey(key);
  if (status.ok()) return std::nullopt;
  return Error(S3ErrorCode::kInvalidURI, std::string(what) + ": " + status.message(), resource);
}

// Parses a count parameter (max-keys, max-uploads, max-parts): S3 lowers values over 1000
// to 1000 and rejects anything that is not a non-negative 32-bit integer.
std::optional<S3Error> ParseCount(const Query& query, std::string_view name, int* out,
                                  const std::string& resource) {
  const std::string* text = query.Get(name);
  if (text == nullptr) return std::nullopt;
  std::optional<uint64_t> value = ParseUnsigned(*text);
  if (!value || *value > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
    return Error(S3ErrorCode::kInvalidArgument,
                 std::string(name) + " '" + *text + "' is not an integer between 0 and " +
                     std::to_string(std::numeric_limits<int32_t>::max()),
                 resource);
  }
  *out = static_cast<int>(std::min<uint64_t>(*value, kMaxListEntries));
  return std::nullopt;
}

std::optional<S3Error> ParseStringParameter(const Query& query, std::string_view name,
                                            std::optional<std::string>* out,
                                            const std::string& resource) {
  const std::string* text = query.Get(name);
  if (text == nullptr) return std::nullopt;
  if (!IsValidUtf8(*text) || text->find('\0') != std::string::npos) {
    return Error(S3ErrorCode::kInvalidArgument,
                 std::string(name) + " is not valid UTF-8 without NUL", resource);
  }
  *out = *text;
  return std::nullopt;
}

std::optional<S3Error> ParseEncodingType(const Query& query, S3Request* request) {
  const std::string* text = query.Get("encoding-type");
  if (text == nullptr) return std::nullopt;
  if (*text != "url") {
    return Error(S3ErrorCode::kInvalidArgument,
                 "encoding-type '" + *text + "' is not supported; the only value is 'url'",
                 request->resource);
  }
  request->encoding_type_url = true;
  return std::nullopt;
}

std::optional<S3Error> ParseListingParameters(const Query& query, S3Request* request) {
  const std::string& resource = request->resource;
  std::optional<S3Error> error;
  auto string_parameter = [&](std::string_view name, std::optional<std::string>* out) {
    if (!error) error = ParseStringParameter(query, name, out, resource);
  };
  string_parameter("prefix", &request->prefix);
  string_parameter("delimiter", &request->delimiter);
  // An empty delimiter is no delimiter; S3 does not echo it.
  if (request->delimiter && request->delimiter->empty()) request->delimiter.reset();
  if (!error) error = ParseEncodingType(query, request);
  switch (request->operation) {
    case S3Operation::kListObjects:
      string_parameter("marker", &request->marker);
      if (!error) error = ParseCount(query, "max-keys", &request->max_keys, resource);
      break;
    case S3Operation::kListObjectsV2:
      string_parameter("continuation-token", &request->continuation_token);
      string_parameter("start-after", &request->start_after);
      if (!error) error = ParseCount(query, "max-keys", &request->max_keys, resource);
      if (const std::string* fetch = query.Get("fetch-owner"); !error && fetch != nullptr) {
        std::string value = ToLowerAscii(*fetch);
        if (value != "true" && value != "false") {
          error = Error(S3ErrorCode::kInvalidArgument,
                        "fetch-owner '" + *fetch + "' is neither true nor false", resource);
        }
        request->fetch_owner = value == "true";
      }
      break;
    case S3Operation::kListMultipartUploads:
      string_parameter("key-marker", &request->key_marker);
      string_parameter("upload-id-marker", &request->upload_id_marker);
      if (!error) error = ParseCount(query, "max-uploads", &request->max_uploads, resource);
      break;
    case S3Operation::kListObjectVersions:
      string_parameter("key-marker", &request->key_marker);
      string_parameter("version-id-marker", &request->version_id_marker);
      if (!error) error = ParseCount(query, "max-keys", &request->max_keys, resource);
      // Every object has the one version "null"; a marker naming any other cannot be one
      // this server handed out.
      if (!error && request->version_id_marker) {
        if (!request->key_marker) {
          error = Error(S3ErrorCode::kInvalidArgument, "a version-id-marker needs a key-marker",
                        resource);
        } else if (*request->version_id_marker != "null") {
          error = Error(S3ErrorCode::kInvalidArgument,
                        "version-id-marker '" + request->version_id_marker->substr(0, 64) +
                            "' is not a version of this bucket (Cairn keeps one version, "
                            "\"null\", per key)",
                        resource);
        }
      }
      break;
    default:
      break;
  }
  return error;
}

std::optional<S3Error> ParsePartNumber(const Query& query, S3Request* request) {
  const std::string* text = query.Get("partNumber");
  if (text == nullptr) return std::nullopt;
  std::optional<uint64_t> value = ParseUnsigned(*text);
  if (!value || *value < 1 || *value > static_cast<uint64_t>(kMaxPartNumber)) {
    return Error(S3ErrorCode::kInvalidArgument,
                 "partNumber '" + *text + "' is not an integer between 1 and 10000",
                 request->resource);
  }
  request->part_number = static_cast<int>(*value);
  return std::nullopt;
}

std::optional<S3Error> ParseListPartsParameters(const Query& query, S3Request* request) {
  if (auto error = ParseCount(query, "max-parts", &request->max_parts, request->resource)) {
    return error;
  }
  if (const std::string* text = query.Get("part-number-marker")) {
    std::optional<uint64_t> value = ParseUnsigned(*text);
    if (!value || *value > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
      return Error(S3ErrorCode::kInvalidArgument,
                   "part-number-marker '" + *text + "' is not a non-negative integer",
                   request->resource);
    }
    request->part_number_marker = static_cast<int>(*value);
  }
  return ParseEncodingType(query, request);
}

// "bucket/key" or "/bucket/key", percent-encoded, optionally followed by "?versionId=...".
// The '?' is looked for before decoding: a '?' inside the key arrives as "%3F".
S3Result<CopySource> ParseCopySource(std::string_view header, const std::string& resource) {
  auto invalid = [&](std::string why) {
    return Error(S3ErrorCode::kInvalidArgument,
                 "x-amz-copy-source '" + std::string(header) + "': " + why, resource);
  };
  std::string_view raw = header;
  size_t question = raw.find('?');
  if (question != std::string_view::npos) {
    auto parameters = http::ParseQuery(raw.substr(question + 1));
    if (!parameters.ok()) return invalid(parameters.status().message());
    for (const auto& [name, value] : *parameters) {
      if (name != "versionId") return invalid("unknown parameter '" + name + "'");
      if (value != "null") {
        return Error(
            S3ErrorCode::kNotImplemented,
            "x-amz-copy-source names version '" + value + "'; Cairn keeps no object versions",
            resource);
      }
    }
    raw = raw.substr(0, question);
  }
  auto decoded = http::PercentDecode(raw, /*plus_is_space=*/false);
  if (!decoded.ok()) return invalid(decoded.status().message());
  std::string_view path = *decoded;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  size_t slash = path.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == path.size()) {
    return invalid("it must name the source bucket and key as bucket/key");
  }
  CopySource source{std::string(path.substr(0, slash)), std::string(path.substr(slash + 1))};
  if (!ValidateName("source bucket name", source.bucket).ok()) {
    return invalid("'" + source.bucket + "' is not a valid bucket name");
  }
  if (auto error = CheckKey(source.key, "copy source key", resource)) {
    if (error->code == S3ErrorCode::kInvalidURI) return invalid(error->message);
    return *error;
  }
  return source;
}

S3Result<CopySourceRange> ParseCopySourceRange(std::string_view header,
                                               const std::string& resource) {
  auto invalid = [&] {
    return Error(S3ErrorCode::kInvalidArgument,
                 "x-amz-copy-source-range '" + std::string(header) +
                     "' must be bytes=first-last with first <= last",
                 resource);
  };
  constexpr std::string_view kUnit = "bytes=";
  if (header.substr(0, kUnit.size()) != kUnit) return invalid();
  std::string_view spec = header.substr(kUnit.size());
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return invalid();
  std::optional<uint64_t> first = ParseUnsigned(spec.substr(0, dash));
  std::optional<uint64_t> last = ParseUnsigned(spec.substr(dash + 1));
  if (!first || !last || *first > *last) return invalid();
  return CopySourceRange{*first, *last};
}

// Fills copy_source (and, for UploadPartCopy, copy_source_range) from the headers.
std::optional<S3Error> ParseCopyHeaders(const http::RequestHead& head, S3Request* request) {
  const std::string* source = FindHeader(head, "x-amz-copy-source");
  if (source == nullptr) return std::nullopt;
  S3Result<CopySource> parsed = ParseCopySource(*source, request->resource);
  if (!parsed.ok()) return parsed.error();
  request->copy_source = std::move(parsed).value();
  if (request->operation != S3Operation::kUploadPartCopy) return std::nullopt;
  const std::string* range = FindHeader(head, "x-amz-copy-source-range");
  if (range == nullptr) return std::nullopt;
  S3Result<CopySourceRange> parsed_range = ParseCopySourceRange(*range, request->resource);
  if (!parsed_range.ok()) return parsed_range.error();
  request->copy_source_range = *parsed_range;
  return std::nullopt;
}

S3Error MethodNotAllowed(const S3Request& request, std::string_view method) {
  return Error(S3ErrorCode::kMethodNotAllowed,
               "method " + std::string(method) + " is not allowed against this resource",
               request.resource);
}

// Picks the operation for a request on the bucket itself (no key).
std::optional<S3Error> RouteBucket(const Query& query, const http::RequestHead& head,
                                   std::string_view method, S3Request* request) {
  for (std::string_view name : kUnsupportedBucketSubresources) {
    if (query.Has(name)) {
      request->operation = S3Operation::kNotImplemented;
      request->unsupported = std::string(name);
      return std::nullopt;
    }
  }
  if (query.Has("uploadId") || query.Has("partNumber")) {
    return Error(S3ErrorCode::kInvalidRequest, "uploadId and partNumber need an object key",
                 request->resource);
  }
  auto only = [&](std::string_view allowed, S3Operation operation) -> std::optional<S3Error> {
    if (method != allowed) return MethodNotAllowed(*request, method);
    request->operation = operation;
    return std::nullopt;
  };
  if (query.Has("delete")) return only("POST", S3Operation::kDeleteObjects);
  if (query.Has("location")) return only("GET", S3Operation::kGetBucketLocation);
  if (query.Has("versions")) return only("GET", S3Operation::kListObjectVersions);
  if (query.Has("uploads")) {
    if (method == "POST") {
      return Error(S3ErrorCode::kInvalidRequest, "CreateMultipartUpload needs an object key",
                   request->resource);
    }
    return only("GET", S3Operation::kListMultipartUploads);
  }
  if (method == "GET") {
    request->operation = S3Operation::kListObjects;
    if (const std::string* list_type = query.Get("list-type")) {
      if (*list_type != "2") {
        return Error(S3ErrorCode::kInvalidArgument,
                     "list-type '" + *list_type + "' is not supported; use 2 or omit it",
                     request->resource);
      }
      request->operation = S3Operation::kListObjectsV2;
    }
  } else if (method == "HEAD") {
    request->operation = S3Operation::kHeadBucket;
  } else if (method == "PUT") {
    request->operation = S3Operation::kCreateBucket;
  } else if (method == "DELETE") {
    request->operation = S3Operation::kDeleteBucket;
  } else {  // POST without ?delete: an HTML form upload (POST Object)
    if (!IsFormDataContentType(FindHeader(head, "content-type"))) {
      return Error(S3ErrorCode::kPreconditionFailed,
                   "At least one of the pre-conditions you specified did not hold: Bucket POST "
                   "must be of the enclosure-type multipart/form-data",
                   request->resource);
    }
    request->operation = S3Operation::kPostObject;
  }
  return std::nullopt;
}

// Picks the operation for a request on an object (bucket and key).
std::optional<S3Error> RouteObject(const Query& query, const http::RequestHead& head,
                                   std::string_view method, S3Request* request) {
  for (std::string_view name : kUnsupportedObjectSubresources) {
    if (query.Has(name)) {
      request->operation = S3Operation::kNotImplemented;
      request->unsupported = std::string(name);
      return std::nullopt;
    }
  }
  if (query.Has("attributes")) {
    if (method != "GET") return MethodNotAllowed(*request, method);
    request->operation = S3Operation::kGetObjectAttributes;
    return std::nullopt;
  }
  const bool copy = FindHeader(head, "x-amz-copy-source") != nullptr;
  if (query.Has("tagging")) {
    if (method == "GET")
      request->operation = S3Operation::kGetObjectTagging;
    else if (method == "PUT")
      request->operation = S3Operation::kPutObjectTagging;
    else if (method == "DELETE")
      request->operation = S3Operation::kDeleteObjectTagging;
    else
      return MethodNotAllowed(*request, method);
    return std::nullopt;
  }
  if (query.Has("uploads")) {
    if (method != "POST") return MethodNotAllowed(*request, method);
    request->operation = S3Operation::kCreateMultipartUpload;
    return std::nullopt;
  }
  if (const std::string* upload_id = query.Get("uploadId")) {
    if (upload_id->empty()) {
      return Error(S3ErrorCode::kInvalidArgument, "uploadId must not be empty", request->resource);
    }
    request->upload_id = *upload_id;
    if (method == "PUT") {
      if (!query.Has("partNumber")) {
        return Error(S3ErrorCode::kInvalidArgument, "UploadPart needs a partNumber",
                     request->resource);
      }
      request->operation = copy ? S3Operation::kUploadPartCopy : S3Operation::kUploadPart;
    } else if (method == "POST") {
      request->operation = S3Operation::kCompleteMultipartUpload;
    } else if (method == "DELETE") {
      request->operation = S3Operation::kAbortMultipartUpload;
    } else if (method == "GET") {
      request->operation = S3Operation::kListParts;
    } else {
      return MethodNotAllowed(*request, method);
    }
    return std::nullopt;
  }
  if (method == "GET") {
    request->operation = S3Operation::kGetObject;
  } else if (method == "HEAD") {
    request->operation = S3Operation::kHeadObject;
  } else if (method == "PUT") {
    if (query.Has("partNumber")) {
      return Error(S3ErrorCode::kInvalidArgument, "partNumber needs an uploadId",
                   request->resource);
    }
    request->operation = copy ? S3Operation::kCopyObject : S3Operation::kPutObject;
  } else if (method == "DELETE") {
    request->operation = S3Operation::kDeleteObject;
  } else {
    return MethodNotAllowed(*request, method);
  }
  return std::nullopt;
}

// Fills the parameters the chosen operation reads.
std::optional<S3Error> ParseOperationParameters(const Query& query, const http::RequestHead& head,
                                                S3Request* request) {
  switch (request->operation) {
    case S3Operation::kListObjects:
    case S3Operation::kListObjectsV2:
    case S3Operation::kListMultipartUploads:
    case S3Operation::kListObjectVersions:
      return ParseListingParameters(query, request);
    case S3Operation::kListParts:
      return ParseListPartsParameters(query, request);
    case S3Operation::kGetObject:  // GET ?partNumber=N reads one part of an object
    case S3Operation::kHeadObject:
      return ParsePartNumber(query, request);
    case S3Operation::kUploadPart:
    case S3Operation::kUploadPartCopy:
      if (auto error = ParsePartNumber(query, request)) return error;
      return ParseCopyHeaders(head, request);
    case S3Operation::kCopyObject:
      return ParseCopyHeaders(head, request);
    default:
      return std::nullopt;
  }
}

bool IsKeyOperation(S3Operation operation) {
  switch (operation) {
    case S3Operation::kListBuckets:
    case S3Operation::kCreateBucket:
    case S3Operation::kHeadBucket:
    case S3Operation::kDeleteBucket:
    case S3Operation::kGetBucketLocation:
    case S3Operation::kListObjects:
    case S3Operation::kListObjectsV2:
    case S3Operation::kDeleteObjects:
    case S3Operation::kListMultipartUploads:
    case S3Operation::kListObjectVersions:
    case S3Operation::kPostObject:  // the key is a form field
    case S3Operation::kNotImplemented:
      return false;
    default:
      return true;
  }
}

}  // namespace

std::string_view S3OperationName(S3Operation operation) {
  switch (operation) {
    case S3Operation::kListBuckets:
      return "ListBuckets";
    case S3Operation::kCreateBucket:
      return "CreateBucket";
    case S3Operation::kHeadBucket:
      return "HeadBucket";
    case S3Operation::kDeleteBucket:
      return "DeleteBucket";
    case S3Operation::kGetBucketLocation:
      return "GetBucketLocation";
    case S3Operation::kListObjects:
      return "ListObjects";
    case S3Operation::kListObjectsV2:
      return "ListObjectsV2";
    case S3Operation::kPutObject:
      return "PutObject";
    case S3Operation::kCopyObject:
      return "CopyObject";
    case S3Operation::kGetObject:
      return "GetObject";
    case S3Operation::kHeadObject:
      return "HeadObject";
    case S3Operation::kDeleteObject:
      return "DeleteObject";
    case S3Operation::kDeleteObjects:
      return "DeleteObjects";
    case S3Operation::kCreateMultipartUpload:
      return "CreateMultipartUpload";
    case S3Operation::kUploadPart:
      return "UploadPart";
    case S3Operation::kUploadPartCopy:
      return "UploadPartCopy";
    case S3Operation::kCompleteMultipartUpload:
      return "CompleteMultipartUpload";
    case S3Operation::kAbortMultipartUpload:
      return "AbortMultipartUpload";
    case S3Operation::kListParts:
      return "ListParts";
    case S3Operation::kListMultipartUploads:
      return "ListMultipartUploads";
    case S3Operation::kListObjectVersions:
      return "ListObjectVersions";
    case S3Operation::kGetObjectTagging:
      return "GetObjectTagging";
    case S3Operation::kPutObjectTagging:
      return "PutObjectTagging";
    case S3Operation::kDeleteObjectTagging:
      return "DeleteObjectTagging";
    case S3Operation::kGetObjectAttributes:
      return "GetObjectAttributes";
    case S3Operation::kPostObject:
      return "PostObject";
    case S3Operation::kNotImplemented:
      return "NotImplemented";
  }
  return "Unknown";
}

std::optional<std::string> S3BucketNameProblem(std::string_view name) {
  if (name.size() < 3 || name.size() > 63) return "it must be 3 to 63 characters long";
  auto alphanumeric = [](char c) { return (c >= 'a' && c <= 'z') || IsDigit(c); };
  for (char c : name) {
    if (!alphanumeric(c) && c != '.' && c != '-') {
      return "it may contain only lowercase letters a-z, digits 0-9, '.' and '-'";
    }
  }
  if (!alphanumeric(name.front()) || !alphanumeric(name.back())) {
    return "it must start and end with a lowercase letter or a digit";
  }
  if (name.find("..") != std::string_view::npos) return "it must not contain two adjacent '.'";
  // "192.168.5.4": four dot-separated runs of digits.
  int dots = 0;
  bool digits_and_dots = true;
  for (char c : name) {
    if (c == '.')
      ++dots;
    else if (!IsDigit(c))
      digits_and_dots = false;
  }
  if (digits_and_dots && dots == 3) return "it must not be formatted as an IP address";
  for (std::string_view prefix : {"xn--", "sthree-", "amzn-s3-demo-"}) {
    if (name.substr(0, prefix.size()) == prefix) {
      return "it must not start with the reserved prefix '" + std::string(prefix) + "'";
    }
  }
  for (std::string_view suffix : {"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"}) {
    if (name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix) {
      return "it must not end with the reserved suffix '" + std::string(suffix) + "'";
    }
  }
  return std::nullopt;
}

bool IsValidS3BucketName(std::string_view name) { return !S3BucketNameProblem(name); }

static S3Error InvalidNewBucketName(const std::string& name, const std::string& resource) {
  return Error(S3ErrorCode::kInvalidBucketName,
               "bucket name '" + name + "' breaks S3's naming rules: " + *S3BucketNameProblem(name),
               resource);
}

S3Result<S3Request> ParseS3Request(const http::RequestHead& head,
                                   const S3AddressingOptions& options) {
  S3Request request;
  const std::string& method = head.method;
  if (method != "GET" && method != "HEAD" && method != "PUT" && method != "POST" &&
      method != "DELETE" && method != "OPTIONS") {
    return Error(S3ErrorCode::kMethodNotAllowed, "method '" + method + "' is not allowed by S3",
                 head.path);
  }
  if (head.path.empty() || head.path.front() != '/') {
    return Error(S3ErrorCode::kInvalidURI,
                 "request path '" + head.path + "' does not start with '/'", head.path);
  }
  auto pairs = http::ParseQuery(head.query);
  if (!pairs.ok()) {
    return Error(S3ErrorCode::kInvalidURI,
                 "query '" + head.query + "': " + pairs.status().message(), head.path);
  }
  Query query(std::move(pairs).value());
  if (const std::string* repeated = query.FindRepeatedInterpreted()) {
    return Error(S3ErrorCode::kInvalidArgument,
                 "query parameter '" + *repeated + "' appears more than once", head.path);
  }

  // Split bucket and key while still encoded: an encoded '/' ("%2F") in the bucket segment
  // must not move the boundary.
  std::string_view raw_key;
  std::optional<std::string> host_bucket = VirtualHostBucket(FindHeader(head, "host"), options);
  if (host_bucket) {
    request.virtual_hosted = true;
    request.bucket = *host_bucket;
    raw_key = std::string_view(head.path).substr(1);
  } else {
    std::string_view rest = std::string_view(head.path).substr(1);
    size_t slash = rest.find('/');
    std::string_view raw_bucket = rest.substr(0, slash);
    if (slash != std::string_view::npos) raw_key = rest.substr(slash + 1);
    auto bucket = http::PercentDecode(raw_bucket, /*plus_is_space=*/false);
    if (!bucket.ok()) {
      return Error(S3ErrorCode::kInvalidURI,
                   "bucket in path '" + head.path + "': " + bucket.status().message(), head.path);
    }
    request.bucket = std::move(bucket).value();
  }
  auto key = http::PercentDecode(raw_key, /*plus_is_space=*/false);
  if (!key.ok()) {
    return Error(S3ErrorCode::kInvalidURI,
                 "key in path '" + head.path + "': " + key.status().message(), head.path);
  }
  request.key = std::move(key).value();
  request.resource = "/" + request.bucket;
  if (!request.key.empty()) request.resource += "/" + request.key;
  if (!request.bucket.empty()) {
    if (auto error = CheckExistingBucketName(request.bucket)) {
      // A PUT of the bucket itself may be creating it: name the S3 rule the name breaks
      // (S3's rules are stricter than Cairn's namespace names, so one of them is broken).
      if (method == "PUT" && request.key.empty()) {
        return InvalidNewBucketName(request.bucket, "/" + request.bucket);
      }
      return *error;
    }
  }
  if (!request.key.empty()) {
    if (auto error = CheckKey(request.key, "key", request.resource)) return *error;
  }
  if (const std::string* version = query.Get("versionId"); version && *version != "null") {
    return Error(S3ErrorCode::kNotImplemented,
                 "versionId '" + *version + "' requested; Cairn keeps no object versions",
                 request.resource);
  }

  if (method == "OPTIONS") {  // a CORS preflight, for the bucket (and object) it names
    if (request.bucket.empty()) return MethodNotAllowed(request, method);
    request.operation = S3Operation::kNotImplemented;
    request.unsupported = "cors";
    return request;
  }
  std::optional<S3Error> error;
  if (request.bucket.empty()) {
    if (method != "GET") return MethodNotAllowed(request, method);
    request.operation = S3Operation::kListBuckets;
    std::optional<S3Error> list_error;
    auto string_parameter = [&](std::string_view name, std::optional<std::string>* out) {
      if (!list_error) list_error = ParseStringParameter(query, name, out, request.resource);
    };
    string_parameter("prefix", &request.prefix);
    string_parameter("continuation-token", &request.continuation_token);
    if (!list_error && query.Has("max-buckets")) {
      const std::string* text = query.Get("max-buckets");
      std::optional<uint64_t> value = ParseUnsigned(*text);
      if (!value || *value < 1 || *value > 10000) {
        list_error =
            Error(S3ErrorCode::kInvalidArgument,
                  "max-buckets '" + text->substr(0, 32) + "' is not an integer between 1 and 10000",
                  request.resource);
      } else {
        request.max_buckets = static_cast<int>(*value);
      }
    }
    if (list_error) return *list_error;
  } else if (request.key.empty()) {
    error = RouteBucket(query, head, method, &request);
  } else {
    error = RouteObject(query, head, method, &request);
  }
  if (error) return *error;
  if (request.operation == S3Operation::kCreateBucket && !IsValidS3BucketName(request.bucket)) {
    return InvalidNewBucketName(request.bucket, request.resource);
  }
  if (IsKeyOperation(request.operation) && request.key.empty()) {
    return Error(S3ErrorCode::kInvalidRequest,
                 std::string(S3OperationName(request.operation)) + " needs an object key",
                 request.resource);
  }
  if (auto parameter_error = ParseOperationParameters(query, head, &request)) {
    return *parameter_error;
  }
  return request;
}

}  // namespace cairn::s3
