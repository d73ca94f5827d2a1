// The POSIX rules of fs::FileSystem, checked through the errno a program would see, over
// each engine's FileTree: the memory engine, a SQLite file in a fresh temp directory and,
// when CAIRN_TEST_POSTGRES_URL names a server, a fresh PostgreSQL database (the engines' own
// primitives have their conformance suite in tests/meta). Block references are
// checked through the store's reference counts, as fsck and GC see them.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/hashing.h"
#include "fs/errno_map.h"
#include "fs/file_system.h"
#include "meta/engines/open_meta_store.h"
#include "meta/meta_store.h"
#include "postgres_test_database.h"

namespace cairn::fs {
namespace {

using meta::BlockRecord;
using meta::FileType;
using meta::InodeRecord;
using meta::kRootInode;

constexpr char kUuid[] = "0b6a3c1e-2f4d-4e5a-9b8c-7d6e5f4a3b2c";

template <typename T>
int ErrnoOf(const Result<T>& result) {
  return ErrnoFor(result.status());
}
int ErrnoOf(const Status& status) { return ErrnoFor(status); }

// An AttrChange with the given fields set (designated initializers would have to name all).
AttrChange Change(std::function<void(AttrChange&)> set) {
  AttrChange change;
  set(change);
  return change;
}

BlockRecord Block(uint64_t index, std::string_view bytes) {
  return BlockRecord{
      index, meta::OwnerChunk(StorageClass::kHot, meta::ChunkRef{Sha256Of(bytes), bytes.size()})};
}

class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "cairn-fs-test-XXXXXX").string();
    char* made = mkdtemp(pattern.data());
    if (made == nullptr) std::abort();
    path_ = made;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

class FileSystemTest : public ::testing::TestWithParam<std::string> {
 protected:
  // A fresh store of the engine under test (`file` names the SQLite database).
  std::unique_ptr<meta::MetaStore> OpenStore(const std::string& file) {
    std::string url = "memory:";
    if (GetParam() == "sqlite") {
      url = "sqlite://" + (dir_.path() / file).string();
    } else if (GetParam() == "postgres") {
      databases_.push_back(std::make_unique<meta::pgtest::PostgresDatabase>());
      url = databases_.back()->url();
    }
    auto opened = meta::OpenMetaStore(url);
    EXPECT_TRUE(opened.ok()) << url << ": " << opened.status().ToString();
    return opened.ok() ? std::move(opened).value() : nullptr;
  }

  // A fresh store whose volume keeps a trash for 7 days (the fixture's has none).
  std::unique_ptr<meta::MetaStore> OpenVolumeWithTrash(const std::string& file) {
    std::unique_ptr<meta::MetaStore> store = OpenStore(file);
    if (store == nullptr) return nullptr;
    InodeRecord root;
    root.mode = 0777;
    root.nlink = 2;
    Status formatted =
        store->file_tree()->FormatVolume(meta::VolumeRecord{"t", kUuid, 0, 7}, root).status();
    EXPECT_TRUE(formatted.ok()) << formatted.ToString();
    return formatted.ok() ? std::move(store) : nullptr;
  }
  // Options on the fixture's clock.
  Options ClockOptions() {
    Options options;
    options.now_ns = [this] { return clock_ns_; };
    return options;
  }

  void SetUp() override {
    if (GetParam() == "postgres") SKIP_WITHOUT_POSTGRES();
    owned_store_ = OpenStore("meta.db");
    ASSERT_NE(owned_store_, nullptr);
    store_ = owned_store_.get();
    tree_ = store_->file_tree();
    ASSERT_NE(tree_, nullptr);
    InodeRecord root;
    root.mode = 0755;
    root.nlink = 2;
    ASSERT_TRUE(tree_->FormatVolume(meta::VolumeRecord{"vol", kUuid}, root).ok());
    Options options;
    options.is_open = [this](uint64_t ino) { return open_.contains(ino); };
    options.now_ns = [this] { return clock_ns_; };
    options.session = kSession;
    fs_ = std::make_unique<FileSystem>(tree_, options);
  }

  static constexpr uint64_t kSession = 7;
  // Another mount of the same volume (its own session, nothing open).
  // A session row, alive until `expires_ms`, that has applied the feed up to `seen`.
  void PutSession(uint64_t id, uint64_t seen, TimestampMs expires_ms = INT64_MAX / 2) {
    ASSERT_TRUE(
        tree_
            ->Write(
                [&](meta::FileTreeTransaction& tx) {
                  return tx.PutSession({id, "h", "k", 1, "/m", "v", false, 0, 0, expires_ms, seen});
                },
                1)
            .ok());
  }
  std::vector<meta::OrphanRecord> Orphans() {
    std::vector<meta::OrphanRecord> out;
    EXPECT_TRUE(tree_
                    ->Read([&](meta::FileTreeTransaction& tx) -> Status {
                      ASSIGN_OR_RETURN(out, tx.ListOrphans());
                      return OkStatus();
                    })
                    .ok());
    return out;
  }
  uint64_t Sweep(FileSystem& fs) {
    Result<uint64_t> swept = fs.SweepPendingOrphans();
    EXPECT_TRUE(swept.ok()) << swept.status().ToString();
    return swept.ok() ? swept.value() : 0;
  }
  std::unique_ptr<FileSystem> OtherMount(uint64_t session = 8) {
    Options options;
    options.now_ns = [this] { return clock_ns_; };
    options.session = session;
    return std::make_unique<FileSystem>(tree_, options);
  }
  std::vector<meta::ChangeRecord> ChangesAfter(uint64_t seq) {
    std::vector<meta::ChangeRecord> out;
    EXPECT_TRUE(tree_
                    ->Read([&](meta::FileTreeTransaction& tx) -> Status {
                      ASSIGN_OR_RETURN(out, tx.ListChanges(seq, 1000));
                      return OkStatus();
                    })
                    .ok());
    return out;
  }
  uint64_t LastSeq() {
    std::vector<meta::ChangeRecord> all = ChangesAfter(0);
    return all.empty() ? 0 : all.back().seq;
  }

  InodeRecord Make(uint64_t parent, const std::string& name, FileType type = FileType::kRegular,
                   uint32_t mode = 0644) {
    auto made = fs_->MakeNode(parent, name, type, mode, 0, Caller{1000, 1000});
    EXPECT_TRUE(made.ok()) << made.status().ToString();
    return made.ok() ? made.value() : InodeRecord{};
  }
  InodeRecord Attr(uint64_t ino) {
    auto attr = fs_->GetAttr(ino);
    EXPECT_TRUE(attr.ok()) << attr.status().ToString();
    return attr.ok() ? attr.value() : InodeRecord{};
  }
  std::vector<std::string> Names(uint64_t dir) {
    std::vector<std::string> names;
    auto page = fs_->ReadDirectory(dir, "", 10000);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (page.ok()) {
      for (const auto& entry : page.value()) names.push_back(entry.name);
    }
    return names;
  }
  // Actual references per chunk digest, as fsck counts them.
  std::map<std::string, int64_t> References() {
    std::map<std::string, int64_t> out;
    auto rows = store_->CheckReferences();
    EXPECT_TRUE(rows.ok());
    if (rows.ok()) {
      for (const auto& row : rows.value()) {
        EXPECT_EQ(row.recorded_ref_count, row.actual_ref_count) << row.digest.ToHex();
        out[row.digest.ToHex()] = row.actual_ref_count;
      }
    }
    return out;
  }

  // The stores go first: their connections would otherwise keep the databases in use.
  void TearDown() override {
    fs_.reset();
    owned_store_.reset();
    databases_.clear();
  }

  TempDir dir_;
  std::vector<std::unique_ptr<meta::pgtest::PostgresDatabase>> databases_;
  std::unique_ptr<meta::MetaStore> owned_store_;
  meta::MetaStore* store_ = nullptr;
  meta::FileTree* tree_ = nullptr;
  std::unique_ptr<FileSystem> fs_;
  std::set<uint64_t> open_;
  int64_t clock_ns_ = 1'000'000'000'000;
};

TEST_P(FileSystemTest, CreatesFilesAndDirectoriesWithTheirLinkCountsAndTimes) {
  clock_ns_ += 5;
  InodeRecord dir = Make(kRootInode, "d", FileType::kDirectory, 0750);
  EXPECT_EQ(dir.nlink, 2u);
  EXPECT_EQ(dir.mode, 0750u);
  EXPECT_EQ(dir.uid, 1000u);
  EXPECT_EQ(Attr(kRootInode).nlink, 3u);
  EXPECT_EQ(Attr(kRootInode).mtime_ns, clock_ns_);
  InodeRecord file = Make(dir.ino, "f");
  EXPECT_EQ(file.nlink, 1u);
  EXPECT_EQ(file.size, 0u);
  EXPECT_EQ(file.ctime_ns, clock_ns_);
  EXPECT_EQ(Attr(dir.ino).nlink, 2u);  // a file adds no link to its directory
  auto found = fs_->Lookup(dir.ino, "f");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found.value().ino, file.ino);
  EXPECT_EQ(ErrnoOf(fs_->Lookup(dir.ino, "g")), ENOENT);
  // Type bits are not part of mode; only 07777 is kept.
  EXPECT_EQ(Make(dir.ino, "m", FileType::kRegular, 0100644).mode, 0644u);
}

