// Deferred chunk writes (a mount's close) across a simulated power cut: a deferred chunk
// is really not durable until its owner syncs it, it is durable once synced, and an upload
// that deduplicates onto a deferred copy (another process, which cannot know how it was
// written) makes it durable before it commits.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <set>
#include <string>

#include "chunks/chunk_store.h"
#include "ingest/chunk_health.h"
#include "ingest/chunk_ingest.h"
#include "meta/engines/open_meta_store.h"
#include "platform/clock.h"
#include "platform/power_cut_file_system.h"
#include "random_bytes.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;

AlignedBuffer BufferOf(std::string_view bytes) {
  AlignedBuffer buffer(bytes.size());
  buffer.append(bytes);
  return buffer;
}

class DeferredChunksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : fs::temp_directory_path();
    std::string pattern = base + "/cairn-deferred-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    scratch_ = pattern;
    fs::create_directories(scratch_ + "/disk");
    file_system_ = std::move(
        platform::PowerCutFileSystem::Create(platform::DefaultFileSystem(), scratch_ + "/disk")
            .value());
    meta_ = std::move(meta::OpenMetaStore("sqlite://" + scratch_ + "/meta.db").value());
    mount_store_ = OpenStore();
    health_ = std::make_unique<ingest::ChunkHealth>(meta_.get(), mount_store_.get(), &clock_);
  }
  void TearDown() override {
    health_.reset();
    mount_store_.reset();
    meta_.reset();
    file_system_.reset();
    fs::remove_all(scratch_);
  }

  // A chunk store of its own, as another process on the same disk would have.
  std::unique_ptr<chunks::ChunkStore> OpenStore() {
    return std::move(chunks::ChunkStore::Open(file_system_.get(),
                                              {scratch_ + "/disk/hot", scratch_ + "/disk/cold"})
                         .value());
  }

  std::unique_ptr<ingest::ChunkIngest> Ingest(chunks::ChunkStore* store) {
    return std::make_unique<ingest::ChunkIngest>(store, health_.get(), StorageClass::kHot,
                                                 "test owner",
                                                 [](const meta::ChunkRef&) { return OkStatus(); });
  }

  // Whether the chunk's file holds exactly `bytes` (after a reboot: what the disk kept).
  bool Holds(const ingest::SealedChunk& chunk) {
    auto store = OpenStore();
    auto compared = store->Compare(StorageClass::kHot, chunk.digest, chunk.bytes.view());
    return compared.ok() && *compared == chunks::ChunkStore::Comparison::kSame;
  }

  std::string scratch_;
  platform::FakeClock clock_{1'700'000'000'000};
  std::unique_ptr<platform::PowerCutFileSystem> file_system_;
  std::unique_ptr<meta::MetaStore> meta_;
  std::unique_ptr<chunks::ChunkStore> mount_store_;
  std::unique_ptr<ingest::ChunkHealth> health_;
};

TEST_F(DeferredChunksTest, ADeferredChunkIsDurableOnlyOnceItsOwnerSyncsIt) {
  ingest::SealedChunk lost = ingest::Seal(BufferOf(testing::RandomBytes(64 * 1024, 1)));
  ingest::SealedChunk kept = ingest::Seal(BufferOf(testing::RandomBytes(64 * 1024, 2)));
  auto ingest = Ingest(mount_store_.get());
  ingest->Defer();
  ASSERT_TRUE(ingest->Store(lost).ok());
  std::set<std::string> files, directories;
  ingest->TakeDeferred(&files, &directories);
  EXPECT_EQ(files.size(), 1u);
  // Its fan-out directory is new: chunks/ (its entry) and the leaf itself are to be synced.
  ASSERT_EQ(mount_store_->FanOutLevels(StorageClass::kHot), 1);
  EXPECT_EQ(directories.size(), 2u);
  EXPECT_TRUE(Holds(lost)) << "readable at once, before any sync";
  ASSERT_TRUE(file_system_->Reboot().ok());
  EXPECT_FALSE(Holds(lost)) << "a deferred chunk survived a cut without a sync: the "
                               "deferral is not real, or this test cannot see a loss";

  files.clear();
  directories.clear();
  ASSERT_TRUE(ingest->Store(kept).ok());
  ingest->TakeDeferred(&files, &directories);
  ASSERT_TRUE(mount_store_->SyncDeferred(files, directories).ok());
  ASSERT_TRUE(file_system_->Reboot().ok());
  EXPECT_TRUE(Holds(kept));
}

TEST_F(DeferredChunksTest, AnUploadThatDeduplicatesOntoADeferredCopySyncsItFirst) {
  ingest::SealedChunk chunk = ingest::Seal(BufferOf(testing::RandomBytes(64 * 1024, 3)));
  auto deferred = Ingest(mount_store_.get());
  deferred->Defer();
  ASSERT_TRUE(deferred->Store(chunk).ok());  // never synced by the mount

  auto server_store = OpenStore();
  auto upload = Ingest(server_store.get());
  ASSERT_TRUE(upload->Store(chunk).ok());
  EXPECT_EQ(upload->deduplicated_chunks(), 1u) << "the upload wrote its own copy";
  ASSERT_TRUE(upload->SyncDirectories().ok());
  // The upload would commit and acknowledge here: the chunk must survive a cut.
  ASSERT_TRUE(file_system_->Reboot().ok());
  EXPECT_TRUE(Holds(chunk));
}

}  // namespace
}  // namespace cairn
