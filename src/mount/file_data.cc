#include "mount/file_data.h"

#include <algorithm>
#include <cstring>
#include <system_error>
#include <thread>

#include "core/block_checksums.h"
#include "core/hashing.h"
#include "ingest/chunk_ingest.h"

namespace cairn::mount {
namespace {

using fs::kBlockBytes;

Status TooLarge(uint64_t end) {
  return Status(StatusCode::kOutOfRange, ErrorReason::kFileTooLarge,
                "a write ending at byte " + std::to_string(end) +
                    " is past the largest file size " + std::to_string(fs::kMaxFileSizeBytes));
}

}  // namespace

FileData::FileData(fs::FileSystem* file_system, meta::MetaStore* meta_store,
                   chunks::ChunkStore* chunk_store, objects::ObjectService* objects,
                   std::string volume_uuid, std::string session, FileDataOptions options,
                   std::function<TimestampMs()> now_ms)
    : file_system_(file_system),
      meta_store_(meta_store),
      chunk_store_(chunk_store),
      objects_(objects),
      volume_uuid_(std::move(volume_uuid)),
      session_(std::move(session)),
      options_(options),
      now_ms_(std::move(now_ms)),
      buffers_(SparesFor(options.buffer_bytes)),
      staging_owner_{std::string(kStagingOwnerKind), volume_uuid_ + ":" + session_} {
  const unsigned threads = std::max(options_.max_uploads, options_.prefetch);
  for (unsigned i = 0; i < threads; ++i) {
    try {
      uploaders_.emplace_back([this] { RunUploads(); });
    } catch (const std::system_error&) {
      break;  // no more threads to be had (a process limit): fewer uploads at once
    }
  }
}

FileData::~FileData() { StopThreads(); }

void FileData::StopThreads() {
  {
    std::lock_guard<std::mutex> lock(upload_mutex_);
    stopping_ = true;
  }
  upload_cv_.notify_all();
  for (std::thread& uploader : uploaders_) uploader.join();
  uploaders_.clear();
}

void FileData::Shutdown() {
  std::vector<std::shared_ptr<Inode>> all;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& entry : inodes_) all.push_back(entry.second);
  }
  // Files still open when the mount ends (a signal, an aborted connection): their unflushed
  // blocks were never acknowledged; their uploads finish and let go of their staging now,
  // while the session and the file system are still there.
  for (const std::shared_ptr<Inode>& inode : all) {
    std::lock_guard<std::mutex> lock(inode->mutex);
    Status dropped = DropUploads(*inode);
    if (!dropped.ok()) {
      fprintf(stderr, "cairn mount: dropping the staging of unflushed blocks: %s\n",
              dropped.ToString().c_str());
    }
    DropPrefetched(*inode);
  }
  StopThreads();
}

void FileData::RunUploads() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(upload_mutex_);
      upload_cv_.wait(lock, [&] { return stopping_ || !upload_queue_.empty(); });
      if (upload_queue_.empty()) return;  // stopping, with nothing left to do
      task = std::move(upload_queue_.front());
      upload_queue_.pop_front();
    }
    task();
  }
}

void FileData::Upload::Wait() {
  std::unique_lock<std::mutex> lock(mutex);
  finished_cv.wait(lock, [&] { return finished; });
}

void FileData::Enqueue(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(upload_mutex_);
    upload_queue_.push_back(std::move(task));
  }
  upload_cv_.notify_one();
}

void FileData::Prefetch::Wait() {
  std::unique_lock<std::mutex> lock(mutex);
  finished_cv.wait(lock, [&] { return finished; });
}

void FileData::StartPrefetch(uint64_t ino, Inode& inode, uint64_t index) {
  // Only the window ahead of the reader stays (a reader that jumps back leaves blocks it
  // will not reach), and all files together hold at most prefetch_budget_ buffers.
  for (auto it = inode.prefetched.upper_bound(index + options_.prefetch);
       it != inode.prefetched.end();) {
    it = inode.prefetched.erase(it);  // its buffer returns when the last holder lets go
  }
  for (uint64_t next = index + 1; next <= index + options_.prefetch; ++next) {
    if (next * kBlockBytes >= inode.size) break;
    if (inode.prefetched.count(next) > 0 || inode.dirty.count(next) > 0) continue;
    if (prefetch_buffers_.load() >= prefetch_budget_) break;
    Result<std::optional<meta::BlockRecord>> block = StoredBlock(ino, inode, next);
    if (!block.ok() || !block->has_value() || (*block)->chunk.chunk.damaged_ms != 0) continue;
    auto prefetch = std::make_shared<Prefetch>(&prefetch_buffers_, &buffers_);
    prefetch->digest = (*block)->chunk.chunk.digest;
    prefetch->bytes = buffers_.Take();
    if (prefetch->bytes.capacity() < kBlockBytes) prefetch->bytes = AlignedBuffer(kBlockBytes);
    inode.prefetched[next] = prefetch;
    std::unique_ptr<ChunkReader> reader = OpenChunk(ino, next, **block);
    const uint64_t size = (*block)->chunk.chunk.size_bytes;
    Enqueue([prefetch, size, reader = std::shared_ptr<ChunkReader>(std::move(reader))] {
      Status status;
      uint64_t done = 0;
      while (done < size) {
        Result<size_t> n = reader->Read(done, size - done, prefetch->bytes.data() + done);
        if (!n.ok()) {
          status = n.status();
          break;
        }
        if (*n == 0) {
          status = DataLossError("chunk ended early");
          break;
        }
        done += *n;
      }
      if (status.ok()) prefetch->bytes.grow(done);
      std::lock_guard<std::mutex> lock(prefetch->mutex);
      prefetch->status = status;
      prefetch->finished = true;
      prefetch->finished_cv.notify_all();
    });
  }
}

