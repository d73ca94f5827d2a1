#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "platform/clock.h"
#include "platform/file_system.h"

namespace cairn::platform {
namespace {

Status ErrnoStatus(std::string_view operation, const std::string& path, int error) {
  std::string message = std::string(operation) + " '" + path + "': " + strerror(error);
  switch (error) {
    case ENOENT:
      return NotFoundError(std::move(message));
    case EEXIST:
      return AlreadyExistsError(std::move(message));
    case ENOSPC:
    case EDQUOT:
      return ResourceExhaustedError(std::move(message));
    case EACCES:
    case EPERM:
    case EROFS:
      return UnavailableError(std::move(message));
    default:
      return InternalError(std::move(message));
  }
}

class PosixWritableFile : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Append(std::string_view bytes) override {
    const char* data = bytes.data();
    size_t left = bytes.size();
    if (prefer_direct_ && left >= kDirectMinBytes && offset_ % kDirectAlignment == 0 &&
        reinterpret_cast<uintptr_t>(data) % kDirectAlignment == 0) {
      const size_t aligned = left / kDirectAlignment * kDirectAlignment;
      ASSIGN_OR_RETURN(size_t written, WriteDirect(data, aligned));
      data += written;
      left -= written;
    }
    if (left > 0 && direct_on_) RETURN_IF_ERROR(SetDirect(false));
    return WriteAll(data, left);
  }

  void PreferDirectIo() override { prefer_direct_ = true; }

  Status Sync() override {
    if (::fdatasync(fd_) != 0) return ErrnoStatus("fdatasync", path_, errno);
    return OkStatus();
  }

  Status Close() override {
    if (fd_ < 0) return OkStatus();
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) return ErrnoStatus("close", path_, errno);
    return OkStatus();
  }

  const std::string& path() const override { return path_; }

 private:
  // Direct I/O only pays for itself on large writes; the kernel wants the address, length
  // and offset aligned to the logical block size, which 4 KiB covers on common devices.
  static constexpr size_t kDirectMinBytes = 256 * 1024;
  static constexpr size_t kDirectAlignment = 4096;

  Status WriteAll(const char* data, size_t left) {
    while (left > 0) {
      ssize_t n = ::write(fd_, data, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("write", path_, errno);
      }
      data += n;
      left -= static_cast<size_t>(n);
      offset_ += static_cast<uint64_t>(n);
    }
    return OkStatus();
  }

  // Writes `length` aligned bytes bypassing the page cache; returns how many it wrote that
  // way (0 if the file system refuses direct I/O: the caller then writes them buffered).
  Result<size_t> WriteDirect(const char* data, size_t length) {
    if (!direct_on_) {
      if (!SetDirect(true).ok()) {
        prefer_direct_ = false;
        return size_t{0};
      }
    }
    size_t done = 0;
    while (done < length) {
      ssize_t n = ::write(fd_, data + done, length - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EINVAL && done == 0) {  // alignment this file system does not accept
          prefer_direct_ = false;
          RETURN_IF_ERROR(SetDirect(false));
          return size_t{0};
        }
        return ErrnoStatus("write", path_, errno);
      }
      done += static_cast<size_t>(n);
      offset_ += static_cast<uint64_t>(n);
      if (done % kDirectAlignment != 0) break;  // a short, unaligned write: finish buffered
    }
    return done;
  }

  Status SetDirect(bool on) {
    const int flags = ::fcntl(fd_, F_GETFL);
    if (flags < 0) return ErrnoStatus("fcntl", path_, errno);
    const int wanted = on ? (flags | O_DIRECT) : (flags & ~O_DIRECT);
    if (::fcntl(fd_, F_SETFL, wanted) != 0) return ErrnoStatus("fcntl O_DIRECT", path_, errno);
    direct_on_ = on;
    return OkStatus();
  }

  std::string path_;
  int fd_;
  uint64_t offset_ = 0;  // bytes appended so far
  bool prefer_direct_ = false;
  bool direct_on_ = false;
};

class PosixReadableFile : public ReadableFile {
 public:
  PosixReadableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixReadableFile() override { ::close(fd_); }

  Result<size_t> ReadAt(uint64_t offset, size_t length, char* buffer) override {
    size_t done = 0;
    while (done < length) {
      ssize_t n = ::pread(fd_, buffer + done, length - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("read", path_, errno);
      }
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    return done;
  }

  Result<uint64_t> Size() override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return ErrnoStatus("fstat", path_, errno);
    return static_cast<uint64_t>(st.st_size);
  }

  int NativeHandle() const override { return fd_; }

 private:
  std::string path_;
  int fd_;
};

std::string ParentOf(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Opens `path` read-only (plus `extra_flags`), runs `sync` on the descriptor, closes it.
Status SyncThrough(const std::string& path, int extra_flags, int (*sync)(int),
                   std::string_view open_what, std::string_view sync_what) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | extra_flags);
  if (fd < 0) return ErrnoStatus(open_what, path, errno);
  int rc = sync(fd);
  int error = errno;
  ::close(fd);
  if (rc != 0) return ErrnoStatus(sync_what, path, error);
  return OkStatus();
}

