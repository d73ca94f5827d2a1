// The use cases every API calls: upload, download, delete, list, usage.
//
// Upload is a stream: BeginUpload, then Write as bytes arrive, then Commit. Bytes up to
// the inline threshold are kept in memory and committed inline in the metadata store;
// past it, the object becomes a WRITING row and its bytes are cut into chunks at fixed
// 4 MiB offsets (`chunk_size_bytes`, the chunking rule of ingest/chunk_ingest.h), each
// gathered in memory and hashed (SHA-256, in the same pass as the whole content's).
// The chunks are stored by ingest::ChunkIngest with the object as their owner: the
// reference is MetaStore::AddChunk, then the dedup check, then temp file, fsync, rename.
// Commit fsyncs the fan-out directories, verifies the expected size, SHA-256 and MD5, then
// commits the object in one metadata transaction. Memory per upload is bounded by one
// chunk (the inline threshold is smaller), whatever the object size.
//
// Thread-safety: ObjectService is thread-safe; an Upload or ObjectReader belongs to one
// thread at a time. Every call may block on disk or database I/O: callers on an event
// loop run them on a worker pool.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "chunks/chunk_cache.h"
#include "chunks/chunk_store.h"
#include "core/aligned_buffer.h"
#include "core/block_checksums.h"
#include "core/hashing.h"
#include "core/sha256_pair.h"
#include "ingest/chunk_health.h"
#include "ingest/chunk_ingest.h"
#include "meta/meta_store.h"
#include "platform/clock.h"

namespace cairn::objects {

struct ObjectServiceOptions {
  uint64_t inline_threshold_bytes = 32 * 1024;
  uint64_t chunk_size_bytes = chunks::kDefaultChunkSizeBytes;
  // Readers serve chunks from local copies here when set (`cairn mount --cache-dir`); not
  // owned. Copies are checked block by block like the store's files, and one that fails
  // is dropped and read from the store, never reported as store damage.
  chunks::ChunkCache* read_cache = nullptr;
};

struct UploadRequest {
  std::string tenant;
  std::string namespace_name;
  std::string key;
  StorageClass storage_class = StorageClass::kHot;
  std::string content_type = "application/octet-stream";
  std::map<std::string, std::string> user_metadata;
  std::optional<Digest> expected_sha256;    // verified at Commit
  std::optional<uint64_t> expected_size;    // verified at Commit (Content-Length)
  std::optional<std::string> expected_md5;  // 16 raw bytes (Content-MD5), verified at Commit
  // etag = MD5 hex of the content (what S3 clients check). Off (and no expected_md5): the
  // etag is EtagWithoutMd5(content hash), and the upload saves the MD5 pass.
  bool compute_md5 = true;
  // Off for multipart parts: a part must have chunks so that it can be linked.
  bool allow_inline = true;
  // Set only by Cairn itself (multipart bookkeeping): the namespace may start with '.',
  // which user-chosen names never do.
  bool internal_namespace = false;
};

// Object tags live in the user metadata under this prefix, which no HTTP header name can
// produce; APIs must not show such entries as user metadata.
inline constexpr std::string_view kTagPrefix = "\x01tag:";

// The internal namespaces of multipart uploads (see multipart.h): an upload's record and
// its parts. Users cannot name them (names starting with '.').
inline constexpr char kMultipartUploadsNamespace[] = ".uploads";
inline constexpr char kMultipartPartsNamespace[] = ".parts";
// Standard HTTP headers an object keeps (Cache-Control, Content-Disposition, ...) live
// under this prefix followed by the lower-case header name.
inline constexpr std::string_view kStoredHeaderPrefix = "\x01h:";
// A multipart object's part sizes, run-length encoded ("size*count,size*count"), so a GET
// of one part (?partNumber=N) can find its bytes after the parts themselves are gone.
inline constexpr std::string_view kPartLayoutField = "\x01upload:parts";
// The full-object checksum a client sent and the server verified (S3 x-amz-checksum-*):
// "<algorithm header name>:<base64 value>", e.g. "x-amz-checksum-crc32:AAAAAA==".
inline constexpr std::string_view kChecksumField =
    "\x01"
    "checksum";
// An object's ACL when it is not private (api/s3/handlers/s3_access.h SerializeAcl).
inline constexpr std::string_view kAclField =
    "\x01"
    "acl";
// Whether a user-metadata name is internal (tags, multipart bookkeeping).
inline bool IsInternalMetadata(std::string_view name) { return !name.empty() && name[0] == '\x01'; }

// The etag of an object stored without an MD5: 32 hex digits of its SHA-256 and "-1".
// S3 clients read "<hex>-<n>" as a multipart ETag, which they never compare with an MD5.
std::string EtagWithoutMd5(const Digest& content_hash);

struct CopyRequest {
  std::string tenant;
  std::string namespace_name;
  std::string key;
  // Replace the source's content type and user metadata (tags are kept unless replaced).
  std::optional<std::string> content_type;
  std::optional<std::map<std::string, std::string>> user_metadata;
};

class ObjectService;

using SealedChunk = ingest::SealedChunk;
using IntegrityCounters = ingest::IntegrityCounters;

// One upload in progress. Destroying it without Commit aborts it.
//
// Two sides: Write/Commit/Abort (hashing; one thread at a time) and StoreChunks (storing;
// one call at a time), which may run on two threads at once after DeferChunkStorage.
class Upload {
 public:
  ~Upload();
  Upload(const Upload&) = delete;
  Upload& operator=(const Upload&) = delete;

