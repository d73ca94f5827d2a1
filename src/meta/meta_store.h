// MetaStore: the transactional metadata store behind every use case.
//
// Contract shared by every engine (in-memory model, SQLite, later PostgreSQL); the
// conformance suite in tests/meta checks each of them against it.
//
// Objects. A row per object id with a state:
//   WRITING    an upload in progress; invisible; holds references on the chunks it has
//              added so far (so GC never deletes them under the upload).
//   COMMITTED  visible; at most one per (tenant, namespace, key).
//   DELETING   invisible; its chunk references were dropped in the same transaction that
//              set this state. GC purges the row after the grace period (= DELETED).
// Chunks. A row per (storage_class, digest) with a reference count = the number of
// references held by live owners of any kind: object_chunks rows of WRITING or COMMITTED
// objects, plus owner_chunks rows of generic owners (ChunkOwner below: a file of a
// filesystem front end, say) that name it. `zero_since_ms` is the time the count last
// became zero; GC may delete a chunk whose count is zero, whose zero_since_ms is older
// than the grace cutoff and that no owner_chunks row names.
// Owners. A generic owner (kind, id) holds an ordered chunk list, each entry with its
// storage class; SetOwnerChunks replaces it whole, DropOwnerChunks empties it. Every path
// that counts references (the methods below, fsck's check and repair, GC, usage and
// snapshots) counts these lists as it counts objects', so adding an owner kind never makes
// a repair drop live references or GC delete a chunk that an owner still names.
//
// Thread-safety: every method may be called from any thread concurrently. Each method is
// one transaction: it either fully happens or not at all.
// Errors: kNotFound for an absent/invisible row, kUnavailable when the database cannot be
// reached or is busy beyond its timeout, kInternal otherwise; messages name the input.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/status.h"
#include "core/types.h"

