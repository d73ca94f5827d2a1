#include "api/s3/wire/s3_error.h"

namespace cairn::s3 {
namespace {

struct CodeInfo {
  std::string_view name;
  int http_status;
};

CodeInfo Info(S3ErrorCode code) {
  switch (code) {
    case S3ErrorCode::kAccessDenied:
      return {"AccessDenied", 403};
    case S3ErrorCode::kBadDigest:
      return {"BadDigest", 400};
    case S3ErrorCode::kBucketAlreadyOwnedByYou:
      return {"BucketAlreadyOwnedByYou", 409};
    case S3ErrorCode::kBucketNotEmpty:
      return {"BucketNotEmpty", 409};
    case S3ErrorCode::kEntityTooLarge:
      return {"EntityTooLarge", 400};
    case S3ErrorCode::kEntityTooSmall:
      return {"EntityTooSmall", 400};
    case S3ErrorCode::kIncompleteBody:
      return {"IncompleteBody", 400};
    case S3ErrorCode::kInternalError:
      return {"InternalError", 500};
    case S3ErrorCode::kInvalidArgument:
      return {"InvalidArgument", 400};
    case S3ErrorCode::kInvalidBucketName:
      return {"InvalidBucketName", 400};
    case S3ErrorCode::kInvalidDigest:
      return {"InvalidDigest", 400};
    case S3ErrorCode::kInvalidPart:
      return {"InvalidPart", 400};
    case S3ErrorCode::kInvalidPartOrder:
      return {"InvalidPartOrder", 400};
    case S3ErrorCode::kInvalidRange:
      return {"InvalidRange", 416};
    case S3ErrorCode::kInvalidRequest:
      return {"InvalidRequest", 400};
    case S3ErrorCode::kInvalidStorageClass:
      return {"InvalidStorageClass", 400};
    case S3ErrorCode::kMalformedACLError:
      return {"MalformedACLError", 400};
    case S3ErrorCode::kUnresolvableGrantByEmailAddress:
      return {"UnresolvableGrantByEmailAddress", 400};
    case S3ErrorCode::kInvalidTag:
      return {"InvalidTag", 400};
    case S3ErrorCode::kInvalidURI:
      return {"InvalidURI", 400};
    case S3ErrorCode::kKeyTooLongError:
      return {"KeyTooLongError", 400};
    case S3ErrorCode::kMalformedXML:
      return {"MalformedXML", 400};
    case S3ErrorCode::kMaxMessageLengthExceeded:
      return {"MaxMessageLengthExceeded", 400};
    case S3ErrorCode::kMethodNotAllowed:
      return {"MethodNotAllowed", 405};
    case S3ErrorCode::kMissingContentLength:
      return {"MissingContentLength", 411};
    case S3ErrorCode::kNoSuchBucket:
      return {"NoSuchBucket", 404};
    case S3ErrorCode::kNoSuchKey:
      return {"NoSuchKey", 404};
    case S3ErrorCode::kNoSuchUpload:
      return {"NoSuchUpload", 404};
    case S3ErrorCode::kNotImplemented:
      return {"NotImplemented", 501};
    case S3ErrorCode::kPreconditionFailed:
      return {"PreconditionFailed", 412};
    case S3ErrorCode::kServiceUnavailable:
      return {"ServiceUnavailable", 503};
    case S3ErrorCode::kSignatureDoesNotMatch:
      return {"SignatureDoesNotMatch", 403};
    case S3ErrorCode::kSlowDown:
      return {"SlowDown", 503};
  }
  return {"InternalError", 500};
}

}  // namespace

std::string_view S3ErrorCodeName(S3ErrorCode code) { return Info(code).name; }
int S3ErrorHttpStatus(S3ErrorCode code) { return Info(code).http_status; }

std::string S3Error::ToString() const {
  std::string out(code_name());
  out += " (" + std::to_string(http_status()) + "): " + message;
  if (!resource.empty()) out += " [" + resource + "]";
  return out;
}

}  // namespace cairn::s3
