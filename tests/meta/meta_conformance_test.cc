// One conformance suite for every MetaStore engine, plus a randomized comparison of the
// SQL engines against the in-memory model.
//
// Every TEST_P runs against "memory:", against a SQLite file in a fresh temp directory and,
// when CAIRN_TEST_POSTGRES_URL names a server (scripts/postgres-test-server.sh starts one),
// against a fresh PostgreSQL database created for the test and dropped after it. Without
// the variable the PostgreSQL instances are skipped, visibly. Results are compared through
// Str(), a readable rendering of every record type, so a failure shows both sides in full.
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
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
#include "core/types.h"
#include "meta/engines/open_meta_store.h"
#include "meta/memory/memory_meta_store.h"
#include "meta/meta_checks.h"
#include "meta/meta_store.h"
#include "meta/postgres/postgres_meta_store.h"
#include "meta/snapshot.h"
#include "meta/sqlite/sqlite_meta_store.h"
#include "postgres_test_database.h"

namespace cairn::meta {
namespace {

namespace fs = std::filesystem;

// ---- rendering ------------------------------------------------------------------------

std::string Quote(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);  // UTF-8 passes through readable
    }
  }
  return out + "\"";
}

std::string Str(const std::string& s) { return Quote(s); }
std::string Str(uint64_t n) { return std::to_string(n); }
std::string Str(const ObjectId& id) { return id.ToString(); }
std::string Str(const Digest& d) { return d.ToHex().substr(0, 16); }
std::string Str(const Status& s) {
  return s.ok() ? "OK" : "error:" + std::string(StatusCodeName(s.code()));
}

std::string Str(const ObjectRecord& r) {
  std::ostringstream out;
  out << "{id=" << Str(r.id) << " tenant=" << Quote(r.tenant) << " ns=" << Quote(r.namespace_name)
      << " key=" << Quote(r.key) << " state=" << ObjectStateName(r.state)
      << " class=" << StorageClassName(r.storage_class) << " size=" << r.size_bytes
      << " hash=" << Str(r.content_hash) << " etag=" << Quote(r.etag)
      << " type=" << Quote(r.content_type) << " meta={";
  for (const auto& [name, value] : r.user_metadata)
    out << Quote(name) << ":" << Quote(value) << ",";
  out << "} created=" << r.created_at_ms << " updated=" << r.updated_at_ms
      << " inline=" << (r.inline_data ? Quote(*r.inline_data) : "none") << "}";
  return out.str();
}

std::string Str(const ChunkRef& c) { return "(" + Str(c.digest) + "," + Str(c.size_bytes) + ")"; }

std::string Str(const ChunkRecord& c) {
  return "{" + std::string(StorageClassName(c.storage_class)) + " " + Str(c.digest) +
         " size=" + Str(c.size_bytes) + " refs=" + std::to_string(c.ref_count) +
         " zero_since=" + std::to_string(c.zero_since_ms) + "}";
}

std::string Str(const CommitResult& c) {
  return "{object=" + Str(c.object) +
         " replaced=" + (c.replaced_object ? Str(*c.replaced_object) : "none") + "}";
}

std::string Str(const UsageRow& u) {
  return "{" + Quote(u.namespace_name) + " " + std::string(StorageClassName(u.storage_class)) +
         " objects=" + Str(u.objects) + " logical=" + Str(u.logical_bytes) +
         " physical=" + Str(u.physical_bytes) + "}";
}

std::string Str(const UsageCounterRow& u) {
  return "{" + Quote(u.tenant) + " " + Quote(u.namespace_name) + " " +
         std::string(StorageClassName(u.storage_class)) + " objects=" + std::to_string(u.objects) +
         " logical=" + std::to_string(u.logical_bytes) +
         " inline=" + std::to_string(u.inline_bytes) + "}";
}

std::string Str(const ChunkTotalsRow& t) {
  return "{" + std::string(StorageClassName(t.storage_class)) + " chunks=" + Str(t.chunks) +
         " bytes=" + Str(t.bytes) + " unreferenced=" + Str(t.unreferenced) + "}";
}

std::string Str(const ObjectCountRow& c) {
  return "{" + Quote(c.tenant) + " " + Quote(c.namespace_name) + " " +
         std::string(ObjectStateName(c.state)) + " " + Str(c.objects) + "}";
}

std::string Str(const StorageBytesRow& s) {
  return "{" + std::string(StorageClassName(s.storage_class)) + " " + Quote(s.namespace_name) +
         " " + Str(s.logical_bytes) + "}";
}

std::string Str(const FsckReferenceRow& f) {
  return "{" + std::string(StorageClassName(f.storage_class)) + " " + Str(f.digest) +
         " recorded=" + std::to_string(f.recorded_ref_count) +
         " actual=" + std::to_string(f.actual_ref_count) +
         " committed=" + std::to_string(f.committed_ref_count) +
         " owners=" + std::to_string(f.owner_ref_count) + " size=" + Str(f.size_bytes) +
         (f.has_chunk_row ? " row" : " no-row") + "}";
}

std::string Str(const ChunkOwner& o) { return o.kind + ":" + Quote(o.id); }

std::string Str(const OwnerChunk& e) {
  return std::string(StorageClassName(e.storage_class)) + "(" + Str(e.chunk.digest) + "," +
         Str(e.chunk.size_bytes) + (e.chunk.damaged_ms != 0 ? ",damaged" : "") + ")";
}

std::string Str(const OwnerUsageRow& u) {
  return "{" + u.kind + " " + std::string(StorageClassName(u.storage_class)) +
         " owners=" + Str(u.owners) + " logical=" + Str(u.logical_bytes) +
         " physical=" + Str(u.physical_bytes) + "}";
}

std::string Str(const ApiKeyRecord& k) {
  std::string tenants;
  for (const std::string& t : k.tenants) tenants += Quote(t) + ",";
  return "{" + Quote(k.key_id) + " hash=" + Str(k.secret_hash) + " tenants=[" + tenants +
         "] scope=" + std::string(ScopeName(k.scope)) +
         " created=" + std::to_string(k.created_at_ms) + (k.revoked ? " revoked" : "") +
         " desc=" + Quote(k.description) + "}";
}

std::string Str(const NamespaceRecord& n) {
  return "{" + Quote(n.tenant) + " " + Quote(n.name) +
         " created=" + std::to_string(n.created_at_ms) + "}";
}

std::string Str(const std::map<std::string, std::string>& settings) {
  std::string out = "[";
  for (const auto& [name, value] : settings) out += Quote(name) + ":" + Quote(value) + ", ";
  return out + "]";
}

template <typename T>
std::string Str(const std::vector<T>& items) {
  std::string out = "[";
  for (const T& item : items) out += Str(item) + ", ";
  return out + "]";
}

std::string Str(const ListPage& p) {
  return "{objects=" + Str(p.objects) + (p.truncated ? " truncated" : "") + "}";
}

template <typename T>
std::string Str(const Result<T>& r) {
  return r.ok() ? "OK " + Str(r.value()) : Str(r.status());
}

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

#define META_CONCAT_INNER(a, b) a##b
#define META_CONCAT(a, b) META_CONCAT_INNER(a, b)
#define ASSERT_OK_AND_ASSIGN(lhs, expr)                                       \
  auto META_CONCAT(assign_, __LINE__) = (expr);                               \
  ASSERT_TRUE(META_CONCAT(assign_, __LINE__).ok())                            \
      << #expr << ": " << META_CONCAT(assign_, __LINE__).status().ToString(); \
  lhs = std::move(META_CONCAT(assign_, __LINE__)).value()

// ---- fixtures -------------------------------------------------------------------------

ObjectId Id(int n) {
  std::array<uint8_t, 16> bytes{};
  bytes[0] = static_cast<uint8_t>(n >> 8);
  bytes[1] = static_cast<uint8_t>(n);
  bytes[15] = 0x5a;
  return ObjectId::FromRandomBytes(bytes);
}

Digest D(int n) {
  Digest d;
  d.bytes[0] = static_cast<uint8_t>(n >> 8);
  d.bytes[1] = static_cast<uint8_t>(n);
  d.bytes[31] = 0xc3;
  return d;
}

// Chunk n is n * 100 bytes: the same digest always has the same size.
ChunkRef C(int n) { return ChunkRef{D(n), static_cast<uint64_t>(n) * 100}; }

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "cairn-meta-XXXXXX").string();
    char* made = mkdtemp(pattern.data());
    if (made == nullptr) std::abort();
    path_ = made;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

ObjectRecord NewObject(const ObjectId& id, const std::string& tenant, const std::string& ns,
                       const std::string& key, StorageClass storage_class = StorageClass::kHot,
                       TimestampMs created_ms = 100) {
  ObjectRecord r;
  r.id = id;
  r.tenant = tenant;
  r.namespace_name = ns;
  r.key = key;
  r.storage_class = storage_class;
  r.content_type = "application/octet-stream";
  r.created_at_ms = created_ms;
  r.updated_at_ms = created_ms;
  return r;
}

ObjectRecord FinalFields(uint64_t size, int hash, std::map<std::string, std::string> meta = {}) {
  ObjectRecord r;
  r.size_bytes = size;
  r.content_hash = D(9000 + hash);
  r.etag = "etag-" + std::to_string(hash);
  r.content_type = "text/plain";
  r.user_metadata = std::move(meta);
  return r;
}

uint64_t SizeOf(const std::vector<ChunkRef>& chunks) {
  uint64_t total = 0;
  for (const ChunkRef& c : chunks) total += c.size_bytes;
  return total;
}

// Executes SQL against a SQLite database file from outside the engine (for damage and
// inspection); binds ?1.. as given.
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

  // Runs `sql` with blob/text/int parameters and returns the first column of the first row
  // as text ("" if none).
  struct Param {
    enum Kind { kText, kBlob, kInt } kind;
    std::string bytes;
    int64_t number = 0;
  };
  std::string Query(const std::string& sql, const std::vector<Param>& params = {}) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
      return "";
    }
    for (size_t i = 0; i < params.size(); ++i) {
      const Param& p = params[i];
      int index = static_cast<int>(i + 1);
      if (p.kind == Param::kText) {
        sqlite3_bind_text(stmt, index, p.bytes.data(), static_cast<int>(p.bytes.size()),
                          SQLITE_TRANSIENT);
      } else if (p.kind == Param::kBlob) {
        sqlite3_bind_blob(stmt, index, p.bytes.data(), static_cast<int>(p.bytes.size()),
                          SQLITE_TRANSIENT);
      } else {
        sqlite3_bind_int64(stmt, index, p.number);
      }
    }
    std::string out;
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      if (text != nullptr) out = reinterpret_cast<const char*>(text);
    } else if (rc != SQLITE_DONE) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
    }
    sqlite3_finalize(stmt);
    return out;
  }

  static Param Text(std::string s) { return Param{Param::kText, std::move(s), 0}; }
  static Param Blob(const Digest& d) {
    return Param{Param::kBlob, std::string(d.bytes.begin(), d.bytes.end()), 0};
  }
  static Param Blob(const ObjectId& id) {
    return Param{Param::kBlob, std::string(id.bytes.begin(), id.bytes.end()), 0};
  }
  static Param Int(int64_t n) { return Param{Param::kInt, "", n}; }

 private:
  sqlite3* db_ = nullptr;
};

// Same damage for either engine: set a chunk row's count (creating it) or delete the row.
void DamageChunkRow(MetaStore* store, const std::string& sqlite_path, StorageClass storage_class,
                    const ChunkRef& chunk, std::optional<int64_t> ref_count) {
  if (auto* memory = dynamic_cast<MemoryMetaStore*>(store)) {
    memory->DamageChunkRowForTest(storage_class, chunk.digest, chunk.size_bytes, ref_count);
    return;
  }
  RawSqlite raw(sqlite_path);
  const std::string class_name(StorageClassName(storage_class));
  if (ref_count) {
    raw.Query(
        "INSERT INTO chunks (storage_class, digest, size_bytes, ref_count, zero_since_ms) "
        "VALUES (?1, ?2, ?3, ?4, 0) ON CONFLICT (storage_class, digest) DO UPDATE SET "
        "ref_count = excluded.ref_count",
        {RawSqlite::Text(class_name), RawSqlite::Blob(chunk.digest),
         RawSqlite::Int(static_cast<int64_t>(chunk.size_bytes)), RawSqlite::Int(*ref_count)});
  } else {
    raw.Query("DELETE FROM chunks WHERE storage_class = ?1 AND digest = ?2",
              {RawSqlite::Text(class_name), RawSqlite::Blob(chunk.digest)});
  }
}

// ---- PostgreSQL helpers ---------------------------------------------------------------

// The per-test database and raw SQL access are in postgres_test_database.h, shared with
// tests/meta_s3.
using pgtest::PostgresDatabase;
using pgtest::PostgresUrl;
using pgtest::RawPostgres;

// Same damage for every engine: set a chunk row's count (creating it) or delete the row.
// `postgres_url` names the database of a PostgreSQL store, `sqlite_path` the file of a
// SQLite one.
void DamageChunkRow(MetaStore* store, const std::string& sqlite_path,
                    const std::string& postgres_url, StorageClass storage_class,
                    const ChunkRef& chunk, std::optional<int64_t> ref_count) {
  if (postgres_url.empty()) {
    DamageChunkRow(store, sqlite_path, storage_class, chunk, ref_count);
    return;
  }
  RawPostgres raw(postgres_url);
  const std::string class_name(StorageClassName(storage_class));
  if (ref_count) {
    raw.Exec(
        "INSERT INTO chunks (storage_class, digest, size_bytes, ref_count, zero_since_ms) "
        "VALUES ($1, $2, $3::bigint, $4::bigint, 0) ON CONFLICT (storage_class, digest) DO "
        "UPDATE SET ref_count = excluded.ref_count",
        {RawPostgres::Text(class_name), RawPostgres::Blob(chunk.digest),
         RawPostgres::Int(static_cast<int64_t>(chunk.size_bytes)), RawPostgres::Int(*ref_count)});
  } else {
    raw.Exec("DELETE FROM chunks WHERE storage_class = $1 AND digest = $2",
             {RawPostgres::Text(class_name), RawPostgres::Blob(chunk.digest)});
  }
}

class MetaStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (IsPostgres()) {
      SKIP_WITHOUT_POSTGRES();
      postgres_ = std::make_unique<PostgresDatabase>();
    }
    Open();
  }
  // The store goes first: its connections would otherwise keep the database in use.
  void TearDown() override {
    store_.reset();
    postgres_.reset();
  }

  bool IsSqlite() const { return GetParam() == "sqlite"; }
  bool IsPostgres() const { return GetParam() == "postgres"; }

  void Open() {
    std::string url = "memory:";
    if (IsSqlite()) {
      db_path_ = (dir_.path() / "meta.db").string();
      url = "sqlite://" + db_path_;  // absolute path: "sqlite:///tmp/..."
    } else if (IsPostgres()) {
      url = postgres_->url();
    }
    Result<std::unique_ptr<MetaStore>> opened = OpenMetaStore(url);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }

  MetaStore& store() { return *store_; }

  // Another empty store of the same engine (a second file, a second database).
  std::unique_ptr<MetaStore> OpenFresh() {
    std::string url = "memory:";
    if (IsSqlite()) {
      url = "sqlite://" + (dir_.path() / ("fresh" + std::to_string(++fresh_) + ".db")).string();
    } else if (IsPostgres()) {
      fresh_databases_.push_back(std::make_unique<PostgresDatabase>());
      url = fresh_databases_.back()->url();
    }
    Result<std::unique_ptr<MetaStore>> opened = OpenMetaStore(url);
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    return opened.ok() ? std::move(opened).value() : nullptr;
  }

  // Begin + chunks + commit in one go; returns the committed object.
  ObjectRecord Upload(const ObjectId& id, const std::string& tenant, const std::string& ns,
                      const std::string& key, const std::vector<ChunkRef>& chunks,
                      TimestampMs now_ms, StorageClass storage_class = StorageClass::kHot) {
    ObjectRecord object = NewObject(id, tenant, ns, key, storage_class, now_ms);
    EXPECT_OK(store().BeginUpload(object));
    for (size_t i = 0; i < chunks.size(); ++i) {
      EXPECT_OK(store().AddChunk(id, static_cast<uint32_t>(i), chunks[i], now_ms));
    }
    Result<CommitResult> committed =
        store().CommitUpload(id, FinalFields(SizeOf(chunks), 1), now_ms);
    EXPECT_TRUE(committed.ok()) << committed.status().ToString();
    return committed.ok() ? committed->object : ObjectRecord{};
  }

  ObjectRecord Put(const ObjectId& id, const std::string& tenant, const std::string& ns,
                   const std::string& key, const std::vector<ChunkRef>& chunks, TimestampMs now_ms,
                   StorageClass storage_class = StorageClass::kHot) {
    ObjectRecord object = NewObject(id, tenant, ns, key, storage_class, now_ms);
    object.size_bytes = SizeOf(chunks);
    Result<CommitResult> put = store().PutCommitted(object, chunks, now_ms);
    EXPECT_TRUE(put.ok()) << put.status().ToString();
    return put.ok() ? put->object : ObjectRecord{};
  }

  ObjectRecord PutInline(const ObjectId& id, const std::string& tenant, const std::string& ns,
                         const std::string& key, const std::string& data, TimestampMs now_ms,
                         StorageClass storage_class = StorageClass::kHot) {
    ObjectRecord object = NewObject(id, tenant, ns, key, storage_class, now_ms);
    object.size_bytes = data.size();
    object.inline_data = data;
    Result<CommitResult> put = store().PutCommitted(object, {}, now_ms);
    EXPECT_TRUE(put.ok()) << put.status().ToString();
    return put.ok() ? put->object : ObjectRecord{};
  }

  // The chunk row for (class, digest), if any; GetChunk must find the row ListChunks lists
  // (so every test that looks at a row checks the point lookup too).
  std::optional<ChunkRecord> Chunk(StorageClass storage_class, const ChunkRef& chunk) {
    Result<std::vector<ChunkRecord>> rows = store().ListChunks();
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    if (!rows.ok()) return std::nullopt;
    std::optional<ChunkRecord> listed;
    for (const ChunkRecord& row : *rows) {
      if (row.storage_class == storage_class && row.digest == chunk.digest) listed = row;
    }
    Result<std::optional<ChunkRecord>> got = store().GetChunk(storage_class, chunk.digest);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    if (got.ok()) {
      EXPECT_TRUE(*got == listed) << "GetChunk " << (*got ? Str(**got) : "none") << ", ListChunks "
                                  << (listed ? Str(*listed) : "none");
    }
    return listed;
  }

  int64_t Refs(StorageClass storage_class, const ChunkRef& chunk) {
    std::optional<ChunkRecord> row = Chunk(storage_class, chunk);
    return row ? row->ref_count : -1;
  }

  std::vector<std::string> Keys(const ListRequest& request, bool* truncated = nullptr) {
    Result<ListPage> page = store().ListObjects(request);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    std::vector<std::string> keys;
    if (!page.ok()) return keys;
    for (const ObjectRecord& r : page->objects) keys.push_back(r.key);
    if (truncated != nullptr) *truncated = page->truncated;
    return keys;
  }

  void Damage(StorageClass storage_class, const ChunkRef& chunk, std::optional<int64_t> refs) {
    DamageChunkRow(store_.get(), db_path_, postgres_ ? postgres_->url() : "", storage_class, chunk,
                   refs);
  }

  TempDir dir_;
  std::string db_path_;
  std::unique_ptr<PostgresDatabase> postgres_;
  std::vector<std::unique_ptr<PostgresDatabase>> fresh_databases_;
  int fresh_ = 0;
  std::unique_ptr<MetaStore> store_;
};

constexpr StorageClass kHot = StorageClass::kHot;
constexpr StorageClass kCold = StorageClass::kCold;

// ---- basics and uploads ---------------------------------------------------------------

TEST_P(MetaStoreTest, PingAnswers) { EXPECT_OK(store().Ping()); }

TEST_P(MetaStoreTest, BeginUploadCreatesInvisibleWritingRow) {
  ObjectRecord object = NewObject(Id(1), "t1", "ns", "k");
  object.state = ObjectState::kCommitted;  // ignored: stored as WRITING
  ASSERT_OK(store().BeginUpload(object));

  EXPECT_CODE(store().GetObject("t1", Id(1)), kNotFound);
  EXPECT_CODE(store().GetObjectByKey("t1", "ns", "k"), kNotFound);
  EXPECT_EQ(Str(store().GetChunks(Id(1))), "OK []");
  EXPECT_TRUE(Keys({"t1", "ns", "", "", 100}).empty());
  EXPECT_EQ(Str(store().CountObjects()), "OK [{\"t1\" \"ns\" WRITING 1}, ]");
  EXPECT_CODE(store().BeginUpload(object), kAlreadyExists);
}

TEST_P(MetaStoreTest, ChunkRowsKeepBlockChecksumsAndDamageMarks) {
  const std::string sums_a(4, '\x11'), sums_b(4, '\x22');
  ASSERT_OK(store().BeginUpload(NewObject(Id(1), "t1", "ns", "k", kHot, 100)));
  ASSERT_OK(store().AddChunk(Id(1), 0, ChunkRef{D(1), 100, sums_a}, 200));
  ASSERT_OK(store().AddChunk(Id(1), 1, C(2), 300));  // no checksums known
  auto chunks = store().GetChunks(Id(1));
  ASSERT_OK(chunks.status());
  ASSERT_EQ(chunks->size(), 2u);
  EXPECT_EQ((*chunks)[0].block_checksums, sums_a);
  EXPECT_EQ((*chunks)[1].block_checksums, "");
  // The first checksums recorded stay; a row without any takes the next ones offered.
  ASSERT_OK(store().PutCommitted(NewObject(Id(2), "t1", "ns", "k2", kHot, 100),
                                 {ChunkRef{D(1), 100, sums_b}, ChunkRef{D(2), 200, sums_b}}, 400));
  chunks = store().GetChunks(Id(1));
  ASSERT_OK(chunks.status());
  EXPECT_EQ((*chunks)[0].block_checksums, sums_a);
  EXPECT_EQ((*chunks)[1].block_checksums, sums_b);
  EXPECT_EQ((*chunks)[0].damaged_ms, 0);
  // A damage mark shows in every object that uses the chunk, and in the chunk row.
  ASSERT_OK(store().SetChunkDamaged(kHot, D(1), 500));
  for (const ObjectId& id : {Id(1), Id(2)}) {
    auto marked = store().GetChunks(id);
    ASSERT_OK(marked.status());
    EXPECT_EQ((*marked)[0].damaged_ms, 500);
    EXPECT_EQ((*marked)[1].damaged_ms, 0);
  }
  EXPECT_EQ(Chunk(kHot, C(1))->damaged_ms, 500);
  ASSERT_OK(store().SetChunkDamaged(kHot, D(1), 0));
  EXPECT_EQ(Chunk(kHot, C(1))->damaged_ms, 0);
  EXPECT_EQ(Chunk(kHot, C(1))->block_checksums, sums_a);
  EXPECT_CODE(store().SetChunkDamaged(kCold, D(1), 600), kNotFound);
  EXPECT_CODE(store().SetChunkDamaged(kHot, D(9), 600), kNotFound);
}

TEST_P(MetaStoreTest, ObjectIdsAreUniqueAcrossStates) {
  Put(Id(1), "t1", "ns", "k", {C(1)}, 100);
  EXPECT_CODE(store().BeginUpload(NewObject(Id(1), "t1", "ns", "other")), kAlreadyExists);
  ASSERT_OK(store().DeleteObject("t1", Id(1), 200));
  EXPECT_CODE(store().BeginUpload(NewObject(Id(1), "t1", "ns", "other")), kAlreadyExists);
  EXPECT_CODE(store().PutCommitted(NewObject(Id(1), "t1", "ns", "other"), {}, 300), kAlreadyExists);
}

TEST_P(MetaStoreTest, AddChunkRecordsChunksAndTakesReferences) {
  ASSERT_OK(store().BeginUpload(NewObject(Id(1), "t1", "ns", "k", kHot, 100)));
  ASSERT_OK(store().AddChunk(Id(1), 0, C(1), 200));
  ASSERT_OK(store().AddChunk(Id(1), 1, C(2), 300));
  ASSERT_OK(store().AddChunk(Id(1), 2, C(1), 400));  // same digest twice: two references
  EXPECT_EQ(Str(store().GetChunks(Id(1))), Str(Result(std::vector<ChunkRef>{C(1), C(2), C(1)})));
  EXPECT_EQ(Str(*Chunk(kHot, C(1))), Str(ChunkRecord{kHot, D(1), 100, 2, 0}));
  EXPECT_EQ(Str(*Chunk(kHot, C(2))), Str(ChunkRecord{kHot, D(2), 200, 1, 0}));

  // The chunk row belongs to the object's storage class.
  ASSERT_OK(store().BeginUpload(NewObject(Id(2), "t1", "ns", "k2", kCold, 100)));
  ASSERT_OK(store().AddChunk(Id(2), 0, C(1), 500));
  EXPECT_EQ(Refs(kCold, C(1)), 1);
  EXPECT_EQ(Refs(kHot, C(1)), 2);
}