namespace cairn::meta {

struct ObjectRecord {
  ObjectId id;
  std::string tenant;
  std::string namespace_name;
  std::string key;
  ObjectState state = ObjectState::kWriting;
  StorageClass storage_class = StorageClass::kHot;
  uint64_t size_bytes = 0;
  Digest content_hash;  // SHA-256 of the whole content (meaningful once committed)
  std::string etag;     // opaque entity tag (MD5 hex for single uploads)
  std::string content_type;
  std::map<std::string, std::string> user_metadata;
  TimestampMs created_at_ms = 0;
  TimestampMs updated_at_ms = 0;
  // Set when the whole content is stored in the metadata row (small objects); such an
  // object has no chunks.
  std::optional<std::string> inline_data;
  bool operator==(const ObjectRecord&) const = default;
};

struct ChunkRef {
  ChunkRef() = default;
  ChunkRef(Digest digest_in, uint64_t size_bytes_in, std::string block_checksums_in = {},
           TimestampMs damaged_ms_in = 0)
      : digest(digest_in),
        size_bytes(size_bytes_in),
        block_checksums(std::move(block_checksums_in)),
        damaged_ms(damaged_ms_in) {}
  Digest digest;
  uint64_t size_bytes = 0;
  // CRC32C of each 256 KiB block (core/block_checksums.h), what reads verify against.
  // AddChunk/PutCommitted record it on a chunk row that has none; GetChunks returns the
  // row's (empty: unknown, e.g. a chunk stored before checksums were kept).
  std::string block_checksums;
  // From GetChunks: when a read or a check found the chunk's file damaged or missing
  // (0: not known to be damaged). Never set by the caller of AddChunk/PutCommitted.
  TimestampMs damaged_ms = 0;
  bool operator==(const ChunkRef&) const = default;
};

// A holder of chunk references other than an object. `kind` is a short lowercase name
// (1..32 bytes of [a-z0-9-], starting with a letter) naming what the owner is, e.g. a file
// of the filesystem front end; "object" is reserved (objects hold their references through
// their own chunk lists). `id` names the owner within its kind: 1..1024 bytes of UTF-8
// without control bytes. Owners compare by kind, then id, byte-wise.
inline constexpr size_t kMaxOwnerKindBytes = 32;
inline constexpr size_t kMaxOwnerIdBytes = 1024;
inline constexpr std::string_view kObjectOwnerKind = "object";

struct ChunkOwner {
  std::string kind;
  std::string id;
  auto operator<=>(const ChunkOwner&) const = default;
  bool operator==(const ChunkOwner&) const = default;
};

// One entry of an owner's chunk list. Unlike an object's chunks, which all share the
// object's class, each entry names the storage class its chunk lives in, so a front end
// can read it back.
struct OwnerChunk {
  OwnerChunk() = default;
  OwnerChunk(StorageClass storage_class_in, ChunkRef chunk_in)
      : storage_class(storage_class_in), chunk(std::move(chunk_in)) {}
  StorageClass storage_class = StorageClass::kHot;
  ChunkRef chunk;  // digest and length; block_checksums and damaged_ms as ChunkRef says
  bool operator==(const OwnerChunk&) const = default;
};

struct ChunkRecord {
  ChunkRecord() = default;
  ChunkRecord(StorageClass storage_class_in, Digest digest_in, uint64_t size_bytes_in,
              int64_t ref_count_in, TimestampMs zero_since_ms_in)
      : storage_class(storage_class_in),
        digest(digest_in),
        size_bytes(size_bytes_in),
        ref_count(ref_count_in),
        zero_since_ms(zero_since_ms_in) {}
  StorageClass storage_class = StorageClass::kHot;
  Digest digest;
  uint64_t size_bytes = 0;
  int64_t ref_count = 0;
  TimestampMs zero_since_ms = 0;  // meaningful when ref_count == 0
  std::string block_checksums;    // see ChunkRef
  TimestampMs damaged_ms = 0;     // see ChunkRef
  bool operator==(const ChunkRecord&) const = default;
};

struct CommitResult {
  ObjectRecord object;                      // the object as committed
  std::optional<ObjectId> replaced_object;  // the previous COMMITTED object at the key
};

struct ListRequest {
  std::string tenant;
  std::string namespace_name;
  std::string prefix;
  std::string start_after;  // exclusive lower bound on the key ("" = from the start)
  uint32_t limit = 1000;    // 1..10000 entries (objects plus common prefixes)
  // When not empty, keys that contain the delimiter after the prefix are rolled up into
  // one common prefix each (the key up to and including the first such delimiter), as S3
  // does. Each common prefix counts as one entry; it is found from the first key after
  // start_after, and the engine seeks past all its keys instead of reading them.
  std::string delimiter = std::string();
};

struct ListPage {
  std::vector<ObjectRecord> objects;  // COMMITTED only, ascending byte-wise key order;
                                      // inline_data and user_metadata may be left empty
  // With a delimiter: the common prefixes, ascending. Objects and common prefixes
  // interleave in key order; the last entry of the page is the greater of the last key
  // and the last common prefix.
  std::vector<std::string> common_prefixes;
  bool truncated = false;  // true when more entries follow the last one
};

// A SQL statement an engine ran and the database's plan for it (diagnostics).
struct StatementPlan {
  std::string sql;
  std::string plan;  // one line per plan node
};

struct UsageRow {
  std::string namespace_name;
  StorageClass storage_class = StorageClass::kHot;
  uint64_t objects = 0;
  uint64_t logical_bytes = 0;   // sum of committed objects' sizes
  uint64_t physical_bytes = 0;  // distinct chunks referenced by these objects + inline bytes
};

// Usage of the owners of one kind in one storage class (MetaStore::OwnerUsage).
struct OwnerUsageRow {
  std::string kind;
  StorageClass storage_class = StorageClass::kHot;
  uint64_t owners = 0;          // owners of the kind with at least one chunk in the class
  uint64_t logical_bytes = 0;   // sum of the lengths of their chunk-list entries
  uint64_t physical_bytes = 0;  // distinct chunks named by those entries
  bool operator==(const OwnerUsageRow&) const = default;
};

struct ObjectCountRow {
  std::string tenant;
  std::string namespace_name;
  ObjectState state = ObjectState::kCommitted;
  uint64_t objects = 0;
};

struct StorageBytesRow {
  StorageClass storage_class = StorageClass::kHot;
  std::string namespace_name;
  uint64_t logical_bytes = 0;  // committed objects' sizes
};

enum class Scope { kRead, kWrite, kAdmin };
std::string_view ScopeName(Scope scope);
Result<Scope> ParseScope(std::string_view text);

// An API key. The secret itself is never stored: only its SHA-256.
struct ApiKeyRecord {
  std::string key_id;                // public part, unique
  Digest secret_hash;                // SHA-256 of the secret part
  std::vector<std::string> tenants;  // "*" = every tenant
  Scope scope = Scope::kRead;
  TimestampMs created_at_ms = 0;
  bool revoked = false;
  std::string description;
  bool operator==(const ApiKeyRecord&) const = default;
};

// A namespace made explicitly (an S3 bucket created empty). Namespaces also exist
// implicitly while they hold committed objects.
struct NamespaceRecord {
  std::string tenant;
  std::string name;
  TimestampMs created_at_ms = 0;
  bool operator==(const NamespaceRecord&) const = default;
};

// Limits of a namespace setting (MetaStore::SetNamespaceSetting): its name is 1..64 bytes
// of [a-z0-9-]; its value is UTF-8 text without NUL of at most 1 MiB.
inline constexpr size_t kMaxNamespaceSettingNameBytes = 64;
inline constexpr size_t kMaxNamespaceSettingValueBytes = size_t{1} << 20;

// One setting of a namespace, as a snapshot carries it (its namespace always has a
// NamespaceRecord in the same snapshot).
struct NamespaceSettingRecord {
  std::string tenant;
  std::string namespace_name;
  std::string name;
  std::string value;
  bool operator==(const NamespaceSettingRecord&) const = default;
};

// An S3 access key. SigV4 needs the secret itself, so it is stored, encrypted by the
// caller (auth/secret_box.h): the store keeps whatever text it is given.
struct S3KeyRecord {
  std::string access_key;            // unique, 20 upper-case alphanumerics
  std::string secret;                // as stored: sealed ("enc1:..."), or plaintext (old)
  std::vector<std::string> tenants;  // the first one owns the buckets; "*" = every tenant
  Scope scope = Scope::kWrite;
  TimestampMs created_at_ms = 0;
  bool revoked = false;
  std::string description;
  bool operator==(const S3KeyRecord&) const = default;
};

// One stored S3 secret to replace (sealing a plaintext one, or re-sealing with a new
// master key), provided it is still `old_secret`.
struct S3SecretChange {
  std::string access_key;
  std::string old_secret;
  std::string new_secret;
};

struct FsckReferenceRow {
  StorageClass storage_class = StorageClass::kHot;
  Digest digest;
  int64_t recorded_ref_count = 0;  // chunks.ref_count (0 if no chunk row exists)
  // object_chunks rows of WRITING/COMMITTED objects plus owner_chunks rows naming it.
  int64_t actual_ref_count = 0;
  // The part of actual_ref_count from COMMITTED objects: a chunk referenced only by
  // uploads in progress (or crashed ones awaiting GC) may legitimately have no file yet.
  int64_t committed_ref_count = 0;
  uint64_t size_bytes = 0;
  bool has_chunk_row = false;
  // The part of actual_ref_count from generic owners (owner_chunks rows). An owner's list
  // names chunks that are stored, so like a committed reference it needs the file.
  int64_t owner_ref_count = 0;
};

// ---- Snapshots (cairn meta dump / load, rotating backups) ------------------------------
//
// A snapshot is the store's visible state at one instant, engine-neutral: COMMITTED objects
// (hidden namespaces such as multipart uploads included) with their chunk lists, generic
// owners with theirs, every chunk row, explicit namespaces and their settings, API keys and
// S3 keys. WRITING and DELETING objects are left out: an upload in flight can never
// complete against a restored store, and a DELETING object is invisible and holds no
// references. Chunk reference counts are therefore the number of references from the
// snapshot's objects and owners; a chunk whose count that makes zero keeps (or, if it had
// none, gets the snapshot time as) its zero_since_ms, so GC reclaims it as usual.
struct SnapshotCounts {
  uint64_t api_keys = 0;
  uint64_t s3_keys = 0;
  uint64_t namespaces = 0;
  uint64_t namespace_settings = 0;
  uint64_t chunks = 0;
  uint64_t objects = 0;
  uint64_t owners = 0;  // generic owners with a non-empty chunk list
  bool operator==(const SnapshotCounts&) const = default;
};

struct SnapshotObject {
  ObjectRecord object;  // state is COMMITTED
  std::vector<ChunkRef> chunks;
  bool operator==(const SnapshotObject&) const = default;
};

// A generic owner and its chunk list (class, digest and length of each entry).
struct SnapshotOwner {
  ChunkOwner owner;
  std::vector<OwnerChunk> chunks;  // not empty
  bool operator==(const SnapshotOwner&) const = default;
};

// The alternatives are in file order (snapshot.h): index() is the record's kind.
using SnapshotRecord =
    std::variant<ApiKeyRecord, S3KeyRecord, NamespaceRecord, NamespaceSettingRecord, ChunkRecord,
                 SnapshotObject, SnapshotOwner>;

// Receives a snapshot from ExportSnapshot: Begin once, then every API key, S3 key,
// namespace, namespace setting, chunk, object and owner, in that order (within a kind, in
// the engine's key order: settings by tenant, namespace and name, owners by kind and id,
// byte-wise). A non-OK status from any call stops the export and is returned by it.
class SnapshotVisitor {
 public:
  virtual ~SnapshotVisitor() = default;
  virtual Status Begin(const SnapshotCounts& counts) = 0;
  virtual Status Visit(const SnapshotRecord& record) = 0;
};

// Feeds ImportSnapshot. Next returns records in the order a visitor receives them and then
// nullopt. Returning nullopt is the source's promise that the input was complete and intact
// (a file source checks its trailer first); an importer commits only after it.
class SnapshotSource {
 public:
  virtual ~SnapshotSource() = default;
  virtual Result<std::optional<SnapshotRecord>> Next() = 0;
};

class MetaStore {
 public:
  virtual ~MetaStore() = default;

