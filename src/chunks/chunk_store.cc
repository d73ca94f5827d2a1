#include "chunks/chunk_store.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "platform/clock.h"

namespace cairn::chunks {
namespace {

int64_t Nanos(const struct timespec& t) {
  return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

constexpr size_t kWriteBufferBytes = 1 << 20;
constexpr int kCreateAttempts = 8;

std::string FanOutDirectory(const std::string& chunks_root, const std::string& hex) {
  return chunks_root + "/" + hex.substr(0, 2) + "/" + hex.substr(2, 2);
}

std::string RandomName() {
  uint64_t value[2];
  platform::FillRandom(value, sizeof(value));
  char name[40];
  snprintf(name, sizeof(name), "%016llx%016llx.part", static_cast<unsigned long long>(value[0]),
           static_cast<unsigned long long>(value[1]));
  return name;
}

}  // namespace

ChunkWriter::ChunkWriter(ChunkStore* store, platform::FileSystem* file_system,
                         std::unique_ptr<platform::WritableFile> file, std::string chunks_root)
    : store_(store),
      file_system_(file_system),
      file_(std::move(file)),
      chunks_root_(std::move(chunks_root)) {
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
  const std::string directory = FanOutDirectory(chunks_root_, hex);
  if (deferred_files == nullptr) {
    RETURN_IF_ERROR(file_->Sync());
    RETURN_IF_ERROR(store_->EnsureFanOutDurable(directory));
  } else {
    // Both fan-out levels, top down; a new one's entry is synced with the rest later.
    const std::string first = directory.substr(0, directory.rfind('/'));
    ASSIGN_OR_RETURN(bool made, file_system_->CreateDirectoryUnsynced(first));
    if (made) directories_to_sync->insert(chunks_root_);
    ASSIGN_OR_RETURN(made, file_system_->CreateDirectoryUnsynced(directory));
    if (made) directories_to_sync->insert(first);
  }
  RETURN_IF_ERROR(file_system_->Rename(file_->path(), directory + "/" + hex));
  done_ = true;
  RETURN_IF_ERROR(file_->Close());
  directories_to_sync->insert(directory);
  if (deferred_files != nullptr) deferred_files->insert(directory + "/" + hex);
  return OkStatus();
}

Status ChunkWriter::Discard() {
  if (done_) return OkStatus();
  done_ = true;
  Status status = file_system_->RemoveFile(file_->path());
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
    RETURN_IF_ERROR(file_system->CreateDirectories(root + "/chunks"));
    RETURN_IF_ERROR(file_system->CreateDirectories(root + "/tmp"));
    RETURN_IF_ERROR(file_system->CreateDirectories(root + "/quarantine"));
  }
  return store;
}

const std::string& ChunkStore::RootOf(StorageClass storage_class) const {
  return storage_class == StorageClass::kHot ? options_.hot_root : options_.cold_root;
}

std::string ChunkStore::PathOf(StorageClass storage_class, const Digest& digest) const {
  const std::string hex = digest.ToHex();
  return FanOutDirectory(RootOf(storage_class) + "/chunks", hex) + "/" + hex;
}

Result<std::unique_ptr<ChunkWriter>> ChunkStore::NewWriter(StorageClass storage_class) {
  const std::string& root = RootOf(storage_class);
  Status last;
  for (int attempt = 0; attempt < kCreateAttempts; ++attempt) {
    auto file = file_system_->NewWritableFile(root + "/tmp/" + RandomName());
    if (file.ok()) {
      return std::unique_ptr<ChunkWriter>(
          new ChunkWriter(this, file_system_, std::move(file).value(), root + "/chunks"));
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
  const std::string first = directory.substr(0, directory.rfind('/'));
  RETURN_IF_ERROR(file_system_->SyncDirectory(first));
  RETURN_IF_ERROR(file_system_->SyncDirectory(first.substr(0, first.rfind('/'))));
  std::lock_guard<std::mutex> lock(synced_mutex_);
  // 2 x 65,536 directories at most (two classes): no bound needed.
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

Result<std::vector<Digest>> ChunkStore::ListChunks(StorageClass storage_class,
                                                   std::vector<std::string>* stray_paths) {
  const std::string chunks_root = RootOf(storage_class) + "/chunks";
  std::vector<Digest> digests;
  ASSIGN_OR_RETURN(auto level1, file_system_->ListDirectory(chunks_root));
  for (const auto& first : level1) {
    const std::string first_path = chunks_root + "/" + first.name;
    if (!first.is_directory) {
      if (stray_paths) stray_paths->push_back(first_path);
      continue;
    }
    ASSIGN_OR_RETURN(auto level2, file_system_->ListDirectory(first_path));
    for (const auto& second : level2) {
      const std::string second_path = first_path + "/" + second.name;
      if (!second.is_directory) {
        if (stray_paths) stray_paths->push_back(second_path);
        continue;
      }
      ASSIGN_OR_RETURN(auto files, file_system_->ListDirectory(second_path));
      for (const auto& file : files) {
        auto digest = Digest::FromHex(file.name);
        const std::string prefix = first.name + second.name;
        if (file.is_directory || !digest.ok() || file.name.compare(0, 4, prefix) != 0) {
          if (stray_paths) stray_paths->push_back(second_path + "/" + file.name);
          continue;
        }
        digests.push_back(*digest);
      }
    }
  }
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
  for (StorageClass storage_class : kAllStorageClasses) {
    const std::string chunks_root = RootOf(storage_class) + "/chunks";
    ASSIGN_OR_RETURN(auto level1, file_system_->ListDirectory(chunks_root));
    for (const auto& first : level1) {
      if (!first.is_directory) continue;
      ASSIGN_OR_RETURN(auto level2, file_system_->ListDirectory(chunks_root + "/" + first.name));
      for (const auto& second : level2) {
        if (!second.is_directory) continue;
        ASSIGN_OR_RETURN(auto files, file_system_->ListDirectory(chunks_root + "/" + first.name +
                                                                 "/" + second.name));
        for (const auto& file : files) {
          if (!file.is_directory && Digest::FromHex(file.name).ok()) return true;
        }
      }
    }
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
  // The temp file lives in tmp/, so GC removes it if this process dies before the rename.
  // It is locked while open, like any chunk being written, and stays open until renamed:
  // another node starting at the same time removes the unlocked temp files it finds.
  const std::string temp_path = root + "/tmp/" + RandomName();
  ASSIGN_OR_RETURN(auto file, file_system_->NewWritableFile(temp_path));
  Status written = file_system_->MakePrivate(temp_path);
  if (written.ok()) written = file->Append(id + "\n");
  if (written.ok()) written = file->Sync();
  if (!written.ok()) {
    file->Close().IgnoreError();
    (void)file_system_->RemoveFile(temp_path);
    return written.WithContext("writing the store identity of " + root);
  }
  Status renamed = file_system_->RenameNoReplace(temp_path, path);
  if (!renamed.ok()) (void)file_system_->RemoveFile(temp_path);
  Status closed = file->Close();
  if (!renamed.ok()) {
    // Another process gave the root its identity first: that one counts.
    if (renamed.code() != StatusCode::kAlreadyExists) return renamed;
  } else {
    RETURN_IF_ERROR(closed);
  }
  RETURN_IF_ERROR(file_system_->SyncDirectory(root));
  ASSIGN_OR_RETURN(auto now_there, ReadStoreId(storage_class));
  if (!now_there) return InternalError("store identity file '" + path + "' vanished");
  return *now_there;
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
