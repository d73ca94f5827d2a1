// The in-memory model engine: the reference semantics of MetaStore.
//
// Deliberately naive: plain std::maps, full scans, one mutex held for the whole of every
// method (which is what makes each method one atomic transaction). Used by tests and as
// the oracle the SQLite engine is compared against; never for production data.
//
// Choices the header leaves open, made here and mirrored by every engine:
//   - A chunk row's zero_since_ms is reset to 0 whenever its count changes to non-zero and
//     set to now_ms whenever it changes to zero.
//   - DELETING objects keep their chunk list (GetChunks still answers, so a download that
//     resolved the object just before a delete can finish during the grace period); those
//     rows are not references and are dropped when the object is purged.
//   - Ordering of multi-row results: storage classes compare by name ("cold" < "hot"),
//     digests and ids byte-wise, owners by kind then id. GC candidates are taken oldest
//     first.
//   - SetOwnerChunks drops the old list's references before it takes the new list's (as
//     replacing an object at its key does); an owner with an empty list does not exist.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "meta/file_tree.h"
#include "meta/meta_store.h"

namespace cairn::meta {

class MemoryMetaStore final : public MetaStore, public FileTree {
 public:
  MemoryMetaStore() = default;

  Status Ping() override;
  Result<std::optional<std::string>> GetStoreIdentity() override;
  Result<std::string> SetStoreIdentityIfAbsent(const std::string& id) override;
  Result<uint64_t> CountChunks() override;
  Result<std::vector<std::string>> CheckIntegrity() override;

  Status BeginUpload(const ObjectRecord& object) override;
  Status AddChunk(const ObjectId& id, uint32_t sequence, const ChunkRef& chunk,
                  TimestampMs now_ms) override;
  Result<CommitResult> CommitUpload(const ObjectId& id, const ObjectRecord& final_fields,
                                    TimestampMs now_ms) override;
  Result<CommitResult> PutCommitted(const ObjectRecord& object, const std::vector<ChunkRef>& chunks,
                                    TimestampMs now_ms) override;
  Status AbortUpload(const ObjectId& id, TimestampMs now_ms) override;

  Result<ObjectRecord> GetObject(const std::string& tenant, const ObjectId& id) override;
  Result<ObjectRecord> GetObjectByKey(const std::string& tenant, const std::string& namespace_name,
                                      const std::string& key) override;
  Result<std::vector<ChunkRef>> GetChunks(const ObjectId& id) override;
  Status SetChunkDamaged(StorageClass storage_class, const Digest& digest,
                         TimestampMs damaged_ms) override;
  Result<ListPage> ListObjects(const ListRequest& request) override;

  Result<ObjectRecord> DeleteObject(const std::string& tenant, const ObjectId& id,
                                    TimestampMs now_ms) override;

  Result<std::vector<UsageRow>> Usage(const std::string& tenant) override;
  Result<std::vector<UsageCounterRow>> UsageCounts(const std::string& tenant) override;
  Result<std::vector<ObjectCountRow>> CountObjects() override;
  Result<std::vector<StorageBytesRow>> StorageBytes() override;

  Result<uint64_t> ReapStalledUploads(TimestampMs cutoff_ms, uint32_t limit,
                                      TimestampMs now_ms) override;
  Result<uint64_t> PurgeDeletedObjects(TimestampMs cutoff_ms, uint32_t limit) override;
  // remove_file runs under the store's mutex: it must not call back into this store.
  Result<std::vector<ChunkRecord>> CollectGarbageChunks(
      TimestampMs cutoff_ms, uint32_t limit,
      const std::function<Status(const ChunkRecord&)>& remove_file) override;

  Result<std::vector<FsckReferenceRow>> CheckReferences() override;
  Result<uint64_t> RepairReferences(TimestampMs now_ms) override;
  Result<std::vector<ChunkRecord>> ListChunks() override;
  Result<std::optional<ChunkRecord>> GetChunk(StorageClass storage_class,
                                              const Digest& digest) override;
  Result<std::vector<ObjectId>> FindObjectsWithChunks(StorageClass storage_class,
                                                      const std::vector<Digest>& digests) override;
  Result<std::vector<ObjectId>> DropObjectsWithChunks(StorageClass storage_class,
                                                      const std::vector<Digest>& lost,
                                                      TimestampMs now_ms) override;

  Status SetOwnerChunks(const ChunkOwner& owner, const std::vector<OwnerChunk>& chunks,
                        TimestampMs now_ms) override;
  Status DropOwnerChunks(const ChunkOwner& owner, TimestampMs now_ms) override;
  Result<std::vector<OwnerChunk>> GetOwnerChunks(const ChunkOwner& owner) override;
  Result<std::vector<ChunkOwner>> FindOwnersWithChunks(StorageClass storage_class,
                                                       const std::vector<Digest>& digests) override;
  Result<std::vector<OwnerUsageRow>> OwnerUsage(const std::string& kind) override;

