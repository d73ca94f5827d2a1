// One conformance suite for every FileTree engine (meta/file_tree.h): each TEST_P runs
// against "memory" (the reference), against a SQLite file in a fresh temp directory and,
// when CAIRN_TEST_POSTGRES_URL names a server (scripts/postgres-test-server.sh starts one),
// against a fresh PostgreSQL database (skipped, visibly, without one).
// Block references are checked through the MetaStore's public API (ListChunks,
// GetOwnerChunks, CheckReferences), as GC and fsck see them. A randomized differential test
// applies one op sequence to every engine and compares every result and the full state;
// the SQL engines' tests: two stores on one database see each other's commits, and a body
// calling back into its store fails; SQLite only: damaged rows and the schema upgrade.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "meta/engines/open_meta_store.h"
#include "meta/file_tree.h"
#include "meta/meta_store.h"
#include "meta/postgres/postgres_meta_store.h"
#include "meta/snapshot.h"
#include "meta/sqlite/sqlite_meta_store.h"
#include "postgres_test_database.h"

namespace cairn::meta {
namespace {

namespace stdfs = std::filesystem;

using pgtest::PostgresDatabase;

constexpr char kUuid[] = "0b6a3c1e-2f4d-4e5a-9b8c-7d6e5f4a3b2c";
constexpr char kOtherUuid[] = "7d6e5f4a-3b2c-4e5a-9b8c-0b6a3c1e2f4d";
constexpr StorageClass kHot = StorageClass::kHot;
constexpr StorageClass kCold = StorageClass::kCold;
using Body = std::function<Status(FileTreeTransaction&)>;

// ---- assertions -----------------------------------------------------------------------

const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  return r.status();
}

#define ASSERT_OK(expr)                                            \
  do {                                                             \
    const auto& assert_ok_value_ = (expr);                         \
    ASSERT_TRUE(StatusOf(assert_ok_value_).ok())                   \
        << #expr << ": " << StatusOf(assert_ok_value_).ToString(); \
  } while (false)

#define EXPECT_OK(expr)                                            \
  do {                                                             \
    const auto& expect_ok_value_ = (expr);                         \
    EXPECT_TRUE(StatusOf(expect_ok_value_).ok())                   \
        << #expr << ": " << StatusOf(expect_ok_value_).ToString(); \
  } while (false)

#define EXPECT_CODE(expr, expected_code)                                      \
  do {                                                                        \
    const auto& expect_code_value_ = (expr);                                  \
    EXPECT_EQ(StatusOf(expect_code_value_).code(), StatusCode::expected_code) \
        << #expr << ": " << StatusOf(expect_code_value_).ToString();          \
  } while (false)

// ---- rendering ------------------------------------------------------------------------

std::string Hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
  }
  return out;
}

std::string Str(const Status& s) {
  return s.ok() ? "OK" : "error:" + std::string(StatusCodeName(s.code()));
}

std::string Str(const InodeRecord& i) {
  std::ostringstream out;
  out << "{ino=" << i.ino << " type=" << FileTypeName(i.type) << " mode=" << std::oct << i.mode
      << std::dec << " uid=" << i.uid << " gid=" << i.gid << " nlink=" << i.nlink
      << " size=" << i.size << " times=" << i.atime_ns << "," << i.mtime_ns << "," << i.ctime_ns
      << "," << i.btime_ns << " rdev=" << i.rdev << " parent=" << i.parent
      << " target=" << Hex(i.symlink_target) << " change=" << i.change << "}";
  return out.str();
}

std::string Str(const DentryRecord& d) {
  return "{" + std::to_string(d.parent) + "/" + Hex(d.name) + " -> " + std::to_string(d.ino) + " " +
         std::string(FileTypeName(d.type)) + "}";
}

std::string Str(const BlockRecord& b) {
  return "{" + std::to_string(b.index) + ": " +
         std::string(StorageClassName(b.chunk.storage_class)) + " " +
         b.chunk.chunk.digest.ToHex().substr(0, 12) + " " +
         std::to_string(b.chunk.chunk.size_bytes) + " sums=" + Hex(b.chunk.chunk.block_checksums) +
         " damaged=" + std::to_string(b.chunk.chunk.damaged_ms) + "}";
}

std::string Str(const ChunkRecord& c) {
  return "{" + std::string(StorageClassName(c.storage_class)) + " " +
         c.digest.ToHex().substr(0, 12) + " size=" + std::to_string(c.size_bytes) +
         " refs=" + std::to_string(c.ref_count) + " zero_since=" + std::to_string(c.zero_since_ms) +
         "}";
}

std::string Str(const std::string& s) { return Hex(s); }
std::string Str(const SessionRecord& r) {
  return "{" + std::to_string(r.id) + " " + r.host + " " + r.host_key +
         " pid=" + std::to_string(r.pid) + " mnt=" + Hex(r.mount_point) + " v=" + r.version +
         " ro=" + std::to_string(r.read_only) + " " + std::to_string(r.started_ms) + "," +
         std::to_string(r.heartbeat_ms) + "," + std::to_string(r.expires_ms) +
         " seen=" + std::to_string(r.seen_seq) + "}";
}
std::string Str(const OrphanRecord& r) {
  return "{" + std::to_string(r.ino) + " held by " + std::to_string(r.session) +
         " since=" + std::to_string(r.since_seq) + "}";
}
std::string Str(const ChangeRecord& r) {
  return "{#" + std::to_string(r.seq) + " s=" + std::to_string(r.session) +
         " ino=" + std::to_string(r.ino) + (r.data ? " data" : "") +
         " entry=" + std::to_string(r.parent) + "/" + Hex(r.name) +
         " at=" + std::to_string(r.at_ms) + "}";
}
std::string Str(const LockRecord& r) {
  return "{ino=" + std::to_string(r.ino) + " s=" + std::to_string(r.session) +
         " o=" + std::to_string(r.owner) + " k=" + std::to_string(static_cast<int>(r.kind)) +
         (r.exclusive ? " W " : " R ") + std::to_string(r.start) + ".." + std::to_string(r.end) +
         " pid=" + std::to_string(r.pid) + "}";
}

template <typename T>
std::string Str(const std::vector<T>& items) {
  std::string out = "[";
  for (const T& item : items) out += Str(item) + " ";
  return out + "]";
}
template <typename T>
std::string Str(const std::optional<T>& value) {
  return value ? Str(*value) : "absent";
}
template <typename T>
std::string Str(const Result<T>& result) {
  return result.ok() ? Str(result.value()) : Str(result.status());
}
std::string Str(const Result<uint64_t>& result) {
  return result.ok() ? std::to_string(result.value()) : Str(result.status());
}

// ---- fixtures -------------------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    std::string pattern = (stdfs::temp_directory_path() / "cairn-fstree-XXXXXX").string();
    char* made = mkdtemp(pattern.data());
    if (made == nullptr) std::abort();
    path_ = made;
  }
  ~TempDir() {
    std::error_code ignored;
    stdfs::remove_all(path_, ignored);
  }
  const stdfs::path& path() const { return path_; }

 private:
  stdfs::path path_;
};

// Executes SQL on a SQLite file from outside the engine (damage, upgrades).
class RawSqlite {
 public:
  explicit RawSqlite(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << "cannot open " << path;
    }
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawSqlite() { sqlite3_close_v2(db_); }
  void Exec(const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << (error ? error : "?");
    }
    sqlite3_free(error);
  }
  // The first column of the first row, as text ("" if none).
  std::string Query(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
      return out;
    }
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

Digest D(int n) {
  Digest d;
  d.bytes[0] = 0xf5;
  d.bytes[1] = static_cast<uint8_t>(n >> 8);
  d.bytes[2] = static_cast<uint8_t>(n);
  d.bytes[31] = 0x3c;
  return d;
}

// Block `index` naming chunk n (n * 1000 bytes) of `storage_class`.
BlockRecord Block(uint64_t index, int n, StorageClass storage_class = kHot,
                  std::string block_checksums = {}) {
  return BlockRecord{index,
                     OwnerChunk(storage_class, ChunkRef{D(n), static_cast<uint64_t>(n) * 1000,
                                                        std::move(block_checksums)})};
}

InodeRecord Inode(uint64_t ino, FileType type = FileType::kRegular) {
  InodeRecord inode;
  inode.ino = ino;
  inode.type = type;
  inode.mode = 0644;
  inode.uid = 1000;
  inode.gid = 100;
  inode.nlink = 1;
  inode.size = 12345;
  inode.atime_ns = 1'000'000'001;
  inode.mtime_ns = 1'000'000'002;
  inode.ctime_ns = 1'000'000'003;
  inode.btime_ns = 1'000'000'004;
  return inode;
}

InodeRecord RootTemplate() {
  InodeRecord root;
  root.ino = 77;                   // replaced by kRootInode
  root.type = FileType::kRegular;  // replaced by kDirectory
  root.mode = 0755;
  root.uid = 7;
  root.gid = 8;
  root.nlink = 2;
  root.atime_ns = 11;
  root.mtime_ns = 12;
  root.ctime_ns = 13;
  root.btime_ns = 14;
  return root;
}

VolumeRecord Volume(const std::string& name = "vol", const std::string& uuid = kUuid) {
  VolumeRecord volume;
  volume.name = name;
  volume.uuid = uuid;
  volume.created_ms = 1700;
  volume.trash_days = 7;
  return volume;
}

// The store's URL for `engine`: memory, a SQLite `file` in `dir`, or a fresh PostgreSQL
// database kept in `databases` (dropped with it).
std::string UrlFor(const std::string& engine, const TempDir& dir, const std::string& file,
                   std::vector<std::unique_ptr<PostgresDatabase>>* databases = nullptr) {
  if (engine == "memory") return "memory:";
  if (engine == "postgres") {
    if (databases == nullptr) std::abort();
    databases->push_back(std::make_unique<PostgresDatabase>());
    return databases->back()->url();
  }
  return "sqlite://" + (dir.path() / file).string();
}

std::unique_ptr<MetaStore> OpenStore(const std::string& url) {
  Result<std::unique_ptr<MetaStore>> opened = OpenMetaStore(url);
  EXPECT_TRUE(opened.ok()) << url << ": " << opened.status().ToString();
  return opened.ok() ? std::move(opened).value() : nullptr;
}

// The whole state a user of the store can see for `inos` (their rows, entries, blocks and
// xattrs) and every chunk row, rendered so that two engines compare as text.
std::string Dump(MetaStore& store, const std::set<uint64_t>& inos) {
  std::ostringstream out;
  FileTree* tree = store.file_tree();
  Result<std::optional<VolumeRecord>> volume = tree->GetVolume();
  if (!volume.ok() || !*volume) return "no volume: " + Str(volume.status());
  out << "volume " << (*volume)->name << " " << (*volume)->uuid << " " << (*volume)->created_ms
      << " " << (*volume)->trash_days << " " << (*volume)->format_version << "\n";
  Status read = tree->Read([&](FileTreeTransaction& tx) -> Status {
    for (uint64_t ino : inos) {
      out << ino << ": " << Str(tx.GetInode(ino)) << "\n";
      std::string after;
      while (true) {
        Result<std::vector<DentryRecord>> page = tx.ListDentries(ino, after, 100);
        if (!page.ok()) return page.status();
        for (const DentryRecord& entry : *page) out << "  entry " << Str(entry) << "\n";
        if (page->size() < 100) break;
        after = page->back().name;
      }
      out << "  blocks " << Str(tx.GetBlocks(ino, 0, UINT64_MAX)) << "\n";
      Result<std::vector<std::string>> names = tx.ListXattrs(ino);
      if (!names.ok()) return names.status();
      for (const std::string& name : *names) {
        out << "  xattr " << Hex(name) << "=" << Str(tx.GetXattr(ino, name)) << "\n";
      }
    }
    return OkStatus();
  });
  if (!read.ok()) out << "read failed: " << read.ToString() << "\n";
  out << "chunks " << Str(store.ListChunks()) << "\n";
  Result<std::vector<FsckReferenceRow>> refs = store.CheckReferences();
  if (!refs.ok()) {
    out << "check references failed: " << refs.status().ToString() << "\n";
  } else {
    for (const FsckReferenceRow& row : *refs) {
      if (row.recorded_ref_count != row.actual_ref_count) {
        out << "reference count disagrees: " << row.digest.ToHex() << " " << row.recorded_ref_count
            << " != " << row.actual_ref_count << "\n";
      }
    }
  }
  return out.str();
}

class FileTreeTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgres") SKIP_WITHOUT_POSTGRES();
    url_ = UrlFor(GetParam(), dir_, "meta.db", &databases_);
    Open();
    ASSERT_NE(store_, nullptr);
  }
  // The store goes first: its connections would otherwise keep the database in use.
  void TearDown() override {
    store_.reset();
    databases_.clear();
  }

  bool Persists() const { return GetParam() != "memory"; }

  void Open() {
    store_ = OpenStore(url_);
    if (store_) tree_ = store_->file_tree();
    ASSERT_NE(tree_, nullptr) << "engine " << GetParam() << " has no FileTree";
  }

  void Format() {
    Result<VolumeRecord> formatted = tree_->FormatVolume(Volume(), RootTemplate());
    ASSERT_TRUE(formatted.ok()) << formatted.status().ToString();
  }

  Status W(const Body& body, TimestampMs now_ms = 5000) { return tree_->Write(body, now_ms); }
  Status R(const Body& body) { return tree_->Read(body); }

  // Reference count of chunk n's row (-1: no row).
  int64_t Refs(int n, StorageClass storage_class = kHot) {
    std::optional<ChunkRecord> row = Chunk(n, storage_class);
    return row ? row->ref_count : -1;
  }
  std::optional<ChunkRecord> Chunk(int n, StorageClass storage_class = kHot) {
    Result<std::vector<ChunkRecord>> rows = store_->ListChunks();
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    if (!rows.ok()) return std::nullopt;
    for (const ChunkRecord& row : *rows) {
      if (row.storage_class == storage_class && row.digest == D(n)) return row;
    }
    return std::nullopt;
  }
  // The file's block list as GetOwnerChunks shows it (digest numbers, by index).
  std::vector<Digest> Owned(uint64_t ino) {
    Result<std::vector<OwnerChunk>> owned = store_->GetOwnerChunks(FileChunkOwner(kUuid, ino));
    EXPECT_TRUE(owned.ok()) << owned.status().ToString();
    std::vector<Digest> out;
    if (owned.ok()) {
      for (const OwnerChunk& entry : *owned) out.push_back(entry.chunk.digest);
    }
    return out;
  }
  void ExpectCountsAgree() {
    Result<std::vector<FsckReferenceRow>> rows = store_->CheckReferences();
    ASSERT_TRUE(rows.ok()) << rows.status().ToString();
    for (const FsckReferenceRow& row : *rows) {
      EXPECT_EQ(row.recorded_ref_count, row.actual_ref_count) << row.digest.ToHex();
    }
  }

  std::optional<InodeRecord> GetInode(uint64_t ino) {
    std::optional<InodeRecord> out;
    EXPECT_OK(R([&](FileTreeTransaction& tx) -> Status {
      ASSIGN_OR_RETURN(out, tx.GetInode(ino));
      return OkStatus();
    }));
    return out;
  }
  std::vector<BlockRecord> Blocks(uint64_t ino, uint64_t first = 0, uint64_t count = UINT64_MAX) {
    std::vector<BlockRecord> out;
    EXPECT_OK(R([&](FileTreeTransaction& tx) -> Status {
      ASSIGN_OR_RETURN(out, tx.GetBlocks(ino, first, count));
      return OkStatus();
    }));
    return out;
  }
  std::vector<std::string> Names(uint64_t parent, const std::string& after = "",
                                 uint32_t limit = 100000) {
    std::vector<std::string> out;
    EXPECT_OK(R([&](FileTreeTransaction& tx) -> Status {
      ASSIGN_OR_RETURN(std::vector<DentryRecord> entries, tx.ListDentries(parent, after, limit));
      for (const DentryRecord& entry : entries) out.push_back(entry.name);
      return OkStatus();
    }));
    return out;
  }
  uint64_t NewIno() {
    uint64_t ino = 0;
    EXPECT_OK(W([&](FileTreeTransaction& tx) -> Status {
      ASSIGN_OR_RETURN(ino, tx.NewInodeNumber());
      return OkStatus();
    }));
    return ino;
  }

  TempDir dir_;
  std::vector<std::unique_ptr<PostgresDatabase>> databases_;
  std::string url_;
  std::unique_ptr<MetaStore> store_;
  FileTree* tree_ = nullptr;
};

// ---- the volume -----------------------------------------------------------------------

TEST_P(FileTreeTest, NothingWorksBeforeFormatting) {
  Result<std::optional<VolumeRecord>> volume = tree_->GetVolume();
  ASSERT_OK(volume);
  EXPECT_FALSE(volume->has_value());
  bool ran = false;
  EXPECT_CODE(R([&](FileTreeTransaction&) {
                ran = true;
                return OkStatus();
              }),
              kFailedPrecondition);
  EXPECT_CODE(W([&](FileTreeTransaction&) {
                ran = true;
                return OkStatus();
              }),
              kFailedPrecondition);
  EXPECT_FALSE(ran);
}

TEST_P(FileTreeTest, FormatIsIdempotentForItsNameAndRefusesAnother) {
  Result<VolumeRecord> first = tree_->FormatVolume(Volume(), RootTemplate());
  ASSERT_OK(first);
  EXPECT_EQ(*first, Volume());
  // The same name again: the stored volume, unchanged (not the new uuid nor the new root).
  InodeRecord other_root = RootTemplate();
  other_root.mode = 0700;
  VolumeRecord again_request = Volume("vol", kOtherUuid);
  again_request.trash_days = 30;
  Result<VolumeRecord> again = tree_->FormatVolume(again_request, other_root);
  ASSERT_OK(again);
  EXPECT_EQ(*again, Volume());
  EXPECT_EQ(GetInode(kRootInode)->mode, 0755u);
  EXPECT_CODE(tree_->FormatVolume(Volume("other"), RootTemplate()), kAlreadyExists);
  EXPECT_CODE(tree_->FormatVolume(Volume("bad name"), RootTemplate()), kInvalidArgument);
  EXPECT_CODE(tree_->FormatVolume(Volume("vol", "not-a-uuid"), RootTemplate()), kInvalidArgument);
  Result<std::optional<VolumeRecord>> stored = tree_->GetVolume();
  ASSERT_OK(stored);
  ASSERT_TRUE(stored->has_value());
  EXPECT_EQ(**stored, Volume());
}

TEST_P(FileTreeTest, TheRootIsADirectoryThatIsItsOwnParent) {
  Format();
  std::optional<InodeRecord> root = GetInode(kRootInode);
  ASSERT_TRUE(root.has_value());
  InodeRecord expected = RootTemplate();
  expected.ino = kRootInode;
  expected.type = FileType::kDirectory;
  expected.parent = kRootInode;
  expected.change = 1;
  EXPECT_EQ(Str(*root), Str(expected));
  EXPECT_EQ(Names(kRootInode), std::vector<std::string>());
  EXPECT_OK(R([&](FileTreeTransaction& tx) -> Status {
    EXPECT_EQ(tx.volume().value(), Volume());
    EXPECT_EQ(tx.now_ms(), 0);
    return OkStatus();
  }));
  EXPECT_OK(W(
      [&](FileTreeTransaction& tx) -> Status {
        EXPECT_EQ(tx.volume().value(), Volume());
        EXPECT_EQ(tx.now_ms(), 4242);
        return OkStatus();
      },
      4242));
}

// ---- inodes ---------------------------------------------------------------------------

// A symlink inode with every field at an edge of its range.
InodeRecord EdgeInode(uint64_t ino) {
  InodeRecord inode = Inode(ino, FileType::kSymlink);
  inode.mode = 07777;
  inode.uid = UINT32_MAX;
  inode.gid = UINT32_MAX - 1;
  inode.nlink = UINT32_MAX;
  inode.size = UINT64_MAX;
  inode.atime_ns = INT64_MIN;
  inode.mtime_ns = -1;
  inode.ctime_ns = INT64_MAX;
  inode.btime_ns = 0;
  inode.rdev = UINT64_MAX - 5;
  inode.parent = UINT64_MAX;
  inode.symlink_target = std::string("../a\0b\xff\x80/c", 10);
  inode.change = 999;  // ignored: the store counts
  return inode;
}

TEST_P(FileTreeTest, InodesRoundTripEveryFieldAndCountChanges) {
  Format();
  InodeRecord inode = EdgeInode(2);
  uint64_t change = 0;
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(change, tx.PutInode(inode));
    return OkStatus();
  }));
  EXPECT_EQ(change, 1u);
  inode.change = 1;
  EXPECT_EQ(Str(GetInode(2)), Str(inode));

  // Each PutInode counts, also twice in one transaction.
  std::vector<uint64_t> changes;
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    changes.clear();
    inode.size = 7;
    for (int i = 0; i < 2; ++i) {
      ASSIGN_OR_RETURN(uint64_t c, tx.PutInode(inode));
      changes.push_back(c);
    }
    return OkStatus();
  }));
  EXPECT_EQ(changes, (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(GetInode(2)->change, 3u);
  EXPECT_EQ(GetInode(2)->size, 7u);

  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status { return tx.DeleteInode(2); }));
  EXPECT_FALSE(GetInode(2).has_value());
  EXPECT_OK(W([&](FileTreeTransaction& tx) -> Status { return tx.DeleteInode(2); }));  // absent
  // A new row starts counting again.
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(change, tx.PutInode(Inode(2)));
    return OkStatus();
  }));
  EXPECT_EQ(change, 1u);
  EXPECT_CODE(W([&](FileTreeTransaction& tx) -> Status { return tx.PutInode(Inode(0)).status(); }),
              kInvalidArgument);
  EXPECT_FALSE(GetInode(0).has_value());
  EXPECT_FALSE(GetInode(UINT64_MAX).has_value());
}

TEST_P(FileTreeTest, InodeNumbersAreNewAndNotSpentByARolledBackTransaction) {
  Format();
  std::vector<uint64_t> committed;
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    committed.clear();
    for (int i = 0; i < 3; ++i) {
      ASSIGN_OR_RETURN(uint64_t ino, tx.NewInodeNumber());
      committed.push_back(ino);
    }
    return OkStatus();
  }));
  ASSERT_EQ(committed.size(), 3u);
  EXPECT_GT(committed[0], kRootInode);
  EXPECT_LT(committed[0], committed[1]);
  EXPECT_LT(committed[1], committed[2]);
  uint64_t rolled_back = 0;
  EXPECT_CODE(W([&](FileTreeTransaction& tx) -> Status {
                ASSIGN_OR_RETURN(rolled_back, tx.NewInodeNumber());
                return AbortedError("give up");
              }),
              kAborted);
  EXPECT_GT(rolled_back, committed[2]);
  const uint64_t next = NewIno();
  EXPECT_GT(next, committed[2]);  // never one a committed transaction had
  EXPECT_EQ(next, rolled_back);   // and the rolled-back one was not spent
  committed.push_back(next);
  // Across many transactions the numbers keep increasing.
  for (int i = 0; i < 50; ++i) committed.push_back(NewIno());
  EXPECT_TRUE(std::is_sorted(committed.begin(), committed.end()));
  EXPECT_EQ(std::set<uint64_t>(committed.begin(), committed.end()).size(), committed.size());
  if (Persists()) {  // and across a reopen
    store_.reset();
    Open();
    EXPECT_GT(NewIno(), committed.back());
  }
}

// ---- directory entries ----------------------------------------------------------------

TEST_P(FileTreeTest, DentriesAreSetReplacedAndDeleted) {
  Format();
  const std::string name = "file.txt";
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    return tx.PutDentry({kRootInode, name, 5, FileType::kRegular});
  }));
  std::optional<DentryRecord> entry;
  auto get = [&](uint64_t parent, std::string_view n) {
    EXPECT_OK(R([&](FileTreeTransaction& tx) -> Status {
      ASSIGN_OR_RETURN(entry, tx.GetDentry(parent, n));
      return OkStatus();
    }));
    return entry;
  };
  EXPECT_EQ(
      Str(get(kRootInode, name)),
      Str(std::optional<DentryRecord>(DentryRecord{kRootInode, name, 5, FileType::kRegular})));
  EXPECT_FALSE(get(kRootInode, "file.tx").has_value());
  EXPECT_FALSE(get(kRootInode, "file.txt2").has_value());
  EXPECT_FALSE(get(2, name).has_value());
  // Replaced in place: another inode, another type.
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    return tx.PutDentry({kRootInode, name, 6, FileType::kDirectory});
  }));
  EXPECT_EQ(get(kRootInode, name)->ino, 6u);
  EXPECT_EQ(get(kRootInode, name)->type, FileType::kDirectory);
  EXPECT_EQ(Names(kRootInode), std::vector<std::string>{name});
  ASSERT_OK(
      W([&](FileTreeTransaction& tx) -> Status { return tx.DeleteDentry(kRootInode, name); }));
  EXPECT_FALSE(get(kRootInode, name).has_value());
  EXPECT_OK(
      W([&](FileTreeTransaction& tx) -> Status { return tx.DeleteDentry(kRootInode, name); }));
  // Every type round-trips.
  for (int t = 1; t <= 7; ++t) {
    const FileType type = static_cast<FileType>(t);
    ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
      return tx.PutDentry({3, "t" + std::to_string(t), 100u + t, type});
    }));
    EXPECT_EQ(get(3, "t" + std::to_string(t))->type, type);
  }
}

// A lookup reads the entry and its inode together: every field as GetInode returns it, an
// absent name as nothing, and an entry whose inode is gone as the entry alone.
TEST_P(FileTreeTest, ANamedInodeIsTheEntryWithTheInodeGetInodeReturns) {
  Format();
  InodeRecord link = EdgeInode(7);
  const std::string name("l\xff\x80nk", 5);
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    RETURN_IF_ERROR(tx.PutInode(link).status());
    RETURN_IF_ERROR(tx.PutInode(link).status());  // change 2
    RETURN_IF_ERROR(tx.PutDentry({kRootInode, name, 7, FileType::kSymlink}));
    return tx.PutDentry({kRootInode, "dangling", 8, FileType::kRegular});
  }));
  auto named = [&](uint64_t parent, std::string_view n) {
    std::optional<FileTreeTransaction::NamedInode> out;
    EXPECT_OK(R([&](FileTreeTransaction& tx) -> Status {
      ASSIGN_OR_RETURN(out, tx.GetNamedInode(parent, n));
      return OkStatus();
    }));
    return out;
  };
  std::optional<FileTreeTransaction::NamedInode> found = named(kRootInode, name);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(Str(found->entry), Str(DentryRecord{kRootInode, name, 7, FileType::kSymlink}));
  ASSERT_TRUE(found->inode.has_value());
  EXPECT_EQ(found->inode->change, 2u);
  EXPECT_EQ(Str(found->inode), Str(GetInode(7)));
  link.change = 2;
  EXPECT_EQ(Str(found->inode), Str(std::optional<InodeRecord>(link)));

  EXPECT_FALSE(named(kRootInode, "absent").has_value());
  EXPECT_FALSE(named(2, name).has_value());
  std::optional<FileTreeTransaction::NamedInode> dangling = named(kRootInode, "dangling");
  ASSERT_TRUE(dangling.has_value());
  EXPECT_EQ(dangling->entry.ino, 8u);
  EXPECT_EQ(dangling->entry.type, FileType::kRegular);
  EXPECT_FALSE(dangling->inode.has_value());
  // Inside a write it sees the transaction's own changes.
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    RETURN_IF_ERROR(tx.PutInode(Inode(8)).status());
    ASSIGN_OR_RETURN(std::optional<FileTreeTransaction::NamedInode> now,
                     tx.GetNamedInode(kRootInode, "dangling"));
    EXPECT_TRUE(now.has_value() && now->inode.has_value() && now->inode->ino == 8u);
    RETURN_IF_ERROR(tx.DeleteDentry(kRootInode, name));
    ASSIGN_OR_RETURN(now, tx.GetNamedInode(kRootInode, name));
    EXPECT_FALSE(now.has_value());
    return OkStatus();
  }));
}

