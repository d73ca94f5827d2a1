// The PostgreSQL engine. Same tables and semantics as the SQLite engine (the reference);
// only the concurrency story differs, because here several nodes write at once.
//
// Isolation: write transactions run at READ COMMITTED and take explicit locks; reads run in
// REPEATABLE READ READ ONLY snapshots (never aborted for serialization). READ COMMITTED is
// chosen over SERIALIZABLE because the interesting races are all on rows we can name and
// lock, and because INSERT ... ON CONFLICT DO UPDATE under READ COMMITTED always ends in an
// insert or an update (it re-checks after waiting) instead of a serialization failure. The
// argument, transaction by transaction:
//
//  * An object row is locked (SELECT ... FOR UPDATE, state re-checked under the lock) before
//    anything depends on its state: AddChunk, CommitUpload, AbortUpload and DeleteObject on
//    the same id serialize, and a state changed by a concurrent commit is seen (READ
//    COMMITTED re-evaluates the WHERE clause on the newest row version after the wait).
//  * Whoever makes an object COMMITTED (CommitUpload, PutCommitted, PutCommittedAndDelete)
//    first takes a transaction-scoped advisory lock on a hash of (tenant, namespace, key).
//    Two commits to one key therefore run one after the other, and the second one's
//    statements (new snapshots under READ COMMITTED) see and retire the first one's object
//    instead of hitting the unique index. A hash collision only serializes two unrelated keys.
//  * PutCommittedAndDelete then locks the objects it retires (the parts of a multipart
//    upload) in id order and re-checks them under the lock, so of two nodes completing the
//    same upload the second finds the parts DELETING and fails with kNotFound.
//  * Namespaces and S3 keys take no locks beyond the rows their statements touch (INSERT ...
//    ON CONFLICT DO NOTHING makes concurrent creations one success; see DeleteNamespace).
//  * A namespace setting is written under the lock of its namespace row, which
//    SetNamespaceSetting upserts first (created if missing), and DeleteNamespace deletes
//    that row before the settings, so no setting outlives its namespace (see
//    SetNamespaceSetting); settings themselves are upserted, so concurrent setters never fail.
//  * A generic owner's list (SetOwnerChunks, DropOwnerChunks) is replaced under a
//    transaction-scoped advisory lock on a hash of (kind, id): two nodes replacing one
//    owner's list run one after the other, and the second drops the references of the list
//    the first committed, never of one it read before (no reference dropped twice or
//    leaked). Its references go through the same statements as objects' below.
//  * Chunk counts change only through single-row INSERT ... ON CONFLICT DO UPDATE (taking a
//    reference) or UPDATEs of rows first locked in (class, digest) order (dropping
//    references), for objects and owners alike, so counts are never lost. Rows are locked
//    in that order within each batch; PutCommitted
//    locks two batches (the replaced object's chunks, then its own; PutCommittedAndDelete
//    one more per retired part first), so two of them can
//    still deadlock in rare interleavings: PostgreSQL aborts one with 40P01 and that
//    transaction is retried from the start (bounded, max_attempts).
//  * The filesystem tree (postgres_file_tree.cc): every FileTree Write first locks the one
//    fs_volume row, so file tree writes from all nodes run one at a time and each sees the
//    last one's commit; block rows are owner_chunks rows whose references go through the
//    same statements (upsert to take, locked-in-order UPDATE to drop).
//  * CollectGarbageChunks selects candidates FOR UPDATE SKIP LOCKED in one transaction,
//    calls remove_file for each and deletes the row when it returns OK, then commits. The
//    row lock is the "write lock" of the contract: a concurrent AddChunk on the digest either
//    committed first (count > 0: the candidate predicate, re-checked under the lock,
//    excludes the row) or its upsert waits on the row lock and, once the delete commits,
//    inserts a fresh row with count 1 (the uploader then finds no file and writes it); an
//    owner's SetOwnerChunks takes its references through the same upsert. A candidate is
//    also never named by an owner_chunks row (a guard against a wrong count). A row
//    some other transaction holds is skipped, not waited for, so GC on several nodes splits
//    the work and never waits. ReapStalledUploads and PurgeDeletedObjects use SKIP LOCKED
//    too, so an upload that is adding a chunk right now is never reaped under it.
//
// Connections: a bounded pool; each connection prepares a statement on first use and keeps
// it. A connection that is found broken is closed together with every idle one (a server
// restart breaks them all), and a transaction whose BEGIN failed on a broken pooled
// connection is retried on a fresh one, so the first call after a restart usually succeeds.
// A connection lost during COMMIT is never retried: the outcome is unknown (kUnavailable).
#include "meta/postgres/postgres_meta_store.h"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
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
#include "meta/postgres/postgres_internal.h"
#include "meta/row_decoding.h"

namespace cairn::meta {
namespace postgres_internal {

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
using internal::Utf8Ceiling;

// ---- schema ---------------------------------------------------------------------------
//
// kMigrations[i] moves the schema from version i to i + 1; each applied step is a row in
// schema_version. Released steps are never edited: a change is a new step at the end.
//
// Notes on version 1 (the SQLite schema, in PostgreSQL types):
//  - Ids and digests are bytea, which compares with memcmp. Every text column that is
//    compared or sorted is COLLATE "C": byte-wise order, as the contract wants, whatever
//    the database's default collation.
//  - objects_committed_key is both the "one COMMITTED object per key" rule and the listing
//    index (a page is a range scan on (tenant, namespace, key)). Queries spell
//    state = 'COMMITTED' literally so the planner can use the partial index.
//  - object_chunks rows go with the object row (ON DELETE CASCADE).
constexpr const char* kMigrations[] = {
    // 0 -> 1: initial schema.
    R"sql(
CREATE TABLE objects (
  id            bytea PRIMARY KEY CHECK (octet_length(id) = 16),
  tenant        text COLLATE "C" NOT NULL,
  namespace     text COLLATE "C" NOT NULL,
  key           text COLLATE "C" NOT NULL,
  state         text COLLATE "C" NOT NULL CHECK (state IN ('WRITING', 'COMMITTED', 'DELETING')),
  storage_class text COLLATE "C" NOT NULL CHECK (storage_class IN ('hot', 'cold')),
  size_bytes    bigint NOT NULL,
  content_hash  bytea NOT NULL,
  etag          text NOT NULL,
  content_type  text NOT NULL,
  user_metadata text NOT NULL,
  created_at_ms bigint NOT NULL,
  updated_at_ms bigint NOT NULL,
  inline_data   bytea
);
CREATE UNIQUE INDEX objects_committed_key ON objects (tenant, namespace, key)
  WHERE state = 'COMMITTED';
CREATE INDEX objects_state_updated ON objects (state, updated_at_ms, id);

CREATE TABLE object_chunks (
  object_id  bytea NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
  seq        integer NOT NULL,
  digest     bytea NOT NULL,
  size_bytes bigint NOT NULL,
  PRIMARY KEY (object_id, seq)
);
CREATE INDEX object_chunks_digest ON object_chunks (digest);

CREATE TABLE chunks (
  storage_class text COLLATE "C" NOT NULL CHECK (storage_class IN ('hot', 'cold')),
  digest        bytea NOT NULL,
  size_bytes    bigint NOT NULL,
  ref_count     bigint NOT NULL,
  zero_since_ms bigint NOT NULL,
  PRIMARY KEY (storage_class, digest)
);
CREATE INDEX chunks_gc ON chunks (zero_since_ms, storage_class, digest) WHERE ref_count = 0;

CREATE TABLE api_keys (
  key_id        text COLLATE "C" PRIMARY KEY,
  secret_hash   bytea NOT NULL,
  tenants       text NOT NULL,
  scope         text NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
  created_at_ms bigint NOT NULL,
  revoked       boolean NOT NULL,
  description   text NOT NULL
);
)sql",
    // Version 2: a one-row table that readiness probes write, so /ready proves the
    // database can still commit.
    R"sql(
CREATE TABLE readiness_probe (
  id           integer PRIMARY KEY CHECK (id = 1),
  probed_at_ms bigint NOT NULL
);
)sql",
    // Version 3: explicit namespaces (S3 buckets created empty) and S3 access keys, as in
    // the SQLite schema. Names sort byte-wise (COLLATE "C") like every listed column.
    R"sql(
CREATE TABLE namespaces (
  tenant        text COLLATE "C" NOT NULL,
  name          text COLLATE "C" NOT NULL,
  created_at_ms bigint NOT NULL,
  PRIMARY KEY (tenant, name)
);
CREATE TABLE s3_keys (
  access_key    text COLLATE "C" PRIMARY KEY,
  secret        text NOT NULL,
  tenants       text NOT NULL,
  scope         text NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
  created_at_ms bigint NOT NULL,
  revoked       boolean NOT NULL,
  description   text NOT NULL
);
)sql",
    // Version 4: a namespace that exists through its objects was created with its oldest
    // committed object; this index answers that MIN with one seek. Without it GetNamespace
    // (every S3 request checks its bucket) read every committed row of the namespace.
    R"sql(
CREATE INDEX objects_committed_created ON objects (tenant, namespace, created_at_ms)
  WHERE state = 'COMMITTED';
)sql",
    // Version 5: per-chunk block checksums that reads verify (NULL: stored before they were
    // kept; reads then verify the SHA-256), and the time a chunk was found damaged.
    R"sql(
ALTER TABLE chunks ADD COLUMN block_checksums bytea;
ALTER TABLE chunks ADD COLUMN damaged_ms bigint NOT NULL DEFAULT 0;
)sql",
    // Version 6: store identity, the UUID that the storage roots carry too
    // (gc/store_identity.h), so a node never takes another store's chunk files, or all of
    // them, for orphans. One row.
    R"sql(
CREATE TABLE store_identity (
  id            integer PRIMARY KEY CHECK (id = 1),
  store_id      text NOT NULL,
  created_at_ms bigint NOT NULL
);
)sql",
    // Version 7: per-namespace settings for the S3 API (canned ACL, policy, CORS, tags),
    // opaque text by setting name, as in the SQLite schema. A namespace with settings always
    // has a namespaces row, and DeleteNamespace removes both in one transaction.
    R"sql(
CREATE TABLE namespace_settings (
  tenant    text COLLATE "C" NOT NULL,
  namespace text COLLATE "C" NOT NULL,
  name      text COLLATE "C" NOT NULL,
  value     text NOT NULL,
  PRIMARY KEY (tenant, namespace, name)
);
)sql",
    // Version 8: S3 bucket names are global among explicit namespaces; requests from other
    // tenants and anonymous ones find a bucket's owner by its name.
    R"sql(
CREATE INDEX namespaces_by_name ON namespaces (name, tenant);
)sql",
    // Version 9: chunk references held by owners other than objects (files of a filesystem
    // front end, ...), as in the SQLite schema: each row is one reference, counted in
    // chunks.ref_count like an object_chunks row of a live object, and names its own
    // storage class. The index answers GC's guard, fsck's "which owners use this chunk" and
    // the recount.
    R"sql(
CREATE TABLE owner_chunks (
  owner_kind    text COLLATE "C" NOT NULL,
  owner_id      text COLLATE "C" NOT NULL,
  seq           integer NOT NULL,
  storage_class text COLLATE "C" NOT NULL CHECK (storage_class IN ('hot', 'cold')),
  digest        bytea NOT NULL,
  size_bytes    bigint NOT NULL,
  PRIMARY KEY (owner_kind, owner_id, seq)
);
CREATE INDEX owner_chunks_chunk ON owner_chunks (storage_class, digest);
)sql",
    // Version 10: the filesystem volume (meta/file_tree.h, postgres_file_tree.cc), as in
    // the SQLite engine's version 9. One volume per database: fs_volume has one row (id 1),
    // which every FileTree write locks first (so they run one at a time), with the next
    // inode number to hand out. Unsigned numbers are stored as their int64 bit patterns.
    // Names, symlink targets and xattrs are bytea, compared byte-wise. A file's blocks are
    // owner_chunks rows (kind 'file', seq = block index), hence seq becomes bigint.
    R"sql(
ALTER TABLE owner_chunks ALTER COLUMN seq TYPE bigint;
CREATE TABLE fs_volume (
  id             integer PRIMARY KEY CHECK (id = 1),
  name           text COLLATE "C" NOT NULL,
  uuid           text COLLATE "C" NOT NULL,
  created_ms     bigint NOT NULL,
  trash_days     bigint NOT NULL,
  format_version bigint NOT NULL,
  next_ino       bigint NOT NULL
);
CREATE TABLE fs_inodes (
  ino            bigint PRIMARY KEY,
  type           bigint NOT NULL,
  mode           bigint NOT NULL,
  uid            bigint NOT NULL,
  gid            bigint NOT NULL,
  nlink          bigint NOT NULL,
  size           bigint NOT NULL,
  atime_ns       bigint NOT NULL,
  mtime_ns       bigint NOT NULL,
  ctime_ns       bigint NOT NULL,
  btime_ns       bigint NOT NULL,
  rdev           bigint NOT NULL,
  parent         bigint NOT NULL,
  symlink_target bytea NOT NULL,
  change         bigint NOT NULL
);
CREATE TABLE fs_dentries (
  parent bigint NOT NULL,
  name   bytea NOT NULL,
  ino    bigint NOT NULL,
  type   bigint NOT NULL,
  PRIMARY KEY (parent, name)
);
CREATE TABLE fs_xattrs (
  ino   bigint NOT NULL,
  name  bytea NOT NULL,
  value bytea NOT NULL,
  PRIMARY KEY (ino, name)
);
)sql",
    // Version 11: mounts (fs_sessions), inodes unlinked while open (fs_orphans), the change
    // feed (fs_changes; its seq comes from fs_change_seq while the writer holds the
    // fs_volume row, so seqs increase in commit order) and locks (fs_locks), as in the
    // SQLite engine's version 10.
    R"sql(
CREATE TABLE fs_sessions (
  id           bigint PRIMARY KEY,
  host         text COLLATE "C" NOT NULL,
  host_key     text COLLATE "C" NOT NULL,
  pid          bigint NOT NULL,
  mount_point  bytea NOT NULL,
  version      text COLLATE "C" NOT NULL,
  read_only    boolean NOT NULL,
  started_ms   bigint NOT NULL,
  heartbeat_ms bigint NOT NULL,
  expires_ms   bigint NOT NULL
);
CREATE TABLE fs_orphans (
  ino     bigint PRIMARY KEY,
  session bigint NOT NULL
);
CREATE SEQUENCE fs_change_seq;
CREATE TABLE fs_changes (
  seq     bigint PRIMARY KEY DEFAULT nextval('fs_change_seq'),
  session bigint NOT NULL,
  ino     bigint NOT NULL,
  data    boolean NOT NULL,
  parent  bigint NOT NULL,
  name    bytea NOT NULL,
  at_ms   bigint NOT NULL
);
CREATE INDEX fs_changes_at ON fs_changes (at_ms);
CREATE TABLE fs_locks (
  ino       bigint NOT NULL,
  session   bigint NOT NULL,
  owner     bigint NOT NULL,
  kind      bigint NOT NULL,
  start     bigint NOT NULL,
  end_incl  bigint NOT NULL,
  exclusive boolean NOT NULL,
  pid       bigint NOT NULL,
  PRIMARY KEY (ino, session, owner, kind, start)
);
CREATE INDEX fs_locks_session ON fs_locks (session);
)sql",
    // Version 12: kept usage counters of COMMITTED objects per (tenant, namespace, class),
    // so that usage, bucket lists and the store's totals do not count a million rows. A
    // trigger on objects appends one change row per counted row change, in the same
    // transaction, whatever statement made it: insert-only, so commits into one namespace
    // never wait on one counter row (an UPDATE would hold its lock until COMMIT). Readers
    // sum a group's rows; CompactUsageCounters folds them into one row per group.
    R"sql(
CREATE TABLE usage_deltas (
  id            bigserial PRIMARY KEY,
  tenant        text COLLATE "C" NOT NULL,
  namespace     text COLLATE "C" NOT NULL,
  storage_class text COLLATE "C" NOT NULL,
  objects       bigint NOT NULL,
  logical_bytes bigint NOT NULL,
  inline_bytes  bigint NOT NULL
);
CREATE INDEX usage_deltas_group ON usage_deltas (tenant, namespace, storage_class);
CREATE FUNCTION cairn_count_usage() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    IF OLD.state = 'COMMITTED' THEN
      INSERT INTO usage_deltas (tenant, namespace, storage_class, objects, logical_bytes,
                                inline_bytes)
      VALUES (OLD.tenant, OLD.namespace, OLD.storage_class, -1, -OLD.size_bytes,
              -COALESCE(octet_length(OLD.inline_data), 0));
    END IF;
  END IF;
  IF TG_OP <> 'DELETE' THEN
    IF NEW.state = 'COMMITTED' THEN
      INSERT INTO usage_deltas (tenant, namespace, storage_class, objects, logical_bytes,
                                inline_bytes)
      VALUES (NEW.tenant, NEW.namespace, NEW.storage_class, 1, NEW.size_bytes,
              COALESCE(octet_length(NEW.inline_data), 0));
    END IF;
  END IF;
  RETURN NULL;
END
$body$;
CREATE TRIGGER objects_count_usage
  AFTER INSERT OR DELETE OR UPDATE OF tenant, namespace, state, storage_class, size_bytes,
    inline_data ON objects
  FOR EACH ROW EXECUTE FUNCTION cairn_count_usage();
INSERT INTO usage_deltas (tenant, namespace, storage_class, objects, logical_bytes, inline_bytes)
  SELECT tenant, namespace, storage_class, COUNT(*), SUM(size_bytes),
         SUM(COALESCE(octet_length(inline_data), 0))
  FROM objects WHERE state = 'COMMITTED' GROUP BY tenant, namespace, storage_class;
)sql",
    // Version 13: a file unlinked on one mount while another may hold it open. An orphan
    // row of session 0 is pending: since_seq is the change seq of its last commit, and it is
    // deleted once every live session has applied the feed up to there (seen_seq) without
    // claiming it.
    R"sql(
ALTER TABLE fs_sessions ADD COLUMN seen_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE fs_orphans ADD COLUMN since_seq bigint NOT NULL DEFAULT 0;
)sql",
};
constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

// The reference rule, one statement shape for every owner kind: `refs` is a SELECT of
// (storage_class, digest, n), the references one holder has per chunk ($1 and $2 name the
// holder). The chunk rows are first locked in (class, digest) order, the order every
// transaction locks them in, then each count drops by its n; $3 is now_ms, the zero time
// of a count that reaches zero.
#define CAIRN_LOCK_REFERENCED(refs)                               \
  "SELECT 1 FROM chunks AS c JOIN (" refs                         \
  ") AS r "                                                       \
  "ON c.storage_class = r.storage_class AND c.digest = r.digest " \
  "ORDER BY c.storage_class, c.digest FOR UPDATE OF c"
#define CAIRN_DROP_REFERENCES(refs)                                                  \
  "UPDATE chunks SET ref_count = chunks.ref_count - r.n, "                           \
  "zero_since_ms = CASE WHEN chunks.ref_count - r.n = 0 THEN $3::bigint ELSE 0 END " \
  "FROM (" refs                                                                      \
  ") AS r "                                                                          \
  "WHERE chunks.storage_class = r.storage_class AND chunks.digest = r.digest"
// The references of one object ($1 its id, $2 its class) and of one owner ($1 kind, $2 id).
#define CAIRN_OBJECT_REFERENCES                                                 \
  "SELECT $2::text AS storage_class, digest, COUNT(*) AS n FROM object_chunks " \
  "WHERE object_id = $1 GROUP BY digest"
