#include "chunks/chunk_store.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <functional>
#include <optional>

#include "platform/clock.h"

namespace cairn::chunks {
namespace {

int64_t Nanos(const struct timespec& t) {
  return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

constexpr size_t kWriteBufferBytes = 1 << 20;
constexpr int kCreateAttempts = 8;

constexpr const char* kLayoutFileName = "layout";
constexpr int kNewFanOutLevels = 1;

// One level of 256 directories for new roots: with two (65,536 directories) nearly every
// chunk of a young store made its own directory, a second inode allocation per small file.
std::string FanOutDirectory(const std::string& chunks_root, const std::string& hex, int levels) {
  std::string directory = chunks_root;
  for (int level = 0; level < levels; ++level) {
    directory += "/" + hex.substr(static_cast<size_t>(level) * 2, 2);
  }
  return directory;
}

std::string Parent(const std::string& path) { return path.substr(0, path.rfind('/')); }

std::string RandomName() {
  uint64_t value[2];
  platform::FillRandom(value, sizeof(value));
  char name[40];
  snprintf(name, sizeof(name), "%016llx%016llx.part", static_cast<unsigned long long>(value[0]),
           static_cast<unsigned long long>(value[1]));
  return name;
}

}  // namespace

ChunkWriter::ChunkWriter(ChunkStore* store, platform::FileSystem* file_system, int fan_out_levels,
                         std::unique_ptr<platform::WritableFile> file, std::string chunks_root)
    : store_(store),
      file_system_(file_system),
      file_(std::move(file)),
      chunks_root_(std::move(chunks_root)),
      fan_out_levels_(fan_out_levels) {
  buffer_.reserve(kWriteBufferBytes);
}

ChunkWriter::~ChunkWriter() {
  if (!done_) Discard().IgnoreError();
}

Status ChunkWriter::Append(std::string_view bytes) {
  if (digest_.has_value()) return FailedPreconditionError("append to a finished chunk");
  hasher_.Update(bytes);
  size_bytes_ += bytes.size();
  if (buffer_.size() + bytes.size() > kWriteBufferBytes) {
    RETURN_IF_ERROR(Flush());
    if (bytes.size() >= kWriteBufferBytes) return file_->Append(bytes);
  }
  buffer_.append(bytes);
  return OkStatus();
}

Status ChunkWriter::Flush() {
  if (buffer_.empty()) return OkStatus();
  Status status = file_->Append(buffer_);
  buffer_.clear();
  return status;
}

Result<Digest> ChunkWriter::Finish() {
  if (!digest_.has_value()) {
    RETURN_IF_ERROR(Flush());
    digest_ = hasher_.Finish();
  }
  return *digest_;
}

Status ChunkWriter::Install(std::set<std::string>* directories_to_sync,
                            std::set<std::string>* deferred_files) {
  if (!digest_.has_value()) return FailedPreconditionError("install before Finish");
  if (done_) return FailedPreconditionError("chunk already installed or discarded");
  const std::string hex = digest_->ToHex();
  const std::string directory = FanOutDirectory(chunks_root_, hex, fan_out_levels_);
  if (deferred_files == nullptr) {
    RETURN_IF_ERROR(file_->Sync());
    RETURN_IF_ERROR(store_->EnsureFanOutDurable(directory));
  } else {
    // Each fan-out level, top down; a new one's entry is synced with the rest later.
    std::string parent = chunks_root_;
    for (int level = 0; level < fan_out_levels_; ++level) {
      const std::string level_directory = FanOutDirectory(chunks_root_, hex, level + 1);
      ASSIGN_OR_RETURN(bool made, file_system_->CreateDirectoryUnsynced(level_directory));
      if (made) directories_to_sync->insert(parent);
      parent = level_directory;
    }
  }
  RETURN_IF_ERROR(file_system_->Rename(file_->path(), directory + "/" + hex));
  done_ = true;
  store_->NudgeSpares();
  RETURN_IF_ERROR(file_->Close());
  directories_to_sync->insert(directory);
  if (deferred_files != nullptr) deferred_files->insert(directory + "/" + hex);
  return OkStatus();
}

Status ChunkWriter::Discard() {
  if (done_) return OkStatus();
  done_ = true;
  Status status = file_system_->RemoveFile(file_->path());
  store_->NudgeSpares();
  file_->Close().IgnoreError();
  if (status.code() == StatusCode::kNotFound) return OkStatus();
  return status;
}

ChunkStore::ChunkStore(platform::FileSystem* file_system, ChunkStoreOptions options)
    : file_system_(file_system), options_(std::move(options)) {}

Result<std::unique_ptr<ChunkStore>> ChunkStore::Open(platform::FileSystem* file_system,
                                                     ChunkStoreOptions options) {
  if (options.hot_root.empty() || options.cold_root.empty()) {
    return InvalidArgumentError("both storage class roots must be set");
  }
  std::unique_ptr<ChunkStore> store(new ChunkStore(file_system, std::move(options)));
  for (StorageClass storage_class : kAllStorageClasses) {
    const std::string& root = store->RootOf(storage_class);
    RETURN_IF_ERROR(file_system->CreateDirectories(root + "/tmp"));
    RETURN_IF_ERROR(store->OpenLayout(storage_class));
    RETURN_IF_ERROR(file_system->CreateDirectories(root + "/chunks"));
    RETURN_IF_ERROR(file_system->CreateDirectories(root + "/quarantine"));
  }
  return store;
}

Status ChunkStore::OpenLayout(StorageClass storage_class) {
  const std::string& root = RootOf(storage_class);
  const std::string path = root + "/" + kLayoutFileName;
  // chunks/ is looked at before the layout file: a new root gets its layout file before its
  // chunks/, so a chunks/ seen without one (read after) is an older root's.
  ASSIGN_OR_RETURN(const bool had_chunks, file_system_->Exists(root + "/chunks"));
  auto read = [&]() -> Result<std::optional<int>> {
    auto file = file_system_->OpenReadable(path);
    if (file.status().code() == StatusCode::kNotFound) return std::optional<int>();
    if (!file.ok()) return file.status();
    char buffer[64];
    ASSIGN_OR_RETURN(size_t n, (*file)->ReadAt(0, sizeof(buffer), buffer));
    const std::string text(buffer, n);
    if (text == "fanout=1\n") return std::optional<int>(1);
    if (text == "fanout=2\n") return std::optional<int>(2);
    return DataLossError("chunk layout file '" + path +
                         "' is damaged or of a newer version (expected \"fanout=1\" or "
                         "\"fanout=2\"): the chunk files cannot be found without it");
  };
  ASSIGN_OR_RETURN(std::optional<int> levels, read());
  if (!levels && had_chunks) levels = 2;
  if (!levels) {
    // A new root. Another process opening the same new root at once writes the same bytes,
    // so either rename may win.
    RETURN_IF_ERROR(
        PutRootFile(root, path, "fanout=" + std::to_string(kNewFanOutLevels) + "\n", true)
            .WithContext("writing the chunk layout of " + root));
    ASSIGN_OR_RETURN(levels, read());
    if (!levels) return InternalError("chunk layout file '" + path + "' vanished");
  }
  fan_out_levels_[static_cast<size_t>(storage_class)] = *levels;
  return OkStatus();
}

int ChunkStore::LevelsOfPath(const std::string& path) const {
  for (StorageClass storage_class : kAllStorageClasses) {
    const std::string chunks_root = RootOf(storage_class) + "/chunks/";
    if (path.compare(0, chunks_root.size(), chunks_root) == 0) return FanOutLevels(storage_class);
  }
  return 2;
}

const std::string& ChunkStore::RootOf(StorageClass storage_class) const {
  return storage_class == StorageClass::kHot ? options_.hot_root : options_.cold_root;
}

std::string ChunkStore::PathOf(StorageClass storage_class, const Digest& digest) const {
  const std::string hex = digest.ToHex();
  return FanOutDirectory(RootOf(storage_class) + "/chunks", hex, FanOutLevels(storage_class)) +
         "/" + hex;
}

ChunkStore::~ChunkStore() {
  {
    std::lock_guard<std::mutex> lock(spare_mutex_);
    spare_stop_ = true;
  }
  spare_cv_.notify_all();
  if (spare_thread_.joinable()) spare_thread_.join();
  for (auto& spares : spares_) {
    for (std::unique_ptr<platform::WritableFile>& file : spares) {
      file_system_->RemoveFile(file->path()).IgnoreError();  // else GC's, after its grace
      file->Close().IgnoreError();
    }
  }
}

void ChunkStore::KeepSpareTempFiles(StorageClass storage_class, size_t count) {
  {
    std::lock_guard<std::mutex> lock(spare_mutex_);
    spare_target_[static_cast<size_t>(storage_class)] = count;
    spare_nudges_ += count;  // the first fill
    if (!spare_thread_.joinable() && count > 0) {
      spare_thread_ = std::thread([this] { RunSpares(); });
    }
  }
  spare_cv_.notify_all();
}

void ChunkStore::NudgeSpares() {
  {
    std::lock_guard<std::mutex> lock(spare_mutex_);
    if (!spare_thread_.joinable()) return;
    spare_nudges_ = std::min(spare_nudges_ + 1, spare_target_[0] + spare_target_[1]);
  }
  spare_cv_.notify_all();
}

void ChunkStore::RunSpares() {
  std::unique_lock<std::mutex> lock(spare_mutex_);
  while (!spare_stop_) {
    // The class furthest below its target; none: wait for a writer to take one.
    std::optional<StorageClass> wanted;
    for (StorageClass storage_class : kAllStorageClasses) {
      const size_t index = static_cast<size_t>(storage_class);
      if (spares_[index].size() < spare_target_[index]) wanted = storage_class;
    }
    if (!wanted || spare_nudges_ == 0) {
      spare_cv_.wait(lock);
      continue;
    }
    lock.unlock();
    auto file = file_system_->NewWritableFile(RootOf(*wanted) + "/tmp/" + RandomName());
    lock.lock();
    if (file.ok()) {
      spares_[static_cast<size_t>(*wanted)].push_back(std::move(file).value());
      --spare_nudges_;
    } else {
      // A full disk, a lost directory: the writers create their own (and see the error);
      // tried again a little later.
      spare_cv_.wait_for(lock, std::chrono::seconds(1), [&] { return spare_stop_; });
    }
  }
}

Result<std::unique_ptr<ChunkWriter>> ChunkStore::NewWriter(StorageClass storage_class) {
  const std::string& root = RootOf(storage_class);
  {
    std::lock_guard<std::mutex> lock(spare_mutex_);
    auto& spares = spares_[static_cast<size_t>(storage_class)];
    if (!spares.empty()) {
      std::unique_ptr<platform::WritableFile> file = std::move(spares.front());
      spares.pop_front();
      // Made again once this writer's file is renamed away (NudgeSpares): a file created
      // now would hold tmp/'s lock while the writer's rename waits for it.
      return std::unique_ptr<ChunkWriter>(new ChunkWriter(
          this, file_system_, FanOutLevels(storage_class), std::move(file), root + "/chunks"));
    }
  }
  Status last;
  for (int attempt = 0; attempt < kCreateAttempts; ++attempt) {
    auto file = file_system_->NewWritableFile(root + "/tmp/" + RandomName());
    if (file.ok()) {
      return std::unique_ptr<ChunkWriter>(
          new ChunkWriter(this, file_system_, FanOutLevels(storage_class), std::move(file).value(),
                          root + "/chunks"));
    }
    last = file.status();
    if (last.code() != StatusCode::kAborted && last.code() != StatusCode::kAlreadyExists) {
      break;
    }
  }
  return last;
}

Status ChunkStore::WriteChunk(StorageClass storage_class, const Digest& digest,
                              std::string_view bytes, std::set<std::string>* directories_to_sync,
                              std::set<std::string>* deferred_files) {
  ASSIGN_OR_RETURN(std::unique_ptr<ChunkWriter> writer, NewWriter(storage_class));
  // Straight to the file: the bytes are already one contiguous buffer. A stored chunk is
  // rarely read back at once, so a page-aligned buffer skips the page cache. Not for a
  // deferred write: a file just closed is often read again, and the copy into the page
  // cache is what lets its sync wait.
  if (deferred_files == nullptr) writer->file_->PreferDirectIo();
  RETURN_IF_ERROR(writer->file_->Append(bytes));
  writer->size_bytes_ = bytes.size();
  writer->digest_ = digest;
  // On error the temp file goes.
  RETURN_IF_ERROR(writer->Install(directories_to_sync, deferred_files));
  // These bytes are the chunk's by construction (the caller hashed them): remember the
  // file as verified, stamped as it is now, after the rename.
  const std::string path = PathOf(storage_class, digest);
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) == bytes.size()) {
    const FileStamp stamp = FileStamp::Of(st);
    RememberVerified(path, stamp);
    if (deferred_files == nullptr) RememberDataSynced(path, stamp);
  }
  return OkStatus();
}