TEST_P(MetaStoreTest, AddChunkBumpsUpdatedAtSoGcSeesTheUploadAlive) {
  ASSERT_OK(store().BeginUpload(NewObject(Id(1), "t1", "ns", "k", kHot, 100)));
  ASSERT_OK(store().AddChunk(Id(1), 0, C(1), 400));
  EXPECT_EQ(Str(store().ReapStalledUploads(400, 10, 1000)), "OK 0");
  EXPECT_EQ(Str(store().ReapStalledUploads(401, 10, 1000)), "OK 1");
}

TEST_P(MetaStoreTest, AddChunkRequiresAWritingObjectAndTheNextSequence) {
  EXPECT_CODE(store().AddChunk(Id(9), 0, C(1), 100), kNotFound);
  ASSERT_OK(store().BeginUpload(NewObject(Id(1), "t1", "ns", "k")));
  EXPECT_CODE(store().AddChunk(Id(1), 1, C(1), 100), kInvalidArgument);
  ASSERT_OK(store().AddChunk(Id(1), 0, C(1), 100));
  EXPECT_CODE(store().AddChunk(Id(1), 0, C(2), 100), kInvalidArgument);
  EXPECT_CODE(store().AddChunk(Id(1), 2, C(2), 100), kInvalidArgument);
  EXPECT_EQ(Refs(kHot, C(1)), 1);
  EXPECT_FALSE(Chunk(kHot, C(2)).has_value());  // rejected calls changed nothing

  ASSERT_OK(store().CommitUpload(Id(1), FinalFields(100, 1), 200));
  EXPECT_CODE(store().AddChunk(Id(1), 1, C(2), 300), kNotFound);
  Put(Id(2), "t1", "ns", "k2", {}, 300);
  EXPECT_CODE(store().AddChunk(Id(2), 0, C(2), 300), kNotFound);
}

TEST_P(MetaStoreTest, CommitUploadPublishesTheFinalFields) {
  ObjectRecord begun = NewObject(Id(1), "t1", "ns", "photos/cat.jpg", kCold, 100);
  begun.content_type = "image/jpeg";
  ASSERT_OK(store().BeginUpload(begun));
  ASSERT_OK(store().AddChunk(Id(1), 0, C(3), 200));

  ObjectRecord final_fields =
      FinalFields(300, 7, {{"color", "blue"}, {"ünï", "cödé 日本"}, {"empty", ""}});
  final_fields.tenant = "someone-else";  // not a final field: ignored
  final_fields.key = "elsewhere";
  ASSERT_OK_AND_ASSIGN(CommitResult result, store().CommitUpload(Id(1), final_fields, 500));

  ObjectRecord expected = begun;
  expected.state = ObjectState::kCommitted;
  expected.size_bytes = 300;
  expected.content_hash = D(9007);
  expected.etag = "etag-7";
  expected.content_type = "text/plain";
  expected.user_metadata = final_fields.user_metadata;
  expected.updated_at_ms = 500;
  EXPECT_EQ(Str(result.object), Str(expected));
  EXPECT_FALSE(result.replaced_object.has_value());
  EXPECT_EQ(Str(store().GetObject("t1", Id(1))), "OK " + Str(expected));
  EXPECT_EQ(Str(store().GetObjectByKey("t1", "ns", "photos/cat.jpg")), "OK " + Str(expected));
  EXPECT_EQ(Refs(kCold, C(3)), 1);  // commit neither takes nor drops references

  EXPECT_CODE(store().CommitUpload(Id(1), final_fields, 600), kNotFound);
  EXPECT_CODE(store().CommitUpload(Id(2), final_fields, 600), kNotFound);
}

// AddChunk may be committed without waiting for the disk, so a database restart can lose
// one; the commit must then refuse rather than publish an object missing bytes.
TEST_P(MetaStoreTest, CommitUploadRefusesChunksThatDoNotAddUpToTheSize) {
  ASSERT_OK(store().BeginUpload(NewObject(Id(1), "t1", "ns", "k", kHot, 100)));
  ASSERT_OK(store().AddChunk(Id(1), 0, C(1), 200));
  ASSERT_OK(store().AddChunk(Id(1), 1, C(2), 200));
  EXPECT_CODE(store().CommitUpload(Id(1), FinalFields(400, 1), 300), kUnavailable);
  EXPECT_CODE(store().CommitUpload(Id(1), FinalFields(200, 1), 300), kUnavailable);
  EXPECT_CODE(store().GetObjectByKey("t1", "ns", "k"), kNotFound);  // nothing published
  ASSERT_OK(store().CommitUpload(Id(1), FinalFields(300, 1), 300));
  ASSERT_OK_AND_ASSIGN(ObjectRecord committed, store().GetObjectByKey("t1", "ns", "k"));
  EXPECT_EQ(committed.size_bytes, 300u);
}

TEST_P(MetaStoreTest, CommitReplacesTheObjectAtTheKeyAndDropsItsReferences) {
  ObjectRecord a = Upload(Id(1), "t1", "ns", "k", {C(1), C(2)}, 100);
  // Same key elsewhere must not be touched.
  Upload(Id(5), "t2", "ns", "k", {C(1)}, 100);
  Upload(Id(6), "t1", "ns2", "k", {C(1)}, 100);

  ASSERT_OK(store().BeginUpload(NewObject(Id(2), "t1", "ns", "k", kHot, 500)));
  ASSERT_OK(store().AddChunk(Id(2), 0, C(2), 550));
  ASSERT_OK(store().AddChunk(Id(2), 1, C(3), 550));
  ASSERT_OK_AND_ASSIGN(CommitResult result, store().CommitUpload(Id(2), FinalFields(500, 2), 600));
  ASSERT_TRUE(result.replaced_object.has_value());
  EXPECT_EQ(*result.replaced_object, Id(1));

  EXPECT_EQ(Str(store().GetObjectByKey("t1", "ns", "k")), "OK " + Str(result.object));
  EXPECT_CODE(store().GetObject("t1", Id(1)), kNotFound);
  EXPECT_OK(store().GetObject("t2", Id(5)));
  EXPECT_OK(store().GetObject("t1", Id(6)));
  EXPECT_EQ(Keys({"t1", "ns", "", "", 100}), std::vector<std::string>{"k"});

  EXPECT_EQ(Str(*Chunk(kHot, C(1))), Str(ChunkRecord{kHot, D(1), 100, 2, 0}));  // Id 5 and 6
  EXPECT_EQ(Refs(kHot, C(2)), 1);
  EXPECT_EQ(Refs(kHot, C(3)), 1);
  // The replaced object is DELETING and keeps its chunk list for in-flight readers.
  EXPECT_EQ(Str(store().GetChunks(Id(1))), Str(Result(std::vector<ChunkRef>{C(1), C(2)})));
  ASSERT_OK_AND_ASSIGN(std::vector<ObjectCountRow> counts, store().CountObjects());
  EXPECT_EQ(Str(counts),
            Str(std::vector<ObjectCountRow>{{"t1", "ns", ObjectState::kCommitted, 1},
                                            {"t1", "ns", ObjectState::kDeleting, 1},
                                            {"t1", "ns2", ObjectState::kCommitted, 1},
                                            {"t2", "ns", ObjectState::kCommitted, 1}}));
  (void)a;
}

TEST_P(MetaStoreTest, ReplacementSetsZeroSinceWhenACountHitsZero) {
  Upload(Id(1), "t1", "ns", "k", {C(1)}, 100);
  Upload(Id(2), "t1", "ns", "k", {C(2)}, 700);
  EXPECT_EQ(Str(*Chunk(kHot, C(1))), Str(ChunkRecord{kHot, D(1), 100, 0, 700}));
  // Taking a reference again clears it.
  Put(Id(3), "t1", "ns", "k3", {C(1)}, 800);
  EXPECT_EQ(Str(*Chunk(kHot, C(1))), Str(ChunkRecord{kHot, D(1), 100, 1, 0}));
}

TEST_P(MetaStoreTest, PutCommittedStoresInlineObjects) {
  ObjectRecord object = NewObject(Id(1), "t1", "ns", "small", kHot, 50);
  object.state = ObjectState::kWriting;  // ignored: stored as COMMITTED
  object.size_bytes = 5;
  object.inline_data = std::string("he\0lo", 5);
  object.user_metadata = {{"a", "b"}};
  ASSERT_OK_AND_ASSIGN(CommitResult result, store().PutCommitted(object, {}, 700));
  ObjectRecord expected = object;
  expected.state = ObjectState::kCommitted;
  expected.updated_at_ms = 700;
  EXPECT_EQ(Str(result.object), Str(expected));
  EXPECT_EQ(Str(store().GetObject("t1", Id(1))), "OK " + Str(expected));
  EXPECT_EQ(Str(store().GetChunks(Id(1))), "OK []");

  // An empty inline object is still inline (not "no data").
  ObjectRecord empty = PutInline(Id(2), "t1", "ns", "empty", "", 710);
  ASSERT_OK_AND_ASSIGN(ObjectRecord fetched, store().GetObject("t1", Id(2)));
  ASSERT_TRUE(fetched.inline_data.has_value());
  EXPECT_EQ(*fetched.inline_data, "");
  EXPECT_EQ(Str(fetched), Str(empty));
}

TEST_P(MetaStoreTest, PutCommittedLinksChunksAndReplaces) {
  PutInline(Id(1), "t1", "ns", "k", "tiny", 100);
  ObjectRecord object = NewObject(Id(2), "t1", "ns", "k", kCold, 200);
  ASSERT_OK_AND_ASSIGN(CommitResult result, store().PutCommitted(object, {C(1), C(1), C(2)}, 300));
  ASSERT_TRUE(result.replaced_object.has_value());
  EXPECT_EQ(*result.replaced_object, Id(1));
  EXPECT_EQ(Refs(kCold, C(1)), 2);
  EXPECT_EQ(Refs(kCold, C(2)), 1);
  EXPECT_EQ(Str(store().GetChunks(Id(2))), Str(Result(std::vector<ChunkRef>{C(1), C(1), C(2)})));
  EXPECT_CODE(store().GetObject("t1", Id(1)), kNotFound);
  EXPECT_EQ(Str(store().GetObjectByKey("t1", "ns", "k")), "OK " + Str(result.object));
}

TEST_P(MetaStoreTest, PutCommittedRejectsBadInputWithoutChangingAnything) {
  Put(Id(1), "t1", "ns", "k", {C(1)}, 100);
  ObjectRecord both = NewObject(Id(2), "t1", "ns", "k", kHot, 200);
  both.inline_data = "x";
  EXPECT_CODE(store().PutCommitted(both, {C(2)}, 200), kInvalidArgument);
  EXPECT_CODE(store().PutCommitted(NewObject(Id(1), "t1", "ns", "k"), {C(2)}, 200), kAlreadyExists);
  EXPECT_EQ(Refs(kHot, C(1)), 1);
  EXPECT_FALSE(Chunk(kHot, C(2)).has_value());
  EXPECT_EQ(Str(store().CountObjects()), "OK [{\"t1\" \"ns\" COMMITTED 1}, ]");
}

TEST_P(MetaStoreTest, AbortUploadDropsTheRowAndItsReferences) {
  Put(Id(9), "t1", "ns", "other", {C(1)}, 100);
  ASSERT_OK(store().BeginUpload(NewObject(Id(1), "t1", "ns", "k")));
  ASSERT_OK(store().AddChunk(Id(1), 0, C(1), 100));
  ASSERT_OK(store().AddChunk(Id(1), 1, C(2), 100));
  ASSERT_OK(store().AbortUpload(Id(1), 800));
  EXPECT_CODE(store().GetChunks(Id(1)), kNotFound);
  EXPECT_EQ(Refs(kHot, C(1)), 1);
  EXPECT_EQ(Str(*Chunk(kHot, C(2))), Str(ChunkRecord{kHot, D(2), 200, 0, 800}));
  EXPECT_EQ(Str(store().CountObjects()), "OK [{\"t1\" \"ns\" COMMITTED 1}, ]");
  EXPECT_CODE(store().AbortUpload(Id(1), 900), kNotFound);
  EXPECT_CODE(store().AbortUpload(Id(9), 900), kNotFound);  // committed: not an upload
  EXPECT_OK(store().GetObject("t1", Id(9)));
  // The id is free again once the row is gone.
  EXPECT_OK(store().BeginUpload(NewObject(Id(1), "t1", "ns", "k")));
}

// ---- reads ----------------------------------------------------------------------------

TEST_P(MetaStoreTest, ObjectsAreInvisibleToOtherTenantsAndNamespaces) {
  Put(Id(1), "t1", "ns", "k", {C(1)}, 100);
  EXPECT_OK(store().GetObject("t1", Id(1)));
  EXPECT_CODE(store().GetObject("t2", Id(1)), kNotFound);
  EXPECT_CODE(store().GetObject("", Id(1)), kNotFound);
  EXPECT_OK(store().GetObjectByKey("t1", "ns", "k"));
  EXPECT_CODE(store().GetObjectByKey("t2", "ns", "k"), kNotFound);
  EXPECT_CODE(store().GetObjectByKey("t1", "ns2", "k"), kNotFound);
  EXPECT_CODE(store().GetObjectByKey("t1", "ns", "K"), kNotFound);
  EXPECT_TRUE(Keys({"t2", "ns", "", "", 100}).empty());
  EXPECT_TRUE(Keys({"t1", "ns2", "", "", 100}).empty());
  EXPECT_CODE(store().DeleteObject("t2", Id(1), 200), kNotFound);
  EXPECT_OK(store().GetObject("t1", Id(1)));
}

TEST_P(MetaStoreTest, GetChunksAnswersForEveryStateUntilPurged) {
  EXPECT_CODE(store().GetChunks(Id(1)), kNotFound);
  ASSERT_OK(store().BeginUpload(NewObject(Id(1), "t1", "ns", "k")));
  ASSERT_OK(store().AddChunk(Id(1), 0, C(1), 100));
  EXPECT_EQ(Str(store().GetChunks(Id(1))), Str(Result(std::vector<ChunkRef>{C(1)})));
  ASSERT_OK(store().CommitUpload(Id(1), FinalFields(100, 1), 100));
  EXPECT_EQ(Str(store().GetChunks(Id(1))), Str(Result(std::vector<ChunkRef>{C(1)})));
  ASSERT_OK(store().DeleteObject("t1", Id(1), 200));
  EXPECT_EQ(Str(store().GetChunks(Id(1))), Str(Result(std::vector<ChunkRef>{C(1)})));
  EXPECT_EQ(Str(store().PurgeDeletedObjects(201, 10)), "OK 1");
  EXPECT_CODE(store().GetChunks(Id(1)), kNotFound);
}

// ---- listing --------------------------------------------------------------------------

// Keys chosen to trip up text collation, LIKE metacharacters and shared prefixes.
const std::vector<std::string>& ListKeys() {
  static const std::vector<std::string> keys = {"a",
                                                "a/",
                                                "a/b",
                                                "a/b/c",
                                                "a0",
                                                "ab",
                                                "A",
                                                "Z",
                                                "b",
                                                "a b",
                                                "a\x01",
                                                "a%",
                                                "a_c",
                                                "abc",
                                                "é",
                                                "éa",
                                                "e",
                                                "日本",
                                                "日本/1",
                                                "日本語",
                                                "\x7f",
                                                "~",
                                                "photos/2023",
                                                "photos/2023/a.jpg",
                                                "photos0",
                                                "photot",
                                                "z",
                                                "zz",
                                                "\xf0\x9f\x98\x80",
                                                "\xef\xbf\xbf"};
  return keys;
}

TEST_P(MetaStoreTest, ListReturnsCommittedKeysInByteOrder) {
  int n = 0;
  for (const std::string& key : ListKeys()) {
    ++n;
    PutInline(Id(n), "t1", "ns", key, "x", 100 + n);
  }
  std::vector<std::string> expected = ListKeys();
  std::sort(expected.begin(), expected.end());  // std::string compares bytes as unsigned

  bool truncated = false;
  EXPECT_EQ(Keys({"t1", "ns", "", "", 10000}, &truncated), expected);
  EXPECT_FALSE(truncated);

  // Paging through with limit 3 visits every key once, in order.
  std::vector<std::string> paged;
  std::string after;
  while (true) {
    std::vector<std::string> page = Keys({"t1", "ns", "", after, 3}, &truncated);
    paged.insert(paged.end(), page.begin(), page.end());
    if (!truncated) break;
    ASSERT_EQ(page.size(), 3u);
    after = page.back();
  }
  EXPECT_EQ(paged, expected);
}

TEST_P(MetaStoreTest, ListMatchesABruteForceOracleForPrefixStartAfterAndLimit) {
  int n = 0;
  for (const std::string& key : ListKeys()) {
    ++n;
    PutInline(Id(n), "t1", "ns", key, "x", 100 + n);
  }
  const std::set<std::string> all(ListKeys().begin(), ListKeys().end());

  std::set<std::string> prefixes = {"", "\xff", "a%", "a_", "zzz", "\xe6\x97"};
  for (const std::string& key : ListKeys()) {
    for (size_t len = 1; len <= key.size(); ++len) prefixes.insert(key.substr(0, len));
  }
  std::set<std::string> starts = all;
  starts.insert({"", "a/a", "photos", "photos/2023/a", "q", "\xff"});

  for (const std::string& prefix : prefixes) {
    for (const std::string& start_after : starts) {
      std::vector<std::string> matching;
      for (const std::string& key : all) {
        if (key.starts_with(prefix) && key > start_after) matching.push_back(key);
      }
      for (uint32_t limit : {1u, 2u, 1000u}) {
        std::vector<std::string> expected(
            matching.begin(), matching.begin() + std::min<size_t>(limit, matching.size()));
        bool truncated = false;
        ASSERT_EQ(Keys({"t1", "ns", prefix, start_after, limit}, &truncated), expected)
            << "prefix=" << Quote(prefix) << " start_after=" << Quote(start_after)
            << " limit=" << limit;
        ASSERT_EQ(truncated, matching.size() > limit)
            << "prefix=" << Quote(prefix) << " start_after=" << Quote(start_after)
            << " limit=" << limit;
      }
    }
  }
}

// Delimiter listings against a brute-force S3 roll-up: each key after start_after that has
// the delimiter after the prefix becomes the common prefix up to that delimiter (once),
// every other key is itself an entry, and the page holds the first `limit` entries.
TEST_P(MetaStoreTest, ListWithDelimiterMatchesABruteForceRollUp) {
  std::vector<std::string> keys = ListKeys();
  for (const char* extra : {"d1/f1", "d1/f2", "d1/sub/f3", "d10/f1", "d2/f1", "d2/", "d3", "d3/x",
                            "x\xc3\xa9y\xc3\xa9z", "x\xc3\xa9", "xab", "xabab",
                            "x/\xf4\x8f\xbf\xbf/z", "x/\xf4\x8f\xbf\xbf", "x/\xf4\x8f\xbf\xbfq"}) {
    keys.push_back(extra);
  }
  // A directory of 150 plain keys with two subdirectories, so pages cross many keys before
  // and after a common prefix.
  for (int i = 0; i < 150; ++i) {
    keys.push_back("leaf/k" + std::to_string(1000 + i));
    if (i == 70) keys.push_back("leaf/k1070/sub");
  }
  keys.push_back("leaf/zz/y");
  int n = 0;
  for (const std::string& key : keys) {
    ++n;
    PutInline(Id(n), "t1", "ns", key, "x", 100 + n);
  }
  const std::set<std::string> all(keys.begin(), keys.end());

  const std::vector<std::string> delimiters = {"/",    "\xc3\xa9", "ab", "\xf4\x8f\xbf\xbf",
                                               "\xff", "b/"};
  const std::vector<std::string> prefixes = {"",    "a", "a/", "d",    "d1",
                                             "d1/", "x", "x/", "\xc3", "leaf/"};
  std::set<std::string> starts = {"", "a/b", "d1/", "d1/f1", "d1/\xff", "d2", "x/", "leaf/k1010"};
  for (uint32_t limit : {1u, 2u, 3u, 64u, 65u, 100u, 1000u}) {
    for (const std::string& delimiter : delimiters) {
      for (const std::string& prefix : prefixes) {
        for (const std::string& start_after : starts) {
          std::vector<std::string> entries;  // "K:key" or "P:common prefix"
          std::string last_common;
          for (const std::string& key : all) {
            if (!key.starts_with(prefix) || key <= start_after) continue;
            if (!last_common.empty() && key.starts_with(last_common)) continue;
            const size_t at = key.find(delimiter, prefix.size());
            if (at == std::string::npos) {
              entries.push_back("K:" + key);
            } else {
              last_common = key.substr(0, at + delimiter.size());
              entries.push_back("P:" + last_common);
            }
          }
          const bool expected_truncated = entries.size() > limit;
          if (expected_truncated) entries.resize(limit);
          std::vector<std::string> keys_expected, prefixes_expected;
          for (const std::string& entry : entries) {
            (entry[0] == 'K' ? keys_expected : prefixes_expected).push_back(entry.substr(2));
          }
          ListRequest request{"t1", "ns", prefix, start_after, limit, delimiter};
          Result<ListPage> page = store().ListObjects(request);
          ASSERT_TRUE(page.ok()) << page.status().ToString();
          std::vector<std::string> got_keys;
          for (const ObjectRecord& r : page->objects) got_keys.push_back(r.key);
          const std::string context = "delimiter=" + Quote(delimiter) + " prefix=" + Quote(prefix) +
                                      " start_after=" + Quote(start_after) +
                                      " limit=" + std::to_string(limit);
          ASSERT_EQ(got_keys, keys_expected) << context;
          ASSERT_EQ(page->common_prefixes, prefixes_expected) << context;
          ASSERT_EQ(page->truncated, expected_truncated) << context;
        }
      }
    }
  }
}

TEST_P(MetaStoreTest, ListShowsOnlyCommittedObjectsOfTheTenantAndNamespace) {
  PutInline(Id(1), "t1", "ns", "committed", "x", 100);
  ObjectRecord listed = Put(Id(2), "t1", "ns", "with-meta", {C(1)}, 100);
  ASSERT_OK(store().BeginUpload(NewObject(Id(3), "t1", "ns", "writing")));
  PutInline(Id(4), "t1", "ns", "deleted", "x", 100);
  ASSERT_OK(store().DeleteObject("t1", Id(4), 200));
  PutInline(Id(5), "t2", "ns", "other-tenant", "x", 100);
  PutInline(Id(6), "t1", "ns2", "other-namespace", "x", 100);
  EXPECT_EQ(Keys({"t1", "ns", "", "", 100}), (std::vector<std::string>{"committed", "with-meta"}));

  // Listings may leave inline data and user metadata out; everything else is the record.
  ASSERT_OK_AND_ASSIGN(ListPage page, store().ListObjects({"t1", "ns", "with", "", 10}));
  ASSERT_EQ(page.objects.size(), 1u);
  ObjectRecord got = page.objects[0];
  got.user_metadata = listed.user_metadata;
  got.inline_data = listed.inline_data;
  EXPECT_EQ(Str(got), Str(listed));
}

TEST_P(MetaStoreTest, ListLimitMustBeWithinBounds) {
  PutInline(Id(1), "t1", "ns", "k", "x", 100);
  EXPECT_CODE(store().ListObjects({"t1", "ns", "", "", 0}), kInvalidArgument);
  EXPECT_CODE(store().ListObjects({"t1", "ns", "", "", 10001}), kInvalidArgument);
  EXPECT_OK(store().ListObjects({"t1", "ns", "", "", 10000}));
  EXPECT_OK(store().ListObjects({"t1", "ns", "", "", 1}));
}

TEST_P(MetaStoreTest, LongKeysRoundTrip) {
  std::string key;
  while (key.size() + 3 <= kMaxKeyBytes) key += "日";
  key += std::string(kMaxKeyBytes - key.size(), 'x');
  ASSERT_EQ(key.size(), kMaxKeyBytes);
  ObjectRecord put = PutInline(Id(1), "t1", "ns", key, "x", 100);
  EXPECT_EQ(Str(store().GetObjectByKey("t1", "ns", key)), "OK " + Str(put));
  EXPECT_EQ(Keys({"t1", "ns", key.substr(0, 600), "", 10}), std::vector<std::string>{key});
}

// ---- deletes --------------------------------------------------------------------------

