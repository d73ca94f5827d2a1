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
  // The tenant's objects, logical and inline bytes per (namespace, class), without the
  // physical bytes (which count distinct chunks over the object rows): read from the kept
  // counters, so it costs the same for a million objects as for one. In key order.
  virtual Result<std::vector<UsageCounterRow>> UsageCounts(const std::string& tenant) = 0;
  virtual Result<std::vector<ObjectCountRow>> CountObjects() = 0;
  virtual Result<std::vector<StorageBytesRow>> StorageBytes() = 0;

  // Engines that keep usage counters (SQLite, PostgreSQL: Usage, StorageBytes, CountObjects
  // and the namespace list read them instead of every object row) recount the object rows
  // and compare, in one snapshot: one line per (tenant, namespace, class) that differs.
  // Empty when all agree or when the engine counts on every read.
  virtual Result<std::vector<std::string>> CheckUsageCounters() {
    return std::vector<std::string>{};
  }
  // Rewrites the counters from a recount; returns how many groups changed.
  virtual Result<uint64_t> RepairUsageCounters() { return uint64_t{0}; }
  // Folds the counters' change rows (PostgreSQL keeps insert-only deltas, so that commits
  // in one namespace never wait on one row). Readers fold now and then; GC calls it too.
  virtual Status CompactUsageCounters() { return OkStatus(); }
};

}  // namespace cairn::meta
