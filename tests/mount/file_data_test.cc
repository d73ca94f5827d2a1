#include "mount/file_data.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "meta/engines/open_meta_store.h"
#include "random_bytes.h"

namespace cairn::mount {
namespace {

using ::cairn::testing::RandomBytes;

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kBlock = 4 * kMiB;  // the file's block: one chunk each

// A mount's file data over a real chunk store and the memory engine, without FUSE: what the
// kernel's read and write requests reach.
class FileDataTest : public ::testing::Test {
 protected:
  FileDataTest() {
    char pattern[] = "/tmp/cairn-file-data-XXXXXX";
    root_ = mkdtemp(pattern);
    chunks_ = std::move(
        chunks::ChunkStore::Open(platform::DefaultFileSystem(), {root_ + "/hot", root_ + "/cold"})
            .value());
    meta_ = std::move(meta::OpenMetaStore("memory:").value());
    meta::InodeRecord root;
    root.mode = 0755;
    root.nlink = 2;
    EXPECT_TRUE(
        meta_->file_tree()
            ->FormatVolume(meta::VolumeRecord{"vol", "0f0e0d0c-0b0a-4908-8706-050403020100"}, root)
            .ok());
    objects_ = std::make_unique<objects::ObjectService>(meta_.get(), chunks_.get(), &clock_,
                                                        objects::ObjectServiceOptions{});
    fs::Options options;
    options.is_open = [this](uint64_t ino) { return data_ && data_->IsOpen(ino); };
    options.session = 1;
    file_system_ = std::make_unique<fs::FileSystem>(meta_->file_tree(), options);
  }
  ~FileDataTest() override {
    if (data_) data_->Shutdown();
    data_.reset();
    std::filesystem::remove_all(root_);
  }

  void StartData(FileDataOptions options) {
    data_ = std::make_unique<FileData>(file_system_.get(), meta_.get(), chunks_.get(),
                                       objects_.get(), "0f0e0d0c-0b0a-4908-8706-050403020100", "1",
                                       options, [this] { return clock_.NowMs(); });
  }

  // A file named `name` holding `bytes`, written, flushed and closed.
  meta::InodeRecord WriteFile(const std::string& name, const std::string& bytes) {
    Result<meta::InodeRecord> made = file_system_->MakeNode(
        meta::kRootInode, name, meta::FileType::kRegular, 0644, 0, fs::Caller{});
    EXPECT_TRUE(made.ok()) << made.status().ToString();
    data_->Open(*made);
    EXPECT_TRUE(data_->Write(made->ino, 0, bytes).ok());
    EXPECT_TRUE(data_->Flush(made->ino).ok());
    EXPECT_TRUE(data_->Release(made->ino).ok());
    Result<meta::InodeRecord> now = file_system_->GetAttr(made->ino);
    EXPECT_TRUE(now.ok());
    return *now;
  }

