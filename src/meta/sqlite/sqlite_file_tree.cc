// The SQLite engine's FileTree (meta/file_tree.h): tables fs_volume, fs_inodes, fs_dentries
// and fs_xattrs (schema version 9), fs_sessions, fs_orphans, fs_changes and fs_locks
// (version 10; fs_changes without AUTOINCREMENT since version 12), block rows in
// owner_chunks.
//
// A Write is one write of the engine's queue (sqlite_internal.h): BEGIN IMMEDIATE on the
// writer connection, or a SAVEPOINT inside a batch with other writes, rolled back alone
// when the body fails. So other processes on the host wait for it as for any write
// (busy_timeout, then kUnavailable), and it commits with the same fsync. A Read is one read
// transaction on a reader connection: in WAL mode its snapshot is fixed by its first
// SELECT (the volume row), so the body sees one state throughout.
//
// Unsigned numbers are stored in INTEGER columns as their int64 bit patterns, so every
// value round-trips; block indexes (owner_chunks.seq) must stay below 2^63, which a 4 MiB
// block size puts far beyond any file. Names, symlink targets and xattrs are BLOBs: any
// bytes, ordered by memcmp.
#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "meta/file_tree.h"
#include "meta/meta_checks.h"
#include "meta/sqlite/sqlite_internal.h"

namespace cairn::meta::sqlite_internal {
namespace {

constexpr uint64_t kMaxSeq = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

int64_t Signed(uint64_t value) { return static_cast<int64_t>(value); }
uint64_t Unsigned(int64_t value) { return static_cast<uint64_t>(value); }

// A damaged row's type number: kDataLoss naming the row.
Result<FileType> StoredType(int64_t number, const std::string& row) {
  Result<FileType> type = FileTypeFromNumber(number);
  if (!type.ok()) return DataLossError(row + " is damaged: " + type.status().message());
  return type;
}

std::string InodeRow(uint64_t ino) { return "fs_inodes row " + std::to_string(ino); }
std::string DentryRow(uint64_t parent, std::string_view name) {
  return "fs_dentries row (" + std::to_string(parent) + ", " +
         internal::Printable(std::string(name)) + ")";
}

// Inode `ino` from the CAIRN_FS_INODE_COLUMNS of the current row, the first at `first`.
Result<InodeRecord> InodeAt(const Statement& stmt, int first, uint64_t ino) {
  InodeRecord inode;
  inode.ino = ino;
  ASSIGN_OR_RETURN(inode.type, StoredType(stmt.ColumnInt(first), InodeRow(ino)));
  inode.mode = static_cast<uint32_t>(stmt.ColumnInt(first + 1));
  inode.uid = static_cast<uint32_t>(stmt.ColumnInt(first + 2));
  inode.gid = static_cast<uint32_t>(stmt.ColumnInt(first + 3));
  inode.nlink = static_cast<uint32_t>(stmt.ColumnInt(first + 4));
  inode.size = Unsigned(stmt.ColumnInt(first + 5));
  inode.atime_ns = stmt.ColumnInt(first + 6);
  inode.mtime_ns = stmt.ColumnInt(first + 7);
  inode.ctime_ns = stmt.ColumnInt(first + 8);
  inode.btime_ns = stmt.ColumnInt(first + 9);
  inode.rdev = Unsigned(stmt.ColumnInt(first + 10));
  inode.parent = Unsigned(stmt.ColumnInt(first + 11));
  inode.symlink_target = stmt.ColumnBlob(first + 12);
  inode.change = Unsigned(stmt.ColumnInt(first + 13));
  return inode;
}

// The volume row, or nullopt before FormatVolume.
Result<std::optional<VolumeRecord>> LoadVolume(Connection& c) {
  ASSIGN_OR_RETURN(Statement stmt,
                   c.Prepare("SELECT name, uuid, created_ms, trash_days, format_version "
                             "FROM fs_volume WHERE id = 1"));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<VolumeRecord>();
  VolumeRecord volume;
  volume.name = stmt.ColumnText(0);
  volume.uuid = stmt.ColumnText(1);
  volume.created_ms = stmt.ColumnInt(2);
  volume.trash_days = static_cast<uint32_t>(stmt.ColumnInt(3));
  volume.format_version = static_cast<uint32_t>(stmt.ColumnInt(4));
  return std::optional<VolumeRecord>(std::move(volume));
}

constexpr const char* kInsertInode =
    "INSERT INTO fs_inodes (ino, type, mode, uid, gid, nlink, size, atime_ns, mtime_ns, "
    "ctime_ns, btime_ns, rdev, parent, symlink_target, change) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
    "?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) ON CONFLICT (ino) DO UPDATE SET "
    "type = excluded.type, mode = excluded.mode, uid = excluded.uid, gid = excluded.gid, "
    "nlink = excluded.nlink, size = excluded.size, atime_ns = excluded.atime_ns, "
    "mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns, btime_ns = excluded.btime_ns, "
    "rdev = excluded.rdev, parent = excluded.parent, symlink_target = excluded.symlink_target, "
    "change = fs_inodes.change + 1 "
    "RETURNING change";

// Binds ?1..?14 to the row's columns (ino first) and ?15 to `change`: the numbering both
// inode writes share.
void BindInodeRow(Statement& stmt, const InodeRecord& inode, uint64_t change) {
  stmt.Int(1, Signed(inode.ino))
      .Int(2, static_cast<int64_t>(inode.type))
      .Int(3, inode.mode)
      .Int(4, inode.uid)
      .Int(5, inode.gid)
      .Int(6, inode.nlink)
      .Int(7, Signed(inode.size))
      .Int(8, inode.atime_ns)
      .Int(9, inode.mtime_ns)
      .Int(10, inode.ctime_ns)
      .Int(11, inode.btime_ns)
      .Int(12, Signed(inode.rdev))
      .Int(13, Signed(inode.parent))
      .Blob(14, inode.symlink_target)
      .Int(15, Signed(change));
}

// Inserts or replaces the inode row with `change` for a new row (the stored row's + 1 for
// an existing one); returns the stored change.
Result<uint64_t> UpsertInode(Connection& c, const InodeRecord& inode, uint64_t change) {
  ASSIGN_OR_RETURN(Statement stmt, c.Prepare(kInsertInode));
  BindInodeRow(stmt, inode, change);
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return InternalError("storing " + InodeRow(inode.ino) + " returned no change");
  const uint64_t stored = Unsigned(stmt.ColumnInt(0));
  stmt.Reset();
  return stored;
}

constexpr const char* kUpdateInodeAt =
    "UPDATE fs_inodes SET type = ?2, mode = ?3, uid = ?4, gid = ?5, nlink = ?6, size = ?7, "
    "atime_ns = ?8, mtime_ns = ?9, ctime_ns = ?10, btime_ns = ?11, rdev = ?12, parent = ?13, "
    "symlink_target = ?14, change = ?15 + 1 WHERE ino = ?1 AND change = ?15";

// Replaces the row if its change is still `inode.change` (the row as the caller read it);
// returns the stored change, or nullopt when the row is absent or has moved on.
Result<std::optional<uint64_t>> UpdateInodeAt(Connection& c, const InodeRecord& inode) {
  ASSIGN_OR_RETURN(Statement stmt, c.Prepare(kUpdateInodeAt));
  BindInodeRow(stmt, inode, inode.change);
  RETURN_IF_ERROR(stmt.Run());
  if (c.Changes() != 1) return std::optional<uint64_t>();
  return std::optional<uint64_t>(inode.change + 1);
}

using internal::kChangesPerInsert;

// The INSERT of `rows` (1..kChangesPerInsert) change rows.
const std::string& ChangesInsert(size_t rows) {
  static const std::array<std::string, kChangesPerInsert> statements = [] {
    std::array<std::string, kChangesPerInsert> out;
    for (size_t n = 1; n <= kChangesPerInsert; ++n) {
      out[n - 1] = internal::ChangesInsertSql(
          n, [](size_t param, size_t) { return "?" + std::to_string(param); });
    }
    return out;
  }();
  return statements[rows - 1];
}

}  // namespace

class SqliteFileTreeTransaction final : public FileTreeTransaction {
 public:
  // `known` is the volume as an earlier transaction read it: its name and uuid never
  // change; `fresh` says whether it was read in this transaction (else volume() reads it).
  SqliteFileTreeTransaction(Connection& c, VolumeRecord known, bool fresh, bool writable,
                            TimestampMs now_ms)
      : c_(c), volume_(std::move(known)), fresh_(fresh), writable_(writable), now_ms_(now_ms) {}

