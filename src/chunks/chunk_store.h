// ChunkStore: content-addressed chunk files on disk, one root directory per storage class.
//
// Layout of a root:  chunks/ab/<64 hex digest>      (one fan-out level: the `layout` file
//                                                     says "fanout=1"; roots created since
//                                                     it was introduced)
//                    chunks/ab/cd/<64 hex digest>   (two levels: older roots, which have no
//                                                     `layout` file and keep theirs)
//                    layout                          (the fan-out, written before chunks/)
//                    tmp/<random>.part               (chunks being written)
//                    quarantine/<digest>.<ms>        (files taken out of service: failed a
//                                                     check, or orphans awaiting deletion)
//                    store-id                        (the identity of the store the root
//                                                     belongs to; see gc/store_identity.h)
// A chunk file's name is the SHA-256 of its bytes; it is written once and never modified.
// Durability order for a new chunk: write temp file -> fdatasync -> rename into place ->
// fsync the fan-out directory. The last step is left to the caller (SyncDirectories) so
// that one upload syncs each directory once, just before its metadata commit.
// A deferred write (a mount's close, which promises durability only at fsync) renames the
// file into place unsynced and leaves both the data and the names to the caller
// (SyncDeferred). So a file at a chunk's name is not always durable: whoever deduplicates
// onto an existing file syncs it (data and directory) before committing a reference,
// unless this store knows it durable (see Compare).
//
// The store knows nothing of reference counts; the metadata store decides when a chunk
// may be removed. Thread-safety: all methods may be called concurrently; a ChunkWriter is
// used by one thread at a time.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/hashing.h"
#include "core/status.h"
#include "core/types.h"
#include "platform/file_system.h"

struct stat;

namespace cairn::chunks {

class ChunkStore;

inline constexpr uint64_t kDefaultChunkSizeBytes = 4 * 1024 * 1024;

// One chunk being written to a temp file. Destroying it without Install removes the
// temp file.
class ChunkWriter {
 public:
  ~ChunkWriter();
  ChunkWriter(const ChunkWriter&) = delete;
  ChunkWriter& operator=(const ChunkWriter&) = delete;

  // Appends bytes (buffered; hashed as they come).
  Status Append(std::string_view bytes);
  uint64_t size_bytes() const { return size_bytes_; }
  // Ends the chunk: flushes the buffer and returns the digest of everything appended.
  Result<Digest> Finish();
  // After Finish: fdatasync the temp file and rename it to its content address. Adds the
  // fan-out directory to `directories_to_sync`. Installing a chunk that already exists is
  // harmless (same name, same bytes).
  // With `deferred_files`, a deferred install: no fdatasync, fan-out directories created
  // without syncing their parents (the parents join `directories_to_sync`), and the final
  // path joins `deferred_files`.
  Status Install(std::set<std::string>* directories_to_sync,
                 std::set<std::string>* deferred_files = nullptr);
  // Removes the temp file (a dedup hit, or an abandoned upload).
  Status Discard();

 private:
  friend class ChunkStore;
  ChunkWriter(ChunkStore* store, platform::FileSystem* file_system, int fan_out_levels,
              std::unique_ptr<platform::WritableFile> file, std::string final_directory_prefix);
  Status Flush();

  ChunkStore* store_;
  platform::FileSystem* file_system_;
  std::unique_ptr<platform::WritableFile> file_;
  std::string chunks_root_;
  int fan_out_levels_;
  std::string buffer_;
  Sha256Hasher hasher_;
  uint64_t size_bytes_ = 0;
  std::optional<Digest> digest_;
  bool done_ = false;  // installed or discarded
};

struct TempFileInfo {
  std::string path;
  TimestampMs modified_ms = 0;
};

// A file in a quarantine directory, named <digest>.<ms>.
struct QuarantinedFile {
  std::string path;
  Digest digest;
  TimestampMs quarantined_ms = 0;  // from the name: when it was moved there
};

inline constexpr char kStoreIdFileName[] = "store-id";

struct ChunkStoreOptions {
  std::string hot_root;
  std::string cold_root;
};

class ChunkStore {
 public:
  // Creates the directory layout if needed.
  static Result<std::unique_ptr<ChunkStore>> Open(platform::FileSystem* file_system,
                                                  ChunkStoreOptions options);

  ~ChunkStore();
  ChunkStore(const ChunkStore&) = delete;
  ChunkStore& operator=(const ChunkStore&) = delete;

  const std::string& RootOf(StorageClass storage_class) const;
  std::string PathOf(StorageClass storage_class, const Digest& digest) const;

