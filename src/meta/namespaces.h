// Namespaces: one use case of the metadata store (meta_store.h has the contract every engine
// shares: states, reference counts, transactions, errors).
//
// Namespaces (S3 buckets) and their settings.
#pragma once

#include "meta/records.h"

namespace cairn::meta {

class Namespaces {
 public:
  virtual ~Namespaces() = default;

  // ---- Namespaces (S3 buckets) --------------------------------------------------------
  // kAlreadyExists if it was created explicitly before (holding objects is not enough);
  // kPermissionDenied if another tenant has an explicit namespace of this name (S3 bucket
  // names are global; namespaces that only hold objects, e.g. written through the native
  // API, do not take a name).
  virtual Status CreateNamespace(const NamespaceRecord& record) {
    return NotSupportedByEngine("CreateNamespace");
  }
  // Explicit namespaces and namespaces holding COMMITTED objects, by name (byte order).
  virtual Result<std::vector<NamespaceRecord>> ListNamespaces(const std::string& tenant) {
    return NotSupportedByEngine("ListNamespaces");
  }
  virtual Result<NamespaceRecord> GetNamespace(const std::string& tenant, const std::string& name) {
    return NotSupportedByEngine("GetNamespace");
  }
  // The tenants with an explicit namespace of this name, in byte order: one, unless a
  // namespace setting made rows for a name that another tenant also holds objects under.
  virtual Result<std::vector<std::string>> NamespaceOwners(const std::string& name) {
    return NotSupportedByEngine("NamespaceOwners");
  }
  // The tenants with at least one explicit namespace, in byte order (a tenant has no row of
  // its own: this and the objects' tenants are how an operator finds them).
  virtual Result<std::vector<std::string>> NamespaceTenants() {
    return NotSupportedByEngine("NamespaceTenants");
  }
  // Removes an explicit namespace, and its settings in the same transaction (a namespace
  // created again under the same name starts with none). kFailedPrecondition while it holds
  // COMMITTED objects; kNotFound if it does not exist at all.
  virtual Status DeleteNamespace(const std::string& tenant, const std::string& name) {
    return NotSupportedByEngine("DeleteNamespace");
  }
  // Per-namespace settings for the S3 API (canned ACL, policy, CORS, tags): setting name ->
  // opaque text. Empty when none (also for a namespace that does not exist).
  virtual Result<std::map<std::string, std::string>> GetNamespaceSettings(const std::string& tenant,
                                                                          const std::string& name) {
    return NotSupportedByEngine("GetNamespaceSettings");
  }
  // Sets (`value`) or removes (nullopt) one setting, in one transaction. Creates the
  // namespace's row (created_at_ms = now) if it had none (a bucket that existed only through
  // its objects), so that DeleteNamespace always removes the settings with it.
  // kInvalidArgument, naming the input, unless tenant and name are UTF-8 text without NUL,
  // `setting` is 1..64 bytes of [a-z0-9-] and `value` is UTF-8 text without NUL of at most
  // 1 MiB (kMaxNamespaceSetting*); nothing changes then.
  virtual Status SetNamespaceSetting(const std::string& tenant, const std::string& name,
                                     const std::string& setting,
                                     const std::optional<std::string>& value, TimestampMs now) {
    return NotSupportedByEngine("SetNamespaceSetting");
  }
};

}  // namespace cairn::meta
