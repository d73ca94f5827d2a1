// The memory engine's FileTree: the reference the conformance suite checks SQLite and
// PostgreSQL against. A transaction holds the store's mutex from start to end (so it is
// serializable) and keeps an undo record of every row it touches, restored in reverse when
// the body fails.
#include <algorithm>
#include <functional>
#include <set>
#include <tuple>

#include "meta/memory/memory_meta_store.h"
#include "meta/meta_checks.h"

namespace cairn::meta {

class MemoryFileTreeTransaction final : public FileTreeTransaction {
 public:
  MemoryFileTreeTransaction(MemoryMetaStore& store, bool writable, TimestampMs now_ms)
      : store_(store), writable_(writable), now_ms_(now_ms) {}

  Result<VolumeRecord> volume() override { return *store_.volume_; }
  TimestampMs now_ms() const override { return now_ms_; }

  Result<std::optional<InodeRecord>> GetInode(uint64_t ino) override {
    auto it = store_.inodes_.find(ino);
    if (it == store_.inodes_.end()) return std::optional<InodeRecord>();
    return std::optional<InodeRecord>(it->second);
  }

  Result<uint64_t> PutInode(const InodeRecord& inode) override {
    RETURN_IF_ERROR(CheckWritable("PutInode"));
    if (inode.ino == 0) return InvalidArgumentError("inode number 0 is not valid");
    Remember(store_.inodes_, inode.ino, saved_inodes_);
    InodeRecord& row = store_.inodes_[inode.ino];
    const uint64_t change = row.ino == 0 ? 1 : row.change + 1;
    row = inode;
    row.change = change;
    return change;
  }

  Status DeleteInode(uint64_t ino) override {
    RETURN_IF_ERROR(CheckWritable("DeleteInode"));
    Remember(store_.inodes_, ino, saved_inodes_);
    store_.inodes_.erase(ino);
    RETURN_IF_ERROR(DeleteOrphan(ino));
    RETURN_IF_ERROR(DropBlocks(ino, 0));
    auto first = store_.xattrs_.lower_bound(std::pair<uint64_t, std::string>(ino, ""));
    std::vector<std::pair<uint64_t, std::string>> doomed;
    for (auto it = first; it != store_.xattrs_.end() && it->first.first == ino; ++it) {
      doomed.push_back(it->first);
    }
    for (const auto& key : doomed) {
      Remember(store_.xattrs_, key, saved_xattrs_);
      store_.xattrs_.erase(key);
    }
    return OkStatus();
  }

  Result<uint64_t> NewInodeNumber() override {
    RETURN_IF_ERROR(CheckWritable("NewInodeNumber"));
    if (!saved_last_inode_) {
      saved_last_inode_ = true;
      undo_.push_back([this, last = store_.last_inode_] { store_.last_inode_ = last; });
    }
    return ++store_.last_inode_;
  }

  Status SetTrashDays(uint32_t days) override {
    RETURN_IF_ERROR(CheckWritable("SetTrashDays"));
    undo_.push_back(
        [this, before = store_.volume_->trash_days] { store_.volume_->trash_days = before; });
    store_.volume_->trash_days = days;
    return OkStatus();
  }

  Result<std::optional<DentryRecord>> GetDentry(uint64_t parent, std::string_view name) override {
    auto it = store_.dentries_.find(std::pair<uint64_t, std::string>(parent, std::string(name)));
    if (it == store_.dentries_.end()) return std::optional<DentryRecord>();
    return std::optional<DentryRecord>(it->second);
  }

  Status PutDentry(const DentryRecord& entry) override {
    RETURN_IF_ERROR(CheckWritable("PutDentry"));
    auto key = std::pair<uint64_t, std::string>(entry.parent, entry.name);
    Remember(store_.dentries_, key, saved_dentries_);
    store_.dentries_[key] = entry;
    return OkStatus();
  }

  Status DeleteDentry(uint64_t parent, std::string_view name) override {
    RETURN_IF_ERROR(CheckWritable("DeleteDentry"));
    auto key = std::pair<uint64_t, std::string>(parent, std::string(name));
    Remember(store_.dentries_, key, saved_dentries_);
    store_.dentries_.erase(key);
    return OkStatus();
  }

