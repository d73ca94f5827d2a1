#include "meta/memory/memory_meta_store.h"

#include <algorithm>
#include <set>
#include <tuple>

#include "meta/meta_checks.h"

namespace cairn::meta {
namespace {

using internal::CheckApiKey;
using internal::CheckChunkOwner;
using internal::CheckChunkTotal;
using internal::CheckListRequest;
using internal::CheckNamespaceSetting;
using internal::CheckPutCommitted;
using internal::CheckSequence;
using internal::CheckUserMetadata;

// Result order shared with the SQL engines, which sort the stored class names.
bool ChunkOrderLess(StorageClass a_class, const Digest& a_digest, StorageClass b_class,
                    const Digest& b_digest) {
  return std::forward_as_tuple(StorageClassName(a_class), a_digest) <
         std::forward_as_tuple(StorageClassName(b_class), b_digest);
}

bool IsLive(ObjectState state) {
  return state == ObjectState::kWriting || state == ObjectState::kCommitted;
}

Status NotWriting(const ObjectId& id) {
  return NotFoundError("no upload in progress with id " + id.ToString());
}

Status NoSuchObject(const ObjectId& id) {
  return NotFoundError("object " + id.ToString() + " not found");
}

}  // namespace

Status MemoryMetaStore::Ping() { return OkStatus(); }

Result<std::optional<std::string>> MemoryMetaStore::GetStoreIdentity() {
  std::lock_guard lock(mu_);
  return store_identity_;
}

Result<std::string> MemoryMetaStore::SetStoreIdentityIfAbsent(const std::string& id) {
  if (id.empty()) return InvalidArgumentError("a store identity must not be empty");
  std::lock_guard lock(mu_);
  if (!store_identity_) store_identity_ = id;
  return *store_identity_;
}

Result<uint64_t> MemoryMetaStore::CountChunks() {
  std::lock_guard lock(mu_);
  return static_cast<uint64_t>(chunks_.size());
}

Result<std::vector<std::string>> MemoryMetaStore::CheckIntegrity() {
  return std::vector<std::string>();  // nothing stored outside this process's memory
}

// ---- helpers --------------------------------------------------------------------------

MemoryMetaStore::StoredObject* MemoryMetaStore::FindCommittedAtKey(
    const std::string& tenant, const std::string& namespace_name, const std::string& key) {
  for (auto& [id, object] : objects_) {
    const ObjectRecord& r = object.record;
    if (r.state == ObjectState::kCommitted && r.tenant == tenant &&
        r.namespace_name == namespace_name && r.key == key) {
      return &object;
    }
  }
  return nullptr;
}

namespace {

// What an object's chunk list keeps of a ChunkRef: checksums and damage belong to the
// chunk row.
std::vector<ChunkRef> ListEntries(const std::vector<ChunkRef>& chunks) {
  std::vector<ChunkRef> out;
  out.reserve(chunks.size());
  for (const ChunkRef& chunk : chunks) out.push_back(ChunkRef{chunk.digest, chunk.size_bytes});
  return out;
}

}  // namespace

void MemoryMetaStore::TakeReference(StorageClass storage_class, const ChunkRef& chunk,
                                    TimestampMs now_ms) {
  auto [it, inserted] =
      chunks_.try_emplace(ChunkKey{storage_class, chunk.digest},
                          ChunkRecord{storage_class, chunk.digest, chunk.size_bytes, 0, 0});
  ChunkRecord& row = it->second;
  if (row.block_checksums.empty()) row.block_checksums = chunk.block_checksums;
  row.ref_count += 1;
  row.zero_since_ms = row.ref_count == 0 ? now_ms : 0;
}

void MemoryMetaStore::DropReference(StorageClass storage_class, const Digest& digest,
                                    TimestampMs now_ms) {
  auto it = chunks_.find(ChunkKey{storage_class, digest});
  if (it == chunks_.end()) return;  // damaged metadata; fsck reports it
  ChunkRecord& row = it->second;
  row.ref_count -= 1;
  row.zero_since_ms = row.ref_count == 0 ? now_ms : 0;
}

void MemoryMetaStore::DropReferences(const StoredObject& object, TimestampMs now_ms) {
  for (const ChunkRef& chunk : object.chunks) {
    DropReference(object.record.storage_class, chunk.digest, now_ms);
  }
}

void MemoryMetaStore::DropReferences(const std::map<uint64_t, OwnerChunk>& owner_chunks,
                                     TimestampMs now_ms) {
  for (const auto& [seq, entry] : owner_chunks) {
    DropReference(entry.storage_class, entry.chunk.digest, now_ms);
  }
}

std::optional<ObjectId> MemoryMetaStore::RetireObjectAtKey(const ObjectRecord& incoming,
                                                           TimestampMs now_ms) {
  StoredObject* old = FindCommittedAtKey(incoming.tenant, incoming.namespace_name, incoming.key);
  if (old == nullptr) return std::nullopt;
  old->record.state = ObjectState::kDeleting;
  old->record.updated_at_ms = now_ms;
  DropReferences(*old, now_ms);
  return old->record.id;
}

std::map<MemoryMetaStore::ChunkKey, MemoryMetaStore::ActualRefs>
MemoryMetaStore::CountActualReferences() const {
  std::map<ChunkKey, ActualRefs> actual;
  for (const auto& [id, object] : objects_) {
    if (!IsLive(object.record.state)) continue;
    for (const ChunkRef& chunk : object.chunks) {
      ActualRefs& refs = actual[ChunkKey{object.record.storage_class, chunk.digest}];
      refs.count += 1;
      if (object.record.state == ObjectState::kCommitted) refs.committed += 1;
      refs.size_bytes = std::max(refs.size_bytes, chunk.size_bytes);
    }
  }
  for (const auto& [owner, entries] : owners_) {
    for (const auto& [seq, entry] : entries) {
      ActualRefs& refs = actual[ChunkKey{entry.storage_class, entry.chunk.digest}];
      refs.count += 1;
      refs.owners += 1;
      refs.size_bytes = std::max(refs.size_bytes, entry.chunk.size_bytes);
    }
  }
  return actual;
}

// ---- uploads --------------------------------------------------------------------------

Status MemoryMetaStore::BeginUpload(const ObjectRecord& object) {
  RETURN_IF_ERROR(CheckUserMetadata(object));
  std::lock_guard lock(mu_);
  if (objects_.contains(object.id)) {
    return AlreadyExistsError("object id " + object.id.ToString() + " is already taken");
  }
  StoredObject stored{object, {}};
  stored.record.state = ObjectState::kWriting;
  objects_.emplace(object.id, std::move(stored));
  return OkStatus();
}

Status MemoryMetaStore::AddChunk(const ObjectId& id, uint32_t sequence, const ChunkRef& chunk,
                                 TimestampMs now_ms) {
  std::lock_guard lock(mu_);
  auto it = objects_.find(id);
  if (it == objects_.end() || it->second.record.state != ObjectState::kWriting) {
    return NotWriting(id);
  }
  StoredObject& object = it->second;
  RETURN_IF_ERROR(CheckSequence(id, sequence, object.chunks.size()));
  object.chunks.push_back(ChunkRef{chunk.digest, chunk.size_bytes});
  object.record.updated_at_ms = now_ms;
  TakeReference(object.record.storage_class, chunk, now_ms);
  return OkStatus();
}

Result<CommitResult> MemoryMetaStore::CommitUpload(const ObjectId& id,
                                                   const ObjectRecord& final_fields,
                                                   TimestampMs now_ms) {
  ObjectRecord checked = final_fields;
  checked.id = id;
  RETURN_IF_ERROR(CheckUserMetadata(checked));
  std::lock_guard lock(mu_);
  auto it = objects_.find(id);
  if (it == objects_.end() || it->second.record.state != ObjectState::kWriting) {
    return NotWriting(id);
  }
  ObjectRecord& record = it->second.record;
  uint64_t recorded = 0;
  for (const ChunkRef& chunk : it->second.chunks) recorded += chunk.size_bytes;
  RETURN_IF_ERROR(CheckChunkTotal(id, recorded, final_fields.size_bytes));
  CommitResult result;
  result.replaced_object = RetireObjectAtKey(record, now_ms);
  record.state = ObjectState::kCommitted;
  record.size_bytes = final_fields.size_bytes;
  record.content_hash = final_fields.content_hash;
  record.etag = final_fields.etag;
  record.content_type = final_fields.content_type;
  record.user_metadata = final_fields.user_metadata;
  record.updated_at_ms = now_ms;
  result.object = record;
  return result;
}

Result<CommitResult> MemoryMetaStore::PutCommitted(const ObjectRecord& object,
                                                   const std::vector<ChunkRef>& chunks,
                                                   TimestampMs now_ms) {
  RETURN_IF_ERROR(CheckPutCommitted(object, chunks));
  std::lock_guard lock(mu_);
  if (objects_.contains(object.id)) {
    return AlreadyExistsError("object id " + object.id.ToString() + " is already taken");
  }
  CommitResult result;
  result.replaced_object = RetireObjectAtKey(object, now_ms);
  StoredObject stored{object, ListEntries(chunks)};
  stored.record.state = ObjectState::kCommitted;
  stored.record.updated_at_ms = now_ms;
  for (const ChunkRef& chunk : chunks) TakeReference(object.storage_class, chunk, now_ms);
  result.object = stored.record;
  objects_.emplace(object.id, std::move(stored));
  return result;
}

Status MemoryMetaStore::AbortUpload(const ObjectId& id, TimestampMs now_ms) {
  std::lock_guard lock(mu_);
  auto it = objects_.find(id);
  if (it == objects_.end() || it->second.record.state != ObjectState::kWriting) {
    return NotWriting(id);
  }
  DropReferences(it->second, now_ms);
  objects_.erase(it);
  return OkStatus();
}

// ---- reads ----------------------------------------------------------------------------

Result<ObjectRecord> MemoryMetaStore::GetObject(const std::string& tenant, const ObjectId& id) {
  std::lock_guard lock(mu_);
  auto it = objects_.find(id);
  if (it == objects_.end() || it->second.record.state != ObjectState::kCommitted ||
      it->second.record.tenant != tenant) {
    return NoSuchObject(id);
  }
  return it->second.record;
}

Result<ObjectRecord> MemoryMetaStore::GetObjectByKey(const std::string& tenant,
                                                     const std::string& namespace_name,
                                                     const std::string& key) {
  std::lock_guard lock(mu_);
  StoredObject* object = FindCommittedAtKey(tenant, namespace_name, key);
  if (object == nullptr) {
    return NotFoundError("no object at key '" + key + "' in namespace " + namespace_name);
  }
  return object->record;
}

Result<std::vector<ChunkRef>> MemoryMetaStore::GetChunks(const ObjectId& id) {
  std::lock_guard lock(mu_);
  auto it = objects_.find(id);
  if (it == objects_.end()) return NoSuchObject(id);
  std::vector<ChunkRef> out = it->second.chunks;
  for (ChunkRef& chunk : out) {
    auto row = chunks_.find(ChunkKey{it->second.record.storage_class, chunk.digest});
    if (row == chunks_.end()) continue;
    chunk.block_checksums = row->second.block_checksums;
    chunk.damaged_ms = row->second.damaged_ms;
  }
  return out;
}

Status MemoryMetaStore::SetChunkDamaged(StorageClass storage_class, const Digest& digest,
                                        TimestampMs damaged_ms) {
  std::lock_guard lock(mu_);
  auto row = chunks_.find(ChunkKey{storage_class, digest});
  if (row == chunks_.end()) {
    return NotFoundError("no chunk row for " + std::string(StorageClassName(storage_class)) + "/" +
                         digest.ToHex());
  }
  row->second.damaged_ms = damaged_ms;
  return OkStatus();
}

Result<ListPage> MemoryMetaStore::ListObjects(const ListRequest& request) {
  RETURN_IF_ERROR(CheckListRequest(request));
  std::lock_guard lock(mu_);
  std::map<std::string, ObjectRecord> matching;  // std::string orders byte-wise
  for (const auto& [id, object] : objects_) {
    const ObjectRecord& r = object.record;
    if (r.state == ObjectState::kCommitted && r.tenant == request.tenant &&
        r.namespace_name == request.namespace_name && r.key.starts_with(request.prefix) &&
        r.key > request.start_after) {
      matching.emplace(r.key, r);
    }
  }
  ListPage page;
  uint32_t entries = 0;
  for (auto& [key, record] : matching) {
    // Keys under the last common prefix are part of that entry.
    if (!page.common_prefixes.empty() && key.starts_with(page.common_prefixes.back())) continue;
    if (entries == request.limit) {
      page.truncated = true;
      break;
    }
    ++entries;
    const size_t common =
        internal::CommonPrefixLength(key, request.prefix.size(), request.delimiter);
    if (common != std::string::npos) {
      page.common_prefixes.push_back(key.substr(0, common));
      continue;
    }
    record.inline_data.reset();
    record.user_metadata.clear();
    page.objects.push_back(std::move(record));
  }
  return page;
}

// ---- deletes --------------------------------------------------------------------------

Result<ObjectRecord> MemoryMetaStore::DeleteObject(const std::string& tenant, const ObjectId& id,
                                                   TimestampMs now_ms) {
  std::lock_guard lock(mu_);
  auto it = objects_.find(id);
  if (it == objects_.end() || it->second.record.state != ObjectState::kCommitted ||
      it->second.record.tenant != tenant) {
    return NoSuchObject(id);
  }
  ObjectRecord before = it->second.record;
  it->second.record.state = ObjectState::kDeleting;
  it->second.record.updated_at_ms = now_ms;
  DropReferences(it->second, now_ms);
  return before;
}

// ---- accounting -----------------------------------------------------------------------

Result<std::vector<UsageRow>> MemoryMetaStore::Usage(const std::string& tenant) {
  std::lock_guard lock(mu_);
  struct Group {
    UsageRow row;
    std::map<Digest, uint64_t> distinct_chunks;
    uint64_t inline_bytes = 0;
  };
  std::map<std::pair<std::string, std::string_view>, Group> groups;
  for (const auto& [id, object] : objects_) {
    const ObjectRecord& r = object.record;
    if (r.state != ObjectState::kCommitted || r.tenant != tenant) continue;
    Group& group = groups[{r.namespace_name, StorageClassName(r.storage_class)}];
    group.row.namespace_name = r.namespace_name;
    group.row.storage_class = r.storage_class;
    group.row.objects += 1;
    group.row.logical_bytes += r.size_bytes;
    if (r.inline_data) group.inline_bytes += r.inline_data->size();
    for (const ChunkRef& chunk : object.chunks) {
      uint64_t& size = group.distinct_chunks[chunk.digest];
      size = std::max(size, chunk.size_bytes);
    }
  }
  std::vector<UsageRow> rows;
  for (auto& [name, group] : groups) {
    group.row.physical_bytes = group.inline_bytes;
    for (const auto& [digest, size] : group.distinct_chunks) group.row.physical_bytes += size;
    rows.push_back(group.row);
  }
  return rows;
}

Result<std::vector<UsageCounterRow>> MemoryMetaStore::UsageCounts(const std::string& tenant) {
  std::lock_guard lock(mu_);
  std::map<std::pair<std::string, std::string_view>, UsageCounterRow> groups;
  for (const auto& [id, object] : objects_) {
    const ObjectRecord& r = object.record;
    if (r.state != ObjectState::kCommitted || r.tenant != tenant) continue;
    UsageCounterRow& row = groups[{r.namespace_name, StorageClassName(r.storage_class)}];
    row.tenant = tenant;
    row.namespace_name = r.namespace_name;
    row.storage_class = r.storage_class;
    row.objects += 1;
    row.logical_bytes += static_cast<int64_t>(r.size_bytes);
    if (r.inline_data) row.inline_bytes += static_cast<int64_t>(r.inline_data->size());
  }
  std::vector<UsageCounterRow> rows;
  for (auto& [key, row] : groups) rows.push_back(std::move(row));
  return rows;
}

Result<std::vector<ObjectCountRow>> MemoryMetaStore::CountObjects() {
  std::lock_guard lock(mu_);
  std::map<std::tuple<std::string, std::string, std::string_view>, ObjectCountRow> groups;
  for (const auto& [id, object] : objects_) {
    const ObjectRecord& r = object.record;
    ObjectCountRow& row = groups[{r.tenant, r.namespace_name, ObjectStateName(r.state)}];
    row.tenant = r.tenant;
    row.namespace_name = r.namespace_name;
    row.state = r.state;
    row.objects += 1;
  }
  std::vector<ObjectCountRow> rows;
  for (const auto& [name, row] : groups) rows.push_back(row);
  return rows;
}

Result<std::vector<StorageBytesRow>> MemoryMetaStore::StorageBytes() {
  std::lock_guard lock(mu_);
  std::map<std::pair<std::string_view, std::string>, StorageBytesRow> groups;
  for (const auto& [id, object] : objects_) {
    const ObjectRecord& r = object.record;
    if (r.state != ObjectState::kCommitted) continue;
    StorageBytesRow& row = groups[{StorageClassName(r.storage_class), r.namespace_name}];
    row.storage_class = r.storage_class;
    row.namespace_name = r.namespace_name;
    row.logical_bytes += r.size_bytes;
  }
  std::vector<StorageBytesRow> rows;
  for (const auto& [name, row] : groups) rows.push_back(row);
  return rows;
}

// ---- garbage collection ---------------------------------------------------------------

Result<uint64_t> MemoryMetaStore::ReapStalledUploads(TimestampMs cutoff_ms, uint32_t limit,
                                                     TimestampMs now_ms) {
  std::lock_guard lock(mu_);
  std::vector<std::pair<TimestampMs, ObjectId>> stalled;
  for (const auto& [id, object] : objects_) {
    if (object.record.state == ObjectState::kWriting && object.record.updated_at_ms < cutoff_ms) {
      stalled.emplace_back(object.record.updated_at_ms, id);
    }
  }
  std::sort(stalled.begin(), stalled.end());
  if (stalled.size() > limit) stalled.resize(limit);
  for (const auto& [updated, id] : stalled) {
    auto it = objects_.find(id);
    DropReferences(it->second, now_ms);
    objects_.erase(it);
  }
  return static_cast<uint64_t>(stalled.size());
}

Result<uint64_t> MemoryMetaStore::PurgeDeletedObjects(TimestampMs cutoff_ms, uint32_t limit) {
  std::lock_guard lock(mu_);
  std::vector<std::pair<TimestampMs, ObjectId>> deleted;
  for (const auto& [id, object] : objects_) {
    if (object.record.state == ObjectState::kDeleting && object.record.updated_at_ms < cutoff_ms) {
      deleted.emplace_back(object.record.updated_at_ms, id);
    }
  }
  std::sort(deleted.begin(), deleted.end());
  if (deleted.size() > limit) deleted.resize(limit);
  for (const auto& [updated, id] : deleted) objects_.erase(id);
  return static_cast<uint64_t>(deleted.size());
}

Result<std::vector<ChunkRecord>> MemoryMetaStore::CollectGarbageChunks(
    TimestampMs cutoff_ms, uint32_t limit,
    const std::function<Status(const ChunkRecord&)>& remove_file) {
  std::lock_guard lock(mu_);
  // A chunk an owner's list names is never a candidate, whatever its count says.
  std::set<ChunkKey> owned;
  for (const auto& [owner, entries] : owners_) {
    for (const auto& [seq, entry] : entries) owned.emplace(entry.storage_class, entry.chunk.digest);
  }
  std::vector<ChunkRecord> candidates;
  for (const auto& [key, row] : chunks_) {
    if (row.ref_count == 0 && row.zero_since_ms < cutoff_ms && !owned.contains(key)) {
      candidates.push_back(row);
    }
  }
  std::sort(candidates.begin(), candidates.end(), [](const ChunkRecord& a, const ChunkRecord& b) {
    if (a.zero_since_ms != b.zero_since_ms) return a.zero_since_ms < b.zero_since_ms;
    return ChunkOrderLess(a.storage_class, a.digest, b.storage_class, b.digest);
  });
  if (candidates.size() > limit) candidates.resize(limit);
  std::vector<ChunkRecord> removed;
  for (const ChunkRecord& chunk : candidates) {
    // A failed removal keeps the row, so a later pass retries the file.
    if (!remove_file(chunk).ok()) continue;
    chunks_.erase(ChunkKey{chunk.storage_class, chunk.digest});
    removed.push_back(chunk);
  }
  return removed;
}

// ---- consistency checks ---------------------------------------------------------------

Result<std::vector<FsckReferenceRow>> MemoryMetaStore::CheckReferences() {
  std::lock_guard lock(mu_);
  std::map<ChunkKey, ActualRefs> actual = CountActualReferences();
  std::vector<FsckReferenceRow> rows;
  for (const auto& [key, chunk] : chunks_) {
    auto it = actual.find(key);
    const ActualRefs refs = it == actual.end() ? ActualRefs() : it->second;
    rows.push_back(FsckReferenceRow{chunk.storage_class, chunk.digest, chunk.ref_count, refs.count,
                                    refs.committed, chunk.size_bytes, true, refs.owners});
  }
  for (const auto& [key, refs] : actual) {
    if (chunks_.contains(key)) continue;
    rows.push_back(FsckReferenceRow{key.first, key.second, 0, refs.count, refs.committed,
                                    refs.size_bytes, false, refs.owners});
  }
  std::sort(rows.begin(), rows.end(), [](const FsckReferenceRow& a, const FsckReferenceRow& b) {
    return ChunkOrderLess(a.storage_class, a.digest, b.storage_class, b.digest);
  });
  return rows;
}

Result<uint64_t> MemoryMetaStore::RepairReferences(TimestampMs now_ms) {
  std::lock_guard lock(mu_);
  std::map<ChunkKey, ActualRefs> actual = CountActualReferences();
  uint64_t changed = 0;
  for (auto& [key, chunk] : chunks_) {
    auto it = actual.find(key);
    const int64_t count = it == actual.end() ? 0 : it->second.count;
    if (chunk.ref_count == count) continue;
    chunk.ref_count = count;
    chunk.zero_since_ms = count == 0 ? now_ms : 0;
    ++changed;
  }
  for (const auto& [key, refs] : actual) {
    if (chunks_.contains(key)) continue;
    chunks_.emplace(key, ChunkRecord{key.first, key.second, refs.size_bytes, refs.count, 0});
    ++changed;
  }
  return changed;
}

Result<std::vector<ChunkRecord>> MemoryMetaStore::ListChunks() {
  std::lock_guard lock(mu_);
  std::vector<ChunkRecord> rows;
  for (const auto& [key, chunk] : chunks_) rows.push_back(chunk);
  std::sort(rows.begin(), rows.end(), [](const ChunkRecord& a, const ChunkRecord& b) {
    return ChunkOrderLess(a.storage_class, a.digest, b.storage_class, b.digest);
  });
  return rows;
}

Result<std::optional<ChunkRecord>> MemoryMetaStore::GetChunk(StorageClass storage_class,
                                                             const Digest& digest) {
  std::lock_guard lock(mu_);
  auto it = chunks_.find(ChunkKey{storage_class, digest});
  if (it == chunks_.end()) return std::optional<ChunkRecord>();
  return std::optional<ChunkRecord>(it->second);
}

Result<std::vector<ObjectId>> MemoryMetaStore::FindObjectsWithChunks(
    StorageClass storage_class, const std::vector<Digest>& digests) {
  std::lock_guard lock(mu_);
  const std::set<Digest> wanted(digests.begin(), digests.end());
  std::vector<ObjectId> found;  // objects_ iterates in id order
  for (const auto& [id, object] : objects_) {
    if (object.record.state != ObjectState::kCommitted ||
        object.record.storage_class != storage_class) {
      continue;
    }
    if (std::any_of(object.chunks.begin(), object.chunks.end(),
                    [&](const ChunkRef& chunk) { return wanted.contains(chunk.digest); })) {
      found.push_back(id);
    }
  }
  return found;
}

Result<std::vector<ObjectId>> MemoryMetaStore::DropObjectsWithChunks(
    StorageClass storage_class, const std::vector<Digest>& lost, TimestampMs now_ms) {
  std::lock_guard lock(mu_);
  const std::set<Digest> lost_set(lost.begin(), lost.end());
  std::vector<ObjectId> dropped;  // objects_ iterates in id order
  for (auto& [id, object] : objects_) {
    if (!IsLive(object.record.state) || object.record.storage_class != storage_class) continue;
    bool hit = std::any_of(object.chunks.begin(), object.chunks.end(),
                           [&](const ChunkRef& chunk) { return lost_set.contains(chunk.digest); });
    if (!hit) continue;
    object.record.state = ObjectState::kDeleting;
    object.record.updated_at_ms = now_ms;
    DropReferences(object, now_ms);
    dropped.push_back(id);
  }
  return dropped;
}

// ---- generic owners ---------------------------------------------------------------------

Status MemoryMetaStore::SetOwnerChunks(const ChunkOwner& owner,
                                       const std::vector<OwnerChunk>& chunks, TimestampMs now_ms) {
  RETURN_IF_ERROR(CheckChunkOwner(owner));
  std::lock_guard lock(mu_);
  // As when an object is replaced: the old list's references are dropped, then the new
  // list's taken (a chunk on both lists ends where it was).
  auto it = owners_.find(owner);
  if (it != owners_.end()) {
    DropReferences(it->second, now_ms);
    owners_.erase(it);
  }
  if (chunks.empty()) return OkStatus();
  std::map<uint64_t, OwnerChunk> entries;
  for (const OwnerChunk& entry : chunks) {
    TakeReference(entry.storage_class, entry.chunk, now_ms);
    entries.emplace(
        entries.size(),
        OwnerChunk(entry.storage_class, ChunkRef{entry.chunk.digest, entry.chunk.size_bytes}));
  }
  owners_.emplace(owner, std::move(entries));
  return OkStatus();
}

Status MemoryMetaStore::DropOwnerChunks(const ChunkOwner& owner, TimestampMs now_ms) {
  return SetOwnerChunks(owner, {}, now_ms);
}

Result<std::vector<OwnerChunk>> MemoryMetaStore::GetOwnerChunks(const ChunkOwner& owner) {
  RETURN_IF_ERROR(CheckChunkOwner(owner));
  std::lock_guard lock(mu_);
  auto it = owners_.find(owner);
  if (it == owners_.end()) return std::vector<OwnerChunk>();
  std::vector<OwnerChunk> out;
  for (const auto& [seq, entry] : it->second) out.push_back(entry);
  for (OwnerChunk& entry : out) {
    auto row = chunks_.find(ChunkKey{entry.storage_class, entry.chunk.digest});
    if (row == chunks_.end()) continue;
    entry.chunk.block_checksums = row->second.block_checksums;
    entry.chunk.damaged_ms = row->second.damaged_ms;
  }
  return out;
}

Result<std::vector<ChunkOwner>> MemoryMetaStore::FindOwnersWithChunks(
    StorageClass storage_class, const std::vector<Digest>& digests) {
  std::lock_guard lock(mu_);
  const std::set<Digest> wanted(digests.begin(), digests.end());
  std::vector<ChunkOwner> found;  // owners_ iterates in (kind, id) order
  for (const auto& [owner, entries] : owners_) {
    if (std::any_of(entries.begin(), entries.end(), [&](const auto& seq_and_entry) {
          const OwnerChunk& entry = seq_and_entry.second;
          return entry.storage_class == storage_class && wanted.contains(entry.chunk.digest);
        })) {
      found.push_back(owner);
    }
  }
  return found;
}

Result<std::vector<OwnerUsageRow>> MemoryMetaStore::OwnerUsage(const std::string& kind) {
  RETURN_IF_ERROR(internal::CheckOwnerKind(kind));
  std::lock_guard lock(mu_);
  struct Group {
    OwnerUsageRow row;
    std::map<Digest, uint64_t> distinct_chunks;
  };
  std::map<std::string_view, Group> groups;  // by class name
  for (const auto& [owner, entries] : owners_) {
    if (owner.kind != kind) continue;
    std::set<StorageClass> classes;
    for (const auto& [seq, entry] : entries) {
      Group& group = groups[StorageClassName(entry.storage_class)];
      group.row.kind = kind;
      group.row.storage_class = entry.storage_class;
      group.row.logical_bytes += entry.chunk.size_bytes;
      uint64_t& size = group.distinct_chunks[entry.chunk.digest];
      size = std::max(size, entry.chunk.size_bytes);
      if (classes.insert(entry.storage_class).second) group.row.owners += 1;
    }
  }
  std::vector<OwnerUsageRow> rows;
  for (auto& [name, group] : groups) {
    for (const auto& [digest, size] : group.distinct_chunks) group.row.physical_bytes += size;
    rows.push_back(group.row);
  }
  return rows;
}

void MemoryMetaStore::DamageChunkRowForTest(StorageClass storage_class, const Digest& digest,
                                            uint64_t size_bytes, std::optional<int64_t> ref_count) {
  std::lock_guard lock(mu_);
  const ChunkKey key{storage_class, digest};
  if (!ref_count) {
    chunks_.erase(key);
    return;
  }
  auto [it, inserted] =
      chunks_.try_emplace(key, ChunkRecord{storage_class, digest, size_bytes, 0, 0});
  it->second.ref_count = *ref_count;
}

// ---- credentials ----------------------------------------------------------------------

Status MemoryMetaStore::CreateApiKey(const ApiKeyRecord& key) {
  RETURN_IF_ERROR(CheckApiKey(key));
  std::lock_guard lock(mu_);
  if (!api_keys_.emplace(key.key_id, key).second) {
    return AlreadyExistsError("api key id " + key.key_id + " is already taken");
  }
  return OkStatus();
}

Result<ApiKeyRecord> MemoryMetaStore::GetApiKey(const std::string& key_id) {
  std::lock_guard lock(mu_);
  auto it = api_keys_.find(key_id);
  if (it == api_keys_.end()) return NotFoundError("api key " + key_id + " not found");
  return it->second;
}

Result<std::vector<ApiKeyRecord>> MemoryMetaStore::ListApiKeys() {
  std::lock_guard lock(mu_);
  std::vector<ApiKeyRecord> keys;
  for (const auto& [id, key] : api_keys_) keys.push_back(key);
  return keys;
}

Status MemoryMetaStore::RevokeApiKey(const std::string& key_id) {
  std::lock_guard lock(mu_);
  auto it = api_keys_.find(key_id);
  if (it == api_keys_.end()) return NotFoundError("api key " + key_id + " not found");
  it->second.revoked = true;
  return OkStatus();
}

Status MemoryMetaStore::ReplaceS3Secrets(const std::vector<S3SecretChange>& changes) {
  std::lock_guard lock(mu_);
  for (const S3SecretChange& change : changes) {
    auto it = s3_keys_.find(change.access_key);
    if (it == s3_keys_.end() || it->second.secret != change.old_secret) {
      return AbortedError("the secret of S3 key " + change.access_key + " changed meanwhile");
    }
  }
  for (const S3SecretChange& change : changes)
    s3_keys_[change.access_key].secret = change.new_secret;
  return OkStatus();
}

// ---- S3 support -------------------------------------------------------------------------

Result<CommitResult> MemoryMetaStore::PutCommittedAndDelete(
    const ObjectRecord& object, const std::vector<ChunkRef>& chunks,
    const std::vector<ObjectId>& also_delete, TimestampMs now_ms) {
  RETURN_IF_ERROR(CheckPutCommitted(object, chunks));
  // An id listed twice is retired once (as in every engine).
  std::set<ObjectId> retire(also_delete.begin(), also_delete.end());
  std::lock_guard lock(mu_);
  if (objects_.contains(object.id)) {
    return AlreadyExistsError("object id " + object.id.ToString() + " is already taken");
  }
  for (const ObjectId& id : retire) {
    auto it = objects_.find(id);
    if (it == objects_.end() || it->second.record.state != ObjectState::kCommitted ||
        it->second.record.tenant != object.tenant) {
      return NoSuchObject(id);
    }
  }
  for (const ObjectId& id : retire) {
    StoredObject& retired = objects_.at(id);
    retired.record.state = ObjectState::kDeleting;
    retired.record.updated_at_ms = now_ms;
    DropReferences(retired, now_ms);
  }
  CommitResult result;
  result.replaced_object = RetireObjectAtKey(object, now_ms);
  StoredObject stored{object, ListEntries(chunks)};
  stored.record.state = ObjectState::kCommitted;
  stored.record.updated_at_ms = now_ms;
  for (const ChunkRef& chunk : chunks) TakeReference(object.storage_class, chunk, now_ms);
  result.object = stored.record;
  objects_.emplace(object.id, std::move(stored));
  return result;
}

Result<ObjectRecord> MemoryMetaStore::UpdateUserMetadata(
    const std::string& tenant, const ObjectId& id,
    const std::map<std::string, std::string>& user_metadata, TimestampMs now_ms) {
  std::lock_guard lock(mu_);
  auto it = objects_.find(id);
  if (it == objects_.end() || it->second.record.state != ObjectState::kCommitted ||
      it->second.record.tenant != tenant) {
    return NoSuchObject(id);
  }
  it->second.record.user_metadata = user_metadata;
  it->second.record.updated_at_ms = now_ms;
  return it->second.record;
}

Status MemoryMetaStore::CreateNamespace(const NamespaceRecord& record) {
  std::lock_guard lock(mu_);
  for (const auto& [key, existing] : namespaces_) {
    if (key.second == record.name && key.first != record.tenant) {
      return internal::NameTakenError(record.name);
    }
  }
  auto [it, inserted] = namespaces_.try_emplace({record.tenant, record.name}, record);
  if (!inserted) {
    return AlreadyExistsError("namespace '" + record.name + "' of tenant '" + record.tenant +
                              "' already exists");
  }
  return OkStatus();
}

Result<std::vector<NamespaceRecord>> MemoryMetaStore::ListNamespaces(const std::string& tenant) {
  std::lock_guard lock(mu_);
  std::map<std::string, NamespaceRecord> found;
  for (const auto& [key, record] : namespaces_) {
    if (key.first == tenant) found[key.second] = record;
  }
  for (const auto& [id, object] : objects_) {
    const ObjectRecord& r = object.record;
    if (r.tenant != tenant || r.state != ObjectState::kCommitted) continue;
    if (namespaces_.contains({tenant, r.namespace_name})) continue;  // explicit row wins
    auto [it, inserted] = found.try_emplace(
        r.namespace_name, NamespaceRecord{tenant, r.namespace_name, r.created_at_ms});
    if (!inserted) it->second.created_at_ms = std::min(it->second.created_at_ms, r.created_at_ms);
  }
  std::vector<NamespaceRecord> out;
  for (auto& [name, record] : found) out.push_back(std::move(record));
  return out;
}

Result<std::vector<std::string>> MemoryMetaStore::NamespaceTenants() {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& entry : namespaces_) {
    if (out.empty() || out.back() != entry.first.first) out.push_back(entry.first.first);
  }
  return out;
}

