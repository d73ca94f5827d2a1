#include "meta/sqlite/sqlite_meta_store.h"

#include "platform/space_reserve.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <iterator>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "meta/encoding.h"
#include "meta/meta_checks.h"
#include "meta/row_decoding.h"
#include "meta/sqlite/sqlite_internal.h"
#include "meta/sqlite/wal_batching_vfs.h"

namespace cairn::meta::sqlite_internal {

using internal::DecodeMetadata;
using internal::DecodeTenants;
using internal::EncodeMetadata;
using internal::EncodeTenants;

using internal::CheckApiKey;
using internal::CheckChunkOwner;
using internal::CheckChunkTotal;
using internal::CheckListRequest;
using internal::CheckNamespaceSetting;
using internal::CheckPutCommitted;
using internal::CheckSequence;
using internal::CheckUserMetadata;
using internal::NameTakenError;
using internal::PrefixSuccessor;

// ---- schema ---------------------------------------------------------------------------
//
// kMigrations[i] moves the schema from version i to i + 1. Released steps are never edited:
// a schema change is a new step appended at the end.
//
// Notes on version 1:
//  - Ids and digests are BLOBs (16 and 32 bytes). Keys are TEXT with the default BINARY
//    collation, which compares with memcmp: byte-wise order, as the contract wants. Every
//    key comparison binds TEXT, never BLOB (SQLite orders all TEXT before all BLOB).
//  - objects_committed_key is both the "one COMMITTED object per key" rule and the listing
//    index: a page is a range scan on (tenant, namespace, key). Queries must spell
//    state = 'COMMITTED' literally for the planner to use the partial index.
//  - object_chunks rows outlive a DELETING object's references (GetChunks answers for it
//    during the grace period); they go with the object row (ON DELETE CASCADE).
//  - chunks has no foreign key to object_chunks: an object may name a digest whose chunk
//    row is gone (damage that fsck reports), and object_chunks does not store the class.
constexpr const char* kMigrations[] = {
    // 0 -> 1: initial schema.
    R"sql(
CREATE TABLE objects (
  id            BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
  tenant        TEXT NOT NULL,
  namespace     TEXT NOT NULL,
  key           TEXT NOT NULL,
  state         TEXT NOT NULL CHECK (state IN ('WRITING', 'COMMITTED', 'DELETING')),
  storage_class TEXT NOT NULL CHECK (storage_class IN ('hot', 'cold')),
  size_bytes    INTEGER NOT NULL,
  content_hash  BLOB NOT NULL,
  etag          TEXT NOT NULL,
  content_type  TEXT NOT NULL,
  user_metadata TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  inline_data   BLOB
);
CREATE UNIQUE INDEX objects_committed_key ON objects (tenant, namespace, key)
  WHERE state = 'COMMITTED';
CREATE INDEX objects_state_updated ON objects (state, updated_at_ms, id);

CREATE TABLE object_chunks (
  object_id  BLOB NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
  seq        INTEGER NOT NULL,
  digest     BLOB NOT NULL,
  size_bytes INTEGER NOT NULL,
  PRIMARY KEY (object_id, seq)
) WITHOUT ROWID;
CREATE INDEX object_chunks_digest ON object_chunks (digest);

CREATE TABLE chunks (
  storage_class TEXT NOT NULL CHECK (storage_class IN ('hot', 'cold')),
  digest        BLOB NOT NULL,
  size_bytes    INTEGER NOT NULL,
  ref_count     INTEGER NOT NULL,
  zero_since_ms INTEGER NOT NULL,
  PRIMARY KEY (storage_class, digest)
) WITHOUT ROWID;
CREATE INDEX chunks_gc ON chunks (zero_since_ms, storage_class, digest) WHERE ref_count = 0;

CREATE TABLE api_keys (
  key_id        TEXT PRIMARY KEY NOT NULL,
  secret_hash   BLOB NOT NULL,
  tenants       TEXT NOT NULL,
  scope         TEXT NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
  created_at_ms INTEGER NOT NULL,
  revoked       INTEGER NOT NULL,
  description   TEXT NOT NULL
);
)sql",
    // Version 2: a one-row table that readiness probes write, so /ready proves the
    // database can still commit (disk full, read-only file, I/O errors).
    R"sql(
CREATE TABLE readiness_probe (
  id           INTEGER PRIMARY KEY CHECK (id = 1),
  probed_at_ms INTEGER NOT NULL
);
)sql",
    // Version 3: explicit namespaces (S3 buckets created empty) and S3 access keys.
    R"sql(
CREATE TABLE namespaces (
  tenant        TEXT NOT NULL,
  name          TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  PRIMARY KEY (tenant, name)
);
CREATE TABLE s3_keys (
  access_key    TEXT PRIMARY KEY,
  secret        TEXT NOT NULL,
  tenants       TEXT NOT NULL,
  scope         TEXT NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
  created_at_ms INTEGER NOT NULL,
  revoked       INTEGER NOT NULL,
  description   TEXT NOT NULL
);
)sql",
    // Version 4: per-chunk block checksums that reads verify (NULL: stored before they were
    // kept; reads then verify the SHA-256), and the time a chunk was found damaged.
    R"sql(
ALTER TABLE chunks ADD COLUMN block_checksums BLOB;
ALTER TABLE chunks ADD COLUMN damaged_ms INTEGER NOT NULL DEFAULT 0;
)sql",
    // Version 5: store identity, the UUID that the storage roots carry too
    // (gc/store_identity.h), so a node never takes another store's chunk files, or all of
    // them, for orphans. One row.
    R"sql(
CREATE TABLE store_identity (
  id            INTEGER PRIMARY KEY CHECK (id = 1),
  store_id      TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL
);
)sql",
    // Version 6: per-namespace settings for the S3 API (canned ACL, policy, CORS, tags),
    // opaque text by setting name. A namespace with settings always has a namespaces row,
    // and DeleteNamespace removes both in one transaction.
    R"sql(
CREATE TABLE namespace_settings (
  tenant    TEXT NOT NULL,
  namespace TEXT NOT NULL,
  name      TEXT NOT NULL,
  value     TEXT NOT NULL,
  PRIMARY KEY (tenant, namespace, name)
);
)sql",
    // Version 7: S3 bucket names are global among explicit namespaces; requests from other
    // tenants and anonymous ones find a bucket's owner by its name.
    R"sql(
CREATE INDEX namespaces_by_name ON namespaces (name, tenant);
)sql",
    // Version 8: chunk references held by owners other than objects (files of a filesystem
    // front end, ...): each row is one reference, counted in chunks.ref_count like an
    // object_chunks row of a live object. An entry names its own storage class, so the
    // owner can read the chunk back. The index answers GC's guard, fsck's "which owners
    // use this chunk" and the recount.
    R"sql(
CREATE TABLE owner_chunks (
  owner_kind    TEXT NOT NULL,
  owner_id      TEXT NOT NULL,
  seq           INTEGER NOT NULL,
  storage_class TEXT NOT NULL CHECK (storage_class IN ('hot', 'cold')),
  digest        BLOB NOT NULL,
  size_bytes    INTEGER NOT NULL,
  PRIMARY KEY (owner_kind, owner_id, seq)
) WITHOUT ROWID;
CREATE INDEX owner_chunks_chunk ON owner_chunks (storage_class, digest);
)sql",
    // Version 9: the filesystem volume (meta/file_tree.h, sqlite_file_tree.cc). One volume
    // per database: fs_volume has one row (id 1), with the next inode number to hand out.
    // Unsigned numbers are stored as their int64 bit patterns. Names, symlink targets and
    // xattrs are BLOBs, so any bytes are kept and ordered by memcmp (readdir pages by
    // name). A file's blocks are owner_chunks rows (kind 'file', seq = block index). Types
    // have no CHECK: a damaged number is reported by the reader, naming the row.
    R"sql(
CREATE TABLE fs_volume (
  id             INTEGER PRIMARY KEY CHECK (id = 1),
  name           TEXT NOT NULL,
  uuid           TEXT NOT NULL,
  created_ms     INTEGER NOT NULL,
  trash_days     INTEGER NOT NULL,
  format_version INTEGER NOT NULL,
  next_ino       INTEGER NOT NULL
);
CREATE TABLE fs_inodes (
  ino            INTEGER PRIMARY KEY,
  type           INTEGER NOT NULL,
  mode           INTEGER NOT NULL,
  uid            INTEGER NOT NULL,
  gid            INTEGER NOT NULL,
  nlink          INTEGER NOT NULL,
  size           INTEGER NOT NULL,
  atime_ns       INTEGER NOT NULL,
  mtime_ns       INTEGER NOT NULL,
  ctime_ns       INTEGER NOT NULL,
  btime_ns       INTEGER NOT NULL,
  rdev           INTEGER NOT NULL,
  parent         INTEGER NOT NULL,
  symlink_target BLOB NOT NULL,
  change         INTEGER NOT NULL
);
CREATE TABLE fs_dentries (
  parent INTEGER NOT NULL,
  name   BLOB NOT NULL,
  ino    INTEGER NOT NULL,
  type   INTEGER NOT NULL,
  PRIMARY KEY (parent, name)
) WITHOUT ROWID;
CREATE TABLE fs_xattrs (
  ino   INTEGER NOT NULL,
  name  BLOB NOT NULL,
  value BLOB NOT NULL,
  PRIMARY KEY (ino, name)
) WITHOUT ROWID;
)sql",
    // Version 10: the mounts of the volume (fs_sessions, renewed by heartbeats), inodes
    // unlinked while a session held them open (fs_orphans), the change feed other mounts
    // invalidate their kernel caches from (fs_changes: AUTOINCREMENT, so a seq is never
    // handed out twice, also after the rows are trimmed) and byte-range and flock locks
    // (fs_locks, `end` inclusive).
    R"sql(
CREATE TABLE fs_sessions (
  id           INTEGER PRIMARY KEY,
  host         TEXT NOT NULL,
  host_key     TEXT NOT NULL,
  pid          INTEGER NOT NULL,
  mount_point  BLOB NOT NULL,
  version      TEXT NOT NULL,
  read_only    INTEGER NOT NULL,
  started_ms   INTEGER NOT NULL,
  heartbeat_ms INTEGER NOT NULL,
  expires_ms   INTEGER NOT NULL
);
CREATE TABLE fs_orphans (
  ino     INTEGER PRIMARY KEY,
  session INTEGER NOT NULL
);
CREATE TABLE fs_changes (
  seq     INTEGER PRIMARY KEY AUTOINCREMENT,
  session INTEGER NOT NULL,
  ino     INTEGER NOT NULL,
  data    INTEGER NOT NULL,
  parent  INTEGER NOT NULL,
  name    BLOB NOT NULL,
  at_ms   INTEGER NOT NULL
);
CREATE INDEX fs_changes_at ON fs_changes (at_ms);
CREATE TABLE fs_locks (
  ino       INTEGER NOT NULL,
  session   INTEGER NOT NULL,
  owner     INTEGER NOT NULL,
  kind      INTEGER NOT NULL,
  start     INTEGER NOT NULL,
  end_incl  INTEGER NOT NULL,
  exclusive INTEGER NOT NULL,
  pid       INTEGER NOT NULL,
  PRIMARY KEY (ino, session, owner, kind, start)
) WITHOUT ROWID;
CREATE INDEX fs_locks_session ON fs_locks (session);
)sql",
    // Version 11: kept usage counters per (tenant, namespace, class) of COMMITTED objects,
    // so that usage, bucket lists and the store's totals do not count a million rows.
    // Triggers on objects keep them in the same transaction as the row change, whatever
    // method made it; a group whose count reaches zero is dropped, so first_created_ms is
    // the oldest creation time among the objects it held since it last became non-empty
    // (the creation time of a namespace that exists only through its objects). fsck
    // recounts and compares (CheckUsageCounters); --repair rewrites them.
    R"sql(
CREATE TABLE usage_counters (
  tenant           TEXT NOT NULL,
  namespace        TEXT NOT NULL,
  storage_class    TEXT NOT NULL,
  objects          INTEGER NOT NULL,
  logical_bytes    INTEGER NOT NULL,
  inline_bytes     INTEGER NOT NULL,
  first_created_ms INTEGER NOT NULL,
  PRIMARY KEY (tenant, namespace, storage_class)
) WITHOUT ROWID;
CREATE TRIGGER usage_counters_insert AFTER INSERT ON objects WHEN NEW.state = 'COMMITTED'
BEGIN
  INSERT INTO usage_counters VALUES (NEW.tenant, NEW.namespace, NEW.storage_class, 1,
    NEW.size_bytes, COALESCE(length(NEW.inline_data), 0), NEW.created_at_ms)
  ON CONFLICT DO UPDATE SET objects = objects + 1,
    logical_bytes = logical_bytes + excluded.logical_bytes,
    inline_bytes = inline_bytes + excluded.inline_bytes,
    first_created_ms = MIN(first_created_ms, excluded.first_created_ms);
END;
CREATE TRIGGER usage_counters_delete AFTER DELETE ON objects WHEN OLD.state = 'COMMITTED'
BEGIN
  UPDATE usage_counters SET objects = objects - 1,
    logical_bytes = logical_bytes - OLD.size_bytes,
    inline_bytes = inline_bytes - COALESCE(length(OLD.inline_data), 0)
  WHERE tenant = OLD.tenant AND namespace = OLD.namespace AND storage_class = OLD.storage_class;
  DELETE FROM usage_counters WHERE tenant = OLD.tenant AND namespace = OLD.namespace
    AND storage_class = OLD.storage_class AND objects = 0;
END;
CREATE TRIGGER usage_counters_update
AFTER UPDATE OF tenant, namespace, state, storage_class, size_bytes, inline_data, created_at_ms
ON objects WHEN OLD.state = 'COMMITTED' OR NEW.state = 'COMMITTED'
BEGIN
  UPDATE usage_counters SET objects = objects - 1,
    logical_bytes = logical_bytes - OLD.size_bytes,
    inline_bytes = inline_bytes - COALESCE(length(OLD.inline_data), 0)
  WHERE OLD.state = 'COMMITTED' AND tenant = OLD.tenant AND namespace = OLD.namespace
    AND storage_class = OLD.storage_class;
  INSERT INTO usage_counters SELECT NEW.tenant, NEW.namespace, NEW.storage_class, 1,
    NEW.size_bytes, COALESCE(length(NEW.inline_data), 0), NEW.created_at_ms
  WHERE NEW.state = 'COMMITTED'
  ON CONFLICT DO UPDATE SET objects = objects + 1,
    logical_bytes = logical_bytes + excluded.logical_bytes,
    inline_bytes = inline_bytes + excluded.inline_bytes,
    first_created_ms = MIN(first_created_ms, excluded.first_created_ms);
  DELETE FROM usage_counters WHERE tenant = OLD.tenant AND namespace = OLD.namespace
    AND storage_class = OLD.storage_class AND objects = 0;
END;
INSERT INTO usage_counters
  SELECT tenant, namespace, storage_class, COUNT(*), SUM(size_bytes),
    SUM(COALESCE(length(inline_data), 0)), MIN(created_at_ms)
  FROM objects WHERE state = 'COMMITTED' GROUP BY tenant, namespace, storage_class;
)sql",
    // Version 12: fs_changes loses AUTOINCREMENT and its at_ms index. Every write of the
    // filesystem appends to it, and those two cost two more B-tree pages (sqlite_sequence
    // and the index's leaf) in every such commit: about a tenth of an unlink. A seq is
    // still never handed out twice: SQLite gives MAX(seq) + 1, and TrimChanges always keeps
    // the newest row, so the maximum never goes back. The newest seq of a trimmed-empty
    // table comes over as a row that names nothing (ino 0, parent 0: readers skip it).
    R"sql(
CREATE TABLE fs_changes_v12 (
  seq     INTEGER PRIMARY KEY,
  session INTEGER NOT NULL,
  ino     INTEGER NOT NULL,
  data    INTEGER NOT NULL,
  parent  INTEGER NOT NULL,
  name    BLOB NOT NULL,
  at_ms   INTEGER NOT NULL
);
INSERT INTO fs_changes_v12 SELECT seq, session, ino, data, parent, name, at_ms FROM fs_changes;
INSERT INTO fs_changes_v12 (seq, session, ino, data, parent, name, at_ms)
  SELECT seq, 0, 0, 0, 0, x'', 0 FROM sqlite_sequence
  WHERE name = 'fs_changes' AND seq > (SELECT COALESCE(MAX(seq), 0) FROM fs_changes);
