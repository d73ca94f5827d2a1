#include "meta/meta_store.h"

#include <string_view>

namespace cairn::meta {
std::string_view ScopeName(Scope scope) {
  switch (scope) {
    case Scope::kRead:
      return "read";
    case Scope::kWrite:
      return "write";
    case Scope::kAdmin:
      return "admin";
  }
  return "unknown";
}

Result<Scope> ParseScope(std::string_view text) {
  if (text == "read") return Scope::kRead;
  if (text == "write") return Scope::kWrite;
  if (text == "admin") return Scope::kAdmin;
  return InvalidArgumentError("unknown scope '" + std::string(text.substr(0, 64)) +
                              "' (expected read, write or admin)");
}

Status NotSupportedByEngine(std::string_view what) {
  return InternalError(std::string(what) + " is not supported by this metadata engine yet");
}

}  // namespace cairn::meta
