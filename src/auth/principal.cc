#include "auth/principal.h"

#include <algorithm>

namespace cairn::auth {

int ScopeRank(meta::Scope scope) {
  switch (scope) {
    case meta::Scope::kRead:
      return 1;
    case meta::Scope::kWrite:
      return 2;
    case meta::Scope::kAdmin:
      return 3;
  }
  // An out-of-range enum value grants nothing.
  return 0;
}

bool Principal::AllowsTenant(std::string_view tenant) const {
  return std::any_of(tenants.begin(), tenants.end(), [&](const std::string& allowed) {
    return allowed == "*" || allowed == tenant;
  });
}

bool Principal::AllowsScope(meta::Scope needed) const {
  return ScopeRank(scope) > 0 && ScopeRank(scope) >= ScopeRank(needed);
}

}  // namespace cairn::auth
