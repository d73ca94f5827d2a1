// MetaStore: the transactional metadata store behind every use case.
//
// Contract shared by every engine (in-memory model, SQLite, later PostgreSQL); the
// conformance suite in tests/meta checks each of them against it.
//
// Objects. A row per object id with a state:
//   WRITING    an upload in progress; invisible; holds references on the chunks it has
//              added so far (so GC never deletes them under the upload).
//   COMMITTED  visible; at most one per (tenant, namespace, key).
//   DELETING   invisible; its chunk references were dropped in the same transaction that
//              set this state. GC purges the row after the grace period (= DELETED).
// Chunks. A row per (storage_class, digest) with a reference count = the number of
// references held by live owners of any kind: object_chunks rows of WRITING or COMMITTED
// objects, plus owner_chunks rows of generic owners (ChunkOwner below: a file of a
// filesystem front end, say) that name it. `zero_since_ms` is the time the count last
// became zero; GC may delete a chunk whose count is zero, whose zero_since_ms is older
// than the grace cutoff and that no owner_chunks row names.
// Owners. A generic owner (kind, id) holds an ordered chunk list, each entry with its
// storage class; SetOwnerChunks replaces it whole, DropOwnerChunks empties it. Every path
// that counts references (the methods below, fsck's check and repair, GC, usage and
// snapshots) counts these lists as it counts objects', so adding an owner kind never makes
// a repair drop live references or GC delete a chunk that an owner still names.
//
// Thread-safety: every method may be called from any thread concurrently. Each method is
// one transaction: it either fully happens or not at all.
// Errors: kNotFound for an absent/invisible row, kUnavailable when the database cannot be
// reached or is busy beyond its timeout, kInternal otherwise; messages name the input.
//
// The interface is split by use case, one header each: store_info.h, object_catalog.h,
// accounting.h, chunk_references.h, namespaces.h, credentials.h and snapshots.h. An engine
// implements all of them (MetaStore below) over one connection layer of its own; a caller
// that needs one use case takes that interface, and a new use case adds an interface
// instead of widening this one. Engines are separate libraries (meta/memory, meta/sqlite,
// meta/postgres); meta/engines/open_meta_store.h opens one by URL.
#pragma once

#include "meta/accounting.h"
#include "meta/chunk_references.h"
#include "meta/credentials.h"
#include "meta/file_tree.h"
#include "meta/namespaces.h"
#include "meta/object_catalog.h"
#include "meta/records.h"
#include "meta/snapshots.h"
#include "meta/store_info.h"

namespace cairn::meta {

class MetaStore : public StoreInfo,
                  public ObjectCatalog,
                  public Accounting,
                  public ChunkReferences,
                  public Namespaces,
                  public Credentials,
                  public Snapshots {
 public:
  ~MetaStore() override = default;
  // The engine's filesystem metadata (file_tree.h), or nullptr for an engine without it.
  // The tree shares the store's tables and transactions (a file's blocks are chunk
  // references of this store); it lives as long as the store.
  virtual FileTree* file_tree() { return nullptr; }
};

}  // namespace cairn::meta
