#define FUSE_USE_VERSION 312
#include "mount/fuse_mount.h"

#include <fuse3/fuse_lowlevel.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>

#include <fcntl.h>

#include <sys/file.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "fs/errno_map.h"
#include "mount/fuse_counting.h"

namespace cairn::mount {
namespace {

using meta::DentryRecord;
using meta::FileType;
using meta::InodeRecord;

constexpr uint32_t kReaddirPage = 512;

// An open directory. The kernel resumes a listing at the offset of the last entry it took
// (an entry's offset is 2 + its number in the listing), or goes back (rewinddir, seekdir).
// Only a window of the last kReaddirWindow entries read is kept, so a handle's memory is
// bounded whatever the directory holds (a million entries would be about 100 MB): an
// offset before the window pages from the start again, an offset past it pages forward.
struct DirHandle {
  std::mutex mutex;
  uint64_t ino = 0;
  uint64_t parent = 0;
  std::deque<DentryRecord> entries;  // entries[i] is entry number base + i
  size_t base = 0;
  std::string after;  // the name of the last entry read (the next page starts after it)
  bool complete = false;
};
constexpr size_t kReaddirWindow = 2 * kReaddirPage;

// Inodes known to have no extended attributes: the kernel asks for security.capability
// before every write (to drop it), and a file this mount created has none until a
// setxattr, here or on another mount (whose change feed entry forgets the inode).
class NoXattrs {
 public:
  void Add(uint64_t ino) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (inos_.size() >= kMax) inos_.clear();  // a bound, not a policy
    inos_.insert(ino);
  }
  void Forget(uint64_t ino) {
    std::lock_guard<std::mutex> lock(mutex_);
    inos_.erase(ino);
  }
  bool Has(uint64_t ino) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return inos_.count(ino) > 0;
  }

 private:
  static constexpr size_t kMax = 1 << 16;
  mutable std::mutex mutex_;
  std::unordered_set<uint64_t> inos_;  // GUARDED_BY(mutex_)
};

// What the kernel may hold of each regular file's attributes, so that an open can tell
// whether the kernel's size is of the version the open read (close-to-open). The kernel
// keeps a file's size for --attr-cache seconds and reads up to it; another mount's change
// reaches it through the change feed, a poll later.
//
// Of attribute replies to requests that were pending in the kernel at once, the kernel
// keeps the first it takes and refuses the others (it numbers attribute versions), so the
// last reply this mount built is not always what the kernel holds: a stat racing another
// mount's truncate-and-write can leave it the truncated size while the last reply told the
// final one. Two facts are exact, and an open trusts only them:
// - every reply this mount built for the file told one and the same version (no older
//   reply can have won), and the map was never cut since the mount began;
// - the floor: the kernel's attributes were dropped (by an open or the feed), or replaced
//   outright (a create, a setattr), after version `floor` was read. From then on it takes
//   only replies to requests sent later, so it holds nothing older than the floor.
class ToldChanges {
 public:
  // A reply with the attributes of version `change` is about to be sent.
  void Note(uint64_t ino, uint64_t change) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto [it, added] = told_.try_emplace(ino);
    if (added) {
      if (told_.size() > kBound) {
        told_.clear();  // a bound, not a policy: what an entry knew is lost
        cut_ = true;
        it = told_.try_emplace(ino).first;
      }
      it->second.told = change;
      it->second.mixed = cut_;  // after a cut the first note may not be the first reply
    } else if (it->second.told != change) {
      it->second.told = change;
      it->second.mixed = true;
    }
  }
  // Whether the kernel holds nothing but version `change` (or newer) of `ino`.
  bool Holds(uint64_t ino, uint64_t change) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = told_.find(ino);
    if (it == told_.end()) return false;
    return it->second.floor >= change || (!it->second.mixed && it->second.told == change);
  }
  // The kernel's attributes of `ino` were dropped or replaced after version `change` was
  // read; with `pages`, its cached pages too (or they are known to be of that version).
  void Dropped(uint64_t ino, uint64_t change, bool pages) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto [it, added] = told_.try_emplace(ino);
    if (added) {
      if (told_.size() > kBound) {
        told_.clear();
        cut_ = true;
        it = told_.try_emplace(ino).first;
      }
      it->second.mixed = true;  // nothing told: only the floor counts
    }
    it->second.floor = std::max(it->second.floor, change);
    if (pages) it->second.pages_floor = std::max(it->second.pages_floor, change);
  }
  // The version after which the kernel's attributes (with `pages`: and pages) were last
  // dropped (0: none known). It holds nothing older.
  uint64_t DroppedAt(uint64_t ino, bool pages) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = told_.find(ino);
    if (it == told_.end()) return 0;
    return pages ? std::min(it->second.floor, it->second.pages_floor) : it->second.floor;
  }

 private:
  struct Told {
    uint64_t told = 0;   // the version of the last reply built
    bool mixed = false;  // replies of more than one version were built
    uint64_t floor = 0;
    uint64_t pages_floor = 0;
  };
  static constexpr size_t kBound = 1 << 16;  // entries: a bound, not a policy
  mutable std::mutex mutex_;
  std::unordered_map<uint64_t, Told> told_;  // GUARDED_BY(mutex_)
  bool cut_ = false;                         // GUARDED_BY(mutex_)
};

struct Mount {
  MountOptions options;
  MountServices services;
  uint64_t root = meta::kRootInode;  // the inode the mount's root shows (subdir)
  CountedOperations counted;         // the operations, for the counting wrappers
  NoXattrs no_xattrs;
  mutable ToldChanges told;
  fuse_session* session = nullptr;
  // Counts the feed's changes per slot (ino % kFeedSlots), counted before the feed asks
  // whether the file is open here: an open that read its inode before a count moved may
  // have been missed by the feed's claim (HoldIfOrphaned).
  static constexpr size_t kFeedSlots = 64;
  std::array<std::atomic<uint64_t>, kFeedSlots> feed_marks{};
  uint64_t FeedMark(uint64_t ino) const { return feed_marks[ino % kFeedSlots].load(); }
  // Names the feed dropped, to drop once more kRecheckMs later (the watcher thread's only).
  // A LOOKUP or READDIR that read the database before another mount's commit may have its
  // answer stored by the kernel just after the feed's drop, and the kernel keeps it for
  // the entry timeout: it numbers attributes, not dentries, so nothing else tells them apart.
  struct Recheck {
    std::chrono::steady_clock::time_point due;
    uint64_t parent = 0;
    std::string name;
  };
  static constexpr int kRecheckMs = 25;
  static constexpr size_t kMaxRechecks = 1 << 16;  // past it the oldest go unrepeated
  std::deque<Recheck> rechecks;