  // Keeps up to `count` empty temp files of `storage_class` created ahead by a background
  // thread, each locked as a writer's is (so GC leaves it alone; one left by a crash is
  // an ordinary stale temp file). NewWriter then takes one instead of creating it: on ext4
  // without a journal, creating a file after mass deletes costs most of a small chunk's
  // store (the inode allocator steps over every recently freed inode), and this moves that
  // off the writer's path. For a process that stores small chunks one after another (a
  // mount). The spares are removed when the store goes.
  void KeepSpareTempFiles(StorageClass storage_class, size_t count);

  Result<std::unique_ptr<ChunkWriter>> NewWriter(StorageClass storage_class);
  // Stores a chunk whose bytes are all in memory and whose digest the caller computed:
  // temp file -> fdatasync -> rename to the content address (the fan-out directory is added
  // to `directories_to_sync`). On failure the temp file is removed. Storing a chunk that
  // already exists is harmless (same name, same bytes).
  // With `deferred_files`, a deferred write (see the top of this file and Install).
  Status WriteChunk(StorageClass storage_class, const Digest& digest, std::string_view bytes,
                    std::set<std::string>* directories_to_sync,
                    std::set<std::string>* deferred_files = nullptr);
  // Whether the chunk file exists.
  Result<bool> Contains(StorageClass storage_class, const Digest& digest);
  // How the stored file of a chunk compares with `bytes` (its expected content): what an
  // upload checks before it trusts an existing copy instead of writing its own.
  // With `known_durable`, also says whether the file is known to be durable, bytes and
  // name: this store synced the file's data (writing it, or SyncChunkFile) and then its
  // directory after the file was renamed into place. Another process's deferred write is
  // never known durable. A deduplicating upload syncs a file not known durable, and its
  // directory.
  enum class Comparison { kMissing, kSame, kDiffers };
  Result<Comparison> Compare(StorageClass storage_class, const Digest& digest,
                             std::string_view bytes, bool* known_durable = nullptr);
  Result<std::unique_ptr<platform::ReadableFile>> OpenChunk(StorageClass storage_class,
                                                            const Digest& digest);
  // fdatasync of an existing chunk file (one a deduplicating upload found), remembered for
  // Compare's `known_durable`.
  Status SyncChunkFile(StorageClass storage_class, const Digest& digest);
  // Removes a chunk file; OK if it was already absent.
  Status Remove(StorageClass storage_class, const Digest& digest);
  // Moves a chunk file out of service into <root>/quarantine/<digest>.<now_ms> (never
  // deletes it: an operator may still want its bytes). kNotFound if there is no such file.
  // Returns the quarantine path. The rename is made durable (both directories synced).
  Result<std::string> Quarantine(StorageClass storage_class, const Digest& digest,
                                 TimestampMs now_ms);
  // The quarantine directory of a class.
  std::string QuarantineDirectory(StorageClass storage_class) const;
  // Files in the quarantine directory of a class; names that are not <digest>.<ms> are
  // left out (and reported in `other_paths` if given).
  Result<std::vector<QuarantinedFile>> ListQuarantine(
      StorageClass storage_class, std::vector<std::string>* other_paths = nullptr);
  // Puts a quarantined file back at its content address if its bytes still hash to its
  // digest (durably, both directories synced); false, changing nothing, if they do not.
  Result<bool> RestoreFromQuarantine(StorageClass storage_class, const QuarantinedFile& file);
  // Deletes a file of a quarantine directory; OK if it was already absent.
  Status RemoveQuarantined(const std::string& path);
  // fsyncs each directory once.
  Status SyncDirectories(const std::set<std::string>& directories);
  // Makes deferred writes durable: every file's data, then every directory.
  Status SyncDeferred(const std::set<std::string>& files, const std::set<std::string>& directories);

  // Every chunk file of a class (name must be a digest; other files are reported as
  // InvalidArgument-free "strays" via `stray_paths` if given).
  Result<std::vector<Digest>> ListChunks(StorageClass storage_class,
                                         std::vector<std::string>* stray_paths = nullptr);
  Result<std::vector<TempFileInfo>> ListTempFiles(StorageClass storage_class);
  // Removes a temp file unless a writer still holds it (then kFailedPrecondition).
  Status RemoveTempFile(const std::string& path);
  // Whether a writer (or a spare kept by a live process) holds a temp file now: however
  // old, it is not stale.
  Result<bool> TempFileInUse(const std::string& path) { return file_system_->IsLocked(path); }
  Result<TimestampMs> ChunkModifiedTime(StorageClass storage_class, const Digest& digest);
  // Re-reads a chunk and returns the SHA-256 of its bytes.
  Result<Digest> Rehash(StorageClass storage_class, const Digest& digest);
  // Whether any chunk file exists in any class; stops at the first one found.
  Result<bool> HoldsAnyChunk();

