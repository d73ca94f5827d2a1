#include "scrub/scrubber.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <tuple>

#include "core/block_checksums.h"
#include "core/hashing.h"
#include "metrics/registry.h"
#include "platform/file_system.h"

namespace cairn::scrub {
namespace {

// Digits followed by a unit from `units` (name, multiplier); the whole text may repeat
// such groups when `repeat`. Returns the sum.
Result<uint64_t> ParseWithUnits(std::string_view text, std::string_view what,
                                const std::vector<std::pair<std::string_view, uint64_t>>& units,
                                bool repeat) {
  const std::string shown(text.substr(0, 32));
  if (text.empty()) return InvalidArgumentError("empty " + std::string(what));
  uint64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    uint64_t value = 0;
    const size_t start = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      if (value > 1'000'000'000'000ULL) {
        return InvalidArgumentError(std::string(what) + " '" + shown + "' is too large");
      }
      value = value * 10 + static_cast<uint64_t>(text[i] - '0');
      ++i;
    }
    if (i == start) {
      return InvalidArgumentError(std::string(what) + " '" + shown +
                                  "' does not start with a number");
    }
    size_t unit_end = i;
    while (unit_end < text.size() && std::isalpha(static_cast<unsigned char>(text[unit_end]))) {
      ++unit_end;
    }
    const std::string_view unit = text.substr(i, unit_end - i);
    bool known = false;
    for (const auto& [name, multiplier] : units) {
      if (unit == name) {
        if (value > (UINT64_MAX - total) / multiplier) {
          return InvalidArgumentError(std::string(what) + " '" + shown + "' is too large");
        }
        total += value * multiplier;
        known = true;
        break;
      }
    }
    if (!known) {
      return InvalidArgumentError(std::string(what) + " '" + shown + "' has an unknown unit '" +
                                  std::string(unit) + "'");
    }
    i = unit_end;
    if (!repeat && i < text.size()) {
      return InvalidArgumentError(std::string(what) + " '" + shown + "' has trailing characters");
    }
  }
  return total;
}

bool Before(const meta::ChunkRecord& a, const meta::ChunkRecord& b) {
  return std::make_tuple(static_cast<int>(a.storage_class), a.digest) <
         std::make_tuple(static_cast<int>(b.storage_class), b.digest);
}

std::string Label(const meta::ChunkRecord& chunk) {
  return std::string(StorageClassName(chunk.storage_class)) + "/" + chunk.digest.ToHex();
}

// Who found the damage, for ReportDamagedChunk's log line.
constexpr const char* kReporter = "none; found by the scrubber";

void AppendStats(std::ostringstream& out, const std::string& prefix, const PassStats& stats) {
  out << prefix << "started_ms " << stats.started_ms << "\n"
      << prefix << "completed_ms " << stats.completed_ms << "\n"
      << prefix << "chunks_total " << stats.chunks_total << "\n"
      << prefix << "bytes_total " << stats.bytes_total << "\n"
      << prefix << "chunks_verified " << stats.chunks_verified << "\n"
      << prefix << "bytes_verified " << stats.bytes_verified << "\n"
      << prefix << "damaged " << stats.damaged << "\n"
      << prefix << "healed " << stats.healed << "\n"
      << prefix << "metadata_mismatches " << stats.metadata_mismatches << "\n"
      << prefix << "skipped " << stats.skipped << "\n";
}

bool ParseStatsField(PassStats* stats, std::string_view field, int64_t value) {
  const uint64_t unsigned_value = static_cast<uint64_t>(value);
  if (field == "started_ms") {
    stats->started_ms = value;
  } else if (field == "completed_ms") {
    stats->completed_ms = value;
  } else if (field == "chunks_total") {
    stats->chunks_total = unsigned_value;
  } else if (field == "bytes_total") {
    stats->bytes_total = unsigned_value;
  } else if (field == "chunks_verified") {
    stats->chunks_verified = unsigned_value;
  } else if (field == "bytes_verified") {
    stats->bytes_verified = unsigned_value;
  } else if (field == "damaged") {
    stats->damaged = unsigned_value;
  } else if (field == "healed") {
    stats->healed = unsigned_value;
  } else if (field == "metadata_mismatches") {
    stats->metadata_mismatches = unsigned_value;
  } else if (field == "skipped") {
    stats->skipped = unsigned_value;
  } else {
    return false;
  }
  return true;
}