#define CAIRN_OWNER_REFERENCES                                     \
  "SELECT storage_class, digest, COUNT(*) AS n FROM owner_chunks " \
  "WHERE owner_kind = $1 AND owner_id = $2 GROUP BY storage_class, digest"
// Live references per chunk from both kinds of holder: (storage_class, digest, n,
// size_bytes, committed, owners).
#define CAIRN_LIVE_REFERENCES                                                                 \
  "SELECT storage_class, digest, COUNT(*) AS n, MAX(size_bytes) AS size_bytes, "              \
  "       COUNT(*) FILTER (WHERE committed) AS committed, "                                   \
  "       COUNT(*) FILTER (WHERE owned) AS owners FROM ("                                     \
  "  SELECT o.storage_class AS storage_class, oc.digest AS digest, "                          \
  "         oc.size_bytes AS size_bytes, o.state = 'COMMITTED' AS committed, false AS owned " \
  "  FROM object_chunks AS oc JOIN objects AS o ON o.id = oc.object_id "                      \
  "  WHERE o.state IN ('WRITING', 'COMMITTED') "                                              \
  "  UNION ALL "                                                                              \
  "  SELECT storage_class, digest, size_bytes, false, true FROM owner_chunks) AS l "          \
  "GROUP BY storage_class, digest"

// Advisory lock keys. Migrations use the two-int4 form; per-key commit locks the one-int8
// form, which PostgreSQL keeps in a separate space.
constexpr int kLockSpace = 0x43414952;  // "CAIR"
constexpr int kMigrationLock = 1;
constexpr int kNamespaceNameLock = 2;  // with a hash of the name: CreateNamespace
constexpr int kOwnerLock = 3;          // with a hash of (kind, id): an owner's chunk list
constexpr int kUsageLock = 4;          // after kLockSpace: folds and repairs of usage_deltas

// Column order read by ReadObject.
#define CAIRN_OBJECT_COLUMNS                                                           \
  "id, tenant, namespace, key, state, storage_class, size_bytes, content_hash, etag, " \
  "content_type, user_metadata, created_at_ms, updated_at_ms, inline_data"
// The same positions for listings, which skip the two potentially large columns.
#define CAIRN_LIST_COLUMNS                                                             \
  "id, tenant, namespace, key, state, storage_class, size_bytes, content_hash, etag, " \
  "content_type, NULL::text, created_at_ms, updated_at_ms, NULL::bytea"

// Row `row` of a result as the shared row decoders (meta/row_decoding.h) read it.
class PgRow {
 public:
  PgRow(const Rows& rows, int row) : rows_(rows), row_(row) {}
  bool IsNull(int column) const { return rows_.IsNull(row_, column); }
  std::string Text(int column) const { return rows_.Text(row_, column); }
  std::string Bytes(int column) const { return rows_.Bytes(row_, column); }
  Result<int64_t> Int(int column) const { return rows_.Int(row_, column); }
  Result<Digest> Hash(int column) const { return rows_.Hash(row_, column); }
  Result<StorageClass> Class(int column) const { return rows_.Class(row_, column); }
  Result<ObjectId> Id(int column) const { return rows_.Id(row_, column); }

 private:
  const Rows& rows_;
  int row_;
};

Result<ObjectRecord> ReadObject(const Rows& rows, int i) { return DecodeObjectRow(PgRow(rows, i)); }
Result<ChunkRecord> ReadChunk(const Rows& rows, int i) { return DecodeChunkRow(PgRow(rows, i)); }
Result<ApiKeyRecord> ReadApiKey(const Rows& rows, int i) { return DecodeApiKeyRow(PgRow(rows, i)); }
Result<S3KeyRecord> ReadS3Key(const Rows& rows, int i) { return DecodeS3KeyRow(PgRow(rows, i)); }

// Storage failures get the operation prepended; the store's own NotFound etc. already name
// their input.
// ---- encodings ------------------------------------------------------------------------

// Reads a row selected with CAIRN_OBJECT_COLUMNS or CAIRN_LIST_COLUMNS.
// ---- the engine -----------------------------------------------------------------------

// ---- write helpers --------------------------------------------------------------------

Status PostgresMetaStore::LockKey(Connection& c, const ObjectRecord& r) {
  return c
      .Exec("SELECT pg_advisory_xact_lock($1::bigint)",
            Params().Int(KeyLockId(r.tenant, r.namespace_name, r.key)))
      .status();
}

// Sets *inserted to false when the id is taken (the row is left alone).
Status PostgresMetaStore::InsertObject(Connection& c, const ObjectRecord& r, ObjectState state,
                                       bool* inserted) {
  ASSIGN_OR_RETURN(std::string metadata, EncodeMetadata(r.user_metadata));
  Params params;
  params.Id(r.id)
      .Text(r.tenant)
      .Text(r.namespace_name)
      .Text(r.key)
      .Text(ObjectStateName(state))
      .Class(r.storage_class)
      .Int(static_cast<int64_t>(r.size_bytes))
      .Hash(r.content_hash)
      .Text(r.etag)
      .Text(r.content_type)
      .Text(metadata)
      .Int(r.created_at_ms)
      .Int(r.updated_at_ms);
  if (r.inline_data) {
    params.Bytes(*r.inline_data);
  } else {
    params.Null();
  }
  ASSIGN_OR_RETURN(Rows rows, c.Exec("INSERT INTO objects (" CAIRN_OBJECT_COLUMNS
                                     ") VALUES ($1, $2, $3, $4, $5, $6, $7::bigint, $8, $9, "
                                     "$10, $11, $12::bigint, $13::bigint, $14::bytea) "
                                     "ON CONFLICT (id) DO NOTHING",
                                     params));
  *inserted = rows.Affected() == 1;
  return OkStatus();
}

// One upsert per distinct digest, in digest order, so concurrent transactions lock shared
// chunk rows in the same order. zero_since_ms follows the rule shared with the model: now_ms
// when the count becomes zero, 0 whenever it is non-zero (only the final count matters, so
// adding n references at once equals adding them one by one).
Status PostgresMetaStore::TakeReferences(Connection& c, StorageClass storage_class,
                                         const std::vector<ChunkRef>& chunks, TimestampMs now_ms) {
  ReferenceCounts counts;
  for (const ChunkRef& chunk : chunks) counts.Add(storage_class, chunk);
  return TakeReferences(c, counts, now_ms);
}

Status PostgresMetaStore::TakeReferences(Connection& c, const std::vector<OwnerChunk>& chunks,
                                         TimestampMs now_ms) {
  ReferenceCounts counts;
  for (const OwnerChunk& entry : chunks) counts.Add(entry.storage_class, entry.chunk);
  return TakeReferences(c, counts, now_ms);
}

Status PostgresMetaStore::TakeReferences(Connection& c, const ReferenceCounts& counts,
                                         TimestampMs now_ms) {
  for (const auto& [key, entry] : counts.entries) {
    const Digest& digest = key.second;
    Params params;
    params.Text(key.first)
        .Hash(digest)
        .Int(static_cast<int64_t>(entry.size_bytes))
        .Int(entry.references)
        .Int(now_ms);
    if (entry.block_checksums != nullptr) {
      params.Bytes(*entry.block_checksums);
    } else {
      params.Null();
    }
    RETURN_IF_ERROR(
        c.Exec("INSERT INTO chunks (storage_class, digest, size_bytes, ref_count, zero_since_ms, "
               "block_checksums) VALUES ($1, $2, $3::bigint, $4::bigint, 0, $6::bytea) "
               "ON CONFLICT (storage_class, digest) DO UPDATE SET "
               "ref_count = chunks.ref_count + EXCLUDED.ref_count, "
               "zero_since_ms = CASE WHEN chunks.ref_count + EXCLUDED.ref_count = 0 "
               "THEN $5::bigint ELSE 0 END, "
               "block_checksums = COALESCE(chunks.block_checksums, EXCLUDED.block_checksums)",
               params)
            .status());
  }
  return OkStatus();
}

// Locks the object's chunk rows in (class, digest) order, then decrements each distinct
// digest by the number of times the object names it, in one statement.
Status PostgresMetaStore::DropReferences(Connection& c, const ObjectId& id,
                                         StorageClass storage_class, TimestampMs now_ms) {
  RETURN_IF_ERROR(
      c.Exec(CAIRN_LOCK_REFERENCED(CAIRN_OBJECT_REFERENCES), Params().Id(id).Class(storage_class))
          .status());
  return c
      .Exec(CAIRN_DROP_REFERENCES(CAIRN_OBJECT_REFERENCES),
            Params().Id(id).Class(storage_class).Int(now_ms))
      .status();
}

// The same for a generic owner, whose entries name their own classes.
Status PostgresMetaStore::DropReferences(Connection& c, const ChunkOwner& owner,
                                         TimestampMs now_ms) {
  RETURN_IF_ERROR(c.Exec(CAIRN_LOCK_REFERENCED(CAIRN_OWNER_REFERENCES),
                         Params().Text(owner.kind).Text(owner.id))
                      .status());
  return c
      .Exec(CAIRN_DROP_REFERENCES(CAIRN_OWNER_REFERENCES),
            Params().Text(owner.kind).Text(owner.id).Int(now_ms))
      .status();
}

// Under the owner's advisory lock (so two nodes replacing one owner's list run one after
// the other, and each drops the list the other committed, never one it read before):
// drops the old list's references and rows, then records `chunks` in one statement and
// takes their references.
Status PostgresMetaStore::ReplaceOwnerChunks(Connection& c, const ChunkOwner& owner,
                                             const std::vector<OwnerChunk>& chunks,
                                             TimestampMs now_ms) {
  RETURN_IF_ERROR(c.Exec("SELECT pg_advisory_xact_lock($1::int4, hashtext($2 || chr(10) || $3))",
                         Params().Int(kOwnerLock).Text(owner.kind).Text(owner.id))
                      .status());
  RETURN_IF_ERROR(DropReferences(c, owner, now_ms));
  RETURN_IF_ERROR(c.Exec("DELETE FROM owner_chunks WHERE owner_kind = $1 AND owner_id = $2",
                         Params().Text(owner.kind).Text(owner.id))
                      .status());
  if (chunks.empty()) return OkStatus();
  // Arrays in text form: class names, digests as hex and sizes need no quoting.
  std::string classes = "{", digests = "{", sizes = "{";
  for (size_t i = 0; i < chunks.size(); ++i) {
    const char* separator = i == 0 ? "" : ",";
    classes += separator + std::string(StorageClassName(chunks[i].storage_class));
    digests += separator + chunks[i].chunk.digest.ToHex();
    sizes += separator + std::to_string(chunks[i].chunk.size_bytes);
  }
  classes += "}";
  digests += "}";
  sizes += "}";
  RETURN_IF_ERROR(
      c.Exec("INSERT INTO owner_chunks (owner_kind, owner_id, seq, storage_class, digest, "
             "size_bytes) SELECT $1, $2, u.ord - 1, u.class, decode(u.digest, 'hex'), u.size "
             "FROM unnest($3::text[], $4::text[], $5::bigint[]) WITH ORDINALITY "
             "AS u(class, digest, size, ord)",
             Params().Text(owner.kind).Text(owner.id).Text(classes).Text(digests).Text(sizes))
          .status());
  return TakeReferences(c, chunks, now_ms);
}

namespace {

// Inserts the owner's entry `seq` (no reference); `on_conflict` ends the statement.
Result<Rows> InsertOwnerEntry(Connection& c, const ChunkOwner& owner, uint64_t seq,
                              const OwnerChunk& entry, std::string_view on_conflict = "") {
  return c.Exec(
      "INSERT INTO owner_chunks (owner_kind, owner_id, seq, storage_class, digest, "
      "size_bytes) VALUES ($1, $2, $3::bigint, $4, $5::bytea, $6::bigint)" +
          std::string(on_conflict),
      Params()
          .Text(owner.kind)
          .Text(owner.id)
          .Int(static_cast<int64_t>(seq))
          .Class(entry.storage_class)
          .Hash(entry.chunk.digest)
          .Int(static_cast<int64_t>(entry.chunk.size_bytes)));
}

}  // namespace

// One entry of an owner, as the file tree's block rows need: the new reference is taken
// before the old one is dropped. The caller serializes writers of the owner (the file
// tree's writes hold the fs_volume row).
Status PostgresMetaStore::PutOwnerEntry(Connection& c, const ChunkOwner& owner, uint64_t seq,
                                        const OwnerChunk& entry, TimestampMs now_ms) {
  RETURN_IF_ERROR(TakeReferences(c, std::vector<OwnerChunk>{entry}, now_ms));
  // Most entries are new (a file's blocks as it is written): then the insert is all.
  ASSIGN_OR_RETURN(Rows added, InsertOwnerEntry(c, owner, seq, entry,
                                                " ON CONFLICT (owner_kind, owner_id, seq) DO "
                                                "NOTHING RETURNING 1"));
  if (added.size() == 1) return OkStatus();
  RETURN_IF_ERROR(DropOwnerEntries(c, owner, seq, seq, now_ms));
  return InsertOwnerEntry(c, owner, seq, entry).status();
}

// The reference first, as PutOwnerEntry takes it (the chunk row's lock, then the entry).
Status PostgresMetaStore::AddOwnerEntry(Connection& c, const ChunkOwner& owner, uint64_t seq,
                                        const OwnerChunk& entry, TimestampMs now_ms) {
  RETURN_IF_ERROR(TakeReferences(c, std::vector<OwnerChunk>{entry}, now_ms));
  return InsertOwnerEntry(c, owner, seq, entry).status();
}

// DropReferences for the owner's entries with seq in a range: the chunk rows are locked in
// (class, digest) order first, as every transaction locks them.
Status PostgresMetaStore::DropOwnerEntries(Connection& c, const ChunkOwner& owner, uint64_t first,
                                           uint64_t last, TimestampMs now_ms) {
  RETURN_IF_ERROR(
      c.Exec(CAIRN_LOCK_REFERENCED("SELECT storage_class, digest, COUNT(*) AS n FROM owner_chunks "
                                   "WHERE owner_kind = $1 AND owner_id = $2 AND seq >= $3::bigint "
                                   "AND seq <= $4::bigint GROUP BY storage_class, digest"),
             Params()
                 .Text(owner.kind)
                 .Text(owner.id)
                 .Int(static_cast<int64_t>(first))
                 .Int(static_cast<int64_t>(last)))
          .status());
  RETURN_IF_ERROR(
      c.Exec(CAIRN_DROP_REFERENCES("SELECT storage_class, digest, COUNT(*) AS n FROM owner_chunks "
                                   "WHERE owner_kind = $1 AND owner_id = $2 AND seq >= $4::bigint "
                                   "AND seq <= $5::bigint GROUP BY storage_class, digest"),
             Params()
                 .Text(owner.kind)
                 .Text(owner.id)
                 .Int(now_ms)
                 .Int(static_cast<int64_t>(first))
                 .Int(static_cast<int64_t>(last)))
          .status());
  return c
      .Exec(
          "DELETE FROM owner_chunks WHERE owner_kind = $1 AND owner_id = $2 AND "
          "seq >= $3::bigint AND seq <= $4::bigint",
          Params()
              .Text(owner.kind)
              .Text(owner.id)
              .Int(static_cast<int64_t>(first))
              .Int(static_cast<int64_t>(last)))
      .status();
}

Status PostgresMetaStore::MarkDeleting(Connection& c, const ObjectId& id,
                                       StorageClass storage_class, TimestampMs now_ms) {
  RETURN_IF_ERROR(DropReferences(c, id, storage_class, now_ms));
  return c
      .Exec("UPDATE objects SET state = 'DELETING', updated_at_ms = $2::bigint WHERE id = $1",
            Params().Id(id).Int(now_ms))
      .status();
}

Result<std::optional<ObjectId>> PostgresMetaStore::RetireObjectAtKey(Connection& c,
                                                                     const ObjectRecord& r,
                                                                     TimestampMs now_ms) {
  ASSIGN_OR_RETURN(Rows rows,
                   c.Exec("SELECT id, storage_class FROM objects WHERE tenant = $1 AND "
                          "namespace = $2 AND key = $3 AND state = 'COMMITTED' FOR UPDATE",
                          Params().Text(r.tenant).Text(r.namespace_name).Text(r.key)));
  if (rows.empty()) return std::optional<ObjectId>();
  ASSIGN_OR_RETURN(ObjectId old_id, rows.Id(0, 0));
  ASSIGN_OR_RETURN(StorageClass old_class, rows.Class(0, 1));
  RETURN_IF_ERROR(MarkDeleting(c, old_id, old_class, now_ms));
  return std::optional<ObjectId>(old_id);
}

// ---- methods --------------------------------------------------------------------------

Status PostgresMetaStore::Ping() {
  return Write("readiness probe", [](Connection& c) {
    return c
        .Exec(
            "INSERT INTO readiness_probe (id, probed_at_ms) "
            "VALUES (1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint) "
            "ON CONFLICT (id) DO UPDATE SET probed_at_ms = EXCLUDED.probed_at_ms")
        .status();
  });
}

Result<std::optional<std::string>> PostgresMetaStore::GetStoreIdentity() {
  std::optional<std::string> id;
  Status status = Read("read the store identity", [&](Connection& c) -> Status {
    id.reset();
    ASSIGN_OR_RETURN(Rows rows, c.Exec("SELECT store_id FROM store_identity WHERE id = 1"));
    if (!rows.empty()) id = rows.Text(0, 0);
    return OkStatus();
  });
  if (!status.ok()) return status;
  return id;
}

Result<std::string> PostgresMetaStore::SetStoreIdentityIfAbsent(const std::string& id) {
  if (id.empty()) return InvalidArgumentError("a store identity must not be empty");
  RETURN_IF_ERROR(CheckText("store identity", id));
  std::string recorded;
  // ON CONFLICT DO NOTHING waits for a concurrent inserter of the row and then skips, so
  // every node starting together reads back the one identity that committed first.
  Status status = Write("set the store identity to " + id, [&](Connection& c) -> Status {
    RETURN_IF_ERROR(c.Exec("INSERT INTO store_identity (id, store_id, created_at_ms) "
                           "VALUES (1, $1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint) "
                           "ON CONFLICT (id) DO NOTHING",
                           Params().Text(id))
                        .status());
    ASSIGN_OR_RETURN(Rows rows, c.Exec("SELECT store_id FROM store_identity WHERE id = 1"));
    if (rows.empty()) return InternalError("the store identity row vanished");
    recorded = rows.Text(0, 0);
    return OkStatus();
  });
  if (!status.ok()) return status;
  return recorded;
}

Result<uint64_t> PostgresMetaStore::CountChunks() {
  uint64_t count = 0;
  Status status = Read("count chunks", [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Rows rows, c.Exec("SELECT COUNT(*)::bigint FROM chunks"));
    ASSIGN_OR_RETURN(int64_t n, rows.Int(0, 0));
    count = static_cast<uint64_t>(n);
    return OkStatus();
  });
  if (!status.ok()) return status;
  return count;
}

Result<std::vector<std::string>> PostgresMetaStore::CheckIntegrity() {
  std::vector<std::string> problems;
  // PostgreSQL checks its own pages; what fsck can see from here is whether the server
  // answers, commits, and holds the schema this binary expects.
  Status ping = Ping();
  if (!ping.ok()) problems.push_back("metadata database does not commit: " + ping.ToString());
  Status status = Read("check the schema version", [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Rows rows,
                     c.Exec("SELECT COALESCE(MAX(version), 0)::bigint FROM schema_version"));
    ASSIGN_OR_RETURN(int64_t version, rows.Int(0, 0));
    if (version != kSchemaVersion) {
      problems.push_back("metadata database has schema version " + std::to_string(version) +
                         ", expected " + std::to_string(kSchemaVersion));
    }
    return OkStatus();
  });
  if (!status.ok()) problems.push_back("metadata database unreachable: " + status.ToString());
  return problems;
}

