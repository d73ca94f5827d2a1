#include "platform/space_reserve.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

namespace cairn::platform {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;

uint64_t DefaultSize(const std::string& path) {
  const std::string directory = path.substr(0, path.find_last_of('/') + 1);
  struct statvfs fs;
  if (::statvfs(directory.empty() ? "." : directory.c_str(), &fs) != 0) return 16 * kMiB;
  const uint64_t total = static_cast<uint64_t>(fs.f_blocks) * fs.f_frsize;
  return std::clamp<uint64_t>(total / 100, 1 * kMiB, 64 * kMiB);
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

SpaceReserve::SpaceReserve(std::string path, uint64_t bytes)
    : path_(std::move(path)), bytes_(bytes != 0 ? bytes : DefaultSize(path_)) {}

bool SpaceReserve::held() const {
  struct stat st;
  if (::stat(path_.c_str(), &st) != 0) return false;
  // Allocated blocks, not the apparent size: a sparse file reserves nothing.
  return static_cast<uint64_t>(st.st_blocks) * 512 >= bytes_;
}

bool SpaceReserve::TryHold() {
  std::lock_guard lock(mu_);
  last_attempt_ms_ = NowMs();
  if (held()) return true;
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  ::fchmod(fd, 0600);  // whatever the umask was when it was first created
  const bool ok = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes_)) == 0 && ::fsync(fd) == 0;
  if (!ok) (void)::ftruncate(fd, 0);  // a partial reserve would only confuse held()
  ::close(fd);
  return ok;
}

bool SpaceReserve::HeldOrRetry(int64_t interval_ms) {
  if (held()) return true;
  {
    std::lock_guard lock(mu_);
    if (NowMs() - last_attempt_ms_ < interval_ms) return false;
  }
  return TryHold();
}

bool SpaceReserve::Release() {
  std::lock_guard lock(mu_);
  last_attempt_ms_ = NowMs();  // give the freed blocks to deletes before taking them back
  struct stat st;
  if (::stat(path_.c_str(), &st) != 0 || st.st_blocks == 0) return false;
  return ::truncate(path_.c_str(), 0) == 0;
}

}  // namespace cairn::platform
