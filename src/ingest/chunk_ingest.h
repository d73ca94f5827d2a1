// Chunk ingest: how every front end stores the chunks of what it writes (an object upload
// today, a file of the filesystem tomorrow), so that the durability order and the dedup rule
// are written once.
//
// The chunking rule. A content is cut at fixed offsets (0, 4 MiB, 8 MiB, ...;
// chunks::kDefaultChunkSizeBytes) and each piece is named by its SHA-256. Any door that cuts
// the same bytes at the same offsets names the same chunks, so an object, a file and a
// native object with equal bytes are stored once.
//
// For each chunk, in this order (ChunkIngest::Store):
//   1. the chunk is hashed (by the caller while gathering it, or by Seal);
//   2. the owner takes its reference on the digest (the TakeReference callback: an upload's
//      MetaStore::AddChunk, a file's chunk list): from then on GC cannot remove the file;
//   3. if the chunk file exists and holds exactly these bytes, nothing is written (dedup);
//      a file of that name with other bytes is reported damaged and replaced (heal);
//   4. otherwise the bytes go to a temp file, which is fdatasynced and renamed into place.
// Before the owner commits, SyncDirectories fsyncs each fan-out directory that received (or
// may not yet durably hold) one of its chunks' names, once. Only then may the owner's commit
// make the chunks reachable: an acknowledged owner never names a chunk a crash can lose.
// An existing file in step 3 that the store does not know durable (a mount's deferred
// write may have put it there unsynced) has its data synced first, too.
//
// A deferred ingest (a mount's file, whose close promises no durability: fsync does) skips
// every sync: new chunks are renamed in unsynced and TakeDeferred hands the files and
// directories to sync to the owner, which syncs them (ChunkStore::SyncDeferred) before it
// makes its commit durable.
//
// Thread-safety: a ChunkIngest belongs to one owner and serves one Store call at a time;
// several ingests (of several owners) may run at once on any threads. ChunkBuffers is
// thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "chunks/chunk_store.h"
#include "core/aligned_buffer.h"
#include "core/types.h"
#include "ingest/chunk_health.h"
#include "meta/meta_store.h"

namespace cairn::ingest {

// A full chunk, hashed, waiting to be stored.
struct SealedChunk {
  Digest digest;
  AlignedBuffer bytes;  // page-aligned: a full chunk can be written with direct I/O
};

// Hashes `bytes` into a sealed chunk (for a front end that did not hash while gathering).
SealedChunk Seal(AlignedBuffer bytes);

// Reusable chunk buffers handed back by the storing side, so that the gathering side needs
// no fresh 4 MiB allocation (and its page faults) per chunk. Keeps at most `max_spares`.
class ChunkBuffers {
 public:
  explicit ChunkBuffers(size_t max_spares = 2) : max_spares_(max_spares) {}
  // A spare buffer (emptied), or an empty one without storage if none is kept.
  AlignedBuffer Take();
  void Give(AlignedBuffer buffer);
  // Lets all but `keep` spares go (an idle user gives its memory back).
  void Trim(size_t keep);

 private:
  const size_t max_spares_;
  std::mutex mutex_;
  std::vector<AlignedBuffer> spares_;  // GUARDED_BY(mutex_)
};

class ChunkIngest {
 public:
  // Takes the owner's reference on a chunk (digest, length, block checksums). It runs
  // before the ingest trusts or writes the chunk's file; an error stops the store with
  // nothing written.
  using TakeReference = std::function<Status(const meta::ChunkRef& chunk)>;

  // `owner` names the owner in damage reports ("object <id>", "file <id>").
  ChunkIngest(chunks::ChunkStore* chunk_store, ChunkHealth* health, StorageClass storage_class,
              std::string owner, TakeReference take_reference)
      : chunk_store_(chunk_store),
        health_(health),
        storage_class_(storage_class),
        owner_(std::move(owner)),
        take_reference_(std::move(take_reference)) {}

  // Steps 2-4 above for one chunk.
  Status Store(const SealedChunk& chunk);
  // The same for bytes the caller keeps (`digest` is their SHA-256). Page-aligned bytes of
  // a full chunk can be written with direct I/O.
  Status Store(const Digest& digest, std::string_view bytes);
  // Stores `chunks` in order, stopping at the first error (returned), and gives every
  // buffer to `buffers` (if not null) for reuse.
  Status StoreAll(std::vector<SealedChunk> chunks, ChunkBuffers* buffers);
  // Makes the names of the chunks stored so far durable (fsync of each fan-out directory,
  // once); call before the owner's commit.
  Status SyncDirectories();

  // Makes this a deferred ingest (see above); call before the first Store.
  void Defer() { deferred_ = true; }
  // A deferred ingest's files and directories still to sync; leaves it empty.
  void TakeDeferred(std::set<std::string>* files, std::set<std::string>* directories) {
    files->merge(deferred_files_);
    directories->merge(directories_to_sync_);
    deferred_files_.clear();
    directories_to_sync_.clear();
  }

  StorageClass storage_class() const { return storage_class_; }
  // Chunks (and their bytes) that were already stored and so were not written again.
  uint64_t deduplicated_chunks() const { return deduplicated_chunks_; }
  uint64_t deduplicated_bytes() const { return deduplicated_bytes_; }

 private:
  chunks::ChunkStore* chunk_store_;
  ChunkHealth* health_;
  StorageClass storage_class_;
  std::string owner_;
  TakeReference take_reference_;
  std::set<std::string> directories_to_sync_;
  bool deferred_ = false;
  std::set<std::string> deferred_files_;  // deferred only
  uint64_t deduplicated_chunks_ = 0;
  uint64_t deduplicated_bytes_ = 0;
};

}  // namespace cairn::ingest