Status PostgresMetaStore::BeginUpload(const ObjectRecord& object) {
  RETURN_IF_ERROR(CheckUserMetadata(object));
  RETURN_IF_ERROR(CheckObjectText(object));
  return Write("begin upload " + object.id.ToString(), [&](Connection& c) -> Status {
    bool inserted = false;
    RETURN_IF_ERROR(InsertObject(c, object, ObjectState::kWriting, &inserted));
    if (!inserted) {
      return AlreadyExistsError("object id " + object.id.ToString() + " is already taken");
    }
    return OkStatus();
  });
}

Status PostgresMetaStore::AddChunk(const ObjectId& id, uint32_t sequence, const ChunkRef& chunk,
                                   TimestampMs now_ms) {
  const std::string context =
      "add chunk " + std::to_string(sequence) + " to object " + id.ToString();
  return Write(context, [&](Connection& c) -> Status {
    // Not durable on its own (no wait for the WAL flush): CommitUpload's synchronous commit
    // flushes the WAL past this record, and checks that no chunk went missing.
    RETURN_IF_ERROR(c.Exec("SET LOCAL synchronous_commit TO OFF", Params()).status());
    ASSIGN_OR_RETURN(Rows object, c.Exec("SELECT storage_class FROM objects "
                                         "WHERE id = $1 AND state = 'WRITING' FOR UPDATE",
                                         Params().Id(id)));
    if (object.empty()) return NotWritingError(id);
    ASSIGN_OR_RETURN(StorageClass storage_class, object.Class(0, 0));
    {
      // MAX over the primary key is one index probe, unlike COUNT(*).
      ASSIGN_OR_RETURN(Rows rows, c.Exec("SELECT COALESCE(MAX(seq) + 1, 0)::bigint "
                                         "FROM object_chunks WHERE object_id = $1",
                                         Params().Id(id)));
      ASSIGN_OR_RETURN(int64_t expected, rows.Int(0, 0));
      RETURN_IF_ERROR(CheckSequence(id, sequence, static_cast<uint64_t>(expected)));
    }
    RETURN_IF_ERROR(c.Exec("INSERT INTO object_chunks (object_id, seq, digest, size_bytes) "
                           "VALUES ($1, $2::integer, $3, $4::bigint)",
                           Params()
                               .Id(id)
                               .Int(sequence)
                               .Hash(chunk.digest)
                               .Int(static_cast<int64_t>(chunk.size_bytes)))
                        .status());
    RETURN_IF_ERROR(c.Exec("UPDATE objects SET updated_at_ms = $2::bigint WHERE id = $1",
                           Params().Id(id).Int(now_ms))
                        .status());
    return TakeReferences(c, storage_class, {chunk}, now_ms);
  });
}

Result<CommitResult> PostgresMetaStore::CommitUpload(const ObjectId& id,
                                                     const ObjectRecord& final_fields,
                                                     TimestampMs now_ms) {
  ObjectRecord checked = final_fields;
  checked.id = id;
  RETURN_IF_ERROR(CheckUserMetadata(checked));
  RETURN_IF_ERROR(CheckText("etag of object " + id.ToString(), final_fields.etag));
  RETURN_IF_ERROR(CheckText("content type of object " + id.ToString(), final_fields.content_type));
  ASSIGN_OR_RETURN(std::string metadata, EncodeMetadata(final_fields.user_metadata));
  CommitResult result;
  Status status = Write("commit upload " + id.ToString(), [&](Connection& c) -> Status {
    result = CommitResult();
    ASSIGN_OR_RETURN(Rows rows, c.Exec("SELECT " CAIRN_OBJECT_COLUMNS " FROM objects "
                                       "WHERE id = $1 AND state = 'WRITING' FOR UPDATE",
                                       Params().Id(id)));
    if (rows.empty()) return NotWritingError(id);
    ASSIGN_OR_RETURN(ObjectRecord record, ReadObject(rows, 0));
    {
      ASSIGN_OR_RETURN(Rows sum, c.Exec("SELECT COALESCE(SUM(size_bytes), 0)::bigint "
                                        "FROM object_chunks WHERE object_id = $1",
                                        Params().Id(id)));
      ASSIGN_OR_RETURN(int64_t recorded, sum.Int(0, 0));
      RETURN_IF_ERROR(
          CheckChunkTotal(id, static_cast<uint64_t>(recorded), final_fields.size_bytes));
    }
    RETURN_IF_ERROR(LockKey(c, record));
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
    RETURN_IF_ERROR(c.Exec("UPDATE objects SET state = 'COMMITTED', size_bytes = $2::bigint, "
                           "content_hash = $3, etag = $4, content_type = $5, "
                           "user_metadata = $6, updated_at_ms = $7::bigint WHERE id = $1",
                           Params()
                               .Id(id)
                               .Int(static_cast<int64_t>(record.size_bytes))
                               .Hash(record.content_hash)
                               .Text(record.etag)
                               .Text(record.content_type)
                               .Text(metadata)
                               .Int(now_ms))
                        .status());
    result.object = std::move(record);
    return OkStatus();
  });
  if (!status.ok()) return status;
  return result;
}

// Lock order: the key's advisory lock, then the rows of `also_delete` in id order, then the
// object at the key, then chunk rows. The key lock comes first as in PutCommitted and
// CommitUpload, so two compositions of one key (two nodes completing the same multipart
// upload) queue on it, and the second one then finds the parts DELETING (READ COMMITTED
// re-reads them after the wait) and fails with kNotFound: exactly one succeeds. Parts are
// all locked and checked before any reference is dropped, so no chunk row is held while
// waiting for a part. The remaining cycles (a part that is the object at another
// composition's key; a DeleteObject of the object at the key sharing chunks) are the rare
// multi-batch ones described at the top: 40P01, retried.
Status PostgresMetaStore::PutCommittedIn(Connection& c, const ObjectRecord& object,
                                         const std::vector<ChunkRef>& chunks,
                                         const std::vector<ObjectId>& also_delete,
                                         TimestampMs now_ms, CommitResult* result) {
  *result = CommitResult();
  const Status taken =
      AlreadyExistsError("object id " + object.id.ToString() + " is already taken");
  {
    ASSIGN_OR_RETURN(Rows rows,
                     c.Exec("SELECT 1 FROM objects WHERE id = $1", Params().Id(object.id)));
    if (!rows.empty()) return taken;
  }
  RETURN_IF_ERROR(LockKey(c, object));
  // A listed id twice is retired once (std::set), like a set of parts.
  std::vector<std::pair<ObjectId, StorageClass>> retiring;
  for (const ObjectId& id : std::set<ObjectId>(also_delete.begin(), also_delete.end())) {
    ASSIGN_OR_RETURN(Rows rows, c.Exec("SELECT storage_class FROM objects WHERE id = $1 AND "
                                       "tenant = $2 AND state = 'COMMITTED' FOR UPDATE",
                                       Params().Id(id).Text(object.tenant)));
    if (rows.empty()) return NoSuchObjectError(id);  // rolls back: nothing changes
    ASSIGN_OR_RETURN(StorageClass storage_class, rows.Class(0, 0));
    retiring.emplace_back(id, storage_class);
  }
  for (const auto& [id, storage_class] : retiring) {
    RETURN_IF_ERROR(MarkDeleting(c, id, storage_class, now_ms));
  }
  ASSIGN_OR_RETURN(result->replaced_object, RetireObjectAtKey(c, object, now_ms));
  ObjectRecord record = object;
  record.state = ObjectState::kCommitted;
  record.updated_at_ms = now_ms;
  bool inserted = false;
  RETURN_IF_ERROR(InsertObject(c, record, ObjectState::kCommitted, &inserted));
  if (!inserted) return taken;  // a concurrent insert of the same id; rolls back the retire
  for (size_t i = 0; i < chunks.size(); ++i) {
    RETURN_IF_ERROR(c.Exec("INSERT INTO object_chunks (object_id, seq, digest, size_bytes) "
                           "VALUES ($1, $2::integer, $3, $4::bigint)",
                           Params()
                               .Id(record.id)
                               .Int(static_cast<int64_t>(i))
                               .Hash(chunks[i].digest)
                               .Int(static_cast<int64_t>(chunks[i].size_bytes)))
                        .status());
  }
  RETURN_IF_ERROR(TakeReferences(c, record.storage_class, chunks, now_ms));
  result->object = std::move(record);
  return OkStatus();
}

Result<CommitResult> PostgresMetaStore::PutCommitted(const ObjectRecord& object,
                                                     const std::vector<ChunkRef>& chunks,
                                                     TimestampMs now_ms) {
  RETURN_IF_ERROR(CheckPutCommitted(object, chunks));
  RETURN_IF_ERROR(CheckObjectText(object));
  CommitResult result;
  Status status = Write("put object " + object.id.ToString(), [&](Connection& c) -> Status {
    return PutCommittedIn(c, object, chunks, /*also_delete=*/{}, now_ms, &result);
  });
  if (!status.ok()) return status;
  return result;
}

Status PostgresMetaStore::AbortUpload(const ObjectId& id, TimestampMs now_ms) {
  return Write("abort upload " + id.ToString(), [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Rows rows, c.Exec("SELECT storage_class FROM objects "
                                       "WHERE id = $1 AND state = 'WRITING' FOR UPDATE",
                                       Params().Id(id)));
    if (rows.empty()) return NotWritingError(id);
    ASSIGN_OR_RETURN(StorageClass storage_class, rows.Class(0, 0));
    RETURN_IF_ERROR(DropReferences(c, id, storage_class, now_ms));
    // object_chunks rows go by ON DELETE CASCADE.
    return c.Exec("DELETE FROM objects WHERE id = $1", Params().Id(id)).status();
  });
}

Result<ObjectRecord> PostgresMetaStore::GetObject(const std::string& tenant, const ObjectId& id) {
  if (!IsStorableText(tenant)) return NoSuchObjectError(id);
  ObjectRecord record;
  Status status = Read("get object " + id.ToString(), [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Rows rows, c.Exec("SELECT " CAIRN_OBJECT_COLUMNS " FROM objects "
                                       "WHERE id = $1 AND state = 'COMMITTED' AND tenant = $2",
                                       Params().Id(id).Text(tenant)));
    if (rows.empty()) return NoSuchObjectError(id);
    ASSIGN_OR_RETURN(record, ReadObject(rows, 0));
    return OkStatus();
  });
  if (!status.ok()) return status;
  return record;
}

Result<ObjectRecord> PostgresMetaStore::GetObjectByKey(const std::string& tenant,
                                                       const std::string& namespace_name,
                                                       const std::string& key) {
  const Status missing =
      NotFoundError("no object at key '" + key + "' in namespace " + namespace_name);
  // Text PostgreSQL cannot store names no stored object.
  if (!IsStorableText(tenant) || !IsStorableText(namespace_name) || !IsStorableText(key)) {
    return missing;
  }
  ObjectRecord record;
  Status status =
      Read("get object by key in namespace " + namespace_name, [&](Connection& c) -> Status {
        ASSIGN_OR_RETURN(Rows rows, c.Exec("SELECT " CAIRN_OBJECT_COLUMNS
                                           " FROM objects WHERE tenant = $1 AND namespace = $2 AND "
                                           "key = $3 AND state = 'COMMITTED'",
                                           Params().Text(tenant).Text(namespace_name).Text(key)));
        if (rows.empty()) return missing;
        ASSIGN_OR_RETURN(record, ReadObject(rows, 0));
        return OkStatus();
      });
  if (!status.ok()) return status;
  return record;
}