  // Whether GetObject, GetObjectByKey, GetNamespace and GetChunks answer from this
  // machine's files without waiting for another process, the network or another thread,
  // so an event loop may call them directly (a request then needs no worker-pool trip).
  // Engines that talk to a server answer false.
  virtual bool point_reads_are_local() const { return false; }

  // Readiness probe: commits a tiny write, so it fails (kUnavailable or kInternal) when
  // the store cannot commit, not only when it cannot be reached.
  virtual Status Ping() = 0;

  // ---- Store identity -----------------------------------------------------------------
  // The identity of the store this metadata belongs to: a UUID that the storage roots
  // carry too (gc/store_identity.h); nullopt until one is set. Not part of snapshots'
  // emptiness: a store with only an identity is still empty for ImportSnapshot.
  virtual Result<std::optional<std::string>> GetStoreIdentity() {
    return NotSupported("GetStoreIdentity");
  }
  // Records `id` unless an identity is recorded already, in one transaction; returns the
  // identity recorded afterwards (`id`, or the one set first), so that nodes starting
  // together on one database agree.
  virtual Result<std::string> SetStoreIdentityIfAbsent(const std::string& id) {
    return NotSupported("SetStoreIdentityIfAbsent");
  }
  // The number of chunk rows (any count): the size of the store for GC's deletion cap and
  // for the empty-store check at open.
  virtual Result<uint64_t> CountChunks() { return NotSupported("CountChunks"); }
  // The engine checks its own storage (fsck): SQLite runs PRAGMA integrity_check and
  // checks the schema version; PostgreSQL checks that the server answers and the schema
  // version. Returns the problems found, empty when healthy; an error status only when
  // the check could not run at all.
  virtual Result<std::vector<std::string>> CheckIntegrity() {
    return NotSupported("CheckIntegrity");
  }