TEST_P(FileTreeTest, DentriesListInByteOrderWithHighBytesAndLongNames) {
  Format();
  const std::string long_a(kMaxFileNameBytes, 'a');
  const std::string long_high(kMaxFileNameBytes, '\xff');
  std::vector<std::string> names = {"b",
                                    "a",
                                    "B",
                                    "\x80",
                                    "\xc3\xa9t\xc3\xa9",  // "été"
                                    "\xff",
                                    "\xff\xfe",
                                    "a\x7f",
                                    "ab",
                                    "a\x80",
                                    "z",
                                    "~",
                                    long_a,
                                    long_high,
                                    std::string("\x01", 1)};
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    uint64_t ino = 10;
    for (const std::string& name : names) {
      RETURN_IF_ERROR(tx.PutDentry({kRootInode, name, ino++, FileType::kRegular}));
    }
    // Another directory's entries never show in the root's listing.
    RETURN_IF_ERROR(tx.PutDentry({2, "a", 99, FileType::kRegular}));
    return tx.PutDentry({0, "zz", 98, FileType::kRegular});
  }));
  std::vector<std::string> sorted = names;
  std::sort(sorted.begin(), sorted.end());  // std::string compares bytes as unsigned
  EXPECT_EQ(Names(kRootInode), sorted);
  EXPECT_EQ(Names(2), std::vector<std::string>{"a"});
  // Paging: after a name (present or not), at most `limit`.
  EXPECT_EQ(Names(kRootInode, "a", 3), (std::vector<std::string>{long_a, "ab", "a\x7f"}));
  EXPECT_EQ(Names(kRootInode, "a\x7f\x01", 2), (std::vector<std::string>{"a\x80", "b"}));
  EXPECT_EQ(Names(kRootInode, "\xff"), (std::vector<std::string>{"\xff\xfe", long_high}));
  EXPECT_EQ(Names(kRootInode, long_high), std::vector<std::string>());
  EXPECT_EQ(Names(kRootInode, "", 0), std::vector<std::string>());
  EXPECT_EQ(Names(kRootInode, "", 1), std::vector<std::string>{std::string("\x01", 1)});
  // Names of 255 high bytes round-trip exactly through GetDentry.
  std::optional<DentryRecord> entry;
  ASSERT_OK(R([&](FileTreeTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(entry, tx.GetDentry(kRootInode, long_high));
    return OkStatus();
  }));
  ASSERT_TRUE(entry.has_value());
  EXPECT_EQ(entry->name, long_high);
}

TEST_P(FileTreeTest, ListDentriesPagesThroughTwoThousandEntries) {
  Format();
  std::mt19937 rng(20261204);
  std::set<std::string> names;
  while (names.size() < 2000) {
    std::string name(1 + rng() % 40, '\0');
    for (char& c : name) c = static_cast<char>(1 + rng() % 255);  // no NUL; '/' is fine here
    names.insert(name);
  }
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    uint64_t ino = 1000;
    for (const std::string& name : names) {
      RETURN_IF_ERROR(tx.PutDentry({kRootInode, name, ino++, FileType::kRegular}));
    }
    return OkStatus();
  }));
  std::vector<std::string> listed;
  std::string after;
  int pages = 0;
  while (true) {
    std::vector<std::string> page = Names(kRootInode, after, 97);
    ++pages;
    ASSERT_LE(page.size(), 97u);
    listed.insert(listed.end(), page.begin(), page.end());
    if (page.size() < 97) break;
    after = page.back();
  }
  EXPECT_EQ(pages, 21);
  EXPECT_EQ(listed, std::vector<std::string>(names.begin(), names.end()));
}

// ---- blocks ---------------------------------------------------------------------------

TEST_P(FileTreeTest, PutBlockTakesAReferenceAndReplacingDropsTheOld) {
  Format();
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    RETURN_IF_ERROR(tx.PutInode(Inode(2)).status());
    RETURN_IF_ERROR(tx.PutBlock(2, Block(0, 1, kHot, "sums")));
    return tx.PutBlock(2, Block(3, 2, kCold));  // a hole at 1 and 2
  }));
  EXPECT_EQ(Refs(1), 1);
  EXPECT_EQ(Refs(2, kCold), 1);
  EXPECT_EQ(Refs(2, kHot), -1);
  EXPECT_EQ(Chunk(1)->size_bytes, 1000u);
  EXPECT_EQ(Chunk(1)->block_checksums, "sums");
  EXPECT_EQ(Owned(2), (std::vector<Digest>{D(1), D(2)}));
  std::vector<BlockRecord> blocks = Blocks(2);
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(Str(blocks[0]), Str(Block(0, 1, kHot, "sums")));
  EXPECT_EQ(Str(blocks[1]), Str(Block(3, 2, kCold)));
  EXPECT_EQ(Str(Blocks(2, 1, 2)), Str(std::vector<BlockRecord>()));
  EXPECT_EQ(Str(Blocks(2, 1, 3)), Str(std::vector<BlockRecord>{Block(3, 2, kCold)}));
  EXPECT_EQ(Str(Blocks(2, 0, 0)), Str(std::vector<BlockRecord>()));
  EXPECT_EQ(Str(Blocks(2, 4, UINT64_MAX)), Str(std::vector<BlockRecord>()));
  EXPECT_EQ(Str(Blocks(3)), Str(std::vector<BlockRecord>()));

  // Replacing block 0 drops chunk 1's reference (zero since the transaction's clock).
  ASSERT_OK(
      W([&](FileTreeTransaction& tx) -> Status { return tx.PutBlock(2, Block(0, 3)); }, 6000));
  EXPECT_EQ(Refs(1), 0);
  EXPECT_EQ(Chunk(1)->zero_since_ms, 6000);
  EXPECT_EQ(Refs(3), 1);
  // Rewriting a block with its own chunk keeps the count at 1 (it never touches zero).
  ASSERT_OK(
      W([&](FileTreeTransaction& tx) -> Status { return tx.PutBlock(2, Block(0, 3)); }, 6100));
  EXPECT_EQ(Refs(3), 1);
  EXPECT_EQ(Chunk(3)->zero_since_ms, 0);
  // The same chunk at two indexes is two references; a chunk at zero comes back.
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    RETURN_IF_ERROR(tx.PutBlock(2, Block(1, 3)));
    return tx.PutBlock(2, Block(5, 1));
  }));
  EXPECT_EQ(Refs(3), 2);
  EXPECT_EQ(Refs(1), 1);
  EXPECT_EQ(Chunk(1)->zero_since_ms, 0);
  EXPECT_EQ(Owned(2), (std::vector<Digest>{D(3), D(3), D(2), D(1)}));
  ExpectCountsAgree();
}

TEST_P(FileTreeTest, DropBlocksTruncatesFromAnIndex) {
  Format();
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    for (uint64_t i = 0; i < 6; ++i) RETURN_IF_ERROR(tx.PutBlock(2, Block(i, 10 + (i % 3))));
    return tx.PutBlock(4, Block(0, 10));  // another file sharing a chunk
  }));
  EXPECT_EQ(Refs(10), 3);
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status { return tx.DropBlocks(2, 4); }, 7000));
  EXPECT_EQ(Owned(2), (std::vector<Digest>{D(10), D(11), D(12), D(10)}));
  EXPECT_EQ(Refs(10), 3);
  EXPECT_EQ(Refs(11), 1);
  EXPECT_EQ(Refs(12), 1);
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status { return tx.DropBlocks(2, 100); }));
  EXPECT_EQ(Owned(2).size(), 4u);
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status { return tx.DropBlocks(2, 1); }, 7100));
  EXPECT_EQ(Owned(2), (std::vector<Digest>{D(10)}));
  EXPECT_EQ(Refs(11), 0);
  EXPECT_EQ(Chunk(11)->zero_since_ms, 7100);
  EXPECT_EQ(Refs(12), 0);
  EXPECT_EQ(Refs(10), 2);
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status { return tx.DropBlocks(2, 0); }));
  EXPECT_EQ(Owned(2), std::vector<Digest>());
  EXPECT_EQ(Refs(10), 1);                                                                // file 4's
  EXPECT_OK(W([&](FileTreeTransaction& tx) -> Status { return tx.DropBlocks(9, 0); }));  // none
  ExpectCountsAgree();
}

TEST_P(FileTreeTest, DeleteInodeDropsItsBlocksAndXattrsButNotItsEntries) {
  Format();
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    RETURN_IF_ERROR(tx.PutInode(Inode(2)).status());
    RETURN_IF_ERROR(tx.PutDentry({kRootInode, "f", 2, FileType::kRegular}));
    RETURN_IF_ERROR(tx.PutBlock(2, Block(0, 1)));
    RETURN_IF_ERROR(tx.PutBlock(2, Block(1, 2)));
    RETURN_IF_ERROR(tx.PutXattr(2, "user.a", "1"));
    RETURN_IF_ERROR(tx.PutXattr(2, "user.b", "2"));
    RETURN_IF_ERROR(tx.PutInode(Inode(3)).status());
    RETURN_IF_ERROR(tx.PutBlock(3, Block(0, 1)));
    return tx.PutXattr(3, "user.a", "3");
  }));
  EXPECT_EQ(Refs(1), 2);
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status { return tx.DeleteInode(2); }, 8000));
  EXPECT_FALSE(GetInode(2).has_value());
  EXPECT_EQ(Owned(2), std::vector<Digest>());
  EXPECT_EQ(Refs(1), 1);
  EXPECT_EQ(Refs(2), 0);
  EXPECT_EQ(Chunk(2)->zero_since_ms, 8000);
  EXPECT_OK(R([&](FileTreeTransaction& tx) -> Status {
    EXPECT_EQ(Str(tx.ListXattrs(2)), Str(std::vector<std::string>()));
    EXPECT_EQ(Str(tx.GetXattr(2, "user.a")), "absent");
    EXPECT_EQ(Str(tx.ListXattrs(3)), Str(std::vector<std::string>{"user.a"}));
    // The entry naming it is the caller's business.
    EXPECT_TRUE(tx.GetDentry(kRootInode, "f").value().has_value());
    return OkStatus();
  }));
  EXPECT_EQ(Owned(3), std::vector<Digest>{D(1)});
  ExpectCountsAgree();
}

// ---- usage ------------------------------------------------------------------------------

std::string Str(const VolumeUsage& u) {
  return "{inodes=" + std::to_string(u.inodes) + " files=" + std::to_string(u.files) +
         " file_bytes=" + std::to_string(u.file_bytes) + " chunks=" + std::to_string(u.chunks) +
         " chunk_bytes=" + std::to_string(u.chunk_bytes) + "}";
}

TEST_P(FileTreeTest, UsageSumsFileSizesAndCountsEachOfTheVolumesChunksOnce) {
  Format();
  auto usage = [&] {
    VolumeUsage out;
    EXPECT_OK(R([&](FileTreeTransaction& tx) -> Status {
      ASSIGN_OR_RETURN(out, tx.Usage());
      return OkStatus();
    }));
    return Str(out);
  };
  EXPECT_EQ(usage(), Str(VolumeUsage{1, 0, 0, 0, 0}));  // the root
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    InodeRecord big = Inode(2);
    big.size = 5000;
    RETURN_IF_ERROR(tx.PutInode(big).status());
    InodeRecord copy = Inode(3);
    copy.size = 5000;
    RETURN_IF_ERROR(tx.PutInode(copy).status());
    RETURN_IF_ERROR(tx.PutInode(Inode(4, FileType::kDirectory)).status());
    InodeRecord sparse = Inode(5);
    sparse.size = 1 << 30;  // a hole: no block row
    RETURN_IF_ERROR(tx.PutInode(sparse).status());
    // Files 2 and 3 hold the same chunks (2 and 3); file 2 holds chunk 2 twice; chunk 3
    // is also kept in the cold class (another chunk).
    RETURN_IF_ERROR(tx.PutBlock(2, Block(0, 2)));
    RETURN_IF_ERROR(tx.PutBlock(2, Block(1, 3)));
    RETURN_IF_ERROR(tx.PutBlock(2, Block(2, 2)));
    RETURN_IF_ERROR(tx.PutBlock(3, Block(0, 2)));
    RETURN_IF_ERROR(tx.PutBlock(3, Block(1, 3, kCold)));
    return OkStatus();
  }));
  // An object and another volume's file holding chunks: not this volume's.
  ASSERT_OK(store_->SetOwnerChunks(
      ChunkOwner{"test", "x"},
      {OwnerChunk(kHot, ChunkRef{D(2), 2000}), OwnerChunk(kHot, ChunkRef{D(7), 7000})}, 100));
  ASSERT_OK(store_->SetOwnerChunks(FileChunkOwner(kOtherUuid, 2),
                                   {OwnerChunk(kHot, ChunkRef{D(8), 8000})}, 100));
  ASSERT_OK(store_->SetOwnerChunks(ChunkOwner{"file", std::string(kUuid) + ";"},
                                   {OwnerChunk(kHot, ChunkRef{D(9), 9000})}, 100));
  // Inodes 1..5; files 2, 3, 5; chunks hot 2, hot 3, cold 3.
  EXPECT_EQ(usage(),
            Str(VolumeUsage{5, 3, 5000 + 5000 + (uint64_t{1} << 30), 3, 2000 + 3000 + 3000}));
  // Deleting file 2 keeps what file 3 holds; deleting it too leaves nothing.
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status { return tx.DeleteInode(2); }));
  EXPECT_EQ(usage(), Str(VolumeUsage{4, 2, 5000 + (uint64_t{1} << 30), 2, 2000 + 3000}));
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status { return tx.DeleteInode(3); }));
  EXPECT_EQ(usage(), Str(VolumeUsage{3, 1, uint64_t{1} << 30, 0, 0}));
  ExpectCountsAgree();
}

// ---- extended attributes ---------------------------------------------------------------

