#include "platform/power_cut_file_system.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <set>
#include <vector>

namespace cairn::platform {
namespace {

std::string ParentOf(const std::string& path) { return path.substr(0, path.rfind('/')); }

Status PosixError(std::string_view operation, const std::string& path) {
  return InternalError(std::string(operation) + " '" + path + "': " + strerror(errno));
}

Status WriteWholeFile(const std::string& path, std::string_view bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return PosixError("create", path);
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      Status status = PosixError("write", path);
      ::close(fd);
      return status;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  if (::close(fd) != 0) return PosixError("close", path);
  return OkStatus();
}

class PowerCutWritableFile : public WritableFile {
 public:
  PowerCutWritableFile(PowerCutFileSystem* owner, uint64_t inode, uint64_t generation,
                       std::unique_ptr<WritableFile> base)
      : owner_(owner), inode_(inode), generation_(generation), base_(std::move(base)) {}
  Status Append(std::string_view bytes) override {
    return owner_->FileAppend(inode_, generation_, base_.get(), bytes);
  }
  void PreferDirectIo() override { base_->PreferDirectIo(); }
  Status Sync() override { return owner_->FileSync(inode_, generation_, base_->path()); }
  Status Close() override {
    // The descriptor is released even after a cut; the caller still hears of the cut.
    Status power = owner_->CheckPowerFor(generation_, base_->path());
    Status closed = base_->Close();
    return power.ok() ? closed : power;
  }
  const std::string& path() const override { return base_->path(); }

 private:
  PowerCutFileSystem* owner_;
  uint64_t inode_;
  uint64_t generation_;
  std::unique_ptr<WritableFile> base_;
};

class PowerCutReadableFile : public ReadableFile {
 public:
  PowerCutReadableFile(PowerCutFileSystem* owner, uint64_t generation, std::string path,
                       std::unique_ptr<ReadableFile> base)
      : owner_(owner), generation_(generation), path_(std::move(path)), base_(std::move(base)) {}
  Result<size_t> ReadAt(uint64_t offset, size_t length, char* buffer) override {
    RETURN_IF_ERROR(owner_->CheckPowerFor(generation_, path_));
    return base_->ReadAt(offset, length, buffer);
  }
  Result<uint64_t> Size() override {
    RETURN_IF_ERROR(owner_->CheckPowerFor(generation_, path_));
    return base_->Size();
  }

 private:
  PowerCutFileSystem* owner_;
  uint64_t generation_;
  std::string path_;
  std::unique_ptr<ReadableFile> base_;
};

}  // namespace

PowerCutFileSystem::PowerCutFileSystem(FileSystem* base, std::string root)
    : base_(base), root_(std::move(root)) {}

PowerCutFileSystem::~PowerCutFileSystem() = default;

Result<std::unique_ptr<PowerCutFileSystem>> PowerCutFileSystem::Create(FileSystem* base,
                                                                       std::string root) {
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  struct stat st;
  if (root.empty() || root[0] != '/' || ::stat(root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return InvalidArgumentError("power-cut root '" + root +
                                "' is not an existing absolute directory");
  }
  std::unique_ptr<PowerCutFileSystem> file_system(new PowerCutFileSystem(base, std::move(root)));
  std::lock_guard<std::mutex> lock(file_system->mutex_);
  RETURN_IF_ERROR(file_system->Scan(file_system->root_));
  file_system->durable_ = file_system->live_;
  return file_system;
}

Status PowerCutFileSystem::Scan(const std::string& directory) {
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(directory, error)) {
    const std::string path = entry.path().string();
    const uint64_t inode = next_inode_++;
    Inode& node = inodes_[inode];
    live_[path] = inode;
    if (entry.is_directory()) {
      node.directory = true;
      RETURN_IF_ERROR(Scan(path));
      continue;
    }
    ASSIGN_OR_RETURN(auto file, base_->OpenReadable(path));
    ASSIGN_OR_RETURN(uint64_t size, file->Size());
    node.data.resize(size);
    ASSIGN_OR_RETURN(size_t n, file->ReadAt(0, size, node.data.data()));
    node.data.resize(n);
    node.synced_size = n;
  }
  if (error) return InternalError("list '" + directory + "': " + error.message());
  return OkStatus();
}

void PowerCutFileSystem::CutAfter(uint64_t n) {
  std::lock_guard<std::mutex> lock(mutex_);
  cut_at_ = calls_ + n;
}

void PowerCutFileSystem::PowerCut() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (cut_) return;
    cut_ = true;
  }
  RunCutCallback();
}

