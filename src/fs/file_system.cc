#include "fs/file_system.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>
#include <utility>

#include "core/text.h"

namespace cairn::fs {
namespace {

using meta::DentryRecord;
using meta::FileTreeTransaction;
using meta::FileType;
using meta::InodeRecord;

constexpr size_t kMaxSymlinkBytes = 4095;
// A rename walks up from its target directory to the root; a tree deeper than this is a
// damaged one (a parent loop), not a legal one.
constexpr int kMaxDepth = 1 << 16;

Status Fail(StatusCode code, ErrorReason reason, std::string message) {
  return Status(code, reason, std::move(message));
}

std::string Describe(uint64_t parent, std::string_view name) {
  return QuoteForMessage(name) + " in directory " + std::to_string(parent);
}

// A name a directory entry may have.
Status CheckName(std::string_view name) {
  if (name.empty() || name == "." || name == "..") {
    return InvalidArgumentError(QuoteForMessage(name) + " is not a file name");
  }
  if (name.size() > meta::kMaxFileNameBytes) {
    return Fail(StatusCode::kInvalidArgument, ErrorReason::kNameTooLong,
                "a file name of " + std::to_string(name.size()) + " bytes is over the limit of " +
                    std::to_string(meta::kMaxFileNameBytes));
  }
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
    return InvalidArgumentError("file name " + QuoteForMessage(name) + " holds '/' or NUL");
  }
  return OkStatus();
}

Status NoInodeError(uint64_t ino) {
  return NotFoundError("inode " + std::to_string(ino) + " does not exist");
}
Status NoEntryError(uint64_t parent, std::string_view name) {
  return NotFoundError(Describe(parent, name) + " does not exist");
}

Result<InodeRecord> LoadInode(FileTreeTransaction& tx, uint64_t ino) {
  ASSIGN_OR_RETURN(std::optional<InodeRecord> inode, tx.GetInode(ino));
  if (!inode) return NoInodeError(ino);
  return std::move(*inode);
}

Result<InodeRecord> LoadDirectory(FileTreeTransaction& tx, uint64_t ino) {
  ASSIGN_OR_RETURN(InodeRecord inode, LoadInode(tx, ino));
  if (inode.type != FileType::kDirectory) {
    return Fail(StatusCode::kFailedPrecondition, ErrorReason::kNotADirectory,
                "inode " + std::to_string(ino) + " is not a directory");
  }
  if (inode.nlink == 0) {  // removed while a handle held it: nothing may be created in it
    return NotFoundError("directory " + std::to_string(ino) + " was removed");
  }
  return inode;
}

Result<DentryRecord> LoadEntry(FileTreeTransaction& tx, uint64_t parent, std::string_view name) {
  ASSIGN_OR_RETURN(std::optional<DentryRecord> entry, tx.GetDentry(parent, name));
  if (!entry) return NoEntryError(parent, name);
  return std::move(*entry);
}

// The entry `name` in `parent` and its inode, with LoadEntry's and LoadInode's errors.
struct Named {
  DentryRecord entry;
  InodeRecord inode;
};
Result<Named> LoadNamed(FileTreeTransaction& tx, uint64_t parent, std::string_view name) {
  ASSIGN_OR_RETURN(std::optional<FileTreeTransaction::NamedInode> named,
                   tx.GetNamedInode(parent, name));
  if (!named) return NoEntryError(parent, name);
  if (!named->inode) return NoInodeError(named->entry.ino);
  return Named{std::move(named->entry), std::move(*named->inode)};
}

Status NotEmpty(FileTreeTransaction& tx, uint64_t dir) {
  ASSIGN_OR_RETURN(std::vector<DentryRecord> first, tx.ListDentries(dir, "", 1));
  if (first.empty()) return OkStatus();
  return Fail(StatusCode::kFailedPrecondition, ErrorReason::kDirectoryNotEmpty,
              "directory " + std::to_string(dir) + " is not empty");
}

// Whether `dir` is `ancestor` or lies below it, walking up the directories' parent fields.
Result<bool> IsWithin(FileTreeTransaction& tx, uint64_t dir, uint64_t ancestor) {
  for (int depth = 0; depth < kMaxDepth; ++depth) {
    if (dir == ancestor) return true;
    if (dir == meta::kRootInode) return false;
    ASSIGN_OR_RETURN(InodeRecord inode, LoadInode(tx, dir));
    if (inode.parent == 0 || inode.parent == dir) {
      return InternalError("directory " + std::to_string(dir) + " has no parent recorded");
    }
    dir = inode.parent;
  }
  return InternalError("the directory tree above " + std::to_string(dir) + " has a loop");
}

// Forwards to the engine's transaction and notes what changed (inodes, their data,
// directory entries), so FileSystem::Write appends it to the change feed in the same
// transaction: other mounts drop exactly those entries from their kernel caches.
class RecordingTransaction final : public FileTreeTransaction {
 public:
  explicit RecordingTransaction(FileTreeTransaction& tx) : tx_(tx) {}

  // The change rows to append: one per changed inode and per changed entry, paired up.
  std::vector<meta::ChangeRecord> Changes(uint64_t session) const {
    std::vector<meta::ChangeRecord> out;
    auto ino = inodes_.begin();
    auto entry = entries_.begin();
    while (ino != inodes_.end() || entry != entries_.end()) {
      meta::ChangeRecord change;
      change.session = session;
      if (ino != inodes_.end()) {
        change.ino = ino->first;
        change.data = ino->second;
        ++ino;
      }
      if (entry != entries_.end()) {
        change.parent = entry->first;
        change.name = entry->second;
        ++entry;
      }
      out.push_back(std::move(change));
    }
    return out;
  }

  Result<meta::VolumeRecord> volume() override { return tx_.volume(); }
  TimestampMs now_ms() const override { return tx_.now_ms(); }
  Result<std::optional<InodeRecord>> GetInode(uint64_t ino) override { return tx_.GetInode(ino); }
  Result<std::optional<NamedInode>> GetNamedInode(uint64_t parent, std::string_view name) override {
    return tx_.GetNamedInode(parent, name);
  }
  Result<uint64_t> PutInode(const InodeRecord& inode) override {
    NoteInode(inode.ino, false);
    ASSIGN_OR_RETURN(uint64_t change, tx_.PutInode(inode));
    if (inode.type == FileType::kDirectory) {
      InodeRecord& stored = directories_[inode.ino];
      stored = inode;
      stored.change = change;
    } else {
      directories_.erase(inode.ino);
    }
    return change;
  }
  Status DeleteInode(uint64_t ino) override {
    NoteInode(ino, true);
    directories_.erase(ino);
    pending_.erase(ino);
    return tx_.DeleteInode(ino);
  }
  Result<uint64_t> NewInodeNumber() override {
    ASSIGN_OR_RETURN(uint64_t ino, tx_.NewInodeNumber());
    created_.insert(ino);
    return ino;
  }
  Status SetTrashDays(uint32_t days) override { return tx_.SetTrashDays(days); }
  Result<std::optional<DentryRecord>> GetDentry(uint64_t parent, std::string_view name) override {
    return tx_.GetDentry(parent, name);
  }
  Status PutDentry(const DentryRecord& entry) override {
    entries_.emplace(entry.parent, entry.name);
    return tx_.PutDentry(entry);
  }
  Status DeleteDentry(uint64_t parent, std::string_view name) override {
    entries_.emplace(parent, std::string(name));
    return tx_.DeleteDentry(parent, name);
  }
  Result<std::vector<DentryRecord>> ListDentries(uint64_t parent, std::string_view after,
                                                 uint32_t limit) override {
    return tx_.ListDentries(parent, after, limit);
  }
  Result<std::vector<meta::BlockRecord>> GetBlocks(uint64_t ino, uint64_t first,
                                                   uint64_t count) override {
    return tx_.GetBlocks(ino, first, count);
  }
  Status PutBlock(uint64_t ino, const meta::BlockRecord& block) override {
    NoteInode(ino, true);
    return tx_.PutBlock(ino, block);
  }
  Status DropBlocks(uint64_t ino, uint64_t first) override {
    NoteInode(ino, true);
    return tx_.DropBlocks(ino, first);
  }
  Result<std::optional<std::string>> GetXattr(uint64_t ino, std::string_view name) override {
    return tx_.GetXattr(ino, name);
  }
  Status PutXattr(uint64_t ino, std::string_view name, std::string_view value) override {
    NoteInode(ino, false);
    return tx_.PutXattr(ino, name, value);
  }
  Status DeleteXattr(uint64_t ino, std::string_view name) override {
    NoteInode(ino, false);
    return tx_.DeleteXattr(ino, name);
  }
  Result<std::vector<std::string>> ListXattrs(uint64_t ino) override { return tx_.ListXattrs(ino); }
  Result<meta::VolumeUsage> Usage() override { return tx_.Usage(); }
  Status SetOwnerChunks(const meta::ChunkOwner& owner,
                        const std::vector<meta::OwnerChunk>& chunks) override {
    return tx_.SetOwnerChunks(owner, chunks);
  }
  Status AddOwnerEntry(const meta::ChunkOwner& owner, uint64_t seq,
                       const meta::OwnerChunk& chunk) override {
    return tx_.AddOwnerEntry(owner, seq, chunk);
  }
  Status DropOwnerEntries(const meta::ChunkOwner& owner,
                          const std::vector<uint64_t>& seqs) override {
    return tx_.DropOwnerEntries(owner, seqs);
  }
  Status PutSession(const meta::SessionRecord& session) override { return tx_.PutSession(session); }
  Status DeleteSession(uint64_t id) override { return tx_.DeleteSession(id); }
  Result<std::vector<meta::SessionRecord>> ListSessions() override { return tx_.ListSessions(); }
  Status PutOrphan(const meta::OrphanRecord& orphan) override {
    if (orphan.session == 0) {
      // Pending: other mounts learn of it from the feed, so its inode is news; Write sets
      // since_seq once the change rows are appended.
      NoteInode(orphan.ino, false);
      pending_.insert(orphan.ino);
    } else {
      orphaned_.push_back(orphan.ino);
      pending_.erase(orphan.ino);
    }
    return tx_.PutOrphan(orphan);
  }
  const std::vector<uint64_t>& orphaned() const { return orphaned_; }
  const std::set<uint64_t>& pending() const { return pending_; }
  // The directories this transaction stored, as stored, by ino; every inode it changed.
  const std::map<uint64_t, InodeRecord>& directories() const { return directories_; }
  const std::set<uint64_t>& touched() const { return touched_; }
  Status DeleteOrphan(uint64_t ino) override {
    pending_.erase(ino);
    return tx_.DeleteOrphan(ino);
  }
  Result<std::vector<meta::OrphanRecord>> ListOrphans() override { return tx_.ListOrphans(); }
  Result<uint64_t> AppendChange(const meta::ChangeRecord& change) override {
    return tx_.AppendChange(change);
  }
  Result<uint64_t> AppendChanges(const std::vector<meta::ChangeRecord>& changes) override {
    return tx_.AppendChanges(changes);
  }
  Result<std::vector<meta::ChangeRecord>> ListChanges(uint64_t after, uint32_t limit) override {
    return tx_.ListChanges(after, limit);
  }
  Result<uint64_t> LastChangeSeq() override { return tx_.LastChangeSeq(); }
  Status TrimChanges(TimestampMs before_ms) override { return tx_.TrimChanges(before_ms); }
  Result<std::vector<meta::LockRecord>> ListLocks(uint64_t ino) override {
    return tx_.ListLocks(ino);
  }
  Status SetLocks(uint64_t ino, uint64_t session, uint64_t owner, meta::LockKind kind,
                  const std::vector<meta::LockRecord>& locks) override {
    return tx_.SetLocks(ino, session, owner, kind, locks);
  }
  Status DeleteSessionLocks(uint64_t session) override { return tx_.DeleteSessionLocks(session); }

