#include "chunks/chunk_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <sys/stat.h>
#include <chrono>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "core/aligned_buffer.h"
#include "platform/clock.h"

namespace cairn::chunks {
namespace {

class ChunkStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/cairn-chunks-XXXXXX";
    root_ = mkdtemp(pattern);
    auto store = ChunkStore::Open(platform::DefaultFileSystem(), {root_ + "/hot", root_ + "/cold"});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  Digest Write(StorageClass storage_class, const std::string& bytes) {
    auto writer = store_->NewWriter(storage_class);
    EXPECT_TRUE(writer.ok());
    EXPECT_TRUE((*writer)->Append(bytes).ok());
    auto digest = (*writer)->Finish();
    EXPECT_TRUE(digest.ok());
    std::set<std::string> directories;
    EXPECT_TRUE((*writer)->Install(&directories).ok());
    EXPECT_TRUE(store_->SyncDirectories(directories).ok());
    return *digest;
  }

  std::string root_;
  std::unique_ptr<ChunkStore> store_;
};

TEST_F(ChunkStoreTest, InstalledChunkIsNamedByItsHashAndReadable) {
  Digest digest = Write(StorageClass::kHot, "hello chunk");
  EXPECT_EQ(digest, Sha256Of("hello chunk"));
  EXPECT_TRUE(*store_->Contains(StorageClass::kHot, digest));
  EXPECT_FALSE(*store_->Contains(StorageClass::kCold, digest));
  auto file = store_->OpenChunk(StorageClass::kHot, digest);
  ASSERT_TRUE(file.ok());
  char buffer[64];
  EXPECT_EQ(*(*file)->ReadAt(6, 64, buffer), 5u);
  EXPECT_EQ(std::string(buffer, 5), "chunk");
  EXPECT_EQ(*store_->Rehash(StorageClass::kHot, digest), digest);
  auto listed = store_->ListChunks(StorageClass::kHot);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 1u);
  EXPECT_TRUE(store_->ListTempFiles(StorageClass::kHot)->empty());
}

TEST_F(ChunkStoreTest, LargeAppendsAcrossTheBufferHashCorrectly) {
  std::string big(3 * 1024 * 1024 + 17, 'x');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31);
  auto writer = store_->NewWriter(StorageClass::kCold);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append(std::string_view(big).substr(0, 100)).ok());
  ASSERT_TRUE((*writer)->Append(std::string_view(big).substr(100, 2 * 1024 * 1024)).ok());
  ASSERT_TRUE((*writer)->Append(std::string_view(big).substr(100 + 2 * 1024 * 1024)).ok());
  EXPECT_EQ(*(*writer)->Finish(), Sha256Of(big));
  std::set<std::string> directories;
  ASSERT_TRUE((*writer)->Install(&directories).ok());
  EXPECT_EQ(*store_->Rehash(StorageClass::kCold, Sha256Of(big)), Sha256Of(big));
}

// Chunk bodies in page-aligned buffers are written with direct I/O where the file system
// allows it (the aligned part; the tail goes through the page cache). Whatever path a write
// takes, the file must hold exactly the bytes: checked on the test's disk, on tmpfs (where
// kernels before 6.6 refuse O_DIRECT), and from an unaligned view of the same bytes.
TEST_F(ChunkStoreTest, WrittenChunksReadBackExactlyWhateverTheirAlignment) {
  std::vector<std::string> roots = {root_ + "/direct"};
  char shm_pattern[] = "/dev/shm/cairn-chunks-XXXXXX";
  const char* shm = mkdtemp(shm_pattern);
  if (shm != nullptr) roots.push_back(shm);
  for (const std::string& root : roots) {
    auto opened = ChunkStore::Open(platform::DefaultFileSystem(), {root + "/hot", root + "/cold"});
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    std::unique_ptr<ChunkStore> store = std::move(opened).value();
    for (size_t size : {size_t{4096}, size_t{1024 * 1024}, size_t{3 * 1024 * 1024 + 100}}) {
      for (size_t shift : {size_t{0}, size_t{1}}) {
        AlignedBuffer buffer(size + shift);
        std::string bytes(size + shift, '\0');
        for (size_t i = 0; i < bytes.size(); ++i)
          bytes[i] = static_cast<char>(i * 7 + size + shift);
        buffer.append(bytes);
        const std::string_view body = buffer.view().substr(shift);
        const Digest digest = Sha256Of(body);
        std::set<std::string> directories;
        ASSERT_TRUE(store->WriteChunk(StorageClass::kHot, digest, body, &directories).ok())
            << root << " size " << size << " shift " << shift;
        ASSERT_TRUE(store->SyncDirectories(directories).ok());
        EXPECT_EQ(*store->Rehash(StorageClass::kHot, digest), digest)
            << root << " size " << size << " shift " << shift;
        auto file = store->OpenChunk(StorageClass::kHot, digest);
        ASSERT_TRUE(file.ok());
        EXPECT_EQ(*(*file)->Size(), size);
        ASSERT_TRUE(store->Remove(StorageClass::kHot, digest).ok());
      }
    }
    EXPECT_TRUE(store->ListTempFiles(StorageClass::kHot)->empty());
  }
  if (shm != nullptr) std::filesystem::remove_all(shm);
}

