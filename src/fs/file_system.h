// FileSystem: the POSIX rules of a Cairn volume, written once over meta::FileTree (so every
// engine shares them). Each operation is one FileTree transaction that checks its rules and
// updates the rows it changes; errors are Status values with a typed ErrorReason, which
// fs/errno_map.h turns into an errno for the FUSE edge in one place.
//
// Permission checks (may this caller write this directory, chmod this file, ...) are left to
// the kernel: a mount runs with `default_permissions`, which checks mode bits, ownership and
// the sticky bit against the attributes this class returns before a request reaches it. What
// the kernel cannot know stays here: names, types, emptiness, link counts, subtrees.
//
// Files unlinked while open: `Unlink`, `RemoveDirectory` and `Rename` leave an inode whose
// last name went away as an orphan row with nlink 0 when `is_open(ino)` says a handle still
// holds it; `ReleaseOrphan` lets it go when the last handle closes. Without a handle here,
// a regular file goes at once when no other mount is alive. Otherwise it is let go as a
// *pending* orphan (session 0): its commit names it in the change feed, and every other
// mount that holds it open claims it (ClaimOrphan: the orphan becomes that session's) when
// it applies that change, or when an open of it reads nlink 0. Each session records in its
// row the feed seq it has applied (seen_seq); SweepPendingOrphans deletes a pending orphan
// once every live session is past the commit that made it pending. A session that lets go
// of a claimed orphan (last close, death) makes it pending again, with a new change, so a
// third mount holding it claims it in turn.
//
// Every write also appends what it changed (inodes, their data, directory entries) to the
// volume's change feed, in the same transaction, for the kernel caches of other mounts.
//
// Locks (fcntl byte ranges and flock) live in the metadata store, so they hold across mounts
// and hosts; a lock belongs to (session, owner), the owner being the kernel's lock owner.
//
// Thread-safety: any thread; each operation is its own transaction.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "meta/file_tree.h"