class PosixFileSystem : public FileSystem {
 public:
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoStatus("create", path, errno);
    // Between open and flock a collector may have removed the fresh file; then the caller
    // sees kAborted and retries with a new name.
    struct stat st;
    if (::flock(fd, LOCK_EX) != 0 || ::fstat(fd, &st) != 0 || st.st_nlink == 0) {
      ::close(fd);
      return AbortedError("temp file '" + path + "' was removed while being created");
    }
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd));
  }

  Result<std::unique_ptr<ReadableFile>> OpenReadable(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open", path, errno);
    return std::unique_ptr<ReadableFile>(new PosixReadableFile(path, fd));
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return ErrnoStatus("rename", from, errno);
    return OkStatus();
  }

  Status RenameNoReplace(const std::string& from, const std::string& to) override {
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
      return OkStatus();
    }
    if (errno != EINVAL && errno != ENOSYS) return ErrnoStatus("rename", from, errno);
    // A file system without RENAME_NOREPLACE: link() never replaces either.
    if (::link(from.c_str(), to.c_str()) != 0) return ErrnoStatus("link", from, errno);
    ::unlink(from.c_str());
    return OkStatus();
  }

  Status SyncDirectory(const std::string& path) override {
    return SyncThrough(path, O_DIRECTORY, ::fsync, "open directory", "fsync directory");
  }

  Result<bool> CreateDirectoryUnsynced(const std::string& path) override {
    if (::mkdir(path.c_str(), 0700) == 0) return true;
    if (errno == EEXIST) return false;
    return ErrnoStatus("mkdir", path, errno);
  }

  Status SyncFile(const std::string& path) override {
    return SyncThrough(path, 0, ::fdatasync, "open", "fdatasync");
  }

  Status SyncFileSystem(const std::string& path) override {
    return SyncThrough(path, 0, ::syncfs, "open", "syncfs of the file system holding");
  }

  Status CreateDirectories(const std::string& path) override {
    if (path.empty()) return OkStatus();
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) return OkStatus();
      return FailedPreconditionError("'" + path + "' exists and is not a directory");
    }
    std::string parent = ParentOf(path);
    if (parent != path) RETURN_IF_ERROR(CreateDirectories(parent));
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus("mkdir", path, errno);
    }
    return SyncDirectory(parent);
  }

  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return ErrnoStatus("unlink", path, errno);
    return OkStatus();
  }

  Status RemoveFileIfUnlocked(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open", path, errno);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      return FailedPreconditionError("'" + path + "' is being written");
    }
    Status status = OkStatus();
    if (::unlink(path.c_str()) != 0) status = ErrnoStatus("unlink", path, errno);
    ::close(fd);
    return status;
  }

  Result<bool> IsLocked(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open", path, errno);
    const bool locked = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    ::close(fd);  // drops the shared lock, if it was taken
    return locked;
  }

  Result<bool> Exists(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) return true;
    if (errno == ENOENT || errno == ENOTDIR) return false;
    return ErrnoStatus("stat", path, errno);
  }

  Result<std::vector<DirEntry>> ListDirectory(const std::string& path) override {
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) return ErrnoStatus("opendir", path, errno);
    std::vector<DirEntry> entries;
    while (struct dirent* entry = ::readdir(dir)) {
      std::string name = entry->d_name;
      if (name == "." || name == "..") continue;
      bool is_dir = entry->d_type == DT_DIR;
      if (entry->d_type == DT_UNKNOWN) {
        struct stat st;
        is_dir = ::stat((path + "/" + name).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
      }
      entries.push_back({std::move(name), is_dir});
    }
    ::closedir(dir);
    return entries;
  }

  Result<TimestampMs> ModifiedTime(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("stat", path, errno);
    auto ms = [](const struct timespec& t) {
      return static_cast<TimestampMs>(t.tv_sec) * 1000 + t.tv_nsec / 1000000;
    };
    return std::max(ms(st.st_mtim), ms(st.st_ctim));
  }

  Result<uint64_t> FileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("stat", path, errno);
    return static_cast<uint64_t>(st.st_size);
  }

  Status MakePrivate(const std::string& path) override {
    if (::chmod(path.c_str(), 0600) != 0) return ErrnoStatus("chmod", path, errno);
    return OkStatus();
  }

  Status CheckWritable(const std::string& directory) override {
    struct stat st;
    if (::stat(directory.c_str(), &st) != 0) return ErrnoStatus("stat", directory, errno);
    if (!S_ISDIR(st.st_mode)) {
      return UnavailableError("'" + directory + "' is not a directory");
    }
    char suffix[17];
    uint64_t random_value;
    FillRandom(&random_value, sizeof(random_value));
    snprintf(suffix, sizeof(suffix), "%016llx", static_cast<unsigned long long>(random_value));
    std::string probe = directory + "/.ready-probe-" + suffix;
    int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoStatus("create probe file in", directory, errno);
    bool written = ::write(fd, "ok", 2) == 2;
    int write_error = errno;
    ::close(fd);
    ::unlink(probe.c_str());
    if (!written) return ErrnoStatus("write probe file in", directory, write_error);
    return OkStatus();
  }
};

class RealClock : public Clock {
 public:
  TimestampMs NowMs() override {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<TimestampMs>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
  }
};

}  // namespace

FileSystem* DefaultFileSystem() {
  static PosixFileSystem* file_system = new PosixFileSystem();
  return file_system;
}

Clock* SystemClock() {
  static RealClock* clock = new RealClock();
  return clock;
}

void FillRandom(void* buffer, size_t length) {
  auto* out = static_cast<unsigned char*>(buffer);
  while (length > 0) {
    ssize_t n = ::getrandom(out, length, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      abort();
    }
    out += n;
    length -= static_cast<size_t>(n);
  }
}

ObjectId NewObjectId() {
  std::array<uint8_t, 16> random;
  FillRandom(random.data(), random.size());
  return ObjectId::FromRandomBytes(random);
}

}  // namespace cairn::platform
