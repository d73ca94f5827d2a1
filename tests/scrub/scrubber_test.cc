#include "scrub/scrubber.h"
#include "meta/engines/open_meta_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>

#include "core/block_checksums.h"
#include "core/hashing.h"
#include "platform/clock.h"
#include "platform/file_system.h"

#include "random_bytes.h"

namespace cairn::scrub {
namespace {

constexpr uint64_t kChunk = 64 * 1024;

using ::cairn::testing::RandomBytes;

class ScrubberTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/cairn-scrub-XXXXXX";
    root_ = mkdtemp(pattern);
    chunks_ = std::move(
        chunks::ChunkStore::Open(platform::DefaultFileSystem(), {root_ + "/hot", root_ + "/cold"})
            .value());
    meta_ = std::move(meta::OpenMetaStore("sqlite://" + root_ + "/meta.db").value());
    objects::ObjectServiceOptions options;
    options.inline_threshold_bytes = 1024;
    options.chunk_size_bytes = kChunk;
    objects_ =
        std::make_unique<objects::ObjectService>(meta_.get(), chunks_.get(), &clock_, options);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  meta::ObjectRecord Put(const std::string& key, const std::string& bytes) {
    objects::UploadRequest request;
    request.tenant = "acme";
    request.namespace_name = "models";
    request.key = key;
    auto upload = objects_->BeginUpload(request);
    EXPECT_TRUE(upload.ok());
    EXPECT_TRUE((*upload)->Write(bytes).ok());
    auto committed = (*upload)->Commit();
    EXPECT_TRUE(committed.ok()) << committed.status().ToString();
    return committed->object;
  }

  std::vector<meta::ChunkRef> ChunksOf(const meta::ObjectRecord& object) {
    auto chunks = meta_->GetChunks(object.id);
    EXPECT_TRUE(chunks.ok());
    return chunks.ok() ? *chunks : std::vector<meta::ChunkRef>();
  }

  std::string PathOf(const Digest& digest) { return chunks_->PathOf(StorageClass::kHot, digest); }

  void FlipByte(const Digest& digest, uint64_t offset) {
    const std::string path = PathOf(digest);
    ::chmod(path.c_str(), 0600);
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(file.good()) << path;
    file.seekg(static_cast<std::streamoff>(offset));
    char c = 0;
    file.read(&c, 1);
    c ^= 0x5a;
    file.seekp(static_cast<std::streamoff>(offset));
    file.write(&c, 1);
  }

  size_t QuarantinedFiles() {
    const std::string directory = chunks_->QuarantineDirectory(StorageClass::kHot);
    if (!std::filesystem::exists(directory)) return 0;
    return static_cast<size_t>(std::distance(std::filesystem::directory_iterator(directory),
                                             std::filesystem::directory_iterator()));
  }

  PassReport Scrub(ScrubOptions options = ScrubOptions()) {
    Scrubber scrubber(objects_.get(), std::move(options));
    auto report = scrubber.RunPass();
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    return report.ok() ? *report : PassReport();
  }

