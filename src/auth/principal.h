// Principal: who a request acts as once its credential has been verified.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "meta/meta_store.h"

namespace cairn::auth {

// Scopes are ordered: admin includes write, write includes read.
int ScopeRank(meta::Scope scope);

struct Principal {
  std::string subject;               // the API key id, or "jwt"
  std::vector<std::string> tenants;  // "*" = every tenant
  meta::Scope scope = meta::Scope::kRead;

  bool AllowsTenant(std::string_view tenant) const;
  bool AllowsScope(meta::Scope needed) const;
  bool operator==(const Principal&) const = default;
};

}  // namespace cairn::auth
