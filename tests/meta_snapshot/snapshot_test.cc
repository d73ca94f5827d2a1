// Metadata snapshots: the file format (round trips, refusal of truncated, corrupted and
// foreign files), export/import on every engine pair (memory, SQLite, PostgreSQL when
// CAIRN_TEST_POSTGRES_URL is set), all-or-nothing loading, consistency under concurrent
// writes, and the rotating backup files.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "backup/backup.h"
#include "core/hashing.h"
#include "meta/file_tree.h"
#include "meta/memory/memory_meta_store.h"
#include "meta/meta_store.h"
#include "meta/postgres/postgres_meta_store.h"
#include "meta/snapshot.h"
#include "meta/sqlite/sqlite_meta_store.h"
#include "platform/clock.h"
#include "platform/fault_injection.h"
#include "platform/file_system.h"
#include "postgres_test_database.h"

namespace cairn::meta {
namespace {

namespace fs = std::filesystem;

constexpr TimestampMs kNow = 1'700'000'000'000;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "cairn-snap-XXXXXX").string();
    char* made = mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A store of one engine with whatever it needs kept alive (a directory, a database).
struct Engine {
  std::string name;
  std::unique_ptr<TempDir> dir;
  std::unique_ptr<pgtest::PostgresDatabase> database;
  std::unique_ptr<MetaStore> store;
};

Engine MakeEngine(const std::string& name) {
  Engine engine;
  engine.name = name;
  if (name == "memory") {
    engine.store = std::make_unique<MemoryMetaStore>();
  } else if (name == "sqlite") {
    engine.dir = std::make_unique<TempDir>();
    auto store = OpenSqliteMetaStore(engine.dir->path() + "/meta.db");
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    if (store.ok()) engine.store = std::move(store).value();
  } else {
    engine.database = std::make_unique<pgtest::PostgresDatabase>();
    auto store = OpenPostgresMetaStore(engine.database->url());
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    if (store.ok()) engine.store = std::move(store).value();
  }
  return engine;
}

Digest DigestOf(const std::string& text) { return Sha256Of(text); }

ObjectId IdOf(int n) {
  std::array<uint8_t, 16> bytes{};
  bytes[0] = static_cast<uint8_t>(n * 37);
  bytes[15] = static_cast<uint8_t>(n);
  return ObjectId::FromRandomBytes(bytes);
}

ObjectRecord Object(int n, const std::string& tenant, const std::string& ns, const std::string& key,
                    StorageClass storage_class = StorageClass::kHot) {
  ObjectRecord r;
  r.id = IdOf(n);
  r.tenant = tenant;
  r.namespace_name = ns;
  r.key = key;
  r.storage_class = storage_class;
  r.content_hash = DigestOf("content " + std::to_string(n));
  r.etag = "etag-" + std::to_string(n);
  r.content_type = "application/x-test";
  r.created_at_ms = kNow - 1000 + n;
  r.updated_at_ms = kNow - 1000 + n;
  return r;
}

// The settings Populate gives acme/photos.
std::map<std::string, std::string> PopulatedSettings() {
  return {{"acl", "public-read"},
          {"cors", std::string(300 << 10, 'c')},
          {"policy",
           "{\"Version\": \"2012-10-17\",\n \"Sid\": \"caf\xc3\xa9 \\\" \xf0\x9f\x98\x80\"}"}};
}

// A store holding every kind of row, plus rows a snapshot must leave out (an upload in
// progress, a deleted object) and a chunk awaiting GC.
void Populate(MetaStore& store) {
  ApiKeyRecord key;
  key.key_id = "00112233445566aa";
  key.secret_hash = DigestOf("secret");
  key.tenants = {"*"};
  key.scope = Scope::kAdmin;
  key.created_at_ms = kNow - 5000;
  key.description = "admin";
  ASSERT_TRUE(store.CreateApiKey(key).ok());
  key.key_id = "00112233445566bb";
  key.tenants = {"acme", "beta"};
  key.scope = Scope::kRead;
  key.description = "revoked reader \xc3\xa9";
  ASSERT_TRUE(store.CreateApiKey(key).ok());
  ASSERT_TRUE(store.RevokeApiKey(key.key_id).ok());

  S3KeyRecord s3;
  s3.access_key = "AKIAEXAMPLEEXAMPLE01";
  s3.secret = std::string(40, 's');
  s3.tenants = {"acme"};
  s3.scope = Scope::kWrite;
  s3.created_at_ms = kNow - 4000;
  s3.description = "s3";
  ASSERT_TRUE(store.CreateS3Key(s3).ok());

  ASSERT_TRUE(store.CreateNamespace(NamespaceRecord{"acme", "empty-bucket", kNow - 3000}).ok());
  ASSERT_TRUE(store.CreateNamespace(NamespaceRecord{"acme", "photos", kNow - 3000}).ok());

  const ChunkRef a{DigestOf("a"), 4 << 20};
  const ChunkRef b{DigestOf("b"), 1000};
  const ChunkRef c{DigestOf("c"), 77};
  const ChunkRef only_upload{DigestOf("upload"), 500};
  const ChunkRef freed{DigestOf("freed"), 123};

  // Inline, with user metadata and a tag.
  ObjectRecord small = Object(1, "acme", "photos", "cats/tiny.txt");
  small.inline_data = std::string("hello\0world", 11);
  small.size_bytes = 11;
  small.user_metadata = {{"color", "red"}, {"\x01tag:project", "snapshots \xe2\x9c\x93"}};
  ASSERT_TRUE(store.PutCommitted(small, {}, kNow - 900).ok());
  // Chunked, sharing chunk `a` with a deduplicated copy in another namespace and class.
  ObjectRecord big = Object(2, "acme", "photos", "big.bin");
  big.size_bytes = a.size_bytes + b.size_bytes + a.size_bytes;
  ASSERT_TRUE(store.PutCommitted(big, {a, b, a}, kNow - 800).ok());
  ObjectRecord copy = Object(3, "beta", "backup", "big-copy.bin");
  copy.size_bytes = a.size_bytes;
  ASSERT_TRUE(store.PutCommitted(copy, {a}, kNow - 700).ok());
  ObjectRecord cold = Object(4, "acme", "archive", "cold/old.bin", StorageClass::kCold);
  cold.size_bytes = a.size_bytes + c.size_bytes;
  ASSERT_TRUE(store.PutCommitted(cold, {a, c}, kNow - 600).ok());
  // A multipart upload in progress: an empty object in a hidden namespace and one part.
  ObjectRecord upload = Object(5, "acme", ".uploads", "photos/upload-1");
  upload.inline_data = std::string();
  upload.user_metadata = {{"\x01upload:key", "video.mp4"}};
  ASSERT_TRUE(store.PutCommitted(upload, {}, kNow - 500).ok());
  ObjectRecord part = Object(6, "acme", ".parts", "upload-1/00001");
  part.size_bytes = b.size_bytes;
  ASSERT_TRUE(store.PutCommitted(part, {b}, kNow - 500).ok());

  // Left out of a snapshot: a WRITING upload (its chunk ends up unreferenced) ...
  ObjectRecord writing = Object(7, "acme", "photos", "in-flight.bin");
  ASSERT_TRUE(store.BeginUpload(writing).ok());
  ASSERT_TRUE(store.AddChunk(writing.id, 0, only_upload, kNow - 400).ok());
  ASSERT_TRUE(store.AddChunk(writing.id, 1, b, kNow - 400).ok());
  // ... and a deleted object (its chunk awaits GC with its zero time).
  ObjectRecord gone = Object(8, "acme", "photos", "deleted.bin");
  gone.size_bytes = freed.size_bytes;
  ASSERT_TRUE(store.PutCommitted(gone, {freed}, kNow - 300).ok());
  ASSERT_TRUE(store.DeleteObject("acme", gone.id, kNow - 200).ok());

  // Namespace settings: on an explicit bucket, on one that existed through its objects
  // (the setting gives it a row) and, more than a page of them (PostgreSQL exports 32 at a
  // time), on a bucket of another tenant.
  for (const auto& [setting, value] : PopulatedSettings()) {
    ASSERT_TRUE(store.SetNamespaceSetting("acme", "photos", setting, value, kNow - 100).ok());
  }
  ASSERT_TRUE(store.SetNamespaceSetting("acme", "archive", "tags", "<Tagging/>", kNow - 100).ok());
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(store
                    .SetNamespaceSetting("beta", "backup", "s-" + std::to_string(100 + i),
                                         std::string(100 * i, 'v'), kNow - 90)
                    .ok());
  }
}