DROP TABLE fs_changes;
ALTER TABLE fs_changes_v12 RENAME TO fs_changes;
)sql",
    // Version 13: a file unlinked on one mount while another may hold it open. An orphan
    // row of session 0 is pending: since_seq is the change seq of its last commit, and it is
    // deleted once every live session has applied the feed up to there (seen_seq) without
    // claiming it.
    R"sql(
ALTER TABLE fs_sessions ADD COLUMN seen_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE fs_orphans ADD COLUMN since_seq INTEGER NOT NULL DEFAULT 0;
)sql",
};
constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

// The reference rule, one statement shape for every owner kind: `refs` is a SELECT of
// (storage_class, digest, n), the references one owner holds per chunk (?1 and ?2 name the
// owner), and each chunk's count drops by its n; ?3 is now_ms, the zero time of a count
// that reaches zero.
#define CAIRN_DROP_REFERENCES(refs)                                          \
  "UPDATE chunks SET ref_count = chunks.ref_count - r.n, "                   \
  "zero_since_ms = CASE WHEN chunks.ref_count - r.n = 0 THEN ?3 ELSE 0 END " \
  "FROM (" refs                                                              \
  ") AS r "                                                                  \
  "WHERE chunks.storage_class = r.storage_class AND chunks.digest = r.digest"
// The references of one object (?1 its id, ?2 its class) and of one owner (?1 kind, ?2 id).
#define CAIRN_OBJECT_REFERENCES                                                                \
  "SELECT ?2 AS storage_class, digest, COUNT(*) AS n FROM object_chunks WHERE object_id = ?1 " \
  "GROUP BY digest"
#define CAIRN_OWNER_REFERENCES                                     \
  "SELECT storage_class, digest, COUNT(*) AS n FROM owner_chunks " \
  "WHERE owner_kind = ?1 AND owner_id = ?2 GROUP BY storage_class, digest"
// Live references per chunk from both kinds of holder: (storage_class, digest, n,
// size_bytes, committed, owners).
#define CAIRN_LIVE_REFERENCES                                                             \
  "SELECT storage_class, digest, COUNT(*) AS n, MAX(size_bytes) AS size_bytes, "          \
  "       SUM(committed) AS committed, SUM(owned) AS owners FROM ("                       \
  "  SELECT o.storage_class AS storage_class, oc.digest AS digest, "                      \
  "         oc.size_bytes AS size_bytes, o.state = 'COMMITTED' AS committed, 0 AS owned " \
  "  FROM object_chunks AS oc JOIN objects AS o ON o.id = oc.object_id "                  \
  "  WHERE o.state IN ('WRITING', 'COMMITTED') "                                          \
  "  UNION ALL "                                                                          \
  "  SELECT storage_class, digest, size_bytes, 0, 1 FROM owner_chunks) "                  \
  "GROUP BY storage_class, digest"

// Column order read by ReadObject.
#define CAIRN_OBJECT_COLUMNS                                                           \
  "id, tenant, namespace, key, state, storage_class, size_bytes, content_hash, etag, " \
  "content_type, user_metadata, created_at_ms, updated_at_ms, inline_data"
// The same positions for listings, which skip the two potentially large columns.
#define CAIRN_LIST_COLUMNS                                                             \
  "id, tenant, namespace, key, state, storage_class, size_bytes, content_hash, etag, " \
  "content_type, NULL, created_at_ms, updated_at_ms, NULL"

// ---- connection and statements --------------------------------------------------------

Status OpenError(int rc, const std::string& path, const std::string& detail) {
  switch (rc & 0xff) {
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_AUTH:
      return UnavailableError("cannot open metadata database " + path + ": " + detail);
    default:
      return InternalError("cannot open metadata database " + path + ": " + detail);
  }
}

Result<bool> Statement::Step() {
  if (bind_error_ != SQLITE_OK) return conn_->Error(bind_error_);
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return conn_->Error(rc);
}

Status Statement::Run() {
  while (true) {
    Result<bool> row = Step();
    if (!row.ok() || !*row) {
      Reset();
      return row.ok() ? OkStatus() : row.status();
    }
  }
}

// SQLite counts every allocation it makes under one process-wide mutex unless told not
// to; the event-loop threads then queue on it for each point read. Nothing here reads
// those counters. Only possible before SQLite initializes, hence once, before any open;
// should something else have initialized it first, the counting simply stays on.
void DisableMemoryStatistics() {
  static std::once_flag once;
  std::call_once(once, [] { (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
}

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& path, bool writer,
                                                     int busy_timeout_ms) {
  DisableMemoryStatistics();
  sqlite3* db = nullptr;
  // Each connection is used by one thread at a time (writer mutex or reader pool), so
  // SQLite's own per-connection mutex is redundant.
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_CREATE : 0);
  // WAL frames reach the file in one write per commit (wal_batching_vfs.h).
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, WalBatchingVfs());
  if (rc != SQLITE_OK) {
    std::string detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return OpenError(rc, path, detail);
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, busy_timeout_ms);
  std::unique_ptr<Connection> conn(new Connection(db, path));

  if (writer) {
    // A new database gets 2 KiB pages (an existing one keeps its size: the pragma only acts
    // before the first table). A commit writes each page it changed whole into the WAL,
    // checksummed, and a filesystem operation changes five or six pages of one row each:
    // half the page halves those bytes. An unlink costs about a fifth less and a create a
    // sixth; object PUTs and listings measured the same (docs/performance.md).
    RETURN_IF_ERROR(conn->Script("PRAGMA page_size = 2048"));
    // WAL lets readers proceed during a write; FULL syncs the WAL at every commit, so a
    // committed transaction survives power loss, not just a process crash.
    {
      ASSIGN_OR_RETURN(Statement stmt, conn->Prepare("PRAGMA journal_mode = WAL"));
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row || stmt.ColumnText(0) != "wal") {
        return InternalError("metadata database " + path + " refused WAL mode");
      }
    }
    RETURN_IF_ERROR(conn->Script("PRAGMA synchronous = FULL"));
    RETURN_IF_ERROR(conn->Script("PRAGMA foreign_keys = ON"));
  } else {
    RETURN_IF_ERROR(conn->Script("PRAGMA query_only = ON"));
  }
  return conn;
}

// ---- encodings ------------------------------------------------------------------------

// A statement's current row as the shared row decoders (meta/row_decoding.h) read it.
class SqliteRow {
 public:
  explicit SqliteRow(const Statement& stmt) : stmt_(stmt) {}
  bool IsNull(int column) const { return stmt_.IsNull(column); }
  std::string Text(int column) const { return stmt_.ColumnText(column); }
  std::string Bytes(int column) const { return stmt_.ColumnBlob(column); }
  Result<int64_t> Int(int column) const { return stmt_.ColumnInt(column); }
  Result<Digest> Hash(int column) const { return stmt_.ColumnDigest(column); }
  Result<StorageClass> Class(int column) const { return stmt_.ColumnClass(column); }
  Result<ObjectId> Id(int column) const { return stmt_.ColumnId(column); }

 private:
  const Statement& stmt_;
};

Result<ObjectRecord> ReadObject(const Statement& stmt) { return DecodeObjectRow(SqliteRow(stmt)); }
Result<ChunkRecord> ReadChunk(const Statement& stmt) { return DecodeChunkRow(SqliteRow(stmt)); }
Result<ApiKeyRecord> ReadApiKey(const Statement& stmt) { return DecodeApiKeyRow(SqliteRow(stmt)); }
Result<S3KeyRecord> ReadS3Key(const Statement& stmt) { return DecodeS3KeyRow(SqliteRow(stmt)); }

// ---- the engine -----------------------------------------------------------------------

// Each thread that reads gets a reader connection of its own, remembered here by the
// serial number of its store (never reused, so a destroyed store's entry is never used).
struct ThreadReader {
  uint64_t store_serial = 0;
  Connection* connection = nullptr;
};
constexpr size_t kThreadReaderSlots = 4;
static thread_local std::array<ThreadReader, kThreadReaderSlots> t_readers;
static std::atomic<uint64_t> g_next_store_serial{1};
uint64_t SqliteMetaStore::NextStoreSerial() { return g_next_store_serial.fetch_add(1); }

Connection* SqliteMetaStore::ThreadReaderConnection() {
  for (ThreadReader& slot : t_readers) {
    if (slot.store_serial == serial_) return slot.connection;
  }
  Connection* opened = nullptr;
  {
    std::lock_guard lock(readers_mu_);
    if (thread_readers_.size() < kMaxThreadReaders) {
      Result<std::unique_ptr<Connection>> conn =
          Connection::Open(path_, /*writer=*/false, busy_timeout_ms_);
      if (conn.ok()) {
        (*conn)->FinishOpening();
        (*conn)->set_thread_owned();
        opened = conn->get();
        thread_readers_.push_back(std::move(conn).value());
      }
    }
  }
  // The slot of the oldest store (lowest serial) makes room; a thread rarely reads
  // from more than one live store.
  ThreadReader* victim = &t_readers[0];
  for (ThreadReader& slot : t_readers) {
    if (slot.store_serial < victim->store_serial) victim = &slot;
  }
  victim->store_serial = serial_;
  victim->connection = opened;
  return opened;
}

// ---- write helpers --------------------------------------------------------------------

Status SqliteMetaStore::InsertObject(Connection& c, const ObjectRecord& r, ObjectState state) {
  ASSIGN_OR_RETURN(std::string metadata, EncodeMetadata(r.user_metadata));
  ASSIGN_OR_RETURN(Statement stmt,
                   c.Prepare("INSERT INTO objects (" CAIRN_OBJECT_COLUMNS
                             ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
                             "?14)"));
  stmt.Id(1, r.id)
      .Text(2, r.tenant)
      .Text(3, r.namespace_name)
      .Text(4, r.key)
      .Text(5, ObjectStateName(state))
      .Class(6, r.storage_class)
      .Int(7, static_cast<int64_t>(r.size_bytes))
      .Hash(8, r.content_hash)
      .Text(9, r.etag)
      .Text(10, r.content_type)
      .Text(11, metadata)
      .Int(12, r.created_at_ms)
      .Int(13, r.updated_at_ms);
  if (r.inline_data) {
    stmt.Blob(14, *r.inline_data);
  } else {
    stmt.Null(14);
  }
  return stmt.Run();
}

// zero_since_ms follows the rule shared with the model: now_ms when the count becomes zero,
// 0 whenever it is non-zero.
Status SqliteMetaStore::TakeReference(Connection& c, StorageClass storage_class,
                                      const ChunkRef& chunk, TimestampMs now_ms) {
  ASSIGN_OR_RETURN(
      Statement stmt,
      c.Prepare("INSERT INTO chunks (storage_class, digest, size_bytes, ref_count, zero_since_ms, "
                "block_checksums) "
                "VALUES (?1, ?2, ?3, 1, 0, ?5) ON CONFLICT (storage_class, digest) DO UPDATE SET "
                "ref_count = ref_count + 1, "
                "zero_since_ms = CASE WHEN ref_count + 1 = 0 THEN ?4 ELSE 0 END, "
                "block_checksums = COALESCE(block_checksums, excluded.block_checksums)"));
  stmt.Class(1, storage_class)
      .Hash(2, chunk.digest)
      .Int(3, static_cast<int64_t>(chunk.size_bytes))
      .Int(4, now_ms);
  if (chunk.block_checksums.empty()) {
    stmt.Null(5);
  } else {
    stmt.Blob(5, chunk.block_checksums);
  }
  return stmt.Run();
}

// One statement for the whole object: each distinct digest is decremented by the number
// of times the object names it.
Status SqliteMetaStore::DropReferences(Connection& c, const ObjectId& id,
                                       StorageClass storage_class, TimestampMs now_ms) {
  ASSIGN_OR_RETURN(Statement stmt, c.Prepare(CAIRN_DROP_REFERENCES(CAIRN_OBJECT_REFERENCES)));
  return stmt.Id(1, id).Class(2, storage_class).Int(3, now_ms).Run();
}

// The same for a generic owner, whose entries name their own classes.
Status SqliteMetaStore::DropReferences(Connection& c, const ChunkOwner& owner, TimestampMs now_ms) {
  ASSIGN_OR_RETURN(Statement stmt, c.Prepare(CAIRN_DROP_REFERENCES(CAIRN_OWNER_REFERENCES)));
  return stmt.Text(1, owner.kind).Text(2, owner.id).Int(3, now_ms).Run();
}

// Drops the owner's references and rows, then records `chunks` and takes their references
// (the order of an object replaced at its key: old references first).
Status SqliteMetaStore::ReplaceOwnerChunks(Connection& c, const ChunkOwner& owner,
                                           const std::vector<OwnerChunk>& chunks,
                                           TimestampMs now_ms) {
  RETURN_IF_ERROR(DropReferences(c, owner, now_ms));
  {
    ASSIGN_OR_RETURN(Statement stmt, c.Prepare("DELETE FROM owner_chunks WHERE owner_kind = ?1 "
                                               "AND owner_id = ?2"));
    RETURN_IF_ERROR(stmt.Text(1, owner.kind).Text(2, owner.id).Run());
  }
  ASSIGN_OR_RETURN(Statement insert,
                   c.Prepare("INSERT INTO owner_chunks (owner_kind, owner_id, seq, storage_class, "
                             "digest, size_bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
  for (size_t i = 0; i < chunks.size(); ++i) {
    const OwnerChunk& entry = chunks[i];
    RETURN_IF_ERROR(insert.Text(1, owner.kind)
                        .Text(2, owner.id)
                        .Int(3, static_cast<int64_t>(i))
                        .Class(4, entry.storage_class)
                        .Hash(5, entry.chunk.digest)
                        .Int(6, static_cast<int64_t>(entry.chunk.size_bytes))
                        .Run());
    RETURN_IF_ERROR(TakeReference(c, entry.storage_class, entry.chunk, now_ms));
  }
  return OkStatus();
}

namespace {

// Inserts the owner's entry `seq` (no reference); `on_conflict` ends the statement.
Status InsertOwnerEntry(Connection& c, const ChunkOwner& owner, uint64_t seq,
                        const OwnerChunk& entry, std::string_view on_conflict = "") {
  ASSIGN_OR_RETURN(Statement stmt,
                   c.Prepare("INSERT INTO owner_chunks (owner_kind, owner_id, seq, storage_class, "
                             "digest, size_bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6)" +
                             std::string(on_conflict)));
  return stmt.Text(1, owner.kind)
      .Text(2, owner.id)
      .Int(3, static_cast<int64_t>(seq))
      .Class(4, entry.storage_class)
      .Hash(5, entry.chunk.digest)
      .Int(6, static_cast<int64_t>(entry.chunk.size_bytes))
      .Run();
}

}  // namespace

// One entry of an owner, as the file tree's block rows need: the new reference is taken
// before the old one is dropped.
Status SqliteMetaStore::PutOwnerEntry(Connection& c, const ChunkOwner& owner, uint64_t seq,
                                      const OwnerChunk& entry, TimestampMs now_ms) {
  RETURN_IF_ERROR(TakeReference(c, entry.storage_class, entry.chunk, now_ms));
  // Most entries are new (a file's blocks as it is written): then the insert is all.
  RETURN_IF_ERROR(InsertOwnerEntry(c, owner, seq, entry,
                                   " ON CONFLICT (owner_kind, owner_id, seq) DO NOTHING"));
  if (c.Changes() == 1) return OkStatus();
  RETURN_IF_ERROR(DropOwnerEntries(c, owner, seq, seq, now_ms));
  return InsertOwnerEntry(c, owner, seq, entry);
}

Status SqliteMetaStore::AddOwnerEntry(Connection& c, const ChunkOwner& owner, uint64_t seq,
                                      const OwnerChunk& entry, TimestampMs now_ms) {
  RETURN_IF_ERROR(InsertOwnerEntry(c, owner, seq, entry));
  return TakeReference(c, entry.storage_class, entry.chunk, now_ms);
}

// The reference rule of DropReferences for the owner's entries in a range of seq (?4..?5).
Status SqliteMetaStore::DropOwnerEntries(Connection& c, const ChunkOwner& owner, uint64_t first,
                                         uint64_t last, TimestampMs now_ms) {
  {
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare(CAIRN_DROP_REFERENCES(
                         "SELECT storage_class, digest, COUNT(*) AS n FROM owner_chunks "
                         "WHERE owner_kind = ?1 AND owner_id = ?2 AND seq >= ?4 AND seq <= ?5 "
                         "GROUP BY storage_class, digest")));
    RETURN_IF_ERROR(stmt.Text(1, owner.kind)
                        .Text(2, owner.id)
                        .Int(3, now_ms)
                        .Int(4, static_cast<int64_t>(first))
                        .Int(5, static_cast<int64_t>(last))
                        .Run());
  }
  ASSIGN_OR_RETURN(Statement stmt,
                   c.Prepare("DELETE FROM owner_chunks WHERE owner_kind = ?1 AND owner_id = ?2 "
                             "AND seq >= ?3 AND seq <= ?4"));
  return stmt.Text(1, owner.kind)
      .Text(2, owner.id)
      .Int(3, static_cast<int64_t>(first))
      .Int(4, static_cast<int64_t>(last))
      .Run();
}

Status SqliteMetaStore::MarkDeleting(Connection& c, const ObjectId& id, StorageClass storage_class,
                                     TimestampMs now_ms) {
  RETURN_IF_ERROR(DropReferences(c, id, storage_class, now_ms));
  ASSIGN_OR_RETURN(
      Statement stmt,
      c.Prepare("UPDATE objects SET state = 'DELETING', updated_at_ms = ?2 WHERE id = ?1"));
  return stmt.Id(1, id).Int(2, now_ms).Run();
}

Result<std::optional<ObjectId>> SqliteMetaStore::RetireObjectAtKey(Connection& c,
                                                                   const ObjectRecord& r,
                                                                   TimestampMs now_ms) {
  ObjectId old_id;
  StorageClass old_class;
  {
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("SELECT id, storage_class FROM objects WHERE tenant = ?1 AND "
                               "namespace = ?2 AND key = ?3 AND state = 'COMMITTED'"));
    stmt.Text(1, r.tenant).Text(2, r.namespace_name).Text(3, r.key);
    ASSIGN_OR_RETURN(bool found, stmt.Step());
    if (!found) return std::optional<ObjectId>();
    ASSIGN_OR_RETURN(old_id, stmt.ColumnId(0));
    ASSIGN_OR_RETURN(old_class, stmt.ColumnClass(1));
  }
  RETURN_IF_ERROR(MarkDeleting(c, old_id, old_class, now_ms));
  return std::optional<ObjectId>(old_id);
}