  Result<CommitResult> PutCommittedAndDelete(const ObjectRecord& object,
                                             const std::vector<ChunkRef>& chunks,
                                             const std::vector<ObjectId>& also_delete,
                                             TimestampMs now_ms) override;
  Result<ObjectRecord> UpdateUserMetadata(const std::string& tenant, const ObjectId& id,
                                          const std::map<std::string, std::string>& user_metadata,
                                          TimestampMs now_ms) override;
  Status CreateNamespace(const NamespaceRecord& record) override;
  Result<std::vector<NamespaceRecord>> ListNamespaces(const std::string& tenant) override;
  Result<NamespaceRecord> GetNamespace(const std::string& tenant, const std::string& name) override;
  Result<std::vector<std::string>> NamespaceOwners(const std::string& name) override;
  Result<std::vector<std::string>> NamespaceTenants() override;
  Status DeleteNamespace(const std::string& tenant, const std::string& name) override;
  Result<std::map<std::string, std::string>> GetNamespaceSettings(const std::string& tenant,
                                                                  const std::string& name) override;
  Status SetNamespaceSetting(const std::string& tenant, const std::string& name,
                             const std::string& setting, const std::optional<std::string>& value,
                             TimestampMs now) override;
  Status CreateS3Key(const S3KeyRecord& key) override;
  Result<S3KeyRecord> GetS3Key(const std::string& access_key) override;
  Result<std::vector<S3KeyRecord>> ListS3Keys() override;
  Status RevokeS3Key(const std::string& access_key) override;
  Status ReplaceS3Secrets(const std::vector<S3SecretChange>& changes) override;

  // The visitor runs under the store's mutex: it must not call back into this store.
  Status ExportSnapshot(SnapshotVisitor& visitor, TimestampMs now_ms) override;
  Result<SnapshotCounts> ImportSnapshot(SnapshotSource& source) override;

  Status CreateApiKey(const ApiKeyRecord& key) override;
  Result<ApiKeyRecord> GetApiKey(const std::string& key_id) override;
  Result<std::vector<ApiKeyRecord>> ListApiKeys() override;
  Status RevokeApiKey(const std::string& key_id) override;

  // Simulates metadata damage for fsck tests, which cannot produce it through the
  // interface: sets the chunk row's ref_count (creating the row if needed), or deletes the
  // row when `ref_count` is empty.
  void DamageChunkRowForTest(StorageClass storage_class, const Digest& digest, uint64_t size_bytes,
                             std::optional<int64_t> ref_count);

 private:
  struct StoredObject {
    ObjectRecord record;
    std::vector<ChunkRef> chunks;
  };
  using ChunkKey = std::pair<StorageClass, Digest>;

  // All helpers require mu_.
  StoredObject* FindCommittedAtKey(const std::string& tenant, const std::string& namespace_name,
                                   const std::string& key);
  // The reference rule, shared by objects and generic owners: one reference per list
  // entry, taken and dropped by these two.
  void TakeReference(StorageClass storage_class, const ChunkRef& chunk, TimestampMs now_ms);
  void DropReference(StorageClass storage_class, const Digest& digest, TimestampMs now_ms);
  void DropReferences(const StoredObject& object, TimestampMs now_ms);
  void DropReferences(const std::map<uint64_t, OwnerChunk>& owner_chunks, TimestampMs now_ms);
  // Makes the COMMITTED object at `incoming`'s key, if any, DELETING. Returns its id.
  std::optional<ObjectId> RetireObjectAtKey(const ObjectRecord& incoming, TimestampMs now_ms);
  // Live references per chunk (WRITING/COMMITTED objects and generic owners), with the
  // largest size recorded.
  struct ActualRefs {
    int64_t count = 0;
    int64_t committed = 0;
    int64_t owners = 0;
    uint64_t size_bytes = 0;
  };
  std::map<ChunkKey, ActualRefs> CountActualReferences() const;

  std::mutex mu_;
  std::map<ObjectId, StoredObject> objects_;
  std::map<ChunkKey, ChunkRecord> chunks_;
  // Generic owners' chunk lists by sequence (entries keep class, digest and length); never
  // empty. SetOwnerChunks numbers a list 0, 1, ...; a file's block rows use the block index,
  // so a sparse file's list has gaps.
  std::map<ChunkOwner, std::map<uint64_t, OwnerChunk>> owners_;
  std::map<std::string, ApiKeyRecord> api_keys_;
  std::map<std::pair<std::string, std::string>, NamespaceRecord> namespaces_;
  // (tenant, namespace) -> setting name -> value; a key here always has a namespaces_ row,
  // and no entry is an empty map.
  std::map<std::pair<std::string, std::string>, std::map<std::string, std::string>>
      namespace_settings_;
  std::map<std::string, S3KeyRecord> s3_keys_;
  std::optional<std::string> store_identity_;

  // ---- FileTree (memory_file_tree.cc) ----------------------------------------------------
 public:
  FileTree* file_tree() override { return this; }
  Result<VolumeRecord> FormatVolume(const VolumeRecord& requested,
                                    const InodeRecord& root) override;
  Result<std::optional<VolumeRecord>> GetVolume() override;
  Status Read(const std::function<Status(FileTreeTransaction&)>& body) override;
  Status Write(const std::function<Status(FileTreeTransaction&)>& body,
               TimestampMs now_ms) override;

 private:
  friend class MemoryFileTreeTransaction;
  std::optional<VolumeRecord> volume_;
  uint64_t last_inode_ = kRootInode;
  std::map<uint64_t, InodeRecord> inodes_;
  std::map<std::pair<uint64_t, std::string>, DentryRecord, std::less<>> dentries_;
  std::map<std::pair<uint64_t, std::string>, std::string, std::less<>> xattrs_;
  std::map<uint64_t, SessionRecord> sessions_;
  std::map<uint64_t, OrphanRecord> orphans_;
  std::map<uint64_t, ChangeRecord> changes_;
  uint64_t last_change_ = 0;
  // (ino, session, owner, kind) -> its locks.
  using LockKey = std::tuple<uint64_t, uint64_t, uint64_t, uint8_t>;
  std::map<LockKey, std::vector<LockRecord>> locks_;
};

}  // namespace cairn::meta