  Result<VolumeRecord> volume() override {
    if (!fresh_) {
      ASSIGN_OR_RETURN(std::optional<VolumeRecord> volume, LoadVolume(c_));
      if (!volume) return internal::NoVolumeError();
      volume_ = std::move(*volume);
      fresh_ = true;
    }
    return volume_;
  }
  TimestampMs now_ms() const override { return now_ms_; }

  // ---- inodes ----
  Result<std::optional<InodeRecord>> GetInode(uint64_t ino) override {
    ASSIGN_OR_RETURN(
        Statement stmt,
        c_.Prepare("SELECT " CAIRN_FS_INODE_COLUMNS("") " FROM fs_inodes WHERE ino = ?1"));
    stmt.Int(1, Signed(ino));
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return std::optional<InodeRecord>();
    ASSIGN_OR_RETURN(InodeRecord inode, InodeAt(stmt, 0, ino));
    return std::optional<InodeRecord>(std::move(inode));
  }

  Result<uint64_t> PutInode(const InodeRecord& inode) override {
    RETURN_IF_ERROR(CheckWritable("PutInode"));
    if (inode.ino == 0) return InvalidArgumentError("inode number 0 is not valid");
    // Most puts store a row this transaction read: an UPDATE of that version is one seek and
    // needs no RETURNING (which costs a temporary table per row). Anything else upserts.
    if (inode.change != 0 && inode.change < (uint64_t{1} << 62)) {
      ASSIGN_OR_RETURN(std::optional<uint64_t> stored, UpdateInodeAt(c_, inode));
      if (stored) return *stored;
    }
    return UpsertInode(c_, inode, 1);
  }

