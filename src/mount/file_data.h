// FileData: the bytes of the files a mount has open (docs/filesystem.md, "Data").
//
// A file is a list of 4 MiB blocks, each one content-addressed chunk or a hole. Writes
// gather in a per-inode buffer of dirty blocks (a partial write into a stored block first
// reads that block, verified); Flush stores every dirty block through ingest::ChunkIngest
// and commits the block rows with the size and mtime in one FileTree transaction, so a
// file's chunks are named and deduplicated exactly as an object's.
//
// Between storing a chunk and committing its block row, the chunk is referenced by the
// mount's staging owner (kind "fs-staging", id "<volume uuid>:<session id>"; its list is
// the chunks of every flush in flight), so GC cannot take a chunk that an existing file of
// the same bytes let the flush skip writing. A flush's entries leave the list after its
// commit; a mount that dies in between leaves them until its session is reclaimed
// (mount/session.h).
//
// Reads verify every byte against the chunk's block checksums (objects::ObjectReader); a
// mismatch is reported to ChunkHealth (quarantined, logged, counted) and fails with
// kDataLoss, which the FUSE edge turns into EIO: no wrong byte reaches the page cache.
//
// What another mount changed is seen at the next open (close-to-open): Open drops the
// cached block rows of an inode whose change counter moved; the change feed drops them
// sooner (Invalidate).
//
// With deferred durability (what `cairn mount` uses), a flush renames its new chunks into
// place without fdatasync or directory fsync and commits relaxed: the file is complete for
// every reader and survives the mount's death (the page cache is the kernel's), and becomes
// durable against a power cut at fsync (SyncData: its chunks, then the caller's
// FileSystem::Sync) or at the mount's next periodic sync (SyncAllData).
//
// Thread-safety: any thread. Operations on one inode are serialized by its own mutex.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/status.h"
#include "fs/file_system.h"
#include "ingest/chunk_ingest.h"
#include "mount/remote_chunks.h"
#include "objects/object_service.h"

namespace cairn::mount {

inline constexpr std::string_view kStagingOwnerKind = "fs-staging";

struct FileDataOptions {
  // Dirty bytes one file may hold before its writes flush (close and fsync flush always).
  uint64_t buffer_bytes = uint64_t{64} << 20;
  StorageClass storage_class = StorageClass::kHot;
  // Close stores chunks without syncing them (ingest::ChunkIngest::Defer); SyncData (fsync)
  // and SyncAllData (the mount's periodic sync, unmount) make them durable.
  bool deferred_durability = false;
  // Blocks stored in the background at once (threads): a block a write fills to its end
  // is hashed and stored while the writer goes on, and a flush of several blocks stores
  // them in parallel. 0: every block is stored by the flush that commits it.
  unsigned max_uploads = 0;
  // Blocks read ahead of a sequential reader, in the background: each is read and
  // verified whole into memory while the reader consumes the one before. 0: none.
  unsigned prefetch = 0;
  // Chunks through a Cairn server instead of the chunk store (`--storage http://`): stored
  // durably there (HEAD, then PUT only if the server lacks the chunk) and read in verified
  // ranges. The FileData is then built without a chunk store.
  RemoteChunks* remote = nullptr;
};

// Verified reads of one stored chunk, from the chunk store or a remote server.
class ChunkReader {
 public:
  virtual ~ChunkReader() = default;
  // Up to `length` bytes at `offset`; 0 at the end of the chunk.
  virtual Result<size_t> Read(uint64_t offset, size_t length, char* out) = 0;
  // Checks the whole chunk (`size` bytes): a chunk marked damaged is served again only
  // once a copy verifies in full.
  virtual Status Verify(uint64_t size) = 0;
};

struct FileDataCounters {
  uint64_t bytes_written = 0;
  uint64_t bytes_read = 0;
  uint64_t flushes = 0;
  uint64_t chunks_stored = 0;
  uint64_t chunks_deduplicated = 0;
  uint64_t read_errors = 0;
  // Lookups of a stored block's row (read, truncate) answered by the inode's cached rows,
  // and those that read the metadata store (which then caches 16 rows at once).
  uint64_t block_row_hits = 0;
  uint64_t block_row_misses = 0;
};

class FileData {
 public:
  FileData(fs::FileSystem* file_system, meta::MetaStore* meta_store,
           chunks::ChunkStore* chunk_store, objects::ObjectService* objects,
           std::string volume_uuid, std::string session, FileDataOptions options,
           std::function<TimestampMs()> now_ms);
  ~FileData();
  // Ends the background threads, first letting every upload of a file still open finish
  // and drop its staging (the mount ended without the file's flush). Call before the
  // mount's session ends; nothing may call this object afterwards but IsOpen.
  void Shutdown();
  FileData(const FileData&) = delete;
  FileData& operator=(const FileData&) = delete;

