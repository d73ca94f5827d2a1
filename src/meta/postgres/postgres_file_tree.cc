// The PostgreSQL engine's FileTree (meta/file_tree.h): tables fs_volume, fs_inodes,
// fs_dentries and fs_xattrs (schema version 10), fs_sessions, fs_orphans, fs_changes and
// fs_locks (version 11), block rows in owner_chunks.
//
// Concurrency, simply: every Write first locks the fs_volume row (SELECT ... FOR UPDATE),
// so the file tree's write transactions, from any node, run one at a time; under READ
// COMMITTED each later statement sees everything committed before the lock was granted, so
// a body's reads are current and its read-modify-writes lose nothing. Chunk rows are shared
// with objects and other owners: references are taken by upsert and dropped after locking
// the rows in (class, digest) order, as everywhere in the engine; a deadlock with another
// writer is retried by Transact (the body runs again, which the FileTree contract allows).
// A Read is one REPEATABLE READ READ ONLY transaction: one snapshot throughout.
//
// Unsigned numbers are stored in bigint columns as their int64 bit patterns; block indexes
// must stay below 2^63. Names, symlink targets and xattrs are bytea, ordered byte-wise.
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
#include "meta/postgres/postgres_internal.h"

namespace cairn::meta::postgres_internal {
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

// Inode `ino` from the CAIRN_FS_INODE_COLUMNS of the first row, the first at `first`.
Result<InodeRecord> InodeAt(const Rows& rows, int first, uint64_t ino) {
  int64_t v[14] = {};
  for (int column = 0; column < 14; ++column) {
    if (column == 12) continue;  // the symlink target: bytes
    ASSIGN_OR_RETURN(v[column], rows.Int(0, first + column));
  }
  InodeRecord inode;
  inode.ino = ino;
  ASSIGN_OR_RETURN(inode.type, StoredType(v[0], InodeRow(ino)));
  inode.mode = static_cast<uint32_t>(v[1]);
  inode.uid = static_cast<uint32_t>(v[2]);
  inode.gid = static_cast<uint32_t>(v[3]);
  inode.nlink = static_cast<uint32_t>(v[4]);
  inode.size = Unsigned(v[5]);
  inode.atime_ns = v[6];
  inode.mtime_ns = v[7];
  inode.ctime_ns = v[8];
  inode.btime_ns = v[9];
  inode.rdev = Unsigned(v[10]);
  inode.parent = Unsigned(v[11]);
  inode.symlink_target = rows.Bytes(0, first + 12);
  inode.change = Unsigned(v[13]);
  return inode;
}

// The volume row (locked for the transaction when `lock`), or nullopt before FormatVolume.
Result<std::optional<VolumeRecord>> LoadVolume(Connection& c, bool lock) {
  ASSIGN_OR_RETURN(Rows rows,
                   c.Exec(lock ? "SELECT name, uuid, created_ms, trash_days, format_version "
                                 "FROM fs_volume WHERE id = 1 FOR UPDATE"
                               : "SELECT name, uuid, created_ms, trash_days, format_version "
                                 "FROM fs_volume WHERE id = 1"));
  if (rows.empty()) return std::optional<VolumeRecord>();
  VolumeRecord volume;
  volume.name = rows.Text(0, 0);
  volume.uuid = rows.Text(0, 1);
  ASSIGN_OR_RETURN(volume.created_ms, rows.Int(0, 2));
  ASSIGN_OR_RETURN(int64_t trash_days, rows.Int(0, 3));
  ASSIGN_OR_RETURN(int64_t format_version, rows.Int(0, 4));
  volume.trash_days = static_cast<uint32_t>(trash_days);
  volume.format_version = static_cast<uint32_t>(format_version);
  return std::optional<VolumeRecord>(std::move(volume));
}

// Inserts or replaces the inode row with `change` for a new row (the stored row's + 1 for
// an existing one); returns the stored change.
Result<uint64_t> UpsertInode(Connection& c, const InodeRecord& inode, uint64_t change) {
  ASSIGN_OR_RETURN(
      Rows rows,
      c.Exec("INSERT INTO fs_inodes (ino, type, mode, uid, gid, nlink, size, atime_ns, mtime_ns, "
             "ctime_ns, btime_ns, rdev, parent, symlink_target, change) VALUES ($1::bigint, "
             "$2::bigint, $3::bigint, $4::bigint, $5::bigint, $6::bigint, $7::bigint, $8::bigint, "
             "$9::bigint, $10::bigint, $11::bigint, $12::bigint, $13::bigint, $14::bytea, "
             "$15::bigint) ON CONFLICT (ino) DO UPDATE SET "
             "type = EXCLUDED.type, mode = EXCLUDED.mode, uid = EXCLUDED.uid, "
             "gid = EXCLUDED.gid, nlink = EXCLUDED.nlink, size = EXCLUDED.size, "
             "atime_ns = EXCLUDED.atime_ns, mtime_ns = EXCLUDED.mtime_ns, "
             "ctime_ns = EXCLUDED.ctime_ns, btime_ns = EXCLUDED.btime_ns, rdev = EXCLUDED.rdev, "
             "parent = EXCLUDED.parent, symlink_target = EXCLUDED.symlink_target, "
             "change = fs_inodes.change + 1 RETURNING change",
             Params()
                 .Int(Signed(inode.ino))
                 .Int(static_cast<int64_t>(inode.type))
                 .Int(inode.mode)
                 .Int(inode.uid)
                 .Int(inode.gid)
                 .Int(inode.nlink)
                 .Int(Signed(inode.size))
                 .Int(inode.atime_ns)
                 .Int(inode.mtime_ns)
                 .Int(inode.ctime_ns)
                 .Int(inode.btime_ns)
                 .Int(Signed(inode.rdev))
                 .Int(Signed(inode.parent))
                 .Bytes(inode.symlink_target)
                 .Int(Signed(change))));
  if (rows.empty()) return InternalError("storing " + InodeRow(inode.ino) + " returned no change");
  ASSIGN_OR_RETURN(int64_t stored, rows.Int(0, 0));
  return Unsigned(stored);
}

using internal::kChangesPerInsert;

// The INSERT of `rows` (1..kChangesPerInsert) change rows, returning their seqs.
const std::string& ChangesInsert(size_t rows) {
  static const std::array<std::string, kChangesPerInsert> statements = [] {
    static constexpr const char* kTypes[] = {"bigint", "bigint", "boolean",
                                             "bigint", "bytea",  "bigint"};
    std::array<std::string, kChangesPerInsert> out;
    for (size_t n = 1; n <= kChangesPerInsert; ++n) {
      out[n - 1] =
          internal::ChangesInsertSql(n,
                                     [](size_t param, size_t column) {
                                       return "$" + std::to_string(param) + "::" + kTypes[column];
                                     }) +
          " RETURNING seq";
    }
    return out;
  }();
  return statements[rows - 1];
}

}  // namespace

