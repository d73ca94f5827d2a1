// The store identity rule (gc/store_identity.h) and what GC and fsck do with orphans,
// quarantined files and the deletion cap.
#include "gc/store_identity.h"
#include "meta/engines/open_meta_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "gc/collector.h"
#include "objects/object_service.h"
#include "platform/clock.h"

namespace cairn::gc {
namespace {

constexpr uint64_t kChunk = 64 * 1024;

class StoreIdentityTest : public ::testing::Test {
 protected:
  StoreIdentityTest() {
    char pattern[] = "/tmp/cairn-identity-XXXXXX";
    root_ = mkdtemp(pattern);
    chunks_ = OpenChunks(root_);
    meta_ = OpenMeta("meta.db");
  }
  ~StoreIdentityTest() override { std::filesystem::remove_all(root_); }

  std::unique_ptr<chunks::ChunkStore> OpenChunks(const std::string& root) {
    return std::move(
        chunks::ChunkStore::Open(platform::DefaultFileSystem(), {root + "/hot", root + "/cold"})
            .value());
  }
  std::unique_ptr<meta::MetaStore> OpenMeta(const std::string& name) {
    return std::move(meta::OpenMetaStore("sqlite://" + root_ + "/" + name).value());
  }
  Result<StoreIdentity> Ensure(meta::MetaStore* meta, bool adopt = false) {
    return EnsureStoreIdentity(meta, chunks_.get(), {adopt});
  }
  // Stores an object through the service, so rows and files agree.
  ObjectId Put(meta::MetaStore* meta, const std::string& key, const std::string& bytes) {
    objects::ObjectServiceOptions options;
    options.inline_threshold_bytes = 16;
    options.chunk_size_bytes = kChunk;
    objects::ObjectService service(meta, chunks_.get(), &clock_, options);
    objects::UploadRequest request;
    request.tenant = "acme";
    request.namespace_name = "ns";
    request.key = key;
    auto upload = service.BeginUpload(request);
    EXPECT_TRUE(upload.ok());
    EXPECT_TRUE((*upload)->Write(bytes).ok());
    auto committed = (*upload)->Commit();
    EXPECT_TRUE(committed.ok()) << committed.status().ToString();
    return committed->object.id;
  }
  // A chunk file no metadata row names.
  Digest WriteOrphan(const std::string& bytes, StorageClass storage_class = StorageClass::kHot) {
    auto writer = chunks_->NewWriter(storage_class);
    EXPECT_TRUE((*writer)->Append(bytes).ok());
    Digest digest = *(*writer)->Finish();
    std::set<std::string> directories;
    EXPECT_TRUE((*writer)->Install(&directories).ok());
    return digest;
  }
  GcOptions Gc() {
    GcOptions options;
    options.grace_ms = 0;
    options.stalled_upload_ms = 0;
    options.store_identity_verified = true;
    return options;
  }
  size_t QuarantineCount(StorageClass storage_class = StorageClass::kHot) {
    return chunks_->ListQuarantine(storage_class)->size();
  }