TEST_P(FileSystemTest, RefusesTakenBadAndLongNamesAndMissingOrNonDirectoryParents) {
  InodeRecord file = Make(kRootInode, "f");
  auto again = fs_->MakeNode(kRootInode, "f", FileType::kDirectory, 0755, 0, {});
  EXPECT_EQ(ErrnoOf(again), EEXIST);
  EXPECT_EQ(
      ErrnoOf(fs_->MakeNode(kRootInode, std::string(256, 'a'), FileType::kRegular, 0644, 0, {})),
      ENAMETOOLONG);
  EXPECT_TRUE(
      fs_->MakeNode(kRootInode, std::string(255, 'a'), FileType::kRegular, 0644, 0, {}).ok());
  EXPECT_EQ(ErrnoOf(fs_->MakeNode(kRootInode, "a/b", FileType::kRegular, 0644, 0, {})), EINVAL);
  EXPECT_EQ(ErrnoOf(fs_->MakeNode(kRootInode, "..", FileType::kRegular, 0644, 0, {})), EINVAL);
  EXPECT_EQ(
      ErrnoOf(fs_->MakeNode(kRootInode, std::string("a\0b", 3), FileType::kRegular, 0644, 0, {})),
      EINVAL);
  EXPECT_EQ(ErrnoOf(fs_->MakeNode(file.ino, "x", FileType::kRegular, 0644, 0, {})), ENOTDIR);
  EXPECT_EQ(ErrnoOf(fs_->MakeNode(9999, "x", FileType::kRegular, 0644, 0, {})), ENOENT);
  // Nothing of the refused calls was left behind.
  EXPECT_EQ(Names(kRootInode), (std::vector<std::string>{std::string(255, 'a'), "f"}));
}

TEST_P(FileSystemTest, ASetgidDirectoryHandsDownItsGroupAndItsBitToSubdirectories) {
  InodeRecord dir = Make(kRootInode, "shared", FileType::kDirectory, 02775);
  ASSERT_TRUE(fs_->SetAttr(dir.ino, Change([](AttrChange& c) { c.gid = 4242; })).ok());
  InodeRecord file = Make(dir.ino, "f");
  InodeRecord sub = Make(dir.ino, "sub", FileType::kDirectory, 0755);
  EXPECT_EQ(file.gid, 4242u);
  EXPECT_EQ(file.mode & 02000, 0u);
  EXPECT_EQ(sub.gid, 4242u);
  EXPECT_EQ(sub.mode, 02755u);
}

TEST_P(FileSystemTest, SymlinksKeepTheirTargetAndOnlySymlinksCanBeRead) {
  auto link = fs_->MakeSymlink(kRootInode, "l", "../some/where", Caller{7, 8});
  ASSERT_TRUE(link.ok());
  EXPECT_EQ(link.value().size, 13u);
  EXPECT_EQ(link.value().type, FileType::kSymlink);
  auto target = fs_->ReadLink(link.value().ino);
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(target.value(), "../some/where");
  EXPECT_EQ(ErrnoOf(fs_->ReadLink(Make(kRootInode, "f").ino)), EINVAL);
  EXPECT_EQ(ErrnoOf(fs_->MakeSymlink(kRootInode, "long", std::string(4096, 'x'), {})),
            ENAMETOOLONG);
  EXPECT_EQ(ErrnoOf(fs_->MakeSymlink(kRootInode, "l", "x", {})), EEXIST);
}

TEST_P(FileSystemTest, HardLinksCountNamesAndTheLastUnlinkFreesTheBlocks) {
  InodeRecord file = Make(kRootInode, "f");
  ASSERT_TRUE(fs_->CommitWrite(file.ino, {Block(0, "hello")}, 5).ok());
  const std::string hello = Sha256Of("hello").ToHex();
  EXPECT_EQ(References()[hello], 1);
  InodeRecord dir = Make(kRootInode, "d", FileType::kDirectory);
  auto linked = fs_->Link(file.ino, dir.ino, "g");
  ASSERT_TRUE(linked.ok());
  EXPECT_EQ(linked.value().nlink, 2u);
  EXPECT_EQ(ErrnoOf(fs_->Link(file.ino, dir.ino, "g")), EEXIST);
  EXPECT_EQ(ErrnoOf(fs_->Link(dir.ino, kRootInode, "dl")), EPERM);
  ASSERT_TRUE(fs_->Unlink(kRootInode, "f").ok());
  EXPECT_EQ(Attr(file.ino).nlink, 1u);
  EXPECT_EQ(References()[hello], 1);
  EXPECT_EQ(ErrnoOf(fs_->Unlink(kRootInode, "f")), ENOENT);
  EXPECT_EQ(ErrnoOf(fs_->Unlink(kRootInode, "d")), EISDIR);
  ASSERT_TRUE(fs_->Unlink(dir.ino, "g").ok());
  EXPECT_EQ(ErrnoOf(fs_->GetAttr(file.ino)), ENOENT);
  EXPECT_EQ(References()[hello], 0);  // GC may take the chunk after its grace period
}

TEST_P(FileSystemTest, AFileUnlinkedWhileOpenKeepsItsBlocksUntilTheLastClose) {
  InodeRecord file = Make(kRootInode, "f");
  ASSERT_TRUE(fs_->CommitWrite(file.ino, {Block(0, "data")}, 4).ok());
  open_.insert(file.ino);
  ASSERT_TRUE(fs_->Unlink(kRootInode, "f").ok());
  EXPECT_EQ(ErrnoOf(fs_->Lookup(kRootInode, "f")), ENOENT);
  EXPECT_EQ(Attr(file.ino).nlink, 0u);
  auto blocks = fs_->GetBlocks(file.ino, 0, 1);
  ASSERT_TRUE(blocks.ok());
  EXPECT_EQ(blocks.value().size(), 1u);
  EXPECT_EQ(ErrnoOf(fs_->Link(file.ino, kRootInode, "back")), ENOENT);
  ASSERT_TRUE(fs_->ReleaseOrphan(file.ino).ok());  // still open: stays
  EXPECT_EQ(Attr(file.ino).nlink, 0u);
  open_.erase(file.ino);
  ASSERT_TRUE(fs_->ReleaseOrphan(file.ino).ok());
  EXPECT_EQ(ErrnoOf(fs_->GetAttr(file.ino)), ENOENT);
  EXPECT_EQ(References()[Sha256Of("data").ToHex()], 0);
}

TEST_P(FileSystemTest, TheOrphansOfADeadSessionAreReclaimedWithItsLocks) {
  InodeRecord kept = Make(kRootInode, "kept");
  InodeRecord gone = Make(kRootInode, "gone");
  ASSERT_TRUE(fs_->CommitWrite(gone.ino, {Block(0, "orphan data")}, 11).ok());
  open_.insert(gone.ino);
  ASSERT_TRUE(fs_->Unlink(kRootInode, "gone").ok());
  ASSERT_TRUE(
      fs_->SetLock(kept.ino, {1, meta::LockKind::kPosix, LockRequest::kWrite, 0, 9, 1}).ok());
  ASSERT_TRUE(tree_
                  ->Write(
                      [](meta::FileTreeTransaction& tx) {
                        return tx.PutSession({kSession, "h", "k", 1, "/m", "v", false, 0, 0, 0});
                      },
                      1)
                  .ok());
  // The mount dies with the handle open: another mount reclaims what it held.
  std::unique_ptr<FileSystem> other = OtherMount();
  Result<uint64_t> reclaimed = other->ReclaimSession(kSession);
  ASSERT_TRUE(reclaimed.ok()) << reclaimed.status().ToString();
  EXPECT_EQ(reclaimed.value(), 1u);
  EXPECT_EQ(ErrnoOf(other->GetAttr(gone.ino)), ENOENT);
  EXPECT_EQ(References()[Sha256Of("orphan data").ToHex()], 0);
  EXPECT_TRUE(other->GetAttr(kept.ino).ok());
  auto conflict = other->TestLock(kept.ino, {1, meta::LockKind::kPosix, LockRequest::kWrite, 0, 9});
  ASSERT_TRUE(conflict.ok());
  EXPECT_FALSE(conflict.value().has_value());  // its lock went with it
  ASSERT_TRUE(tree_
                  ->Read([](meta::FileTreeTransaction& tx) -> Status {
                    EXPECT_TRUE(tx.ListSessions().value().empty());
                    EXPECT_TRUE(tx.ListOrphans().value().empty());
                    return OkStatus();
                  })
                  .ok());
}