Status ChunkStore::EnsureFanOutDurable(const std::string& directory) {
  {
    std::lock_guard<std::mutex> lock(synced_mutex_);
    if (durable_fan_out_.count(directory) > 0) return OkStatus();
  }
  RETURN_IF_ERROR(file_system_->CreateDirectories(directory));
  // Every level's entry in its parent, up to chunks/.
  std::string parent = directory;
  for (int level = LevelsOfPath(directory); level > 0; --level) {
    parent = Parent(parent);
    RETURN_IF_ERROR(file_system_->SyncDirectory(parent));
  }
  std::lock_guard<std::mutex> lock(synced_mutex_);
  // 2 x 65,536 directories at most (two classes, older roots): no bound needed.
  durable_fan_out_.insert(directory);
  return OkStatus();
}

Status ChunkStore::SyncChunkFile(StorageClass storage_class, const Digest& digest) {
  const std::string path = PathOf(storage_class, digest);
  RETURN_IF_ERROR(EnsureFanOutDurable(path.substr(0, path.rfind('/'))));
  struct stat st;
  const bool stamped = ::stat(path.c_str(), &st) == 0;
  RETURN_IF_ERROR(file_system_->SyncFile(path));
  if (stamped) {
    RememberDataSynced(path, FileStamp::Of(st));
  }
  return OkStatus();
}