  // ---- Uploads ----------------------------------------------------------------------
  // Inserts a WRITING row (object.state is ignored and stored as WRITING).
  // kAlreadyExists if the id is taken.
  virtual Status BeginUpload(const ObjectRecord& object) = 0;

  // Records that chunk number `sequence` (0-based, consecutive) of WRITING object `id` is
  // `chunk`, and takes a reference on (storage_class of the object, digest): the chunk row
  // is created with ref_count 1 or incremented. Also bumps the object's updated_at_ms to
  // now_ms, so GC sees the upload is alive. kNotFound if the object is not WRITING.
  // Engines may commit it without waiting for the disk: it is visible at once (which is
  // what GC needs), and the durable CommitUpload that follows makes it durable too.
  virtual Status AddChunk(const ObjectId& id, uint32_t sequence, const ChunkRef& chunk,
                          TimestampMs now_ms) = 0;

  // WRITING -> COMMITTED with the final fields from `final_fields` (size_bytes,
  // content_hash, etag, content_type, user_metadata; updated_at_ms = now_ms). Atomically
  // replaces the COMMITTED object at the same (tenant, namespace, key), if any: that one
  // becomes DELETING and its chunk references are dropped. kNotFound if `id` is not
  // WRITING (e.g. GC reclaimed a stalled upload); kUnavailable if the recorded chunks do
  // not add up to final_fields.size_bytes (a reference lost in a database restart).
  virtual Result<CommitResult> CommitUpload(const ObjectId& id, const ObjectRecord& final_fields,
                                            TimestampMs now_ms) = 0;

