// ObjectCatalog: one use case of the metadata store (meta_store.h has the contract every engine
// shares: states, reference counts, transactions, errors).
//
// The object catalogue: uploads (WRITING -> COMMITTED), reads, listings, deletes, and the
// compositions and metadata updates of the S3 API (multipart completion, copies, tags).
#pragma once

#include "meta/records.h"

namespace cairn::meta {

class ObjectCatalog {
 public:
  virtual ~ObjectCatalog() = default;

  // ---- Uploads ----------------------------------------------------------------------
  // Inserts a WRITING row (object.state is ignored and stored as WRITING).
  // kAlreadyExists if the id is taken.
  virtual Status BeginUpload(const ObjectRecord& object) = 0;

  // Records that chunk number `sequence` (0-based, consecutive) of WRITING object `id` is
  // `chunk`, and takes a reference on (storage_class of the object, digest): the chunk row
  // is created with ref_count 1 or incremented. Also bumps the object's updated_at_ms to
  // now_ms, so GC sees the upload is alive. kNotFound if the object is not WRITING.
  // Engines may commit it without waiting for the disk: it is visible at once (which is
  // what GC needs), and the durable CommitUpload that follows makes it durable too.
  virtual Status AddChunk(const ObjectId& id, uint32_t sequence, const ChunkRef& chunk,
                          TimestampMs now_ms) = 0;

  // WRITING -> COMMITTED with the final fields from `final_fields` (size_bytes,
  // content_hash, etag, content_type, user_metadata; updated_at_ms = now_ms). Atomically
  // replaces the COMMITTED object at the same (tenant, namespace, key), if any: that one
  // becomes DELETING and its chunk references are dropped. kNotFound if `id` is not
  // WRITING (e.g. GC reclaimed a stalled upload); kUnavailable if the recorded chunks do
  // not add up to final_fields.size_bytes (a reference lost in a database restart).
  virtual Result<CommitResult> CommitUpload(const ObjectId& id, const ObjectRecord& final_fields,
                                            TimestampMs now_ms) = 0;

  // Inserts a COMMITTED object whose data is inline (object.inline_data set) or which
  // references `chunks` (each gets a reference), replacing the current object at the key
  // as CommitUpload does, all in one transaction. Used for small objects and for copies
  // that link existing chunks.
  virtual Result<CommitResult> PutCommitted(const ObjectRecord& object,
                                            const std::vector<ChunkRef>& chunks,
                                            TimestampMs now_ms) = 0;

  // PutCommitted of an inline object (no chunks) without blocking the caller: the write
  // joins the engine's group commit and `done` runs later, on a thread of the store, with
  // the result once the transaction is durable (or failed). Returns false, leaving
  // `object` untouched and never calling `done`, when the engine has no such path or its
  // queue is full: the caller then uses PutCommitted (that is the backpressure). `done`
  // must be quick and must not call back into the store.
  virtual bool PutCommittedAsync(ObjectRecord&& object, TimestampMs now_ms,
                                 std::function<void(Result<CommitResult>)> done) {
    (void)object;
    (void)now_ms;
    (void)done;
    return false;
  }
  // Returns once every PutCommittedAsync accepted so far has called its `done`. A server
  // calls it before tearing down what the callbacks post to.
  virtual void WaitForAsyncWrites() {}

  // Drops a WRITING object and its chunk references. kNotFound if it is not WRITING.
  virtual Status AbortUpload(const ObjectId& id, TimestampMs now_ms) = 0;

  // ---- Reads ------------------------------------------------------------------------
  // The COMMITTED object with this id owned by `tenant`; kNotFound otherwise (another
  // tenant's object is indistinguishable from a missing one).
  virtual Result<ObjectRecord> GetObject(const std::string& tenant, const ObjectId& id) = 0;
  virtual Result<ObjectRecord> GetObjectByKey(const std::string& tenant,
                                              const std::string& namespace_name,
                                              const std::string& key) = 0;
  // The ordered chunk list of an object in any state (empty for inline objects), each with
  // its chunk row's block checksums and damage mark (see ChunkRef).
  virtual Result<std::vector<ChunkRef>> GetChunks(const ObjectId& id) = 0;
  virtual Result<ListPage> ListObjects(const ListRequest& request) = 0;

  // ---- Deletes ----------------------------------------------------------------------
  // COMMITTED -> DELETING and drop its chunk references, in one transaction. Returns the
  // object as it was. kNotFound if no COMMITTED object with this id belongs to `tenant`.
  virtual Result<ObjectRecord> DeleteObject(const std::string& tenant, const ObjectId& id,
                                            TimestampMs now_ms) = 0;

  // ---- Composition and metadata updates (S3) -----------------------------------------
  // PutCommitted, and in the same transaction each object of `also_delete` (COMMITTED and
  // owned by object.tenant) becomes DELETING with its references dropped. If one of them
  // is not COMMITTED, kNotFound and nothing changes. Completing a multipart upload uses it
  // to link the parts' chunks into the object and retire the parts atomically.
  virtual Result<CommitResult> PutCommittedAndDelete(const ObjectRecord& object,
                                                     const std::vector<ChunkRef>& chunks,
                                                     const std::vector<ObjectId>& also_delete,
                                                     TimestampMs now_ms) {
    return NotSupportedByEngine("PutCommittedAndDelete");
  }
  // Replaces the user metadata of a COMMITTED object of `tenant` (object tags live there
  // too); returns the updated object. kNotFound otherwise.
  virtual Result<ObjectRecord> UpdateUserMetadata(
      const std::string& tenant, const ObjectId& id,
      const std::map<std::string, std::string>& user_metadata, TimestampMs now_ms) {
    return NotSupportedByEngine("UpdateUserMetadata");
  }

  // ---- Diagnostics ------------------------------------------------------------------
  // Lists like ListObjects(request) and returns, for each distinct SQL statement that
  // listing ran, the plan the database chose for it with the same parameters (SQLite:
  // EXPLAIN QUERY PLAN; PostgreSQL: EXPLAIN (ANALYZE, BUFFERS)), so tests and benchmarks
  // can check that listings are served from the index. Engines without SQL: not supported.
  virtual Result<std::vector<StatementPlan>> ExplainList(const ListRequest& request) {
    return NotSupportedByEngine("ExplainList");
  }
};

}  // namespace cairn::meta
