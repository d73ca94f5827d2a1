// FileTree: the metadata of a filesystem volume (docs/filesystem.md), one use case of the
// metadata store.
//
// An engine offers a transaction over primitive row operations (an inode, a directory
// entry, a block row, an extended attribute). The POSIX rules (EEXIST, ENOTEMPTY, rename
// into a subtree, link counts, ...) are written once above the engines, in src/fs, and run
// inside one such transaction; an engine enforces no rule beyond its rows' own shape.
//
// One volume per metadata database. Block rows are chunk references: block `index` of inode
// `ino` is the owner_chunks row of owner kind "file", id "<volume uuid>:<ino>", sequence
// `index` (holes have no row). Taking, replacing and dropping a block row takes and drops
// its chunk's reference as SetOwnerChunks does, in the same transaction, so GC, fsck, usage
// and GetOwnerChunks count files as they count every other owner.
//
// Thread-safety: any thread; transactions may run concurrently (each engine serializes what
// it must). A write transaction either happens whole or not at all.
//
// Transaction bodies must be short and must not call other methods of the same store
// (MetaStore or FileTree, including a nested Read or Write): the engine holds its write
// lock, or its connection, while the body runs, so such a call would wait for itself or
// read around the transaction. The memory engine deadlocks; from a Write body, the SQLite
// engine fails any inner write and the PostgreSQL engine any inner call with kInternal. Do
// the I/O (chunk files, network) before or after the transaction, never inside it. A body
// may run on another thread than the caller's (the SQLite engine runs queued writes in
// batches), and more than once (PostgreSQL retries a deadlock).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "meta/records.h"

namespace cairn::meta {

// kFileOwnerKind, FileType, VolumeRecord, InodeRecord and DentryRecord are in
// meta/records.h (snapshots carry them).
std::string_view FileTypeName(FileType type);
// kInvalidArgument for a number that names no FileType (a damaged row).
Result<FileType> FileTypeFromNumber(int64_t number);

struct BlockRecord {
  uint64_t index = 0;
  OwnerChunk chunk;
  bool operator==(const BlockRecord&) const = default;
};

// A mount of the volume: one row per `cairn mount` process, alive while it renews
// `expires_ms` (its heartbeat). What a dead session held (orphans, locks, its staging owner)
// is reclaimed by whoever finds it dead (src/mount/session.h).
struct SessionRecord {
  uint64_t id = 0;       // random, 1..2^63-1, chosen by the mount
  std::string host;      // the host's name, for people
  std::string host_key;  // kernel boot id + pid namespace: equal keys share one process table
  uint32_t pid = 0;
  std::string mount_point;
  std::string version;
  bool read_only = false;
  TimestampMs started_ms = 0;
  TimestampMs heartbeat_ms = 0;
  TimestampMs expires_ms = 0;
  // The change seq up to which this session has applied the feed (claimed what it holds
  // open of the pending orphans): a pending orphan goes once every live session is past it.
  uint64_t seen_seq = 0;
  bool operator==(const SessionRecord&) const = default;
};

// An inode whose last name went away while `session` held it open (nlink 0): let go when
// that session closes it or dies. Session 0 is pending: no session has claimed it yet, and
// any other live session may hold it open (fs/file_system.h says how it is settled).
struct OrphanRecord {
  uint64_t ino = 0;
  uint64_t session = 0;
  uint64_t since_seq = 0;  // pending: the change seq of the commit that made it pending
  bool operator==(const OrphanRecord&) const = default;
};

// One thing a write transaction changed, for the kernel caches of other mounts.
struct ChangeRecord {
  uint64_t seq = 0;      // set by AppendChange: increasing in commit order, never reused
  uint64_t session = 0;  // the mount that made it (0: a command, not a mount)
  uint64_t ino = 0;      // the inode whose attributes changed (0: none)
  bool data = false;     // its data changed too (cached pages are stale)
  uint64_t parent = 0;   // the directory whose entry `name` changed (0: none)
  std::string name;
  TimestampMs at_ms = 0;
  bool operator==(const ChangeRecord&) const = default;
};

enum class LockKind : uint8_t { kPosix = 1, kFlock = 2 };

// A byte-range lock (POSIX, fcntl) or a whole-file lock (flock, start 0, end max) held by
// `owner` (the kernel's lock owner) of mount `session`. `end` is inclusive.
struct LockRecord {
  uint64_t ino = 0;
  uint64_t session = 0;
  uint64_t owner = 0;
  LockKind kind = LockKind::kPosix;
  bool exclusive = false;  // a write lock
  uint64_t start = 0;
  uint64_t end = 0;
  uint32_t pid = 0;  // the locking process, reported by F_GETLK
  bool operator==(const LockRecord&) const = default;
};

// What a volume holds (FileTreeTransaction::Usage).
struct VolumeUsage {
  uint64_t inodes = 0;       // every inode row: the root, directories, the trash, orphans
  uint64_t files = 0;        // regular files among them
  uint64_t file_bytes = 0;   // logical: the sum of the regular files' sizes
  uint64_t chunks = 0;       // distinct chunks (class, digest) the volume's block rows name
  uint64_t chunk_bytes = 0;  // physical: their sizes, each distinct chunk once
  bool operator==(const VolumeUsage&) const = default;
};

// The owner of a file's block rows.
ChunkOwner FileChunkOwner(const std::string& volume_uuid, uint64_t ino);

class FileTreeTransaction {
 public:
  virtual ~FileTreeTransaction() = default;

