#include "mount/mount_metrics.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "http/server.h"
#include "metrics/registry.h"

namespace cairn::mount {
namespace {

constexpr std::string_view kOperationNames[] = {
#define CAIRN_FUSE_OPERATION_NAME(name) #name,
    CAIRN_FUSE_OPERATIONS(CAIRN_FUSE_OPERATION_NAME)
#undef CAIRN_FUSE_OPERATION_NAME
};
static_assert(std::size(kOperationNames) == kFuseOperations);

std::string ErrnoLabel(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? std::string(name) : std::to_string(err);
}

std::string BoundLabel(double bound) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%g", bound);
  return buf;
}

void Counter(std::string* out, const std::string& name, const std::string& help, uint64_t value) {
  metrics::AppendHeader(out, name, help, "counter");
  metrics::AppendSample(out, name, {}, static_cast<double>(value));
}

// One request of the metrics endpoint. Arguments are pointers and references only (a
// coroutine's arguments that own memory are what GCC 12 with Boost 1.74 gets wrong).
http::Awaitable<void> ServeMetricsRequest(const std::function<std::string()>* render,
                                          http::Exchange& exchange) {
  const http::RequestHead& request = exchange.request();
  http::ResponseHead head;
  head.headers.emplace_back("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
  std::string body;
  if (request.path != "/metrics") {
    head.status = 404;
    body = "not found: this endpoint serves GET /metrics only\n";
  } else if (request.method != "GET" && request.method != "HEAD") {
    head.status = 405;
    head.headers.emplace_back("Allow", "GET, HEAD");
    body = "method not allowed: GET or HEAD\n";
  } else {
    body = (*render)();
  }
  (void)co_await exchange.Respond(std::move(head), std::move(body));
}

}  // namespace

std::string_view FuseOperationName(FuseOperation op) {
  const size_t index = static_cast<size_t>(op);
  return index < kFuseOperations ? kOperationNames[index] : "unknown";
}

MountMetrics::MountMetrics(const FileData* data, const objects::ObjectService* objects,
                           const chunks::ChunkCache* cache)
    : data_(data), objects_(objects), cache_(cache) {}

void MountMetrics::SetInstalled(FuseOperation op) { installed_[static_cast<size_t>(op)] = true; }

void MountMetrics::Operation(FuseOperation op, std::chrono::nanoseconds elapsed) {
  OperationCounters& counters = operations_[static_cast<size_t>(op)];
  counters.calls.fetch_add(1, std::memory_order_relaxed);
  const uint64_t ns = elapsed.count() > 0 ? static_cast<uint64_t>(elapsed.count()) : 0;
  counters.nanoseconds.fetch_add(ns, std::memory_order_relaxed);
  const double seconds = static_cast<double>(ns) / 1e9;
  for (size_t i = 0; i < kLatencyBounds.size(); ++i) {
    if (seconds <= kLatencyBounds[i]) {
      counters.buckets[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
}

void MountMetrics::Error(int err) {
  const size_t index = err > 0 && err < kMaxErrno - 1 ? static_cast<size_t>(err) : kMaxErrno - 1;
  errors_[index].fetch_add(1, std::memory_order_relaxed);
}

std::string MountMetrics::Render() const {
  std::string out;
  // One load of each call count serves both the counter and the histogram's count, so a
  // call landing between the two families cannot make them disagree in one scrape. Read
  // the counts before the buckets: a call landing during the render shows in no bucket
  // rather than making a bucket exceed the count.
  std::array<uint64_t, kFuseOperations> call_counts{};
  for (size_t op = 0; op < kFuseOperations; ++op) call_counts[op] = operations_[op].calls.load();
  const std::string calls = "cairn_mount_operations_total";
  metrics::AppendHeader(&out, calls, "FUSE requests served, by operation.", "counter");
  for (size_t op = 0; op < kFuseOperations; ++op) {
    if (!installed_[op]) continue;
    metrics::AppendSample(&out, calls, {{"op", std::string(kOperationNames[op])}},
                          static_cast<double>(call_counts[op]));
  }
  const std::string latency = "cairn_mount_operation_duration_seconds";
  metrics::AppendHeader(
      &out, latency, "Time from a FUSE request's arrival to its reply, by operation.", "histogram");
  for (size_t op = 0; op < kFuseOperations; ++op) {
    if (!installed_[op]) continue;
    const std::string name(kOperationNames[op]);
    const OperationCounters& counters = operations_[op];
    const uint64_t count = call_counts[op];
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kLatencyBounds.size(); ++i) {
      cumulative += counters.buckets[i].load();
      metrics::AppendSample(&out, latency + "_bucket",
                            {{"op", name}, {"le", BoundLabel(kLatencyBounds[i])}},
                            static_cast<double>(std::min(cumulative, count)));
    }
    metrics::AppendSample(&out, latency + "_bucket", {{"op", name}, {"le", "+Inf"}},
                          static_cast<double>(count));
    metrics::AppendSample(&out, latency + "_sum", {{"op", name}},
                          static_cast<double>(counters.nanoseconds.load()) / 1e9);
    metrics::AppendSample(&out, latency + "_count", {{"op", name}}, static_cast<double>(count));
  }
  const std::string errors = "cairn_mount_errors_total";
  metrics::AppendHeader(&out, errors,
                        "FUSE requests answered with an error by the store's verdict, by errno "
                        "(EIO: the store failed, not the caller).",
                        "counter");
  metrics::AppendSample(&out, errors, {{"errno", "EIO"}}, static_cast<double>(errors_[EIO].load()));
  for (int err = 1; err < kMaxErrno; ++err) {
    const uint64_t value = errors_[err].load();
    if (err == EIO || value == 0) continue;
    metrics::AppendSample(&out, errors,
                          {{"errno", err == kMaxErrno - 1 ? "other" : ErrnoLabel(err)}},
                          static_cast<double>(value));
  }
  if (data_ != nullptr) {
    const FileDataCounters c = data_->counters();
    Counter(&out, "cairn_mount_read_bytes_total", "Bytes programs read from files.", c.bytes_read);
    Counter(&out, "cairn_mount_written_bytes_total", "Bytes programs wrote to files.",
            c.bytes_written);
    Counter(&out, "cairn_mount_flushes_total", "Flushes that committed a file's blocks.",
            c.flushes);
    Counter(&out, "cairn_mount_chunks_stored_total", "Blocks a flush stored as a new chunk file.",
            c.chunks_stored);
    Counter(&out, "cairn_mount_chunks_deduplicated_total",
            "Blocks a flush found stored already (same bytes): nothing written.",
            c.chunks_deduplicated);
    Counter(&out, "cairn_mount_read_errors_total",
            "Reads of a stored block that failed (damaged, missing or unreadable chunk).",
            c.read_errors);
    Counter(&out, "cairn_mount_block_row_cache_hits_total",
            "Block-row lookups answered by the open file's cached rows.", c.block_row_hits);
    Counter(&out, "cairn_mount_block_row_cache_misses_total",
            "Block-row lookups that read the metadata store.", c.block_row_misses);
    const uint64_t lookups = c.block_row_hits + c.block_row_misses;
    metrics::AppendHeader(&out, "cairn_mount_block_row_cache_hit_ratio",
                          "Hits over lookups of the block-row cache since the mount started "
                          "(0 before the first lookup).",
                          "gauge");
    metrics::AppendSample(
        &out, "cairn_mount_block_row_cache_hit_ratio", {},
        lookups == 0 ? 0.0 : static_cast<double>(c.block_row_hits) / static_cast<double>(lookups));
  }
  if (cache_ != nullptr) {
    const chunks::ChunkCacheStats s = cache_->stats();
    Counter(&out, "cairn_mount_chunk_cache_hits_total",
            "Chunk opens (with --storage http://, chunk reads) served from a copy in --cache-dir.",
            s.hits);
    Counter(&out, "cairn_mount_chunk_cache_misses_total",
            "Chunk opens (with --storage http://, chunk reads) that found no copy in --cache-dir "
            "(read from the store or the server).",
            s.misses);
    Counter(&out, "cairn_mount_chunk_cache_fills_total",
            "Chunks copied into --cache-dir (each hashed to its name on the way).", s.fills);
    Counter(&out, "cairn_mount_chunk_cache_evictions_total",
            "Copies removed, least recently used first, to stay within --cache-size.", s.evictions);
    Counter(&out, "cairn_mount_chunk_cache_dropped_total",
            "Copies that failed verification and were removed (read again from the store or "
            "the server).",
            s.dropped);
    metrics::AppendHeader(&out, "cairn_mount_chunk_cache_bytes",
                          "Bytes of chunk copies held in --cache-dir.", "gauge");
    metrics::AppendSample(&out, "cairn_mount_chunk_cache_bytes", {}, static_cast<double>(s.bytes));
    metrics::AppendHeader(&out, "cairn_mount_chunk_cache_capacity_bytes", "--cache-size in bytes.",
                          "gauge");
    metrics::AppendSample(&out, "cairn_mount_chunk_cache_capacity_bytes", {},
                          static_cast<double>(s.capacity_bytes));
    const uint64_t opens = s.hits + s.misses;
    metrics::AppendHeader(&out, "cairn_mount_chunk_cache_hit_ratio",
                          "Hits over chunk opens since the mount started (0 before the first).",
                          "gauge");
    metrics::AppendSample(
        &out, "cairn_mount_chunk_cache_hit_ratio", {},
        opens == 0 ? 0.0 : static_cast<double>(s.hits) / static_cast<double>(opens));
  }
  if (objects_ != nullptr) {
    const objects::IntegrityCounters integrity = objects_->integrity_counters();
    const std::string failures = "cairn_chunk_verify_failures_total";
    metrics::AppendHeader(&out, failures,
                          "Chunk reads or dedup checks of this mount that found a damaged "
                          "chunk, by reason; none of its bytes were served.",
                          "counter");
    const std::pair<const char*, uint64_t> reasons[] = {
        {"checksum_mismatch", integrity.checksum_mismatch},
        {"missing", integrity.missing},
        {"size_mismatch", integrity.short_file},
        {"unreadable", integrity.unreadable}};
    for (const auto& [reason, value] : reasons) {
      metrics::AppendSample(&out, failures, {{"reason", reason}}, static_cast<double>(value));
    }
  }
  return out;
}

// ---- MetricsEndpoint ---------------------------------------------------------------------

Result<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& host, uint16_t port, std::function<std::string()> render) {
  std::unique_ptr<MetricsEndpoint> endpoint(new MetricsEndpoint());
  endpoint->server_ = std::make_unique<http::HttpServer>();
  endpoint->render_ = std::move(render);
  http::ListenerOptions listener;
  listener.host = host;
  listener.port = port;
  listener.max_header_bytes = 8 * 1024;
  listener.header_timeout_seconds = 30;
  listener.io_timeout_seconds = 30;
  const std::function<std::string()>* render_fn = &endpoint->render_;
  auto handler = [render_fn](http::Exchange& exchange) {
    return ServeMetricsRequest(render_fn, exchange);
  };
  auto errors = [](int status, const std::string& code, const std::string& message) {
    http::ResponseHead head;
    head.status = status;
    head.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
    return std::make_pair(std::move(head), code + ": " + message + "\n");
  };
  Result<uint16_t> bound = endpoint->server_->AddListener(listener, handler, errors);
  if (!bound.ok()) {
    return bound.status().WithContext("serving metrics on " + host + ":" + std::to_string(port));
  }
  endpoint->port_ = *bound;
  http::HttpServer* server = endpoint->server_.get();
  endpoint->thread_ = std::thread([server] { server->Run(1, 1); });
  return endpoint;
}

MetricsEndpoint::~MetricsEndpoint() {
  if (server_) server_->RequestStop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace cairn::mount