std::string RenderState(const ScrubState& state) {
  std::ostringstream out;
  out << "cairn-scrub-state 1\n";
  out << "in_progress " << (state.in_progress ? 1 : 0) << "\n";
  if (state.in_progress) {
    AppendStats(out, "current.", state.current);
    if (state.cursor) {
      out << "cursor " << StorageClassName(state.cursor_class) << " " << state.cursor->ToHex()
          << "\n";
    }
  }
  if (state.has_last) {
    out << "last_kind " << state.last_kind << "\n";
    AppendStats(out, "last.", state.last);
  }
  return out.str();
}

Result<ScrubState> ParseState(const std::string& text, const std::string& path) {
  ScrubState state;
  std::istringstream in(text);
  std::string line;
  bool first = true;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string key;
    words >> key;
    if (first) {
      if (key != "cairn-scrub-state") {
        return DataLossError("'" + path + "' is not a scrub state file");
      }
      first = false;
      continue;
    }
    if (key.empty()) continue;
    if (key == "cursor") {
      std::string class_name, hex;
      words >> class_name >> hex;
      auto storage_class = ParseStorageClass(class_name);
      auto digest = Digest::FromHex(hex);
      if (storage_class.ok() && digest.ok()) {
        state.cursor_class = *storage_class;
        state.cursor = *digest;
      }
      continue;
    }
    if (key == "last_kind") {
      words >> state.last_kind;
      state.has_last = true;
      continue;
    }
    int64_t value = 0;
    if (!(words >> value)) continue;  // a field this version does not know
    if (key == "in_progress") {
      state.in_progress = value != 0;
    } else if (key.starts_with("current.")) {
      ParseStatsField(&state.current, std::string_view(key).substr(8), value);
    } else if (key.starts_with("last.")) {
      ParseStatsField(&state.last, std::string_view(key).substr(5), value);
      state.has_last = true;
    }
  }
  if (first) return DataLossError("'" + path + "' is empty");
  if (!state.in_progress) {
    state.current = PassStats();
    state.cursor.reset();
  }
  return state;
}

Result<ScrubState> LoadUnlocked(platform::FileSystem* file_system, const std::string& path) {
  auto file = file_system->OpenReadable(path);
  if (!file.ok()) {
    if (file.status().code() == StatusCode::kNotFound) return ScrubState();
    return file.status();
  }
  ASSIGN_OR_RETURN(uint64_t size, (*file)->Size());
  if (size > 1 << 20) return DataLossError("'" + path + "' is too large for a scrub state");
  std::string text(size, '\0');
  uint64_t offset = 0;
  while (offset < size) {
    ASSIGN_OR_RETURN(size_t got, (*file)->ReadAt(offset, size - offset, text.data() + offset));
    if (got == 0) break;
    offset += got;
  }
  text.resize(offset);
  return ParseState(text, path);
}

// An exclusive advisory lock on <path>.lock, held while the object lives.
class StateLock {
 public:
  static Result<std::unique_ptr<StateLock>> Acquire(const std::string& path) {
    const std::string lock_path = path + ".lock";
    const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return UnavailableError("cannot open '" + lock_path + "': " + strerror(errno));
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      return UnavailableError("cannot lock '" + lock_path + "': " + strerror(error));
    }
    return std::unique_ptr<StateLock>(new StateLock(fd));
  }
  ~StateLock() { ::close(fd_); }  // closing releases the lock

 private:
  explicit StateLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace

Result<uint64_t> ParseByteRate(std::string_view text) {
  if (text.ends_with("/s")) text.remove_suffix(2);
  return ParseWithUnits(text, "rate",
                        {{"", 1},
                         {"B", 1},
                         {"KB", 1000},
                         {"MB", 1000 * 1000},
                         {"GB", 1000 * 1000 * 1000},
                         {"KiB", 1024},
                         {"MiB", 1024 * 1024},
                         {"GiB", 1024 * 1024 * 1024}},
                        /*repeat=*/false);
}