Result<std::vector<ChunkRef>> PostgresMetaStore::GetChunks(const ObjectId& id) {
  std::vector<ChunkRef> chunks;
  Status status = Read("get chunks of object " + id.ToString(), [&](Connection& c) -> Status {
    chunks.clear();
    {
      ASSIGN_OR_RETURN(Rows rows, c.Exec("SELECT 1 FROM objects WHERE id = $1", Params().Id(id)));
      if (rows.empty()) return NoSuchObjectError(id);
    }
    ASSIGN_OR_RETURN(
        Rows rows,
        c.Exec("SELECT oc.digest, oc.size_bytes, c.block_checksums, COALESCE(c.damaged_ms, 0) "
               "FROM object_chunks AS oc JOIN objects AS o ON o.id = oc.object_id "
               "LEFT JOIN chunks AS c ON c.storage_class = o.storage_class AND "
               "c.digest = oc.digest WHERE oc.object_id = $1 ORDER BY oc.seq",
               Params().Id(id)));
    for (int i = 0; i < rows.size(); ++i) {
      ChunkRef chunk;
      ASSIGN_OR_RETURN(chunk.digest, rows.Hash(i, 0));
      ASSIGN_OR_RETURN(int64_t size, rows.Int(i, 1));
      chunk.size_bytes = static_cast<uint64_t>(size);
      if (!rows.IsNull(i, 2)) chunk.block_checksums = rows.Bytes(i, 2);
      ASSIGN_OR_RETURN(chunk.damaged_ms, rows.Int(i, 3));
      chunks.push_back(std::move(chunk));
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return chunks;
}

// Runs one listing statement; with `plans`, first records its plan for these parameters.
Result<Rows> RunListStatement(Connection& c, const std::string& sql, const Params& params,
                              std::vector<StatementPlan>* plans) {
  if (plans != nullptr &&
      std::none_of(plans->begin(), plans->end(),
                   [&](const StatementPlan& known) { return known.sql == sql; })) {
    // The plan for these values (what the first executions of the statement get)...
    ASSIGN_OR_RETURN(Rows custom, c.Exec("EXPLAIN (ANALYZE, BUFFERS) " + sql, params));
    StatementPlan plan{sql, "custom plan:\n"};
    for (int i = 0; i < custom.size(); ++i) plan.plan += custom.Text(i, 0) + "\n";
    // ...and the generic one PostgreSQL may switch the cached statement to after five.
    std::string arguments;
    const std::vector<const char*> values = params.Values();
    const std::vector<int> lengths = params.Lengths();
    for (size_t i = 0; i < values.size(); ++i) {
      char* literal = PQescapeLiteral(c.raw(), values[i], static_cast<size_t>(lengths[i]));
      if (literal == nullptr) return InternalError("cannot quote a listing parameter");
      arguments += (i == 0 ? "" : ", ") + std::string(literal);
      PQfreemem(literal);
    }
    RETURN_IF_ERROR(c.Script(("PREPARE cairn_explain_list AS " + sql).c_str()));
    RETURN_IF_ERROR(c.Script("SET LOCAL plan_cache_mode = force_generic_plan"));
    ASSIGN_OR_RETURN(Rows generic, c.Exec("EXPLAIN (ANALYZE, BUFFERS) EXECUTE cairn_explain_list(" +
                                          arguments + ")"));
    RETURN_IF_ERROR(c.Script("DEALLOCATE cairn_explain_list; RESET plan_cache_mode"));
    plan.plan += "generic plan:\n";
    for (int i = 0; i < generic.size(); ++i) plan.plan += generic.Text(i, 0) + "\n";
    plans->push_back(std::move(plan));
  }
  return c.Exec(sql, params);
}

// The listed columns of `o`, in ReadObject's order, named for the walk below.
#define CAIRN_WALK_COLUMNS                                                                 \
  "o.id, o.tenant, o.namespace, o.key, o.state, o.storage_class, o.size_bytes, "           \
  "o.content_hash, o.etag, o.content_type, NULL::text AS user_metadata, o.created_at_ms, " \
  "o.updated_at_ms, NULL::bytea AS inline_data"
// The part of o.key before the first delimiter ($5) after the prefix ($7 characters), or
// NULL when the key does not roll up into a common prefix.
#define CAIRN_WALK_DIR                                         \
  "CASE WHEN strpos(substr(o.key, $7::int + 1), $5) > 0 THEN " \
  "left(o.key, $7::int + strpos(substr(o.key, $7::int + 1), $5) - 1) END"

// Keyset pagination on objects_committed_key: a page is the index range
//   (tenant, namespace, lower) .. (tenant, namespace, prefix successor)
// with one lower bound picked in C++ (no LIKE: a prefix is a range). Bounds that are not
// storable text (a prefix cut inside a character, "\xff") are replaced by their
// Utf8Ceiling, which selects exactly the same stored keys.
//
// With a delimiter, the first statement is that same range; once it meets a key that rolls
// up into a common prefix, the rest of the page comes from one recursive statement (a
// "loose index scan") that fetches one entry per step with an index seek: the next key,
// or after a common prefix dir + delimiter the first key >= dir + successor(delimiter).
// Keys under a common prefix are never read, and the page costs two round trips.
Status ListOn(Connection& c, const ListRequest& request, ListPage* page,
              std::vector<StatementPlan>* plans) {
  *page = ListPage();
  if (!IsStorableText(request.tenant) || !IsStorableText(request.namespace_name)) {
    return OkStatus();
  }
  const bool after_start = request.start_after >= request.prefix;
  std::string lower;
  bool exclusive = false;
  if (after_start && IsStorableText(request.start_after)) {
    lower = request.start_after;
    exclusive = true;
  } else {
    std::optional<std::string> ceiling =
        Utf8Ceiling(after_start ? request.start_after : request.prefix);
    if (!ceiling) return OkStatus();  // no storable key is that large
    lower = std::move(*ceiling);
  }
  std::optional<std::string> upper;
  if (std::string successor = PrefixSuccessor(request.prefix); !successor.empty()) {
    upper = Utf8Ceiling(successor);  // none: every storable key is below the successor
  }
  // A delimiter that is not storable text occurs in no key.
  const bool delimit = !request.delimiter.empty() && IsStorableText(request.delimiter);
  // The walk seeks to dir + this after a common prefix dir + delimiter; without it (a
  // delimiter ending in U+10FFFF) each common prefix costs a plain statement instead.
  std::optional<std::string> seek_suffix;
  if (delimit) seek_suffix = Utf8Ceiling(PrefixSuccessor(request.delimiter));
  int64_t prefix_chars = 0;  // characters that start inside the prefix
  for (char b : request.prefix) prefix_chars += (static_cast<unsigned char>(b) & 0xc0) != 0x80;

  uint32_t entries = 0;
  bool walk = false;
  // With a delimiter the first plain pass is a short probe: when a common prefix comes
  // first (a listing at the top of a tree), reading a whole page of keys under it would
  // be wasted; when none does (a leaf directory), the rest of the page is one more pass.
  bool probe = delimit;
  constexpr int64_t kProbeRows = 64;
  // Bounded: a plain pass ends the page, adds a common prefix or ends the probe (once);
  // a walk ends the page.
  while (true) {
    const int64_t wanted = static_cast<int64_t>(request.limit - entries) + 1;  // +1: truncated
    const int64_t asked = probe && !walk ? std::min(wanted, kProbeRows) : wanted;
    std::string sql;
    Params params;
    params.Text(request.tenant).Text(request.namespace_name).Text(lower).Int(asked);
    if (!walk) {
      sql = "SELECT " CAIRN_LIST_COLUMNS
            " FROM objects WHERE tenant = $1 AND namespace = $2 AND state = 'COMMITTED'";
      sql += exclusive ? " AND key > $3" : " AND key >= $3";
      if (upper) sql += " AND key < $5";
      sql += " ORDER BY key LIMIT $4::bigint";
      if (upper) params.Text(*upper);
    } else {
      const std::string bound = upper ? " AND o.key < $8" : "";
      sql = "WITH RECURSIVE walk AS ((SELECT 1::bigint AS n, " CAIRN_WALK_COLUMNS
            ", " CAIRN_WALK_DIR
            " AS dir FROM objects o WHERE o.tenant = $1 AND o.namespace = $2 AND "
            "o.state = 'COMMITTED' AND o.key >= $3" +
            bound +
            " ORDER BY o.key LIMIT 1) UNION ALL SELECT w.n + 1, x.* FROM walk w CROSS JOIN "
            "LATERAL (SELECT " CAIRN_WALK_COLUMNS ", " CAIRN_WALK_DIR
            " FROM objects o WHERE o.tenant = $1 AND o.namespace = $2 AND "
            "o.state = 'COMMITTED' AND o.key > w.key AND "
            "o.key >= COALESCE(w.dir || $6, w.key)" +
            bound +
            " ORDER BY o.key LIMIT 1) x WHERE w.n < $4::bigint) "
            "SELECT id, tenant, namespace, key, state, storage_class, size_bytes, "
            "content_hash, etag, content_type, user_metadata, created_at_ms, updated_at_ms, "
            "inline_data FROM walk ORDER BY n";
      params.Text(request.delimiter).Text(*seek_suffix).Int(prefix_chars);
      if (upper) params.Text(*upper);
    }
    ASSIGN_OR_RETURN(Rows rows, RunListStatement(c, sql, params, plans));
    std::optional<std::string> common_prefix;
    for (int i = 0; i < rows.size() && !common_prefix; ++i) {
      if (entries == request.limit) {
        page->truncated = true;
        return OkStatus();
      }
      ++entries;
      std::string key = rows.Text(i, 3);
      const size_t common =
          delimit ? internal::CommonPrefixLength(key, request.prefix.size(), request.delimiter)
                  : std::string::npos;
      if (common == std::string::npos) {
        ASSIGN_OR_RETURN(ObjectRecord record, ReadObject(rows, i));
        page->objects.push_back(std::move(record));
        continue;
      }
      key.resize(common);
      page->common_prefixes.push_back(key);
      if (!walk) common_prefix = std::move(key);  // the walk has seeked past it already
    }
    if (!common_prefix) {
      // Fewer rows than asked: the range is exhausted; else only the probe ended.
      if (rows.size() < asked || walk || !probe) return OkStatus();
      probe = false;
      lower = rows.Text(rows.size() - 1, 3);
      exclusive = true;
      continue;
    }
    probe = false;
    const std::string successor = PrefixSuccessor(*common_prefix);
    if (successor.empty()) return OkStatus();
    std::optional<std::string> next = Utf8Ceiling(successor);
    if (!next) return OkStatus();  // no storable key follows the common prefix
    lower = std::move(*next);
    exclusive = false;
    walk = seek_suffix.has_value();
  }
}

Result<ListPage> PostgresMetaStore::ListObjects(const ListRequest& request) {
  RETURN_IF_ERROR(CheckListRequest(request));
  ListPage page;
  Status status = Read("list namespace " + request.namespace_name,
                       [&](Connection& c) -> Status { return ListOn(c, request, &page, nullptr); });
  if (!status.ok()) return status;
  return page;
}

Result<std::vector<StatementPlan>> PostgresMetaStore::ExplainList(const ListRequest& request) {
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

Result<ObjectRecord> PostgresMetaStore::DeleteObject(const std::string& tenant, const ObjectId& id,
                                                     TimestampMs now_ms) {
  if (!IsStorableText(tenant)) return NoSuchObjectError(id);
  ObjectRecord before;
  Status status = Write("delete object " + id.ToString(), [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Rows rows, c.Exec("SELECT " CAIRN_OBJECT_COLUMNS " FROM objects WHERE id = $1 "
                                       "AND state = 'COMMITTED' AND tenant = $2 FOR UPDATE",
                                       Params().Id(id).Text(tenant)));
    if (rows.empty()) return NoSuchObjectError(id);
    ASSIGN_OR_RETURN(before, ReadObject(rows, 0));
    return MarkDeleting(c, id, before.storage_class, now_ms);
  });
  if (!status.ok()) return status;
  return before;
}

Result<std::vector<UsageRow>> PostgresMetaStore::Usage(const std::string& tenant) {
  CompactUsageCountersNowAndThen();
  std::vector<UsageRow> rows;
  if (!IsStorableText(tenant)) return rows;
  Status status = Read("usage of tenant " + tenant, [&](Connection& c) -> Status {
    rows.clear();
    std::map<std::pair<std::string, std::string>, size_t> index;  // (namespace, class) -> row
    {
      ASSIGN_OR_RETURN(Rows result,
                       c.Exec("SELECT namespace, storage_class, SUM(objects)::bigint, "
                              "SUM(logical_bytes)::bigint, SUM(inline_bytes)::bigint "
                              "FROM usage_deltas WHERE tenant = $1 "
                              "GROUP BY namespace, storage_class HAVING SUM(objects) <> 0 "
                              "ORDER BY namespace, storage_class",
                              Params().Text(tenant)));
      for (int i = 0; i < result.size(); ++i) {
        UsageRow usage;
        usage.namespace_name = result.Text(i, 0);
        ASSIGN_OR_RETURN(usage.storage_class, result.Class(i, 1));
        ASSIGN_OR_RETURN(int64_t objects, result.Int(i, 2));
        ASSIGN_OR_RETURN(int64_t logical, result.Int(i, 3));
        ASSIGN_OR_RETURN(int64_t physical, result.Int(i, 4));
        // Damaged counters may have gone negative: a figure is never below zero.
        usage.objects = static_cast<uint64_t>(std::max<int64_t>(objects, 0));
        usage.logical_bytes = static_cast<uint64_t>(std::max<int64_t>(logical, 0));
        usage.physical_bytes = static_cast<uint64_t>(std::max<int64_t>(physical, 0));
        index[{usage.namespace_name, result.Text(i, 1)}] = rows.size();
        rows.push_back(std::move(usage));
      }
    }
    // Each distinct digest counts once per (namespace, class), however many objects share
    // it; MAX keeps one size per digest even if damaged rows disagree.
    ASSIGN_OR_RETURN(Rows result,
                     c.Exec("SELECT namespace, storage_class, SUM(size)::bigint FROM ("
                            "SELECT o.namespace AS namespace, o.storage_class AS storage_class, "
                            "MAX(oc.size_bytes) AS size FROM objects AS o "
                            "JOIN object_chunks AS oc ON oc.object_id = o.id "
                            "WHERE o.tenant = $1 AND o.state = 'COMMITTED' "
                            "GROUP BY o.namespace, o.storage_class, oc.digest) AS d "
                            "GROUP BY namespace, storage_class",
                            Params().Text(tenant)));
    for (int i = 0; i < result.size(); ++i) {
      ASSIGN_OR_RETURN(StorageClass storage_class, result.Class(i, 1));
      ASSIGN_OR_RETURN(int64_t bytes, result.Int(i, 2));
      internal::AddUsagePhysicalBytes(rows, index, result.Text(i, 0), storage_class, bytes);
    }
    internal::SortUsageRows(rows);
    return OkStatus();
  });
  if (!status.ok()) return status;
  return rows;
}

namespace {

// The counters as kept (the sum of each group's change rows) and as recounted from the
// object rows.
constexpr const char* kKeptUsageCounters =
    "SELECT tenant, namespace, storage_class, SUM(objects)::bigint, SUM(logical_bytes)::bigint, "
    "SUM(inline_bytes)::bigint FROM usage_deltas GROUP BY tenant, namespace, storage_class";
constexpr const char* kRecountedUsageCounters =
    "SELECT tenant, namespace, storage_class, COUNT(*), SUM(size_bytes)::bigint, "
    "SUM(COALESCE(octet_length(inline_data), 0))::bigint FROM objects "
    "WHERE state = 'COMMITTED' GROUP BY tenant, namespace, storage_class";

Result<std::vector<UsageCounterRow>> ReadUsageCounters(Connection& c, const char* sql,
                                                       const Params& params = Params()) {
  ASSIGN_OR_RETURN(Rows result, c.Exec(sql, params));
  std::vector<UsageCounterRow> rows;
  for (int i = 0; i < result.size(); ++i) {
    UsageCounterRow row;
    row.tenant = result.Text(i, 0);
    row.namespace_name = result.Text(i, 1);
    ASSIGN_OR_RETURN(row.storage_class, result.Class(i, 2));
    ASSIGN_OR_RETURN(row.objects, result.Int(i, 3));
    ASSIGN_OR_RETURN(row.logical_bytes, result.Int(i, 4));
    ASSIGN_OR_RETURN(row.inline_bytes, result.Int(i, 5));
    rows.push_back(std::move(row));
  }
  return rows;
}

int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Result<std::vector<UsageCounterRow>> PostgresMetaStore::UsageCounts(const std::string& tenant) {
  std::vector<UsageCounterRow> rows;
  if (!IsStorableText(tenant)) return rows;
  CompactUsageCountersNowAndThen();
  Status status = Read("usage counts of tenant " + tenant, [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(
        rows, ReadUsageCounters(c,
                                "SELECT tenant, namespace, storage_class, "
                                "SUM(objects)::bigint, SUM(logical_bytes)::bigint, "
                                "SUM(inline_bytes)::bigint FROM usage_deltas WHERE tenant = $1 "
                                "GROUP BY tenant, namespace, storage_class "
                                "HAVING SUM(objects) <> 0 ORDER BY namespace, storage_class",
                                Params().Text(tenant)));
    return OkStatus();
  });
  if (!status.ok()) return status;
  return rows;
}

Result<std::vector<std::string>> PostgresMetaStore::CheckUsageCounters() {
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

Result<uint64_t> PostgresMetaStore::RepairUsageCounters() {
  ASSIGN_OR_RETURN(std::vector<std::string> wrong, CheckUsageCounters());
  if (wrong.empty()) return uint64_t{0};
  RETURN_IF_ERROR(Write("repair usage counters", [&](Connection& c) -> Status {
    // Folds and repairs run one at a time: a fold committing beside the DELETE below would
    // remove rows the DELETE then skips, while its own sum row, invisible to this
    // statement's snapshot, would survive and count twice. The lock is a statement of its
    // own so that the next statement's snapshot (READ COMMITTED) sees the last holder's
    // work.
    RETURN_IF_ERROR(c.Exec("SELECT pg_advisory_xact_lock($1::int4, $2::int4)",
                           Params().Int(kLockSpace).Int(kUsageLock))
                        .status());
    // One statement, so one snapshot: it drops exactly the change rows it recounts over.
    // A commit after that snapshot keeps its own change row, and its object is not in
    // the recount.
    return c
        .Exec(
            "WITH gone AS (DELETE FROM usage_deltas) "
            "INSERT INTO usage_deltas (tenant, namespace, storage_class, objects, "
            "logical_bytes, inline_bytes) SELECT tenant, namespace, storage_class, COUNT(*), "
            "SUM(size_bytes), SUM(COALESCE(octet_length(inline_data), 0)) FROM objects "
            "WHERE state = 'COMMITTED' GROUP BY tenant, namespace, storage_class")
        .status();
  }));
  return static_cast<uint64_t>(wrong.size());
}

Status PostgresMetaStore::CompactUsageCounters() {
  usage_compacted_at_ms_.store(SteadyNowMs());
  return FoldUsageCounters(/*wait=*/true);
}

Status PostgresMetaStore::FoldUsageCounters(bool wait) {
  return Write("fold usage counters", [&](Connection& c) -> Status {
    // The lock RepairUsageCounters explains. A reader's fold does not wait for it: another
    // node is already folding, and the sums are right unfolded.
    if (wait) {
      RETURN_IF_ERROR(c.Exec("SELECT pg_advisory_xact_lock($1::int4, $2::int4)",
                             Params().Int(kLockSpace).Int(kUsageLock))
                          .status());
    } else {
      ASSIGN_OR_RETURN(Rows locked,
                       c.Exec("SELECT CASE WHEN pg_try_advisory_xact_lock($1::int4, $2::int4) "
                              "THEN 1 ELSE 0 END",
                              Params().Int(kLockSpace).Int(kUsageLock)));
      ASSIGN_OR_RETURN(int64_t got, locked.Int(0, 0));
      if (got != 1) return OkStatus();
    }
    // One statement, one snapshot: the change rows it deletes are exactly those it sums;
    // rows of transactions that commit later are left for the next fold.
    return c
        .Exec(
            "WITH gone AS (DELETE FROM usage_deltas RETURNING tenant, namespace, "
            "storage_class, objects, logical_bytes, inline_bytes) "
            "INSERT INTO usage_deltas (tenant, namespace, storage_class, objects, "
            "logical_bytes, inline_bytes) SELECT tenant, namespace, storage_class, "
            "SUM(objects), SUM(logical_bytes), SUM(inline_bytes) FROM gone "
            "GROUP BY tenant, namespace, storage_class "
            "HAVING SUM(objects) <> 0 OR SUM(logical_bytes) <> 0 OR SUM(inline_bytes) <> 0")
        .status();
  });
}

void PostgresMetaStore::CompactUsageCountersNowAndThen() {
  constexpr int64_t kEveryMs = 5000;
  const int64_t now = SteadyNowMs();
  int64_t last = usage_compacted_at_ms_.load();
  if (now - last < kEveryMs) return;
  // One reader folds; the others read the rows as they are (still right, only longer).
  if (!usage_compacted_at_ms_.compare_exchange_strong(last, now)) return;
  // A failed fold changes nothing: the sums stay right.
  FoldUsageCounters(/*wait=*/false).IgnoreError();
}

Result<std::vector<ObjectCountRow>> PostgresMetaStore::CountObjects() {
  CompactUsageCountersNowAndThen();
  std::vector<ObjectCountRow> rows;
  Status status = Read("count objects", [&](Connection& c) -> Status {
    rows.clear();
    // COMMITTED from the counters; the few objects on their way in or out by the state
    // index.
    ASSIGN_OR_RETURN(Rows result,
                     c.Exec("SELECT tenant, namespace, state, SUM(n)::bigint FROM ("
                            "SELECT tenant, namespace, 'COMMITTED' COLLATE \"C\" AS state, "
                            "SUM(objects) AS n FROM usage_deltas "
                            "GROUP BY tenant, namespace HAVING SUM(objects) <> 0 UNION ALL "
                            "SELECT tenant, namespace, state, COUNT(*) FROM objects "
                            "WHERE state IN ('WRITING', 'DELETING') "
                            "GROUP BY tenant, namespace, state) AS counts "
                            "GROUP BY tenant, namespace, state "
                            "ORDER BY tenant, namespace, state"));
    for (int i = 0; i < result.size(); ++i) {
      ObjectCountRow count;
      count.tenant = result.Text(i, 0);
      count.namespace_name = result.Text(i, 1);
      Result<ObjectState> state = ParseObjectState(result.Text(i, 2));
      if (!state.ok()) return InternalError("stored object state invalid");
      count.state = *state;
      ASSIGN_OR_RETURN(int64_t objects, result.Int(i, 3));
      count.objects = static_cast<uint64_t>(objects);
      rows.push_back(std::move(count));
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return rows;
}

Result<std::vector<StorageBytesRow>> PostgresMetaStore::StorageBytes() {
  CompactUsageCountersNowAndThen();
  std::vector<StorageBytesRow> rows;
  Status status = Read("storage bytes", [&](Connection& c) -> Status {
    rows.clear();
    ASSIGN_OR_RETURN(Rows result,
                     c.Exec("SELECT storage_class, namespace, SUM(logical_bytes)::bigint, "
                            "SUM(inline_bytes)::bigint FROM usage_deltas "
                            "GROUP BY storage_class, namespace HAVING SUM(objects) <> 0 "
                            "ORDER BY storage_class, namespace"));
    for (int i = 0; i < result.size(); ++i) {
      StorageBytesRow bytes;
      ASSIGN_OR_RETURN(bytes.storage_class, result.Class(i, 0));
      bytes.namespace_name = result.Text(i, 1);
      ASSIGN_OR_RETURN(int64_t logical, result.Int(i, 2));
      bytes.logical_bytes = static_cast<uint64_t>(logical);
      ASSIGN_OR_RETURN(int64_t inline_bytes, result.Int(i, 3));
      bytes.inline_bytes = static_cast<uint64_t>(inline_bytes);
      rows.push_back(std::move(bytes));
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return rows;
}

Result<uint64_t> PostgresMetaStore::ReapStalledUploads(TimestampMs cutoff_ms, uint32_t limit,
                                                       TimestampMs now_ms) {
  uint64_t reaped = 0;
  Status status = Write("reap stalled uploads", [&](Connection& c) -> Status {
    reaped = 0;
    // SKIP LOCKED: an upload adding a chunk right now holds its row and is alive; another
    // node reaping at the same time holds the rows it took.
    ASSIGN_OR_RETURN(Rows stalled,
                     c.Exec("SELECT id, storage_class FROM objects WHERE state = 'WRITING' "
                            "AND updated_at_ms < $1::bigint ORDER BY updated_at_ms, id "
                            "LIMIT $2::bigint FOR UPDATE SKIP LOCKED",
                            Params().Int(cutoff_ms).Int(limit)));
    for (int i = 0; i < stalled.size(); ++i) {
      ASSIGN_OR_RETURN(ObjectId id, stalled.Id(i, 0));
      ASSIGN_OR_RETURN(StorageClass storage_class, stalled.Class(i, 1));
      RETURN_IF_ERROR(DropReferences(c, id, storage_class, now_ms));
      RETURN_IF_ERROR(c.Exec("DELETE FROM objects WHERE id = $1", Params().Id(id)).status());
    }
    reaped = static_cast<uint64_t>(stalled.size());
    return OkStatus();
  });
  if (!status.ok()) return status;
  return reaped;
}

Result<uint64_t> PostgresMetaStore::PurgeDeletedObjects(TimestampMs cutoff_ms, uint32_t limit) {
  uint64_t purged = 0;
  Status status = Write("purge deleted objects", [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Rows rows,
                     c.Exec("DELETE FROM objects WHERE id IN (SELECT id FROM objects WHERE "
                            "state = 'DELETING' AND updated_at_ms < $1::bigint "
                            "ORDER BY updated_at_ms, id LIMIT $2::bigint FOR UPDATE SKIP LOCKED)",
                            Params().Int(cutoff_ms).Int(limit)));
    purged = static_cast<uint64_t>(rows.Affected());  // cascaded object_chunks not counted
    return OkStatus();
  });
  if (!status.ok()) return status;
  return purged;
}

// If the transaction fails after some files were removed, their rows come back with
// count 0: the next pass retries them (removing an absent file is expected to succeed),
// and an uploader that takes a reference meanwhile finds no file and writes it again. Not
// retried here, so that one call is one pass over the callback.
Result<std::vector<ChunkRecord>> PostgresMetaStore::CollectGarbageChunks(
    TimestampMs cutoff_ms, uint32_t limit,
    const std::function<Status(const ChunkRecord&)>& remove_file) {
  std::vector<ChunkRecord> removed;
  Status status = Transact(
      "collect garbage chunks", Mode::kWrite,
      [&](Connection& c) -> Status {
        removed.clear();
        ASSIGN_OR_RETURN(
            Rows rows, c.Exec("SELECT storage_class, digest, size_bytes, ref_count, zero_since_ms, "
                              "block_checksums, damaged_ms "
                              "FROM chunks WHERE ref_count = 0 AND zero_since_ms < $1::bigint "
                              "AND NOT EXISTS (SELECT 1 FROM owner_chunks AS oc WHERE "
                              "oc.storage_class = chunks.storage_class AND "
                              "oc.digest = chunks.digest) "
                              "ORDER BY zero_since_ms, storage_class, digest LIMIT $2::bigint "
                              "FOR UPDATE SKIP LOCKED",
                              Params().Int(cutoff_ms).Int(limit)));
        for (int i = 0; i < rows.size(); ++i) {
          ASSIGN_OR_RETURN(ChunkRecord chunk, ReadChunk(rows, i));
          // A failed removal keeps the row, so a later pass retries the file.
          if (!remove_file(chunk).ok()) continue;
          RETURN_IF_ERROR(c.Exec("DELETE FROM chunks WHERE storage_class = $1 AND digest = $2",
                                 Params().Class(chunk.storage_class).Hash(chunk.digest))
                              .status());
          removed.push_back(chunk);
        }
        return OkStatus();
      },
      /*retry=*/false);
  if (!status.ok()) return status;
  return removed;
}

// Every chunk row with its live reference count (objects and generic owners), then every
// live (class, digest) named by object_chunks or owner_chunks that has no chunk row, in
// (class name, digest) order.
Result<std::vector<FsckReferenceRow>> PostgresMetaStore::ReferenceRows(Connection& c) {
  ASSIGN_OR_RETURN(
      Rows result,
      c.Exec("WITH actual AS (" CAIRN_LIVE_REFERENCES ") "
             "SELECT c.storage_class, c.digest, c.ref_count, COALESCE(a.n, 0), "
             "       c.size_bytes, true, COALESCE(a.committed, 0), COALESCE(a.owners, 0) "
             "FROM chunks AS c LEFT JOIN actual AS a "
             "  ON a.storage_class = c.storage_class AND a.digest = c.digest "
             "UNION ALL "
             "SELECT a.storage_class, a.digest, 0::bigint, a.n, a.size_bytes, false, a.committed, "
             "       a.owners "
             "FROM actual AS a "
             "WHERE NOT EXISTS (SELECT 1 FROM chunks AS c "
             "  WHERE c.storage_class = a.storage_class AND c.digest = a.digest) "
             "ORDER BY 1, 2"));
  std::vector<FsckReferenceRow> rows;
  for (int i = 0; i < result.size(); ++i) {
    FsckReferenceRow ref;
    ASSIGN_OR_RETURN(ref.storage_class, result.Class(i, 0));
    ASSIGN_OR_RETURN(ref.digest, result.Hash(i, 1));
    ASSIGN_OR_RETURN(ref.recorded_ref_count, result.Int(i, 2));
    ASSIGN_OR_RETURN(ref.actual_ref_count, result.Int(i, 3));
    ASSIGN_OR_RETURN(int64_t size, result.Int(i, 4));
    ref.size_bytes = static_cast<uint64_t>(size);
    ASSIGN_OR_RETURN(int64_t has_row, result.Int(i, 5));
    ref.has_chunk_row = has_row != 0;
    ASSIGN_OR_RETURN(ref.committed_ref_count, result.Int(i, 6));
    ASSIGN_OR_RETURN(ref.owner_ref_count, result.Int(i, 7));
    rows.push_back(ref);
  }
  return rows;
}

Result<std::vector<FsckReferenceRow>> PostgresMetaStore::CheckReferences() {
  std::vector<FsckReferenceRow> rows;
  Status status = Read("check references", [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(rows, ReferenceRows(c));
    return OkStatus();
  });
  if (!status.ok()) return status;
  return rows;
}

Result<uint64_t> PostgresMetaStore::RepairReferences(TimestampMs now_ms) {
  uint64_t changed = 0;
  Status status = Write("repair references", [&](Connection& c) -> Status {
    changed = 0;
    // fsck --repair is rare and global: lock the whole chunks table (writers of counts
    // wait) so the recomputed counts cannot be overtaken while they are written.
    RETURN_IF_ERROR(c.Script("LOCK TABLE chunks IN EXCLUSIVE MODE"));
    ASSIGN_OR_RETURN(std::vector<FsckReferenceRow> rows, ReferenceRows(c));
    for (const FsckReferenceRow& row : rows) {
      if (row.has_chunk_row) {
        if (row.recorded_ref_count == row.actual_ref_count) continue;
        RETURN_IF_ERROR(c.Exec("UPDATE chunks SET ref_count = $3::bigint, "
                               "zero_since_ms = $4::bigint "
                               "WHERE storage_class = $1 AND digest = $2",
                               Params()
                                   .Class(row.storage_class)
                                   .Hash(row.digest)
                                   .Int(row.actual_ref_count)
                                   .Int(row.actual_ref_count == 0 ? now_ms : 0))
                            .status());
      } else {
        RETURN_IF_ERROR(c.Exec("INSERT INTO chunks (storage_class, digest, size_bytes, "
                               "ref_count, zero_since_ms) "
                               "VALUES ($1, $2, $3::bigint, $4::bigint, 0)",
                               Params()
                                   .Class(row.storage_class)
                                   .Hash(row.digest)
                                   .Int(static_cast<int64_t>(row.size_bytes))
                                   .Int(row.actual_ref_count))
                            .status());
      }
      ++changed;
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return changed;
}

Status PostgresMetaStore::SetChunkDamaged(StorageClass storage_class, const Digest& digest,
                                          TimestampMs damaged_ms) {
  const std::string what = "mark chunk " + std::string(StorageClassName(storage_class)) + "/" +
                           digest.ToHex() + (damaged_ms != 0 ? " damaged" : " healthy");
  return Write(what, [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Rows rows, c.Exec("UPDATE chunks SET damaged_ms = $3::bigint "
                                       "WHERE storage_class = $1 AND digest = $2 RETURNING 1",
                                       Params().Class(storage_class).Hash(digest).Int(damaged_ms)));
    if (rows.empty()) return NotFoundError("no chunk row for " + digest.ToHex());
    return OkStatus();
  });
}

Result<std::vector<ChunkRecord>> PostgresMetaStore::ListChunks() {
  std::vector<ChunkRecord> chunks;
  Status status = Read("list chunks", [&](Connection& c) -> Status {
    chunks.clear();
    ASSIGN_OR_RETURN(Rows rows,
                     c.Exec("SELECT storage_class, digest, size_bytes, ref_count, zero_since_ms, "
                            "block_checksums, damaged_ms FROM chunks "
                            "ORDER BY storage_class, digest"));
    for (int i = 0; i < rows.size(); ++i) {
      ASSIGN_OR_RETURN(ChunkRecord chunk, ReadChunk(rows, i));
      chunks.push_back(chunk);
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return chunks;
}

Result<std::optional<ChunkRecord>> PostgresMetaStore::GetChunk(StorageClass storage_class,
                                                               const Digest& digest) {
  std::optional<ChunkRecord> found;
  Status status = Read("get chunk", [&](Connection& c) -> Status {
    found.reset();
    ASSIGN_OR_RETURN(Rows rows,
                     c.Exec("SELECT storage_class, digest, size_bytes, ref_count, zero_since_ms, "
                            "block_checksums, damaged_ms FROM chunks "
                            "WHERE storage_class = $1 AND digest = $2",
                            Params().Class(storage_class).Hash(digest)));
    if (rows.size() > 0) {
      ASSIGN_OR_RETURN(ChunkRecord chunk, ReadChunk(rows, 0));
      found = chunk;
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return found;
}

Result<std::vector<ChunkTotalsRow>> PostgresMetaStore::ChunkTotals() {
  std::vector<ChunkTotalsRow> out;
  Status status = Read("sum chunks", [&](Connection& c) -> Status {
    out.clear();
    ASSIGN_OR_RETURN(Rows rows, c.Exec("SELECT storage_class, COUNT(*), SUM(size_bytes)::bigint, "
                                       "COUNT(*) FILTER (WHERE ref_count = 0) FROM chunks "
                                       "GROUP BY storage_class ORDER BY storage_class"));
    for (int i = 0; i < rows.size(); ++i) {
      ChunkTotalsRow totals;
      ASSIGN_OR_RETURN(totals.storage_class, rows.Class(i, 0));
      ASSIGN_OR_RETURN(int64_t chunks, rows.Int(i, 1));
      ASSIGN_OR_RETURN(int64_t bytes, rows.Int(i, 2));
      ASSIGN_OR_RETURN(int64_t unreferenced, rows.Int(i, 3));
      totals.chunks = static_cast<uint64_t>(chunks);
      totals.bytes = static_cast<uint64_t>(bytes);
      totals.unreferenced = static_cast<uint64_t>(unreferenced);
      out.push_back(totals);
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return out;
}

Result<std::vector<ObjectId>> PostgresMetaStore::FindObjectsWithChunks(
    StorageClass storage_class, const std::vector<Digest>& digests) {
  std::set<ObjectId> hits;  // ordered by id, like the model
  Status status = Read("find objects with chunks", [&](Connection& c) -> Status {
    hits.clear();
    for (const Digest& digest : std::set<Digest>(digests.begin(), digests.end())) {
      ASSIGN_OR_RETURN(Rows rows, c.Exec("SELECT DISTINCT o.id FROM object_chunks AS oc "
                                         "JOIN objects AS o ON o.id = oc.object_id "
                                         "WHERE oc.digest = $1 AND o.storage_class = $2 "
                                         "AND o.state = 'COMMITTED'",
                                         Params().Hash(digest).Class(storage_class)));
      for (int i = 0; i < rows.size(); ++i) {
        ASSIGN_OR_RETURN(ObjectId id, rows.Id(i, 0));
        hits.insert(id);
      }
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return std::vector<ObjectId>(hits.begin(), hits.end());
}

Result<std::vector<ObjectId>> PostgresMetaStore::DropObjectsWithChunks(
    StorageClass storage_class, const std::vector<Digest>& lost, TimestampMs now_ms) {
  std::vector<ObjectId> dropped;
  const std::string context = "drop objects with " + std::to_string(lost.size()) + " lost " +
                              std::string(StorageClassName(storage_class)) + " chunks";
  Status status = Write(context, [&](Connection& c) -> Status {
    dropped.clear();
    std::set<ObjectId> hits;  // ordered by id, like the model
    for (const Digest& digest : std::set<Digest>(lost.begin(), lost.end())) {
      ASSIGN_OR_RETURN(Rows rows, c.Exec("SELECT DISTINCT o.id FROM object_chunks AS oc "
                                         "JOIN objects AS o ON o.id = oc.object_id "
                                         "WHERE oc.digest = $1 AND o.storage_class = $2 "
                                         "AND o.state IN ('WRITING', 'COMMITTED')",
                                         Params().Hash(digest).Class(storage_class)));
      for (int i = 0; i < rows.size(); ++i) {
        ASSIGN_OR_RETURN(ObjectId id, rows.Id(i, 0));
        hits.insert(id);
      }
    }
    for (const ObjectId& id : hits) {
      // Re-checked under the row lock: a concurrent delete may have retired it already.
      ASSIGN_OR_RETURN(Rows live, c.Exec("SELECT 1 FROM objects WHERE id = $1 AND "
                                         "state IN ('WRITING', 'COMMITTED') FOR UPDATE",
                                         Params().Id(id)));
      if (live.empty()) continue;
      RETURN_IF_ERROR(MarkDeleting(c, id, storage_class, now_ms));
      dropped.push_back(id);
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return dropped;
}

Status PostgresMetaStore::CreateApiKey(const ApiKeyRecord& key) {
  RETURN_IF_ERROR(CheckApiKey(key));
  RETURN_IF_ERROR(CheckText("api key id", key.key_id));
  RETURN_IF_ERROR(CheckText("description of api key " + key.key_id, key.description));
  ASSIGN_OR_RETURN(std::string tenants, EncodeTenants(key.tenants));
  return Write("create api key " + key.key_id, [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Rows rows, c.Exec("INSERT INTO api_keys (key_id, secret_hash, tenants, "
                                       "scope, created_at_ms, revoked, description) "
                                       "VALUES ($1, $2, $3, $4, $5::bigint, $6::boolean, $7) "
                                       "ON CONFLICT (key_id) DO NOTHING",
                                       Params()
                                           .Text(key.key_id)
                                           .Hash(key.secret_hash)
                                           .Text(tenants)
                                           .Text(ScopeName(key.scope))
                                           .Int(key.created_at_ms)
                                           .Text(key.revoked ? "true" : "false")
                                           .Text(key.description)));
    if (rows.Affected() == 0) {
      return AlreadyExistsError("api key id " + key.key_id + " is already taken");
    }
    return OkStatus();
  });
}

constexpr const char* kApiKeyColumns =
    "SELECT key_id, secret_hash, tenants, scope, created_at_ms, revoked, description "
    "FROM api_keys";

Result<ApiKeyRecord> PostgresMetaStore::GetApiKey(const std::string& key_id) {
  const Status missing = NotFoundError("api key " + key_id + " not found");
  if (!IsStorableText(key_id)) return missing;
  ApiKeyRecord key;
  Status status = Read("get api key " + key_id, [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Rows rows, c.Exec(std::string(kApiKeyColumns) + " WHERE key_id = $1",
                                       Params().Text(key_id)));
    if (rows.empty()) return missing;
    ASSIGN_OR_RETURN(key, ReadApiKey(rows, 0));
    return OkStatus();
  });
  if (!status.ok()) return status;
  return key;
}

Result<std::vector<ApiKeyRecord>> PostgresMetaStore::ListApiKeys() {
  std::vector<ApiKeyRecord> keys;
  Status status = Read("list api keys", [&](Connection& c) -> Status {
    keys.clear();
    ASSIGN_OR_RETURN(Rows rows, c.Exec(std::string(kApiKeyColumns) + " ORDER BY key_id"));
    for (int i = 0; i < rows.size(); ++i) {
      ASSIGN_OR_RETURN(ApiKeyRecord key, ReadApiKey(rows, i));
      keys.push_back(std::move(key));
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return keys;
}

Status PostgresMetaStore::RevokeApiKey(const std::string& key_id) {
  const Status missing = NotFoundError("api key " + key_id + " not found");
  if (!IsStorableText(key_id)) return missing;
  return Write("revoke api key " + key_id, [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Rows rows, c.Exec("UPDATE api_keys SET revoked = true WHERE key_id = $1",
                                       Params().Text(key_id)));
    if (rows.Affected() == 0) return missing;
    return OkStatus();
  });
}

// ---- S3 support -----------------------------------------------------------------------

Result<CommitResult> PostgresMetaStore::PutCommittedAndDelete(
    const ObjectRecord& object, const std::vector<ChunkRef>& chunks,
    const std::vector<ObjectId>& also_delete, TimestampMs now_ms) {
  RETURN_IF_ERROR(CheckPutCommitted(object, chunks));
  RETURN_IF_ERROR(CheckObjectText(object));
  CommitResult result;
  Status status = Write("compose object " + object.id.ToString(), [&](Connection& c) -> Status {
    return PutCommittedIn(c, object, chunks, also_delete, now_ms, &result);
  });
  if (!status.ok()) return status;
  return result;
}

// One UPDATE: its row lock serializes it with DeleteObject and commits on the same id, and
// READ COMMITTED re-checks state and tenant on the newest row version after a wait. The
// key lock is not needed: the object stays COMMITTED at its key.
Result<ObjectRecord> PostgresMetaStore::UpdateUserMetadata(
    const std::string& tenant, const ObjectId& id,
    const std::map<std::string, std::string>& user_metadata, TimestampMs now_ms) {
  ObjectRecord checked;
  checked.id = id;
  checked.user_metadata = user_metadata;
  RETURN_IF_ERROR(CheckUserMetadata(checked));
  if (!IsStorableText(tenant)) return NoSuchObjectError(id);
  ASSIGN_OR_RETURN(std::string metadata, EncodeMetadata(user_metadata));
  ObjectRecord updated;
  Status status = Write("update metadata of object " + id.ToString(), [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Rows rows, c.Exec("UPDATE objects SET user_metadata = $3, "
                                       "updated_at_ms = $4::bigint WHERE id = $1 AND "
                                       "tenant = $2 AND state = 'COMMITTED' "
                                       "RETURNING " CAIRN_OBJECT_COLUMNS,
                                       Params().Id(id).Text(tenant).Text(metadata).Int(now_ms)));
    if (rows.empty()) return NoSuchObjectError(id);
    ASSIGN_OR_RETURN(updated, ReadObject(rows, 0));
    return OkStatus();
  });
  if (!status.ok()) return status;
  return updated;
}

Status NoSuchNamespace(const std::string& tenant, const std::string& name) {
  return NotFoundError("namespace '" + name + "' of tenant '" + tenant + "' does not exist");
}

Status PostgresMetaStore::CreateNamespace(const NamespaceRecord& record) {
  RETURN_IF_ERROR(CheckText("tenant of namespace " + record.name, record.tenant));
  RETURN_IF_ERROR(CheckText("namespace name", record.name));
  return Write("create namespace " + record.name, [&](Connection& c) -> Status {
    // Names are global: a transaction-scoped lock on the name serializes two tenants
    // creating it at once, so the check below and the insert cannot interleave.
    ASSIGN_OR_RETURN(Rows locked, c.Exec("SELECT pg_advisory_xact_lock($1::int4, hashtext($2))",
                                         Params().Int(kNamespaceNameLock).Text(record.name)));
    (void)locked;
    {
      ASSIGN_OR_RETURN(Rows rows, c.Exec("SELECT 1 FROM namespaces WHERE name = $1 AND "
                                         "tenant <> $2 LIMIT 1",
                                         Params().Text(record.name).Text(record.tenant)));
      if (!rows.empty()) return NameTakenError(record.name);
    }
    // ON CONFLICT: two nodes creating one bucket at once get one success, not an error.
    ASSIGN_OR_RETURN(
        Rows rows,
        c.Exec("INSERT INTO namespaces (tenant, name, created_at_ms) "
               "VALUES ($1, $2, $3::bigint) "
               "ON CONFLICT (tenant, name) DO NOTHING",
               Params().Text(record.tenant).Text(record.name).Int(record.created_at_ms)));
    if (rows.Affected() == 0) {
      return AlreadyExistsError("namespace '" + record.name + "' of tenant '" + record.tenant +
                                "' already exists");
    }
    return OkStatus();
  });
}

// Explicit rows win; other namespaces exist while they hold committed objects, created
// when their oldest committed object was. Both name columns are COLLATE "C", so the order
// is byte-wise.
Result<std::vector<std::string>> PostgresMetaStore::NamespaceTenants() {
  std::vector<std::string> out;
  Status status = Read("list the tenants of namespaces", [&](Connection& c) -> Status {
    out.clear();
    ASSIGN_OR_RETURN(Rows rows, c.Exec("SELECT DISTINCT tenant FROM namespaces ORDER BY tenant"));
    for (int i = 0; i < rows.size(); ++i) out.push_back(rows.Text(i, 0));
    return OkStatus();
  });
  if (!status.ok()) return status;
  return out;
}

Result<std::vector<NamespaceRecord>> PostgresMetaStore::ListNamespaces(const std::string& tenant) {
  CompactUsageCountersNowAndThen();
  std::vector<NamespaceRecord> out;
  if (!IsStorableText(tenant)) return out;
  Status status = Read("list namespaces of " + tenant, [&](Connection& c) -> Status {
    out.clear();
    ASSIGN_OR_RETURN(
        Rows rows,
        c.Exec("SELECT name, created_at_ms FROM namespaces WHERE tenant = $1 "
               "UNION ALL "
               "SELECT d.namespace, COALESCE((SELECT MIN(o.created_at_ms) FROM objects AS o "
               "WHERE o.tenant = $1 AND o.namespace = d.namespace AND o.state = 'COMMITTED'), 0) "
               "FROM (SELECT namespace FROM usage_deltas WHERE tenant = $1 "
               "GROUP BY namespace HAVING SUM(objects) <> 0) AS d WHERE NOT EXISTS "
               "(SELECT 1 FROM namespaces AS n WHERE n.tenant = $1 AND n.name = d.namespace) "
               "ORDER BY 1",
               Params().Text(tenant)));
    for (int i = 0; i < rows.size(); ++i) {
      NamespaceRecord record{tenant, rows.Text(i, 0), 0};
      ASSIGN_OR_RETURN(record.created_at_ms, rows.Int(i, 1));
      out.push_back(std::move(record));
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return out;
}

Result<NamespaceRecord> PostgresMetaStore::GetNamespace(const std::string& tenant,
                                                        const std::string& name) {
  if (!IsStorableText(tenant) || !IsStorableText(name)) return NoSuchNamespace(tenant, name);
  NamespaceRecord record{tenant, name, 0};
  Status status = Read("get namespace " + name, [&](Connection& c) -> Status {
    {
      ASSIGN_OR_RETURN(Rows rows, c.Exec("SELECT created_at_ms FROM namespaces "
                                         "WHERE tenant = $1 AND name = $2",
                                         Params().Text(tenant).Text(name)));
      if (!rows.empty()) {
        ASSIGN_OR_RETURN(record.created_at_ms, rows.Int(0, 0));
        return OkStatus();
      }
    }
    // The same creation time ListNamespaces reports (the oldest committed object).
    ASSIGN_OR_RETURN(Rows rows, c.Exec("SELECT MIN(created_at_ms)::bigint FROM objects "
                                       "WHERE tenant = $1 AND namespace = $2 AND "
                                       "state = 'COMMITTED'",
                                       Params().Text(tenant).Text(name)));
    if (rows.empty() || rows.IsNull(0, 0)) return NoSuchNamespace(tenant, name);
    ASSIGN_OR_RETURN(record.created_at_ms, rows.Int(0, 0));
    return OkStatus();
  });
  if (!status.ok()) return status;
  return record;
}

Result<std::vector<std::string>> PostgresMetaStore::NamespaceOwners(const std::string& name) {
  std::vector<std::string> out;
  if (!IsStorableText(name)) return out;
  Status status = Read("find owners of namespace " + name, [&](Connection& c) -> Status {
    out.clear();
    ASSIGN_OR_RETURN(Rows rows, c.Exec("SELECT tenant FROM namespaces WHERE name = $1 "
                                       "ORDER BY tenant LIMIT 16",
                                       Params().Text(name)));
    for (int i = 0; i < rows.size(); ++i) out.push_back(rows.Text(i, 0));
    return OkStatus();
  });
  if (!status.ok()) return status;
  return out;
}

// Not serialized against commits into the namespace: one that commits after the emptiness
// check leaves an implied namespace behind, exactly as if it had run after the delete (a
// commit never needs the explicit row). The settings go in the same transaction, after the
// row: see SetNamespaceSetting for why that order leaves none behind.
Status PostgresMetaStore::DeleteNamespace(const std::string& tenant, const std::string& name) {
  if (!IsStorableText(tenant) || !IsStorableText(name)) return NoSuchNamespace(tenant, name);
  return Write("delete namespace " + name, [&](Connection& c) -> Status {
    {
      ASSIGN_OR_RETURN(Rows rows, c.Exec("SELECT 1 FROM objects WHERE tenant = $1 AND "
                                         "namespace = $2 AND state = 'COMMITTED' LIMIT 1",
                                         Params().Text(tenant).Text(name)));
      if (!rows.empty()) return FailedPreconditionError("namespace '" + name + "' is not empty");
    }
    {
      ASSIGN_OR_RETURN(Rows rows, c.Exec("DELETE FROM namespaces WHERE tenant = $1 AND name = $2",
                                         Params().Text(tenant).Text(name)));
      if (rows.Affected() == 0) return NoSuchNamespace(tenant, name);
    }
    return c
        .Exec("DELETE FROM namespace_settings WHERE tenant = $1 AND namespace = $2",
              Params().Text(tenant).Text(name))
        .status();
  });
}

Result<std::map<std::string, std::string>> PostgresMetaStore::GetNamespaceSettings(
    const std::string& tenant, const std::string& name) {
  std::map<std::string, std::string> settings;
  if (!IsStorableText(tenant) || !IsStorableText(name)) return settings;  // none can exist
  Status status = Read("get the settings of namespace " + name, [&](Connection& c) -> Status {
    settings.clear();
    ASSIGN_OR_RETURN(Rows rows, c.Exec("SELECT name, value FROM namespace_settings "
                                       "WHERE tenant = $1 AND namespace = $2",
                                       Params().Text(tenant).Text(name)));
    for (int i = 0; i < rows.size(); ++i) settings.emplace(rows.Text(i, 0), rows.Text(i, 1));
    return OkStatus();
  });
  if (!status.ok()) return status;
  return settings;
}

// Why no setting outlives its namespace row, with DeleteNamespace on another node:
//  - The first statement upserts the namespace row. DO UPDATE (a no-op), not DO NOTHING:
//    it also locks an existing row until COMMIT, and under READ COMMITTED it always ends in
//    an insert or an update, never in an error.
//  - DeleteNamespace deletes the row first and the settings second. If it reaches the row
//    while a setter holds its lock, it waits for the setter's COMMIT, then deletes the row,
//    and its settings DELETE, a later statement with a newer snapshot, sees and removes the
//    setter's setting. If the setter comes second, its upsert waits for DeleteNamespace to
//    commit, finds the row gone and inserts a fresh one: the namespace is re-created with
//    this one setting, as if the set had run after the delete.
//  - Deleting the settings before the row would be wrong: a setter could commit between the
//    two statements and leave a setting with no row.
// Two setters of one namespace queue on its row lock; the setting is upserted as well, so
// setting the same name at once on several nodes never fails: the last COMMIT wins.
Status PostgresMetaStore::SetNamespaceSetting(const std::string& tenant, const std::string& name,
                                              const std::string& setting,
                                              const std::optional<std::string>& value,
                                              TimestampMs now) {
  RETURN_IF_ERROR(CheckNamespaceSetting(tenant, name, setting, value));
  return Write("set setting " + setting + " of namespace " + name, [&](Connection& c) -> Status {
    RETURN_IF_ERROR(c.Exec("INSERT INTO namespaces (tenant, name, created_at_ms) "
                           "VALUES ($1, $2, $3::bigint) ON CONFLICT (tenant, name) "
                           "DO UPDATE SET created_at_ms = namespaces.created_at_ms",
                           Params().Text(tenant).Text(name).Int(now))
                        .status());
    if (!value) {
      return c
          .Exec(
              "DELETE FROM namespace_settings "
              "WHERE tenant = $1 AND namespace = $2 AND name = $3",
              Params().Text(tenant).Text(name).Text(setting))
          .status();
    }
    return c
        .Exec(
            "INSERT INTO namespace_settings (tenant, namespace, name, value) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (tenant, namespace, name) "
            "DO UPDATE SET value = excluded.value",
            Params().Text(tenant).Text(name).Text(setting).Text(*value))
        .status();
  });
}

constexpr const char* kS3KeyColumns =
    "SELECT access_key, secret, tenants, scope, created_at_ms, revoked, description FROM s3_keys";

Status NoSuchS3Key(const std::string& access_key) {
  return NotFoundError("no S3 access key " + access_key);
}

Status PostgresMetaStore::CreateS3Key(const S3KeyRecord& key) {
  RETURN_IF_ERROR(CheckText("S3 access key", key.access_key));
  RETURN_IF_ERROR(CheckText("secret of S3 key " + key.access_key, key.secret));
  RETURN_IF_ERROR(CheckText("description of S3 key " + key.access_key, key.description));
  ASSIGN_OR_RETURN(std::string tenants, EncodeTenants(key.tenants));
  return Write("create S3 key " + key.access_key, [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Rows rows, c.Exec("INSERT INTO s3_keys (access_key, secret, tenants, "
                                       "scope, created_at_ms, revoked, description) "
                                       "VALUES ($1, $2, $3, $4, $5::bigint, $6::boolean, $7) "
                                       "ON CONFLICT (access_key) DO NOTHING",
                                       Params()
                                           .Text(key.access_key)
                                           .Text(key.secret)
                                           .Text(tenants)
                                           .Text(ScopeName(key.scope))
                                           .Int(key.created_at_ms)
                                           .Text(key.revoked ? "true" : "false")
                                           .Text(key.description)));
    if (rows.Affected() == 0) {
      return AlreadyExistsError("S3 access key " + key.access_key + " already exists");
    }
    return OkStatus();
  });
}

Result<S3KeyRecord> PostgresMetaStore::GetS3Key(const std::string& access_key) {
  if (!IsStorableText(access_key)) return NoSuchS3Key(access_key);
  S3KeyRecord key;
  Status status = Read("get S3 key " + access_key, [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Rows rows, c.Exec(std::string(kS3KeyColumns) + " WHERE access_key = $1",
                                       Params().Text(access_key)));
    if (rows.empty()) return NoSuchS3Key(access_key);
    ASSIGN_OR_RETURN(key, ReadS3Key(rows, 0));
    return OkStatus();
  });
  if (!status.ok()) return status;
  return key;
}

Result<std::vector<S3KeyRecord>> PostgresMetaStore::ListS3Keys() {
  std::vector<S3KeyRecord> keys;
  Status status = Read("list S3 keys", [&](Connection& c) -> Status {
    keys.clear();
    ASSIGN_OR_RETURN(Rows rows, c.Exec(std::string(kS3KeyColumns) + " ORDER BY access_key"));
    for (int i = 0; i < rows.size(); ++i) {
      ASSIGN_OR_RETURN(S3KeyRecord key, ReadS3Key(rows, i));
      keys.push_back(std::move(key));
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return keys;
}

Status PostgresMetaStore::RevokeS3Key(const std::string& access_key) {
  if (!IsStorableText(access_key)) return NoSuchS3Key(access_key);
  return Write("revoke S3 key " + access_key, [&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Rows rows, c.Exec("UPDATE s3_keys SET revoked = true WHERE access_key = $1",
                                       Params().Text(access_key)));
    if (rows.Affected() == 0) return NoSuchS3Key(access_key);
    return OkStatus();
  });
}

Status PostgresMetaStore::ReplaceS3Secrets(const std::vector<S3SecretChange>& changes) {
  for (const S3SecretChange& change : changes) {
    RETURN_IF_ERROR(CheckText("S3 access key", change.access_key));
    RETURN_IF_ERROR(CheckText("secret of S3 key " + change.access_key, change.new_secret));
  }
  return Write(
      "replace the secrets of " + std::to_string(changes.size()) + " S3 keys",
      [&](Connection& c) -> Status {
        for (const S3SecretChange& change : changes) {
          ASSIGN_OR_RETURN(Rows rows, c.Exec("UPDATE s3_keys SET secret = $1 "
                                             "WHERE access_key = $2 AND secret = $3",
                                             Params()
                                                 .Text(change.new_secret)
                                                 .Text(change.access_key)
                                                 .Text(change.old_secret)));
          if (rows.Affected() == 0) {
            return AbortedError("the secret of S3 key " + change.access_key + " changed meanwhile");
          }
        }
        return OkStatus();
      });
}

// ---- snapshots ----------------------------------------------------------------------------

constexpr int kExportPageRows = 500;
constexpr int kImportBatchRows = 500;
constexpr size_t kImportBatchBytes = 8u << 20;

// The owner_chunks rows (AS w) a snapshot holds: not the mounts' staging owners, nor the
// blocks of inodes unlinked while open (records.h says why). A file owner's id is
// "<volume uuid>:<ino>"; the inode is found by its primary key, so a page of chunks costs
// index probes, not a scan of fs_inodes (inode numbers handed out by NewInodeNumber have
// fewer than 19 digits; an id that is not such a number names no orphan).
#define CAIRN_SNAPSHOT_OWNER_ROW                                                              \
  "(w.owner_kind <> 'fs-staging' AND NOT (w.owner_kind = 'file' AND EXISTS (SELECT 1 FROM "   \
  "fs_inodes AS i WHERE i.nlink = 0 AND i.ino = (CASE WHEN split_part(w.owner_id, ':', 2) ~ " \
  "'^[0-9]{1,18}$' THEN split_part(w.owner_id, ':', 2)::bigint END))))"

// One REPEATABLE READ READ ONLY transaction: every page below reads the same snapshot, so
// keyset pagination neither skips nor repeats rows whatever other nodes write meanwhile,
// and no page holds more than kExportPageRows rows in memory. Never retried: the visitor
// has already seen what an earlier attempt produced.
Status PostgresMetaStore::ExportSnapshot(SnapshotVisitor& visitor, TimestampMs now_ms) {
  return Transact(
      "export snapshot", Mode::kRead,
      [&](Connection& c) -> Status {
        static_assert(kFsStagingOwnerKind == "fs-staging" && kFileOwnerKind == "file");
        SnapshotCounts counts;
        {
          ASSIGN_OR_RETURN(
              Rows rows,
              c.Exec("SELECT (SELECT COUNT(*) FROM api_keys), (SELECT COUNT(*) FROM s3_keys), "
                     "(SELECT COUNT(*) FROM namespaces), (SELECT COUNT(*) FROM chunks), "
                     "(SELECT COUNT(*) FROM objects WHERE state = 'COMMITTED'), "
                     "(SELECT COUNT(*) FROM namespace_settings), "
                     "(SELECT COUNT(*) FROM (SELECT DISTINCT owner_kind, owner_id "
                     "FROM owner_chunks AS w WHERE " CAIRN_SNAPSHOT_OWNER_ROW ") AS d), "
                     "(SELECT COUNT(*) FROM fs_volume), "
                     "(SELECT COUNT(*) FROM fs_inodes WHERE nlink > 0), "
                     "(SELECT COUNT(*) FROM fs_dentries), "
                     "(SELECT COUNT(*) FROM fs_xattrs AS x JOIN fs_inodes AS i "
                     "ON i.ino = x.ino WHERE i.nlink > 0)"));
          if (rows.empty()) return InternalError("snapshot counts returned no row");
          int64_t value = 0;
          ASSIGN_OR_RETURN(value, rows.Int(0, 0));
          counts.api_keys = static_cast<uint64_t>(value);
          ASSIGN_OR_RETURN(value, rows.Int(0, 1));
          counts.s3_keys = static_cast<uint64_t>(value);
          ASSIGN_OR_RETURN(value, rows.Int(0, 2));
          counts.namespaces = static_cast<uint64_t>(value);
          ASSIGN_OR_RETURN(value, rows.Int(0, 3));
          counts.chunks = static_cast<uint64_t>(value);
          ASSIGN_OR_RETURN(value, rows.Int(0, 4));
          counts.objects = static_cast<uint64_t>(value);
          ASSIGN_OR_RETURN(value, rows.Int(0, 5));
          counts.namespace_settings = static_cast<uint64_t>(value);
          ASSIGN_OR_RETURN(value, rows.Int(0, 6));
          counts.owners = static_cast<uint64_t>(value);
          ASSIGN_OR_RETURN(value, rows.Int(0, 7));
          counts.volumes = static_cast<uint64_t>(value);
          ASSIGN_OR_RETURN(value, rows.Int(0, 8));
          counts.inodes = static_cast<uint64_t>(value);
          ASSIGN_OR_RETURN(value, rows.Int(0, 9));
          counts.dentries = static_cast<uint64_t>(value);
          ASSIGN_OR_RETURN(value, rows.Int(0, 10));
          counts.xattrs = static_cast<uint64_t>(value);
        }
        RETURN_IF_ERROR(visitor.Begin(counts));
        {
          ASSIGN_OR_RETURN(Rows rows, c.Exec(std::string(kApiKeyColumns) + " ORDER BY key_id"));
          for (int i = 0; i < rows.size(); ++i) {
            ASSIGN_OR_RETURN(ApiKeyRecord key, ReadApiKey(rows, i));
            RETURN_IF_ERROR(visitor.Visit(key));
          }
        }
        {
          ASSIGN_OR_RETURN(Rows rows, c.Exec(std::string(kS3KeyColumns) + " ORDER BY access_key"));
          for (int i = 0; i < rows.size(); ++i) {
            ASSIGN_OR_RETURN(S3KeyRecord key, ReadS3Key(rows, i));
            RETURN_IF_ERROR(visitor.Visit(key));
          }
        }
        {
          ASSIGN_OR_RETURN(Rows rows, c.Exec("SELECT tenant, name, created_at_ms FROM namespaces "
                                             "ORDER BY tenant, name"));
          for (int i = 0; i < rows.size(); ++i) {
            NamespaceRecord record{rows.Text(i, 0), rows.Text(i, 1), 0};
            ASSIGN_OR_RETURN(record.created_at_ms, rows.Int(i, 2));
            RETURN_IF_ERROR(visitor.Visit(record));
          }
        }
        RETURN_IF_ERROR(ExportNamespaceSettings(c, visitor));
        RETURN_IF_ERROR(ExportChunks(c, visitor, now_ms));
        RETURN_IF_ERROR(ExportObjects(c, visitor));
        RETURN_IF_ERROR(ExportOwners(c, visitor));
        return ExportFileTree(c, visitor);
      },
      /*retry=*/false);
}

// In (tenant, namespace, name) order, a page at a time: a value may be 1 MiB, so pages are
// short.
Status PostgresMetaStore::ExportNamespaceSettings(Connection& c, SnapshotVisitor& visitor) {
  constexpr int kPageRows = 32;
  std::string after_tenant, after_namespace, after_name;  // ("", "", "") sorts first
  while (true) {
    ASSIGN_OR_RETURN(Rows rows,
                     c.Exec("SELECT tenant, namespace, name, value FROM "
                            "namespace_settings WHERE (tenant, namespace, name) > "
                            "($1, $2, $3) ORDER BY tenant, namespace, name LIMIT " +
                                std::to_string(kPageRows),
                            Params().Text(after_tenant).Text(after_namespace).Text(after_name)));
    for (int i = 0; i < rows.size(); ++i) {
      RETURN_IF_ERROR(visitor.Visit(NamespaceSettingRecord{rows.Text(i, 0), rows.Text(i, 1),
                                                           rows.Text(i, 2), rows.Text(i, 3)}));
    }
    if (rows.size() < kPageRows) return OkStatus();
    after_tenant = rows.Text(rows.size() - 1, 0);
    after_namespace = rows.Text(rows.size() - 1, 1);
    after_name = rows.Text(rows.size() - 1, 2);
  }
}

// Counts are recomputed from the snapshot's COMMITTED objects and owners (see
// SnapshotCounts).
Status PostgresMetaStore::ExportChunks(Connection& c, SnapshotVisitor& visitor,
                                       TimestampMs now_ms) {
  std::string after_class;
  std::string after_digest;
  while (true) {
    // The page is cut first and counted second, so the per-chunk count runs for one page
    // whatever plan the scan gets; the literal LIMIT keeps the generic plan of this
    // prepared statement an index range scan.
    const std::string sql =
        "SELECT p.storage_class, p.digest, p.size_bytes, "
        "(SELECT COUNT(*) FROM object_chunks AS oc JOIN objects AS o ON o.id = oc.object_id "
        "WHERE oc.digest = p.digest AND o.storage_class = p.storage_class AND "
        "o.state = 'COMMITTED') + (SELECT COUNT(*) FROM owner_chunks AS w WHERE "
        "w.storage_class = p.storage_class AND w.digest = p.digest AND " CAIRN_SNAPSHOT_OWNER_ROW
        "), "
        "p.ref_count, p.zero_since_ms, p.block_checksums, p.damaged_ms "
        "FROM (SELECT * FROM chunks AS c "
        "WHERE (c.storage_class, c.digest) > ($1::text, $2::bytea) "
        "ORDER BY c.storage_class, c.digest LIMIT " +
        std::to_string(kExportPageRows) + ") AS p ORDER BY p.storage_class, p.digest";
    ASSIGN_OR_RETURN(Rows rows, c.Exec(sql, Params().Text(after_class).Bytes(after_digest)));
    for (int i = 0; i < rows.size(); ++i) {
      ChunkRecord chunk;
      ASSIGN_OR_RETURN(chunk.storage_class, rows.Class(i, 0));
      ASSIGN_OR_RETURN(chunk.digest, rows.Hash(i, 1));
      ASSIGN_OR_RETURN(int64_t size, rows.Int(i, 2));
      chunk.size_bytes = static_cast<uint64_t>(size);
      ASSIGN_OR_RETURN(chunk.ref_count, rows.Int(i, 3));
      ASSIGN_OR_RETURN(int64_t stored_count, rows.Int(i, 4));
      ASSIGN_OR_RETURN(chunk.zero_since_ms, rows.Int(i, 5));
      if (!rows.IsNull(i, 6)) chunk.block_checksums = rows.Bytes(i, 6);
      ASSIGN_OR_RETURN(chunk.damaged_ms, rows.Int(i, 7));
      if (chunk.ref_count > 0) {
        chunk.zero_since_ms = 0;
      } else if (stored_count != 0 || chunk.zero_since_ms == 0) {
        chunk.zero_since_ms = now_ms;
      }
      RETURN_IF_ERROR(visitor.Visit(chunk));
    }
    if (rows.size() < kExportPageRows) return OkStatus();
    after_class = rows.Text(rows.size() - 1, 0);
    after_digest = rows.Bytes(rows.size() - 1, 1);
  }
}

// Objects in id order, a page at a time, each page with the chunk rows of its id range.
Status PostgresMetaStore::ExportObjects(Connection& c, SnapshotVisitor& visitor) {
  std::string after_id;  // "" sorts before every 16-byte id
  while (true) {
    ASSIGN_OR_RETURN(Rows rows, c.Exec("SELECT " CAIRN_OBJECT_COLUMNS
                                       " FROM objects WHERE state = 'COMMITTED' AND id > $1 "
                                       "ORDER BY id LIMIT " +
                                           std::to_string(kExportPageRows),
                                       Params().Bytes(after_id)));
    if (rows.empty()) return OkStatus();
    const std::string last_id = rows.Bytes(rows.size() - 1, 0);
    ASSIGN_OR_RETURN(Rows chunk_rows,
                     c.Exec("SELECT oc.object_id, oc.digest, oc.size_bytes FROM object_chunks "
                            "AS oc JOIN objects AS o ON o.id = oc.object_id "
                            "WHERE o.state = 'COMMITTED' AND oc.object_id > $1 AND "
                            "oc.object_id <= $2 ORDER BY oc.object_id, oc.seq",
                            Params().Bytes(after_id).Bytes(last_id)));
    int next_chunk = 0;
    for (int i = 0; i < rows.size(); ++i) {
      SnapshotObject object;
      ASSIGN_OR_RETURN(object.object, ReadObject(rows, i));
      for (; next_chunk < chunk_rows.size(); ++next_chunk) {
        ASSIGN_OR_RETURN(ObjectId owner, chunk_rows.Id(next_chunk, 0));
        if (owner < object.object.id) {
          return InternalError("object_chunks row of " + owner.ToString() + " out of order");
        }
        if (owner != object.object.id) break;
        ChunkRef ref;
        ASSIGN_OR_RETURN(ref.digest, chunk_rows.Hash(next_chunk, 1));
        ASSIGN_OR_RETURN(int64_t size, chunk_rows.Int(next_chunk, 2));
        ref.size_bytes = static_cast<uint64_t>(size);
        object.chunks.push_back(ref);
      }
      RETURN_IF_ERROR(visitor.Visit(object));
    }
    if (next_chunk != chunk_rows.size()) {
      return InternalError("object_chunks rows without their object in a snapshot page");
    }
    if (rows.size() < kExportPageRows) return OkStatus();
    after_id = last_id;
  }
}

// Owners in (kind, id) order, a page of owners at a time, each page with its rows.
Status PostgresMetaStore::ExportOwners(Connection& c, SnapshotVisitor& visitor) {
  std::string after_kind, after_id;  // ("", "") sorts before every owner
  while (true) {
    ASSIGN_OR_RETURN(
        Rows owners,
        c.Exec("SELECT owner_kind, owner_id FROM owner_chunks AS w "
               "WHERE (owner_kind, owner_id) > ($1, $2) AND " CAIRN_SNAPSHOT_OWNER_ROW " "
               "GROUP BY owner_kind, owner_id ORDER BY owner_kind, owner_id LIMIT " +
                   std::to_string(kExportPageRows),
               Params().Text(after_kind).Text(after_id)));
    if (owners.empty()) return OkStatus();
    const std::string last_kind = owners.Text(owners.size() - 1, 0);
    const std::string last_id = owners.Text(owners.size() - 1, 1);
    ASSIGN_OR_RETURN(
        Rows rows, c.Exec("SELECT owner_kind, owner_id, storage_class, digest, size_bytes, seq "
                          "FROM owner_chunks AS w WHERE (owner_kind, owner_id) > ($1, $2) AND "
                          "(owner_kind, owner_id) <= ($3, $4) AND " CAIRN_SNAPSHOT_OWNER_ROW " "
                          "ORDER BY owner_kind, owner_id, seq",
                          Params().Text(after_kind).Text(after_id).Text(last_kind).Text(last_id)));
    std::optional<SnapshotOwner> current;
    for (int i = 0; i <= rows.size(); ++i) {
      ChunkOwner owner;
      if (i < rows.size()) owner = ChunkOwner{rows.Text(i, 0), rows.Text(i, 1)};
      if (current && (i == rows.size() || owner != current->owner)) {
        internal::DropDenseSequences(*current);
        RETURN_IF_ERROR(visitor.Visit(*current));
        current.reset();
      }
      if (i == rows.size()) break;
      if (!current) current = SnapshotOwner{std::move(owner), {}, {}};
      OwnerChunk entry;
      ASSIGN_OR_RETURN(entry.storage_class, rows.Class(i, 2));
      ASSIGN_OR_RETURN(entry.chunk.digest, rows.Hash(i, 3));
      ASSIGN_OR_RETURN(int64_t size, rows.Int(i, 4));
      entry.chunk.size_bytes = static_cast<uint64_t>(size);
      current->chunks.push_back(std::move(entry));
      ASSIGN_OR_RETURN(int64_t seq, rows.Int(i, 5));
      current->sequences.push_back(static_cast<uint64_t>(seq));
    }
    if (owners.size() < kExportPageRows) return OkStatus();
    after_kind = last_kind;
    after_id = last_id;
  }
}

namespace {

Result<FileType> ExportedType(const Rows& rows, int row, int column, const std::string& what) {
  ASSIGN_OR_RETURN(int64_t number, rows.Int(row, column));
  Result<FileType> type = FileTypeFromNumber(number);
  if (!type.ok()) return DataLossError(what + " is damaged: " + type.status().message());
  return type;
}

}  // namespace

// The volume row, then its linked inodes, entries and their xattrs, a page at a time in key
// order (keys are int64 bit patterns, so pages start above INT64_MIN, which no inode
// number below 2^63 maps to). Sessions, orphans, the change feed and locks stay out
// (records.h).
Status PostgresMetaStore::ExportFileTree(Connection& c, SnapshotVisitor& visitor) {
  {
    ASSIGN_OR_RETURN(Rows rows, c.Exec("SELECT name, uuid, created_ms, trash_days, "
                                       "format_version, next_ino FROM fs_volume WHERE id = 1"));
    if (rows.empty()) return OkStatus();
    SnapshotVolume volume;
    volume.volume.name = rows.Text(0, 0);
    volume.volume.uuid = rows.Text(0, 1);
    ASSIGN_OR_RETURN(volume.volume.created_ms, rows.Int(0, 2));
    ASSIGN_OR_RETURN(int64_t trash_days, rows.Int(0, 3));
    ASSIGN_OR_RETURN(int64_t format_version, rows.Int(0, 4));
    ASSIGN_OR_RETURN(int64_t next_ino, rows.Int(0, 5));
    volume.volume.trash_days = static_cast<uint32_t>(trash_days);
    volume.volume.format_version = static_cast<uint32_t>(format_version);
    volume.next_ino = static_cast<uint64_t>(next_ino);
    RETURN_IF_ERROR(visitor.Visit(volume));
  }
  const std::string page = " LIMIT " + std::to_string(kExportPageRows);
  int64_t after_ino = INT64_MIN;
  while (true) {
    ASSIGN_OR_RETURN(Rows rows,
                     c.Exec("SELECT ino, type, mode, uid, gid, nlink, size, atime_ns, mtime_ns, "
                            "ctime_ns, btime_ns, rdev, parent, symlink_target, change FROM "
                            "fs_inodes WHERE nlink > 0 AND ino > $1::bigint ORDER BY ino" +
                                page,
                            Params().Int(after_ino)));
    for (int i = 0; i < rows.size(); ++i) {
      int64_t v[15] = {};
      for (int column : {0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14}) {
        ASSIGN_OR_RETURN(v[column], rows.Int(i, column));
      }
      InodeRecord inode;
      inode.ino = static_cast<uint64_t>(v[0]);
      ASSIGN_OR_RETURN(inode.type,
                       ExportedType(rows, i, 1, "fs_inodes row " + std::to_string(inode.ino)));
      inode.mode = static_cast<uint32_t>(v[2]);
      inode.uid = static_cast<uint32_t>(v[3]);
      inode.gid = static_cast<uint32_t>(v[4]);
      inode.nlink = static_cast<uint32_t>(v[5]);
      inode.size = static_cast<uint64_t>(v[6]);
      inode.atime_ns = v[7];
      inode.mtime_ns = v[8];
      inode.ctime_ns = v[9];
      inode.btime_ns = v[10];
      inode.rdev = static_cast<uint64_t>(v[11]);
      inode.parent = static_cast<uint64_t>(v[12]);
      inode.symlink_target = rows.Bytes(i, 13);
      inode.change = static_cast<uint64_t>(v[14]);
      after_ino = v[0];
      RETURN_IF_ERROR(visitor.Visit(inode));
    }
    if (rows.size() < kExportPageRows) break;
  }
  int64_t after_parent = INT64_MIN;
  std::string after_name;
  while (true) {
    ASSIGN_OR_RETURN(Rows rows, c.Exec("SELECT parent, name, ino, type FROM fs_dentries WHERE "
                                       "(parent, name) > ($1::bigint, $2::bytea) "
                                       "ORDER BY parent, name" +
                                           page,
                                       Params().Int(after_parent).Bytes(after_name)));
    for (int i = 0; i < rows.size(); ++i) {
      DentryRecord entry;
      ASSIGN_OR_RETURN(after_parent, rows.Int(i, 0));
      entry.parent = static_cast<uint64_t>(after_parent);
      entry.name = rows.Bytes(i, 1);
      after_name = entry.name;
      ASSIGN_OR_RETURN(int64_t ino, rows.Int(i, 2));
      entry.ino = static_cast<uint64_t>(ino);
      ASSIGN_OR_RETURN(
          entry.type,
          ExportedType(rows, i, 3, "fs_dentries row of " + std::to_string(entry.parent)));
      RETURN_IF_ERROR(visitor.Visit(entry));
    }
    if (rows.size() < kExportPageRows) break;
  }
  // Values may be large (64 KiB each): short pages.
  constexpr int kXattrPageRows = 64;
  after_ino = INT64_MIN;
  after_name.clear();
  while (true) {
    ASSIGN_OR_RETURN(
        Rows rows,
        c.Exec("SELECT x.ino, x.name, x.value FROM fs_xattrs AS x JOIN fs_inodes AS i ON "
               "i.ino = x.ino WHERE i.nlink > 0 AND (x.ino, x.name) > ($1::bigint, $2::bytea) "
               "ORDER BY x.ino, x.name LIMIT " +
                   std::to_string(kXattrPageRows),
               Params().Int(after_ino).Bytes(after_name)));
    for (int i = 0; i < rows.size(); ++i) {
      SnapshotXattr xattr;
      ASSIGN_OR_RETURN(after_ino, rows.Int(i, 0));
      xattr.ino = static_cast<uint64_t>(after_ino);
      xattr.name = rows.Bytes(i, 1);
      after_name = xattr.name;
      xattr.value = rows.Bytes(i, 2);
      RETURN_IF_ERROR(visitor.Visit(xattr));
    }
    if (rows.size() < kXattrPageRows) return OkStatus();
  }
}

// Rows for one table, sent as multi-row INSERTs of up to kImportBatchRows rows (or about
// kImportBatchBytes of parameters): one round trip per batch instead of per row.
class BatchInsert {
 public:
  // `head` is "INSERT INTO t (a, b)"; `casts` the type of each column ("bigint", ...).
  BatchInsert(std::string head, std::vector<std::string> casts)
      : head_(std::move(head)), casts_(std::move(casts)) {}

  // Parameters of a new row; add exactly one per column.
  Params& Row(size_t approximate_bytes) {
    ++rows_;
    bytes_ += approximate_bytes;
    return params_;
  }
  bool Full() const { return rows_ >= kImportBatchRows || bytes_ >= kImportBatchBytes; }

  Status Flush(Connection& c) {
    if (rows_ == 0) return OkStatus();
    std::string sql = head_ + " VALUES ";
    int parameter = 0;
    for (int row = 0; row < rows_; ++row) {
      sql += row == 0 ? "(" : ", (";
      for (size_t column = 0; column < casts_.size(); ++column) {
        if (column > 0) sql += ", ";
        sql += "$" + std::to_string(++parameter) + "::" + casts_[column];
      }
      sql += ")";
    }
    RETURN_IF_ERROR(c.Exec(sql, params_).status());
    params_ = Params();
    rows_ = 0;
    bytes_ = 0;
    return OkStatus();
  }

 private:
  const std::string head_;
  const std::vector<std::string> casts_;
  Params params_;
  int rows_ = 0;
  size_t bytes_ = 0;
};

// The whole load is one READ COMMITTED transaction that first locks every table against
// writers (EXCLUSIVE still lets plain reads through), so the emptiness check stays true
// until COMMIT even if a node is started against the database meanwhile. Never retried:
// the source cannot be rewound.
Result<SnapshotCounts> PostgresMetaStore::ImportSnapshot(SnapshotSource& source) {
  SnapshotCounts counts;
  Status status = Transact(
      "load snapshot", Mode::kWrite,
      [&](Connection& c) -> Status {
        RETURN_IF_ERROR(
            c.Script("LOCK TABLE objects, object_chunks, chunks, owner_chunks, api_keys, s3_keys, "
                     "namespaces, namespace_settings, fs_volume IN EXCLUSIVE MODE"));
        {
          ASSIGN_OR_RETURN(
              Rows rows,
              c.Exec("SELECT EXISTS (SELECT 1 FROM objects) OR EXISTS (SELECT 1 FROM chunks) "
                     "OR EXISTS (SELECT 1 FROM api_keys) OR EXISTS (SELECT 1 FROM s3_keys) "
                     "OR EXISTS (SELECT 1 FROM namespaces) "
                     "OR EXISTS (SELECT 1 FROM namespace_settings) "
                     "OR EXISTS (SELECT 1 FROM owner_chunks) "
                     "OR EXISTS (SELECT 1 FROM fs_volume) OR EXISTS (SELECT 1 FROM fs_inodes)"));
          ASSIGN_OR_RETURN(int64_t busy, rows.Int(0, 0));
          if (busy != 0) {
            return FailedPreconditionError(
                "the metadata store is not empty; load a snapshot "
                "only into a fresh store");
          }
        }
        BatchInsert api_keys(
            "INSERT INTO api_keys (key_id, secret_hash, tenants, scope, "
            "created_at_ms, revoked, description)",
            {"text", "bytea", "text", "text", "bigint", "boolean", "text"});
        BatchInsert s3_keys(
            "INSERT INTO s3_keys (access_key, secret, tenants, scope, "
            "created_at_ms, revoked, description)",
            {"text", "text", "text", "text", "bigint", "boolean", "text"});
        BatchInsert namespaces("INSERT INTO namespaces (tenant, name, created_at_ms)",
                               {"text", "text", "bigint"});
        BatchInsert namespace_settings(
            "INSERT INTO namespace_settings (tenant, namespace, name, value)",
            {"text", "text", "text", "text"});
        BatchInsert chunks(
            "INSERT INTO chunks (storage_class, digest, size_bytes, ref_count, zero_since_ms, "
            "block_checksums, damaged_ms)",
            {"text", "bytea", "bigint", "bigint", "bigint", "bytea", "bigint"});
        BatchInsert objects("INSERT INTO objects (" CAIRN_OBJECT_COLUMNS ")",
                            {"bytea", "text", "text", "text", "text", "text", "bigint", "bytea",
                             "text", "text", "text", "bigint", "bigint", "bytea"});
        BatchInsert object_chunks("INSERT INTO object_chunks (object_id, seq, digest, size_bytes)",
                                  {"bytea", "integer", "bytea", "bigint"});
        BatchInsert owner_chunks(
            "INSERT INTO owner_chunks (owner_kind, owner_id, seq, storage_class, digest, "
            "size_bytes)",
            {"text", "text", "bigint", "text", "bytea", "bigint"});
        BatchInsert inodes(
            "INSERT INTO fs_inodes (ino, type, mode, uid, gid, nlink, size, atime_ns, mtime_ns, "
            "ctime_ns, btime_ns, rdev, parent, symlink_target, change)",
            {"bigint", "bigint", "bigint", "bigint", "bigint", "bigint", "bigint", "bigint",
             "bigint", "bigint", "bigint", "bigint", "bigint", "bytea", "bigint"});
        BatchInsert dentries("INSERT INTO fs_dentries (parent, name, ino, type)",
                             {"bigint", "bytea", "bigint", "bigint"});
        BatchInsert xattrs("INSERT INTO fs_xattrs (ino, name, value)",
                           {"bigint", "bytea", "bytea"});
        bool has_volume = false;
        // object_chunks rows need their object row first (foreign key).
        auto flush_all = [&]() -> Status {
          for (BatchInsert* batch :
               {&api_keys, &s3_keys, &namespaces, &namespace_settings, &chunks, &objects,
                &object_chunks, &owner_chunks, &inodes, &dentries, &xattrs}) {
            RETURN_IF_ERROR(batch->Flush(c));
          }
          return OkStatus();
        };
        counts = SnapshotCounts();
        while (true) {
          ASSIGN_OR_RETURN(std::optional<SnapshotRecord> record, source.Next());
          if (!record) break;
          if (const auto* key = std::get_if<ApiKeyRecord>(&*record)) {
            RETURN_IF_ERROR(CheckApiKey(*key));
            RETURN_IF_ERROR(CheckText("api key id", key->key_id));
            RETURN_IF_ERROR(CheckText("description of api key " + key->key_id, key->description));
            ASSIGN_OR_RETURN(std::string tenants, EncodeTenants(key->tenants));
            api_keys.Row(256)
                .Text(key->key_id)
                .Hash(key->secret_hash)
                .Text(tenants)
                .Text(ScopeName(key->scope))
                .Int(key->created_at_ms)
                .Text(key->revoked ? "true" : "false")
                .Text(key->description);
            ++counts.api_keys;
            if (api_keys.Full()) RETURN_IF_ERROR(api_keys.Flush(c));
          } else if (const auto* s3 = std::get_if<S3KeyRecord>(&*record)) {
            RETURN_IF_ERROR(CheckText("S3 access key", s3->access_key));
            RETURN_IF_ERROR(CheckText("secret of S3 key " + s3->access_key, s3->secret));
            RETURN_IF_ERROR(CheckText("description of S3 key " + s3->access_key, s3->description));
            ASSIGN_OR_RETURN(std::string tenants, EncodeTenants(s3->tenants));
            s3_keys.Row(256)
                .Text(s3->access_key)
                .Text(s3->secret)
                .Text(tenants)
                .Text(ScopeName(s3->scope))
                .Int(s3->created_at_ms)
                .Text(s3->revoked ? "true" : "false")
                .Text(s3->description);
            ++counts.s3_keys;
            if (s3_keys.Full()) RETURN_IF_ERROR(s3_keys.Flush(c));
          } else if (const auto* ns = std::get_if<NamespaceRecord>(&*record)) {
            RETURN_IF_ERROR(CheckText("namespace tenant", ns->tenant));
            RETURN_IF_ERROR(CheckText("namespace name", ns->name));
            namespaces.Row(128).Text(ns->tenant).Text(ns->name).Int(ns->created_at_ms);
            ++counts.namespaces;
            if (namespaces.Full()) RETURN_IF_ERROR(namespaces.Flush(c));
          } else if (const auto* setting = std::get_if<NamespaceSettingRecord>(&*record)) {
            RETURN_IF_ERROR(CheckNamespaceSetting(setting->tenant, setting->namespace_name,
                                                  setting->name, setting->value));
            namespace_settings.Row(128 + setting->value.size())
                .Text(setting->tenant)
                .Text(setting->namespace_name)
                .Text(setting->name)
                .Text(setting->value);
            ++counts.namespace_settings;
            if (namespace_settings.Full()) RETURN_IF_ERROR(namespace_settings.Flush(c));
          } else if (const auto* chunk = std::get_if<ChunkRecord>(&*record)) {
            Params& row = chunks.Row(96 + chunk->block_checksums.size());
            row.Class(chunk->storage_class)
                .Hash(chunk->digest)
                .Int(static_cast<int64_t>(chunk->size_bytes))
                .Int(chunk->ref_count)
                .Int(chunk->zero_since_ms);
            if (chunk->block_checksums.empty()) {
              row.Null();
            } else {
              row.Bytes(chunk->block_checksums);
            }
            row.Int(chunk->damaged_ms);
            ++counts.chunks;
            if (chunks.Full()) RETURN_IF_ERROR(chunks.Flush(c));
          } else if (const auto* owned = std::get_if<SnapshotOwner>(&*record)) {
            RETURN_IF_ERROR(CheckChunkOwner(owned->owner));
            RETURN_IF_ERROR(internal::CheckSnapshotOwner(*owned));
            for (size_t i = 0; i < owned->chunks.size(); ++i) {
              const OwnerChunk& entry = owned->chunks[i];
              owner_chunks.Row(96 + owned->owner.id.size())
                  .Text(owned->owner.kind)
                  .Text(owned->owner.id)
                  .Int(static_cast<int64_t>(internal::OwnerSequence(*owned, i)))
                  .Class(entry.storage_class)
                  .Hash(entry.chunk.digest)
                  .Int(static_cast<int64_t>(entry.chunk.size_bytes));
              if (owner_chunks.Full()) RETURN_IF_ERROR(owner_chunks.Flush(c));
            }
            ++counts.owners;
          } else if (const auto* volume = std::get_if<SnapshotVolume>(&*record)) {
            RETURN_IF_ERROR(internal::CheckSnapshotVolume(*volume));
            if (has_volume) return InvalidArgumentError("snapshot holds a second volume record");
            has_volume = true;
            RETURN_IF_ERROR(
                c.Exec("INSERT INTO fs_volume (id, name, uuid, created_ms, trash_days, "
                       "format_version, next_ino) VALUES (1, $1, $2, $3::bigint, $4::bigint, "
                       "$5::bigint, $6::bigint)",
                       Params()
                           .Text(volume->volume.name)
                           .Text(volume->volume.uuid)
                           .Int(volume->volume.created_ms)
                           .Int(volume->volume.trash_days)
                           .Int(volume->volume.format_version)
                           .Int(static_cast<int64_t>(volume->next_ino)))
                    .status());
            ++counts.volumes;
          } else if (const auto* inode = std::get_if<InodeRecord>(&*record)) {
            if (!has_volume) return internal::SnapshotWithoutVolumeError("an inode");
            if (inode->ino == 0) return InvalidArgumentError("inode number 0 is not valid");
            inodes.Row(160 + inode->symlink_target.size())
                .Int(static_cast<int64_t>(inode->ino))
                .Int(static_cast<int64_t>(inode->type))
                .Int(inode->mode)
                .Int(inode->uid)
                .Int(inode->gid)
                .Int(inode->nlink)
                .Int(static_cast<int64_t>(inode->size))
                .Int(inode->atime_ns)
                .Int(inode->mtime_ns)
                .Int(inode->ctime_ns)
                .Int(inode->btime_ns)
                .Int(static_cast<int64_t>(inode->rdev))
                .Int(static_cast<int64_t>(inode->parent))
                .Bytes(inode->symlink_target)
                .Int(static_cast<int64_t>(inode->change));
            ++counts.inodes;
            if (inodes.Full()) RETURN_IF_ERROR(inodes.Flush(c));
          } else if (const auto* entry = std::get_if<DentryRecord>(&*record)) {
            if (!has_volume) return internal::SnapshotWithoutVolumeError("a directory entry");
            dentries.Row(64 + entry->name.size())
                .Int(static_cast<int64_t>(entry->parent))
                .Bytes(entry->name)
                .Int(static_cast<int64_t>(entry->ino))
                .Int(static_cast<int64_t>(entry->type));
            ++counts.dentries;
            if (dentries.Full()) RETURN_IF_ERROR(dentries.Flush(c));
          } else if (const auto* xattr = std::get_if<SnapshotXattr>(&*record)) {
            if (!has_volume) return internal::SnapshotWithoutVolumeError("an xattr");
            xattrs.Row(64 + xattr->name.size() + xattr->value.size())
                .Int(static_cast<int64_t>(xattr->ino))
                .Bytes(xattr->name)
                .Bytes(xattr->value);
            ++counts.xattrs;
            if (xattrs.Full()) RETURN_IF_ERROR(xattrs.Flush(c));
          } else {
            const SnapshotObject& object = std::get<SnapshotObject>(*record);
            const ObjectRecord& r = object.object;
            RETURN_IF_ERROR(CheckPutCommitted(r, object.chunks));
            RETURN_IF_ERROR(CheckObjectText(r));
            ASSIGN_OR_RETURN(std::string metadata, EncodeMetadata(r.user_metadata));
            Params& row = objects.Row(r.key.size() + metadata.size() +
                                      (r.inline_data ? r.inline_data->size() : 0) + 256);
            row.Id(r.id)
                .Text(r.tenant)
                .Text(r.namespace_name)
                .Text(r.key)
                .Text(ObjectStateName(ObjectState::kCommitted))
                .Class(r.storage_class)
                .Int(static_cast<int64_t>(r.size_bytes))
                .Hash(r.content_hash)
                .Text(r.etag)
                .Text(r.content_type)
                .Text(metadata)
                .Int(r.created_at_ms)
                .Int(r.updated_at_ms);
            if (r.inline_data) {
              row.Bytes(*r.inline_data);
            } else {
              row.Null();
            }
            ++counts.objects;
            if (objects.Full()) RETURN_IF_ERROR(objects.Flush(c));
            for (size_t i = 0; i < object.chunks.size(); ++i) {
              object_chunks.Row(80)
                  .Id(r.id)
                  .Int(static_cast<int64_t>(i))
                  .Hash(object.chunks[i].digest)
                  .Int(static_cast<int64_t>(object.chunks[i].size_bytes));
              if (object_chunks.Full()) {
                RETURN_IF_ERROR(objects.Flush(c));
                RETURN_IF_ERROR(object_chunks.Flush(c));
              }
            }
          }
        }
        RETURN_IF_ERROR(flush_all());
        // The loaded counts must be exactly the references of the loaded objects and
        // owners, or fsck would find the restored store unclean.
        ASSIGN_OR_RETURN(
            Rows rows,
            c.Exec("SELECT (SELECT COUNT(*) FROM chunks AS c WHERE c.ref_count <> "
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
        ASSIGN_OR_RETURN(int64_t disagreements, rows.Int(0, 0));
        if (disagreements != 0) {
          return InvalidArgumentError("snapshot is inconsistent: " + std::to_string(disagreements) +
                                      " chunk reference counts disagree with the objects' and "
                                      "owners' chunk lists");
        }
        // Every setting belongs to a namespace row, so that DeleteNamespace removes it.
        ASSIGN_OR_RETURN(Rows orphan_rows,
                         c.Exec("SELECT COUNT(*) FROM namespace_settings AS s WHERE NOT EXISTS "
                                "(SELECT 1 FROM namespaces AS n WHERE n.tenant = s.tenant AND "
                                "n.name = s.namespace)"));
        ASSIGN_OR_RETURN(int64_t orphans, orphan_rows.Int(0, 0));
        if (orphans != 0) {
          return InvalidArgumentError("snapshot is inconsistent: " + std::to_string(orphans) +
                                      " namespace settings have no namespace record");
        }
        // Fresh statistics, or the first queries on the loaded tables are planned as if
        // they were empty (a sequential scan per chunk in the next dump, for one).
        return c.Script(
            "ANALYZE objects, object_chunks, chunks, owner_chunks, fs_inodes, fs_dentries, "
            "fs_xattrs");
      },
      /*retry=*/false);
  if (!status.ok()) return status;
  return counts;
}

// ---- generic owners ---------------------------------------------------------------------

Status PostgresMetaStore::SetOwnerChunks(const ChunkOwner& owner,
                                         const std::vector<OwnerChunk>& chunks,
                                         TimestampMs now_ms) {
  RETURN_IF_ERROR(CheckChunkOwner(owner));
  return Write("set the chunks of owner " + internal::DescribeOwner(owner),
               [&](Connection& c) { return ReplaceOwnerChunks(c, owner, chunks, now_ms); });
}

Status PostgresMetaStore::DropOwnerChunks(const ChunkOwner& owner, TimestampMs now_ms) {
  RETURN_IF_ERROR(CheckChunkOwner(owner));
  return Write("drop the chunks of owner " + internal::DescribeOwner(owner),
               [&](Connection& c) { return ReplaceOwnerChunks(c, owner, {}, now_ms); });
}

Result<std::vector<OwnerChunk>> PostgresMetaStore::GetOwnerChunks(const ChunkOwner& owner) {
  RETURN_IF_ERROR(CheckChunkOwner(owner));
  std::vector<OwnerChunk> chunks;
  Status status = Read(
      "get the chunks of owner " + internal::DescribeOwner(owner), [&](Connection& c) -> Status {
        chunks.clear();
        ASSIGN_OR_RETURN(
            Rows rows,
            c.Exec("SELECT oc.storage_class, oc.digest, oc.size_bytes, c.block_checksums, "
                   "COALESCE(c.damaged_ms, 0) FROM owner_chunks AS oc "
                   "LEFT JOIN chunks AS c ON c.storage_class = oc.storage_class AND "
                   "c.digest = oc.digest WHERE oc.owner_kind = $1 AND oc.owner_id = $2 "
                   "ORDER BY oc.seq",
                   Params().Text(owner.kind).Text(owner.id)));
        for (int i = 0; i < rows.size(); ++i) {
          OwnerChunk entry;
          ASSIGN_OR_RETURN(entry.storage_class, rows.Class(i, 0));
          ASSIGN_OR_RETURN(entry.chunk.digest, rows.Hash(i, 1));
          ASSIGN_OR_RETURN(int64_t size, rows.Int(i, 2));
          entry.chunk.size_bytes = static_cast<uint64_t>(size);
          if (!rows.IsNull(i, 3)) entry.chunk.block_checksums = rows.Bytes(i, 3);
          ASSIGN_OR_RETURN(entry.chunk.damaged_ms, rows.Int(i, 4));
          chunks.push_back(std::move(entry));
        }
        return OkStatus();
      });
  if (!status.ok()) return status;
  return chunks;
}

Result<std::vector<ChunkOwner>> PostgresMetaStore::FindOwnersWithChunks(
    StorageClass storage_class, const std::vector<Digest>& digests) {
  std::set<ChunkOwner> hits;  // ordered by (kind, id), like the model
  Status status = Read("find owners with chunks", [&](Connection& c) -> Status {
    hits.clear();
    for (const Digest& digest : std::set<Digest>(digests.begin(), digests.end())) {
      ASSIGN_OR_RETURN(Rows rows, c.Exec("SELECT DISTINCT owner_kind, owner_id FROM owner_chunks "
                                         "WHERE storage_class = $1 AND digest = $2",
                                         Params().Class(storage_class).Hash(digest)));
      for (int i = 0; i < rows.size(); ++i)
        hits.insert(ChunkOwner{rows.Text(i, 0), rows.Text(i, 1)});
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return std::vector<ChunkOwner>(hits.begin(), hits.end());
}

Result<std::vector<OwnerUsageRow>> PostgresMetaStore::OwnerUsage(const std::string& kind) {
  RETURN_IF_ERROR(internal::CheckOwnerKind(kind));
  std::vector<OwnerUsageRow> rows;
  Status status = Read("usage of owners of kind " + kind, [&](Connection& c) -> Status {
    rows.clear();
    // Per class: owners, logical bytes (every entry), physical bytes (each distinct digest
    // once, MAX keeping one size per digest even if damaged rows disagree).
    ASSIGN_OR_RETURN(
        Rows result,
        c.Exec("SELECT storage_class, COUNT(DISTINCT owner_id), SUM(size_bytes)::bigint, "
               "(SELECT SUM(size)::bigint FROM (SELECT MAX(d.size_bytes) AS size FROM "
               "owner_chunks AS d WHERE d.owner_kind = $1 AND "
               "d.storage_class = oc.storage_class GROUP BY d.digest) AS p) "
               "FROM owner_chunks AS oc WHERE owner_kind = $1 "
               "GROUP BY storage_class ORDER BY storage_class",
               Params().Text(kind)));
    for (int i = 0; i < result.size(); ++i) {
      OwnerUsageRow usage;
      usage.kind = kind;
      ASSIGN_OR_RETURN(usage.storage_class, result.Class(i, 0));
      ASSIGN_OR_RETURN(int64_t owners, result.Int(i, 1));
      ASSIGN_OR_RETURN(int64_t logical, result.Int(i, 2));
      ASSIGN_OR_RETURN(int64_t physical, result.Int(i, 3));
      usage.owners = static_cast<uint64_t>(owners);
      usage.logical_bytes = static_cast<uint64_t>(logical);
      usage.physical_bytes = static_cast<uint64_t>(physical);
      rows.push_back(std::move(usage));
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return rows;
}

// Applies the pending steps and records them in one transaction, so a crash mid-migration
// leaves the previous version intact. The advisory lock comes first, before even the
// CREATE TABLE IF NOT EXISTS, so nodes starting together run one after the other and the
// later ones (whose statements see the committed work under READ COMMITTED) find nothing
// left to do.
Status Migrate(Connection& c, const std::string& label) {
  RETURN_IF_ERROR(c.Script("BEGIN ISOLATION LEVEL READ COMMITTED"));
  Status status = [&]() -> Status {
    RETURN_IF_ERROR(c.Script(("SELECT pg_advisory_xact_lock(" + std::to_string(kLockSpace) + ", " +
                              std::to_string(kMigrationLock) + ")")
                                 .c_str()));
    RETURN_IF_ERROR(
        c.Script("CREATE TABLE IF NOT EXISTS schema_version ("
                 "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"));
    ASSIGN_OR_RETURN(Rows rows,
                     c.Exec("SELECT COALESCE(MAX(version), 0)::bigint FROM schema_version"));
    ASSIGN_OR_RETURN(int64_t version, rows.Int(0, 0));
    if (version > kSchemaVersion) {
      return FailedPreconditionError("metadata database " + label + " has schema version " +
                                     std::to_string(version) + ", newer than this binary's " +
                                     std::to_string(kSchemaVersion));
    }
    for (int64_t step = version; step < kSchemaVersion; ++step) {
      Status applied = c.Script(kMigrations[step]);
      if (applied.ok()) {
        applied = c.Exec("INSERT INTO schema_version (version) VALUES ($1::integer)",
                         Params().Int(step + 1))
                      .status();
      }
      if (!applied.ok()) {
        return applied.WithContext("migration to schema version " + std::to_string(step + 1));
      }
    }
    return c.Script("COMMIT");
  }();
  if (!status.ok() && !c.broken()) c.Script("ROLLBACK").IgnoreError();
  return status;
}

// "host:port/db" for messages, from the parsed URL (defaults as libpq applies them).
Result<std::string> Describe(const std::string& url) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
  if (options == nullptr) {
    // libpq's message may quote the part of the URL it choked on, password included.
    PQfreemem(error);
    return InvalidArgumentError("metadata url '" + RedactPostgresUrl(url) +
                                "' is not a valid PostgreSQL connection URI");
  }
  std::string host, hostaddr, port, dbname, user;
  for (PQconninfoOption* option = options; option->keyword != nullptr; ++option) {
    if (option->val == nullptr) continue;
    const std::string_view keyword = option->keyword;
    if (keyword == "host") host = option->val;
    if (keyword == "hostaddr") hostaddr = option->val;
    if (keyword == "port") port = option->val;
    if (keyword == "dbname") dbname = option->val;
    if (keyword == "user") user = option->val;
  }
  PQconninfoFree(options);
  if (host.empty()) host = hostaddr.empty() ? "localhost" : hostaddr;
  if (port.empty()) port = "5432";
  if (dbname.empty()) dbname = user;
  return host + ":" + port + "/" + dbname;
}

}  // namespace postgres_internal

using postgres_internal::Connection;
using postgres_internal::Describe;
using postgres_internal::kSchemaVersion;
using postgres_internal::Migrate;
using postgres_internal::Pool;
using postgres_internal::PostgresMetaStore;

int PostgresSchemaVersion() { return kSchemaVersion; }

std::string RedactPostgresUrl(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const size_t authority = scheme + 3;
  const size_t end = url.find_first_of("/?#", authority);
  const size_t at = url.rfind('@', end == std::string::npos ? url.size() : end);
  if (at == std::string::npos || at < authority) return url;
  const size_t colon = url.find(':', authority);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

Result<std::unique_ptr<MetaStore>> OpenPostgresMetaStore(const std::string& url,
                                                         const PostgresMetaStoreOptions& options) {
  if (options.max_connections < 1) {
    return InvalidArgumentError("postgres max_connections must be at least 1");
  }
  ASSIGN_OR_RETURN(std::string label, Describe(url));
  auto pool = std::make_unique<Pool>(url, label, options);
  {
    ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, pool->Connect());
    // COLLATE "C" orders by the bytes of the server encoding: byte-wise UTF-8 order only
    // in a UTF8 database.
    const char* encoding = PQparameterStatus(conn->raw(), "server_encoding");
    if (encoding == nullptr || std::string_view(encoding) != "UTF8") {
      return FailedPreconditionError("metadata database " + label + " is encoded in " +
                                     (encoding != nullptr ? encoding : "an unknown encoding") +
                                     "; cairn needs UTF8");
    }
    RETURN_IF_ERROR(AnnotateStorageError(Migrate(*conn, label), "migrating"));
  }
  return std::unique_ptr<MetaStore>(new PostgresMetaStore(std::move(pool), options));
}

}  // namespace cairn::meta

#undef CAIRN_OBJECT_COLUMNS
#undef CAIRN_LIST_COLUMNS
#undef CAIRN_LOCK_REFERENCED
#undef CAIRN_DROP_REFERENCES
#undef CAIRN_OBJECT_REFERENCES
#undef CAIRN_OWNER_REFERENCES
#undef CAIRN_LIVE_REFERENCES
#undef CAIRN_WALK_COLUMNS
#undef CAIRN_WALK_DIR
#undef CAIRN_SNAPSHOT_OWNER_ROW
