// ChunkReferences: one use case of the metadata store (meta_store.h has the contract every engine
// shares: states, reference counts, transactions, errors).
//
// Chunk references and GC: collecting unreferenced chunks after the grace period, damage
// marks, the consistency checks of fsck, and the chunk lists of generic owners.
#pragma once

#include <map>
#include <optional>
#include <string_view>
#include <vector>

#include "meta/records.h"

namespace cairn::meta {

class ChunkReferences {
 public:
  virtual ~ChunkReferences() = default;

  // ---- Garbage collection -----------------------------------------------------------
  // WRITING objects with updated_at_ms < cutoff_ms are aborted (references dropped, row
  // deleted), at most `limit` per call. Returns how many.
  virtual Result<uint64_t> ReapStalledUploads(TimestampMs cutoff_ms, uint32_t limit,
                                              TimestampMs now_ms) = 0;
  // DELETING objects with updated_at_ms < cutoff_ms: rows deleted. Returns how many.
  virtual Result<uint64_t> PurgeDeletedObjects(TimestampMs cutoff_ms, uint32_t limit) = 0;
  // For up to `limit` chunks with ref_count == 0, zero_since_ms < cutoff_ms and no
  // owner_chunks row naming them (a guard against a wrong count), in ONE write
  // transaction: calls remove_file(chunk); when it returns OK the chunk row is deleted in
  // the same transaction. Because the transaction holds the write lock while files are
  // removed, a concurrent AddChunk/PutCommitted on the same digest either happens before
  // (count > 0, so the chunk is not a candidate) or after (the row is gone and the
  // uploader must write the file again). Returns the chunks removed.
  virtual Result<std::vector<ChunkRecord>> CollectGarbageChunks(
      TimestampMs cutoff_ms, uint32_t limit,
      const std::function<Status(const ChunkRecord&)>& remove_file) = 0;

  // ---- Chunk health ------------------------------------------------------------------
  // Marks the chunk row (class, digest) damaged since `damaged_ms` (a read or a check found
  // its file corrupt, short or missing), or healthy again with 0 (a fresh copy was
  // installed). The mark is what makes every object that uses the chunk answer an error
  // before it sends a byte. kNotFound if there is no such row.
  virtual Status SetChunkDamaged(StorageClass storage_class, const Digest& digest,
                                 TimestampMs damaged_ms) = 0;

  // ---- Consistency checks (fsck) ----------------------------------------------------
  // Every chunk row, and every digest named by object_chunks of live objects or by
  // owner_chunks, with recorded and actual reference counts (references of every owner
  // kind).
  virtual Result<std::vector<FsckReferenceRow>> CheckReferences() = 0;
  // Sets every chunk's ref_count to its actual count, from objects plus generic owners
  // (creating missing chunk rows, with zero_since_ms = now_ms for counts that become zero).
  // Never drops an owner's references. Returns rows changed.
  virtual Result<uint64_t> RepairReferences(TimestampMs now_ms) = 0;
  // Whether a chunk row exists for (class, digest), for the file-vs-row checks.
  virtual Result<std::vector<ChunkRecord>> ListChunks() = 0;
  // The row of one chunk (its count, length, block checksums and damage mark), or none.
  virtual Result<std::optional<ChunkRecord>> GetChunk(StorageClass storage_class,
                                                      const Digest& digest) = 0;
  // Chunk rows per class (classes without chunks absent), summed by the engine: what a
  // status page needs without holding every row in memory.
  virtual Result<std::vector<ChunkTotalsRow>> ChunkTotals() {
    ASSIGN_OR_RETURN(std::vector<ChunkRecord> chunks, ListChunks());
    std::map<std::string_view, ChunkTotalsRow> totals;  // by class name, as the engines order
    for (const ChunkRecord& chunk : chunks) {
      ChunkTotalsRow& row = totals[StorageClassName(chunk.storage_class)];
      row.storage_class = chunk.storage_class;
      row.chunks += 1;
      row.bytes += chunk.size_bytes;
      if (chunk.ref_count == 0) row.unreferenced += 1;
    }
    std::vector<ChunkTotalsRow> rows;
    for (const auto& [storage_class, row] : totals) rows.push_back(row);
    return rows;
  }
  // COMMITTED objects that reference a chunk of `digests` in `storage_class`, by id
  // (fsck reports which objects a missing or corrupt chunk affects).
  virtual Result<std::vector<ObjectId>> FindObjectsWithChunks(StorageClass storage_class,
                                                              const std::vector<Digest>& digests) {
    return NotSupportedByEngine("FindObjectsWithChunks");
  }
  // Drops every reference of objects that reference a chunk in `lost` (a missing or
  // corrupt chunk): those objects become DELETING. Returns the ids. Used by fsck --repair.
  virtual Result<std::vector<ObjectId>> DropObjectsWithChunks(StorageClass storage_class,
                                                              const std::vector<Digest>& lost,
                                                              TimestampMs now_ms) = 0;

  // ---- Generic chunk owners ------------------------------------------------------------
  // Owners other than objects (ChunkOwner above). Each method is one transaction, with the
  // locking of the object paths; references are taken and dropped exactly as for objects
  // (a chunk whose count reaches zero gets zero_since_ms = now_ms and becomes a GC
  // candidate after the grace period, as when an object is deleted). Every method answers
  // kInvalidArgument, changing nothing, for an owner whose kind or id breaks the rules of
  // ChunkOwner (the reserved kind "object" included).
  //
  // An owner that deduplicates onto an existing chunk file must hold its reference before
  // it trusts the file, as an upload's AddChunk does: GC removes a file only while no
  // reference exists, inside the transaction that deletes the row.
  //
  // Replaces the owner's whole chunk list with `chunks` (in order; an empty list drops
  // them all): a reference is taken on each new entry (the chunk row created if absent,
  // block checksums recorded on a row that has none) and every reference of the old list
  // is dropped, atomically.
  virtual Status SetOwnerChunks(const ChunkOwner& owner, const std::vector<OwnerChunk>& chunks,
                                TimestampMs now_ms) {
    return NotSupportedByEngine("SetOwnerChunks");
  }
  // Drops every reference of the owner (nothing to do is not an error).
  virtual Status DropOwnerChunks(const ChunkOwner& owner, TimestampMs now_ms) {
    return NotSupportedByEngine("DropOwnerChunks");
  }
  // The owner's chunk list in order, each entry with its class and its chunk row's block
  // checksums and damage mark; empty for an owner that holds nothing.
  virtual Result<std::vector<OwnerChunk>> GetOwnerChunks(const ChunkOwner& owner) {
    return NotSupportedByEngine("GetOwnerChunks");
  }
  // The owners whose list names a chunk of `digests` in `storage_class`, ordered by kind
  // and id (fsck names the owners a missing or corrupt chunk affects).
  virtual Result<std::vector<ChunkOwner>> FindOwnersWithChunks(StorageClass storage_class,
                                                               const std::vector<Digest>& digests) {
    return NotSupportedByEngine("FindOwnersWithChunks");
  }
  // What the owners of `kind` hold, one row per storage class in which they hold chunks
  // (classes by name). kInvalidArgument for a kind that breaks the rules.
  virtual Result<std::vector<OwnerUsageRow>> OwnerUsage(const std::string& kind) {
    return NotSupportedByEngine("OwnerUsage");
  }
};

}  // namespace cairn::meta