Result<uint64_t> ParseByteSize(std::string_view text) {
  constexpr uint64_t kKiB = 1024, kGiB = kKiB * kKiB * kKiB;
  return ParseWithUnits(text, "size",
                        {{"", 1},
                         {"B", 1},
                         {"KB", 1000},
                         {"MB", 1000 * 1000},
                         {"GB", 1000 * 1000 * 1000},
                         {"TB", uint64_t{1000} * 1000 * 1000 * 1000},
                         {"KiB", kKiB},
                         {"MiB", kKiB * kKiB},
                         {"GiB", kGiB},
                         {"TiB", kGiB * kKiB}},
                        /*repeat=*/false);
}

Result<int64_t> ParseIntervalMs(std::string_view text) {
  ASSIGN_OR_RETURN(
      uint64_t ms,
      ParseWithUnits(
          text, "interval",
          {{"", 1000}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}, {"d", 24 * 3600 * 1000}},
          /*repeat=*/true));
  if (ms == 0) return InvalidArgumentError("interval '" + std::string(text) + "' must be positive");
  return static_cast<int64_t>(ms);
}

std::string ScrubStatePath(const std::string& data_dir) { return data_dir + "/scrub.state"; }

Result<ScrubState> LoadScrubState(const std::string& path) {
  return LoadUnlocked(platform::DefaultFileSystem(), path);
}

Status UpdateScrubState(const std::string& path, const std::function<void(ScrubState&)>& change) {
  platform::FileSystem* file_system = platform::DefaultFileSystem();
  const size_t slash = path.rfind('/');
  const std::string directory = slash == std::string::npos ? "." : path.substr(0, slash);
  RETURN_IF_ERROR(file_system->CreateDirectories(directory));
  ASSIGN_OR_RETURN(auto lock, StateLock::Acquire(path));
  auto state = LoadUnlocked(file_system, path);
  // A damaged state file only costs the progress it held: start over rather than stop.
  ScrubState updated = state.ok() ? *state : ScrubState();
  change(updated);
  const std::string temp = path + ".tmp";
  Status removed = file_system->RemoveFile(temp);  // left by a crash; we hold the lock
  if (!removed.ok() && removed.code() != StatusCode::kNotFound) return removed;
  ASSIGN_OR_RETURN(auto file, file_system->NewWritableFile(temp));
  Status written = file_system->MakePrivate(temp);
  if (written.ok()) written = file->Append(RenderState(updated));
  if (written.ok()) written = file->Sync();
  if (written.ok()) written = file->Close();
  file.reset();
  if (written.ok()) written = file_system->Rename(temp, path);
  if (!written.ok()) {
    file_system->RemoveFile(temp).IgnoreError();
    return written.WithContext("scrub state '" + path + "'");
  }
  return file_system->SyncDirectory(directory);
}

// ---- Scrubber --------------------------------------------------------------------------

Scrubber::Scrubber(objects::ObjectService* objects, ScrubOptions options)
    : objects_(objects), options_(std::move(options)), rate_(options_.rate_bytes_per_second) {}

void Scrubber::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
}

bool Scrubber::stopping() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stopping_;
}

bool Scrubber::SleepFor(std::chrono::milliseconds duration) {
  std::unique_lock<std::mutex> lock(mutex_);
  return !wake_.wait_for(lock, duration, [this] { return stopping_; });
}

Scrubber::Counters Scrubber::counters() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return counters_;
}

PassStats Scrubber::progress() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return progress_;
}

bool Scrubber::Pace(uint64_t bytes) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (stopping_) return false;
  if (rate_ == 0) return true;
  const auto now = std::chrono::steady_clock::now();
  // No credit for idle time: a pass that was stalled does not then read in a burst.
  if (next_read_ < now) next_read_ = now;
  next_read_ += std::chrono::nanoseconds(
      static_cast<int64_t>(static_cast<double>(bytes) * 1e9 / static_cast<double>(rate_)));
  return !wake_.wait_until(lock, next_read_, [this] { return stopping_; });
}

