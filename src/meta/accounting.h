// Accounting: one use case of the metadata store (meta_store.h has the contract every engine
// shares: states, reference counts, transactions, errors).
//
// Accounting: usage per tenant and namespace, object counts and stored bytes.
#pragma once

#include "meta/records.h"

namespace cairn::meta {

class Accounting {
 public:
  virtual ~Accounting() = default;

  // ---- Accounting -------------------------------------------------------------------
  virtual Result<std::vector<UsageRow>> Usage(const std::string& tenant) = 0;
  virtual Result<std::vector<ObjectCountRow>> CountObjects() = 0;
  virtual Result<std::vector<StorageBytesRow>> StorageBytes() = 0;
};

}  // namespace cairn::meta