Result<std::string> DumpToString(MetaStore& store, const std::string& engine) {
  std::string out;
  ASSIGN_OR_RETURN(SnapshotCounts counts,
                   DumpSnapshot(store, engine, kNow, [&out](std::string_view bytes) {
                     out.append(bytes);
                     return OkStatus();
                   }));
  (void)counts;
  return out;
}

SnapshotByteSource SourceOf(std::shared_ptr<const std::string> text) {
  auto offset = std::make_shared<size_t>(0);
  // Small reads exercise lines split across reads.
  return [text, offset](char* buffer, size_t capacity) -> Result<size_t> {
    const size_t n = std::min({capacity, size_t{1000}, text->size() - *offset});
    std::copy_n(text->data() + *offset, n, buffer);
    *offset += n;
    return n;
  };
}

Result<SnapshotCounts> LoadFromString(MetaStore& store, const std::string& text) {
  SnapshotReader reader(SourceOf(std::make_shared<const std::string>(text)));
  return store.ImportSnapshot(reader);
}

// The records between header and trailer: identical for the same content whatever the
// engine (the header names the engine, and the trailer's checksum covers the header).
std::string Body(const std::string& snapshot) {
  const size_t start = snapshot.find('\n') + 1;
  const size_t end = snapshot.rfind('\n', snapshot.size() - 2) + 1;
  return snapshot.substr(start, end - start);
}

std::string Join(const std::vector<std::string>& lines);

// `lines` (header, records, trailer) with the namespace count in header and trailer changed
// by `namespaces_delta` and the trailer's checksum computed again: a well-formed file, for
// the checks that look past the format.
std::string Rechecksummed(std::vector<std::string> lines, int namespaces_delta) {
  auto adjust = [&](std::string& line) {
    const std::string field = "\"namespaces\":";
    const size_t at = line.find(field);
    if (at == std::string::npos) return;
    const size_t start = at + field.size();
    const size_t end = line.find_first_of(",}", start);
    const int count = std::stoi(line.substr(start, end - start)) + namespaces_delta;
    line.replace(start, end - start, std::to_string(count));
  };
  adjust(lines.front());
  adjust(lines.back());
  std::vector<std::string> body(lines.begin(), lines.end() - 1);
  std::string& trailer = lines.back();
  const size_t at = trailer.find("\"sha256\":\"") + 10;
  trailer.replace(at, 64, Sha256Of(Join(body)).ToHex());
  return Join(lines);
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) out += line + "\n";
  return out;
}

bool IsEmpty(MetaStore& store) {
  Result<std::string> dump = DumpToString(store, "check");
  EXPECT_TRUE(dump.ok()) << dump.status().ToString();
  return dump.ok() && Lines(*dump).size() == 2;  // header and trailer only
}

// ---- engine pairs -----------------------------------------------------------------------

struct Pair {
  std::string from;
  std::string to;
};
void PrintTo(const Pair& pair, std::ostream* out) { *out << pair.from << " -> " << pair.to; }

class SnapshotEngines : public ::testing::TestWithParam<Pair> {
 protected:
  void SetUp() override {
    if (GetParam().from == "postgres" || GetParam().to == "postgres") SKIP_WITHOUT_POSTGRES();
  }
};

