#include "core/status.h"

namespace cairn {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kInvalidArgument:
      return "InvalidArgument";
    case StatusCode::kUnauthenticated:
      return "Unauthenticated";
    case StatusCode::kPermissionDenied:
      return "PermissionDenied";
    case StatusCode::kNotFound:
      return "NotFound";
    case StatusCode::kAlreadyExists:
      return "AlreadyExists";
    case StatusCode::kAborted:
      return "Aborted";
    case StatusCode::kFailedPrecondition:
      return "FailedPrecondition";
    case StatusCode::kPayloadTooLarge:
      return "PayloadTooLarge";
    case StatusCode::kOutOfRange:
      return "OutOfRange";
    case StatusCode::kResourceExhausted:
      return "ResourceExhausted";
    case StatusCode::kDeadlineExceeded:
      return "DeadlineExceeded";
    case StatusCode::kUnavailable:
      return "Unavailable";
    case StatusCode::kDataLoss:
      return "DataLoss";
    case StatusCode::kInternal:
      return "Internal";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(StatusCodeName(code_));
  out += ": ";
  out += message_;
  return out;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string message(context);
  message += ": ";
  message += message_;
  return Status(code_, reason_, std::move(message));
}

Status Status::WithReason(ErrorReason reason) const {
  if (ok()) return *this;
  return Status(code_, reason, message_);
}

std::string_view ErrorReasonName(ErrorReason reason) {
  switch (reason) {
    case ErrorReason::kNone:
      return "None";
    case ErrorReason::kNoSuchNamespace:
      return "NoSuchNamespace";
    case ErrorReason::kNoSuchUpload:
      return "NoSuchUpload";
    case ErrorReason::kBadDigest:
      return "BadDigest";
    case ErrorReason::kContentHashMismatch:
      return "ContentHashMismatch";
    case ErrorReason::kBodyLengthMismatch:
      return "BodyLengthMismatch";
    case ErrorReason::kEntityTooSmall:
      return "EntityTooSmall";
    case ErrorReason::kInvalidPart:
      return "InvalidPart";
    case ErrorReason::kInvalidPartOrder:
      return "InvalidPartOrder";
    case ErrorReason::kEmptyPartList:
      return "EmptyPartList";
    case ErrorReason::kNotADirectory:
      return "NotADirectory";
    case ErrorReason::kIsADirectory:
      return "IsADirectory";
    case ErrorReason::kDirectoryNotEmpty:
      return "DirectoryNotEmpty";
    case ErrorReason::kNameTooLong:
      return "NameTooLong";
    case ErrorReason::kTooManyLinks:
      return "TooManyLinks";
    case ErrorReason::kNoSuchAttribute:
      return "NoSuchAttribute";
    case ErrorReason::kNotPermitted:
      return "NotPermitted";
    case ErrorReason::kCrossDevice:
      return "CrossDevice";
    case ErrorReason::kFileTooLarge:
      return "FileTooLarge";
    case ErrorReason::kValueTooLarge:
      return "ValueTooLarge";
    case ErrorReason::kLockConflict:
      return "LockConflict";
  }
  return "Unknown";
}

}  // namespace cairn
