// The records the metadata interfaces exchange (objects, chunks, owners, keys, namespaces,
// snapshots), shared by every use-case interface of meta_store.h.
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

// The chunk rows of one storage class, summed (ChunkReferences::ChunkTotals).
struct ChunkTotalsRow {
  StorageClass storage_class = StorageClass::kHot;
  uint64_t chunks = 0;
  uint64_t bytes = 0;
  uint64_t unreferenced = 0;  // ref_count 0: awaiting GC
  bool operator==(const ChunkTotalsRow&) const = default;
};

// The kept usage counter of one (tenant, namespace, class): its COMMITTED objects, their
// sizes and the bytes of those kept inline (Accounting::CheckUsageCounters).
struct UsageCounterRow {
  std::string tenant;
  std::string namespace_name;
  StorageClass storage_class = StorageClass::kHot;
  int64_t objects = 0;  // signed: a damaged counter may have gone below zero
  int64_t logical_bytes = 0;
  int64_t inline_bytes = 0;
  bool operator==(const UsageCounterRow&) const = default;
};

struct StorageBytesRow {
  StorageClass storage_class = StorageClass::kHot;
  std::string namespace_name;
  uint64_t logical_bytes = 0;  // committed objects' sizes
  uint64_t inline_bytes = 0;   // of those, kept inline in the metadata (no chunk)
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

// ---- Filesystem volume rows (meta/file_tree.h; here because snapshots carry them) ------

inline constexpr std::string_view kFileOwnerKind = "file";
inline constexpr uint64_t kRootInode = 1;
inline constexpr size_t kMaxFileNameBytes = 255;
inline constexpr uint32_t kFileTreeFormatVersion = 1;

enum class FileType : uint8_t {
  kRegular = 1,
  kDirectory = 2,
  kSymlink = 3,
  kFifo = 4,
  kSocket = 5,
  kCharDevice = 6,
  kBlockDevice = 7,
};

struct VolumeRecord {
  std::string name;  // 1..64 bytes of [A-Za-z0-9._-]
  std::string uuid;  // set by FormatVolume
  TimestampMs created_ms = 0;
  uint32_t trash_days = 0;
  uint32_t format_version = kFileTreeFormatVersion;
  bool operator==(const VolumeRecord&) const = default;
};

struct InodeRecord {
  uint64_t ino = 0;
  FileType type = FileType::kRegular;
  uint32_t mode = 0;  // permission bits with setuid, setgid and sticky (07777); no type bits
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t nlink = 0;
  uint64_t size = 0;
  int64_t atime_ns = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  int64_t btime_ns = 0;  // creation
  uint64_t rdev = 0;
  // Directories: the directory holding their one entry (the root: itself), so a rename can
  // tell whether it moves a directory into its own subtree. 0 for other types (a file may
  // have several names).
  uint64_t parent = 0;
  std::string symlink_target;  // symlinks only
  // Incremented on every PutInode of the row by the transaction (callers need not): a
  // mount compares it to revalidate what it cached (close-to-open).
  uint64_t change = 0;
  bool operator==(const InodeRecord&) const = default;
};

struct DentryRecord {
  uint64_t parent = 0;
  std::string name;  // 1..255 bytes, no '/' nor NUL, not "." nor ".."
  uint64_t ino = 0;
  FileType type = FileType::kRegular;
  bool operator==(const DentryRecord&) const = default;
};

// ---- Snapshots (cairn meta dump / load, rotating backups) ------------------------------
//
// A snapshot is the store's visible state at one instant, engine-neutral: COMMITTED objects
// (hidden namespaces such as multipart uploads included) with their chunk lists, generic
// owners with theirs, every chunk row, explicit namespaces and their settings, API keys,
// S3 keys and the filesystem volume's tree (SnapshotVolume below says what of it). WRITING
// and DELETING objects are left out: an upload in flight can never complete against a
// restored store, and a DELETING object is invisible and holds no references. Chunk reference
// counts are therefore the number of references from the snapshot's objects and owners; a chunk
// whose count that makes zero keeps (or, if it had none, gets the snapshot time as) its
// zero_since_ms, so GC reclaims it as usual.
struct SnapshotCounts {
  uint64_t api_keys = 0;
  uint64_t s3_keys = 0;
  uint64_t namespaces = 0;
  uint64_t namespace_settings = 0;
  uint64_t chunks = 0;
  uint64_t objects = 0;
  uint64_t owners = 0;  // generic owners with a non-empty chunk list
  // The filesystem volume, if the store holds one: its row (0 or 1), inodes, directory
  // entries and extended attributes. A file's blocks are owners of kind "file".
  uint64_t volumes = 0;
  uint64_t inodes = 0;
  uint64_t dentries = 0;
  uint64_t xattrs = 0;
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
  // The sequence number of each entry, increasing, when they are not 0, 1, 2, ... (empty
  // then): a file's block rows are numbered by block index and skip its holes.
  std::vector<uint64_t> sequences;
  bool operator==(const SnapshotOwner&) const = default;
};

// The filesystem volume's row, with the next inode number it will hand out.
struct SnapshotVolume {
  VolumeRecord volume;
  uint64_t next_ino = 0;
  bool operator==(const SnapshotVolume&) const = default;
};

struct SnapshotXattr {
  uint64_t ino = 0;
  std::string name;
  std::string value;  // any bytes
  bool operator==(const SnapshotXattr&) const = default;
};

// What a snapshot holds of a filesystem volume, and what it leaves out:
//   - the volume row, every inode with a link (nlink > 0), every directory entry, every
//     extended attribute of an exported inode, and the block rows of exported inodes (as
//     owners of kind "file");
//   - NOT the runtime state of live mounts: sessions, the change feed, locks and the
//     mounts' staging owners (kind "fs-staging"). They describe processes that do not
//     exist for a restored store, whose first mount starts with none of them;
//   - NOT inodes unlinked while open (nlink 0, listed in the orphans of a session) nor
//     their blocks and xattrs: without the session that held them open nothing could ever
//     delete them, and no name reaches them. Their chunks' counts leave their references
//     out, so GC reclaims what only they held, as for an upload in flight.
inline constexpr std::string_view kFsStagingOwnerKind = "fs-staging";

// The alternatives are in file order (snapshot.h): index() is the record's kind.
using SnapshotRecord =
    std::variant<ApiKeyRecord, S3KeyRecord, NamespaceRecord, NamespaceSettingRecord, ChunkRecord,
                 SnapshotObject, SnapshotOwner, SnapshotVolume, InodeRecord, DentryRecord,
                 SnapshotXattr>;

// Receives a snapshot from ExportSnapshot: Begin once, then every API key, S3 key,
// namespace, namespace setting, chunk, object, owner, then the volume, its inodes,
// directory entries and extended attributes, in that order (within a kind, in the engine's
// key order: settings by tenant, namespace and name, owners by kind and id, inodes by ino,
// entries by parent and name, xattrs by ino and name, byte-wise). A non-OK status from any call
// stops the export and is returned by it.
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

// What an engine answers for a method it does not implement (yet).
Status NotSupportedByEngine(std::string_view what);

}  // namespace cairn::meta