Result<bool> ChunkStore::Contains(StorageClass storage_class, const Digest& digest) {
  return file_system_->Exists(PathOf(storage_class, digest));
}

namespace {

int64_t RealtimeNs() {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
}

// The kernel stamps inodes with a coarse clock (a tick, a few ms); a ctime this close to a
// sync's start is not known to precede it.
constexpr int64_t kClockSlackNs = 50 * 1000 * 1000;
constexpr size_t kMaxVerifiedFiles = 1 << 17;

}  // namespace

ChunkStore::FileStamp ChunkStore::FileStamp::Of(const struct ::stat& st) {
  return FileStamp{static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(st.st_size),
                   Nanos(st.st_mtim), Nanos(st.st_ctim)};
}

void ChunkStore::RememberVerified(const std::string& path, const FileStamp& stamp) {
  std::lock_guard<std::mutex> lock(synced_mutex_);
  if (verified_.size() >= kMaxVerifiedFiles) verified_.clear();  // a bound, not a policy
  verified_[path] = stamp;
}

void ChunkStore::RememberDataSynced(const std::string& path, const FileStamp& stamp) {
  std::lock_guard<std::mutex> lock(synced_mutex_);
  if (data_synced_.size() >= kMaxVerifiedFiles) data_synced_.clear();  // a bound
  data_synced_[path] = stamp;
}