bool PowerCutFileSystem::power_is_cut() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cut_;
}

uint64_t PowerCutFileSystem::mutating_calls() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return calls_;
}

void PowerCutFileSystem::SetOnPowerCut(std::function<void()> callback) {
  std::lock_guard<std::mutex> lock(mutex_);
  on_cut_ = std::move(callback);
}

void PowerCutFileSystem::SetSyncDirectoryIsNoop(bool noop) {
  std::lock_guard<std::mutex> lock(mutex_);
  sync_directory_noop_ = noop;
}

void PowerCutFileSystem::SetCreateDirectoriesSkipsParentSync(bool skip) {
  std::lock_guard<std::mutex> lock(mutex_);
  skip_parent_sync_ = skip;
}

void PowerCutFileSystem::RunCutCallback() {
  std::function<void()> callback;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    callback = on_cut_;
  }
  if (callback) callback();
}

Status PowerCutFileSystem::Unavailable(const std::string& path) const {
  return UnavailableError("power cut: '" + path + "' is unreachable");
}

Status PowerCutFileSystem::CheckUnder(const std::string& path) const {
  if (path == root_ || path.compare(0, root_.size() + 1, root_ + "/") == 0) return OkStatus();
  return InvalidArgumentError("'" + path + "' is outside the power-cut root '" + root_ + "'");
}

Status PowerCutFileSystem::Tick(const std::string& path, bool* cut_now) {
  RETURN_IF_ERROR(CheckUnder(path));
  if (cut_) return Unavailable(path);
  ++calls_;
  if (calls_ > cut_at_) {
    cut_ = true;
    *cut_now = true;
    return Unavailable(path);
  }
  return OkStatus();
}

Status PowerCutFileSystem::CheckPowerOn(const std::string& path) {
  std::lock_guard<std::mutex> lock(mutex_);
  RETURN_IF_ERROR(CheckUnder(path));
  if (cut_) return Unavailable(path);
  return OkStatus();
}

Status PowerCutFileSystem::CheckPowerFor(uint64_t generation, const std::string& path) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (cut_ || generation != generation_) return Unavailable(path);
  return OkStatus();
}

// Runs a mutating step: counts it, cuts the power if it is the chosen one (running the
// callback outside the lock), and otherwise runs `body` under the lock.
#define POWER_CUT_STEP(path)                 \
  std::unique_lock<std::mutex> lock(mutex_); \
  {                                          \
    bool cut_now = false;                    \
    Status ticked = Tick((path), &cut_now);  \
    if (!ticked.ok()) {                      \
      lock.unlock();                         \
      if (cut_now) RunCutCallback();         \
      return ticked;                         \
    }                                        \
  }

Result<std::unique_ptr<WritableFile>> PowerCutFileSystem::NewWritableFile(const std::string& path) {
  POWER_CUT_STEP(path);
  ASSIGN_OR_RETURN(auto file, base_->NewWritableFile(path));
  const uint64_t inode = next_inode_++;
  inodes_[inode] = Inode{};
  live_[path] = inode;
  return std::unique_ptr<WritableFile>(
      new PowerCutWritableFile(this, inode, generation_, std::move(file)));
}

Status PowerCutFileSystem::FileAppend(uint64_t inode, uint64_t generation, WritableFile* base,
                                      std::string_view bytes) {
  POWER_CUT_STEP(base->path());
  if (generation != generation_) return Unavailable(base->path());
  RETURN_IF_ERROR(base->Append(bytes));
  inodes_[inode].data.append(bytes);
  return OkStatus();
}

Status PowerCutFileSystem::FileSync(uint64_t inode, uint64_t generation, const std::string& path) {
  POWER_CUT_STEP(path);
  if (generation != generation_) return Unavailable(path);
  // Simulated: the data is durable from here on, whatever name the file has.
  Inode& node = inodes_[inode];
  node.synced_size = node.data.size();
  return OkStatus();
}