  Result<std::vector<DentryRecord>> ListDentries(uint64_t parent, std::string_view after,
                                                 uint32_t limit) override {
    std::vector<DentryRecord> out;
    auto it = store_.dentries_.upper_bound(std::pair<uint64_t, std::string>(parent, after));
    for (; it != store_.dentries_.end() && it->first.first == parent && out.size() < limit; ++it) {
      out.push_back(it->second);
    }
    return out;
  }

  Result<std::vector<BlockRecord>> GetBlocks(uint64_t ino, uint64_t first,
                                             uint64_t count) override {
    std::vector<BlockRecord> out;
    auto owner = store_.owners_.find(Owner(ino));
    if (owner == store_.owners_.end() || count == 0) return out;
    const uint64_t end = first + count < first ? UINT64_MAX : first + count;
    for (auto it = owner->second.lower_bound(first); it != owner->second.end() && it->first < end;
         ++it) {
      BlockRecord block{it->first, it->second};
      auto row = store_.chunks_.find({block.chunk.storage_class, block.chunk.chunk.digest});
      if (row != store_.chunks_.end()) {
        block.chunk.chunk.block_checksums = row->second.block_checksums;
        block.chunk.chunk.damaged_ms = row->second.damaged_ms;
      }
      out.push_back(std::move(block));
    }
    return out;
  }

  Status PutBlock(uint64_t ino, const BlockRecord& block) override {
    RETURN_IF_ERROR(CheckWritable("PutBlock"));
    const ChunkOwner owner = Owner(ino);
    RememberOwner(owner);
    RememberChunk(block.chunk.storage_class, block.chunk.chunk.digest);
    std::map<uint64_t, OwnerChunk>& entries = store_.owners_[owner];
    // Take before drop, so rewriting a block with the same chunk never lets its count touch
    // zero (and never resets its zero_since_ms).
    store_.TakeReference(block.chunk.storage_class, block.chunk.chunk, now_ms_);
    auto old = entries.find(block.index);
    if (old != entries.end()) {
      RememberChunk(old->second.storage_class, old->second.chunk.digest);
      store_.DropReference(old->second.storage_class, old->second.chunk.digest, now_ms_);
    }
    entries[block.index] =
        OwnerChunk(block.chunk.storage_class,
                   ChunkRef{block.chunk.chunk.digest, block.chunk.chunk.size_bytes});
    return OkStatus();
  }

  Status DropBlocks(uint64_t ino, uint64_t first) override {
    RETURN_IF_ERROR(CheckWritable("DropBlocks"));
    const ChunkOwner owner = Owner(ino);
    auto it = store_.owners_.find(owner);
    if (it == store_.owners_.end()) return OkStatus();
    RememberOwner(owner);
    std::map<uint64_t, OwnerChunk>& entries = it->second;
    for (auto block = entries.lower_bound(first); block != entries.end();) {
      RememberChunk(block->second.storage_class, block->second.chunk.digest);
      store_.DropReference(block->second.storage_class, block->second.chunk.digest, now_ms_);
      block = entries.erase(block);
    }
    if (entries.empty()) store_.owners_.erase(it);  // an owner with no entry does not exist
    return OkStatus();
  }