  uint64_t Inner(fuse_ino_t ino) const { return ino == FUSE_ROOT_ID ? root : ino; }
  fuse_ino_t Outer(uint64_t ino) const { return ino == root ? FUSE_ROOT_ID : ino; }
};

Mount* Of(fuse_req_t req) { return static_cast<Mount*>(fuse_req_userdata(req)); }
CountedOperations* CountedOf(fuse_req_t req) { return &Of(req)->counted; }

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

mode_t TypeBits(FileType type) {
  switch (type) {
    case FileType::kRegular:
      return S_IFREG;
    case FileType::kDirectory:
      return S_IFDIR;
    case FileType::kSymlink:
      return S_IFLNK;
    case FileType::kFifo:
      return S_IFIFO;
    case FileType::kSocket:
      return S_IFSOCK;
    case FileType::kCharDevice:
      return S_IFCHR;
    case FileType::kBlockDevice:
      return S_IFBLK;
  }
  return 0;
}

timespec ToTimespec(int64_t ns) {
  timespec ts{};
  ts.tv_sec = ns / 1'000'000'000;
  ts.tv_nsec = ns % 1'000'000'000;
  if (ts.tv_nsec < 0) {
    ts.tv_nsec += 1'000'000'000;
    ts.tv_sec -= 1;
  }
  return ts;
}

int64_t FromTimespec(const timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

struct stat ToStat(const Mount& mount, const InodeRecord& inode) {
  if (inode.type == FileType::kRegular) mount.told.Note(inode.ino, inode.change);
  struct stat st {};
  st.st_ino = mount.Outer(inode.ino);
  st.st_mode = TypeBits(inode.type) | (inode.mode & 07777);
  st.st_nlink = fs::InTrashFile(inode) ? 0 : inode.nlink;  // deleted, kept in the trash
  st.st_uid = inode.uid;
  st.st_gid = inode.gid;
  st.st_rdev = inode.rdev;
  st.st_size = static_cast<off_t>(inode.type == FileType::kSymlink ? inode.symlink_target.size()
                                                                   : inode.size);
  st.st_blksize = 1 << 20;
  st.st_blocks = static_cast<blkcnt_t>((inode.size + 511) / 512);
  st.st_atim = ToTimespec(inode.atime_ns);
  st.st_mtim = ToTimespec(inode.mtime_ns);
  st.st_ctim = ToTimespec(inode.ctime_ns);
  return st;
}

// Logs what a program will only see as an errno when it is not a plain POSIX answer.
void ReplyError(fuse_req_t req, const Status& status, const char* op) {
  const int err = fs::ErrnoFor(status);
  if (MountMetrics* metrics = Of(req)->services.metrics) metrics->Error(err);
  if (err == EIO) fprintf(stderr, "cairn mount: %s: %s\n", op, status.ToString().c_str());
  fuse_reply_err(req, err);
}

void ReplyEntry(fuse_req_t req, InodeRecord inode) {
  Mount& mount = *Of(req);
  mount.services.file_data->Overlay(&inode);
  fuse_entry_param entry{};
  entry.ino = mount.Outer(inode.ino);
  entry.generation = 1;  // inode numbers are never reused
  entry.attr = ToStat(mount, inode);
  entry.attr_timeout = mount.options.attr_cache_seconds;
  entry.entry_timeout = inode.type == FileType::kDirectory ? mount.options.dir_entry_cache_seconds
                                                           : mount.options.entry_cache_seconds;
  fuse_reply_entry(req, &entry);
}

fs::Caller CallerOf(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return fs::Caller{ctx->uid, ctx->gid};
}

// The kernel reads ahead of a FUSE file at most its backing device's read_ahead_kb, which
// starts at 128 KiB whatever the mount asks for (max_readahead only lowers it), so a
// sequential reader costs one request per 128 KiB. Raised to 1 MiB (the largest request) for
// this mount's own device where we may (as root); elsewhere the default stays.
constexpr const char* kReadAheadKiB = "1024";

std::string UnescapeMountInfo(const std::string& field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    auto octal = [&](size_t at) { return field[at] >= '0' && field[at] <= '7'; };
    if (field[i] == '\\' && i + 3 < field.size() && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      out.push_back(static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                                      (field[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(field[i]);
    }
  }
  return out;
}

// The device ("major:minor") of the mount on `mount_point` (canonical), from this process's
// mount table: asking the mount itself (stat) would wait for the session not yet serving.
std::optional<std::string> MountDevice(const std::string& mount_point) {
  std::ifstream table("/proc/self/mountinfo");
  std::string line;
  std::optional<std::string> device;
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string id, parent, major_minor, root, point;
    if (!(fields >> id >> parent >> major_minor >> root >> point)) continue;
    if (UnescapeMountInfo(point) == mount_point) device = major_minor;  // the last is on top
  }
  return device;
}

void RaiseReadAhead(const std::string& mount_point) {
  if (mount_point.empty()) return;
  std::optional<std::string> device = MountDevice(mount_point);
  if (!device) return;
  std::ofstream setting("/sys/class/bdi/" + *device + "/read_ahead_kb");
  if (setting) setting << kReadAheadKiB;  // refused unless root: the default stays
}

// ---- Operations ------------------------------------------------------------------------

void Init(void* userdata, fuse_conn_info* conn) {
  // Large writes: fewer requests per byte (the kernel caps it at its max_pages).
  conn->max_write = 1 << 20;
  conn->max_readahead = 1 << 20;
  // Locks are the volume's (held across mounts), not the kernel's local ones.
  if (conn->capable & FUSE_CAP_POSIX_LOCKS) conn->want |= FUSE_CAP_POSIX_LOCKS;
  if (conn->capable & FUSE_CAP_FLOCK_LOCKS) conn->want |= FUSE_CAP_FLOCK_LOCKS;
  // Attributes of written files change by this mount's own writes: the kernel need not ask.
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Mount& mount = *Of(req);
  Result<InodeRecord> inode = mount.services.file_system->Lookup(mount.Inner(parent), name);
  if (!inode.ok()) return ReplyError(req, inode.status(), "lookup");
  ReplyEntry(req, std::move(inode).value());
}

void Forget(fuse_req_t req, fuse_ino_t, uint64_t) { fuse_reply_none(req); }

void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  Mount& mount = *Of(req);
  Result<InodeRecord> inode = mount.services.file_system->GetAttr(mount.Inner(ino));
  if (!inode.ok()) return ReplyError(req, inode.status(), "getattr");
  mount.services.file_data->Overlay(&inode.value());
  struct stat st = ToStat(mount, *inode);
  fuse_reply_attr(req, &st, mount.options.attr_cache_seconds);
}

void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  Mount& mount = *Of(req);
  fs::AttrChange change;
  if (to_set & FUSE_SET_ATTR_MODE) change.mode = attr->st_mode & 07777;
  if (to_set & FUSE_SET_ATTR_UID) change.uid = attr->st_uid;
  if (to_set & FUSE_SET_ATTR_GID) change.gid = attr->st_gid;
  if (to_set & FUSE_SET_ATTR_SIZE) change.size = static_cast<uint64_t>(attr->st_size);
  const int64_t now = NowNs();
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
    change.atime_ns = now;
  } else if (to_set & FUSE_SET_ATTR_ATIME) {
    change.atime_ns = FromTimespec(attr->st_atim);
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    change.mtime_ns = now;
  } else if (to_set & FUSE_SET_ATTR_MTIME) {
    change.mtime_ns = FromTimespec(attr->st_mtim);
  }
  if (to_set & FUSE_SET_ATTR_CTIME) change.ctime_ns = FromTimespec(attr->st_ctim);
  Result<InodeRecord> inode = mount.services.file_data->SetAttr(mount.Inner(ino), change);
  if (!inode.ok()) return ReplyError(req, inode.status(), "setattr");
  struct stat st = ToStat(mount, *inode);
  // The kernel takes a setattr's reply whole, whatever else is pending.
  if (inode->type == FileType::kRegular) mount.told.Dropped(inode->ino, inode->change, false);
  fuse_reply_attr(req, &st, mount.options.attr_cache_seconds);
}