TEST_F(ChunkStoreTest, DiscardedAndAbandonedWritersLeaveNoTempFile) {
  {
    auto writer = store_->NewWriter(StorageClass::kHot);
    ASSERT_TRUE((*writer)->Append("abandoned").ok());
    EXPECT_EQ(store_->ListTempFiles(StorageClass::kHot)->size(), 1u);
  }
  EXPECT_TRUE(store_->ListTempFiles(StorageClass::kHot)->empty());
  auto writer = store_->NewWriter(StorageClass::kHot);
  ASSERT_TRUE((*writer)->Append("discarded").ok());
  ASSERT_TRUE((*writer)->Finish().ok());
  ASSERT_TRUE((*writer)->Discard().ok());
  EXPECT_TRUE(store_->ListTempFiles(StorageClass::kHot)->empty());
  EXPECT_FALSE(*store_->Contains(StorageClass::kHot, Sha256Of("discarded")));
}

TEST_F(ChunkStoreTest, TempFileOfALiveWriterCannotBeCollected) {
  auto writer = store_->NewWriter(StorageClass::kHot);
  ASSERT_TRUE((*writer)->Append("in progress").ok());
  auto temps = store_->ListTempFiles(StorageClass::kHot);
  ASSERT_EQ(temps->size(), 1u);
  EXPECT_EQ(store_->RemoveTempFile((*temps)[0].path).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE((*writer)->Finish().ok());
  std::set<std::string> directories;
  EXPECT_TRUE((*writer)->Install(&directories).ok());
}

// GC removes a chunk file without a metadata row only when it is older than the grace
// period. An upload writes its temp file before it takes the reference and renames the
// file in only after, so a chunk must count as new when installed, however old its bytes:
// otherwise GC on another node could take it for an old orphan and delete it.
TEST_F(ChunkStoreTest, ChunkCountsAsModifiedWhenInstalled) {
  auto writer = store_->NewWriter(StorageClass::kHot);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append("bytes written an hour before the rename").ok());
  auto digest = (*writer)->Finish();
  ASSERT_TRUE(digest.ok());
  auto temp_files = store_->ListTempFiles(StorageClass::kHot);
  ASSERT_TRUE(temp_files.ok());
  ASSERT_EQ(temp_files->size(), 1u);
  const auto an_hour_ago = std::filesystem::file_time_type::clock::now() - std::chrono::hours(1);
  std::filesystem::last_write_time(temp_files->front().path, an_hour_ago);
  const TimestampMs before_install_ms = platform::SystemClock()->NowMs();
  std::set<std::string> directories;
  ASSERT_TRUE((*writer)->Install(&directories).ok());
  auto modified = store_->ChunkModifiedTime(StorageClass::kHot, *digest);
  ASSERT_TRUE(modified.ok());
  // Millisecond clocks: allow the file system's coarser timestamp granularity.
  EXPECT_GE(*modified + 20, before_install_ms);
}