TEST_P(SnapshotEngines, RoundTripKeepsEveryVisibleRecordAndDropsTheRest) {
  Engine source = MakeEngine(GetParam().from);
  Engine target = MakeEngine(GetParam().to);
  ASSERT_TRUE(source.store && target.store);
  Populate(*source.store);

  Result<std::string> dump = DumpToString(*source.store, source.name);
  ASSERT_TRUE(dump.ok()) << dump.status().ToString();
  Result<SnapshotCounts> loaded = LoadFromString(*target.store, *dump);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->api_keys, 2u);
  EXPECT_EQ(loaded->s3_keys, 1u);
  EXPECT_EQ(loaded->namespaces, 4u);  // two explicit, two made explicit by a setting
  EXPECT_EQ(loaded->namespace_settings, 3u + 1u + 40u);
  EXPECT_EQ(loaded->objects, 6u);  // not the WRITING upload, not the deleted object
  EXPECT_EQ(loaded->chunks, 6u);   // hot: a, b, upload-only, freed; cold: a, c

  // A second dump of the restored store says the same thing.
  Result<std::string> again = DumpToString(*target.store, target.name);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(Body(*again), Body(*dump));

  // Reads through the interface.
  MetaStore& t = *target.store;
  Result<ObjectRecord> small = t.GetObjectByKey("acme", "photos", "cats/tiny.txt");
  ASSERT_TRUE(small.ok()) << small.status().ToString();
  EXPECT_EQ(small->inline_data, std::string("hello\0world", 11));
  EXPECT_EQ(small->user_metadata.at("\x01tag:project"), "snapshots \xe2\x9c\x93");
  Result<ObjectRecord> big = t.GetObjectByKey("acme", "photos", "big.bin");
  ASSERT_TRUE(big.ok());
  Result<std::vector<ChunkRef>> chunks = t.GetChunks(big->id);
  ASSERT_TRUE(chunks.ok());
  ASSERT_EQ(chunks->size(), 3u);
  EXPECT_EQ((*chunks)[1].digest, DigestOf("b"));
  EXPECT_TRUE(t.GetObjectByKey("acme", ".uploads", "photos/upload-1").ok());
  EXPECT_EQ(t.GetObjectByKey("acme", "photos", "in-flight.bin").status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(t.GetObjectByKey("acme", "photos", "deleted.bin").status().code(),
            StatusCode::kNotFound);
  Result<ApiKeyRecord> reader = t.GetApiKey("00112233445566bb");
  ASSERT_TRUE(reader.ok());
  EXPECT_TRUE(reader->revoked);
  EXPECT_EQ(reader->secret_hash, DigestOf("secret"));
  Result<S3KeyRecord> s3 = t.GetS3Key("AKIAEXAMPLEEXAMPLE01");
  ASSERT_TRUE(s3.ok());
  EXPECT_EQ(s3->secret, std::string(40, 's'));
  Result<std::vector<NamespaceRecord>> namespaces = t.ListNamespaces("acme");
  ASSERT_TRUE(namespaces.ok());
  EXPECT_GE(namespaces->size(), 3u);  // empty-bucket, photos and archive explicit
  EXPECT_EQ(t.GetNamespace("acme", "archive")->created_at_ms, kNow - 100);

  // Settings, with their namespaces: deleting one takes its settings along.
  EXPECT_EQ(t.GetNamespaceSettings("acme", "photos").value(), PopulatedSettings());
  EXPECT_EQ(t.GetNamespaceSettings("acme", "archive").value(),
            (std::map<std::string, std::string>{{"tags", "<Tagging/>"}}));
  Result<std::map<std::string, std::string>> many = t.GetNamespaceSettings("beta", "backup");
  ASSERT_TRUE(many.ok());
  ASSERT_EQ(many->size(), 40u);
  EXPECT_EQ(many->at("s-139"), std::string(3900, 'v'));
  EXPECT_TRUE(t.GetNamespaceSettings("acme", "empty-bucket")->empty());
  ASSERT_TRUE(t.DeleteNamespace("acme", "empty-bucket").ok());
  ASSERT_TRUE(t.DeleteObject("acme", IdOf(4), kNow).ok());  // archive's only object
  ASSERT_TRUE(t.DeleteNamespace("acme", "archive").ok());
  EXPECT_TRUE(t.GetNamespaceSettings("acme", "archive")->empty());

  // Reference counts are exactly what fsck recomputes, and unreferenced chunks keep (or
  // get the snapshot time as) the time GC measures the grace period from.
  Result<std::vector<FsckReferenceRow>> references = t.CheckReferences();
  ASSERT_TRUE(references.ok());
  for (const FsckReferenceRow& row : *references) {
    EXPECT_TRUE(row.has_chunk_row) << row.digest.ToHex();
    EXPECT_EQ(row.recorded_ref_count, row.actual_ref_count) << row.digest.ToHex();
  }
  Result<std::vector<ChunkRecord>> rows = t.ListChunks();
  ASSERT_TRUE(rows.ok());
  for (const ChunkRecord& row : *rows) {
    if (row.digest == DigestOf("a") && row.storage_class == StorageClass::kHot) {
      EXPECT_EQ(row.ref_count, 3);  // twice in big.bin, once in the copy
    }
    if (row.digest == DigestOf("upload")) {
      EXPECT_EQ(row.ref_count, 0);
      EXPECT_EQ(row.zero_since_ms, kNow);
    }
    if (row.digest == DigestOf("freed")) {
      EXPECT_EQ(row.ref_count, 0);
      EXPECT_EQ(row.zero_since_ms, kNow - 200);
    }
  }
}