Status PowerCutFileSystem::SyncFile(const std::string& path) {
  POWER_CUT_STEP(path);
  auto file = live_.find(path);
  if (file == live_.end() || inodes_[file->second].directory) {
    return NotFoundError("open '" + path + "': no such file");
  }
  Inode& node = inodes_[file->second];
  node.synced_size = node.data.size();
  return OkStatus();
}

Result<std::unique_ptr<ReadableFile>> PowerCutFileSystem::OpenReadable(const std::string& path) {
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    RETURN_IF_ERROR(CheckUnder(path));
    if (cut_) return Unavailable(path);
    generation = generation_;
  }
  ASSIGN_OR_RETURN(auto file, base_->OpenReadable(path));
  return std::unique_ptr<ReadableFile>(
      new PowerCutReadableFile(this, generation, path, std::move(file)));
}

Status PowerCutFileSystem::Rename(const std::string& from, const std::string& to) {
  RETURN_IF_ERROR(CheckUnder(from));
  POWER_CUT_STEP(to);
  auto source = live_.find(from);
  if (source != live_.end() && inodes_[source->second].directory) {
    return InvalidArgumentError("rename of directory '" + from + "' is not modelled");
  }
  RETURN_IF_ERROR(base_->Rename(from, to));
  if (source == live_.end()) return InternalError("'" + from + "' renamed but never tracked");
  const uint64_t inode = source->second;
  live_.erase(source);
  live_[to] = inode;  // a replaced target's inode is simply unlinked
  return OkStatus();
}

Status PowerCutFileSystem::SyncDirectory(const std::string& path) {
  POWER_CUT_STEP(path);
  return SyncDirectoryLocked(path);
}

Status PowerCutFileSystem::SyncDirectoryLocked(const std::string& path) {
  if (path != root_) {
    auto directory = live_.find(path);
    if (directory == live_.end() || !inodes_[directory->second].directory) {
      return NotFoundError("open directory '" + path + "': no such directory");
    }
  }
  if (sync_directory_noop_) return OkStatus();
  // The directory's current listing becomes its durable listing; entries deeper down are
  // their own directories' business.
  const std::string prefix = path + "/";
  auto is_child = [&](const std::string& entry) {
    return entry.compare(0, prefix.size(), prefix) == 0 &&
           entry.find('/', prefix.size()) == std::string::npos;
  };
  for (auto it = durable_.lower_bound(prefix);
       it != durable_.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
    it = is_child(it->first) ? durable_.erase(it) : std::next(it);
  }
  for (auto it = live_.lower_bound(prefix);
       it != live_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    if (is_child(it->first)) durable_[it->first] = it->second;
  }
  return OkStatus();
}

Status PowerCutFileSystem::CreateOneDirectory(const std::string& path) {
  POWER_CUT_STEP(path);
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return PosixError("mkdir", path);
  const uint64_t inode = next_inode_++;
  inodes_[inode].directory = true;
  live_[path] = inode;
  return OkStatus();
}

Status PowerCutFileSystem::CreateDirectories(const std::string& path) {
  RETURN_IF_ERROR(CheckPowerOn(path));
  if (path == root_) return OkStatus();
  // Top-down from the root, like mkdir -p; each new directory is then synced into its
  // parent, as the POSIX implementation does (and the interface promises).
  for (size_t end = root_.size(); end != std::string::npos;) {
    end = path.find('/', end + 1);
    const std::string directory = path.substr(0, end);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cut_) return Unavailable(directory);
      auto existing = live_.find(directory);
      if (existing != live_.end()) {
        if (!inodes_[existing->second].directory) {
          return FailedPreconditionError("'" + directory + "' exists and is not a directory");
        }
        continue;
      }
    }
    RETURN_IF_ERROR(CreateOneDirectory(directory));
    bool skip_parent_sync;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      skip_parent_sync = skip_parent_sync_;
    }
    if (!skip_parent_sync) RETURN_IF_ERROR(SyncDirectory(ParentOf(directory)));
  }
  return OkStatus();
}