void FileData::DropPrefetched(Inode& inode, uint64_t below) {
  // One still being read, or still being sent from, keeps its buffer until that ends.
  for (auto it = inode.prefetched.begin(); it != inode.prefetched.end() && it->first < below;) {
    it = inode.prefetched.erase(it);
  }
}

void FileData::StartUpload(uint64_t ino, Inode& inode, uint64_t index) {
  auto upload = std::make_shared<Upload>();
  // The buffer stays where it is, unchanged, until the upload is settled.
  const std::string_view bytes = inode.dirty.at(index).view();
  inode.uploads[index] = upload;
  Enqueue([this, upload, ino, index, bytes] {
    Result<meta::BlockRecord> block =
        StoreBlock(ino, index, bytes, &upload->staged, &upload->pending);
    std::lock_guard<std::mutex> upload_lock(upload->mutex);
    upload->block = std::move(block);
    upload->finished = true;
    upload->finished_cv.notify_all();
  });
}

void FileData::Settle(Inode& inode, uint64_t index) {
  auto it = inode.uploads.find(index);
  if (it == inode.uploads.end()) return;
  std::shared_ptr<Upload> upload = std::move(it->second);
  inode.uploads.erase(it);
  upload->Wait();
  inode.superseded.insert(inode.superseded.end(), upload->staged.begin(), upload->staged.end());
}

Status FileData::DropUploads(Inode& inode) {
  while (!inode.uploads.empty()) Settle(inode, inode.uploads.begin()->first);
  if (inode.superseded.empty()) return OkStatus();
  std::vector<uint64_t> superseded = std::move(inode.superseded);
  inode.superseded.clear();
  return Unstage(superseded);
}

size_t FileData::SparesFor(uint64_t buffer_bytes) {
  constexpr uint64_t kMaxSpares = 64;  // 256 MiB
  return static_cast<size_t>(
      std::clamp<uint64_t>(buffer_bytes / kBlockBytes + 1, kIdleSpares, kMaxSpares));
}

Status FileData::Stage(const meta::OwnerChunk& chunk, std::vector<uint64_t>* staged) {
  const uint64_t seq = next_staging_seq_.fetch_add(1);
  RETURN_IF_ERROR(file_system_->AddStaging(staging_owner_, seq, chunk));
  staged->push_back(seq);
  return OkStatus();
}

Status FileData::Unstage(const std::vector<uint64_t>& seqs) {
  return file_system_->DropStaging(staging_owner_, seqs);
}

void FileData::Invalidate(uint64_t ino, const Result<meta::InodeRecord>& record) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cached_change_.erase(ino);
  }
  std::shared_ptr<Inode> inode = Find(ino);
  if (!inode) return;
  std::lock_guard<std::mutex> lock(inode->mutex);
  if (!inode->dirty.empty() || inode->size_pending) return;
  inode->blocks.clear();
  inode->reader.reset();
  inode->reader_block = UINT64_MAX;
  if (!record.ok()) {
    inode->change = 0;  // unknown: the next open reloads it
  } else if (record->change > inode->change) {
    // Only forward: an open (or a commit) may have stored a newer version since `record`
    // was read. Its older size would cut or pad the file's reads.
    inode->size = record->size;
    inode->change = record->change;
  }
}

std::shared_ptr<FileData::Inode> FileData::Find(uint64_t ino) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = inodes_.find(ino);
  return it == inodes_.end() ? nullptr : it->second;
}

void FileData::NoteCached(uint64_t ino, uint64_t change) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (cached_change_.size() >= (1 << 16)) cached_change_.clear();  // a bound, not a policy
  cached_change_[ino] = change;
}

void FileData::ForgetCached(uint64_t ino) {
  std::lock_guard<std::mutex> lock(mutex_);
  cached_change_.erase(ino);
}

bool FileData::Open(const meta::InodeRecord& record) {
  std::shared_ptr<Inode> inode;
  bool keep = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    std::shared_ptr<Inode>& slot = inodes_[record.ino];
    if (!slot) slot = std::make_shared<Inode>();
    inode = slot;
    ++inode->opens;
    auto cached = cached_change_.find(record.ino);
    keep = cached != cached_change_.end() && cached->second == record.change;
    if (cached_change_.size() >= (1 << 16)) cached_change_.clear();
    cached_change_[record.ino] = record.change;
  }
  std::lock_guard<std::mutex> lock(inode->mutex);
  // Close-to-open: a newer committed version (another mount's) replaces what was cached,
  // unless this mount holds writes of its own not committed yet (they commit over it).
  // Change counters only grow: a version older than the one held (stored by the feed's
  // Invalidate after this open read the inode) is not taken back.
  if (record.change > inode->change && inode->dirty.empty() && !inode->size_pending) {
    inode->size = record.size;
    inode->change = record.change;
    inode->blocks.clear();
    inode->reader.reset();
    inode->reader_block = UINT64_MAX;
  }
  return keep;
}

