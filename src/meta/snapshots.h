// Snapshots: one use case of the metadata store (meta_store.h has the contract every engine
// shares: states, reference counts, transactions, errors).
//
// Snapshots: the consistent, streamed export and the all-or-nothing import behind
// `cairn meta dump / load` and the rotating backups.
#pragma once

#include "meta/records.h"

namespace cairn::meta {

class Snapshots {
 public:
  virtual ~Snapshots() = default;

  // ---- Snapshots ----------------------------------------------------------------------
  // Streams the snapshot (see SnapshotCounts above) to `visitor` from ONE read transaction,
  // so it is consistent while writers run; memory stays bounded by a page of rows, not by
  // the store. `now_ms` becomes zero_since_ms of chunks that the snapshot leaves
  // unreferenced and that had none.
  virtual Status ExportSnapshot(SnapshotVisitor& visitor, TimestampMs now_ms) {
    return NotSupportedByEngine("ExportSnapshot");
  }
  // Loads a snapshot into an EMPTY store (no object, chunk, owner chunk, namespace,
  // namespace setting, API key, S3 key, volume or inode rows) in one transaction:
  // kFailedPrecondition (nothing changed) if the store is not empty; on any error from `source`, a
  // record the store refuses, chunk reference counts that disagree with the objects' and owners'
  // chunk lists, or a setting whose namespace the snapshot does not hold, nothing is changed.
  // Returns what was loaded.
  virtual Result<SnapshotCounts> ImportSnapshot(SnapshotSource& source) {
    return NotSupportedByEngine("ImportSnapshot");
  }
};

}  // namespace cairn::meta