Scrubber::Outcome Scrubber::VerifyChunk(const meta::ChunkRecord& chunk, std::string* why) {
  chunks::ChunkStore* chunk_store = objects_->chunk_store();
  auto file = chunk_store->OpenChunk(chunk.storage_class, chunk.digest);
  if (!file.ok()) {
    if (file.status().code() == StatusCode::kNotFound) return Outcome::kMissing;
    *why = "unreadable: " + file.status().message();
    objects_->ReportDamagedChunk(chunk.storage_class, chunk.digest, kReporter, *why,
                                 &objects::IntegrityCounters::unreadable, /*quarantine=*/false);
    return Outcome::kDamaged;
  }
  if (!block_) block_.reset(new char[kChecksumBlockBytes]);
  const int fd = (*file)->NativeHandle();
  auto damaged = [&](std::string reason, uint64_t objects::IntegrityCounters::*counter,
                     bool quarantine) {
    *why = std::move(reason);
    objects_->ReportDamagedChunk(chunk.storage_class, chunk.digest, kReporter, *why, counter,
                                 quarantine, fd);
    return Outcome::kDamaged;
  };
  const bool has_checksums =
      !chunk.block_checksums.empty() && BlockChecksumsFit(chunk.block_checksums, chunk.size_bytes);
  Sha256Hasher hasher;
  std::optional<uint64_t> first_bad_block;
  uint64_t offset = 0;
  for (uint64_t block = 0; offset < chunk.size_bytes; ++block) {
    const size_t want =
        static_cast<size_t>(std::min<uint64_t>(kChecksumBlockBytes, chunk.size_bytes - offset));
    auto got = (*file)->ReadAt(offset, want, block_.get());
    if (!got.ok()) {
      // An I/O error may pass; the bytes were not shown to be wrong (as for reads).
      return damaged("unreadable: " + got.status().message(),
                     &objects::IntegrityCounters::unreadable, /*quarantine=*/false);
    }
    if (*got != want) {
      return damaged("short file at block " + std::to_string(block),
                     &objects::IntegrityCounters::short_file, /*quarantine=*/true);
    }
    const std::string_view bytes(block_.get(), want);
    hasher.Update(bytes);
    if (has_checksums && !first_bad_block &&
        Crc32c(bytes) != BlockChecksumAt(chunk.block_checksums, block)) {
      first_bad_block = block;
    }
    offset += want;
    std::lock_guard<std::mutex> lock(mutex_);
    counters_.bytes += want;
  }
  auto size = (*file)->Size();
  if (size.ok() && *size != chunk.size_bytes) {
    return damaged("size " + std::to_string(*size) + " differs from the recorded " +
                       std::to_string(chunk.size_bytes),
                   &objects::IntegrityCounters::short_file, /*quarantine=*/true);
  }
  if (hasher.Finish() != chunk.digest) {
    return damaged(
        "content does not hash to its name" +
            (first_bad_block ? " (first bad block " + std::to_string(*first_bad_block) + ")"
                             : std::string()),
        &objects::IntegrityCounters::checksum_mismatch, /*quarantine=*/true);
  }
  if (first_bad_block) {
    // The bytes are the chunk's identity; the recorded checksums are what is wrong. Reads
    // would refuse a good file, so this is for an operator (the file stays in place).
    *why = "the file hashes to its name but block " + std::to_string(*first_bad_block) +
           " disagrees with the recorded block checksum (the metadata is wrong)";
    fprintf(stderr, "cairn: scrub: chunk %s: %s\n", Label(chunk).c_str(), why->c_str());
    return Outcome::kMetadataMismatch;
  }
  if (chunk.damaged_ms != 0) {
    Status cleared = objects_->meta_store()->SetChunkDamaged(chunk.storage_class, chunk.digest, 0);
    if (cleared.ok()) {
      fprintf(stderr, "cairn: scrub: chunk %s verifies again; damage mark cleared\n",
              Label(chunk).c_str());
      return Outcome::kHealed;
    }
  }
  return Outcome::kOk;
}

Status Scrubber::ResolveMissing(std::vector<meta::ChunkRecord>* missing, PassReport* report) {
  if (missing->empty()) return OkStatus();
  // The listing may be old: read the rows again, now that the files are known missing. A
  // chunk GC removed since (row gone, or unreferenced) is no damage.
  ASSIGN_OR_RETURN(std::vector<meta::ChunkRecord> rows, objects_->meta_store()->ListChunks());
  std::sort(rows.begin(), rows.end(), Before);
  for (const meta::ChunkRecord& chunk : *missing) {
    auto it = std::lower_bound(rows.begin(), rows.end(), chunk, Before);
    const bool row_found = it != rows.end() && !Before(chunk, *it);
    if (!row_found || it->ref_count == 0) {
      Record(report, Outcome::kSkipped, chunk, "");
      continue;
    }
    auto present = objects_->chunk_store()->Contains(chunk.storage_class, chunk.digest);
    if (present.ok() && *present) {
      // Written again meanwhile (an upload); the next pass verifies it.
      Record(report, Outcome::kSkipped, chunk, "");
      continue;
    }
    if (it->damaged_ms != 0) {
      // Found and reported before (its file is in quarantine): still damaged, not news.
      Record(report, Outcome::kDamaged, chunk, "missing file (already marked damaged)");
      continue;
    }
    objects_->ReportDamagedChunk(chunk.storage_class, chunk.digest, kReporter, "missing file",
                                 &objects::IntegrityCounters::missing, /*quarantine=*/false);
    Record(report, Outcome::kDamaged, chunk, "missing file");
  }
  missing->clear();
  return OkStatus();
}