bool FileData::IsOpen(uint64_t ino) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = inodes_.find(ino);
  return it != inodes_.end() && it->second->opens > 0;
}

Status FileData::Release(uint64_t ino) {
  std::shared_ptr<Inode> inode;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = inodes_.find(ino);
    if (it == inodes_.end()) return OkStatus();
    if (--it->second->opens > 0) return OkStatus();
    inode = std::move(it->second);
    inodes_.erase(it);
  }
  Status dropped;
  bool lost_writes = false;
  {
    // Unflushed writes go with the inode; its uploads must not outlive their buffers.
    std::lock_guard<std::mutex> lock(inode->mutex);
    dropped = DropUploads(*inode);
    DropPrefetched(*inode);
    lost_writes = !inode->dirty.empty() || inode->size_pending;
  }
  if (lost_writes) ForgetCached(ino);
  // Outside mutex_: the transaction asks IsOpen.
  Status released = file_system_->ReleaseOrphan(ino);
  return released.ok() ? dropped : released;
}

Result<std::optional<meta::BlockRecord>> FileData::StoredBlock(uint64_t ino, Inode& inode,
                                                               uint64_t index) {
  auto it = inode.blocks.find(index);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++(it != inode.blocks.end() ? counters_.block_row_hits : counters_.block_row_misses);
  }
  if (it != inode.blocks.end()) return it->second;
  // Rows are fetched a few at a time: sequential reads then cost one transaction per 16
  // blocks (64 MiB).
  constexpr uint64_t kRowsPerFetch = 16;
  ASSIGN_OR_RETURN(std::vector<meta::BlockRecord> rows,
                   file_system_->GetBlocks(ino, index, kRowsPerFetch));
  for (uint64_t i = index; i < index + kRowsPerFetch; ++i) inode.blocks[i] = std::nullopt;
  for (meta::BlockRecord& row : rows) inode.blocks[row.index] = std::move(row);
  return inode.blocks[index];
}

namespace {

// A chunk in this host's chunk store, through the verified object reader.
class LocalChunkReader : public ChunkReader {
 public:
  explicit LocalChunkReader(std::unique_ptr<objects::ObjectReader> reader)
      : reader_(std::move(reader)) {}
  Result<size_t> Read(uint64_t offset, size_t length, char* out) override {
    return reader_->Read(offset, length, out);
  }
  Status Verify(uint64_t size) override { return reader_->Prepare(0, size, false); }

 private:
  std::unique_ptr<objects::ObjectReader> reader_;
};

// A chunk on a Cairn server: fetched in 1 MiB windows (whole checksum blocks, each
// verified by RemoteChunks), the last window kept for the reads that follow it.
class RemoteChunkReader : public ChunkReader {
 public:
  RemoteChunkReader(RemoteChunks* remote, StorageClass storage_class, meta::ChunkRef chunk)
      : remote_(remote), storage_class_(storage_class), chunk_(std::move(chunk)) {}
  Result<size_t> Read(uint64_t offset, size_t length, char* out) override {
    if (offset >= chunk_.size_bytes || length == 0) return size_t{0};
    if (offset % kWindowBytes == 0 && length >= kWindowBytes) {
      // Whole windows (a block read ahead, a large read): fetched straight into `out`, in
      // as few requests as RemoteChunks makes of them.
      const uint64_t n =
          std::min<uint64_t>(length, chunk_.size_bytes - offset) / kWindowBytes * kWindowBytes;
      if (n > 0) {
        RETURN_IF_ERROR(remote_->Read(storage_class_, chunk_, offset, n, out));
        return static_cast<size_t>(n);
      }
    }
    if (window_.empty() || offset < window_start_ || offset >= window_start_ + window_.size()) {
      const uint64_t start = offset / kWindowBytes * kWindowBytes;
      const uint64_t size = std::min<uint64_t>(kWindowBytes, chunk_.size_bytes - start);
      window_.clear();
      std::string fetched(size, '\0');
      RETURN_IF_ERROR(remote_->Read(storage_class_, chunk_, start, size, fetched.data()));
      window_ = std::move(fetched);
      window_start_ = start;
    }
    const uint64_t within = offset - window_start_;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(length, window_.size() - within));
    std::memcpy(out, window_.data() + within, n);
    return n;
  }
  Status Verify(uint64_t size) override {
    std::string scratch;
    for (uint64_t at = 0; at < size; at += kWindowBytes) {
      const uint64_t n = std::min<uint64_t>(kWindowBytes, size - at);
      scratch.resize(n);
      RETURN_IF_ERROR(remote_->Read(storage_class_, chunk_, at, n, scratch.data()));
    }
    return OkStatus();
  }

