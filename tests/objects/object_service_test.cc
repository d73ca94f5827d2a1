#include "objects/object_service.h"
#include "meta/engines/open_meta_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <thread>

#include "gc/collector.h"
#include "objects/multipart.h"
#include "platform/fault_injection.h"

#include "random_bytes.h"

namespace cairn::objects {
namespace {

constexpr uint64_t kChunk = 64 * 1024;

using ::cairn::testing::RandomBytes;

gc::GcOptions GcWithGrace(int64_t grace_ms) {
  gc::GcOptions options;
  options.grace_ms = grace_ms;
  options.stalled_upload_ms = grace_ms;
  options.allow_mass_delete = true;  // small stores: most chunks are garbage at once
  return options;
}

// A chunk store, a SQLite metadata store and the service over them, in a fresh temp dir.
struct TestStores {
  explicit TestStores(platform::FileSystem* file_system) {
    char pattern[] = "/tmp/cairn-objects-XXXXXX";
    root = mkdtemp(pattern);
    chunks =
        std::move(chunks::ChunkStore::Open(file_system, {root + "/hot", root + "/cold"}).value());
    meta = std::move(meta::OpenMetaStore("sqlite://" + root + "/meta.db").value());
    ObjectServiceOptions options;
    options.inline_threshold_bytes = 1024;
    options.chunk_size_bytes = kChunk;
    service = std::make_unique<ObjectService>(meta.get(), chunks.get(), &clock, options);
  }
  ~TestStores() { std::filesystem::remove_all(root); }

  std::string root;
  platform::FakeClock clock{1'700'000'000'000};
  std::unique_ptr<chunks::ChunkStore> chunks;
  std::unique_ptr<meta::MetaStore> meta;
  std::unique_ptr<ObjectService> service;
};

class ObjectServiceTest : public ::testing::Test {
 protected:
  Result<meta::CommitResult> Put(const std::string& key, const std::string& bytes,
                                 StorageClass storage_class = StorageClass::kHot,
                                 size_t piece = 7000) {
    UploadRequest request;
    request.tenant = "acme";
    request.namespace_name = "models";
    request.key = key;
    request.storage_class = storage_class;
    auto upload = service_->BeginUpload(request);
    if (!upload.ok()) return upload.status();
    for (size_t i = 0; i < bytes.size(); i += piece) {
      RETURN_IF_ERROR((*upload)->Write(std::string_view(bytes).substr(i, piece)));
    }
    return (*upload)->Commit();
  }

  std::string ReadAll(const meta::ObjectRecord& object, size_t piece = 5000) {
    auto reader = service_->OpenReader(object);
    EXPECT_TRUE(reader.ok());
    std::string out;
    std::string buffer(piece, '\0');
    for (uint64_t offset = 0; offset < object.size_bytes;) {
      auto n = (*reader)->Read(offset, piece, buffer.data());
      EXPECT_TRUE(n.ok());
      if (!n.ok() || *n == 0) break;
      out.append(buffer.data(), *n);
      offset += *n;
    }
    return out;
  }

  gc::FsckReport Fsck() {
    auto report = gc::RunFsck(meta_.get(), chunks_.get(), &clock_, {false, true, 0});
    EXPECT_TRUE(report.ok());
    return *report;
  }

  TestStores stores_{platform::DefaultFileSystem()};
  platform::FakeClock& clock_ = stores_.clock;
  std::unique_ptr<chunks::ChunkStore>& chunks_ = stores_.chunks;
  std::unique_ptr<meta::MetaStore>& meta_ = stores_.meta;
  std::unique_ptr<ObjectService>& service_ = stores_.service;
};

TEST_F(ObjectServiceTest, SizesAroundTheInlineAndChunkBoundariesRoundTrip) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{1024}, size_t{1025}, size_t{kChunk - 1},
                      size_t{kChunk}, size_t{kChunk + 1}, size_t{3 * kChunk + 5}}) {
    std::string bytes = RandomBytes(size, static_cast<uint32_t>(size));
    auto committed = Put("k" + std::to_string(size), bytes);
    ASSERT_TRUE(committed.ok()) << size << ": " << committed.status().ToString();
    EXPECT_EQ(committed->object.size_bytes, size);
    EXPECT_EQ(committed->object.content_hash, Sha256Of(bytes));
    auto stat = service_->StatByKey("acme", "models", "k" + std::to_string(size));
    ASSERT_TRUE(stat.ok());
    EXPECT_EQ(ReadAll(*stat), bytes) << size;
    EXPECT_EQ(stat->inline_data.has_value(), size <= 1024);
  }
  EXPECT_TRUE(Fsck().ok());
}

