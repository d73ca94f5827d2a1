#include "objects/chunk_service.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "core/block_checksums.h"
#include "core/hashing.h"
#include "meta/engines/open_meta_store.h"
#include "random_bytes.h"

namespace cairn::objects {
namespace {

using ::cairn::testing::RandomBytes;

// The chunk API's use case over a real chunk store and SQLite: what a remote mount relies
// on (its reference first, then the bytes only if the server lacks them).
class ChunkServiceTest : public ::testing::Test {
 protected:
  ChunkServiceTest() {
    char pattern[] = "/tmp/cairn-chunk-service-XXXXXX";
    root_ = mkdtemp(pattern);
    chunks_ = std::move(
        chunks::ChunkStore::Open(platform::DefaultFileSystem(), {root_ + "/hot", root_ + "/cold"})
            .value());
    meta_ = std::move(meta::OpenMetaStore("sqlite://" + root_ + "/meta.db").value());
    objects_ = std::make_unique<ObjectService>(meta_.get(), chunks_.get(), &clock_,
                                               ObjectServiceOptions{});
    service_ = std::make_unique<ChunkService>(objects_.get());
  }
  ~ChunkServiceTest() override { std::filesystem::remove_all(root_); }

  // What a mount does before it asks: its staging owner names the chunk.
  void Reference(const std::string& bytes) {
    meta::OwnerChunk chunk(StorageClass::kHot,
                           meta::ChunkRef(Sha256Of(bytes), bytes.size(), BlockChecksums(bytes)));
    ASSERT_TRUE(meta_->SetOwnerChunks({"fs-staging", "test"}, {chunk}, clock_.NowMs()).ok());
  }

  std::string ReadAll(const Digest& digest) {
    auto reader = service_->Open(StorageClass::kHot, digest);
    EXPECT_TRUE(reader.ok()) << reader.status().ToString();
    if (!reader.ok()) return "";
    std::string out((*reader)->object().size_bytes, '\0');
    size_t done = 0;
    while (done < out.size()) {
      Result<size_t> n = (*reader)->Read(done, out.size() - done, out.data() + done);
      if (!n.ok() || *n == 0) return "read failed at " + std::to_string(done);
      done += *n;
    }
    return out;
  }

  std::string root_;
  platform::FakeClock clock_{1'700'000'000'000};
  std::unique_ptr<chunks::ChunkStore> chunks_;
  std::unique_ptr<meta::MetaStore> meta_;
  std::unique_ptr<ObjectService> objects_;
  std::unique_ptr<ChunkService> service_;
};

TEST_F(ChunkServiceTest, AChunkNoOwnerNamesIsRefusedAndNeverWritten) {
  const std::string bytes = RandomBytes(300000, 1);
  const Digest digest = Sha256Of(bytes);
  EXPECT_EQ(service_->Put(StorageClass::kHot, digest, bytes).code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->Have(StorageClass::kHot, digest).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->Open(StorageClass::kHot, digest).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(*chunks_->Contains(StorageClass::kHot, digest));
}

TEST_F(ChunkServiceTest, AReferencedChunkIsTakenOnceWithItsOwnBytesOnly) {
  const std::string bytes = RandomBytes(600000, 2);
  const Digest digest = Sha256Of(bytes);
  Reference(bytes);
  EXPECT_FALSE(*service_->Have(StorageClass::kHot, digest));
  // Other bytes of the same length, or the right bytes cut short: refused, nothing written.
  std::string other = RandomBytes(bytes.size(), 3);
  EXPECT_EQ(service_->Put(StorageClass::kHot, digest, other).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(service_->Put(StorageClass::kHot, digest, std::string_view(bytes).substr(1)).code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(*chunks_->Contains(StorageClass::kHot, digest));
  ASSERT_TRUE(service_->Put(StorageClass::kHot, digest, bytes).ok());
  EXPECT_TRUE(*service_->Have(StorageClass::kHot, digest));
  EXPECT_EQ(ReadAll(digest), bytes);
  EXPECT_TRUE(service_->Put(StorageClass::kHot, digest, bytes).ok());  // again: the same
}

TEST_F(ChunkServiceTest, ADamagedCopyIsNotHeldAndTheBytesHealIt) {
  const std::string bytes = RandomBytes(400000, 4);
  const Digest digest = Sha256Of(bytes);
  Reference(bytes);
  ASSERT_TRUE(service_->Put(StorageClass::kHot, digest, bytes).ok());
  std::string damaged = bytes;
  damaged[1234] ^= 0x10;
  {
    std::ofstream out(chunks_->PathOf(StorageClass::kHot, digest), std::ios::binary);
    out << damaged;
  }
  // The server must not say it holds a copy that is not these bytes: the client would
  // commit a reference to damage.
  EXPECT_FALSE(*service_->Have(StorageClass::kHot, digest));
  EXPECT_EQ(objects_->integrity_counters().checksum_mismatch, 1u);
  ASSERT_TRUE(service_->Put(StorageClass::kHot, digest, bytes).ok());
  EXPECT_TRUE(*service_->Have(StorageClass::kHot, digest));
  EXPECT_EQ(ReadAll(digest), bytes);
}

}  // namespace
}  // namespace cairn::objects
