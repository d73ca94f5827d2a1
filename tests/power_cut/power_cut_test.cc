// Proves the write path's fsync order instead of assuming it: seeded random uploads
// (multi-chunk, shared chunks, overwrites, failed and interleaved uploads), deletes and GC
// run over a PowerCutFileSystem that keeps only what was synced; the power is cut at a
// random mutating file-system call, the disk "reboots" into its durable state, and then
// every acknowledged object must read back byte for byte and fsck must find nothing
// missing or corrupt (before and after a GC that reclaims what the cut left behind).
//
// The metadata store is SQLite on a real file, outside the power-cut layer: SQLite makes
// its own commits durable (WAL, synchronous=FULL), so its committed state survives a cut
// by its own guarantee. What the test must model is the instant of the cut: a copy of the
// database and its WAL is taken when the power goes (what SQLite's crash recovery would
// find), so metadata writes the dying process makes afterwards (aborting its upload, say)
// do not count. The point is the order of chunk file syncs against those commits. (The
// copy also keeps what SQLite wrote without syncing, such as AddChunk's references under
// synchronous=NORMAL; losing those is CommitUpload's size check's business, not tested
// here.)
#include "meta/engines/open_meta_store.h"
#include "platform/power_cut_file_system.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <random>

#include "chunks/chunk_store.h"
#include "gc/collector.h"
#include "meta/meta_store.h"
#include "objects/object_service.h"
#include "platform/clock.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kChunk = 4096;
constexpr uint64_t kInline = 512;
constexpr int kOpsPerRun = 24;
constexpr const char* kTenant = "acme";
constexpr const char* kNamespace = "models";

// Contents are built from a small pool of chunk-sized blocks, so objects share chunks.
std::string Block(uint32_t id) {
  std::mt19937 rng(id * 7919 + 1);
  std::string out(kChunk, '\0');
  for (auto& c : out) c = static_cast<char>(rng());
  return out;
}

std::string MakeContent(std::mt19937& rng) {
  std::string out;
  if (rng() % 6 == 0) {  // inline: metadata only
    out.assign(1 + rng() % (kInline - 1), static_cast<char>('a' + rng() % 26));
    return out;
  }
  const int blocks = 1 + static_cast<int>(rng() % 5);
  for (int i = 0; i < blocks; ++i) out += Block(rng() % 10);
  const size_t tail = rng() % 3 == 0 ? 0 : rng() % kChunk;  // a tail chunk of its own
  for (size_t i = 0; i < tail; ++i) out.push_back(static_cast<char>(rng()));
  return out;
}

// Two of the keys live in the cold class (its own root, its own dedup).
StorageClass StorageClassOf(const std::string& key) {
  return key == "k4" || key == "k5" ? StorageClass::kCold : StorageClass::kHot;
}

// A scratch directory: tmpfs when there is one (SQLite's real fsyncs are then free).
std::string MakeScratch() {
  std::string base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : fs::temp_directory_path();
  std::string pattern = base + "/cairn-powercut-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    ADD_FAILURE() << "cannot create a scratch directory in " << base;
    abort();
  }
  return pattern;
}

// One life of the store, from an opened disk until the power goes.
struct Stores {
  std::unique_ptr<chunks::ChunkStore> chunks;
  std::unique_ptr<meta::MetaStore> meta;
  std::unique_ptr<objects::ObjectService> service;
};

class PowerCutRun {
 public:
  explicit PowerCutRun(uint32_t seed) : seed_(seed), scratch_(MakeScratch()) {
    fs::create_directories(scratch_ + "/disk");
    fs::create_directories(scratch_ + "/snapshot");
    file_system_ = std::move(
        platform::PowerCutFileSystem::Create(platform::DefaultFileSystem(), scratch_ + "/disk")
            .value());
    file_system_->SetOnPowerCut([this] { SnapshotDatabase(); });
  }
  ~PowerCutRun() {
    stores_ = Stores();
    fs::remove_all(scratch_);
  }

  platform::PowerCutFileSystem* file_system() { return file_system_.get(); }
  // What the GC after the reboot reclaimed of what the cut left: uploads, temp files and
  // orphaned chunk files.
  uint64_t leftovers() const { return leftovers_; }
  const std::string& log() const { return log_; }