  // Inserts a COMMITTED object whose data is inline (object.inline_data set) or which
  // references `chunks` (each gets a reference), replacing the current object at the key
  // as CommitUpload does, all in one transaction. Used for small objects and for copies
  // that link existing chunks.
  virtual Result<CommitResult> PutCommitted(const ObjectRecord& object,
                                            const std::vector<ChunkRef>& chunks,
                                            TimestampMs now_ms) = 0;

  // PutCommitted of an inline object (no chunks) without blocking the caller: the write
  // joins the engine's group commit and `done` runs later, on a thread of the store, with
  // the result once the transaction is durable (or failed). Returns false, leaving
  // `object` untouched and never calling `done`, when the engine has no such path or its
  // queue is full: the caller then uses PutCommitted (that is the backpressure). `done`
  // must be quick and must not call back into the store.
  virtual bool PutCommittedAsync(ObjectRecord&& object, TimestampMs now_ms,
                                 std::function<void(Result<CommitResult>)> done) {
    (void)object;
    (void)now_ms;
    (void)done;
    return false;
  }
  // Returns once every PutCommittedAsync accepted so far has called its `done`. A server
  // calls it before tearing down what the callbacks post to.
  virtual void WaitForAsyncWrites() {}

  // Drops a WRITING object and its chunk references. kNotFound if it is not WRITING.
  virtual Status AbortUpload(const ObjectId& id, TimestampMs now_ms) = 0;

  // ---- Reads ------------------------------------------------------------------------
  // The COMMITTED object with this id owned by `tenant`; kNotFound otherwise (another
  // tenant's object is indistinguishable from a missing one).
  virtual Result<ObjectRecord> GetObject(const std::string& tenant, const ObjectId& id) = 0;
  virtual Result<ObjectRecord> GetObjectByKey(const std::string& tenant,
                                              const std::string& namespace_name,
                                              const std::string& key) = 0;
  // The ordered chunk list of an object in any state (empty for inline objects), each with
  // its chunk row's block checksums and damage mark (see ChunkRef).
  virtual Result<std::vector<ChunkRef>> GetChunks(const ObjectId& id) = 0;
  virtual Result<ListPage> ListObjects(const ListRequest& request) = 0;

  // ---- Deletes ----------------------------------------------------------------------
  // COMMITTED -> DELETING and drop its chunk references, in one transaction. Returns the
  // object as it was. kNotFound if no COMMITTED object with this id belongs to `tenant`.
  virtual Result<ObjectRecord> DeleteObject(const std::string& tenant, const ObjectId& id,
                                            TimestampMs now_ms) = 0;

  // ---- Accounting -------------------------------------------------------------------
  virtual Result<std::vector<UsageRow>> Usage(const std::string& tenant) = 0;
  virtual Result<std::vector<ObjectCountRow>> CountObjects() = 0;
  virtual Result<std::vector<StorageBytesRow>> StorageBytes() = 0;

