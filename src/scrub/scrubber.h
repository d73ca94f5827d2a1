// The scrubber: re-verifies every chunk file at rest, so damage is found before a read
// needs the chunk (and while an upload of the same content can still heal it).
//
// One pass walks the chunk rows in (storage class, digest) order and reads each file in
// full: its SHA-256 must equal the digest (the chunk's identity) and, when the row records
// block checksums, each block's CRC32C must match them. A missing, short, long, unreadable
// or corrupt file is reported exactly as a read reports it (ObjectService::
// ReportDamagedChunk: quarantine, damage mark, log line, counter). A chunk marked damaged
// whose file verifies again (an upload installed a fresh copy) has its mark cleared. A file
// that hashes to its name but disagrees with the recorded block checksums means the
// metadata is wrong, not the bytes: it is logged and counted, and the file is left alone.
// Chunks whose reference count is zero are skipped: no object reads them, GC removes them,
// and an upload that deduplicates onto one compares the bytes before it trusts them.
//
// Progress is kept in a small state file (see ScrubState) so that `cairn status`, another
// process, can show it, and so that a background pass resumes where it stopped after a
// restart. Every writer changes the file under an advisory lock, read-modify-write, and
// replaces it atomically (temp file, fsync, rename, directory fsync); it is mode 0600.
//
// Thread-safety: a Scrubber runs one pass at a time; Stop and progress() may be called from
// any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/status.h"
#include "core/types.h"
#include "objects/object_service.h"

namespace cairn::scrub {

// "0" (off), "1048576", "64KiB", "50MiB", "1GiB", "10MB", optionally with "/s" ->
// bytes per second. kInvalidArgument otherwise.
Result<uint64_t> ParseByteRate(std::string_view text);
// "5TiB", "512MiB", "1000000": a byte count (for size options).
Result<uint64_t> ParseByteSize(std::string_view text);
// "90" (seconds), "90s", "15m", "12h", "30d", "1d12h" -> milliseconds; kInvalidArgument
// for anything else (and for 0: a pass period must be positive).
Result<int64_t> ParseIntervalMs(std::string_view text);

// What a pass has done so far, or did.
struct PassStats {
  TimestampMs started_ms = 0;
  TimestampMs completed_ms = 0;  // 0 while running
  uint64_t chunks_total = 0;     // chunks to verify (rows with references, at the start)
  uint64_t bytes_total = 0;
  uint64_t chunks_verified = 0;  // read in full, whatever the outcome
  uint64_t bytes_verified = 0;
  uint64_t damaged = 0;              // chunks found damaged (new or still so)
  uint64_t healed = 0;               // damage marks cleared
  uint64_t metadata_mismatches = 0;  // bytes match the name, not the block checksums
  uint64_t skipped = 0;              // gone (GC) or unreferenced since the pass started
};

// The persisted state: the background pass in progress (if any, with its cursor) and the
// last pass that completed, whoever ran it.
struct ScrubState {
  bool in_progress = false;
  PassStats current;
  StorageClass cursor_class = StorageClass::kHot;
  std::optional<Digest> cursor;  // last chunk done in cursor_class; none: from the start
  bool has_last = false;
  PassStats last;
  std::string last_kind;  // "background" or "on-demand"
};

// <data dir>/scrub.state
std::string ScrubStatePath(const std::string& data_dir);
// A missing file is an empty state.
Result<ScrubState> LoadScrubState(const std::string& path);
// Loads, lets `change` modify, and writes back atomically, under the lock.
Status UpdateScrubState(const std::string& path, const std::function<void(ScrubState&)>& change);

struct ScrubOptions {
  // Bytes per second read at most (0: as fast as the disk goes). The pacing sleeps
  // between chunks, so the reads come in bursts of one chunk.
  uint64_t rate_bytes_per_second = 0;
  // When positive, the pass is paced to finish in about this long (at most at
  // rate_bytes_per_second, if set).
  int64_t pass_period_ms = 0;
  // Where progress is persisted; empty: nowhere.
  std::string state_path;
  // Background pass: continue a persisted pass in progress and record progress as it goes.
  // Otherwise (on demand) only the summary of the finished pass is recorded.
  bool background = false;
  // Damaged chunks and metadata mismatches listed in the report (the counts are exact).
  size_t max_listed = 1000;
};

struct PassReport {
  PassStats stats;
  bool complete = false;              // false: stopped before the end
  std::vector<std::string> problems;  // "hot/<digest>: why", at most max_listed
};

class Scrubber {
 public:
  Scrubber(objects::ObjectService* objects, ScrubOptions options);
  Scrubber(const Scrubber&) = delete;
  Scrubber& operator=(const Scrubber&) = delete;

  // Runs one pass (continuing the persisted one when background). Errors only when the
  // metadata store cannot list the chunks; damage is in the report.
  Result<PassReport> RunPass();
  // Makes a running pass (and any pacing sleep) return soon; it stays stopped.
  void Stop();
  bool stopping() const;
  // Sleeps up to `duration`, returning early (false) when stopped.
  bool SleepFor(std::chrono::milliseconds duration);

  // Live figures for metrics (this process).
  struct Counters {
    uint64_t bytes = 0;
    uint64_t ok = 0;
    uint64_t healed = 0;
    uint64_t damaged = 0;
    uint64_t metadata_mismatch = 0;
    uint64_t skipped = 0;
    uint64_t passes = 0;
  };
  Counters counters() const;
  // The pass in progress (started_ms 0 when none).
  PassStats progress() const;

 private:
  enum class Outcome { kOk, kHealed, kDamaged, kMetadataMismatch, kMissing, kSkipped };
  // Verifies one chunk file; `why` says what is wrong. Missing files are only reported
  // after the row is read again (GC may have removed chunk and row since the listing).
  Outcome VerifyChunk(const meta::ChunkRecord& chunk, std::string* why);
  Status ResolveMissing(std::vector<meta::ChunkRecord>* missing, PassReport* report);
  void Record(PassReport* report, Outcome outcome, const meta::ChunkRecord& chunk,
              const std::string& why);
  Status Persist(const PassReport& report, StorageClass cursor_class,
                 const std::optional<Digest>& cursor);
  // Sleeps as the rate requires after `bytes` were read; false when stopped.
  bool Pace(uint64_t bytes);

  objects::ObjectService* objects_;
  ScrubOptions options_;
  std::unique_ptr<char[]> block_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // GUARDED_BY(mutex_)
  uint64_t rate_;          // GUARDED_BY(mutex_)
  Counters counters_;      // GUARDED_BY(mutex_)
  PassStats progress_;     // GUARDED_BY(mutex_)
  std::chrono::steady_clock::time_point next_read_;
};

// `cairn serve`'s background scrubbing: one thread that runs a pass every `interval_ms`
// (measured from the start of the previous one), paced to finish in about that period but
// never faster than `max_rate`.
struct ScrubLoopOptions {
  uint64_t max_rate_bytes_per_second = 0;  // 0: no background scrubbing
  int64_t interval_ms = 30LL * 24 * 3600 * 1000;
  std::string state_path;
};

class ScrubLoop {
 public:
  ScrubLoop(objects::ObjectService* objects, ScrubLoopOptions options);
  ~ScrubLoop();
  void Start();
  void Stop();
  // Prometheus text: cairn_scrub_* counters and gauges.
  std::string RenderMetrics() const;

 private:
  void Loop();

  ScrubLoopOptions options_;
  Scrubber scrubber_;
  std::thread thread_;
  std::atomic<int64_t> last_completed_ms_{0};
};

}  // namespace cairn::scrub
