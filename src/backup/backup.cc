#include "backup/backup.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <memory>
#include <utility>

#include "core/hashing.h"
#include "meta/snapshot.h"

namespace cairn::backup {
namespace {

constexpr std::string_view kBackupPrefix = "meta-";
constexpr std::string_view kBackupSuffix = ".jsonl";
constexpr std::string_view kTempPrefix = ".snapshot-";
constexpr std::string_view kTempSuffix = ".tmp";

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string RandomHex() {
  uint8_t bytes[8];
  platform::FillRandom(bytes, sizeof(bytes));
  return HexEncode(std::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

// "2026-11-23T13:45:01.123Z" -> "20261123T134501.123Z": sorts by time, no ':' in names.
std::string CompactTimestamp(TimestampMs ms) {
  std::string out;
  for (char c : FormatTimestamp(ms)) {
    if (c != '-' && c != ':') out += c;
  }
  return out;
}

bool IsBackupName(std::string_view name) {
  return name.starts_with(kBackupPrefix) && name.ends_with(kBackupSuffix);
}

}  // namespace

Result<int64_t> ParseDurationMs(std::string_view text) {
  const std::string shown(text.substr(0, 32));
  if (text.empty()) return InvalidArgumentError("empty duration");
  int64_t total_ms = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t digits = i;
    int64_t value = 0;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) {
      if (value > 1'000'000'000)
        return InvalidArgumentError("duration '" + shown + "' is too long");
      value = value * 10 + (text[digits] - '0');
      ++digits;
    }
    if (digits == i) {
      return InvalidArgumentError("duration '" + shown + "' must look like 90s, 15m, 1h or 1h30m");
    }
    int64_t unit_ms = 1000;  // a bare number is seconds
    if (digits < text.size()) {
      switch (text[digits]) {
        case 's':
          unit_ms = 1000;
          break;
        case 'm':
          unit_ms = 60 * 1000;
          break;
        case 'h':
          unit_ms = 3600 * 1000;
          break;
        default:
          return InvalidArgumentError("duration '" + shown +
                                      "' has an unknown unit (use s, m or h)");
      }
      ++digits;
    } else if (i > 0) {
      return InvalidArgumentError("duration '" + shown + "' lacks the unit of its last number");
    }
    total_ms += value * unit_ms;
    i = digits;
  }
  return total_ms;
}

Result<SnapshotFile> WriteSnapshotFile(meta::MetaStore* store, platform::FileSystem* file_system,
                                       const std::string& path, const std::string& engine,
                                       TimestampMs now_ms) {
  const std::string directory = DirectoryOf(path);
  // A writer killed mid-way (kill -9, a crash) leaves its temp file behind. Nobody holds
  // its lock any more, so the next writer in the directory removes it; a live writer's
  // temp file is locked and stays.
  if (auto entries = file_system->ListDirectory(directory); entries.ok()) {
    for (const platform::DirEntry& entry : *entries) {
      if (!entry.is_directory && entry.name.starts_with(kTempPrefix) &&
          entry.name.ends_with(kTempSuffix)) {
        file_system->RemoveFileIfUnlocked(directory + "/" + entry.name).IgnoreError();
      }
    }
  }
  const std::string temp_path =
      directory + "/" + std::string(kTempPrefix) + RandomHex() + std::string(kTempSuffix);
  ASSIGN_OR_RETURN(std::unique_ptr<platform::WritableFile> file,
                   file_system->NewWritableFile(temp_path));
  auto write = [&]() -> Result<SnapshotFile> {
    RETURN_IF_ERROR(file_system->MakePrivate(temp_path));
    SnapshotFile result;
    result.path = path;
    platform::WritableFile* out = file.get();
    ASSIGN_OR_RETURN(
        result.counts,
        meta::DumpSnapshot(
            *store, engine, now_ms, [out](std::string_view bytes) { return out->Append(bytes); },
            &result.size_bytes));
    RETURN_IF_ERROR(file->Sync());
    RETURN_IF_ERROR(file->Close());
    RETURN_IF_ERROR(file_system->Rename(temp_path, path));
    RETURN_IF_ERROR(file_system->SyncDirectory(directory));
    return result;
  };
  Result<SnapshotFile> result = write();
  if (!result.ok()) {
    file.reset();
    file_system->RemoveFile(temp_path).IgnoreError();  // absent after a successful rename
    return result.status().WithContext("writing snapshot " + path);
  }
  return result;
}

Result<std::vector<std::string>> ListBackups(platform::FileSystem* file_system,
                                             const std::string& directory) {
  ASSIGN_OR_RETURN(std::vector<platform::DirEntry> entries, file_system->ListDirectory(directory));
  std::vector<std::string> names;
  for (const platform::DirEntry& entry : entries) {
    if (!entry.is_directory && IsBackupName(entry.name)) names.push_back(entry.name);
  }
  std::sort(names.begin(), names.end());  // the names sort by time
  std::vector<std::string> paths;
  for (const std::string& name : names) paths.push_back(directory + "/" + name);
  return paths;
}

Result<SnapshotFile> RunBackup(meta::MetaStore* store, platform::FileSystem* file_system,
                               platform::Clock* clock, const BackupOptions& options) {
  RETURN_IF_ERROR(file_system->CreateDirectories(options.directory));
  const TimestampMs now_ms = clock->NowMs();
  if (options.min_age_ms > 0) {
    // Names sort by time, so the newest is younger than min_age_ms exactly when its name
    // sorts at or after the name a snapshot taken min_age_ms ago would have.
    ASSIGN_OR_RETURN(std::vector<std::string> existing,
                     ListBackups(file_system, options.directory));
    const std::string threshold = options.directory + "/" + std::string(kBackupPrefix) +
                                  CompactTimestamp(now_ms - options.min_age_ms);
    if (!existing.empty() && existing.back() >= threshold) {
      SnapshotFile skipped;
      skipped.skipped = true;
      return skipped;
    }
  }
  std::string path = options.directory + "/" + std::string(kBackupPrefix) +
                     CompactTimestamp(now_ms) + std::string(kBackupSuffix);
  ASSIGN_OR_RETURN(bool taken, file_system->Exists(path));
  if (taken) {
    // Two backups in one millisecond (several nodes sharing the directory): keep both.
    path = options.directory + "/" + std::string(kBackupPrefix) + CompactTimestamp(now_ms) + "-" +
           RandomHex() + std::string(kBackupSuffix);
  }
  ASSIGN_OR_RETURN(SnapshotFile written,
                   WriteSnapshotFile(store, file_system, path, options.engine, now_ms));

  // Rotation problems are not backup failures: the new snapshot is safely in place.
  Result<std::vector<std::string>> backups = ListBackups(file_system, options.directory);
  if (backups.ok()) {
    const size_t keep = static_cast<size_t>(std::max(1, options.keep));
    for (size_t i = 0; i + keep < backups->size(); ++i) {
      file_system->RemoveFile((*backups)[i]).IgnoreError();
    }
  }
  Result<std::vector<platform::DirEntry>> entries = file_system->ListDirectory(options.directory);
  if (entries.ok()) {
    for (const platform::DirEntry& entry : *entries) {
      if (entry.name.starts_with(kTempPrefix) && entry.name.ends_with(kTempSuffix)) {
        // A writer holds its temp file locked; only a crashed writer's file goes.
        file_system->RemoveFileIfUnlocked(options.directory + "/" + entry.name).IgnoreError();
      }
    }
  }
  return written;
}

BackupLoop::BackupLoop(meta::MetaStore* store, platform::FileSystem* file_system,
                       platform::Clock* clock, BackupOptions options, int64_t interval_ms,
                       Callback on_done)
    : store_(store),
      file_system_(file_system),
      clock_(clock),
      options_(std::move(options)),
      interval_ms_(interval_ms),
      on_done_(std::move(on_done)) {}

void BackupLoop::Start() {
  if (interval_ms_ <= 0 || thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
}

void BackupLoop::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void BackupLoop::Loop() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait_for(lock, std::chrono::milliseconds(interval_ms_), [this] { return stopping_; });
      if (stopping_) return;
    }
    on_done_(RunBackup(store_, file_system_, clock_, options_));
  }
}

}  // namespace cairn::backup