  // ---- Garbage collection -----------------------------------------------------------
  // WRITING objects with updated_at_ms < cutoff_ms are aborted (references dropped, row
  // deleted), at most `limit` per call. Returns how many.
  virtual Result<uint64_t> ReapStalledUploads(TimestampMs cutoff_ms, uint32_t limit,
                                              TimestampMs now_ms) = 0;
  // DELETING objects with updated_at_ms < cutoff_ms: rows deleted. Returns how many.
  virtual Result<uint64_t> PurgeDeletedObjects(TimestampMs cutoff_ms, uint32_t limit) = 0;
  // For up to `limit` chunks with ref_count == 0, zero_since_ms < cutoff_ms and no
  // owner_chunks row naming them (a guard against a wrong count), in ONE write
  // transaction: calls remove_file(chunk); when it returns OK the chunk row is deleted in
  // the same transaction. Because the transaction holds the write lock while files are
  // removed, a concurrent AddChunk/PutCommitted on the same digest either happens before
  // (count > 0, so the chunk is not a candidate) or after (the row is gone and the
  // uploader must write the file again). Returns the chunks removed.
  virtual Result<std::vector<ChunkRecord>> CollectGarbageChunks(
      TimestampMs cutoff_ms, uint32_t limit,
      const std::function<Status(const ChunkRecord&)>& remove_file) = 0;

  // ---- Chunk health ------------------------------------------------------------------
  // Marks the chunk row (class, digest) damaged since `damaged_ms` (a read or a check found
  // its file corrupt, short or missing), or healthy again with 0 (a fresh copy was
  // installed). The mark is what makes every object that uses the chunk answer an error
  // before it sends a byte. kNotFound if there is no such row.
  virtual Status SetChunkDamaged(StorageClass storage_class, const Digest& digest,
                                 TimestampMs damaged_ms) = 0;

  // ---- Consistency checks (fsck) ----------------------------------------------------
  // Every chunk row, and every digest named by object_chunks of live objects or by
  // owner_chunks, with recorded and actual reference counts (references of every owner
  // kind).
  virtual Result<std::vector<FsckReferenceRow>> CheckReferences() = 0;
  // Sets every chunk's ref_count to its actual count, from objects plus generic owners
  // (creating missing chunk rows, with zero_since_ms = now_ms for counts that become zero).
  // Never drops an owner's references. Returns rows changed.
  virtual Result<uint64_t> RepairReferences(TimestampMs now_ms) = 0;
  // Whether a chunk row exists for (class, digest), for the file-vs-row checks.
  virtual Result<std::vector<ChunkRecord>> ListChunks() = 0;
  // COMMITTED objects that reference a chunk of `digests` in `storage_class`, by id
  // (fsck reports which objects a missing or corrupt chunk affects).
  virtual Result<std::vector<ObjectId>> FindObjectsWithChunks(StorageClass storage_class,
                                                              const std::vector<Digest>& digests) {
    return NotSupported("FindObjectsWithChunks");
  }
  // Drops every reference of objects that reference a chunk in `lost` (a missing or
  // corrupt chunk): those objects become DELETING. Returns the ids. Used by fsck --repair.
  virtual Result<std::vector<ObjectId>> DropObjectsWithChunks(StorageClass storage_class,
                                                              const std::vector<Digest>& lost,
                                                              TimestampMs now_ms) = 0;

  // ---- Generic chunk owners ------------------------------------------------------------
  // Owners other than objects (ChunkOwner above). Each method is one transaction, with the
  // locking of the object paths; references are taken and dropped exactly as for objects
  // (a chunk whose count reaches zero gets zero_since_ms = now_ms and becomes a GC
  // candidate after the grace period, as when an object is deleted). Every method answers
  // kInvalidArgument, changing nothing, for an owner whose kind or id breaks the rules of
  // ChunkOwner (the reserved kind "object" included).
  //
  // An owner that deduplicates onto an existing chunk file must hold its reference before
  // it trusts the file, as an upload's AddChunk does: GC removes a file only while no
  // reference exists, inside the transaction that deletes the row.
  //
  // Replaces the owner's whole chunk list with `chunks` (in order; an empty list drops
  // them all): a reference is taken on each new entry (the chunk row created if absent,
  // block checksums recorded on a row that has none) and every reference of the old list
  // is dropped, atomically.
  virtual Status SetOwnerChunks(const ChunkOwner& owner, const std::vector<OwnerChunk>& chunks,
                                TimestampMs now_ms) {
    return NotSupported("SetOwnerChunks");
  }
  // Drops every reference of the owner (nothing to do is not an error).
  virtual Status DropOwnerChunks(const ChunkOwner& owner, TimestampMs now_ms) {
    return NotSupported("DropOwnerChunks");
  }
  // The owner's chunk list in order, each entry with its class and its chunk row's block
  // checksums and damage mark; empty for an owner that holds nothing.
  virtual Result<std::vector<OwnerChunk>> GetOwnerChunks(const ChunkOwner& owner) {
    return NotSupported("GetOwnerChunks");
  }
  // The owners whose list names a chunk of `digests` in `storage_class`, ordered by kind
  // and id (fsck names the owners a missing or corrupt chunk affects).
  virtual Result<std::vector<ChunkOwner>> FindOwnersWithChunks(StorageClass storage_class,
                                                               const std::vector<Digest>& digests) {
    return NotSupported("FindOwnersWithChunks");
  }
  // What the owners of `kind` hold, one row per storage class in which they hold chunks
  // (classes by name). kInvalidArgument for a kind that breaks the rules.
  virtual Result<std::vector<OwnerUsageRow>> OwnerUsage(const std::string& kind) {
    return NotSupported("OwnerUsage");
  }