TEST_P(MetaStoreTest, DeleteObjectReturnsTheObjectAndDropsItsReferences) {
  ObjectRecord object = NewObject(Id(1), "t1", "ns", "k", kHot, 100);
  object.user_metadata = {{"m", "v"}};
  ASSERT_OK_AND_ASSIGN(CommitResult put, store().PutCommitted(object, {C(1), C(2)}, 150));
  Put(Id(2), "t1", "ns", "k2", {C(2)}, 150);

  ASSERT_OK_AND_ASSIGN(ObjectRecord deleted, store().DeleteObject("t1", Id(1), 900));
  EXPECT_EQ(Str(deleted), Str(put.object));  // as it was: COMMITTED, metadata included
  EXPECT_CODE(store().GetObject("t1", Id(1)), kNotFound);
  EXPECT_CODE(store().GetObjectByKey("t1", "ns", "k"), kNotFound);
  EXPECT_EQ(Str(*Chunk(kHot, C(1))), Str(ChunkRecord{kHot, D(1), 100, 0, 900}));
  EXPECT_EQ(Refs(kHot, C(2)), 1);
  EXPECT_CODE(store().DeleteObject("t1", Id(1), 901), kNotFound);

  ASSERT_OK(store().BeginUpload(NewObject(Id(3), "t1", "ns", "w")));
  EXPECT_CODE(store().DeleteObject("t1", Id(3), 902), kNotFound);
  EXPECT_CODE(store().DeleteObject("t1", Id(4), 902), kNotFound);

  // The key is free for a new object; the DELETING row does not block it.
  PutInline(Id(5), "t1", "ns", "k", "new", 1000);
  EXPECT_OK(store().GetObjectByKey("t1", "ns", "k"));
}

TEST_P(MetaStoreTest, DeleteInlineObjectReturnsItsData) {
  ObjectRecord put = PutInline(Id(1), "t1", "ns", "k", "payload", 100);
  ASSERT_OK_AND_ASSIGN(ObjectRecord deleted, store().DeleteObject("t1", Id(1), 200));
  EXPECT_EQ(Str(deleted), Str(put));
}

// ---- accounting -----------------------------------------------------------------------

TEST_P(MetaStoreTest, UsageCountsEachDistinctChunkOncePerClass) {
  // t1/a hot: three objects share C1; one of them names it twice.
  Put(Id(1), "t1", "a", "o1", {C(1), C(2)}, 100);
  Upload(Id(2), "t1", "a", "o2", {C(1)}, 100);
  Put(Id(3), "t1", "a", "o3", {C(1), C(1)}, 100);
  PutInline(Id(4), "t1", "a", "o4", "xyz", 100);
  // Same digest in the cold class is separate physical data.
  Put(Id(5), "t1", "a", "o5", {C(1)}, 100, kCold);
  // Another namespace counts the digest again.
  Put(Id(6), "t1", "b", "o6", {C(1)}, 100);
  // Not counted: other tenant, uploads in progress, deleted and replaced objects.
  Put(Id(7), "t2", "a", "o7", {C(3)}, 100);
  ASSERT_OK(store().BeginUpload(NewObject(Id(8), "t1", "a", "o8")));
  ASSERT_OK(store().AddChunk(Id(8), 0, C(4), 100));
  Put(Id(9), "t1", "a", "o9", {C(5)}, 100);
  ASSERT_OK(store().DeleteObject("t1", Id(9), 200));
  Put(Id(10), "t1", "a", "o1-old", {C(6)}, 100);
  PutInline(Id(11), "t1", "a", "o1-old", "", 300);

  ASSERT_OK_AND_ASSIGN(std::vector<UsageRow> usage, store().Usage("t1"));
  std::vector<UsageRow> expected = {
      {"a", kCold, 1, 100, 100},
      // objects o1 o2 o3 o4 o1-old; logical 300+100+200+3+0; physical C1 + C2 + inline 3
      {"a", kHot, 5, 603, 303},
      {"b", kHot, 1, 100, 100},
  };
  EXPECT_EQ(Str(usage), Str(expected));
  EXPECT_EQ(Str(store().Usage("t3")), "OK []");
  // The same figures without physical bytes, from the kept counters.
  ASSERT_OK_AND_ASSIGN(std::vector<UsageCounterRow> counts, store().UsageCounts("t1"));
  std::vector<UsageCounterRow> expected_counts = {
      {"t1", "a", kCold, 1, 100, 0},
      {"t1", "a", kHot, 5, 603, 3},
      {"t1", "b", kHot, 1, 100, 0},
  };
  EXPECT_EQ(Str(counts), Str(expected_counts));
  EXPECT_EQ(Str(store().UsageCounts("t3")), "OK []");
}

TEST_P(MetaStoreTest, CountObjectsAndStorageBytesCoverEveryTenant) {
  Put(Id(1), "t1", "a", "k1", {C(1)}, 100);
  Put(Id(2), "t1", "a", "k2", {C(2)}, 100, kCold);
  PutInline(Id(3), "t2", "b", "k3", "12345", 100);
  ASSERT_OK(store().BeginUpload(NewObject(Id(4), "t2", "b", "k4")));
  Put(Id(5), "t2", "b", "k5", {C(3)}, 100);
  ASSERT_OK(store().DeleteObject("t2", Id(5), 200));

  EXPECT_EQ(Str(store().CountObjects()),
            Str(Result(std::vector<ObjectCountRow>{{"t1", "a", ObjectState::kCommitted, 2},
                                                   {"t2", "b", ObjectState::kCommitted, 1},
                                                   {"t2", "b", ObjectState::kDeleting, 1},
                                                   {"t2", "b", ObjectState::kWriting, 1}})));
  EXPECT_EQ(Str(store().StorageBytes()),
            Str(Result(std::vector<StorageBytesRow>{
                {kCold, "a", 200}, {kHot, "a", 100}, {kHot, "b", 5}})));
  // Chunk rows per class: the deleted object's chunk awaits GC.
  EXPECT_EQ(Str(store().ChunkTotals()),
            Str(Result(std::vector<ChunkTotalsRow>{{kCold, 1, 200, 0}, {kHot, 2, 400, 1}})));
}

// ---- garbage collection ---------------------------------------------------------------

TEST_P(MetaStoreTest, ReapStalledUploadsTakesTheOldestFirstWithinTheLimit) {
  ASSERT_OK(store().BeginUpload(NewObject(Id(1), "t1", "ns", "k1", kHot, 100)));
  ASSERT_OK(store().AddChunk(Id(1), 0, C(1), 100));
  ASSERT_OK(store().BeginUpload(NewObject(Id(2), "t1", "ns", "k2", kHot, 50)));
  ASSERT_OK(store().AddChunk(Id(2), 0, C(2), 200));
  ASSERT_OK(store().BeginUpload(NewObject(Id(3), "t1", "ns", "k3", kHot, 300)));
  ASSERT_OK(store().AddChunk(Id(3), 0, C(3), 300));
  Put(Id(4), "t1", "ns", "committed", {C(1)}, 10);  // old but committed: never reaped

  EXPECT_EQ(Str(store().ReapStalledUploads(250, 0, 1000)), "OK 0");
  EXPECT_EQ(Str(store().ReapStalledUploads(250, 1, 1000)), "OK 1");
  EXPECT_CODE(store().GetChunks(Id(1)), kNotFound);  // updated 100: the oldest
  EXPECT_OK(store().GetChunks(Id(2)));
  EXPECT_EQ(Str(store().ReapStalledUploads(250, 10, 1100)), "OK 1");
  EXPECT_CODE(store().GetChunks(Id(2)), kNotFound);
  EXPECT_OK(store().GetChunks(Id(3)));
  EXPECT_OK(store().GetObject("t1", Id(4)));

  EXPECT_EQ(Refs(kHot, C(1)), 1);
  EXPECT_EQ(Str(*Chunk(kHot, C(2))), Str(ChunkRecord{kHot, D(2), 200, 0, 1100}));
  EXPECT_EQ(Refs(kHot, C(3)), 1);
  EXPECT_CODE(store().AddChunk(Id(2), 1, C(4), 1200), kNotFound);
  EXPECT_CODE(store().CommitUpload(Id(2), FinalFields(1, 1), 1200), kNotFound);
}

TEST_P(MetaStoreTest, ReapManyUploadsAtOnce) {
  for (int i = 1; i <= 120; ++i) {
    ASSERT_OK(store().BeginUpload(NewObject(Id(i), "t1", "ns", "k" + std::to_string(i))));
    ASSERT_OK(store().AddChunk(Id(i), 0, C(1), 100 + i));
  }
  EXPECT_EQ(Refs(kHot, C(1)), 120);
  EXPECT_EQ(Str(store().ReapStalledUploads(1000, 100, 2000)), "OK 100");
  EXPECT_EQ(Refs(kHot, C(1)), 20);
  EXPECT_EQ(Str(store().ReapStalledUploads(1000, 100, 2000)), "OK 20");
  EXPECT_EQ(Str(*Chunk(kHot, C(1))), Str(ChunkRecord{kHot, D(1), 100, 0, 2000}));
}

TEST_P(MetaStoreTest, PurgeDeletedObjectsRespectsCutoffAndLimit) {
  for (int i = 1; i <= 3; ++i) {
    Put(Id(i), "t1", "ns", "k" + std::to_string(i), {C(i)}, 10);
    ASSERT_OK(store().DeleteObject("t1", Id(i), i * 100));
  }
  Put(Id(4), "t1", "ns", "live", {C(4)}, 10);
  ASSERT_OK(store().BeginUpload(NewObject(Id(5), "t1", "ns", "writing", kHot, 10)));

  EXPECT_EQ(Str(store().PurgeDeletedObjects(250, 1)), "OK 1");
  EXPECT_CODE(store().GetChunks(Id(1)), kNotFound);
  EXPECT_OK(store().GetChunks(Id(2)));
  EXPECT_EQ(Str(store().PurgeDeletedObjects(250, 10)), "OK 1");
  EXPECT_CODE(store().GetChunks(Id(2)), kNotFound);
  EXPECT_OK(store().GetChunks(Id(3)));
  EXPECT_EQ(Str(store().PurgeDeletedObjects(100000, 10)), "OK 1");
  EXPECT_OK(store().GetObject("t1", Id(4)));
  EXPECT_OK(store().GetChunks(Id(5)));
  EXPECT_EQ(Str(store().CountObjects()),
            "OK [{\"t1\" \"ns\" COMMITTED 1}, {\"t1\" \"ns\" "
            "WRITING 1}, ]");
  // Purging touches object rows only: the chunk rows wait for chunk GC.
  EXPECT_EQ(Refs(kHot, C(1)), 0);
}

// Makes (class, chunk) a zero-count row with zero_since_ms = at_ms.
void MakeGarbage(MetaStore& store, int id, StorageClass storage_class, const ChunkRef& chunk,
                 TimestampMs at_ms) {
  ASSERT_OK(store.BeginUpload(NewObject(Id(id), "t1", "ns", "g", storage_class)));
  ASSERT_OK(store.AddChunk(Id(id), 0, chunk, at_ms));
  ASSERT_OK(store.AbortUpload(Id(id), at_ms));
}

TEST_P(MetaStoreTest, CollectGarbageChunksRespectsCutoffLimitAndTheCallback) {
  MakeGarbage(store(), 1, kHot, C(1), 100);
  MakeGarbage(store(), 2, kHot, C(2), 200);
  MakeGarbage(store(), 3, kHot, C(3), 300);
  MakeGarbage(store(), 4, kCold, C(1), 150);
  Put(Id(5), "t1", "ns", "live", {C(4)}, 10);  // referenced: never a candidate

  std::vector<std::string> calls;
  auto remove = [&](const ChunkRecord& chunk) -> Status {
    calls.push_back(Str(chunk));
    if (chunk.digest == D(2)) return UnavailableError("disk busy");
    return OkStatus();
  };
  ASSERT_OK_AND_ASSIGN(std::vector<ChunkRecord> removed,
                       store().CollectGarbageChunks(250, 10, remove));
  EXPECT_EQ(Str(removed),
            Str(std::vector<ChunkRecord>{{kHot, D(1), 100, 0, 100}, {kCold, D(1), 100, 0, 150}}));
  EXPECT_EQ(calls, (std::vector<std::string>{Str(ChunkRecord{kHot, D(1), 100, 0, 100}),
                                             Str(ChunkRecord{kCold, D(1), 100, 0, 150}),
                                             Str(ChunkRecord{kHot, D(2), 200, 0, 200})}));
  EXPECT_FALSE(Chunk(kHot, C(1)).has_value());
  EXPECT_FALSE(Chunk(kCold, C(1)).has_value());
  EXPECT_TRUE(Chunk(kHot, C(2)).has_value());  // the failed removal keeps its row
  EXPECT_TRUE(Chunk(kHot, C(3)).has_value());  // younger than the cutoff

  auto ok = [](const ChunkRecord&) { return OkStatus(); };
  ASSERT_OK_AND_ASSIGN(removed, store().CollectGarbageChunks(100000, 1, ok));
  EXPECT_EQ(Str(removed), Str(std::vector<ChunkRecord>{{kHot, D(2), 200, 0, 200}}));
  ASSERT_OK_AND_ASSIGN(removed, store().CollectGarbageChunks(100000, 10, ok));
  EXPECT_EQ(Str(removed), Str(std::vector<ChunkRecord>{{kHot, D(3), 300, 0, 300}}));
  ASSERT_OK_AND_ASSIGN(removed, store().CollectGarbageChunks(100000, 10, ok));
  EXPECT_TRUE(removed.empty());
  EXPECT_EQ(Refs(kHot, C(4)), 1);

  // A digest that was collected comes back as a fresh row when referenced again.
  ASSERT_OK(store().BeginUpload(NewObject(Id(6), "t1", "ns", "again")));
  ASSERT_OK(store().AddChunk(Id(6), 0, C(1), 5000));
  EXPECT_EQ(Str(*Chunk(kHot, C(1))), Str(ChunkRecord{kHot, D(1), 100, 1, 0}));
}

