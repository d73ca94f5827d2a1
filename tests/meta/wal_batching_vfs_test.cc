// The WAL-batching VFS (meta/sqlite/wal_batching_vfs.h) must be invisible but for speed:
// another connection (on SQLite's own VFS) sees every commit as soon as it returns, big
// transactions and transactions that rewrite their own frames read back right, and a
// write that fails at the commit fails the commit, leaving nothing of it visible.

#include "meta/sqlite/wal_batching_vfs.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace cairn::meta::sqlite_internal {
namespace {

namespace fs = std::filesystem;

class Db {
 public:
  Db(const std::string& path, const char* vfs) {
    int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs);
    EXPECT_EQ(rc, SQLITE_OK) << sqlite3_errstr(rc);
  }
  ~Db() { sqlite3_close_v2(db_); }
  int Exec(const std::string& sql) {
    char* error = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    if (error != nullptr) last_error_ = error;
    sqlite3_free(error);
    return rc;
  }
  std::string Text(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return out;
  }
  const std::string& last_error() const { return last_error_; }

 private:
  sqlite3* db_ = nullptr;
  std::string last_error_;
};

class WalBatchingVfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(WalBatchingVfs(), nullptr);
    dir_ = fs::temp_directory_path() / ("cairn-walvfs-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "t.db").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  std::string path_;
};

TEST_F(WalBatchingVfsTest, EveryCommitIsSeenByAnotherConnectionAtOnce) {
  Db writer(path_, WalBatchingVfs());
  ASSERT_EQ(writer.Exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                        "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB);"
                        "CREATE INDEX t_v ON t (v);"),
            SQLITE_OK);
  Db reader(path_, nullptr);
  for (int i = 0; i < 300; ++i) {
    // Several pages per commit (table and index leaves), and a page changed twice.
    ASSERT_EQ(writer.Exec("BEGIN; INSERT INTO t VALUES (" + std::to_string(i) +
                          ", randomblob(600)); UPDATE t SET v = randomblob(700) WHERE k = " +
                          std::to_string(i / 2) + "; COMMIT;"),
              SQLITE_OK)
        << writer.last_error();
    ASSERT_EQ(reader.Text("SELECT count(*) FROM t"), std::to_string(i + 1));
    ASSERT_EQ(reader.Text("SELECT max(k) FROM t"), std::to_string(i));
  }
  EXPECT_EQ(reader.Text("PRAGMA integrity_check"), "ok");
  // A checkpoint and a WAL that starts over from its beginning.
  ASSERT_EQ(writer.Exec("PRAGMA wal_checkpoint(TRUNCATE)"), SQLITE_OK);
  ASSERT_EQ(writer.Exec("INSERT INTO t VALUES (1000, x'00ff')"), SQLITE_OK);
  EXPECT_EQ(reader.Text("SELECT hex(v) FROM t WHERE k = 1000"), "00FF");
}

TEST_F(WalBatchingVfsTest, BigTransactionsAndSpilledPagesReadBackRight) {
  Db writer(path_, WalBatchingVfs());
  // A tiny page cache makes SQLite write frames before the commit and then rewrite them
  // in place (and their checksums at the commit): the paths that are not plain appends.
  ASSERT_EQ(writer.Exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                        "PRAGMA cache_size = 10;"
                        "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)"),
            SQLITE_OK);
  // About 8 MiB in one transaction: many times the batch buffer.
  ASSERT_EQ(writer.Exec("BEGIN;"
                        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                        "WHERE i < 4000) INSERT INTO t SELECT i, zeroblob(2000) FROM n;"
                        "UPDATE t SET v = randomblob(1500) WHERE k % 3 = 0;"
                        "UPDATE t SET v = randomblob(1800) WHERE k % 7 = 0;"
                        "COMMIT"),
            SQLITE_OK)
      << writer.last_error();
  Db reader(path_, nullptr);
  EXPECT_EQ(reader.Text("SELECT count(*) FROM t"), "4000");
  EXPECT_EQ(reader.Text("SELECT sum(length(v)) FROM t"),
            writer.Text("SELECT sum(length(v)) FROM t"));
  EXPECT_EQ(reader.Text("SELECT count(*) FROM t WHERE k % 7 = 0 AND length(v) = 1800"), "571");
  EXPECT_EQ(reader.Text("PRAGMA integrity_check"), "ok");
}

TEST_F(WalBatchingVfsTest, AWriteThatFailsAtTheCommitFailsTheCommitAndShowsNothing) {
  Db writer(path_, WalBatchingVfs());
  ASSERT_EQ(writer.Exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                        "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB);"
                        "INSERT INTO t VALUES (1, 'before')"),
            SQLITE_OK);
  Db reader(path_, nullptr);
  const uintmax_t wal_size = fs::file_size(path_ + "-wal");
  // Files may not grow past the WAL's size now (EFBIG, as on a full disk).
  struct sigaction ignore = {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction old_action = {};
  ASSERT_EQ(sigaction(SIGXFSZ, &ignore, &old_action), 0);
  rlimit old_limit = {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  rlimit limit = old_limit;
  limit.rlim_cur = wal_size + 100;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  const int rc = writer.Exec(
      "BEGIN; INSERT INTO t VALUES (2, randomblob(3000));"
      "UPDATE t SET v = 'changed' WHERE k = 1; COMMIT");
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old_limit), 0);
  ASSERT_EQ(sigaction(SIGXFSZ, &old_action, nullptr), 0);
  EXPECT_NE(rc, SQLITE_OK);
  writer.Exec("ROLLBACK");
  EXPECT_EQ(reader.Text("SELECT count(*) FROM t"), "1");
  EXPECT_EQ(reader.Text("SELECT v FROM t WHERE k = 1"), "before");
  EXPECT_EQ(writer.Text("SELECT v FROM t WHERE k = 1"), "before");
  // And the connection goes on.
  ASSERT_EQ(writer.Exec("INSERT INTO t VALUES (3, 'after')"), SQLITE_OK) << writer.last_error();
  EXPECT_EQ(reader.Text("SELECT group_concat(k) FROM t"), "1,3");
  EXPECT_EQ(reader.Text("PRAGMA integrity_check"), "ok");
}

}  // namespace
}  // namespace cairn::meta::sqlite_internal