  Status Open() {
    ASSIGN_OR_RETURN(stores_.chunks,
                     chunks::ChunkStore::Open(file_system_.get(),
                                              {scratch_ + "/disk/hot", scratch_ + "/disk/cold"}));
    ASSIGN_OR_RETURN(stores_.meta, meta::OpenMetaStore("sqlite://" + DatabasePath()));
    objects::ObjectServiceOptions options;
    options.inline_threshold_bytes = kInline;
    options.chunk_size_bytes = kChunk;
    stores_.service = std::make_unique<objects::ObjectService>(
        stores_.meta.get(), stores_.chunks.get(), &clock_, options);
    return OkStatus();
  }

  // Runs the seeded operations until they end or the power goes; then the power goes.
  void RunUntilCut() {
    std::mt19937 rng(seed_);
    for (int op = 0; op < kOpsPerRun && !file_system_->power_is_cut(); ++op) {
      clock_.Advance(1000);
      const uint32_t dice = rng() % 12;
      if (dice < 5) {
        Put(rng);
      } else if (dice < 6) {
        PutInterleaved(rng);
      } else if (dice < 8) {
        PutFailing(rng);
      } else if (dice < 10) {
        Delete(rng);
      } else {
        gc::GcOptions options;
        options.grace_ms = 0;  // live uploads are protected by their references, not grace
        options.store_identity_verified = true;  // see Check()
        options.allow_mass_delete = true;
        auto stats = gc::RunGc(stores_.meta.get(), stores_.chunks.get(), &clock_, options);
        log_ += "gc " + std::string(stats.ok() ? "ok" : stats.status().ToString()) + "\n";
      }
    }
    file_system_->PowerCut();  // no-op if a call already cut it
  }

  // Drops the dead process, reboots the disk and opens the stores on what survived.
  Status Reboot(std::optional<uint32_t> keep_some_unsynced = std::nullopt) {
    stores_ = Stores();  // aborts the interrupted uploads: their writes no longer count
    RETURN_IF_ERROR(file_system_->Reboot(keep_some_unsynced));
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(DatabasePath() + suffix);
    for (const char* suffix : {"", "-wal"}) {
      const std::string copy = scratch_ + "/snapshot/meta.db" + suffix;
      if (fs::exists(copy)) fs::copy_file(copy, DatabasePath() + suffix);
    }
    clock_.Advance(2 * 3600 * 1000);  // past every grace and stalled-upload limit
    return Open();
  }

  // Everything that is wrong with the rebooted store, empty if nothing.
  std::vector<std::string> Problems() {
    std::vector<std::string> problems;
    CheckObjects(&problems);
    auto report = gc::RunFsck(stores_.meta.get(), stores_.chunks.get(), &clock_, {false, true, 0});
    if (!report.ok()) return {"fsck: " + report.status().ToString()};
    for (const auto& chunk : report->missing_chunks) problems.push_back("missing " + chunk);
    for (const auto& chunk : report->corrupt_chunks) problems.push_back("corrupt " + chunk);
    for (const auto& count : report->wrong_ref_counts) problems.push_back("ref count " + count);
    for (const auto& path : report->stray_files) problems.push_back("stray " + path);
    if (!problems.empty()) return problems;

    // What the cut left behind (temp files, orphans, WRITING rows) is GC's to reclaim.
    gc::GcOptions options;
    options.grace_ms = 0;
    options.stalled_upload_ms = 0;
    // One store, opened by this test: its roots and metadata belong together. In a store
    // this small a cut can leave more orphans than the cap allows for a real one.
    options.store_identity_verified = true;
    options.allow_mass_delete = true;
    auto stats = gc::RunGc(stores_.meta.get(), stores_.chunks.get(), &clock_, options);
    if (!stats.ok()) return {"gc after reboot: " + stats.status().ToString()};
    leftovers_ =
        stats->reaped_uploads + stats->deleted_temp_files + stats->quarantined_orphan_files;
    report = gc::RunFsck(stores_.meta.get(), stores_.chunks.get(), &clock_, {false, true, 0});
    if (!report.ok()) return {"fsck after gc: " + report.status().ToString()};
    if (!report->ok()) {
      problems.push_back(
          "fsck after gc is not clean: " + std::to_string(report->missing_chunks.size()) +
          " missing, " + std::to_string(report->orphaned_chunks.size()) + " orphaned, " +
          std::to_string(report->stale_temp_files.size()) + " temp files, " +
          std::to_string(report->wrong_ref_counts.size()) + " wrong counts");
    }
    CheckObjects(&problems);  // GC took nothing an acknowledged object needs
    return problems;
  }