bool ChunkStore::WasVerified(const std::string& path, const FileStamp& stamp) {
  std::lock_guard<std::mutex> lock(synced_mutex_);
  auto it = verified_.find(path);
  return it != verified_.end() && it->second == stamp;
}

Result<ChunkStore::Comparison> ChunkStore::Compare(StorageClass storage_class, const Digest& digest,
                                                   std::string_view bytes, bool* known_durable) {
  if (known_durable != nullptr) *known_durable = false;
  const std::string path = PathOf(storage_class, digest);
  auto opened = file_system_->OpenReadable(path);
  if (!opened.ok()) {
    if (opened.status().code() == StatusCode::kNotFound) return Comparison::kMissing;
    // Unreadable is as bad as different: the caller writes a fresh copy.
    return Comparison::kDiffers;
  }
  std::unique_ptr<platform::ReadableFile> file = std::move(opened).value();
  const int fd = file->NativeHandle();
  if (fd >= 0) {
    // A real file: compare in place through a read-only mapping, which skips copying the
    // page cache into a buffer (a re-upload of stored content compares every byte).
    struct stat st;
    if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != bytes.size()) {
      return Comparison::kDiffers;
    }
    const FileStamp stamp = FileStamp::Of(st);
    if (known_durable != nullptr) {
      std::lock_guard<std::mutex> lock(synced_mutex_);
      auto it = synced_at_ns_.find(path.substr(0, path.rfind('/')));
      auto data = data_synced_.find(path);
      *known_durable = it != synced_at_ns_.end() && stamp.ctime_ns + kClockSlackNs < it->second &&
                       data != data_synced_.end() && data->second == stamp;
    }
    if (bytes.empty() || WasVerified(path, stamp)) return Comparison::kSame;
    void* mapped = ::mmap(nullptr, bytes.size(), PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (mapped != MAP_FAILED) {
      // A file truncated by someone else meanwhile would fault (SIGBUS) here; chunk files
      // are never modified in place by Cairn, and fstat just saw the full size.
      const bool same = std::memcmp(mapped, bytes.data(), bytes.size()) == 0;
      ::munmap(mapped, bytes.size());
      if (same) RememberVerified(path, stamp);
      return same ? Comparison::kSame : Comparison::kDiffers;
    }
  } else {
    auto size = file->Size();
    if (!size.ok() || *size != bytes.size()) return Comparison::kDiffers;
  }
  // One scratch buffer per thread: uploads compare on pool threads, a chunk at a time.
  constexpr size_t kPiece = 1 << 20;
  thread_local std::unique_ptr<char[]> scratch(new char[kPiece]);
  for (size_t offset = 0; offset < bytes.size(); offset += kPiece) {
    const size_t want = std::min(kPiece, bytes.size() - offset);
    auto got = file->ReadAt(offset, want, scratch.get());
    if (!got.ok() || *got != want) return Comparison::kDiffers;
    if (std::memcmp(scratch.get(), bytes.data() + offset, want) != 0) return Comparison::kDiffers;
  }
  return Comparison::kSame;
}

