#include "chunks/chunk_cache.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "core/hashing.h"

namespace cairn::chunks {
namespace {

constexpr const char* kLockName = ".lock";
constexpr const char* kTempSuffix = ".tmp";
constexpr size_t kCopyPieceBytes = 1 << 20;

bool IsDigestName(const std::string& name) {
  if (name.size() != 64) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool EndsWith(const std::string& text, std::string_view suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

Result<std::unique_ptr<ChunkCache>> ChunkCache::Open(platform::FileSystem* file_system,
                                                     ChunkCacheOptions options) {
  if (options.directory.empty()) return InvalidArgumentError("the chunk cache needs a directory");
  if (options.capacity_bytes == 0) {
    return InvalidArgumentError("the chunk cache of " + options.directory +
                                " needs a size above 0");
  }
  RETURN_IF_ERROR(file_system->CreateDirectories(options.directory));
  std::unique_ptr<ChunkCache> cache(new ChunkCache(file_system, std::move(options)));
  const std::string& directory = cache->options_.directory;

  // One process per cache directory: two would evict each other's copies while each
  // believed its own count of the bytes held. The lock is the open lock file itself.
  const std::string lock_path = directory + "/" + kLockName;
  auto lock = file_system->NewWritableFile(lock_path);
  if (!lock.ok() && lock.status().code() == StatusCode::kAlreadyExists) {
    Status removed = file_system->RemoveFileIfUnlocked(lock_path);  // left by a dead process
    if (removed.code() == StatusCode::kFailedPrecondition) {
      return FailedPreconditionError("the chunk cache " + directory +
                                     " is in use by another process; give each mount its own "
                                     "--cache-dir");
    }
    lock = file_system->NewWritableFile(lock_path);
  }
  if (!lock.ok()) {
    return Status(lock.status().code(),
                  "locking the chunk cache " + directory + ": " + lock.status().message());
  }
  cache->lock_ = std::move(lock).value();

  ASSIGN_OR_RETURN(std::vector<platform::DirEntry> names, file_system->ListDirectory(directory));
  struct Found {
    TimestampMs modified;
    std::string hex;
    uint64_t size;
  };
  std::vector<Found> found;
  for (const platform::DirEntry& entry : names) {
    if (entry.is_directory || entry.name == kLockName) continue;
    const std::string path = directory + "/" + entry.name;
    if (!IsDigestName(entry.name)) {
      // An unfinished copy of a process that died, or a stranger: only our temp files go.
      if (entry.name.size() > 66 && entry.name[0] == '.' &&
          IsDigestName(entry.name.substr(1, 64)) && EndsWith(entry.name, kTempSuffix)) {
        file_system->RemoveFile(path).IgnoreError();
      }
      continue;
    }
    auto size = file_system->FileSize(path);
    auto modified = file_system->ModifiedTime(path);
    if (!size.ok() || !modified.ok()) continue;
    found.push_back({*modified, entry.name, *size});
  }
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.modified > b.modified; });
  std::lock_guard<std::mutex> guard(cache->mutex_);
  for (Found& copy : found) {  // newest first, so the list ends with the oldest
    cache->lru_.push_back(copy.hex);
    cache->entries_[copy.hex] = Entry{copy.size, std::prev(cache->lru_.end())};
    cache->stats_.files += 1;
    cache->stats_.bytes += copy.size;
  }
  cache->stats_.capacity_bytes = cache->options_.capacity_bytes;
  cache->EvictLocked(cache->options_.capacity_bytes);
  return cache;
}

ChunkCache::~ChunkCache() = default;

std::string ChunkCache::PathOf(const std::string& hex) const {
  return options_.directory + "/" + hex;
}

bool ChunkCache::Contains(const Digest& digest, uint64_t size) {
  std::lock_guard<std::mutex> guard(mutex_);
  auto it = entries_.find(digest.ToHex());
  return it != entries_.end() && it->second.size == size;
}

std::unique_ptr<platform::ReadableFile> ChunkCache::OpenCopy(const Digest& digest, uint64_t size) {
  const std::string hex = digest.ToHex();
  std::lock_guard<std::mutex> guard(mutex_);
  auto it = entries_.find(hex);
  if (it == entries_.end()) {
    stats_.misses += 1;
    return nullptr;
  }
  if (it->second.size != size) {
    stats_.dropped += 1;
    RemoveLocked(hex);
    stats_.misses += 1;
    return nullptr;
  }
  auto file = file_system_->OpenReadable(PathOf(hex));
  if (!file.ok()) {  // removed behind our back: forget it
    RemoveLocked(hex);
    stats_.misses += 1;
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, it->second.position);
  stats_.hits += 1;
  return std::move(file).value();
}

Result<std::unique_ptr<platform::ReadableFile>> ChunkCache::Fill(const Digest& digest,
                                                                 uint64_t size,
                                                                 platform::ReadableFile& source) {
  const std::string hex = digest.ToHex();
  return FillFrom(digest, size, [&](uint64_t offset, size_t n, char* out) -> Status {
    ASSIGN_OR_RETURN(size_t got, source.ReadAt(offset, n, out));
    if (got != n) {
      return DataLossError("chunk " + hex + " is shorter than its " + std::to_string(size) +
                           " bytes");
    }
    return OkStatus();
  });
}

Result<std::unique_ptr<platform::ReadableFile>> ChunkCache::FillFrom(const Digest& digest,
                                                                     uint64_t size,
                                                                     const PieceReader& read) {
  if (size > options_.capacity_bytes) {
    return ResourceExhaustedError("a chunk of " + std::to_string(size) +
                                  " bytes is larger than the chunk cache");
  }
  const std::string hex = digest.ToHex();
  std::string temp_path;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    temp_path = options_.directory + "/." + hex + "." + std::to_string(next_temp_++) + kTempSuffix;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<platform::WritableFile> copy,
                   file_system_->NewWritableFile(temp_path));
  auto discard = [&](Status why) {
    copy->Close().IgnoreError();
    file_system_->RemoveFile(temp_path).IgnoreError();
    return why;
  };
  Sha256Hasher hasher;
  std::string piece(static_cast<size_t>(std::min<uint64_t>(kCopyPieceBytes, size)), '\0');
  uint64_t offset = 0;
  while (offset < size) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(piece.size(), size - offset));
    Status got = read(offset, want, piece.data());
    if (!got.ok()) return discard(got);
    const std::string_view bytes(piece.data(), want);
    hasher.Update(bytes);
    Status appended = copy->Append(bytes);
    if (!appended.ok()) return discard(appended);
    offset += want;
  }
  if (hasher.Finish() != digest) {
    {
      std::lock_guard<std::mutex> guard(mutex_);
      stats_.dropped += 1;
    }
    return discard(DataLossError("chunk " + hex + " does not hash to its name"));
  }
  Status closed = copy->Close();
  if (!closed.ok()) return discard(closed);
  const std::string path = PathOf(hex);
  std::lock_guard<std::mutex> guard(mutex_);
  // Renamed under the lock, so that the index and the directory agree for every reader.
  Status renamed = file_system_->Rename(temp_path, path);
  if (!renamed.ok()) {
    file_system_->RemoveFile(temp_path).IgnoreError();
    return renamed;
  }
  auto it = entries_.find(hex);
  if (it == entries_.end()) {
    lru_.push_front(hex);
    entries_[hex] = Entry{size, lru_.begin()};
    stats_.files += 1;
    stats_.bytes += size;
    stats_.fills += 1;
  } else {  // another reader filled it meanwhile: same bytes, replaced in place
    lru_.splice(lru_.begin(), lru_, it->second.position);
  }
  auto opened = file_system_->OpenReadable(path);
  // Evicted after opening: the newest copy is first in line, so it stays unless it alone
  // fills the cache, and an open file survives its removal anyway.
  EvictLocked(options_.capacity_bytes);
  return opened;
}

void ChunkCache::Drop(const Digest& digest) {
  std::lock_guard<std::mutex> guard(mutex_);
  const std::string hex = digest.ToHex();
  if (entries_.count(hex) == 0) return;
  stats_.dropped += 1;
  RemoveLocked(hex);
}

void ChunkCache::RemoveLocked(const std::string& hex) {
  auto it = entries_.find(hex);
  if (it == entries_.end()) return;
  file_system_->RemoveFile(PathOf(hex)).IgnoreError();
  stats_.files -= 1;
  stats_.bytes -= it->second.size;
  lru_.erase(it->second.position);
  entries_.erase(it);
}

void ChunkCache::EvictLocked(uint64_t capacity) {
  while (stats_.bytes > capacity && !lru_.empty()) {
    const std::string oldest = lru_.back();
    RemoveLocked(oldest);
    stats_.evictions += 1;
  }
}

ChunkCacheStats ChunkCache::stats() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return stats_;
}

}  // namespace cairn::chunks