void Scrubber::Record(PassReport* report, Outcome outcome, const meta::ChunkRecord& chunk,
                      const std::string& why) {
  PassStats& stats = report->stats;
  if (outcome == Outcome::kSkipped) {
    ++stats.skipped;
  } else {
    ++stats.chunks_verified;
    stats.bytes_verified += chunk.size_bytes;
  }
  if (outcome == Outcome::kDamaged || outcome == Outcome::kMetadataMismatch) {
    if (outcome == Outcome::kDamaged) {
      ++stats.damaged;
    } else {
      ++stats.metadata_mismatches;
    }
    if (report->problems.size() < options_.max_listed) {
      report->problems.push_back(Label(chunk) + ": " + why);
    }
  }
  if (outcome == Outcome::kHealed) ++stats.healed;
  std::lock_guard<std::mutex> lock(mutex_);
  switch (outcome) {
    case Outcome::kOk:
      ++counters_.ok;
      break;
    case Outcome::kHealed:
      ++counters_.healed;
      break;
    case Outcome::kDamaged:
      ++counters_.damaged;
      break;
    case Outcome::kMetadataMismatch:
      ++counters_.metadata_mismatch;
      break;
    case Outcome::kSkipped:
    case Outcome::kMissing:
      ++counters_.skipped;
      break;
  }
  progress_ = stats;
}

Status Scrubber::Persist(const PassReport& report, StorageClass cursor_class,
                         const std::optional<Digest>& cursor) {
  if (options_.state_path.empty()) return OkStatus();
  if (!options_.background && !report.complete) return OkStatus();
  return UpdateScrubState(options_.state_path, [&](ScrubState& state) {
    if (report.complete) {
      if (options_.background) {
        state.in_progress = false;
        state.current = PassStats();
        state.cursor.reset();
      }
      state.has_last = true;
      state.last = report.stats;
      state.last_kind = options_.background ? "background" : "on-demand";
    } else {
      state.in_progress = true;
      state.current = report.stats;
      state.cursor_class = cursor_class;
      state.cursor = cursor;
    }
  });
}