 private:
  static constexpr uint64_t kWindowBytes = 1 << 20;
  RemoteChunks* remote_;
  StorageClass storage_class_;
  meta::ChunkRef chunk_;
  std::string window_;
  uint64_t window_start_ = 0;
};

}  // namespace

std::unique_ptr<ChunkReader> FileData::OpenChunk(uint64_t ino, uint64_t index,
                                                 const meta::BlockRecord& block) {
  if (options_.remote != nullptr) {
    return std::make_unique<RemoteChunkReader>(options_.remote, block.chunk.storage_class,
                                               block.chunk.chunk);
  }
  return std::make_unique<LocalChunkReader>(objects_->OpenChunkListReader(
      ObjectId{}, block.chunk.storage_class, {block.chunk.chunk},
      "file " + volume_uuid_ + ":" + std::to_string(ino) + " block " + std::to_string(index)));
}

Status FileData::ReadStored(uint64_t ino, Inode& inode, uint64_t index, uint64_t within,
                            size_t length, char* out, const char** view,
                            std::shared_ptr<const void>* hold) {
  ASSIGN_OR_RETURN(std::optional<meta::BlockRecord> block, StoredBlock(ino, inode, index));
  size_t done = 0;
  if (block) {
    const uint64_t chunk_size = block->chunk.chunk.size_bytes;
    auto failed = [&](const Status& status) {
      inode.reader.reset();
      inode.reader_block = UINT64_MAX;
      // The reader reported the damage (logged, counted, marked in the database); the mark
      // on the cached block keeps later reads from reporting the same damage again.
      if (status.code() == StatusCode::kDataLoss && inode.blocks[index]) {
        inode.blocks[index]->chunk.chunk.damaged_ms = std::max<TimestampMs>(1, now_ms_());
      }
      std::lock_guard<std::mutex> lock(mutex_);
      ++counters_.read_errors;
      return status;
    };
    auto ahead = inode.prefetched.find(index);
    if (ahead != inode.prefetched.end()) {
      std::shared_ptr<Prefetch> prefetch = ahead->second;
      prefetch->Wait();
      if (prefetch->digest == block->chunk.chunk.digest && !prefetch->status.ok()) {
        inode.prefetched.erase(ahead);  // its reader reported the damage
        return failed(prefetch->status);
      }
      if (prefetch->digest == block->chunk.chunk.digest && prefetch->bytes.size() == chunk_size) {
        if (hold != nullptr && within + length <= chunk_size) {
          *view = prefetch->bytes.data() + within;
          *hold = std::move(prefetch);
          return OkStatus();
        }
        if (within < chunk_size) {
          done = std::min<size_t>(length, chunk_size - within);
          std::memcpy(out, prefetch->bytes.data() + within, done);
        }
        std::memset(out + done, 0, length - done);
        return OkStatus();
      }
      DropPrefetched(inode);  // read ahead of another version: the block is read here
    }
    if (inode.reader_block != index || !inode.reader) {
      inode.reader = OpenChunk(ino, index, *block);
      inode.reader_block = index;
      if (block->chunk.chunk.damaged_ms != 0) {
        // Marked damaged: served again only once a fresh copy verifies in full; while there
        // is none the read fails without another report (a program retrying must not cost
        // a log line and a database write each time).
        Status prepared = inode.reader->Verify(chunk_size);
        if (!prepared.ok()) return failed(prepared);
        inode.blocks[index]->chunk.chunk.damaged_ms = 0;
      }
    }
    while (done < length && within + done < chunk_size) {
      Result<size_t> n = inode.reader->Read(within + done, length - done, out + done);
      if (!n.ok()) return failed(n.status());
      if (*n == 0) break;
      done += *n;
    }
  }
  // A hole, or past the end of a chunk that a truncate extended.
  std::memset(out + done, 0, length - done);
  return OkStatus();
}