Result<std::vector<std::string>> MemoryMetaStore::NamespaceOwners(const std::string& name) {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [key, record] : namespaces_) {
    if (key.second == name && out.size() < 16) out.push_back(key.first);
  }
  return out;
}

Result<NamespaceRecord> MemoryMetaStore::GetNamespace(const std::string& tenant,
                                                      const std::string& name) {
  ASSIGN_OR_RETURN(auto all, ListNamespaces(tenant));
  for (auto& record : all) {
    if (record.name == name) return record;
  }
  return NotFoundError("namespace '" + name + "' of tenant '" + tenant + "' does not exist");
}

Status MemoryMetaStore::DeleteNamespace(const std::string& tenant, const std::string& name) {
  std::lock_guard lock(mu_);
  for (const auto& [id, object] : objects_) {
    const ObjectRecord& r = object.record;
    if (r.tenant == tenant && r.namespace_name == name && r.state == ObjectState::kCommitted) {
      return FailedPreconditionError("namespace '" + name + "' is not empty");
    }
  }
  if (namespaces_.erase({tenant, name}) == 0) {
    return NotFoundError("namespace '" + name + "' of tenant '" + tenant + "' does not exist");
  }
  namespace_settings_.erase({tenant, name});
  return OkStatus();
}

Result<std::map<std::string, std::string>> MemoryMetaStore::GetNamespaceSettings(
    const std::string& tenant, const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = namespace_settings_.find({tenant, name});
  if (it == namespace_settings_.end()) return std::map<std::string, std::string>();
  return it->second;
}