TEST_P(SnapshotEngines, LoadIntoANonEmptyStoreIsRefusedAndChangesNothing) {
  Engine source = MakeEngine(GetParam().from);
  Engine target = MakeEngine(GetParam().to);
  ASSERT_TRUE(source.store && target.store);
  Populate(*source.store);
  Result<std::string> dump = DumpToString(*source.store, source.name);
  ASSERT_TRUE(dump.ok());

  ASSERT_TRUE(target.store->CreateNamespace(NamespaceRecord{"zed", "only", kNow}).ok());
  Result<std::string> before = DumpToString(*target.store, target.name);
  ASSERT_TRUE(before.ok());
  Result<SnapshotCounts> loaded = LoadFromString(*target.store, *dump);
  EXPECT_EQ(loaded.status().code(), StatusCode::kFailedPrecondition) << loaded.status().ToString();
  EXPECT_NE(loaded.status().message().find("not empty"), std::string::npos);
  Result<std::string> after = DumpToString(*target.store, target.name);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(Body(*after), Body(*before));
}

TEST_P(SnapshotEngines, DamagedFilesAreRefusedAndLoadNothing) {
  Engine source = MakeEngine(GetParam().from);
  ASSERT_TRUE(source.store);
  Populate(*source.store);
  Result<std::string> dump = DumpToString(*source.store, source.name);
  ASSERT_TRUE(dump.ok());
  const std::vector<std::string> lines = Lines(*dump);
  ASSERT_GT(lines.size(), 5u);

  struct Case {
    std::string what;
    std::string text;
    StatusCode code;
    std::string mentions = std::string();  // in the message, when set
  };
  std::vector<Case> cases;
  {
    std::vector<std::string> cut(lines.begin(), lines.end() - 1);  // no trailer
    cases.push_back({"trailer missing", Join(cut), StatusCode::kDataLoss});
  }
  cases.push_back({"cut mid-line", dump->substr(0, dump->size() - 40), StatusCode::kDataLoss});
  {
    std::vector<std::string> dropped = lines;
    dropped.erase(dropped.begin() + 3);  // a whole record gone
    cases.push_back({"record removed", Join(dropped), StatusCode::kDataLoss});
  }
  {
    std::string flipped = *dump;
    const size_t at = flipped.find("big.bin");
    ASSERT_NE(at, std::string::npos);
    flipped[at] = 'B';  // still a valid record: only the checksum can tell
    cases.push_back({"byte changed", flipped, StatusCode::kDataLoss});
  }
  cases.push_back({"garbage after the trailer", *dump + "{}\n", StatusCode::kDataLoss});
  {
    std::vector<std::string> newer = lines;
    const size_t at = newer[0].find("\"version\":2");
    ASSERT_NE(at, std::string::npos);
    newer[0].replace(at, 11, "\"version\":" + std::to_string(kSnapshotFormatVersion + 1));
    cases.push_back({"newer version", Join(newer), StatusCode::kFailedPrecondition});
  }
  {
    // A setting whose namespace the file does not hold (a correct checksum and counts):
    // loaded, DeleteNamespace could never remove it.
    std::vector<std::string> orphaned;
    for (const std::string& line : lines) {
      if (line.find("\"type\":\"namespace\",\"tenant\":\"acme\",\"name\":\"photos\"") ==
          std::string::npos) {
        orphaned.push_back(line);
      }
    }
    ASSERT_EQ(orphaned.size(), lines.size() - 1);
    cases.push_back({"setting without its namespace", Rechecksummed(orphaned, -1),
                     StatusCode::kInvalidArgument, "no namespace record"});
  }
  cases.push_back({"not a snapshot", "id,key\n1,a\n", StatusCode::kFailedPrecondition});
  {
    // Settings in a file that says version 1 (which has none).
    std::vector<std::string> old = lines;
    old[0].replace(old[0].find("\"version\":2"), 11, "\"version\":1");
    cases.push_back({"settings in version 1", Rechecksummed(old, 0), StatusCode::kInvalidArgument,
                     "namespace_setting record in a version 1 snapshot"});
  }
  cases.push_back({"empty", "", StatusCode::kDataLoss});

  for (const Case& c : cases) {
    Engine target = MakeEngine(GetParam().to);
    ASSERT_TRUE(target.store);
    Result<SnapshotCounts> loaded = LoadFromString(*target.store, c.text);
    EXPECT_EQ(loaded.status().code(), c.code) << c.what << ": " << loaded.status().ToString();
    EXPECT_NE(loaded.status().message().find(c.mentions), std::string::npos)
        << c.what << ": " << loaded.status().ToString();
    EXPECT_TRUE(IsEmpty(*target.store)) << c.what;
  }
}