  Status Write(std::string_view bytes);
  // Whether Write of `size` more bytes only hashes and buffers them in memory (the object
  // is still within the inline threshold): such a Write, and the Abort it may cause, never
  // blocks, so an event loop may call it directly.
  bool WriteStaysInMemory(size_t size) const;
  // Verifies and commits; after an error the upload is aborted and nothing is visible.
  // Stores any sealed chunk first. No StoreChunks call may be running.
  Result<meta::CommitResult> Commit();
  // Commit of an upload still in memory without blocking: verifies it (an error goes to
  // `done` at once) and hands the commit to the store's asynchronous group commit, which
  // calls `done` on a store thread once the object is durable or the commit failed. false
  // when the upload is not in memory or the store declines (no such path, queue full):
  // nothing happened, call Commit.
  bool CommitAsync(std::function<void(Result<meta::CommitResult>)> done);
  void Abort();

  // From now on Write only hashes full chunks and keeps them (sealed) instead of storing
  // them, so that the caller can store them on another thread while the next bytes are
  // hashed. The caller takes them with TakeSealedChunks between two Write calls; their
  // bytes are at most one Write's bytes plus one chunk.
  void DeferChunkStorage() { defer_storage_ = true; }
  std::vector<SealedChunk> TakeSealedChunks();
  // Stores chunks in the order they were sealed (reference, dedup check, file). May run
  // while Write runs on another thread. On error the caller must Abort.
  Status StoreChunks(std::vector<SealedChunk> chunks);

  // Hands the MD5 to the caller, which can then hash it on another core: Write stops feeding
  // it, and the caller gives back the digest of every byte written with SetMd5 before
  // Commit. Null if this upload computes no MD5. Call before the first Write.
  std::shared_ptr<Md5Hasher> TakeMd5();
  void SetMd5(std::string raw_digest) { md5_digest_ = std::move(raw_digest); }

  // Adds an entry to the object's user metadata before Commit (a value known only once the
  // body has been read, such as a trailing checksum).
  void SetMetadata(const std::string& name, std::string value) {
    request_.user_metadata[name] = std::move(value);
  }

  uint64_t size_bytes() const { return size_bytes_; }
  // Chunks (and their bytes) that were already stored and so were not written again.
  uint64_t deduplicated_chunks() const { return ingest_.deduplicated_chunks(); }
  uint64_t deduplicated_bytes() const { return ingest_.deduplicated_bytes(); }

 private:
  friend class ObjectService;
  Upload(ObjectService* service, UploadRequest request);
  Status StartChunkedMode();
  // Appends to the current chunk, sealing each chunk as it fills.
  Status AppendChunked(std::string_view bytes);
  Status SealChunk();
  Status CheckSize() const;
  Status CheckDigests(const meta::ObjectRecord& record) const;
  // The record's identity and request fields, timestamped now.
  meta::ObjectRecord BaseRecord(ObjectState state);
  meta::ObjectRecord FinalRecord();
  // The verified record of an in-memory upload whose CommitAsync the store declined.
  std::optional<meta::ObjectRecord> declined_record_;

  ObjectService* service_;
  UploadRequest request_;
  ObjectId id_;
  bool defer_storage_ = false;

  // Hashing side.
  // The inline candidate, until the object outgrows the inline threshold.
  std::string buffer_;
  // The current chunk's bytes not yet sealed (chunked mode).
  AlignedBuffer chunk_;
  std::vector<SealedChunk> sealed_;
  bool chunked_ = false;
  bool finished_ = false;
  Sha256Pair hasher_;  // whole content and current chunk
  std::optional<Md5Hasher> md5_hasher_;
  bool md5_taken_ = false;                 // TakeMd5 was called: the caller computes it
  std::optional<std::string> md5_digest_;  // from SetMd5
  uint64_t size_bytes_ = 0;