  void Put(const std::string& key, const std::string& content) {
    auto upload = Begin(key, content);
    if (!upload.ok()) return Acknowledge(key, content, upload.status());
    Acknowledge(key, content, (*upload)->Commit());
  }

  // A client that sends the wrong checksum: its chunks are in place, never committed.
  void PutFailing(const std::string& key, const std::string& content) {
    objects::UploadRequest request;
    request.tenant = kTenant;
    request.namespace_name = kNamespace;
    request.key = key;
    request.storage_class = StorageClassOf(key);
    request.expected_sha256 = Sha256Of(content + "x");
    auto upload = stores_.service->BeginUpload(request);
    Status status = upload.status();
    for (size_t i = 0; status.ok() && i < content.size(); i += 1500) {
      status = (*upload)->Write(std::string_view(content).substr(i, 1500));
    }
    if (status.ok()) status = (*upload)->Commit().status();
    log_ += "failing put " + key + ": " + status.ToString() + "\n";
  }

 private:
  std::string DatabasePath() const { return scratch_ + "/meta.db"; }
  std::string Key(std::mt19937& rng) { return "k" + std::to_string(rng() % 6); }

  void SnapshotDatabase() {
    // The process is "dead" from here: whatever SQLite has written is what its recovery
    // would find (its committed transactions were synced before they returned).
    for (const char* suffix : {"", "-wal"}) {
      const std::string copy = scratch_ + "/snapshot/meta.db" + suffix;
      fs::remove(copy);
      if (fs::exists(DatabasePath() + suffix)) fs::copy_file(DatabasePath() + suffix, copy);
    }
  }

  void Put(std::mt19937& rng) {
    const std::string key = Key(rng);
    Put(key, MakeContent(rng));
  }

  void PutFailing(std::mt19937& rng) {
    const std::string key = Key(rng);
    PutFailing(key, MakeContent(rng));
  }

  Result<std::unique_ptr<objects::Upload>> Begin(const std::string& key,
                                                 const std::string& content) {
    objects::UploadRequest request;
    request.tenant = kTenant;
    request.namespace_name = kNamespace;
    request.key = key;
    request.storage_class = StorageClassOf(key);
    ASSIGN_OR_RETURN(auto upload, stores_.service->BeginUpload(request));
    for (size_t i = 0; i < content.size(); i += 1500) {
      RETURN_IF_ERROR(upload->Write(std::string_view(content).substr(i, 1500)));
    }
    return upload;
  }

  void Acknowledge(const std::string& key, const std::string& content,
                   const Result<meta::CommitResult>& committed) {
    log_ += "put " + key + " (" + std::to_string(content.size()) + " bytes) " +
            (committed.ok() ? "acknowledged" : committed.status().ToString()) + "\n";
    // After the cut the process is dead: nothing it does later reaches a client.
    if (committed.ok() && !file_system_->power_is_cut()) acknowledged_[key] = content;
  }

  // Two uploads in flight at once sharing chunks; the later one commits first.
  void PutInterleaved(std::mt19937& rng) {
    const std::string first_key = Key(rng);
    const std::string second_key = Key(rng);
    const std::string content = MakeContent(rng);
    const std::string other = content + MakeContent(rng);
    auto first = Begin(first_key, content);
    if (!first.ok()) return Acknowledge(first_key, content, first.status());
    auto second = Begin(second_key, other);
    if (!second.ok()) return Acknowledge(second_key, other, second.status());
    Acknowledge(second_key, other, (*second)->Commit());
    Acknowledge(first_key, content, (*first)->Commit());
  }

  void Delete(std::mt19937& rng) {
    const std::string key = Key(rng);
    auto deleted = stores_.service->DeleteByKey(kTenant, kNamespace, key);
    log_ += "delete " + key + ": " + (deleted.ok() ? "OK" : deleted.status().ToString()) + "\n";
    if (deleted.ok() && !file_system_->power_is_cut()) acknowledged_.erase(key);
  }

  void CheckObjects(std::vector<std::string>* problems) {
    for (int i = 0; i < 6; ++i) {
      const std::string key = "k" + std::to_string(i);
      auto expected = acknowledged_.find(key);
      auto object = stores_.service->StatByKey(kTenant, kNamespace, key);
      if (expected == acknowledged_.end()) {
        if (object.ok()) problems->push_back(key + " is visible but was never acknowledged");
        continue;
      }
      if (!object.ok()) {
        problems->push_back(key + " acknowledged but " + object.status().ToString());
        continue;
      }
      auto read = ReadAll(*object);
      if (!read.ok()) {
        problems->push_back(key + " acknowledged but unreadable: " + read.status().ToString());
      } else if (*read != expected->second) {
        problems->push_back(key + " reads back " + std::to_string(read->size()) +
                            " bytes that differ from the " +
                            std::to_string(expected->second.size()) + " acknowledged");
      }
    }
  }

