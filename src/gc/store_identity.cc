#include "gc/store_identity.h"

#include <map>
#include <optional>

#include "platform/clock.h"

namespace cairn::gc {
namespace {

constexpr char kWhatToDo[] =
    " If the metadata is elsewhere, pass the right --meta; if it was lost, restore the newest "
    "snapshot with `cairn meta load` (a snapshot carries the store identity); if this "
    "metadata store is really meant to own these roots, start once with --adopt-roots (GC "
    "then quarantines every chunk file it does not know).";

std::string RootList(chunks::ChunkStore* chunk_store) {
  return chunk_store->RootOf(StorageClass::kHot) + " and " +
         chunk_store->RootOf(StorageClass::kCold);
}

}  // namespace

std::string NewStoreId() {
  std::array<uint8_t, 16> random;
  platform::FillRandom(random.data(), random.size());
  return ObjectId::FromRandomBytes(random).ToString();
}

Result<StoreIdentity> EnsureStoreIdentity(meta::MetaStore* meta_store,
                                          chunks::ChunkStore* chunk_store,
                                          const StoreIdentityOptions& options) {
  ASSIGN_OR_RETURN(std::optional<std::string> meta_id, meta_store->GetStoreIdentity());
  std::map<StorageClass, std::optional<std::string>> root_ids;
  std::optional<std::string> root_id;
  for (StorageClass storage_class : kAllStorageClasses) {
    ASSIGN_OR_RETURN(root_ids[storage_class], chunk_store->ReadStoreId(storage_class));
    const auto& id = root_ids[storage_class];
    if (!id) continue;
    if (root_id && *root_id != *id) {
      return FailedPreconditionError("the storage roots belong to different stores: " +
                                     chunk_store->StoreIdPath(StorageClass::kHot) + " says " +
                                     *root_ids[StorageClass::kHot] + ", " +
                                     chunk_store->StoreIdPath(StorageClass::kCold) + " says " +
                                     *root_ids[StorageClass::kCold] +
                                     ". Point --hot-dir and --cold-dir at the roots of "
                                     "one store.");
    }
    root_id = id;
  }
  if (meta_id && root_id && *meta_id != *root_id) {
    return FailedPreconditionError(
        "the metadata store belongs to store " + *meta_id + " but the storage roots (" +
        RootList(chunk_store) + ") belong to store " + *root_id +
        "; refusing to start, so that no chunk file of either is taken for an orphan. Pass the "
        "--meta and --hot-dir/--cold-dir of one store.");
  }
  const bool every_root_identified =
      root_ids[StorageClass::kHot].has_value() && root_ids[StorageClass::kCold].has_value();
  if (meta_id && every_root_identified) return StoreIdentity{*meta_id, ""};

  ASSIGN_OR_RETURN(bool roots_hold_chunks, chunk_store->HoldsAnyChunk());
  ASSIGN_OR_RETURN(auto object_counts, meta_store->CountObjects());
  uint64_t objects = 0;
  for (const auto& row : object_counts) objects += row.objects;
  ASSIGN_OR_RETURN(uint64_t chunk_rows, meta_store->CountChunks());
  const bool meta_empty = objects == 0 && chunk_rows == 0;
  const std::string counts =
      std::to_string(objects) + " objects and " + std::to_string(chunk_rows) + " chunk rows";

  std::string target;
  std::string action;
  if (meta_id) {
    // Some root has no file yet: a new root, or a start that stopped after the metadata
    // got its identity and before every root did.
    if (!options.adopt_roots && roots_hold_chunks && meta_empty && !root_id) {
      return FailedPreconditionError(
          "the storage roots (" + RootList(chunk_store) +
          ") hold chunk files but no store identity, and the metadata store (store " + *meta_id +
          ") is empty." + kWhatToDo);
    }
    if (!options.adopt_roots && !roots_hold_chunks && chunk_rows > 0 && !root_id) {
      return FailedPreconditionError(
          "the metadata store (store " + *meta_id + ") records " + counts +
          " but the storage roots (" + RootList(chunk_store) +
          ") hold no chunk file and no store identity: is the volume mounted? Pass the right "
          "--hot-dir/--cold-dir, or --adopt-roots if the chunk files are really gone.");
    }
    target = *meta_id;
    action = "gave the storage roots the metadata store's identity " + target;
  } else if (root_id) {
    if (!options.adopt_roots && !(meta_empty && !roots_hold_chunks)) {
      if (meta_empty) {
        return FailedPreconditionError(
            "the metadata store is empty but the storage roots (" + RootList(chunk_store) +
            ") hold chunk files of store " + *root_id +
            "; starting would make every one of them look orphaned." + kWhatToDo);
      }
      return FailedPreconditionError(
          "the metadata store holds " + counts + " but no store identity, and the storage roots (" +
          RootList(chunk_store) + ") belong to store " + *root_id +
          ": this metadata may belong to another store (or comes from a snapshot taken before "
          "stores had identities)." +
          kWhatToDo);
    }
    target = *root_id;
    action = "gave the metadata store the storage roots' identity " + target;
  } else {
    if (!options.adopt_roots && roots_hold_chunks && meta_empty) {
      return FailedPreconditionError(
          "the metadata store is empty but the storage roots (" + RootList(chunk_store) +
          ") hold chunk files; starting would make every one of them look orphaned." + kWhatToDo);
    }
    if (!options.adopt_roots && !roots_hold_chunks && chunk_rows > 0) {
      return FailedPreconditionError(
          "the metadata store records " + counts + " but the storage roots (" +
          RootList(chunk_store) +
          ") hold no chunk file: is the volume mounted? Pass the right --hot-dir/--cold-dir, "
          "or --adopt-roots if the chunk files are really gone.");
    }
    target = NewStoreId();
    action = meta_empty ? "created store identity " + target
                        : "gave the existing store the identity " + target;
  }

  // The database first: of nodes starting together, the first identity committed wins and
  // the others adopt it.
  ASSIGN_OR_RETURN(std::string recorded, meta_store->SetStoreIdentityIfAbsent(target));
  if (recorded != target) action = "";  // another process got there first
  for (StorageClass storage_class : kAllStorageClasses) {
    ASSIGN_OR_RETURN(std::string in_root,
                     chunk_store->WriteStoreIdIfAbsent(storage_class, recorded));
    if (in_root != recorded) {
      return FailedPreconditionError(
          "the storage root " + chunk_store->RootOf(storage_class) +
          " was just given the identity of store " + in_root +
          " by another process, but the metadata store belongs to store " + recorded +
          ": two stores were started on these roots at once; only one may use them.");
    }
  }
  return StoreIdentity{recorded, action};
}

}  // namespace cairn::gc