Result<std::optional<ObjectRecord>> SqliteMetaStore::FindWriting(Connection& c,
                                                                 const ObjectId& id) {
  ASSIGN_OR_RETURN(Statement stmt, c.Prepare("SELECT " CAIRN_OBJECT_COLUMNS
                                             " FROM objects WHERE id = ?1 AND state = 'WRITING'"));
  stmt.Id(1, id);
  ASSIGN_OR_RETURN(bool found, stmt.Step());
  if (!found) return std::optional<ObjectRecord>();
  ASSIGN_OR_RETURN(ObjectRecord record, ReadObject(stmt));
  return std::optional<ObjectRecord>(std::move(record));
}

// ---- methods --------------------------------------------------------------------------

Status SqliteMetaStore::Ping() {
  return Write("readiness probe", [](Connection& c) {
    return c.Run(
        "INSERT OR REPLACE INTO readiness_probe (id, probed_at_ms) "
        "VALUES (1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))");
  });
}

Result<std::optional<std::string>> SqliteMetaStore::GetStoreIdentity() {
  std::optional<std::string> id;
  Status status = Read("read the store identity", [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Statement stmt, c.Prepare("SELECT store_id FROM store_identity WHERE id = 1"));
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (row) id = stmt.ColumnText(0);
    return OkStatus();
  });
  if (!status.ok()) return status;
  return id;
}

Result<std::string> SqliteMetaStore::SetStoreIdentityIfAbsent(const std::string& id) {
  if (id.empty()) return InvalidArgumentError("a store identity must not be empty");
  std::string recorded;
  Status status = Write("set the store identity to " + id, [&](Connection& c) -> Status {
    {
      ASSIGN_OR_RETURN(
          Statement stmt,
          c.Prepare("INSERT OR IGNORE INTO store_identity (id, store_id, created_at_ms) "
                    "VALUES (1, ?1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))"));
      RETURN_IF_ERROR(stmt.Text(1, id).Run());
    }
    ASSIGN_OR_RETURN(Statement stmt, c.Prepare("SELECT store_id FROM store_identity WHERE id = 1"));
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return InternalError("the store identity row vanished");
    recorded = stmt.ColumnText(0);
    return OkStatus();
  });
  if (!status.ok()) return status;
  return recorded;
}

Result<uint64_t> SqliteMetaStore::CountChunks() {
  uint64_t count = 0;
  Status status = Read("count chunks", [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Statement stmt, c.Prepare("SELECT COUNT(*) FROM chunks"));
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (row) count = static_cast<uint64_t>(stmt.ColumnInt(0));
    return OkStatus();
  });
  if (!status.ok()) return status;
  return count;
}

Result<std::vector<std::string>> SqliteMetaStore::CheckIntegrity() {
  std::vector<std::string> problems;
  Status status = Read("check integrity", [&](Connection& c) -> Status {
    {
      ASSIGN_OR_RETURN(Statement stmt, c.Prepare("PRAGMA user_version"));
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      const int64_t version = row ? stmt.ColumnInt(0) : 0;
      if (version != kSchemaVersion) {
        problems.push_back("metadata database " + c.path() + " has schema version " +
                           std::to_string(version) + ", expected " +
                           std::to_string(kSchemaVersion));
      }
    }
    // Reads every page of every table and index: damage a query would only meet when it
    // touches the page (a lost or torn page, a bad index) shows up here.
    ASSIGN_OR_RETURN(Statement stmt, c.Prepare("PRAGMA integrity_check(100)"));
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      std::string line = stmt.ColumnText(0);
      if (line != "ok") problems.push_back("metadata database " + c.path() + ": " + line);
    }
    return OkStatus();
  });
  // A database too damaged to even run the check is the worst finding, not a failed check.
  if (!status.ok()) problems.push_back("metadata integrity check failed: " + status.ToString());
  return problems;
}

Status SqliteMetaStore::BeginUpload(const ObjectRecord& object) {
  RETURN_IF_ERROR(CheckUserMetadata(object));
  return Write("begin upload " + object.id.ToString(), [&](Connection& c) -> Status {
    {
      ASSIGN_OR_RETURN(Statement stmt, c.Prepare("SELECT 1 FROM objects WHERE id = ?1"));
      ASSIGN_OR_RETURN(bool taken, stmt.Id(1, object.id).Step());
      if (taken) {
        return AlreadyExistsError("object id " + object.id.ToString() + " is already taken");
      }
    }
    return InsertObject(c, object, ObjectState::kWriting);
  });
}

Status SqliteMetaStore::AddChunk(const ObjectId& id, uint32_t sequence, const ChunkRef& chunk,
                                 TimestampMs now_ms) {
  const std::string context =
      "add chunk " + std::to_string(sequence) + " to object " + id.ToString();
  // Not durable on its own: CommitUpload's durable commit covers it, and checks that no
  // chunk went missing.
  auto add = [&](Connection& c) -> Status {
    StorageClass storage_class;
    {
      ASSIGN_OR_RETURN(Statement stmt, c.Prepare("SELECT storage_class FROM objects "
                                                 "WHERE id = ?1 AND state = 'WRITING'"));
      ASSIGN_OR_RETURN(bool found, stmt.Id(1, id).Step());
      if (!found) return NotWritingError(id);
      ASSIGN_OR_RETURN(storage_class, stmt.ColumnClass(0));
    }
    {
      // MAX over the primary key is one index probe, unlike COUNT(*), which matters for
      // objects with thousands of chunks.
      ASSIGN_OR_RETURN(Statement stmt,
                       c.Prepare("SELECT COALESCE(MAX(seq) + 1, 0) FROM object_chunks "
                                 "WHERE object_id = ?1"));
      ASSIGN_OR_RETURN(bool row, stmt.Id(1, id).Step());
      const int64_t expected = row ? stmt.ColumnInt(0) : 0;
      RETURN_IF_ERROR(CheckSequence(id, sequence, static_cast<uint64_t>(expected)));
    }
    {
      ASSIGN_OR_RETURN(Statement stmt,
                       c.Prepare("INSERT INTO object_chunks (object_id, seq, digest, size_bytes) "
                                 "VALUES (?1, ?2, ?3, ?4)"));
      RETURN_IF_ERROR(stmt.Id(1, id)
                          .Int(2, sequence)
                          .Hash(3, chunk.digest)
                          .Int(4, static_cast<int64_t>(chunk.size_bytes))
                          .Run());
    }
    {
      ASSIGN_OR_RETURN(Statement stmt,
                       c.Prepare("UPDATE objects SET updated_at_ms = ?2 WHERE id = ?1"));
      RETURN_IF_ERROR(stmt.Id(1, id).Int(2, now_ms).Run());
    }
    return TakeReference(c, storage_class, chunk, now_ms);
  };
  return Write(context, add, /*durable=*/false);
  ;
}

Result<CommitResult> SqliteMetaStore::CommitUpload(const ObjectId& id,
                                                   const ObjectRecord& final_fields,
                                                   TimestampMs now_ms) {
  ObjectRecord checked = final_fields;
  checked.id = id;
  RETURN_IF_ERROR(CheckUserMetadata(checked));
  ASSIGN_OR_RETURN(std::string metadata, EncodeMetadata(final_fields.user_metadata));
  CommitResult result;
  Status status = Write("commit upload " + id.ToString(), [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(std::optional<ObjectRecord> found, FindWriting(c, id));
    if (!found) return NotWritingError(id);
    ObjectRecord& record = *found;
    {
      ASSIGN_OR_RETURN(Statement stmt,
                       c.Prepare("SELECT COALESCE(SUM(size_bytes), 0) FROM object_chunks "
                                 "WHERE object_id = ?1"));
      ASSIGN_OR_RETURN(bool row, stmt.Id(1, id).Step());
      const int64_t recorded = row ? stmt.ColumnInt(0) : 0;
      RETURN_IF_ERROR(
          CheckChunkTotal(id, static_cast<uint64_t>(recorded), final_fields.size_bytes));
    }
    // The old object leaves the key before this one takes it (the unique index is checked
    // per statement).
    ASSIGN_OR_RETURN(result.replaced_object, RetireObjectAtKey(c, record, now_ms));
    record.state = ObjectState::kCommitted;
    record.size_bytes = final_fields.size_bytes;
    record.content_hash = final_fields.content_hash;
    record.etag = final_fields.etag;
    record.content_type = final_fields.content_type;
    record.user_metadata = final_fields.user_metadata;
    record.updated_at_ms = now_ms;
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("UPDATE objects SET state = 'COMMITTED', size_bytes = ?2, "
                               "content_hash = ?3, etag = ?4, content_type = ?5, "
                               "user_metadata = ?6, updated_at_ms = ?7 WHERE id = ?1"));
    RETURN_IF_ERROR(stmt.Id(1, id)
                        .Int(2, static_cast<int64_t>(record.size_bytes))
                        .Hash(3, record.content_hash)
                        .Text(4, record.etag)
                        .Text(5, record.content_type)
                        .Text(6, metadata)
                        .Int(7, now_ms)
                        .Run());
    result.object = std::move(record);
    return OkStatus();
  });
  if (!status.ok()) return status;
  return result;
}

// The body of PutCommitted, inside a write transaction.
Status SqliteMetaStore::PutCommittedIn(Connection& c, const ObjectRecord& object,
                                       const std::vector<ChunkRef>& chunks, TimestampMs now_ms,
                                       CommitResult* result) {
  {
    ASSIGN_OR_RETURN(Statement stmt, c.Prepare("SELECT 1 FROM objects WHERE id = ?1"));
    ASSIGN_OR_RETURN(bool taken, stmt.Id(1, object.id).Step());
    if (taken) return AlreadyExistsError("object id " + object.id.ToString() + " is already taken");
  }
  ASSIGN_OR_RETURN(result->replaced_object, RetireObjectAtKey(c, object, now_ms));
  ObjectRecord record = object;
  record.state = ObjectState::kCommitted;
  record.updated_at_ms = now_ms;
  RETURN_IF_ERROR(InsertObject(c, record, ObjectState::kCommitted));
  ASSIGN_OR_RETURN(Statement insert_chunk,
                   c.Prepare("INSERT INTO object_chunks (object_id, seq, digest, size_bytes) "
                             "VALUES (?1, ?2, ?3, ?4)"));
  for (size_t i = 0; i < chunks.size(); ++i) {
    RETURN_IF_ERROR(insert_chunk.Id(1, record.id)
                        .Int(2, static_cast<int64_t>(i))
                        .Hash(3, chunks[i].digest)
                        .Int(4, static_cast<int64_t>(chunks[i].size_bytes))
                        .Run());
    RETURN_IF_ERROR(TakeReference(c, record.storage_class, chunks[i], now_ms));
  }
  result->object = std::move(record);
  return OkStatus();
}

Result<CommitResult> SqliteMetaStore::PutCommitted(const ObjectRecord& object,
                                                   const std::vector<ChunkRef>& chunks,
                                                   TimestampMs now_ms) {
  RETURN_IF_ERROR(CheckPutCommitted(object, chunks));
  CommitResult result;
  Status status = Write("put object " + object.id.ToString(), [&](Connection& c) -> Status {
    return PutCommittedIn(c, object, chunks, now_ms, &result);
  });
  if (!status.ok()) return status;
  return result;
}

namespace {

// The first column of every row the statement gives, as text.
Result<std::vector<std::string>> FirstColumnTexts(Statement& stmt) {
  std::vector<std::string> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return out;
    out.push_back(stmt.ColumnText(0));
  }
}

// An asynchronous PutCommitted: the queued write and everything it needs after the caller
// has moved on.
struct AsyncPut {
  ObjectRecord object;
  TimestampMs now_ms = 0;
  CommitResult result;
  std::function<void(Result<CommitResult>)> done;
};

}  // namespace

bool SqliteMetaStore::PutCommittedAsync(ObjectRecord&& object, TimestampMs now_ms,
                                        std::function<void(Result<CommitResult>)> done) {
  // An invalid record takes the synchronous path, which reports why.
  if (!CheckPutCommitted(object, {}).ok()) return false;
  if (reserve_released_.load(std::memory_order_relaxed)) return false;  // Write says why
  std::unique_lock lock(queue_mu_);
  if (stopping_ || async_writes_ >= kMaxAsyncWrites) return false;
  if (!committer_.joinable()) committer_ = std::thread([this] { CommitLoop(); });
  auto put = std::make_shared<AsyncPut>();
  put->object = std::move(object);
  put->now_ms = now_ms;
  put->done = std::move(done);
  auto* pending = new PendingWrite;
  pending->fn = [put](Connection& c) {
    return PutCommittedIn(c, put->object, {}, put->now_ms, &put->result);
  };
  pending->finish = [put](PendingWrite* write) {
    std::unique_ptr<PendingWrite> owned(write);
    if (write->result.ok()) {
      put->done(std::move(put->result));
      return;
    }
    // The context is only built for a failure: this runs once per small PUT.
    put->done(
        AnnotateStorageError(std::move(write->result), "put object " + put->object.id.ToString()));
  };
  queue_.push_back(pending);
  ++async_writes_;
  if (!leader_active_) committer_wake_.notify_one();
  return true;
}

Result<CommitResult> SqliteMetaStore::PutCommittedAndDelete(
    const ObjectRecord& object, const std::vector<ChunkRef>& chunks,
    const std::vector<ObjectId>& also_delete, TimestampMs now_ms) {
  RETURN_IF_ERROR(CheckPutCommitted(object, chunks));
  CommitResult result;
  // An id listed twice is retired once (as in every engine).
  const std::set<ObjectId> retire(also_delete.begin(), also_delete.end());
  Status status = Write("compose object " + object.id.ToString(), [&](Connection& c) -> Status {
    for (const ObjectId& id : retire) {
      StorageClass storage_class;
      {
        ASSIGN_OR_RETURN(Statement stmt,
                         c.Prepare("SELECT storage_class FROM objects WHERE id = ?1 "
                                   "AND state = 'COMMITTED' AND tenant = ?2"));
        ASSIGN_OR_RETURN(bool found, stmt.Id(1, id).Text(2, object.tenant).Step());
        if (!found) return NoSuchObjectError(id);
        ASSIGN_OR_RETURN(storage_class, stmt.ColumnClass(0));
      }
      RETURN_IF_ERROR(MarkDeleting(c, id, storage_class, now_ms));
    }
    return PutCommittedIn(c, object, chunks, now_ms, &result);
  });
  if (!status.ok()) return status;
  return result;
}