namespace cairn::fs {

// Who asks: the owner of what they create (the kernel checks their permissions).
struct Caller {
  uint32_t uid = 0;
  uint32_t gid = 0;
};

// What a setattr changes; absent fields stay.
struct AttrChange {
  std::optional<uint32_t> mode;  // permission bits (07777)
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  std::optional<uint64_t> size;  // a truncate or extend (zeros)
  std::optional<int64_t> atime_ns;
  std::optional<int64_t> mtime_ns;
  std::optional<int64_t> ctime_ns;  // explicit ctime (FUSE sends one on some kernels)
  // When `size` cuts through a stored block (size % kBlockBytes != 0 and that block's chunk
  // is longer than the cut), the caller stores the block's first size % kBlockBytes bytes
  // and passes that block here: bytes past the new end must never come back when the file
  // grows again. SetAttr refuses such a cut without it (kInternal: a caller bug).
  std::optional<meta::BlockRecord> boundary_block;
};

enum RenameFlags : uint32_t {
  kRenameNoReplace = 1,  // RENAME_NOREPLACE
  kRenameExchange = 2,   // RENAME_EXCHANGE
};

enum XattrFlags : uint32_t {
  kXattrCreate = 1,   // XATTR_CREATE: fail with EEXIST if it exists
  kXattrReplace = 2,  // XATTR_REPLACE: fail with ENODATA if it does not
};

// A lock or unlock (fcntl F_SETLK/F_GETLK, flock). `end` is inclusive; flock locks cover
// [0, kLockEnd].
struct LockRequest {
  uint64_t owner = 0;
  meta::LockKind kind = meta::LockKind::kPosix;
  enum Type { kRead, kWrite, kUnlock } type = kRead;
  uint64_t start = 0;
  uint64_t end = 0;
  uint32_t pid = 0;
};
inline constexpr uint64_t kLockEnd = (uint64_t{1} << 63) - 1;

// The trash (docs/filesystem.md, "Trash"): with a volume's trash_days > 0, a file or symlink
// whose last name goes (unlink, or replaced by a rename) moves to
// /.trash/<YYYY-MM-DD-HH of its deletion, UTC>/<parent ino>-<ino>-<name> instead (cut to 255
// bytes), owned by root, mode 0700. A regular file cut shorter (truncate, O_TRUNC: `cp` or
// `>` over it) leaves the version before the cut there too, as a new inode sharing its
// chunks: <parent ino>-<new ino>-<name> when this instance knows a current name of the file
// (NoteName), else 0-<new ino>-inode-<ino> (restore it with a target). Directories are removed as
// before (their files went to the trash one by one). Nothing can be created or renamed into the
// trash; unlinking there deletes for real; renaming out of it restores. PurgeTrash deletes the
// hours older than trash_days. The trash directory has a fixed inode number, never handed out
// otherwise.
inline constexpr uint64_t kTrashInode = uint64_t{1} << 62;
inline constexpr std::string_view kTrashName = ".trash";
inline constexpr uint32_t kMaxTrashDays = 3650;  // ten years

// Whether a non-directory is in the trash (it records its hour directory as its parent):
// it shows a link count of 0, as an unlinked file does.
inline bool InTrashFile(const meta::InodeRecord& inode) {
  return inode.type != meta::FileType::kDirectory && inode.parent != 0;
}

struct TrashEntry {
  std::string hour;  // the hour directory, YYYY-MM-DD-HH (UTC)
  std::string name;  // the entry's name in it
  meta::InodeRecord inode;
  uint64_t original_parent = 0;
  std::string original_name;  // cut when the entry's name reached 255 bytes
  bool name_cut = false;
};

inline constexpr uint32_t kMaxHardLinks = 65000;
inline constexpr size_t kMaxXattrNameBytes = 255;
inline constexpr size_t kMaxXattrValueBytes = 64 * 1024;
inline constexpr uint64_t kMaxFileSizeBytes = uint64_t{1} << 42;  // 4 TiB
inline constexpr uint64_t kBlockBytes = 4 * 1024 * 1024;          // the chunking rule

struct Options {
  // Whether a handle of this mount still holds `ino` open (see the header comment). Unset:
  // nothing is ever held.
  std::function<bool(uint64_t ino)> is_open;
  // The mount's session (meta::SessionRecord): named by the change rows every write appends
  // (so the mount skips its own) and by the orphans it keeps. 0: not a mount.
  uint64_t session = 0;
  // Commit without waiting for the disk (meta::FileTree::WriteRelaxed); Sync makes what was
  // committed durable. A mount sets it: close promises survival of the mount process, fsync
  // of the machine.
  bool relaxed_commits = false;
  // The clock, in ns since the epoch (tests set it).
  std::function<int64_t()> now_ns;
  // How long GetAttr may answer a directory's attributes from what this instance's own last
  // write of it stored, without a read (0: never). A mount sets its kernel attribute timeout
  // (at most 1 s) and calls ForgetAttr for every change of another mount it reads from the
  // change feed: the answer is then exactly as fresh as the kernel's own attribute cache
  // would have been. That is the GETATTR the kernel sends for a directory right after
  // every create or unlink in it (`default_permissions` needs its mode, and the kernel
  // dropped its attributes because its mtime moved).
  int64_t fresh_directory_ms = 0;
};

class FileSystem {
 public:
  FileSystem(meta::FileTree* tree, Options options);

  // The volume's root inode is meta::kRootInode.
  Result<meta::InodeRecord> GetAttr(uint64_t ino);
  Result<meta::InodeRecord> Lookup(uint64_t parent, std::string_view name);

  // A regular file, directory, fifo, socket or device named `name` in `parent`: EEXIST if
  // the name is taken. `mode` holds permission bits only (the kernel has applied the umask).
  // A directory starts with nlink 2 and adds one to its parent's.
  Result<meta::InodeRecord> MakeNode(uint64_t parent, std::string_view name, meta::FileType type,
                                     uint32_t mode, uint64_t rdev, const Caller& caller);
  Result<meta::InodeRecord> MakeSymlink(uint64_t parent, std::string_view name,
                                        std::string_view target, const Caller& caller);
  // A new name for a non-directory (EPERM for a directory, EMLINK past kMaxHardLinks).
  Result<meta::InodeRecord> Link(uint64_t ino, uint64_t new_parent, std::string_view new_name);
  // Removes a non-directory's name (EISDIR for a directory).
  Status Unlink(uint64_t parent, std::string_view name);
  // Removes an empty directory (ENOTDIR, ENOTEMPTY).
  Status RemoveDirectory(uint64_t parent, std::string_view name);
  // rename(2) / renameat2(2) with RenameFlags. Moving a directory into its own subtree is
  // EINVAL; replacing needs matching kinds (EISDIR / ENOTDIR) and an empty directory.
  Status Rename(uint64_t parent, std::string_view name, uint64_t new_parent,
                std::string_view new_name, uint32_t flags);
  Result<meta::InodeRecord> SetAttr(uint64_t ino, const AttrChange& change);
  Result<std::string> ReadLink(uint64_t ino);
  // Entries after `after` in name order, at most `limit` ("." and ".." are the edge's).
  Result<std::vector<meta::DentryRecord>> ReadDirectory(uint64_t ino, std::string_view after,
                                                        uint32_t limit);

