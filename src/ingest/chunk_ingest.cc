#include "ingest/chunk_ingest.h"

#include "core/block_checksums.h"
#include "core/hashing.h"

namespace cairn::ingest {

SealedChunk Seal(AlignedBuffer bytes) {
  SealedChunk chunk;
  chunk.digest = Sha256Of(bytes.view());
  chunk.bytes = std::move(bytes);
  return chunk;
}

AlignedBuffer ChunkBuffers::Take() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (spares_.empty()) return AlignedBuffer();
  AlignedBuffer buffer = std::move(spares_.back());
  spares_.pop_back();
  buffer.clear();
  return buffer;
}

void ChunkBuffers::Give(AlignedBuffer buffer) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (spares_.size() < max_spares_) spares_.push_back(std::move(buffer));
}

void ChunkBuffers::Trim(size_t keep) {
  std::vector<AlignedBuffer> gone;
  std::lock_guard<std::mutex> lock(mutex_);
  while (spares_.size() > keep) {
    gone.push_back(std::move(spares_.back()));
    spares_.pop_back();
  }
}

Status ChunkIngest::Store(const SealedChunk& chunk) {
  return Store(chunk.digest, chunk.bytes.view());
}

Status ChunkIngest::Store(const Digest& digest, std::string_view bytes) {
  meta::ChunkRef ref{digest, bytes.size(), BlockChecksums(bytes)};
  RETURN_IF_ERROR(take_reference_(ref));
  // The reference is taken: from here on GC cannot remove this digest, so an existing
  // file can be trusted to stay. It is not trusted to be right, though: a copy that does
  // not hold exactly these bytes (bit rot, a truncated or hand-edited file) is replaced by
  // a fresh one, which heals every owner that shares it.
  bool known_durable = false;
  ASSIGN_OR_RETURN(chunks::ChunkStore::Comparison existing,
                   chunk_store_->Compare(storage_class_, ref.digest, bytes, &known_durable));
  if (existing == chunks::ChunkStore::Comparison::kSame) {
    // The file may have been renamed into place by a writer that failed or has not
    // committed yet, which never synced its directory: this owner's commit must sync it
    // too, unless this store synced that directory after the file got its name.
    // Its bytes may not be durable either: a mount's deferred write renames unsynced.
    if (!known_durable) {
      const std::string path = chunk_store_->PathOf(storage_class_, ref.digest);
      if (deferred_) {
        deferred_files_.insert(path);
      } else {
        RETURN_IF_ERROR(chunk_store_->SyncChunkFile(storage_class_, ref.digest));
      }
      directories_to_sync_.insert(path.substr(0, path.rfind('/')));
    }
    ++deduplicated_chunks_;
    deduplicated_bytes_ += ref.size_bytes;
    return OkStatus();
  }
  const bool healing = existing == chunks::ChunkStore::Comparison::kDiffers;
  if (healing) {
    health_->ReportDamaged(storage_class_, ref.digest, owner_,
                           "the stored copy differs from uploaded bytes of the same hash",
                           &IntegrityCounters::checksum_mismatch, /*quarantine=*/true);
  }
  RETURN_IF_ERROR(chunk_store_->WriteChunk(storage_class_, ref.digest, bytes, &directories_to_sync_,
                                           deferred_ ? &deferred_files_ : nullptr));
  if (healing) health_->Healed(storage_class_, ref.digest);
  return OkStatus();
}

Status ChunkIngest::StoreAll(std::vector<SealedChunk> chunks, ChunkBuffers* buffers) {
  Status status;
  for (SealedChunk& chunk : chunks) {
    if (status.ok()) status = Store(chunk);
    if (buffers != nullptr) buffers->Give(std::move(chunk.bytes));
  }
  return status;
}

Status ChunkIngest::SyncDirectories() {
  RETURN_IF_ERROR(chunk_store_->SyncDirectories(directories_to_sync_));
  directories_to_sync_.clear();
  return OkStatus();
}

}  // namespace cairn::ingest