Result<PassReport> Scrubber::RunPass() {
  meta::MetaStore* meta_store = objects_->meta_store();
  platform::Clock* clock = objects_->clock();
  ASSIGN_OR_RETURN(std::vector<meta::ChunkRecord> rows, meta_store->ListChunks());
  std::sort(rows.begin(), rows.end(), Before);

  PassReport report;
  std::optional<meta::ChunkRecord> resume_after;
  if (options_.background && !options_.state_path.empty()) {
    auto state = LoadScrubState(options_.state_path);
    if (!state.ok()) {
      fprintf(stderr, "cairn: scrub: starting a new pass: %s\n", state.status().ToString().c_str());
    } else if (state->in_progress) {
      report.stats = state->current;
      if (state->cursor) {
        resume_after.emplace(state->cursor_class, *state->cursor, 0, 0, 0);
      }
    }
  }
  if (report.stats.started_ms == 0) {
    report.stats = PassStats();
    report.stats.started_ms = clock->NowMs();
  }
  size_t begin = 0;
  if (resume_after) {
    begin = static_cast<size_t>(std::upper_bound(rows.begin(), rows.end(), *resume_after, Before) -
                                rows.begin());
  }
  // Totals: what was done before a restart plus what is left now.
  report.stats.chunks_total = report.stats.chunks_verified;
  report.stats.bytes_total = report.stats.bytes_verified;
  for (size_t i = begin; i < rows.size(); ++i) {
    if (rows[i].ref_count == 0) continue;
    ++report.stats.chunks_total;
    report.stats.bytes_total += rows[i].size_bytes;
  }
  uint64_t rate = options_.rate_bytes_per_second;
  if (options_.pass_period_ms > 0) {
    // Fast enough to finish what is left by the end of the period (a pass resumed late
    // still gets a tenth of one), never faster than the limit.
    const int64_t period = options_.pass_period_ms;
    const int64_t left_ms = std::max<int64_t>(report.stats.started_ms + period - clock->NowMs(),
                                              std::max<int64_t>(period / 10, 1));
    const uint64_t remaining = report.stats.bytes_total - report.stats.bytes_verified;
    const uint64_t paced =
        std::max<uint64_t>(1, static_cast<uint64_t>(static_cast<double>(remaining) * 1000.0 /
                                                    static_cast<double>(left_ms)));
    rate = rate == 0 ? paced : std::min(rate, paced);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    rate_ = rate;
    progress_ = report.stats;
    next_read_ = std::chrono::steady_clock::now();
  }

  std::vector<meta::ChunkRecord> missing;
  auto last_persist = std::chrono::steady_clock::now();
  std::optional<Digest> cursor;
  StorageClass cursor_class = StorageClass::kHot;
  if (resume_after) {
    cursor_class = resume_after->storage_class;
    cursor = resume_after->digest;
  }
  // Resolves the missing files found so far and records the position.
  auto checkpoint = [&]() -> Status {
    RETURN_IF_ERROR(ResolveMissing(&missing, &report));
    if (options_.background) {
      Status persisted = Persist(report, cursor_class, cursor);
      if (!persisted.ok()) fprintf(stderr, "cairn: scrub: %s\n", persisted.ToString().c_str());
    }
    last_persist = std::chrono::steady_clock::now();
    return OkStatus();
  };
  for (size_t i = begin; i < rows.size(); ++i) {
    const meta::ChunkRecord& chunk = rows[i];
    if (stopping()) break;
    if (chunk.ref_count != 0) {
      std::string why;
      const Outcome outcome = VerifyChunk(chunk, &why);
      if (outcome == Outcome::kMissing) {
        missing.push_back(chunk);
      } else {
        Record(&report, outcome, chunk, why);
      }
    }
    cursor_class = chunk.storage_class;
    cursor = chunk.digest;
    if (missing.size() >= 256 ||
        std::chrono::steady_clock::now() - last_persist >= std::chrono::seconds(10)) {
      RETURN_IF_ERROR(checkpoint());
    }
    if (chunk.ref_count != 0 && !Pace(chunk.size_bytes)) break;
  }
  if (stopping()) {
    RETURN_IF_ERROR(checkpoint());
    return report;
  }
  RETURN_IF_ERROR(ResolveMissing(&missing, &report));
  report.stats.completed_ms = std::max<TimestampMs>(clock->NowMs(), report.stats.started_ms);
  report.complete = true;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++counters_.passes;
    progress_ = PassStats();
  }
  Status persisted = Persist(report, cursor_class, cursor);
  if (!persisted.ok()) fprintf(stderr, "cairn: scrub: %s\n", persisted.ToString().c_str());
  return report;
}

// ---- ScrubLoop -------------------------------------------------------------------------

namespace {

ScrubOptions LoopScrubOptions(const ScrubLoopOptions& options) {
  ScrubOptions scrub;
  scrub.rate_bytes_per_second = options.max_rate_bytes_per_second;
  scrub.state_path = options.state_path;
  scrub.background = true;
  scrub.pass_period_ms = options.interval_ms;
  scrub.max_listed = 0;  // the log has every problem; the loop keeps no list
  return scrub;
}

}  // namespace

ScrubLoop::ScrubLoop(objects::ObjectService* objects, ScrubLoopOptions options)
    : options_(std::move(options)), scrubber_(objects, LoopScrubOptions(options_)) {
  auto state = LoadScrubState(options_.state_path);
  if (state.ok() && state->has_last) last_completed_ms_ = state->last.completed_ms;
}

ScrubLoop::~ScrubLoop() { Stop(); }

void ScrubLoop::Start() {
  if (options_.max_rate_bytes_per_second == 0 || options_.interval_ms <= 0) return;
  thread_ = std::thread([this] { Loop(); });
}

void ScrubLoop::Stop() {
  scrubber_.Stop();
  if (thread_.joinable()) thread_.join();
}