  Result<std::string> ReadAll(const meta::ObjectRecord& object) {
    ASSIGN_OR_RETURN(auto reader, stores_.service->OpenReader(object));
    std::string out;
    std::string buffer(3000, '\0');
    while (true) {
      ASSIGN_OR_RETURN(size_t n, reader->Read(out.size(), buffer.size(), buffer.data()));
      if (n == 0) break;
      out.append(buffer.data(), n);
    }
    return out;
  }

  const uint32_t seed_;
  const std::string scratch_;
  // Far ahead of the real clock: files' real modification times always lie in the past
  // of GC's cutoff, as they would after a reboot.
  platform::FakeClock clock_{platform::SystemClock()->NowMs() + 24 * 3600 * 1000};
  std::unique_ptr<platform::PowerCutFileSystem> file_system_;
  Stores stores_;
  std::map<std::string, std::string> acknowledged_;  // key -> content it must read back
  std::string log_;
  uint64_t leftovers_ = 0;
};

// What a negative control breaks.
enum class Broken { kNothing, kDirectorySync, kParentSyncOfNewDirectories };

// Runs one seed, cuts the power (after `cut_after` mutating calls, or once the operations
// are done), reboots and returns the problems found.
std::vector<std::string> CutAndCheck(uint32_t seed, std::optional<uint64_t> cut_after,
                                     Broken broken, uint64_t* calls = nullptr,
                                     std::string* log = nullptr,
                                     std::optional<uint32_t> keep_some_unsynced = std::nullopt,
                                     uint64_t* leftovers = nullptr) {
  PowerCutRun run(seed);
  Status opened = run.Open();
  if (!opened.ok()) return {"open: " + opened.ToString()};
  run.file_system()->SetSyncDirectoryIsNoop(broken == Broken::kDirectorySync);
  run.file_system()->SetCreateDirectoriesSkipsParentSync(broken ==
                                                         Broken::kParentSyncOfNewDirectories);
  if (cut_after) run.file_system()->CutAfter(*cut_after);
  run.RunUntilCut();
  if (calls) *calls = run.file_system()->mutating_calls();
  run.file_system()->SetSyncDirectoryIsNoop(false);
  run.file_system()->SetCreateDirectoriesSkipsParentSync(false);
  Status rebooted = run.Reboot(keep_some_unsynced);
  if (!rebooted.ok()) return {"reboot: " + rebooted.ToString()};
  if (log) *log = run.log();
  auto problems = run.Problems();
  if (leftovers) *leftovers = run.leftovers();
  return problems;
}

std::string Describe(const std::vector<std::string>& problems) {
  std::string out;
  for (const auto& problem : problems) out += "  " + problem + "\n";
  return out;
}

TEST(PowerCutTest, AcknowledgedObjectsSurviveACutAtAnyCall) {
  // One uncut run learns how many mutating calls a run makes, so cut points cover it.
  uint64_t calls = 0;
  std::string log;
  auto quiet = CutAndCheck(1, std::nullopt, Broken::kNothing, &calls, &log);
  ASSERT_TRUE(quiet.empty()) << "seed 1, power cut after the last operation:\n"
                             << Describe(quiet) << "operations:\n"
                             << log;
  ASSERT_GT(calls, 100u);

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  std::mt19937 rng(20261201);
  int runs = 0;
  int runs_with_leftovers = 0;
  for (; runs < 200 && std::chrono::steady_clock::now() < deadline; ++runs) {
    const uint32_t seed = 1 + runs % 40;
    const uint64_t cut_after = rng() % (calls + calls / 4);
    // Every other run, part of what was not synced reaches the disk too (temp files,
    // partly written; renames; removals), which only the durable state must survive.
    std::optional<uint32_t> keep_some_unsynced;
    if (runs % 2 == 1) keep_some_unsynced = rng();
    uint64_t leftovers = 0;
    auto problems = CutAndCheck(seed, cut_after, Broken::kNothing, nullptr, &log,
                                keep_some_unsynced, &leftovers);
    if (leftovers > 0) ++runs_with_leftovers;
    ASSERT_TRUE(problems.empty()) << "seed " << seed << ", power cut after " << cut_after
                                  << " mutating calls"
                                  << (keep_some_unsynced ? ", some unsynced changes kept" : "")
                                  << ":\n"
                                  << Describe(problems) << "operations:\n"
                                  << log;
  }
  EXPECT_GE(runs, 5);  // bounded by time: a loaded or sanitized build gets fewer
  // Cuts in the middle of things leave work for GC; if none did, the cuts missed.
  EXPECT_GT(runs_with_leftovers, runs / 4);
  std::cout << runs << " power cuts (" << calls << " mutating calls in a full run), "
            << runs_with_leftovers << " left uploads, temp files or orphans for GC to reclaim\n";
}

