// Chunk ingest with an owner that is not an object (a generic owner of a kind used only in
// tests), as a second front end would use it: the reference comes before the file, a chunk
// already stored is not written again whichever door stored it, a damaged copy is healed,
// and GC keeps a chunk as long as any owner of any kind names it.
#include "ingest/chunk_ingest.h"
#include "meta/engines/open_meta_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "gc/collector.h"
#include "objects/object_service.h"
#include "random_bytes.h"
#include "test_store.h"

namespace cairn::ingest {
namespace {

constexpr uint64_t kChunk = 64 * 1024;
constexpr int64_t kGraceMs = 60'000;

using testing::RandomBytes;

AlignedBuffer BufferOf(std::string_view bytes) {
  AlignedBuffer buffer(bytes.size());
  buffer.append(bytes);
  return buffer;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class ChunkIngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_.path();
    chunks_ = std::move(
        chunks::ChunkStore::Open(platform::DefaultFileSystem(), {root_ + "/hot", root_ + "/cold"})
            .value());
    meta_ = std::move(meta::OpenMetaStore("sqlite://" + root_ + "/meta.db").value());
    objects::ObjectServiceOptions options;
    options.inline_threshold_bytes = 1024;
    options.chunk_size_bytes = kChunk;
    service_ =
        std::make_unique<objects::ObjectService>(meta_.get(), chunks_.get(), &clock_, options);
  }

  // An ingest for a file-like owner whose reference is "append to my chunk list".
  std::unique_ptr<ChunkIngest> OwnerIngest(const meta::ChunkOwner& owner,
                                           std::vector<meta::OwnerChunk>* list) {
    return std::make_unique<ChunkIngest>(
        chunks_.get(), service_->chunk_health(), StorageClass::kHot, owner.kind + " " + owner.id,
        [this, owner, list](const meta::ChunkRef& chunk) {
          list->emplace_back(StorageClass::kHot, chunk);
          return meta_->SetOwnerChunks(owner, *list, clock_.NowMs());
        });
  }

  int64_t RefCount(const Digest& digest) {
    auto chunks = meta_->ListChunks();
    if (!chunks.ok()) return -2;
    for (const meta::ChunkRecord& chunk : *chunks) {
      if (chunk.digest == digest) return chunk.ref_count;
    }
    return -1;  // no row
  }

  Result<gc::GcStats> GcAfterGrace() {
    clock_.Advance(kGraceMs + 1);
    gc::GcOptions options;
    options.grace_ms = kGraceMs;
    options.stalled_upload_ms = kGraceMs;
    options.allow_mass_delete = true;
    return gc::RunGc(meta_.get(), chunks_.get(), &clock_, options);
  }