TEST_F(ChunkStoreTest, CorruptionIsDetectedByRehash) {
  Digest digest = Write(StorageClass::kHot, "pristine bytes");
  std::string path = store_->PathOf(StorageClass::kHot, digest);
  FILE* f = fopen(path.c_str(), "r+");
  ASSERT_NE(f, nullptr);
  fputc('X', f);
  fclose(f);
  EXPECT_NE(*store_->Rehash(StorageClass::kHot, digest), digest);
}

TEST_F(ChunkStoreTest, RemoveIsIdempotentAndStraysAreReported) {
  Digest digest = Write(StorageClass::kHot, "to remove");
  EXPECT_TRUE(store_->Remove(StorageClass::kHot, digest).ok());
  EXPECT_TRUE(store_->Remove(StorageClass::kHot, digest).ok());
  std::filesystem::create_directories(root_ + "/hot/chunks/zz/yy");
  FILE* f = fopen((root_ + "/hot/chunks/zz/yy/not-a-chunk").c_str(), "w");
  fclose(f);
  std::vector<std::string> strays;
  auto listed = store_->ListChunks(StorageClass::kHot, &strays);
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty());
  EXPECT_EQ(strays.size(), 1u);
}

TEST_F(ChunkStoreTest, CheckWritableFailsWhenARootIsNotADirectory) {
  EXPECT_TRUE(store_->CheckWritable().ok());
  std::filesystem::rename(root_ + "/cold/tmp", root_ + "/cold/tmp.away");
  FILE* f = fopen((root_ + "/cold/tmp").c_str(), "w");
  fclose(f);
  Status status = store_->CheckWritable();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("cold"), std::string::npos);
}

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A new root gets one fan-out level (256 directories: a young store no longer makes a
// directory per chunk), recorded in its layout file before chunks/ exists.
TEST_F(ChunkStoreTest, ANewRootHasOneFanOutLevelRecordedInItsLayoutFile) {
  EXPECT_EQ(store_->FanOutLevels(StorageClass::kHot), 1);
  EXPECT_EQ(store_->FanOutLevels(StorageClass::kCold), 1);
  EXPECT_EQ(ReadWhole(root_ + "/hot/layout"), "fanout=1\n");
  struct stat st;
  ASSERT_EQ(::stat((root_ + "/hot/layout").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  Digest digest = Write(StorageClass::kHot, "one level");
  const std::string hex = digest.ToHex();
  EXPECT_EQ(store_->PathOf(StorageClass::kHot, digest),
            root_ + "/hot/chunks/" + hex.substr(0, 2) + "/" + hex);
  EXPECT_TRUE(std::filesystem::is_regular_file(store_->PathOf(StorageClass::kHot, digest)));
  EXPECT_EQ(*store_->ListChunks(StorageClass::kHot), std::vector<Digest>{digest});
  EXPECT_TRUE(*store_->HoldsAnyChunk());
  // Reopened, it keeps its layout.
  store_.reset();
  auto reopened =
      ChunkStore::Open(platform::DefaultFileSystem(), {root_ + "/hot", root_ + "/cold"});
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_EQ((*reopened)->FanOutLevels(StorageClass::kHot), 1);
  EXPECT_TRUE(*(*reopened)->Contains(StorageClass::kHot, digest));
}

// A root made before the layout file existed (chunks/ but no layout file) keeps its two
// levels: every chunk in it is found where it is, and new ones go beside them.
TEST_F(ChunkStoreTest, AnOlderRootKeepsItsTwoFanOutLevels) {
  const std::string old_root = root_ + "/old";
  const std::string bytes = "stored by an older version";
  const std::string hex = Sha256Of(bytes).ToHex();
  const std::string old_path =
      old_root + "/hot/chunks/" + hex.substr(0, 2) + "/" + hex.substr(2, 2) + "/" + hex;
  std::filesystem::create_directories(std::filesystem::path(old_path).parent_path());
  std::filesystem::create_directories(old_root + "/cold/chunks");
  {
    std::ofstream out(old_path, std::ios::binary);
    out << bytes;
  }
  auto opened =
      ChunkStore::Open(platform::DefaultFileSystem(), {old_root + "/hot", old_root + "/cold"});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  ChunkStore& old = **opened;
  EXPECT_EQ(old.FanOutLevels(StorageClass::kHot), 2);
  EXPECT_FALSE(std::filesystem::exists(old_root + "/hot/layout")) << "an older root is left as is";
  EXPECT_EQ(old.PathOf(StorageClass::kHot, Sha256Of(bytes)), old_path);
  EXPECT_EQ(*old.Rehash(StorageClass::kHot, Sha256Of(bytes)), Sha256Of(bytes));
  EXPECT_EQ(*old.ListChunks(StorageClass::kHot), std::vector<Digest>{Sha256Of(bytes)});
  std::set<std::string> directories;
  ASSERT_TRUE(old.WriteChunk(StorageClass::kHot, Sha256Of("new"), "new", &directories).ok());
  const std::string new_hex = Sha256Of("new").ToHex();
  EXPECT_TRUE(std::filesystem::is_regular_file(old_root + "/hot/chunks/" + new_hex.substr(0, 2) +
                                               "/" + new_hex.substr(2, 2) + "/" + new_hex));
  EXPECT_EQ(old.ListChunks(StorageClass::kHot)->size(), 2u);
}

// A layout file this version cannot read stops the store from opening: guessing would
// make every chunk look missing (and GC's orphan sweep see strays).
TEST_F(ChunkStoreTest, ADamagedLayoutFileIsRefused) {
  store_.reset();
  {
    std::ofstream out(root_ + "/hot/layout", std::ios::binary | std::ios::trunc);
    out << "fanout=3\n";
  }
  auto opened = ChunkStore::Open(platform::DefaultFileSystem(), {root_ + "/hot", root_ + "/cold"});
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(opened.status().message().find("layout"), std::string::npos)
      << opened.status().ToString();
}

TEST_F(ChunkStoreTest, MisplacedFilesInAOneLevelRootAreStrays) {
  Digest digest = Write(StorageClass::kHot, "in place");
  const std::string hex = Sha256Of("elsewhere").ToHex();
  const std::string wrong_directory = hex.substr(0, 2) == "00" ? "01" : "00";
  std::filesystem::create_directories(root_ + "/hot/chunks/" + wrong_directory);
  { std::ofstream(root_ + "/hot/chunks/" + wrong_directory + "/" + hex) << "elsewhere"; }
  { std::ofstream(root_ + "/hot/chunks/loose-file") << "x"; }
  std::vector<std::string> strays;
  auto listed = store_->ListChunks(StorageClass::kHot, &strays);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(*listed, std::vector<Digest>{digest});
  EXPECT_EQ(strays.size(), 2u);
}

// Spare temp files are made ahead by a background thread, locked like a live writer's (GC
// cannot take them), taken by writers, made again, and removed with the store.
TEST_F(ChunkStoreTest, SpareTempFilesAreMadeAheadLockedTakenAndRemoved) {
  store_->KeepSpareTempFiles(StorageClass::kHot, 3);
  auto count = [&] { return store_->ListTempFiles(StorageClass::kHot)->size(); };
  for (int i = 0; i < 500 && count() < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(count(), 3u);
  EXPECT_TRUE(store_->ListTempFiles(StorageClass::kCold)->empty());
  auto spares = store_->ListTempFiles(StorageClass::kHot);
  ASSERT_TRUE(spares.ok());
  for (const TempFileInfo& temp : *spares) {
    EXPECT_EQ(store_->RemoveTempFile(temp.path).code(), StatusCode::kFailedPrecondition)
        << temp.path;
  }
  std::vector<Digest> written;
  for (int i = 0; i < 10; ++i)
    written.push_back(Write(StorageClass::kHot, "spare " + std::to_string(i)));
  for (const Digest& digest : written) {
    EXPECT_EQ(*store_->Rehash(StorageClass::kHot, digest), digest);
  }
  for (int i = 0; i < 500 && count() < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(count(), 3u) << "made again after writers took them";
  store_.reset();
  EXPECT_TRUE(std::filesystem::is_empty(root_ + "/hot/tmp")) << "the spares go with the store";
}

}  // namespace
}  // namespace cairn::chunks