void ReadLink(fuse_req_t req, fuse_ino_t ino) {
  Mount& mount = *Of(req);
  Result<std::string> target = mount.services.file_system->ReadLink(mount.Inner(ino));
  if (!target.ok()) return ReplyError(req, target.status(), "readlink");
  fuse_reply_readlink(req, target->c_str());
}

void MakeNode(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  Mount& mount = *Of(req);
  FileType type;
  switch (mode & S_IFMT) {
    case S_IFREG:
    case 0:
      type = FileType::kRegular;
      break;
    case S_IFIFO:
      type = FileType::kFifo;
      break;
    case S_IFSOCK:
      type = FileType::kSocket;
      break;
    case S_IFCHR:
      type = FileType::kCharDevice;
      break;
    case S_IFBLK:
      type = FileType::kBlockDevice;
      break;
    default:
      return (void)fuse_reply_err(req, EINVAL);
  }
  Result<InodeRecord> inode = mount.services.file_system->MakeNode(
      mount.Inner(parent), name, type, mode & 07777, rdev, CallerOf(req));
  if (!inode.ok()) return ReplyError(req, inode.status(), "mknod");
  ReplyEntry(req, std::move(inode).value());
}

void MakeDirectory(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  Mount& mount = *Of(req);
  Result<InodeRecord> inode = mount.services.file_system->MakeNode(
      mount.Inner(parent), name, FileType::kDirectory, mode & 07777, 0, CallerOf(req));
  if (!inode.ok()) return ReplyError(req, inode.status(), "mkdir");
  ReplyEntry(req, std::move(inode).value());
}

void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Mount& mount = *Of(req);
  Status status = mount.services.file_system->Unlink(mount.Inner(parent), name);
  if (!status.ok()) return ReplyError(req, status, "unlink");
  fuse_reply_err(req, 0);
}

void RemoveDirectory(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Mount& mount = *Of(req);
  Status status = mount.services.file_system->RemoveDirectory(mount.Inner(parent), name);
  if (!status.ok()) return ReplyError(req, status, "rmdir");
  fuse_reply_err(req, 0);
}

void Symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  Mount& mount = *Of(req);
  Result<InodeRecord> inode =
      mount.services.file_system->MakeSymlink(mount.Inner(parent), name, target, CallerOf(req));
  if (!inode.ok()) return ReplyError(req, inode.status(), "symlink");
  ReplyEntry(req, std::move(inode).value());
}

void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
            const char* new_name, unsigned int flags) {
  Mount& mount = *Of(req);
  if (flags & ~static_cast<unsigned int>(fs::kRenameNoReplace | fs::kRenameExchange)) {
    return (void)fuse_reply_err(req, EINVAL);  // RENAME_WHITEOUT: an overlayfs feature
  }
  Status status = mount.services.file_system->Rename(mount.Inner(parent), name,
                                                     mount.Inner(new_parent), new_name, flags);
  if (!status.ok()) return ReplyError(req, status, "rename");
  fuse_reply_err(req, 0);
}

void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t new_parent, const char* new_name) {
  Mount& mount = *Of(req);
  Result<InodeRecord> inode =
      mount.services.file_system->Link(mount.Inner(ino), mount.Inner(new_parent), new_name);
  if (!inode.ok()) return ReplyError(req, inode.status(), "link");
  ReplyEntry(req, std::move(inode).value());
}