// Two live mounts: this one (kSession, which holds the file open) and another (8) that
// unlinks it. The unlinker cannot know this mount's handles: it leaves the file pending,
// this mount claims it (as its change feed does), and it goes only after its last close
// here, once every live mount has read the feed past that.
TEST_P(FileSystemTest, AFileUnlinkedOnAnotherMountStaysUntilTheHoldingMountLetsGo) {
  InodeRecord file = Make(kRootInode, "f");
  ASSERT_TRUE(fs_->CommitWrite(file.ino, {Block(0, "shared data")}, 11).ok());
  const std::string digest = Sha256Of("shared data").ToHex();
  PutSession(kSession, 0);
  PutSession(8, 0);
  open_.insert(file.ino);
  std::unique_ptr<FileSystem> other = OtherMount();
  ASSERT_TRUE(other->Unlink(kRootInode, "f").ok());
  EXPECT_EQ(ErrnoOf(other->Lookup(kRootInode, "f")), ENOENT);
  EXPECT_EQ(Attr(file.ino).nlink, 0u);
  std::vector<meta::OrphanRecord> orphans = Orphans();
  ASSERT_EQ(orphans.size(), 1u);
  const uint64_t since = orphans[0].since_seq;
  EXPECT_EQ(orphans[0].session, 0u);             // pending: nobody has claimed it
  EXPECT_EQ(since, ChangesAfter(0).back().seq);  // the unlink's commit, which names it
  // Nobody has read the feed that far: the sweep leaves it.
  EXPECT_EQ(Sweep(*other), 0u);
  EXPECT_EQ(References()[digest], 1);

  Result<bool> held = fs_->ClaimOrphan(file.ino);
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  EXPECT_TRUE(held.value());
  orphans = Orphans();
  ASSERT_EQ(orphans.size(), 1u);
  EXPECT_EQ(orphans[0].session, kSession);
  PutSession(kSession, since);
  PutSession(8, since);
  EXPECT_EQ(Sweep(*other), 0u);  // claimed: no sweep takes it
  auto blocks = fs_->GetBlocks(file.ino, 0, 1);
  ASSERT_TRUE(blocks.ok());
  EXPECT_EQ(blocks.value().size(), 1u);

  // The last close here: the other mount is alive, so the file is pending again, with a
  // new change that a third mount holding it would claim it from.
  open_.erase(file.ino);
  ASSERT_TRUE(fs_->ReleaseOrphan(file.ino).ok());
  orphans = Orphans();
  ASSERT_EQ(orphans.size(), 1u);
  EXPECT_EQ(orphans[0].session, 0u);
  const uint64_t again = orphans[0].since_seq;
  EXPECT_GT(again, since);
  EXPECT_EQ(ChangesAfter(since).back().ino, file.ino);
  EXPECT_EQ(Sweep(*other), 0u);
  PutSession(kSession, again);
  EXPECT_EQ(Sweep(*other), 0u);  // mount 8 has not read that far
  PutSession(8, again);
  EXPECT_EQ(Sweep(*other), 1u);
  EXPECT_EQ(ErrnoOf(fs_->GetAttr(file.ino)), ENOENT);
  EXPECT_EQ(References()[digest], 0);
  EXPECT_TRUE(Orphans().empty());
  // A claim after that finds nothing: an open that reads it then fails.
  held = fs_->ClaimOrphan(file.ino);
  ASSERT_TRUE(held.ok());
  EXPECT_FALSE(held.value());
}

TEST_P(FileSystemTest, OnlyLiveMountsHoldBackTheDeleteOfAnUnlinkedFile) {
  InodeRecord alone = Make(kRootInode, "alone");
  InodeRecord shared = Make(kRootInode, "shared");
  ASSERT_TRUE(fs_->CommitWrite(alone.ino, {Block(0, "alone")}, 5).ok());
  ASSERT_TRUE(fs_->CommitWrite(shared.ino, {Block(0, "shared")}, 6).ok());
  // A session past its expiry is dead: it holds nothing, so the file goes at once.
  PutSession(9, 0, /*expires_ms=*/1);
  ASSERT_TRUE(fs_->Unlink(kRootInode, "alone").ok());
  EXPECT_EQ(ErrnoOf(fs_->GetAttr(alone.ino)), ENOENT);
  EXPECT_EQ(References()[Sha256Of("alone").ToHex()], 0);
  EXPECT_TRUE(Orphans().empty());
  // A live one may hold it: pending, and the dead one does not hold the sweep back.
  PutSession(8, 0);
  ASSERT_TRUE(fs_->Unlink(kRootInode, "shared").ok());
  ASSERT_EQ(Orphans().size(), 1u);
  const uint64_t since = Orphans()[0].since_seq;
  EXPECT_EQ(Sweep(*fs_), 0u);
  PutSession(8, since);
  EXPECT_EQ(Sweep(*fs_), 1u);
  EXPECT_EQ(ErrnoOf(fs_->GetAttr(shared.ino)), ENOENT);
  EXPECT_EQ(References()[Sha256Of("shared").ToHex()], 0);
  // Directories and symlinks go at once: no handle of another mount reads their data.
  InodeRecord dir = Make(kRootInode, "d", FileType::kDirectory);
  ASSERT_TRUE(fs_->RemoveDirectory(kRootInode, "d").ok());
  EXPECT_EQ(ErrnoOf(fs_->GetAttr(dir.ino)), ENOENT);
  EXPECT_TRUE(Orphans().empty());
}

// A mount that dies holding a claimed orphan: the reclaimer lets it go as pending while
// another mount is alive, and takes it as its own when it holds it open too.
TEST_P(FileSystemTest, TheClaimedOrphanOfADeadMountIsPendingAgainOrTheReclaimers) {
  InodeRecord a = Make(kRootInode, "a");
  InodeRecord b = Make(kRootInode, "b");
  PutSession(kSession, 0);
  PutSession(8, 0);
  PutSession(9, 0);
  open_.insert(a.ino);
  open_.insert(b.ino);
  ASSERT_TRUE(fs_->Unlink(kRootInode, "a").ok());
  ASSERT_TRUE(fs_->Unlink(kRootInode, "b").ok());
  std::vector<meta::OrphanRecord> orphans = Orphans();
  ASSERT_EQ(orphans.size(), 2u);
  EXPECT_EQ(orphans[0].session, kSession);  // open here: this session's from the start
  EXPECT_EQ(orphans[1].session, kSession);
  // Mount 8 reclaims kSession, dead with both open; 8 holds b open itself.
  Options options = ClockOptions();
  options.session = 8;
  options.is_open = [&](uint64_t ino) { return ino == b.ino; };
  FileSystem reclaimer(tree_, options);
  Result<uint64_t> reclaimed = reclaimer.ReclaimSession(kSession);
  ASSERT_TRUE(reclaimed.ok()) << reclaimed.status().ToString();
  orphans = Orphans();
  ASSERT_EQ(orphans.size(), 2u);
  EXPECT_EQ(orphans[0].ino, a.ino);
  EXPECT_EQ(orphans[0].session, 0u);  // mount 9 may hold it
  EXPECT_EQ(orphans[1].ino, b.ino);
  EXPECT_EQ(orphans[1].session, 8u);
}