  Status DeleteInode(uint64_t ino) override {
    RETURN_IF_ERROR(CheckWritable("DeleteInode"));
    {
      ASSIGN_OR_RETURN(Statement stmt, c_.Prepare("DELETE FROM fs_inodes WHERE ino = ?1"));
      RETURN_IF_ERROR(stmt.Int(1, Signed(ino)).Run());
    }
    RETURN_IF_ERROR(DropBlocks(ino, 0));
    RETURN_IF_ERROR(DeleteOrphan(ino));
    ASSIGN_OR_RETURN(Statement stmt, c_.Prepare("DELETE FROM fs_xattrs WHERE ino = ?1"));
    return stmt.Int(1, Signed(ino)).Run();
  }

  Result<uint64_t> NewInodeNumber() override {
    RETURN_IF_ERROR(CheckWritable("NewInodeNumber"));
    ASSIGN_OR_RETURN(Statement stmt,
                     c_.Prepare("UPDATE fs_volume SET next_ino = next_ino + 1 WHERE id = 1 "
                                "RETURNING next_ino - 1"));
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return InternalError("the fs_volume row is missing");
    const uint64_t ino = Unsigned(stmt.ColumnInt(0));
    stmt.Reset();
    if (ino <= kRootInode) {
      return DataLossError("fs_volume row is damaged: its next inode number " +
                           std::to_string(ino) + " is not above the root's");
    }
    return ino;
  }

  Status SetTrashDays(uint32_t days) override {
    RETURN_IF_ERROR(CheckWritable("SetTrashDays"));
    ASSIGN_OR_RETURN(Statement stmt,
                     c_.Prepare("UPDATE fs_volume SET trash_days = ?1 WHERE id = 1"));
    RETURN_IF_ERROR(stmt.Int(1, days).Run());
    RETURN_IF_ERROR(volume().status());
    volume_.trash_days = days;
    return OkStatus();
  }

  // ---- directory entries ----
  Result<std::optional<DentryRecord>> GetDentry(uint64_t parent, std::string_view name) override {
    ASSIGN_OR_RETURN(Statement stmt, c_.Prepare("SELECT ino, type FROM fs_dentries "
                                                "WHERE parent = ?1 AND name = ?2"));
    stmt.Int(1, Signed(parent)).Blob(2, name);
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return std::optional<DentryRecord>();
    DentryRecord entry;
    entry.parent = parent;
    entry.name = std::string(name);
    entry.ino = Unsigned(stmt.ColumnInt(0));
    ASSIGN_OR_RETURN(entry.type, StoredType(stmt.ColumnInt(1), DentryRow(parent, name)));
    return std::optional<DentryRecord>(std::move(entry));
  }