// An open read `inode` and then registered its handle (FileData::Open). A file with no name
// left is claimed for this session (fs::FileSystem::ClaimOrphan), so no other mount's
// sweep deletes it under the handle: when the inode read says nlink 0, and when the feed
// counted a change in the file's slot since `mark` (the change that let the file go may
// have been applied while the handle was not registered yet, so the feed did not claim it).
Status HoldIfOrphaned(Mount& mount, const InodeRecord& inode, uint64_t mark) {
  if (inode.type != FileType::kRegular) return OkStatus();
  bool orphaned = inode.nlink == 0;
  if (!orphaned && mount.FeedMark(inode.ino) != mark) {
    ASSIGN_OR_RETURN(InodeRecord now, mount.services.file_system->GetAttr(inode.ino));
    orphaned = now.nlink == 0;
  }
  if (!orphaned) return OkStatus();
  ASSIGN_OR_RETURN(bool held, mount.services.file_system->ClaimOrphan(inode.ino));
  if (held) return OkStatus();
  return NotFoundError("inode " + std::to_string(inode.ino) +
                       " was deleted: its last name went on another mount");
}

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Mount& mount = *Of(req);
  const uint64_t mark = mount.FeedMark(mount.Inner(ino));
  Result<InodeRecord> inode = mount.services.file_system->GetAttr(mount.Inner(ino));
  if (!inode.ok()) return ReplyError(req, inode.status(), "open");
  const bool keep_cache = mount.services.file_data->Open(*inode);
  if (Status held = HoldIfOrphaned(mount, *inode, mark); !held.ok()) {
    (void)mount.services.file_data->Release(inode->ino);
    return ReplyError(req, held, "open");
  }
  if (inode->type == FileType::kRegular && !mount.told.Holds(inode->ino, inode->change)) {
    // Attributes only (-1): no page is touched, so no lock the open holds is needed. The
    // pages go at this reply (keep_cache 0) unless they are of this version already.
    fuse_lowlevel_notify_inval_inode(mount.session, mount.Outer(inode->ino), -1, 0);
    mount.told.Dropped(inode->ino, inode->change, true);
  }
  if ((fi->flags & O_TRUNC) != 0 && inode->type == FileType::kRegular) {
    // libfuse asks the kernel for atomic O_TRUNC: the truncate is this open's to do, and
    // it marks mtime and ctime even when the file was empty already.
    fs::AttrChange change;
    change.size = 0;
    change.mtime_ns = NowNs();
    change.ctime_ns = *change.mtime_ns;
    Result<InodeRecord> truncated = mount.services.file_data->SetAttr(inode->ino, change);
    if (!truncated.ok()) {
      (void)mount.services.file_data->Release(inode->ino);
      return ReplyError(req, truncated.status(), "open");
    }
  }
  // Kept when the kernel's pages are of this very version (FileData::Open); a truncating
  // open starts from nothing anyway.
  fi->keep_cache = keep_cache && (fi->flags & O_TRUNC) == 0 ? 1 : 0;
  if (fuse_reply_open(req, fi) != 0) (void)mount.services.file_data->Release(inode->ino);
}

void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  Mount& mount = *Of(req);
  Result<InodeRecord> inode = mount.services.file_system->MakeNode(
      mount.Inner(parent), name, FileType::kRegular, mode & 07777, 0, CallerOf(req));
  const bool created = inode.ok();
  uint64_t mark = 0;
  if (!inode.ok() && inode.status().code() == StatusCode::kAlreadyExists &&
      (fi->flags & O_EXCL) == 0) {
    // Created by someone else since the kernel's lookup: open what is there.
    Result<InodeRecord> named = mount.services.file_system->Lookup(mount.Inner(parent), name);
    if (named.ok()) {
      // Read again after the mark: the file the name led to is the one held.
      mark = mount.FeedMark(named->ino);
      inode = mount.services.file_system->GetAttr(named->ino);
    } else {
      inode = std::move(named);
    }
  }
  if (inode.ok() && created) mount.no_xattrs.Add(inode->ino);
  if (!inode.ok()) return ReplyError(req, inode.status(), "create");
  (void)mount.services.file_data->Open(*inode);  // new: nothing cached to keep
  if (Status held = created ? OkStatus() : HoldIfOrphaned(mount, *inode, mark); !held.ok()) {
    (void)mount.services.file_data->Release(inode->ino);
    return ReplyError(req, held, "create");
  }
  InodeRecord record = std::move(inode).value();
  mount.services.file_data->Overlay(&record);
  fuse_entry_param entry{};
  entry.ino = mount.Outer(record.ino);
  entry.generation = 1;
  entry.attr = ToStat(mount, record);
  // A new inode: the kernel holds nothing of it but this reply.
  if (created) mount.told.Dropped(record.ino, record.change, true);
  entry.attr_timeout = mount.options.attr_cache_seconds;
  entry.entry_timeout = mount.options.entry_cache_seconds;
  fi->keep_cache = 0;
  if (fuse_reply_create(req, &entry, fi) != 0) {
    // The caller went away (interrupted): the handle will never be released.
    (void)mount.services.file_data->Release(record.ino);
  }
}

void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info*) {
  Mount& mount = *Of(req);
  // One buffer per session thread, kept: a fresh one per read costs page faults on every
  // request. Sequential reads are mostly answered from the read-ahead buffer instead.
  thread_local std::unique_ptr<char[]> scratch;
  thread_local size_t scratch_size = 0;
  if (scratch_size < size) {
    scratch.reset(new char[size]);
    scratch_size = size;
  }
  std::shared_ptr<const void> hold;
  Result<std::string_view> bytes = mount.services.file_data->ReadView(
      mount.Inner(ino), static_cast<uint64_t>(offset), size, scratch.get(), &hold);
  if (!bytes.ok()) return ReplyError(req, bytes.status(), "read");
  fuse_reply_buf(req, bytes->data(), bytes->size());
}

void Write(fuse_req_t req, fuse_ino_t ino, const char* data, size_t size, off_t offset,
           fuse_file_info*) {
  Mount& mount = *Of(req);
  Status status = mount.services.file_data->Write(mount.Inner(ino), static_cast<uint64_t>(offset),
                                                  std::string_view(data, size));
  if (!status.ok()) return ReplyError(req, status, "write");
  fuse_reply_write(req, size);
}

void Flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Mount& mount = *Of(req);
  Status status = mount.services.file_data->Flush(mount.Inner(ino));
  // close() drops the closing process's fcntl locks on the file, whatever else happened.
  Status unlocked = mount.services.file_system->ReleaseLocks(mount.Inner(ino), fi->lock_owner,
                                                             meta::LockKind::kPosix);
  if (!status.ok()) return ReplyError(req, status, "flush");
  if (!unlocked.ok()) return ReplyError(req, unlocked, "flush");
  fuse_reply_err(req, 0);
}

void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Mount& mount = *Of(req);
  const uint64_t inner = mount.Inner(ino);
  if (fi->flock_release) {
    Status unlocked =
        mount.services.file_system->ReleaseLocks(inner, fi->lock_owner, meta::LockKind::kFlock);
    if (!unlocked.ok()) {
      fprintf(stderr, "cairn mount: dropping the flock of inode %llu: %s\n",
              static_cast<unsigned long long>(inner), unlocked.ToString().c_str());
    }
  }
  Status flushed = mount.services.file_data->Flush(inner);
  if (!flushed.ok()) {
    fprintf(stderr, "cairn mount: release of inode %llu lost unflushed writes: %s\n",
            static_cast<unsigned long long>(inner), flushed.ToString().c_str());
  }
  Status released = mount.services.file_data->Release(inner);
  if (!released.ok()) {
    fprintf(stderr, "cairn mount: release of inode %llu: %s\n",
            static_cast<unsigned long long>(inner), released.ToString().c_str());
  }
  fuse_reply_err(req, 0);
}

// fsync: the file's data stored and committed, its chunks synced, then every commit so far
// made durable (close neither syncs chunks nor waits for the metadata's disk).
void Fsync(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) {
  Mount& mount = *Of(req);
  Status status = mount.services.file_data->Flush(mount.Inner(ino));
  if (status.ok()) status = mount.services.file_data->SyncData(mount.Inner(ino));
  if (status.ok()) status = mount.services.file_system->Sync();
  if (!status.ok()) return ReplyError(req, status, "fsync");
  fuse_reply_err(req, 0);
}

// fsync of a directory: its entries (creates, renames, unlinks) made durable.
void FsyncDirectory(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
  Mount& mount = *Of(req);
  Status status = mount.services.file_system->Sync();
  if (!status.ok()) return ReplyError(req, status, "fsyncdir");
  fuse_reply_err(req, 0);
}

void OpenDirectory(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Mount& mount = *Of(req);
  Result<InodeRecord> inode = mount.services.file_system->GetAttr(mount.Inner(ino));
  if (!inode.ok()) return ReplyError(req, inode.status(), "opendir");
  if (inode->type != FileType::kDirectory) return (void)fuse_reply_err(req, ENOTDIR);
  auto handle = std::make_unique<DirHandle>();
  handle->ino = inode->ino;
  handle->parent = inode->parent;
  fi->fh = reinterpret_cast<uint64_t>(handle.release());
  // The kernel keeps the listing across opens and starts over when the directory changes:
  // through this mount (it knows), or by the mtime it reads with the attributes (another
  // mount's change, which the change feed also drops at once: Invalidate). Not for listings
  // this mount's own writes change behind the kernel's back: the trash (an unlink files the
  // inode there) and the volume's root (whose .trash appears with the first delete).
  if (mount.options.attr_cache_seconds > 0 && mount.options.dir_entry_cache_seconds > 0 &&
      inode->ino != meta::kRootInode && inode->ino != fs::kTrashInode &&
      inode->parent != fs::kTrashInode) {
    fi->cache_readdir = 1;
    fi->keep_cache = 1;
  }
  fuse_reply_open(req, fi);
}

// Fills `buffer` from `offset` under the handle's lock. The reply is sent after the lock is
// released: once the kernel has its answer it may release the handle (on another thread).
Status FillDirectory(Mount& mount, fuse_req_t req, DirHandle* handle, off_t offset,
                     std::vector<char>& buffer, size_t& used) {
  std::lock_guard<std::mutex> lock(handle->mutex);
  const size_t size = buffer.size();
  auto add = [&](const char* name, uint64_t ino, mode_t type, off_t next) {
    struct stat st {};
    st.st_ino = mount.Outer(ino);
    st.st_mode = type;
    const size_t need = fuse_add_direntry(req, buffer.data() + used, size - used, name, &st, next);
    if (need > size - used) return false;
    used += need;
    return true;
  };
  off_t position = offset;
  if (position < 1) {
    if (!add(".", handle->ino, S_IFDIR, 1)) return OkStatus();
    position = 1;
  }
  if (position < 2) {
    const uint64_t parent = handle->ino == mount.root ? handle->ino : handle->parent;
    if (!add("..", parent, S_IFDIR, 2)) return OkStatus();
    position = 2;
  }
  for (;;) {
    const size_t index = static_cast<size_t>(position - 2);
    if (index < handle->base) {  // before the window: the listing starts again
      handle->entries.clear();
      handle->base = 0;
      handle->after.clear();
      handle->complete = false;
    }
    if (index >= handle->base + handle->entries.size()) {
      if (handle->complete) break;
      Result<std::vector<DentryRecord>> page =
          mount.services.file_system->ReadDirectory(handle->ino, handle->after, kReaddirPage);
      if (!page.ok()) {
        if (used > 0) break;  // what fits is answered; the error comes with the next call
        return page.status();
      }
      if (page->size() < kReaddirPage) handle->complete = true;
      for (DentryRecord& entry : *page) {
        handle->after = entry.name;
        handle->entries.push_back(std::move(entry));
      }
      while (handle->entries.size() > kReaddirWindow) {
        handle->entries.pop_front();
        ++handle->base;
      }
      continue;
    }
    const DentryRecord& entry = handle->entries[index - handle->base];
    if (!add(entry.name.c_str(), entry.ino, TypeBits(entry.type), position + 1)) break;
    ++position;
  }
  return OkStatus();
}

void ReadDirectory(fuse_req_t req, fuse_ino_t, size_t size, off_t offset, fuse_file_info* fi) {
  Mount& mount = *Of(req);
  std::vector<char> buffer(size);
  size_t used = 0;
  Status status =
      FillDirectory(mount, req, reinterpret_cast<DirHandle*>(fi->fh), offset, buffer, used);
  if (!status.ok()) return ReplyError(req, status, "readdir");
  fuse_reply_buf(req, buffer.data(), used);
}

