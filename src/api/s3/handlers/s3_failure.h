// One S3 failure as the handlers answer it: HTTP status, S3 error code and message.
#pragma once

#include <string>
#include <utility>

namespace cairn::api {

struct Failure {
  int status = 500;
  std::string code = "InternalError";
  std::string message;
};

// Coroutine call sites build failures through this function: GCC 12 destroys a braced
// aggregate temporary inside a co_await expression twice.
inline Failure MakeFailure(int status, std::string code, std::string message) {
  Failure failure;
  failure.status = status;
  failure.code = std::move(code);
  failure.message = std::move(message);
  return failure;
}

}  // namespace cairn::api