  // A handle opened `inode` (its attributes as the open read them). Returns whether the
  // kernel may keep its page cache of the file: it was filled at this very version (by
  // this mount's reads and writes since an earlier open or commit of it) and no other
  // mount's change of the data has come through the feed since.
  bool Open(const meta::InodeRecord& inode);
  // A handle of `ino` closed (the caller flushed it). When it was the last one, the
  // inode's state goes and, if it is an orphan, the inode is deleted.
  Status Release(uint64_t ino);
  bool IsOpen(uint64_t ino) const;

  Status Write(uint64_t ino, uint64_t offset, std::string_view data);
  // Up to `length` bytes at `offset`; fewer only at the end of the file.
  Result<size_t> Read(uint64_t ino, uint64_t offset, size_t length, char* out);
  // The same bytes without a copy where they already sit, verified, in a block read ahead:
  // then a view of them, kept valid by `hold` (the read-ahead buffer goes back to the
  // spares only when the last holder lets go). Otherwise they are copied into `scratch`
  // (at least `length` bytes) and the view is of it.
  Result<std::string_view> ReadView(uint64_t ino, uint64_t offset, size_t length, char* scratch,
                                    std::shared_ptr<const void>* hold);
  // Stores the dirty blocks and commits them (close, fsync).
  Status Flush(uint64_t ino);
  // Makes the chunks that `ino`'s flushes stored deferred durable (fsync, after Flush and
  // before FileSystem::Sync).
  Status SyncData(uint64_t ino);
  // The same for every inode; whether there was anything to sync.
  Result<bool> SyncAllData();
  // Another mount changed the data of `ino`: the cached block rows go (unless this mount
  // holds writes of its own not committed yet, which commit over it). `now` is the inode
  // as the caller read it after the change (an error: unknown, the next open reads it);
  // the size and version move to it only if it is newer than what an open stored since.
  void Invalidate(uint64_t ino, const Result<meta::InodeRecord>& now);
  // Applies what this mount has not committed yet (the size of pending writes).
  void Overlay(meta::InodeRecord* inode) const;
  // fs::FileSystem::SetAttr, after flushing, with the trimmed boundary block a truncate
  // needs (fs::AttrChange::boundary_block).
  Result<meta::InodeRecord> SetAttr(uint64_t ino, fs::AttrChange change);

  FileDataCounters counters() const;