Result<std::unique_ptr<platform::ReadableFile>> ChunkStore::OpenChunk(StorageClass storage_class,
                                                                      const Digest& digest) {
  return file_system_->OpenReadable(PathOf(storage_class, digest));
}

Status ChunkStore::Remove(StorageClass storage_class, const Digest& digest) {
  Status status = file_system_->RemoveFile(PathOf(storage_class, digest));
  if (status.code() == StatusCode::kNotFound) return OkStatus();
  return status;
}

std::string ChunkStore::QuarantineDirectory(StorageClass storage_class) const {
  return RootOf(storage_class) + "/quarantine";
}

Result<std::string> ChunkStore::Quarantine(StorageClass storage_class, const Digest& digest,
                                           TimestampMs now_ms) {
  const std::string from = PathOf(storage_class, digest);
  const std::string directory = QuarantineDirectory(storage_class);
  RETURN_IF_ERROR(file_system_->CreateDirectories(directory));
  const std::string to = directory + "/" + digest.ToHex() + "." + std::to_string(now_ms);
  Status renamed = file_system_->Rename(from, to);
  if (!renamed.ok()) return renamed.WithContext("quarantine of chunk " + digest.ToHex());
  // The new name first: if only the removal from chunks/ reached the disk, the bytes would
  // be nowhere.
  RETURN_IF_ERROR(file_system_->SyncDirectory(directory));
  RETURN_IF_ERROR(file_system_->SyncDirectory(from.substr(0, from.rfind('/'))));
  return to;
}