// The case the random runs found first: an upload that fails after renaming its chunks
// into place never syncs their directory; a later upload of the same bytes finds the
// files, writes nothing, and must sync that directory itself before it commits.
TEST(PowerCutTest, UploadDedupingOntoAnUnsyncedChunkMakesItDurable) {
  PowerCutRun run(1);
  ASSERT_TRUE(run.Open().ok());
  const std::string content = Block(1) + Block(2) + "tail";
  run.PutFailing("failed", content);
  run.Put("retried", content);
  run.file_system()->PowerCut();
  ASSERT_TRUE(run.Reboot().ok());
  auto problems = run.Problems();
  EXPECT_TRUE(problems.empty()) << Describe(problems) << run.log();
}

// The negative control: a store that skips its directory fsyncs loses acknowledged objects
// at a cut, and this test sees it. Without it a layer that kept everything would make the
// tests above pass vacuously.
TEST(PowerCutTest, DetectsLossWhenDirectorySyncIsSkipped) {
  for (uint32_t seed = 1; seed <= 3; ++seed) {
    EXPECT_FALSE(CutAndCheck(seed, std::nullopt, Broken::kDirectorySync).empty())
        << "seed " << seed;
  }
}

// A fan-out directory may exist unsynced in its parent (a mount's deferred write made it),
// so the chunk store syncs both levels into their parents itself the first time it uses
// one, whatever CreateDirectories did: a file system whose CreateDirectories skips the
// parent sync loses nothing. (This was a negative control while the store relied on it.)
TEST(PowerCutTest, FanOutDirectoriesAreDurableEvenIfCreateDirectoriesSkipsTheParentSync) {
  for (uint32_t seed = 1; seed <= 3; ++seed) {
    auto problems = CutAndCheck(seed, std::nullopt, Broken::kParentSyncOfNewDirectories);
    EXPECT_TRUE(problems.empty()) << "seed " << seed << ": " << Describe(problems);
  }
}

// A key file written with WriteFileAtomically is, after a cut at any call and a reboot
// (with or without unsynced changes reaching the disk), either the old file or the whole
// new one, and the new one whenever the write returned OK.
TEST(PowerCutTest, AtomicFileWriteIsOldOrNewAtAnyCut) {
  const std::string old_text = "old key\n";
  const std::string new_text = std::string(5000, 'n') + "\n";
  for (uint64_t cut = 0; cut < 16; ++cut) {
    for (std::optional<uint32_t> keep : {std::optional<uint32_t>(), std::optional<uint32_t>(7)}) {
      const std::string scratch = MakeScratch();
      const std::string disk = scratch + "/disk";
      fs::create_directories(disk);
      { std::ofstream(disk + "/master.key") << old_text; }
      auto file_system =
          platform::PowerCutFileSystem::Create(platform::DefaultFileSystem(), disk).value();
      file_system->CutAfter(cut);
      const std::string path = disk + "/master.key";
      Status written = platform::WriteFileAtomically(file_system.get(), path, new_text,
                                                     /*replace=*/true);
      ASSERT_TRUE(file_system->Reboot(keep).ok());
      std::ifstream in(path);
      std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      EXPECT_TRUE(got == old_text || got == new_text) << "cut " << cut << ": " << got.size();
      if (written.ok()) {
        EXPECT_EQ(got, new_text) << "cut " << cut;
      }
      if (cut == 15) {  // past the write's last call: no cut happened
        EXPECT_TRUE(written.ok()) << written.ToString();
      }
      file_system.reset();
      fs::remove_all(scratch);
    }
  }
}

}  // namespace
}  // namespace cairn