Status MemoryMetaStore::SetNamespaceSetting(const std::string& tenant, const std::string& name,
                                            const std::string& setting,
                                            const std::optional<std::string>& value,
                                            TimestampMs now) {
  RETURN_IF_ERROR(CheckNamespaceSetting(tenant, name, setting, value));
  std::lock_guard lock(mu_);
  const std::pair<std::string, std::string> key(tenant, name);
  namespaces_.try_emplace(key, NamespaceRecord{tenant, name, now});
  if (value) {
    namespace_settings_[key][setting] = *value;
    return OkStatus();
  }
  auto it = namespace_settings_.find(key);
  if (it != namespace_settings_.end()) {
    it->second.erase(setting);
    if (it->second.empty()) namespace_settings_.erase(it);
  }
  return OkStatus();
}

Status MemoryMetaStore::CreateS3Key(const S3KeyRecord& key) {
  std::lock_guard lock(mu_);
  if (!s3_keys_.try_emplace(key.access_key, key).second) {
    return AlreadyExistsError("S3 access key " + key.access_key + " already exists");
  }
  return OkStatus();
}

Result<S3KeyRecord> MemoryMetaStore::GetS3Key(const std::string& access_key) {
  std::lock_guard lock(mu_);
  auto it = s3_keys_.find(access_key);
  if (it == s3_keys_.end()) return NotFoundError("no S3 access key " + access_key);
  return it->second;
}