class PostgresFileTreeTransaction final : public FileTreeTransaction {
 public:
  // `volume` is the row as this transaction read it (`fresh`), or as the store knew it: then
  // its name and uuid hold (they never change) and volume() reads the rest.
  PostgresFileTreeTransaction(Connection& c, VolumeRecord volume, bool writable, TimestampMs now_ms,
                              bool fresh = true)
      : c_(c), volume_(std::move(volume)), fresh_(fresh), writable_(writable), now_ms_(now_ms) {}

  Result<VolumeRecord> volume() override {
    if (!fresh_) {
      ASSIGN_OR_RETURN(std::optional<VolumeRecord> row, LoadVolume(c_, /*lock=*/false));
      if (!row) return internal::NoVolumeError();
      volume_ = std::move(*row);
      fresh_ = true;
    }
    return volume_;
  }
  TimestampMs now_ms() const override { return now_ms_; }

  // ---- inodes ----
  Result<std::optional<InodeRecord>> GetInode(uint64_t ino) override {
    ASSIGN_OR_RETURN(
        Rows rows,
        c_.Exec("SELECT " CAIRN_FS_INODE_COLUMNS("") " FROM fs_inodes WHERE ino = $1::bigint",
                Params().Int(Signed(ino))));
    if (rows.empty()) return std::optional<InodeRecord>();
    ASSIGN_OR_RETURN(InodeRecord inode, InodeAt(rows, 0, ino));
    return std::optional<InodeRecord>(std::move(inode));
  }

  Result<uint64_t> PutInode(const InodeRecord& inode) override {
    RETURN_IF_ERROR(CheckWritable("PutInode"));
    if (inode.ino == 0) return InvalidArgumentError("inode number 0 is not valid");
    return UpsertInode(c_, inode, 1);
  }

  Status DeleteInode(uint64_t ino) override {
    RETURN_IF_ERROR(CheckWritable("DeleteInode"));
    RETURN_IF_ERROR(
        c_.Exec("DELETE FROM fs_inodes WHERE ino = $1::bigint", Params().Int(Signed(ino)))
            .status());
    RETURN_IF_ERROR(DropBlocks(ino, 0));
    RETURN_IF_ERROR(DeleteOrphan(ino));
    return c_.Exec("DELETE FROM fs_xattrs WHERE ino = $1::bigint", Params().Int(Signed(ino)))
        .status();
  }

  Result<uint64_t> NewInodeNumber() override {
    RETURN_IF_ERROR(CheckWritable("NewInodeNumber"));
    ASSIGN_OR_RETURN(Rows rows, c_.Exec("UPDATE fs_volume SET next_ino = next_ino + 1 "
                                        "WHERE id = 1 RETURNING next_ino - 1"));
    if (rows.empty()) return InternalError("the fs_volume row is missing");
    ASSIGN_OR_RETURN(int64_t number, rows.Int(0, 0));
    const uint64_t ino = Unsigned(number);
    if (ino <= kRootInode) {
      return DataLossError("fs_volume row is damaged: its next inode number " +
                           std::to_string(ino) + " is not above the root's");
    }
    return ino;
  }