 private:
  // An inode made in this transaction is in nobody's cache: only its entry is news.
  void NoteInode(uint64_t ino, bool data) {
    touched_.insert(ino);
    if (created_.count(ino) != 0) return;
    inodes_[ino] |= data;
  }

  FileTreeTransaction& tx_;
  std::map<uint64_t, bool> inodes_;  // ino -> its data changed
  std::set<std::pair<uint64_t, std::string>> entries_;
  std::set<uint64_t> created_;
  std::vector<uint64_t> orphaned_;
  std::set<uint64_t> pending_;
  std::set<uint64_t> touched_;
  std::map<uint64_t, InodeRecord> directories_;
};

}  // namespace

FileSystem::FileSystem(meta::FileTree* tree, Options options)
    : tree_(tree), options_(std::move(options)) {}

int64_t FileSystem::NowNs() const {
  if (options_.now_ns) return options_.now_ns();
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool FileSystem::IsOpen(uint64_t ino) const { return options_.is_open && options_.is_open(ino); }

Status FileSystem::Write(const std::function<Status(FileTreeTransaction&)>& body,
                         TimestampMs now_ms, bool frees) {
  std::vector<uint64_t> orphaned;
  std::map<uint64_t, InodeRecord> directories;
  std::set<uint64_t> touched;
  const uint64_t epoch = forget_epoch_.load();
  auto recorded = [&](FileTreeTransaction& tx) -> Status {
    RecordingTransaction recording(tx);
    Status status = body(recording);
    touched = recording.touched();  // also of a failed body: see below
    RETURN_IF_ERROR(status);
    ASSIGN_OR_RETURN(uint64_t last_seq, tx.AppendChanges(recording.Changes(options_.session)));
    // A pending orphan waits until every live session has applied the feed past this
    // commit's changes (one of them names its inode): by then each has claimed it or does
    // not hold it.
    for (uint64_t ino : recording.pending()) {
      RETURN_IF_ERROR(tx.PutOrphan({ino, 0, last_seq}));
    }
    orphaned = recording.orphaned();
    directories = recording.directories();
    return OkStatus();
  };
  Status status = WriteUnrecorded(recorded, now_ms);
  // A full disk must not keep a delete from freeing space: the engine's reserve serves it.
  if (frees && status.code() == StatusCode::kResourceExhausted) {
    status = tree_->WriteFreeing(recorded, now_ms);
  }
  if (options_.fresh_directory_ms > 0) {
    // A failed write may still have committed (a connection lost at COMMIT): what it
    // touched is read again.
    if (!status.ok()) directories.clear();
    KeepFresh(directories, touched, epoch);
  }
  if (status.ok() && !orphaned.empty()) {
    std::lock_guard<std::mutex> lock(orphans_mutex_);
    orphans_.insert(orphaned.begin(), orphaned.end());
  }
  return status;
}

Status FileSystem::Sync() { return tree_->Sync(); }

void FileSystem::KeepFresh(const std::map<uint64_t, InodeRecord>& written,
                           const std::set<uint64_t>& touched, uint64_t epoch) {
  constexpr size_t kMaxFresh = 1024;  // directories written within the last second or so
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(fresh_mutex_);
  // ForgetAttr bumps the epoch under this lock: one that came after this check erases
  // what is stored here; one that came before may name a change newer than this write.
  const bool clean = forget_epoch_.load() == epoch;
  for (uint64_t ino : touched) {
    auto it = written.find(ino);
    if (!clean || it == written.end()) {
      fresh_.erase(ino);
      continue;
    }
    auto held = fresh_.find(ino);
    // A later write of this mount stored first: its change counter is higher.
    if (held != fresh_.end() && held->second.inode.change >= it->second.change) continue;
    if (held == fresh_.end() && fresh_.size() >= kMaxFresh) fresh_.clear();
    fresh_[ino] = FreshDirectory{it->second, now};
  }
}

void FileSystem::ForgetAttr(uint64_t ino) {
  std::lock_guard<std::mutex> lock(fresh_mutex_);
  forget_epoch_.fetch_add(1);
  fresh_.erase(ino);
}

namespace {

TimestampMs ToMs(int64_t ns) { return ns / 1000000; }

// Whether a live session other than `self` and `gone` has its row (a mount that may hold
// files open). A session past its expiry is dead: what it held is reclaimed anyway.
Result<bool> OthersAlive(FileTreeTransaction& tx, uint64_t self, uint64_t gone = 0) {
  ASSIGN_OR_RETURN(std::vector<meta::SessionRecord> sessions, tx.ListSessions());
  for (const meta::SessionRecord& session : sessions) {
    if (session.id != self && session.id != gone && session.expires_ms >= tx.now_ms()) {
      return true;
    }
  }
  return false;
}

// `inode` (nlink 0) has no name left and no handle of session `self` holds it: it is
// deleted, unless it is a regular file another live session may hold open. Then it stays
// as a pending orphan (session 0) until the sweep finds that no session claimed it.
// Returns whether it stays.
Result<bool> LetGo(FileTreeTransaction& tx, const InodeRecord& inode, uint64_t self,
                   uint64_t gone = 0) {
  if (inode.type == FileType::kRegular) {
    ASSIGN_OR_RETURN(bool others, OthersAlive(tx, self, gone));
    if (others) {
      RETURN_IF_ERROR(tx.PutOrphan({inode.ino, 0, 0}));  // FileSystem::Write sets since_seq
      return true;
    }
  }
  RETURN_IF_ERROR(tx.DeleteInode(inode.ino));
  return false;
}

// A name of `inode` went away: one link less; the inode goes with its last name unless a
// handle still holds it (then it stays as an orphan until ReleaseOrphan).
// The orphan row names `session`, whose death (or last close) lets the inode go.
Status DropLink(FileTreeTransaction& tx, InodeRecord inode, int64_t now_ns, bool open,
                uint64_t session) {
  inode.nlink = inode.type == FileType::kDirectory || inode.nlink == 0 ? 0 : inode.nlink - 1;
  inode.ctime_ns = now_ns;
  if (inode.nlink == 0) {
    if (open) {
      RETURN_IF_ERROR(tx.PutOrphan({inode.ino, session, 0}));
    } else {
      ASSIGN_OR_RETURN(bool stays, LetGo(tx, inode, session));
      if (!stays) return OkStatus();
    }
  }
  return tx.PutInode(inode).status();
}

// A directory's contents changed: its mtime and ctime move, and its link count follows
// `subdirs` (+1 a directory came in, -1 one left).
Status Touch(FileTreeTransaction& tx, InodeRecord dir, int64_t now_ns, int subdirs) {
  dir.mtime_ns = now_ns;
  dir.ctime_ns = now_ns;
  dir.nlink = static_cast<uint32_t>(static_cast<int64_t>(dir.nlink) + subdirs);
  return tx.PutInode(dir).status();
}

// ---- the trash ----

bool InTrash(const InodeRecord& dir) { return dir.ino == kTrashInode || dir.parent == kTrashInode; }

Status NotInTrash(const InodeRecord& dir) {
  if (!InTrash(dir)) return OkStatus();
  return Fail(StatusCode::kPermissionDenied, ErrorReason::kNotPermitted,
              "directory " + std::to_string(dir.ino) +
                  " is in the trash: nothing can be created or moved into it");
}

Status NotReserved(uint64_t parent, std::string_view name) {
  if (parent != meta::kRootInode || name != kTrashName) return OkStatus();
  return Fail(StatusCode::kPermissionDenied, ErrorReason::kNotPermitted,
              "/.trash is the volume's trash: it cannot be made, replaced, moved or removed");
}

std::string HourName(int64_t now_ns) {
  const time_t seconds = static_cast<time_t>(now_ns / 1'000'000'000);
  tm parts{};
  gmtime_r(&seconds, &parts);
  char text[32];
  strftime(text, sizeof(text), "%Y-%m-%d-%H", &parts);
  return text;
}

// The first ns of an hour directory's hour; nullopt for a name that is no hour.
std::optional<int64_t> HourStartNs(std::string_view hour) {
  if (hour.size() != 13) return std::nullopt;
  int year = 0, month = 0, day = 0, hours = 0;
  char tail = 0;
  const std::string text(hour);
  if (sscanf(text.c_str(), "%4d-%2d-%2d-%2d%c", &year, &month, &day, &hours, &tail) != 4) {
    return std::nullopt;
  }
  tm parts{};
  parts.tm_year = year - 1900;
  parts.tm_mon = month - 1;
  parts.tm_mday = day;
  parts.tm_hour = hours;
  const time_t seconds = timegm(&parts);
  if (seconds == static_cast<time_t>(-1)) return std::nullopt;
  return static_cast<int64_t>(seconds) * 1'000'000'000;
}

// Whether the last name of `inode`, in `dir`, going away sends it to the trash.
Result<bool> GoesToTrash(FileTreeTransaction& tx, const InodeRecord& dir,
                         const InodeRecord& inode) {
  if (inode.type == FileType::kDirectory || inode.nlink > 1 || InTrash(dir)) return false;
  ASSIGN_OR_RETURN(meta::VolumeRecord volume, tx.volume());
  return volume.trash_days > 0;
}

Result<InodeRecord> NewTrashDirectory(FileTreeTransaction& tx, uint64_t ino, uint64_t parent,
                                      std::string_view name, int64_t now_ns) {
  InodeRecord dir;
  dir.ino = ino;
  dir.type = FileType::kDirectory;
  dir.mode = 0700;  // root's: the kernel keeps everyone else out (default_permissions)
  dir.nlink = 2;
  dir.parent = parent;
  dir.atime_ns = dir.mtime_ns = dir.ctime_ns = dir.btime_ns = now_ns;
  ASSIGN_OR_RETURN(dir.change, tx.PutInode(dir));
  RETURN_IF_ERROR(tx.PutDentry(DentryRecord{parent, std::string(name), ino, FileType::kDirectory}));
  ASSIGN_OR_RETURN(InodeRecord above, LoadInode(tx, parent));
  RETURN_IF_ERROR(Touch(tx, above, now_ns, 1));
  return dir;
}

// Files `inode`, whose last name (`name` in `parent`) was just removed, in this hour's trash
// directory. It keeps its one link, so an open handle needs no orphan row. Returns whether
// it made the trash directory itself (which touches the root).
Result<bool> MoveToTrash(FileTreeTransaction& tx, InodeRecord inode, uint64_t parent,
                         std::string_view name, int64_t now_ns) {
  const std::string hour = HourName(now_ns);
  // This hour's directory, once it exists, answers for the trash too (one read, not two).
  ASSIGN_OR_RETURN(std::optional<FileTreeTransaction::NamedInode> hour_entry,
                   tx.GetNamedInode(kTrashInode, hour));
  bool made_trash = false;
  uint64_t hour_ino = 0;
  std::optional<InodeRecord> hour_dir;
  if (hour_entry) {
    hour_ino = hour_entry->entry.ino;
    hour_dir = std::move(hour_entry->inode);
  } else {
    ASSIGN_OR_RETURN(std::optional<InodeRecord> trash, tx.GetInode(kTrashInode));
    if (!trash) {
      RETURN_IF_ERROR(
          NewTrashDirectory(tx, kTrashInode, meta::kRootInode, kTrashName, now_ns).status());
      made_trash = true;
    }
    ASSIGN_OR_RETURN(hour_ino, tx.NewInodeNumber());
    RETURN_IF_ERROR(NewTrashDirectory(tx, hour_ino, kTrashInode, hour, now_ns).status());
  }
  std::string entry = std::to_string(parent) + "-" + std::to_string(inode.ino) + "-";
  entry.append(name);
  if (entry.size() > meta::kMaxFileNameBytes) entry.resize(meta::kMaxFileNameBytes);
  RETURN_IF_ERROR(tx.PutDentry(DentryRecord{hour_ino, entry, inode.ino, inode.type}));
  inode.nlink = 1;
  inode.parent = hour_ino;  // a non-directory with a parent is in the trash (InTrashFile)
  inode.ctime_ns = now_ns;
  RETURN_IF_ERROR(tx.PutInode(inode).status());
  if (!hour_dir) {  // made above (or an entry naming no inode, which LoadInode reports)
    ASSIGN_OR_RETURN(hour_dir, LoadInode(tx, hour_ino));
  }
  RETURN_IF_ERROR(Touch(tx, *hour_dir, now_ns, 0));
  return made_trash;
}

// Regular file `inode` is about to be cut shorter: with the trash on, the version before
// the cut goes to the trash as a new inode with the same attributes, block rows (each a
// reference on its chunk: no byte is copied) and xattrs. `parent`/`name` is a current name
// of the file if the caller knows one (checked here), else 0 and empty.
Status KeepVersionInTrash(FileTreeTransaction& tx, const InodeRecord& inode, uint64_t parent,
                          std::string_view name, int64_t now_ns) {
  if (inode.type != FileType::kRegular || inode.nlink == 0 || InTrashFile(inode)) {
    return OkStatus();  // nobody could name it, or it is in the trash already
  }
  ASSIGN_OR_RETURN(meta::VolumeRecord volume, tx.volume());
  if (volume.trash_days == 0) return OkStatus();
  std::string entry_name;
  if (!name.empty()) {
    ASSIGN_OR_RETURN(std::optional<DentryRecord> entry, tx.GetDentry(parent, name));
    if (entry && entry->ino == inode.ino) entry_name = std::string(name);
  }
  if (entry_name.empty()) {
    parent = 0;
    entry_name = "inode-" + std::to_string(inode.ino);
  }
  InodeRecord copy = inode;
  ASSIGN_OR_RETURN(copy.ino, tx.NewInodeNumber());
  RETURN_IF_ERROR(MoveToTrash(tx, copy, parent, entry_name, now_ns).status());
  constexpr uint64_t kBatch = 1024;  // block indexes per read
  for (uint64_t first = 0; first * kBlockBytes < inode.size; first += kBatch) {
    ASSIGN_OR_RETURN(std::vector<meta::BlockRecord> blocks, tx.GetBlocks(inode.ino, first, kBatch));
    for (const meta::BlockRecord& block : blocks) RETURN_IF_ERROR(tx.PutBlock(copy.ino, block));
  }
  ASSIGN_OR_RETURN(std::vector<std::string> xattrs, tx.ListXattrs(inode.ino));
  for (const std::string& xattr : xattrs) {
    ASSIGN_OR_RETURN(std::optional<std::string> value, tx.GetXattr(inode.ino, xattr));
    if (value) RETURN_IF_ERROR(tx.PutXattr(copy.ino, xattr, *value));
  }
  return OkStatus();
}

}  // namespace

void FileSystem::NoteName(const InodeRecord& inode, uint64_t parent, std::string_view name) {
  if (inode.type != FileType::kRegular) return;
  std::lock_guard<std::mutex> lock(names_mutex_);
  NameHint& hint = names_[inode.ino];
  if (hint.generation != 0 && hint.parent == parent && hint.name == name) return;
  hint.parent = parent;
  hint.name = std::string(name);
  hint.generation = ++name_generation_;
  name_order_.emplace_back(inode.ino, hint.generation);
  // Out go the oldest: a name renoted since has a newer generation and stays.
  while (names_.size() > kMaxNames || name_order_.size() > 2 * kMaxNames) {
    const auto [ino, generation] = name_order_.front();
    name_order_.pop_front();
    auto it = names_.find(ino);
    if (it != names_.end() && it->second.generation == generation) names_.erase(it);
  }
}

std::optional<FileSystem::NameHint> FileSystem::NameOf(uint64_t ino) {
  std::lock_guard<std::mutex> lock(names_mutex_);
  auto it = names_.find(ino);
  if (it == names_.end()) return std::nullopt;
  return it->second;
}

Result<InodeRecord> FileSystem::GetAttr(uint64_t ino) {
  if (options_.fresh_directory_ms > 0) {
    std::lock_guard<std::mutex> lock(fresh_mutex_);
    auto it = fresh_.find(ino);
    if (it != fresh_.end()) {
      if (std::chrono::steady_clock::now() - it->second.stored <
          std::chrono::milliseconds(options_.fresh_directory_ms)) {
        return it->second.inode;
      }
      fresh_.erase(it);
    }
  }
  InodeRecord out;
  RETURN_IF_ERROR(tree_->ReadBrief([&](FileTreeTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(out, LoadInode(tx, ino));
    return OkStatus();
  }));
  return out;
}

Result<InodeRecord> FileSystem::Lookup(uint64_t parent, std::string_view name) {
  RETURN_IF_ERROR(CheckName(name));
  InodeRecord out;
  RETURN_IF_ERROR(tree_->ReadBrief([&](FileTreeTransaction& tx) -> Status {
    // Only a directory has entries (and a removed one has none): the parent is read only
    // to say why a name is not there.
    Result<Named> named = LoadNamed(tx, parent, name);
    if (!named.ok()) {
      RETURN_IF_ERROR(LoadDirectory(tx, parent).status());
      return named.status();
    }
    out = std::move(named->inode);
    return OkStatus();
  }));
  NoteName(out, parent, name);
  return out;
}

Result<InodeRecord> FileSystem::MakeNode(uint64_t parent, std::string_view name, FileType type,
                                         uint32_t mode, uint64_t rdev, const Caller& caller) {
  RETURN_IF_ERROR(CheckName(name));
  if (type == FileType::kSymlink) {
    return InvalidArgumentError("a symlink is made with MakeSymlink, which takes its target");
  }
  if (type != FileType::kCharDevice && type != FileType::kBlockDevice) rdev = 0;
  const int64_t now = NowNs();
  InodeRecord out;
  RETURN_IF_ERROR(Write(
      [&](FileTreeTransaction& tx) -> Status {
        ASSIGN_OR_RETURN(InodeRecord dir, LoadDirectory(tx, parent));
        RETURN_IF_ERROR(NotInTrash(dir));
        RETURN_IF_ERROR(NotReserved(parent, name));
        ASSIGN_OR_RETURN(std::optional<DentryRecord> taken, tx.GetDentry(parent, name));
        if (taken) return AlreadyExistsError(Describe(parent, name) + " exists");
        const bool is_dir = type == FileType::kDirectory;
        if (is_dir && dir.nlink >= kMaxHardLinks) {
          return Fail(StatusCode::kFailedPrecondition, ErrorReason::kTooManyLinks,
                      "directory " + std::to_string(parent) + " holds too many directories");
        }
        InodeRecord inode;
        ASSIGN_OR_RETURN(inode.ino, tx.NewInodeNumber());
        inode.type = type;
        inode.mode = mode & 07777;
        inode.uid = caller.uid;
        inode.gid = caller.gid;
        // A setgid directory hands its group down, and its setgid bit to subdirectories.
        if (dir.mode & 02000) {
          inode.gid = dir.gid;
          if (is_dir) inode.mode |= 02000;
        }
        inode.nlink = is_dir ? 2 : 1;
        inode.atime_ns = inode.mtime_ns = inode.ctime_ns = inode.btime_ns = now;
        inode.rdev = rdev;
        inode.parent = is_dir ? parent : 0;
        ASSIGN_OR_RETURN(inode.change, tx.PutInode(inode));
        RETURN_IF_ERROR(tx.PutDentry(DentryRecord{parent, std::string(name), inode.ino, type}));
        RETURN_IF_ERROR(Touch(tx, dir, now, is_dir ? 1 : 0));
        out = std::move(inode);
        return OkStatus();
      },
      ToMs(now)));
  NoteName(out, parent, name);
  return out;
}

Result<InodeRecord> FileSystem::MakeSymlink(uint64_t parent, std::string_view name,
                                            std::string_view target, const Caller& caller) {
  RETURN_IF_ERROR(CheckName(name));
  if (target.empty()) return InvalidArgumentError("a symlink needs a target");
  if (target.size() > kMaxSymlinkBytes || target.find('\0') != std::string_view::npos) {
    return Fail(StatusCode::kInvalidArgument, ErrorReason::kNameTooLong,
                "a symlink target of " + std::to_string(target.size()) +
                    " bytes is over the limit of " + std::to_string(kMaxSymlinkBytes) +
                    " or holds NUL");
  }
  const int64_t now = NowNs();
  InodeRecord out;
  RETURN_IF_ERROR(Write(
      [&](FileTreeTransaction& tx) -> Status {
        ASSIGN_OR_RETURN(InodeRecord dir, LoadDirectory(tx, parent));
        RETURN_IF_ERROR(NotInTrash(dir));
        RETURN_IF_ERROR(NotReserved(parent, name));
        ASSIGN_OR_RETURN(std::optional<DentryRecord> taken, tx.GetDentry(parent, name));
        if (taken) return AlreadyExistsError(Describe(parent, name) + " exists");
        InodeRecord inode;
        ASSIGN_OR_RETURN(inode.ino, tx.NewInodeNumber());
        inode.type = FileType::kSymlink;
        inode.mode = 0777;
        inode.uid = caller.uid;
        inode.gid = (dir.mode & 02000) ? dir.gid : caller.gid;
        inode.nlink = 1;
        inode.size = target.size();
        inode.atime_ns = inode.mtime_ns = inode.ctime_ns = inode.btime_ns = now;
        inode.symlink_target = std::string(target);
        ASSIGN_OR_RETURN(inode.change, tx.PutInode(inode));
        RETURN_IF_ERROR(
            tx.PutDentry(DentryRecord{parent, std::string(name), inode.ino, FileType::kSymlink}));
        RETURN_IF_ERROR(Touch(tx, dir, now, 0));
        out = std::move(inode);
        return OkStatus();
      },
      ToMs(now)));
  return out;
}

Result<InodeRecord> FileSystem::Link(uint64_t ino, uint64_t new_parent, std::string_view new_name) {
  RETURN_IF_ERROR(CheckName(new_name));
  const int64_t now = NowNs();
  InodeRecord out;
  RETURN_IF_ERROR(Write(
      [&](FileTreeTransaction& tx) -> Status {
        ASSIGN_OR_RETURN(InodeRecord inode, LoadInode(tx, ino));
        if (inode.type == FileType::kDirectory) {
          return Fail(StatusCode::kPermissionDenied, ErrorReason::kNotPermitted,
                      "inode " + std::to_string(ino) + " is a directory; it cannot be linked");
        }
        if (inode.nlink == 0 || InTrashFile(inode)) {  // unlinked (linkat of an open file)
          return NotFoundError("inode " + std::to_string(ino) + " has no name left to link");
        }
        if (inode.nlink >= kMaxHardLinks) {
          return Fail(StatusCode::kFailedPrecondition, ErrorReason::kTooManyLinks,
                      "inode " + std::to_string(ino) + " has " + std::to_string(inode.nlink) +
                          " links already");
        }
        ASSIGN_OR_RETURN(InodeRecord dir, LoadDirectory(tx, new_parent));
        RETURN_IF_ERROR(NotInTrash(dir));
        RETURN_IF_ERROR(NotReserved(new_parent, new_name));
        ASSIGN_OR_RETURN(std::optional<DentryRecord> taken, tx.GetDentry(new_parent, new_name));
        if (taken) return AlreadyExistsError(Describe(new_parent, new_name) + " exists");
        inode.nlink += 1;
        inode.ctime_ns = now;
        ASSIGN_OR_RETURN(inode.change, tx.PutInode(inode));
        RETURN_IF_ERROR(
            tx.PutDentry(DentryRecord{new_parent, std::string(new_name), ino, inode.type}));
        RETURN_IF_ERROR(Touch(tx, dir, now, 0));
        out = std::move(inode);
        return OkStatus();
      },
      ToMs(now)));
  NoteName(out, new_parent, new_name);
  return out;
}

Status FileSystem::Unlink(uint64_t parent, std::string_view name) {
  RETURN_IF_ERROR(CheckName(name));
  RETURN_IF_ERROR(NotReserved(parent, name));
  const int64_t now = NowNs();
  return Write(
      [&](FileTreeTransaction& tx) -> Status {
        ASSIGN_OR_RETURN(InodeRecord dir, LoadDirectory(tx, parent));
        ASSIGN_OR_RETURN(Named named, LoadNamed(tx, parent, name));
        InodeRecord& inode = named.inode;
        if (inode.type == FileType::kDirectory) {
          return Fail(StatusCode::kFailedPrecondition, ErrorReason::kIsADirectory,
                      Describe(parent, name) + " is a directory; remove it with rmdir");
        }
        RETURN_IF_ERROR(tx.DeleteDentry(parent, name));
        ASSIGN_OR_RETURN(bool to_trash, GoesToTrash(tx, dir, inode));
        if (to_trash) {
          ASSIGN_OR_RETURN(bool made_trash, MoveToTrash(tx, inode, parent, name, now));
          // The trash's first use touches the root, which may be `dir`.
          if (made_trash) {
            ASSIGN_OR_RETURN(dir, LoadInode(tx, parent));
          }
        } else {
          RETURN_IF_ERROR(DropLink(tx, inode, now, IsOpen(inode.ino), options_.session));
        }
        return Touch(tx, dir, now, 0);
      },
      ToMs(now), /*frees=*/true);
}

Status FileSystem::RemoveDirectory(uint64_t parent, std::string_view name) {
  if (name == ".") return InvalidArgumentError("rmdir of '.' is not allowed");
  if (name == "..") {
    return Fail(StatusCode::kFailedPrecondition, ErrorReason::kDirectoryNotEmpty,
                "rmdir of '..': the parent is not empty");
  }
  RETURN_IF_ERROR(CheckName(name));
  RETURN_IF_ERROR(NotReserved(parent, name));
  const int64_t now = NowNs();
  return Write(
      [&](FileTreeTransaction& tx) -> Status {
        ASSIGN_OR_RETURN(InodeRecord dir, LoadDirectory(tx, parent));
        ASSIGN_OR_RETURN(Named named, LoadNamed(tx, parent, name));
        InodeRecord& inode = named.inode;
        if (inode.type != FileType::kDirectory) {
          return Fail(StatusCode::kFailedPrecondition, ErrorReason::kNotADirectory,
                      Describe(parent, name) + " is not a directory");
        }
        RETURN_IF_ERROR(NotEmpty(tx, inode.ino));
        RETURN_IF_ERROR(tx.DeleteDentry(parent, name));
        RETURN_IF_ERROR(DropLink(tx, inode, now, IsOpen(inode.ino), options_.session));
        return Touch(tx, dir, now, -1);
      },
      ToMs(now), /*frees=*/true);
}

Status FileSystem::Rename(uint64_t parent, std::string_view name, uint64_t new_parent,
                          std::string_view new_name, uint32_t flags) {
  if ((flags & ~uint32_t{kRenameNoReplace | kRenameExchange}) != 0 ||
      flags == (kRenameNoReplace | kRenameExchange)) {
    return InvalidArgumentError("rename flags " + std::to_string(flags) +
                                " are not supported (RENAME_NOREPLACE or RENAME_EXCHANGE)");
  }
  RETURN_IF_ERROR(CheckName(name));
  RETURN_IF_ERROR(CheckName(new_name));
  RETURN_IF_ERROR(NotReserved(parent, name));
  RETURN_IF_ERROR(NotReserved(new_parent, new_name));
  const int64_t now = NowNs();
  InodeRecord renamed;  // the file that took the new name
  Status status = Write(
      [&](FileTreeTransaction& tx) -> Status {
        ASSIGN_OR_RETURN(InodeRecord from_dir, LoadDirectory(tx, parent));
        ASSIGN_OR_RETURN(DentryRecord source, LoadEntry(tx, parent, name));
        ASSIGN_OR_RETURN(InodeRecord to_dir, LoadDirectory(tx, new_parent));
        // Out of the trash is a restore; into it (or a swap with it) is refused.
        RETURN_IF_ERROR(NotInTrash(to_dir));
        if (flags & kRenameExchange) RETURN_IF_ERROR(NotInTrash(from_dir));
        ASSIGN_OR_RETURN(std::optional<DentryRecord> target, tx.GetDentry(new_parent, new_name));
        ASSIGN_OR_RETURN(InodeRecord moved, LoadInode(tx, source.ino));
        const bool same_dir = parent == new_parent;
        const bool moved_is_dir = moved.type == FileType::kDirectory;
        if (same_dir && name == new_name) return OkStatus();
        // A directory may not move into itself or below itself.
        if (moved_is_dir && !same_dir) {
          ASSIGN_OR_RETURN(bool inside, IsWithin(tx, new_parent, moved.ino));
          if (inside) {
            return InvalidArgumentError("directory " + Describe(parent, name) +
                                        " cannot move into its own subtree");
          }
        }

        if (flags & kRenameExchange) {
          if (!target) return NoEntryError(new_parent, new_name);
          ASSIGN_OR_RETURN(InodeRecord other, LoadInode(tx, target->ino));
          const bool other_is_dir = other.type == FileType::kDirectory;
          if (other_is_dir && !same_dir) {
            ASSIGN_OR_RETURN(bool inside, IsWithin(tx, parent, other.ino));
            if (inside) {
              return InvalidArgumentError("directory " + Describe(new_parent, new_name) +
                                          " cannot move into its own subtree");
            }
          }
          RETURN_IF_ERROR(
              tx.PutDentry(DentryRecord{parent, std::string(name), other.ino, other.type}));
          RETURN_IF_ERROR(
              tx.PutDentry(DentryRecord{new_parent, std::string(new_name), moved.ino, moved.type}));
          if (moved.ino == other.ino) return OkStatus();  // two names of one file swap
          moved.ctime_ns = other.ctime_ns = now;
          if (moved_is_dir) moved.parent = new_parent;
          if (other_is_dir) other.parent = parent;
          RETURN_IF_ERROR(tx.PutInode(moved).status());
          RETURN_IF_ERROR(tx.PutInode(other).status());
          if (same_dir) return Touch(tx, from_dir, now, 0);
          const int shift = (moved_is_dir ? 1 : 0) - (other_is_dir ? 1 : 0);
          RETURN_IF_ERROR(Touch(tx, from_dir, now, -shift));
          return Touch(tx, to_dir, now, shift);
        }

        int to_dir_subdirs = 0;
        if (target) {
          if (flags & kRenameNoReplace) {
            return AlreadyExistsError(Describe(new_parent, new_name) + " exists");
          }
          // Two names of the same file: rename(2) does nothing and succeeds.
          if (target->ino == moved.ino) return OkStatus();
          ASSIGN_OR_RETURN(InodeRecord replaced, LoadInode(tx, target->ino));
          const bool replaced_is_dir = replaced.type == FileType::kDirectory;
          if (moved_is_dir && !replaced_is_dir) {
            return Fail(StatusCode::kFailedPrecondition, ErrorReason::kNotADirectory,
                        Describe(new_parent, new_name) +
                            " is not a directory; a directory cannot replace it");
          }
          if (!moved_is_dir && replaced_is_dir) {
            return Fail(StatusCode::kFailedPrecondition, ErrorReason::kIsADirectory,
                        Describe(new_parent, new_name) +
                            " is a directory; only a directory can replace it");
          }
          if (replaced_is_dir) {
            RETURN_IF_ERROR(NotEmpty(tx, replaced.ino));
            to_dir_subdirs -= 1;
          }
          ASSIGN_OR_RETURN(bool to_trash, GoesToTrash(tx, to_dir, replaced));
          if (to_trash) {
            RETURN_IF_ERROR(tx.DeleteDentry(new_parent, new_name));
            RETURN_IF_ERROR(MoveToTrash(tx, replaced, new_parent, new_name, now).status());
          } else {
            RETURN_IF_ERROR(DropLink(tx, replaced, now, IsOpen(replaced.ino), options_.session));
          }
        }
        RETURN_IF_ERROR(tx.DeleteDentry(parent, name));
        RETURN_IF_ERROR(
            tx.PutDentry(DentryRecord{new_parent, std::string(new_name), moved.ino, moved.type}));
        moved.ctime_ns = now;
        moved.parent = moved_is_dir ? new_parent : 0;  // out of the trash: a file again
        RETURN_IF_ERROR(tx.PutInode(moved).status());
        renamed = moved;
        // Read again: the trash's first use touches the root, which may be either directory.
        ASSIGN_OR_RETURN(from_dir, LoadInode(tx, parent));
        ASSIGN_OR_RETURN(to_dir, LoadInode(tx, new_parent));
        if (same_dir) return Touch(tx, from_dir, now, to_dir_subdirs);
        RETURN_IF_ERROR(Touch(tx, from_dir, now, moved_is_dir ? -1 : 0));
        return Touch(tx, to_dir, now, to_dir_subdirs + (moved_is_dir ? 1 : 0));
      },
      ToMs(now), /*frees=*/true);
  if (status.ok() && renamed.ino != 0) NoteName(renamed, new_parent, new_name);
  return status;
}

Result<InodeRecord> FileSystem::SetAttr(uint64_t ino, const AttrChange& change) {
  const int64_t now = NowNs();
  std::optional<NameHint> hint;
  if (change.size) hint = NameOf(ino);
  InodeRecord out;
  RETURN_IF_ERROR(Write(
      [&](FileTreeTransaction& tx) -> Status {
        ASSIGN_OR_RETURN(InodeRecord inode, LoadInode(tx, ino));
        if (change.mode) inode.mode = *change.mode & 07777;
        if (change.uid) inode.uid = *change.uid;
        if (change.gid) inode.gid = *change.gid;
        if (change.size) {
          const uint64_t size = *change.size;
          if (inode.type == FileType::kDirectory) {
            return Fail(StatusCode::kFailedPrecondition, ErrorReason::kIsADirectory,
                        "inode " + std::to_string(ino) + " is a directory; it has no size to set");
          }
          if (inode.type != FileType::kRegular) {
            return InvalidArgumentError("inode " + std::to_string(ino) +
                                        " is not a regular file; it has no size to set");
          }
          if (size > kMaxFileSizeBytes) {
            return Fail(StatusCode::kOutOfRange, ErrorReason::kFileTooLarge,
                        "size " + std::to_string(size) + " is over the largest file size " +
                            std::to_string(kMaxFileSizeBytes));
          }
          if (size < inode.size) {
            RETURN_IF_ERROR(KeepVersionInTrash(tx, inode, hint ? hint->parent : 0,
                                               hint ? std::string_view(hint->name) : "", now));
            const uint64_t cut = size % kBlockBytes;
            const uint64_t whole = size / kBlockBytes;
            RETURN_IF_ERROR(tx.DropBlocks(ino, cut == 0 ? whole : whole + 1));
            if (cut != 0) {
              ASSIGN_OR_RETURN(std::vector<meta::BlockRecord> boundary,
                               tx.GetBlocks(ino, whole, 1));
              if (!boundary.empty() && boundary[0].chunk.chunk.size_bytes > cut) {
                const auto& trimmed = change.boundary_block;
                if (!trimmed || trimmed->index != whole || trimmed->chunk.chunk.size_bytes != cut) {
                  return InternalError("truncating inode " + std::to_string(ino) + " to " +
                                       std::to_string(size) +
                                       " cuts a stored block, and no trimmed block was given");
                }
                RETURN_IF_ERROR(tx.PutBlock(ino, *trimmed));
              }
            }
          }
          if (size != inode.size) inode.mtime_ns = now;
          inode.size = size;
        }
        if (change.atime_ns) inode.atime_ns = *change.atime_ns;
        if (change.mtime_ns) inode.mtime_ns = *change.mtime_ns;
        inode.ctime_ns = change.ctime_ns ? *change.ctime_ns : now;
        ASSIGN_OR_RETURN(inode.change, tx.PutInode(inode));
        out = std::move(inode);
        return OkStatus();
      },
      ToMs(now), /*frees=*/true));
  return out;
}

Result<std::string> FileSystem::ReadLink(uint64_t ino) {
  ASSIGN_OR_RETURN(InodeRecord inode, GetAttr(ino));
  if (inode.type != FileType::kSymlink) {
    return InvalidArgumentError("inode " + std::to_string(ino) + " is not a symlink");
  }
  return inode.symlink_target;
}

Result<std::vector<DentryRecord>> FileSystem::ReadDirectory(uint64_t ino, std::string_view after,
                                                            uint32_t limit) {
  std::vector<DentryRecord> out;
  RETURN_IF_ERROR(tree_->ReadBrief([&](FileTreeTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(InodeRecord dir, LoadInode(tx, ino));
    if (dir.type != FileType::kDirectory) {
      return Fail(StatusCode::kFailedPrecondition, ErrorReason::kNotADirectory,
                  "inode " + std::to_string(ino) + " is not a directory");
    }
    ASSIGN_OR_RETURN(out, tx.ListDentries(ino, after, limit));
    return OkStatus();
  }));
  return out;
}

namespace {

Status CheckXattrName(std::string_view name) {
  if (name.empty()) return InvalidArgumentError("an extended attribute needs a name");
  if (name.size() > kMaxXattrNameBytes) {
    return Status(StatusCode::kOutOfRange, ErrorReason::kNameTooLong,
                  "an extended attribute name of " + std::to_string(name.size()) +
                      " bytes is over the limit of " + std::to_string(kMaxXattrNameBytes));
  }
  if (name.find('\0') != std::string_view::npos) {
    return InvalidArgumentError("an extended attribute name holds NUL");
  }
  return OkStatus();
}

Status NoAttribute(uint64_t ino, std::string_view name) {
  return Fail(
      StatusCode::kNotFound, ErrorReason::kNoSuchAttribute,
      "inode " + std::to_string(ino) + " has no extended attribute " + QuoteForMessage(name));
}

}  // namespace

Result<std::string> FileSystem::GetXattr(uint64_t ino, std::string_view name) {
  RETURN_IF_ERROR(CheckXattrName(name));
  std::string out;
  RETURN_IF_ERROR(tree_->ReadBrief([&](FileTreeTransaction& tx) -> Status {
    RETURN_IF_ERROR(LoadInode(tx, ino).status());
    ASSIGN_OR_RETURN(std::optional<std::string> value, tx.GetXattr(ino, name));
    if (!value) return NoAttribute(ino, name);
    out = std::move(*value);
    return OkStatus();
  }));
  return out;
}

Status FileSystem::SetXattr(uint64_t ino, std::string_view name, std::string_view value,
                            uint32_t flags) {
  RETURN_IF_ERROR(CheckXattrName(name));
  if ((flags & ~uint32_t{kXattrCreate | kXattrReplace}) != 0) {
    return InvalidArgumentError("setxattr flags " + std::to_string(flags) + " are not supported");
  }
  if (value.size() > kMaxXattrValueBytes) {
    return Fail(StatusCode::kPayloadTooLarge, ErrorReason::kValueTooLarge,
                "an extended attribute value of " + std::to_string(value.size()) +
                    " bytes is over the limit of " + std::to_string(kMaxXattrValueBytes));
  }
  const int64_t now = NowNs();
  return Write(
      [&](FileTreeTransaction& tx) -> Status {
        ASSIGN_OR_RETURN(InodeRecord inode, LoadInode(tx, ino));
        ASSIGN_OR_RETURN(std::optional<std::string> old, tx.GetXattr(ino, name));
        if (old && (flags & kXattrCreate)) {
          return AlreadyExistsError("inode " + std::to_string(ino) + " has extended attribute " +
                                    QuoteForMessage(name) + " already");
        }
        if (!old && (flags & kXattrReplace)) return NoAttribute(ino, name);
        RETURN_IF_ERROR(tx.PutXattr(ino, name, value));
        inode.ctime_ns = now;
        return tx.PutInode(inode).status();
      },
      ToMs(now));
}

Result<std::vector<std::string>> FileSystem::ListXattrs(uint64_t ino) {
  std::vector<std::string> out;
  RETURN_IF_ERROR(tree_->ReadBrief([&](FileTreeTransaction& tx) -> Status {
    RETURN_IF_ERROR(LoadInode(tx, ino).status());
    ASSIGN_OR_RETURN(out, tx.ListXattrs(ino));
    return OkStatus();
  }));
  return out;
}

Status FileSystem::RemoveXattr(uint64_t ino, std::string_view name) {
  RETURN_IF_ERROR(CheckXattrName(name));
  const int64_t now = NowNs();
  return Write(
      [&](FileTreeTransaction& tx) -> Status {
        ASSIGN_OR_RETURN(InodeRecord inode, LoadInode(tx, ino));
        ASSIGN_OR_RETURN(std::optional<std::string> old, tx.GetXattr(ino, name));
        if (!old) return NoAttribute(ino, name);
        RETURN_IF_ERROR(tx.DeleteXattr(ino, name));
        inode.ctime_ns = now;
        return tx.PutInode(inode).status();
      },
      ToMs(now), /*frees=*/true);
}

Result<std::vector<meta::BlockRecord>> FileSystem::GetBlocks(uint64_t ino, uint64_t first,
                                                             uint64_t count) {
  std::vector<meta::BlockRecord> out;
  RETURN_IF_ERROR(tree_->ReadBrief([&](FileTreeTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(out, tx.GetBlocks(ino, first, count));
    return OkStatus();
  }));
  return out;
}

Status FileSystem::WriteUnrecorded(const std::function<Status(FileTreeTransaction&)>& body,
                                   TimestampMs now_ms) {
  if (options_.relaxed_commits) relaxed_commits_.fetch_add(1);
  return options_.relaxed_commits ? tree_->WriteRelaxed(body, now_ms) : tree_->Write(body, now_ms);
}

Status FileSystem::AddStaging(const meta::ChunkOwner& owner, uint64_t seq,
                              const meta::OwnerChunk& chunk) {
  return WriteUnrecorded(
      [&](FileTreeTransaction& tx) { return tx.AddOwnerEntry(owner, seq, chunk); }, ToMs(NowNs()));
}

Status FileSystem::DropStaging(const meta::ChunkOwner& owner, const std::vector<uint64_t>& seqs) {
  if (seqs.empty()) return OkStatus();
  return WriteUnrecorded([&](FileTreeTransaction& tx) { return tx.DropOwnerEntries(owner, seqs); },
                         ToMs(NowNs()));
}

Result<InodeRecord> FileSystem::CommitWrite(uint64_t ino,
                                            const std::vector<meta::BlockRecord>& blocks,
                                            uint64_t min_size, const StagingUpdate* staging) {
  if (min_size > kMaxFileSizeBytes) {
    return Fail(StatusCode::kOutOfRange, ErrorReason::kFileTooLarge,
                "size " + std::to_string(min_size) + " is over the largest file size " +
                    std::to_string(kMaxFileSizeBytes));
  }
  for (const meta::BlockRecord& block : blocks) {
    if (block.chunk.chunk.size_bytes == 0 || block.chunk.chunk.size_bytes > kBlockBytes) {
      return InvalidArgumentError("block " + std::to_string(block.index) + " of inode " +
                                  std::to_string(ino) + " has " +
                                  std::to_string(block.chunk.chunk.size_bytes) +
                                  " bytes; a block holds 1.." + std::to_string(kBlockBytes));
    }
  }
  const int64_t now = NowNs();
  InodeRecord out;
  RETURN_IF_ERROR(Write(
      [&](FileTreeTransaction& tx) -> Status {
        ASSIGN_OR_RETURN(InodeRecord inode, LoadInode(tx, ino));
        if (inode.type != FileType::kRegular) {
          return Fail(StatusCode::kFailedPrecondition, ErrorReason::kIsADirectory,
                      "inode " + std::to_string(ino) + " is not a regular file");
        }
        for (const meta::BlockRecord& block : blocks) RETURN_IF_ERROR(tx.PutBlock(ino, block));
        // The block rows hold the references now: the staging owner lets go in the same commit.
        if (staging != nullptr && !staging->drop.empty()) {
          RETURN_IF_ERROR(tx.DropOwnerEntries(staging->owner, staging->drop));
        }
        inode.size = std::max(inode.size, min_size);
        inode.mtime_ns = inode.ctime_ns = now;
        ASSIGN_OR_RETURN(inode.change, tx.PutInode(inode));
        out = std::move(inode);
        return OkStatus();
      },
      ToMs(now)));
  return out;
}

Status FileSystem::ReleaseOrphan(uint64_t ino) {
  {
    std::lock_guard<std::mutex> lock(orphans_mutex_);
    if (orphans_.count(ino) == 0) return OkStatus();  // never orphaned here: nothing to do
  }
  const int64_t now = NowNs();
  bool settled = false;  // let go, or no orphan any more
  RETURN_IF_ERROR(Write(
      [&](FileTreeTransaction& tx) -> Status {
        ASSIGN_OR_RETURN(std::optional<InodeRecord> inode, tx.GetInode(ino));
        settled = !inode || inode->nlink != 0;
        if (settled || IsOpen(ino)) return OkStatus();
        settled = true;
        return LetGo(tx, *inode, options_.session).status();
      },
      ToMs(now), /*frees=*/true));
  if (settled) {
    std::lock_guard<std::mutex> lock(orphans_mutex_);
    orphans_.erase(ino);
  }
  return OkStatus();
}

Result<bool> FileSystem::ClaimOrphan(uint64_t ino) {
  {
    std::lock_guard<std::mutex> lock(orphans_mutex_);
    if (orphans_.count(ino) != 0) return true;  // this session's already
  }
  bool held = false;
  RETURN_IF_ERROR(Write(
      [&](FileTreeTransaction& tx) -> Status {
        held = false;
        ASSIGN_OR_RETURN(std::optional<InodeRecord> inode, tx.GetInode(ino));
        if (!inode) return OkStatus();  // gone: deleted before this session held it
        if (inode->nlink != 0) {
          held = true;  // named again (restored, linked): nothing to claim
          return OkStatus();
        }
        ASSIGN_OR_RETURN(std::vector<meta::OrphanRecord> orphans, tx.ListOrphans());
        for (const meta::OrphanRecord& orphan : orphans) {
          if (orphan.ino != ino) continue;
          held = true;
          // Another session's claim stands: it lets go (pending again, a new change) when
          // it closes or dies, and this session claims it then.
          if (orphan.session != 0 && orphan.session != options_.session) return OkStatus();
          return tx.PutOrphan({ino, options_.session, 0});
        }
        // nlink 0 without a row: an orphan of a snapshot restored over the volume. Held
        // from now on by this session, which lets it go.
        held = true;
        return tx.PutOrphan({ino, options_.session, 0});
      },
      // A few bytes that keep a file's data from deletion: the engine's reserve may serve.
      ToMs(NowNs()), /*frees=*/true));
  return held;
}

Result<uint64_t> FileSystem::SweepPendingOrphans(uint64_t limit) {
  bool any = false;
  RETURN_IF_ERROR(tree_->ReadBrief([&](FileTreeTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(std::vector<meta::OrphanRecord> orphans, tx.ListOrphans());
    for (const meta::OrphanRecord& orphan : orphans) any = any || orphan.session == 0;
    return OkStatus();
  }));
  if (!any) return 0;                // the usual case: no write transaction
  constexpr uint64_t kBatch = 1000;  // deletes per transaction: each stays short
  uint64_t total = 0;
  while (total < limit) {
    uint64_t deleted = 0;
    const uint64_t room = std::min(kBatch, limit - total);
    RETURN_IF_ERROR(Write(
        [&](FileTreeTransaction& tx) -> Status {
          deleted = 0;
          ASSIGN_OR_RETURN(std::vector<meta::SessionRecord> sessions, tx.ListSessions());
          uint64_t seen = UINT64_MAX;  // no live session: nobody holds anything
          for (const meta::SessionRecord& session : sessions) {
            if (session.expires_ms >= tx.now_ms()) seen = std::min(seen, session.seen_seq);
          }
          ASSIGN_OR_RETURN(std::vector<meta::OrphanRecord> orphans, tx.ListOrphans());
          for (const meta::OrphanRecord& orphan : orphans) {
            if (deleted >= room) break;
            if (orphan.session != 0 || orphan.since_seq > seen) continue;
            ASSIGN_OR_RETURN(std::optional<InodeRecord> inode, tx.GetInode(orphan.ino));
            if (inode && inode->nlink == 0) {
              RETURN_IF_ERROR(tx.DeleteInode(orphan.ino));
              ++deleted;
            } else {
              RETURN_IF_ERROR(tx.DeleteOrphan(orphan.ino));
            }
          }
          return OkStatus();
        },
        ToMs(NowNs()), /*frees=*/true));
    total += deleted;
    if (deleted < room) break;
  }
  return total;
}

namespace {

bool Overlaps(const meta::LockRecord& lock, uint64_t start, uint64_t end) {
  return lock.start <= end && start <= lock.end;
}

bool Conflicts(const meta::LockRecord& held, uint64_t session, const LockRequest& request) {
  if (held.kind != request.kind) return false;  // fcntl and flock locks ignore each other
  if (held.session == session && held.owner == request.owner) return false;
  if (!held.exclusive && request.type != LockRequest::kWrite) return false;
  return Overlaps(held, request.start, request.end);
}

Status CheckLockRange(uint64_t ino, const LockRequest& request) {
  if (request.start > request.end || request.end > kLockEnd) {
    return InvalidArgumentError("lock range " + std::to_string(request.start) + ".." +
                                std::to_string(request.end) + " of inode " + std::to_string(ino) +
                                " is not valid");
  }
  return OkStatus();
}

}  // namespace

Result<std::optional<meta::LockRecord>> FileSystem::TestLock(uint64_t ino,
                                                             const LockRequest& request) {
  RETURN_IF_ERROR(CheckLockRange(ino, request));
  std::optional<meta::LockRecord> out;
  RETURN_IF_ERROR(tree_->Read([&](FileTreeTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(std::vector<meta::LockRecord> held, tx.ListLocks(ino));
    for (const meta::LockRecord& lock : held) {
      if (Conflicts(lock, options_.session, request)) {
        out = lock;
        break;
      }
    }
    return OkStatus();
  }));
  return out;
}

Status FileSystem::SetLock(uint64_t ino, const LockRequest& request) {
  RETURN_IF_ERROR(CheckLockRange(ino, request));
  if (request.type != LockRequest::kUnlock) {
    // Before the transaction: a lock it takes is always known here (an entry whose
    // transaction failed costs one needless release transaction, nothing else).
    std::lock_guard<std::mutex> lock(locked_mutex_);
    locked_.insert(ino);
  }
  const int64_t now = NowNs();
  return tree_->Write(
      [&](FileTreeTransaction& tx) -> Status {
        ASSIGN_OR_RETURN(std::vector<meta::LockRecord> held, tx.ListLocks(ino));
        std::vector<meta::LockRecord> mine;
        for (const meta::LockRecord& lock : held) {
          if (request.type != LockRequest::kUnlock && Conflicts(lock, options_.session, request)) {
            return Status(StatusCode::kUnavailable, ErrorReason::kLockConflict,
                          "inode " + std::to_string(ino) + " bytes " + std::to_string(lock.start) +
                              ".." + std::to_string(lock.end) + " are locked by process " +
                              std::to_string(lock.pid) + " of session " +
                              std::to_string(lock.session));
          }
          if (lock.session == options_.session && lock.owner == request.owner &&
              lock.kind == request.kind) {
            mine.push_back(lock);
          }
        }
        // The owner's locks outside the request's range stay (split where it cuts them);
        // the range itself takes the new type, merged with touching locks of that type.
        std::vector<meta::LockRecord> next;
        for (const meta::LockRecord& lock : mine) {
          if (!Overlaps(lock, request.start, request.end)) {
            next.push_back(lock);
            continue;
          }
          if (lock.start < request.start) {
            meta::LockRecord left = lock;
            left.end = request.start - 1;
            next.push_back(left);
          }
          if (lock.end > request.end) {
            meta::LockRecord right = lock;
            right.start = request.end + 1;
            next.push_back(right);
          }
        }
        if (request.type != LockRequest::kUnlock) {
          meta::LockRecord lock;
          lock.ino = ino;
          lock.session = options_.session;
          lock.owner = request.owner;
          lock.kind = request.kind;
          lock.exclusive = request.type == LockRequest::kWrite;
          lock.start = request.start;
          lock.end = request.end;
          lock.pid = request.pid;
          std::vector<meta::LockRecord> merged;
          for (const meta::LockRecord& other : next) {
            const bool touches = other.end + 1 >= lock.start && lock.end + 1 >= other.start;
            if (other.exclusive == lock.exclusive && touches) {
              lock.start = std::min(lock.start, other.start);
              lock.end = std::max(lock.end, other.end);
            } else {
              merged.push_back(other);
            }
          }
          merged.push_back(lock);
          next = std::move(merged);
        }
        if (next == mine) return OkStatus();
        return tx.SetLocks(ino, options_.session, request.owner, request.kind, next);
      },
      ToMs(now));
}

Status FileSystem::ReleaseLocks(uint64_t ino, uint64_t owner, meta::LockKind kind) {
  {
    std::lock_guard<std::mutex> lock(locked_mutex_);
    if (locked_.count(ino) == 0) return OkStatus();  // this session never locked it
  }
  const int64_t now = NowNs();
  return tree_->Write(
      [&](FileTreeTransaction& tx) -> Status {
        ASSIGN_OR_RETURN(std::vector<meta::LockRecord> held, tx.ListLocks(ino));
        for (const meta::LockRecord& lock : held) {
          if (lock.session == options_.session && lock.owner == owner && lock.kind == kind) {
            return tx.SetLocks(ino, options_.session, owner, kind, {});
          }
        }
        return OkStatus();
      },
      ToMs(now));
}

namespace {

// Splits "<parent>-<ino>-<name>"; false for a name of another shape.
bool ParseTrashName(std::string_view entry, uint64_t* parent, uint64_t* ino, std::string* name) {
  const size_t first = entry.find('-');
  if (first == std::string_view::npos || first == 0) return false;
  const size_t second = entry.find('-', first + 1);
  if (second == std::string_view::npos || second == first + 1) return false;
  auto number = [](std::string_view digits, uint64_t* out) {
    if (digits.size() > 19) return false;
    uint64_t value = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return false;
      value = value * 10 + static_cast<uint64_t>(c - '0');
    }
    *out = value;
    return true;
  };
  if (!number(entry.substr(0, first), parent)) return false;
  if (!number(entry.substr(first + 1, second - first - 1), ino)) return false;
  *name = std::string(entry.substr(second + 1));
  return !name->empty();
}

}  // namespace

Status FileSystem::VisitTrash(const std::function<Status(const TrashEntry&)>& visit,
                              uint32_t page) {
  if (page == 0) return InvalidArgumentError("a page of the trash holds at least one entry");
  const uint32_t kHoursPerRead = page;
  const uint32_t kEntriesPerRead = page;
  std::string after_hour;
  for (;;) {
    std::vector<DentryRecord> hours;
    RETURN_IF_ERROR(tree_->Read([&](FileTreeTransaction& tx) -> Status {
      ASSIGN_OR_RETURN(hours, tx.ListDentries(kTrashInode, after_hour, kHoursPerRead));
      return OkStatus();
    }));
    for (const DentryRecord& hour : hours) {
      std::string after;
      for (;;) {
        // One page per read: the entries are visited outside the transaction.
        std::vector<TrashEntry> page;
        size_t listed = 0;
        RETURN_IF_ERROR(tree_->Read([&](FileTreeTransaction& tx) -> Status {
          page.clear();
          ASSIGN_OR_RETURN(std::vector<DentryRecord> entries,
                           tx.ListDentries(hour.ino, after, kEntriesPerRead));
          listed = entries.size();
          if (!entries.empty()) after = entries.back().name;
          for (const DentryRecord& entry : entries) {
            TrashEntry item;
            item.hour = hour.name;
            item.name = entry.name;
            ASSIGN_OR_RETURN(item.inode, LoadInode(tx, entry.ino));
            uint64_t ino = 0;
            if (ParseTrashName(entry.name, &item.original_parent, &ino, &item.original_name)) {
              item.name_cut = entry.name.size() >= meta::kMaxFileNameBytes;
            }
            page.push_back(std::move(item));
          }
          return OkStatus();
        }));
        for (const TrashEntry& item : page) RETURN_IF_ERROR(visit(item));
        if (listed < kEntriesPerRead) break;
      }
    }
    if (hours.size() < kHoursPerRead) break;
    after_hour = hours.back().name;
  }
  return OkStatus();
}

Result<std::vector<TrashEntry>> FileSystem::ListTrash() {
  std::vector<TrashEntry> out;
  RETURN_IF_ERROR(VisitTrash([&](const TrashEntry& entry) {
    out.push_back(entry);
    return OkStatus();
  }));
  return out;
}

Status FileSystem::RestoreFromTrash(std::string_view hour, std::string_view name,
                                    uint64_t to_parent, std::string_view to_name) {
  uint64_t parent = 0;
  uint64_t ino = 0;
  std::string original;
  if (!ParseTrashName(name, &parent, &ino, &original)) {
    return InvalidArgumentError(QuoteForMessage(name) + " is not a trash entry's name");
  }
  if (name.size() >= meta::kMaxFileNameBytes && to_name.empty()) {
    return InvalidArgumentError("the name of trash entry " + QuoteForMessage(name) +
                                " was cut to 255 bytes: give the name to restore it as");
  }
  if (to_parent != 0) parent = to_parent;
  const std::string target = to_name.empty() ? original : std::string(to_name);
  RETURN_IF_ERROR(CheckName(target));
  RETURN_IF_ERROR(NotReserved(parent, target));
  const int64_t now = NowNs();
  return Write(
      [&](FileTreeTransaction& tx) -> Status {
        ASSIGN_OR_RETURN(DentryRecord hour_entry, LoadEntry(tx, kTrashInode, hour));
        ASSIGN_OR_RETURN(DentryRecord entry, LoadEntry(tx, hour_entry.ino, name));
        ASSIGN_OR_RETURN(std::optional<InodeRecord> dir, tx.GetInode(parent));
        if (!dir || dir->nlink == 0) {
          return NotFoundError("directory " + std::to_string(parent) + " of trash entry " +
                               QuoteForMessage(name) +
                               " no longer exists: give a directory to restore it into");
        }
        ASSIGN_OR_RETURN(InodeRecord to_dir, LoadDirectory(tx, parent));
        RETURN_IF_ERROR(NotInTrash(to_dir));
        ASSIGN_OR_RETURN(std::optional<DentryRecord> taken, tx.GetDentry(parent, target));
        if (taken) return AlreadyExistsError(Describe(parent, target) + " exists");
        RETURN_IF_ERROR(tx.DeleteDentry(hour_entry.ino, name));
        RETURN_IF_ERROR(tx.PutDentry(DentryRecord{parent, target, entry.ino, entry.type}));
        ASSIGN_OR_RETURN(InodeRecord inode, LoadInode(tx, entry.ino));
        inode.ctime_ns = now;
        if (inode.type != FileType::kDirectory) inode.parent = 0;
        RETURN_IF_ERROR(tx.PutInode(inode).status());
        ASSIGN_OR_RETURN(InodeRecord hour_dir, LoadInode(tx, hour_entry.ino));
        RETURN_IF_ERROR(Touch(tx, hour_dir, now, 0));
        return Touch(tx, to_dir, now, 0);
      },
      ToMs(now));
}

Result<uint32_t> FileSystem::SetTrashDays(uint32_t days) {
  if (days > kMaxTrashDays) {
    return InvalidArgumentError("trash days " + std::to_string(days) + " is over the limit of " +
                                std::to_string(kMaxTrashDays));
  }
  uint32_t before = 0;
  RETURN_IF_ERROR(tree_->Write(
      [&](FileTreeTransaction& tx) -> Status {
        ASSIGN_OR_RETURN(meta::VolumeRecord volume, tx.volume());
        before = volume.trash_days;
        return tx.SetTrashDays(days);
      },
      ToMs(NowNs())));
  return before;
}

Result<uint64_t> FileSystem::PurgeTrash(int64_t before_ns, uint64_t limit) {
  constexpr uint32_t kBatch = 256;  // entries per transaction: each stays short
  uint64_t purged = 0;
  while (purged < limit) {
    const int64_t now = NowNs();
    uint64_t batch = 0;
    bool done = true;
    RETURN_IF_ERROR(Write(
        [&](FileTreeTransaction& tx) -> Status {
          batch = 0;
          done = true;
          ASSIGN_OR_RETURN(std::vector<DentryRecord> hours, tx.ListDentries(kTrashInode, "", 4096));
          for (const DentryRecord& hour : hours) {
            const std::optional<int64_t> start = HourStartNs(hour.name);
            // An hour is over once its last ns passed; a name that is no hour stays.
            if (!start || *start + int64_t{3600} * 1'000'000'000 > before_ns) continue;
            const uint32_t room =
                static_cast<uint32_t>(std::min<uint64_t>(kBatch - batch, limit - purged - batch));
            ASSIGN_OR_RETURN(std::vector<DentryRecord> entries,
                             tx.ListDentries(hour.ino, "", room + 1));
            const bool emptied = entries.size() <= room;
            if (!emptied) entries.resize(room);
            for (const DentryRecord& entry : entries) {
              ASSIGN_OR_RETURN(InodeRecord inode, LoadInode(tx, entry.ino));
              RETURN_IF_ERROR(tx.DeleteDentry(hour.ino, entry.name));
              if (inode.type == FileType::kDirectory) {  // put there by hand: must be empty
                RETURN_IF_ERROR(NotEmpty(tx, inode.ino));
                ASSIGN_OR_RETURN(InodeRecord hour_dir, LoadInode(tx, hour.ino));
                RETURN_IF_ERROR(Touch(tx, hour_dir, now, -1));
              }
              RETURN_IF_ERROR(DropLink(tx, inode, now, IsOpen(inode.ino), options_.session));
              ++batch;
            }
            if (!emptied) {
              done = false;
              break;
            }
            RETURN_IF_ERROR(tx.DeleteDentry(kTrashInode, hour.name));
            ASSIGN_OR_RETURN(InodeRecord hour_dir, LoadInode(tx, hour.ino));
            RETURN_IF_ERROR(DropLink(tx, hour_dir, now, false, options_.session));
            ASSIGN_OR_RETURN(InodeRecord trash, LoadInode(tx, kTrashInode));
            RETURN_IF_ERROR(Touch(tx, trash, now, -1));
          }
          return OkStatus();
        },
        ToMs(now), /*frees=*/true));
    purged += batch;
    if (done) break;
  }
  return purged;
}

Result<uint64_t> FileSystem::ReclaimSession(uint64_t id, uint64_t self) {
  if (self == 0) self = options_.session;
  const int64_t now = NowNs();
  uint64_t reclaimed = 0;
  RETURN_IF_ERROR(Write(
      [&](FileTreeTransaction& tx) -> Status {
        reclaimed = 0;
        ASSIGN_OR_RETURN(std::vector<meta::OrphanRecord> orphans, tx.ListOrphans());
        for (const meta::OrphanRecord& orphan : orphans) {
          if (orphan.session != id) continue;
          ASSIGN_OR_RETURN(std::optional<InodeRecord> inode, tx.GetInode(orphan.ino));
          if (inode && inode->nlink == 0) {
            if (id != options_.session && IsOpen(orphan.ino)) {
              RETURN_IF_ERROR(tx.PutOrphan({orphan.ino, options_.session, 0}));  // held here
            } else {
              RETURN_IF_ERROR(LetGo(tx, *inode, self, id).status());
            }
            ++reclaimed;
          } else {
            RETURN_IF_ERROR(tx.DeleteOrphan(orphan.ino));
          }
        }
        RETURN_IF_ERROR(tx.DeleteSessionLocks(id));
        return tx.DeleteSession(id);
      },
      ToMs(now), /*frees=*/true));
  return reclaimed;
}

}  // namespace cairn::fs