  // The volume row as this transaction sees it (SQLite reads it on the first call only:
  // most transactions never ask).
  virtual Result<VolumeRecord> volume() = 0;
  // The transaction's clock (what the caller passed to Write; 0 for Read).
  virtual TimestampMs now_ms() const = 0;

  // ---- Inodes -------------------------------------------------------------------------
  virtual Result<std::optional<InodeRecord>> GetInode(uint64_t ino) = 0;
  // Inserts the row, or replaces it; sets `change` to the stored row's change + 1 (1 for a
  // new row) and returns it.
  virtual Result<uint64_t> PutInode(const InodeRecord& inode) = 0;
  // Deletes the row with its xattrs and block rows (dropping their references). Directory
  // entries naming it are the caller's business. Absent is not an error.
  virtual Status DeleteInode(uint64_t ino) = 0;
  // An inode number never handed out before in this volume (> kRootInode).
  virtual Result<uint64_t> NewInodeNumber() = 0;
  // Sets the volume's trash days (0: deleted files go at once); volume() shows it after.
  virtual Status SetTrashDays(uint32_t days) = 0;

  // ---- Directory entries ------------------------------------------------------------------
  virtual Result<std::optional<DentryRecord>> GetDentry(uint64_t parent, std::string_view name) = 0;
  // The entry (parent, name) with the inode it names, as GetDentry then GetInode of its ino
  // would read them (`inode` empty: the entry names no inode, a damage the caller reports).
  // The SQL engines read both with one statement: a lookup or unlink does this first.
  struct NamedInode {
    DentryRecord entry;
    std::optional<InodeRecord> inode;
  };
  virtual Result<std::optional<NamedInode>> GetNamedInode(uint64_t parent, std::string_view name);
  // Inserts or replaces the entry (parent, name).
  virtual Status PutDentry(const DentryRecord& entry) = 0;
  // Absent is not an error.
  virtual Status DeleteDentry(uint64_t parent, std::string_view name) = 0;
  // Entries of `parent` whose name sorts byte-wise after `after`, in name order, at most
  // `limit` (readdir pages through a large directory this way).
  virtual Result<std::vector<DentryRecord>> ListDentries(uint64_t parent, std::string_view after,
                                                         uint32_t limit) = 0;