TEST_F(ObjectServiceTest, IdenticalContentIsStoredOncePerClass) {
  std::string bytes = RandomBytes(4 * kChunk, 7);
  ASSERT_TRUE(Put("a", bytes).ok());
  ASSERT_TRUE(Put("b", bytes).ok());
  ASSERT_TRUE(Put("c", bytes).ok());
  ASSERT_TRUE(Put("d", bytes, StorageClass::kCold).ok());
  EXPECT_EQ(chunks_->ListChunks(StorageClass::kHot)->size(), 4u);
  EXPECT_EQ(chunks_->ListChunks(StorageClass::kCold)->size(), 4u);
  auto usage = service_->Usage("acme");
  ASSERT_TRUE(usage.ok());
  for (const auto& row : usage->rows) {
    if (row.storage_class == StorageClass::kHot) {
      EXPECT_EQ(row.logical_bytes, 3 * bytes.size());
      EXPECT_EQ(row.physical_bytes, bytes.size());
    } else {
      EXPECT_EQ(row.logical_bytes, bytes.size());
      EXPECT_EQ(row.physical_bytes, bytes.size());
    }
  }
}

TEST_F(ObjectServiceTest, DeleteThenGcAfterGraceFreesSpaceAndFsckIsClean) {
  std::string bytes = RandomBytes(2 * kChunk + 3, 9);
  auto a = Put("a", bytes);
  auto b = Put("b", bytes);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(service_->Delete("acme", a->object.id).ok());
  EXPECT_EQ(ReadAll(*service_->StatByKey("acme", "models", "b")), bytes);
  ASSERT_TRUE(service_->DeleteByKey("acme", "models", "b").ok());
  EXPECT_EQ(service_->Stat("acme", b->object.id).status().code(), StatusCode::kNotFound);

  gc::GcOptions options;
  options.grace_ms = 60'000;
  options.allow_mass_delete = true;  // every chunk of this small store is garbage
  auto early = gc::RunGc(meta_.get(), chunks_.get(), &clock_, options);
  ASSERT_TRUE(early.ok());
  EXPECT_EQ(early->deleted_chunks, 0u);  // still inside the grace period
  EXPECT_EQ(chunks_->ListChunks(StorageClass::kHot)->size(), 3u);
  clock_.Advance(61'000);
  auto late = gc::RunGc(meta_.get(), chunks_.get(), &clock_, options);
  ASSERT_TRUE(late.ok());
  EXPECT_EQ(late->deleted_chunks, 3u);
  EXPECT_TRUE(chunks_->ListChunks(StorageClass::kHot)->empty());
  EXPECT_TRUE(Fsck().ok());
}

TEST_F(ObjectServiceTest, GcAndFsckReportWhereTheyAre) {
  // 600 distinct chunks: fsck's re-hash phase reports within itself, not only at its ends.
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(Put("k" + std::to_string(i), RandomBytes(2 * kChunk, 100 + i)).ok());
  }
  std::vector<gc::Progress> seen;
  auto record = [&seen](const gc::Progress& progress) { seen.push_back(progress); };
  gc::FsckOptions fsck;
  fsck.on_progress = record;
  auto report = gc::RunFsck(meta_.get(), chunks_.get(), &clock_, fsck);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok());
  std::vector<gc::Progress> rehash;
  for (const auto& p : seen) {
    if (std::string(p.phase) == "re-hashing chunks") rehash.push_back(p);
  }
  ASSERT_GE(rehash.size(), 3u);  // start, at least one step, end
  EXPECT_EQ(rehash.front().done, 0u);
  EXPECT_EQ(rehash.back().done, 600u);
  EXPECT_EQ(rehash.back().total, 600u);
  for (size_t i = 1; i < rehash.size(); ++i) EXPECT_GE(rehash[i].done, rehash[i - 1].done);
  EXPECT_EQ(std::string(seen.back().phase), "recounting usage");

  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(service_->DeleteByKey("acme", "models", "k" + std::to_string(i)).ok());
  }
  clock_.Advance(10'000);
  seen.clear();
  gc::GcOptions gc_options;
  gc_options.grace_ms = 0;
  gc_options.allow_mass_delete = true;
  gc_options.on_progress = record;
  auto stats = gc::RunGc(meta_.get(), chunks_.get(), &clock_, gc_options);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->deleted_chunks, 600u);
  uint64_t removed = 0;
  for (const auto& p : seen) {
    if (std::string(p.phase) == "removing unreferenced chunks") removed = p.done;
  }
  EXPECT_EQ(removed, 600u);
}

