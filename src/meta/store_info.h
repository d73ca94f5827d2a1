// StoreInfo: one use case of the metadata store (meta_store.h has the contract every engine
// shares: states, reference counts, transactions, errors).
//
// The store as a whole: whether point reads are local, the readiness probe, the store's
// identity, its size and its own integrity check.
#pragma once

#include "meta/records.h"

namespace cairn::meta {

class StoreInfo {
 public:
  virtual ~StoreInfo() = default;

  // Whether GetObject, GetObjectByKey, GetNamespace and GetChunks answer from this
  // machine's files without waiting for another process, the network or another thread,
  // so an event loop may call them directly (a request then needs no worker-pool trip).
  // Engines that talk to a server answer false.
  virtual bool point_reads_are_local() const { return false; }

  // Readiness probe: commits a tiny write, so it fails (kUnavailable or kInternal) when
  // the store cannot commit, not only when it cannot be reached.
  virtual Status Ping() = 0;

  // ---- Store identity -----------------------------------------------------------------
  // The identity of the store this metadata belongs to: a UUID that the storage roots
  // carry too (gc/store_identity.h); nullopt until one is set. Not part of snapshots'
  // emptiness: a store with only an identity is still empty for ImportSnapshot.
  virtual Result<std::optional<std::string>> GetStoreIdentity() {
    return NotSupportedByEngine("GetStoreIdentity");
  }
  // Records `id` unless an identity is recorded already, in one transaction; returns the
  // identity recorded afterwards (`id`, or the one set first), so that nodes starting
  // together on one database agree.
  virtual Result<std::string> SetStoreIdentityIfAbsent(const std::string& id) {
    return NotSupportedByEngine("SetStoreIdentityIfAbsent");
  }
  // The number of chunk rows (any count): the size of the store for GC's deletion cap and
  // for the empty-store check at open.
  virtual Result<uint64_t> CountChunks() { return NotSupportedByEngine("CountChunks"); }
  // The engine checks its own storage (fsck): SQLite runs PRAGMA integrity_check and
  // checks the schema version; PostgreSQL checks that the server answers and the schema
  // version. Returns the problems found, empty when healthy; an error status only when
  // the check could not run at all.
  virtual Result<std::vector<std::string>> CheckIntegrity() {
    return NotSupportedByEngine("CheckIntegrity");
  }
};

}  // namespace cairn::meta
