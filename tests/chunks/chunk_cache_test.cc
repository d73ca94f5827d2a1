#include "chunks/chunk_cache.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "core/hashing.h"

namespace cairn::chunks {
namespace {

// A readable file over a string: the store's file as the cache sees it.
class StringFile : public platform::ReadableFile {
 public:
  explicit StringFile(std::string bytes) : bytes_(std::move(bytes)) {}
  Result<size_t> ReadAt(uint64_t offset, size_t length, char* buffer) override {
    if (offset >= bytes_.size()) return size_t{0};
    const size_t n = std::min<size_t>(length, bytes_.size() - offset);
    std::copy_n(bytes_.data() + offset, n, buffer);
    return n;
  }
  Result<uint64_t> Size() override { return bytes_.size(); }

 private:
  std::string bytes_;
};

std::string ReadAll(platform::ReadableFile& file) {
  std::string out(static_cast<size_t>(*file.Size()), '\0');
  EXPECT_EQ(*file.ReadAt(0, out.size(), out.data()), out.size());
  return out;
}

class ChunkCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/cairn-cache-XXXXXX";
    root_ = mkdtemp(pattern);
    dir_ = root_ + "/cache";
  }
  void TearDown() override {
    cache_.reset();
    std::filesystem::remove_all(root_);
  }

  void Open(uint64_t capacity) {
    cache_.reset();
    auto cache = ChunkCache::Open(platform::DefaultFileSystem(), {dir_, capacity});
    ASSERT_TRUE(cache.ok()) << cache.status().ToString();
    cache_ = std::move(cache).value();
  }

  // Fills the cache with `bytes` and returns their digest.
  Digest Fill(const std::string& bytes) {
    const Digest digest = Sha256Of(bytes);
    StringFile source(bytes);
    auto copy = cache_->Fill(digest, bytes.size(), source);
    EXPECT_TRUE(copy.ok()) << copy.status().ToString();
    if (copy.ok()) {
      EXPECT_EQ(ReadAll(**copy), bytes);
    }
    return digest;
  }

  std::string root_;
  std::string dir_;
  std::unique_ptr<ChunkCache> cache_;
};

TEST_F(ChunkCacheTest, AFilledChunkIsServedFromItsPrivateCopy) {
  Open(1 << 20);
  const std::string bytes(70000, 'a');
  const Digest digest = Sha256Of(bytes);
  EXPECT_EQ(cache_->OpenCopy(digest, bytes.size()), nullptr);  // a miss
  Fill(bytes);
  auto copy = cache_->OpenCopy(digest, bytes.size());
  ASSERT_NE(copy, nullptr);
  EXPECT_EQ(ReadAll(*copy), bytes);
  EXPECT_EQ(cache_->OpenCopy(digest, bytes.size() + 1), nullptr);  // another size: dropped
  ChunkCacheStats stats = cache_->stats();
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.misses, 2u);
  EXPECT_EQ(stats.fills, 1u);
  EXPECT_EQ(stats.dropped, 1u);
  EXPECT_EQ(stats.files, 0u);
  struct stat st;
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u) << "the cache directory is private";
}

TEST_F(ChunkCacheTest, BytesThatDoNotHashToTheDigestAreNotKept) {
  Open(1 << 20);
  StringFile source("the wrong bytes");
  auto copy = cache_->Fill(Sha256Of("the right bytes"), 15, source);
  EXPECT_EQ(copy.status().code(), StatusCode::kDataLoss);
  EXPECT_FALSE(cache_->Contains(Sha256Of("the right bytes"), 15));
  StringFile short_source("short");
  copy = cache_->Fill(Sha256Of("short and more"), 14, short_source);
  EXPECT_EQ(copy.status().code(), StatusCode::kDataLoss);
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    if (entry.path().filename() != ".lock") ++files;
  }
  EXPECT_EQ(files, 0u) << "no copy and no temp file stays";
}