  Result<std::string> GetXattr(uint64_t ino, std::string_view name);
  Status SetXattr(uint64_t ino, std::string_view name, std::string_view value, uint32_t flags);
  Result<std::vector<std::string>> ListXattrs(uint64_t ino);
  Status RemoveXattr(uint64_t ino, std::string_view name);

  // The blocks of `ino` in [first, first + count) (holes absent).
  Result<std::vector<meta::BlockRecord>> GetBlocks(uint64_t ino, uint64_t first, uint64_t count);
  // Commits written data: sets each block row (whose chunks the caller has stored and
  // holds references on), raises the size to at least `min_size` and sets mtime and ctime
  // to now, in one transaction. Returns the inode.
  // With `staging`, also drops those entries of that owner in the same transaction.
  struct StagingUpdate {
    meta::ChunkOwner owner;
    std::vector<uint64_t> drop;  // entries (seqs) that the block rows now hold
  };
  Result<meta::InodeRecord> CommitWrite(uint64_t ino, const std::vector<meta::BlockRecord>& blocks,
                                        uint64_t min_size, const StagingUpdate* staging = nullptr);
  // Adds one chunk at `seq` to a staging owner, and drops entries of one: relaxed commits
  // for a mount (they only have to be visible to GC; a crash loses only the staging of
  // flushes never acknowledged).
  Status AddStaging(const meta::ChunkOwner& owner, uint64_t seq, const meta::OwnerChunk& chunk);
  Status DropStaging(const meta::ChunkOwner& owner, const std::vector<uint64_t>& seqs);
  // Lets `ino` go if it is an orphan (nlink 0) and no handle holds it any more: deleted,
  // or pending while another mount is alive (see the header comment).
  Status ReleaseOrphan(uint64_t ino);
  // A handle of this mount holds `ino`, which has nlink 0 (read from the feed or by an
  // open): makes a pending orphan this session's, so that no sweep deletes it. Returns
  // false when the inode is gone (deleted before this session held it).
  Result<bool> ClaimOrphan(uint64_t ino);
  // Deletes pending orphans (at most `limit`) that every live session has applied the
  // feed past without claiming; returns how many went.
  Result<uint64_t> SweepPendingOrphans(uint64_t limit = 100000);
  // Makes every commit so far durable (fsync).
  Status Sync();
  // Relaxed commits so far (a periodic sync skips when none came since the last).
  uint64_t relaxed_commits() const { return relaxed_commits_.load(); }

  // The first lock of another (session, owner) that `request` conflicts with, if any.
  Result<std::optional<meta::LockRecord>> TestLock(uint64_t ino, const LockRequest& request);
  // Takes, changes or releases (part of) a lock of this session's `request.owner`: a range
  // is split and merged as fcntl does. A conflict is kUnavailable with kLockConflict.
  Status SetLock(uint64_t ino, const LockRequest& request);
  // Drops every lock of `owner` of `kind` on `ino` (close drops POSIX locks, the last
  // release of a flock'd file its flock).
  Status ReleaseLocks(uint64_t ino, uint64_t owner, meta::LockKind kind);