  // ---- Store identity (gc/store_identity.h decides what to do with it) --------------
  // The identity in the root's store-id file; nullopt if the root has none.
  Result<std::optional<std::string>> ReadStoreId(StorageClass storage_class);
  // Gives the root the store-id file `id` unless it has one: temp file (mode 0600) ->
  // fsync -> rename that never replaces -> fsync the root. Returns the identity the root
  // holds afterwards: `id`, or the one another process wrote first.
  Result<std::string> WriteStoreIdIfAbsent(StorageClass storage_class, const std::string& id);
  std::string StoreIdPath(StorageClass storage_class) const;

  // Each root and its tmp/ can take a new file (readiness).
  Status CheckWritable();
  // Fan-out directory levels under chunks/ of a class's root (1, or 2 for older roots).
  int FanOutLevels(StorageClass storage_class) const {
    return fan_out_levels_[static_cast<size_t>(storage_class)];
  }

  platform::FileSystem* file_system() const { return file_system_; }

 private:
  friend class ChunkWriter;
  ChunkStore(platform::FileSystem* file_system, ChunkStoreOptions options);

  platform::FileSystem* file_system_;
  ChunkStoreOptions options_;
  int fan_out_levels_[2] = {2, 2};
  // Reads, or for a new root writes, the root's layout (before chunks/ exists).
  Status OpenLayout(StorageClass storage_class);
  // Puts a small file of the root at `path` durably: a temp file in tmp/ (0600, locked
  // while open, so that only a dead writer's is removed) -> fsync -> rename -> fsync of
  // the root. Without `replace`, a file already at `path` wins: kAlreadyExists.
  Status PutRootFile(const std::string& root, const std::string& path, std::string_view content,
                     bool replace);
  // The fan-out levels of the root whose chunks/ holds `path` (2 if none does).
  int LevelsOfPath(const std::string& path) const;
  // Calls `file(digest)` for each chunk file of a class, `stray(path)` for anything else.
  Status WalkChunks(StorageClass storage_class, const std::function<bool(const Digest&)>& file,
                    const std::function<void(const std::string&)>& stray);

  // Spare temp files (KeepSpareTempFiles), by storage class index.
  void RunSpares();
  std::mutex spare_mutex_;
  std::condition_variable spare_cv_;
  std::deque<std::unique_ptr<platform::WritableFile>> spares_[2];  // GUARDED_BY(spare_mutex_)
  size_t spare_target_[2] = {0, 0};                                // GUARDED_BY(spare_mutex_)
  bool spare_stop_ = false;                                        // GUARDED_BY(spare_mutex_)
  // Spares to make before waiting again: one per writer done with tmp/ (its rename or
  // removal), so that the background creation does not hold tmp/'s lock during them.
  size_t spare_nudges_ = 0;  // GUARDED_BY(spare_mutex_)
  void NudgeSpares();
  std::thread spare_thread_;
  // When each fan-out directory's last successful fsync by this store began (realtime
  // ns). A file whose inode changed (ctime: the rename) before that is durable by name.
  std::mutex synced_mutex_;
  std::unordered_map<std::string, int64_t> synced_at_ns_;  // GUARDED_BY(synced_mutex_)
  // Chunk files whose bytes this store wrote or compared in full, by path, with the inode
  // stamp they had then. A file with the same stamp has not been written through the file
  // system since, so a dedup check may trust it without reading it again; any write (a
  // flipped byte, a truncation, a replacement) changes the stamp. Decay of the medium
  // does not, which is what read verification and the scrubber are for. Bounded.
  struct FileStamp {
    uint64_t inode = 0;
    uint64_t size = 0;
    int64_t mtime_ns = 0;
    int64_t ctime_ns = 0;
    bool operator==(const FileStamp&) const = default;
    static FileStamp Of(const struct ::stat& st);
  };
  void RememberVerified(const std::string& path, const FileStamp& stamp);
  bool WasVerified(const std::string& path, const FileStamp& stamp);
  void RememberDataSynced(const std::string& path, const FileStamp& stamp);
  // Creates a fan-out directory if needed and makes its path durable (both levels synced
  // into their parents): it may exist unsynced, made by another process's deferred write.
  // Once per directory and process.
  Status EnsureFanOutDurable(const std::string& directory);
  std::set<std::string> durable_fan_out_;                // GUARDED_BY(synced_mutex_)
  std::unordered_map<std::string, FileStamp> verified_;  // GUARDED_BY(synced_mutex_)
  // Chunk files whose data this store synced, with their stamp then. Bounded.
  std::unordered_map<std::string, FileStamp> data_synced_;  // GUARDED_BY(synced_mutex_)
};

}  // namespace cairn::chunks