  std::string root_;
  platform::FakeClock clock_{platform::SystemClock()->NowMs()};
  std::unique_ptr<chunks::ChunkStore> chunks_;
  std::unique_ptr<meta::MetaStore> meta_;
};

TEST_F(StoreIdentityTest, ANewStoreGetsOneIdentityInTheMetadataAndEveryRoot) {
  auto identity = Ensure(meta_.get());
  ASSERT_TRUE(identity.ok()) << identity.status().ToString();
  EXPECT_EQ(identity->store_id.size(), 36u);
  EXPECT_EQ(*meta_->GetStoreIdentity(), std::optional<std::string>(identity->store_id));
  for (StorageClass storage_class : kAllStorageClasses) {
    EXPECT_EQ(*chunks_->ReadStoreId(storage_class), std::optional<std::string>(identity->store_id));
    struct stat st;
    ASSERT_EQ(::stat(chunks_->StoreIdPath(storage_class).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
  }
  // Opening again changes nothing.
  auto again = Ensure(meta_.get());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->store_id, identity->store_id);
  EXPECT_EQ(again->action, "");
}

TEST_F(StoreIdentityTest, AnEmptyMetadataStoreOnRootsHoldingChunksIsRefusedAndNothingMoves) {
  ASSERT_TRUE(Ensure(meta_.get()).ok());
  Put(meta_.get(), "k", std::string(3 * kChunk, 'x') + "tail");
  const size_t files = chunks_->ListChunks(StorageClass::kHot)->size();
  ASSERT_GE(files, 2u);

  // A second node without --meta, or a lost meta.db: a fresh, empty metadata store.
  auto fresh = OpenMeta("other.db");
  auto refused = Ensure(fresh.get());
  ASSERT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("--meta"), std::string::npos);
  EXPECT_NE(refused.status().message().find("cairn meta load"), std::string::npos);
  EXPECT_FALSE(fresh->GetStoreIdentity()->has_value());
  EXPECT_EQ(chunks_->ListChunks(StorageClass::kHot)->size(), files);

  // Even a GC told the identity was checked finds nothing to do with the other metadata
  // in one pass beyond the cap: all the files are "orphans", far more than 10 %.
  clock_.Advance(1000);
  auto stats = RunGc(fresh.get(), chunks_.get(), &clock_, Gc());
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->quarantined_orphan_files, 0u);
  EXPECT_EQ(stats->orphans_left_by_cap, files);
  EXPECT_EQ(chunks_->ListChunks(StorageClass::kHot)->size(), files);

  // The explicit override adopts the roots' identity.
  auto adopted = Ensure(fresh.get(), /*adopt=*/true);
  ASSERT_TRUE(adopted.ok()) << adopted.status().ToString();
  EXPECT_EQ(adopted->store_id, *meta_->GetStoreIdentity().value());
}

TEST_F(StoreIdentityTest, MetadataOfAnotherStoreIsRefusedEvenWithTheOverride) {
  ASSERT_TRUE(Ensure(meta_.get()).ok());
  auto other = OpenMeta("other.db");
  ASSERT_TRUE(other->SetStoreIdentityIfAbsent(NewStoreId()).ok());
  for (bool adopt : {false, true}) {
    auto refused = Ensure(other.get(), adopt);
    ASSERT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(refused.status().message().find("belong"), std::string::npos);
  }
}

TEST_F(StoreIdentityTest, APreIdentityStoreIsAdoptedOnUpgrade) {
  Put(meta_.get(), "k", std::string(2 * kChunk, 'y'));  // rows and files, no identity
  auto identity = Ensure(meta_.get());
  ASSERT_TRUE(identity.ok()) << identity.status().ToString();
  EXPECT_EQ(*chunks_->ReadStoreId(StorageClass::kHot),
            std::optional<std::string>(identity->store_id));
}

TEST_F(StoreIdentityTest, RootsWithAnIdentityButNoChunksGiveItToAFreshMetadataStore) {
  ASSERT_TRUE(Ensure(meta_.get()).ok());
  auto fresh = OpenMeta("other.db");
  auto identity = Ensure(fresh.get());
  ASSERT_TRUE(identity.ok()) << identity.status().ToString();
  EXPECT_EQ(identity->store_id, *meta_->GetStoreIdentity().value());
}

TEST_F(StoreIdentityTest, MetadataRecordingChunksOnRootsWithNoneIsRefused) {
  Put(meta_.get(), "k", std::string(2 * kChunk, 'z'));
  ASSERT_TRUE(Ensure(meta_.get()).ok());
  // Another, empty directory for the roots: an unmounted volume.
  chunks_ = OpenChunks(root_ + "/elsewhere");
  auto refused = Ensure(meta_.get());
  ASSERT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("mounted"), std::string::npos);
}