  Result<std::optional<std::string>> GetXattr(uint64_t ino, std::string_view name) override {
    auto it = store_.xattrs_.find(std::pair<uint64_t, std::string>(ino, std::string(name)));
    if (it == store_.xattrs_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }

  Status PutXattr(uint64_t ino, std::string_view name, std::string_view value) override {
    RETURN_IF_ERROR(CheckWritable("PutXattr"));
    auto key = std::pair<uint64_t, std::string>(ino, std::string(name));
    Remember(store_.xattrs_, key, saved_xattrs_);
    store_.xattrs_[key] = std::string(value);
    return OkStatus();
  }

  Status DeleteXattr(uint64_t ino, std::string_view name) override {
    RETURN_IF_ERROR(CheckWritable("DeleteXattr"));
    auto key = std::pair<uint64_t, std::string>(ino, std::string(name));
    Remember(store_.xattrs_, key, saved_xattrs_);
    store_.xattrs_.erase(key);
    return OkStatus();
  }

  Result<std::vector<std::string>> ListXattrs(uint64_t ino) override {
    std::vector<std::string> out;
    for (auto it = store_.xattrs_.lower_bound(std::pair<uint64_t, std::string>(ino, ""));
         it != store_.xattrs_.end() && it->first.first == ino; ++it) {
      out.push_back(it->first.second);
    }
    return out;
  }

  Status SetOwnerChunks(const ChunkOwner& owner, const std::vector<OwnerChunk>& chunks) override {
    RETURN_IF_ERROR(CheckWritable("SetOwnerChunks"));
    RETURN_IF_ERROR(internal::CheckChunkOwner(owner));
    if (owner.kind == kFileOwnerKind) {
      return InvalidArgumentError("a file's blocks are set by PutBlock, not SetOwnerChunks");
    }
    RememberOwner(owner);
    for (const OwnerChunk& entry : chunks) {
      RememberChunk(entry.storage_class, entry.chunk.digest);
      store_.TakeReference(entry.storage_class, entry.chunk, now_ms_);
    }
    auto it = store_.owners_.find(owner);
    if (it != store_.owners_.end()) {
      for (const auto& [seq, entry] : it->second) {
        RememberChunk(entry.storage_class, entry.chunk.digest);
        store_.DropReference(entry.storage_class, entry.chunk.digest, now_ms_);
      }
      store_.owners_.erase(it);
    }
    if (chunks.empty()) return OkStatus();
    std::map<uint64_t, OwnerChunk>& entries = store_.owners_[owner];
    for (const OwnerChunk& entry : chunks) {
      entries.emplace(
          entries.size(),
          OwnerChunk(entry.storage_class, ChunkRef{entry.chunk.digest, entry.chunk.size_bytes}));
    }
    return OkStatus();
  }

  Status AddOwnerEntry(const ChunkOwner& owner, uint64_t seq, const OwnerChunk& chunk) override {
    RETURN_IF_ERROR(CheckWritable("AddOwnerEntry"));
    RETURN_IF_ERROR(internal::CheckGenericOwner(owner, "AddOwnerEntry"));
    auto it = store_.owners_.find(owner);
    if (it != store_.owners_.end() && it->second.count(seq) > 0) {
      return AlreadyExistsError("owner " + owner.kind + ":" + owner.id + " has an entry at " +
                                std::to_string(seq));
    }
    RememberOwner(owner);
    RememberChunk(chunk.storage_class, chunk.chunk.digest);
    store_.TakeReference(chunk.storage_class, chunk.chunk, now_ms_);
    store_.owners_[owner].emplace(
        seq, OwnerChunk(chunk.storage_class, ChunkRef{chunk.chunk.digest, chunk.chunk.size_bytes}));
    return OkStatus();
  }

  Status DropOwnerEntries(const ChunkOwner& owner, const std::vector<uint64_t>& seqs) override {
    RETURN_IF_ERROR(CheckWritable("DropOwnerEntries"));
    RETURN_IF_ERROR(internal::CheckGenericOwner(owner, "DropOwnerEntries"));
    auto it = store_.owners_.find(owner);
    if (it == store_.owners_.end()) return OkStatus();
    RememberOwner(owner);
    for (uint64_t seq : seqs) {
      auto entry = it->second.find(seq);
      if (entry == it->second.end()) continue;
      RememberChunk(entry->second.storage_class, entry->second.chunk.digest);
      store_.DropReference(entry->second.storage_class, entry->second.chunk.digest, now_ms_);
      it->second.erase(entry);
    }
    if (it->second.empty()) store_.owners_.erase(it);  // an owner with no entry does not exist
    return OkStatus();
  }

  Status PutSession(const SessionRecord& session) override {
    RETURN_IF_ERROR(CheckWritable("PutSession"));
    if (session.id == 0) return InvalidArgumentError("session id 0 is not valid");
    Remember(store_.sessions_, session.id, saved_sessions_);
    store_.sessions_[session.id] = session;
    return OkStatus();
  }

  Status DeleteSession(uint64_t id) override {
    RETURN_IF_ERROR(CheckWritable("DeleteSession"));
    Remember(store_.sessions_, id, saved_sessions_);
    store_.sessions_.erase(id);
    return OkStatus();
  }

  Result<std::vector<SessionRecord>> ListSessions() override {
    std::vector<SessionRecord> out;
    for (const auto& [id, session] : store_.sessions_) out.push_back(session);
    return out;
  }

  Status PutOrphan(const OrphanRecord& orphan) override {
    RETURN_IF_ERROR(CheckWritable("PutOrphan"));
    Remember(store_.orphans_, orphan.ino, saved_orphans_);
    store_.orphans_[orphan.ino] = orphan;
    return OkStatus();
  }

  Status DeleteOrphan(uint64_t ino) override {
    RETURN_IF_ERROR(CheckWritable("DeleteOrphan"));
    Remember(store_.orphans_, ino, saved_orphans_);
    store_.orphans_.erase(ino);
    return OkStatus();
  }

  Result<std::vector<OrphanRecord>> ListOrphans() override {
    std::vector<OrphanRecord> out;
    for (const auto& [ino, orphan] : store_.orphans_) out.push_back(orphan);
    return out;
  }

  Result<uint64_t> AppendChange(const ChangeRecord& change) override {
    RETURN_IF_ERROR(CheckWritable("AppendChange"));
    if (!saved_last_change_) {
      saved_last_change_ = true;
      undo_.push_back([this, last = store_.last_change_] { store_.last_change_ = last; });
    }
    const uint64_t seq = ++store_.last_change_;
    Remember(store_.changes_, seq, saved_changes_);
    ChangeRecord& row = store_.changes_[seq];
    row = change;
    row.seq = seq;
    row.at_ms = now_ms_;
    return seq;
  }

  Result<std::vector<ChangeRecord>> ListChanges(uint64_t after, uint32_t limit) override {
    std::vector<ChangeRecord> out;
    for (auto it = store_.changes_.upper_bound(after);
         it != store_.changes_.end() && out.size() < limit; ++it) {
      out.push_back(it->second);
    }
    return out;
  }

  Result<uint64_t> LastChangeSeq() override { return store_.last_change_; }

  Status TrimChanges(TimestampMs before_ms) override {
    RETURN_IF_ERROR(CheckWritable("TrimChanges"));
    std::vector<uint64_t> doomed;
    for (const auto& [seq, change] : store_.changes_) {
      if (change.at_ms < before_ms) doomed.push_back(seq);
    }
    for (uint64_t seq : doomed) {
      Remember(store_.changes_, seq, saved_changes_);
      store_.changes_.erase(seq);
    }
    return OkStatus();
  }

  Result<std::vector<LockRecord>> ListLocks(uint64_t ino) override {
    std::vector<LockRecord> out;
    for (auto it = store_.locks_.lower_bound(MemoryMetaStore::LockKey{ino, 0, 0, 0});
         it != store_.locks_.end() && std::get<0>(it->first) == ino; ++it) {
      out.insert(out.end(), it->second.begin(), it->second.end());
    }
    std::sort(out.begin(), out.end(), [](const LockRecord& a, const LockRecord& b) {
      return std::tie(a.session, a.owner, a.kind, a.start) <
             std::tie(b.session, b.owner, b.kind, b.start);
    });
    return out;
  }

  Status SetLocks(uint64_t ino, uint64_t session, uint64_t owner, LockKind kind,
                  const std::vector<LockRecord>& locks) override {
    RETURN_IF_ERROR(CheckWritable("SetLocks"));
    const MemoryMetaStore::LockKey key{ino, session, owner, static_cast<uint8_t>(kind)};
    Remember(store_.locks_, key, saved_locks_);
    if (locks.empty()) {
      store_.locks_.erase(key);
    } else {
      store_.locks_[key] = locks;
    }
    return OkStatus();
  }

  Status DeleteSessionLocks(uint64_t session) override {
    RETURN_IF_ERROR(CheckWritable("DeleteSessionLocks"));
    std::vector<MemoryMetaStore::LockKey> doomed;
    for (const auto& [key, locks] : store_.locks_) {
      if (std::get<1>(key) == session) doomed.push_back(key);
    }
    for (const auto& key : doomed) {
      Remember(store_.locks_, key, saved_locks_);
      store_.locks_.erase(key);
    }
    return OkStatus();
  }

  // Restores every row the transaction touched, newest change first.
  void RollBack() {
    for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) (*it)();
    undo_.clear();
  }