  // Storing side: the object is the chunks' owner; its reference is AddChunk with the
  // next sequence number.
  uint32_t next_sequence_ = 0;
  ingest::ChunkIngest ingest_;
  // Chunk buffers handed back by the storing side for reuse. Two spares cover the steady
  // state (one chunk gathered while one is stored).
  ingest::ChunkBuffers buffers_{2};
};

// Sequential or ranged reads of one committed object. Every byte it returns was verified
// against the chunk's recorded block checksums (or, for a chunk stored before those were
// kept, against its SHA-256 name) before it was handed out; a chunk that fails is reported
// to the ObjectService (quarantined, marked damaged, logged, counted) and the read fails
// with kDataLoss. Memory: one checksum block, whatever the object size.
class ObjectReader {
 public:
  // Checks, before anything is sent, what can be known without reading every byte: each
  // chunk holding a byte of [offset, offset + length) exists with its recorded size, and a
  // chunk marked damaged verifies in full again (a fresh copy was uploaded since; the mark
  // is then cleared). With `read_ahead`, also reads and verifies the first block of the
  // range, so that a corrupt first block is known before the status line. kDataLoss when a
  // chunk is missing, short or corrupt.
  Status Prepare(uint64_t offset, uint64_t length, bool read_ahead);
  // Reads up to `length` bytes at `offset` of the object, verified; 0 only at the end.
  // May return fewer bytes than asked (it stops at a block boundary).
  Result<size_t> Read(uint64_t offset, size_t length, char* buffer);
  const meta::ObjectRecord& object() const { return object_; }

 private:
  friend class ObjectService;
  ObjectReader(ObjectService* service, meta::ObjectRecord object,
               std::vector<meta::ChunkRef> chunks);
  // Opens chunk `index`: the cache's copy when there is a cache (filling it on a miss)
  // unless `from_store` or the copy failed before, else the store's file.
  Status OpenChunkFile(size_t index, bool from_store = false);
  void CloseChunkFile();
  // When the file open for `index` is a cache copy: drops the copy, so that the next
  // OpenChunkFile reads the store's file, and returns true. Its failure says nothing of
  // the store's file.
  bool DropCachedCopy(size_t index);
  // Loads block `block` of chunk `index` into `destination` (at least kChecksumBlockBytes)
  // and verifies it. Returns its length.
  Result<size_t> LoadBlock(size_t index, uint64_t block, char* destination);
  // Reads the whole chunk: SHA-256 against its name, and fills in its block checksums (for
  // chunks stored without them, and to re-check a chunk marked damaged).
  // `from_store`: the store's file even when the cache has a copy (clearing a damage mark
  // is about the store's file).
  Status VerifyWholeChunk(size_t index, bool from_store = false);
  Status VerifyOpenChunk(size_t index);  // VerifyWholeChunk on the file open now
  Result<size_t> LoadBlockOnce(size_t index, uint64_t block, char* destination);
  // Reports chunk `index` damaged (`why`) and returns the kDataLoss to fail with.
  // What verification found wrong with a chunk: decides the counter and the quarantine.
  enum class ChunkDamage { kMissing, kWrongSize, kUnreadable, kWrongContent };
  Status Damaged(size_t index, ChunkDamage damage, const std::string& why);

  ObjectService* service_;
  meta::ObjectRecord object_;
  std::vector<meta::ChunkRef> chunks_;
  std::vector<uint64_t> chunk_offsets_;  // start offset of each chunk
  std::string owner_;                    // "object <id>" or what OpenChunkListReader named
  size_t open_index_ = SIZE_MAX;
  std::unique_ptr<platform::ReadableFile> open_file_;
  bool open_cached_ = false;     // open_file_ is a copy in the read cache
  std::set<size_t> store_only_;  // chunks whose cache copy failed: read from the store
  // The last verified block not handed out whole (reads that start or end inside a block).
  std::unique_ptr<char[]> block_;
  size_t block_chunk_ = SIZE_MAX;
  uint64_t block_index_ = 0;
  size_t block_length_ = 0;
};

struct UsageReport {
  std::string tenant;
  std::vector<meta::UsageRow> rows;  // user namespaces only; totals are their sums
  uint64_t total_objects = 0;
  uint64_t total_logical_bytes = 0;
  uint64_t total_physical_bytes = 0;
  // The parts of multipart uploads not yet completed or aborted (kept in the internal
  // namespaces, which are not listed as namespaces): stored, but not yet objects.
  uint64_t incomplete_multipart_parts = 0;
  uint64_t incomplete_multipart_logical_bytes = 0;
  uint64_t incomplete_multipart_physical_bytes = 0;
};

class ObjectService {
 public:
  ObjectService(meta::MetaStore* meta_store, chunks::ChunkStore* chunk_store,
                platform::Clock* clock, ObjectServiceOptions options);