Status SqliteMetaStore::AbortUpload(const ObjectId& id, TimestampMs now_ms) {
  return FreeingWrite("abort upload " + id.ToString(), [&](Connection& c) -> Status {
    StorageClass storage_class;
    {
      ASSIGN_OR_RETURN(Statement stmt, c.Prepare("SELECT storage_class FROM objects "
                                                 "WHERE id = ?1 AND state = 'WRITING'"));
      ASSIGN_OR_RETURN(bool found, stmt.Id(1, id).Step());
      if (!found) return NotWritingError(id);
      ASSIGN_OR_RETURN(storage_class, stmt.ColumnClass(0));
    }
    RETURN_IF_ERROR(DropReferences(c, id, storage_class, now_ms));
    ASSIGN_OR_RETURN(Statement stmt, c.Prepare("DELETE FROM objects WHERE id = ?1"));
    return stmt.Id(1, id).Run();  // object_chunks rows go by ON DELETE CASCADE
  });
}

Result<ObjectRecord> SqliteMetaStore::GetObject(const std::string& tenant, const ObjectId& id) {
  ObjectRecord record;
  Status status = Read("get object " + id.ToString(), [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("SELECT " CAIRN_OBJECT_COLUMNS " FROM objects WHERE id = ?1 AND "
                               "state = 'COMMITTED' AND tenant = ?2"));
    ASSIGN_OR_RETURN(bool found, stmt.Id(1, id).Text(2, tenant).Step());
    if (!found) return NoSuchObjectError(id);
    ASSIGN_OR_RETURN(record, ReadObject(stmt));
    return OkStatus();
  });
  if (!status.ok()) return status;
  return record;
}

Result<ObjectRecord> SqliteMetaStore::GetObjectByKey(const std::string& tenant,
                                                     const std::string& namespace_name,
                                                     const std::string& key) {
  ObjectRecord record;
  Status status =
      Read("get object by key in namespace " + namespace_name, [&](Connection& c) -> Status {
        ASSIGN_OR_RETURN(Statement stmt,
                         c.Prepare("SELECT " CAIRN_OBJECT_COLUMNS
                                   " FROM objects WHERE tenant = ?1 AND namespace = ?2 AND "
                                   "key = ?3 AND state = 'COMMITTED'"));
        ASSIGN_OR_RETURN(bool found,
                         stmt.Text(1, tenant).Text(2, namespace_name).Text(3, key).Step());
        if (!found) {
          return NotFoundError("no object at key '" + key + "' in namespace " + namespace_name);
        }
        ASSIGN_OR_RETURN(record, ReadObject(stmt));
        return OkStatus();
      });
  if (!status.ok()) return status;
  return record;
}

Result<std::vector<ChunkRef>> SqliteMetaStore::GetChunks(const ObjectId& id) {
  std::vector<ChunkRef> chunks;
  Status status = Read("get chunks of object " + id.ToString(), [&](Connection& c) -> Status {
    {
      ASSIGN_OR_RETURN(Statement stmt, c.Prepare("SELECT 1 FROM objects WHERE id = ?1"));
      ASSIGN_OR_RETURN(bool found, stmt.Id(1, id).Step());
      if (!found) return NoSuchObjectError(id);
    }
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("SELECT oc.digest, oc.size_bytes, c.block_checksums, c.damaged_ms "
                               "FROM object_chunks AS oc JOIN objects AS o ON o.id = oc.object_id "
                               "LEFT JOIN chunks AS c ON c.storage_class = o.storage_class AND "
                               "c.digest = oc.digest WHERE oc.object_id = ?1 ORDER BY oc.seq"));
    stmt.Id(1, id);
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      ChunkRef chunk;
      ASSIGN_OR_RETURN(chunk.digest, stmt.ColumnDigest(0));
      chunk.size_bytes = static_cast<uint64_t>(stmt.ColumnInt(1));
      if (!stmt.IsNull(2)) chunk.block_checksums = stmt.ColumnBlob(2);
      chunk.damaged_ms = stmt.ColumnInt(3);
      chunks.push_back(std::move(chunk));
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return chunks;
}

// Keyset pagination on objects_committed_key: the page is the index range
//   (tenant, namespace, lower) .. (tenant, namespace, prefix successor)
// with one bound picked in C++ (a second lower bound would only be a filter, and
// "key > ''" with a far-away prefix would scan from the start of the namespace).
// Keyset pagination on objects_committed_key: each statement is one index range
//   (tenant, namespace, lower) .. (tenant, namespace, prefix successor)
// stepped lazily, so a statement costs one seek plus the rows actually read. With a
// delimiter, a key that rolls up into a common prefix ends the statement and the next one
// seeks to the successor of that common prefix: the keys under it are never read.
Status ListOn(Connection& c, const ListRequest& request, ListPage* page,
              std::vector<StatementPlan>* plans) {
  *page = ListPage();
  const std::string upper = PrefixSuccessor(request.prefix);
  bool exclusive = request.start_after >= request.prefix;
  std::string lower = exclusive ? request.start_after : request.prefix;
  uint32_t entries = 0;
  // Bounded: every pass but the last adds a common prefix, and entries <= limit.
  while (true) {
    std::string sql = "SELECT " CAIRN_LIST_COLUMNS
                      " FROM objects WHERE tenant = ?1 AND namespace = ?2 AND state = 'COMMITTED'";
    sql += exclusive ? " AND key > ?3" : " AND key >= ?3";
    if (!upper.empty()) sql += " AND key < ?4";
    sql += " ORDER BY key LIMIT ?5";
    auto bind = [&](Statement& stmt) {
      stmt.Text(1, request.tenant).Text(2, request.namespace_name).Text(3, lower);
      if (!upper.empty()) stmt.Text(4, upper);
      stmt.Int(5, static_cast<int64_t>(request.limit - entries) + 1);  // +1 tells "truncated"
    };
    if (plans != nullptr &&
        std::none_of(plans->begin(), plans->end(),
                     [&](const StatementPlan& known) { return known.sql == sql; })) {
      ASSIGN_OR_RETURN(Statement explain, c.Prepare("EXPLAIN QUERY PLAN " + sql));
      bind(explain);
      StatementPlan plan{sql, ""};
      while (true) {
        ASSIGN_OR_RETURN(bool row, explain.Step());
        if (!row) break;
        plan.plan += explain.ColumnText(3) + "\n";
      }
      plans->push_back(std::move(plan));
    }
    ASSIGN_OR_RETURN(Statement stmt, c.Prepare(sql));
    bind(stmt);
    std::optional<std::string> seek;
    while (!seek) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) return OkStatus();
      if (entries == request.limit) {
        page->truncated = true;
        return OkStatus();
      }
      ++entries;
      std::string key = stmt.ColumnText(3);
      const size_t common =
          internal::CommonPrefixLength(key, request.prefix.size(), request.delimiter);
      if (common == std::string::npos) {
        ASSIGN_OR_RETURN(ObjectRecord record, ReadObject(stmt));
        page->objects.push_back(std::move(record));
        continue;
      }
      key.resize(common);
      seek = PrefixSuccessor(key);
      page->common_prefixes.push_back(std::move(key));
    }
    if (seek->empty()) return OkStatus();  // the common prefix is all 0xff bytes
    lower = std::move(*seek);
    exclusive = false;
  }
}

Result<ListPage> SqliteMetaStore::ListObjects(const ListRequest& request) {
  RETURN_IF_ERROR(CheckListRequest(request));
  ListPage page;
  Status status = Read("list namespace " + request.namespace_name,
                       [&](Connection& c) -> Status { return ListOn(c, request, &page, nullptr); });
  if (!status.ok()) return status;
  return page;
}

Result<std::vector<StatementPlan>> SqliteMetaStore::ExplainList(const ListRequest& request) {
  RETURN_IF_ERROR(CheckListRequest(request));
  std::vector<StatementPlan> plans;
  ListPage page;
  Status status = Read("explain listing of " + request.namespace_name, [&](Connection& c) {
    plans.clear();
    return ListOn(c, request, &page, &plans);
  });
  if (!status.ok()) return status;
  return plans;
}

Result<ObjectRecord> SqliteMetaStore::DeleteObject(const std::string& tenant, const ObjectId& id,
                                                   TimestampMs now_ms) {
  ObjectRecord before;
  Status status = FreeingWrite("delete object " + id.ToString(), [&](Connection& c) -> Status {
    {
      ASSIGN_OR_RETURN(Statement stmt,
                       c.Prepare("SELECT " CAIRN_OBJECT_COLUMNS " FROM objects WHERE id = ?1 "
                                 "AND state = 'COMMITTED' AND tenant = ?2"));
      ASSIGN_OR_RETURN(bool found, stmt.Id(1, id).Text(2, tenant).Step());
      if (!found) return NoSuchObjectError(id);
      ASSIGN_OR_RETURN(before, ReadObject(stmt));
    }
    return MarkDeleting(c, id, before.storage_class, now_ms);
  });
  if (!status.ok()) return status;
  return before;
}

Result<std::vector<UsageRow>> SqliteMetaStore::Usage(const std::string& tenant) {
  std::vector<UsageRow> rows;
  Status status = Read("usage of tenant " + tenant, [&](Connection& c) -> Status {
    std::map<std::pair<std::string, std::string>, size_t> index;  // (namespace, class) -> row
    {
      ASSIGN_OR_RETURN(
          Statement stmt,
          c.Prepare("SELECT namespace, storage_class, objects, logical_bytes, inline_bytes "
                    "FROM usage_counters WHERE tenant = ?1 ORDER BY namespace, storage_class"));
      stmt.Text(1, tenant);
      while (true) {
        ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        UsageRow usage;
        usage.namespace_name = stmt.ColumnText(0);
        ASSIGN_OR_RETURN(usage.storage_class, stmt.ColumnClass(1));
        // Damaged counters may have gone negative: a figure is never below zero.
        usage.objects = static_cast<uint64_t>(std::max<int64_t>(stmt.ColumnInt(2), 0));
        usage.logical_bytes = static_cast<uint64_t>(std::max<int64_t>(stmt.ColumnInt(3), 0));
        usage.physical_bytes = static_cast<uint64_t>(std::max<int64_t>(stmt.ColumnInt(4), 0));
        index[{usage.namespace_name, stmt.ColumnText(1)}] = rows.size();
        rows.push_back(std::move(usage));
      }
    }
    // Each distinct digest counts once per (namespace, class), however many objects share
    // it; MAX keeps one size per digest even if damaged rows disagree.
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("SELECT namespace, storage_class, SUM(size) FROM ("
                               "SELECT o.namespace AS namespace, o.storage_class AS storage_class, "
                               "MAX(oc.size_bytes) AS size FROM objects AS o "
                               "JOIN object_chunks AS oc ON oc.object_id = o.id "
                               "WHERE o.tenant = ?1 AND o.state = 'COMMITTED' "
                               "GROUP BY o.namespace, o.storage_class, oc.digest) "
                               "GROUP BY namespace, storage_class"));
    stmt.Text(1, tenant);
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      ASSIGN_OR_RETURN(StorageClass storage_class, stmt.ColumnClass(1));
      internal::AddUsagePhysicalBytes(rows, index, stmt.ColumnText(0), storage_class,
                                      stmt.ColumnInt(2));
    }
    internal::SortUsageRows(rows);
    return OkStatus();
  });
  if (!status.ok()) return status;
  return rows;
}

namespace {

// The counters kept (usage_counters) or recounted from the object rows, in key order.
constexpr const char* kKeptUsageCounters =
    "SELECT tenant, namespace, storage_class, objects, logical_bytes, inline_bytes "
    "FROM usage_counters";
constexpr const char* kRecountedUsageCounters =
    "SELECT tenant, namespace, storage_class, COUNT(*), SUM(size_bytes), "
    "SUM(COALESCE(length(inline_data), 0)) FROM objects WHERE state = 'COMMITTED' "
    "GROUP BY tenant, namespace, storage_class";

Result<std::vector<UsageCounterRow>> ReadUsageCounters(Connection& c, const char* sql) {
  ASSIGN_OR_RETURN(Statement stmt, c.Prepare(sql));
  std::vector<UsageCounterRow> rows;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    UsageCounterRow counter;
    counter.tenant = stmt.ColumnText(0);
    counter.namespace_name = stmt.ColumnText(1);
    ASSIGN_OR_RETURN(counter.storage_class, stmt.ColumnClass(2));
    counter.objects = stmt.ColumnInt(3);
    counter.logical_bytes = stmt.ColumnInt(4);
    counter.inline_bytes = stmt.ColumnInt(5);
    rows.push_back(std::move(counter));
  }
  return rows;
}

}  // namespace