  // ---- Composition and metadata updates (S3) -----------------------------------------
  // PutCommitted, and in the same transaction each object of `also_delete` (COMMITTED and
  // owned by object.tenant) becomes DELETING with its references dropped. If one of them
  // is not COMMITTED, kNotFound and nothing changes. Completing a multipart upload uses it
  // to link the parts' chunks into the object and retire the parts atomically.
  virtual Result<CommitResult> PutCommittedAndDelete(const ObjectRecord& object,
                                                     const std::vector<ChunkRef>& chunks,
                                                     const std::vector<ObjectId>& also_delete,
                                                     TimestampMs now_ms) {
    return NotSupported("PutCommittedAndDelete");
  }
  // Replaces the user metadata of a COMMITTED object of `tenant` (object tags live there
  // too); returns the updated object. kNotFound otherwise.
  virtual Result<ObjectRecord> UpdateUserMetadata(
      const std::string& tenant, const ObjectId& id,
      const std::map<std::string, std::string>& user_metadata, TimestampMs now_ms) {
    return NotSupported("UpdateUserMetadata");
  }

  // ---- Namespaces (S3 buckets) --------------------------------------------------------
  // kAlreadyExists if it was created explicitly before (holding objects is not enough);
  // kPermissionDenied if another tenant has an explicit namespace of this name (S3 bucket
  // names are global; namespaces that only hold objects, e.g. written through the native
  // API, do not take a name).
  virtual Status CreateNamespace(const NamespaceRecord& record) {
    return NotSupported("CreateNamespace");
  }
  // Explicit namespaces and namespaces holding COMMITTED objects, by name (byte order).
  virtual Result<std::vector<NamespaceRecord>> ListNamespaces(const std::string& tenant) {
    return NotSupported("ListNamespaces");
  }
  virtual Result<NamespaceRecord> GetNamespace(const std::string& tenant, const std::string& name) {
    return NotSupported("GetNamespace");
  }
  // The tenants with an explicit namespace of this name, in byte order: one, unless a
  // namespace setting made rows for a name that another tenant also holds objects under.
  virtual Result<std::vector<std::string>> NamespaceOwners(const std::string& name) {
    return NotSupported("NamespaceOwners");
  }
  // Removes an explicit namespace, and its settings in the same transaction (a namespace
  // created again under the same name starts with none). kFailedPrecondition while it holds
  // COMMITTED objects; kNotFound if it does not exist at all.
  virtual Status DeleteNamespace(const std::string& tenant, const std::string& name) {
    return NotSupported("DeleteNamespace");
  }
  // Per-namespace settings for the S3 API (canned ACL, policy, CORS, tags): setting name ->
  // opaque text. Empty when none (also for a namespace that does not exist).
  virtual Result<std::map<std::string, std::string>> GetNamespaceSettings(const std::string& tenant,
                                                                          const std::string& name) {
    return NotSupported("GetNamespaceSettings");
  }
  // Sets (`value`) or removes (nullopt) one setting, in one transaction. Creates the
  // namespace's row (created_at_ms = now) if it had none (a bucket that existed only through
  // its objects), so that DeleteNamespace always removes the settings with it.
  // kInvalidArgument, naming the input, unless tenant and name are UTF-8 text without NUL,
  // `setting` is 1..64 bytes of [a-z0-9-] and `value` is UTF-8 text without NUL of at most
  // 1 MiB (kMaxNamespaceSetting*); nothing changes then.
  virtual Status SetNamespaceSetting(const std::string& tenant, const std::string& name,
                                     const std::string& setting,
                                     const std::optional<std::string>& value, TimestampMs now) {
    return NotSupported("SetNamespaceSetting");
  }