// Generic chunk owners (the test-only kind "test") travel with their lists, their classes
// and the references they hold, between every pair of engines.
TEST_P(SnapshotEngines, OwnersRoundTripWithTheirReferences) {
  Engine source = MakeEngine(GetParam().from);
  Engine target = MakeEngine(GetParam().to);
  ASSERT_TRUE(source.store && target.store);
  Populate(*source.store);
  const ChunkRef a{DigestOf("a"), 4 << 20};
  const ChunkRef own{DigestOf("owned only"), 900};
  const std::vector<OwnerChunk> file = {
      {StorageClass::kHot, a}, {StorageClass::kCold, own}, {StorageClass::kHot, a}};
  ASSERT_TRUE(source.store->SetOwnerChunks({"test", "file 1"}, file, kNow - 50).ok());
  ASSERT_TRUE(
      source.store
          ->SetOwnerChunks({"test", "dir/caf\xc3\xa9"}, {{StorageClass::kHot, own}}, kNow - 50)
          .ok());

  Result<std::string> dump = DumpToString(*source.store, source.name);
  ASSERT_TRUE(dump.ok()) << dump.status().ToString();
  EXPECT_EQ(dump->rfind("{\"format\":\"cairn-meta-snapshot\",\"version\":3,", 0), 0u);
  Result<SnapshotCounts> loaded = LoadFromString(*target.store, *dump);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->owners, 2u);
  EXPECT_EQ(loaded->objects, 6u);
  Result<std::string> again = DumpToString(*target.store, target.name);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(Body(*again), Body(*dump));

  Result<std::vector<OwnerChunk>> listed = target.store->GetOwnerChunks({"test", "file 1"});
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 3u);
  EXPECT_EQ((*listed)[1].storage_class, StorageClass::kCold);
  EXPECT_EQ((*listed)[1].chunk.digest, own.digest);
  EXPECT_EQ((*listed)[1].chunk.size_bytes, 900u);
  Result<std::vector<FsckReferenceRow>> references = target.store->CheckReferences();
  ASSERT_TRUE(references.ok());
  for (const FsckReferenceRow& row : *references) {
    EXPECT_TRUE(row.has_chunk_row) << row.digest.ToHex();
    EXPECT_EQ(row.recorded_ref_count, row.actual_ref_count) << row.digest.ToHex();
    if (row.digest == a.digest && row.storage_class == StorageClass::kHot) {
      EXPECT_EQ(row.actual_ref_count, 3 + 2);  // big.bin twice, the copy, the file twice
      EXPECT_EQ(row.owner_ref_count, 2);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Pairs, SnapshotEngines,
                         ::testing::Values(Pair{"memory", "memory"}, Pair{"memory", "sqlite"},
                                           Pair{"sqlite", "memory"}, Pair{"sqlite", "sqlite"},
                                           Pair{"sqlite", "postgres"}, Pair{"postgres", "sqlite"},
                                           Pair{"postgres", "postgres"}),
                         [](const ::testing::TestParamInfo<Pair>& info) {
                           return info.param.from + "_to_" + info.param.to;
                         });

// ---- format details ---------------------------------------------------------------------

// A well-formed, correctly checksummed file whose counts contradict its objects is refused
// by every engine (it would make fsck unclean), and nothing is loaded.
TEST(SnapshotFormat, InconsistentReferenceCountsAreRefused) {
  std::string text;
  SnapshotWriter writer(
      [&text](std::string_view bytes) {
        text.append(bytes);
        return OkStatus();
      },
      "memory", kNow);
  SnapshotCounts counts;
  counts.chunks = 1;
  counts.objects = 1;
  ASSERT_TRUE(writer.Begin(counts).ok());
  ASSERT_TRUE(writer.Visit(ChunkRecord{StorageClass::kHot, DigestOf("x"), 10, 5, 0}).ok());
  ObjectRecord object = Object(1, "acme", "photos", "x");
  object.state = ObjectState::kCommitted;
  object.size_bytes = 10;
  ASSERT_TRUE(writer.Visit(SnapshotObject{object, {ChunkRef{DigestOf("x"), 10}}}).ok());
  ASSERT_TRUE(writer.Finish().ok());

  for (const std::string name : {"memory", "sqlite"}) {
    Engine target = MakeEngine(name);
    Result<SnapshotCounts> loaded = LoadFromString(*target.store, text);
    EXPECT_EQ(loaded.status().code(), StatusCode::kInvalidArgument) << name;
    EXPECT_TRUE(IsEmpty(*target.store)) << name;
  }
}

TEST(SnapshotFormat, TextThatIsNotUtf8SurvivesAsHex) {
  MemoryMetaStore source;
  ObjectRecord object = Object(1, "acme", "photos", "odd");
  object.content_type = "text/\xff\xfe";
  object.inline_data = std::string("\x00\x01\x02\xff", 4);
  object.size_bytes = 4;
  ASSERT_TRUE(source.PutCommitted(object, {}, kNow).ok());
  Result<std::string> dump = DumpToString(source, "memory");
  ASSERT_TRUE(dump.ok());
  EXPECT_NE(dump->find("{\"hex\":\"746578742ffffe\"}"), std::string::npos) << *dump;
  MemoryMetaStore target;
  ASSERT_TRUE(LoadFromString(target, *dump).ok());
  Result<ObjectRecord> loaded = target.GetObject("acme", object.id);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->content_type, "text/\xff\xfe");
  EXPECT_EQ(loaded->inline_data, object.inline_data);
}

TEST(SnapshotFormat, HeaderAndTrailerCarryCountsAndChecksum) {
  MemoryMetaStore source;
  Populate(source);
  Result<std::string> dump = DumpToString(source, "memory");
  ASSERT_TRUE(dump.ok());
  const std::vector<std::string> lines = Lines(*dump);
  // Settings make it version 2, with their count.
  EXPECT_EQ(lines.front().rfind("{\"format\":\"cairn-meta-snapshot\",\"version\":2,", 0), 0u)
      << lines.front();
  const std::string& trailer = lines.back();
  EXPECT_EQ(trailer.rfind("{\"type\":\"end\"", 0), 0u) << trailer;
  const std::string hashed = dump->substr(0, dump->size() - trailer.size() - 1);
  EXPECT_NE(trailer.find(Sha256Of(hashed).ToHex()), std::string::npos);
  EXPECT_NE(trailer.find("\"objects\":6"), std::string::npos) << trailer;
  for (const std::string& line : {lines.front(), trailer}) {
    EXPECT_NE(line.find("\"namespaces\":4,\"namespace_settings\":44,\"chunks\":6,"),
              std::string::npos)
        << line;
  }
  EXPECT_NE(dump->find("\n{\"type\":\"namespace_setting\",\"tenant\":\"acme\",\"namespace\":"
                       "\"photos\",\"name\":\"acl\",\"value\":\"public-read\"}\n"),
            std::string::npos);
}

