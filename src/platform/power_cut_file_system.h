// A FileSystem for tests that simulates a power cut: it forwards to a real file system
// under one root directory and remembers what a machine that lost power would still have
// on its disk, so a test can cut the power at any call and then "reboot" into exactly that
// state (the idea of leveldb's fault-injection environment).
//
// The durability model is the strict one POSIX promises (ext4 without a journal, or any
// file system that reorders freely):
//   - a file's bytes are durable up to the length it had at its last WritableFile::Sync;
//     later appends are lost at the cut;
//   - a directory entry (a file or directory created in it, renamed into or out of it,
//     removed from it) is durable only once that directory is SyncDirectory'd: the sync
//     makes the directory's whole current listing durable; until then the cut restores its
//     listing as of its last sync (new names vanish, renamed files go back to their old
//     names, removed files come back);
//   - a directory made by CreateDirectories is an entry of its parent like any other. The
//     FileSystem contract says CreateDirectories makes each new directory durable in its
//     parent, so this layer does what the POSIX one does (mkdir, then sync the parent), as
//     two separate steps a cut can fall between. A directory that is not durable in its
//     parent takes its whole subtree with it at the cut.
// Nothing is forwarded to the real fdatasync/fsync: durability is simulated, which keeps
// thousands of cut points fast. The real tree is only rewritten at Reboot.
//
// Cutting: CutAfter(n) lets n more mutating calls through (create, append, sync, rename,
// directory sync, mkdir, remove) and cuts the power on the next one, which fails without
// effect. After a cut every call fails with kUnavailable, including calls on files opened
// before it. Reboot() rewrites the real tree under the root to the durable state (or, if
// asked, to the durable state plus a random part of what was not synced), after which
// everything on disk counts as durable and calls work again.
//
// Thread-safe (one mutex). Paths must lie under the root given at construction; the
// wrapped file system must be a local POSIX one (the layer creates directories and
// rewrites the tree with POSIX calls itself).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "platform/file_system.h"

namespace cairn::platform {

class PowerCutFileSystem : public FileSystem {
 public:
  // `root` must exist; whatever is under it now counts as durable.
  static Result<std::unique_ptr<PowerCutFileSystem>> Create(FileSystem* base, std::string root);
  ~PowerCutFileSystem() override;

  // Cuts the power on the (n+1)-th mutating call from now.
  void CutAfter(uint64_t n);
  // Cuts the power now.
  void PowerCut();
  bool power_is_cut() const;
  // Mutating calls made so far (cut or not): a test runs once uncut to learn how many
  // calls a scenario makes, then picks cut points within that range.
  uint64_t mutating_calls() const;
  // Called (under no lock of this layer) at the moment of the cut, before the failing call
  // returns, e.g. to snapshot a database that does not go through this seam.
  void SetOnPowerCut(std::function<void()> callback);
  // Negative control: SyncDirectory (and the parent sync of CreateDirectories) succeeds
  // without making anything durable, as a store that forgot its directory fsync would.
  void SetSyncDirectoryIsNoop(bool noop);
  // Negative control: CreateDirectories does not sync the parent of a directory it makes
  // (a FileSystem that broke its contract).
  void SetCreateDirectoriesSkipsParentSync(bool skip);

  // Rewrites the tree under the root to the durable state and powers back on. With a
  // seed, each unsynced change (a directory entry added, replaced or removed, a file's
  // unsynced tail) may also have reached the disk, chosen at random: a disk is allowed
  // to write back early, so whatever the store leaves behind must be recoverable too.
  Status Reboot(std::optional<uint32_t> keep_some_unsynced = std::nullopt);

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  Result<std::unique_ptr<ReadableFile>> OpenReadable(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status SyncDirectory(const std::string& path) override;
  Status CreateDirectories(const std::string& path) override;
  Status SyncFile(const std::string& path) override;
  Status RemoveFile(const std::string& path) override;
  Status RemoveFileIfUnlocked(const std::string& path) override;
  Result<bool> Exists(const std::string& path) override;
  Result<std::vector<DirEntry>> ListDirectory(const std::string& path) override;
  Result<TimestampMs> ModifiedTime(const std::string& path) override;
  Result<uint64_t> FileSize(const std::string& path) override;
  Status CheckWritable(const std::string& directory) override;
  Status MakePrivate(const std::string& path) override;

  // For PowerCutWritableFile.
  Status FileAppend(uint64_t inode, uint64_t generation, WritableFile* base,
                    std::string_view bytes);
  Status FileSync(uint64_t inode, uint64_t generation, const std::string& path);
  Status CheckPowerFor(uint64_t generation, const std::string& path);

 private:
  struct Inode {
    bool directory = false;
    std::string data;          // everything appended (files)
    uint64_t synced_size = 0;  // bytes durable
  };
  // path (absolute, under root_) -> inode
  using Namespace = std::map<std::string, uint64_t>;

  PowerCutFileSystem(FileSystem* base, std::string root);
  Status Scan(const std::string& directory);
  // Counts one mutating call on `path`: the error if the power is (or now goes) off.
  // Sets *cut_now when this call cut it, so the caller runs the callback unlocked.
  Status Tick(const std::string& path, bool* cut_now);  // REQUIRES(mutex_)
  Status Unavailable(const std::string& path) const;
  Status CheckUnder(const std::string& path) const;
  // kUnavailable while the power is cut (for calls that change nothing).
  Status CheckPowerOn(const std::string& path);
  void RunCutCallback();
  Status SyncDirectoryLocked(const std::string& path);  // REQUIRES(mutex_)
  Status CreateOneDirectory(const std::string& path);

  FileSystem* base_;
  const std::string root_;
  mutable std::mutex mutex_;
  bool cut_ = false;                  // GUARDED_BY(mutex_)
  uint64_t generation_ = 0;           // GUARDED_BY(mutex_); bumped by Reboot
  uint64_t calls_ = 0;                // GUARDED_BY(mutex_)
  uint64_t cut_at_ = UINT64_MAX;      // GUARDED_BY(mutex_)
  bool sync_directory_noop_ = false;  // GUARDED_BY(mutex_)
  bool skip_parent_sync_ = false;     // GUARDED_BY(mutex_)
  uint64_t next_inode_ = 1;           // GUARDED_BY(mutex_)
  std::map<uint64_t, Inode> inodes_;  // GUARDED_BY(mutex_)
  Namespace live_;                    // GUARDED_BY(mutex_): what the running system sees
  Namespace durable_;                 // GUARDED_BY(mutex_): what survives a cut
  std::function<void()> on_cut_;      // GUARDED_BY(mutex_)
};

}  // namespace cairn::platform