void ReleaseDirectory(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete reinterpret_cast<DirHandle*>(fi->fh);
  fuse_reply_err(req, 0);
}

void StatFs(fuse_req_t req, fuse_ino_t) {
  Mount& mount = *Of(req);
  struct statvfs st {};
  if (mount.services.space) {
    Status status = mount.services.space(&st);
    if (!status.ok()) return (void)fuse_reply_err(req, fs::ErrnoFor(status));
  } else if (statvfs(mount.services.chunk_root.c_str(), &st) != 0) {
    return (void)fuse_reply_err(req, errno);
  }
  // Inodes are rows: as many as the metadata can hold.
  st.f_files = uint64_t{1} << 40;
  st.f_ffree = st.f_files / 2;
  st.f_favail = st.f_ffree;
  st.f_namemax = meta::kMaxFileNameBytes;
  fuse_reply_statfs(req, &st);
}

void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
              int flags) {
  Mount& mount = *Of(req);
  mount.no_xattrs.Forget(mount.Inner(ino));  // before: a racing getxattr may miss, not lie
  uint32_t ours = 0;
  if (flags & XATTR_CREATE) ours |= fs::kXattrCreate;
  if (flags & XATTR_REPLACE) ours |= fs::kXattrReplace;
  Status status = mount.services.file_system->SetXattr(mount.Inner(ino), name,
                                                       std::string_view(value, size), ours);
  if (!status.ok()) return ReplyError(req, status, "setxattr");
  fuse_reply_err(req, 0);
}

void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  Mount& mount = *Of(req);
  if (mount.no_xattrs.Has(mount.Inner(ino))) return (void)fuse_reply_err(req, ENODATA);
  Result<std::string> value = mount.services.file_system->GetXattr(mount.Inner(ino), name);
  if (!value.ok()) return ReplyError(req, value.status(), "getxattr");
  if (size == 0) return (void)fuse_reply_xattr(req, value->size());
  if (value->size() > size) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, value->data(), value->size());
}

void ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Mount& mount = *Of(req);
  Result<std::vector<std::string>> names = mount.services.file_system->ListXattrs(mount.Inner(ino));
  if (!names.ok()) return ReplyError(req, names.status(), "listxattr");
  std::string list;
  for (const std::string& name : *names) {
    list += name;
    list.push_back('\0');
  }
  if (size == 0) return (void)fuse_reply_xattr(req, list.size());
  if (list.size() > size) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, list.data(), list.size());
}

void RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  Mount& mount = *Of(req);
  Status status = mount.services.file_system->RemoveXattr(mount.Inner(ino), name);
  if (!status.ok()) return ReplyError(req, status, "removexattr");
  fuse_reply_err(req, 0);
}

// ---- Locks ------------------------------------------------------------------------------

fs::LockRequest FromFlock(uint64_t owner, const struct flock& lock) {
  fs::LockRequest request;
  request.owner = owner;
  request.kind = meta::LockKind::kPosix;
  request.type = lock.l_type == F_WRLCK   ? fs::LockRequest::kWrite
                 : lock.l_type == F_RDLCK ? fs::LockRequest::kRead
                                          : fs::LockRequest::kUnlock;
  // libfuse hands over the kernel's range: l_len 0 means "to the end of any file".
  request.start = static_cast<uint64_t>(lock.l_start);
  request.end = lock.l_len == 0
                    ? fs::kLockEnd
                    : static_cast<uint64_t>(lock.l_start) + static_cast<uint64_t>(lock.l_len) - 1;
  request.pid = static_cast<uint32_t>(lock.l_pid);
  return request;
}

// Takes the lock; with `wait`, retries until it is free or the caller is interrupted (the
// holder may be another mount, so there is no wakeup to wait for).
Status TakeLock(fuse_req_t req, uint64_t ino, const fs::LockRequest& request, bool wait) {
  Mount& mount = *Of(req);
  auto delay = std::chrono::milliseconds(2);
  for (;;) {
    Status status = mount.services.file_system->SetLock(ino, request);
    if (status.reason() != ErrorReason::kLockConflict || !wait) return status;
    if (fuse_req_interrupted(req)) {
      return Status(StatusCode::kAborted, ErrorReason::kNone, "interrupted");
    }
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(50));
  }
}

void GetLock(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* lock) {
  Mount& mount = *Of(req);
  Result<std::optional<meta::LockRecord>> held =
      mount.services.file_system->TestLock(mount.Inner(ino), FromFlock(fi->lock_owner, *lock));
  if (!held.ok()) return ReplyError(req, held.status(), "getlk");
  struct flock out = *lock;
  if (!held->has_value()) {
    out.l_type = F_UNLCK;
  } else {
    const meta::LockRecord& other = **held;
    out.l_type = other.exclusive ? F_WRLCK : F_RDLCK;
    out.l_whence = SEEK_SET;
    out.l_start = static_cast<off_t>(other.start);
    out.l_len = other.end >= fs::kLockEnd ? 0 : static_cast<off_t>(other.end - other.start + 1);
    out.l_pid = static_cast<pid_t>(other.pid);
  }
  fuse_reply_lock(req, &out);
}

void SetLock(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* lock, int sleep) {
  Mount& mount = *Of(req);
  Status status = TakeLock(req, mount.Inner(ino), FromFlock(fi->lock_owner, *lock), sleep != 0);
  if (status.code() == StatusCode::kAborted && status.message() == "interrupted") {
    return (void)fuse_reply_err(req, EINTR);
  }
  if (!status.ok()) return ReplyError(req, status, "setlk");
  fuse_reply_err(req, 0);
}