// A snapshot as a binary of version 1 (before settings) wrote it: one namespace and one
// inline object of the given inline_data text.
std::string Version1Snapshot(std::string_view inline_data) {
  const std::string body =
      "{\"format\":\"cairn-meta-snapshot\",\"version\":1,\"engine\":\"sqlite\","
      "\"created_at\":\"2023-11-14T22:13:20.000Z\",\"created_at_ms\":1700000000000,"
      "\"counts\":{\"api_keys\":0,\"s3_keys\":0,\"namespaces\":1,\"chunks\":0,\"objects\":1}}\n"
      "{\"type\":\"namespace\",\"tenant\":\"acme\",\"name\":\"b\",\"created_at_ms\":5}\n"
      "{\"type\":\"object\",\"id\":\"00000000-0000-4000-8000-000000000001\",\"tenant\":\"acme\","
      "\"namespace\":\"b\",\"key\":\"k\",\"state\":\"COMMITTED\",\"storage_class\":\"hot\","
      "\"size_bytes\":2,\"content_hash\":\"" +
      DigestOf("hi").ToHex() +
      "\",\"etag\":\"e\",\"content_type\":\"text/plain\",\"user_metadata\":{},"
      "\"created_at_ms\":6,\"updated_at_ms\":6,\"chunks\":[],\"inline_data\":\"" +
      std::string(inline_data) + "\"}\n";
  const std::string old = body +
                          "{\"type\":\"end\",\"counts\":{\"api_keys\":0,\"s3_keys\":0,"
                          "\"namespaces\":1,\"chunks\":0,\"objects\":1},\"sha256\":\"" +
                          Sha256Of(body).ToHex() + "\"}\n";
  return old;
}

// A store without settings is written exactly as before settings existed (version 1, no
// count for them), so older binaries still load it; and such a file, as they wrote it,
// loads.
TEST(SnapshotFormat, WithoutSettingsTheFileIsVersion1AsBefore) {
  MemoryMetaStore source;
  ASSERT_TRUE(source.CreateNamespace(NamespaceRecord{"acme", "b", kNow}).ok());
  Result<std::string> dump = DumpToString(source, "memory");
  ASSERT_TRUE(dump.ok());
  const std::vector<std::string> lines = Lines(*dump);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].rfind("{\"format\":\"cairn-meta-snapshot\",\"version\":1,", 0), 0u)
      << lines[0];
  EXPECT_EQ(dump->find("namespace_setting"), std::string::npos) << *dump;

  // Written by a binary of version 1, before settings.
  const std::string old = Version1Snapshot("aGk=");
  for (const std::string name : {"memory", "sqlite"}) {
    Engine target = MakeEngine(name);
    ASSERT_TRUE(target.store);
    Result<SnapshotCounts> loaded = LoadFromString(*target.store, old);
    ASSERT_TRUE(loaded.ok()) << name << ": " << loaded.status().ToString();
    EXPECT_EQ(loaded->namespaces, 1u);
    EXPECT_EQ(loaded->namespace_settings, 0u);
    EXPECT_EQ(target.store->GetNamespace("acme", "b")->created_at_ms, 5);
    EXPECT_TRUE(target.store->GetNamespaceSettings("acme", "b")->empty());
    Result<ObjectRecord> object = target.store->GetObjectByKey("acme", "b", "k");
    ASSERT_TRUE(object.ok()) << object.status().ToString();
    EXPECT_EQ(object->inline_data, "hi");
  }
}

// Cairn writes only canonical Base64; text whose last character has non-zero unused bits
// ("aGl=" would otherwise decode to "hi" like "aGk=") is refused.
TEST(SnapshotFormat, InlineDataMustBeCanonicalBase64) {
  for (const std::string_view text : {"aGl=", "aGk", "aG k="}) {
    MemoryMetaStore target;
    Result<SnapshotCounts> loaded = LoadFromString(target, Version1Snapshot(text));
    ASSERT_FALSE(loaded.ok()) << text;
    EXPECT_NE(loaded.status().ToString().find("inline_data"), std::string::npos)
        << loaded.status().ToString();
  }
}

// Owners make a snapshot version 3, with their count; without owners a snapshot keeps the
// version it had before them (above), and a version 2 file holding an owner is refused.
TEST(SnapshotFormat, OwnersMakeItVersion3AndOnlyThen) {
  MemoryMetaStore source;
  ASSERT_TRUE(source.SetNamespaceSetting("acme", "b", "acl", "private", kNow).ok());
  Result<std::string> without = DumpToString(source, "memory");
  ASSERT_TRUE(without.ok());
  EXPECT_EQ(without->rfind("{\"format\":\"cairn-meta-snapshot\",\"version\":2,", 0), 0u);
  EXPECT_EQ(without->find("owner"), std::string::npos) << *without;

  const ChunkRef chunk{DigestOf("x"), 10};
  ASSERT_TRUE(source.SetOwnerChunks({"test", "f"}, {{StorageClass::kCold, chunk}}, kNow).ok());
  Result<std::string> with = DumpToString(source, "memory");
  ASSERT_TRUE(with.ok());
  std::vector<std::string> lines = Lines(*with);
  EXPECT_EQ(lines.front().rfind("{\"format\":\"cairn-meta-snapshot\",\"version\":3,", 0), 0u)
      << lines.front();
  for (const std::string& line : {lines.front(), lines.back()}) {
    EXPECT_NE(line.find("\"chunks\":1,\"objects\":0,\"owners\":1}"), std::string::npos) << line;
  }
  EXPECT_NE(
      with->find("\n{\"type\":\"owner\",\"kind\":\"test\",\"id\":\"f\",\"chunks\":[[\"cold\",\"" +
                 chunk.digest.ToHex() + "\",10]]}\n"),
      std::string::npos)
      << *with;

  // The same file claiming version 2: the owner record is refused, nothing is loaded.
  lines.front().replace(lines.front().find("\"version\":3"), 11, "\"version\":2");
  MemoryMetaStore target;
  Result<SnapshotCounts> loaded = LoadFromString(target, Rechecksummed(lines, 0));
  EXPECT_EQ(loaded.status().code(), StatusCode::kInvalidArgument) << loaded.status().ToString();
  EXPECT_NE(loaded.status().message().find("owner record in a version 2 snapshot"),
            std::string::npos)
      << loaded.status().ToString();
  EXPECT_TRUE(IsEmpty(target));
}