TEST_P(FileTreeTest, XattrsAreSetListedInByteOrderAndDeleted) {
  Format();
  const std::string binary_value("\0\x01\xff", 3);
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    RETURN_IF_ERROR(tx.PutXattr(2, "user.b", "two"));
    RETURN_IF_ERROR(tx.PutXattr(2, "user.a", ""));
    RETURN_IF_ERROR(tx.PutXattr(2, "user.\xc3\xa9", binary_value));
    RETURN_IF_ERROR(tx.PutXattr(2, "trusted.x", std::string(65536, 'v')));
    return tx.PutXattr(3, "user.a", "other inode");
  }));
  EXPECT_OK(R([&](FileTreeTransaction& tx) -> Status {
    EXPECT_EQ(Str(tx.ListXattrs(2)),
              Str(std::vector<std::string>{"trusted.x", "user.a", "user.b", "user.\xc3\xa9"}));
    EXPECT_EQ(Str(tx.GetXattr(2, "user.a")), Str(std::optional<std::string>("")));
    EXPECT_EQ(Str(tx.GetXattr(2, "user.\xc3\xa9")), Str(std::optional<std::string>(binary_value)));
    EXPECT_EQ(tx.GetXattr(2, "trusted.x").value()->size(), 65536u);
    EXPECT_EQ(Str(tx.GetXattr(2, "user.c")), "absent");
    EXPECT_EQ(Str(tx.GetXattr(4, "user.a")), "absent");
    EXPECT_EQ(Str(tx.ListXattrs(4)), Str(std::vector<std::string>()));
    return OkStatus();
  }));
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    RETURN_IF_ERROR(tx.PutXattr(2, "user.b", "replaced"));
    RETURN_IF_ERROR(tx.DeleteXattr(2, "user.a"));
    return tx.DeleteXattr(2, "user.none");
  }));
  EXPECT_OK(R([&](FileTreeTransaction& tx) -> Status {
    EXPECT_EQ(Str(tx.GetXattr(2, "user.b")), Str(std::optional<std::string>("replaced")));
    EXPECT_EQ(Str(tx.ListXattrs(2)),
              Str(std::vector<std::string>{"trusted.x", "user.b", "user.\xc3\xa9"}));
    EXPECT_EQ(Str(tx.ListXattrs(3)), Str(std::vector<std::string>{"user.a"}));
    return OkStatus();
  }));
}

// ---- sessions, orphans, the change feed, locks ------------------------------------------

TEST_P(FileTreeTest, SessionsRoundTripEveryFieldAndAreReplacedAndDeleted) {
  Format();
  SessionRecord a{12345, "host-a", "boot:pidns", 77, "/mnt/\xff data", "1.2.3",
                  true,  10,       20,           30, uint64_t{1} << 62};
  SessionRecord b{(uint64_t{1} << 63) - 1, "host-b", "k2", 1, "/m", "v", false, 1, 2, 3};
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    RETURN_IF_ERROR(tx.PutSession(b));
    return tx.PutSession(a);
  }));
  EXPECT_CODE(W([&](FileTreeTransaction& tx) -> Status {
                SessionRecord zero = a;
                zero.id = 0;
                return tx.PutSession(zero);
              }),
              kInvalidArgument);
  EXPECT_OK(R([&](FileTreeTransaction& tx) -> Status {
    EXPECT_EQ(Str(tx.ListSessions()), Str(std::vector<SessionRecord>{a, b}));
    return OkStatus();
  }));
  a.heartbeat_ms = 500;
  a.expires_ms = 900;
  a.seen_seq = 41;
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    RETURN_IF_ERROR(tx.PutSession(a));
    RETURN_IF_ERROR(tx.DeleteSession(b.id));
    return tx.DeleteSession(999);  // absent: fine
  }));
  EXPECT_OK(R([&](FileTreeTransaction& tx) -> Status {
    EXPECT_EQ(Str(tx.ListSessions()), Str(std::vector<SessionRecord>{a}));
    return OkStatus();
  }));
}

TEST_P(FileTreeTest, OrphansAreListedAndGoWithTheirInode) {
  Format();
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    for (uint64_t ino : {2, 3, 4}) RETURN_IF_ERROR(tx.PutInode(Inode(ino)).status());
    RETURN_IF_ERROR(tx.PutOrphan({3, 7}));
    RETURN_IF_ERROR(tx.PutOrphan({2, 0, uint64_t{1} << 62}));  // pending
    return tx.PutOrphan({4, 7});
  }));
  EXPECT_OK(R([&](FileTreeTransaction& tx) -> Status {
    EXPECT_EQ(Str(tx.ListOrphans()),
              Str(std::vector<OrphanRecord>{{2, 0, uint64_t{1} << 62}, {3, 7}, {4, 7}}));
    return OkStatus();
  }));
  ASSERT_OK(W([&](FileTreeTransaction& tx) { return tx.PutOrphan({2, 8}); }));  // claimed
  EXPECT_OK(R([&](FileTreeTransaction& tx) -> Status {
    EXPECT_EQ(Str(tx.ListOrphans()), Str(std::vector<OrphanRecord>{{2, 8}, {3, 7}, {4, 7}}));
    return OkStatus();
  }));
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    RETURN_IF_ERROR(tx.DeleteInode(3));
    RETURN_IF_ERROR(tx.DeleteOrphan(2));
    return tx.DeleteOrphan(99);
  }));
  EXPECT_OK(R([&](FileTreeTransaction& tx) -> Status {
    EXPECT_EQ(Str(tx.ListOrphans()), Str(std::vector<OrphanRecord>{{4, 7}}));
    EXPECT_TRUE(tx.GetInode(2).value().has_value());  // the inode stays: only its orphan row
    return OkStatus();
  }));
}

TEST_P(FileTreeTest, TheChangeFeedOrdersCommitsAndNeverReusesASeq) {
  Format();
  auto last = [&] {
    uint64_t seq = 0;
    EXPECT_OK(R([&](FileTreeTransaction& tx) -> Status {
      ASSIGN_OR_RETURN(seq, tx.LastChangeSeq());
      return OkStatus();
    }));
    return seq;
  };
  EXPECT_EQ(last(), 0u);
  uint64_t first = 0, second = 0;
  ASSERT_OK(W(
      [&](FileTreeTransaction& tx) -> Status {
        ASSIGN_OR_RETURN(first, tx.AppendChange({0, 5, 2, true, 0, "", 0}));
        ASSIGN_OR_RETURN(second, tx.AppendChange({0, 5, 0, false, 1, "n\xff\x01", 0}));
        return OkStatus();
      },
      1000));
  EXPECT_GT(first, 0u);
  EXPECT_GT(second, first);
  EXPECT_EQ(last(), second);
  // A rolled-back append is never seen.
  EXPECT_CODE(W([&](FileTreeTransaction& tx) -> Status {
                RETURN_IF_ERROR(tx.AppendChange({0, 5, 9, false, 0, "", 0}).status());
                return AbortedError("no");
              }),
              kAborted);
  uint64_t third = 0;
  ASSERT_OK(W(
      [&](FileTreeTransaction& tx) -> Status {
        ASSIGN_OR_RETURN(third, tx.AppendChange({0, 6, 3, false, 0, "", 0}));
        return OkStatus();
      },
      3000));
  EXPECT_GT(third, second);
  EXPECT_OK(R([&](FileTreeTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(std::vector<ChangeRecord> all, tx.ListChanges(0, 100));
    EXPECT_EQ(Str(all), Str(std::vector<ChangeRecord>{{first, 5, 2, true, 0, "", 1000},
                                                      {second, 5, 0, false, 1, "n\xff\x01", 1000},
                                                      {third, 6, 3, false, 0, "", 3000}}));
    EXPECT_EQ(tx.ListChanges(first, 1).value().size(), 1u);
    EXPECT_EQ(tx.ListChanges(first, 1).value()[0].seq, second);
    EXPECT_TRUE(tx.ListChanges(third, 100).value().empty());
    return OkStatus();
  }));
  // Trimming everything keeps the counter: the next seq is still higher.
  ASSERT_OK(W([&](FileTreeTransaction& tx) { return tx.TrimChanges(2000); }));
  EXPECT_OK(R([&](FileTreeTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(std::vector<ChangeRecord> all, tx.ListChanges(0, 100));
    EXPECT_EQ(all.size(), 1u);
    return OkStatus();
  }));
  ASSERT_OK(W([&](FileTreeTransaction& tx) { return tx.TrimChanges(9000); }));
  EXPECT_EQ(last(), third);
  uint64_t fourth = 0;
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(fourth, tx.AppendChange({0, 6, 4, false, 0, "", 0}));
    return OkStatus();
  }));
  EXPECT_GT(fourth, third);
  if (Persists()) {  // the counter survives a restart
    store_.reset();
    Open();
    EXPECT_EQ(last(), fourth);
  }
}

// Several rows at once (the engines write up to four per statement): each listed as given, in
// order, after every earlier seq; the returned seq is the last row's. None is no row and 0.
TEST_P(FileTreeTest, ChangesAppendedTogetherAreListedInOrderAfterEveryEarlierOne) {
  Format();
  uint64_t before = 0;
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(before, tx.AppendChange({0, 1, 2, false, 0, "", 0}));
    return OkStatus();
  }));
  for (size_t count : {size_t{0}, size_t{1}, size_t{3}, size_t{4}, size_t{9}}) {
    SCOPED_TRACE(count);
    std::vector<ChangeRecord> changes;
    for (size_t i = 0; i < count; ++i) {
      const uint64_t n = 100 * count + i;
      changes.push_back({0, 7 + i % 2, n, i % 3 == 0, i % 2 == 0 ? 0 : n + 1,
                         i % 2 == 0 ? "" : "name\xff-" + std::to_string(i), 0});
    }
    uint64_t last = 1;
    ASSERT_OK(W(
        [&](FileTreeTransaction& tx) -> Status {
          ASSIGN_OR_RETURN(last, tx.AppendChanges(changes));
          return OkStatus();
        },
        5000 + static_cast<TimestampMs>(count)));
    EXPECT_OK(R([&](FileTreeTransaction& tx) -> Status {
      ASSIGN_OR_RETURN(std::vector<ChangeRecord> listed, tx.ListChanges(before, 100));
      EXPECT_EQ(listed.size(), count);
      if (count == 0) {
        EXPECT_EQ(last, 0u);
        return OkStatus();
      }
      for (size_t i = 0; i < listed.size() && i < count; ++i) {
        ChangeRecord expected = changes[i];
        expected.seq = listed[i].seq;
        expected.at_ms = 5000 + static_cast<TimestampMs>(count);
        EXPECT_EQ(Str(listed[i]), Str(expected)) << i;
        EXPECT_GT(listed[i].seq, i == 0 ? before : listed[i - 1].seq) << i;
      }
      EXPECT_EQ(last, listed.back().seq);
      ASSIGN_OR_RETURN(uint64_t newest, tx.LastChangeSeq());
      EXPECT_EQ(newest, last);
      return OkStatus();
    }));
    if (count > 0) before = last;
  }
  // A rolled-back batch is never seen, and the next one still follows the last.
  EXPECT_CODE(
      W([&](FileTreeTransaction& tx) -> Status {
        RETURN_IF_ERROR(
            tx.AppendChanges({{0, 1, 3, false, 0, "", 0}, {0, 1, 4, false, 0, "", 0}}).status());
        return AbortedError("no");
      }),
      kAborted);
  EXPECT_OK(R([&](FileTreeTransaction& tx) -> Status {
    EXPECT_TRUE(tx.ListChanges(before, 100).value().empty());
    return OkStatus();
  }));
}

TEST_P(FileTreeTest, ARelaxedWriteIsSeenAtOnceAndKeptAfterSync) {
  Format();
  ASSERT_OK(tree_->WriteRelaxed(
      [&](FileTreeTransaction& tx) -> Status {
        RETURN_IF_ERROR(tx.PutInode(Inode(2)).status());
        return tx.PutDentry({kRootInode, "relaxed", 2, FileType::kRegular});
      },
      100));
  EXPECT_TRUE(GetInode(2).has_value());
  // A failed relaxed write leaves nothing, as a durable one.
  EXPECT_CODE(tree_->WriteRelaxed(
                  [&](FileTreeTransaction& tx) -> Status {
                    RETURN_IF_ERROR(tx.PutInode(Inode(3)).status());
                    return AbortedError("no");
                  },
                  100),
              kAborted);
  EXPECT_FALSE(GetInode(3).has_value());
  const uint64_t before = NewIno();
  ASSERT_OK(tree_->Sync());
  EXPECT_GT(NewIno(), before);  // Sync may spend inode numbers; it never hands out an old one
  if (Persists()) {
    store_.reset();
    Open();
    EXPECT_TRUE(GetInode(2).has_value());
    EXPECT_EQ(Names(kRootInode), std::vector<std::string>{"relaxed"});
  }
}

TEST_P(FileTreeTest, AnOwnersEntriesAreAddedAndDroppedOneAtATime) {
  Format();
  const ChunkOwner staging{"fs-staging", "vol:1"};
  auto add = [&](uint64_t seq, int chunk) {
    return W([&](FileTreeTransaction& tx) {
      return tx.AddOwnerEntry(
          staging, seq, OwnerChunk(kHot, ChunkRef{D(chunk), static_cast<uint64_t>(chunk) * 1000}));
    });
  };
  auto drop = [&](std::vector<uint64_t> seqs) {
    return W([&](FileTreeTransaction& tx) { return tx.DropOwnerEntries(staging, seqs); });
  };
  ASSERT_OK(add(0, 1));
  ASSERT_OK(add(7, 2));
  ASSERT_OK(add(3, 1));  // the same chunk twice: two references
  EXPECT_EQ(Refs(1), 2);
  EXPECT_EQ(Refs(2), 1);
  // A taken seq is refused, and the refused transaction takes no reference.
  EXPECT_FALSE(add(7, 3).ok());
  EXPECT_EQ(Refs(3), -1);  // no row
  EXPECT_EQ(Refs(2), 1);
  Result<std::vector<OwnerChunk>> list = store_->GetOwnerChunks(staging);
  ASSERT_OK(list);
  ASSERT_EQ(list->size(), 3u);  // by seq: 0, 3, 7
  EXPECT_EQ((*list)[0].chunk.digest, D(1));
  EXPECT_EQ((*list)[1].chunk.digest, D(1));
  EXPECT_EQ((*list)[2].chunk.digest, D(2));
  // The block row takes its reference in the same transaction as the entry goes.
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    RETURN_IF_ERROR(tx.PutInode(Inode(2)).status());
    RETURN_IF_ERROR(tx.PutBlock(2, Block(0, 2)));
    return tx.DropOwnerEntries(staging, {7});
  }));
  EXPECT_EQ(Refs(2), 1);
  // Absent seqs are nothing; a failed transaction keeps the entries and the counts.
  ASSERT_OK(drop({5, 7, 99}));
  EXPECT_EQ(Refs(1), 2);
  EXPECT_CODE(W([&](FileTreeTransaction& tx) -> Status {
                RETURN_IF_ERROR(tx.DropOwnerEntries(staging, {0, 3}));
                return AbortedError("no");
              }),
              kAborted);
  EXPECT_EQ(Refs(1), 2);
  ASSERT_OK(drop({3}));
  EXPECT_EQ(Refs(1), 1);
  ASSERT_OK(drop({0}));
  EXPECT_EQ(Refs(1), 0);
  list = store_->GetOwnerChunks(staging);
  ASSERT_OK(list);
  EXPECT_TRUE(list->empty());
  // A file's blocks are not a generic owner's entries.
  EXPECT_CODE(
      W([&](FileTreeTransaction& tx) {
        return tx.AddOwnerEntry(FileChunkOwner(kUuid, 2), 9, OwnerChunk(kHot, ChunkRef{D(1), 5}));
      }),
      kInvalidArgument);
  EXPECT_CODE(W([&](FileTreeTransaction& tx) {
                return tx.DropOwnerEntries(FileChunkOwner(kUuid, 2), {0});
              }),
              kInvalidArgument);
  EXPECT_EQ(Refs(2), 1);
  ExpectCountsAgree();
}