  // One seek in each table; LEFT JOIN so that an entry naming no inode is still returned.
  Result<std::optional<NamedInode>> GetNamedInode(uint64_t parent, std::string_view name) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     c_.Prepare("SELECT d.ino, d.type, i.ino IS NOT NULL, " CAIRN_FS_INODE_COLUMNS(
                         "i.") " FROM fs_dentries d LEFT JOIN fs_inodes i ON i.ino = d.ino "
                               "WHERE d.parent = ?1 AND d.name = ?2"));
    stmt.Int(1, Signed(parent)).Blob(2, name);
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return std::optional<NamedInode>();
    NamedInode out;
    out.entry.parent = parent;
    out.entry.name = std::string(name);
    out.entry.ino = Unsigned(stmt.ColumnInt(0));
    ASSIGN_OR_RETURN(out.entry.type, StoredType(stmt.ColumnInt(1), DentryRow(parent, name)));
    if (stmt.ColumnInt(2) != 0) {
      ASSIGN_OR_RETURN(InodeRecord inode, InodeAt(stmt, 3, out.entry.ino));
      out.inode = std::move(inode);
    }
    return std::optional<NamedInode>(std::move(out));
  }

  Status PutDentry(const DentryRecord& entry) override {
    RETURN_IF_ERROR(CheckWritable("PutDentry"));
    ASSIGN_OR_RETURN(Statement stmt,
                     c_.Prepare("INSERT INTO fs_dentries (parent, name, ino, type) VALUES (?1, "
                                "?2, ?3, ?4) ON CONFLICT (parent, name) DO UPDATE SET "
                                "ino = excluded.ino, type = excluded.type"));
    return stmt.Int(1, Signed(entry.parent))
        .Blob(2, entry.name)
        .Int(3, Signed(entry.ino))
        .Int(4, static_cast<int64_t>(entry.type))
        .Run();
  }

  Status DeleteDentry(uint64_t parent, std::string_view name) override {
    RETURN_IF_ERROR(CheckWritable("DeleteDentry"));
    ASSIGN_OR_RETURN(Statement stmt,
                     c_.Prepare("DELETE FROM fs_dentries WHERE parent = ?1 AND name = ?2"));
    return stmt.Int(1, Signed(parent)).Blob(2, name).Run();
  }

  Result<std::vector<DentryRecord>> ListDentries(uint64_t parent, std::string_view after,
                                                 uint32_t limit) override {
    std::vector<DentryRecord> out;
    if (limit == 0) return out;
    // Names are BLOBs: `name > ?2` and ORDER BY compare with memcmp, shorter first on a tie.
    ASSIGN_OR_RETURN(Statement stmt,
                     c_.Prepare("SELECT name, ino, type FROM fs_dentries WHERE parent = ?1 AND "
                                "name > ?2 ORDER BY name LIMIT ?3"));
    stmt.Int(1, Signed(parent)).Blob(2, after).Int(3, limit);
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      DentryRecord entry;
      entry.parent = parent;
      entry.name = stmt.ColumnBlob(0);
      entry.ino = Unsigned(stmt.ColumnInt(1));
      ASSIGN_OR_RETURN(entry.type, StoredType(stmt.ColumnInt(2), DentryRow(parent, entry.name)));
      out.push_back(std::move(entry));
    }
    return out;
  }

  // ---- blocks ----
  Result<std::vector<BlockRecord>> GetBlocks(uint64_t ino, uint64_t first,
                                             uint64_t count) override {
    std::vector<BlockRecord> out;
    if (count == 0 || first > kMaxSeq) return out;
    const uint64_t last = count - 1 > kMaxSeq - first ? kMaxSeq : first + (count - 1);
    const ChunkOwner owner = Owner(ino);
    ASSIGN_OR_RETURN(Statement stmt,
                     c_.Prepare("SELECT oc.seq, oc.storage_class, oc.digest, oc.size_bytes, "
                                "c.block_checksums, c.damaged_ms FROM owner_chunks AS oc "
                                "LEFT JOIN chunks AS c ON c.storage_class = oc.storage_class "
                                "AND c.digest = oc.digest WHERE oc.owner_kind = ?1 AND "
                                "oc.owner_id = ?2 AND oc.seq >= ?3 AND oc.seq <= ?4 "
                                "ORDER BY oc.seq"));
    stmt.Text(1, owner.kind).Text(2, owner.id).Int(3, Signed(first)).Int(4, Signed(last));
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      BlockRecord block;
      block.index = Unsigned(stmt.ColumnInt(0));
      ASSIGN_OR_RETURN(block.chunk.storage_class, stmt.ColumnClass(1));
      ASSIGN_OR_RETURN(block.chunk.chunk.digest, stmt.ColumnDigest(2));
      block.chunk.chunk.size_bytes = Unsigned(stmt.ColumnInt(3));
      if (!stmt.IsNull(4)) block.chunk.chunk.block_checksums = stmt.ColumnBlob(4);
      block.chunk.chunk.damaged_ms = stmt.ColumnInt(5);
      out.push_back(std::move(block));
    }
    return out;
  }

  Status PutBlock(uint64_t ino, const BlockRecord& block) override {
    RETURN_IF_ERROR(CheckWritable("PutBlock"));
    if (block.index > kMaxSeq) {
      return InvalidArgumentError("block index " + std::to_string(block.index) + " of inode " +
                                  std::to_string(ino) + " is beyond 2^63 - 1");
    }
    return SqliteMetaStore::PutOwnerEntry(c_, Owner(ino), block.index, block.chunk, now_ms_);
  }

  Status DropBlocks(uint64_t ino, uint64_t first) override {
    RETURN_IF_ERROR(CheckWritable("DropBlocks"));
    if (first > kMaxSeq) return OkStatus();
    return SqliteMetaStore::DropOwnerEntries(c_, Owner(ino), first, kMaxSeq, now_ms_);
  }

  // ---- extended attributes ----
  Result<std::optional<std::string>> GetXattr(uint64_t ino, std::string_view name) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     c_.Prepare("SELECT value FROM fs_xattrs WHERE ino = ?1 AND name = ?2"));
    stmt.Int(1, Signed(ino)).Blob(2, name);
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return std::optional<std::string>();
    return std::optional<std::string>(stmt.ColumnBlob(0));
  }

  Status PutXattr(uint64_t ino, std::string_view name, std::string_view value) override {
    RETURN_IF_ERROR(CheckWritable("PutXattr"));
    ASSIGN_OR_RETURN(Statement stmt,
                     c_.Prepare("INSERT INTO fs_xattrs (ino, name, value) VALUES (?1, ?2, ?3) "
                                "ON CONFLICT (ino, name) DO UPDATE SET value = excluded.value"));
    return stmt.Int(1, Signed(ino)).Blob(2, name).Blob(3, value).Run();
  }

  Status DeleteXattr(uint64_t ino, std::string_view name) override {
    RETURN_IF_ERROR(CheckWritable("DeleteXattr"));
    ASSIGN_OR_RETURN(Statement stmt,
                     c_.Prepare("DELETE FROM fs_xattrs WHERE ino = ?1 AND name = ?2"));
    return stmt.Int(1, Signed(ino)).Blob(2, name).Run();
  }

  Result<std::vector<std::string>> ListXattrs(uint64_t ino) override {
    std::vector<std::string> out;
    ASSIGN_OR_RETURN(Statement stmt,
                     c_.Prepare("SELECT name FROM fs_xattrs WHERE ino = ?1 ORDER BY name"));
    stmt.Int(1, Signed(ino));
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      out.push_back(stmt.ColumnBlob(0));
    }
    return out;
  }

  Status SetOwnerChunks(const ChunkOwner& owner, const std::vector<OwnerChunk>& chunks) override {
    RETURN_IF_ERROR(CheckWritable("SetOwnerChunks"));
    RETURN_IF_ERROR(internal::CheckChunkOwner(owner));
    if (owner.kind == kFileOwnerKind) {
      return InvalidArgumentError("a file's blocks are set by PutBlock, not SetOwnerChunks");
    }
    return SqliteMetaStore::ReplaceOwnerChunks(c_, owner, chunks, now_ms_);
  }

  Status AddOwnerEntry(const ChunkOwner& owner, uint64_t seq, const OwnerChunk& chunk) override {
    RETURN_IF_ERROR(CheckWritable("AddOwnerEntry"));
    RETURN_IF_ERROR(internal::CheckGenericOwner(owner, "AddOwnerEntry"));
    return SqliteMetaStore::AddOwnerEntry(c_, owner, seq, chunk, now_ms_);
  }

  Status DropOwnerEntries(const ChunkOwner& owner, const std::vector<uint64_t>& seqs) override {
    RETURN_IF_ERROR(CheckWritable("DropOwnerEntries"));
    RETURN_IF_ERROR(internal::CheckGenericOwner(owner, "DropOwnerEntries"));
    for (uint64_t seq : seqs) {
      RETURN_IF_ERROR(SqliteMetaStore::DropOwnerEntries(c_, owner, seq, seq, now_ms_));
    }
    return OkStatus();
  }

  // ---- sessions, orphans, changes, locks ----
  Status PutSession(const SessionRecord& session) override {
    RETURN_IF_ERROR(CheckWritable("PutSession"));
    if (session.id == 0 || session.id > kMaxSeq) {
      return InvalidArgumentError("session id " + std::to_string(session.id) + " is not valid");
    }
    ASSIGN_OR_RETURN(
        Statement stmt,
        c_.Prepare("INSERT OR REPLACE INTO fs_sessions (id, host, host_key, pid, mount_point, "
                   "version, read_only, started_ms, heartbeat_ms, expires_ms, seen_seq) VALUES "
                   "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"));
    return stmt.Int(1, Signed(session.id))
        .Text(2, session.host)
        .Text(3, session.host_key)
        .Int(4, session.pid)
        .Blob(5, session.mount_point)
        .Text(6, session.version)
        .Int(7, session.read_only ? 1 : 0)
        .Int(8, session.started_ms)
        .Int(9, session.heartbeat_ms)
        .Int(10, session.expires_ms)
        .Int(11, Signed(session.seen_seq))
        .Run();
  }

  Status DeleteSession(uint64_t id) override {
    RETURN_IF_ERROR(CheckWritable("DeleteSession"));
    ASSIGN_OR_RETURN(Statement stmt, c_.Prepare("DELETE FROM fs_sessions WHERE id = ?1"));
    return stmt.Int(1, Signed(id)).Run();
  }

  Result<std::vector<SessionRecord>> ListSessions() override {
    std::vector<SessionRecord> out;
    ASSIGN_OR_RETURN(Statement stmt,
                     c_.Prepare("SELECT id, host, host_key, pid, mount_point, version, "
                                "read_only, started_ms, heartbeat_ms, expires_ms, seen_seq "
                                "FROM fs_sessions ORDER BY id"));
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      SessionRecord session;
      session.id = Unsigned(stmt.ColumnInt(0));
      session.host = stmt.ColumnText(1);
      session.host_key = stmt.ColumnText(2);
      session.pid = static_cast<uint32_t>(stmt.ColumnInt(3));
      session.mount_point = stmt.ColumnBlob(4);
      session.version = stmt.ColumnText(5);
      session.read_only = stmt.ColumnInt(6) != 0;
      session.started_ms = stmt.ColumnInt(7);
      session.heartbeat_ms = stmt.ColumnInt(8);
      session.expires_ms = stmt.ColumnInt(9);
      session.seen_seq = Unsigned(stmt.ColumnInt(10));
      out.push_back(std::move(session));
    }
    return out;
  }

  Status PutOrphan(const OrphanRecord& orphan) override {
    RETURN_IF_ERROR(CheckWritable("PutOrphan"));
    ASSIGN_OR_RETURN(
        Statement stmt,
        c_.Prepare("INSERT OR REPLACE INTO fs_orphans (ino, session, since_seq) VALUES (?1, "
                   "?2, ?3)"));
    return stmt.Int(1, Signed(orphan.ino))
        .Int(2, Signed(orphan.session))
        .Int(3, Signed(orphan.since_seq))
        .Run();
  }

  Status DeleteOrphan(uint64_t ino) override {
    RETURN_IF_ERROR(CheckWritable("DeleteOrphan"));
    ASSIGN_OR_RETURN(Statement stmt, c_.Prepare("DELETE FROM fs_orphans WHERE ino = ?1"));
    return stmt.Int(1, Signed(ino)).Run();
  }

  Result<std::vector<OrphanRecord>> ListOrphans() override {
    std::vector<OrphanRecord> out;
    ASSIGN_OR_RETURN(Statement stmt,
                     c_.Prepare("SELECT ino, session, since_seq FROM fs_orphans ORDER BY ino"));
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      out.push_back(OrphanRecord{Unsigned(stmt.ColumnInt(0)), Unsigned(stmt.ColumnInt(1)),
                                 Unsigned(stmt.ColumnInt(2))});
    }
    return out;
  }

  Result<uint64_t> AppendChange(const ChangeRecord& change) override {
    return AppendChanges({change});
  }

  // Up to kChangesPerInsert rows per INSERT: each statement costs about what one row does.
  Result<uint64_t> AppendChanges(const std::vector<ChangeRecord>& changes) override {
    RETURN_IF_ERROR(CheckWritable("AppendChanges"));
    uint64_t last = 0;
    for (size_t first = 0; first < changes.size(); first += kChangesPerInsert) {
      const size_t rows = std::min(kChangesPerInsert, changes.size() - first);
      ASSIGN_OR_RETURN(Statement stmt, c_.Prepare(ChangesInsert(rows)));
      for (size_t i = 0; i < rows; ++i) {
        const ChangeRecord& change = changes[first + i];
        const int base = static_cast<int>(i * 6);
        stmt.Int(base + 1, Signed(change.session))
            .Int(base + 2, Signed(change.ino))
            .Int(base + 3, change.data ? 1 : 0)
            .Int(base + 4, Signed(change.parent))
            .Blob(base + 5, change.name)
            .Int(base + 6, now_ms_);
      }
      RETURN_IF_ERROR(stmt.Run());
      // The rows take their rowids in VALUES order; the last is the highest.
      last = Unsigned(c_.LastInsertRowid());
    }
    return last;
  }

  Result<std::vector<ChangeRecord>> ListChanges(uint64_t after, uint32_t limit) override {
    std::vector<ChangeRecord> out;
    if (limit == 0 || after >= kMaxSeq) return out;
    ASSIGN_OR_RETURN(Statement stmt,
                     c_.Prepare("SELECT seq, session, ino, data, parent, name, at_ms FROM "
                                "fs_changes WHERE seq > ?1 ORDER BY seq LIMIT ?2"));
    stmt.Int(1, Signed(after)).Int(2, limit);
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      ChangeRecord change;
      change.seq = Unsigned(stmt.ColumnInt(0));
      change.session = Unsigned(stmt.ColumnInt(1));
      change.ino = Unsigned(stmt.ColumnInt(2));
      change.data = stmt.ColumnInt(3) != 0;
      change.parent = Unsigned(stmt.ColumnInt(4));
      change.name = stmt.ColumnBlob(5);
      change.at_ms = stmt.ColumnInt(6);
      out.push_back(std::move(change));
    }
    return out;
  }

  Result<uint64_t> LastChangeSeq() override {
    // TrimChanges keeps the newest row, so the highest seq is still here after trimming.
    ASSIGN_OR_RETURN(Statement stmt, c_.Prepare("SELECT COALESCE(MAX(seq), 0) FROM fs_changes"));
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return uint64_t{0};
    const uint64_t seq = Unsigned(stmt.ColumnInt(0));
    stmt.Reset();
    return seq;
  }

  Status TrimChanges(TimestampMs before_ms) override {
    RETURN_IF_ERROR(CheckWritable("TrimChanges"));
    // Up to the first row at or after before_ms, by seq (a walk from the oldest row, about
    // as long as what it deletes; no index on at_ms), and never the newest row: it keeps
    // MAX(seq), which the next seq follows. A row from a host whose clock is behind may
    // stay until the next trim passes it.
    ASSIGN_OR_RETURN(
        Statement stmt,
        c_.Prepare("DELETE FROM fs_changes WHERE seq < COALESCE("
                   "(SELECT seq FROM fs_changes WHERE at_ms >= ?1 ORDER BY seq LIMIT 1), "
                   "(SELECT MAX(seq) FROM fs_changes))"));
    return stmt.Int(1, before_ms).Run();
  }

  Result<std::vector<LockRecord>> ListLocks(uint64_t ino) override {
    std::vector<LockRecord> out;
    ASSIGN_OR_RETURN(Statement stmt,
                     c_.Prepare("SELECT session, owner, kind, start, end_incl, exclusive, pid "
                                "FROM fs_locks WHERE ino = ?1 ORDER BY session, owner, kind, "
                                "start"));
    stmt.Int(1, Signed(ino));
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      LockRecord lock;
      lock.ino = ino;
      lock.session = Unsigned(stmt.ColumnInt(0));
      lock.owner = Unsigned(stmt.ColumnInt(1));
      const int64_t kind = stmt.ColumnInt(2);
      if (kind != static_cast<int64_t>(LockKind::kPosix) &&
          kind != static_cast<int64_t>(LockKind::kFlock)) {
        return DataLossError("fs_locks row of inode " + std::to_string(ino) +
                             " is damaged: lock kind " + std::to_string(kind));
      }
      lock.kind = static_cast<LockKind>(kind);
      lock.start = Unsigned(stmt.ColumnInt(3));
      lock.end = Unsigned(stmt.ColumnInt(4));
      lock.exclusive = stmt.ColumnInt(5) != 0;
      lock.pid = static_cast<uint32_t>(stmt.ColumnInt(6));
      out.push_back(lock);
    }
    return out;
  }

  Status SetLocks(uint64_t ino, uint64_t session, uint64_t owner, LockKind kind,
                  const std::vector<LockRecord>& locks) override {
    RETURN_IF_ERROR(CheckWritable("SetLocks"));
    {
      ASSIGN_OR_RETURN(Statement stmt,
                       c_.Prepare("DELETE FROM fs_locks WHERE ino = ?1 AND session = ?2 AND "
                                  "owner = ?3 AND kind = ?4"));
      RETURN_IF_ERROR(stmt.Int(1, Signed(ino))
                          .Int(2, Signed(session))
                          .Int(3, Signed(owner))
                          .Int(4, static_cast<int64_t>(kind))
                          .Run());
    }
    for (const LockRecord& lock : locks) {
      ASSIGN_OR_RETURN(Statement stmt,
                       c_.Prepare("INSERT INTO fs_locks (ino, session, owner, kind, start, "
                                  "end_incl, exclusive, pid) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                                  "?7, ?8)"));
      RETURN_IF_ERROR(stmt.Int(1, Signed(ino))
                          .Int(2, Signed(session))
                          .Int(3, Signed(owner))
                          .Int(4, static_cast<int64_t>(kind))
                          .Int(5, Signed(lock.start))
                          .Int(6, Signed(lock.end))
                          .Int(7, lock.exclusive ? 1 : 0)
                          .Int(8, lock.pid)
                          .Run());
    }
    return OkStatus();
  }

  Status DeleteSessionLocks(uint64_t session) override {
    RETURN_IF_ERROR(CheckWritable("DeleteSessionLocks"));
    ASSIGN_OR_RETURN(Statement stmt, c_.Prepare("DELETE FROM fs_locks WHERE session = ?1"));
    return stmt.Int(1, Signed(session)).Run();
  }

  // ---- usage ----
  Result<VolumeUsage> Usage() override {
    VolumeUsage usage;
    {
      ASSIGN_OR_RETURN(Statement stmt,
                       c_.Prepare("SELECT COUNT(*), COALESCE(SUM(type = ?1), 0), "
                                  "COALESCE(SUM(CASE WHEN type = ?1 THEN size ELSE 0 END), 0) "
                                  "FROM fs_inodes"));
      stmt.Int(1, static_cast<int64_t>(FileType::kRegular));
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) return InternalError("counting the fs_inodes rows returned no row");
      usage.inodes = Unsigned(stmt.ColumnInt(0));
      usage.files = Unsigned(stmt.ColumnInt(1));
      usage.file_bytes = Unsigned(stmt.ColumnInt(2));
    }
    // The owners "<uuid>:<ino>" sort between "<uuid>:" and "<uuid>;" (';' follows ':').
    ASSIGN_OR_RETURN(Statement stmt,
                     c_.Prepare("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM (SELECT "
                                "MAX(size_bytes) AS size FROM owner_chunks WHERE owner_kind = ?1 "
                                "AND owner_id >= ?2 AND owner_id < ?3 "
                                "GROUP BY storage_class, digest)"));
    stmt.Text(1, kFileOwnerKind).Text(2, volume_.uuid + ":").Text(3, volume_.uuid + ";");
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return InternalError("summing the volume's chunks returned no row");
    usage.chunks = Unsigned(stmt.ColumnInt(0));
    usage.chunk_bytes = Unsigned(stmt.ColumnInt(1));
    return usage;
  }

 private:
  Status CheckWritable(std::string_view what) const {
    if (writable_) return OkStatus();
    return InternalError(std::string(what) + " inside a read-only file tree transaction");
  }

  ChunkOwner Owner(uint64_t ino) const { return FileChunkOwner(volume_.uuid, ino); }

  Connection& c_;
  VolumeRecord volume_;  // as loaded, with this transaction's SetTrashDays
  bool fresh_;
  const bool writable_;
  const TimestampMs now_ms_;
};