TEST_P(FileSystemTest, EveryWriteTellsTheChangeFeedWhatItChanged) {
  const uint64_t start = LastSeq();
  InodeRecord dir = Make(kRootInode, "d", FileType::kDirectory, 0755);
  std::vector<meta::ChangeRecord> made = ChangesAfter(start);
  // The new entry and its parent's attributes; the new inode itself is nobody's news.
  ASSERT_EQ(made.size(), 1u);
  EXPECT_EQ(made[0].session, kSession);
  EXPECT_EQ(made[0].ino, kRootInode);
  EXPECT_FALSE(made[0].data);
  EXPECT_EQ(made[0].parent, kRootInode);
  EXPECT_EQ(made[0].name, "d");

  InodeRecord file = Make(dir.ino, "f");
  uint64_t seq = LastSeq();
  ASSERT_TRUE(fs_->CommitWrite(file.ino, {Block(0, "bytes")}, 5).ok());
  std::vector<meta::ChangeRecord> written = ChangesAfter(seq);
  ASSERT_EQ(written.size(), 1u);
  EXPECT_EQ(written[0].ino, file.ino);
  EXPECT_TRUE(written[0].data);
  EXPECT_EQ(written[0].parent, 0u);

  seq = LastSeq();
  std::unique_ptr<FileSystem> other = OtherMount();
  ASSERT_TRUE(other->Rename(dir.ino, "f", kRootInode, "g", 0).ok());
  std::vector<meta::ChangeRecord> renamed = ChangesAfter(seq);
  std::set<std::pair<uint64_t, std::string>> entries;
  std::set<uint64_t> inodes;
  for (const meta::ChangeRecord& change : renamed) {
    EXPECT_EQ(change.session, 8u);
    if (change.parent != 0) entries.emplace(change.parent, change.name);
    if (change.ino != 0) inodes.insert(change.ino);
  }
  EXPECT_EQ(entries,
            (std::set<std::pair<uint64_t, std::string>>{{dir.ino, "f"}, {kRootInode, "g"}}));
  EXPECT_TRUE(inodes.contains(dir.ino));
  EXPECT_TRUE(inodes.contains(kRootInode));

  // A failed operation appends nothing.
  seq = LastSeq();
  EXPECT_EQ(ErrnoOf(fs_->MakeNode(kRootInode, "g", FileType::kRegular, 0644, 0, Caller{})), EEXIST);
  EXPECT_TRUE(ChangesAfter(seq).empty());

  AttrChange chmod_change;
  chmod_change.mode = 0600;
  ASSERT_TRUE(fs_->SetAttr(file.ino, chmod_change).ok());
  std::vector<meta::ChangeRecord> chmod = ChangesAfter(seq);
  ASSERT_EQ(chmod.size(), 1u);
  EXPECT_EQ(chmod[0].ino, file.ino);
  EXPECT_FALSE(chmod[0].data);
}

// With fresh_directory_ms, a directory this mount just wrote is answered as the write left
// it, as the kernel's attribute cache would have (another mount's change is news only once
// the change feed names it: ForgetAttr); without, every GetAttr reads.
TEST_P(FileSystemTest, ADirectoryJustWrittenIsAnsweredAsWrittenUntilTheFeedNamesIt) {
  Options options;
  options.now_ns = [this] { return clock_ns_; };
  options.session = 9;
  options.fresh_directory_ms = 60'000;
  FileSystem mount(tree_, options);
  std::unique_ptr<FileSystem> other = OtherMount();
  auto made = mount.MakeNode(kRootInode, "d", FileType::kDirectory, 0755, 0, Caller{});
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  const uint64_t dir = made->ino;
  clock_ns_ += 1000;
  ASSERT_TRUE(mount.MakeNode(dir, "f", FileType::kRegular, 0644, 0, Caller{}).ok());
  InodeRecord stored = Attr(dir);  // read from the store by the fixture's mount
  auto fresh = mount.GetAttr(dir);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->mtime_ns, clock_ns_);
  EXPECT_EQ(fresh->change, stored.change);
  EXPECT_EQ(fresh->mtime_ns, stored.mtime_ns);

  // Another mount's chmod: this one answers what its own write left until told.
  AttrChange chmod_change;
  chmod_change.mode = 0700;
  ASSERT_TRUE(other->SetAttr(dir, chmod_change).ok());
  EXPECT_EQ(mount.GetAttr(dir).value().mode, 0755u);
  mount.ForgetAttr(dir);
  EXPECT_EQ(mount.GetAttr(dir).value().mode, 0700u);

  // A later write of its own stores again; an unlink there moves mtime and ctime.
  clock_ns_ += 1000;
  ASSERT_TRUE(mount.Unlink(dir, "f").ok());
  EXPECT_EQ(mount.GetAttr(dir).value().mtime_ns, clock_ns_);
  EXPECT_EQ(mount.GetAttr(dir).value().mode, 0700u);

  // Removed: no answer from memory.
  ASSERT_TRUE(mount.RemoveDirectory(kRootInode, "d").ok());
  EXPECT_EQ(ErrnoOf(mount.GetAttr(dir)), ENOENT);

  // The fixture's mount (fresh_directory_ms 0) always reads.
  InodeRecord e = Make(kRootInode, "e", FileType::kDirectory, 0755);
  ASSERT_TRUE(other->SetAttr(e.ino, chmod_change).ok());
  EXPECT_EQ(Attr(e.ino).mode, 0700u);
}

TEST_P(FileSystemTest, LocksConflictAcrossMountsAndSplitAndMergeLikeFcntl) {
  InodeRecord file = Make(kRootInode, "locked");
  std::unique_ptr<FileSystem> other = OtherMount();
  using meta::LockKind;
  auto posix = [](uint64_t owner, LockRequest::Type type, uint64_t start, uint64_t end) {
    return LockRequest{owner, LockKind::kPosix, type, start, end, 100};
  };
  ASSERT_TRUE(fs_->SetLock(file.ino, posix(1, LockRequest::kRead, 0, 99)).ok());
  // Readers share; a writer of another mount (or owner) conflicts.
  EXPECT_TRUE(other->SetLock(file.ino, posix(1, LockRequest::kRead, 50, 60)).ok());
  EXPECT_EQ(ErrnoOf(other->SetLock(file.ino, posix(1, LockRequest::kWrite, 90, 200))), EAGAIN);
  EXPECT_EQ(ErrnoOf(fs_->SetLock(file.ino, posix(2, LockRequest::kWrite, 55, 55))), EAGAIN);
  auto held = fs_->TestLock(file.ino, posix(2, LockRequest::kWrite, 55, 55));
  ASSERT_TRUE(held.ok() && held.value().has_value());
  EXPECT_EQ(held.value()->session, kSession);  // the first conflicting lock: its own read lock
  EXPECT_EQ(held.value()->end, 99u);
  // The owner upgrades part of its own range: no conflict with itself.
  ASSERT_TRUE(other->SetLock(file.ino, posix(1, LockRequest::kUnlock, 0, kLockEnd)).ok());
  ASSERT_TRUE(fs_->SetLock(file.ino, posix(1, LockRequest::kWrite, 40, 59)).ok());
  // Unlocking the middle splits; locking the gap again with the same type merges.
  ASSERT_TRUE(fs_->SetLock(file.ino, posix(1, LockRequest::kUnlock, 10, 19)).ok());
  EXPECT_TRUE(other->SetLock(file.ino, posix(1, LockRequest::kRead, 12, 15)).ok());
  EXPECT_EQ(ErrnoOf(other->SetLock(file.ino, posix(1, LockRequest::kRead, 45, 45))), EAGAIN);
  EXPECT_TRUE(other->SetLock(file.ino, posix(1, LockRequest::kWrite, 100, 100)).ok());
  std::vector<meta::LockRecord> rows;
  ASSERT_TRUE(tree_
                  ->Read([&](meta::FileTreeTransaction& tx) -> Status {
                    ASSIGN_OR_RETURN(rows, tx.ListLocks(file.ino));
                    return OkStatus();
                  })
                  .ok());
  std::vector<std::string> mine;
  for (const meta::LockRecord& lock : rows) {
    if (lock.session != kSession) continue;
    mine.push_back(std::to_string(lock.start) + "-" + std::to_string(lock.end) +
                   (lock.exclusive ? "W" : "R"));
  }
  EXPECT_EQ(mine, (std::vector<std::string>{"0-9R", "20-39R", "40-59W", "60-99R"}));
  // flock and fcntl locks ignore each other; two flocks conflict across mounts.
  LockRequest flock{5, LockKind::kFlock, LockRequest::kWrite, 0, kLockEnd, 100};
  ASSERT_TRUE(fs_->SetLock(file.ino, flock).ok());
  EXPECT_EQ(ErrnoOf(other->SetLock(file.ino, flock)), EAGAIN);
  ASSERT_TRUE(fs_->ReleaseLocks(file.ino, 5, LockKind::kFlock).ok());
  EXPECT_TRUE(other->SetLock(file.ino, flock).ok());
  // Closing drops the owner's fcntl locks.
  ASSERT_TRUE(fs_->ReleaseLocks(file.ino, 1, LockKind::kPosix).ok());
  EXPECT_TRUE(other->SetLock(file.ino, posix(1, LockRequest::kWrite, 0, 99)).ok());
  EXPECT_EQ(ErrnoOf(fs_->SetLock(file.ino, posix(1, LockRequest::kRead, 5, 5))), EAGAIN);
  EXPECT_EQ(ErrnoOf(fs_->SetLock(file.ino, posix(1, LockRequest::kRead, 9, 2))), EINVAL);
}