TEST_P(FileTreeTest, AnOwnersChunkListIsReplacedInsideATransaction) {
  Format();
  const ChunkOwner staging{"fs-staging", "vol:1"};
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    return tx.SetOwnerChunks(
        staging, {OwnerChunk(kHot, ChunkRef{D(1), 5}), OwnerChunk(kHot, ChunkRef{D(2), 6})});
  }));
  EXPECT_EQ(Refs(1), 1);
  EXPECT_EQ(Refs(2), 1);
  // The block row takes its reference in the same transaction as the staging lets go.
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    RETURN_IF_ERROR(tx.PutInode(Inode(2)).status());
    RETURN_IF_ERROR(tx.PutBlock(2, Block(0, 1)));
    return tx.SetOwnerChunks(staging, {OwnerChunk(kHot, ChunkRef{D(2), 6})});
  }));
  EXPECT_EQ(Refs(1), 1);
  EXPECT_EQ(Refs(2), 1);
  // A failed transaction restores the list and the counts.
  EXPECT_CODE(W([&](FileTreeTransaction& tx) -> Status {
                RETURN_IF_ERROR(tx.SetOwnerChunks(staging, {}));
                return AbortedError("no");
              }),
              kAborted);
  EXPECT_EQ(Refs(2), 1);
  ASSERT_OK(W([&](FileTreeTransaction& tx) { return tx.SetOwnerChunks(staging, {}); }));
  EXPECT_EQ(Refs(2), 0);
  Result<std::vector<OwnerChunk>> left = store_->GetOwnerChunks(staging);
  ASSERT_OK(left);
  EXPECT_TRUE(left->empty());
  // A file's blocks are not a generic owner's list.
  EXPECT_CODE(
      W([&](FileTreeTransaction& tx) { return tx.SetOwnerChunks(FileChunkOwner(kUuid, 2), {}); }),
      kInvalidArgument);
  ExpectCountsAgree();
}

TEST_P(FileTreeTest, LocksAreReplacedPerOwnerAndDroppedPerSession) {
  Format();
  auto lock = [](uint64_t session, uint64_t owner, LockKind kind, bool exclusive, uint64_t start,
                 uint64_t end) {
    return LockRecord{9, session, owner, kind, exclusive, start, end, 42};
  };
  const LockRecord a1 = lock(1, 10, LockKind::kPosix, true, 0, 99);
  const LockRecord a2 = lock(1, 10, LockKind::kPosix, false, 200, UINT64_MAX >> 1);
  const LockRecord f = lock(1, 10, LockKind::kFlock, true, 0, UINT64_MAX >> 1);
  const LockRecord b = lock(2, 10, LockKind::kPosix, false, 100, 150);
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    RETURN_IF_ERROR(tx.SetLocks(9, 2, 10, LockKind::kPosix, {b}));
    RETURN_IF_ERROR(tx.SetLocks(9, 1, 10, LockKind::kFlock, {f}));
    RETURN_IF_ERROR(tx.SetLocks(9, 1, 10, LockKind::kPosix, {a2, a1}));
    return tx.SetLocks(8, 1, 10, LockKind::kPosix, {lock(1, 10, LockKind::kPosix, true, 0, 0)});
  }));
  EXPECT_OK(R([&](FileTreeTransaction& tx) -> Status {
    EXPECT_EQ(Str(tx.ListLocks(9)), Str(std::vector<LockRecord>{a1, a2, f, b}));
    return OkStatus();
  }));
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    return tx.SetLocks(9, 1, 10, LockKind::kPosix, {a1});  // replaces both
  }));
  EXPECT_OK(R([&](FileTreeTransaction& tx) -> Status {
    EXPECT_EQ(Str(tx.ListLocks(9)), Str(std::vector<LockRecord>{a1, f, b}));
    return OkStatus();
  }));
  ASSERT_OK(W([&](FileTreeTransaction& tx) { return tx.DeleteSessionLocks(1); }));
  EXPECT_OK(R([&](FileTreeTransaction& tx) -> Status {
    EXPECT_EQ(Str(tx.ListLocks(9)), Str(std::vector<LockRecord>{b}));
    EXPECT_TRUE(tx.ListLocks(8).value().empty());
    return OkStatus();
  }));
}

// ---- transactions ----------------------------------------------------------------------

TEST_P(FileTreeTest, AFailedWriteLeavesNothing) {
  Format();
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    RETURN_IF_ERROR(tx.PutInode(Inode(2)).status());
    RETURN_IF_ERROR(tx.PutDentry({kRootInode, "f", 2, FileType::kRegular}));
    RETURN_IF_ERROR(tx.PutBlock(2, Block(0, 1)));
    RETURN_IF_ERROR(tx.PutBlock(2, Block(1, 2)));
    RETURN_IF_ERROR(tx.PutXattr(2, "user.a", "1"));
    RETURN_IF_ERROR(tx.PutInode(Inode(3)).status());
    return tx.PutBlock(3, Block(0, 2));
  }));
  const std::set<uint64_t> inos = {kRootInode, 2, 3, 4, 5};
  const std::string before = Dump(*store_, inos);
  uint64_t taken = 0;
  EXPECT_CODE(W(
                  [&](FileTreeTransaction& tx) -> Status {
                    InodeRecord changed = Inode(2);
                    changed.size = 1;
                    EXPECT_OK(tx.PutInode(changed));
                    EXPECT_OK(tx.PutInode(Inode(4)));
                    EXPECT_OK(tx.PutDentry({kRootInode, "g", 4, FileType::kRegular}));
                    EXPECT_OK(tx.DeleteDentry(kRootInode, "f"));
                    EXPECT_OK(tx.PutBlock(2, Block(0, 5)));
                    EXPECT_OK(tx.PutBlock(4, Block(0, 6)));
                    EXPECT_OK(tx.DropBlocks(2, 1));
                    EXPECT_OK(tx.DeleteInode(3));
                    EXPECT_OK(tx.PutXattr(2, "user.a", "changed"));
                    EXPECT_OK(tx.PutXattr(2, "user.b", "new"));
                    EXPECT_OK(tx.DeleteXattr(2, "user.a"));
                    Result<uint64_t> ino = tx.NewInodeNumber();
                    EXPECT_OK(ino);
                    taken = ino.ok() ? *ino : 0;
                    return AbortedError("the body gave up");
                  },
                  9000),
              kAborted);
  EXPECT_EQ(Dump(*store_, inos), before);
  EXPECT_EQ(Refs(5), -1);  // chunk rows the transaction created are gone too
  EXPECT_EQ(Refs(6), -1);
  EXPECT_EQ(NewIno(), taken);
  // The store still works, and a later success commits.
  EXPECT_OK(W([&](FileTreeTransaction& tx) -> Status { return tx.PutBlock(2, Block(7, 5)); }));
  EXPECT_EQ(Refs(5), 1);
}

TEST_P(FileTreeTest, AReadTransactionRefusesWrites) {
  Format();
  const std::string before = Dump(*store_, {kRootInode, 2});
  Status status = R([&](FileTreeTransaction& tx) -> Status {
    EXPECT_FALSE(tx.PutInode(Inode(2)).ok());
    EXPECT_FALSE(tx.DeleteInode(kRootInode).ok());
    EXPECT_FALSE(tx.NewInodeNumber().ok());
    EXPECT_FALSE(tx.PutDentry({kRootInode, "f", 2, FileType::kRegular}).ok());
    EXPECT_FALSE(tx.DeleteDentry(kRootInode, "f").ok());
    EXPECT_FALSE(tx.PutBlock(2, Block(0, 1)).ok());
    EXPECT_FALSE(tx.DropBlocks(2, 0).ok());
    EXPECT_FALSE(tx.PutXattr(2, "user.a", "").ok());
    EXPECT_FALSE(tx.DeleteXattr(2, "user.a").ok());
    return OkStatus();
  });
  EXPECT_OK(status);
  EXPECT_EQ(Dump(*store_, {kRootInode, 2}), before);
}

// The trash days change with the write that sets them: seen by that transaction's volume()
// and every later one, kept across a reopen, undone with a failed body, refused to a read.
TEST_P(FileTreeTest, TrashDaysChangeWithTheirWriteOnly) {
  Format();
  EXPECT_OK(R([](FileTreeTransaction& tx) -> Status {
    EXPECT_FALSE(tx.SetTrashDays(3).ok());
    return OkStatus();
  }));
  ASSERT_OK(W([](FileTreeTransaction& tx) -> Status {
    RETURN_IF_ERROR(tx.SetTrashDays(30));
    EXPECT_EQ(tx.volume().value().trash_days, 30u);
    return OkStatus();
  }));
  EXPECT_OK(R([](FileTreeTransaction& tx) -> Status {
    EXPECT_EQ(tx.volume().value().trash_days, 30u);
    return OkStatus();
  }));
  Status failed = W([](FileTreeTransaction& tx) -> Status {
    RETURN_IF_ERROR(tx.SetTrashDays(0));
    return InternalError("the body fails after setting the days");
  });
  EXPECT_CODE(failed, kInternal);
  Result<std::optional<VolumeRecord>> volume = tree_->GetVolume();
  ASSERT_OK(volume);
  ASSERT_TRUE(volume->has_value());
  EXPECT_EQ((*volume)->trash_days, 30u);
  VolumeRecord expected = Volume();
  expected.trash_days = 30;
  EXPECT_EQ(**volume, expected);  // nothing else of the volume changed
  if (Persists()) {
    store_.reset();
    Open();
    volume = tree_->GetVolume();
    ASSERT_OK(volume);
    EXPECT_EQ((*volume)->trash_days, 30u);
  }
}