// ---- FileTree -------------------------------------------------------------------------

Result<VolumeRecord> SqliteMetaStore::FormatVolume(const VolumeRecord& requested,
                                                   const InodeRecord& root) {
  RETURN_IF_ERROR(internal::CheckVolumeRecord(requested));
  VolumeRecord volume;
  Status status = Write("format volume " + requested.name, [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(std::optional<VolumeRecord> existing, LoadVolume(c));
    if (existing) {
      if (existing->name != requested.name) {
        return AlreadyExistsError("this metadata store holds volume '" + existing->name +
                                  "' already; it cannot also hold '" + requested.name + "'");
      }
      volume = *existing;
      return OkStatus();
    }
    {
      ASSIGN_OR_RETURN(Statement stmt,
                       c.Prepare("INSERT INTO fs_volume (id, name, uuid, created_ms, trash_days, "
                                 "format_version, next_ino) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)"));
      RETURN_IF_ERROR(stmt.Text(1, requested.name)
                          .Text(2, requested.uuid)
                          .Int(3, requested.created_ms)
                          .Int(4, requested.trash_days)
                          .Int(5, requested.format_version)
                          .Int(6, Signed(kRootInode + 1))
                          .Run());
    }
    InodeRecord row = root;
    row.ino = kRootInode;
    row.type = FileType::kDirectory;
    row.parent = kRootInode;
    // A leftover root row (there is none in a store formatted here) is overwritten whole.
    {
      ASSIGN_OR_RETURN(Statement stmt, c.Prepare("DELETE FROM fs_inodes WHERE ino = ?1"));
      RETURN_IF_ERROR(stmt.Int(1, Signed(kRootInode)).Run());
    }
    RETURN_IF_ERROR(UpsertInode(c, row, 1).status());
    volume = requested;
    return OkStatus();
  });
  if (!status.ok()) return status;
  return volume;
}