  // ---- S3 credentials ---------------------------------------------------------------
  virtual Status CreateS3Key(const S3KeyRecord& key) {  // kAlreadyExists
    return NotSupported("CreateS3Key");
  }
  virtual Result<S3KeyRecord> GetS3Key(const std::string& access_key) {  // revoked too
    return NotSupported("GetS3Key");
  }
  virtual Result<std::vector<S3KeyRecord>> ListS3Keys() { return NotSupported("ListS3Keys"); }
  virtual Status RevokeS3Key(const std::string& access_key) {  // kNotFound
    return NotSupported("RevokeS3Key");
  }
  // Applies every change in one transaction, or none: kAborted if a key's stored secret
  // is no longer `old_secret` or the key is gone (someone changed it meanwhile; read
  // again and retry).
  virtual Status ReplaceS3Secrets(const std::vector<S3SecretChange>& changes) {
    return NotSupported("ReplaceS3Secrets");
  }

  // ---- Diagnostics ------------------------------------------------------------------
  // Lists like ListObjects(request) and returns, for each distinct SQL statement that
  // listing ran, the plan the database chose for it with the same parameters (SQLite:
  // EXPLAIN QUERY PLAN; PostgreSQL: EXPLAIN (ANALYZE, BUFFERS)), so tests and benchmarks
  // can check that listings are served from the index. Engines without SQL: not supported.
  virtual Result<std::vector<StatementPlan>> ExplainList(const ListRequest& request) {
    return NotSupported("ExplainList");
  }

  // ---- Snapshots ----------------------------------------------------------------------
  // Streams the snapshot (see SnapshotCounts above) to `visitor` from ONE read transaction,
  // so it is consistent while writers run; memory stays bounded by a page of rows, not by
  // the store. `now_ms` becomes zero_since_ms of chunks that the snapshot leaves
  // unreferenced and that had none.
  virtual Status ExportSnapshot(SnapshotVisitor& visitor, TimestampMs now_ms) {
    return NotSupported("ExportSnapshot");
  }
  // Loads a snapshot into an EMPTY store (no object, chunk, owner chunk, namespace,
  // namespace setting, API key or S3 key rows) in one transaction: kFailedPrecondition
  // (nothing changed) if the store is not empty; on any error from `source`, a record the
  // store refuses, chunk reference counts that disagree with the objects' and owners' chunk
  // lists, or a setting whose namespace the snapshot does not hold, nothing is changed.
  // Returns what was loaded.
  virtual Result<SnapshotCounts> ImportSnapshot(SnapshotSource& source) {
    return NotSupported("ImportSnapshot");
  }

  // ---- Credentials ------------------------------------------------------------------
  // kAlreadyExists if the key id is taken.
  virtual Status CreateApiKey(const ApiKeyRecord& key) = 0;
  // Revoked keys are returned too (the caller checks `revoked`). kNotFound if unknown.
  virtual Result<ApiKeyRecord> GetApiKey(const std::string& key_id) = 0;
  virtual Result<std::vector<ApiKeyRecord>> ListApiKeys() = 0;
  // kNotFound if unknown.
  virtual Status RevokeApiKey(const std::string& key_id) = 0;

 protected:
  // What an engine without the S3 support answers for those methods.
  static Status NotSupported(std::string_view what) {
    return InternalError(std::string(what) + " is not supported by this metadata engine yet");
  }
};

// Opens the engine named by `url`: "memory:" (the model engine, for tests),
// "sqlite:///abs/path/meta.db" / "sqlite://relative/path.db", or "postgres://...".
// Applies migrations.
Result<std::unique_ptr<MetaStore>> OpenMetaStore(const std::string& url);

// `url` as it may be printed: a PostgreSQL password is replaced by "***".
std::string RedactMetaUrl(const std::string& url);

}  // namespace cairn::meta