// The callback runs inside the write transaction: a concurrent AddChunk on the same digest
// waits until the row is gone and then recreates it.
TEST_P(MetaStoreTest, CollectGarbageChunksHoldsWritersOffDuringTheCallback) {
  MakeGarbage(store(), 1, kHot, C(1), 100);
  ASSERT_OK(store().BeginUpload(NewObject(Id(2), "t1", "ns", "racer")));

  std::atomic<bool> add_done{false};
  std::thread racer;
  bool finished_early = false;
  auto remove = [&](const ChunkRecord&) -> Status {
    racer = std::thread([&] {
      EXPECT_OK(store().AddChunk(Id(2), 0, C(1), 500));
      add_done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    finished_early = add_done.load();
    return OkStatus();
  };
  ASSERT_OK_AND_ASSIGN(std::vector<ChunkRecord> removed,
                       store().CollectGarbageChunks(1000, 10, remove));
  racer.join();
  EXPECT_FALSE(finished_early);
  EXPECT_EQ(removed.size(), 1u);
  EXPECT_EQ(Str(*Chunk(kHot, C(1))), Str(ChunkRecord{kHot, D(1), 100, 1, 0}));
}

// ---- fsck -----------------------------------------------------------------------------

TEST_P(MetaStoreTest, CheckReferencesIsCleanOnAConsistentStore) {
  Put(Id(1), "t1", "ns", "k1", {C(1), C(2)}, 100);
  ASSERT_OK(store().BeginUpload(NewObject(Id(2), "t1", "ns", "k2", kCold)));
  ASSERT_OK(store().AddChunk(Id(2), 0, C(2), 100));
  Put(Id(3), "t1", "ns", "k3", {C(3)}, 100);
  ASSERT_OK(store().DeleteObject("t1", Id(3), 200));

  EXPECT_EQ(Str(store().CheckReferences()),
            Str(Result(std::vector<FsckReferenceRow>{{kCold, D(2), 1, 1, 0, 200, true},
                                                     {kHot, D(1), 1, 1, 1, 100, true},
                                                     {kHot, D(2), 1, 1, 1, 200, true},
                                                     {kHot, D(3), 0, 0, 0, 300, true}})));
  EXPECT_EQ(Str(store().RepairReferences(300)), "OK 0");
}

TEST_P(MetaStoreTest, CheckAndRepairReferencesFixDamagedCounts) {
  Put(Id(1), "t1", "ns", "k1", {C(1), C(2)}, 100);
  ASSERT_OK(store().BeginUpload(NewObject(Id(2), "t1", "ns", "k2")));
  ASSERT_OK(store().AddChunk(Id(2), 0, C(2), 100));
  Put(Id(3), "t1", "ns", "k3", {C(3)}, 100);
  ASSERT_OK(store().DeleteObject("t1", Id(3), 200));

  Damage(kHot, C(1), 5);             // count too high
  Damage(kHot, C(2), std::nullopt);  // row lost while two live objects name it
  Damage(kHot, C(9), 3);             // row counting references nobody holds
  Damage(kHot, C(3), std::nullopt);  // only a DELETING object names it: not a reference

  EXPECT_EQ(Str(store().CheckReferences()),
            Str(Result(std::vector<FsckReferenceRow>{{kHot, D(1), 5, 1, 1, 100, true},
                                                     {kHot, D(2), 0, 2, 1, 200, false},
                                                     {kHot, D(9), 3, 0, 0, 900, true}})));
  EXPECT_EQ(Str(store().RepairReferences(1234)), "OK 3");
  EXPECT_EQ(Str(store().ListChunks()),
            Str(Result(std::vector<ChunkRecord>{
                {kHot, D(1), 100, 1, 0}, {kHot, D(2), 200, 2, 0}, {kHot, D(9), 900, 0, 1234}})));
  EXPECT_EQ(Str(store().CheckReferences()),
            Str(Result(std::vector<FsckReferenceRow>{{kHot, D(1), 1, 1, 1, 100, true},
                                                     {kHot, D(2), 2, 2, 1, 200, true},
                                                     {kHot, D(9), 0, 0, 0, 900, true}})));
  EXPECT_EQ(Str(store().RepairReferences(2000)), "OK 0");
}

TEST_P(MetaStoreTest, StoreIdentityIsSetOnceAndTheFirstOneWins) {
  ASSERT_OK_AND_ASSIGN(std::optional<std::string> none, store().GetStoreIdentity());
  EXPECT_FALSE(none.has_value());
  ASSERT_OK_AND_ASSIGN(std::string first,
                       store().SetStoreIdentityIfAbsent("6f1c2b7e-0000-4000-8000-000000000001"));
  EXPECT_EQ(first, "6f1c2b7e-0000-4000-8000-000000000001");
  ASSERT_OK_AND_ASSIGN(std::string second,
                       store().SetStoreIdentityIfAbsent("6f1c2b7e-0000-4000-8000-000000000002"));
  EXPECT_EQ(second, first);
  ASSERT_OK_AND_ASSIGN(std::optional<std::string> now, store().GetStoreIdentity());
  EXPECT_EQ(now, std::optional<std::string>(first));
  EXPECT_CODE(store().SetStoreIdentityIfAbsent(""), kInvalidArgument);
}

TEST_P(MetaStoreTest, CountChunksCountsRowsOfAnyReferenceCount) {
  EXPECT_EQ(Str(store().CountChunks()), "OK 0");
  Put(Id(1), "t1", "ns", "k1", {C(1), C(2)}, 100);
  Put(Id(2), "t1", "ns", "k2", {C(2)}, 100, kCold);
  ASSERT_OK(store().DeleteObject("t1", Id(1), 150));  // rows stay, counts drop to zero
  EXPECT_EQ(Str(store().CountChunks()), "OK 3");
}

TEST_P(MetaStoreTest, CheckIntegrityOfAHealthyStoreFindsNothing) {
  Put(Id(1), "t1", "ns", "k1", {C(1)}, 100);
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> problems, store().CheckIntegrity());
  EXPECT_TRUE(problems.empty()) << problems.front();
}

TEST_P(MetaStoreTest, FindObjectsWithChunksNamesCommittedObjectsOnlyAndChangesNothing) {
  Put(Id(1), "t1", "ns", "k1", {C(1), C(2)}, 100);
  ASSERT_OK(store().BeginUpload(NewObject(Id(2), "t1", "ns", "k2")));
  ASSERT_OK(store().AddChunk(Id(2), 0, C(2), 100));  // WRITING: not affected yet
  Put(Id(4), "t2", "ns", "k4", {C(2)}, 100, kCold);  // same digest, other class
  Put(Id(6), "t1", "ns", "k6", {C(2)}, 100);
  ASSERT_OK(store().DeleteObject("t1", Id(6), 150));  // DELETING: not returned
  Put(Id(7), "t1", "ns", "k7", {C(2)}, 100);

  ASSERT_OK_AND_ASSIGN(std::vector<ObjectId> found,
                       store().FindObjectsWithChunks(kHot, {D(2), D(9)}));
  EXPECT_EQ(found, (std::vector<ObjectId>{Id(1), Id(7)}));
  EXPECT_OK(store().GetObject("t1", Id(1)));
  EXPECT_EQ(Refs(kHot, C(2)), 3);
}

TEST_P(MetaStoreTest, DropObjectsWithChunksRetiresEveryLiveObjectNamingALostDigest) {
  Put(Id(1), "t1", "ns", "k1", {C(1), C(2)}, 100);
  ASSERT_OK(store().BeginUpload(NewObject(Id(2), "t1", "ns", "k2")));
  ASSERT_OK(store().AddChunk(Id(2), 0, C(2), 100));
  Put(Id(3), "t1", "ns", "k3", {C(3)}, 100);
  Put(Id(4), "t2", "ns", "k4", {C(2)}, 100, kCold);  // same digest, other class
  PutInline(Id(5), "t1", "ns", "k5", "x", 100);
  Put(Id(6), "t1", "ns", "k6", {C(2)}, 100);
  ASSERT_OK(store().DeleteObject("t1", Id(6), 150));  // already DELETING: not returned

  ASSERT_OK_AND_ASSIGN(std::vector<ObjectId> dropped,
                       store().DropObjectsWithChunks(kHot, {D(2), D(7)}, 700));
  EXPECT_EQ(dropped, (std::vector<ObjectId>{Id(1), Id(2)}));
  EXPECT_CODE(store().GetObject("t1", Id(1)), kNotFound);
  EXPECT_CODE(store().AddChunk(Id(2), 1, C(5), 800), kNotFound);
  EXPECT_CODE(store().CommitUpload(Id(2), FinalFields(1, 1), 800), kNotFound);
  EXPECT_OK(store().GetObject("t1", Id(3)));
  EXPECT_OK(store().GetObject("t2", Id(4)));
  EXPECT_OK(store().GetObject("t1", Id(5)));

  EXPECT_EQ(Str(*Chunk(kHot, C(1))), Str(ChunkRecord{kHot, D(1), 100, 0, 700}));
  EXPECT_EQ(Str(*Chunk(kHot, C(2))), Str(ChunkRecord{kHot, D(2), 200, 0, 700}));
  EXPECT_EQ(Refs(kHot, C(3)), 1);
  EXPECT_EQ(Refs(kCold, C(2)), 1);
  EXPECT_EQ(Str(store().CountObjects()),
            Str(Result(std::vector<ObjectCountRow>{{"t1", "ns", ObjectState::kCommitted, 2},
                                                   {"t1", "ns", ObjectState::kDeleting, 3},
                                                   {"t2", "ns", ObjectState::kCommitted, 1}})));

  EXPECT_EQ(Str(store().DropObjectsWithChunks(kHot, {D(2)}, 900)), "OK []");
  EXPECT_EQ(Str(store().DropObjectsWithChunks(kHot, {}, 900)), "OK []");
  // The dropped objects' rows are back to consistent.
  ASSERT_OK_AND_ASSIGN(std::vector<FsckReferenceRow> refs, store().CheckReferences());
  for (const FsckReferenceRow& row : refs) {
    EXPECT_EQ(row.recorded_ref_count, row.actual_ref_count) << Str(row);
  }
}

// ---- credentials ----------------------------------------------------------------------

ApiKeyRecord Key(const std::string& id, std::vector<std::string> tenants, Scope scope) {
  ApiKeyRecord key;
  key.key_id = id;
  key.secret_hash = D(77);
  key.tenants = std::move(tenants);
  key.scope = scope;
  key.created_at_ms = 1700000000000;
  key.description = "ci \"runner\" ü";
  return key;
}

// ---- generic chunk owners -----------------------------------------------------------
//
// Owners of the test-only kind "test" stand in for the files of a filesystem front end.

ChunkOwner Owner(const std::string& id) { return ChunkOwner{"test", id}; }
OwnerChunk Hot(const ChunkRef& chunk) { return OwnerChunk{StorageClass::kHot, chunk}; }
OwnerChunk Cold(const ChunkRef& chunk) { return OwnerChunk{StorageClass::kCold, chunk}; }

// Every chunk's recorded count equals the references of objects plus owners.
void ExpectCountsExact(MetaStore& store) {
  Result<std::vector<FsckReferenceRow>> refs = store.CheckReferences();
  ASSERT_TRUE(refs.ok()) << refs.status().ToString();
  for (const FsckReferenceRow& row : *refs) {
    EXPECT_TRUE(row.has_chunk_row) << Str(row);
    EXPECT_EQ(row.recorded_ref_count, row.actual_ref_count) << Str(row);
  }
}

TEST_P(MetaStoreTest, AChunkSharedByAnObjectAndAnOwnerSurvivesTheObjectsDeleteAndGc) {
  Put(Id(1), "t1", "ns", "k1", {C(1), C(2)}, 100);
  ASSERT_OK(store().SetOwnerChunks(Owner("file-1"), {Hot(C(1)), Cold(C(3))}, 110));
  EXPECT_EQ(Refs(kHot, C(1)), 2);
  EXPECT_EQ(Refs(kCold, C(3)), 1);

  ASSERT_OK(store().DeleteObject("t1", Id(1), 200));
  EXPECT_EQ(Refs(kHot, C(1)), 1);
  EXPECT_EQ(Refs(kHot, C(2)), 0);
  ASSERT_OK(store().PurgeDeletedObjects(1000000, 100));
  std::vector<std::string> removed_files;
  auto remove = [&](const ChunkRecord& chunk) -> Status {
    removed_files.push_back(Str(chunk));
    return OkStatus();
  };
  ASSERT_OK_AND_ASSIGN(std::vector<ChunkRecord> removed,
                       store().CollectGarbageChunks(1000000, 100, remove));
  EXPECT_EQ(Str(removed), Str(std::vector<ChunkRecord>{{kHot, D(2), 200, 0, 200}}));
  EXPECT_EQ(removed_files.size(), 1u);
  EXPECT_EQ(Str(*Chunk(kHot, C(1))), Str(ChunkRecord{kHot, D(1), 100, 1, 0}));
  EXPECT_EQ(Str(*Chunk(kCold, C(3))), Str(ChunkRecord{kCold, D(3), 300, 1, 0}));
  EXPECT_EQ(Str(store().GetOwnerChunks(Owner("file-1"))),
            Str(Result(std::vector<OwnerChunk>{Hot(C(1)), Cold(C(3))})));
  ExpectCountsExact(store());
}

TEST_P(MetaStoreTest, SetOwnerChunksReplacesTheWholeListAtomically) {
  ChunkRef checked = C(1);
  checked.block_checksums = std::string(4, 'k');
  ASSERT_OK(store().SetOwnerChunks(Owner("f"), {Hot(checked), Hot(C(2)), Hot(C(1))}, 100));
  EXPECT_EQ(Refs(kHot, C(1)), 2);
  EXPECT_EQ(Refs(kHot, C(2)), 1);
  ASSERT_OK_AND_ASSIGN(std::vector<OwnerChunk> listed, store().GetOwnerChunks(Owner("f")));
  ASSERT_EQ(listed.size(), 3u);
  EXPECT_EQ(listed[0].chunk.block_checksums, std::string(4, 'k'));  // from the chunk row
  EXPECT_EQ(listed[2].chunk.block_checksums, std::string(4, 'k'));

  // Another owner of the same id in another kind, and another id of the kind, are apart.
  ASSERT_OK(store().SetOwnerChunks(ChunkOwner{"test2", "f"}, {Hot(C(2))}, 100));
  ASSERT_OK(store().SetOwnerChunks(Owner("g"), {Cold(C(2))}, 100));

  ASSERT_OK(store().SetOwnerChunks(Owner("f"), {Hot(C(2)), Hot(C(3))}, 200));
  EXPECT_EQ(Str(*Chunk(kHot, C(1))), Str(ChunkRecord{kHot, D(1), 100, 0, 200}));
  EXPECT_EQ(Refs(kHot, C(2)), 2);  // f and test2:f
  EXPECT_EQ(Refs(kHot, C(3)), 1);
  EXPECT_EQ(Refs(kCold, C(2)), 1);
  EXPECT_EQ(Str(store().GetOwnerChunks(Owner("f"))),
            Str(Result(std::vector<OwnerChunk>{Hot(C(2)), Hot(C(3))})));
  EXPECT_EQ(Str(store().GetOwnerChunks(ChunkOwner{"test2", "f"})),
            Str(Result(std::vector<OwnerChunk>{Hot(C(2))})));
  EXPECT_EQ(Str(store().GetOwnerChunks(Owner("nobody"))), "OK []");

  // A damage mark shows through the owner's list as through an object's.
  ASSERT_OK(store().SetChunkDamaged(kHot, D(3), 250));
  ASSERT_OK_AND_ASSIGN(listed, store().GetOwnerChunks(Owner("f")));
  EXPECT_EQ(listed[1].chunk.damaged_ms, 250);

  // Owners that break the rules change nothing.
  const std::vector<ChunkOwner> bad = {{"object", "f"},
                                       {"", "f"},
                                       {"Test", "f"},
                                       {"9test", "f"},
                                       {"te_st", "f"},
                                       {std::string(33, 'k'), "f"},
                                       {"test", ""},
                                       {"test", "a\nb"},
                                       {"test", std::string("a\0b", 3)},
                                       {"test", "\xff\xfe"},
                                       {"test", std::string(1025, 'i')}};
  for (const ChunkOwner& owner : bad) {
    SCOPED_TRACE(Str(owner));
    EXPECT_CODE(store().SetOwnerChunks(owner, {Hot(C(9))}, 300), kInvalidArgument);
    EXPECT_CODE(store().DropOwnerChunks(owner, 300), kInvalidArgument);
    EXPECT_CODE(store().GetOwnerChunks(owner), kInvalidArgument);
  }
  EXPECT_FALSE(Chunk(kHot, C(9)).has_value());
  EXPECT_OK(store().SetOwnerChunks(ChunkOwner{"test", std::string(1024, 'i')}, {}, 300));
  EXPECT_OK(store().SetOwnerChunks(ChunkOwner{std::string(32, 'k'), "caf\xc3\xa9"}, {}, 300));
  EXPECT_CODE(store().OwnerUsage("object"), kInvalidArgument);
  ExpectCountsExact(store());
}

TEST_P(MetaStoreTest, DropOwnerChunksMakesItsChunksCollectable) {
  ASSERT_OK(store().SetOwnerChunks(Owner("f"), {Hot(C(1)), Cold(C(1)), Hot(C(1))}, 100));
  Put(Id(1), "t1", "ns", "k1", {C(2)}, 100);
  ASSERT_OK(store().SetOwnerChunks(Owner("g"), {Hot(C(2))}, 100));
  auto ok = [](const ChunkRecord&) { return OkStatus(); };
  ASSERT_OK_AND_ASSIGN(std::vector<ChunkRecord> removed,
                       store().CollectGarbageChunks(1000000, 100, ok));
  EXPECT_TRUE(removed.empty());

  ASSERT_OK(store().DropOwnerChunks(Owner("f"), 300));
  ASSERT_OK(store().DropOwnerChunks(Owner("g"), 300));
  ASSERT_OK(store().DropOwnerChunks(Owner("f"), 301));  // nothing left: not an error
  EXPECT_EQ(Str(store().GetOwnerChunks(Owner("f"))), "OK []");
  EXPECT_EQ(Str(*Chunk(kHot, C(1))), Str(ChunkRecord{kHot, D(1), 100, 0, 300}));
  EXPECT_EQ(Str(*Chunk(kCold, C(1))), Str(ChunkRecord{kCold, D(1), 100, 0, 300}));
  EXPECT_EQ(Refs(kHot, C(2)), 1);  // the object's reference stays

  ASSERT_OK_AND_ASSIGN(removed, store().CollectGarbageChunks(300, 100, ok));
  EXPECT_TRUE(removed.empty());  // within the grace period
  ASSERT_OK_AND_ASSIGN(removed, store().CollectGarbageChunks(301, 100, ok));
  EXPECT_EQ(Str(removed),
            Str(std::vector<ChunkRecord>{{kCold, D(1), 100, 0, 300}, {kHot, D(1), 100, 0, 300}}));
  EXPECT_TRUE(Chunk(kHot, C(2)).has_value());
  ExpectCountsExact(store());
}

TEST_P(MetaStoreTest, RepairReferencesRecountsOwnersAndNeverDropsTheirReferences) {
  Put(Id(1), "t1", "ns", "k1", {C(1)}, 100);
  ASSERT_OK(store().SetOwnerChunks(Owner("f"), {Hot(C(1)), Hot(C(2)), Cold(C(3))}, 100));
  ASSERT_OK(store().SetOwnerChunks(Owner("g"), {Hot(C(2))}, 100));

  Damage(kHot, C(1), 1);              // the object's reference only: too low
  Damage(kHot, C(2), 0);              // as if no owner held it
  Damage(kCold, C(3), std::nullopt);  // row lost while an owner names it

  EXPECT_EQ(Str(store().CheckReferences()),
            Str(Result(std::vector<FsckReferenceRow>{{kCold, D(3), 0, 1, 0, 300, false, 1},
                                                     {kHot, D(1), 1, 2, 1, 100, true, 1},
                                                     {kHot, D(2), 0, 2, 0, 200, true, 2}})));
  // A count of zero is no licence to collect a chunk an owner names.
  auto remove = [](const ChunkRecord& chunk) -> Status {
    ADD_FAILURE() << "removed " << Str(chunk);
    return OkStatus();
  };
  ASSERT_OK_AND_ASSIGN(std::vector<ChunkRecord> removed,
                       store().CollectGarbageChunks(1LL << 50, 100, remove));
  EXPECT_TRUE(removed.empty());

  EXPECT_EQ(Str(store().RepairReferences(500)), "OK 3");
  EXPECT_EQ(Str(store().ListChunks()),
            Str(Result(std::vector<ChunkRecord>{
                {kCold, D(3), 300, 1, 0}, {kHot, D(1), 100, 2, 0}, {kHot, D(2), 200, 2, 0}})));
  EXPECT_EQ(Str(store().RepairReferences(600)), "OK 0");
  EXPECT_EQ(Str(store().GetOwnerChunks(Owner("f"))),
            Str(Result(std::vector<OwnerChunk>{Hot(C(1)), Hot(C(2)), Cold(C(3))})));
  ExpectCountsExact(store());
  // Dropping after the repair lands exactly on zero.
  ASSERT_OK(store().DropOwnerChunks(Owner("f"), 700));
  ASSERT_OK(store().DropOwnerChunks(Owner("g"), 700));
  EXPECT_EQ(Refs(kHot, C(2)), 0);
  EXPECT_EQ(Refs(kCold, C(3)), 0);
  EXPECT_EQ(Refs(kHot, C(1)), 1);
  ExpectCountsExact(store());
}

TEST_P(MetaStoreTest, FindOwnersWithChunksNamesOwnersByClassAndDigest) {
  ASSERT_OK(store().SetOwnerChunks(Owner("b"), {Hot(C(1)), Hot(C(2))}, 100));
  ASSERT_OK(store().SetOwnerChunks(Owner("a"), {Hot(C(2)), Hot(C(2))}, 100));
  ASSERT_OK(store().SetOwnerChunks(ChunkOwner{"other", "z"}, {Hot(C(2))}, 100));
  ASSERT_OK(store().SetOwnerChunks(Owner("c"), {Cold(C(2))}, 100));  // other class
  Put(Id(1), "t1", "ns", "k1", {C(2)}, 100);                         // an object: not an owner
  EXPECT_EQ(Str(store().FindOwnersWithChunks(kHot, {D(2), D(9)})),
            Str(Result(std::vector<ChunkOwner>{ChunkOwner{"other", "z"}, ChunkOwner{"test", "a"},
                                               ChunkOwner{"test", "b"}})));
  EXPECT_EQ(Str(store().FindOwnersWithChunks(kCold, {D(2)})),
            Str(Result(std::vector<ChunkOwner>{ChunkOwner{"test", "c"}})));
  EXPECT_EQ(Str(store().FindOwnersWithChunks(kHot, {D(9)})), "OK []");
}

TEST_P(MetaStoreTest, OwnerUsageCountsLogicalAndDistinctPhysicalBytesPerClass) {
  ASSERT_OK(store().SetOwnerChunks(Owner("a"), {Hot(C(1)), Hot(C(1)), Cold(C(2))}, 100));
  ASSERT_OK(store().SetOwnerChunks(Owner("b"), {Hot(C(1)), Hot(C(3))}, 100));
  ASSERT_OK(store().SetOwnerChunks(ChunkOwner{"other", "a"}, {Hot(C(4))}, 100));
  Put(Id(1), "t1", "ns", "k1", {C(1)}, 100);  // objects are not counted here
  EXPECT_EQ(Str(store().OwnerUsage("test")),
            Str(Result(std::vector<OwnerUsageRow>{{"test", kCold, 1, 200, 200},
                                                  {"test", kHot, 2, 600, 400}})));
  EXPECT_EQ(Str(store().OwnerUsage("other")),
            Str(Result(std::vector<OwnerUsageRow>{{"other", kHot, 1, 400, 400}})));
  EXPECT_EQ(Str(store().OwnerUsage("none")), "OK []");
  // Object usage is unchanged by owners.
  EXPECT_EQ(Str(store().Usage("t1")),
            Str(Result(std::vector<UsageRow>{{"ns", kHot, 1, 100, 100}})));
}

TEST_P(MetaStoreTest, SnapshotsCarryOwnersAndTheirReferences) {
  Put(Id(1), "t1", "ns", "k1", {C(1), C(2)}, 100);
  ASSERT_OK(store().SetOwnerChunks(Owner("f"), {Hot(C(1)), Cold(C(3)), Hot(C(1))}, 100));
  ASSERT_OK(store().SetOwnerChunks(ChunkOwner{"other", "caf\xc3\xa9"}, {Hot(C(4))}, 100));
  ASSERT_OK(store().SetOwnerChunks(Owner("gone"), {Hot(C(5))}, 100));
  ASSERT_OK(store().DropOwnerChunks(Owner("gone"), 150));

  auto dump = [](MetaStore& from) -> Result<std::string> {
    std::string out;
    ASSIGN_OR_RETURN(SnapshotCounts counts,
                     DumpSnapshot(from, "test", 1000, [&out](std::string_view bytes) {
                       out.append(bytes);
                       return OkStatus();
                     }));
    if (counts.owners != 2) return InternalError("dumped " + std::to_string(counts.owners));
    return out;
  };
  ASSERT_OK_AND_ASSIGN(std::string text, dump(store()));
  EXPECT_EQ(text.rfind("{\"format\":\"cairn-meta-snapshot\",\"version\":3,", 0), 0u) << text;
  EXPECT_NE(text.find("{\"type\":\"owner\",\"kind\":\"test\",\"id\":\"f\",\"chunks\":[[\"hot\","),
            std::string::npos)
      << text;

  std::unique_ptr<MetaStore> restored = OpenFresh();
  ASSERT_TRUE(restored);
  auto text_ptr = std::make_shared<const std::string>(text);
  auto offset = std::make_shared<size_t>(0);
  SnapshotReader reader([text_ptr, offset](char* buffer, size_t capacity) -> Result<size_t> {
    const size_t n = std::min(capacity, text_ptr->size() - *offset);
    std::copy_n(text_ptr->data() + *offset, n, buffer);
    *offset += n;
    return n;
  });
  ASSERT_OK_AND_ASSIGN(SnapshotCounts loaded, restored->ImportSnapshot(reader));
  EXPECT_EQ(loaded.owners, 2u);
  EXPECT_EQ(loaded.objects, 1u);
  EXPECT_EQ(Str(restored->GetOwnerChunks(Owner("f"))),
            Str(Result(std::vector<OwnerChunk>{Hot(C(1)), Cold(C(3)), Hot(C(1))})));
  EXPECT_EQ(Str(restored->GetOwnerChunks(ChunkOwner{"other", "caf\xc3\xa9"})),
            Str(Result(std::vector<OwnerChunk>{Hot(C(4))})));
  EXPECT_EQ(Str(restored->GetOwnerChunks(Owner("gone"))), "OK []");
  ExpectCountsExact(*restored);
  ASSERT_OK_AND_ASSIGN(std::vector<ChunkRecord> chunks, restored->ListChunks());
  EXPECT_EQ(Str(chunks), Str(std::vector<ChunkRecord>{{kCold, D(3), 300, 1, 0},
                                                      {kHot, D(1), 100, 3, 0},
                                                      {kHot, D(2), 200, 1, 0},
                                                      {kHot, D(4), 400, 1, 0},
                                                      {kHot, D(5), 500, 0, 150}}));
  // The restored store dumps the same records, and a second load into it is refused.
  ASSERT_OK_AND_ASSIGN(std::string again, dump(*restored));
  EXPECT_EQ(again.substr(again.find('\n')), text.substr(text.find('\n')));
  SnapshotReader second([](char*, size_t) -> Result<size_t> { return size_t{0}; });
  EXPECT_CODE(restored->ImportSnapshot(second), kFailedPrecondition);
}

TEST_P(MetaStoreTest, ApiKeysCanBeCreatedReadListedAndRevoked) {
  ApiKeyRecord k1 = Key("k1", {"t1", "t2"}, Scope::kWrite);
  ApiKeyRecord k0 = Key("k0", {"*"}, Scope::kAdmin);
  ApiKeyRecord k2 = Key("k2", {}, Scope::kRead);
  k2.revoked = true;
  ASSERT_OK(store().CreateApiKey(k1));
  ASSERT_OK(store().CreateApiKey(k0));
  ASSERT_OK(store().CreateApiKey(k2));
  EXPECT_CODE(store().CreateApiKey(Key("k1", {"t9"}, Scope::kRead)), kAlreadyExists);

  EXPECT_EQ(Str(store().GetApiKey("k1")), "OK " + Str(k1));
  EXPECT_EQ(Str(store().GetApiKey("k2")), "OK " + Str(k2));  // revoked keys are returned too
  EXPECT_CODE(store().GetApiKey("nope"), kNotFound);
  EXPECT_EQ(Str(store().ListApiKeys()), Str(Result(std::vector<ApiKeyRecord>{k0, k1, k2})));

  ASSERT_OK(store().RevokeApiKey("k1"));
  k1.revoked = true;
  EXPECT_EQ(Str(store().GetApiKey("k1")), "OK " + Str(k1));
  EXPECT_OK(store().RevokeApiKey("k1"));  // idempotent
  EXPECT_CODE(store().RevokeApiKey("nope"), kNotFound);
}

TEST_P(MetaStoreTest, ApiKeyTenantsMustBeUtf8) {
  EXPECT_CODE(store().CreateApiKey(Key("k", {"t\xff"}, Scope::kRead)), kInvalidArgument);
  EXPECT_CODE(store().GetApiKey("k"), kNotFound);
}

// ---- user metadata --------------------------------------------------------------------

TEST_P(MetaStoreTest, UserMetadataRoundTripsAndMustBeUtf8) {
  std::map<std::string, std::string> meta = {{"plain", "value"},
                                             {"quote\"back\\slash", "new\nline\ttab"},
                                             {"ünïcödé", "日本語 😀"},
                                             {"empty", ""},
                                             {"", "empty name"}};
  ObjectRecord object = NewObject(Id(1), "t1", "ns", "k");
  object.user_metadata = meta;
  ASSERT_OK(store().PutCommitted(object, {}, 100));
  ASSERT_OK_AND_ASSIGN(ObjectRecord fetched, store().GetObject("t1", Id(1)));
  EXPECT_EQ(fetched.user_metadata, meta);

  ObjectRecord bad = NewObject(Id(2), "t1", "ns", "bad");
  bad.user_metadata = {{"x", "caf\xe9"}};
  EXPECT_CODE(store().PutCommitted(bad, {}, 100), kInvalidArgument);
  EXPECT_CODE(store().BeginUpload(bad), kInvalidArgument);
  ASSERT_OK(store().BeginUpload(NewObject(Id(3), "t1", "ns", "k3")));
  EXPECT_CODE(store().CommitUpload(Id(3), bad, 200), kInvalidArgument);
  EXPECT_CODE(store().GetObject("t1", Id(2)), kNotFound);
  EXPECT_OK(store().CommitUpload(Id(3), FinalFields(0, 1, meta), 300));
  ASSERT_OK_AND_ASSIGN(fetched, store().GetObject("t1", Id(3)));
  EXPECT_EQ(fetched.user_metadata, meta);
}

// ---- global namespace names ----------------------------------------------------------------

TEST_P(MetaStoreTest, NamespaceTenantsAreThoseWithAnExplicitNamespace) {
  EXPECT_EQ(Str(store().NamespaceTenants()), "OK []");
  ASSERT_OK(store().CreateNamespace({"zeta", "empty-bucket", 10}));
  ASSERT_OK(store().CreateNamespace({"alpha", "one", 11}));
  ASSERT_OK(store().CreateNamespace({"alpha", "two", 12}));
  Put(Id(1), "objects-only", "implied", "k", {}, 20);  // holds objects, no namespace row
  ASSERT_OK_AND_ASSIGN(auto tenants, store().NamespaceTenants());
  EXPECT_EQ(tenants, (std::vector<std::string>{"alpha", "zeta"}));
  ASSERT_OK(store().DeleteNamespace("zeta", "empty-bucket"));
  ASSERT_OK_AND_ASSIGN(tenants, store().NamespaceTenants());
  EXPECT_EQ(tenants, std::vector<std::string>{"alpha"});
}

TEST_P(MetaStoreTest, ExplicitNamespaceNamesAreGlobal) {
  EXPECT_EQ(Str(store().NamespaceOwners("shared")), "OK []");
  ASSERT_OK(store().CreateNamespace({"t1", "shared", 10}));
  EXPECT_CODE(store().CreateNamespace({"t2", "shared", 11}), kPermissionDenied);
  EXPECT_CODE(store().CreateNamespace({"t1", "shared", 12}), kAlreadyExists);
  EXPECT_CODE(store().GetNamespace("t2", "shared"), kNotFound);  // nothing made for t2
  ASSERT_OK_AND_ASSIGN(auto owners, store().NamespaceOwners("shared"));
  EXPECT_EQ(owners, std::vector<std::string>{"t1"});
  // Objects alone take no name: t2 may hold objects under it, and t3 may still not create.
  Put(Id(1), "t2", "implied", "k", {}, 20);
  EXPECT_EQ(Str(store().NamespaceOwners("implied")), "OK []");
  ASSERT_OK(store().CreateNamespace({"t3", "implied", 21}));
  ASSERT_OK_AND_ASSIGN(owners, store().NamespaceOwners("implied"));
  EXPECT_EQ(owners, std::vector<std::string>{"t3"});
  // A setting on t2's implied namespace makes its row: two owners, in byte order.
  ASSERT_OK(store().SetNamespaceSetting("t2", "implied", "acl", "private", 22));
  ASSERT_OK_AND_ASSIGN(owners, store().NamespaceOwners("implied"));
  EXPECT_EQ(owners, (std::vector<std::string>{"t2", "t3"}));
  // Deleting the owner's namespace frees the name.
  ASSERT_OK(store().DeleteNamespace("t1", "shared"));
  ASSERT_OK(store().CreateNamespace({"t2", "shared", 30}));
  ASSERT_OK_AND_ASSIGN(owners, store().NamespaceOwners("shared"));
  EXPECT_EQ(owners, std::vector<std::string>{"t2"});
}

// ---- namespace settings -----------------------------------------------------------------

using Settings = std::map<std::string, std::string>;

TEST_P(MetaStoreTest, NamespaceSettingsAreEmptyUntilSet) {
  EXPECT_EQ(Str(store().GetNamespaceSettings("t1", "nowhere")), "OK []");
  ASSERT_OK(store().CreateNamespace({"t1", "explicit", 10}));
  Put(Id(1), "t1", "implied", "k", {}, 20);
  for (const char* name : {"nowhere", "explicit", "implied"}) {
    ASSERT_OK_AND_ASSIGN(Settings settings, store().GetNamespaceSettings("t1", name));
    EXPECT_TRUE(settings.empty()) << name;
  }
  // Reading creates nothing.
  EXPECT_CODE(store().GetNamespace("t1", "nowhere"), kNotFound);
}

TEST_P(MetaStoreTest, NamespaceSettingsCanBeSetOverwrittenAndRemoved) {
  ASSERT_OK(store().CreateNamespace({"t1", "b", 10}));
  const std::string policy =
      "{\"Statement\": [{\"Effect\": \"Allow\",\n \"Sid\": \"caf\xc3\xa9 \xf0\x9f\x98\x80\"}]}";
  const std::string largest(kMaxNamespaceSettingValueBytes, 'x');
  ASSERT_OK(store().SetNamespaceSetting("t1", "b", "acl", "private", 20));
  ASSERT_OK(store().SetNamespaceSetting("t1", "b", "policy", policy, 21));
  ASSERT_OK(store().SetNamespaceSetting("t1", "b", "cors", largest, 22));
  ASSERT_OK(store().SetNamespaceSetting("t1", "b", "tags", "", 23));  // empty is a value
  const std::string longest_name(kMaxNamespaceSettingNameBytes, 'z');
  ASSERT_OK(store().SetNamespaceSetting("t1", "b", longest_name, "0-9-a", 24));
  EXPECT_EQ(store().GetNamespaceSettings("t1", "b").value(), (Settings{{"acl", "private"},
                                                                       {"cors", largest},
                                                                       {"policy", policy},
                                                                       {"tags", ""},
                                                                       {longest_name, "0-9-a"}}));

  ASSERT_OK(store().SetNamespaceSetting("t1", "b", "acl", "public-read", 30));  // overwrite
  ASSERT_OK(store().SetNamespaceSetting("t1", "b", "cors", std::nullopt, 31));  // remove
  ASSERT_OK(store().SetNamespaceSetting("t1", "b", "cors", std::nullopt, 32));  // again: no-op
  ASSERT_OK(store().SetNamespaceSetting("t1", "b", "never-set", std::nullopt, 33));
  ASSERT_OK(store().SetNamespaceSetting("t1", "b", longest_name, std::nullopt, 34));
  EXPECT_EQ(store().GetNamespaceSettings("t1", "b").value(),
            (Settings{{"acl", "public-read"}, {"policy", policy}, {"tags", ""}}));
  // Settings leave the namespace itself alone.
  EXPECT_EQ(store().GetNamespace("t1", "b").value(), (NamespaceRecord{"t1", "b", 10}));
}

// A bucket that exists only through its objects gets a namespace row with its first
// setting, and so does a namespace that did not exist: then DeleteNamespace finds the row
// and removes the settings with it.
TEST_P(MetaStoreTest, SettingANamespaceSettingMakesTheNamespaceExplicit) {
  Put(Id(1), "t1", "implied", "k", {}, 100);
  EXPECT_EQ(store().GetNamespace("t1", "implied")->created_at_ms, 100);
  ASSERT_OK(store().SetNamespaceSetting("t1", "implied", "acl", "private", 500));
  EXPECT_EQ(store().GetNamespace("t1", "implied").value(), (NamespaceRecord{"t1", "implied", 500}));
  ASSERT_OK(store().SetNamespaceSetting("t1", "fresh", "tags", "<Tagging/>", 600));
  EXPECT_EQ(store().GetNamespace("t1", "fresh").value(), (NamespaceRecord{"t1", "fresh", 600}));
  // A removal makes the namespace explicit too (every call does).
  ASSERT_OK(store().SetNamespaceSetting("t1", "bare", "acl", std::nullopt, 700));
  EXPECT_EQ(store().GetNamespace("t1", "bare").value(), (NamespaceRecord{"t1", "bare", 700}));
  EXPECT_EQ(Str(store().GetNamespaceSettings("t1", "bare")), "OK []");
  ASSERT_OK_AND_ASSIGN(std::vector<NamespaceRecord> listed, store().ListNamespaces("t1"));
  EXPECT_EQ(listed, (std::vector<NamespaceRecord>{
                        {"t1", "bare", 700}, {"t1", "fresh", 600}, {"t1", "implied", 500}}));
  // The row outlives the objects, and later settings do not move its creation time.
  ASSERT_OK(store().SetNamespaceSetting("t1", "implied", "acl", "public-read", 800));
  ASSERT_OK(store().DeleteObject("t1", Id(1), 900));
  EXPECT_EQ(store().GetNamespace("t1", "implied").value(), (NamespaceRecord{"t1", "implied", 500}));
  ASSERT_OK(store().DeleteNamespace("t1", "implied"));
  EXPECT_CODE(store().GetNamespace("t1", "implied"), kNotFound);
  EXPECT_EQ(Str(store().GetNamespaceSettings("t1", "implied")), "OK []");
}

TEST_P(MetaStoreTest, DeleteNamespaceRemovesItsSettings) {
  ASSERT_OK(store().CreateNamespace({"t1", "b", 10}));
  ASSERT_OK(store().SetNamespaceSetting("t1", "b", "acl", "private", 20));
  ASSERT_OK(store().SetNamespaceSetting("t1", "b", "policy", "{}", 20));
  Put(Id(1), "t1", "b", "k", {}, 30);
  // Refused while it holds objects: the settings stay.
  EXPECT_CODE(store().DeleteNamespace("t1", "b"), kFailedPrecondition);
  EXPECT_EQ(store().GetNamespaceSettings("t1", "b")->size(), 2u);
  ASSERT_OK(store().DeleteObject("t1", Id(1), 40));
  ASSERT_OK(store().DeleteNamespace("t1", "b"));
  EXPECT_EQ(Str(store().GetNamespaceSettings("t1", "b")), "OK []");
  EXPECT_CODE(store().DeleteNamespace("t1", "b"), kNotFound);
  // Re-created under the same name, it starts with none.
  ASSERT_OK(store().CreateNamespace({"t1", "b", 50}));
  EXPECT_EQ(Str(store().GetNamespaceSettings("t1", "b")), "OK []");
  // And a namespace made by a setting goes the same way.
  ASSERT_OK(store().SetNamespaceSetting("t1", "c", "acl", "private", 60));
  ASSERT_OK(store().DeleteNamespace("t1", "c"));
  EXPECT_EQ(Str(store().GetNamespaceSettings("t1", "c")), "OK []");
  EXPECT_CODE(store().GetNamespace("t1", "c"), kNotFound);
}

TEST_P(MetaStoreTest, NamespaceSettingsAreIsolatedByTenantAndNamespace) {
  ASSERT_OK(store().SetNamespaceSetting("t1", "a", "acl", "t1/a", 1));
  ASSERT_OK(store().SetNamespaceSetting("t1", "b", "acl", "t1/b", 1));
  ASSERT_OK(store().SetNamespaceSetting("t2", "a", "acl", "t2/a", 1));
  ASSERT_OK(store().SetNamespaceSetting("t1", "ab", "acl", "t1/ab", 1));  // a prefix of no one
  ASSERT_OK(store().SetNamespaceSetting("t1", "a", "policy", "t1/a policy", 1));
  EXPECT_EQ(store().GetNamespaceSettings("t1", "a").value(),
            (Settings{{"acl", "t1/a"}, {"policy", "t1/a policy"}}));
  EXPECT_EQ(store().GetNamespaceSettings("t1", "b").value(), (Settings{{"acl", "t1/b"}}));
  EXPECT_EQ(store().GetNamespaceSettings("t2", "a").value(), (Settings{{"acl", "t2/a"}}));
  EXPECT_EQ(Str(store().GetNamespaceSettings("t2", "b")), "OK []");
  EXPECT_CODE(store().GetNamespace("t2", "b"), kNotFound);

  ASSERT_OK(store().SetNamespaceSetting("t1", "a", "acl", std::nullopt, 2));
  ASSERT_OK(store().DeleteNamespace("t2", "a"));
  EXPECT_EQ(store().GetNamespaceSettings("t1", "a").value(), (Settings{{"policy", "t1/a policy"}}));
  EXPECT_EQ(store().GetNamespaceSettings("t1", "b").value(), (Settings{{"acl", "t1/b"}}));
  EXPECT_EQ(store().GetNamespaceSettings("t1", "ab").value(), (Settings{{"acl", "t1/ab"}}));
  EXPECT_EQ(Str(store().GetNamespaceSettings("t2", "a")), "OK []");
}

TEST_P(MetaStoreTest, InvalidNamespaceSettingsAreRefusedAndChangeNothing) {
  ASSERT_OK(store().CreateNamespace({"t1", "b", 10}));
  ASSERT_OK(store().SetNamespaceSetting("t1", "b", "acl", "private", 20));
  struct Case {
    std::string tenant, name, setting;
    std::optional<std::string> value;
    std::string named;  // what the message must mention
  };
  const std::string nul("a\0b", 3);
  const std::vector<Case> cases = {
      {"t1", "b", "", "x", "setting name"},
      {"t1", "b", std::string(kMaxNamespaceSettingNameBytes + 1, 'a'), "x", "setting name"},
      {"t1", "b", "Policy", "x", "'Policy'"},
      {"t1", "b", "a_b", "x", "'a_b'"},
      {"t1", "b", "a.b", std::nullopt, "'a.b'"},
      {"t1", "b", "a b", "x", "'a b'"},
      {"t1", "b", "acl/x", "x", "'acl/x'"},
      {"t1", "b", "\xc3\xa9", "x", "setting name"},
      {"t1", "b", nul, "x", "setting name"},
      {"t1", "b", "acl", std::string(kMaxNamespaceSettingValueBytes + 1, 'x'), "'acl'"},
      {"t1", "b", "acl", "caf\xe9", "'acl'"},
      {"t1", "b", "acl", nul, "'acl'"},
      {"t\xff", "b", "acl", "x", "tenant"},
      {"t1", nul, "acl", "x", "namespace"},
      {"t1", "new\xff", "acl", "x", "namespace"},
      {"t1", "new", "BAD", "x", "'BAD'"},  // would create "new"
  };
  for (const Case& c : cases) {
    const Status status = store().SetNamespaceSetting(c.tenant, c.name, c.setting, c.value, 30);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << Quote(c.setting);
    EXPECT_NE(status.message().find(c.named), std::string::npos)
        << Quote(c.setting) << ": " << status.ToString();
  }
  EXPECT_EQ(store().GetNamespaceSettings("t1", "b").value(), (Settings{{"acl", "private"}}));
  EXPECT_EQ(store().GetNamespace("t1", "b").value(), (NamespaceRecord{"t1", "b", 10}));
  EXPECT_CODE(store().GetNamespace("t1", "new"), kNotFound);
  EXPECT_EQ(Str(store().ListNamespaces("t1")),
            Str(Result(std::vector<NamespaceRecord>{{"t1", "b", 10}})));
  // Names no setting can have are simply not found.
  EXPECT_EQ(Str(store().GetNamespaceSettings("t\xff", "b")), "OK []");
  EXPECT_EQ(Str(store().GetNamespaceSettings("t1", nul)), "OK []");
}

// Several writers (a second store on the same database for the SQL engines, as another
// node or process would be) set the same setting at once, and their own ones, on a
// namespace none of them created: every call succeeds, the namespace gets one row, and what
// stays is a value some writer set last.
TEST_P(MetaStoreTest, ConcurrentSettersAllSucceedAndTheLastValueWins) {
  std::unique_ptr<MetaStore> second;
  if (IsSqlite() || IsPostgres()) {
    ASSERT_OK_AND_ASSIGN(second,
                         OpenMetaStore(IsSqlite() ? "sqlite://" + db_path_ : postgres_->url()));
  }
  constexpr int kThreads = 8;
  constexpr int kRounds = 15;
  std::vector<std::thread> threads;
  std::vector<Status> failures[kThreads];
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      MetaStore& node = (second && t % 2 == 1) ? *second : store();
      for (int round = 0; round < kRounds; ++round) {
        const std::string value = "t" + std::to_string(t) + "-r" + std::to_string(round);
        for (const std::string& setting : {std::string("policy"), "own-" + std::to_string(t)}) {
          Status status = node.SetNamespaceSetting("t1", "race", setting, value, 100 + t);
          if (!status.ok()) failures[t].push_back(status);
        }
        if (round % 5 == 4) {
          Status status = node.SetNamespaceSetting("t1", "race", "acl", std::nullopt, 100 + t);
          if (!status.ok()) failures[t].push_back(status);
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::set<std::string> last_values;
  Settings expected;
  for (int t = 0; t < kThreads; ++t) {
    for (const Status& failure : failures[t])
      ADD_FAILURE() << "thread " << t << ": " << failure.ToString();
    const std::string last = "t" + std::to_string(t) + "-r" + std::to_string(kRounds - 1);
    last_values.insert(last);
    expected["own-" + std::to_string(t)] = last;
  }
  for (MetaStore* node : {&store(), second.get()}) {
    if (node == nullptr) continue;
    ASSERT_OK_AND_ASSIGN(Settings settings, node->GetNamespaceSettings("t1", "race"));
    ASSERT_EQ(settings.count("policy"), 1u);
    EXPECT_EQ(last_values.count(settings["policy"]), 1u) << settings["policy"];
    expected["policy"] = settings["policy"];
    EXPECT_EQ(settings, expected);
    ASSERT_OK_AND_ASSIGN(std::vector<NamespaceRecord> listed, node->ListNamespaces("t1"));
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed[0].name, "race");
    EXPECT_GE(listed[0].created_at_ms, 100);
    EXPECT_LT(listed[0].created_at_ms, 100 + kThreads);
  }
}

// DeleteNamespace racing SetNamespaceSetting (on another node for the SQL engines) never
// leaves a setting behind without its namespace: either the delete came second (namespace
// and settings gone) or the set did (the namespace is back, with that one setting).
TEST_P(MetaStoreTest, DeleteNamespaceRacingASetterLeavesNoSettingBehind) {
  std::unique_ptr<MetaStore> second;
  if (IsSqlite() || IsPostgres()) {
    ASSERT_OK_AND_ASSIGN(second,
                         OpenMetaStore(IsSqlite() ? "sqlite://" + db_path_ : postgres_->url()));
  }
  MetaStore& other = second ? *second : store();
  int deleted_last = 0, set_last = 0;
  for (int round = 0; round < 30; ++round) {
    const std::string name = "b" + std::to_string(round);
    ASSERT_OK(store().CreateNamespace({"t1", name, 1}));
    ASSERT_OK(store().SetNamespaceSetting("t1", name, "acl", "private", 2));
    ASSERT_OK(store().SetNamespaceSetting("t1", name, "policy", "{}", 2));
    Status deleted, set;
    std::atomic<int> ready{0};
    auto wait_for_both = [&ready] {
      ++ready;
      while (ready < 2) std::this_thread::yield();
    };
    std::thread deleter([&] {
      wait_for_both();
      deleted = store().DeleteNamespace("t1", name);
    });
    std::thread setter([&] {
      wait_for_both();
      set = other.SetNamespaceSetting("t1", name, "tags", "new", 3);
    });
    deleter.join();
    setter.join();
    ASSERT_OK(deleted);
    ASSERT_OK(set);
    Result<NamespaceRecord> after = store().GetNamespace("t1", name);
    ASSERT_OK_AND_ASSIGN(Settings settings, store().GetNamespaceSettings("t1", name));
    if (after.ok()) {
      ++set_last;
      EXPECT_EQ(after.value(), (NamespaceRecord{"t1", name, 3}));
      EXPECT_EQ(settings, (Settings{{"tags", "new"}})) << "round " << round;
    } else {
      ++deleted_last;
      EXPECT_EQ(after.status().code(), StatusCode::kNotFound) << after.status().ToString();
      EXPECT_TRUE(settings.empty()) << "round " << round << ": " << settings.size();
    }
  }
  if (IsPostgres()) {  // and not a row left over anywhere
    EXPECT_EQ(
        RawPostgres(postgres_->url())
            .Query("SELECT count(*) FROM namespace_settings AS s WHERE NOT EXISTS (SELECT 1 "
                   "FROM namespaces AS n WHERE n.tenant = s.tenant AND n.name = s.namespace)"),
        "0");
  }
  if (IsSqlite()) {
    EXPECT_EQ(RawSqlite(db_path_).Query(
                  "SELECT count(*) FROM namespace_settings AS s WHERE NOT EXISTS (SELECT 1 "
                  "FROM namespaces AS n WHERE n.tenant = s.tenant AND n.name = s.namespace)"),
              "0");
  }
  std::cerr << "delete came second " << deleted_last << " times, the set " << set_last
            << " times\n";
}

// ---- concurrency ----------------------------------------------------------------------

// Many threads (more than any engine keeps reader connections for) each read back what
// they just wrote, and what they deleted: an acknowledged write is visible to the next
// read on any thread, whichever connection serves it.
TEST_P(MetaStoreTest, EveryThreadReadsItsAcknowledgedWrites) {
  constexpr int kThreads = 40;
  constexpr int kRounds = 5;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        const int n = 1 + t * kRounds + round;
        const std::string key = "k" + std::to_string(t);
        ObjectRecord object = NewObject(Id(n), "t1", "ns", key);
        object.size_bytes = 1;
        object.inline_data = std::string(1, static_cast<char>('a' + round));
        Result<CommitResult> put = store().PutCommitted(object, {}, 100 + round);
        ASSERT_TRUE(put.ok()) << put.status().ToString();
        Result<ObjectRecord> read = store().GetObjectByKey("t1", "ns", key);
        ASSERT_TRUE(read.ok()) << read.status().ToString();
        EXPECT_EQ(read->id, Id(n));
        EXPECT_EQ(read->inline_data, object.inline_data);
      }
      Result<ObjectRecord> deleted = store().DeleteObject("t1", Id(t * kRounds + kRounds), 200);
      ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
      EXPECT_CODE(store().GetObjectByKey("t1", "ns", "k" + std::to_string(t)), kNotFound);
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_TRUE(Keys({"t1", "ns", "", "", 1000}).empty());
}

TEST_P(MetaStoreTest, ConcurrentWritersAndReadersStayConsistent) {
  constexpr int kWriters = 4;
  constexpr int kPerWriter = 30;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < kPerWriter; ++i) {
        int n = 1 + w * kPerWriter + i;
        ObjectRecord object = NewObject(Id(n), "t1", "ns", "k" + std::to_string(n));
        EXPECT_OK(store().PutCommitted(object, {C(1)}, 100));
        // Everyone also overwrites one shared key: exactly one survives.
        ObjectRecord shared = NewObject(Id(1000 + n), "t1", "ns", "shared");
        EXPECT_OK(store().PutCommitted(shared, {C(2)}, 100));
      }
    });
  }
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&] {
      while (!stop) {
        Result<ListPage> page = store().ListObjects({"t1", "ns", "", "", 1000});
        EXPECT_TRUE(page.ok()) << page.status().ToString();
        EXPECT_OK(store().Usage("t1"));
        EXPECT_CODE(store().GetObjectByKey("t1", "ns", "missing"), kNotFound);
      }
    });
  }
  for (int w = 0; w < kWriters; ++w) threads[w].join();
  stop = true;
  for (size_t t = kWriters; t < threads.size(); ++t) threads[t].join();

  EXPECT_EQ(Refs(kHot, C(1)), kWriters * kPerWriter);
  EXPECT_EQ(Refs(kHot, C(2)), 1);
  EXPECT_EQ(Keys({"t1", "ns", "", "", 10000}).size(), kWriters * kPerWriter + 1u);
  EXPECT_EQ(Str(store().CountObjects()),
            Str(Result(std::vector<ObjectCountRow>{
                {"t1", "ns", ObjectState::kCommitted, kWriters * kPerWriter + 1},
                {"t1", "ns", ObjectState::kDeleting, kWriters * kPerWriter - 1}})));
}