Status FileData::Write(uint64_t ino, uint64_t offset, std::string_view data) {
  if (data.empty()) return OkStatus();
  if (offset > fs::kMaxFileSizeBytes || data.size() > fs::kMaxFileSizeBytes - offset) {
    return TooLarge(offset + data.size());
  }
  std::shared_ptr<Inode> inode = Find(ino);
  if (!inode) return FailedPreconditionError("inode " + std::to_string(ino) + " is not open");
  std::lock_guard<std::mutex> lock(inode->mutex);
  // A buffer still full (its last flush failed) is flushed before this write's bytes go
  // in: a failure fails the write with nothing of it taken, and the buffer stays bounded.
  if (inode->dirty_bytes >= options_.buffer_bytes) {
    RETURN_IF_ERROR(FlushLocked(ino, *inode, true));
  }
  // The blocks this write touches are made dirty (read in where it covers them in part)
  // before any byte is copied: a failed read fails the write with none of it taken, and
  // the blocks it added leave again (a covered one holds zeros, not the stored bytes).
  std::vector<uint64_t> added;
  for (uint64_t position = offset, end = offset + data.size(); position < end;) {
    const uint64_t index = position / kBlockBytes;
    const uint64_t within = position % kBlockBytes;
    const uint64_t n = std::min<uint64_t>(kBlockBytes - within, end - position);
    position += n;
    if (inode->dirty.count(index) > 0) continue;
    AlignedBuffer buffer = buffers_.Take();
    if (buffer.capacity() < kBlockBytes) buffer = AlignedBuffer(kBlockBytes);
    // The block's bytes as they stand, up to the file's end, so that a partial write
    // keeps the rest (a write that covers them all needs none).
    const uint64_t block_start = index * kBlockBytes;
    const uint64_t existing =
        inode->size > block_start ? std::min<uint64_t>(kBlockBytes, inode->size - block_start) : 0;
    const bool covered = within == 0 && n >= existing;
    if (existing > 0 && !covered) {
      Status read = ReadStored(ino, *inode, index, 0, existing, buffer.data());
      if (!read.ok()) {
        buffers_.Give(std::move(buffer));
        for (uint64_t undo : added) {
          auto it = inode->dirty.find(undo);
          buffers_.Give(std::move(it->second));
          inode->dirty.erase(it);
          inode->dirty_bytes -= kBlockBytes;
        }
        return read;
      }
    } else if (existing > 0) {
      std::memset(buffer.data(), 0, existing);
    }
    buffer.grow(existing);
    inode->dirty.emplace(index, std::move(buffer));
    inode->dirty_bytes += kBlockBytes;
    added.push_back(index);
  }
  // What this write replaces in blocks that were dirty before it: if the flush of the full
  // buffer it causes fails, the write fails and leaves them as they were (bounded by the
  // write's size).
  struct Replaced {
    uint64_t index;
    size_t size;    // the buffer's size before
    size_t within;  // where the saved bytes start
    std::string bytes;
  };
  std::vector<Replaced> replaced;
  const uint64_t size_before = inode->size;
  const bool size_pending_before = inode->size_pending;
  uint64_t position = offset;
  size_t taken = 0;
  while (taken < data.size()) {
    const uint64_t index = position / kBlockBytes;
    const uint64_t within = position % kBlockBytes;
    const size_t n =
        static_cast<size_t>(std::min<uint64_t>(kBlockBytes - within, data.size() - taken));
    auto it = inode->dirty.find(index);
    Settle(*inode, index);  // a block being stored changes again: that store is wasted
    AlignedBuffer& buffer = it->second;
    if (std::find(added.begin(), added.end(), index) == added.end()) {
      const size_t kept = within < buffer.size() ? std::min(buffer.size() - within, n) : 0;
      replaced.push_back(
          Replaced{index, buffer.size(), within, std::string(buffer.data() + within, kept)});
    }
    if (within > buffer.size()) {
      std::memset(buffer.end(), 0, within - buffer.size());
      buffer.grow(within - buffer.size());
    }
    std::memcpy(buffer.data() + within, data.data() + taken, n);
    if (within + n > buffer.size()) buffer.grow(within + n - buffer.size());
    // A write that ends a full block (the way a sequential writer moves on): store it
    // while the writer fills the next.
    if (within + n == kBlockBytes && buffer.size() == kBlockBytes && UploadsOn()) {
      StartUpload(ino, *inode, index);
    }
    position += n;
    taken += n;
  }
  if (position > inode->size) {
    inode->size = position;
    inode->size_pending = true;
  }
  if (inode->dirty_bytes >= options_.buffer_bytes) {
    const uint64_t change_before = inode->change;
    Status flushed = FlushLocked(ino, *inode, true);
    // Committed (only the staging list's update failed after it): the bytes are written.
    if (!flushed.ok() && inode->change == change_before) {
      // Nothing committed: the write is undone, so that no later flush commits the bytes
      // of a write that was refused. Its blocks' uploads end first (they read in place).
      for (auto undo = replaced.rbegin(); undo != replaced.rend(); ++undo) {
        auto it = inode->dirty.find(undo->index);
        if (it == inode->dirty.end()) continue;
        Settle(*inode, undo->index);
        std::memcpy(it->second.data() + undo->within, undo->bytes.data(), undo->bytes.size());
        it->second.clear();
        it->second.grow(undo->size);
      }
      for (uint64_t index : added) {
        auto it = inode->dirty.find(index);
        if (it == inode->dirty.end()) continue;
        Settle(*inode, index);
        buffers_.Give(std::move(it->second));
        inode->dirty.erase(it);
        inode->dirty_bytes -= kBlockBytes;
      }
      inode->size = size_before;
      inode->size_pending = size_pending_before;
      return flushed;
    }
  }
  {
    std::lock_guard<std::mutex> counters_lock(mutex_);
    counters_.bytes_written += data.size();
  }
  return OkStatus();
}

Result<size_t> FileData::Read(uint64_t ino, uint64_t offset, size_t length, char* out) {
  std::shared_ptr<Inode> inode = Find(ino);
  if (!inode) return FailedPreconditionError("inode " + std::to_string(ino) + " is not open");
  std::lock_guard<std::mutex> lock(inode->mutex);
  return ReadLocked(ino, *inode, offset, length, out, nullptr, nullptr);
}