  Result<VolumeUsage> Usage() override {
    VolumeUsage usage;
    for (const auto& [ino, inode] : store_.inodes_) {
      ++usage.inodes;
      if (inode.type != FileType::kRegular) continue;
      ++usage.files;
      usage.file_bytes += inode.size;
    }
    const std::string first = store_.volume_->uuid + ":";
    const std::string end = store_.volume_->uuid + ";";
    std::map<std::pair<StorageClass, Digest>, uint64_t> distinct;  // chunk -> largest size
    for (auto it = store_.owners_.lower_bound(ChunkOwner{std::string(kFileOwnerKind), first});
         it != store_.owners_.end() && it->first.kind == kFileOwnerKind && it->first.id < end;
         ++it) {
      for (const auto& [seq, entry] : it->second) {
        uint64_t& size = distinct[{entry.storage_class, entry.chunk.digest}];
        size = std::max(size, entry.chunk.size_bytes);
      }
    }
    usage.chunks = distinct.size();
    for (const auto& [chunk, size] : distinct) usage.chunk_bytes += size;
    return usage;
  }

 private:
  Status CheckWritable(std::string_view what) const {
    if (writable_) return OkStatus();
    return InternalError(std::string(what) + " inside a read-only file tree transaction");
  }

  ChunkOwner Owner(uint64_t ino) const { return FileChunkOwner(store_.volume_->uuid, ino); }