Status ChunkStore::SyncDirectories(const std::set<std::string>& directories) {
  for (const std::string& directory : directories) {
    const int64_t started_ns = RealtimeNs();
    RETURN_IF_ERROR(file_system_->SyncDirectory(directory));
    std::lock_guard<std::mutex> lock(synced_mutex_);
    int64_t& synced = synced_at_ns_[directory];
    synced = std::max(synced, started_ns);
  }
  return OkStatus();
}

Status ChunkStore::SyncDeferred(const std::set<std::string>& files,
                                const std::set<std::string>& directories) {
  for (const std::string& file : files) {
    Status synced = file_system_->SyncFile(file);
    // Gone: GC took it (no reference left) or it was quarantined; nothing to keep.
    if (!synced.ok() && synced.code() != StatusCode::kNotFound) return synced;
  }
  // Recorded (synced_at_ns_) like any directory sync: Compare trusts a file only if this
  // store also synced its data (data_synced_), which deferred files never are.
  return SyncDirectories(directories);
}

Status ChunkStore::WalkChunks(StorageClass storage_class,
                              const std::function<bool(const Digest&)>& file,
                              const std::function<void(const std::string&)>& stray) {
  const std::string chunks_root = RootOf(storage_class) + "/chunks";
  const int levels = FanOutLevels(storage_class);
  // Depth first: `prefix` is the hex the directories on the way spelled.
  std::function<Result<bool>(const std::string&, const std::string&, int)> walk =
      [&](const std::string& directory, const std::string& prefix, int level) -> Result<bool> {
    ASSIGN_OR_RETURN(auto entries, file_system_->ListDirectory(directory));
    for (const auto& entry : entries) {
      const std::string path = directory + "/" + entry.name;
      if (level < levels) {
        if (!entry.is_directory) {
          stray(path);
          continue;
        }
        ASSIGN_OR_RETURN(bool more, walk(path, prefix + entry.name, level + 1));
        if (!more) return false;
        continue;
      }
      auto digest = Digest::FromHex(entry.name);
      if (entry.is_directory || !digest.ok() || entry.name.compare(0, prefix.size(), prefix) != 0) {
        stray(path);
        continue;
      }
      if (!file(*digest)) return false;
    }
    return true;
  };
  return walk(chunks_root, "", 0).status();
}

Result<std::vector<Digest>> ChunkStore::ListChunks(StorageClass storage_class,
                                                   std::vector<std::string>* stray_paths) {
  std::vector<Digest> digests;
  RETURN_IF_ERROR(WalkChunks(
      storage_class,
      [&](const Digest& digest) {
        digests.push_back(digest);
        return true;
      },
      [&](const std::string& path) {
        if (stray_paths) stray_paths->push_back(path);
      }));
  return digests;
}