Status PowerCutFileSystem::RemoveFile(const std::string& path) {
  POWER_CUT_STEP(path);
  RETURN_IF_ERROR(base_->RemoveFile(path));
  live_.erase(path);
  return OkStatus();
}

Status PowerCutFileSystem::RemoveFileIfUnlocked(const std::string& path) {
  POWER_CUT_STEP(path);
  RETURN_IF_ERROR(base_->RemoveFileIfUnlocked(path));
  live_.erase(path);
  return OkStatus();
}

#undef POWER_CUT_STEP

Result<bool> PowerCutFileSystem::Exists(const std::string& path) {
  RETURN_IF_ERROR(CheckPowerOn(path));
  return base_->Exists(path);
}

Result<std::vector<DirEntry>> PowerCutFileSystem::ListDirectory(const std::string& path) {
  RETURN_IF_ERROR(CheckPowerOn(path));
  return base_->ListDirectory(path);
}

Result<TimestampMs> PowerCutFileSystem::ModifiedTime(const std::string& path) {
  RETURN_IF_ERROR(CheckPowerOn(path));
  return base_->ModifiedTime(path);
}

Result<uint64_t> PowerCutFileSystem::FileSize(const std::string& path) {
  RETURN_IF_ERROR(CheckPowerOn(path));
  return base_->FileSize(path);
}

Status PowerCutFileSystem::CheckWritable(const std::string& directory) {
  RETURN_IF_ERROR(CheckPowerOn(directory));
  return base_->CheckWritable(directory);
}

Status PowerCutFileSystem::MakePrivate(const std::string& path) {
  RETURN_IF_ERROR(CheckPowerOn(path));
  return base_->MakePrivate(path);
}

Status PowerCutFileSystem::Reboot(std::optional<uint32_t> keep_some_unsynced) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(root_, error)) {
    std::filesystem::remove_all(entry.path(), error);
    if (error) {
      return InternalError("reboot: remove '" + entry.path().string() + "': " + error.message());
    }
  }
  if (error) return InternalError("reboot: list '" + root_ + "': " + error.message());

  Namespace disk = durable_;
  std::map<uint64_t, uint64_t> surviving_bytes;  // files whose unsynced tail partly survives
  if (keep_some_unsynced) {
    // The disk may have written back some unsynced changes on its own, each independently.
    std::mt19937 rng(*keep_some_unsynced);
    for (const auto& [path, inode] : live_) {
      auto durable = durable_.find(path);
      if ((durable == durable_.end() || durable->second != inode) && rng() % 2) disk[path] = inode;
    }
    for (const auto& [path, inode] : durable_) {
      if (!live_.count(path) && rng() % 2) disk.erase(path);
    }
    for (const auto& [id, node] : inodes_) {
      if (node.data.size() > node.synced_size) {
        surviving_bytes[id] = node.synced_size + rng() % (node.data.size() - node.synced_size + 1);
      }
    }
  }

  // Parents sort before their children; an entry whose directory did not survive is gone
  // with it.
  std::set<std::string> directories = {root_};
  Namespace survived;
  std::map<uint64_t, Inode> inodes;
  for (const auto& [path, inode] : disk) {
    if (!directories.count(ParentOf(path))) continue;
    const Inode& node = inodes_.at(inode);
    if (node.directory) {
      if (::mkdir(path.c_str(), 0700) != 0) return PosixError("reboot: mkdir", path);
      directories.insert(path);
      inodes[inode].directory = true;
    } else {
      // A file renamed into a synced directory whose old directory was not synced survives
      // under both names, as on a real disk.
      auto kept_size = surviving_bytes.find(inode);
      std::string_view bytes(node.data.data(), kept_size == surviving_bytes.end()
                                                   ? node.synced_size
                                                   : kept_size->second);
      RETURN_IF_ERROR(WriteWholeFile(path, bytes));
      Inode& kept = inodes[inode];
      kept.data.assign(bytes);
      kept.synced_size = bytes.size();
    }
    survived[path] = inode;
  }
  inodes_ = std::move(inodes);
  live_ = survived;
  durable_ = std::move(survived);
  cut_ = false;
  cut_at_ = UINT64_MAX;
  ++generation_;
  return OkStatus();
}

}  // namespace cairn::platform