TEST_F(StoreIdentityTest, NodesStartingTogetherOnOneDatabaseAgree) {
  std::vector<std::string> ids(4);
  std::vector<std::thread> threads;
  for (auto& id : ids) {
    threads.emplace_back([&] {
      auto identity = Ensure(meta_.get());
      if (identity.ok()) id = identity->store_id;
    });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& id : ids) EXPECT_EQ(id, ids.front());
  EXPECT_FALSE(ids.front().empty());
}

TEST_F(StoreIdentityTest, GcQuarantinesOrphansOnlyAfterTheIdentityCheckAndDeletesThemAfterGrace) {
  ASSERT_TRUE(Ensure(meta_.get()).ok());
  for (int i = 0; i < 20; ++i) Put(meta_.get(), "k" + std::to_string(i), std::string(100, 'a' + i));
  const Digest orphan = WriteOrphan("nobody knows me");
  clock_.Advance(1000);

  GcOptions unchecked = Gc();
  unchecked.store_identity_verified = false;
  ASSERT_TRUE(RunGc(meta_.get(), chunks_.get(), &clock_, unchecked).ok());
  EXPECT_TRUE(*chunks_->Contains(StorageClass::kHot, orphan));

  GcOptions options = Gc();
  options.grace_ms = 60'000;
  clock_.Advance(61'000);
  auto stats = RunGc(meta_.get(), chunks_.get(), &clock_, options);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->quarantined_orphan_files, 1u);
  EXPECT_FALSE(*chunks_->Contains(StorageClass::kHot, orphan));
  ASSERT_EQ(QuarantineCount(), 1u);
  EXPECT_EQ(chunks_->ListQuarantine(StorageClass::kHot)->front().digest, orphan);

  // Within the grace period the quarantined file stays; after it, GC deletes it.
  clock_.Advance(30'000);
  ASSERT_TRUE(RunGc(meta_.get(), chunks_.get(), &clock_, options).ok());
  EXPECT_EQ(QuarantineCount(), 1u);
  clock_.Advance(31'000);
  stats = RunGc(meta_.get(), chunks_.get(), &clock_, options);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->deleted_quarantined_files, 1u);
  EXPECT_EQ(QuarantineCount(), 0u);
}

TEST_F(StoreIdentityTest, UnreferencedChunksBeyondTheCapWaitForTheNextPass) {
  ASSERT_TRUE(Ensure(meta_.get()).ok());
  objects::ObjectServiceOptions service_options;
  service_options.inline_threshold_bytes = 16;
  service_options.chunk_size_bytes = kChunk;
  objects::ObjectService service(meta_.get(), chunks_.get(), &clock_, service_options);
  std::vector<ObjectId> ids;
  for (int i = 0; i < 20; ++i)
    ids.push_back(Put(meta_.get(), "k" + std::to_string(i), std::string(100, 'a' + i)));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(service.Delete("acme", ids[i]).ok());
  clock_.Advance(1000);
  auto stats = RunGc(meta_.get(), chunks_.get(), &clock_, Gc());  // cap: 10 % of 20 = 2
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->deleted_chunks, 2u);
  EXPECT_FALSE(stats->capped.empty());
  EXPECT_EQ(stats->orphans_left_by_cap, 0u);
  GcOptions all = Gc();
  all.allow_mass_delete = true;
  stats = RunGc(meta_.get(), chunks_.get(), &clock_, all);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->deleted_chunks, 8u);
  EXPECT_TRUE(stats->capped.empty());
}