Result<std::vector<QuarantinedFile>> ChunkStore::ListQuarantine(
    StorageClass storage_class, std::vector<std::string>* other_paths) {
  const std::string directory = QuarantineDirectory(storage_class);
  ASSIGN_OR_RETURN(auto entries, file_system_->ListDirectory(directory));
  std::vector<QuarantinedFile> out;
  for (const auto& entry : entries) {
    const std::string path = directory + "/" + entry.name;
    const size_t dot = entry.name.find('.');
    Result<Digest> digest = InvalidArgumentError("no digest");
    char* end = nullptr;
    long long ms = -1;
    if (!entry.is_directory && dot != std::string::npos) {
      digest = Digest::FromHex(entry.name.substr(0, dot));
      ms = strtoll(entry.name.c_str() + dot + 1, &end, 10);
    }
    if (!digest.ok() || end == nullptr || *end != '\0' || end == entry.name.c_str() + dot + 1 ||
        ms < 0) {
      if (other_paths) other_paths->push_back(path);
      continue;
    }
    out.push_back({path, *digest, static_cast<TimestampMs>(ms)});
  }
  return out;
}

Result<bool> ChunkStore::RestoreFromQuarantine(StorageClass storage_class,
                                               const QuarantinedFile& file) {
  {
    ASSIGN_OR_RETURN(auto readable, file_system_->OpenReadable(file.path));
    Sha256Hasher hasher;
    std::string buffer(kWriteBufferBytes, '\0');
    uint64_t offset = 0;
    while (true) {
      ASSIGN_OR_RETURN(size_t n, readable->ReadAt(offset, buffer.size(), buffer.data()));
      if (n == 0) break;
      hasher.Update(std::string_view(buffer.data(), n));
      offset += n;
    }
    if (hasher.Finish() != file.digest) return false;
  }
  const std::string to = PathOf(storage_class, file.digest);
  const std::string directory = to.substr(0, to.rfind('/'));
  RETURN_IF_ERROR(EnsureFanOutDurable(directory));
  RETURN_IF_ERROR(file_system_->Rename(file.path, to));
  // The chunk's new name first, as in Quarantine.
  RETURN_IF_ERROR(file_system_->SyncDirectory(directory));
  RETURN_IF_ERROR(file_system_->SyncDirectory(QuarantineDirectory(storage_class)));
  return true;
}

Status ChunkStore::RemoveQuarantined(const std::string& path) {
  Status status = file_system_->RemoveFile(path);
  if (status.code() == StatusCode::kNotFound) return OkStatus();
  return status;
}

Result<bool> ChunkStore::HoldsAnyChunk() {
  bool found = false;
  for (StorageClass storage_class : kAllStorageClasses) {
    RETURN_IF_ERROR(WalkChunks(
        storage_class,
        [&](const Digest&) {
          found = true;
          return false;  // one is enough
        },
        [](const std::string&) {}));
    if (found) return true;
  }
  return false;
}

std::string ChunkStore::StoreIdPath(StorageClass storage_class) const {
  return RootOf(storage_class) + "/" + kStoreIdFileName;
}

Result<std::optional<std::string>> ChunkStore::ReadStoreId(StorageClass storage_class) {
  const std::string path = StoreIdPath(storage_class);
  auto file = file_system_->OpenReadable(path);
  if (file.status().code() == StatusCode::kNotFound) return std::optional<std::string>();
  if (!file.ok()) return file.status();
  char buffer[256];
  ASSIGN_OR_RETURN(size_t n, (*file)->ReadAt(0, sizeof(buffer), buffer));
  std::string text(buffer, n);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  // A store id is a UUID; anything else (empty, binary, a partial write) is damage that a
  // human must look at, never something to overwrite.
  if (text.empty() || text.size() > 64 || n == sizeof(buffer) ||
      text.find_first_not_of("0123456789abcdefABCDEF-") != std::string::npos) {
    return DataLossError("store identity file '" + path + "' is damaged (expected a UUID)");
  }
  return std::optional<std::string>(std::move(text));
}

