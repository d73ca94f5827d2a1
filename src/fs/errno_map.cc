#include "fs/errno_map.h"

#include <cerrno>

namespace cairn::fs {

int ErrnoFor(const Status& status) {
  if (status.ok()) return 0;
  switch (status.reason()) {
    case ErrorReason::kNotADirectory:
      return ENOTDIR;
    case ErrorReason::kIsADirectory:
      return EISDIR;
    case ErrorReason::kDirectoryNotEmpty:
      return ENOTEMPTY;
    case ErrorReason::kNameTooLong:
      // An xattr name over its limit is ERANGE in Linux; a path name ENAMETOOLONG.
      return status.code() == StatusCode::kOutOfRange ? ERANGE : ENAMETOOLONG;
    case ErrorReason::kTooManyLinks:
      return EMLINK;
    case ErrorReason::kNoSuchAttribute:
      return ENODATA;
    case ErrorReason::kNotPermitted:
      return EPERM;
    case ErrorReason::kCrossDevice:
      return EXDEV;
    case ErrorReason::kFileTooLarge:
      return EFBIG;
    case ErrorReason::kValueTooLarge:
      return E2BIG;
    case ErrorReason::kLockConflict:
      return EAGAIN;
    default:
      break;
  }
  switch (status.code()) {
    case StatusCode::kOk:
      return 0;
    case StatusCode::kInvalidArgument:
      return EINVAL;
    case StatusCode::kNotFound:
      return ENOENT;
    case StatusCode::kAlreadyExists:
      return EEXIST;
    case StatusCode::kUnauthenticated:
    case StatusCode::kPermissionDenied:
      return EACCES;
    case StatusCode::kOutOfRange:
      return ERANGE;
    case StatusCode::kResourceExhausted:
      return ENOSPC;
    case StatusCode::kPayloadTooLarge:
      return EFBIG;
    case StatusCode::kDeadlineExceeded:
      return ETIMEDOUT;
    // A database that cannot be reached, a transaction that kept conflicting, a chunk that
    // failed verification, a bug: the call failed and nothing more precise is true.
    case StatusCode::kAborted:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kUnavailable:
    case StatusCode::kDataLoss:
    case StatusCode::kInternal:
      return EIO;
  }
  return EIO;
}

}  // namespace cairn::fs