INSTANTIATE_TEST_SUITE_P(Engines, MetaStoreTest, ::testing::Values("memory", "sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// ---- engine-independent pieces --------------------------------------------------------

TEST(ScopeTest, NamesRoundTrip) {
  for (Scope scope : {Scope::kRead, Scope::kWrite, Scope::kAdmin}) {
    Result<Scope> parsed = ParseScope(ScopeName(scope));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, scope);
  }
  EXPECT_EQ(ScopeName(Scope::kRead), "read");
  EXPECT_EQ(ScopeName(Scope::kWrite), "write");
  EXPECT_EQ(ScopeName(Scope::kAdmin), "admin");
  EXPECT_CODE(ParseScope("READ"), kInvalidArgument);
  EXPECT_CODE(ParseScope(""), kInvalidArgument);
}

TEST(OpenMetaStoreTest, RejectsUnknownAndIncompleteUrls) {
  EXPECT_OK(OpenMetaStore("memory:"));
  EXPECT_CODE(OpenMetaStore("memory"), kInvalidArgument);
  EXPECT_CODE(OpenMetaStore("mysql://db"), kInvalidArgument);
  EXPECT_CODE(OpenMetaStore(""), kInvalidArgument);
  EXPECT_CODE(OpenMetaStore("sqlite://"), kInvalidArgument);
}

// Nothing listens on port 1: the failure is kUnavailable, names host:port/db, and never
// shows the password.
TEST(OpenMetaStoreTest, UnreachablePostgresIsUnavailableAndHidesThePassword) {
  Result<std::unique_ptr<MetaStore>> opened =
      OpenMetaStore("postgres://cairn:s3cr3t-pw@127.0.0.1:1/meta?connect_timeout=5");
  EXPECT_CODE(opened, kUnavailable);
  EXPECT_NE(opened.status().message().find("127.0.0.1:1/meta"), std::string::npos)
      << opened.status().ToString();
  EXPECT_EQ(opened.status().message().find("s3cr3t-pw"), std::string::npos)
      << opened.status().ToString();

  opened = OpenMetaStore("postgres://cairn:s3cr3t%zz@127.0.0.1:1/meta");
  EXPECT_CODE(opened, kInvalidArgument);
  EXPECT_EQ(opened.status().message().find("s3cr3t"), std::string::npos)
      << opened.status().ToString();
  EXPECT_EQ(RedactPostgresUrl("postgres://u:pw@h:5/db?x=1"), "postgres://u:***@h:5/db?x=1");
  EXPECT_EQ(RedactPostgresUrl("postgres://u@h/db"), "postgres://u@h/db");
  EXPECT_EQ(RedactMetaUrl("postgres://u:pw@h:5/db"), "postgres://u:***@h:5/db");
  EXPECT_EQ(RedactMetaUrl("sqlite:///d/meta.db"), "sqlite:///d/meta.db");
}

// Utf8Ceiling(b) is the least storable string >= b: for every storable k,
// k >= b <=> k >= Utf8Ceiling(b). Checked against every storable string of up to two
// characters drawn from boundary code points, for bounds of up to three interesting bytes.
TEST(Utf8CeilingTest, SelectsExactlyTheStorableStringsAboveTheBound) {
  const std::vector<std::string> chars = {"\x01",
                                          "a",
                                          "\x7f",
                                          "\xc2\x80",
                                          "\xdf\xbf",
                                          "\xe0\xa0\x80",
                                          "\xe6\x97\xa5",
                                          "\xed\x9f\xbf",
                                          "\xee\x80\x80",
                                          "\xef\xbf\xbf",
                                          "\xf0\x90\x80\x80",
                                          "\xf0\x9f\x98\x80",
                                          "\xf4\x8f\xbf\xbf"};
  std::vector<std::string> storable = {""};
  for (const std::string& a : chars) {
    storable.push_back(a);
    for (const std::string& b : chars) storable.push_back(a + b);
  }
  const std::vector<unsigned char> bytes = {0x00, 0x01, 0x61, 0x7f, 0x80, 0xbf, 0xc0, 0xc1,
                                            0xc2, 0xdf, 0xe0, 0xe6, 0xed, 0xef, 0xf0, 0xf4,
                                            0xf5, 0xff, 0x97, 0x9f, 0xa0, 0x8f, 0x90};
  std::vector<std::string> bounds = {""};
  for (unsigned char x : bytes) {
    bounds.push_back(std::string(1, static_cast<char>(x)));
    for (unsigned char y : bytes) {
      bounds.push_back(std::string{static_cast<char>(x), static_cast<char>(y)});
      for (unsigned char z : {0x00, 0x61, 0x80, 0xa5, 0xbf, 0xff}) {
        bounds.push_back(
            std::string{static_cast<char>(x), static_cast<char>(y), static_cast<char>(z)});
      }
    }
  }
  for (const std::string& bound : bounds) {
    std::optional<std::string> ceiling = internal::Utf8Ceiling(bound);
    if (ceiling) {
      ASSERT_TRUE(IsValidUtf8(*ceiling) && ceiling->find('\0') == std::string::npos)
          << Quote(bound) << " -> " << Quote(*ceiling);
      ASSERT_GE(*ceiling, bound) << Quote(bound);
    }
    for (const std::string& key : storable) {
      const bool above = key >= bound;
      const bool above_ceiling = ceiling.has_value() && key >= *ceiling;
      ASSERT_EQ(above, above_ceiling)
          << "bound " << Quote(bound) << " ceiling " << (ceiling ? Quote(*ceiling) : "none")
          << " key " << Quote(key);
    }
  }
}

TEST(OpenMetaStoreTest, AcceptsRelativeSqlitePaths) {
  TempDir dir;
  fs::path relative = fs::relative(dir.path() / "rel.db", fs::current_path());
  ASSERT_TRUE(relative.is_relative());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store,
                       OpenMetaStore("sqlite://" + relative.string()));
  EXPECT_OK(store->Ping());
  EXPECT_TRUE(fs::exists(dir.path() / "rel.db"));
}

// ---- SQLite-specific ------------------------------------------------------------------

class SqliteTest : public ::testing::Test {
 protected:
  std::string Path() const { return (dir_.path() / "meta.db").string(); }
  Result<std::unique_ptr<MetaStore>> Open(const SqliteMetaStoreOptions& options = {}) {
    return OpenSqliteMetaStore(Path(), options);
  }
  TempDir dir_;
};