Result<std::optional<VolumeRecord>> SqliteMetaStore::GetVolume() {
  std::optional<VolumeRecord> volume;
  Status status = Read("get the volume", [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(volume, LoadVolume(c));
    return OkStatus();
  });
  if (!status.ok()) return status;
  return volume;
}

// The body of a file tree read, on any connection.
std::function<Status(Connection&)> SqliteMetaStore::FileTreeReader(
    const std::function<Status(FileTreeTransaction&)>& body) {
  return [this, &body](Connection& c) -> Status {
    ASSIGN_OR_RETURN(FileTreeStart start, StartFileTree(c));
    SqliteFileTreeTransaction transaction(c, std::move(start.volume), start.fresh,
                                          /*writable=*/false, 0);
    return body(transaction);
  };
}

// The volume row is read once per store, not once per transaction: every operation of a
// mount is a transaction and most never ask for it. Until a volume has been seen, each
// transaction reads the row and nothing runs without one (as before formatting).
Result<SqliteMetaStore::FileTreeStart> SqliteMetaStore::StartFileTree(Connection& c) {
  {
    std::lock_guard lock(volume_mu_);
    if (known_volume_) return FileTreeStart{*known_volume_, false};
  }
  ASSIGN_OR_RETURN(std::optional<VolumeRecord> volume, LoadVolume(c));
  if (!volume) return internal::NoVolumeError();
  {
    std::lock_guard lock(volume_mu_);
    known_volume_ = *volume;
  }
  return FileTreeStart{std::move(*volume), true};
}