Result<std::string_view> FileData::ReadView(uint64_t ino, uint64_t offset, size_t length,
                                            char* scratch, std::shared_ptr<const void>* hold) {
  std::shared_ptr<Inode> inode = Find(ino);
  if (!inode) return FailedPreconditionError("inode " + std::to_string(ino) + " is not open");
  std::lock_guard<std::mutex> lock(inode->mutex);
  const char* view = nullptr;
  ASSIGN_OR_RETURN(size_t n, ReadLocked(ino, *inode, offset, length, scratch, &view, hold));
  return std::string_view(view != nullptr ? view : scratch, n);
}

Result<size_t> FileData::ReadLocked(uint64_t ino, Inode& inode, uint64_t offset, size_t length,
                                    char* out, const char** view,
                                    std::shared_ptr<const void>* hold) {
  if (offset >= inode.size) return size_t{0};
  length = static_cast<size_t>(std::min<uint64_t>(length, inode.size - offset));
  size_t done = 0;
  while (done < length) {
    const uint64_t position = offset + done;
    const uint64_t index = position / kBlockBytes;
    const uint64_t within = position % kBlockBytes;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kBlockBytes - within, length - done));
    auto it = inode.dirty.find(index);
    if (it != inode.dirty.end()) {
      const AlignedBuffer& buffer = it->second;
      const size_t have = within < buffer.size() ? std::min<size_t>(n, buffer.size() - within) : 0;
      if (have > 0) std::memcpy(out + done, buffer.data() + within, have);
      std::memset(out + done + have, 0, n - have);
    } else {
      if (PrefetchOn() && position == inode.next_read &&
          (within == 0 || inode.prefetched.empty())) {
        DropPrefetched(inode, index);  // what the reader went past
        StartPrefetch(ino, inode, index);
      }
      // A read within one block may be answered from the read-ahead buffer itself.
      const bool whole = done == 0 && n == length && hold != nullptr;
      RETURN_IF_ERROR(ReadStored(ino, inode, index, within, n, out + done, whole ? view : nullptr,
                                 whole ? hold : nullptr));
    }
    done += n;
    inode.next_read = position + n;
  }
  std::lock_guard<std::mutex> counters_lock(mutex_);
  counters_.bytes_read += done;
  return done;
}