TEST_F(StoreIdentityTest, FsckRepairQuarantinesACorruptChunkAndKeepsItsObjects) {
  ASSERT_TRUE(Ensure(meta_.get()).ok());
  const ObjectId id = Put(meta_.get(), "victim", std::string(2 * kChunk, 'v') + "w");
  auto chunks = meta_->GetChunks(id);
  ASSERT_EQ(chunks->size(), 3u);
  const std::string path = chunks_->PathOf(StorageClass::kHot, (*chunks)[1].digest);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(10);
    f.put('!');
  }
  FsckOptions options{true, true, 0};
  options.store_identity_verified = true;
  auto report = RunFsck(meta_.get(), chunks_.get(), &clock_, options);
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok());
  ASSERT_EQ(report->corrupt_chunks.size(), 1u);
  ASSERT_EQ(report->affected_objects.size(), 1u);
  EXPECT_NE(report->affected_objects[0].find(id.ToString()), std::string::npos);
  EXPECT_EQ(QuarantineCount(), 1u);
  EXPECT_FALSE(std::filesystem::exists(path));
  // Still recorded (COMMITTED), not DELETING.
  EXPECT_TRUE(meta_->GetObject("acme", id).ok());

  // Uploading the same content again writes the chunk back: the object is whole again.
  Put(meta_.get(), "healer", std::string(2 * kChunk, 'v') + "w");
  auto after = RunFsck(meta_.get(), chunks_.get(), &clock_, {false, true, 0});
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->ok());
}

TEST_F(StoreIdentityTest, FsckRepairRestoresAMissingChunkFromTheQuarantine) {
  ASSERT_TRUE(Ensure(meta_.get()).ok());
  const ObjectId id = Put(meta_.get(), "k", std::string(kChunk, 'q'));
  const Digest digest = (*meta_->GetChunks(id))[0].digest;
  ASSERT_TRUE(chunks_->Quarantine(StorageClass::kHot, digest, clock_.NowMs()).ok());
  FsckOptions options{true, true, 0};
  options.store_identity_verified = true;
  auto report = RunFsck(meta_.get(), chunks_.get(), &clock_, options);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->missing_chunks.size(), 1u);
  EXPECT_TRUE(*chunks_->Contains(StorageClass::kHot, digest));
  EXPECT_EQ(QuarantineCount(), 0u);
  EXPECT_TRUE(RunFsck(meta_.get(), chunks_.get(), &clock_, {false, true, 0})->ok());
}

TEST_F(StoreIdentityTest, FsckReportsADamagedSqliteDatabaseAndRepairsNothing) {
  ASSERT_TRUE(Ensure(meta_.get()).ok());
  for (int i = 0; i < 200; ++i) {
    Put(meta_.get(), "page-probe-" + std::to_string(i), std::string(100, 'a'));
  }
  meta_.reset();  // closes the database (checkpoints the WAL)
  {
    // Garbles a whole page, its header included, so that integrity_check sees it: the first
    // page that holds an object's key (a leaf of the objects table or of its key index).
    // Not any page: one of the schema's would keep the database from opening at all. The
    // page size is the header's (big-endian at offset 16).
    std::fstream f(root_ + "/meta.db", std::ios::in | std::ios::out | std::ios::binary);
    const std::string file((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    ASSERT_GT(file.size(), 100u);
    const size_t page = static_cast<size_t>(static_cast<unsigned char>(file[16])) << 8 |
                        static_cast<unsigned char>(file[17]);
    ASSERT_GE(page, 512u);
    const size_t at = file.find("page-probe-137");
    ASSERT_NE(at, std::string::npos);
    ASSERT_GT(at / page, 0u);  // not the first page, which starts with the schema
    f.clear();
    f.seekp(static_cast<std::streamoff>(at / page * page));
    for (size_t i = 0; i < page; ++i) f.put(static_cast<char>(0xA5));
  }
  auto reopened = meta::OpenMetaStore("sqlite://" + root_ + "/meta.db");
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  meta_ = std::move(reopened).value();
  FsckOptions options{true, true, 0};
  options.store_identity_verified = true;
  auto report = RunFsck(meta_.get(), chunks_.get(), &clock_, options);
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok());
  EXPECT_FALSE(report->metadata_problems.empty());
  EXPECT_EQ(QuarantineCount(), 0u);
}

}  // namespace
}  // namespace cairn::gc