TEST_F(ObjectServiceTest, OverwriteReplacesAtomicallyAndOldIdDisappears) {
  auto first = Put("same", RandomBytes(3 * kChunk, 1));
  auto second = Put("same", "small new content");
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_TRUE(second->replaced_object.has_value());
  EXPECT_EQ(*second->replaced_object, first->object.id);
  EXPECT_EQ(service_->Stat("acme", first->object.id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ReadAll(*service_->StatByKey("acme", "models", "same")), "small new content");
}

TEST_F(ObjectServiceTest, WrongDeclaredHashOrLengthStoresNothing) {
  std::string bytes = RandomBytes(3 * kChunk, 3);
  UploadRequest request;
  request.tenant = "acme";
  request.namespace_name = "models";
  request.key = "bad-hash";
  request.expected_sha256 = Sha256Of("something else");
  auto upload = service_->BeginUpload(request);
  ASSERT_TRUE(upload.ok());
  ASSERT_TRUE((*upload)->Write(bytes).ok());
  Status committed = (*upload)->Commit().status();
  EXPECT_EQ(committed.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(committed.reason(), ErrorReason::kContentHashMismatch) << committed.ToString();

  request.key = "bad-md5";
  request.expected_sha256.reset();
  request.expected_md5 = std::string(16, '\x5a');
  upload = service_->BeginUpload(request);
  ASSERT_TRUE((*upload)->Write(bytes).ok());
  committed = (*upload)->Commit().status();
  EXPECT_EQ(committed.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(committed.reason(), ErrorReason::kBadDigest) << committed.ToString();

  request.key = "short-body";
  request.expected_md5.reset();
  request.expected_size = bytes.size() + 10;
  upload = service_->BeginUpload(request);
  ASSERT_TRUE((*upload)->Write(bytes).ok());
  committed = (*upload)->Commit().status();
  EXPECT_EQ(committed.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(committed.reason(), ErrorReason::kBodyLengthMismatch) << committed.ToString();

  request.key = "long-body";
  request.expected_size = bytes.size() - 1;
  upload = service_->BeginUpload(request);
  Status written = (*upload)->Write(bytes);
  EXPECT_EQ(written.reason(), ErrorReason::kBodyLengthMismatch) << written.ToString();

  EXPECT_TRUE(service_->List({"acme", "models", "", "", 100})->objects.empty());
  clock_.Advance(1);  // the cutoff is exclusive
  auto gc_stats = gc::RunGc(meta_.get(), chunks_.get(), &clock_, GcWithGrace(0));
  ASSERT_TRUE(gc_stats.ok());
  EXPECT_TRUE(chunks_->ListChunks(StorageClass::kHot)->empty());
  EXPECT_TRUE(Fsck().ok());
}

TEST_F(ObjectServiceTest, AbandonedUploadIsReapedAfterGrace) {
  UploadRequest request;
  request.tenant = "acme";
  request.namespace_name = "models";
  request.key = "abandoned";
  auto upload = service_->BeginUpload(request);
  ASSERT_TRUE((*upload)->Write(RandomBytes(2 * kChunk + 1, 4)).ok());
  // Simulate a crash: the WRITING row and its chunks stay behind.
  auto records = meta_->ListChunks();
  EXPECT_EQ(records->size(), 2u);
  // The upload object stays alive and never aborts, as in a crashed process; it is
  // destroyed only when the test ends.
  clock_.Advance(10'000);
  auto stats = gc::RunGc(meta_.get(), chunks_.get(), &clock_, GcWithGrace(5'000));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->reaped_uploads, 1u);
  clock_.Advance(10'000);
  stats = gc::RunGc(meta_.get(), chunks_.get(), &clock_, GcWithGrace(5'000));
  EXPECT_TRUE(chunks_->ListChunks(StorageClass::kHot)->empty());
}

TEST_F(ObjectServiceTest, LiveUploadSurvivesGcWithZeroGrace) {
  std::string bytes = RandomBytes(3 * kChunk + 11, 8);
  UploadRequest request;
  request.tenant = "acme";
  request.namespace_name = "models";
  request.key = "live";
  auto upload = service_->BeginUpload(request);
  ASSERT_TRUE((*upload)->Write(std::string_view(bytes).substr(0, 2 * kChunk + 1)).ok());
  gc::GcOptions options;
  options.grace_ms = 0;  // stalled_upload_ms keeps its default
  clock_.Advance(60'000);
  auto stats = gc::RunGc(meta_.get(), chunks_.get(), &clock_, options);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->reaped_uploads, 0u);
  EXPECT_EQ(stats->deleted_chunks, 0u);
  EXPECT_EQ(stats->deleted_temp_files, 0u);  // the writer holds its temp file's lock
  ASSERT_TRUE((*upload)->Write(std::string_view(bytes).substr(2 * kChunk + 1)).ok());
  auto committed = (*upload)->Commit();
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  EXPECT_EQ(ReadAll(committed->object), bytes);
}

// An old temp file nobody holds is stale (fsck reports it, --repair removes it); one a
// live writer holds, or a mount's spare made ahead and idle since, is not, however old.
TEST_F(ObjectServiceTest, FsckCallsOnlyUnheldOldTempFilesStale) {
  chunks_->KeepSpareTempFiles(StorageClass::kHot, 2);
  auto writer = chunks_->NewWriter(StorageClass::kHot);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append("held").ok());
  const std::string abandoned = chunks_->RootOf(StorageClass::kHot) + "/tmp/abandoned.part";
  { std::ofstream(abandoned) << "left by a crash"; }
  for (int i = 0; i < 500 && chunks_->ListTempFiles(StorageClass::kHot)->size() < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(chunks_->ListTempFiles(StorageClass::kHot)->size(), 4u);
  clock_.Set(platform::SystemClock()->NowMs() + 86'400'000);  // a day later: all are old
  gc::FsckOptions repair{true, true, 0};
  repair.store_identity_verified = true;
  auto report = gc::RunFsck(meta_.get(), chunks_.get(), &clock_, repair);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->stale_temp_files, std::vector<std::string>{abandoned});
  EXPECT_FALSE(std::filesystem::exists(abandoned)) << "--repair removes what nobody holds";
  EXPECT_EQ(chunks_->ListTempFiles(StorageClass::kHot)->size(), 3u) << "the held ones stay";
}

TEST_F(ObjectServiceTest, FsckFindsMissingCorruptAndOrphanedChunksAndRepairs) {
  std::string bytes = RandomBytes(2 * kChunk, 5);
  auto victim = Put("victim", bytes);
  ASSERT_TRUE(victim.ok());
  auto chunks = meta_->GetChunks(victim->object.id);
  ASSERT_EQ(chunks->size(), 2u);
  std::filesystem::remove(chunks_->PathOf(StorageClass::kHot, (*chunks)[0].digest));
  FILE* f = fopen(chunks_->PathOf(StorageClass::kHot, (*chunks)[1].digest).c_str(), "r+");
  fputc('!', f);
  fclose(f);
  auto orphan = chunks_->NewWriter(StorageClass::kHot);
  ASSERT_TRUE((*orphan)->Append("orphan").ok());
  ASSERT_TRUE((*orphan)->Finish().ok());
  std::set<std::string> directories;
  ASSERT_TRUE((*orphan)->Install(&directories).ok());

  gc::FsckReport report = Fsck();
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(report.missing_chunks.size(), 1u);
  EXPECT_EQ(report.corrupt_chunks.size(), 1u);
  EXPECT_EQ(report.orphaned_chunks.size(), 1u);

  gc::FsckOptions repair{true, true, 0};
  repair.store_identity_verified = true;
  repair.allow_mass_delete = true;  // one orphan among three files
  auto repaired = gc::RunFsck(meta_.get(), chunks_.get(), &clock_, repair);
  ASSERT_TRUE(repaired.ok());
  EXPECT_FALSE(repaired->ok());
  // The object stays recorded (a later upload of the same content heals it); the corrupt
  // and the orphaned file are in the quarantine, never deleted.
  EXPECT_TRUE(service_->Stat("acme", victim->object.id).ok());
  EXPECT_EQ(chunks_->ListQuarantine(StorageClass::kHot)->size(), 2u);
  report = Fsck();
  EXPECT_EQ(report.missing_chunks.size(), 2u);
  EXPECT_TRUE(report.corrupt_chunks.empty());
  EXPECT_TRUE(report.orphaned_chunks.empty());
  ASSERT_TRUE(Put("again", bytes).ok());
  EXPECT_TRUE(Fsck().ok());
  EXPECT_EQ(ReadAll(*service_->Stat("acme", victim->object.id)), bytes);
}

// A file of the filesystem front end (here the test-only owner kind "test") shares an
// object's chunks: GC after the object's delete keeps them, fsck names the owner when one
// goes missing, and --repair recounts without dropping the owner's references.
TEST_F(ObjectServiceTest, GcAndFsckCountAGenericOwnersReferences) {
  std::string bytes = RandomBytes(3 * kChunk, 9);
  auto object = Put("shared", bytes);
  ASSERT_TRUE(object.ok());
  auto chunks = meta_->GetChunks(object->object.id);
  ASSERT_EQ(chunks->size(), 3u);
  const meta::ChunkOwner file{"test", "file-1"};
  ASSERT_TRUE(
      meta_
          ->SetOwnerChunks(file,
                           {{StorageClass::kHot, (*chunks)[0]}, {StorageClass::kHot, (*chunks)[1]}},
                           clock_.NowMs())
          .ok());
  ASSERT_TRUE(service_->Delete("acme", object->object.id).ok());
  clock_.Advance(1000);
  auto gc_stats = gc::RunGc(meta_.get(), chunks_.get(), &clock_, GcWithGrace(0));
  ASSERT_TRUE(gc_stats.ok()) << gc_stats.status().ToString();
  // The object's third chunk is gone; the two the file names stay.
  EXPECT_FALSE(std::filesystem::exists(chunks_->PathOf(StorageClass::kHot, (*chunks)[2].digest)));
  EXPECT_TRUE(std::filesystem::exists(chunks_->PathOf(StorageClass::kHot, (*chunks)[0].digest)));
  EXPECT_TRUE(std::filesystem::exists(chunks_->PathOf(StorageClass::kHot, (*chunks)[1].digest)));
  EXPECT_TRUE(Fsck().ok());

  std::filesystem::remove(chunks_->PathOf(StorageClass::kHot, (*chunks)[1].digest));
  gc::FsckReport report = Fsck();
  EXPECT_EQ(report.missing_chunks.size(), 1u);
  EXPECT_TRUE(report.affected_objects.empty());
  ASSERT_EQ(report.affected_owners.size(), 1u);
  EXPECT_EQ(report.affected_owners[0].rfind("test:file-1: hot/", 0), 0u)
      << report.affected_owners[0];

  gc::FsckOptions repair{true, true, 0};
  repair.store_identity_verified = true;
  auto repaired = gc::RunFsck(meta_.get(), chunks_.get(), &clock_, repair);
  ASSERT_TRUE(repaired.ok());
  auto listed = meta_->GetOwnerChunks(file);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 2u);
  auto references = meta_->CheckReferences();
  ASSERT_TRUE(references.ok());
  for (const meta::FsckReferenceRow& row : *references) {
    EXPECT_EQ(row.recorded_ref_count, row.actual_ref_count);
    EXPECT_EQ(row.recorded_ref_count, 1);
    EXPECT_EQ(row.owner_ref_count, 1);
  }
  // Dropping the file's list makes its chunks garbage like any other.
  ASSERT_TRUE(meta_->DropOwnerChunks(file, clock_.NowMs()).ok());
  clock_.Advance(1000);
  ASSERT_TRUE(gc::RunGc(meta_.get(), chunks_.get(), &clock_, GcWithGrace(0)).ok());
  EXPECT_EQ(*meta_->CountChunks(), 0u);
}

}  // namespace
}  // namespace cairn::objects

namespace cairn::objects {
namespace {

// Every failure of the file system during an upload leaves the store as it was: the
// previous object at the key stays readable, nothing new is visible, and after GC no
// chunk, temp file or reference of the failed upload remains.
class UploadFaultTest : public ::testing::TestWithParam<platform::FaultPoint> {
 protected:
  Result<meta::CommitResult> Put(const std::string& bytes) {
    UploadRequest request;
    request.tenant = "acme";
    request.namespace_name = "models";
    request.key = "k";
    ASSIGN_OR_RETURN(auto upload, service_->BeginUpload(request));
    for (size_t i = 0; i < bytes.size(); i += 10000) {
      RETURN_IF_ERROR(upload->Write(std::string_view(bytes).substr(i, 10000)));
    }
    return upload->Commit();
  }

  platform::FaultInjectingFileSystem faulty_{platform::DefaultFileSystem()};
  TestStores stores_{&faulty_};
  platform::FakeClock& clock_ = stores_.clock;
  std::unique_ptr<chunks::ChunkStore>& chunks_ = stores_.chunks;
  std::unique_ptr<meta::MetaStore>& meta_ = stores_.meta;
  std::unique_ptr<ObjectService>& service_ = stores_.service;
};

// A re-upload of stored content writes no chunk byte: with every file creation failing,
// it still succeeds, and it counts every chunk as deduplicated.
TEST_F(UploadFaultTest, ReuploadOfStoredContentCreatesNoFile) {
  const std::string bytes = RandomBytes(3 * kChunk + 77, 102);
  ASSERT_TRUE(Put(bytes).ok());
  faulty_.FailAfter(platform::FaultPoint::kCreate, 0,
                    InternalError("injected: no file may be created"));
  UploadRequest request;
  request.tenant = "acme";
  request.namespace_name = "models";
  request.key = "again";
  auto upload = service_->BeginUpload(request);
  ASSERT_TRUE(upload.ok());
  ASSERT_TRUE((*upload)->Write(bytes).ok());
  auto committed = (*upload)->Commit();
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  EXPECT_EQ(faulty_.injected_failures(), 0u);
  EXPECT_EQ((*upload)->deduplicated_chunks(), 4u);
  EXPECT_EQ((*upload)->deduplicated_bytes(), bytes.size());
  EXPECT_EQ(committed->object.content_hash, Sha256Of(bytes));
}

// Deferred storage: chunks are stored on another thread while the next bytes are hashed,
// as the HTTP upload pipeline does. The result is the same object as a plain upload.
TEST_F(UploadFaultTest, ChunksStoredOnAnotherThreadWhileHashingGiveTheSameObject) {
  const std::string bytes = RandomBytes(9 * kChunk + 5, 103);
  UploadRequest request;
  request.tenant = "acme";
  request.namespace_name = "models";
  request.key = "deferred";
  request.compute_md5 = false;
  auto begun = service_->BeginUpload(request);
  ASSERT_TRUE(begun.ok());
  std::unique_ptr<Upload> upload = std::move(begun).value();
  upload->DeferChunkStorage();
  std::future<Status> storing;
  for (size_t i = 0; i < bytes.size(); i += 50000) {
    ASSERT_TRUE(upload->Write(std::string_view(bytes).substr(i, 50000)).ok());
    std::vector<SealedChunk> sealed = upload->TakeSealedChunks();
    if (sealed.empty()) continue;
    if (storing.valid()) {
      ASSERT_TRUE(storing.get().ok());
    }
    Upload* raw = upload.get();
    storing = std::async(std::launch::async, [raw, chunks = std::move(sealed)]() mutable {
      return raw->StoreChunks(std::move(chunks));
    });
  }
  if (storing.valid()) {
    ASSERT_TRUE(storing.get().ok());
  }
  auto committed = upload->Commit();
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  EXPECT_EQ(committed->object.content_hash, Sha256Of(bytes));
  EXPECT_EQ(committed->object.etag, EtagWithoutMd5(Sha256Of(bytes)));
  auto chunks = meta_->GetChunks(committed->object.id);
  ASSERT_TRUE(chunks.ok());
  ASSERT_EQ(chunks->size(), 10u);
  for (size_t i = 0; i < chunks->size(); ++i) {
    const std::string_view expected = std::string_view(bytes).substr(i * kChunk, kChunk);
    EXPECT_EQ((*chunks)[i].digest, Sha256Of(expected)) << "chunk " << i;
    EXPECT_EQ(*chunks_->Rehash(StorageClass::kHot, (*chunks)[i].digest), Sha256Of(expected));
  }
  EXPECT_TRUE(chunks_->ListTempFiles(StorageClass::kHot)->empty());
  auto report = gc::RunFsck(meta_.get(), chunks_.get(), &clock_, {false, true, 0});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok());
}

TEST_P(UploadFaultTest, FailedUploadChangesNothingVisibleAndLeavesNoGarbage) {
  const std::string old_bytes = RandomBytes(2 * kChunk + 9, 100);
  auto old_object = Put(old_bytes);
  ASSERT_TRUE(old_object.ok());
  const auto chunks_before = *chunks_->ListChunks(StorageClass::kHot);

  // Fail the second call at the fault point: the first chunk got through, the second not.
  faulty_.FailAfter(GetParam(), 1, ResourceExhaustedError("injected: no space left on device"));
  auto failed = Put(RandomBytes(4 * kChunk + 3, 101));
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kResourceExhausted) << failed.status().ToString();
  EXPECT_GE(faulty_.injected_failures(), 1u);
  faulty_.Clear();

  auto current = service_->StatByKey("acme", "models", "k");
  ASSERT_TRUE(current.ok());
  EXPECT_EQ(current->id, old_object->object.id);
  auto list = service_->List({"acme", "models", "", "", 10});
  ASSERT_EQ(list->objects.size(), 1u);

  gc::GcOptions options;
  options.grace_ms = 0;
  options.stalled_upload_ms = 0;
  options.allow_mass_delete = true;  // the failed upload's chunks outnumber the cap
  clock_.Advance(1);
  ASSERT_TRUE(gc::RunGc(meta_.get(), chunks_.get(), &clock_, options).ok());
  EXPECT_EQ(*chunks_->ListChunks(StorageClass::kHot), chunks_before);
  EXPECT_TRUE(chunks_->ListTempFiles(StorageClass::kHot)->empty());
  auto report = gc::RunFsck(meta_.get(), chunks_.get(), &clock_, {false, true, 0});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok());

  // The store still works once the disk recovers.
  auto retried = Put(RandomBytes(4 * kChunk + 3, 101));
  ASSERT_TRUE(retried.ok()) << retried.status().ToString();
}

INSTANTIATE_TEST_SUITE_P(EveryWriteStep, UploadFaultTest,
                         ::testing::Values(platform::FaultPoint::kCreate,
                                           platform::FaultPoint::kAppend,
                                           platform::FaultPoint::kSync,
                                           platform::FaultPoint::kRename,
                                           platform::FaultPoint::kSyncDirectory));

// Multipart: the states an abort passes through, set up one step at a time.
class MultipartTest : public ObjectServiceTest {
 protected:
  MultipartUpload Start(const std::string& key) {
    auto upload = multipart_.Create("acme", "models", key, StorageClass::kHot, "", {});
    EXPECT_TRUE(upload.ok()) << upload.status().ToString();
    return *upload;
  }
  PartInfo AddPart(const MultipartUpload& upload, int number, const std::string& bytes) {
    auto part = multipart_.BeginPart(upload, number, bytes.size());
    EXPECT_TRUE(part.ok());
    EXPECT_TRUE((*part)->Write(bytes).ok());
    auto committed = (*part)->Commit();
    EXPECT_TRUE(committed.ok()) << committed.status().ToString();
    return PartInfo{number, committed->object.etag, bytes.size(), 0, committed->object.id, {}};
  }
  Status Remove(const ObjectId& id) {
    return meta_->DeleteObject("acme", id, clock_.NowMs()).status();
  }

  MultipartService multipart_{service_.get()};
};

TEST_F(MultipartTest, CompleteAfterAnAbortBeganIsNoSuchUploadNeverInvalidPart) {
  // The abort retired the record, its parts not yet: the commit finds the record gone.
  MultipartUpload upload = Start("a");
  PartInfo part = AddPart(upload, 1, RandomBytes(3 * kChunk, 1));
  ASSERT_TRUE(Remove(upload.record_id).ok());
  auto completed = multipart_.Complete(upload, {{1, part.etag}});
  EXPECT_EQ(completed.status().code(), StatusCode::kNotFound) << completed.status().ToString();

  // Record and a part gone: the missing part is the abort's doing, so again NoSuchUpload.
  MultipartUpload second = Start("b");
  PartInfo one = AddPart(second, 1, RandomBytes(kMinPartSizeBytes, 2));
  PartInfo two = AddPart(second, 2, RandomBytes(100, 3));
  ASSERT_TRUE(Remove(second.record_id).ok());
  ASSERT_TRUE(Remove(one.object_id).ok());
  completed = multipart_.Complete(second, {{1, one.etag}, {2, two.etag}});
  EXPECT_EQ(completed.status().code(), StatusCode::kNotFound) << completed.status().ToString();
  EXPECT_EQ(completed.status().reason(), ErrorReason::kNoSuchUpload);
  EXPECT_EQ(service_->StatByKey("acme", "models", "b").status().code(), StatusCode::kNotFound);

  // A live upload with a part missing is still InvalidPart.
  MultipartUpload third = Start("c");
  completed = multipart_.Complete(third, {{1, one.etag}});
  EXPECT_EQ(completed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(completed.status().reason(), ErrorReason::kInvalidPart);
}

TEST_F(MultipartTest, ExpiryAbortsOldUploadsAndOrphanedPartsAndGcReclaimsTheirChunks) {
  MultipartUpload old_upload = Start("old");
  AddPart(old_upload, 1, RandomBytes(2 * kChunk, 10));
  // An interrupted abort: the record is gone, its part is left.
  MultipartUpload interrupted = Start("interrupted");
  AddPart(interrupted, 1, RandomBytes(2 * kChunk, 11));
  ASSERT_TRUE(Remove(interrupted.record_id).ok());
  clock_.Advance(10'000);
  const TimestampMs cutoff = clock_.NowMs();
  clock_.Advance(1);
  MultipartUpload young = Start("young");
  const std::string young_bytes = RandomBytes(2 * kChunk, 12);
  PartInfo young_part = AddPart(young, 1, young_bytes);
  EXPECT_EQ(chunks_->ListChunks(StorageClass::kHot)->size(), 6u);

  auto stats = multipart_.ExpireUploads(cutoff);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->expired_uploads, 1u);
  EXPECT_EQ(stats->orphaned_parts, 1u);
  EXPECT_EQ(multipart_.Get("acme", "models", "old", old_upload.upload_id).status().code(),
            StatusCode::kNotFound);
  auto uploads = multipart_.ListUploads("acme", "models", "");
  ASSERT_TRUE(uploads.ok());
  ASSERT_EQ(uploads->size(), 1u);
  EXPECT_EQ((*uploads)[0].upload_id, young.upload_id);
  // A second pass finds nothing more to do.
  stats = multipart_.ExpireUploads(cutoff);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->expired_uploads + stats->orphaned_parts, 0u);

  // The expired parts' chunks go as after an explicit abort; the young upload completes.
  clock_.Advance(1);  // the GC cutoff is exclusive
  ASSERT_TRUE(gc::RunGc(meta_.get(), chunks_.get(), &clock_, GcWithGrace(0)).ok());
  EXPECT_EQ(chunks_->ListChunks(StorageClass::kHot)->size(), 2u);
  auto completed = multipart_.Complete(young, {{1, young_part.etag}});
  ASSERT_TRUE(completed.ok()) << completed.status().ToString();
  EXPECT_EQ(ReadAll(completed->object), young_bytes);
  auto usage = service_->Usage("acme");
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->incomplete_multipart_parts, 0u);
  for (const auto& row : usage->rows) EXPECT_NE(row.namespace_name[0], '.');
  EXPECT_TRUE(Fsck().ok());
}

}  // namespace
}  // namespace cairn::objects

namespace cairn::objects {
namespace {

void FlipByte(const std::string& path, uint64_t offset) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  file.get(c);
  file.seekp(static_cast<std::streamoff>(offset));
  file.put(static_cast<char>(c ^ 1));
}

Result<std::string> ReadThroughOrError(ObjectService& service, const meta::ObjectRecord& object) {
  auto reader = service.OpenReader(object);
  if (!reader.ok()) return reader.status();
  std::string out(object.size_bytes, '\0');
  uint64_t offset = 0;
  while (offset < object.size_bytes) {
    ASSIGN_OR_RETURN(size_t n, (*reader)->Read(offset, 5000, out.data() + offset));
    if (n == 0) break;
    offset += n;
  }
  return out;
}

std::string ReadThrough(ObjectService& service, const meta::ObjectRecord& object) {
  Result<std::string> read = ReadThroughOrError(service, object);
  return read.ok() ? *read : "error: " + read.status().ToString();
}

// A mount's read cache (--cache-dir): chunks are copied once and then served from the
// copies; a bad copy is dropped and read again from the store without blaming the store;
// a bad store file is never copied and fails the read as without a cache.
TEST_F(ObjectServiceTest, ReadsThroughTheChunkCacheServeOnlyVerifiedBytes) {
  const std::string bytes = RandomBytes(3 * kChunk, 21);
  auto put = Put("cached", bytes);
  ASSERT_TRUE(put.ok());
  auto cache =
      chunks::ChunkCache::Open(platform::DefaultFileSystem(), {stores_.root + "/cache", 1 << 20});
  ASSERT_TRUE(cache.ok()) << cache.status().ToString();
  ObjectServiceOptions options;
  options.inline_threshold_bytes = 1024;
  options.chunk_size_bytes = kChunk;
  options.read_cache = cache->get();
  ObjectService cached(meta_.get(), chunks_.get(), &clock_, options);

  EXPECT_EQ(ReadThrough(cached, put->object), bytes);
  EXPECT_EQ((*cache)->stats().fills, 3u);
  EXPECT_EQ(ReadThrough(cached, put->object), bytes);
  EXPECT_EQ((*cache)->stats().hits, 3u);

  // A bit flip in a copy: the bytes still come out right, from the store, and the store's
  // chunk is neither counted damaged nor quarantined.
  auto chunks = meta_->GetChunks(put->object.id);
  ASSERT_EQ(chunks->size(), 3u);
  FlipByte(stores_.root + "/cache/" + (*chunks)[1].digest.ToHex(), 100);
  EXPECT_EQ(ReadThrough(cached, put->object), bytes);
  EXPECT_EQ((*cache)->stats().dropped, 1u);
  EXPECT_EQ(cached.integrity_counters().checksum_mismatch, 0u);
  EXPECT_TRUE(*chunks_->Contains(StorageClass::kHot, (*chunks)[1].digest));
  EXPECT_EQ(ReadThrough(cached, put->object), bytes);
  EXPECT_EQ((*cache)->stats().fills, 4u) << "a fresh copy replaced the bad one";

  // A bit flip in the store's file of a chunk not yet copied: never copied, never served.
  const std::string other = RandomBytes(2 * kChunk, 22);
  auto second = Put("second", other);
  ASSERT_TRUE(second.ok());
  auto second_chunks = meta_->GetChunks(second->object.id);
  FlipByte(chunks_->PathOf(StorageClass::kHot, (*second_chunks)[0].digest), 7);
  auto read = ReadThroughOrError(cached, second->object);
  EXPECT_EQ(read.status().code(), StatusCode::kDataLoss);
  EXPECT_FALSE((*cache)->Contains((*second_chunks)[0].digest, (*second_chunks)[0].size_bytes));
  EXPECT_EQ(cached.integrity_counters().checksum_mismatch, 1u);
}

}  // namespace
}  // namespace cairn::objects