// Threads writing at once lose no update, and reads between them see whole transactions.
TEST_P(FileTreeTest, ConcurrentWritesLoseNoUpdate) {
  Format();
  const uint64_t counter_ino = NewIno();  // a number the threads' NewInodeNumber never gives
  ASSERT_OK(W(
      [&](FileTreeTransaction& tx) -> Status { return tx.PutInode(Inode(counter_ino)).status(); }));
  constexpr int kThreads = 4;
  constexpr int kWrites = 60;
  std::vector<std::thread> threads;
  std::vector<std::vector<uint64_t>> inos(kThreads);
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kWrites; ++i) {
        uint64_t ino = 0;
        Status status = W([&](FileTreeTransaction& tx) -> Status {
          // Read-modify-write of one counter (the inode's size) and of a directory.
          ASSIGN_OR_RETURN(std::optional<InodeRecord> counter, tx.GetInode(counter_ino));
          if (!counter) return InternalError("counter inode missing");
          counter->size += 1;
          RETURN_IF_ERROR(tx.PutInode(*counter).status());
          ASSIGN_OR_RETURN(ino, tx.NewInodeNumber());
          RETURN_IF_ERROR(tx.PutInode(Inode(ino)).status());
          RETURN_IF_ERROR(tx.PutBlock(ino, Block(0, 1 + (i % 3))));
          return tx.PutDentry({kRootInode, "t" + std::to_string(t) + "-" + std::to_string(i), ino,
                               FileType::kRegular});
        });
        if (!status.ok()) {
          ++failures;
          ADD_FAILURE() << status.ToString();
          continue;
        }
        inos[t].push_back(ino);
        // Reads in between see whole transactions: each entry names a stored inode.
        if (i % 10 == 0) {
          EXPECT_OK(R([&](FileTreeTransaction& tx) -> Status {
            ASSIGN_OR_RETURN(std::vector<DentryRecord> entries,
                             tx.ListDentries(kRootInode, "", 100000));
            ASSIGN_OR_RETURN(std::optional<InodeRecord> counter, tx.GetInode(counter_ino));
            if (!counter) return InternalError("counter inode missing");
            EXPECT_EQ(counter->size - 12345, entries.size());
            return OkStatus();
          }));
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  std::optional<InodeRecord> counter = GetInode(counter_ino);
  ASSERT_TRUE(counter.has_value());
  EXPECT_EQ(counter->size, 12345u + kThreads * kWrites);
  EXPECT_EQ(counter->change, 1u + kThreads * kWrites);
  std::set<uint64_t> distinct;
  for (const auto& list : inos) distinct.insert(list.begin(), list.end());
  EXPECT_EQ(distinct.size(), static_cast<size_t>(kThreads * kWrites));
  EXPECT_EQ(Names(kRootInode).size(), static_cast<size_t>(kThreads * kWrites));
  EXPECT_EQ(Refs(1) + Refs(2) + Refs(3), kThreads * kWrites);
  ExpectCountsAgree();
}

// ---- what other parts of the store make of a volume -------------------------------------

#define FT_CONCAT_INNER(a, b) a##b
#define FT_CONCAT(a, b) FT_CONCAT_INNER(a, b)
#define ASSERT_OK_AND_ASSIGN(lhs, expr)                                       \
  auto FT_CONCAT(assigned_, __LINE__) = (expr);                               \
  ASSERT_TRUE(FT_CONCAT(assigned_, __LINE__).ok())                            \
      << #expr << ": " << FT_CONCAT(assigned_, __LINE__).status().ToString(); \
  lhs = std::move(FT_CONCAT(assigned_, __LINE__)).value()

// A snapshot reader over `text`.
SnapshotReader ReaderOf(std::shared_ptr<const std::string> text) {
  auto offset = std::make_shared<size_t>(0);
  return SnapshotReader([text, offset](char* buffer, size_t capacity) -> Result<size_t> {
    const size_t n = std::min(capacity, text->size() - *offset);
    std::copy_n(text->data() + *offset, n, buffer);
    *offset += n;
    return n;
  });
}

Result<std::string> DumpText(MetaStore& store, const std::string& engine, TimestampMs now_ms) {
  std::string out;
  ASSIGN_OR_RETURN(SnapshotCounts counts,
                   DumpSnapshot(store, engine, now_ms, [&](std::string_view bytes) {
                     out.append(bytes);
                     return OkStatus();
                   }));
  (void)counts;
  return out;
}

// An owner's list as text: class, digest and size of each entry ("" for none).
std::string OwnedText(MetaStore& store, const ChunkOwner& owner) {
  Result<std::vector<OwnerChunk>> owned = store.GetOwnerChunks(owner);
  if (!owned.ok()) return Str(owned.status());
  std::string out;
  for (const OwnerChunk& entry : *owned) {
    out += std::string(StorageClassName(entry.storage_class)) + " " +
           entry.chunk.digest.ToHex().substr(0, 12) + " " + std::to_string(entry.chunk.size_bytes) +
           "; ";
  }
  return out;
}

// The records of a snapshot file: everything after its header line, before its trailer.
std::string RecordsOf(const std::string& text) {
  const size_t first = text.find('\n') + 1;
  const size_t last = text.rfind("{\"type\":\"end\"");
  return text.substr(first, last - first);
}

// A volume with a directory, a file with a hole between its blocks, a hard link, a
// symlink with a binary target, xattrs with binary names and values, a FIFO, plus what a
// snapshot leaves out: an inode unlinked while open (with a block and an xattr), a mount's
// session, staging owner, change and lock.
TEST_P(FileTreeTest, SnapshotsCarryTheVolumeIntoEveryEngine) {
  constexpr TimestampMs kDumpMs = 9000;
  Format();
  uint64_t dir = 0, file = 0, link = 0, fifo = 0, unlinked = 0;
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(dir, tx.NewInodeNumber());
    ASSIGN_OR_RETURN(file, tx.NewInodeNumber());
    ASSIGN_OR_RETURN(link, tx.NewInodeNumber());
    ASSIGN_OR_RETURN(fifo, tx.NewInodeNumber());
    ASSIGN_OR_RETURN(unlinked, tx.NewInodeNumber());
    InodeRecord d = Inode(dir, FileType::kDirectory);
    d.nlink = 2;
    d.parent = kRootInode;
    d.mode = 01777;
    RETURN_IF_ERROR(tx.PutInode(d).status());
    InodeRecord f = Inode(file);
    f.nlink = 2;  // two names
    f.size = 3 * 1000;
    f.mtime_ns = -5;  // before 1970
    RETURN_IF_ERROR(tx.PutInode(f).status());
    RETURN_IF_ERROR(tx.PutInode(f).status());  // change 2
    InodeRecord l = Inode(link, FileType::kSymlink);
    l.symlink_target = std::string("../t\xff\x01rget", 10);
    RETURN_IF_ERROR(tx.PutInode(l).status());
    InodeRecord p = Inode(fifo, FileType::kFifo);
    p.rdev = UINT64_C(0x1234567890);
    RETURN_IF_ERROR(tx.PutInode(p).status());
    InodeRecord u = Inode(unlinked);
    u.nlink = 0;
    RETURN_IF_ERROR(tx.PutInode(u).status());
    RETURN_IF_ERROR(tx.PutDentry({kRootInode, "dir", dir, FileType::kDirectory}));
    RETURN_IF_ERROR(tx.PutDentry({dir, "file", file, FileType::kRegular}));
    RETURN_IF_ERROR(tx.PutDentry({kRootInode, "hard\xc3\xa9", file, FileType::kRegular}));
    RETURN_IF_ERROR(tx.PutDentry({dir, "\xff\x80link", link, FileType::kSymlink}));
    RETURN_IF_ERROR(tx.PutDentry({kRootInode, "fifo", fifo, FileType::kFifo}));
    RETURN_IF_ERROR(tx.PutBlock(file, Block(0, 1)));
    RETURN_IF_ERROR(tx.PutBlock(file, Block(2, 2, kCold)));  // block 1 is a hole
    RETURN_IF_ERROR(tx.PutBlock(file, Block(5, 1)));         // chunk 1 twice
    RETURN_IF_ERROR(tx.PutBlock(unlinked, Block(0, 5)));
    RETURN_IF_ERROR(tx.PutXattr(file, "user.bin", std::string("\0\x01\xff\xfe", 4)));
    RETURN_IF_ERROR(tx.PutXattr(file, std::string("user.\xff", 6), ""));
    RETURN_IF_ERROR(tx.PutXattr(dir, "trusted.x", std::string(3000, '\x80')));
    RETURN_IF_ERROR(tx.PutXattr(unlinked, "user.gone", "x"));
    SessionRecord session;
    session.id = 42;
    session.host = "h";
    session.expires_ms = 1;
    RETURN_IF_ERROR(tx.PutSession(session));
    RETURN_IF_ERROR(tx.PutOrphan({unlinked, 42}));
    RETURN_IF_ERROR(tx.AppendChange({0, 42, file, true, 0, "", 0}).status());
    LockRecord lock{file, 42, 7, LockKind::kPosix, true, 0, 10, 99};
    return tx.SetLocks(file, 42, 7, LockKind::kPosix, {lock});
  }));
  const ChunkOwner staging{"fs-staging", std::string(kUuid) + ":42"};
  ASSERT_OK(store_->SetOwnerChunks(staging, {OwnerChunk(kHot, ChunkRef{D(6), 6000})}, 5000));
  ASSERT_OK(store_->SetOwnerChunks(ChunkOwner{"test", "o"}, {Block(0, 2, kCold).chunk}, 5000));

  ASSERT_OK_AND_ASSIGN(std::string text, DumpText(*store_, GetParam(), kDumpMs));
  EXPECT_EQ(text.rfind("{\"format\":\"cairn-meta-snapshot\",\"version\":4,", 0), 0u) << text;
  EXPECT_NE(text.find("\"volumes\":1,\"inodes\":5,\"dentries\":5,\"xattrs\":3}"), std::string::npos)
      << text;
  EXPECT_NE(text.find("\"sequences\":[0,2,5]"), std::string::npos) << text;
  EXPECT_EQ(text.find("fs-staging"), std::string::npos) << text;
  EXPECT_EQ(text.find("user.gone"), std::string::npos) << text;

  // What the restored store must show: the source without what the snapshot leaves out,
  // dropped at the snapshot's time (so the chunks they alone held get the same zero time).
  const uint64_t next_ino = NewIno();
  ASSERT_OK(W(
      [&](FileTreeTransaction& tx) -> Status {
        RETURN_IF_ERROR(tx.DeleteInode(unlinked));
        RETURN_IF_ERROR(tx.DeleteSessionLocks(42));
        return tx.DeleteSession(42);
      },
      kDumpMs));
  ASSERT_OK(store_->DropOwnerChunks(staging, kDumpMs));
  const std::set<uint64_t> inos = {kRootInode, dir, file, link, fifo, unlinked};
  const std::string expected = Dump(*store_, inos);
  EXPECT_EQ(expected.find("disagrees"), std::string::npos) << expected;

  std::vector<std::string> engines = {"memory", "sqlite"};
  if (GetParam() == "postgres") engines.push_back("postgres");
  auto shared = std::make_shared<const std::string>(text);
  for (const std::string& engine : engines) {
    SCOPED_TRACE("loaded into " + engine);
    std::unique_ptr<MetaStore> restored =
        OpenStore(UrlFor(engine, dir_, "restored-" + engine + ".db", &databases_));
    ASSERT_NE(restored, nullptr);
    SnapshotReader reader = ReaderOf(shared);
    ASSERT_OK_AND_ASSIGN(SnapshotCounts loaded, restored->ImportSnapshot(reader));
    EXPECT_EQ(loaded.volumes, 1u);
    EXPECT_EQ(loaded.inodes, 5u);
    EXPECT_EQ(loaded.dentries, 5u);
    EXPECT_EQ(loaded.xattrs, 3u);
    EXPECT_EQ(loaded.owners, 2u);
    EXPECT_EQ(Dump(*restored, inos), expected);
    EXPECT_EQ(OwnedText(*restored, FileChunkOwner(kUuid, file)),
              OwnedText(*store_, FileChunkOwner(kUuid, file)));
    EXPECT_EQ(OwnedText(*restored, ChunkOwner{"test", "o"}),
              OwnedText(*store_, ChunkOwner{"test", "o"}));
    EXPECT_EQ(OwnedText(*restored, staging), "");
    // It dumps the same records again (the engine name and time are the header's), before
    // anything is written to it.
    ASSERT_OK_AND_ASSIGN(std::string again, DumpText(*restored, engine, kDumpMs));
    EXPECT_EQ(RecordsOf(again), RecordsOf(text));
    // No runtime state of the source's mounts, and inode numbers go on where they were.
    ASSERT_OK(restored->file_tree()->Write(
        [&](FileTreeTransaction& tx) -> Status {
          EXPECT_EQ(Str(tx.ListSessions()), "[]");
          EXPECT_EQ(Str(tx.ListOrphans()), "[]");
          EXPECT_EQ(Str(tx.ListChanges(0, 100)), "[]");
          EXPECT_EQ(Str(tx.ListLocks(file)), "[]");
          // The number the source would have handed out next when the snapshot was taken.
          EXPECT_EQ(Str(tx.NewInodeNumber()), Str(Result<uint64_t>(next_ino)));
          return OkStatus();
        },
        kDumpMs));
    // A second load into it is refused.
    SnapshotReader second = ReaderOf(shared);
    EXPECT_CODE(restored->ImportSnapshot(second), kFailedPrecondition);
  }
}

TEST_P(FileTreeTest, ASnapshotLoadsOnlyIntoAnEmptyStoreAndNeedsItsVolumeRecordFirst) {
  // A snapshot of an empty store does not load into a formatted one.
  std::string empty_snapshot;
  {
    std::unique_ptr<MetaStore> empty = OpenStore(UrlFor(GetParam(), dir_, "empty.db", &databases_));
    ASSERT_NE(empty, nullptr);
    ASSERT_OK_AND_ASSIGN(empty_snapshot, DumpText(*empty, GetParam(), 100));
  }
  EXPECT_EQ(empty_snapshot.find("volumes"), std::string::npos) << empty_snapshot;
  Format();
  ASSERT_OK(W([&](FileTreeTransaction& tx) -> Status { return tx.PutBlock(2, Block(0, 1)); }));
  SnapshotReader reader = ReaderOf(std::make_shared<const std::string>(empty_snapshot));
  EXPECT_CODE(store_->ImportSnapshot(reader), kFailedPrecondition);
  EXPECT_EQ(Owned(2), std::vector<Digest>{D(1)});

  // An engine refuses an inode record before the volume's, and leaves nothing behind.
  struct Records : SnapshotSource {
    std::vector<SnapshotRecord> records;
    size_t next = 0;
    Result<std::optional<SnapshotRecord>> Next() override {
      if (next == records.size()) return std::optional<SnapshotRecord>();
      return std::optional<SnapshotRecord>(records[next++]);
    }
  };
  std::unique_ptr<MetaStore> fresh = OpenStore(UrlFor(GetParam(), dir_, "fresh.db", &databases_));
  ASSERT_NE(fresh, nullptr);
  Records source;
  source.records = {Inode(5)};
  EXPECT_CODE(fresh->ImportSnapshot(source), kInvalidArgument);
  Records two;
  SnapshotVolume volume{Volume(), 10};
  two.records = {volume, volume};
  EXPECT_CODE(fresh->ImportSnapshot(two), kInvalidArgument);
  Result<std::optional<VolumeRecord>> none = fresh->file_tree()->GetVolume();
  ASSERT_OK(none);
  EXPECT_FALSE(none->has_value());
}