 private:
  // Deferred chunk files and directories not synced yet, by the inode whose flush stored
  // them.
  struct Pending {
    std::set<std::string> files;
    std::set<std::string> directories;
  };
  // A dirty block being stored in the background. Its buffer stays in Inode::dirty,
  // unchanged until the upload is settled (waited for): a write into it, a flush and a
  // release settle it first.
  struct Upload {
    std::mutex mutex;
    std::condition_variable finished_cv;
    bool finished = false;  // GUARDED_BY(mutex)
    Result<meta::BlockRecord> block = InternalError("upload not finished");
    std::vector<uint64_t> staged;  // its entries (seqs) of the staging owner
    Pending pending;
    void Wait();
  };
  // A stored block read ahead (whole, verified) for a sequential reader. Counted in
  // `in_use` (the mount's prefetch budget) from its start until the last reference goes.
  // A block read ahead. Its buffer returns to the spares when the last holder lets go: the
  // file's map, the reading task, a reply being sent from it (ReadView).
  struct Prefetch {
    Prefetch(std::atomic<size_t>* in_use, ingest::ChunkBuffers* spares)
        : in_use(in_use), spares(spares) {
      ++*in_use;
    }
    ~Prefetch() {
      if (bytes.capacity() > 0) spares->Give(std::move(bytes));
      --*in_use;
    }
    Prefetch(const Prefetch&) = delete;
    Prefetch& operator=(const Prefetch&) = delete;
    std::atomic<size_t>* in_use;
    ingest::ChunkBuffers* spares;
    std::mutex mutex;
    std::condition_variable finished_cv;
    bool finished = false;  // GUARDED_BY(mutex)
    Digest digest;          // the chunk it read: a block row that names another is not it
    Status status;
    AlignedBuffer bytes;
    void Wait();
  };
  struct Inode {
    std::mutex mutex;
    uint64_t opens = 0;         // GUARDED_BY(FileData::mutex_)
    uint64_t size = 0;          // as this mount sees it, pending writes included
    uint64_t change = 0;        // the committed version the cached rows belong to
    bool size_pending = false;  // size raised by writes not committed yet
    uint64_t dirty_bytes = 0;
    std::map<uint64_t, AlignedBuffer> dirty;                      // by block index
    std::map<uint64_t, std::optional<meta::BlockRecord>> blocks;  // cached rows
    // The reader of the last stored block read (sequential reads reuse its open file).
    uint64_t reader_block = UINT64_MAX;
    std::unique_ptr<ChunkReader> reader;
    std::map<uint64_t, std::shared_ptr<Upload>> uploads;       // by block index
    std::map<uint64_t, std::shared_ptr<Prefetch>> prefetched;  // by block index
    uint64_t next_read = 0;  // where the last read ended (a read from 0 is sequential)
    // Staged by uploads whose block was written again before its flush: they leave the
    // staging list with the next commit.
    std::vector<uint64_t> superseded;
  };

  std::shared_ptr<Inode> Find(uint64_t ino) const;
  // With `hold_tail` (a flush because the buffer is full, in the middle of writing), the
  // file's last block stays in the buffer if it is not full yet: storing it now would only
  // store it again, larger, at the next flush (and read it back first).
  Status FlushLocked(uint64_t ino, Inode& inode, bool hold_tail = false);
  Result<std::optional<meta::BlockRecord>> StoredBlock(uint64_t ino, Inode& inode, uint64_t index);
  // A reader of the chunk of `block` (block `index` of `ino`, for reports).
  std::unique_ptr<ChunkReader> OpenChunk(uint64_t ino, uint64_t index,
                                         const meta::BlockRecord& block);
  // Copies `length` bytes at `within` of block `index` as stored (zeros for a hole or past
  // the chunk's end) into `out`. With `hold`, bytes that sit whole in a block read ahead are
  // not copied: `*view` points at them and `*hold` keeps them.
  Status ReadStored(uint64_t ino, Inode& inode, uint64_t index, uint64_t within, size_t length,
                    char* out, const char** view = nullptr,
                    std::shared_ptr<const void>* hold = nullptr);
  Result<size_t> ReadLocked(uint64_t ino, Inode& inode, uint64_t offset, size_t length, char* out,
                            const char** view, std::shared_ptr<const void>* hold);
  // Stores `bytes` as a chunk referenced by `ino`'s staging owner; returns its block row.
  Result<meta::BlockRecord> StoreBlock(uint64_t ino, uint64_t index, std::string_view bytes,
                                       std::vector<uint64_t>* staged, Pending* pending);
  // Starts storing dirty block `index` in the background (max_uploads > 0).
  void StartUpload(uint64_t ino, Inode& inode, uint64_t index);
  // Waits for the upload of block `index` (if any) and drops its result: the block is
  // about to change (its staged chunk leaves with the next commit).
  void Settle(Inode& inode, uint64_t index);
  // Waits for every upload of `inode` and drops the results (the inode goes).
  Status DropUploads(Inode& inode);
  void RunUploads();
  bool UploadsOn() const { return options_.max_uploads > 0 && !uploaders_.empty(); }
  bool PrefetchOn() const { return options_.prefetch > 0 && !uploaders_.empty(); }
  void StopThreads();
  void Enqueue(std::function<void()> task);
  // A sequential reader reached block `index`: the next blocks are read ahead.
  void StartPrefetch(uint64_t ino, Inode& inode, uint64_t index);
  // Returns the read-ahead buffers of blocks before `index` (or all) to the spares.
  void DropPrefetched(Inode& inode, uint64_t below = UINT64_MAX);
  // Adds `chunk` to the staging owner at a new seq, appended to `staged`; Unstage drops
  // entries. One entry per change, not the whole list: with many flushes in flight the
  // list is long, and each one's store would otherwise rewrite it.
  Status Stage(const meta::OwnerChunk& chunk, std::vector<uint64_t>* staged);
  Status Unstage(const std::vector<uint64_t>& seqs);