  std::string root_;
  platform::FakeClock clock_{1'700'000'000'000};
  std::unique_ptr<chunks::ChunkStore> chunks_;
  std::unique_ptr<meta::MetaStore> meta_;
  std::unique_ptr<objects::ObjectService> objects_;
};

TEST_F(ScrubberTest, CleanStoreIsClean) {
  Put("a", RandomBytes(3 * kChunk + 100, 1));
  Put("b", RandomBytes(2 * kChunk, 2));
  Put("small", "inline bytes are not chunks");
  const PassReport report = Scrub();
  EXPECT_TRUE(report.complete);
  EXPECT_EQ(report.stats.chunks_total, 6u);
  EXPECT_EQ(report.stats.chunks_verified, 6u);
  EXPECT_EQ(report.stats.bytes_verified, 5 * kChunk + 100);
  EXPECT_EQ(report.stats.bytes_total, report.stats.bytes_verified);
  EXPECT_EQ(report.stats.damaged, 0u);
  EXPECT_EQ(report.stats.metadata_mismatches, 0u);
  EXPECT_TRUE(report.problems.empty());
  EXPECT_EQ(QuarantinedFiles(), 0u);
}

TEST_F(ScrubberTest, CorruptChunkIsQuarantinedMarkedAndCounted) {
  const std::string data = RandomBytes(3 * kChunk, 3);
  const meta::ObjectRecord object = Put("a", data);
  const Digest bad = ChunksOf(object)[1].digest;
  FlipByte(bad, kChunk - 7);
  const PassReport report = Scrub();
  EXPECT_TRUE(report.complete);
  EXPECT_EQ(report.stats.chunks_verified, 3u);
  EXPECT_EQ(report.stats.damaged, 1u);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find(bad.ToHex()), std::string::npos) << report.problems[0];
  // The same path as a read: file moved aside, row marked, counter bumped.
  EXPECT_EQ(QuarantinedFiles(), 1u);
  EXPECT_FALSE(std::filesystem::exists(PathOf(bad)));
  const std::vector<meta::ChunkRef> chunks = ChunksOf(object);
  EXPECT_EQ(chunks[0].damaged_ms, 0);
  EXPECT_NE(chunks[1].damaged_ms, 0);
  EXPECT_EQ(objects_->integrity_counters().checksum_mismatch, 1u);
  // A read now fails before it serves a byte.
  auto reader = objects_->OpenReader(object);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->Prepare(0, object.size_bytes, true).code(), StatusCode::kDataLoss);

  // The next pass still sees the damage, but does not report it again.
  const objects::IntegrityCounters before = objects_->integrity_counters();
  const PassReport again = Scrub();
  EXPECT_EQ(again.stats.damaged, 1u);
  EXPECT_EQ(objects_->integrity_counters().checksum_mismatch, before.checksum_mismatch);
  EXPECT_EQ(objects_->integrity_counters().missing, before.missing);
}

TEST_F(ScrubberTest, MissingShortAndLongFilesAreDamage) {
  const meta::ObjectRecord object = Put("a", RandomBytes(3 * kChunk, 4));
  const std::vector<meta::ChunkRef> chunks = ChunksOf(object);
  std::filesystem::remove(PathOf(chunks[0].digest));
  std::filesystem::resize_file(PathOf(chunks[1].digest), kChunk / 2);
  {
    std::ofstream longer(PathOf(chunks[2].digest), std::ios::app | std::ios::binary);
    longer << "tail";
  }
  const PassReport report = Scrub();
  EXPECT_EQ(report.stats.damaged, 3u);
  EXPECT_EQ(report.problems.size(), 3u);
  const objects::IntegrityCounters counters = objects_->integrity_counters();
  EXPECT_EQ(counters.missing, 1u);
  EXPECT_EQ(counters.short_file, 2u);
  EXPECT_EQ(QuarantinedFiles(), 2u);  // a missing file has nothing to move
  for (const meta::ChunkRef& chunk : ChunksOf(object)) EXPECT_NE(chunk.damaged_ms, 0);
}

TEST_F(ScrubberTest, ChunkThatVerifiesAgainHasItsMarkCleared) {
  const std::string data = RandomBytes(2 * kChunk, 5);
  const meta::ObjectRecord object = Put("a", data);
  const Digest digest = ChunksOf(object)[0].digest;
  FlipByte(digest, 10);
  EXPECT_EQ(Scrub().stats.damaged, 1u);
  ASSERT_NE(ChunksOf(object)[0].damaged_ms, 0);
  // A fresh copy is installed (as an upload of the same content would).
  std::set<std::string> directories;
  ASSERT_TRUE(chunks_
                  ->WriteChunk(StorageClass::kHot, digest, std::string_view(data).substr(0, kChunk),
                               &directories)
                  .ok());
  const PassReport report = Scrub();
  EXPECT_EQ(report.stats.damaged, 0u);
  EXPECT_EQ(report.stats.healed, 1u);
  EXPECT_EQ(ChunksOf(object)[0].damaged_ms, 0);
  EXPECT_EQ(Scrub().stats.healed, 0u);  // cleared once
}

