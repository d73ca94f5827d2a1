// MountMetrics: what a mount did, in the Prometheus text format (docs/filesystem.md,
// "Metrics"), and MetricsEndpoint, the HTTP listener `cairn mount --metrics` serves it on.
//
// Every FUSE operation is counted and timed in one place: CountOperations
// (mount/fuse_counting.h) wraps the operation table, so the operations themselves carry no
// counting code. Errors are counted where the edge turns a Status into an errno. Bytes,
// chunks, block-row cache hits and read errors come from FileData's counters; chunk
// verification failures from the ObjectService's integrity counters.
//
// Thread-safety: Operation and Error from any thread (relaxed atomics, no lock); Render
// from any thread; SetInstalled before the session serves.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "core/status.h"
#include "mount/file_data.h"
#include "objects/object_service.h"

namespace cairn::http {
class HttpServer;
}

namespace cairn::mount {

// The low-level operations a mount may serve, as fuse_lowlevel_ops names them (the
// `op` label). X(name) once per operation; the index of an operation is its position.
// clang-format off
#define CAIRN_FUSE_OPERATIONS(X)                                                             \
  X(lookup) X(forget) X(getattr) X(setattr) X(readlink) X(mknod) X(mkdir) X(unlink)          \
  X(rmdir) X(symlink) X(rename) X(link) X(open) X(read) X(write) X(flush) X(release)         \
  X(fsync) X(opendir) X(readdir) X(releasedir) X(fsyncdir) X(statfs) X(setxattr)             \
  X(getxattr) X(listxattr) X(removexattr) X(access) X(create) X(getlk) X(setlk) X(bmap)      \
  X(write_buf) X(forget_multi) X(flock) X(fallocate) X(readdirplus) X(copy_file_range)       \
  X(lseek)
// clang-format on

enum class FuseOperation : uint8_t {
#define CAIRN_FUSE_OPERATION_ENUM(name) k_##name,
  CAIRN_FUSE_OPERATIONS(CAIRN_FUSE_OPERATION_ENUM)
#undef CAIRN_FUSE_OPERATION_ENUM
      kCount
};
inline constexpr size_t kFuseOperations = static_cast<size_t>(FuseOperation::kCount);
std::string_view FuseOperationName(FuseOperation op);

// Upper bounds (seconds) of the latency histogram's buckets.
inline constexpr std::array<double, 12> kLatencyBounds = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5};

class MountMetrics {
 public:
  // `data`, `objects` and `cache` (--cache-dir) must outlive the metrics; any may be null
  // (its families then stay out of Render).
  MountMetrics(const FileData* data, const objects::ObjectService* objects,
               const chunks::ChunkCache* cache);

  // The operation is served (it has a counter even before its first call).
  void SetInstalled(FuseOperation op);
  // One call of `op` took `elapsed` (its reply included).
  void Operation(FuseOperation op, std::chrono::nanoseconds elapsed);
  // A reply with errno `err` (> 0).
  void Error(int err);

  std::string Render() const;

 private:
  struct OperationCounters {
    std::atomic<uint64_t> calls{0};
    std::atomic<uint64_t> nanoseconds{0};
    std::array<std::atomic<uint64_t>, kLatencyBounds.size()> buckets{};  // non-cumulative
  };
  static constexpr int kMaxErrno = 256;

  const FileData* data_;
  const objects::ObjectService* objects_;
  const chunks::ChunkCache* cache_;
  std::array<bool, kFuseOperations> installed_{};
  std::array<OperationCounters, kFuseOperations> operations_;
  std::array<std::atomic<uint64_t>, kMaxErrno> errors_{};  // by errno; the last: any above
};

// Serves GET /metrics (and HEAD) on one thread until destroyed; anything else is 404 or
// 405.
class MetricsEndpoint {
 public:
  // Binds host:port now (port 0: any free port).
  static Result<std::unique_ptr<MetricsEndpoint>> Start(const std::string& host, uint16_t port,
                                                        std::function<std::string()> render);
  ~MetricsEndpoint();
  uint16_t port() const { return port_; }

 private:
  MetricsEndpoint() = default;
  std::unique_ptr<http::HttpServer> server_;
  std::function<std::string()> render_;
  uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace cairn::mount