  std::string root_;
  platform::FakeClock clock_{1'700'000'000'000};
  std::unique_ptr<chunks::ChunkStore> chunks_;
  std::unique_ptr<meta::MetaStore> meta_;
  std::unique_ptr<objects::ObjectService> objects_;
  std::unique_ptr<fs::FileSystem> file_system_;
  std::unique_ptr<FileData> data_;
};

// A sequential read of a block read ahead is answered from the read-ahead buffer itself,
// while the kernel's reply is still being sent. The reader moving on must not hand that
// buffer to the next block's read-ahead until the reply lets go of it: the bytes of the
// view stay the first block's whatever is read meanwhile.
TEST_F(FileDataTest, AViewOfAReadAheadBlockOutlivesTheReaderMovingOn) {
  FileDataOptions options;
  options.prefetch = 1;
  StartData(options);
  const std::string bytes = RandomBytes(4 * kBlock, 11);
  meta::InodeRecord file = WriteFile("f", bytes);
  data_->Open(file);
  std::string scratch(kMiB, '\0');
  std::shared_ptr<const void> held;
  std::string_view kept;
  for (uint64_t at = 0; at < 4 * kBlock; at += kMiB) {
    std::shared_ptr<const void> hold;
    Result<std::string_view> view = data_->ReadView(file.ino, at, kMiB, scratch.data(), &hold);
    ASSERT_TRUE(view.ok()) << view.status().ToString();
    ASSERT_TRUE(*view == std::string_view(bytes).substr(at, kMiB)) << "wrong bytes at " << at;
    if (at >= kBlock) {
      // Blocks after the first were read ahead: answered without a copy.
      EXPECT_NE(hold, nullptr) << "at " << at;
      EXPECT_NE(view->data(), scratch.data()) << "at " << at;
    }
    if (at == kBlock) {
      held = hold;
      kept = *view;
    }
  }
  // Blocks 2 and 3 were read ahead since, into buffers from the same spares.
  EXPECT_TRUE(kept == std::string_view(bytes).substr(kBlock, kMiB))
      << "the bytes of a view changed while it was held";
  held.reset();
  ASSERT_TRUE(data_->Release(file.ino).ok());
}

// Reads that cross blocks, start inside one or come without read-ahead are copied, and
// every answer matches the file.
TEST_F(FileDataTest, ReadsAtAnyOffsetMatchTheFile) {
  FileDataOptions options;
  options.prefetch = 1;
  StartData(options);
  const std::string bytes = RandomBytes(2 * kBlock + 12345, 12);
  meta::InodeRecord file = WriteFile("g", bytes);
  data_->Open(file);
  std::string scratch(3 * kMiB, '\0');
  for (uint64_t at : {uint64_t{0}, kBlock - 100, uint64_t{777}, kBlock + 1, 2 * kBlock,
                      2 * kBlock + 12000, 2 * kBlock + 12345, 3 * kBlock}) {
    std::shared_ptr<const void> hold;
    Result<std::string_view> view =
        data_->ReadView(file.ino, at, scratch.size(), scratch.data(), &hold);
    ASSERT_TRUE(view.ok()) << view.status().ToString();
    const std::string_view want =
        at < bytes.size() ? std::string_view(bytes).substr(at, scratch.size()) : "";
    EXPECT_TRUE(*view == want) << "wrong bytes at " << at << " (" << view->size() << " bytes)";
  }
  ASSERT_TRUE(data_->Release(file.ino).ok());
}

// The change feed reads the inode, then applies what it read (Invalidate); an open may come
// in between with a newer version (another mount committed meanwhile). Change counters
// only grow, so the older read must not take the open's size back: the reads of the open
// handle would stop at the old size, or run past the new one with zeros.
TEST_F(FileDataTest, AnOlderVersionReadByTheFeedDoesNotReplaceWhatAnOpenRead) {
  StartData(FileDataOptions{});
  meta::InodeRecord older = WriteFile("h", "ten bytes!");
  const std::string bytes = RandomBytes(300'000, 13);
  data_->Open(older);
  ASSERT_TRUE(data_->Write(older.ino, 0, bytes).ok());
  ASSERT_TRUE(data_->Flush(older.ino).ok());
  ASSERT_TRUE(data_->Release(older.ino).ok());
  Result<meta::InodeRecord> newer = file_system_->GetAttr(older.ino);
  ASSERT_TRUE(newer.ok());
  ASSERT_GT(newer->change, older.change);

  std::string out(400'000, '\0');
  data_->Open(*newer);
  data_->Invalidate(older.ino, older);  // the feed's read, from before the commit
  Result<size_t> n = data_->Read(older.ino, 0, out.size(), out.data());
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, bytes.size());
  EXPECT_TRUE(std::string_view(out.data(), *n) == bytes);

  // Two opens at once: the one that read the older version stores it last.
  data_->Open(older);
  n = data_->Read(older.ino, 0, out.size(), out.data());
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, bytes.size());
  EXPECT_TRUE(std::string_view(out.data(), *n) == bytes);

  // A newer version through the feed is taken: another mount cut the file.
  FileData other(file_system_.get(), meta_.get(), chunks_.get(), objects_.get(),
                 "0f0e0d0c-0b0a-4908-8706-050403020100", "2", FileDataOptions{},
                 [this] { return clock_.NowMs(); });
  other.Open(*newer);
  fs::AttrChange cut;
  cut.size = 5000;
  Result<meta::InodeRecord> cut_to = other.SetAttr(older.ino, cut);
  ASSERT_TRUE(cut_to.ok()) << cut_to.status().ToString();
  ASSERT_TRUE(other.Release(older.ino).ok());
  other.Shutdown();
  data_->Invalidate(older.ino, *cut_to);
  n = data_->Read(older.ino, 0, out.size(), out.data());
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 5000u);
  EXPECT_TRUE(std::string_view(out.data(), *n) == std::string_view(bytes).substr(0, 5000));
  ASSERT_TRUE(data_->Release(older.ino).ok());
  ASSERT_TRUE(data_->Release(older.ino).ok());
}

// Each chunk a flush stores is one entry of the mount's staging owner, added at its own seq
// and dropped by seq: by the commit that names the chunk, by the unstaging of a failed or
// superseded store, whichever comes. Many flushes and background uploads at once, blocks
// written again while their upload runs and a truncate through a stored block must leave no
// entry behind, every count right and every file whole.
TEST_F(FileDataTest, StagingEntriesLeaveWithTheirCommitsWhateverTheInterleaving) {
  FileDataOptions options;
  options.max_uploads = 2;
  options.buffer_bytes = 2 * kBlock;  // a full buffer flushes in the middle of writing
  StartData(options);
  const meta::ChunkOwner staging{std::string(kStagingOwnerKind),
                                 "0f0e0d0c-0b0a-4908-8706-050403020100:1"};
  constexpr int kWriters = 3;
  std::vector<std::string> contents(kWriters);
  std::vector<uint64_t> inos(kWriters);
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    Result<meta::InodeRecord> made = file_system_->MakeNode(
        meta::kRootInode, "w" + std::to_string(w), meta::FileType::kRegular, 0644, 0, fs::Caller{});
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    inos[w] = made->ino;
    data_->Open(*made);
    writers.emplace_back([&, w] {
      std::string& file = contents[w];
      const uint64_t ino = inos[w];
      // Three full blocks and a tail, in 1 MiB writes: full blocks go to the uploaders.
      file = RandomBytes(3 * kBlock + 1000, 100 + w);
      for (uint64_t at = 0; at < file.size(); at += kMiB) {
        const std::string_view piece = std::string_view(file).substr(at, kMiB);
        EXPECT_TRUE(data_->Write(ino, at, piece).ok());
        if (at + kMiB == kBlock) {
          // Block 0 just filled: its upload runs. Written again at once, that upload is
          // superseded (its entry must leave with the next commit).
          const std::string over = RandomBytes(1000, 400 + w);
          file.replace(100, over.size(), over);
          EXPECT_TRUE(data_->Write(ino, 100, over).ok());
        }
      }
      // Block 1 written again (its upload, if started, is superseded), then small files'
      // worth of flushes: each a store and a commit of its own.
      const std::string again = RandomBytes(kMiB, 200 + w);
      file.replace(kBlock + 5, again.size(), again);
      EXPECT_TRUE(data_->Write(ino, kBlock + 5, again).ok());
      EXPECT_TRUE(data_->Flush(ino).ok());
      for (int i = 0; i < 20; ++i) {
        const std::string small = RandomBytes(4096, 300 + w * 100 + i);
        const uint64_t at = file.size();
        file += small;
        EXPECT_TRUE(data_->Write(ino, at, small).ok());
        EXPECT_TRUE(data_->Flush(ino).ok());
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
  // A truncate through a stored block stores the trimmed block (staged, then committed).
  fs::AttrChange cut;
  cut.size = 2 * kBlock + 777;
  ASSERT_TRUE(data_->SetAttr(inos[0], cut).ok());
  contents[0].resize(*cut.size);
  for (int w = 0; w < kWriters; ++w) ASSERT_TRUE(data_->Release(inos[w]).ok());

  Result<std::vector<meta::OwnerChunk>> left = meta_->GetOwnerChunks(staging);
  ASSERT_TRUE(left.ok()) << left.status().ToString();
  EXPECT_TRUE(left->empty()) << left->size() << " staging entries left";
  Result<std::vector<meta::FsckReferenceRow>> refs = meta_->CheckReferences();
  ASSERT_TRUE(refs.ok()) << refs.status().ToString();
  for (const meta::FsckReferenceRow& row : *refs) {
    EXPECT_EQ(row.recorded_ref_count, row.actual_ref_count) << row.digest.ToHex();
  }
  for (int w = 0; w < kWriters; ++w) {
    Result<meta::InodeRecord> inode = file_system_->GetAttr(inos[w]);
    ASSERT_TRUE(inode.ok());
    ASSERT_EQ(inode->size, contents[w].size());
    data_->Open(*inode);
    std::string out(contents[w].size(), '\0');
    Result<size_t> n = data_->Read(inos[w], 0, out.size(), out.data());
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_EQ(*n, out.size());
    EXPECT_TRUE(out == contents[w]) << "file " << w << " reads back different bytes";
    ASSERT_TRUE(data_->Release(inos[w]).ok());
  }
}

}  // namespace
}  // namespace cairn::mount
