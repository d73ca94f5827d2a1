// Status and Result<T>: errors as values at every layer boundary.
//
// A Status is either OK or a (code, message) pair. The message says what failed and
// with which input; it never contains a secret. Edges (HTTP, CLI) map codes to their own
// vocabulary in exactly one place each.
#pragma once

#include <cassert>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace cairn {

// Which code to use:
//   kInvalidArgument     the caller's input is malformed, whatever the state (400)
//   kUnauthenticated     no credential or a bad one (401)
//   kPermissionDenied    a valid credential that may not do this (403)
//   kNotFound            the thing does not exist, or is not visible to the caller (404)
//   kAlreadyExists/kAborted/kFailedPrecondition  conflicts with current state (409)
//   kPayloadTooLarge     a body or field over its limit (413)
//   kOutOfRange          a byte range outside the object (416)
//   kResourceExhausted   a rate or quota limit; retry later (429)
//   kDeadlineExceeded    the client was too slow (a trickling body) (408)
//   kUnavailable         a dependency is down or not ready; retry later (503)
//   kDataLoss            stored data failed verification (500)
//   kInternal            a bug or an unexpected OS error (500)
enum class StatusCode {
  kOk = 0,
  kInvalidArgument,
  kUnauthenticated,
  kPermissionDenied,
  kNotFound,
  kAlreadyExists,
  kAborted,
  kFailedPrecondition,
  kPayloadTooLarge,
  kOutOfRange,
  kResourceExhausted,
  kDeadlineExceeded,
  kUnavailable,
  kDataLoss,
  kInternal,
};

std::string_view StatusCodeName(StatusCode code);

// Why a use case failed, where the edges need more than the StatusCode says. Each edge maps
// a reason to its own vocabulary in one place (the S3 edge to S3 error codes, the native
// edge to HTTP statuses, a filesystem to errno); no edge parses message text. kNone means
// the code says it all.
enum class ErrorReason : uint8_t {
  kNone = 0,
  kNoSuchNamespace,      // the bucket / namespace does not exist (kNotFound)
  kNoSuchUpload,         // no such multipart upload, or not for this key (kNotFound)
  kBadDigest,            // a Content-MD5 or checksum the client sent does not match the body
  kContentHashMismatch,  // the declared SHA-256 of the content does not match the body
  kBodyLengthMismatch,   // the body is shorter or longer than its declared length
  kEntityTooSmall,       // a multipart part below the minimum size
  kInvalidPart,          // a listed part that does not exist or whose ETag differs
  kInvalidPartOrder,     // parts not listed in ascending order
  kEmptyPartList,        // a Complete that lists no part
  // The filesystem's reasons (the FUSE edge maps them to errno).
  kNotADirectory,      // a path step or rename target that must be a directory is not
  kIsADirectory,       // a directory where a non-directory is required
  kDirectoryNotEmpty,  // rmdir or rename over a directory that has entries
  kNameTooLong,        // a file name over 255 bytes
  kTooManyLinks,       // a link count would pass its limit
  kNoSuchAttribute,    // an extended attribute that does not exist
  kNotPermitted,       // the operation is not allowed for this caller or file (EPERM)
  kCrossDevice,        // a rename or link across volumes or confinement boundaries
  kFileTooLarge,       // a size past the volume's maximum file size
  kValueTooLarge,      // an extended attribute name or value over its limit
  kLockConflict,       // another owner holds a conflicting lock (EAGAIN)
};

std::string_view ErrorReasonName(ErrorReason reason);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  Status(StatusCode code, ErrorReason reason, std::string message)
      : code_(code), reason_(reason), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  ErrorReason reason() const { return reason_; }
  const std::string& message() const { return message_; }
  // "NotFound: object 1234 does not exist"
  std::string ToString() const;

  // Returns a copy whose message is "context: message"; OK stays OK.
  Status WithContext(std::string_view context) const;
  // Returns a copy that carries `reason`; OK stays OK.
  Status WithReason(ErrorReason reason) const;

  // Marks a status as deliberately ignored.
  void IgnoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  ErrorReason reason_ = ErrorReason::kNone;
  std::string message_;
};

inline Status OkStatus() { return Status(); }
inline Status InvalidArgumentError(std::string m) {
  return Status(StatusCode::kInvalidArgument, std::move(m));
}
inline Status UnauthenticatedError(std::string m) {
  return Status(StatusCode::kUnauthenticated, std::move(m));
}
inline Status PermissionDeniedError(std::string m) {
  return Status(StatusCode::kPermissionDenied, std::move(m));
}
inline Status NotFoundError(std::string m) { return Status(StatusCode::kNotFound, std::move(m)); }
inline Status AlreadyExistsError(std::string m) {
  return Status(StatusCode::kAlreadyExists, std::move(m));
}
inline Status AbortedError(std::string m) { return Status(StatusCode::kAborted, std::move(m)); }
inline Status FailedPreconditionError(std::string m) {
  return Status(StatusCode::kFailedPrecondition, std::move(m));
}
inline Status PayloadTooLargeError(std::string m) {
  return Status(StatusCode::kPayloadTooLarge, std::move(m));
}
inline Status OutOfRangeError(std::string m) {
  return Status(StatusCode::kOutOfRange, std::move(m));
}
inline Status ResourceExhaustedError(std::string m) {
  return Status(StatusCode::kResourceExhausted, std::move(m));
}
inline Status DeadlineExceededError(std::string m) {
  return Status(StatusCode::kDeadlineExceeded, std::move(m));
}
inline Status UnavailableError(std::string m) {
  return Status(StatusCode::kUnavailable, std::move(m));
}
inline Status DataLossError(std::string m) { return Status(StatusCode::kDataLoss, std::move(m)); }
inline Status InternalError(std::string m) { return Status(StatusCode::kInternal, std::move(m)); }

// ValueOrError<T, E>: a T, or the error E that stands in its place. The shared body of
// Result<T> (E = Status) and of the S3 edge's results (S3Result, SigV4Result), each of which
// names its error in its own vocabulary.
template <typename T, typename E>
class ValueOrError {
 public:
  bool ok() const { return value_.has_value(); }

  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 protected:
  explicit ValueOrError(T value) : value_(std::move(value)) {}
  explicit ValueOrError(E error, std::nullopt_t) : error_(std::move(error)) {}

  std::optional<T> value_;
  E error_;  // meaningful only when !ok()
};

// Result<T> holds a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result : public ValueOrError<T, Status> {
 public:
  Result(T value) : ValueOrError<T, Status>(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status)                                           // NOLINT: implicit by design
      : ValueOrError<T, Status>(std::move(status), std::nullopt) {
    assert(!this->error_.ok() && "Result constructed from an OK status without a value");
    if (this->error_.ok())
      this->error_ = InternalError("Result built from OK status without a value");
  }

  const Status& status() const { return this->error_; }
};

}  // namespace cairn

#define CAIRN_CONCAT_INNER_(a, b) a##b
#define CAIRN_CONCAT_(a, b) CAIRN_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                      \
  do {                                             \
    ::cairn::Status cairn_status_ = (expr);        \
    if (!cairn_status_.ok()) return cairn_status_; \
  } while (false)

#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(CAIRN_CONCAT_(cairn_result_, __LINE__), lhs, expr)