  testing::TempDir dir_;
  std::string root_;
  platform::FakeClock clock_{1'700'000'000'000};
  std::unique_ptr<chunks::ChunkStore> chunks_;
  std::unique_ptr<meta::MetaStore> meta_;
  std::unique_ptr<objects::ObjectService> service_;
};

TEST_F(ChunkIngestTest, TakesTheReferenceBeforeTheFileAndMakesItDurable) {
  const meta::ChunkOwner owner{"test-file", "f1"};
  std::vector<meta::OwnerChunk> list;
  const SealedChunk chunk = Seal(BufferOf(RandomBytes(kChunk, 1)));
  const std::string path = chunks_->PathOf(StorageClass::kHot, chunk.digest);
  bool file_existed_at_reference = true;
  ChunkIngest ingest(chunks_.get(), service_->chunk_health(), StorageClass::kHot, "file f1",
                     [&](const meta::ChunkRef& ref) {
                       file_existed_at_reference = std::filesystem::exists(path);
                       list.emplace_back(StorageClass::kHot, ref);
                       return meta_->SetOwnerChunks(owner, list, clock_.NowMs());
                     });
  ASSERT_TRUE(ingest.Store(chunk).ok());
  ASSERT_TRUE(ingest.SyncDirectories().ok());
  EXPECT_FALSE(file_existed_at_reference);
  EXPECT_EQ(ReadFile(path), chunk.bytes.view());
  EXPECT_EQ(ingest.deduplicated_chunks(), 0u);
  EXPECT_EQ(RefCount(chunk.digest), 1);
  // The reference carries the block checksums reads verify against.
  auto held = meta_->GetOwnerChunks(owner);
  ASSERT_TRUE(held.ok());
  ASSERT_EQ(held->size(), 1u);
  EXPECT_EQ((*held)[0].chunk.digest, chunk.digest);
  EXPECT_EQ((*held)[0].chunk.size_bytes, kChunk);
  EXPECT_FALSE((*held)[0].chunk.block_checksums.empty());
}

TEST_F(ChunkIngestTest, AFailedReferenceWritesNothing) {
  const SealedChunk chunk = Seal(BufferOf(RandomBytes(kChunk, 2)));
  ChunkIngest ingest(chunks_.get(), service_->chunk_health(), StorageClass::kHot, "file f2",
                     [](const meta::ChunkRef&) { return UnavailableError("database down"); });
  Status status = ingest.Store(chunk);
  EXPECT_EQ(status.code(), StatusCode::kUnavailable);
  EXPECT_FALSE(std::filesystem::exists(chunks_->PathOf(StorageClass::kHot, chunk.digest)));
  EXPECT_TRUE(std::filesystem::is_empty(chunks_->RootOf(StorageClass::kHot) + "/tmp"));
}

TEST_F(ChunkIngestTest, BytesStoredByOneDoorAreNotWrittenAgainByAnother) {
  // An object of two full chunks and a tail, uploaded through the object use case.
  const std::string bytes = RandomBytes(2 * kChunk + 100, 3);
  objects::UploadRequest request;
  request.tenant = "acme";
  request.namespace_name = "data";
  request.key = "model.bin";
  auto upload = service_->BeginUpload(request);
  ASSERT_TRUE(upload.ok());
  ASSERT_TRUE((*upload)->Write(bytes).ok());
  auto committed = (*upload)->Commit();
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();

  // The same bytes written by a file owner, cut by the same rule (fixed offsets).
  const meta::ChunkOwner owner{"test-file", "copy-of-model"};
  std::vector<meta::OwnerChunk> list;
  auto ingest = OwnerIngest(owner, &list);
  std::vector<SealedChunk> sealed;
  for (uint64_t offset = 0; offset < bytes.size(); offset += kChunk) {
    sealed.push_back(Seal(BufferOf(std::string_view(bytes).substr(offset, kChunk))));
  }
  std::vector<Digest> digests;
  std::vector<ino_t> inodes;
  for (const SealedChunk& chunk : sealed) {
    digests.push_back(chunk.digest);
    struct stat st {};
    ASSERT_EQ(::stat(chunks_->PathOf(StorageClass::kHot, chunk.digest).c_str(), &st), 0);
    inodes.push_back(st.st_ino);
  }
  ChunkBuffers buffers(2);
  ASSERT_TRUE(ingest->StoreAll(std::move(sealed), &buffers).ok());
  ASSERT_TRUE(ingest->SyncDirectories().ok());
  EXPECT_EQ(ingest->deduplicated_chunks(), 3u);
  EXPECT_EQ(ingest->deduplicated_bytes(), bytes.size());
  for (size_t i = 0; i < digests.size(); ++i) {
    struct stat st {};
    ASSERT_EQ(::stat(chunks_->PathOf(StorageClass::kHot, digests[i]).c_str(), &st), 0);
    EXPECT_EQ(st.st_ino, inodes[i]) << "chunk " << i << " was written again";
    EXPECT_EQ(RefCount(digests[i]), 2);
  }
  // The buffers came back for reuse (at most two kept).
  EXPECT_GE(buffers.Take().capacity(), kChunk);
  EXPECT_GE(buffers.Take().capacity(), kChunk);
  EXPECT_EQ(buffers.Take().capacity(), 0u);

  // Deleting the object leaves the chunks to the file: GC keeps them.
  ASSERT_TRUE(service_->Delete("acme", committed->object.id).ok());
  ASSERT_TRUE(GcAfterGrace().ok());
  for (const Digest& digest : digests) {
    EXPECT_TRUE(std::filesystem::exists(chunks_->PathOf(StorageClass::kHot, digest)));
    EXPECT_EQ(RefCount(digest), 1);
  }
  // Once the file lets go too, GC reclaims them after the grace period.
  ASSERT_TRUE(meta_->DropOwnerChunks(owner, clock_.NowMs()).ok());
  ASSERT_TRUE(GcAfterGrace().ok());
  for (const Digest& digest : digests) {
    EXPECT_FALSE(std::filesystem::exists(chunks_->PathOf(StorageClass::kHot, digest)));
  }
}

TEST_F(ChunkIngestTest, ADifferingCopyIsQuarantinedAndReplaced) {
  const std::string bytes = RandomBytes(kChunk, 4);
  std::vector<meta::OwnerChunk> first_list;
  auto first = OwnerIngest({"test-file", "a"}, &first_list);
  const SealedChunk chunk = Seal(BufferOf(bytes));
  ASSERT_TRUE(first->Store(chunk).ok());
  ASSERT_TRUE(first->SyncDirectories().ok());

  // Bit rot: the stored copy no longer holds the bytes its name promises.
  const std::string path = chunks_->PathOf(StorageClass::kHot, chunk.digest);
  std::filesystem::permissions(path, std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::add);
  {
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(100);
    file.put(static_cast<char>(bytes[100] ^ 0x40));
  }

  std::vector<meta::OwnerChunk> second_list;
  auto second = OwnerIngest({"test-file", "b"}, &second_list);
  ASSERT_TRUE(second->Store(Seal(BufferOf(bytes))).ok());
  ASSERT_TRUE(second->SyncDirectories().ok());
  EXPECT_EQ(second->deduplicated_chunks(), 0u);  // the bad copy was not trusted
  EXPECT_EQ(ReadFile(path), bytes);
  const IntegrityCounters counters = service_->integrity_counters();
  EXPECT_EQ(counters.checksum_mismatch, 1u);
  EXPECT_EQ(counters.healed, 1u);
  auto quarantined = chunks_->ListQuarantine(StorageClass::kHot);
  ASSERT_TRUE(quarantined.ok());
  ASSERT_EQ(quarantined->size(), 1u);
  EXPECT_EQ((*quarantined)[0].digest, chunk.digest);
  // The damage mark is cleared: both owners read the healed chunk.
  auto held = meta_->GetOwnerChunks({"test-file", "a"});
  ASSERT_TRUE(held.ok());
  ASSERT_EQ(held->size(), 1u);
  EXPECT_EQ((*held)[0].chunk.damaged_ms, 0);
  EXPECT_EQ(RefCount(chunk.digest), 2);
}

}  // namespace
}  // namespace cairn::ingest