  // Calls `visit` for every entry in the trash, by hour then name, reading a page of
  // `page` entries (or hour directories) per read transaction, outside which `visit` runs:
  // the memory does not grow with the trash, and an entry added or purged meanwhile may be
  // seen or not. Stops at the first error `visit` returns.
  Status VisitTrash(const std::function<Status(const TrashEntry&)>& visit, uint32_t page = 1024);
  // The same, collected (tests, small trashes).
  Result<std::vector<TrashEntry>> ListTrash();
  // Moves trash entry `name` of `hour` back to its original directory and name, or to
  // (`to_parent`, `to_name`) when given. EEXIST if the name is taken; ENOENT if the original
  // directory is gone (then give a target).
  Status RestoreFromTrash(std::string_view hour, std::string_view name, uint64_t to_parent = 0,
                          std::string_view to_name = "");
  // Deletes the trash hours that ended before `before_ns` (all of them with INT64_MAX), at
  // most `limit` entries; returns how many went.
  Result<uint64_t> PurgeTrash(int64_t before_ns, uint64_t limit);
  // Sets how many days the volume's trash keeps deleted files (0..kMaxTrashDays; 0: none
  // from now on, what is there stays until purged). Every mount follows at its next delete.
  // Returns the days before.
  Result<uint32_t> SetTrashDays(uint32_t days);

  // Deletes what session `id` held and its row: its orphans (let go: pending while another
  // mount is alive), its locks. For a session that ended or died (its staging chunks are
  // the mount's to drop). `self` (default: this instance's session) is the session whose
  // open files `is_open` answers for: its row does not keep an orphan pending. Returns the
  // orphans let go.
  Result<uint64_t> ReclaimSession(uint64_t id, uint64_t self = 0);

  // Another mount (or a command) changed `ino`: GetAttr reads it again.
  void ForgetAttr(uint64_t ino);

 private:
  struct FreshDirectory {
    meta::InodeRecord inode;
    std::chrono::steady_clock::time_point stored;
  };
  // After a successful write: `written` are the directories it stored (change counters as
  // stored), `touched` every inode it changed; `epoch` is forget_epoch_ before it began.
  void KeepFresh(const std::map<uint64_t, meta::InodeRecord>& written,
                 const std::set<uint64_t>& touched, uint64_t epoch);

  // One FileTree write, relaxed when the options say so, without change rows (Write
  // records them; staging entries change nothing a mount shows).
  Status WriteUnrecorded(const std::function<Status(meta::FileTreeTransaction&)>& body,
                         TimestampMs now_ms);
  // `frees`: the write frees space (meta::FileTree::WriteFreeing on a full disk).
  Status Write(const std::function<Status(meta::FileTreeTransaction&)>& body, TimestampMs now_ms,
               bool frees = false);
  int64_t NowNs() const;
  bool IsOpen(uint64_t ino) const;

  meta::FileTree* tree_;
  std::atomic<uint64_t> relaxed_commits_{0};
  Options options_;
  // The inodes this instance left as orphans: only their last close needs a transaction.
  std::mutex orphans_mutex_;
  std::set<uint64_t> orphans_;  // GUARDED_BY(orphans_mutex_)
  // Inodes this session ever took a lock on: every close releases the closer's locks, and
  // on any other inode this session holds none (a lock row names its session), so that
  // needs no transaction.
  std::mutex locked_mutex_;
  std::set<uint64_t> locked_;  // GUARDED_BY(locked_mutex_)
  // Directories as this instance's last write of each left them (fresh_directory_ms).
  // forget_epoch_ counts ForgetAttr calls: a write that saw one happen while it ran keeps
  // nothing, since the change it forgot may be newer than what the write read.
  std::mutex fresh_mutex_;
  std::unordered_map<uint64_t, FreshDirectory> fresh_;  // GUARDED_BY(fresh_mutex_)
  std::atomic<uint64_t> forget_epoch_{0};

  // A name of each regular file this instance looked up, made, linked or renamed lately
  // (at most kMaxNames, oldest out first): a truncate names the version it keeps in the
  // trash after it (the kernel sends a truncate by inode, and no index maps an inode to
  // its names). A hint only: it is checked against the entry in the truncate's transaction.
  struct NameHint {
    uint64_t parent = 0;
    std::string name;
    uint64_t generation = 0;
  };
  static constexpr size_t kMaxNames = 8192;
  void NoteName(const meta::InodeRecord& inode, uint64_t parent, std::string_view name);
  std::optional<NameHint> NameOf(uint64_t ino);
  std::mutex names_mutex_;
  std::unordered_map<uint64_t, NameHint> names_;          // GUARDED_BY(names_mutex_)
  std::deque<std::pair<uint64_t, uint64_t>> name_order_;  // (ino, generation), oldest first
  uint64_t name_generation_ = 0;                          // GUARDED_BY(names_mutex_)
};

}  // namespace cairn::fs