// A filesystem volume makes a snapshot version 4: the volume, inode, dentry and xattr
// records follow the owners, a sparse file's owner numbers its entries, and a file that
// claims version 3 is refused rather than loaded without its tree.
TEST(SnapshotFormat, AVolumeMakesItVersion4AndOlderVersionsRefuseItsRecords) {
  MemoryMetaStore source;
  VolumeRecord volume;
  volume.name = "vol";
  volume.uuid = "0b6a3c1e-2f4d-4e5a-9b8c-7d6e5f4a3b2c";
  InodeRecord root;
  root.type = FileType::kDirectory;
  root.nlink = 2;
  root.mode = 0755;
  ASSERT_TRUE(source.FormatVolume(volume, root).ok());
  const ChunkRef chunk{DigestOf("x"), 10};
  ASSERT_TRUE(source
                  .Write(
                      [&](FileTreeTransaction& tx) -> Status {
                        ASSIGN_OR_RETURN(uint64_t ino, tx.NewInodeNumber());
                        InodeRecord file;
                        file.ino = ino;
                        file.nlink = 1;
                        file.size = 3 * 4 * 1024 * 1024;
                        RETURN_IF_ERROR(tx.PutInode(file).status());
                        RETURN_IF_ERROR(tx.PutDentry({kRootInode, "f", ino, FileType::kRegular}));
                        RETURN_IF_ERROR(tx.PutXattr(ino, "user.x", std::string("\0\xff", 2)));
                        return tx.PutBlock(ino, {2, {StorageClass::kHot, chunk}});
                      },
                      kNow)
                  .ok());
  Result<std::string> dump = DumpToString(source, "memory");
  ASSERT_TRUE(dump.ok()) << dump.status().ToString();
  std::vector<std::string> lines = Lines(*dump);
  EXPECT_EQ(lines.front().rfind("{\"format\":\"cairn-meta-snapshot\",\"version\":4,", 0), 0u)
      << lines.front();
  EXPECT_NE(lines.back().find("\"owners\":1,\"volumes\":1,\"inodes\":2,\"dentries\":1,"
                              "\"xattrs\":1}"),
            std::string::npos)
      << lines.back();
  EXPECT_NE(dump->find("\"sequences\":[2]}"), std::string::npos) << *dump;
  EXPECT_NE(dump->find("{\"type\":\"xattr\",\"ino\":2,\"name\":\"user.x\",\"value\":\"AP8=\"}"),
            std::string::npos)
      << *dump;
  MemoryMetaStore copy;
  Result<SnapshotCounts> loaded = LoadFromString(copy, *dump);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  Result<std::string> again = DumpToString(copy, "memory");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Body(*again), Body(*dump));

  lines.front().replace(lines.front().find("\"version\":4"), 11, "\"version\":3");
  MemoryMetaStore target;
  loaded = LoadFromString(target, Rechecksummed(lines, 0));
  EXPECT_EQ(loaded.status().code(), StatusCode::kInvalidArgument) << loaded.status().ToString();
  EXPECT_NE(loaded.status().message().find("owner record in a version 3 snapshot"),
            std::string::npos)
      << loaded.status().ToString();
  EXPECT_TRUE(IsEmpty(target));
  Result<std::optional<VolumeRecord>> none = target.GetVolume();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST(Backup, AMinimumAgeSkipsARoundWhileTheNewestSnapshotIsYounger) {
  TempDir dir;
  MemoryMetaStore store;
  platform::FakeClock clock(kNow);
  backup::BackupOptions options;
  options.directory = dir.path() + "/backups";
  options.engine = "memory";
  options.min_age_ms = 30'000;
  auto first = backup::RunBackup(&store, platform::DefaultFileSystem(), &clock, options);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(first->skipped);
  clock.Advance(29'999);  // another process's round, just too early
  auto early = backup::RunBackup(&store, platform::DefaultFileSystem(), &clock, options);
  ASSERT_TRUE(early.ok()) << early.status().ToString();
  EXPECT_TRUE(early->skipped);
  EXPECT_TRUE(early->path.empty());
  clock.Advance(2);
  auto later = backup::RunBackup(&store, platform::DefaultFileSystem(), &clock, options);
  ASSERT_TRUE(later.ok()) << later.status().ToString();
  EXPECT_FALSE(later->skipped);
  auto kept = backup::ListBackups(platform::DefaultFileSystem(), options.directory);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(*kept, (std::vector<std::string>{first->path, later->path}));
}

// ---- consistency under concurrent writes --------------------------------------------------

// Uploads and deletes run while SQLite snapshots are taken from a separate connection; every
// snapshot must load (the import checks counts against chunk lists, which a torn read
// would break).
TEST(SnapshotConsistency, SqliteSnapshotsTakenDuringWritesLoadCleanly) {
  TempDir dir;
  auto opened = OpenSqliteMetaStore(dir.path() + "/meta.db");
  ASSERT_TRUE(opened.ok());
  std::unique_ptr<MetaStore> store = std::move(opened).value();
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  // Writes until the snapshots are done (bounded): a writer that could finish first, while
  // a loaded machine is slow to open the reader, would leave no write during them.
  std::thread writer([&] {
    for (int i = 0; i < 500000 && !stop; ++i) {
      ObjectRecord object = Object(i, "acme", "busy", "k" + std::to_string(i % 50));
      object.id = platform::NewObjectId();
      if (!store->BeginUpload(object).ok()) continue;
      const ChunkRef shared{DigestOf("shared"), 10};
      const ChunkRef own{DigestOf("own" + std::to_string(i)), 20};
      if (!store->AddChunk(object.id, 0, shared, kNow).ok()) continue;
      if (!store->AddChunk(object.id, 1, own, kNow).ok()) continue;
      object.size_bytes = 30;
      if (store->CommitUpload(object.id, object, kNow).ok()) ++written;
    }
  });
  // A second handle, as `cairn meta dump` is a second process.
  auto reader_store = OpenSqliteMetaStore(dir.path() + "/meta.db");
  ASSERT_TRUE(reader_store.ok());
  int snapshots = 0;
  int written_during = -1;  // commits between the first and the last snapshot
  const int written_before = written.load();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline && (snapshots < 5 || written < 100)) {
    Result<std::string> dump = DumpToString(**reader_store, "sqlite");
    ASSERT_TRUE(dump.ok()) << dump.status().ToString();
    MemoryMetaStore target;
    Result<SnapshotCounts> loaded = LoadFromString(target, *dump);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    ++snapshots;
    written_during = written.load() - written_before;
  }
  stop = true;
  writer.join();
  EXPECT_GE(snapshots, 5);
  EXPECT_GT(written_during, 0) << "no upload committed while the snapshots were taken";
}