Result<std::string> ChunkStore::WriteStoreIdIfAbsent(StorageClass storage_class,
                                                     const std::string& id) {
  const std::string& root = RootOf(storage_class);
  const std::string path = StoreIdPath(storage_class);
  ASSIGN_OR_RETURN(auto existing, ReadStoreId(storage_class));
  if (existing) return *existing;
  Status put = PutRootFile(root, path, id + "\n", false);
  if (put.code() == StatusCode::kAlreadyExists) {
    // Another process gave the root its identity first: that one counts, once durable.
    RETURN_IF_ERROR(file_system_->SyncDirectory(root));
  } else if (!put.ok()) {
    return put.WithContext("writing the store identity of " + root);
  }
  ASSIGN_OR_RETURN(auto now_there, ReadStoreId(storage_class));
  if (!now_there) return InternalError("store identity file '" + path + "' vanished");
  return *now_there;
}

Status ChunkStore::PutRootFile(const std::string& root, const std::string& path,
                               std::string_view content, bool replace) {
  // The temp file lives in tmp/, so GC removes it if this process dies before the rename.
  // It is locked while open, like any chunk being written, and stays open until renamed:
  // another node starting at the same time removes the unlocked temp files it finds.
  const std::string temp_path = root + "/tmp/" + RandomName();
  ASSIGN_OR_RETURN(auto file, file_system_->NewWritableFile(temp_path));
  Status written = file_system_->MakePrivate(temp_path);
  if (written.ok()) written = file->Append(content);
  if (written.ok()) written = file->Sync();
  if (written.ok()) {
    written = replace ? file_system_->Rename(temp_path, path)
                      : file_system_->RenameNoReplace(temp_path, path);
  }
  if (!written.ok()) (void)file_system_->RemoveFile(temp_path);
  Status closed = file->Close();
  RETURN_IF_ERROR(written);
  RETURN_IF_ERROR(closed);
  return file_system_->SyncDirectory(root);
}

Result<std::vector<TempFileInfo>> ChunkStore::ListTempFiles(StorageClass storage_class) {
  const std::string tmp = RootOf(storage_class) + "/tmp";
  ASSIGN_OR_RETURN(auto entries, file_system_->ListDirectory(tmp));
  std::vector<TempFileInfo> out;
  for (const auto& entry : entries) {
    if (entry.is_directory) continue;
    const std::string path = tmp + "/" + entry.name;
    auto modified = file_system_->ModifiedTime(path);
    if (!modified.ok()) continue;  // removed meanwhile
    out.push_back({path, *modified});
  }
  return out;
}

Status ChunkStore::RemoveTempFile(const std::string& path) {
  return file_system_->RemoveFileIfUnlocked(path);
}

Result<TimestampMs> ChunkStore::ChunkModifiedTime(StorageClass storage_class,
                                                  const Digest& digest) {
  return file_system_->ModifiedTime(PathOf(storage_class, digest));
}

Result<Digest> ChunkStore::Rehash(StorageClass storage_class, const Digest& digest) {
  ASSIGN_OR_RETURN(auto file, OpenChunk(storage_class, digest));
  Sha256Hasher hasher;
  std::string buffer(kWriteBufferBytes, '\0');
  uint64_t offset = 0;
  while (true) {
    ASSIGN_OR_RETURN(size_t n, file->ReadAt(offset, buffer.size(), buffer.data()));
    if (n == 0) break;
    hasher.Update(std::string_view(buffer.data(), n));
    offset += n;
  }
  return hasher.Finish();
}

Status ChunkStore::CheckWritable() {
  for (StorageClass storage_class : kAllStorageClasses) {
    const std::string& root = RootOf(storage_class);
    Status status = file_system_->CheckWritable(root + "/tmp");
    if (!status.ok()) {
      return status.WithContext(std::string(StorageClassName(storage_class)) +
                                " storage root is not writable");
    }
    status = file_system_->CheckWritable(root + "/chunks");
    if (!status.ok()) {
      return status.WithContext(std::string(StorageClassName(storage_class)) +
                                " storage root is not writable");
    }
  }
  return OkStatus();
}

}  // namespace cairn::chunks