  // ---- directory entries ----
  Status SetTrashDays(uint32_t days) override {
    RETURN_IF_ERROR(CheckWritable("SetTrashDays"));
    RETURN_IF_ERROR(
        c_.Exec("UPDATE fs_volume SET trash_days = $1::bigint WHERE id = 1", Params().Int(days))
            .status());
    volume_.trash_days = days;
    return OkStatus();
  }

  Result<std::optional<DentryRecord>> GetDentry(uint64_t parent, std::string_view name) override {
    ASSIGN_OR_RETURN(Rows rows, c_.Exec("SELECT ino, type FROM fs_dentries "
                                        "WHERE parent = $1::bigint AND name = $2::bytea",
                                        Params().Int(Signed(parent)).Bytes(name)));
    if (rows.empty()) return std::optional<DentryRecord>();
    DentryRecord entry;
    entry.parent = parent;
    entry.name = std::string(name);
    ASSIGN_OR_RETURN(int64_t ino, rows.Int(0, 0));
    ASSIGN_OR_RETURN(int64_t type, rows.Int(0, 1));
    entry.ino = Unsigned(ino);
    ASSIGN_OR_RETURN(entry.type, StoredType(type, DentryRow(parent, name)));
    return std::optional<DentryRecord>(std::move(entry));
  }

  // One round trip for both rows; LEFT JOIN so that an entry naming no inode is returned.
  Result<std::optional<NamedInode>> GetNamedInode(uint64_t parent, std::string_view name) override {
    ASSIGN_OR_RETURN(
        Rows rows,
        c_.Exec("SELECT d.ino, d.type, (i.ino IS NOT NULL)::int, " CAIRN_FS_INODE_COLUMNS(
                    "i.") " FROM fs_dentries d LEFT JOIN fs_inodes i ON i.ino = d.ino "
                          "WHERE d.parent = $1::bigint AND d.name = $2::bytea",
                Params().Int(Signed(parent)).Bytes(name)));
    if (rows.empty()) return std::optional<NamedInode>();
    NamedInode out;
    out.entry.parent = parent;
    out.entry.name = std::string(name);
    ASSIGN_OR_RETURN(int64_t ino, rows.Int(0, 0));
    ASSIGN_OR_RETURN(int64_t type, rows.Int(0, 1));
    ASSIGN_OR_RETURN(int64_t found, rows.Int(0, 2));
    out.entry.ino = Unsigned(ino);
    ASSIGN_OR_RETURN(out.entry.type, StoredType(type, DentryRow(parent, name)));
    if (found != 0) {
      ASSIGN_OR_RETURN(InodeRecord inode, InodeAt(rows, 3, out.entry.ino));
      out.inode = std::move(inode);
    }
    return std::optional<NamedInode>(std::move(out));
  }

  Status PutDentry(const DentryRecord& entry) override {
    RETURN_IF_ERROR(CheckWritable("PutDentry"));
    return c_
        .Exec(
            "INSERT INTO fs_dentries (parent, name, ino, type) VALUES ($1::bigint, $2::bytea, "
            "$3::bigint, $4::bigint) ON CONFLICT (parent, name) DO UPDATE SET "
            "ino = EXCLUDED.ino, type = EXCLUDED.type",
            Params()
                .Int(Signed(entry.parent))
                .Bytes(entry.name)
                .Int(Signed(entry.ino))
                .Int(static_cast<int64_t>(entry.type)))
        .status();
  }

  Status DeleteDentry(uint64_t parent, std::string_view name) override {
    RETURN_IF_ERROR(CheckWritable("DeleteDentry"));
    return c_
        .Exec("DELETE FROM fs_dentries WHERE parent = $1::bigint AND name = $2::bytea",
              Params().Int(Signed(parent)).Bytes(name))
        .status();
  }