Result<std::vector<S3KeyRecord>> MemoryMetaStore::ListS3Keys() {
  std::lock_guard lock(mu_);
  std::vector<S3KeyRecord> out;
  for (const auto& [id, key] : s3_keys_) out.push_back(key);
  return out;
}

Status MemoryMetaStore::RevokeS3Key(const std::string& access_key) {
  std::lock_guard lock(mu_);
  auto it = s3_keys_.find(access_key);
  if (it == s3_keys_.end()) return NotFoundError("no S3 access key " + access_key);
  it->second.revoked = true;
  return OkStatus();
}

}  // namespace cairn::meta

// ---- snapshots ------------------------------------------------------------------------

namespace cairn::meta {

Status MemoryMetaStore::ExportSnapshot(SnapshotVisitor& visitor, TimestampMs now_ms) {
  std::lock_guard lock(mu_);
  // The volume's runtime state stays out (records.h): staging owners, and unlinked inodes
  // with their blocks and xattrs.
  std::set<ChunkOwner> left_out;
  std::set<uint64_t> unlinked;
  for (const auto& [ino, inode] : inodes_) {
    if (inode.nlink == 0) {
      unlinked.insert(ino);
      left_out.insert(FileChunkOwner(volume_->uuid, ino));
    }
  }
  auto exported = [&](const ChunkOwner& owner) {
    return owner.kind != kFsStagingOwnerKind && !left_out.contains(owner);
  };
  // Committed references per chunk: the counts a restored store must hold.
  std::map<ChunkKey, int64_t> committed;
  SnapshotCounts counts;
  for (const auto& [id, object] : objects_) {
    if (object.record.state != ObjectState::kCommitted) continue;
    ++counts.objects;
    for (const ChunkRef& chunk : object.chunks) {
      ++committed[ChunkKey{object.record.storage_class, chunk.digest}];
    }
  }
  for (const auto& [owner, entries] : owners_) {
    if (!exported(owner)) continue;
    ++counts.owners;
    for (const auto& [seq, entry] : entries) {
      ++committed[ChunkKey{entry.storage_class, entry.chunk.digest}];
    }
  }
  if (volume_) {
    counts.volumes = 1;
    counts.inodes = inodes_.size() - unlinked.size();
    counts.dentries = dentries_.size();
    for (const auto& [key, value] : xattrs_) {
      if (!unlinked.contains(key.first)) ++counts.xattrs;
    }
  }
  std::vector<ChunkRecord> chunks;
  for (const auto& [key, row] : chunks_) {
    ChunkRecord out = row;
    auto it = committed.find(key);
    out.ref_count = it == committed.end() ? 0 : it->second;
    if (out.ref_count > 0) {
      out.zero_since_ms = 0;
    } else if (row.ref_count != 0 || row.zero_since_ms == 0) {
      out.zero_since_ms = now_ms;
    }
    chunks.push_back(out);
  }
  std::sort(chunks.begin(), chunks.end(), [](const ChunkRecord& a, const ChunkRecord& b) {
    return ChunkOrderLess(a.storage_class, a.digest, b.storage_class, b.digest);
  });
  counts.api_keys = api_keys_.size();
  counts.s3_keys = s3_keys_.size();
  counts.namespaces = namespaces_.size();
  for (const auto& [key, settings] : namespace_settings_) {
    counts.namespace_settings += settings.size();
  }
  counts.chunks = chunks.size();
  RETURN_IF_ERROR(visitor.Begin(counts));
  for (const auto& [id, key] : api_keys_) RETURN_IF_ERROR(visitor.Visit(key));
  for (const auto& [id, key] : s3_keys_) RETURN_IF_ERROR(visitor.Visit(key));
  for (const auto& [id, record] : namespaces_) RETURN_IF_ERROR(visitor.Visit(record));
  for (const auto& [key, settings] : namespace_settings_) {
    for (const auto& [setting, value] : settings) {
      RETURN_IF_ERROR(visitor.Visit(NamespaceSettingRecord{key.first, key.second, setting, value}));
    }
  }
  for (const ChunkRecord& chunk : chunks) RETURN_IF_ERROR(visitor.Visit(chunk));
  for (const auto& [id, object] : objects_) {
    if (object.record.state != ObjectState::kCommitted) continue;
    RETURN_IF_ERROR(visitor.Visit(SnapshotObject{object.record, object.chunks}));
  }
  for (const auto& [owner, entries] : owners_) {
    if (!exported(owner)) continue;
    SnapshotOwner record{owner, {}, {}};
    for (const auto& [seq, entry] : entries) {
      record.chunks.push_back(entry);
      record.sequences.push_back(seq);
    }
    internal::DropDenseSequences(record);
    RETURN_IF_ERROR(visitor.Visit(record));
  }
  if (!volume_) return OkStatus();
  RETURN_IF_ERROR(visitor.Visit(SnapshotVolume{*volume_, last_inode_ + 1}));
  for (const auto& [ino, inode] : inodes_) {
    if (!unlinked.contains(ino)) RETURN_IF_ERROR(visitor.Visit(inode));
  }
  for (const auto& [key, entry] : dentries_) RETURN_IF_ERROR(visitor.Visit(entry));
  for (const auto& [key, value] : xattrs_) {
    if (!unlinked.contains(key.first)) {
      RETURN_IF_ERROR(visitor.Visit(SnapshotXattr{key.first, key.second, value}));
    }
  }
  return OkStatus();
}

// Builds the new contents aside and installs them only once the source ended cleanly and
// every check passed, so a failure leaves the store as it was.
Result<SnapshotCounts> MemoryMetaStore::ImportSnapshot(SnapshotSource& source) {
  std::lock_guard lock(mu_);
  if (!objects_.empty() || !chunks_.empty() || !owners_.empty() || !api_keys_.empty() ||
      !namespaces_.empty() || !namespace_settings_.empty() || !s3_keys_.empty() || volume_) {
    return FailedPreconditionError(
        "the metadata store is not empty; load a snapshot only into a "
        "fresh store");
  }
  std::map<ObjectId, StoredObject> objects;
  std::map<ChunkKey, ChunkRecord> chunks;
  std::map<std::string, ApiKeyRecord> api_keys;
  std::map<std::pair<std::string, std::string>, NamespaceRecord> namespaces;
  std::map<std::pair<std::string, std::string>, std::map<std::string, std::string>> settings;
  std::map<std::string, S3KeyRecord> s3_keys;
  std::map<ChunkOwner, std::map<uint64_t, OwnerChunk>> owners;
  std::set<std::tuple<std::string, std::string, std::string>> keys;
  std::optional<SnapshotVolume> volume;
  std::map<uint64_t, InodeRecord> inodes;
  std::map<std::pair<uint64_t, std::string>, DentryRecord, std::less<>> dentries;
  std::map<std::pair<uint64_t, std::string>, std::string, std::less<>> xattrs;
  SnapshotCounts counts;
  while (true) {
    ASSIGN_OR_RETURN(std::optional<SnapshotRecord> next, source.Next());
    if (!next) break;
    if (auto* key = std::get_if<ApiKeyRecord>(&*next)) {
      RETURN_IF_ERROR(CheckApiKey(*key));
      if (!api_keys.emplace(key->key_id, *key).second) {
        return AlreadyExistsError("api key id " + key->key_id + " appears twice");
      }
      ++counts.api_keys;
    } else if (auto* s3 = std::get_if<S3KeyRecord>(&*next)) {
      if (!s3_keys.emplace(s3->access_key, *s3).second) {
        return AlreadyExistsError("S3 access key " + s3->access_key + " appears twice");
      }
      ++counts.s3_keys;
    } else if (auto* ns = std::get_if<NamespaceRecord>(&*next)) {
      if (!namespaces.emplace(std::make_pair(ns->tenant, ns->name), *ns).second) {
        return AlreadyExistsError("namespace '" + ns->name + "' appears twice");
      }
      ++counts.namespaces;
    } else if (auto* setting = std::get_if<NamespaceSettingRecord>(&*next)) {
      RETURN_IF_ERROR(CheckNamespaceSetting(setting->tenant, setting->namespace_name, setting->name,
                                            setting->value));
      // Namespaces come first in a snapshot: a setting's namespace is known by now.
      if (!namespaces.contains({setting->tenant, setting->namespace_name})) {
        return InvalidArgumentError("snapshot is inconsistent: setting '" + setting->name +
                                    "' of namespace '" + setting->namespace_name +
                                    "' has no namespace record");
      }
      if (!settings[{setting->tenant, setting->namespace_name}]
               .emplace(setting->name, setting->value)
               .second) {
        return AlreadyExistsError("setting '" + setting->name + "' of namespace '" +
                                  setting->namespace_name + "' appears twice");
      }
      ++counts.namespace_settings;
    } else if (auto* chunk = std::get_if<ChunkRecord>(&*next)) {
      if (!chunks.emplace(ChunkKey{chunk->storage_class, chunk->digest}, *chunk).second) {
        return AlreadyExistsError("chunk " + chunk->digest.ToHex() + " appears twice");
      }
      ++counts.chunks;
    } else if (auto* owned = std::get_if<SnapshotOwner>(&*next)) {
      RETURN_IF_ERROR(CheckChunkOwner(owned->owner));
      RETURN_IF_ERROR(internal::CheckSnapshotOwner(*owned));
      std::map<uint64_t, OwnerChunk> entries;
      for (size_t i = 0; i < owned->chunks.size(); ++i) {
        const OwnerChunk& entry = owned->chunks[i];
        entries.emplace(
            internal::OwnerSequence(*owned, i),
            OwnerChunk(entry.storage_class, ChunkRef{entry.chunk.digest, entry.chunk.size_bytes}));
      }
      if (!owners.emplace(owned->owner, std::move(entries)).second) {
        return AlreadyExistsError("owner " + internal::DescribeOwner(owned->owner) +
                                  " appears twice");
      }
      ++counts.owners;
    } else if (auto* v = std::get_if<SnapshotVolume>(&*next)) {
      RETURN_IF_ERROR(internal::CheckSnapshotVolume(*v));
      if (volume) return InvalidArgumentError("snapshot holds a second volume record");
      volume = *v;
      ++counts.volumes;
    } else if (auto* inode = std::get_if<InodeRecord>(&*next)) {
      if (!volume) return internal::SnapshotWithoutVolumeError("an inode");
      if (inode->ino == 0) return InvalidArgumentError("inode number 0 is not valid");
      if (!inodes.emplace(inode->ino, *inode).second) {
        return AlreadyExistsError("inode " + std::to_string(inode->ino) + " appears twice");
      }
      ++counts.inodes;
    } else if (auto* entry = std::get_if<DentryRecord>(&*next)) {
      if (!volume) return internal::SnapshotWithoutVolumeError("a directory entry");
      if (!dentries.emplace(std::make_pair(entry->parent, entry->name), *entry).second) {
        return AlreadyExistsError("directory entry '" + entry->name + "' of " +
                                  std::to_string(entry->parent) + " appears twice");
      }
      ++counts.dentries;
    } else if (auto* xattr = std::get_if<SnapshotXattr>(&*next)) {
      if (!volume) return internal::SnapshotWithoutVolumeError("an xattr");
      if (!xattrs.emplace(std::make_pair(xattr->ino, xattr->name), xattr->value).second) {
        return AlreadyExistsError("xattr '" + xattr->name + "' of inode " +
                                  std::to_string(xattr->ino) + " appears twice");
      }
      ++counts.xattrs;
    } else {
      SnapshotObject& object = std::get<SnapshotObject>(*next);
      const ObjectRecord& r = object.object;
      RETURN_IF_ERROR(CheckPutCommitted(r, object.chunks));
      if (r.state != ObjectState::kCommitted) {
        return InvalidArgumentError("object " + r.id.ToString() + " is not COMMITTED");
      }
      if (!keys.emplace(r.tenant, r.namespace_name, r.key).second) {
        return AlreadyExistsError("two objects at key '" + r.key + "' in namespace " +
                                  r.namespace_name);
      }
      if (!objects.emplace(r.id, StoredObject{r, ListEntries(object.chunks)}).second) {
        return AlreadyExistsError("object id " + r.id.ToString() + " appears twice");
      }
      ++counts.objects;
    }
  }
  std::map<ChunkKey, int64_t> references;
  for (const auto& [id, object] : objects) {
    for (const ChunkRef& chunk : object.chunks) {
      ++references[ChunkKey{object.record.storage_class, chunk.digest}];
    }
  }
  for (const auto& [owner, entries] : owners) {
    for (const auto& [seq, entry] : entries) {
      ++references[ChunkKey{entry.storage_class, entry.chunk.digest}];
    }
  }
  uint64_t disagreements = 0;
  for (const auto& [key, row] : chunks) {
    auto it = references.find(key);
    if (row.ref_count != (it == references.end() ? 0 : it->second)) ++disagreements;
  }
  for (const auto& [key, count] : references) {
    if (!chunks.count(key)) ++disagreements;
  }
  if (disagreements > 0) {
    return InvalidArgumentError("snapshot is inconsistent: " + std::to_string(disagreements) +
                                " chunk reference counts disagree with the objects' and "
                                "owners' chunk lists");
  }
  objects_ = std::move(objects);
  chunks_ = std::move(chunks);
  owners_ = std::move(owners);
  api_keys_ = std::move(api_keys);
  namespaces_ = std::move(namespaces);
  namespace_settings_ = std::move(settings);
  s3_keys_ = std::move(s3_keys);
  if (volume) {
    volume_ = volume->volume;
    last_inode_ = volume->next_ino - 1;
    inodes_ = std::move(inodes);
    dentries_ = std::move(dentries);
    xattrs_ = std::move(xattrs);
  }
  return counts;
}

}  // namespace cairn::meta