Result<std::vector<UsageCounterRow>> SqliteMetaStore::UsageCounts(const std::string& tenant) {
  std::vector<UsageCounterRow> rows;
  Status status = Read("usage counts of tenant " + tenant, [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("SELECT tenant, namespace, storage_class, objects, logical_bytes, "
                               "inline_bytes FROM usage_counters WHERE tenant = ?1 "
                               "ORDER BY namespace, storage_class"));
    stmt.Text(1, tenant);
    rows.clear();
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      UsageCounterRow counter;
      counter.tenant = stmt.ColumnText(0);
      counter.namespace_name = stmt.ColumnText(1);
      ASSIGN_OR_RETURN(counter.storage_class, stmt.ColumnClass(2));
      counter.objects = stmt.ColumnInt(3);
      counter.logical_bytes = stmt.ColumnInt(4);
      counter.inline_bytes = stmt.ColumnInt(5);
      rows.push_back(std::move(counter));
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return rows;
}

Result<std::vector<std::string>> SqliteMetaStore::CheckUsageCounters() {
  std::vector<std::string> lines;
  Status status = Read("check usage counters", [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(auto kept, ReadUsageCounters(c, kKeptUsageCounters));
    ASSIGN_OR_RETURN(auto counted, ReadUsageCounters(c, kRecountedUsageCounters));
    lines = internal::CompareUsageCounters(kept, counted);
    return OkStatus();
  });
  if (!status.ok()) return status;
  return lines;
}

Result<uint64_t> SqliteMetaStore::RepairUsageCounters() {
  uint64_t changed = 0;
  Status status = Write("repair usage counters", [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(auto kept, ReadUsageCounters(c, kKeptUsageCounters));
    ASSIGN_OR_RETURN(auto counted, ReadUsageCounters(c, kRecountedUsageCounters));
    changed = internal::CompareUsageCounters(kept, counted).size();
    if (changed == 0) return OkStatus();
    RETURN_IF_ERROR(c.Script(
        "DELETE FROM usage_counters; "
        "INSERT INTO usage_counters SELECT tenant, namespace, storage_class, COUNT(*), "
        "SUM(size_bytes), SUM(COALESCE(length(inline_data), 0)), MIN(created_at_ms) "
        "FROM objects WHERE state = 'COMMITTED' GROUP BY tenant, namespace, storage_class;"));
    return OkStatus();
  });
  if (!status.ok()) return status;
  return changed;
}

Result<std::vector<ObjectCountRow>> SqliteMetaStore::CountObjects() {
  std::vector<ObjectCountRow> rows;
  Status status = Read("count objects", [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("SELECT tenant, namespace, state, SUM(n) FROM ("
                               "SELECT tenant, namespace, 'COMMITTED' AS state, objects AS n "
                               "FROM usage_counters UNION ALL "
                               "SELECT tenant, namespace, state, 1 FROM objects "
                               "WHERE state IN ('WRITING', 'DELETING')) "
                               "GROUP BY tenant, namespace, state "
                               "ORDER BY tenant, namespace, state"));
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      ObjectCountRow count;
      count.tenant = stmt.ColumnText(0);
      count.namespace_name = stmt.ColumnText(1);
      Result<ObjectState> state = ParseObjectState(stmt.ColumnText(2));
      if (!state.ok()) return InternalError("stored object state invalid");
      count.state = *state;
      count.objects = static_cast<uint64_t>(stmt.ColumnInt(3));
      rows.push_back(std::move(count));
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return rows;
}

Result<std::vector<StorageBytesRow>> SqliteMetaStore::StorageBytes() {
  std::vector<StorageBytesRow> rows;
  Status status = Read("storage bytes", [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("SELECT storage_class, namespace, SUM(logical_bytes), "
                               "SUM(inline_bytes) FROM usage_counters "
                               "GROUP BY storage_class, namespace "
                               "ORDER BY storage_class, namespace"));
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      StorageBytesRow bytes;
      ASSIGN_OR_RETURN(bytes.storage_class, stmt.ColumnClass(0));
      bytes.namespace_name = stmt.ColumnText(1);
      bytes.logical_bytes = static_cast<uint64_t>(stmt.ColumnInt(2));
      bytes.inline_bytes = static_cast<uint64_t>(stmt.ColumnInt(3));
      rows.push_back(std::move(bytes));
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return rows;
}

Result<uint64_t> SqliteMetaStore::ReapStalledUploads(TimestampMs cutoff_ms, uint32_t limit,
                                                     TimestampMs now_ms) {
  uint64_t reaped = 0;
  Status status = FreeingWrite("reap stalled uploads", [&](Connection& c) -> Status {
    std::vector<std::pair<ObjectId, StorageClass>> stalled;
    {
      ASSIGN_OR_RETURN(Statement stmt,
                       c.Prepare("SELECT id, storage_class FROM objects WHERE state = 'WRITING' "
                                 "AND updated_at_ms < ?1 ORDER BY updated_at_ms, id LIMIT ?2"));
      stmt.Int(1, cutoff_ms).Int(2, limit);
      while (true) {
        ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        ASSIGN_OR_RETURN(ObjectId id, stmt.ColumnId(0));
        ASSIGN_OR_RETURN(StorageClass storage_class, stmt.ColumnClass(1));
        stalled.emplace_back(id, storage_class);
      }
    }
    ASSIGN_OR_RETURN(Statement remove, c.Prepare("DELETE FROM objects WHERE id = ?1"));
    for (const auto& [id, storage_class] : stalled) {
      RETURN_IF_ERROR(DropReferences(c, id, storage_class, now_ms));
      RETURN_IF_ERROR(remove.Id(1, id).Run());
    }
    reaped = stalled.size();
    return OkStatus();
  });
  if (!status.ok()) return status;
  return reaped;
}

Result<uint64_t> SqliteMetaStore::PurgeDeletedObjects(TimestampMs cutoff_ms, uint32_t limit) {
  uint64_t purged = 0;
  Status status = FreeingWrite("purge deleted objects", [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("DELETE FROM objects WHERE id IN (SELECT id FROM objects WHERE "
                               "state = 'DELETING' AND updated_at_ms < ?1 "
                               "ORDER BY updated_at_ms, id LIMIT ?2)"));
    RETURN_IF_ERROR(stmt.Int(1, cutoff_ms).Int(2, limit).Run());
    purged = static_cast<uint64_t>(c.Changes());  // cascaded object_chunks are not counted
    return OkStatus();
  });
  if (!status.ok()) return status;
  return purged;
}

// If the transaction fails after some files were removed, their rows come back with
// count 0: the next pass retries them (removing an absent file is expected to succeed),
// and an uploader that takes a reference meanwhile finds no file and writes it again.
Result<std::vector<ChunkRecord>> SqliteMetaStore::CollectGarbageChunks(
    TimestampMs cutoff_ms, uint32_t limit,
    const std::function<Status(const ChunkRecord&)>& remove_file) {
  std::vector<ChunkRecord> removed;
  Status status = FreeingWrite("collect garbage chunks", [&](Connection& c) -> Status {
    removed.clear();
    std::vector<ChunkRecord> candidates;
    {
      ASSIGN_OR_RETURN(Statement stmt,
                       c.Prepare("SELECT storage_class, digest, size_bytes, ref_count, "
                                 "zero_since_ms, block_checksums, damaged_ms FROM chunks "
                                 "WHERE ref_count = 0 AND "
                                 "zero_since_ms < ?1 AND NOT EXISTS (SELECT 1 FROM owner_chunks "
                                 "AS oc WHERE oc.storage_class = chunks.storage_class AND "
                                 "oc.digest = chunks.digest) "
                                 "ORDER BY zero_since_ms, storage_class, digest LIMIT ?2"));
      stmt.Int(1, cutoff_ms).Int(2, limit);
      while (true) {
        ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        ASSIGN_OR_RETURN(ChunkRecord chunk, ReadChunk(stmt));
        candidates.push_back(chunk);
      }
    }
    ASSIGN_OR_RETURN(Statement remove,
                     c.Prepare("DELETE FROM chunks WHERE storage_class = ?1 AND digest = ?2"));
    for (const ChunkRecord& chunk : candidates) {
      // A failed removal keeps the row, so a later pass retries the file.
      if (!remove_file(chunk).ok()) continue;
      RETURN_IF_ERROR(remove.Class(1, chunk.storage_class).Hash(2, chunk.digest).Run());
      removed.push_back(chunk);
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return removed;
}

// Every chunk row with its live reference count (objects and generic owners), then every
// live (class, digest) named by object_chunks or owner_chunks that has no chunk row, in
// (class name, digest) order.
Result<std::vector<FsckReferenceRow>> SqliteMetaStore::ReferenceRows(Connection& c) {
  ASSIGN_OR_RETURN(
      Statement stmt,
      c.Prepare("WITH actual AS (" CAIRN_LIVE_REFERENCES ") "
                "SELECT c.storage_class, c.digest, c.ref_count, COALESCE(a.n, 0), "
                "       c.size_bytes, 1, COALESCE(a.committed, 0), COALESCE(a.owners, 0) "
                "FROM chunks AS c LEFT JOIN actual AS a "
                "  ON a.storage_class = c.storage_class AND a.digest = c.digest "
                "UNION ALL "
                "SELECT a.storage_class, a.digest, 0, a.n, a.size_bytes, 0, a.committed, "
                "       a.owners "
                "FROM actual AS a "
                "WHERE NOT EXISTS (SELECT 1 FROM chunks AS c "
                "  WHERE c.storage_class = a.storage_class AND c.digest = a.digest) "
                "ORDER BY 1, 2"));
  std::vector<FsckReferenceRow> rows;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    FsckReferenceRow ref;
    ASSIGN_OR_RETURN(ref.storage_class, stmt.ColumnClass(0));
    ASSIGN_OR_RETURN(ref.digest, stmt.ColumnDigest(1));
    ref.recorded_ref_count = stmt.ColumnInt(2);
    ref.actual_ref_count = stmt.ColumnInt(3);
    ref.size_bytes = static_cast<uint64_t>(stmt.ColumnInt(4));
    ref.has_chunk_row = stmt.ColumnInt(5) != 0;
    ref.committed_ref_count = stmt.ColumnInt(6);
    ref.owner_ref_count = stmt.ColumnInt(7);
    rows.push_back(ref);
  }
  return rows;
}

Result<std::vector<FsckReferenceRow>> SqliteMetaStore::CheckReferences() {
  std::vector<FsckReferenceRow> rows;
  Status status = Read("check references", [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(rows, ReferenceRows(c));
    return OkStatus();
  });
  if (!status.ok()) return status;
  return rows;
}

Result<uint64_t> SqliteMetaStore::RepairReferences(TimestampMs now_ms) {
  uint64_t changed = 0;
  Status status = Write("repair references", [&](Connection& c) -> Status {
    changed = 0;
    ASSIGN_OR_RETURN(std::vector<FsckReferenceRow> rows, ReferenceRows(c));
    ASSIGN_OR_RETURN(Statement update,
                     c.Prepare("UPDATE chunks SET ref_count = ?3, zero_since_ms = ?4 "
                               "WHERE storage_class = ?1 AND digest = ?2"));
    ASSIGN_OR_RETURN(Statement insert,
                     c.Prepare("INSERT INTO chunks (storage_class, digest, size_bytes, "
                               "ref_count, zero_since_ms) VALUES (?1, ?2, ?3, ?4, 0)"));
    for (const FsckReferenceRow& row : rows) {
      if (row.has_chunk_row) {
        if (row.recorded_ref_count == row.actual_ref_count) continue;
        RETURN_IF_ERROR(update.Class(1, row.storage_class)
                            .Hash(2, row.digest)
                            .Int(3, row.actual_ref_count)
                            .Int(4, row.actual_ref_count == 0 ? now_ms : 0)
                            .Run());
      } else {
        RETURN_IF_ERROR(insert.Class(1, row.storage_class)
                            .Hash(2, row.digest)
                            .Int(3, static_cast<int64_t>(row.size_bytes))
                            .Int(4, row.actual_ref_count)
                            .Run());
      }
      ++changed;
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return changed;
}

Status SqliteMetaStore::SetChunkDamaged(StorageClass storage_class, const Digest& digest,
                                        TimestampMs damaged_ms) {
  const std::string what = "mark chunk " + std::string(StorageClassName(storage_class)) + "/" +
                           digest.ToHex() + (damaged_ms != 0 ? " damaged" : " healthy");
  return Write(what, [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Statement stmt, c.Prepare("UPDATE chunks SET damaged_ms = ?3 "
                                               "WHERE storage_class = ?1 AND digest = ?2"));
    RETURN_IF_ERROR(stmt.Class(1, storage_class).Hash(2, digest).Int(3, damaged_ms).Run());
    if (c.Changes() == 0) return NotFoundError("no chunk row for " + digest.ToHex());
    return OkStatus();
  });
}

Result<std::vector<ChunkRecord>> SqliteMetaStore::ListChunks() {
  std::vector<ChunkRecord> chunks;
  Status status = Read("list chunks", [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("SELECT storage_class, digest, size_bytes, ref_count, "
                               "zero_since_ms, block_checksums, damaged_ms FROM chunks "
                               "ORDER BY storage_class, digest"));
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      ASSIGN_OR_RETURN(ChunkRecord chunk, ReadChunk(stmt));
      chunks.push_back(chunk);
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return chunks;
}

Result<std::optional<ChunkRecord>> SqliteMetaStore::GetChunk(StorageClass storage_class,
                                                             const Digest& digest) {
  std::optional<ChunkRecord> found;
  Status status = Read("get chunk", [&](Connection& c) -> Status {
    found.reset();
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("SELECT storage_class, digest, size_bytes, ref_count, "
                               "zero_since_ms, block_checksums, damaged_ms FROM chunks "
                               "WHERE storage_class = ?1 AND digest = ?2"));
    stmt.Class(1, storage_class).Hash(2, digest);
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (row) {
      ASSIGN_OR_RETURN(ChunkRecord chunk, ReadChunk(stmt));
      found = chunk;
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return found;
}

Result<std::vector<ChunkTotalsRow>> SqliteMetaStore::ChunkTotals() {
  std::vector<ChunkTotalsRow> rows;
  Status status = Read("sum chunks", [&](Connection& c) -> Status {
    rows.clear();
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("SELECT storage_class, COUNT(*), SUM(size_bytes), "
                               "SUM(ref_count = 0) FROM chunks GROUP BY storage_class "
                               "ORDER BY storage_class"));
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      ChunkTotalsRow totals;
      ASSIGN_OR_RETURN(totals.storage_class, stmt.ColumnClass(0));
      totals.chunks = static_cast<uint64_t>(stmt.ColumnInt(1));
      totals.bytes = static_cast<uint64_t>(stmt.ColumnInt(2));
      totals.unreferenced = static_cast<uint64_t>(stmt.ColumnInt(3));
      rows.push_back(totals);
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return rows;
}

Result<std::vector<ObjectId>> SqliteMetaStore::FindObjectsWithChunks(
    StorageClass storage_class, const std::vector<Digest>& digests) {
  std::set<ObjectId> hits;  // ordered by id, like the model
  Status status = Read("find objects with chunks", [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Statement stmt, c.Prepare("SELECT DISTINCT o.id FROM object_chunks AS oc "
                                               "JOIN objects AS o ON o.id = oc.object_id "
                                               "WHERE oc.digest = ?1 AND o.storage_class = ?2 "
                                               "AND o.state = 'COMMITTED'"));
    for (const Digest& digest : std::set<Digest>(digests.begin(), digests.end())) {
      stmt.Reset();
      stmt.Hash(1, digest).Class(2, storage_class);
      while (true) {
        ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        ASSIGN_OR_RETURN(ObjectId id, stmt.ColumnId(0));
        hits.insert(id);
      }
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return std::vector<ObjectId>(hits.begin(), hits.end());
}

Result<std::vector<ObjectId>> SqliteMetaStore::DropObjectsWithChunks(
    StorageClass storage_class, const std::vector<Digest>& lost, TimestampMs now_ms) {
  std::vector<ObjectId> dropped;
  const std::string context = "drop objects with " + std::to_string(lost.size()) + " lost " +
                              std::string(StorageClassName(storage_class)) + " chunks";
  Status status = Write(context, [&](Connection& c) -> Status {
    std::set<ObjectId> hits;  // ordered by id, like the model
    {
      ASSIGN_OR_RETURN(Statement stmt, c.Prepare("SELECT DISTINCT o.id FROM object_chunks AS oc "
                                                 "JOIN objects AS o ON o.id = oc.object_id "
                                                 "WHERE oc.digest = ?1 AND o.storage_class = ?2 "
                                                 "AND o.state IN ('WRITING', 'COMMITTED')"));
      for (const Digest& digest : std::set<Digest>(lost.begin(), lost.end())) {
        stmt.Reset();
        stmt.Hash(1, digest).Class(2, storage_class);
        while (true) {
          ASSIGN_OR_RETURN(bool row, stmt.Step());
          if (!row) break;
          ASSIGN_OR_RETURN(ObjectId id, stmt.ColumnId(0));
          hits.insert(id);
        }
      }
    }
    for (const ObjectId& id : hits) RETURN_IF_ERROR(MarkDeleting(c, id, storage_class, now_ms));
    dropped.assign(hits.begin(), hits.end());
    return OkStatus();
  });
  if (!status.ok()) return status;
  return dropped;
}

// ---- generic owners ---------------------------------------------------------------------

Status SqliteMetaStore::SetOwnerChunks(const ChunkOwner& owner,
                                       const std::vector<OwnerChunk>& chunks, TimestampMs now_ms) {
  RETURN_IF_ERROR(CheckChunkOwner(owner));
  return Write("set the chunks of owner " + internal::DescribeOwner(owner),
               [&](Connection& c) { return ReplaceOwnerChunks(c, owner, chunks, now_ms); });
}

Status SqliteMetaStore::DropOwnerChunks(const ChunkOwner& owner, TimestampMs now_ms) {
  RETURN_IF_ERROR(CheckChunkOwner(owner));
  return FreeingWrite("drop the chunks of owner " + internal::DescribeOwner(owner),
                      [&](Connection& c) { return ReplaceOwnerChunks(c, owner, {}, now_ms); });
}

Result<std::vector<OwnerChunk>> SqliteMetaStore::GetOwnerChunks(const ChunkOwner& owner) {
  RETURN_IF_ERROR(CheckChunkOwner(owner));
  std::vector<OwnerChunk> chunks;
  Status status = Read(
      "get the chunks of owner " + internal::DescribeOwner(owner), [&](Connection& c) -> Status {
        chunks.clear();
        ASSIGN_OR_RETURN(Statement stmt,
                         c.Prepare("SELECT oc.storage_class, oc.digest, oc.size_bytes, "
                                   "c.block_checksums, c.damaged_ms FROM owner_chunks AS oc "
                                   "LEFT JOIN chunks AS c ON c.storage_class = "
                                   "oc.storage_class AND c.digest = oc.digest "
                                   "WHERE oc.owner_kind = ?1 AND oc.owner_id = ?2 "
                                   "ORDER BY oc.seq"));
        stmt.Text(1, owner.kind).Text(2, owner.id);
        while (true) {
          ASSIGN_OR_RETURN(bool row, stmt.Step());
          if (!row) break;
          OwnerChunk entry;
          ASSIGN_OR_RETURN(entry.storage_class, stmt.ColumnClass(0));
          ASSIGN_OR_RETURN(entry.chunk.digest, stmt.ColumnDigest(1));
          entry.chunk.size_bytes = static_cast<uint64_t>(stmt.ColumnInt(2));
          if (!stmt.IsNull(3)) entry.chunk.block_checksums = stmt.ColumnBlob(3);
          entry.chunk.damaged_ms = stmt.ColumnInt(4);
          chunks.push_back(std::move(entry));
        }
        return OkStatus();
      });
  if (!status.ok()) return status;
  return chunks;
}

Result<std::vector<ChunkOwner>> SqliteMetaStore::FindOwnersWithChunks(
    StorageClass storage_class, const std::vector<Digest>& digests) {
  std::set<ChunkOwner> hits;  // ordered by (kind, id), like the model
  Status status = Read("find owners with chunks", [&](Connection& c) -> Status {
    hits.clear();
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("SELECT DISTINCT owner_kind, owner_id FROM owner_chunks "
                               "WHERE storage_class = ?1 AND digest = ?2"));
    for (const Digest& digest : std::set<Digest>(digests.begin(), digests.end())) {
      stmt.Reset();
      stmt.Class(1, storage_class).Hash(2, digest);
      while (true) {
        ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        hits.insert(ChunkOwner{stmt.ColumnText(0), stmt.ColumnText(1)});
      }
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return std::vector<ChunkOwner>(hits.begin(), hits.end());
}

Result<std::vector<OwnerUsageRow>> SqliteMetaStore::OwnerUsage(const std::string& kind) {
  RETURN_IF_ERROR(internal::CheckOwnerKind(kind));
  std::vector<OwnerUsageRow> rows;
  Status status = Read("usage of owners of kind " + kind, [&](Connection& c) -> Status {
    rows.clear();
    // Per class: owners, logical bytes (every entry), physical bytes (each distinct digest
    // once, MAX keeping one size per digest even if damaged rows disagree).
    ASSIGN_OR_RETURN(
        Statement stmt,
        c.Prepare("SELECT storage_class, COUNT(DISTINCT owner_id), SUM(size_bytes), "
                  "(SELECT SUM(size) FROM (SELECT MAX(d.size_bytes) AS size FROM owner_chunks "
                  "AS d WHERE d.owner_kind = ?1 AND d.storage_class = oc.storage_class "
                  "GROUP BY d.digest)) "
                  "FROM owner_chunks AS oc WHERE owner_kind = ?1 "
                  "GROUP BY storage_class ORDER BY storage_class"));
    stmt.Text(1, kind);
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      OwnerUsageRow usage;
      usage.kind = kind;
      ASSIGN_OR_RETURN(usage.storage_class, stmt.ColumnClass(0));
      usage.owners = static_cast<uint64_t>(stmt.ColumnInt(1));
      usage.logical_bytes = static_cast<uint64_t>(stmt.ColumnInt(2));
      usage.physical_bytes = static_cast<uint64_t>(stmt.ColumnInt(3));
      rows.push_back(std::move(usage));
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return rows;
}

Status SqliteMetaStore::CreateApiKey(const ApiKeyRecord& key) {
  RETURN_IF_ERROR(CheckApiKey(key));
  ASSIGN_OR_RETURN(std::string tenants, EncodeTenants(key.tenants));
  return Write("create api key " + key.key_id, [&](Connection& c) -> Status {
    {
      ASSIGN_OR_RETURN(Statement stmt, c.Prepare("SELECT 1 FROM api_keys WHERE key_id = ?1"));
      ASSIGN_OR_RETURN(bool taken, stmt.Text(1, key.key_id).Step());
      if (taken) return AlreadyExistsError("api key id " + key.key_id + " is already taken");
    }
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("INSERT INTO api_keys (key_id, secret_hash, tenants, scope, "
                               "created_at_ms, revoked, description) "
                               "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
    return stmt.Text(1, key.key_id)
        .Hash(2, key.secret_hash)
        .Text(3, tenants)
        .Text(4, ScopeName(key.scope))
        .Int(5, key.created_at_ms)
        .Int(6, key.revoked ? 1 : 0)
        .Text(7, key.description)
        .Run();
  });
}

constexpr const char* kApiKeyColumns =
    "SELECT key_id, secret_hash, tenants, scope, created_at_ms, revoked, description "
    "FROM api_keys";

Result<ApiKeyRecord> SqliteMetaStore::GetApiKey(const std::string& key_id) {
  ApiKeyRecord key;
  Status status = Read("get api key " + key_id, [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Statement stmt, c.Prepare(std::string(kApiKeyColumns) + " WHERE key_id = ?1"));
    ASSIGN_OR_RETURN(bool found, stmt.Text(1, key_id).Step());
    if (!found) return NotFoundError("api key " + key_id + " not found");
    ASSIGN_OR_RETURN(key, ReadApiKey(stmt));
    return OkStatus();
  });
  if (!status.ok()) return status;
  return key;
}

Result<std::vector<ApiKeyRecord>> SqliteMetaStore::ListApiKeys() {
  std::vector<ApiKeyRecord> keys;
  Status status = Read("list api keys", [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Statement stmt, c.Prepare(std::string(kApiKeyColumns) + " ORDER BY key_id"));
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      ASSIGN_OR_RETURN(ApiKeyRecord key, ReadApiKey(stmt));
      keys.push_back(std::move(key));
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return keys;
}

Status SqliteMetaStore::RevokeApiKey(const std::string& key_id) {
  return Write("revoke api key " + key_id, [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("UPDATE api_keys SET revoked = 1 WHERE key_id = ?1"));
    RETURN_IF_ERROR(stmt.Text(1, key_id).Run());
    if (c.Changes() == 0) return NotFoundError("api key " + key_id + " not found");
    return OkStatus();
  });
}

// Applies the pending steps and the new version number in one transaction, so a crash
// mid-migration leaves the previous version intact; concurrent openers serialize on the
// IMMEDIATE lock and the second finds nothing left to do.
Status Migrate(Connection& c) {
  return RunTransaction(c, "BEGIN IMMEDIATE", [&](Connection& conn) -> Status {
    int version = 0;
    {
      ASSIGN_OR_RETURN(Statement stmt, conn.Prepare("PRAGMA user_version"));
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (row) version = static_cast<int>(stmt.ColumnInt(0));
    }
    if (version > kSchemaVersion) {
      return FailedPreconditionError("metadata database " + conn.path() + " has schema version " +
                                     std::to_string(version) + ", newer than this binary's " +
                                     std::to_string(kSchemaVersion));
    }
    if (version == kSchemaVersion) return OkStatus();
    for (int step = version; step < kSchemaVersion; ++step) {
      Status applied = conn.Script(kMigrations[step]);
      if (!applied.ok()) {
        return applied.WithContext("migration to schema version " + std::to_string(step + 1));
      }
    }
    return conn.Script(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
  });
}

// ---- S3 support -------------------------------------------------------------------------

Result<ObjectRecord> SqliteMetaStore::UpdateUserMetadata(
    const std::string& tenant, const ObjectId& id,
    const std::map<std::string, std::string>& user_metadata, TimestampMs now_ms) {
  ASSIGN_OR_RETURN(std::string encoded, EncodeMetadata(user_metadata));
  ObjectRecord updated;
  Status status = Write("update metadata of " + id.ToString(), [&](Connection& c) -> Status {
    {
      ASSIGN_OR_RETURN(Statement stmt,
                       c.Prepare("UPDATE objects SET user_metadata = ?3, updated_at_ms = ?4 "
                                 "WHERE id = ?1 AND tenant = ?2 AND state = 'COMMITTED'"));
      RETURN_IF_ERROR(stmt.Id(1, id).Text(2, tenant).Text(3, encoded).Int(4, now_ms).Run());
      if (c.Changes() == 0) return NoSuchObjectError(id);
    }
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("SELECT " CAIRN_OBJECT_COLUMNS " FROM objects WHERE id = ?1"));
    ASSIGN_OR_RETURN(bool found, stmt.Id(1, id).Step());
    if (!found) return NoSuchObjectError(id);
    ASSIGN_OR_RETURN(updated, ReadObject(stmt));
    return OkStatus();
  });
  if (!status.ok()) return status;
  return updated;
}

Status SqliteMetaStore::CreateNamespace(const NamespaceRecord& record) {
  return Write("create namespace " + record.name, [&](Connection& c) -> Status {
    {
      ASSIGN_OR_RETURN(Statement stmt,
                       c.Prepare("SELECT 1 FROM namespaces WHERE tenant = ?1 AND name = ?2"));
      ASSIGN_OR_RETURN(bool taken, stmt.Text(1, record.tenant).Text(2, record.name).Step());
      if (taken) {
        return AlreadyExistsError("namespace '" + record.name + "' of tenant '" + record.tenant +
                                  "' already exists");
      }
    }
    {
      // The write transaction holds the database lock, so no other tenant can take the
      // name between this check and the insert.
      ASSIGN_OR_RETURN(Statement stmt,
                       c.Prepare("SELECT 1 FROM namespaces WHERE name = ?1 AND tenant <> ?2"));
      ASSIGN_OR_RETURN(bool taken, stmt.Text(1, record.name).Text(2, record.tenant).Step());
      if (taken) return NameTakenError(record.name);
    }
    ASSIGN_OR_RETURN(Statement stmt, c.Prepare("INSERT INTO namespaces (tenant, name, "
                                               "created_at_ms) VALUES (?1, ?2, ?3)"));
    return stmt.Text(1, record.tenant).Text(2, record.name).Int(3, record.created_at_ms).Run();
  });
}

Result<std::vector<std::string>> SqliteMetaStore::NamespaceOwners(const std::string& name) {
  std::vector<std::string> out;
  Status status = Read("find owners of namespace " + name, [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Statement stmt, c.Prepare("SELECT tenant FROM namespaces WHERE name = ?1 "
                                               "ORDER BY tenant LIMIT 16"));
    stmt.Text(1, name);
    ASSIGN_OR_RETURN(out, FirstColumnTexts(stmt));
    return OkStatus();
  });
  if (!status.ok()) return status;
  return out;
}

Result<std::vector<std::string>> SqliteMetaStore::NamespaceTenants() {
  std::vector<std::string> out;
  Status status = Read("list the tenants of namespaces", [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("SELECT DISTINCT tenant FROM namespaces ORDER BY tenant"));
    ASSIGN_OR_RETURN(out, FirstColumnTexts(stmt));
    return OkStatus();
  });
  if (!status.ok()) return status;
  return out;
}

Result<std::vector<NamespaceRecord>> SqliteMetaStore::ListNamespaces(const std::string& tenant) {
  std::vector<NamespaceRecord> out;
  Status status = Read("list namespaces of " + tenant, [&](Connection& c) -> Status {
    out.clear();
    // Explicit rows win; other namespaces exist while they hold committed objects.
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("SELECT name, created_at_ms FROM namespaces WHERE tenant = ?1 "
                               "UNION ALL "
                               "SELECT namespace, MIN(first_created_ms) FROM usage_counters "
                               "WHERE tenant = ?1 AND namespace NOT IN "
                               "(SELECT name FROM namespaces WHERE tenant = ?1) GROUP BY namespace "
                               "ORDER BY 1"));
    stmt.Text(1, tenant);
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      out.push_back(NamespaceRecord{tenant, stmt.ColumnText(0), stmt.ColumnInt(1)});
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return out;
}

Result<NamespaceRecord> SqliteMetaStore::GetNamespace(const std::string& tenant,
                                                      const std::string& name) {
  NamespaceRecord record{tenant, name, 0};
  Status status = Read("get namespace " + name, [&](Connection& c) -> Status {
    {
      ASSIGN_OR_RETURN(Statement stmt, c.Prepare("SELECT created_at_ms FROM namespaces "
                                                 "WHERE tenant = ?1 AND name = ?2"));
      ASSIGN_OR_RETURN(bool found, stmt.Text(1, tenant).Text(2, name).Step());
      if (found) {
        record.created_at_ms = stmt.ColumnInt(0);
        return OkStatus();
      }
    }
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("SELECT first_created_ms FROM usage_counters WHERE tenant = ?1 "
                               "AND namespace = ?2 ORDER BY first_created_ms LIMIT 1"));
    ASSIGN_OR_RETURN(bool found, stmt.Text(1, tenant).Text(2, name).Step());
    if (!found) {
      return NotFoundError("namespace '" + name + "' of tenant '" + tenant + "' does not exist");
    }
    record.created_at_ms = stmt.ColumnInt(0);
    return OkStatus();
  });
  if (!status.ok()) return status;
  return record;
}

Status SqliteMetaStore::DeleteNamespace(const std::string& tenant, const std::string& name) {
  return FreeingWrite("delete namespace " + name, [&](Connection& c) -> Status {
    {
      ASSIGN_OR_RETURN(Statement stmt,
                       c.Prepare("SELECT 1 FROM objects WHERE tenant = ?1 AND namespace = ?2 "
                                 "AND state = 'COMMITTED' LIMIT 1"));
      ASSIGN_OR_RETURN(bool busy, stmt.Text(1, tenant).Text(2, name).Step());
      if (busy) return FailedPreconditionError("namespace '" + name + "' is not empty");
    }
    {
      ASSIGN_OR_RETURN(Statement stmt,
                       c.Prepare("DELETE FROM namespaces WHERE tenant = ?1 AND name = ?2"));
      RETURN_IF_ERROR(stmt.Text(1, tenant).Text(2, name).Run());
      if (c.Changes() == 0) {
        return NotFoundError("namespace '" + name + "' of tenant '" + tenant + "' does not exist");
      }
    }
    // Its settings go with it: a namespace created again under this name starts with none.
    ASSIGN_OR_RETURN(Statement stmt, c.Prepare("DELETE FROM namespace_settings "
                                               "WHERE tenant = ?1 AND namespace = ?2"));
    return stmt.Text(1, tenant).Text(2, name).Run();
  });
}

Result<std::map<std::string, std::string>> SqliteMetaStore::GetNamespaceSettings(
    const std::string& tenant, const std::string& name) {
  std::map<std::string, std::string> settings;
  Status status = Read("get the settings of namespace " + name, [&](Connection& c) -> Status {
    settings.clear();
    ASSIGN_OR_RETURN(Statement stmt, c.Prepare("SELECT name, value FROM namespace_settings "
                                               "WHERE tenant = ?1 AND namespace = ?2"));
    stmt.Text(1, tenant).Text(2, name);
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      settings.emplace(stmt.ColumnText(0), stmt.ColumnText(1));
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return settings;
}

// One writer at a time (the store's writer connection under BEGIN IMMEDIATE, and SQLite's
// database lock against other processes), so the namespace row made here cannot be deleted
// before the setting is written.
Status SqliteMetaStore::SetNamespaceSetting(const std::string& tenant, const std::string& name,
                                            const std::string& setting,
                                            const std::optional<std::string>& value,
                                            TimestampMs now) {
  RETURN_IF_ERROR(CheckNamespaceSetting(tenant, name, setting, value));
  return Write("set setting " + setting + " of namespace " + name, [&](Connection& c) -> Status {
    {
      ASSIGN_OR_RETURN(Statement stmt,
                       c.Prepare("INSERT INTO namespaces (tenant, name, created_at_ms) "
                                 "VALUES (?1, ?2, ?3) ON CONFLICT (tenant, name) DO NOTHING"));
      RETURN_IF_ERROR(stmt.Text(1, tenant).Text(2, name).Int(3, now).Run());
    }
    if (!value) {
      ASSIGN_OR_RETURN(Statement stmt,
                       c.Prepare("DELETE FROM namespace_settings "
                                 "WHERE tenant = ?1 AND namespace = ?2 AND name = ?3"));
      return stmt.Text(1, tenant).Text(2, name).Text(3, setting).Run();
    }
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("INSERT INTO namespace_settings (tenant, namespace, name, value) "
                               "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (tenant, namespace, name) "
                               "DO UPDATE SET value = excluded.value"));
    return stmt.Text(1, tenant).Text(2, name).Text(3, setting).Text(4, *value).Run();
  });
}

constexpr const char* kS3KeyColumns =
    "SELECT access_key, secret, tenants, scope, created_at_ms, revoked, description FROM s3_keys";

Status SqliteMetaStore::CreateS3Key(const S3KeyRecord& key) {
  ASSIGN_OR_RETURN(std::string tenants, EncodeTenants(key.tenants));
  return Write("create S3 key " + key.access_key, [&](Connection& c) -> Status {
    {
      ASSIGN_OR_RETURN(Statement stmt, c.Prepare("SELECT 1 FROM s3_keys WHERE access_key = ?1"));
      ASSIGN_OR_RETURN(bool taken, stmt.Text(1, key.access_key).Step());
      if (taken) return AlreadyExistsError("S3 access key " + key.access_key + " already exists");
    }
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("INSERT INTO s3_keys (access_key, secret, tenants, scope, "
                               "created_at_ms, revoked, description) "
                               "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
    return stmt.Text(1, key.access_key)
        .Text(2, key.secret)
        .Text(3, tenants)
        .Text(4, ScopeName(key.scope))
        .Int(5, key.created_at_ms)
        .Int(6, key.revoked ? 1 : 0)
        .Text(7, key.description)
        .Run();
  });
}

Result<S3KeyRecord> SqliteMetaStore::GetS3Key(const std::string& access_key) {
  S3KeyRecord key;
  Status status = Read("get S3 key " + access_key, [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare(std::string(kS3KeyColumns) + " WHERE access_key = ?1"));
    ASSIGN_OR_RETURN(bool found, stmt.Text(1, access_key).Step());
    if (!found) return NotFoundError("no S3 access key " + access_key);
    ASSIGN_OR_RETURN(key, ReadS3Key(stmt));
    return OkStatus();
  });
  if (!status.ok()) return status;
  return key;
}

Result<std::vector<S3KeyRecord>> SqliteMetaStore::ListS3Keys() {
  std::vector<S3KeyRecord> keys;
  Status status = Read("list S3 keys", [&](Connection& c) -> Status {
    keys.clear();
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare(std::string(kS3KeyColumns) + " ORDER BY access_key"));
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      ASSIGN_OR_RETURN(S3KeyRecord key, ReadS3Key(stmt));
      keys.push_back(std::move(key));
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return keys;
}

Status SqliteMetaStore::RevokeS3Key(const std::string& access_key) {
  return Write("revoke S3 key " + access_key, [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("UPDATE s3_keys SET revoked = 1 WHERE access_key = ?1"));
    RETURN_IF_ERROR(stmt.Text(1, access_key).Run());
    if (c.Changes() == 0) return NotFoundError("no S3 access key " + access_key);
    return OkStatus();
  });
}

Status SqliteMetaStore::ReplaceS3Secrets(const std::vector<S3SecretChange>& changes) {
  return Write(
      "replace the secrets of " + std::to_string(changes.size()) + " S3 keys",
      [&](Connection& c) -> Status {
        for (const S3SecretChange& change : changes) {
          ASSIGN_OR_RETURN(Statement stmt, c.Prepare("UPDATE s3_keys SET secret = ?1 "
                                                     "WHERE access_key = ?2 AND secret = ?3"));
          RETURN_IF_ERROR(stmt.Text(1, change.new_secret)
                              .Text(2, change.access_key)
                              .Text(3, change.old_secret)
                              .Run());
          if (c.Changes() == 0) {
            return AbortedError("the secret of S3 key " + change.access_key + " changed meanwhile");
          }
        }
        return OkStatus();
      });
}

// ---- snapshots ----------------------------------------------------------------------------

// The owner_chunks rows (AS w) a snapshot holds: not the mounts' staging owners, nor the
// blocks of inodes unlinked while open (records.h says why).
#define CAIRN_SNAPSHOT_OWNER_ROW                                                    \
  "(w.owner_kind <> 'fs-staging' AND NOT (w.owner_kind = 'file' AND w.owner_id IN " \
  "(SELECT v.uuid || ':' || i.ino FROM fs_volume AS v, fs_inodes AS i WHERE i.nlink = 0)))"

// One read transaction: in WAL mode the snapshot is fixed by its first SELECT, and every
// statement after it sees the same database state, whatever the server writes meanwhile.
// Rows are stepped, never collected, so memory does not grow with the store.
Status SqliteMetaStore::ExportSnapshot(SnapshotVisitor& visitor, TimestampMs now_ms) {
  static_assert(kFsStagingOwnerKind == "fs-staging" && kFileOwnerKind == "file");
  return Read("export snapshot", [&](Connection& c) -> Status {
    SnapshotCounts counts;
    {
      ASSIGN_OR_RETURN(
          Statement stmt,
          c.Prepare("SELECT (SELECT COUNT(*) FROM api_keys), "
                    "(SELECT COUNT(*) FROM s3_keys), (SELECT COUNT(*) FROM namespaces), "
                    "(SELECT COUNT(*) FROM chunks), "
                    "(SELECT COUNT(*) FROM objects WHERE state = 'COMMITTED'), "
                    "(SELECT COUNT(*) FROM namespace_settings), "
                    "(SELECT COUNT(*) FROM (SELECT DISTINCT owner_kind, owner_id FROM "
                    "owner_chunks AS w WHERE " CAIRN_SNAPSHOT_OWNER_ROW ")), "
                    "(SELECT COUNT(*) FROM fs_volume), "
                    "(SELECT COUNT(*) FROM fs_inodes WHERE nlink > 0), "
                    "(SELECT COUNT(*) FROM fs_dentries), "
                    "(SELECT COUNT(*) FROM fs_xattrs AS x JOIN fs_inodes AS i "
                    "ON i.ino = x.ino WHERE i.nlink > 0)"));
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) return InternalError("snapshot counts returned no row");
      counts.api_keys = static_cast<uint64_t>(stmt.ColumnInt(0));
      counts.s3_keys = static_cast<uint64_t>(stmt.ColumnInt(1));
      counts.namespaces = static_cast<uint64_t>(stmt.ColumnInt(2));
      counts.chunks = static_cast<uint64_t>(stmt.ColumnInt(3));
      counts.objects = static_cast<uint64_t>(stmt.ColumnInt(4));
      counts.namespace_settings = static_cast<uint64_t>(stmt.ColumnInt(5));
      counts.owners = static_cast<uint64_t>(stmt.ColumnInt(6));
      counts.volumes = static_cast<uint64_t>(stmt.ColumnInt(7));
      counts.inodes = static_cast<uint64_t>(stmt.ColumnInt(8));
      counts.dentries = static_cast<uint64_t>(stmt.ColumnInt(9));
      counts.xattrs = static_cast<uint64_t>(stmt.ColumnInt(10));
    }
    RETURN_IF_ERROR(visitor.Begin(counts));
    {
      ASSIGN_OR_RETURN(Statement stmt, c.Prepare(std::string(kApiKeyColumns) + " ORDER BY key_id"));
      while (true) {
        ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        ASSIGN_OR_RETURN(ApiKeyRecord key, ReadApiKey(stmt));
        RETURN_IF_ERROR(visitor.Visit(key));
      }
    }
    {
      ASSIGN_OR_RETURN(Statement stmt,
                       c.Prepare(std::string(kS3KeyColumns) + " ORDER BY access_key"));
      while (true) {
        ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        ASSIGN_OR_RETURN(S3KeyRecord key, ReadS3Key(stmt));
        RETURN_IF_ERROR(visitor.Visit(key));
      }
    }
    {
      ASSIGN_OR_RETURN(Statement stmt, c.Prepare("SELECT tenant, name, created_at_ms FROM "
                                                 "namespaces ORDER BY tenant, name"));
      while (true) {
        ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        RETURN_IF_ERROR(visitor.Visit(
            NamespaceRecord{stmt.ColumnText(0), stmt.ColumnText(1), stmt.ColumnInt(2)}));
      }
    }
    {
      ASSIGN_OR_RETURN(Statement stmt,
                       c.Prepare("SELECT tenant, namespace, name, value FROM namespace_settings "
                                 "ORDER BY tenant, namespace, name"));
      while (true) {
        ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        RETURN_IF_ERROR(visitor.Visit(NamespaceSettingRecord{
            stmt.ColumnText(0), stmt.ColumnText(1), stmt.ColumnText(2), stmt.ColumnText(3)}));
      }
    }
    {
      // Counts are recomputed from the COMMITTED objects and the owners the snapshot holds
      // (see SnapshotCounts in meta_store.h); a count that becomes zero keeps its zero time,
      // or gets now_ms if it had none.
      ASSIGN_OR_RETURN(Statement stmt,
                       c.Prepare("SELECT c.storage_class, c.digest, c.size_bytes, "
                                 "(SELECT COUNT(*) FROM object_chunks AS oc JOIN objects AS o "
                                 "ON o.id = oc.object_id WHERE oc.digest = c.digest AND "
                                 "o.storage_class = c.storage_class AND o.state = 'COMMITTED') + "
                                 "(SELECT COUNT(*) FROM owner_chunks AS w WHERE "
                                 "w.storage_class = c.storage_class AND w.digest = c.digest "
                                 "AND " CAIRN_SNAPSHOT_OWNER_ROW "), "
                                 "c.ref_count, c.zero_since_ms, c.block_checksums, c.damaged_ms "
                                 "FROM chunks AS c ORDER BY c.storage_class, c.digest"));
      while (true) {
        ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        ChunkRecord chunk;
        ASSIGN_OR_RETURN(chunk.storage_class, stmt.ColumnClass(0));
        ASSIGN_OR_RETURN(chunk.digest, stmt.ColumnDigest(1));
        chunk.size_bytes = static_cast<uint64_t>(stmt.ColumnInt(2));
        chunk.ref_count = stmt.ColumnInt(3);
        const int64_t stored_count = stmt.ColumnInt(4);
        chunk.zero_since_ms = stmt.ColumnInt(5);
        if (!stmt.IsNull(6)) chunk.block_checksums = stmt.ColumnBlob(6);
        chunk.damaged_ms = stmt.ColumnInt(7);
        if (chunk.ref_count > 0) {
          chunk.zero_since_ms = 0;
        } else if (stored_count != 0 || chunk.zero_since_ms == 0) {
          chunk.zero_since_ms = now_ms;
        }
        RETURN_IF_ERROR(visitor.Visit(chunk));
      }
    }
    RETURN_IF_ERROR(ExportObjects(c, visitor));
    RETURN_IF_ERROR(ExportOwners(c, visitor));
    return ExportFileTree(c, visitor);
  });
}

// The volume row, then its linked inodes, entries and their xattrs, each stepped in key
// order. Sessions, orphans, the change feed and locks stay out (records.h).
Status SqliteMetaStore::ExportFileTree(Connection& c, SnapshotVisitor& visitor) {
  {
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("SELECT name, uuid, created_ms, trash_days, format_version, "
                               "next_ino FROM fs_volume WHERE id = 1"));
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return OkStatus();
    SnapshotVolume volume;
    volume.volume.name = stmt.ColumnText(0);
    volume.volume.uuid = stmt.ColumnText(1);
    volume.volume.created_ms = stmt.ColumnInt(2);
    volume.volume.trash_days = static_cast<uint32_t>(stmt.ColumnInt(3));
    volume.volume.format_version = static_cast<uint32_t>(stmt.ColumnInt(4));
    volume.next_ino = static_cast<uint64_t>(stmt.ColumnInt(5));
    RETURN_IF_ERROR(visitor.Visit(volume));
  }
  {
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("SELECT ino, type, mode, uid, gid, nlink, size, atime_ns, "
                               "mtime_ns, ctime_ns, btime_ns, rdev, parent, symlink_target, "
                               "change FROM fs_inodes WHERE nlink > 0 ORDER BY ino"));
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      InodeRecord inode;
      inode.ino = static_cast<uint64_t>(stmt.ColumnInt(0));
      Result<FileType> type = FileTypeFromNumber(stmt.ColumnInt(1));
      if (!type.ok()) {
        return DataLossError("fs_inodes row " + std::to_string(inode.ino) +
                             " is damaged: " + type.status().message());
      }
      inode.type = *type;
      inode.mode = static_cast<uint32_t>(stmt.ColumnInt(2));
      inode.uid = static_cast<uint32_t>(stmt.ColumnInt(3));
      inode.gid = static_cast<uint32_t>(stmt.ColumnInt(4));
      inode.nlink = static_cast<uint32_t>(stmt.ColumnInt(5));
      inode.size = static_cast<uint64_t>(stmt.ColumnInt(6));
      inode.atime_ns = stmt.ColumnInt(7);
      inode.mtime_ns = stmt.ColumnInt(8);
      inode.ctime_ns = stmt.ColumnInt(9);
      inode.btime_ns = stmt.ColumnInt(10);
      inode.rdev = static_cast<uint64_t>(stmt.ColumnInt(11));
      inode.parent = static_cast<uint64_t>(stmt.ColumnInt(12));
      inode.symlink_target = stmt.ColumnBlob(13);
      inode.change = static_cast<uint64_t>(stmt.ColumnInt(14));
      RETURN_IF_ERROR(visitor.Visit(inode));
    }
  }
  {
    ASSIGN_OR_RETURN(Statement stmt, c.Prepare("SELECT parent, name, ino, type FROM fs_dentries "
                                               "ORDER BY parent, name"));
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      DentryRecord entry;
      entry.parent = static_cast<uint64_t>(stmt.ColumnInt(0));
      entry.name = stmt.ColumnBlob(1);
      entry.ino = static_cast<uint64_t>(stmt.ColumnInt(2));
      Result<FileType> type = FileTypeFromNumber(stmt.ColumnInt(3));
      if (!type.ok()) {
        return DataLossError("fs_dentries row of " + std::to_string(entry.parent) +
                             " is damaged: " + type.status().message());
      }
      entry.type = *type;
      RETURN_IF_ERROR(visitor.Visit(entry));
    }
  }
  ASSIGN_OR_RETURN(Statement stmt,
                   c.Prepare("SELECT x.ino, x.name, x.value FROM fs_xattrs AS x JOIN fs_inodes "
                             "AS i ON i.ino = x.ino WHERE i.nlink > 0 ORDER BY x.ino, x.name"));
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    RETURN_IF_ERROR(visitor.Visit(SnapshotXattr{static_cast<uint64_t>(stmt.ColumnInt(0)),
                                                stmt.ColumnBlob(1), stmt.ColumnBlob(2)}));
  }
  return OkStatus();
}

// Owners in (kind, id) order, each with its entries in order, from one statement.
Status SqliteMetaStore::ExportOwners(Connection& c, SnapshotVisitor& visitor) {
  ASSIGN_OR_RETURN(Statement stmt,
                   c.Prepare("SELECT owner_kind, owner_id, storage_class, digest, size_bytes, seq "
                             "FROM owner_chunks AS w WHERE " CAIRN_SNAPSHOT_OWNER_ROW
                             " ORDER BY owner_kind, owner_id, seq"));
  std::optional<SnapshotOwner> current;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    ChunkOwner owner;
    if (row) owner = ChunkOwner{stmt.ColumnText(0), stmt.ColumnText(1)};
    if (current && (!row || owner != current->owner)) {
      internal::DropDenseSequences(*current);
      RETURN_IF_ERROR(visitor.Visit(*current));
      current.reset();
    }
    if (!row) break;
    if (!current) current = SnapshotOwner{std::move(owner), {}, {}};
    OwnerChunk entry;
    ASSIGN_OR_RETURN(entry.storage_class, stmt.ColumnClass(2));
    ASSIGN_OR_RETURN(entry.chunk.digest, stmt.ColumnDigest(3));
    entry.chunk.size_bytes = static_cast<uint64_t>(stmt.ColumnInt(4));
    current->chunks.push_back(std::move(entry));
    current->sequences.push_back(static_cast<uint64_t>(stmt.ColumnInt(5)));
  }
  return OkStatus();
}

// Objects in id order, merged with their chunk rows read in (object id, seq) order by a
// second statement on the same connection and transaction.
Status SqliteMetaStore::ExportObjects(Connection& c, SnapshotVisitor& visitor) {
  ASSIGN_OR_RETURN(Statement objects,
                   c.Prepare("SELECT " CAIRN_OBJECT_COLUMNS
                             " FROM objects WHERE state = 'COMMITTED' ORDER BY id"));
  ASSIGN_OR_RETURN(Statement chunks,
                   c.Prepare("SELECT oc.object_id, oc.digest, oc.size_bytes FROM object_chunks "
                             "AS oc JOIN objects AS o ON o.id = oc.object_id "
                             "WHERE o.state = 'COMMITTED' ORDER BY oc.object_id, oc.seq"));
  ASSIGN_OR_RETURN(bool chunk_row, chunks.Step());
  while (true) {
    ASSIGN_OR_RETURN(bool row, objects.Step());
    if (!row) break;
    SnapshotObject object;
    ASSIGN_OR_RETURN(object.object, ReadObject(objects));
    while (chunk_row) {
      ASSIGN_OR_RETURN(ObjectId owner, chunks.ColumnId(0));
      if (owner < object.object.id) {
        return InternalError("object_chunks row of " + owner.ToString() + " out of order");
      }
      if (owner != object.object.id) break;
      ChunkRef ref;
      ASSIGN_OR_RETURN(ref.digest, chunks.ColumnDigest(1));
      ref.size_bytes = static_cast<uint64_t>(chunks.ColumnInt(2));
      object.chunks.push_back(ref);
      ASSIGN_OR_RETURN(chunk_row, chunks.Step());
    }
    RETURN_IF_ERROR(visitor.Visit(object));
  }
  if (chunk_row) return InternalError("object_chunks rows left after the last object");
  return OkStatus();
}

Status SqliteMetaStore::ImportRecord(Connection& c, const SnapshotRecord& record) {
  if (const auto* key = std::get_if<ApiKeyRecord>(&record)) {
    RETURN_IF_ERROR(CheckApiKey(*key));
    ASSIGN_OR_RETURN(std::string tenants, EncodeTenants(key->tenants));
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("INSERT INTO api_keys (key_id, secret_hash, tenants, scope, "
                               "created_at_ms, revoked, description) "
                               "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
    return stmt.Text(1, key->key_id)
        .Hash(2, key->secret_hash)
        .Text(3, tenants)
        .Text(4, ScopeName(key->scope))
        .Int(5, key->created_at_ms)
        .Int(6, key->revoked ? 1 : 0)
        .Text(7, key->description)
        .Run();
  }
  if (const auto* key = std::get_if<S3KeyRecord>(&record)) {
    ASSIGN_OR_RETURN(std::string tenants, EncodeTenants(key->tenants));
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("INSERT INTO s3_keys (access_key, secret, tenants, scope, "
                               "created_at_ms, revoked, description) "
                               "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
    return stmt.Text(1, key->access_key)
        .Text(2, key->secret)
        .Text(3, tenants)
        .Text(4, ScopeName(key->scope))
        .Int(5, key->created_at_ms)
        .Int(6, key->revoked ? 1 : 0)
        .Text(7, key->description)
        .Run();
  }
  if (const auto* ns = std::get_if<NamespaceRecord>(&record)) {
    ASSIGN_OR_RETURN(Statement stmt, c.Prepare("INSERT INTO namespaces (tenant, name, "
                                               "created_at_ms) VALUES (?1, ?2, ?3)"));
    return stmt.Text(1, ns->tenant).Text(2, ns->name).Int(3, ns->created_at_ms).Run();
  }
  if (const auto* setting = std::get_if<NamespaceSettingRecord>(&record)) {
    RETURN_IF_ERROR(CheckNamespaceSetting(setting->tenant, setting->namespace_name, setting->name,
                                          setting->value));
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("INSERT INTO namespace_settings (tenant, namespace, name, value) "
                               "VALUES (?1, ?2, ?3, ?4)"));
    return stmt.Text(1, setting->tenant)
        .Text(2, setting->namespace_name)
        .Text(3, setting->name)
        .Text(4, setting->value)
        .Run();
  }
  if (const auto* chunk = std::get_if<ChunkRecord>(&record)) {
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("INSERT INTO chunks (storage_class, digest, size_bytes, ref_count, "
                               "zero_since_ms, block_checksums, damaged_ms) "
                               "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
    stmt.Class(1, chunk->storage_class)
        .Hash(2, chunk->digest)
        .Int(3, static_cast<int64_t>(chunk->size_bytes))
        .Int(4, chunk->ref_count)
        .Int(5, chunk->zero_since_ms)
        .Int(7, chunk->damaged_ms);
    if (chunk->block_checksums.empty()) {
      stmt.Null(6);
    } else {
      stmt.Blob(6, chunk->block_checksums);
    }
    return stmt.Run();
  }
  if (const auto* owned = std::get_if<SnapshotOwner>(&record)) {
    RETURN_IF_ERROR(CheckChunkOwner(owned->owner));
    RETURN_IF_ERROR(internal::CheckSnapshotOwner(*owned));
    {
      ASSIGN_OR_RETURN(Statement stmt, c.Prepare("SELECT 1 FROM owner_chunks WHERE owner_kind = "
                                                 "?1 AND owner_id = ?2 LIMIT 1"));
      ASSIGN_OR_RETURN(bool taken, stmt.Text(1, owned->owner.kind).Text(2, owned->owner.id).Step());
      if (taken) {
        return AlreadyExistsError("owner " + internal::DescribeOwner(owned->owner) +
                                  " appears twice");
      }
    }
    ASSIGN_OR_RETURN(Statement insert,
                     c.Prepare("INSERT INTO owner_chunks (owner_kind, owner_id, seq, "
                               "storage_class, digest, size_bytes) "
                               "VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
    for (size_t i = 0; i < owned->chunks.size(); ++i) {
      const OwnerChunk& entry = owned->chunks[i];
      RETURN_IF_ERROR(insert.Text(1, owned->owner.kind)
                          .Text(2, owned->owner.id)
                          .Int(3, static_cast<int64_t>(internal::OwnerSequence(*owned, i)))
                          .Class(4, entry.storage_class)
                          .Hash(5, entry.chunk.digest)
                          .Int(6, static_cast<int64_t>(entry.chunk.size_bytes))
                          .Run());
    }
    return OkStatus();
  }
  if (const auto* volume = std::get_if<SnapshotVolume>(&record)) {
    RETURN_IF_ERROR(internal::CheckSnapshotVolume(*volume));
    {
      ASSIGN_OR_RETURN(Statement stmt, c.Prepare("SELECT 1 FROM fs_volume"));
      ASSIGN_OR_RETURN(bool taken, stmt.Step());
      if (taken) return InvalidArgumentError("snapshot holds a second volume record");
    }
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("INSERT INTO fs_volume (id, name, uuid, created_ms, trash_days, "
                               "format_version, next_ino) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)"));
    return stmt.Text(1, volume->volume.name)
        .Text(2, volume->volume.uuid)
        .Int(3, volume->volume.created_ms)
        .Int(4, volume->volume.trash_days)
        .Int(5, volume->volume.format_version)
        .Int(6, static_cast<int64_t>(volume->next_ino))
        .Run();
  }
  if (const auto* inode = std::get_if<InodeRecord>(&record)) {
    if (inode->ino == 0) return InvalidArgumentError("inode number 0 is not valid");
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("INSERT INTO fs_inodes (ino, type, mode, uid, gid, nlink, size, "
                               "atime_ns, mtime_ns, ctime_ns, btime_ns, rdev, parent, "
                               "symlink_target, change) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                               "?9, ?10, ?11, ?12, ?13, ?14, ?15)"));
    return stmt.Int(1, static_cast<int64_t>(inode->ino))
        .Int(2, static_cast<int64_t>(inode->type))
        .Int(3, inode->mode)
        .Int(4, inode->uid)
        .Int(5, inode->gid)
        .Int(6, inode->nlink)
        .Int(7, static_cast<int64_t>(inode->size))
        .Int(8, inode->atime_ns)
        .Int(9, inode->mtime_ns)
        .Int(10, inode->ctime_ns)
        .Int(11, inode->btime_ns)
        .Int(12, static_cast<int64_t>(inode->rdev))
        .Int(13, static_cast<int64_t>(inode->parent))
        .Blob(14, inode->symlink_target)
        .Int(15, static_cast<int64_t>(inode->change))
        .Run();
  }
  if (const auto* entry = std::get_if<DentryRecord>(&record)) {
    ASSIGN_OR_RETURN(Statement stmt, c.Prepare("INSERT INTO fs_dentries (parent, name, ino, type) "
                                               "VALUES (?1, ?2, ?3, ?4)"));
    return stmt.Int(1, static_cast<int64_t>(entry->parent))
        .Blob(2, entry->name)
        .Int(3, static_cast<int64_t>(entry->ino))
        .Int(4, static_cast<int64_t>(entry->type))
        .Run();
  }
  if (const auto* xattr = std::get_if<SnapshotXattr>(&record)) {
    ASSIGN_OR_RETURN(Statement stmt,
                     c.Prepare("INSERT INTO fs_xattrs (ino, name, value) VALUES (?1, ?2, ?3)"));
    return stmt.Int(1, static_cast<int64_t>(xattr->ino))
        .Blob(2, xattr->name)
        .Blob(3, xattr->value)
        .Run();
  }
  const SnapshotObject& object = std::get<SnapshotObject>(record);
  RETURN_IF_ERROR(CheckPutCommitted(object.object, object.chunks));
  RETURN_IF_ERROR(InsertObject(c, object.object, ObjectState::kCommitted));
  ASSIGN_OR_RETURN(Statement insert_chunk,
                   c.Prepare("INSERT INTO object_chunks (object_id, seq, digest, size_bytes) "
                             "VALUES (?1, ?2, ?3, ?4)"));
  for (size_t i = 0; i < object.chunks.size(); ++i) {
    RETURN_IF_ERROR(insert_chunk.Id(1, object.object.id)
                        .Int(2, static_cast<int64_t>(i))
                        .Hash(3, object.chunks[i].digest)
                        .Int(4, static_cast<int64_t>(object.chunks[i].size_bytes))
                        .Run());
  }
  return OkStatus();
}

// One write transaction for the whole load (prepared statements, no per-row commit), so a
// failure anywhere, including the source's final checksum, leaves the store untouched.
Result<SnapshotCounts> SqliteMetaStore::ImportSnapshot(SnapshotSource& source) {
  SnapshotCounts counts;
  Status status = Write("load snapshot", [&](Connection& c) -> Status {
    counts = SnapshotCounts();
    {
      ASSIGN_OR_RETURN(Statement stmt,
                       c.Prepare("SELECT EXISTS (SELECT 1 FROM objects) OR EXISTS (SELECT 1 FROM "
                                 "chunks) OR EXISTS (SELECT 1 FROM api_keys) OR EXISTS (SELECT 1 "
                                 "FROM s3_keys) OR EXISTS (SELECT 1 FROM namespaces) OR EXISTS "
                                 "(SELECT 1 FROM namespace_settings) OR EXISTS (SELECT 1 FROM "
                                 "owner_chunks) OR EXISTS (SELECT 1 FROM fs_volume) OR "
                                 "EXISTS (SELECT 1 FROM fs_inodes)"));
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (row && stmt.ColumnInt(0) != 0) {
        return FailedPreconditionError("the metadata store " + c.path() +
                                       " is not empty; load a snapshot only into a fresh store");
      }
    }
    while (true) {
      ASSIGN_OR_RETURN(std::optional<SnapshotRecord> record, source.Next());
      if (!record) break;
      // Inodes, entries and xattrs belong to the volume record loaded before them.
      if (counts.volumes == 0 && (std::holds_alternative<InodeRecord>(*record) ||
                                  std::holds_alternative<DentryRecord>(*record) ||
                                  std::holds_alternative<SnapshotXattr>(*record))) {
        return internal::SnapshotWithoutVolumeError("a filesystem");
      }
      RETURN_IF_ERROR(ImportRecord(c, *record));
      if (std::holds_alternative<ApiKeyRecord>(*record)) {
        ++counts.api_keys;
      } else if (std::holds_alternative<S3KeyRecord>(*record)) {
        ++counts.s3_keys;
      } else if (std::holds_alternative<NamespaceRecord>(*record)) {
        ++counts.namespaces;
      } else if (std::holds_alternative<NamespaceSettingRecord>(*record)) {
        ++counts.namespace_settings;
      } else if (std::holds_alternative<ChunkRecord>(*record)) {
        ++counts.chunks;
      } else if (std::holds_alternative<SnapshotOwner>(*record)) {
        ++counts.owners;
      } else if (std::holds_alternative<SnapshotVolume>(*record)) {
        ++counts.volumes;
      } else if (std::holds_alternative<InodeRecord>(*record)) {
        ++counts.inodes;
      } else if (std::holds_alternative<DentryRecord>(*record)) {
        ++counts.dentries;
      } else if (std::holds_alternative<SnapshotXattr>(*record)) {
        ++counts.xattrs;
      } else {
        ++counts.objects;
      }
    }
    // Every setting belongs to a namespace row, so that DeleteNamespace removes it.
    {
      ASSIGN_OR_RETURN(Statement stmt,
                       c.Prepare("SELECT COUNT(*) FROM namespace_settings AS s WHERE NOT EXISTS "
                                 "(SELECT 1 FROM namespaces AS n WHERE n.tenant = s.tenant AND "
                                 "n.name = s.namespace)"));
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      const int64_t orphans = row ? stmt.ColumnInt(0) : 0;
      if (orphans != 0) {
        return InvalidArgumentError("snapshot is inconsistent: " + std::to_string(orphans) +
                                    " namespace settings have no namespace record");
      }
    }
    // The loaded counts must be exactly the references of the loaded objects and owners,
    // or fsck would find the restored store unclean.
    ASSIGN_OR_RETURN(
        Statement stmt,
        c.Prepare("SELECT (SELECT COUNT(*) FROM chunks AS c WHERE c.ref_count <> "
                  "(SELECT COUNT(*) FROM object_chunks AS oc JOIN objects AS o "
                  "ON o.id = oc.object_id WHERE oc.digest = c.digest AND "
                  "o.storage_class = c.storage_class) + "
                  "(SELECT COUNT(*) FROM owner_chunks AS w WHERE w.storage_class = "
                  "c.storage_class AND w.digest = c.digest)) + "
                  "(SELECT COUNT(*) FROM object_chunks AS oc JOIN objects AS o "
                  "ON o.id = oc.object_id WHERE NOT EXISTS (SELECT 1 FROM chunks AS c "
                  "WHERE c.storage_class = o.storage_class AND c.digest = oc.digest)) + "
                  "(SELECT COUNT(*) FROM owner_chunks AS w WHERE NOT EXISTS (SELECT 1 FROM "
                  "chunks AS c WHERE c.storage_class = w.storage_class AND "
                  "c.digest = w.digest))"));
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    const int64_t disagreements = row ? stmt.ColumnInt(0) : 0;
    if (disagreements != 0) {
      return InvalidArgumentError("snapshot is inconsistent: " + std::to_string(disagreements) +
                                  " chunk reference counts disagree with the objects' and "
                                  "owners' chunk lists");
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return counts;
}

}  // namespace cairn::meta::sqlite_internal

namespace cairn::meta {

using sqlite_internal::Connection;
using sqlite_internal::kSchemaVersion;
using sqlite_internal::Migrate;
using sqlite_internal::SqliteMetaStore;

int SqliteSchemaVersion() { return kSchemaVersion; }

Result<std::unique_ptr<MetaStore>> OpenSqliteMetaStore(const std::string& path,
                                                       const SqliteMetaStoreOptions& options) {
  if (options.reader_connections < 1) {
    return InvalidArgumentError("sqlite reader_connections must be at least 1");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> writer,
                   Connection::Open(path, /*writer=*/true, options.busy_timeout_ms));
  RETURN_IF_ERROR(AnnotateStorageError(Migrate(*writer), "migrating"));
  writer->FinishOpening();
  // Checkpoints only (see SqliteMetaStore::OnWalCommit); opened like the writer, so that it
  // syncs the WAL before copying pages and the database file after.
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> checkpointer,
                   Connection::Open(path, /*writer=*/true, options.busy_timeout_ms));
  checkpointer->FinishOpening();
  std::vector<std::unique_ptr<Connection>> readers;
  for (int i = 0; i < options.reader_connections; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<Connection> reader,
                     Connection::Open(path, /*writer=*/false, options.busy_timeout_ms));
    reader->FinishOpening();
    readers.push_back(std::move(reader));
  }
  auto store = std::unique_ptr<SqliteMetaStore>(
      new SqliteMetaStore(std::move(writer), std::move(checkpointer), std::move(readers), path,
                          options.busy_timeout_ms));
  if (options.reserve_bytes >= 0 && path != ":memory:" && !path.starts_with("file:")) {
    store->SetReserve(std::make_unique<platform::SpaceReserve>(
        path + "-reserve", static_cast<uint64_t>(options.reserve_bytes)));
  }
  return std::unique_ptr<MetaStore>(std::move(store));
}

}  // namespace cairn::meta

#undef CAIRN_OBJECT_COLUMNS
#undef CAIRN_LIST_COLUMNS
#undef CAIRN_DROP_REFERENCES
#undef CAIRN_OBJECT_REFERENCES
#undef CAIRN_OWNER_REFERENCES
#undef CAIRN_LIVE_REFERENCES
#undef CAIRN_SNAPSHOT_OWNER_ROW