TEST_P(FileSystemTest, TheTrashIsListedPageByPageInOrder) {
  std::unique_ptr<meta::MetaStore> store = OpenVolumeWithTrash("trash-pages.db");
  ASSERT_NE(store, nullptr);
  FileSystem fs(store->file_tree(), ClockOptions());
  // Three hours of deletes, read in pages of 4 entries (and 4 hours): the first hour spans
  // several pages, one ends exactly at a page's end.
  constexpr uint32_t kPage = 4;
  std::set<std::string> deleted;
  for (int files : {13, 4, 1}) {
    for (int i = 0; i < files; ++i) {
      const std::string name = "f" + std::to_string(deleted.size());
      ASSERT_TRUE(fs.MakeNode(kRootInode, name, FileType::kRegular, 0644, 0, Caller{}).ok());
      ASSERT_TRUE(fs.Unlink(kRootInode, name).ok());
      deleted.insert(name);
    }
    clock_ns_ += int64_t{3600} * 1'000'000'000;
  }
  std::vector<std::pair<std::string, std::string>> seen;  // (hour, entry)
  std::set<std::string> names;
  auto collect = [&](const TrashEntry& entry) {
    seen.emplace_back(entry.hour, entry.name);
    names.insert(entry.original_name);
    return OkStatus();
  };
  ASSERT_TRUE(fs.VisitTrash(collect, kPage).ok());
  EXPECT_EQ(seen.size(), deleted.size());  // each once
  EXPECT_EQ(names, deleted);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  std::set<std::string> hours;
  for (const auto& [hour, entry] : seen) hours.insert(hour);
  EXPECT_EQ(hours.size(), 3u);
  // A page of one, and the default page, list the same.
  const auto all = seen;
  seen.clear();
  ASSERT_TRUE(fs.VisitTrash(collect, 1).ok());
  EXPECT_EQ(seen, all);
  seen.clear();
  ASSERT_TRUE(fs.VisitTrash(collect).ok());
  EXPECT_EQ(seen, all);
  EXPECT_EQ(fs.VisitTrash(collect, 0).code(), StatusCode::kInvalidArgument);
  // The visitor's error stops the listing and comes back.
  size_t calls = 0;
  Status stopped = fs.VisitTrash(
      [&](const TrashEntry&) { return ++calls == 6 ? AbortedError("enough") : OkStatus(); }, kPage);
  EXPECT_EQ(stopped.code(), StatusCode::kAborted);
  EXPECT_EQ(calls, 6u);
  // Entries purged while the listing runs are not an error: it ends, with no entry twice.
  std::set<std::pair<std::string, std::string>> once;
  bool purged = false;
  ASSERT_TRUE(fs.VisitTrash(
                    [&](const TrashEntry& entry) -> Status {
                      EXPECT_TRUE(once.emplace(entry.hour, entry.name).second);
                      if (!purged) {
                        purged = true;
                        auto gone =
                            fs.PurgeTrash(clock_ns_ + int64_t{8} * 24 * 3600 * 1'000'000'000, 1000);
                        EXPECT_TRUE(gone.ok()) << gone.status().ToString();
                        if (gone.ok()) {
                          EXPECT_EQ(*gone, deleted.size());
                        }
                      }
                      return OkStatus();
                    },
                    kPage)
                  .ok());
  EXPECT_EQ(once.size(), kPage);  // the first page, read before the purge
  EXPECT_TRUE(fs.ListTrash()->empty());
}

TEST_P(FileSystemTest, TheTrashKeepsDeletedAndReplacedFilesUntilRestoredOrPurged) {
  std::unique_ptr<meta::MetaStore> store = OpenVolumeWithTrash("trash.db");
  ASSERT_NE(store, nullptr);
  FileSystem fs(store->file_tree(), ClockOptions());
  auto make = [&](uint64_t parent, const std::string& name, FileType type = FileType::kRegular) {
    auto made = fs.MakeNode(parent, name, type, 0644, 0, Caller{1000, 1000});
    EXPECT_TRUE(made.ok()) << made.status().ToString();
    return made.ok() ? made.value() : InodeRecord{};
  };
  InodeRecord dir = make(kRootInode, "d", FileType::kDirectory);
  InodeRecord doc = make(dir.ino, "doc");
  ASSERT_TRUE(fs.CommitWrite(doc.ino, {Block(0, "first draft")}, 11).ok());
  InodeRecord linked = make(dir.ino, "two-names");
  ASSERT_TRUE(fs.Link(linked.ino, kRootInode, "other-name").ok());

  ASSERT_TRUE(fs.Unlink(dir.ino, "doc").ok());
  ASSERT_TRUE(fs.Unlink(dir.ino, "two-names").ok());  // another name is left: no trash
  InodeRecord next = make(dir.ino, "next");
  InodeRecord old = make(dir.ino, "old");
  ASSERT_TRUE(fs.Rename(dir.ino, "next", dir.ino, "old", 0).ok());  // "old" replaced
  EXPECT_EQ(ErrnoOf(fs.Lookup(dir.ino, "doc")), ENOENT);

  auto trash = fs.ListTrash();
  ASSERT_TRUE(trash.ok()) << trash.status().ToString();
  ASSERT_EQ(trash->size(), 2u);
  std::map<std::string, TrashEntry> by_name;
  for (const TrashEntry& entry : *trash) by_name[entry.original_name] = entry;
  ASSERT_TRUE(by_name.contains("doc") && by_name.contains("old"));
  EXPECT_EQ(by_name["doc"].original_parent, dir.ino);
  EXPECT_EQ(by_name["doc"].inode.ino, doc.ino);
  EXPECT_TRUE(InTrashFile(by_name["doc"].inode));  // shown with nlink 0
  EXPECT_EQ(by_name["old"].inode.ino, old.ino);
  // The data stays referenced while in the trash.
  auto refs = store->CheckReferences();
  ASSERT_TRUE(refs.ok());
  ASSERT_EQ(refs->size(), 1u);
  EXPECT_EQ(refs->at(0).actual_ref_count, 1);

  // The trash is the volume's: nothing is made in it or moved into it, nor is it removed.
  auto trash_dir = fs.Lookup(kRootInode, ".trash");
  ASSERT_TRUE(trash_dir.ok());
  EXPECT_EQ(trash_dir->ino, kTrashInode);
  EXPECT_EQ(trash_dir->mode, 0700u);
  EXPECT_EQ(ErrnoOf(fs.MakeNode(kTrashInode, "x", FileType::kRegular, 0644, 0, Caller{})), EPERM);
  EXPECT_EQ(ErrnoOf(fs.Rename(kRootInode, "other-name", kTrashInode, "x", 0)), EPERM);
  EXPECT_EQ(ErrnoOf(fs.RemoveDirectory(kRootInode, ".trash")), EPERM);
  EXPECT_EQ(ErrnoOf(fs.MakeNode(dir.ino, ".trash", FileType::kRegular, 0644, 0, Caller{})), 0);
  EXPECT_EQ(ErrnoOf(fs.Link(doc.ino, kRootInode, "relink")), ENOENT);

  // Restore: back under its name; a taken name is EEXIST; another target works.
  make(dir.ino, "doc");
  EXPECT_EQ(ErrnoOf(fs.RestoreFromTrash(by_name["doc"].hour, by_name["doc"].name)), EEXIST);
  ASSERT_TRUE(
      fs.RestoreFromTrash(by_name["doc"].hour, by_name["doc"].name, kRootInode, "doc-restored")
          .ok());
  auto restored = fs.Lookup(kRootInode, "doc-restored");
  ASSERT_TRUE(restored.ok());
  EXPECT_EQ(restored->ino, doc.ino);
  EXPECT_FALSE(InTrashFile(*restored));
  EXPECT_EQ(restored->size, 11u);

  // Purge: an hour that is not over yet stays; once trash_days passed it goes with its data.
  auto kept = fs.PurgeTrash(clock_ns_, 1000);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept.value(), 0u);
  auto purged = fs.PurgeTrash(clock_ns_ + int64_t{8} * 24 * 3600 * 1'000'000'000, 1000);
  ASSERT_TRUE(purged.ok()) << purged.status().ToString();
  EXPECT_EQ(purged.value(), 1u);
  EXPECT_EQ(ErrnoOf(fs.GetAttr(old.ino)), ENOENT);
  EXPECT_TRUE(fs.ListTrash()->empty());
  EXPECT_TRUE(fs.GetAttr(doc.ino).ok());
  (void)next;
}

// A file cut shorter (truncate, O_TRUNC) leaves the version before the cut in the trash: a
// new inode holding the same chunks (one more reference each, no byte copied) and xattrs,
// named after a name of the file when the instance knows one that still holds.
TEST_P(FileSystemTest, TruncationKeepsTheVersionBeforeItInTheTrash) {
  std::unique_ptr<meta::MetaStore> store = OpenVolumeWithTrash("versions.db");
  ASSERT_NE(store, nullptr);
  FileSystem fs(store->file_tree(), ClockOptions());
  auto dir = fs.MakeNode(kRootInode, "etc", FileType::kDirectory, 0755, 0, Caller{0, 0});
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  auto cfg = fs.MakeNode(dir->ino, "app.conf", FileType::kRegular, 0640, 0, Caller{7, 8});
  ASSERT_TRUE(cfg.ok());
  const uint64_t first_size = kBlockBytes + 9;
  ASSERT_TRUE(fs.CommitWrite(cfg->ino, {Block(0, "version one, block zero"), Block(1, "the tail!")},
                             first_size)
                  .ok());
  ASSERT_TRUE(fs.SetXattr(cfg->ino, "user.origin", "deploy-41", 0).ok());
  auto chunk_refs = [&](std::string_view bytes) -> int64_t {
    auto refs = store->CheckReferences();
    EXPECT_TRUE(refs.ok());
    if (!refs.ok()) return -1;
    for (const auto& row : *refs) {
      if (row.digest == Sha256Of(bytes)) return row.actual_ref_count;
    }
    return 0;
  };

  // Growing a file, or cutting an empty one, keeps nothing.
  AttrChange grow;
  grow.size = first_size + 100;
  ASSERT_TRUE(fs.SetAttr(cfg->ino, grow).ok());
  auto empty = fs.MakeNode(dir->ino, "empty", FileType::kRegular, 0644, 0, Caller{0, 0});
  ASSERT_TRUE(empty.ok());
  AttrChange to_zero;
  to_zero.size = 0;
  ASSERT_TRUE(fs.SetAttr(empty->ino, to_zero).ok());
  ASSERT_TRUE(fs.ListTrash()->empty());

  // `cp new app.conf` (O_TRUNC): the version before is in the trash under the file's name.
  auto cut = fs.SetAttr(cfg->ino, to_zero);
  ASSERT_TRUE(cut.ok()) << cut.status().ToString();
  EXPECT_EQ(cut->size, 0u);
  EXPECT_EQ(cut->ino, cfg->ino);
  auto trash = fs.ListTrash();
  ASSERT_TRUE(trash.ok()) << trash.status().ToString();
  ASSERT_EQ(trash->size(), 1u);
  const TrashEntry first = trash->at(0);
  EXPECT_EQ(first.original_parent, dir->ino);
  EXPECT_EQ(first.original_name, "app.conf");
  EXPECT_NE(first.inode.ino, cfg->ino);
  EXPECT_EQ(first.inode.size, first_size + 100);
  EXPECT_EQ(first.inode.mode, 0640u);
  EXPECT_EQ(first.inode.uid, 7u);
  EXPECT_TRUE(InTrashFile(first.inode));
  auto kept = fs.GetBlocks(first.inode.ino, 0, 10);
  ASSERT_TRUE(kept.ok());
  ASSERT_EQ(kept->size(), 2u);
  EXPECT_EQ(kept->at(1).chunk.chunk.digest, Sha256Of("the tail!"));
  auto origin = fs.GetXattr(first.inode.ino, "user.origin");
  ASSERT_TRUE(origin.ok()) << origin.status().ToString();
  EXPECT_EQ(*origin, "deploy-41");
  EXPECT_TRUE(fs.GetBlocks(cfg->ino, 0, 10)->empty());
  EXPECT_EQ(chunk_refs("the tail!"), 1);  // the trash's copy holds it; the file let go

  // A second cut in the same hour is a second entry: each version is its own inode.
  ASSERT_TRUE(fs.CommitWrite(cfg->ino, {Block(0, "version two")}, 11).ok());
  AttrChange to_four;
  to_four.size = 4;
  auto trimmed = Block(0, "vers");
  to_four.boundary_block = trimmed;
  ASSERT_TRUE(fs.SetAttr(cfg->ino, to_four).ok());
  ASSERT_EQ(fs.ListTrash()->size(), 2u);

  // Another instance that never saw a name of the file (a truncate arrives by inode) keeps
  // the version under the inode's number; so does one whose name went stale.
  FileSystem other(store->file_tree(), ClockOptions());
  ASSERT_TRUE(other.SetAttr(cfg->ino, to_zero).ok());
  ASSERT_TRUE(fs.CommitWrite(cfg->ino, {Block(0, "version four")}, 12).ok());
  ASSERT_TRUE(other.Rename(dir->ino, "app.conf", dir->ino, "app.conf.new", 0).ok());
  ASSERT_TRUE(fs.SetAttr(cfg->ino, to_zero).ok());  // fs still knows "app.conf"
  trash = fs.ListTrash();
  ASSERT_TRUE(trash.ok());
  ASSERT_EQ(trash->size(), 4u);
  std::vector<TrashEntry> nameless;
  for (const TrashEntry& entry : *trash) {
    if (entry.original_parent == 0) nameless.push_back(entry);
  }
  ASSERT_EQ(nameless.size(), 2u);
  for (const TrashEntry& entry : nameless) {
    EXPECT_EQ(entry.original_name, "inode-" + std::to_string(cfg->ino));
  }
  // Without a target it has nowhere to go back to; with one it is restored whole.
  EXPECT_EQ(ErrnoOf(fs.RestoreFromTrash(nameless[0].hour, nameless[0].name)), ENOENT);
  // app.conf is free again (renamed away): the first version goes back under its name.
  EXPECT_EQ(ErrnoOf(fs.RestoreFromTrash(first.hour, first.name)), 0);
  auto back = fs.Lookup(dir->ino, "app.conf");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->ino, first.inode.ino);
  EXPECT_EQ(back->size, first_size + 100);
  EXPECT_FALSE(InTrashFile(*back));

  // With the trash off, a cut keeps nothing.
  ASSERT_TRUE(fs.SetTrashDays(0).ok());
  ASSERT_TRUE(fs.SetAttr(back->ino, to_zero).ok());
  EXPECT_EQ(fs.ListTrash()->size(), 3u);
  EXPECT_EQ(chunk_refs("the tail!"), 0);

  // Purged, the versions give their chunks back.
  auto purged = fs.PurgeTrash(clock_ns_ + int64_t{8} * 24 * 3600 * 1'000'000'000, 1000);
  ASSERT_TRUE(purged.ok()) << purged.status().ToString();
  EXPECT_EQ(*purged, 3u);
  EXPECT_EQ(chunk_refs("version two"), 0);
  EXPECT_EQ(chunk_refs("version four"), 0);
}

// SetTrashDays changes where the next delete goes, within 0..kMaxTrashDays.
TEST_P(FileSystemTest, TrashDaysDecideWhereTheNextDeleteGoes) {
  std::unique_ptr<meta::MetaStore> store = OpenVolumeWithTrash("days.db");
  ASSERT_NE(store, nullptr);
  FileSystem fs(store->file_tree(), ClockOptions());
  EXPECT_EQ(fs.SetTrashDays(kMaxTrashDays + 1).status().code(), StatusCode::kInvalidArgument);
  Result<uint32_t> before = fs.SetTrashDays(0);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_EQ(*before, 7u);
  ASSERT_TRUE(fs.MakeNode(kRootInode, "gone", FileType::kRegular, 0644, 0, Caller{0, 0}).ok());
  ASSERT_TRUE(fs.Unlink(kRootInode, "gone").ok());
  EXPECT_FALSE(fs.Lookup(kRootInode, std::string(kTrashName)).ok());  // no trash made
  before = fs.SetTrashDays(kMaxTrashDays);
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(*before, 0u);
  ASSERT_TRUE(fs.MakeNode(kRootInode, "kept", FileType::kRegular, 0644, 0, Caller{0, 0}).ok());
  ASSERT_TRUE(fs.Unlink(kRootInode, "kept").ok());
  Result<std::vector<TrashEntry>> trash = fs.ListTrash();
  ASSERT_TRUE(trash.ok());
  ASSERT_EQ(trash->size(), 1u);
  EXPECT_NE((*trash)[0].name.find("kept"), std::string::npos);
}

TEST_P(FileSystemTest, RemoveDirectoryNeedsAnEmptyDirectory) {
  InodeRecord dir = Make(kRootInode, "d", FileType::kDirectory);
  Make(dir.ino, "f");
  EXPECT_EQ(ErrnoOf(fs_->RemoveDirectory(kRootInode, "d")), ENOTEMPTY);
  EXPECT_EQ(ErrnoOf(fs_->RemoveDirectory(dir.ino, "f")), ENOTDIR);
  EXPECT_EQ(ErrnoOf(fs_->RemoveDirectory(dir.ino, ".")), EINVAL);
  EXPECT_EQ(ErrnoOf(fs_->RemoveDirectory(dir.ino, "..")), ENOTEMPTY);
  ASSERT_TRUE(fs_->Unlink(dir.ino, "f").ok());
  EXPECT_EQ(Attr(kRootInode).nlink, 3u);
  ASSERT_TRUE(fs_->RemoveDirectory(kRootInode, "d").ok());
  EXPECT_EQ(Attr(kRootInode).nlink, 2u);
  EXPECT_EQ(ErrnoOf(fs_->GetAttr(dir.ino)), ENOENT);
  EXPECT_TRUE(Names(kRootInode).empty());
}

TEST_P(FileSystemTest, RenameReplacesMatchingKindsOnly) {
  InodeRecord a = Make(kRootInode, "a");
  InodeRecord b = Make(kRootInode, "b");
  ASSERT_TRUE(fs_->CommitWrite(b.ino, {Block(0, "old b")}, 5).ok());
  InodeRecord full = Make(kRootInode, "full", FileType::kDirectory);
  Make(full.ino, "x");
  InodeRecord empty = Make(kRootInode, "empty", FileType::kDirectory);
  InodeRecord dir = Make(kRootInode, "dir", FileType::kDirectory);

  EXPECT_EQ(ErrnoOf(fs_->Rename(kRootInode, "a", kRootInode, "empty", 0)), EISDIR);
  EXPECT_EQ(ErrnoOf(fs_->Rename(kRootInode, "dir", kRootInode, "a", 0)), ENOTDIR);
  EXPECT_EQ(ErrnoOf(fs_->Rename(kRootInode, "dir", kRootInode, "full", 0)), ENOTEMPTY);
  EXPECT_EQ(ErrnoOf(fs_->Rename(kRootInode, "a", kRootInode, "b", kRenameNoReplace)), EEXIST);
  EXPECT_EQ(ErrnoOf(fs_->Rename(kRootInode, "nope", kRootInode, "z", 0)), ENOENT);
  EXPECT_EQ(ErrnoOf(fs_->Rename(kRootInode, "a", kRootInode, "b", 4)), EINVAL);
  EXPECT_EQ(
      ErrnoOf(fs_->Rename(kRootInode, "a", kRootInode, "b", kRenameNoReplace | kRenameExchange)),
      EINVAL);

  ASSERT_TRUE(fs_->Rename(kRootInode, "a", kRootInode, "b", 0).ok());
  EXPECT_EQ(fs_->Lookup(kRootInode, "b").value().ino, a.ino);
  EXPECT_EQ(ErrnoOf(fs_->GetAttr(b.ino)), ENOENT);  // the replaced file is gone
  EXPECT_EQ(References()[Sha256Of("old b").ToHex()], 0);
  const uint32_t root_links = Attr(kRootInode).nlink;
  ASSERT_TRUE(fs_->Rename(kRootInode, "dir", kRootInode, "empty", 0).ok());
  EXPECT_EQ(Attr(kRootInode).nlink, root_links - 1);
  EXPECT_EQ(ErrnoOf(fs_->GetAttr(empty.ino)), ENOENT);
  EXPECT_EQ(Names(kRootInode), (std::vector<std::string>{"b", "empty", "full"}));
}

TEST_P(FileSystemTest, ADirectoryCannotMoveIntoItsOwnSubtreeEvenAfterEarlierMoves) {
  InodeRecord a = Make(kRootInode, "a", FileType::kDirectory);
  InodeRecord b = Make(a.ino, "b", FileType::kDirectory);
  InodeRecord c = Make(b.ino, "c", FileType::kDirectory);
  EXPECT_EQ(ErrnoOf(fs_->Rename(kRootInode, "a", c.ino, "a", 0)), EINVAL);
  EXPECT_EQ(ErrnoOf(fs_->Rename(kRootInode, "a", a.ino, "a", 0)), EINVAL);
  // Move c up to the root, then a under c: allowed; then c under b: b is now below c.
  ASSERT_TRUE(fs_->Rename(b.ino, "c", kRootInode, "c", 0).ok());
  EXPECT_EQ(Attr(c.ino).parent, kRootInode);
  ASSERT_TRUE(fs_->Rename(kRootInode, "a", c.ino, "a", 0).ok());
  EXPECT_EQ(ErrnoOf(fs_->Rename(kRootInode, "c", b.ino, "c", 0)), EINVAL);
  EXPECT_EQ(Attr(kRootInode).nlink, 3u);  // root holds c only
  EXPECT_EQ(Attr(c.ino).nlink, 3u);       // c holds a
  EXPECT_EQ(Attr(a.ino).nlink, 3u);       // a holds b
  EXPECT_EQ(Attr(b.ino).nlink, 2u);
}

TEST_P(FileSystemTest, ExchangeSwapsTwoNamesAcrossDirectoriesAndKeepsLinkCounts) {
  InodeRecord left = Make(kRootInode, "left", FileType::kDirectory);
  InodeRecord right = Make(kRootInode, "right", FileType::kDirectory);
  InodeRecord sub = Make(left.ino, "sub", FileType::kDirectory);
  InodeRecord file = Make(right.ino, "file");
  EXPECT_EQ(ErrnoOf(fs_->Rename(left.ino, "sub", right.ino, "none", kRenameExchange)), ENOENT);
  ASSERT_TRUE(fs_->Rename(left.ino, "sub", right.ino, "file", kRenameExchange).ok());
  EXPECT_EQ(fs_->Lookup(left.ino, "sub").value().ino, file.ino);
  EXPECT_EQ(fs_->Lookup(right.ino, "file").value().ino, sub.ino);
  EXPECT_EQ(Attr(left.ino).nlink, 2u);
  EXPECT_EQ(Attr(right.ino).nlink, 3u);
  EXPECT_EQ(Attr(sub.ino).parent, right.ino);
  // A directory may not be exchanged into its own subtree.
  InodeRecord deep = Make(sub.ino, "deep");
  (void)deep;
  EXPECT_EQ(ErrnoOf(fs_->Rename(kRootInode, "right", sub.ino, "deep", kRenameExchange)), EINVAL);
}

TEST_P(FileSystemTest, RenamingOneNameOfAFileOverAnotherChangesNothing) {
  InodeRecord file = Make(kRootInode, "a");
  ASSERT_TRUE(fs_->Link(file.ino, kRootInode, "b").ok());
  ASSERT_TRUE(fs_->Rename(kRootInode, "a", kRootInode, "b", 0).ok());
  EXPECT_EQ(Names(kRootInode), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(Attr(file.ino).nlink, 2u);
}

TEST_P(FileSystemTest, TruncateDropsWholeBlocksAndRequiresATrimmedBoundaryBlock) {
  InodeRecord file = Make(kRootInode, "f");
  const std::string full(kBlockBytes, 'x');
  ASSERT_TRUE(fs_->CommitWrite(file.ino, {Block(0, full), Block(1, full), Block(5, "tail")},
                               5 * kBlockBytes + 4)
                  .ok());
  EXPECT_EQ(Attr(file.ino).size, 5 * kBlockBytes + 4);
  // Cutting block 1 in the middle without its trimmed copy is refused and changes nothing.
  auto refused = fs_->SetAttr(file.ino, Change([](AttrChange& c) { c.size = kBlockBytes + 10; }));
  EXPECT_EQ(refused.status().code(), StatusCode::kInternal);
  EXPECT_EQ(Attr(file.ino).size, 5 * kBlockBytes + 4);
  EXPECT_EQ(fs_->GetBlocks(file.ino, 0, 10).value().size(), 3u);

  const std::string head(10, 'x');
  auto cut = fs_->SetAttr(file.ino, Change([&](AttrChange& c) {
                            c.size = kBlockBytes + 10;
                            c.boundary_block = Block(1, head);
                          }));
  ASSERT_TRUE(cut.ok()) << cut.status().ToString();
  EXPECT_EQ(cut.value().size, kBlockBytes + 10);
  auto blocks = fs_->GetBlocks(file.ino, 0, 10).value();
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(blocks[1].chunk.chunk.size_bytes, 10u);
  auto refs = References();
  EXPECT_EQ(refs[Sha256Of(full).ToHex()], 1);
  EXPECT_EQ(refs[Sha256Of("tail").ToHex()], 0);
  // Growing adds a hole, no block.
  ASSERT_TRUE(fs_->SetAttr(file.ino, Change([](AttrChange& c) { c.size = 3 * kBlockBytes; })).ok());
  EXPECT_EQ(fs_->GetBlocks(file.ino, 0, 10).value().size(), 2u);
  EXPECT_EQ(ErrnoOf(fs_->SetAttr(kRootInode, Change([](AttrChange& c) { c.size = 0; }))), EISDIR);
  EXPECT_EQ(ErrnoOf(fs_->SetAttr(file.ino,
                                 Change([](AttrChange& c) { c.size = kMaxFileSizeBytes + 1; }))),
            EFBIG);
}

TEST_P(FileSystemTest, SetAttrChangesOnlyWhatItIsGivenAndAlwaysTheCtime) {
  InodeRecord file = Make(kRootInode, "f");
  clock_ns_ += 1000;
  auto changed = fs_->SetAttr(file.ino, Change([](AttrChange& c) {
                                c.mode = 04755;
                                c.mtime_ns = 42;
                              }));
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ(changed.value().mode, 04755u);
  EXPECT_EQ(changed.value().uid, 1000u);
  EXPECT_EQ(changed.value().mtime_ns, 42);
  EXPECT_EQ(changed.value().atime_ns, file.atime_ns);
  EXPECT_EQ(changed.value().ctime_ns, clock_ns_);
  EXPECT_GT(changed.value().change, file.change);
}

TEST_P(FileSystemTest, ExtendedAttributesFollowCreateAndReplaceFlags) {
  InodeRecord file = Make(kRootInode, "f");
  const std::string binary("a\0b\xff", 4);
  EXPECT_EQ(ErrnoOf(fs_->SetXattr(file.ino, "user.x", "1", kXattrReplace)), ENODATA);
  ASSERT_TRUE(fs_->SetXattr(file.ino, "user.x", binary, kXattrCreate).ok());
  EXPECT_EQ(ErrnoOf(fs_->SetXattr(file.ino, "user.x", "2", kXattrCreate)), EEXIST);
  ASSERT_TRUE(fs_->SetXattr(file.ino, "user.a", "", 0).ok());
  EXPECT_EQ(fs_->GetXattr(file.ino, "user.x").value(), binary);
  EXPECT_EQ(fs_->ListXattrs(file.ino).value(), (std::vector<std::string>{"user.a", "user.x"}));
  EXPECT_EQ(ErrnoOf(fs_->GetXattr(file.ino, "user.none")), ENODATA);
  EXPECT_EQ(ErrnoOf(fs_->RemoveXattr(file.ino, "user.none")), ENODATA);
  EXPECT_EQ(ErrnoOf(fs_->SetXattr(file.ino, std::string(256, 'n'), "v", 0)), ERANGE);
  EXPECT_EQ(ErrnoOf(fs_->SetXattr(file.ino, "user.big", std::string(64 * 1024 + 1, 'v'), 0)),
            E2BIG);
  ASSERT_TRUE(fs_->RemoveXattr(file.ino, "user.x").ok());
  EXPECT_EQ(fs_->ListXattrs(file.ino).value(), (std::vector<std::string>{"user.a"}));
  // They go with the file.
  ASSERT_TRUE(fs_->Unlink(kRootInode, "f").ok());
  InodeRecord other = Make(kRootInode, "g");
  EXPECT_TRUE(fs_->ListXattrs(other.ino).value().empty());
}

TEST_P(FileSystemTest, ReadDirectoryPagesThroughALargeDirectoryInByteOrder) {
  std::set<std::string> expected;
  for (int i = 0; i < 1000; ++i) {
    std::string name = "n" + std::to_string(i * 7919 % 1000);
    if (i % 3 == 0) name = "\xc3\xa9" + name;  // bytes above 0x7f sort after ASCII
    if (i % 5 == 0) name = "N" + name;
    Make(kRootInode, name);
    expected.insert(name);
  }
  std::vector<std::string> seen;
  std::string after;
  for (int pages = 0; pages < 100; ++pages) {
    auto page = fs_->ReadDirectory(kRootInode, after, 64);
    ASSERT_TRUE(page.ok());
    if (page.value().empty()) break;
    for (const auto& entry : page.value()) seen.push_back(entry.name);
    after = seen.back();
  }
  EXPECT_EQ(seen, std::vector<std::string>(expected.begin(), expected.end()));
  EXPECT_EQ(ErrnoOf(fs_->ReadDirectory(Make(kRootInode, "file").ino, "", 10)), ENOTDIR);
}

TEST_P(FileSystemTest, CommitWriteRaisesTheSizeAndReplacesBlocks) {
  InodeRecord file = Make(kRootInode, "f");
  ASSERT_TRUE(fs_->CommitWrite(file.ino, {Block(0, "first")}, 5).ok());
  auto second = fs_->CommitWrite(file.ino, {Block(0, "other")}, 3);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second.value().size, 5u);  // a write inside the file does not shrink it
  auto refs = References();
  EXPECT_EQ(refs[Sha256Of("first").ToHex()], 0);
  EXPECT_EQ(refs[Sha256Of("other").ToHex()], 1);
  // The blocks are chunk references of the file's owner, visible to every owner-aware path.
  auto owned = store_->GetOwnerChunks(meta::FileChunkOwner(kUuid, file.ino));
  ASSERT_TRUE(owned.ok());
  ASSERT_EQ(owned.value().size(), 1u);
  EXPECT_EQ(owned.value()[0].chunk.digest, Sha256Of("other"));
  EXPECT_EQ(ErrnoOf(fs_->CommitWrite(kRootInode, {Block(0, "x")}, 1)), EISDIR);
  EXPECT_EQ(ErrnoOf(fs_->CommitWrite(file.ino, {Block(0, "")}, 1)), EINVAL);
}

TEST_P(FileSystemTest, AFailedTransactionLeavesNoTrace) {
  InodeRecord file = Make(kRootInode, "f");
  ASSERT_TRUE(fs_->CommitWrite(file.ino, {Block(0, "kept")}, 4).ok());
  const auto before = References();
  Status failed = tree_->Write(
      [&](meta::FileTreeTransaction& tx) -> Status {
        EXPECT_TRUE(tx.PutBlock(file.ino, Block(0, "dropped")).ok());
        EXPECT_TRUE(tx.DeleteDentry(kRootInode, "f").ok());
        EXPECT_TRUE(tx.NewInodeNumber().ok());
        return AbortedError("the body gave up");
      },
      1);
  EXPECT_EQ(failed.code(), StatusCode::kAborted);
  EXPECT_EQ(References(), before);
  EXPECT_EQ(fs_->Lookup(kRootInode, "f").value().ino, file.ino);
  EXPECT_EQ(Make(kRootInode, "g").ino, file.ino + 1);  // the inode number was not spent
}

TEST_P(FileSystemTest, NothingWorksBeforeAVolumeIsFormatted) {
  std::unique_ptr<meta::MetaStore> empty = OpenStore("empty.db");
  ASSERT_NE(empty, nullptr);
  FileSystem fs(empty->file_tree(), {});
  EXPECT_EQ(fs.GetAttr(kRootInode).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrnoOf(fs.GetAttr(kRootInode)), EIO);
  InodeRecord root;
  EXPECT_EQ(tree_->FormatVolume(meta::VolumeRecord{"other", kUuid}, root).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_TRUE(tree_->FormatVolume(meta::VolumeRecord{"vol", kUuid}, root).ok());
  EXPECT_EQ(
      empty->file_tree()->FormatVolume(meta::VolumeRecord{"bad name", kUuid}, root).status().code(),
      StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Engines, FileSystemTest, ::testing::Values("memory", "sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace cairn::fs