Result<meta::BlockRecord> FileData::StoreBlock(uint64_t ino, uint64_t index, std::string_view bytes,
                                               std::vector<uint64_t>* staged, Pending* pending) {
  meta::BlockRecord record;
  record.index = index;
  if (options_.remote != nullptr) {
    // The order is the same: the reference first, then the bytes (which the server takes
    // only for a referenced chunk), and only if the server lacks them.
    record.chunk =
        meta::OwnerChunk(options_.storage_class,
                         meta::ChunkRef(Sha256Of(bytes), bytes.size(), BlockChecksums(bytes)));
    RETURN_IF_ERROR(Stage(record.chunk, staged));
    ASSIGN_OR_RETURN(bool have,
                     options_.remote->Have(options_.storage_class, record.chunk.chunk.digest));
    if (!have) {
      RETURN_IF_ERROR(
          options_.remote->Put(options_.storage_class, record.chunk.chunk.digest, bytes));
    }
    std::lock_guard<std::mutex> lock(mutex_);
    ++(have ? counters_.chunks_deduplicated : counters_.chunks_stored);
    return record;
  }
  ingest::ChunkIngest ingest(chunk_store_, objects_->chunk_health(), options_.storage_class,
                             "file " + volume_uuid_ + ":" + std::to_string(ino),
                             [&](const meta::ChunkRef& ref) -> Status {
                               record.chunk = meta::OwnerChunk(options_.storage_class, ref);
                               return Stage(record.chunk, staged);
                             });
  if (options_.deferred_durability) ingest.Defer();
  RETURN_IF_ERROR(ingest.Store(Sha256Of(bytes), bytes));
  if (options_.deferred_durability) {
    ingest.TakeDeferred(&pending->files, &pending->directories);
  } else {
    RETURN_IF_ERROR(ingest.SyncDirectories());
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (ingest.deduplicated_chunks() > 0) {
    ++counters_.chunks_deduplicated;
  } else {
    ++counters_.chunks_stored;
  }
  return record;
}

Status FileData::Flush(uint64_t ino) {
  std::shared_ptr<Inode> inode = Find(ino);
  if (!inode) return OkStatus();
  std::lock_guard<std::mutex> lock(inode->mutex);
  return FlushLocked(ino, *inode);
}

Status FileData::FlushLocked(uint64_t ino, Inode& inode, bool hold_tail) {
  if (inode.dirty.empty() && !inode.size_pending) return OkStatus();
  // Blocks from `hold_from` up stay dirty (a full buffer in the middle of writing), and the
  // size is committed without them: their start, so that no reader elsewhere sees their
  // range as zeros meanwhile (the commit only raises the size).
  //  - With uploaders, the upper half of the buffer stays, its uploads running: the writer
  //    goes on while they finish, instead of waiting for the last of them.
  //  - Without, only the file's unfinished last block stays: storing it now would only
  //    store it again, larger, at the next flush (and read it back first).
  std::optional<uint64_t> hold_from;
  uint64_t commit_size = inode.size;
  if (hold_tail && inode.dirty.size() > 1) {
    auto& [last, buffer] = *inode.dirty.rbegin();
    if (UploadsOn()) {
      hold_from = std::next(inode.dirty.begin(), inode.dirty.size() / 2)->first;
    } else if (buffer.size() < kBlockBytes && (last + 1) * kBlockBytes >= inode.size) {
      hold_from = last;
    }
    if (hold_from && inode.size_pending) {
      commit_size = std::min(inode.size, *hold_from * kBlockBytes);
    }
  }
  auto held = [&](uint64_t index) { return hold_from && index >= *hold_from; };
  // What uploads staged for blocks written again since leaves the staging list with this
  // commit (or with the unstaging after a failure).
  std::vector<uint64_t> staged = std::move(inode.superseded);
  inode.superseded.clear();
  std::vector<meta::BlockRecord> blocks;
  Pending pending;
  Status status;
  auto storable = [&](uint64_t index, const AlignedBuffer& buffer) {
    // Not a held block, nor one that only a size change touched (nothing to store).
    return !held(index) && !buffer.empty();
  };
  // Several blocks (a full buffer, a large write's close): stored in parallel by the
  // uploaders (hashing is the write path's largest cost per byte). One block is stored
  // here, without the hand-off.
  if (UploadsOn()) {
    size_t waiting = 0;
    for (const auto& [index, buffer] : inode.dirty) {
      waiting += storable(index, buffer) && inode.uploads.count(index) == 0;
    }
    if (waiting > 1) {
      for (const auto& [index, buffer] : inode.dirty) {
        if (storable(index, buffer) && inode.uploads.count(index) == 0) {
          StartUpload(ino, inode, index);
        }
      }
    }
  }
  // Every upload is waited for, also after an error: none may outlive this flush's view
  // of its buffer. A failed flush leaves the blocks dirty and stores them again next time.
  for (auto& [index, buffer] : inode.dirty) {
    if (held(index)) continue;
    auto upload = inode.uploads.find(index);
    if (upload != inode.uploads.end()) {
      std::shared_ptr<Upload> done = std::move(upload->second);
      inode.uploads.erase(upload);
      done->Wait();
      staged.insert(staged.end(), done->staged.begin(), done->staged.end());
      pending.files.merge(done->pending.files);
      pending.directories.merge(done->pending.directories);
      if (!done->block.ok()) {
        if (status.ok()) status = done->block.status();
      } else if (status.ok()) {
        blocks.push_back(std::move(done->block).value());
      }
      continue;
    }
    if (!status.ok() || !storable(index, buffer)) continue;
    Result<meta::BlockRecord> block = StoreBlock(ino, index, buffer.view(), &staged, &pending);
    if (!block.ok()) {
      status = block.status();
      continue;
    }
    blocks.push_back(std::move(block).value());
  }
  if (status.ok()) {
    // This flush's staging entries leave with the commit.
    const fs::FileSystem::StagingUpdate update{staging_owner_, staged};
    Result<meta::InodeRecord> committed =
        file_system_->CommitWrite(ino, blocks, commit_size, &update);
    if (committed.ok()) {
      staged.clear();  // let go in the commit
      for (meta::BlockRecord& block : blocks) inode.blocks[block.index] = std::move(block);
      if (inode.reader_block != UINT64_MAX && inode.dirty.count(inode.reader_block) > 0) {
        inode.reader.reset();
        inode.reader_block = UINT64_MAX;
      }
      // The held blocks stay where they are (their uploads read them in place).
      for (auto it = inode.dirty.begin(); it != inode.dirty.end();) {
        if (held(it->first)) {
          ++it;
          continue;
        }
        buffers_.Give(std::move(it->second));
        it = inode.dirty.erase(it);
      }
      inode.dirty_bytes = inode.dirty.size() * kBlockBytes;
      if (!pending.files.empty() || !pending.directories.empty()) {
        std::lock_guard<std::mutex> pending_lock(pending_mutex_);
        AddPendingLocked(ino, pending);
      }
      inode.change = committed->change;
      if (hold_from && inode.size > committed->size) {
        inode.size_pending = true;  // the held blocks' bytes commit with them, later
      } else {
        inode.size_pending = false;
        inode.size = committed->size;
      }
      // The kernel's page cache took these writes on their way here.
      NoteCached(ino, committed->change);
      std::lock_guard<std::mutex> lock(mutex_);
      ++counters_.flushes;
    } else {
      status = committed.status();
    }
  }
  // The block rows (if committed) hold the references now; on failure the dirty blocks stay
  // for a retry and nothing refers to what was stored.
  if (!staged.empty()) {
    Status unstaged = Unstage(staged);
    if (status.ok()) status = unstaged;
  }
  if (!status.ok()) ForgetCached(ino);
  return status;
}

void FileData::AddPendingLocked(uint64_t ino, Pending& pending) {
  Pending& mine = pending_[ino];
  mine.files.merge(pending.files);
  mine.directories.merge(pending.directories);
}

Status FileData::SyncData(uint64_t ino) {
  std::lock_guard<std::mutex> sync_lock(sync_mutex_);
  Pending pending;
  {
    std::lock_guard<std::mutex> lock(pending_mutex_);
    auto failed = sync_failed_.find(ino);
    if (failed != sync_failed_.end()) {
      Status status = failed->second;
      sync_failed_.erase(failed);
      return status;
    }
    auto it = pending_.find(ino);
    if (it == pending_.end()) return OkStatus();
    pending = std::move(it->second);
    pending_.erase(it);
  }
  if (chunk_store_ == nullptr) return OkStatus();  // remote chunks: durable when stored
  Status synced = chunk_store_->SyncDeferred(pending.files, pending.directories);
  if (!synced.ok()) {
    // Kept for the next attempt (the periodic sync retries too).
    std::lock_guard<std::mutex> lock(pending_mutex_);
    AddPendingLocked(ino, pending);
  }
  return synced;
}

Result<bool> FileData::SyncAllData() {
  std::lock_guard<std::mutex> sync_lock(sync_mutex_);
  std::unordered_map<uint64_t, Pending> all;
  {
    std::lock_guard<std::mutex> lock(pending_mutex_);
    all.swap(pending_);
  }
  if (all.empty() || chunk_store_ == nullptr) {  // remote chunks: durable when stored
    buffers_.Trim(kIdleSpares);
    return false;
  }
  Pending merged;
  for (auto& [ino, pending] : all) {
    merged.files.merge(pending.files);
    merged.directories.merge(pending.directories);
  }
  // Many files: one syncfs of the chunk store's file system is one device flush instead of
  // one per file (it also writes what others left dirty there, which only costs time).
  constexpr size_t kSyncfsFrom = 16;
  Status synced = merged.files.size() >= kSyncfsFrom
                      ? chunk_store_->file_system()->SyncFileSystem(
                            chunk_store_->RootOf(options_.storage_class))
                      : chunk_store_->SyncDeferred(merged.files, merged.directories);
  if (!synced.ok()) {
    std::lock_guard<std::mutex> lock(pending_mutex_);
    for (auto& [ino, pending] : all) {
      AddPendingLocked(ino, pending);
      if (sync_failed_.size() < (1 << 16)) sync_failed_.emplace(ino, synced);
    }
    return synced;
  }
  return true;
}

void FileData::Overlay(meta::InodeRecord* record) const {
  std::shared_ptr<Inode> inode = Find(record->ino);
  if (!inode) return;
  std::lock_guard<std::mutex> lock(inode->mutex);
  if (inode->size_pending || !inode->dirty.empty()) record->size = inode->size;
}

Result<meta::InodeRecord> FileData::SetAttr(uint64_t ino, fs::AttrChange change) {
  std::shared_ptr<Inode> inode = Find(ino);
  // truncate(2) by path needs no open handle: a state of its own for the call.
  std::shared_ptr<Inode> scratch;
  if (!inode) {
    scratch = std::make_shared<Inode>();
    inode = scratch;
  }
  std::lock_guard<std::mutex> lock(inode->mutex);
  if (!change.size) {
    ASSIGN_OR_RETURN(meta::InodeRecord record, file_system_->SetAttr(ino, change));
    if (inode->size_pending || !inode->dirty.empty()) record.size = inode->size;
    return record;
  }
  RETURN_IF_ERROR(FlushLocked(ino, *inode));
  ASSIGN_OR_RETURN(meta::InodeRecord current, file_system_->GetAttr(ino));
  const uint64_t size = *change.size;
  std::vector<uint64_t> staged;
  Pending pending;
  if (current.type == meta::FileType::kRegular && size < current.size && size % kBlockBytes != 0) {
    const uint64_t index = size / kBlockBytes;
    const uint64_t cut = size % kBlockBytes;
    inode->blocks.clear();
    ASSIGN_OR_RETURN(std::optional<meta::BlockRecord> block, StoredBlock(ino, *inode, index));
    if (block && block->chunk.chunk.size_bytes > cut) {
      AlignedBuffer bytes(kBlockBytes);
      RETURN_IF_ERROR(ReadStored(ino, *inode, index, 0, cut, bytes.data()));
      bytes.grow(cut);
      ASSIGN_OR_RETURN(meta::BlockRecord trimmed,
                       StoreBlock(ino, index, bytes.view(), &staged, &pending));
      change.boundary_block = std::move(trimmed);
    }
  }
  Result<meta::InodeRecord> result = file_system_->SetAttr(ino, change);
  if (result.ok() && (!pending.files.empty() || !pending.directories.empty())) {
    std::lock_guard<std::mutex> pending_lock(pending_mutex_);
    AddPendingLocked(ino, pending);
  }
  if (!staged.empty()) {
    Status unstaged = Unstage(staged);
    if (result.ok() && !unstaged.ok()) return unstaged;
  }
  inode->blocks.clear();
  inode->reader.reset();
  inode->reader_block = UINT64_MAX;
  DropPrefetched(*inode);  // read ahead of the size before
  if (result.ok()) {
    inode->size = result->size;
    inode->change = result->change;
    NoteCached(ino, result->change);  // the kernel cut its cached pages itself
  }
  return result;
}

FileDataCounters FileData::counters() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return counters_;
}

}  // namespace cairn::mount