  // Validates the names and starts an upload; nothing is stored yet.
  Result<std::unique_ptr<Upload>> BeginUpload(UploadRequest request);

  Result<meta::ObjectRecord> Stat(const std::string& tenant, const ObjectId& id);
  Result<meta::ObjectRecord> StatByKey(const std::string& tenant, const std::string& namespace_name,
                                       const std::string& key);
  Result<std::unique_ptr<ObjectReader>> OpenReader(const meta::ObjectRecord& object);
  // A reader over the concatenation of `chunks` (say, the parts of a multipart upload),
  // verified like any object read; `owner` names it in reports, or `owner_name` when given
  // ("file <volume>:<ino>").
  std::unique_ptr<ObjectReader> OpenChunkListReader(const ObjectId& owner,
                                                    StorageClass storage_class,
                                                    std::vector<meta::ChunkRef> chunks,
                                                    std::string owner_name = {});
  // Whether Stat, StatByKey, GetNamespace and OpenReader wait only for local files (see
  // MetaStore::point_reads_are_local), so an event loop may call them directly. Reading
  // through an ObjectReader is never in that set, except for inline objects.
  bool point_reads_are_local() const { return meta_store_->point_reads_are_local(); }

  Result<meta::ObjectRecord> Delete(const std::string& tenant, const ObjectId& id);
  Result<meta::ObjectRecord> DeleteByKey(const std::string& tenant,
                                         const std::string& namespace_name, const std::string& key);
  Result<meta::ListPage> List(const meta::ListRequest& request);
  // With `physical` false, only objects and logical bytes, read from the kept counters (the
  // physical bytes count distinct chunks over the tenant's object rows): rows and totals
  // then carry physical_bytes 0.
  Result<UsageReport> Usage(const std::string& tenant, bool physical = true);

  // Copies `source` (a committed object) to a new key by linking its chunks: no data is
  // read or written, whatever the size.
  Result<meta::CommitResult> Copy(const meta::ObjectRecord& source, const CopyRequest& request);
  // Replaces the user metadata (including tags) of a committed object.
  Result<meta::ObjectRecord> UpdateUserMetadata(const std::string& tenant, const ObjectId& id,
                                                std::map<std::string, std::string> metadata);

  // Namespaces. Names starting with '.' are internal (multipart bookkeeping) and never
  // listed; user-facing names are validated by the caller's rules.
  Status CreateNamespace(const std::string& tenant, const std::string& name);
  Result<std::vector<meta::NamespaceRecord>> ListNamespaces(const std::string& tenant);
  Result<meta::NamespaceRecord> GetNamespace(const std::string& tenant, const std::string& name);
  // kFailedPrecondition when it holds objects (or, checked by the caller, uploads).
  Status DeleteNamespace(const std::string& tenant, const std::string& name);

  // A chunk failed a check (`why`, for the log; `counter` names the reason): moves its file
  // (ingest::ChunkHealth) to the quarantine directory (if `quarantine` and the file is still the
  // one checked, `checked_inode` when known), marks its row damaged, logs and counts. Reads and
  // uploads call it; it never fails (what it cannot do is logged).
  void ReportDamagedChunk(StorageClass storage_class, const Digest& digest,
                          const std::string& owner, const std::string& why,
                          uint64_t IntegrityCounters::*counter, bool quarantine,
                          int checked_fd = -1);
  IntegrityCounters integrity_counters() const { return health_.counters(); }
  ingest::ChunkHealth* chunk_health() { return &health_; }

  meta::MetaStore* meta_store() const { return meta_store_; }
  chunks::ChunkStore* chunk_store() const { return chunk_store_; }
  platform::Clock* clock() const { return clock_; }
  const ObjectServiceOptions& options() const { return options_; }

 private:
  meta::MetaStore* meta_store_;
  chunks::ChunkStore* chunk_store_;
  platform::Clock* clock_;
  ObjectServiceOptions options_;
  ingest::ChunkHealth health_;
};

}  // namespace cairn::objects