TEST_F(SqliteTest, DataSurvivesReopen) {
  std::string before;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
    ObjectRecord object = NewObject(Id(1), "t1", "ns", "k");
    object.user_metadata = {{"a", "b"}};
    ASSERT_OK(store->PutCommitted(object, {C(1), C(2)}, 100));
    ObjectRecord small = NewObject(Id(2), "t1", "ns", "small");
    small.inline_data = "abc";
    ASSERT_OK(store->PutCommitted(small, {}, 100));
    ASSERT_OK(store->BeginUpload(NewObject(Id(3), "t1", "ns", "w")));
    ASSERT_OK(store->AddChunk(Id(3), 0, C(3), 100));
    ASSERT_OK(store->CreateApiKey(Key("k1", {"t1"}, Scope::kWrite)));
    before = Str(store->GetObject("t1", Id(1))) + Str(store->GetObject("t1", Id(2))) +
             Str(store->GetChunks(Id(1))) + Str(store->GetChunks(Id(3))) +
             Str(store->ListChunks()) + Str(store->CountObjects()) + Str(store->ListApiKeys());
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
  std::string after = Str(store->GetObject("t1", Id(1))) + Str(store->GetObject("t1", Id(2))) +
                      Str(store->GetChunks(Id(1))) + Str(store->GetChunks(Id(3))) +
                      Str(store->ListChunks()) + Str(store->CountObjects()) +
                      Str(store->ListApiKeys());
  EXPECT_EQ(after, before);
  // The upload in progress can continue after the restart.
  EXPECT_OK(store->AddChunk(Id(3), 1, C(4), 200));
}

TEST_F(SqliteTest, MigrationsAreIdempotentAndConfigureTheDatabase) {
  { ASSERT_OK(Open()); }
  { ASSERT_OK(Open()); }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
  // A second store on the same file at the same time is fine too (another process).
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> second, Open());
  ASSERT_OK(store->PutCommitted(NewObject(Id(1), "t1", "ns", "k"), {}, 1));
  EXPECT_OK(second->GetObject("t1", Id(1)));

  RawSqlite raw(Path());
  EXPECT_EQ(raw.Query("PRAGMA user_version"), std::to_string(SqliteSchemaVersion()));
  EXPECT_GE(SqliteSchemaVersion(), 1);
  EXPECT_EQ(raw.Query("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.Query("PRAGMA page_size"), "2048");
  for (const char* table :
       {"objects", "object_chunks", "chunks", "api_keys", "namespaces", "namespace_settings"}) {
    EXPECT_EQ(raw.Query("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                        {RawSqlite::Text(table)}),
              "1")
        << table;
  }
}

// A database made with another page size (every one before 2 KiB pages were chosen) keeps
// it: the engine opens and writes it as before.
TEST_F(SqliteTest, ADatabaseOfAnotherPageSizeKeepsItAndWorks) {
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(Path().c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; "
                           "CREATE TABLE made_before (a INTEGER)",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
    ASSERT_OK(store->PutCommitted(NewObject(Id(1), "t1", "ns", "k"), {C(1)}, 1));
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
  EXPECT_OK(store->GetObject("t1", Id(1)));
  RawSqlite raw(Path());
  EXPECT_EQ(raw.Query("PRAGMA page_size"), "4096");
  EXPECT_EQ(raw.Query("PRAGMA integrity_check"), "ok");
}

// What schema versions 9 and 10 added (the filesystem volume, its sessions, orphans,
// change feed and locks), for the upgrade tests.
// Takes a database back to schema version 10: no usage counters.
void DropUsageCounters(RawSqlite& raw) {
  for (const char* trigger :
       {"usage_counters_insert", "usage_counters_delete", "usage_counters_update"}) {
    raw.Exec(std::string("DROP TRIGGER ") + trigger);
  }
  raw.Exec("DROP TABLE usage_counters");
}

void DropFileTreeTables(RawSqlite& raw) {
  DropUsageCounters(raw);  // version 11
  for (const char* table : {"fs_locks", "fs_changes", "fs_orphans", "fs_sessions", "fs_volume",
                            "fs_inodes", "fs_dentries", "fs_xattrs"}) {
    raw.Exec(std::string("DROP TABLE ") + table);
  }
}

// A version 10 database gains its usage counters at open, counted from the rows it holds:
// COMMITTED objects only, inline bytes apart; later changes keep them equal to a recount.
TEST_F(SqliteTest, UpgradesAVersion10DatabaseWithUsageCountersFromItsRows) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
    ObjectRecord large = NewObject(Id(1), "t1", "ns", "a");
    large.size_bytes = 300;
    ASSERT_OK(store->PutCommitted(large, {C(1), C(2)}, 100));
    ObjectRecord small = NewObject(Id(2), "t1", "ns", "b");
    small.inline_data = "tiny";
    small.size_bytes = 4;
    ASSERT_OK(store->PutCommitted(small, {}, 110));
    ObjectRecord gone = NewObject(Id(3), "t1", "gone", "c");
    gone.size_bytes = 300;
    ASSERT_OK(store->PutCommitted(gone, {C(3)}, 120));
    ASSERT_OK(store->DeleteObject("t1", Id(3), 130));
  }
  {
    RawSqlite raw(Path());
    DropUsageCounters(raw);
    raw.Exec("ALTER TABLE fs_sessions DROP COLUMN seen_seq");  // version 13
    raw.Exec("ALTER TABLE fs_orphans DROP COLUMN since_seq");
    raw.Exec("PRAGMA user_version = 10");
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
  EXPECT_EQ(Str(store->CheckUsageCounters()), "OK []");
  RawSqlite raw(Path());
  EXPECT_EQ(raw.Query("SELECT objects || ' ' || inline_bytes || ' ' || first_created_ms "
                      "FROM usage_counters"),
            "2 4 100");
  ObjectRecord later = NewObject(Id(4), "t1", "later", "d", StorageClass::kHot, 200);
  later.size_bytes = 400;
  ASSERT_OK(store->PutCommitted(later, {C(4)}, 200));
  ASSERT_OK(store->DeleteObject("t1", Id(2), 210));
  EXPECT_EQ(Str(store->CheckUsageCounters()), "OK []");
  EXPECT_EQ(Str(store->ListNamespaces("t1")),
            Str(Result<std::vector<NamespaceRecord>>(
                std::vector<NamespaceRecord>{{"t1", "later", 200}, {"t1", "ns", 100}})));
  // A group that empties is dropped; the namespace no longer exists.
  ASSERT_OK(store->DeleteObject("t1", Id(4), 220));
  EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM usage_counters WHERE namespace = 'later'"), "0");
  EXPECT_CODE(store->GetNamespace("t1", "later"), kNotFound);
}

// Counters that disagree with the rows (damage, a hand edit) are found by the check with
// both figures, and the repair rewrites them from a recount.
TEST_F(SqliteTest, DamagedUsageCountersAreFoundAndRepaired) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
  ObjectRecord object = NewObject(Id(1), "t1", "ns", "a");
  object.size_bytes = 100;
  ASSERT_OK(store->PutCommitted(object, {C(1)}, 100));
  {
    RawSqlite raw(Path());
    raw.Exec("UPDATE usage_counters SET objects = 6, logical_bytes = 600");
    raw.Exec("INSERT INTO usage_counters VALUES ('t9', 'ghost', 'cold', 1, 1, 0, 5)");
  }
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> wrong, store->CheckUsageCounters());
  ASSERT_EQ(wrong.size(), 2u);
  EXPECT_NE(wrong[0].find("tenant 't1' namespace 'ns' class hot: kept 6 objects, 600 bytes"),
            std::string::npos)
      << wrong[0];
  EXPECT_NE(wrong[0].find("counted 1 objects"), std::string::npos) << wrong[0];
  EXPECT_NE(wrong[1].find("'ghost'"), std::string::npos) << wrong[1];
  EXPECT_EQ(Str(store->RepairUsageCounters()), "OK 2");
  EXPECT_EQ(Str(store->CheckUsageCounters()), "OK []");
  EXPECT_EQ(store->Usage("t1")->at(0).objects, 1u);
  EXPECT_EQ(Str(store->Usage("t9")), "OK []");
  EXPECT_EQ(Str(store->RepairUsageCounters()), "OK 0");
}

// UsageShowsGroupsItsCountersLost on each engine: one object in namespace "a" (100 bytes,
// chunk 1) and one in "b" (200 bytes, chunk 2) of tenant t1.
void PutObjectsInNamespacesAAndB(MetaStore& store) {
  ObjectRecord a = NewObject(Id(1), "t1", "a", "k");
  a.size_bytes = 100;
  ASSERT_OK(store.PutCommitted(a, {C(1)}, 100));
  ObjectRecord b = NewObject(Id(2), "t1", "b", "k");
  b.size_bytes = 200;
  ASSERT_OK(store.PutCommitted(b, {C(2)}, 100));
}

// After the test lost a's counters and drove b's negative: both groups still show with
// their physical bytes and no negative figure, and a repair brings the counts back.
void ExpectUsageShowsLostGroupsUntilRepaired(MetaStore& store) {
  ASSERT_OK_AND_ASSIGN(std::vector<UsageRow> usage, store.Usage("t1"));
  ASSERT_EQ(usage.size(), 2u);
  EXPECT_EQ(usage[0].namespace_name, "a");
  EXPECT_EQ(usage[0].objects, 0u);
  EXPECT_EQ(usage[0].physical_bytes, 100u);
  EXPECT_EQ(usage[1].namespace_name, "b");
  EXPECT_EQ(usage[1].objects, 0u);
  EXPECT_EQ(usage[1].logical_bytes, 0u);
  EXPECT_EQ(usage[1].physical_bytes, 200u);
  EXPECT_EQ(Str(store.RepairUsageCounters()), "OK 2");
  ASSERT_OK_AND_ASSIGN(usage, store.Usage("t1"));
  ASSERT_EQ(usage.size(), 2u);
  EXPECT_EQ(usage[0].objects, 1u);
  EXPECT_EQ(usage[1].logical_bytes, 200u);
}

// Counters that lost a group or went negative do not hide what the rows hold: Usage
// still lists the group with its physical bytes, and no figure goes below zero.
TEST_F(SqliteTest, UsageShowsGroupsItsCountersLost) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
  ASSERT_NO_FATAL_FAILURE(PutObjectsInNamespacesAAndB(*store));
  {
    RawSqlite raw(Path());
    raw.Exec("DELETE FROM usage_counters WHERE namespace = 'a'");
    raw.Exec("UPDATE usage_counters SET objects = -3, logical_bytes = -5 WHERE namespace = 'b'");
  }
  ExpectUsageShowsLostGroupsUntilRepaired(*store);
}

// A database written by a binary of schema version 5 (before namespace settings) gains the
// table at open, in place, and keeps what it held.
TEST_F(SqliteTest, UpgradesAVersion5DatabaseInPlace) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
    ASSERT_OK(store->PutCommitted(NewObject(Id(1), "t1", "implied", "k"), {C(1)}, 100));
    ASSERT_OK(store->CreateNamespace({"t1", "explicit", 50}));
  }
  {
    RawSqlite raw(Path());
    DropFileTreeTables(raw);                    // versions 9, 10
    raw.Exec("DROP TABLE owner_chunks");        // version 8
    raw.Exec("DROP INDEX namespaces_by_name");  // version 7
    raw.Exec("DROP TABLE namespace_settings");  // version 6
    raw.Exec("PRAGMA user_version = 5");
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
  RawSqlite raw(Path());
  EXPECT_EQ(raw.Query("PRAGMA user_version"), std::to_string(SqliteSchemaVersion()));
  EXPECT_EQ(raw.Query("SELECT count(*) FROM sqlite_schema WHERE name = 'namespace_settings'"), "1");
  EXPECT_OK(store->GetObject("t1", Id(1)));
  EXPECT_EQ(Str(store->GetNamespaceSettings("t1", "explicit")), "OK []");
  ASSERT_OK(store->SetNamespaceSetting("t1", "explicit", "acl", "private", 200));
  ASSERT_OK(store->SetNamespaceSetting("t1", "implied", "acl", "public-read", 200));
  EXPECT_EQ(store->GetNamespaceSettings("t1", "explicit").value(),
            (std::map<std::string, std::string>{{"acl", "private"}}));
  EXPECT_EQ(store->GetNamespace("t1", "explicit")->created_at_ms, 50);
  EXPECT_EQ(store->GetNamespace("t1", "implied")->created_at_ms, 200);
  ASSERT_OK(store->DeleteNamespace("t1", "explicit"));
  EXPECT_EQ(raw.Query("SELECT count(*) FROM namespace_settings"), "1");
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> problems, store->CheckIntegrity());
  EXPECT_TRUE(problems.empty()) << problems.front();
}

// A version 7 database (before generic owners) gains owner_chunks in place: its objects and
// counts are untouched, and owners work at once.
TEST_F(SqliteTest, UpgradesAVersion7DatabaseInPlace) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
    ASSERT_OK(store->PutCommitted(NewObject(Id(1), "t1", "ns", "k"), {C(1), C(2)}, 100));
  }
  {
    RawSqlite raw(Path());
    DropFileTreeTables(raw);  // versions 9, 10
    raw.Exec("DROP TABLE owner_chunks");
    raw.Exec("PRAGMA user_version = 7");
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
  RawSqlite raw(Path());
  EXPECT_EQ(raw.Query("PRAGMA user_version"), std::to_string(SqliteSchemaVersion()));
  EXPECT_GE(SqliteSchemaVersion(), 8);
  EXPECT_OK(store->GetObject("t1", Id(1)));
  ASSERT_OK(store->SetOwnerChunks(ChunkOwner{"test", "f"}, {OwnerChunk{kHot, C(1)}}, 200));
  ASSERT_OK_AND_ASSIGN(std::vector<FsckReferenceRow> refs, store->CheckReferences());
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs[0].recorded_ref_count, 2);
  EXPECT_EQ(refs[0].actual_ref_count, 2);
  EXPECT_EQ(refs[1].recorded_ref_count, 1);
  EXPECT_EQ(refs[1].actual_ref_count, 1);
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> problems, store->CheckIntegrity());
  EXPECT_TRUE(problems.empty()) << problems.front();
}

// The listings whose plans are guarded: first page, a cursor in the middle and near the
// end, a prefix matching many keys, and delimiter listings at the top and inside a prefix
// (20,000 keys shaped "dir0042/file000123", 100 per directory).
std::vector<ListRequest> GuardedListings() {
  std::vector<ListRequest> out;
  auto add = [&](std::string prefix, std::string start_after, std::string delimiter) {
    ListRequest request;
    request.tenant = "t1";
    request.namespace_name = "ns";
    request.prefix = std::move(prefix);
    request.start_after = std::move(start_after);
    request.limit = 1000;
    request.delimiter = std::move(delimiter);
    out.push_back(std::move(request));
  };
  add("", "", "");
  add("", "dir0100/file010000", "");
  add("", "dir0195/file019500", "");
  add("dir01", "", "");
  add("dir01", "dir0150/file015000", "");
  add("", "", "/");
  add("", "dir0100/file010000", "/");
  add("dir0042/", "", "/");
  return out;
}

std::string Describe(const ListRequest& r) {
  return "prefix=" + Quote(r.prefix) + " start_after=" + Quote(r.start_after) +
         " delimiter=" + Quote(r.delimiter);
}

// The engine's own listing statements, planned by SQLite with the same parameters after
// ANALYZE, must each search objects_committed_key: no full scan, no sort.
TEST_F(SqliteTest, ListingStatementsSearchTheKeyIndex) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
  {
    RawSqlite raw(Path());
    // 20,000 listed rows plus rows of other tenants, namespaces and states.
    raw.Exec(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 29999) "
        "INSERT INTO objects (id, tenant, namespace, key, state, storage_class, size_bytes, "
        "content_hash, etag, content_type, user_metadata, created_at_ms, updated_at_ms) "
        "SELECT randomblob(16), CASE WHEN i < 20000 THEN 't1' ELSE 't' || (i % 10) END, "
        "CASE WHEN i < 20000 THEN 'ns' ELSE 'ns' || (i % 7) END, "
        "printf('dir%04d/file%06d', i / 100, i), "
        "CASE WHEN i >= 20000 AND i % 5 = 0 THEN 'DELETING' ELSE 'COMMITTED' END, 'hot', 0, "
        "zeroblob(32), '', '', '{}', 1, 1 FROM n");
    raw.Exec("ANALYZE");
  }
  for (const ListRequest& request : GuardedListings()) {
    SCOPED_TRACE(Describe(request));
    ASSERT_OK_AND_ASSIGN(std::vector<StatementPlan> plans, store->ExplainList(request));
    ASSERT_FALSE(plans.empty());
    // A delimiter listing at the top reseeks after each common prefix with key >= ?.
    if (!request.delimiter.empty() && request.prefix.empty()) {
      EXPECT_EQ(plans.size(), 2u);
    }
    for (const StatementPlan& plan : plans) {
      SCOPED_TRACE(plan.sql + "\n" + plan.plan);
      EXPECT_NE(plan.plan.find("SEARCH objects USING INDEX objects_committed_key (tenant=? AND "
                               "namespace=? AND key>"),
                std::string::npos);
      EXPECT_EQ(plan.plan.find("SCAN"), std::string::npos);
      EXPECT_EQ(plan.plan.find("TEMP B-TREE"), std::string::npos);
    }
  }
  // The statements are the ones ListObjects runs: the same request lists the same page.
  ListRequest top = GuardedListings()[5];
  ASSERT_OK_AND_ASSIGN(ListPage page, store->ListObjects(top));
  EXPECT_EQ(page.common_prefixes.size(), 200u);
  EXPECT_EQ(page.common_prefixes.front(), "dir0000/");
  EXPECT_FALSE(page.truncated);
}

TEST_F(SqliteTest, PurgeRemovesTheChunkListRows) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
  ASSERT_OK(store->PutCommitted(NewObject(Id(1), "t1", "ns", "k"), {C(1), C(2)}, 1));
  ASSERT_OK(store->DeleteObject("t1", Id(1), 2));
  RawSqlite raw(Path());
  EXPECT_EQ(raw.Query("SELECT count(*) FROM object_chunks"), "2");
  ASSERT_OK(store->PurgeDeletedObjects(3, 10));
  EXPECT_EQ(raw.Query("SELECT count(*) FROM object_chunks"), "0");
}

TEST_F(SqliteTest, NewerSchemaIsRefused) {
  { ASSERT_OK(Open()); }
  {
    RawSqlite raw(Path());
    raw.Exec("PRAGMA user_version = 999");
  }
  Result<std::unique_ptr<MetaStore>> opened = Open();
  EXPECT_CODE(opened, kFailedPrecondition);
  EXPECT_NE(opened.status().message().find("999"), std::string::npos);
}

TEST_F(SqliteTest, UnreachableFileIsUnavailableAndNamesThePath) {
  const std::string path = (dir_.path() / "no-such-dir" / "meta.db").string();
  Result<std::unique_ptr<MetaStore>> opened = OpenSqliteMetaStore(path);
  EXPECT_CODE(opened, kUnavailable);
  EXPECT_NE(opened.status().message().find(path), std::string::npos) << opened.status().ToString();
}

TEST_F(SqliteTest, GarbageFileIsAnError) {
  {
    std::ofstream out(Path(), std::ios::binary);
    out << std::string(8192, 'x');
  }
  Result<std::unique_ptr<MetaStore>> opened = Open();
  EXPECT_FALSE(opened.ok());
  EXPECT_NE(opened.status().message().find(Path()), std::string::npos)
      << opened.status().ToString();
}

TEST_F(SqliteTest, WritesBusyBeyondTheTimeoutAreUnavailableWhileReadsContinue) {
  SqliteMetaStoreOptions options;
  options.busy_timeout_ms = 50;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open(options));
  ASSERT_OK(store->PutCommitted(NewObject(Id(1), "t1", "ns", "k"), {}, 1));

  RawSqlite other(Path());  // another process holding the write lock
  other.Exec("BEGIN IMMEDIATE");
  Status blocked = store->PutCommitted(NewObject(Id(2), "t1", "ns", "k2"), {}, 2).status();
  EXPECT_EQ(blocked.code(), StatusCode::kUnavailable) << blocked.ToString();
  EXPECT_NE(blocked.message().find(Path()), std::string::npos) << blocked.ToString();
  // Readiness means "can commit": a store that cannot take the write lock is not ready.
  EXPECT_EQ(store->Ping().code(), StatusCode::kUnavailable);
  EXPECT_OK(store->GetObject("t1", Id(1)));  // WAL: readers are not blocked by the writer
  other.Exec("COMMIT");
  EXPECT_OK(store->Ping());

  EXPECT_OK(store->PutCommitted(NewObject(Id(2), "t1", "ns", "k2"), {}, 3));
}

// Collects the results PutCommittedAsync hands to its callbacks (on a store thread). The
// state is shared with the callbacks, so a test that stops early leaves none dangling.
class AsyncResults {
 public:
  std::function<void(Result<CommitResult>)> Callback(int n) {
    std::shared_ptr<State> state = state_;
    return [state, n](Result<CommitResult> result) {
      std::lock_guard lock(state->mu);
      state->results.emplace(n, result.status());
      state->cv.notify_all();
    };
  }
  // Waits (at most 60 s) until `count` results are in.
  std::map<int, Status> WaitFor(size_t count) {
    std::unique_lock lock(state_->mu);
    state_->cv.wait_for(lock, std::chrono::seconds(60),
                        [&] { return state_->results.size() >= count; });
    return state_->results;
  }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::map<int, Status> results;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

ObjectRecord InlineRecord(int n, const std::string& key) {
  ObjectRecord object = NewObject(Id(n), "t1", "ns", key);
  object.inline_data = "data " + std::to_string(n);
  object.size_bytes = object.inline_data->size();
  return object;
}

TEST_F(SqliteTest, AsyncPutsAreDurableWhenReportedAndAFailingOneFailsAlone) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
  ASSERT_OK(store->PutCommitted(InlineRecord(1, "taken"), {}, 1));
  AsyncResults results;
  constexpr int kPuts = 300;
  // Synchronous writers run at the same time and share batches with the async ones.
  std::thread sync_writer([&] {
    for (int i = 0; i < 50; ++i) {
      EXPECT_OK(store->PutCommitted(InlineRecord(1000 + i, "sync" + std::to_string(i)), {}, 2));
    }
  });
  for (int n = 2; n < 2 + kPuts; ++n) {
    // Id 100 repeats id 1: that write alone fails.
    ObjectRecord object = InlineRecord(n == 100 ? 1 : n, "k" + std::to_string(n));
    ASSERT_TRUE(store->PutCommittedAsync(std::move(object), 2, results.Callback(n)));
  }
  std::map<int, Status> got = results.WaitFor(kPuts);
  sync_writer.join();
  ASSERT_EQ(got.size(), static_cast<size_t>(kPuts));
  for (const auto& entry : got) {
    if (entry.first == 100) {
      EXPECT_EQ(entry.second.code(), StatusCode::kAlreadyExists) << entry.second.ToString();
      EXPECT_CODE(store->GetObjectByKey("t1", "ns", "k100"), kNotFound);
      continue;
    }
    ASSERT_OK(entry.second);
    ASSERT_OK_AND_ASSIGN(ObjectRecord read,
                         store->GetObjectByKey("t1", "ns", "k" + std::to_string(entry.first)));
    EXPECT_EQ(*read.inline_data, "data " + std::to_string(entry.first));
  }
  // Reported means committed: another connection (as after a crash) sees every one.
  store.reset();
  ASSERT_OK_AND_ASSIGN(store, Open());
  ASSERT_OK_AND_ASSIGN(std::vector<ObjectCountRow> counts, store->CountObjects());
  ASSERT_EQ(counts.size(), 1u);
  EXPECT_EQ(counts[0].objects, static_cast<uint64_t>(1 + 50 + kPuts - 1));
}

// Checkpoints run beside the writer, not inside its commits; under sustained writes the
// writer still checkpoints past a cap, so the WAL never grows without bound, and the pages
// reach the database file while the store is open.
TEST_F(SqliteTest, TheWalStaysBoundedUnderSustainedWrites) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
  const std::string wal = Path() + "-wal";
  uintmax_t largest_wal = 0;
  constexpr int kRounds = 24;
  constexpr int kPerRound = 500;
  for (int round = 0; round < kRounds; ++round) {
    AsyncResults results;
    for (int i = 0; i < kPerRound; ++i) {
      const int n = 10 + round * kPerRound + i;
      ObjectRecord object = InlineRecord(n, "k" + std::to_string(n));
      object.inline_data = std::string(4096, static_cast<char>('a' + n % 26));
      object.size_bytes = 4096;
      ASSERT_TRUE(store->PutCommittedAsync(std::move(object), 2, results.Callback(n)));
    }
    for (const auto& entry : results.WaitFor(kPerRound)) ASSERT_OK(entry.second);
    largest_wal = std::max(largest_wal, fs::file_size(wal));
  }
  // 12,000 objects of 4 KiB: about 60 MB of WAL frames in all. The cap is 8,000 pages
  // (about 33 MB) plus the batch that crosses it.
  EXPECT_LT(largest_wal, uintmax_t{45} << 20);
  EXPECT_GT(fs::file_size(Path()), uintmax_t{30} << 20);  // checkpointed while open
  ASSERT_OK_AND_ASSIGN(ObjectRecord last, store->GetObjectByKey("t1", "ns", "k12009"));
  EXPECT_EQ(last.inline_data->size(), 4096u);
}