TEST_F(ScrubberTest, WrongBlockChecksumsAreAMetadataProblemNotDamage) {
  const std::string bytes = RandomBytes(kChecksumBlockBytes + 1000, 6);
  Sha256Hasher hasher;
  hasher.Update(bytes);
  const Digest digest = hasher.Finish();
  std::set<std::string> directories;
  ASSERT_TRUE(chunks_->WriteChunk(StorageClass::kHot, digest, bytes, &directories).ok());
  std::string checksums = BlockChecksums(bytes);
  checksums[5] ^= 1;  // block 1's checksum
  meta::ObjectRecord object;
  object.id = platform::NewObjectId();
  object.tenant = "acme";
  object.namespace_name = "models";
  object.key = "odd";
  object.state = ObjectState::kCommitted;
  object.size_bytes = bytes.size();
  object.content_hash = digest;
  ASSERT_TRUE(
      meta_->PutCommitted(object, {meta::ChunkRef(digest, bytes.size(), checksums)}, 1).ok());
  const PassReport report = Scrub();
  EXPECT_EQ(report.stats.damaged, 0u);
  EXPECT_EQ(report.stats.metadata_mismatches, 1u);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find("block 1"), std::string::npos) << report.problems[0];
  EXPECT_TRUE(std::filesystem::exists(PathOf(digest)));  // the bytes are right: left alone
  EXPECT_EQ(QuarantinedFiles(), 0u);
}

TEST_F(ScrubberTest, UnreferencedChunksAreSkipped) {
  const meta::ObjectRecord object = Put("a", RandomBytes(2 * kChunk, 7));
  const Digest digest = ChunksOf(object)[0].digest;
  ASSERT_TRUE(objects_->Delete("acme", object.id).ok());
  FlipByte(digest, 1);
  const PassReport report = Scrub();
  EXPECT_EQ(report.stats.chunks_total, 0u);
  EXPECT_EQ(report.stats.damaged, 0u);
  EXPECT_EQ(QuarantinedFiles(), 0u);
}

TEST_F(ScrubberTest, RateBoundsThePace) {
  Put("a", RandomBytes(4 * kChunk, 8));
  ScrubOptions options;
  options.rate_bytes_per_second = 1024 * 1024;
  const auto start = std::chrono::steady_clock::now();
  const PassReport report = Scrub(options);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(report.complete);
  // Only a lower bound: a loaded machine may be slower, never faster than the rate.
  EXPECT_GE(seconds, 0.9 * static_cast<double>(4 * kChunk) / (1024 * 1024));
}

TEST_F(ScrubberTest, StopEndsAPacedPassEarly) {
  Put("a", RandomBytes(4 * kChunk, 9));
  ScrubOptions options;
  options.rate_bytes_per_second = 1024;  // about four minutes for this store
  Scrubber scrubber(objects_.get(), options);
  auto pass = std::async(std::launch::async, [&] { return scrubber.RunPass(); });
  scrubber.Stop();
  ASSERT_EQ(pass.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  auto report = pass.get();
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->complete);
  EXPECT_LT(report->stats.chunks_verified, 4u);
}

