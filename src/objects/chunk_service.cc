#include "objects/chunk_service.h"

#include "core/block_checksums.h"
#include "core/hashing.h"
#include "ingest/chunk_ingest.h"

namespace cairn::objects {
namespace {

std::string Name(StorageClass storage_class, const Digest& digest) {
  return std::string(StorageClassName(storage_class)) + " chunk " + digest.ToHex();
}

}  // namespace

Result<meta::ChunkRecord> ChunkService::Referenced(StorageClass storage_class,
                                                   const Digest& digest) {
  ASSIGN_OR_RETURN(std::optional<meta::ChunkRecord> row,
                   objects_->meta_store()->GetChunk(storage_class, digest));
  if (!row || row->ref_count <= 0) {
    return NotFoundError("no file or object holds " + Name(storage_class, digest) +
                         " (its owner takes the reference in the metadata store first; is this "
                         "server's metadata store the client's?)");
  }
  return *row;
}

Result<bool> ChunkService::Have(StorageClass storage_class, const Digest& digest) {
  RETURN_IF_ERROR(Referenced(storage_class, digest).status());
  chunks::ChunkStore* store = objects_->chunk_store();
  Result<Digest> actual = store->Rehash(storage_class, digest);
  if (!actual.ok()) {
    if (actual.status().code() == StatusCode::kNotFound) return false;
    return actual.status().WithContext("reading " + Name(storage_class, digest));
  }
  if (*actual != digest) {
    objects_->ReportDamagedChunk(storage_class, digest, "a remote client's store of it",
                                 "the stored copy does not hash to its name",
                                 &ingest::IntegrityCounters::checksum_mismatch,
                                 /*quarantine=*/true);
    return false;
  }
  RETURN_IF_ERROR(store->SyncChunkFile(storage_class, digest));
  return true;
}

Status ChunkService::Put(StorageClass storage_class, const Digest& digest, std::string_view bytes) {
  ASSIGN_OR_RETURN(meta::ChunkRecord row, Referenced(storage_class, digest));
  if (bytes.size() != row.size_bytes) {
    return InvalidArgumentError("the body has " + std::to_string(bytes.size()) + " bytes; " +
                                Name(storage_class, digest) + " has " +
                                std::to_string(row.size_bytes));
  }
  const Digest received = Sha256Of(bytes);
  if (received != digest) {
    return InvalidArgumentError("the body hashes to " + received.ToHex() + ", not to " +
                                Name(storage_class, digest));
  }
  // The owner's reference is already in the metadata store; the ingest only checks that the
  // row describes these bytes, then writes (or heals) the file and syncs it and its name.
  ingest::ChunkIngest ingest(
      objects_->chunk_store(), objects_->chunk_health(), storage_class,
      "a remote client's store of it", [&row](const meta::ChunkRef& ref) -> Status {
        if (!row.block_checksums.empty() && row.block_checksums != ref.block_checksums) {
          return InvalidArgumentError(
              "the block checksums of the body differ from those recorded "
              "for the chunk");
        }
        return OkStatus();
      });
  RETURN_IF_ERROR(ingest.Store(digest, bytes));
  RETURN_IF_ERROR(ingest.SyncDirectories());
  // The copy in place now holds exactly these bytes (hashed above, compared or written by
  // the ingest): a damage mark left by an earlier check no longer applies.
  if (row.damaged_ms != 0) {
    objects_->meta_store()->SetChunkDamaged(storage_class, digest, 0).IgnoreError();
  }
  return OkStatus();
}

Result<std::unique_ptr<ObjectReader>> ChunkService::Open(StorageClass storage_class,
                                                         const Digest& digest) {
  ASSIGN_OR_RETURN(meta::ChunkRecord row, Referenced(storage_class, digest));
  meta::ChunkRef chunk(row.digest, row.size_bytes, row.block_checksums, row.damaged_ms);
  return objects_->OpenChunkListReader(ObjectId{}, storage_class, {chunk},
                                       "remote read of " + Name(storage_class, digest));
}

}  // namespace cairn::objects