Status SqliteMetaStore::Read(const std::function<Status(FileTreeTransaction&)>& body) {
  return Read("file tree read", FileTreeReader(body));
}

// A brief read runs on the writer connection when no write holds it. In WAL mode a
// connection drops its whole page cache when another connection has committed since its
// last transaction, so a reader connection re-reads every B-tree page it needs after each
// of the process's writes (a mount: every create, commit and unlink), while the writer's
// cache survives its own commits. Same snapshot rules either way (BEGIN, then the first
// SELECT fixes it). Never from inside a write or a brief read of this store (this thread
// holds the writer then; a write from a brief read's body fails), and never for long reads (a
// volume's usage, the trash), which would hold up every write.
Status SqliteMetaStore::ReadBrief(const std::function<Status(FileTreeTransaction&)>& body) {
  if (t_writing_store != this && t_brief_reading_store != this) {
    std::unique_lock writer_lock(writer_mu_, std::try_to_lock);
    if (writer_lock.owns_lock()) {
      t_brief_reading_store = this;
      Status status = RunTransaction(*writer_, "BEGIN", FileTreeReader(body));
      t_brief_reading_store = nullptr;
      return AnnotateStorageError(std::move(status), "file tree read");
    }
  }
  return Read(body);
}

// The body of every file tree write: the volume row, then `body` on a writable transaction.
std::function<Status(Connection&)> SqliteMetaStore::FileTreeWriter(
    const std::function<Status(FileTreeTransaction&)>& body, TimestampMs now_ms) {
  return [this, &body, now_ms](Connection& c) -> Status {
    ASSIGN_OR_RETURN(FileTreeStart start, StartFileTree(c));
    SqliteFileTreeTransaction transaction(c, std::move(start.volume), start.fresh,
                                          /*writable=*/true, now_ms);
    return body(transaction);
  };
}