void Flock(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, int op) {
  Mount& mount = *Of(req);
  fs::LockRequest request;
  request.owner = fi->lock_owner;
  request.kind = meta::LockKind::kFlock;
  request.start = 0;
  request.end = fs::kLockEnd;
  request.pid = fuse_req_ctx(req)->pid;
  switch (op & (LOCK_SH | LOCK_EX | LOCK_UN)) {
    case LOCK_SH:
      request.type = fs::LockRequest::kRead;
      break;
    case LOCK_EX:
      request.type = fs::LockRequest::kWrite;
      break;
    case LOCK_UN:
      request.type = fs::LockRequest::kUnlock;
      break;
    default:
      return (void)fuse_reply_err(req, EINVAL);
  }
  Status status = TakeLock(req, mount.Inner(ino), request, (op & LOCK_NB) == 0);
  if (status.code() == StatusCode::kAborted && status.message() == "interrupted") {
    return (void)fuse_reply_err(req, EINTR);
  }
  if (!status.ok()) return ReplyError(req, status, "flock");
  fuse_reply_err(req, 0);
}

// ---- Other mounts' changes ----------------------------------------------------------------

// Drops the kernel's entry for `name` in `parent` and the directory's cached listing
// (cache_readdir keeps it in the directory's pages).
void DropEntry(Mount& mount, fuse_session* session, uint64_t parent, const std::string& name) {
  fuse_lowlevel_notify_inval_entry(session, mount.Outer(parent), name.data(), name.size());
  fuse_lowlevel_notify_inval_inode(session, mount.Outer(parent), 0, 0);
}

// The feed's entry drops whose time to repeat came (Mount::rechecks).
void RepeatDrops(Mount& mount, fuse_session* session) {
  const auto now = std::chrono::steady_clock::now();
  while (!mount.rechecks.empty() && mount.rechecks.front().due <= now) {
    DropEntry(mount, session, mount.rechecks.front().parent, mount.rechecks.front().name);
    mount.rechecks.pop_front();
  }
}

// Drops what `change` made stale from the kernel's caches and this mount's block rows. The
// kernel answers ENOENT for what it does not hold: nothing to drop.
//
// The inode is read (once) for a file open here and for one with a floor in ToldChanges
// (its kernel caches were dropped after a version was read). If it is still at that
// version, the kernel already misses this change and is left alone: dropping its caches
// again is not only a waste. A GETATTR answered meanwhile would be refused by the kernel,
// which then keeps the size it had before the open's drop and reads up to it (a byte of
// zeros past a shorter file's end, in a two-mount test).
//
// A file open here whose inode has no name left is claimed (fs::FileSystem::ClaimOrphan):
// another mount let it go as a pending orphan. A claim that fails, or an inode that cannot
// be read, is an error: the poll stops at this change and applies it again later, and the
// session's seen_seq stays before it, so no sweep deletes the file meanwhile.
Status Invalidate(Mount& mount, fuse_session* session, const meta::ChangeRecord& change) {
  Status claimed = OkStatus();
  if (change.ino != 0) {
    // Counted before IsOpen: see Mount::feed_marks.
    mount.feed_marks[change.ino % Mount::kFeedSlots].fetch_add(1);
    mount.services.file_system->ForgetAttr(change.ino);
    mount.no_xattrs.Forget(change.ino);
    // A data change needs the pages dropped too.
    const uint64_t dropped_at = mount.told.DroppedAt(change.ino, change.data);
    const bool open_here = mount.services.file_data->IsOpen(change.ino);
    Result<InodeRecord> now = FailedPreconditionError("not read");
    if (open_here || dropped_at != 0) now = mount.services.file_system->GetAttr(change.ino);
    if (open_here) {
      if (now.ok() && now->nlink == 0 && now->type == FileType::kRegular) {
        claimed = mount.services.file_system->ClaimOrphan(change.ino).status();
      } else if (!now.ok() && now.status().code() != StatusCode::kNotFound) {
        claimed = now.status();
      }
    }
    if (change.data) {
      // Only what a data change makes stale, with the version read when the file is open.
      mount.services.file_data->Invalidate(
          change.ino, open_here || dropped_at != 0 ? now : FailedPreconditionError("not read"));
    }
    const bool dropped_since = dropped_at != 0 && now.ok() && now->change <= dropped_at;
    if (!dropped_since) {
      if (now.ok()) mount.told.Dropped(now->ino, now->change, change.data);  // the drop below
      fuse_lowlevel_notify_inval_inode(session, mount.Outer(change.ino), change.data ? 0 : -1, 0);
    }
  }
  if (change.parent != 0 && !change.name.empty()) {
    DropEntry(mount, session, change.parent, change.name);
    if (mount.rechecks.size() >= Mount::kMaxRechecks) mount.rechecks.pop_front();
    mount.rechecks.push_back(Mount::Recheck{
        std::chrono::steady_clock::now() + std::chrono::milliseconds(Mount::kRecheckMs),
        change.parent, change.name});
  }
  return claimed.WithContext("claiming inode " + std::to_string(change.ino) +
                             ", unlinked on another mount while open here");
}

fuse_lowlevel_ops Operations() {
  fuse_lowlevel_ops ops{};
  ops.init = Init;
  ops.lookup = Lookup;
  ops.forget = Forget;
  ops.getattr = GetAttr;
  ops.setattr = SetAttr;
  ops.readlink = ReadLink;
  ops.mknod = MakeNode;
  ops.mkdir = MakeDirectory;
  ops.unlink = Unlink;
  ops.rmdir = RemoveDirectory;
  ops.symlink = Symlink;
  ops.rename = Rename;
  ops.link = Link;
  ops.open = Open;
  ops.read = Read;
  ops.write = Write;
  ops.flush = Flush;
  ops.release = Release;
  ops.fsync = Fsync;
  ops.opendir = OpenDirectory;
  ops.readdir = ReadDirectory;
  ops.releasedir = ReleaseDirectory;
  ops.fsyncdir = FsyncDirectory;
  ops.statfs = StatFs;
  ops.setxattr = SetXattr;
  ops.getxattr = GetXattr;
  ops.listxattr = ListXattr;
  ops.removexattr = RemoveXattr;
  ops.create = Create;
  ops.getlk = GetLock;
  ops.setlk = SetLock;
  ops.flock = Flock;
  return ops;
}