  fs::FileSystem* file_system_;
  meta::MetaStore* meta_store_;
  chunks::ChunkStore* chunk_store_;
  objects::ObjectService* objects_;
  const std::string volume_uuid_;
  const std::string session_;
  const FileDataOptions options_;
  std::function<TimestampMs()> now_ms_;

  // Held through each SyncData and SyncAllData: an fsync that finds nothing pending
  // because the periodic sync took it must wait for that sync to end (and see its error).
  std::mutex sync_mutex_;
  std::mutex pending_mutex_;
  std::unordered_map<uint64_t, Pending> pending_;  // GUARDED_BY(pending_mutex_)
  // Inodes whose deferred data failed to sync (the periodic sync): the kernel reports a
  // writeback error once, so a later retry may succeed over lost pages. Their next fsync
  // fails with the error instead (then it is cleared, as a local file system does).
  std::unordered_map<uint64_t, Status> sync_failed_;  // GUARDED_BY(pending_mutex_)
  // Adds `pending` to what `ino` has to sync.
  void AddPendingLocked(uint64_t ino, Pending& pending);  // REQUIRES(pending_mutex_)
  // Spare block buffers, as many as one full write buffer (a fresh 4 MiB allocation per
  // block costs an mmap, 1,024 page faults on first touch and a munmap with its TLB
  // shootdown: half the CPU of a sequential write). An idle periodic sync trims them.
  static size_t SparesFor(uint64_t buffer_bytes);
  static constexpr size_t kIdleSpares = 4;
  ingest::ChunkBuffers buffers_;

  std::mutex upload_mutex_;
  std::condition_variable upload_cv_;
  std::deque<std::function<void()>> upload_queue_;  // GUARDED_BY(upload_mutex_)
  bool stopping_ = false;                           // GUARDED_BY(upload_mutex_)
  std::vector<std::thread> uploaders_;
  // Read-ahead buffers in use over all files, and their bound (4 per block read ahead).
  std::atomic<size_t> prefetch_buffers_{0};
  const size_t prefetch_budget_ = 4 * std::max<size_t>(1, options_.prefetch);

  const meta::ChunkOwner staging_owner_;
  // The next entry of the staging owner (a session's owner starts empty).
  std::atomic<uint64_t> next_staging_seq_{0};

  mutable std::mutex mutex_;
  std::unordered_map<uint64_t, std::shared_ptr<Inode>> inodes_;  // GUARDED_BY(mutex_)
  FileDataCounters counters_;                                    // GUARDED_BY(mutex_)
  // The data version (change counter) the kernel's page cache of each inode is known to
  // match; bounded.
  std::unordered_map<uint64_t, uint64_t> cached_change_;  // GUARDED_BY(mutex_)
  void NoteCached(uint64_t ino, uint64_t change);         // REQUIRES(!mutex_)
  // The page cache may hold bytes that never committed (a failed flush, writes dropped at
  // release): the next open must not keep it.
  void ForgetCached(uint64_t ino);  // REQUIRES(!mutex_)
};

}  // namespace cairn::mount