TEST_F(ChunkCacheTest, AFillFromPiecesAsksInWholeMebibytesAndKeepsNothingAfterAFailure) {
  Open(8 << 20);
  std::string bytes(2 * (1 << 20) + 12345, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 131 % 251);
  const Digest digest = Sha256Of(bytes);
  std::vector<std::pair<uint64_t, size_t>> asked;
  auto from_bytes = [&](uint64_t offset, size_t n, char* out) -> Status {
    asked.emplace_back(offset, n);
    std::copy_n(bytes.data() + offset, n, out);
    return OkStatus();
  };
  auto copy = cache_->FillFrom(digest, bytes.size(), from_bytes);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  EXPECT_EQ(ReadAll(**copy), bytes);
  const std::vector<std::pair<uint64_t, size_t>> pieces = {
      {0, 1 << 20}, {1 << 20, 1 << 20}, {2 << 20, 12345}};
  EXPECT_EQ(asked, pieces);

  // The source fails on its second piece: that error, and no copy or temp file stays.
  bytes[5] ^= 1;
  const Digest other = Sha256Of(bytes);
  int calls = 0;
  auto failing = [&](uint64_t offset, size_t n, char* out) -> Status {
    if (++calls == 2) return UnavailableError("the server went away");
    std::copy_n(bytes.data() + offset, n, out);
    return OkStatus();
  };
  copy = cache_->FillFrom(other, bytes.size(), failing);
  EXPECT_EQ(copy.status().code(), StatusCode::kUnavailable);
  EXPECT_FALSE(cache_->Contains(other, bytes.size()));
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    if (entry.path().filename() != ".lock") ++files;
  }
  EXPECT_EQ(files, 1u) << "only the first chunk's copy";
}

TEST_F(ChunkCacheTest, TheLeastRecentlyUsedCopiesGoFirstAtTheCapacity) {
  Open(3000);
  const Digest a = Fill(std::string(1000, 'a'));
  const Digest b = Fill(std::string(1000, 'b'));
  const Digest c = Fill(std::string(1000, 'c'));
  ASSERT_NE(cache_->OpenCopy(a, 1000), nullptr);  // a is now the most recent
  const Digest d = Fill(std::string(1000, 'd'));
  EXPECT_TRUE(cache_->Contains(a, 1000));
  EXPECT_FALSE(cache_->Contains(b, 1000)) << "b was the least recently used";
  EXPECT_TRUE(cache_->Contains(c, 1000));
  EXPECT_TRUE(cache_->Contains(d, 1000));
  EXPECT_EQ(cache_->stats().evictions, 1u);
  EXPECT_EQ(cache_->stats().bytes, 3000u);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/" + b.ToHex()));
  StringFile big(std::string(4000, 'x'));
  EXPECT_EQ(cache_->Fill(Sha256Of(std::string(4000, 'x')), 4000, big).status().code(),
            StatusCode::kResourceExhausted);
}

TEST_F(ChunkCacheTest, AReopenedCacheKeepsItsCopiesAndRemovesUnfinishedOnes) {
  Open(1 << 20);
  const Digest a = Fill("first copy");
  const Digest b = Fill("second copy");
  cache_->Drop(b);
  EXPECT_FALSE(cache_->Contains(b, 11));
  cache_.reset();
  std::ofstream(dir_ + "/." + a.ToHex() + ".7.tmp") << "half";
  std::ofstream(dir_ + "/notes.txt") << "not ours";
  std::ofstream(dir_ + "/draft.tmp") << "not ours either";
  Open(1 << 20);
  EXPECT_TRUE(cache_->Contains(a, 10));
  EXPECT_EQ(cache_->stats().files, 1u);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/." + a.ToHex() + ".7.tmp"));
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/notes.txt")) << "a stranger's file stays";
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/draft.tmp")) << "only our temp names go";
  // Reopened smaller: the oldest copies go.
  Fill("third copy!");
  Open(11);
  EXPECT_FALSE(cache_->Contains(a, 10));
  EXPECT_TRUE(cache_->Contains(Sha256Of("third copy!"), 11));
}

TEST_F(ChunkCacheTest, OneProcessPerDirectory) {
  Open(1 << 20);
  auto second = ChunkCache::Open(platform::DefaultFileSystem(), {dir_, 1 << 20});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("in use"), std::string::npos);
  cache_.reset();  // released: the next one may open it
  Open(1 << 20);
  EXPECT_EQ(ChunkCache::Open(platform::DefaultFileSystem(), {dir_, 0}).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cairn::chunks