void ScrubLoop::Loop() {
  platform::Clock* clock = platform::SystemClock();
  while (!scrubber_.stopping()) {
    auto state = LoadScrubState(options_.state_path);
    if (!state.ok()) {
      fprintf(stderr, "cairn: scrub: %s\n", state.status().ToString().c_str());
      state = ScrubState();
    }
    if (!state->in_progress && state->has_last) {
      // A full pass of any kind counts: the next one is due an interval after it started.
      const TimestampMs due = state->last.started_ms + options_.interval_ms;
      const TimestampMs now = clock->NowMs();
      if (due > now) {
        // Re-read the state now and then: `cairn scrub` may have completed a pass.
        scrubber_.SleepFor(std::chrono::milliseconds(std::min<int64_t>(due - now, 60'000)));
        continue;
      }
    }
    auto report = scrubber_.RunPass();
    if (!report.ok()) {
      fprintf(stderr, "cairn: scrub: pass failed: %s\n", report.status().ToString().c_str());
      scrubber_.SleepFor(std::chrono::seconds(60));
      continue;
    }
    if (!report->complete) return;
    last_completed_ms_ = report->stats.completed_ms;
    const PassStats& stats = report->stats;
    // Damage was logged chunk by chunk; a summary is worth a line for long passes (the
    // normal case) and passes that found something, not for a tiny store scrubbed often.
    const bool found = stats.damaged + stats.healed + stats.metadata_mismatches != 0;
    if (!found && stats.completed_ms - stats.started_ms < 60'000) continue;
    fprintf(stderr,
            "cairn: scrub: pass complete: %llu chunks (%llu bytes) verified, %llu damaged, "
            "%llu healed, %llu metadata mismatches\n",
            static_cast<unsigned long long>(report->stats.chunks_verified),
            static_cast<unsigned long long>(report->stats.bytes_verified),
            static_cast<unsigned long long>(report->stats.damaged),
            static_cast<unsigned long long>(report->stats.healed),
            static_cast<unsigned long long>(report->stats.metadata_mismatches));
  }
}

std::string ScrubLoop::RenderMetrics() const {
  const Scrubber::Counters counters = scrubber_.counters();
  const PassStats progress = scrubber_.progress();
  std::string out;
  metrics::AppendHeader(&out, "cairn_scrub_bytes_total",
                        "Chunk bytes read and verified by the background scrubber.", "counter");
  metrics::AppendSample(&out, "cairn_scrub_bytes_total", {}, static_cast<double>(counters.bytes));
  metrics::AppendHeader(&out, "cairn_scrub_chunks_total",
                        "Chunks checked by the background scrubber, by result.", "counter");
  const std::pair<const char*, uint64_t> results[] = {
      {"ok", counters.ok},
      {"damaged", counters.damaged},
      {"healed", counters.healed},
      {"metadata_mismatch", counters.metadata_mismatch},
      {"skipped", counters.skipped}};
  for (const auto& [result, value] : results) {
    metrics::AppendSample(&out, "cairn_scrub_chunks_total", {{"result", result}},
                          static_cast<double>(value));
  }
  metrics::AppendHeader(&out, "cairn_scrub_passes_total", "Scrub passes completed by this process.",
                        "counter");
  metrics::AppendSample(&out, "cairn_scrub_passes_total", {}, static_cast<double>(counters.passes));
  double ratio = last_completed_ms_ != 0 ? 1 : 0;
  if (progress.started_ms != 0) {
    ratio = progress.bytes_total == 0 ? 0
                                      : static_cast<double>(progress.bytes_verified) /
                                            static_cast<double>(progress.bytes_total);
  }
  metrics::AppendHeader(&out, "cairn_scrub_pass_progress_ratio",
                        "Fraction of the current scrub pass done (by bytes); 1 between passes.",
                        "gauge");
  metrics::AppendSample(&out, "cairn_scrub_pass_progress_ratio", {}, ratio);
  metrics::AppendHeader(&out, "cairn_scrub_last_pass_completed_timestamp_seconds",
                        "When the last full scrub pass completed (Unix time; 0: never).", "gauge");
  metrics::AppendSample(&out, "cairn_scrub_last_pass_completed_timestamp_seconds", {},
                        static_cast<double>(last_completed_ms_.load()) / 1000.0);
  return out;
}

}  // namespace cairn::scrub