TEST_F(SqliteTest, AsyncPutsFailTogetherWhenTheBatchCannotCommit) {
  SqliteMetaStoreOptions options;
  options.busy_timeout_ms = 50;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open(options));
  RawSqlite other(Path());  // another process holding the write lock
  other.Exec("BEGIN IMMEDIATE");
  AsyncResults results;
  for (int n = 1; n <= 20; ++n) {
    ASSERT_TRUE(
        store->PutCommittedAsync(InlineRecord(n, "k" + std::to_string(n)), 1, results.Callback(n)));
  }
  std::map<int, Status> got = results.WaitFor(20);
  ASSERT_EQ(got.size(), 20u);
  for (const auto& entry : got) {
    EXPECT_EQ(entry.second.code(), StatusCode::kUnavailable) << entry.second.ToString();
  }
  other.Exec("COMMIT");
  EXPECT_EQ(Str(store->CountObjects()), "OK []");
}

TEST_F(SqliteTest, AsyncPutQueueIsBoundedAndShutdownReportsEveryQueuedPut) {
  SqliteMetaStoreOptions options;
  options.busy_timeout_ms = 10000;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open(options));
  AsyncResults results;
  int accepted = 0;
  int declined = 0;
  {
    RawSqlite other(Path());  // holds the write lock: nothing commits while we queue
    other.Exec("BEGIN IMMEDIATE");
    for (int n = 1; n <= 1500; ++n) {
      ObjectRecord object = InlineRecord(n, "k" + std::to_string(n));
      if (store->PutCommittedAsync(std::move(object), 1, results.Callback(n))) {
        ++accepted;
      } else {
        ++declined;  // declined: the caller would fall back to PutCommitted
      }
    }
    other.Exec("COMMIT");
  }
  EXPECT_GT(accepted, 0);
  EXPECT_GT(declined, 0);
  // Closing the store commits and reports everything it accepted.
  store.reset();
  std::map<int, Status> got = results.WaitFor(static_cast<size_t>(accepted));
  EXPECT_EQ(got.size(), static_cast<size_t>(accepted));
  for (const auto& entry : got) EXPECT_OK(entry.second);
  ASSERT_OK_AND_ASSIGN(store, Open());
  ASSERT_OK_AND_ASSIGN(std::vector<ObjectCountRow> counts, store->CountObjects());
  ASSERT_EQ(counts.size(), 1u);
  EXPECT_EQ(counts[0].objects, static_cast<uint64_t>(accepted));
}

// ---- PostgreSQL-specific --------------------------------------------------------------

class PostgresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIP_WITHOUT_POSTGRES();
    database_ = std::make_unique<PostgresDatabase>();
  }
  void TearDown() override { database_.reset(); }

  Result<std::unique_ptr<MetaStore>> Open(const PostgresMetaStoreOptions& options = {}) {
    return OpenPostgresMetaStore(database_->url(), options);
  }
  RawPostgres Raw() { return RawPostgres(database_->url()); }

  // Ends every session connected to this test's database except the caller's, as a server
  // restart would (without disturbing the other tests sharing the server).
  int TerminateBackends() {
    RawPostgres admin(PostgresUrl());
    return static_cast<int>(admin
                                .Rows("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                      "WHERE datname = $1 AND pid <> pg_backend_pid()",
                                      {RawPostgres::Text(database_->name())})
                                .size());
  }

  std::unique_ptr<PostgresDatabase> database_;
};

TEST_F(PostgresTest, DataSurvivesReopenAndMigrationsAreIdempotent) {
  std::string before;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
    ObjectRecord object = NewObject(Id(1), "t1", "ns", "k");
    object.user_metadata = {{"a", "b"}};
    ASSERT_OK(store->PutCommitted(object, {C(1), C(2)}, 100));
    ObjectRecord small = NewObject(Id(2), "t1", "ns", "small");
    small.inline_data = std::string("a\0b\xff", 4);  // bytea keeps every byte
    ASSERT_OK(store->PutCommitted(small, {}, 100));
    ASSERT_OK(store->BeginUpload(NewObject(Id(3), "t1", "ns", "w")));
    ASSERT_OK(store->AddChunk(Id(3), 0, C(3), 100));
    ASSERT_OK(store->CreateApiKey(Key("k1", {"t1"}, Scope::kWrite)));
    before = Str(store->GetObject("t1", Id(1))) + Str(store->GetObject("t1", Id(2))) +
             Str(store->GetChunks(Id(1))) + Str(store->GetChunks(Id(3))) +
             Str(store->ListChunks()) + Str(store->CountObjects()) + Str(store->ListApiKeys());
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
  std::string after = Str(store->GetObject("t1", Id(1))) + Str(store->GetObject("t1", Id(2))) +
                      Str(store->GetChunks(Id(1))) + Str(store->GetChunks(Id(3))) +
                      Str(store->ListChunks()) + Str(store->CountObjects()) +
                      Str(store->ListApiKeys());
  EXPECT_EQ(after, before);
  EXPECT_OK(store->AddChunk(Id(3), 1, C(4), 200));

  RawPostgres raw = Raw();
  EXPECT_EQ(raw.Query("SELECT max(version) FROM schema_version"),
            std::to_string(PostgresSchemaVersion()));
  EXPECT_EQ(raw.Query("SELECT count(*) FROM schema_version"),
            std::to_string(PostgresSchemaVersion()));
  EXPECT_EQ(raw.Query("SELECT count(*) FROM readiness_probe"), "0");
  EXPECT_OK(store->Ping());
  EXPECT_EQ(raw.Query("SELECT count(*) FROM readiness_probe"), "1");
}

// Several nodes starting at once on an empty database: the advisory lock makes one migrate
// and the others find the work done.
TEST_F(PostgresTest, StoresOpenedAtOnceOnAnEmptyDatabaseAllSucceed) {
  constexpr int kNodes = 4;
  std::vector<Result<std::unique_ptr<MetaStore>>> opened;
  for (int i = 0; i < kNodes; ++i) opened.emplace_back(InternalError("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kNodes; ++i) threads.emplace_back([&, i] { opened[i] = Open(); });
  for (std::thread& thread : threads) thread.join();
  for (int i = 0; i < kNodes; ++i) ASSERT_OK(opened[i]);
  ASSERT_OK((*opened[0])->PutCommitted(NewObject(Id(1), "t1", "ns", "k"), {}, 1));
  EXPECT_OK((*opened[kNodes - 1])->GetObject("t1", Id(1)));
  EXPECT_EQ(Raw().Query("SELECT count(*) FROM schema_version"),
            std::to_string(PostgresSchemaVersion()));
}

TEST_F(PostgresTest, NewerSchemaIsRefused) {
  { ASSERT_OK(Open()); }
  Raw().Exec("INSERT INTO schema_version (version) VALUES (999)");
  Result<std::unique_ptr<MetaStore>> opened = Open();
  EXPECT_CODE(opened, kFailedPrecondition);
  EXPECT_NE(opened.status().message().find("999"), std::string::npos);
}

TEST_F(PostgresTest, KeysUseByteOrderAndTheBytesRoundTrip) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
  // In a linguistic collation "a" < "B" and accents sort next to their base letter;
  // byte order puts every upper-case letter first and multi-byte characters last.
  const std::vector<std::string> keys = {"a", "B",   "é", "e", "\xef\xbf\xbd", "\xf0\x9f\x98\x80",
                                         "Z", "日本"};
  int n = 0;
  for (const std::string& key : keys) {
    ASSERT_OK(store->PutCommitted(NewObject(Id(++n), "t1", "ns", key), {}, 1));
  }
  std::vector<std::string> expected = keys;
  std::sort(expected.begin(), expected.end());
  ASSERT_OK_AND_ASSIGN(ListPage page, store->ListObjects({"t1", "ns", "", "", 100}));
  std::vector<std::string> listed;
  for (const ObjectRecord& r : page.objects) listed.push_back(r.key);
  EXPECT_EQ(listed, expected);
  EXPECT_EQ(Raw().Query("SELECT string_agg(key, ' ' ORDER BY key) FROM objects"),
            "B Z a e é 日本 \xef\xbf\xbd \xf0\x9f\x98\x80");
  // Names PostgreSQL cannot store are rejected up front, not half-written.
  EXPECT_CODE(store->PutCommitted(NewObject(Id(50), "t1", "ns", std::string("a\0b", 3)), {}, 1),
              kInvalidArgument);
  EXPECT_CODE(store->GetObjectByKey("t1", "ns", "\xff"), kNotFound);
}

// The listing query (copied from the engine) must search objects_committed_key with both
// key bounds in the index condition, whether PostgreSQL plans it for the given values or
// generically (a prepared statement after a few runs). A page of a large namespace is read
// in index order (no Sort); for a narrow range the planner may rather fetch the few rows
// with a bitmap scan of the same index and sort them, which is fine.
// The engine's own listing statements, planned by PostgreSQL with the same parameters
// after ANALYZE (both the plan for those values and the generic plan a cached statement
// may switch to), must read objects only through objects_committed_key: no sequential or
// bitmap scan of the table.
TEST_F(PostgresTest, ListingStatementsSearchTheKeyIndex) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
  RawPostgres raw = Raw();
  raw.Exec(
      "INSERT INTO objects (id, tenant, namespace, key, state, storage_class, size_bytes, "
      "content_hash, etag, content_type, user_metadata, created_at_ms, updated_at_ms) "
      "SELECT decode(md5(i::text), 'hex'), "
      "CASE WHEN i < 20000 THEN 't1' ELSE 't' || (i % 10) END, "
      "CASE WHEN i < 20000 THEN 'ns' ELSE 'ns' || (i % 7) END, "
      "format('dir%s/file%s', lpad((i / 100)::text, 4, '0'), lpad(i::text, 6, '0')), "
      "CASE WHEN i >= 20000 AND i % 5 = 0 THEN 'DELETING' ELSE 'COMMITTED' END, 'hot', 0, "
      "decode(repeat('00', 32), 'hex'), '', '', '{}', 1, 1 FROM generate_series(0, 29999) AS i");
  raw.Exec("ANALYZE objects");
  for (const ListRequest& request : GuardedListings()) {
    SCOPED_TRACE(Describe(request));
    ASSERT_OK_AND_ASSIGN(std::vector<StatementPlan> plans, store->ExplainList(request));
    ASSERT_FALSE(plans.empty());
    if (!request.delimiter.empty() && request.prefix.empty()) {
      EXPECT_EQ(plans.size(), 2u);
    }
    for (const StatementPlan& plan : plans) {
      SCOPED_TRACE(plan.sql + "\n" + plan.plan);
      EXPECT_NE(plan.plan.find("generic plan:"), std::string::npos);
      int index_scans = 0;
      std::istringstream lines(plan.plan);
      for (std::string line; std::getline(lines, line);) {
        if (line.find(" on objects") == std::string::npos) continue;
        EXPECT_NE(line.find("Index Scan using objects_committed_key on objects"), std::string::npos)
            << line;
        ++index_scans;
      }
      EXPECT_GE(index_scans, 2);  // at least one in each of the two plans
      EXPECT_EQ(plan.plan.find("Seq Scan"), std::string::npos);
      EXPECT_EQ(plan.plan.find("Bitmap"), std::string::npos);
    }
  }
  ListRequest top = GuardedListings()[5];
  ASSERT_OK_AND_ASSIGN(ListPage page, store->ListObjects(top));
  EXPECT_EQ(page.common_prefixes.size(), 200u);
  EXPECT_EQ(page.common_prefixes.back(), "dir0199/");
}

// A terminated backend (what a server restart does to every connection) is noticed and
// replaced: the next call succeeds or fails kUnavailable, and the one after succeeds.
TEST_F(PostgresTest, ReconnectsAfterItsConnectionsAreTerminated) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
  // Several pooled connections, all idle afterwards.
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&, i] {
        EXPECT_OK(store->PutCommitted(NewObject(Id(i + 1), "t1", "ns", "k" + std::to_string(i)),
                                      {C(1)}, 1));
      });
    }
    for (std::thread& thread : threads) thread.join();
  }
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    EXPECT_GE(TerminateBackends(), 1);
    Status first = store->Ping();
    EXPECT_TRUE(first.ok() || first.code() == StatusCode::kUnavailable) << first.ToString();
    EXPECT_OK(store->Ping());
    EXPECT_OK(store->GetObject("t1", Id(1)));
    EXPECT_OK(store->ListObjects({"t1", "ns", "", "", 10}));
    EXPECT_EQ(Str(store->CheckReferences()),
              Str(Result(std::vector<FsckReferenceRow>{{kHot, D(1), 4, 4, 4, 100, true}})));
  }
}

// A real restart, opt-in: it disturbs every other test using the server, so it runs only
// when CAIRN_TEST_POSTGRES_RESTART_DIR names the directory given to
// `scripts/postgres-test-server.sh start` of a server used by nothing else.
TEST_F(PostgresTest, ReconnectsAfterTheServerRestarts) {
  const char* dir = std::getenv("CAIRN_TEST_POSTGRES_RESTART_DIR");
  if (dir == nullptr) GTEST_SKIP() << "CAIRN_TEST_POSTGRES_RESTART_DIR is not set";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
  ASSERT_OK(store->PutCommitted(NewObject(Id(1), "t1", "ns", "k"), {C(1)}, 1));
  const std::string restart = std::string(getuid() == 0 ? "runuser -u postgres -- " : "") +
                              "/usr/lib/postgresql/15/bin/pg_ctl -D '" + dir +
                              "/data' -m fast -w -t 60 restart >/dev/null";
  ASSERT_EQ(std::system(restart.c_str()), 0) << restart;
  Status first = store->Ping();
  EXPECT_TRUE(first.ok() || first.code() == StatusCode::kUnavailable) << first.ToString();
  EXPECT_OK(store->Ping());
  EXPECT_OK(store->GetObject("t1", Id(1)));

  // While it is down: kUnavailable naming host:port/db, never the password.
  const std::string pg_ctl = std::string(getuid() == 0 ? "runuser -u postgres -- " : "") +
                             "/usr/lib/postgresql/15/bin/pg_ctl -D '" + dir + "/data' -w -t 60 ";
  ASSERT_EQ(std::system((pg_ctl + "-m fast stop >/dev/null").c_str()), 0);
  Status down = store->Ping();
  EXPECT_EQ(down.code(), StatusCode::kUnavailable) << down.ToString();
  EXPECT_NE(down.message().find("127.0.0.1:"), std::string::npos) << down.ToString();
  const std::string url = PostgresUrl();
  const std::string password =
      url.substr(url.find(':', 11) + 1, url.find('@') - url.find(':', 11) - 1);
  EXPECT_EQ(down.message().find(password), std::string::npos) << down.ToString();
  ASSERT_EQ(std::system((pg_ctl + "-l '" + dir + "/server.log' start >/dev/null").c_str()), 0);
  EXPECT_OK(store->Ping());
}

// While a GC pass holds a candidate chunk inside its callback, an AddChunk on that digest
// from another node waits, then recreates the row; the uploader then writes the file again.
// Several GC nodes run at once and skip each other's rows. The invariant checked: a file is
// never removed while an upload holds a reference on its chunk.
TEST_F(PostgresTest, ConcurrentAddChunkAndGcOnSeveralNodesNeverLoseAReferencedFile) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> uploader, Open());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> gc_a, Open());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> gc_b, Open());
  std::mutex mu;
  std::map<int, bool> file_present;  // chunk number -> file on "disk"
  std::map<int, int> held;           // chunk number -> uploads holding a reference
  std::atomic<bool> stop{false};
  std::atomic<int> removed{0};
  std::atomic<int> violations{0};

  auto collector = [&](MetaStore* store) {
    while (!stop) {
      auto remove = [&](const ChunkRecord& chunk) -> Status {
        const int n = chunk.digest.bytes[1];
        {
          std::lock_guard lock(mu);
          if (held[n] > 0) ++violations;
          file_present[n] = false;
        }
        ++removed;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        return OkStatus();
      };
      Result<std::vector<ChunkRecord>> pass = store->CollectGarbageChunks(1LL << 60, 2, remove);
      EXPECT_OK(pass);
    }
  };
  std::thread a(collector, gc_a.get());
  std::thread b(collector, gc_b.get());

  constexpr int kUploads = 150;
  for (int i = 0; i < kUploads; ++i) {
    const int n = 1 + i % 3;
    const ObjectId id = Id(1000 + i);
    ASSERT_OK(uploader->BeginUpload(NewObject(id, "t1", "ns", "k" + std::to_string(i))));
    ASSERT_OK(uploader->AddChunk(id, 0, C(n), 1));
    {
      std::lock_guard lock(mu);
      ++held[n];
      file_present[n] = true;  // found it, or wrote it again
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    {
      std::lock_guard lock(mu);
      EXPECT_TRUE(file_present[n]) << "upload " << i;
      --held[n];
    }
    ASSERT_OK(uploader->AbortUpload(id, 1));
  }
  stop = true;
  a.join();
  b.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_GT(removed.load(), 0);
  ASSERT_OK_AND_ASSIGN(std::vector<FsckReferenceRow> refs, uploader->CheckReferences());
  for (const FsckReferenceRow& row : refs) {
    EXPECT_EQ(row.recorded_ref_count, row.actual_ref_count) << Str(row);
  }
}

// The reference count of a chunk row, -1 without one.
int64_t ChunkRefs(MetaStore& store, StorageClass storage_class, const ChunkRef& chunk) {
  Result<std::vector<ChunkRecord>> rows = store.ListChunks();
  EXPECT_TRUE(rows.ok()) << rows.status().ToString();
  if (!rows.ok()) return -1;
  for (const ChunkRecord& row : *rows) {
    if (row.storage_class == storage_class && row.digest == chunk.digest) return row.ref_count;
  }
  return -1;
}

// A version 8 database (before generic owners) gains owner_chunks in place, and a store
// opened on it works with owners at once.
TEST_F(PostgresTest, UpgradesAVersion8DatabaseInPlace) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
    ASSERT_OK(store->PutCommitted(NewObject(Id(1), "t1", "ns", "k"), {C(1), C(2)}, 100));
  }
  {
    RawPostgres raw = Raw();
    raw.Exec("DROP TABLE usage_deltas");  // version 12
    raw.Exec("DROP FUNCTION cairn_count_usage CASCADE");
    raw.Exec("DROP TABLE fs_sessions, fs_orphans, fs_changes, fs_locks");
    raw.Exec("DROP SEQUENCE fs_change_seq");
    raw.Exec("DROP TABLE fs_volume, fs_inodes, fs_dentries, fs_xattrs");  // version 10
    raw.Exec("DROP TABLE owner_chunks");
    raw.Exec("DELETE FROM schema_version WHERE version > 8");
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
  EXPECT_GE(PostgresSchemaVersion(), 9);
  EXPECT_EQ(Raw().Query("SELECT MAX(version) FROM schema_version"),
            std::to_string(PostgresSchemaVersion()));
  EXPECT_OK(store->GetObject("t1", Id(1)));
  ASSERT_OK(store->SetOwnerChunks(ChunkOwner{"test", "f"}, {OwnerChunk{kHot, C(1)}}, 200));
  ASSERT_OK_AND_ASSIGN(std::vector<FsckReferenceRow> refs, store->CheckReferences());
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs[0].recorded_ref_count, 2);
  EXPECT_EQ(refs[0].actual_ref_count, 2);
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> problems, store->CheckIntegrity());
  EXPECT_TRUE(problems.empty()) << problems.front();
}

// A version 11 database gains its usage counters at open, counted from the rows it holds:
// COMMITTED objects only, inline bytes apart; later changes keep them equal to a recount.
TEST_F(PostgresTest, UpgradesAVersion11DatabaseWithUsageCountersFromItsRows) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
    ObjectRecord large = NewObject(Id(1), "t1", "ns", "a");
    large.size_bytes = 300;
    ASSERT_OK(store->PutCommitted(large, {C(1), C(2)}, 100));
    ObjectRecord small = NewObject(Id(2), "t1", "ns", "b");
    small.inline_data = "tiny";
    small.size_bytes = 4;
    ASSERT_OK(store->PutCommitted(small, {}, 110));
    ObjectRecord gone = NewObject(Id(3), "t1", "gone", "c");
    gone.size_bytes = 300;
    ASSERT_OK(store->PutCommitted(gone, {C(3)}, 120));
    ASSERT_OK(store->DeleteObject("t1", Id(3), 130));
  }
  {
    RawPostgres raw = Raw();
    raw.Exec("ALTER TABLE fs_sessions DROP COLUMN seen_seq");  // version 13
    raw.Exec("ALTER TABLE fs_orphans DROP COLUMN since_seq");
    raw.Exec("DROP TABLE usage_deltas");
    raw.Exec("DROP FUNCTION cairn_count_usage CASCADE");
    raw.Exec("DELETE FROM schema_version WHERE version > 11");
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
  EXPECT_EQ(Str(store->CheckUsageCounters()), "OK []");
  ASSERT_OK_AND_ASSIGN(std::vector<UsageRow> usage, store->Usage("t1"));
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].namespace_name, "ns");
  EXPECT_EQ(usage[0].objects, 2u);
  EXPECT_EQ(usage[0].logical_bytes, 304u);
  ObjectRecord later = NewObject(Id(4), "t1", "later", "d", StorageClass::kHot, 200);
  later.size_bytes = 400;
  ASSERT_OK(store->PutCommitted(later, {C(4)}, 200));
  ASSERT_OK(store->DeleteObject("t1", Id(2), 210));
  ASSERT_OK(store->CompactUsageCounters());
  EXPECT_EQ(Str(store->CheckUsageCounters()), "OK []");
  EXPECT_EQ(Str(store->ListNamespaces("t1")),
            Str(Result<std::vector<NamespaceRecord>>(
                std::vector<NamespaceRecord>{{"t1", "later", 200}, {"t1", "ns", 100}})));
}

// Counters that disagree with the rows (damage, a hand edit) are found by the check with
// both figures, and the repair rewrites them from a recount.
TEST_F(PostgresTest, DamagedUsageCountersAreFoundAndRepaired) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
  ObjectRecord object = NewObject(Id(1), "t1", "ns", "a");
  object.size_bytes = 100;
  ASSERT_OK(store->PutCommitted(object, {C(1)}, 100));
  Raw().Exec(
      "INSERT INTO usage_deltas (tenant, namespace, storage_class, objects, "
      "logical_bytes, inline_bytes) VALUES ('t1', 'ns', 'hot', 5, 500, 0), "
      "('t9', 'ghost', 'cold', 1, 1, 0)");
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> wrong, store->CheckUsageCounters());
  ASSERT_EQ(wrong.size(), 2u);
  EXPECT_NE(wrong[0].find("tenant 't1' namespace 'ns' class hot: kept 6 objects"),
            std::string::npos)
      << wrong[0];
  EXPECT_NE(wrong[0].find("counted 1 objects"), std::string::npos) << wrong[0];
  EXPECT_NE(wrong[1].find("'ghost'"), std::string::npos) << wrong[1];
  EXPECT_EQ(Str(store->RepairUsageCounters()), "OK 2");
  EXPECT_EQ(Str(store->CheckUsageCounters()), "OK []");
  EXPECT_EQ(store->Usage("t1")->at(0).objects, 1u);
  EXPECT_EQ(Str(store->Usage("t9")), "OK []");
  EXPECT_EQ(Str(store->RepairUsageCounters()), "OK 0");
}

// Counters that lost a group or went negative do not hide what the rows hold.
TEST_F(PostgresTest, UsageShowsGroupsItsCountersLost) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> store, Open());
  ASSERT_NO_FATAL_FAILURE(PutObjectsInNamespacesAAndB(*store));
  Raw().Exec(
      "INSERT INTO usage_deltas (tenant, namespace, storage_class, objects, "
      "logical_bytes, inline_bytes) VALUES ('t1', 'a', 'hot', -1, -100, 0), "
      "('t1', 'b', 'hot', -4, -205, 0)");
  ExpectUsageShowsLostGroupsUntilRepaired(*store);
}