Status SqliteMetaStore::Write(const std::function<Status(FileTreeTransaction&)>& body,
                              TimestampMs now_ms) {
  return Write("file tree write", FileTreeWriter(body, now_ms));
}

Status SqliteMetaStore::WriteRelaxed(const std::function<Status(FileTreeTransaction&)>& body,
                                     TimestampMs now_ms) {
  return Write("file tree write", FileTreeWriter(body, now_ms), /*durable=*/false);
}

Status SqliteMetaStore::WriteFreeing(const std::function<Status(FileTreeTransaction&)>& body,
                                     TimestampMs now_ms) {
  return FreeingWrite("file tree write", FileTreeWriter(body, now_ms));
}

// A durable commit fsyncs the WAL, and with it every commit before it. It must change a
// page (SQLite writes nothing for a transaction that changes nothing, nor for an UPDATE
// that stores the same bytes), so it hands out one inode number, which nothing uses: the
// numbers only have to be new.
// On a full disk it may use the space reserve, as a delete does: making what was already
// acknowledged durable takes one page, and must not wait for space to come back.
Status SqliteMetaStore::Sync() {
  return FreeingWrite("file tree sync", [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("UPDATE fs_volume SET next_ino = next_ino + 1 WHERE id = 1"));
    return stmt.Run();
  });
}

}  // namespace cairn::meta::sqlite_internal