INSTANTIATE_TEST_SUITE_P(Engines, FileTreeTest, ::testing::Values("memory", "sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// ---- randomized comparison of the engines ------------------------------------------------

// One primitive call, chosen at random from small pools (so that rows collide, replace
// and come back), rendered with its result.
struct Op {
  int kind = 0;
  uint64_t ino = 0;
  uint64_t other = 0;
  std::string name;
  std::string value;
  InodeRecord inode;
  BlockRecord block;
  uint32_t limit = 0;
};

class OpGenerator {
 public:
  explicit OpGenerator(uint32_t seed) : rng_(seed) {}

  Op Next(const std::vector<uint64_t>& inos) {
    Op op;
    op.kind = static_cast<int>(rng_() % 17);
    op.ino = inos[rng_() % inos.size()];
    op.other = inos[rng_() % inos.size()];
    op.name = Name();
    op.value = std::string(rng_() % 20, static_cast<char>('a' + rng_() % 26));
    op.inode = Inode(op.ino, static_cast<FileType>(1 + rng_() % 7));
    op.inode.mode = rng_() % 07777;
    op.inode.size = rng_();
    op.inode.nlink = rng_() % 4;
    op.inode.mtime_ns = static_cast<int64_t>(rng_()) - (1 << 30);
    op.inode.parent = op.other;
    if (op.inode.type == FileType::kSymlink) op.inode.symlink_target = Name();
    op.block = Block(rng_() % 8, 1 + static_cast<int>(rng_() % 6), rng_() % 4 == 0 ? kCold : kHot,
                     rng_() % 3 == 0 ? "c" + std::to_string(rng_() % 2) : "");
    op.limit = 1 + rng_() % 5;
    return op;
  }

  uint32_t operator()() { return rng_(); }

 private:
  std::string Name() {
    static const std::vector<std::string> kNames = {
        "a", "b", "ab", "\x80", "\xff", "\xc3\xa9", "z", "a\xff", std::string(255, 'n'), "~"};
    return kNames[rng_() % kNames.size()];
  }
  std::mt19937 rng_;
};

std::string Apply(FileTreeTransaction& tx, const Op& op) {
  switch (op.kind) {
    case 0:
    case 1:
      return "put inode " + Str(tx.PutInode(op.inode));
    case 2:
      return "delete inode " + Str(tx.DeleteInode(op.ino));
    case 3:
      return "new inode " + Str(tx.NewInodeNumber());
    case 4:
      return "get inode " + Str(tx.GetInode(op.ino));
    case 5:
    case 6:
      return "put dentry " + Str(tx.PutDentry({op.ino, op.name, op.other,
                                               static_cast<FileType>(1 + op.limit % 7)}));
    case 7:
      return "delete dentry " + Str(tx.DeleteDentry(op.ino, op.name));
    case 8:
      return "get dentry " + Str(tx.GetDentry(op.ino, op.name));
    case 9:
      return "list dentries " + Str(tx.ListDentries(op.ino, op.limit % 2 ? op.name : "", op.limit));
    case 10:
    case 11:
      return "put block " + Str(tx.PutBlock(op.ino, op.block));
    case 12:
      return "drop blocks " + Str(tx.DropBlocks(op.ino, op.block.index));
    case 13:
      return "get blocks " + Str(tx.GetBlocks(op.ino, op.block.index, op.limit));
    case 14:
      return "put xattr " + Str(tx.PutXattr(op.ino, op.name, op.value));
    case 15:
      return "delete xattr " + Str(tx.DeleteXattr(op.ino, op.name));
    default:
      return "xattrs " + Str(tx.ListXattrs(op.ino)) + " " + Str(tx.GetXattr(op.ino, op.name));
  }
}

class FileTreeDifferentialTest : public ::testing::TestWithParam<std::string> {};

// The engine under test against the memory engine.
TEST_P(FileTreeDifferentialTest, RandomOpsAgreeWithTheMemoryEngine) {
  if (GetParam() == "postgres") SKIP_WITHOUT_POSTGRES();
  TempDir dir;
  std::vector<std::unique_ptr<PostgresDatabase>> databases;
  const std::string url = UrlFor(GetParam(), dir, "meta.db", &databases);
  std::unique_ptr<MetaStore> memory = OpenStore("memory:");
  std::unique_ptr<MetaStore> engine = OpenStore(url);
  ASSERT_NE(memory, nullptr);
  ASSERT_NE(engine, nullptr);
  for (MetaStore* store : {memory.get(), engine.get()}) {
    ASSERT_OK(store->file_tree()->FormatVolume(Volume(), RootTemplate()));
  }
  OpGenerator gen(424242);
  std::vector<uint64_t> inos = {kRootInode, 2, 3, 4};
  std::set<uint64_t> all_inos(inos.begin(), inos.end());
  int ops = 0;
  int rolled_back = 0;
  for (int round = 0; ops < 2000; ++round) {
    std::vector<Op> batch;
    const int size = 1 + static_cast<int>(gen() % 6);
    for (int i = 0; i < size; ++i) batch.push_back(gen.Next(inos));
    ops += size;
    const bool fail = gen() % 8 == 0;
    const TimestampMs now_ms = 10000 + round;
    std::vector<std::string> logs[2];
    Status statuses[2];
    int e = 0;
    for (MetaStore* store : {memory.get(), engine.get()}) {
      std::vector<std::string>& log = logs[e];
      statuses[e] = store->file_tree()->Write(
          [&](FileTreeTransaction& tx) -> Status {
            log.clear();
            for (const Op& op : batch) log.push_back(Apply(tx, op));
            return fail ? AbortedError("rolled back") : OkStatus();
          },
          now_ms);
      ++e;
    }
    ASSERT_EQ(Str(statuses[0]), Str(statuses[1])) << "round " << round;
    ASSERT_EQ(logs[0], logs[1]) << "round " << round;
    if (fail) {
      ++rolled_back;
    } else {
      // New inode numbers join the pools (the same on both engines, as just checked).
      for (const std::string& line : logs[0]) {
        if (line.starts_with("new inode ")) {
          const uint64_t ino = std::stoull(line.substr(10));
          inos.push_back(ino);
          all_inos.insert(ino);
        }
      }
    }
    if (round % 50 == 0) {
      ASSERT_EQ(Dump(*memory, all_inos), Dump(*engine, all_inos)) << "round " << round;
    }
  }
  const std::string final_memory = Dump(*memory, all_inos);
  EXPECT_EQ(final_memory, Dump(*engine, all_inos));
  EXPECT_EQ(final_memory.find("disagrees"), std::string::npos) << final_memory;
  EXPECT_GT(rolled_back, 10);
  EXPECT_GT(all_inos.size(), 10u);
  // What the engine committed survives a reopen.
  engine.reset();
  engine = OpenStore(url);
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(final_memory, Dump(*engine, all_inos));
}

INSTANTIATE_TEST_SUITE_P(Engines, FileTreeDifferentialTest, ::testing::Values("sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// ---- the SQL engines ----------------------------------------------------------------------

class SqlFileTreeTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgres") SKIP_WITHOUT_POSTGRES();
    url_ = UrlFor(GetParam(), dir_, "meta.db", &databases_);
  }

  TempDir dir_;
  std::vector<std::unique_ptr<PostgresDatabase>> databases_;
  std::string url_;  // the database each store of a test opens
};

// Two mounts open the same database (two processes on one host for SQLite, two nodes for
// PostgreSQL): each sees what the other committed, and their writes serialize without
// losing one.
TEST_P(SqlFileTreeTest, TwoStoresSeeEachOthersCommitsAndLoseNoUpdate) {
  const std::string& url = url_;
  std::unique_ptr<MetaStore> a = OpenStore(url);
  std::unique_ptr<MetaStore> b = OpenStore(url);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_CODE(b->file_tree()->Read([](FileTreeTransaction&) { return OkStatus(); }),
              kFailedPrecondition);
  ASSERT_OK(a->file_tree()->FormatVolume(Volume(), RootTemplate()));
  Result<std::optional<VolumeRecord>> seen = b->file_tree()->GetVolume();
  ASSERT_OK(seen);
  ASSERT_TRUE(seen->has_value());
  EXPECT_EQ(**seen, Volume());
  // B formatting again with the same name changes nothing; another name is refused.
  EXPECT_OK(b->file_tree()->FormatVolume(Volume("vol", kOtherUuid), RootTemplate()));
  EXPECT_CODE(b->file_tree()->FormatVolume(Volume("other"), RootTemplate()), kAlreadyExists);

  ASSERT_OK(b->file_tree()->Write(
      [](FileTreeTransaction& tx) -> Status {
        RETURN_IF_ERROR(tx.PutInode(Inode(2)).status());
        RETURN_IF_ERROR(tx.PutDentry({kRootInode, "from-b", 2, FileType::kRegular}));
        return tx.PutBlock(2, Block(0, 1));
      },
      100));
  ASSERT_OK(a->file_tree()->Read([](FileTreeTransaction& tx) -> Status {
    EXPECT_EQ(tx.GetDentry(kRootInode, "from-b").value()->ino, 2u);
    EXPECT_EQ(tx.GetBlocks(2, 0, 10).value().size(), 1u);
    return OkStatus();
  }));
  Result<std::vector<OwnerChunk>> owned = a->GetOwnerChunks(FileChunkOwner(kUuid, 2));
  ASSERT_OK(owned);
  EXPECT_EQ(owned->size(), 1u);

  // Both write the same counter at once, each with its own inode numbers.
  constexpr int kWrites = 50;
  std::vector<uint64_t> numbers[2];
  std::vector<std::thread> threads;
  for (int s = 0; s < 2; ++s) {
    threads.emplace_back([&, s] {
      FileTree* tree = (s == 0 ? a : b)->file_tree();
      for (int i = 0; i < kWrites; ++i) {
        uint64_t ino = 0;
        EXPECT_OK(tree->Write(
            [&](FileTreeTransaction& tx) -> Status {
              ASSIGN_OR_RETURN(std::optional<InodeRecord> counter, tx.GetInode(2));
              if (!counter) return InternalError("counter inode missing");
              counter->size += 1;
              RETURN_IF_ERROR(tx.PutInode(*counter).status());
              ASSIGN_OR_RETURN(ino, tx.NewInodeNumber());
              return OkStatus();
            },
            200));
        numbers[s].push_back(ino);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::set<uint64_t> distinct(numbers[0].begin(), numbers[0].end());
  distinct.insert(numbers[1].begin(), numbers[1].end());
  EXPECT_EQ(distinct.size(), 2u * kWrites);
  for (MetaStore* store : {a.get(), b.get()}) {
    ASSERT_OK(store->file_tree()->Read([&](FileTreeTransaction& tx) -> Status {
      EXPECT_EQ(tx.GetInode(2).value()->size, 12345u + 2 * kWrites);
      return OkStatus();
    }));
  }
}

// A brief read (SQLite: on the idle writer's connection, whose page cache outlives the
// store's own commits) sees every commit at once: this store's, another store's on the same
// database, and, from inside a write body, the state before that write. While another
// thread holds a write open it neither waits for it nor sees it.
TEST_P(SqlFileTreeTest, BriefReadsSeeEveryCommitAndNeverWaitForAWrite) {
  const std::string& url = url_;
  std::unique_ptr<MetaStore> a = OpenStore(url);
  std::unique_ptr<MetaStore> b = OpenStore(url);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_OK(a->file_tree()->FormatVolume(Volume(), RootTemplate()));
  auto size_of = [](FileTree* tree, uint64_t ino) -> uint64_t {
    uint64_t size = UINT64_MAX;
    EXPECT_OK(tree->ReadBrief([&](FileTreeTransaction& tx) -> Status {
      ASSIGN_OR_RETURN(std::optional<InodeRecord> inode, tx.GetInode(ino));
      if (inode) size = inode->size;
      return OkStatus();
    }));
    return size;
  };
  auto put_size = [](FileTree* tree, uint64_t size) {
    return tree->Write(
        [size](FileTreeTransaction& tx) -> Status {
          InodeRecord inode = Inode(2);
          inode.size = size;
          return tx.PutInode(inode).status();
        },
        100);
  };
  for (uint64_t round = 1; round <= 20; ++round) {
    FileTree* writer = (round % 2 == 0 ? a : b)->file_tree();
    ASSERT_OK(put_size(writer, round));
    EXPECT_EQ(size_of(a->file_tree(), 2), round);
    EXPECT_EQ(size_of(b->file_tree(), 2), round);
  }
  // SQLite, inside a write body: the committed state, not the open write, and no deadlock
  // (the writer's connection is this thread's then; PostgreSQL refuses such a call).
  uint64_t inside = GetParam() == "sqlite" ? 0 : 20;
  ASSERT_OK(a->file_tree()->Write(
      [&](FileTreeTransaction& tx) -> Status {
        InodeRecord inode = Inode(2);
        inode.size = 99;
        RETURN_IF_ERROR(tx.PutInode(inode).status());
        if (GetParam() == "sqlite") inside = size_of(a->file_tree(), 2);
        return OkStatus();
      },
      100));
  EXPECT_EQ(inside, 20u);
  EXPECT_EQ(size_of(a->file_tree(), 2), 99u);
  // Another thread's write held open: a brief read on this store answers meanwhile.
  std::mutex mu;
  std::condition_variable cv;
  bool writing = false;
  bool read_done = false;
  std::thread holder([&] {
    EXPECT_OK(a->file_tree()->Write(
        [&](FileTreeTransaction& tx) -> Status {
          InodeRecord inode = Inode(2);
          inode.size = 123;
          RETURN_IF_ERROR(tx.PutInode(inode).status());
          std::unique_lock lock(mu);
          writing = true;
          cv.notify_all();
          // Bounded: the reader answers long before; the wait only keeps the write open.
          cv.wait_for(lock, std::chrono::seconds(30), [&] { return read_done; });
          return OkStatus();
        },
        100));
  });
  {
    std::unique_lock lock(mu);
    cv.wait_for(lock, std::chrono::seconds(30), [&] { return writing; });
  }
  EXPECT_EQ(size_of(a->file_tree(), 2), 99u);
  {
    std::lock_guard lock(mu);
    read_done = true;
  }
  cv.notify_all();
  holder.join();
  EXPECT_EQ(size_of(a->file_tree(), 2), 123u);
  EXPECT_EQ(size_of(b->file_tree(), 2), 123u);
  if (GetParam() != "sqlite") return;
  // SQLite, inside a brief read's body (which may hold the writer's connection): a nested
  // brief read answers, and a write fails at once instead of waiting for itself.
  Status nested_write;
  uint64_t nested = 0;
  ASSERT_OK(a->file_tree()->ReadBrief([&](FileTreeTransaction&) -> Status {
    nested = size_of(a->file_tree(), 2);
    nested_write = put_size(a->file_tree(), 7);
    return OkStatus();
  }));
  EXPECT_EQ(nested, 123u);
  EXPECT_CODE(nested_write, kInternal);
  EXPECT_EQ(size_of(a->file_tree(), 2), 123u);
  ASSERT_OK(put_size(a->file_tree(), 7));  // and the store still writes
  EXPECT_EQ(size_of(b->file_tree(), 2), 7u);
}

// A store that has read the volume before (and may keep what does not change) still sees
// the days another store (another process or host) set, in the next read and write.
TEST_P(SqlFileTreeTest, AnotherStoresTrashDaysAreSeenByTheNextReadAndWrite) {
  std::unique_ptr<MetaStore> a = OpenStore(url_);
  std::unique_ptr<MetaStore> b = OpenStore(url_);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_OK(a->file_tree()->FormatVolume(Volume(), RootTemplate()));
  auto days = [&](FileTree* tree) {
    uint32_t seen = 0;
    EXPECT_OK(tree->Read([&](FileTreeTransaction& tx) -> Status {
      ASSIGN_OR_RETURN(VolumeRecord volume, tx.volume());
      seen = volume.trash_days;
      return OkStatus();
    }));
    return seen;
  };
  const uint32_t before = days(a->file_tree());
  ASSERT_OK(b->file_tree()->Write(
      [&](FileTreeTransaction& tx) { return tx.SetTrashDays(before + 12); }, 6000));
  EXPECT_EQ(days(a->file_tree()), before + 12);
  EXPECT_OK(a->file_tree()->Write(
      [&](FileTreeTransaction& tx) -> Status {
        ASSIGN_OR_RETURN(VolumeRecord volume, tx.volume());
        VolumeRecord expected = Volume();
        expected.trash_days = before + 12;
        EXPECT_EQ(volume, expected);
        return OkStatus();
      },
      7000));
  // A read that asks nothing of the volume still works on the volume's rows.
  EXPECT_OK(a->file_tree()->Read([&](FileTreeTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(std::optional<InodeRecord> root, tx.GetInode(kRootInode));
    EXPECT_TRUE(root.has_value());
    return OkStatus();
  }));
}

// A transaction body that calls back into its store would wait for itself; it fails instead.
TEST_P(SqlFileTreeTest, ABodyCallingBackIntoTheStoreFailsInsteadOfWaitingForever) {
  std::unique_ptr<MetaStore> store = OpenStore(url_);
  ASSERT_NE(store, nullptr);
  FileTree* tree = store->file_tree();
  ASSERT_OK(tree->FormatVolume(Volume(), RootTemplate()));
  Status inner;
  Status inner_write;
  Status outer = tree->Write(
      [&](FileTreeTransaction& tx) -> Status {
        RETURN_IF_ERROR(tx.PutBlock(2, Block(0, 1)));
        inner = store->SetOwnerChunks(ChunkOwner{"test", "x"}, {}, 100);
        inner_write = tree->Write([](FileTreeTransaction&) { return OkStatus(); }, 100);
        return inner;
      },
      100);
  EXPECT_CODE(inner, kInternal);
  EXPECT_CODE(inner_write, kInternal);
  EXPECT_NE(inner.message().find("called back into the store"), std::string::npos)
      << inner.ToString();
  EXPECT_CODE(outer, kInternal);
  // Nothing of it was committed, and the store still writes.
  EXPECT_EQ(store->GetOwnerChunks(FileChunkOwner(kUuid, 2)).value().size(), 0u);
  EXPECT_OK(tree->Write([](FileTreeTransaction& tx) { return tx.PutBlock(2, Block(0, 1)); }, 100));
  EXPECT_EQ(store->GetOwnerChunks(FileChunkOwner(kUuid, 2)).value().size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Engines, SqlFileTreeTest, ::testing::Values("sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// ---- PostgreSQL only --------------------------------------------------------------------------

class PostgresFileTreeTest : public ::testing::Test {
 protected:
  void SetUp() override { SKIP_WITHOUT_POSTGRES(); }
  // The store goes first: its connections would otherwise keep the database in use.
  void TearDown() override {
    store_.reset();
    database_.reset();
  }
  void Open() {
    if (!database_) database_ = std::make_unique<PostgresDatabase>();
    store_.reset();
    store_ = OpenStore(database_->url());
    ASSERT_NE(store_, nullptr);
  }
  pgtest::RawPostgres Raw() { return pgtest::RawPostgres(database_->url()); }

  std::unique_ptr<PostgresDatabase> database_;
  std::unique_ptr<MetaStore> store_;
};

TEST_F(PostgresFileTreeTest, DamagedRowsAreReportedNamingTheRow) {
  Open();
  FileTree* tree = store_->file_tree();
  ASSERT_OK(tree->FormatVolume(Volume(), RootTemplate()));
  ASSERT_OK(tree->Write(
      [](FileTreeTransaction& tx) -> Status {
        RETURN_IF_ERROR(tx.PutInode(Inode(2)).status());
        return tx.PutDentry({kRootInode, "f", 2, FileType::kRegular});
      },
      100));
  {
    pgtest::RawPostgres raw = Raw();
    raw.Exec("UPDATE fs_inodes SET type = 42 WHERE ino = 2");
    raw.Exec("UPDATE fs_dentries SET type = 0 WHERE parent = 1");
  }
  EXPECT_OK(tree->Read([](FileTreeTransaction& tx) -> Status {
    Result<std::optional<InodeRecord>> inode = tx.GetInode(2);
    EXPECT_EQ(inode.status().code(), StatusCode::kDataLoss) << inode.status().ToString();
    EXPECT_NE(inode.status().message().find("fs_inodes row 2"), std::string::npos)
        << inode.status().ToString();
    Result<std::optional<DentryRecord>> entry = tx.GetDentry(kRootInode, "f");
    EXPECT_EQ(entry.status().code(), StatusCode::kDataLoss) << entry.status().ToString();
    EXPECT_NE(entry.status().message().find("fs_dentries row (1, "), std::string::npos)
        << entry.status().ToString();
    return OkStatus();
  }));
}

// A version 9 database (before the filesystem tables, with owner_chunks.seq an integer)
// gains them at open, in place, and block indexes beyond 2^31 fit.
TEST_F(PostgresFileTreeTest, UpgradesAVersion9DatabaseInPlace) {
  Open();
  ASSERT_OK(
      store_->SetOwnerChunks(ChunkOwner{"test", "x"}, {OwnerChunk(kHot, ChunkRef{D(1), 5})}, 100));
  store_.reset();
  {
    pgtest::RawPostgres raw = Raw();
    raw.Exec("DROP TABLE usage_deltas");  // version 12
    raw.Exec("DROP FUNCTION cairn_count_usage CASCADE");
    raw.Exec("DROP TABLE fs_sessions, fs_orphans, fs_changes, fs_locks");
    raw.Exec("DROP SEQUENCE fs_change_seq");
    raw.Exec("DROP TABLE fs_volume, fs_inodes, fs_dentries, fs_xattrs");
    raw.Exec("ALTER TABLE owner_chunks ALTER COLUMN seq TYPE integer");
    raw.Exec("DELETE FROM schema_version WHERE version > 9");
  }
  Open();
  {
    pgtest::RawPostgres raw = Raw();
    EXPECT_EQ(raw.Query("SELECT MAX(version) FROM schema_version"),
              std::to_string(PostgresSchemaVersion()));
    EXPECT_EQ(raw.Query("SELECT data_type FROM information_schema.columns WHERE table_name = "
                        "'owner_chunks' AND column_name = 'seq'"),
              "bigint");
  }
  EXPECT_EQ(store_->GetOwnerChunks(ChunkOwner{"test", "x"}).value().size(), 1u);
  FileTree* tree = store_->file_tree();
  ASSERT_OK(tree->FormatVolume(Volume(), RootTemplate()));
  const uint64_t far = (uint64_t{1} << 40) + 3;
  ASSERT_OK(
      tree->Write([&](FileTreeTransaction& tx) { return tx.PutBlock(2, Block(far, 1)); }, 100));
  std::vector<BlockRecord> blocks;
  ASSERT_OK(tree->Read([&](FileTreeTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(blocks, tx.GetBlocks(2, far - 1, 3));
    return OkStatus();
  }));
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].index, far);
}

// ---- SQLite only ----------------------------------------------------------------------------

class SqliteFileTreeTest : public ::testing::Test {
 protected:
  std::string Path() const { return (dir_.path() / "meta.db").string(); }
  std::unique_ptr<MetaStore> Open() { return OpenStore("sqlite://" + Path()); }

  TempDir dir_;
};

TEST_F(SqliteFileTreeTest, DamagedRowsAreReportedNamingTheRow) {
  std::unique_ptr<MetaStore> store = Open();
  ASSERT_NE(store, nullptr);
  FileTree* tree = store->file_tree();
  ASSERT_OK(tree->FormatVolume(Volume(), RootTemplate()));
  ASSERT_OK(tree->Write(
      [](FileTreeTransaction& tx) -> Status {
        RETURN_IF_ERROR(tx.PutInode(Inode(2)).status());
        return tx.PutDentry({kRootInode, "f", 2, FileType::kRegular});
      },
      100));
  {
    RawSqlite raw(Path());
    raw.Exec("UPDATE fs_inodes SET type = 42 WHERE ino = 2");
    raw.Exec("UPDATE fs_dentries SET type = 0 WHERE parent = 1");
  }
  Status status = tree->Read([](FileTreeTransaction& tx) -> Status {
    Result<std::optional<InodeRecord>> inode = tx.GetInode(2);
    EXPECT_EQ(inode.status().code(), StatusCode::kDataLoss) << inode.status().ToString();
    EXPECT_NE(inode.status().message().find("fs_inodes row 2"), std::string::npos)
        << inode.status().ToString();
    Result<std::optional<DentryRecord>> entry = tx.GetDentry(kRootInode, "f");
    EXPECT_EQ(entry.status().code(), StatusCode::kDataLoss) << entry.status().ToString();
    EXPECT_NE(entry.status().message().find("fs_dentries row (1, "), std::string::npos)
        << entry.status().ToString();
    Result<std::vector<DentryRecord>> list = tx.ListDentries(kRootInode, "", 10);
    EXPECT_EQ(list.status().code(), StatusCode::kDataLoss) << list.status().ToString();
    return OkStatus();
  });
  EXPECT_OK(status);
}

// A version 8 database (before the filesystem tables) gains them at open, in place.
TEST_F(SqliteFileTreeTest, UpgradesAVersion8DatabaseInPlace) {
  {
    std::unique_ptr<MetaStore> store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_OK(
        store->SetOwnerChunks(ChunkOwner{"test", "x"}, {OwnerChunk(kHot, ChunkRef{D(1), 5})}, 100));
  }
  {
    RawSqlite raw(Path());
    for (const char* trigger : {"usage_counters_insert", "usage_counters_delete",
                                "usage_counters_update"}) {  // version 11
      raw.Exec(std::string("DROP TRIGGER ") + trigger);
    }
    raw.Exec("DROP TABLE usage_counters");
    for (const char* table : {"fs_locks", "fs_changes", "fs_orphans", "fs_sessions", "fs_volume",
                              "fs_inodes", "fs_dentries", "fs_xattrs"}) {
      raw.Exec(std::string("DROP TABLE ") + table);
    }
    raw.Exec("PRAGMA user_version = 8");
  }
  std::unique_ptr<MetaStore> store = Open();
  ASSERT_NE(store, nullptr);
  {
    RawSqlite raw(Path());
    EXPECT_EQ(raw.Query("PRAGMA user_version"), std::to_string(SqliteSchemaVersion()));
    EXPECT_EQ(
        raw.Query("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name LIKE 'fs_%'"),
        "8");
  }
  EXPECT_EQ(store->GetOwnerChunks(ChunkOwner{"test", "x"}).value().size(), 1u);
  ASSERT_OK(store->file_tree()->FormatVolume(Volume(), RootTemplate()));
  ASSERT_OK(store->file_tree()->Write(
      [](FileTreeTransaction& tx) -> Status { return tx.PutBlock(2, Block(0, 1)); }, 100));
  Result<std::vector<ChunkRecord>> chunks = store->ListChunks();
  ASSERT_OK(chunks);
  ASSERT_EQ(chunks->size(), 1u);
  EXPECT_EQ(chunks->front().ref_count, 2);
}

// A version 11 change feed (AUTOINCREMENT, trimmed down to nothing) keeps its highest seq
// through the upgrade: a mount that read up to it must not see a later change with a lower
// or equal seq, nor miss one.
TEST_F(SqliteFileTreeTest, UpgradingAVersion11ChangeFeedKeepsItsHighestSeq) {
  {
    std::unique_ptr<MetaStore> store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_OK(store->file_tree()->FormatVolume(Volume(), RootTemplate()));
  }
  {
    RawSqlite raw(Path());
    raw.Exec("DROP TABLE fs_changes");
    raw.Exec(
        "CREATE TABLE fs_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, session INTEGER NOT "
        "NULL, ino INTEGER NOT NULL, data INTEGER NOT NULL, parent INTEGER NOT NULL, name BLOB "
        "NOT NULL, at_ms INTEGER NOT NULL)");
    raw.Exec("CREATE INDEX fs_changes_at ON fs_changes (at_ms)");
    for (int i = 0; i < 40; ++i) {
      raw.Exec(
          "INSERT INTO fs_changes (session, ino, data, parent, name, at_ms) "
          "VALUES (1, 5, 0, 0, x'', 100)");
    }
    raw.Exec("DELETE FROM fs_changes");  // trimmed: only sqlite_sequence remembers 40
    raw.Exec("ALTER TABLE fs_sessions DROP COLUMN seen_seq");  // version 13
    raw.Exec("ALTER TABLE fs_orphans DROP COLUMN since_seq");
    raw.Exec("PRAGMA user_version = 11");
  }
  std::unique_ptr<MetaStore> store = Open();
  ASSERT_NE(store, nullptr);
  {
    RawSqlite raw(Path());
    EXPECT_EQ(raw.Query("PRAGMA user_version"), std::to_string(SqliteSchemaVersion()));
    EXPECT_EQ(raw.Query("SELECT count(*) FROM sqlite_schema WHERE name = 'fs_changes_at'"), "0");
    EXPECT_EQ(raw.Query("SELECT count(*) FROM sqlite_sequence WHERE name = 'fs_changes'"), "0");
  }
  FileTree* tree = store->file_tree();
  uint64_t last = 0, next = 0;
  ASSERT_OK(tree->Read([&](FileTreeTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(last, tx.LastChangeSeq());
    return OkStatus();
  }));
  EXPECT_EQ(last, 40u);
  // Trimming everything keeps the newest row, so the next seq still follows 40.
  ASSERT_OK(tree->Write([](FileTreeTransaction& tx) { return tx.TrimChanges(1'000'000); }, 500));
  ASSERT_OK(tree->Write(
      [&](FileTreeTransaction& tx) -> Status {
        ASSIGN_OR_RETURN(next, tx.AppendChange({0, 2, 6, false, 0, "", 0}));
        return OkStatus();
      },
      600));
  EXPECT_EQ(next, 41u);
  ASSERT_OK(tree->Write([](FileTreeTransaction& tx) { return tx.TrimChanges(1'000'000); }, 700));
  ASSERT_OK(tree->Read([&](FileTreeTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(std::vector<ChangeRecord> all, tx.ListChanges(0, 100));
    EXPECT_EQ(all.size(), 1u);  // the newest, kept
    if (!all.empty()) {
      EXPECT_EQ(all[0].seq, 41u);
    }
    ASSIGN_OR_RETURN(last, tx.LastChangeSeq());
    return OkStatus();
  }));
  EXPECT_EQ(last, 41u);
  // A trim stops at the first change at or after its time, and takes what comes before.
  ASSERT_OK(tree->Write(
      [&](FileTreeTransaction& tx) -> Status {
        return tx.AppendChange({0, 2, 7, false, 0, "", 0}).status();
      },
      2000));
  ASSERT_OK(tree->Write([](FileTreeTransaction& tx) { return tx.TrimChanges(1500); }, 2100));
  ASSERT_OK(tree->Read([&](FileTreeTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(std::vector<ChangeRecord> all, tx.ListChanges(0, 100));
    EXPECT_EQ(all.size(), 1u);
    if (!all.empty()) {
      EXPECT_EQ(all[0].ino, 7u);
    }
    return OkStatus();
  }));
}

}  // namespace
}  // namespace cairn::meta