  // Saves a row's value before the transaction first changes it (once per row).
  template <typename Map, typename Key>
  void Remember(Map& map, const Key& key, std::set<Key>& saved) {
    if (!saved.insert(key).second) return;
    auto it = map.find(key);
    std::optional<typename Map::mapped_type> before;
    if (it != map.end()) before = it->second;
    undo_.push_back([&map, key, before = std::move(before)] {
      if (before) {
        map[key] = *before;
      } else {
        map.erase(key);
      }
    });
  }
  void RememberOwner(const ChunkOwner& owner) { Remember(store_.owners_, owner, saved_owners_); }
  void RememberChunk(StorageClass storage_class, const Digest& digest) {
    Remember(store_.chunks_, MemoryMetaStore::ChunkKey{storage_class, digest}, saved_chunks_);
  }

  MemoryMetaStore& store_;
  const bool writable_;
  const TimestampMs now_ms_;
  std::vector<std::function<void()>> undo_;
  bool saved_last_inode_ = false;
  std::set<uint64_t> saved_inodes_;
  std::set<std::pair<uint64_t, std::string>> saved_dentries_;
  std::set<std::pair<uint64_t, std::string>> saved_xattrs_;
  std::set<ChunkOwner> saved_owners_;
  std::set<MemoryMetaStore::ChunkKey> saved_chunks_;
  bool saved_last_change_ = false;
  std::set<uint64_t> saved_sessions_;
  std::set<uint64_t> saved_orphans_;
  std::set<uint64_t> saved_changes_;
  std::set<MemoryMetaStore::LockKey> saved_locks_;
};

Result<VolumeRecord> MemoryMetaStore::FormatVolume(const VolumeRecord& requested,
                                                   const InodeRecord& root) {
  RETURN_IF_ERROR(internal::CheckVolumeRecord(requested));
  std::lock_guard lock(mu_);
  if (volume_) {
    if (volume_->name == requested.name) return *volume_;
    return AlreadyExistsError("this metadata store holds volume '" + volume_->name +
                              "' already; it cannot also hold '" + requested.name + "'");
  }
  InodeRecord row = root;
  row.ino = kRootInode;
  row.type = FileType::kDirectory;
  row.parent = kRootInode;
  row.change = 1;
  volume_ = requested;
  inodes_[kRootInode] = row;
  last_inode_ = kRootInode;
  return *volume_;
}

Result<std::optional<VolumeRecord>> MemoryMetaStore::GetVolume() {
  std::lock_guard lock(mu_);
  return volume_;
}

Status MemoryMetaStore::Read(const std::function<Status(FileTreeTransaction&)>& body) {
  std::lock_guard lock(mu_);
  if (!volume_) return internal::NoVolumeError();
  MemoryFileTreeTransaction transaction(*this, false, 0);
  return body(transaction);
}

Status MemoryMetaStore::Write(const std::function<Status(FileTreeTransaction&)>& body,
                              TimestampMs now_ms) {
  std::lock_guard lock(mu_);
  if (!volume_) return internal::NoVolumeError();
  MemoryFileTreeTransaction transaction(*this, true, now_ms);
  Status status = body(transaction);
  if (!status.ok()) transaction.RollBack();
  return status;
}

}  // namespace cairn::meta