// Commits into one namespace from many threads never wait on one counter row, and the sum
// stays exact while folds run beside them.
TEST_F(PostgresTest, ConcurrentCommitsAndFoldsKeepUsageExact) {
  constexpr int kThreads = 6;
  constexpr int kPerThread = 40;
  std::vector<std::unique_ptr<MetaStore>> nodes;
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> node, Open());
    nodes.push_back(std::move(node));
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      MetaStore* node = nodes[static_cast<size_t>(t) % 2].get();
      for (int i = 0; i < kPerThread; ++i) {
        ObjectRecord object = NewObject(Id(1000 + t * kPerThread + i), "t1", "hot-ns",
                                        "k" + std::to_string(t) + "-" + std::to_string(i));
        object.inline_data = "x";
        object.size_bytes = 1;
        if (!node->PutCommitted(object, {}, 100 + i).ok()) ++failures;
        if (i % 10 == 0 && !nodes[2]->CompactUsageCounters().ok()) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_OK_AND_ASSIGN(std::vector<UsageRow> usage, nodes[2]->Usage("t1"));
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].objects, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(usage[0].logical_bytes, static_cast<uint64_t>(kThreads * kPerThread));
  ASSERT_OK(nodes[2]->CompactUsageCounters());
  EXPECT_EQ(Raw().Query("SELECT COUNT(*) FROM usage_deltas"), "1");
  EXPECT_EQ(Str(nodes[2]->CheckUsageCounters()), "OK []");
}

// A repair on one node racing folds on another never counts a group twice: without the
// lock they share, a fold committing during the repair's DELETE would leave its sum row
// beside the recount.
TEST_F(PostgresTest, ARepairRacingFoldsLeavesExactCounters) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> repairer, Open());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> folder, Open());
  constexpr int kRounds = 25;
  for (int round = 0; round < kRounds; ++round) {
    for (int i = 0; i < 4; ++i) {
      ObjectRecord object = NewObject(Id(5000 + round * 4 + i), "t1", "ns",
                                      "k" + std::to_string(round) + "-" + std::to_string(i));
      object.inline_data = "xy";
      object.size_bytes = 2;
      ASSERT_OK(repairer->PutCommitted(object, {}, 100 + round));
    }
    Raw().Exec(
        "INSERT INTO usage_deltas (tenant, namespace, storage_class, objects, logical_bytes, "
        "inline_bytes) VALUES ('t1', 'ns', 'hot', 3, 3, 3)");
    std::atomic<int> ready{0};
    Status repaired, folded_first, folded_second;
    std::thread fold([&] {
      ready.fetch_add(1);
      while (ready.load() < 2) std::this_thread::yield();
      folded_first = folder->CompactUsageCounters();
      folded_second = folder->CompactUsageCounters();
    });
    ready.fetch_add(1);
    while (ready.load() < 2) std::this_thread::yield();
    repaired = repairer->RepairUsageCounters().status();
    fold.join();
    ASSERT_OK(repaired);
    ASSERT_OK(folded_first);
    ASSERT_OK(folded_second);
    ASSERT_EQ(Str(repairer->CheckUsageCounters()), "OK []") << "round " << round;
  }
  ASSERT_OK_AND_ASSIGN(std::vector<UsageRow> usage, folder->Usage("t1"));
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].objects, static_cast<uint64_t>(kRounds * 4));
  EXPECT_EQ(usage[0].logical_bytes, static_cast<uint64_t>(kRounds * 8));
}

// Two nodes replace owners' chunk lists while two others collect garbage. An owner holds its
// reference before it trusts a chunk's file (the rule of meta_store.h), so a collector must
// never remove the file of a chunk some owner holds, and the counts stay exact even where
// both writer nodes replace the same owners' lists at once (the per-owner lock).
TEST_F(PostgresTest, OwnersWrittenOnTwoNodesWhileTwoOthersCollectNeverLoseALiveChunk) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> writer_a, Open());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> writer_b, Open());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> gc_a, Open());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> gc_b, Open());
  std::mutex mu;
  std::map<int, bool> file_present;  // chunk number -> file on "disk"
  std::map<int, int> held;           // chunk number -> owner references the test relies on
  std::atomic<bool> stop{false};
  std::atomic<int> removed{0};
  std::atomic<int> violations{0};

  auto collector = [&](MetaStore* store) {
    while (!stop) {
      auto remove = [&](const ChunkRecord& chunk) -> Status {
        const int n = chunk.digest.bytes[1];
        {
          std::lock_guard lock(mu);
          if (held[n] > 0) ++violations;
          file_present[n] = false;
        }
        ++removed;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return OkStatus();
      };
      Result<std::vector<ChunkRecord>> pass = store->CollectGarbageChunks(1LL << 60, 2, remove);
      EXPECT_OK(pass);
    }
  };
  std::thread a(collector, gc_a.get());
  std::thread b(collector, gc_b.get());

  // Each writer thread keeps a few owners of its own, whose lists the test tracks (chunks
  // 1..6, in both classes), and replaces two shared owners' lists too (chunks 20..23,
  // untracked: only the final counts are checked).
  constexpr int kRounds = 60;
  auto writer = [&](MetaStore* store, int t) {
    std::mt19937 rng(1234 + t);
    std::map<int, std::vector<int>> lists;  // owner number -> chunk numbers it holds
    for (int i = 0; i < kRounds; ++i) {
      const int owner = i % 3;
      const ChunkOwner own{"test", "w" + std::to_string(t) + "-" + std::to_string(owner)};
      std::vector<int> next;
      std::vector<OwnerChunk> entries;
      const int length = static_cast<int>(rng() % 4);  // 0: the list is dropped
      for (int k = 0; k < length; ++k) {
        const int n = 1 + static_cast<int>(rng() % 6);
        next.push_back(n);
        entries.push_back(OwnerChunk{n % 2 == 0 ? kHot : kCold, C(n)});
      }
      {
        // The old list's chunks stop being relied on before their references go.
        std::lock_guard lock(mu);
        for (int n : lists[owner]) --held[n];
      }
      if (entries.empty()) {
        EXPECT_OK(store->DropOwnerChunks(own, 1));
      } else {
        EXPECT_OK(store->SetOwnerChunks(own, entries, 1));
      }
      {
        std::lock_guard lock(mu);
        for (int n : next) {
          ++held[n];
          file_present[n] = true;  // found it, or wrote it again
        }
      }
      lists[owner] = next;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      {
        std::lock_guard lock(mu);
        for (const auto& entry : lists) {
          for (int n : entry.second)
            EXPECT_TRUE(file_present[n]) << "thread " << t << " chunk " << n;
        }
      }
      const ChunkOwner shared{"test", "shared-" + std::to_string(i % 2)};
      std::vector<OwnerChunk> shared_entries;
      for (int k = 0; k < static_cast<int>(rng() % 3); ++k) {
        shared_entries.push_back(OwnerChunk{kHot, C(20 + static_cast<int>(rng() % 4))});
      }
      EXPECT_OK(store->SetOwnerChunks(shared, shared_entries, 1));
    }
    for (const auto& entry : lists) {
      {
        std::lock_guard lock(mu);
        for (int n : entry.second) --held[n];
      }
      EXPECT_OK(store->DropOwnerChunks(
          ChunkOwner{"test", "w" + std::to_string(t) + "-" + std::to_string(entry.first)}, 1));
    }
  };
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t)
    writers.emplace_back(writer, (t % 2 == 0 ? writer_a : writer_b).get(), t);
  for (std::thread& thread : writers) thread.join();
  stop = true;
  a.join();
  b.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_GT(removed.load(), 0);
  ASSERT_OK_AND_ASSIGN(std::vector<FsckReferenceRow> refs, writer_a->CheckReferences());
  for (const FsckReferenceRow& row : refs) {
    EXPECT_TRUE(row.has_chunk_row) << Str(row);
    EXPECT_EQ(row.recorded_ref_count, row.actual_ref_count) << Str(row);
    EXPECT_GE(row.recorded_ref_count, 0) << Str(row);
  }
  // What the shared owners hold is still there to read.
  for (int i = 0; i < 2; ++i) {
    ASSERT_OK_AND_ASSIGN(std::vector<OwnerChunk> listed,
                         gc_b->GetOwnerChunks(ChunkOwner{"test", "shared-" + std::to_string(i)}));
    for (const OwnerChunk& entry : listed) {
      EXPECT_GT(ChunkRefs(*gc_b, entry.storage_class, entry.chunk), 0) << Str(entry);
    }
  }
}

// Two nodes writing the same keys and sharing chunks: counts stay exact and exactly one
// object per key stays COMMITTED (the per-key lock serializes the commits).
TEST_F(PostgresTest, TwoNodesCommittingToTheSameKeysStayConsistent) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> node_a, Open());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetaStore> node_b, Open());
  constexpr int kPerThread = 25;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    MetaStore* store = (t % 2 == 0 ? node_a : node_b).get();
    threads.emplace_back([store, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const ObjectId id = Id(1 + t * kPerThread + i);
        const std::string key = "shared" + std::to_string(i % 3);
        // Chunk lists in opposite orders on different threads invite deadlocks, which
        // must be retried away.
        std::vector<ChunkRef> chunks = {C(1), C(2), C(3)};
        if (t % 2 == 1) std::reverse(chunks.begin(), chunks.end());
        if (i % 2 == 0) {
          EXPECT_OK(store->PutCommitted(NewObject(id, "t1", "ns", key), chunks, 100 + i));
        } else {
          EXPECT_OK(store->BeginUpload(NewObject(id, "t1", "ns", key)));
          for (size_t c = 0; c < chunks.size(); ++c) {
            EXPECT_OK(store->AddChunk(id, static_cast<uint32_t>(c), chunks[c], 100 + i));
          }
          EXPECT_OK(store->CommitUpload(id, FinalFields(600, i), 100 + i));
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_OK_AND_ASSIGN(ListPage page, node_a->ListObjects({"t1", "ns", "", "", 100}));
  EXPECT_EQ(page.objects.size(), 3u);
  for (int n = 1; n <= 3; ++n) {
    std::optional<int64_t> refs;
    ASSERT_OK_AND_ASSIGN(std::vector<ChunkRecord> chunks, node_b->ListChunks());
    for (const ChunkRecord& chunk : chunks) {
      if (chunk.digest == D(n)) refs = chunk.ref_count;
    }
    EXPECT_EQ(refs, 3) << n;
  }
  ASSERT_OK_AND_ASSIGN(std::vector<FsckReferenceRow> refs, node_b->CheckReferences());
  for (const FsckReferenceRow& row : refs) {
    EXPECT_EQ(row.recorded_ref_count, row.actual_ref_count) << Str(row);
  }
}

// ---- randomized comparison with the model ---------------------------------------------

// Applies the same seeded random operations to the memory model and to a SQL engine (SQLite,
// or PostgreSQL when `postgres_url` is given) and compares every result, then the final
// state. The seed is in every failure message; rerun one with CAIRN_META_SEED=<seed>.
class ModelComparison {
 public:
  ModelComparison(uint64_t seed, const std::string& sqlite_path,
                  const std::string& postgres_url = "")
      : seed_(seed), rng_(seed), sqlite_path_(sqlite_path), postgres_url_(postgres_url) {}

  void SetUp() {
    Result<std::unique_ptr<MetaStore>> opened =
        postgres_url_.empty() ? OpenSqliteMetaStore(sqlite_path_) : OpenMetaStore(postgres_url_);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    sqlite_ = std::move(opened).value();
  }

  // Runs `ops` operations; stops at the first divergence.
  void Run(int ops) {
    for (op_ = 0; op_ < ops && !::testing::Test::HasFailure(); ++op_) {
      now_ += Pick(0, 40);
      Step();
    }
    if (!::testing::Test::HasFailure()) CompareFinalState();
  }

 private:
  int Pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool Chance(int percent) { return Pick(1, 100) <= percent; }
  template <typename T>
  T OneOf(const std::vector<T>& items) {
    return items[static_cast<size_t>(Pick(0, static_cast<int>(items.size()) - 1))];
  }

  std::string Tenant() { return OneOf<std::string>({"t1", "t2"}); }
  // Usually the tenant the object was created for, so reads and deletes often succeed.
  std::string TenantOf(const ObjectId& id) {
    auto it = tenant_of_.find(id);
    return it != tenant_of_.end() && Chance(80) ? it->second : Tenant();
  }
  std::string Namespace() { return OneOf<std::string>({"a", "b"}); }
  std::string KeyName() {
    return OneOf<std::string>({"k", "k/1", "k/2", "k0", "ka", "é", "日本", "日本/x", "~", "a b"});
  }
  StorageClass Class() { return Chance(70) ? kHot : kCold; }
  ChunkRef RandomChunk() { return C(Pick(1, 10)); }
  ObjectId KnownId() {
    if (ids_.empty() || Chance(5)) return Id(50000 + Pick(0, 5));  // never used
    return OneOf(ids_);
  }
  ObjectId Writing() {
    auto it = writing_.begin();
    std::advance(it, Pick(0, static_cast<int>(writing_.size()) - 1));
    return *it;
  }
  ObjectId NewId() {
    ObjectId id = Id(static_cast<int>(ids_.size()) + 1);
    ids_.push_back(id);
    return id;
  }
  std::map<std::string, std::string> Metadata() {
    std::map<std::string, std::string> meta;
    for (int i = Pick(0, 2); i > 0; --i) meta["m" + std::to_string(Pick(0, 3))] = KeyName();
    return meta;
  }
  ObjectRecord RandomObject(const ObjectId& id) {
    ObjectRecord r = NewObject(id, Tenant(), Namespace(), KeyName(), Class(), now_);
    tenant_of_.emplace(id, r.tenant);
    r.size_bytes = static_cast<uint64_t>(Pick(0, 5000));
    r.user_metadata = Metadata();
    return r;
  }

  template <typename R>
  void Same(const R& model, const R& sqlite, const std::string& what) {
    std::string a = Str(model), b = Str(sqlite);
    ASSERT_EQ(a, b) << "seed " << seed_ << ", op #" << op_ << " (" << what << "): model vs "
                    << (postgres_url_.empty() ? "sqlite" : "postgres") << " differ";
  }

  void Step() {
    MemoryMetaStore& m = model_;
    MetaStore& s = *sqlite_;
    switch (Pick(0, 27)) {
      case 0:
      case 1: {  // begin an upload, occasionally reusing an id
        ObjectRecord r = RandomObject(Chance(5) && !ids_.empty() ? KnownId() : NewId());
        Status a = m.BeginUpload(r);
        Same(a, s.BeginUpload(r), "BeginUpload");
        if (a.ok()) writing_.insert(r.id);
        break;
      }
      case 2:
      case 3:
      case 4:
      case 25:
      case 26:
      case 27: {  // add a chunk, usually in sequence
        ObjectId id = Chance(80) && !writing_.empty() ? Writing() : KnownId();
        uint32_t seq = Chance(90) ? next_seq_[id] : static_cast<uint32_t>(Pick(0, 3));
        ChunkRef chunk = RandomChunk();
        Status a = m.AddChunk(id, seq, chunk, now_);
        Same(a, s.AddChunk(id, seq, chunk, now_), "AddChunk");
        if (a.ok()) next_seq_[id] = seq + 1;
        if (a.code() == StatusCode::kNotFound) writing_.erase(id);
        break;
      }
      case 5:
      case 6: {  // commit
        ObjectId id = Chance(80) && !writing_.empty() ? Writing() : KnownId();
        ObjectRecord final_fields = FinalFields(Pick(0, 9999), Pick(0, 50), Metadata());
        if (Chance(3)) final_fields.user_metadata["bad"] = "\xc3";
        Result<CommitResult> a = m.CommitUpload(id, final_fields, now_);
        Same(a, s.CommitUpload(id, final_fields, now_), "CommitUpload");
        if (a.ok() || a.status().code() == StatusCode::kNotFound) writing_.erase(id);
        break;
      }
      case 7:
      case 8: {  // put committed: inline or linked chunks
        ObjectRecord r = RandomObject(Chance(3) && !ids_.empty() ? KnownId() : NewId());
        std::vector<ChunkRef> chunks;
        if (Chance(40)) {
          r.inline_data = std::string(static_cast<size_t>(Pick(0, 20)), 'd');
          if (Chance(5)) chunks.push_back(RandomChunk());  // invalid: both
        } else {
          for (int i = Pick(0, 4); i > 0; --i) chunks.push_back(RandomChunk());
        }
        Same(m.PutCommitted(r, chunks, now_), s.PutCommitted(r, chunks, now_), "PutCommitted");
        break;
      }
      case 9: {
        ObjectId id = Chance(70) && !writing_.empty() ? Writing() : KnownId();
        Status a = m.AbortUpload(id, now_);
        Same(a, s.AbortUpload(id, now_), "AbortUpload");
        if (a.ok() || a.code() == StatusCode::kNotFound) writing_.erase(id);
        break;
      }
      case 10: {
        ObjectId id = KnownId();
        std::string tenant = TenantOf(id);
        Same(m.GetObject(tenant, id), s.GetObject(tenant, id), "GetObject");
        break;
      }
      case 11: {
        std::string t = Tenant(), n = Namespace(), k = KeyName();
        Same(m.GetObjectByKey(t, n, k), s.GetObjectByKey(t, n, k), "GetObjectByKey");
        break;
      }
      case 12: {
        ObjectId id = KnownId();
        Same(m.GetChunks(id), s.GetChunks(id), "GetChunks");
        break;
      }
      case 13:
      case 14: {
        ListRequest request;
        request.tenant = Tenant();
        request.namespace_name = Namespace();
        std::string key = KeyName();
        request.prefix = Chance(50) ? "" : key.substr(0, static_cast<size_t>(Pick(0, 3)));
        request.start_after = Chance(50) ? "" : KeyName();
        request.limit = static_cast<uint32_t>(Chance(3) ? 0 : Pick(1, 4));
        Same(m.ListObjects(request), s.ListObjects(request), "ListObjects");
        break;
      }
      case 15: {
        ObjectId id = KnownId();
        std::string tenant = TenantOf(id);
        Same(m.DeleteObject(tenant, id, now_), s.DeleteObject(tenant, id, now_), "DeleteObject");
        break;
      }
      case 16: {
        std::string tenant = Tenant();
        Same(m.Usage(tenant), s.Usage(tenant), "Usage");
        Same(m.UsageCounts(tenant), s.UsageCounts(tenant), "UsageCounts");
        Same(m.CountObjects(), s.CountObjects(), "CountObjects");
        Same(m.StorageBytes(), s.StorageBytes(), "StorageBytes");
        Same(m.ChunkTotals(), s.ChunkTotals(), "ChunkTotals");
        break;
      }
      case 17: {
        TimestampMs cutoff = now_ - Pick(300, 3000);
        uint32_t limit = static_cast<uint32_t>(Pick(0, 3));
        Same(m.ReapStalledUploads(cutoff, limit, now_), s.ReapStalledUploads(cutoff, limit, now_),
             "ReapStalledUploads");
        break;
      }
      case 18: {
        TimestampMs cutoff = now_ - Pick(0, 1000);
        uint32_t limit = static_cast<uint32_t>(Pick(0, 3));
        Same(m.PurgeDeletedObjects(cutoff, limit), s.PurgeDeletedObjects(cutoff, limit),
             "PurgeDeletedObjects");
        break;
      }
      case 19: {
        TimestampMs cutoff = now_ - Pick(0, 1000);
        uint32_t limit = static_cast<uint32_t>(Pick(0, 4));
        int salt = Pick(0, 3);
        std::vector<std::string> model_calls, sqlite_calls;
        auto callback = [salt](std::vector<std::string>* calls) {
          return [salt, calls](const ChunkRecord& chunk) -> Status {
            calls->push_back(Str(chunk));
            // Deterministic failures, the same for both engines.
            if ((chunk.digest.bytes[1] + salt) % 4 == 0) return UnavailableError("busy");
            return OkStatus();
          };
        };
        Same(m.CollectGarbageChunks(cutoff, limit, callback(&model_calls)),
             s.CollectGarbageChunks(cutoff, limit, callback(&sqlite_calls)),
             "CollectGarbageChunks");
        Same(model_calls, sqlite_calls, "CollectGarbageChunks callbacks");
        break;
      }
      case 20: {
        Same(m.CheckReferences(), s.CheckReferences(), "CheckReferences");
        if (Chance(30)) Same(m.RepairReferences(now_), s.RepairReferences(now_), "Repair");
        Same(m.ListChunks(), s.ListChunks(), "ListChunks");
        break;
      }
      case 21: {
        if (!Chance(30)) break;
        StorageClass storage_class = Class();
        std::vector<Digest> lost;
        for (int i = Pick(0, 2); i > 0; --i) lost.push_back(RandomChunk().digest);
        Same(m.DropObjectsWithChunks(storage_class, lost, now_),
             s.DropObjectsWithChunks(storage_class, lost, now_), "DropObjectsWithChunks");
        break;
      }
      case 22: {  // rare damage, the same on both sides
        if (!Chance(20)) break;
        StorageClass storage_class = Class();
        ChunkRef chunk = RandomChunk();
        std::optional<int64_t> refs;
        if (Chance(60)) refs = Pick(0, 3);
        DamageChunkRow(&model_, "", storage_class, chunk, refs);
        DamageChunkRow(sqlite_.get(), sqlite_path_, postgres_url_, storage_class, chunk, refs);
        break;
      }
      case 23: {
        std::string id = "key" + std::to_string(Pick(0, 4));
        ApiKeyRecord key = Key(id, {Tenant()}, OneOf<Scope>({Scope::kRead, Scope::kAdmin}));
        Same(m.CreateApiKey(key), s.CreateApiKey(key), "CreateApiKey");
        break;
      }
      case 24: {
        std::string id = "key" + std::to_string(Pick(0, 4));
        if (Chance(30)) Same(m.RevokeApiKey(id), s.RevokeApiKey(id), "RevokeApiKey");
        Same(m.GetApiKey(id), s.GetApiKey(id), "GetApiKey");
        Same(m.ListApiKeys(), s.ListApiKeys(), "ListApiKeys");
        break;
      }
    }
  }

  void CompareFinalState() {
    MetaStore& s = *sqlite_;
    Same(model_.CountObjects(), s.CountObjects(), "final CountObjects");
    Same(model_.StorageBytes(), s.StorageBytes(), "final StorageBytes");
    Same(model_.ListChunks(), s.ListChunks(), "final ListChunks");
    Same(model_.CheckReferences(), s.CheckReferences(), "final CheckReferences");
    Same(model_.ListApiKeys(), s.ListApiKeys(), "final ListApiKeys");
    for (const char* tenant : {"t1", "t2"}) {
      Same(model_.Usage(tenant), s.Usage(tenant), "final Usage");
      for (const char* ns : {"a", "b"}) {
        ListRequest request{tenant, ns, "", "", 10000};
        Same(model_.ListObjects(request), s.ListObjects(request), "final ListObjects");
      }
      for (const ObjectId& id : ids_) {
        Same(model_.GetObject(tenant, id), s.GetObject(tenant, id), "final GetObject");
      }
    }
    for (const ObjectId& id : ids_) Same(model_.GetChunks(id), s.GetChunks(id), "final GetChunks");
  }

  uint64_t seed_;
  std::mt19937_64 rng_;
  std::string sqlite_path_;
  std::string postgres_url_;
  MemoryMetaStore model_;
  std::unique_ptr<MetaStore> sqlite_;  // the engine under test (SQLite or PostgreSQL)
  std::vector<ObjectId> ids_;
  // Uploads begun and not yet committed or aborted. Entries go stale when GC reaps or fsck
  // drops them; the first NotFound from the model removes them.
  std::set<ObjectId> writing_;
  std::map<ObjectId, uint32_t> next_seq_;
  std::map<ObjectId, std::string> tenant_of_;
  TimestampMs now_ = 1000;
  int op_ = 0;
};

TEST(ModelComparisonTest, RandomOperationsMatchTheModel) {
  std::vector<uint64_t> seeds = {1, 2, 3};
  if (const char* env = std::getenv("CAIRN_META_SEED")) seeds = {std::strtoull(env, nullptr, 10)};
  for (uint64_t seed : seeds) {
    SCOPED_TRACE("seed " + std::to_string(seed) +
                 " (rerun with CAIRN_META_SEED=" + std::to_string(seed) + ")");
    TempDir dir;
    ModelComparison comparison(seed, (dir.path() / "meta.db").string());
    comparison.SetUp();
    comparison.Run(1500);
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(ModelComparisonTest, RandomOperationsMatchTheModelOnPostgres) {
  SKIP_WITHOUT_POSTGRES();
  std::vector<uint64_t> seeds = {1, 2, 3};
  if (const char* env = std::getenv("CAIRN_META_SEED")) seeds = {std::strtoull(env, nullptr, 10)};
  for (uint64_t seed : seeds) {
    SCOPED_TRACE("seed " + std::to_string(seed) +
                 " (rerun with CAIRN_META_SEED=" + std::to_string(seed) + ")");
    PostgresDatabase database;
    {
      ModelComparison comparison(seed, "", database.url());
      comparison.SetUp();
      comparison.Run(1500);
    }
    if (::testing::Test::HasFailure()) return;
  }
}

}  // namespace
}  // namespace cairn::meta