TEST_F(ScrubberTest, BackgroundPassPersistsProgressAndResumesFromItsCursor) {
  Put("a", RandomBytes(3 * kChunk, 10));
  auto rows = meta_->ListChunks();
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 3u);
  std::vector<Digest> digests;
  for (const auto& row : *rows) digests.push_back(row.digest);
  std::sort(digests.begin(), digests.end());
  // A pass that stopped after the first chunk, with damage found before the stop.
  const std::string state_path = ScrubStatePath(root_);
  ASSERT_TRUE(UpdateScrubState(state_path, [&](ScrubState& state) {
                state.in_progress = true;
                state.current.started_ms = 1'600'000'000'000;
                state.current.chunks_verified = 1;
                state.current.bytes_verified = kChunk;
                state.current.damaged = 1;
                state.cursor_class = StorageClass::kHot;
                state.cursor = digests[0];
              }).ok());
  struct stat st;
  ASSERT_EQ(::stat(state_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // The chunk before the cursor is corrupt: a resumed pass must not read it again.
  FlipByte(digests[0], 0);

  ScrubOptions options;
  options.background = true;
  options.state_path = state_path;
  const PassReport report = Scrub(options);
  EXPECT_TRUE(report.complete);
  EXPECT_EQ(report.stats.started_ms, 1'600'000'000'000);
  EXPECT_EQ(report.stats.chunks_verified, 3u);
  EXPECT_EQ(report.stats.chunks_total, 3u);
  EXPECT_EQ(report.stats.damaged, 1u);  // the one found before the restart
  EXPECT_EQ(QuarantinedFiles(), 0u);

  auto state = LoadScrubState(state_path);
  ASSERT_TRUE(state.ok());
  EXPECT_FALSE(state->in_progress);
  EXPECT_FALSE(state->cursor.has_value());
  ASSERT_TRUE(state->has_last);
  EXPECT_EQ(state->last_kind, "background");
  EXPECT_EQ(state->last.chunks_verified, 3u);
  EXPECT_EQ(state->last.damaged, 1u);

  // An on-demand pass records its summary and leaves a background pass alone.
  ASSERT_TRUE(UpdateScrubState(state_path, [&](ScrubState& s) {
                s.in_progress = true;
                s.current.started_ms = 5;
                s.cursor = digests[1];
              }).ok());
  ScrubOptions on_demand;
  on_demand.state_path = state_path;
  EXPECT_EQ(Scrub(on_demand).stats.damaged, 1u);
  state = LoadScrubState(state_path);
  ASSERT_TRUE(state.ok());
  EXPECT_TRUE(state->in_progress);
  EXPECT_EQ(state->current.started_ms, 5);
  ASSERT_TRUE(state->cursor.has_value());
  EXPECT_EQ(*state->cursor, digests[1]);
  EXPECT_EQ(state->last_kind, "on-demand");
}

TEST(ScrubParseTest, RatesAndIntervals) {
  EXPECT_EQ(ParseByteRate("0").value(), 0u);
  EXPECT_EQ(ParseByteRate("1048576").value(), 1048576u);
  EXPECT_EQ(ParseByteRate("50MiB").value(), 50u * 1024 * 1024);
  EXPECT_EQ(ParseByteRate("50MiB/s").value(), 50u * 1024 * 1024);
  EXPECT_EQ(ParseByteRate("10MB").value(), 10'000'000u);
  EXPECT_EQ(ParseByteRate("64KiB").value(), 65536u);
  EXPECT_FALSE(ParseByteRate("").ok());
  EXPECT_FALSE(ParseByteRate("fast").ok());
  EXPECT_FALSE(ParseByteRate("5XB").ok());
  EXPECT_FALSE(ParseByteRate("5MiB5").ok());
  EXPECT_EQ(ParseIntervalMs("30d").value(), 30LL * 24 * 3600 * 1000);
  EXPECT_EQ(ParseIntervalMs("1d12h").value(), 36LL * 3600 * 1000);
  EXPECT_EQ(ParseIntervalMs("90").value(), 90'000);
  EXPECT_EQ(ParseIntervalMs("1s").value(), 1000);
  EXPECT_FALSE(ParseIntervalMs("0").ok());
  EXPECT_FALSE(ParseIntervalMs("1w").ok());
  EXPECT_FALSE(ParseIntervalMs("-1d").ok());
}

}  // namespace
}  // namespace cairn::scrub