  // ---- Blocks -------------------------------------------------------------------------
  // Block rows of `ino` with index in [first, first + count), by index; holes are absent.
  virtual Result<std::vector<BlockRecord>> GetBlocks(uint64_t ino, uint64_t first,
                                                     uint64_t count) = 0;
  // Sets the block row: takes a reference on its chunk (creating the chunk row, as
  // SetOwnerChunks does) and drops the replaced row's.
  virtual Status PutBlock(uint64_t ino, const BlockRecord& block) = 0;
  // Drops the block rows of `ino` with index >= first, with their references (truncate).
  virtual Status DropBlocks(uint64_t ino, uint64_t first) = 0;

  // ---- Extended attributes ----------------------------------------------------------------
  virtual Result<std::optional<std::string>> GetXattr(uint64_t ino, std::string_view name) = 0;
  virtual Status PutXattr(uint64_t ino, std::string_view name, std::string_view value) = 0;
  // Absent is not an error.
  virtual Status DeleteXattr(uint64_t ino, std::string_view name) = 0;
  // Names in byte order.
  virtual Result<std::vector<std::string>> ListXattrs(uint64_t ino) = 0;

  // ---- Other owners ----------------------------------------------------------------------
  // Replaces the chunk list of a generic owner (kind other than "file"; the rules of
  // MetaStore::SetOwnerChunks) inside this transaction: a mount's staging owner lets go of
  // a flush's chunks in the commit that names them.
  virtual Status SetOwnerChunks(const ChunkOwner& owner, const std::vector<OwnerChunk>& chunks) = 0;
  // One entry at a time, for a list that changes by single chunks while it is long (a
  // mount's staging owner: every flush adds its chunks and its commit drops them, so a
  // replace per change would cost the whole list each time). AddOwnerEntry adds `chunk` at
  // `seq`, which must be free (an error otherwise, and no reference taken), and takes its
  // reference; DropOwnerEntries drops the entries at `seqs` (absent ones: nothing) with
  // their references.
  virtual Status AddOwnerEntry(const ChunkOwner& owner, uint64_t seq, const OwnerChunk& chunk) = 0;
  virtual Status DropOwnerEntries(const ChunkOwner& owner, const std::vector<uint64_t>& seqs) = 0;

  // ---- Sessions (mounts) ----------------------------------------------------------------
  // Inserts or replaces the row of `session.id`.
  virtual Status PutSession(const SessionRecord& session) = 0;
  // Deletes the row only (its orphans, locks and changes are the caller's). Absent is fine.
  virtual Status DeleteSession(uint64_t id) = 0;
  // By id.
  virtual Result<std::vector<SessionRecord>> ListSessions() = 0;

  // ---- Orphans (unlinked while open) -------------------------------------------------------
  virtual Status PutOrphan(const OrphanRecord& orphan) = 0;
  // Absent is not an error. DeleteInode deletes the inode's orphan row too.
  virtual Status DeleteOrphan(uint64_t ino) = 0;
  // By ino.
  virtual Result<std::vector<OrphanRecord>> ListOrphans() = 0;

  // ---- Change feed -----------------------------------------------------------------------
  // Appends `change` (its seq and at_ms are set here: seq above every seq appended before,
  // also after TrimChanges; at_ms = now_ms()); returns the seq.
  virtual Result<uint64_t> AppendChange(const ChangeRecord& change) = 0;
  // Appends `changes` in order, as AppendChange one by one would; returns the last seq (0 for
  // none). Every filesystem write appends two to four rows: an engine that can writes them
  // with one statement.
  virtual Result<uint64_t> AppendChanges(const std::vector<ChangeRecord>& changes);
  // Changes with seq > after, by seq, at most `limit`.
  virtual Result<std::vector<ChangeRecord>> ListChanges(uint64_t after, uint32_t limit) = 0;
  // The highest seq ever appended (0: none), also when trimmed away.
  virtual Result<uint64_t> LastChangeSeq() = 0;
  // Deletes changes appended before `before_ms`. An engine may keep some of them: SQLite
  // keeps its newest row (it holds the highest seq) and any row that follows, by seq, one
  // appended at or after `before_ms`.
  virtual Status TrimChanges(TimestampMs before_ms) = 0;

