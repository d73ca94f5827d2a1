// The S3 error vocabulary: the <Code> an S3 client sees and the HTTP status that goes
// with it. Parsers in this folder return S3Result<T>, so the edge that answers a request
// never has to guess which S3 code a failure deserves.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/status.h"

namespace cairn::s3 {

// The subset of S3's error codes Cairn produces. Names and statuses follow the
// "Error responses" page of the Amazon S3 API reference.
enum class S3ErrorCode {
  kAccessDenied,                     // 403
  kBadDigest,                        // 400
  kBucketAlreadyOwnedByYou,          // 409
  kBucketNotEmpty,                   // 409
  kEntityTooLarge,                   // 400
  kEntityTooSmall,                   // 400
  kIncompleteBody,                   // 400
  kInternalError,                    // 500
  kInvalidArgument,                  // 400
  kInvalidBucketName,                // 400
  kInvalidDigest,                    // 400
  kInvalidPart,                      // 400
  kInvalidPartOrder,                 // 400
  kInvalidRange,                     // 416
  kInvalidRequest,                   // 400
  kInvalidStorageClass,              // 400
  kInvalidTag,                       // 400
  kInvalidURI,                       // 400
  kKeyTooLongError,                  // 400
  kMalformedACLError,                // 400
  kMalformedXML,                     // 400
  kMaxMessageLengthExceeded,         // 400
  kMethodNotAllowed,                 // 405
  kMissingContentLength,             // 411
  kNoSuchBucket,                     // 404
  kNoSuchKey,                        // 404
  kNoSuchUpload,                     // 404
  kNotImplemented,                   // 501
  kPreconditionFailed,               // 412
  kServiceUnavailable,               // 503
  kSignatureDoesNotMatch,            // 403
  kSlowDown,                         // 503
  kUnresolvableGrantByEmailAddress,  // 400
};

// "InvalidBucketName" for kInvalidBucketName: the text of the <Code> element.
std::string_view S3ErrorCodeName(S3ErrorCode code);
int S3ErrorHttpStatus(S3ErrorCode code);

struct S3Error {
  S3ErrorCode code = S3ErrorCode::kInternalError;
  std::string message;   // human-readable; names the offending input, never a secret
  std::string resource;  // "/bucket/key" the request addressed, when known

  int http_status() const { return S3ErrorHttpStatus(code); }
  std::string_view code_name() const { return S3ErrorCodeName(code); }
  // "InvalidBucketName (400): bucket name 'A' ..." for logs and test failures.
  std::string ToString() const;
};

inline S3Error MakeS3Error(S3ErrorCode code, std::string message, std::string resource = {}) {
  return S3Error{code, std::move(message), std::move(resource)};
}

// S3Result<T> holds a T or an S3Error; the S3 counterpart of cairn::Result.
template <typename T>
class [[nodiscard]] S3Result : public ValueOrError<T, S3Error> {
 public:
  S3Result(T value) : ValueOrError<T, S3Error>(std::move(value)) {}  // NOLINT: implicit by design
  S3Result(S3Error error)                                            // NOLINT: implicit by design
      : ValueOrError<T, S3Error>(std::move(error), std::nullopt) {}

  // Meaningful only when !ok().
  const S3Error& error() const { return this->error_; }
};

}  // namespace cairn::s3
