// Store identity: the storage roots and the metadata store know each other.
//
// Every store has an identity, a random UUID made on its first start. The metadata store
// keeps it (MetaStore::GetStoreIdentity) and so does each storage root (a `store-id` file,
// mode 0600, next to chunks/). A process that opens the stores checks that they agree
// before anything may act on chunk files: GC's orphan sweep takes every chunk file its
// metadata does not know for garbage, so a node started on another store's roots (a
// fresh SQLite file, a lost meta.db, the wrong --meta) would otherwise empty them.
//
// The rule, with M the metadata's identity, R the roots' identity, "chunks" = the roots
// hold at least one chunk file, "empty" = the metadata has no object and no chunk row:
//   M == R                                   -> ok
//   M != R (or hot and cold disagree)        -> refuse, always
//   neither, no chunks                       -> new store: create one, M first, then R
//   neither, chunks, metadata not empty      -> a store from before identities: adopt
//   M only, roots without a file             -> give the roots M (a new root, or a start
//                                               that stopped between the two writes),
//                                               unless the metadata is empty and the roots
//                                               hold chunks, or it records chunks and the
//                                               roots hold none (an unmounted volume?)
//   R only, metadata empty, no chunks        -> the metadata takes R (nothing to lose)
//   R only, otherwise                        -> refuse: the metadata was lost or belongs
//                                               elsewhere (restore a snapshot: it carries
//                                               the identity)
// Every refusal but a mismatch can be overridden with `adopt_roots` (an operator's explicit
// decision that this metadata owns these roots). The metadata is written first with
// SetStoreIdentityIfAbsent, so nodes starting together on one database agree on the
// first identity; the roots follow with a rename that never replaces, so of two stores
// racing for empty roots exactly one gets them and the other refuses.
#pragma once

#include <string>

#include "chunks/chunk_store.h"
#include "core/status.h"
#include "meta/meta_store.h"

namespace cairn::gc {

struct StoreIdentityOptions {
  // Take the roots for this metadata store even though the rule above refuses (never on a
  // mismatch of two recorded identities).
  bool adopt_roots = false;
};

struct StoreIdentity {
  std::string store_id;
  // What was done to make the two agree ("" if they already did), for the log.
  std::string action;
};

// Checks, and where the rule allows establishes, that `meta_store` and every root of
// `chunk_store` carry one identity. kFailedPrecondition with an explanation of what to do
// when they do not belong together.
Result<StoreIdentity> EnsureStoreIdentity(meta::MetaStore* meta_store,
                                          chunks::ChunkStore* chunk_store,
                                          const StoreIdentityOptions& options);

// A new random identity (a version 4 UUID).
std::string NewStoreId();

}  // namespace cairn::gc