// ---- backup files -------------------------------------------------------------------------

TEST(Backup, ParsesDurations) {
  EXPECT_EQ(*backup::ParseDurationMs("90"), 90'000);
  EXPECT_EQ(*backup::ParseDurationMs("2s"), 2'000);
  EXPECT_EQ(*backup::ParseDurationMs("15m"), 900'000);
  EXPECT_EQ(*backup::ParseDurationMs("1h"), 3'600'000);
  EXPECT_EQ(*backup::ParseDurationMs("1h30m"), 5'400'000);
  EXPECT_EQ(*backup::ParseDurationMs("0"), 0);
  for (const char* bad : {"", "h", "1x", "1h30", "-5s", "1.5h"}) {
    EXPECT_EQ(backup::ParseDurationMs(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(Backup, RotationKeepsTheNewestAndFilesArePrivate) {
  TempDir dir;
  MemoryMetaStore store;
  Populate(store);
  platform::FakeClock clock(kNow);
  backup::BackupOptions options;
  options.directory = dir.path() + "/backups";
  options.keep = 3;
  options.engine = "memory";
  std::vector<std::string> written;
  for (int i = 0; i < 5; ++i) {
    auto result = backup::RunBackup(&store, platform::DefaultFileSystem(), &clock, options);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_EQ(result->counts.objects, 6u);
    written.push_back(result->path);
    clock.Advance(1000);
  }
  auto kept = backup::ListBackups(platform::DefaultFileSystem(), options.directory);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(*kept, std::vector<std::string>(written.end() - 3, written.end()));
  size_t entries = 0;
  for (const auto& entry : fs::directory_iterator(options.directory)) {
    ++entries;
    struct stat st;
    ASSERT_EQ(::stat(entry.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << entry.path();
  }
  EXPECT_EQ(entries, 3u);  // no temp files left behind

  // The newest one restores.
  auto file = platform::DefaultFileSystem()->OpenReadable(kept->back());
  ASSERT_TRUE(file.ok());
  auto size = (*file)->Size();
  ASSERT_TRUE(size.ok());
  std::string text(*size, '\0');
  ASSERT_TRUE((*file)->ReadAt(0, text.size(), text.data()).ok());
  MemoryMetaStore restored;
  ASSERT_TRUE(LoadFromString(restored, text).ok());
  EXPECT_TRUE(restored.GetObjectByKey("acme", "photos", "big.bin").ok());
}

TEST(Backup, AKilledWritersTempFileIsRemovedByTheNextWriteButALiveOneIsNot) {
  TempDir dir;
  MemoryMetaStore store;
  Populate(store);
  platform::FileSystem* fs_ = platform::DefaultFileSystem();
  // What a killed `cairn meta dump` leaves: a temp file nobody holds.
  const std::string stale = dir.path() + "/.snapshot-0123456789abcdef.tmp";
  ASSERT_TRUE(fs_->NewWritableFile(stale).ok());  // created, then closed (lock released)
  // A writer still at work holds its temp file locked.
  const std::string live_path = dir.path() + "/.snapshot-fedcba9876543210.tmp";
  auto live = fs_->NewWritableFile(live_path);
  ASSERT_TRUE(live.ok());
  const std::string other = dir.path() + "/.snapshot-notes.txt";  // not ours: untouched
  ASSERT_TRUE(fs_->NewWritableFile(other).ok());

  auto written = backup::WriteSnapshotFile(&store, fs_, dir.path() + "/dump.jsonl", "memory", kNow);
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(live_path));
  EXPECT_TRUE(fs::exists(other));
  EXPECT_TRUE(fs::exists(dir.path() + "/dump.jsonl"));
}

TEST(Backup, AFailedWriteLeavesThePreviousFileIntact) {
  TempDir dir;
  MemoryMetaStore store;
  Populate(store);
  const std::string path = dir.path() + "/dump.jsonl";
  auto first =
      backup::WriteSnapshotFile(&store, platform::DefaultFileSystem(), path, "memory", kNow);
  ASSERT_TRUE(first.ok());
  const std::string before = [&] {
    std::string text(fs::file_size(path), '\0');
    FILE* f = fopen(path.c_str(), "rb");
    EXPECT_EQ(fread(text.data(), 1, text.size(), f), text.size());
    fclose(f);
    return text;
  }();

  // A disk that fills up while the snapshot is written, then one whose fsync fails.
  platform::FaultInjectingFileSystem faulty(platform::DefaultFileSystem());
  faulty.FailAfter(platform::FaultPoint::kAppend, 0, ResourceExhaustedError("disk full"));
  auto full = backup::WriteSnapshotFile(&store, &faulty, path, "memory", kNow);
  EXPECT_EQ(full.status().code(), StatusCode::kResourceExhausted);
  faulty.Clear();
  faulty.FailAfter(platform::FaultPoint::kSync, 0, InternalError("EIO"));
  auto unsynced = backup::WriteSnapshotFile(&store, &faulty, path, "memory", kNow);
  EXPECT_EQ(unsynced.status().code(), StatusCode::kInternal);
  EXPECT_EQ(faulty.injected_failures(), 2u);
  std::string after(fs::file_size(path), '\0');
  FILE* f = fopen(path.c_str(), "rb");
  ASSERT_EQ(fread(after.data(), 1, after.size(), f), after.size());
  fclose(f);
  EXPECT_EQ(after, before);
  size_t entries = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1u);
}

}  // namespace
}  // namespace cairn::meta