  // ---- Locks ---------------------------------------------------------------------------
  // Every lock on `ino`, of every session, by (session, owner, kind, start).
  virtual Result<std::vector<LockRecord>> ListLocks(uint64_t ino) = 0;
  // Replaces the locks of (ino, session, owner, kind) by `locks` (each with those fields).
  virtual Status SetLocks(uint64_t ino, uint64_t session, uint64_t owner, LockKind kind,
                          const std::vector<LockRecord>& locks) = 0;
  // Drops every lock of `session` (its death, or its clean end).
  virtual Status DeleteSessionLocks(uint64_t session) = 0;

  // ---- Usage ---------------------------------------------------------------------------
  // Counts the volume's inodes and sums its files' sizes and the distinct chunks of the
  // block rows of owners "<volume uuid>:*" (a chunk also named by an object or another
  // file counts once here, and is stored once). Reads every inode row: for status
  // reports, not for a mount's hot path.
  virtual Result<VolumeUsage> Usage() { return NotSupportedByEngine("FileTreeTransaction::Usage"); }
};

class FileTree {
 public:
  virtual ~FileTree() = default;

  // Creates the volume (`requested`, with its uuid chosen by the caller) and its root
  // directory (`root`, whose ino is set to kRootInode), in one transaction. When a volume
  // exists already: the same name returns it unchanged (formatting twice is harmless),
  // another name is kAlreadyExists.
  virtual Result<VolumeRecord> FormatVolume(const VolumeRecord& requested,
                                            const InodeRecord& root) {
    return NotSupportedByEngine("FormatVolume");
  }
  // The volume, or nullopt before FormatVolume.
  virtual Result<std::optional<VolumeRecord>> GetVolume() {
    return NotSupportedByEngine("GetVolume");
  }
  // Runs `body` in one read-only transaction (a consistent view). kFailedPrecondition
  // before FormatVolume.
  virtual Status Read(const std::function<Status(FileTreeTransaction&)>& body) {
    return NotSupportedByEngine("FileTree::Read");
  }
  // As Read, for a body that reads a few rows (one inode, one entry, a bounded page): an
  // engine may run it where a long read would hold up writers (SQLite: on the writer's
  // connection when it is idle, whose page cache survives the process's own commits).
  virtual Status ReadBrief(const std::function<Status(FileTreeTransaction&)>& body) {
    return Read(body);
  }
  // Runs `body` in one write transaction: committed when it returns OK, rolled back (and its
  // status returned) otherwise. An engine may run `body` again after a serialization
  // failure, so `body` has no effect outside the transaction. kFailedPrecondition before
  // FormatVolume.
  virtual Status Write(const std::function<Status(FileTreeTransaction&)>& body,
                       TimestampMs now_ms) {
    return NotSupportedByEngine("FileTree::Write");
  }
  // As Write, but the commit need not reach the disk before it returns (SQLite:
  // synchronous = NORMAL; PostgreSQL: synchronous_commit off): every reader sees it at once
  // and a crash of this process keeps it; only a crash of the machine (or of the database
  // server) before the next durable commit or Sync can lose it. A mount's close uses it;
  // fsync calls Sync.
  virtual Status WriteRelaxed(const std::function<Status(FileTreeTransaction&)>& body,
                              TimestampMs now_ms) {
    return Write(body, now_ms);
  }
  // As Write, for a write that frees space (an unlink, a purge, a truncate): on a full disk
  // an engine that keeps a space reserve (SQLite: platform/space_reserve.h) releases it and
  // runs `body` again, and runs it even while the reserve is released, when other writes
  // are refused. Durable.
  virtual Status WriteFreeing(const std::function<Status(FileTreeTransaction&)>& body,
                              TimestampMs now_ms) {
    return Write(body, now_ms);
  }
  // Makes every commit made before it durable.
  virtual Status Sync() { return OkStatus(); }
};

}  // namespace cairn::meta