  Result<std::vector<DentryRecord>> ListDentries(uint64_t parent, std::string_view after,
                                                 uint32_t limit) override {
    std::vector<DentryRecord> out;
    if (limit == 0) return out;
    // bytea compares byte-wise, a shorter name first on a tie: the order the contract wants.
    ASSIGN_OR_RETURN(Rows rows, c_.Exec("SELECT name, ino, type FROM fs_dentries WHERE "
                                        "parent = $1::bigint AND name > $2::bytea ORDER BY name "
                                        "LIMIT $3::bigint",
                                        Params().Int(Signed(parent)).Bytes(after).Int(limit)));
    for (int i = 0; i < rows.size(); ++i) {
      DentryRecord entry;
      entry.parent = parent;
      entry.name = rows.Bytes(i, 0);
      ASSIGN_OR_RETURN(int64_t ino, rows.Int(i, 1));
      ASSIGN_OR_RETURN(int64_t type, rows.Int(i, 2));
      entry.ino = Unsigned(ino);
      ASSIGN_OR_RETURN(entry.type, StoredType(type, DentryRow(parent, entry.name)));
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
    ASSIGN_OR_RETURN(
        Rows rows,
        c_.Exec("SELECT oc.seq, oc.storage_class, oc.digest, oc.size_bytes, c.block_checksums, "
                "c.damaged_ms FROM owner_chunks AS oc LEFT JOIN chunks AS c ON "
                "c.storage_class = oc.storage_class AND c.digest = oc.digest WHERE "
                "oc.owner_kind = $1 AND oc.owner_id = $2 AND oc.seq >= $3::bigint AND "
                "oc.seq <= $4::bigint ORDER BY oc.seq",
                Params().Text(owner.kind).Text(owner.id).Int(Signed(first)).Int(Signed(last))));
    for (int i = 0; i < rows.size(); ++i) {
      BlockRecord block;
      ASSIGN_OR_RETURN(int64_t index, rows.Int(i, 0));
      block.index = Unsigned(index);
      ASSIGN_OR_RETURN(block.chunk.storage_class, rows.Class(i, 1));
      ASSIGN_OR_RETURN(block.chunk.chunk.digest, rows.Hash(i, 2));
      ASSIGN_OR_RETURN(int64_t size, rows.Int(i, 3));
      block.chunk.chunk.size_bytes = Unsigned(size);
      if (!rows.IsNull(i, 4)) block.chunk.chunk.block_checksums = rows.Bytes(i, 4);
      ASSIGN_OR_RETURN(block.chunk.chunk.damaged_ms, rows.Int(i, 5));
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
    return PostgresMetaStore::PutOwnerEntry(c_, Owner(ino), block.index, block.chunk, now_ms_);
  }

  Status DropBlocks(uint64_t ino, uint64_t first) override {
    RETURN_IF_ERROR(CheckWritable("DropBlocks"));
    if (first > kMaxSeq) return OkStatus();
    return PostgresMetaStore::DropOwnerEntries(c_, Owner(ino), first, kMaxSeq, now_ms_);
  }

  // ---- extended attributes ----
  Result<std::optional<std::string>> GetXattr(uint64_t ino, std::string_view name) override {
    ASSIGN_OR_RETURN(Rows rows, c_.Exec("SELECT value FROM fs_xattrs WHERE ino = $1::bigint AND "
                                        "name = $2::bytea",
                                        Params().Int(Signed(ino)).Bytes(name)));
    if (rows.empty()) return std::optional<std::string>();
    return std::optional<std::string>(rows.Bytes(0, 0));
  }

  Status PutXattr(uint64_t ino, std::string_view name, std::string_view value) override {
    RETURN_IF_ERROR(CheckWritable("PutXattr"));
    return c_
        .Exec(
            "INSERT INTO fs_xattrs (ino, name, value) VALUES ($1::bigint, $2::bytea, "
            "$3::bytea) ON CONFLICT (ino, name) DO UPDATE SET value = EXCLUDED.value",
            Params().Int(Signed(ino)).Bytes(name).Bytes(value))
        .status();
  }

  Status DeleteXattr(uint64_t ino, std::string_view name) override {
    RETURN_IF_ERROR(CheckWritable("DeleteXattr"));
    return c_
        .Exec("DELETE FROM fs_xattrs WHERE ino = $1::bigint AND name = $2::bytea",
              Params().Int(Signed(ino)).Bytes(name))
        .status();
  }

  Result<std::vector<std::string>> ListXattrs(uint64_t ino) override {
    std::vector<std::string> out;
    ASSIGN_OR_RETURN(Rows rows,
                     c_.Exec("SELECT name FROM fs_xattrs WHERE ino = $1::bigint ORDER BY name",
                             Params().Int(Signed(ino))));
    for (int i = 0; i < rows.size(); ++i) out.push_back(rows.Bytes(i, 0));
    return out;
  }

  // synchronous_commit off for this transaction only.
  Status Relax() { return c_.Exec("SET LOCAL synchronous_commit = off").status(); }

  Status SetOwnerChunks(const ChunkOwner& owner, const std::vector<OwnerChunk>& chunks) override {
    RETURN_IF_ERROR(CheckWritable("SetOwnerChunks"));
    RETURN_IF_ERROR(internal::CheckChunkOwner(owner));
    if (owner.kind == kFileOwnerKind) {
      return InvalidArgumentError("a file's blocks are set by PutBlock, not SetOwnerChunks");
    }
    return PostgresMetaStore::ReplaceOwnerChunks(c_, owner, chunks, now_ms_);
  }

  Status AddOwnerEntry(const ChunkOwner& owner, uint64_t seq, const OwnerChunk& chunk) override {
    RETURN_IF_ERROR(CheckWritable("AddOwnerEntry"));
    RETURN_IF_ERROR(internal::CheckGenericOwner(owner, "AddOwnerEntry"));
    return PostgresMetaStore::AddOwnerEntry(c_, owner, seq, chunk, now_ms_);
  }

  Status DropOwnerEntries(const ChunkOwner& owner, const std::vector<uint64_t>& seqs) override {
    RETURN_IF_ERROR(CheckWritable("DropOwnerEntries"));
    RETURN_IF_ERROR(internal::CheckGenericOwner(owner, "DropOwnerEntries"));
    for (uint64_t seq : seqs) {
      RETURN_IF_ERROR(PostgresMetaStore::DropOwnerEntries(c_, owner, seq, seq, now_ms_));
    }
    return OkStatus();
  }

  // ---- sessions, orphans, changes, locks ----
  Status PutSession(const SessionRecord& session) override {
    RETURN_IF_ERROR(CheckWritable("PutSession"));
    if (session.id == 0 || session.id > kMaxSeq) {
      return InvalidArgumentError("session id " + std::to_string(session.id) + " is not valid");
    }
    return c_
        .Exec(
            "INSERT INTO fs_sessions (id, host, host_key, pid, mount_point, version, "
            "read_only, started_ms, heartbeat_ms, expires_ms, seen_seq) VALUES ($1::bigint, $2, "
            "$3, $4::bigint, $5::bytea, $6, $7::boolean, $8::bigint, $9::bigint, $10::bigint, "
            "$11::bigint) "
            "ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, host_key = "
            "EXCLUDED.host_key, pid = EXCLUDED.pid, mount_point = EXCLUDED.mount_point, "
            "version = EXCLUDED.version, read_only = EXCLUDED.read_only, started_ms = "
            "EXCLUDED.started_ms, heartbeat_ms = EXCLUDED.heartbeat_ms, expires_ms = "
            "EXCLUDED.expires_ms, seen_seq = EXCLUDED.seen_seq",
            Params()
                .Int(Signed(session.id))
                .Text(session.host)
                .Text(session.host_key)
                .Int(session.pid)
                .Bytes(session.mount_point)
                .Text(session.version)
                .Text(session.read_only ? "true" : "false")
                .Int(session.started_ms)
                .Int(session.heartbeat_ms)
                .Int(session.expires_ms)
                .Int(Signed(session.seen_seq)))
        .status();
  }

  Status DeleteSession(uint64_t id) override {
    RETURN_IF_ERROR(CheckWritable("DeleteSession"));
    return c_.Exec("DELETE FROM fs_sessions WHERE id = $1::bigint", Params().Int(Signed(id)))
        .status();
  }

  Result<std::vector<SessionRecord>> ListSessions() override {
    std::vector<SessionRecord> out;
    ASSIGN_OR_RETURN(Rows rows, c_.Exec("SELECT id, host, host_key, pid, mount_point, version, "
                                        "read_only::int, started_ms, heartbeat_ms, expires_ms, "
                                        "seen_seq FROM fs_sessions ORDER BY id"));
    for (int i = 0; i < rows.size(); ++i) {
      SessionRecord session;
      ASSIGN_OR_RETURN(int64_t id, rows.Int(i, 0));
      session.id = Unsigned(id);
      session.host = rows.Text(i, 1);
      session.host_key = rows.Text(i, 2);
      ASSIGN_OR_RETURN(int64_t pid, rows.Int(i, 3));
      session.pid = static_cast<uint32_t>(pid);
      session.mount_point = rows.Bytes(i, 4);
      session.version = rows.Text(i, 5);
      ASSIGN_OR_RETURN(int64_t read_only, rows.Int(i, 6));
      session.read_only = read_only != 0;
      ASSIGN_OR_RETURN(session.started_ms, rows.Int(i, 7));
      ASSIGN_OR_RETURN(session.heartbeat_ms, rows.Int(i, 8));
      ASSIGN_OR_RETURN(session.expires_ms, rows.Int(i, 9));
      ASSIGN_OR_RETURN(int64_t seen_seq, rows.Int(i, 10));
      session.seen_seq = Unsigned(seen_seq);
      out.push_back(std::move(session));
    }
    return out;
  }

  Status PutOrphan(const OrphanRecord& orphan) override {
    RETURN_IF_ERROR(CheckWritable("PutOrphan"));
    return c_
        .Exec(
            "INSERT INTO fs_orphans (ino, session, since_seq) VALUES ($1::bigint, $2::bigint, "
            "$3::bigint) ON CONFLICT (ino) DO UPDATE SET session = EXCLUDED.session, "
            "since_seq = EXCLUDED.since_seq",
            Params()
                .Int(Signed(orphan.ino))
                .Int(Signed(orphan.session))
                .Int(Signed(orphan.since_seq)))
        .status();
  }

  Status DeleteOrphan(uint64_t ino) override {
    RETURN_IF_ERROR(CheckWritable("DeleteOrphan"));
    return c_.Exec("DELETE FROM fs_orphans WHERE ino = $1::bigint", Params().Int(Signed(ino)))
        .status();
  }

  Result<std::vector<OrphanRecord>> ListOrphans() override {
    std::vector<OrphanRecord> out;
    ASSIGN_OR_RETURN(Rows rows,
                     c_.Exec("SELECT ino, session, since_seq FROM fs_orphans ORDER BY ino"));
    for (int i = 0; i < rows.size(); ++i) {
      ASSIGN_OR_RETURN(int64_t ino, rows.Int(i, 0));
      ASSIGN_OR_RETURN(int64_t session, rows.Int(i, 1));
      ASSIGN_OR_RETURN(int64_t since_seq, rows.Int(i, 2));
      out.push_back(OrphanRecord{Unsigned(ino), Unsigned(session), Unsigned(since_seq)});
    }
    return out;
  }

  Result<uint64_t> AppendChange(const ChangeRecord& change) override {
    return AppendChanges({change});
  }

  // Up to kChangesPerInsert rows per INSERT: one round trip to the server instead of one a
  // row. The returned seqs need not come in VALUES order: the highest is the last.
  Result<uint64_t> AppendChanges(const std::vector<ChangeRecord>& changes) override {
    RETURN_IF_ERROR(CheckWritable("AppendChanges"));
    uint64_t last = 0;
    for (size_t first = 0; first < changes.size(); first += kChangesPerInsert) {
      const size_t count = std::min(kChangesPerInsert, changes.size() - first);
      Params params;
      for (size_t i = 0; i < count; ++i) {
        const ChangeRecord& change = changes[first + i];
        params.Int(Signed(change.session))
            .Int(Signed(change.ino))
            .Text(change.data ? "true" : "false")
            .Int(Signed(change.parent))
            .Bytes(change.name)
            .Int(now_ms_);
      }
      ASSIGN_OR_RETURN(Rows rows, c_.Exec(ChangesInsert(count), params));
      if (rows.size() != static_cast<int>(count)) {
        return InternalError("appending " + std::to_string(count) +
                             " rows to fs_changes returned " + std::to_string(rows.size()) +
                             " seqs");
      }
      for (int i = 0; i < rows.size(); ++i) {
        ASSIGN_OR_RETURN(int64_t seq, rows.Int(i, 0));
        last = std::max(last, Unsigned(seq));
      }
    }
    return last;
  }

  Result<std::vector<ChangeRecord>> ListChanges(uint64_t after, uint32_t limit) override {
    std::vector<ChangeRecord> out;
    if (limit == 0 || after >= kMaxSeq) return out;
    ASSIGN_OR_RETURN(Rows rows,
                     c_.Exec("SELECT seq, session, ino, data::int, parent, name, at_ms FROM "
                             "fs_changes WHERE seq > $1::bigint ORDER BY seq LIMIT $2::bigint",
                             Params().Int(Signed(after)).Int(limit)));
    for (int i = 0; i < rows.size(); ++i) {
      ChangeRecord change;
      ASSIGN_OR_RETURN(int64_t seq, rows.Int(i, 0));
      ASSIGN_OR_RETURN(int64_t session, rows.Int(i, 1));
      ASSIGN_OR_RETURN(int64_t ino, rows.Int(i, 2));
      ASSIGN_OR_RETURN(int64_t data, rows.Int(i, 3));
      ASSIGN_OR_RETURN(int64_t parent, rows.Int(i, 4));
      change.seq = Unsigned(seq);
      change.session = Unsigned(session);
      change.ino = Unsigned(ino);
      change.data = data != 0;
      change.parent = Unsigned(parent);
      change.name = rows.Bytes(i, 5);
      ASSIGN_OR_RETURN(change.at_ms, rows.Int(i, 6));
      out.push_back(std::move(change));
    }
    return out;
  }

  Result<uint64_t> LastChangeSeq() override {
    // The sequence, not max(seq): trimmed rows must not lower it. A sequence is read outside
    // the snapshot, so this may name a change still being committed; a mount that starts
    // there has cached nothing that change could make stale.
    ASSIGN_OR_RETURN(Rows rows, c_.Exec("SELECT CASE WHEN is_called THEN last_value ELSE 0 END "
                                        "FROM fs_change_seq"));
    if (rows.empty()) return uint64_t{0};
    ASSIGN_OR_RETURN(int64_t seq, rows.Int(0, 0));
    return Unsigned(seq);
  }

  Status TrimChanges(TimestampMs before_ms) override {
    RETURN_IF_ERROR(CheckWritable("TrimChanges"));
    return c_.Exec("DELETE FROM fs_changes WHERE at_ms < $1::bigint", Params().Int(before_ms))
        .status();
  }

  Result<std::vector<LockRecord>> ListLocks(uint64_t ino) override {
    std::vector<LockRecord> out;
    ASSIGN_OR_RETURN(Rows rows,
                     c_.Exec("SELECT session, owner, kind, start, end_incl, exclusive::int, pid "
                             "FROM fs_locks WHERE ino = $1::bigint ORDER BY session, owner, "
                             "kind, start",
                             Params().Int(Signed(ino))));
    for (int i = 0; i < rows.size(); ++i) {
      LockRecord lock;
      lock.ino = ino;
      ASSIGN_OR_RETURN(int64_t session, rows.Int(i, 0));
      ASSIGN_OR_RETURN(int64_t owner, rows.Int(i, 1));
      ASSIGN_OR_RETURN(int64_t kind, rows.Int(i, 2));
      ASSIGN_OR_RETURN(int64_t start, rows.Int(i, 3));
      ASSIGN_OR_RETURN(int64_t end, rows.Int(i, 4));
      ASSIGN_OR_RETURN(int64_t exclusive, rows.Int(i, 5));
      ASSIGN_OR_RETURN(int64_t pid, rows.Int(i, 6));
      if (kind != static_cast<int64_t>(LockKind::kPosix) &&
          kind != static_cast<int64_t>(LockKind::kFlock)) {
        return DataLossError("fs_locks row of inode " + std::to_string(ino) +
                             " is damaged: lock kind " + std::to_string(kind));
      }
      lock.session = Unsigned(session);
      lock.owner = Unsigned(owner);
      lock.kind = static_cast<LockKind>(kind);
      lock.start = Unsigned(start);
      lock.end = Unsigned(end);
      lock.exclusive = exclusive != 0;
      lock.pid = static_cast<uint32_t>(pid);
      out.push_back(lock);
    }
    return out;
  }

  Status SetLocks(uint64_t ino, uint64_t session, uint64_t owner, LockKind kind,
                  const std::vector<LockRecord>& locks) override {
    RETURN_IF_ERROR(CheckWritable("SetLocks"));
    RETURN_IF_ERROR(c_.Exec("DELETE FROM fs_locks WHERE ino = $1::bigint AND session = "
                            "$2::bigint AND owner = $3::bigint AND kind = $4::bigint",
                            Params()
                                .Int(Signed(ino))
                                .Int(Signed(session))
                                .Int(Signed(owner))
                                .Int(static_cast<int64_t>(kind)))
                        .status());
    for (const LockRecord& lock : locks) {
      RETURN_IF_ERROR(c_.Exec("INSERT INTO fs_locks (ino, session, owner, kind, start, end_incl, "
                              "exclusive, pid) VALUES ($1::bigint, $2::bigint, $3::bigint, "
                              "$4::bigint, $5::bigint, $6::bigint, $7::boolean, $8::bigint)",
                              Params()
                                  .Int(Signed(ino))
                                  .Int(Signed(session))
                                  .Int(Signed(owner))
                                  .Int(static_cast<int64_t>(kind))
                                  .Int(Signed(lock.start))
                                  .Int(Signed(lock.end))
                                  .Text(lock.exclusive ? "true" : "false")
                                  .Int(lock.pid))
                          .status());
    }
    return OkStatus();
  }

  Status DeleteSessionLocks(uint64_t session) override {
    RETURN_IF_ERROR(CheckWritable("DeleteSessionLocks"));
    return c_.Exec("DELETE FROM fs_locks WHERE session = $1::bigint", Params().Int(Signed(session)))
        .status();
  }

  // ---- usage ----
  Result<VolumeUsage> Usage() override {
    VolumeUsage usage;
    ASSIGN_OR_RETURN(Rows inodes,
                     c_.Exec("SELECT COUNT(*), COUNT(*) FILTER (WHERE type = $1::bigint), "
                             "COALESCE(SUM(size) FILTER (WHERE type = $1::bigint), 0)::bigint "
                             "FROM fs_inodes",
                             Params().Int(static_cast<int64_t>(FileType::kRegular))));
    if (inodes.empty()) return InternalError("counting the fs_inodes rows returned no row");
    ASSIGN_OR_RETURN(int64_t count, inodes.Int(0, 0));
    ASSIGN_OR_RETURN(int64_t files, inodes.Int(0, 1));
    ASSIGN_OR_RETURN(int64_t bytes, inodes.Int(0, 2));
    usage.inodes = Unsigned(count);
    usage.files = Unsigned(files);
    usage.file_bytes = Unsigned(bytes);
    // The owners "<uuid>:<ino>" sort between "<uuid>:" and "<uuid>;" (owner_id is COLLATE
    // "C", and ';' follows ':').
    ASSIGN_OR_RETURN(
        Rows chunks,
        c_.Exec(
            "SELECT COUNT(*), COALESCE(SUM(size), 0)::bigint FROM (SELECT MAX(size_bytes) AS size "
            "FROM owner_chunks WHERE owner_kind = $1 AND owner_id >= $2 AND owner_id < $3 "
            "GROUP BY storage_class, digest) AS distinct_chunks",
            Params().Text(kFileOwnerKind).Text(volume_.uuid + ":").Text(volume_.uuid + ";")));
    if (chunks.empty()) return InternalError("summing the volume's chunks returned no row");
    ASSIGN_OR_RETURN(int64_t distinct, chunks.Int(0, 0));
    ASSIGN_OR_RETURN(int64_t chunk_bytes, chunks.Int(0, 1));
    usage.chunks = Unsigned(distinct);
    usage.chunk_bytes = Unsigned(chunk_bytes);
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
  bool fresh_;           // volume_ was read in this transaction
  const bool writable_;
  const TimestampMs now_ms_;
};

// ---- FileTree -------------------------------------------------------------------------

// Two nodes formatting at once: the INSERT of the one row (id 1) makes the second wait for
// the first's commit and then fail on the key; it runs again (kAborted is not retried by
// Transact, so the loop is here) and finds the volume.
Result<VolumeRecord> PostgresMetaStore::FormatVolume(const VolumeRecord& requested,
                                                     const InodeRecord& root) {
  RETURN_IF_ERROR(internal::CheckVolumeRecord(requested));
  VolumeRecord volume;
  Status status;
  for (int attempt = 0; attempt < 2; ++attempt) {
    status = Write("format volume " + requested.name, [&](Connection& c) -> Status {
      ASSIGN_OR_RETURN(std::optional<VolumeRecord> existing, LoadVolume(c, /*lock=*/true));
      if (existing) {
        if (existing->name != requested.name) {
          return AlreadyExistsError("this metadata store holds volume '" + existing->name +
                                    "' already; it cannot also hold '" + requested.name + "'");
        }
        volume = *existing;
        return OkStatus();
      }
      ASSIGN_OR_RETURN(Rows inserted,
                       c.Exec("INSERT INTO fs_volume (id, name, uuid, created_ms, trash_days, "
                              "format_version, next_ino) VALUES (1, $1, $2, $3::bigint, "
                              "$4::bigint, $5::bigint, $6::bigint) ON CONFLICT (id) DO NOTHING",
                              Params()
                                  .Text(requested.name)
                                  .Text(requested.uuid)
                                  .Int(requested.created_ms)
                                  .Int(requested.trash_days)
                                  .Int(requested.format_version)
                                  .Int(Signed(kRootInode + 1))));
      if (inserted.Affected() == 0) return AbortedError("another node formatted meanwhile");
      InodeRecord row = root;
      row.ino = kRootInode;
      row.type = FileType::kDirectory;
      row.parent = kRootInode;
      RETURN_IF_ERROR(
          c.Exec("DELETE FROM fs_inodes WHERE ino = $1::bigint", Params().Int(Signed(kRootInode)))
              .status());
      RETURN_IF_ERROR(UpsertInode(c, row, 1).status());
      volume = requested;
      return OkStatus();
    });
    if (status.code() != StatusCode::kAborted) break;
  }
  if (!status.ok()) return status;
  return volume;
}

Result<std::optional<VolumeRecord>> PostgresMetaStore::GetVolume() {
  std::optional<VolumeRecord> volume;
  Status status = Read("get the volume", [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(volume, LoadVolume(c, /*lock=*/false));
    return OkStatus();
  });
  if (!status.ok()) return status;
  return volume;
}

// A read does not begin with the volume row once the store has seen it: every getattr and
// lookup of a mount is a read, and that row was one of its four round trips (BEGIN, the
// row, the read, COMMIT). The snapshot is the same: REPEATABLE READ takes it at the first
// statement, whichever it is. Until a volume has been seen each read loads the row, so
// nothing reads before FormatVolume.
Status PostgresMetaStore::Read(const std::function<Status(FileTreeTransaction&)>& body) {
  std::optional<VolumeRecord> known;
  {
    std::lock_guard lock(volume_mu_);
    known = known_volume_;
  }
  return Read("file tree read", [&](Connection& c) -> Status {
    if (known) {
      PostgresFileTreeTransaction transaction(c, *known, /*writable=*/false, 0, /*fresh=*/false);
      return body(transaction);
    }
    ASSIGN_OR_RETURN(std::optional<VolumeRecord> volume, LoadVolume(c, /*lock=*/false));
    if (!volume) return internal::NoVolumeError();
    {
      std::lock_guard lock(volume_mu_);
      known_volume_ = *volume;
    }
    PostgresFileTreeTransaction transaction(c, std::move(*volume), /*writable=*/false, 0);
    return body(transaction);
  });
}

Status PostgresMetaStore::WriteRelaxed(const std::function<Status(FileTreeTransaction&)>& body,
                                       TimestampMs now_ms) {
  return Write(
      [&](FileTreeTransaction& tx) -> Status {
        // This transaction's commit returns before its WAL is flushed; a later durable
        // commit (Sync) flushes the WAL up to itself, this one included.
        RETURN_IF_ERROR(static_cast<PostgresFileTreeTransaction&>(tx).Relax());
        return body(tx);
      },
      now_ms);
}

// A commit that has a transaction id writes a commit record and, with synchronous_commit on,
// waits until the WAL is flushed up to it: every earlier commit is then durable too.
Status PostgresMetaStore::Sync() {
  return Write("file tree sync",
               [&](Connection& c) -> Status { return c.Exec("SELECT txid_current()").status(); });
}

Status PostgresMetaStore::Write(const std::function<Status(FileTreeTransaction&)>& body,
                                TimestampMs now_ms) {
  return Write("file tree write", [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(std::optional<VolumeRecord> volume, LoadVolume(c, /*lock=*/true));
    if (!volume) return internal::NoVolumeError();
    PostgresFileTreeTransaction transaction(c, std::move(*volume), /*writable=*/true, now_ms);
    t_writing_store = this;
    Status status = body(transaction);
    t_writing_store = nullptr;
    return status;
  });
}

}  // namespace cairn::meta::postgres_internal