// Resolves `subdir` from the volume's root, each component a directory.
Result<uint64_t> ResolveSubdir(fs::FileSystem* file_system, const std::string& subdir) {
  uint64_t ino = meta::kRootInode;
  size_t start = 0;
  while (start < subdir.size()) {
    size_t end = subdir.find('/', start);
    if (end == std::string::npos) end = subdir.size();
    const std::string name = subdir.substr(start, end - start);
    start = end + 1;
    if (name.empty() || name == ".") continue;
    if (name == "..") return InvalidArgumentError("--subdir " + subdir + " may not hold \"..\"");
    ASSIGN_OR_RETURN(InodeRecord inode, file_system->Lookup(ino, name));
    if (inode.type != FileType::kDirectory) {
      return InvalidArgumentError("--subdir " + subdir + ": " + name + " is not a directory");
    }
    ino = inode.ino;
  }
  return ino;
}

}  // namespace

Status ServeMount(const MountOptions& options, const MountServices& services,
                  const std::function<void(const Status&)>& ready) {
  Mount mount;
  mount.options = options;
  mount.services = services;
  Result<uint64_t> root = ResolveSubdir(services.file_system, options.subdir);
  if (!root.ok()) {
    ready(root.status());
    return root.status();
  }
  mount.root = *root;

  std::vector<std::string> words = {"cairn"};
  std::string opts = "default_permissions,fsname=cairn:" + options.volume_name + ",subtype=cairn";
  if (options.allow_other) opts += ",allow_other";
  if (options.read_only) opts += ",ro";
  words.push_back("-o");
  words.push_back(opts);
  if (options.debug) words.push_back("-d");
  std::vector<char*> argv;
  for (std::string& word : words) argv.push_back(word.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  mount.counted = CountedOperations{Operations(), services.metrics};
  const fuse_lowlevel_ops ops =
      services.metrics != nullptr ? CountOperations<CountedOf>(mount.counted) : mount.counted.inner;
  fuse_session* session = fuse_session_new(&args, &ops, sizeof(ops), &mount);
  mount.session = session;
  if (session == nullptr) {
    Status status = InternalError("libfuse refused the mount options " + opts);
    ready(status);
    return status;
  }
  if (fuse_set_signal_handlers(session) != 0) {
    fuse_session_destroy(session);
    Status status = InternalError("cannot install the signal handlers of the mount");
    ready(status);
    return status;
  }
  std::string canonical_mount_point;
  if (char* resolved = realpath(options.mount_point.c_str(), nullptr)) {
    canonical_mount_point = resolved;
    free(resolved);
  }
  if (fuse_session_mount(session, options.mount_point.c_str()) != 0) {
    fuse_remove_signal_handlers(session);
    fuse_session_destroy(session);
    Status status = FailedPreconditionError("cannot mount on " + options.mount_point +
                                            " (does it exist, and is /dev/fuse usable?)");
    ready(status);
    return status;
  }
  RaiseReadAhead(canonical_mount_point);
  ready(OkStatus());
  // The change feed, read while the session serves; stopped before it is torn down.
  std::mutex watch_mutex;
  std::condition_variable watch_wake;
  bool watch_stop = false;
  std::thread watcher;
  if (services.session != nullptr) {
    watcher = std::thread([&] {
      auto last_report = std::chrono::steady_clock::time_point();
      std::unique_lock<std::mutex> lock(watch_mutex);
      while (!watch_stop) {
        lock.unlock();
        Status polled = services.session->PollChanges(
            [&](const meta::ChangeRecord& change) { return Invalidate(mount, session, change); });
        RepeatDrops(mount, session);
        const auto now = std::chrono::steady_clock::now();
        if (!polled.ok() && now - last_report > std::chrono::seconds(10)) {
          fprintf(stderr, "cairn mount: reading the change feed: %s\n", polled.ToString().c_str());
          last_report = now;
        }
        lock.lock();
        watch_wake.wait_for(lock, std::chrono::milliseconds(kChangePollMs),
                            [&] { return watch_stop; });
      }
    });
  }
  // The periodic sync: a power cut loses at most about this interval of closed files.
  std::thread syncer;
  uint64_t synced_commits = services.file_system->relaxed_commits();
  auto sync_all = [&services, &synced_commits]() {
    Result<bool> data = services.file_data->SyncAllData();
    const uint64_t commits = services.file_system->relaxed_commits();
    Status status = data.status();
    if (status.ok() && (*data || commits != synced_commits)) {
      status = services.file_system->Sync();
      if (status.ok()) synced_commits = commits;
    }
    return status;
  };
  if (options.sync_interval_seconds > 0 && !options.read_only) {
    syncer = std::thread([&] {
      const auto interval =
          std::chrono::milliseconds(static_cast<int64_t>(options.sync_interval_seconds * 1000));
      auto last_report = std::chrono::steady_clock::time_point();
      std::unique_lock<std::mutex> lock(watch_mutex);
      while (!watch_stop) {
        watch_wake.wait_for(lock, interval, [&] { return watch_stop; });
        if (watch_stop) break;
        lock.unlock();
        Status synced = sync_all();
        const auto now = std::chrono::steady_clock::now();
        if (!synced.ok() && now - last_report > std::chrono::seconds(10)) {
          fprintf(stderr, "cairn mount: periodic sync: %s\n", synced.ToString().c_str());
          last_report = now;
        }
        lock.lock();
      }
    });
  }
  fuse_loop_config* config = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(config, 16);
  const int loop = fuse_session_loop_mt(session, config);
  fuse_loop_cfg_destroy(config);
  {
    std::lock_guard<std::mutex> lock(watch_mutex);
    watch_stop = true;
  }
  watch_wake.notify_all();
  if (watcher.joinable()) watcher.join();
  if (syncer.joinable()) syncer.join();
  if (!options.read_only) {
    Status synced = sync_all();
    if (!synced.ok()) {
      fprintf(stderr, "cairn mount: the last sync before unmount: %s\n", synced.ToString().c_str());
    }
  }
  fuse_session_unmount(session);
  fuse_remove_signal_handlers(session);
  fuse_session_destroy(session);
  if (loop != 0 && loop != SIGINT && loop != SIGTERM && loop != SIGHUP) {
    return InternalError("the FUSE session ended with error " + std::to_string(loop));
  }
  return OkStatus();
}

}  // namespace cairn::mount
