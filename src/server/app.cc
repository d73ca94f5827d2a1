#include "server/app.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "api/console/console.h"
#include "api/console/console_http.h"
#include "api/native/native_api.h"
#include "api/s3/handlers/s3_api.h"
#include "api/s3/sigv4/sigv4.h"
#include "auth/api_key.h"
#include "backup/backup.h"
#include "gc/collector.h"
#include "gc/store_identity.h"
#include "http/server.h"
#include "meta/engines/open_meta_store.h"
#include "meta/snapshot.h"
#include "objects/multipart.h"
#include "platform/clock.h"
#include "platform/file_system.h"
#include "scrub/scrubber.h"
#include "server/key_admin.h"

namespace cairn::server {
namespace {

constexpr char kAdminKeyFile[] = "admin.key";
constexpr char kS3KeyFile[] = "s3.key";
constexpr char kBootstrapLockFile[] = "bootstrap.lock";
constexpr int kBootstrapLockWaitMs = 60000;
// In a storage root: every file below it has been made private (MakeRootPrivate).
constexpr char kPrivateModesMarker[] = "private-modes";

// An exclusive flock on <data-dir>/bootstrap.lock, held while the bootstrap credentials are
// checked and created. Nodes that share a data directory (and a PostgreSQL database) and
// start together pass through one at a time, so only the first generates admin.key and
// s3.key and the others find them.
class BootstrapLock {
 public:
  static Result<BootstrapLock> Acquire(const std::string& data_dir) {
    const std::string path = data_dir + "/" + kBootstrapLockFile;
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return InternalError("cannot open " + path);
    // Bounded: a holder only does a few metadata calls, each with its own timeouts.
    for (int waited_ms = 0; ::flock(fd, LOCK_EX | LOCK_NB) != 0; waited_ms += 50) {
      if (errno != EWOULDBLOCK || waited_ms >= kBootstrapLockWaitMs) {
        ::close(fd);
        return UnavailableError("cannot lock " + path + " (another node is bootstrapping)");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return BootstrapLock(fd);
  }
  BootstrapLock(BootstrapLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  BootstrapLock& operator=(BootstrapLock&&) = delete;
  ~BootstrapLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }

 private:
  explicit BootstrapLock(int fd) : fd_(fd) {}
  int fd_;
};

// A crash leaves no key file or the whole one: a torn admin.key would lock the operator
// out of a key the metadata already holds.
Status WriteSecretFile(const std::string& path, const std::string& contents) {
  return platform::WriteFileAtomically(platform::DefaultFileSystem(), path, contents,
                                       /*replace=*/false);
}

// Installs the bootstrap admin key: the one in CAIRN_ADMIN_KEY, or on first start a new
// one that is printed once and kept in <data-dir>/admin.key (mode 0600).
Status BootstrapAdminKey(meta::MetaStore* store, const ServeConfig& config) {
  const TimestampMs now = platform::SystemClock()->NowMs();
  KeyGrant grant{{"*"}, meta::Scope::kAdmin, "bootstrap admin key"};
  if (config.admin_key) {
    ASSIGN_OR_RETURN(auth::ParsedApiKey parsed, auth::ParseApiKey(*config.admin_key));
    Status ensured = EnsureApiKey(store, parsed, grant, now);
    if (ensured.code() == StatusCode::kFailedPrecondition) {
      return FailedPreconditionError(
          "CAIRN_ADMIN_KEY names an existing key id with another secret or a revoked key");
    }
    return ensured;
  }
  const std::string path = config.store.data_dir + "/" + kAdminKeyFile;
  ASSIGN_OR_RETURN(bool exists, platform::DefaultFileSystem()->Exists(path));
  if (exists) return OkStatus();
  ASSIGN_OR_RETURN(CreatedApiKey key, CreateApiKey(store, grant, now));
  RETURN_IF_ERROR(WriteSecretFile(path, key.full_text + "\n"));
  printf("admin API key: %s\n", key.full_text.c_str());
  printf("  (shown once; also saved in %s, mode 0600)\n", path.c_str());
  fflush(stdout);
  return OkStatus();
}

// Installs the bootstrap S3 key pair: the one in CAIRN_S3_ACCESS_KEY/SECRET_KEY, or on
// first start a new one that is printed once and kept in <data-dir>/s3.key (mode 0600).
Status BootstrapS3Key(meta::MetaStore* store, const auth::SecretBox& secrets,
                      const ServeConfig& config) {
  const TimestampMs now = platform::SystemClock()->NowMs();
  RETURN_IF_ERROR(ValidateName("S3 tenant", config.s3_tenant));
  KeyGrant grant{{config.s3_tenant}, meta::Scope::kAdmin, "bootstrap S3 key"};
  if (config.s3_access_key || config.s3_secret_key) {
    if (!config.s3_access_key || !config.s3_secret_key || config.s3_access_key->size() < 3 ||
        config.s3_secret_key->size() < 8) {
      return InvalidArgumentError(
          "set both CAIRN_S3_ACCESS_KEY (3+ characters) and CAIRN_S3_SECRET_KEY (8+)");
    }
    Status ensured =
        EnsureS3Key(store, secrets, *config.s3_access_key, *config.s3_secret_key, grant, now);
    if (ensured.code() == StatusCode::kFailedPrecondition) {
      return FailedPreconditionError(
          "CAIRN_S3_ACCESS_KEY names an existing key with another secret or a revoked key");
    }
    return ensured;
  }
  const std::string path = config.store.data_dir + "/" + kS3KeyFile;
  ASSIGN_OR_RETURN(bool exists, platform::DefaultFileSystem()->Exists(path));
  if (exists) return OkStatus();
  ASSIGN_OR_RETURN(CreatedS3Key key, CreateS3Key(store, secrets, grant, now));
  RETURN_IF_ERROR(WriteSecretFile(
      path, "access_key: " + key.access_key + "\nsecret_key: " + key.secret + "\n"));
  printf("S3 access key: %s\nS3 secret key: %s\n  (tenant '%s'; shown once; also saved in %s)\n",
         key.access_key.c_str(), key.secret.c_str(), config.s3_tenant.c_str(), path.c_str());
  fflush(stdout);
  return OkStatus();
}

std::string StoreGauges(meta::MetaStore* store) {
  std::string out;
  auto counts = store->CountObjects();
  if (counts.ok()) {
    metrics::AppendHeader(&out, "cairn_objects_total", "Objects by namespace, tenant and state.",
                          "gauge");
    for (const auto& row : *counts) {
      metrics::AppendSample(&out, "cairn_objects_total",
                            {{"namespace", row.namespace_name},
                             {"tenant", row.tenant},
                             {"status", std::string(ObjectStateName(row.state))}},
                            static_cast<double>(row.objects));
    }
  }
  auto bytes = store->StorageBytes();
  if (bytes.ok()) {
    metrics::AppendHeader(&out, "cairn_storage_bytes",
                          "Logical bytes of committed objects by storage class and namespace.",
                          "gauge");
    for (const auto& row : *bytes) {
      metrics::AppendSample(&out, "cairn_storage_bytes",
                            {{"storage_class", std::string(StorageClassName(row.storage_class))},
                             {"namespace", row.namespace_name}},
                            static_cast<double>(row.logical_bytes));
    }
  }
  return out;
}

std::string IntegrityMetrics(const objects::ObjectService& objects) {
  const objects::IntegrityCounters counters = objects.integrity_counters();
  std::string out;
  metrics::AppendHeader(&out, "cairn_chunk_verify_failures_total",
                        "Chunk reads or dedup checks that found a damaged chunk, by reason; "
                        "none of its bytes were served.",
                        "counter");
  const std::pair<const char*, uint64_t> reasons[] = {
      {"checksum_mismatch", counters.checksum_mismatch},
      {"missing", counters.missing},
      {"size_mismatch", counters.short_file},
      {"unreadable", counters.unreadable}};
  for (const auto& [reason, value] : reasons) {
    metrics::AppendSample(&out, "cairn_chunk_verify_failures_total", {{"reason", reason}},
                          static_cast<double>(value));
  }
  metrics::AppendHeader(&out, "cairn_chunks_healed_total",
                        "Damaged chunks replaced by a verified copy from an upload.", "counter");
  metrics::AppendSample(&out, "cairn_chunks_healed_total", {},
                        static_cast<double>(counters.healed));
  return out;
}

// Runs GC every interval until stopped, and before it, at most every
// kMaxMultipartExpiryPeriodMs (or half the expiry, if shorter), the multipart expiry pass.
class GcLoop {
 public:
  GcLoop(Stores* stores, metrics::Registry* registry, const ServeConfig& config,
         objects::MultipartService* multipart, int64_t multipart_expiry_ms)
      : stores_(stores),
        registry_(registry),
        config_(config),
        multipart_(multipart),
        multipart_expiry_ms_(multipart_expiry_ms) {}

  void Start() {
    if (config_.gc_interval_seconds <= 0) return;
    thread_ = std::thread([this] { Loop(); });
  }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Loop() {
    for (uint64_t run = 0;; ++run) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait_for(lock, std::chrono::seconds(config_.gc_interval_seconds),
                       [this] { return stopping_; });
        if (stopping_) return;
      }
      ExpireMultipartUploads();
      gc::GcOptions options;
      options.grace_ms = config_.gc_grace_seconds * 1000;
      options.stalled_upload_ms = config_.stalled_upload_seconds * 1000;
      // Listing every chunk file is the expensive part: do it every tenth run.
      options.sweep_orphans = run % 10 == 0;
      options.store_identity_verified = !stores_->store_id.empty();
      options.max_delete_fraction = config_.gc_max_delete_fraction;
      auto stats =
          gc::RunGc(stores_->meta.get(), stores_->chunks.get(), platform::SystemClock(), options);
      registry_->Increment("cairn_gc_runs_total", {{"result", stats.ok() ? "ok" : "error"}});
      if (stats.ok()) {
        registry_->Increment("cairn_gc_deleted_blobs_total", {},
                             static_cast<double>(stats->deleted_chunks));
        registry_->Increment("cairn_gc_quarantined_files_total", {},
                             static_cast<double>(stats->quarantined_orphan_files));
        registry_->Increment("cairn_gc_deleted_quarantined_files_total", {},
                             static_cast<double>(stats->deleted_quarantined_files));
        for (const std::string& moved : stats->quarantined) {
          fprintf(stderr, "cairn: gc: quarantined orphaned chunk %s\n", moved.c_str());
        }
        if (!stats->capped.empty()) {
          registry_->Increment("cairn_gc_capped_runs_total", {});
          fprintf(stderr, "cairn: gc: %s\n", stats->capped.c_str());
        }
        if (!stats->usage_fold_error.empty()) {
          fprintf(stderr, "cairn: gc: folding usage counters failed (next pass retries): %s\n",
                  stats->usage_fold_error.c_str());
        }
      } else {
        fprintf(stderr, "cairn: gc failed: %s\n", stats.status().ToString().c_str());
      }
    }
  }

  // Aborting an upload drops its parts' chunk references, so the GC run that follows (or
  // the first one after the grace period) reclaims their chunks as after an explicit abort.
  void ExpireMultipartUploads() {
    static constexpr int64_t kMaxMultipartExpiryPeriodMs = 10 * 60 * 1000;
    if (multipart_expiry_ms_ <= 0) return;
    const int64_t now = platform::SystemClock()->NowMs();
    const int64_t period = std::min(kMaxMultipartExpiryPeriodMs, multipart_expiry_ms_ / 2);
    if (last_multipart_expiry_ms_ != 0 && now - last_multipart_expiry_ms_ < period) return;
    last_multipart_expiry_ms_ = now;
    auto stats = multipart_->ExpireUploads(now - multipart_expiry_ms_);
    registry_->Increment("cairn_multipart_expiry_runs_total",
                         {{"result", stats.ok() ? "ok" : "error"}});
    if (!stats.ok()) {
      fprintf(stderr, "cairn: multipart expiry failed: %s\n", stats.status().ToString().c_str());
      return;
    }
    registry_->Increment("cairn_multipart_expired_uploads_total", {},
                         static_cast<double>(stats->expired_uploads));
    registry_->Increment("cairn_multipart_orphaned_parts_removed_total", {},
                         static_cast<double>(stats->orphaned_parts));
    if (stats->expired_uploads > 0 || stats->orphaned_parts > 0) {
      fprintf(stderr,
              "cairn: multipart expiry: aborted %llu uploads older than %s, removed %llu "
              "orphaned parts\n",
              static_cast<unsigned long long>(stats->expired_uploads),
              config_.multipart_expiry.c_str(),
              static_cast<unsigned long long>(stats->orphaned_parts));
    }
  }

  Stores* stores_;
  metrics::Registry* registry_;
  const ServeConfig& config_;
  objects::MultipartService* multipart_;
  const int64_t multipart_expiry_ms_;
  int64_t last_multipart_expiry_ms_ = 0;  // used by the loop thread only
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // GUARDED_BY(mutex_)
};

// Rotating metadata snapshots (--backup-meta). A failed backup is logged and counted,
// never fatal: serving matters more than one missed snapshot.
std::unique_ptr<backup::BackupLoop> StartBackups(const ServeConfig& config, int64_t interval_ms,
                                                 meta::MetaStore* store,
                                                 metrics::Registry* registry) {
  registry->DeclareCounter("cairn_meta_backups_total",
                           "Metadata snapshots written by --backup-meta, by result.");
  registry->Increment("cairn_meta_backups_total", {{"result", "ok"}}, 0);
  registry->Increment("cairn_meta_backups_total", {{"result", "error"}}, 0);
  if (interval_ms <= 0) return nullptr;
  backup::BackupOptions options;
  options.directory =
      config.backup_dir.empty() ? config.store.data_dir + "/backups" : config.backup_dir;
  options.keep = config.backup_keep;
  options.engine =
      meta::SnapshotEngineOfUrl(config.store.meta_url.empty() ? "sqlite:" : config.store.meta_url);
  if (config.gc_grace_seconds * 1000 < interval_ms) {
    // See docs/architecture.md: a restore of the newest snapshot finds every chunk it needs
    // only while the grace period is longer than the snapshot's age.
    fprintf(stderr,
            "cairn: warning: --gc-grace (%llds) is shorter than --backup-meta; restoring a "
            "snapshot may find chunks of objects deleted since it was taken already removed\n",
            static_cast<long long>(config.gc_grace_seconds));
  }
  auto loop = std::make_unique<backup::BackupLoop>(
      store, platform::DefaultFileSystem(), platform::SystemClock(), options, interval_ms,
      [registry](const Result<backup::SnapshotFile>& result) {
        registry->Increment("cairn_meta_backups_total", {{"result", result.ok() ? "ok" : "error"}});
        if (!result.ok()) {
          fprintf(stderr, "cairn: metadata backup failed: %s\n",
                  result.status().ToString().c_str());
        }
      });
  loop->Start();
  return loop;
}

// Each connection holds a descriptor: raises the soft open-file limit to the hard one, and
// lowers --max-connections where even that leaves too few (chunk files, the database and
// the listeners need descriptors too).
size_t RaiseOpenFileLimit(size_t max_connections) {
  constexpr rlim_t kReserved = 256;
  struct rlimit limit {};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return max_connections;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) (void)getrlimit(RLIMIT_NOFILE, &limit);
  }
  if (limit.rlim_cur == RLIM_INFINITY || max_connections == 0) return max_connections;
  const rlim_t usable = limit.rlim_cur > 2 * kReserved ? limit.rlim_cur - kReserved : kReserved;
  if (max_connections > usable) {
    fprintf(stderr,
            "cairn: --max-connections lowered from %zu to %zu: the open file limit is %llu\n",
            max_connections, static_cast<size_t>(usable),
            static_cast<unsigned long long>(limit.rlim_cur));
    return static_cast<size_t>(usable);
  }
  return max_connections;
}

}  // namespace

Result<std::pair<std::string, uint16_t>> ParseListenAddress(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return InvalidArgumentError("listen address '" + text + "' must be HOST:PORT");
  }
  std::string host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  char* end = nullptr;
  long port = strtol(text.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || port < 0 || port > 65535 || colon + 1 == text.size()) {
    return InvalidArgumentError("listen address '" + text + "' has a bad port");
  }
  return std::make_pair(host, static_cast<uint16_t>(port));
}

namespace {

// Restricts `path` to its owner if it exists; a file we cannot fix is only warned about.
void MakePrivate(const std::string& path, mode_t mode) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || S_ISLNK(st.st_mode)) return;
  if ((st.st_mode & 07777) == mode || ::chmod(path.c_str(), mode) == 0) return;
  fprintf(stderr, "cairn: warning: cannot make %s private (mode %o)\n", path.c_str(), mode);
}

// Every file and directory in a storage root made private, once per root: chunk files
// can be many, so the pass is recorded by a marker file and never repeated. The root
// itself is made 0700 on every open, which alone keeps other users out of what lies
// below it (they cannot traverse it).
void MakeRootPrivate(const std::string& root) {
  MakePrivate(root, 0700);
  const std::string marker = root + "/" + kPrivateModesMarker;
  std::error_code error;
  if (!std::filesystem::is_directory(root, error) || std::filesystem::exists(marker, error)) {
    return;
  }
  uint64_t changed = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(
           root, std::filesystem::directory_options::skip_permission_denied, error);
       !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
    if (it->is_symlink(error)) continue;
    const mode_t mode = it->is_directory(error) ? 0700 : 0600;
    struct stat st;
    if (::lstat(it->path().c_str(), &st) != 0 || (st.st_mode & 07777) == mode) continue;
    if (::chmod(it->path().c_str(), mode) == 0) ++changed;
  }
  if (error) {
    fprintf(stderr, "cairn: warning: cannot make every file in %s private: %s\n", root.c_str(),
            error.message().c_str());
    return;
  }
  int fd = ::open(marker.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) ::close(fd);
  if (changed > 0) {
    fprintf(stderr,
            "cairn: made %llu files and directories in %s private (an older release "
            "left them readable by others)\n",
            static_cast<unsigned long long>(changed), root.c_str());
  }
}

// Files an older release (or a umask) may have left readable by others: Cairn's files at
// the top of the data directory, and the metadata snapshots in backups/.
void MakeDataDirPrivate(const std::string& data_dir) {
  MakePrivate(data_dir, 0700);
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(data_dir, error)) {
    const std::string name = entry.path().filename().string();
    const bool ours = name.starts_with("meta.db") || name.starts_with(kMasterKeyFile) ||
                      name.starts_with("scrub.state") || name == kAdminKeyFile ||
                      name == kS3KeyFile || name == kBootstrapLockFile;
    if (ours && entry.is_regular_file(error) && !entry.is_symlink(error)) {
      MakePrivate(entry.path(), 0600);
    }
  }
  const std::string backups = data_dir + "/backups";
  MakePrivate(backups, 0700);
  for (const auto& entry : std::filesystem::directory_iterator(backups, error)) {
    if (entry.is_regular_file(error) && !entry.is_symlink(error)) MakePrivate(entry.path(), 0600);
  }
}

}  // namespace

Result<Stores> OpenStores(const StoreConfig& config) {
  platform::FileSystem* file_system = platform::DefaultFileSystem();
  RETURN_IF_ERROR(file_system->CreateDirectories(config.data_dir));
  MakeDataDirPrivate(config.data_dir);
  chunks::ChunkStoreOptions options;
  options.hot_root = config.hot_dir.empty() ? config.data_dir + "/hot" : config.hot_dir;
  options.cold_root = config.cold_dir.empty() ? config.data_dir + "/cold" : config.cold_dir;
  Stores stores;
  ASSIGN_OR_RETURN(stores.secrets, LoadSecretBox(file_system, config.data_dir, config.master_keys));
  ASSIGN_OR_RETURN(stores.chunks, chunks::ChunkStore::Open(file_system, options));
  MakeRootPrivate(options.hot_root);
  MakeRootPrivate(options.cold_root);
  std::string url =
      config.meta_url.empty() ? "sqlite://" + config.data_dir + "/meta.db" : config.meta_url;
  ASSIGN_OR_RETURN(stores.meta, meta::OpenMetaStore(url));
  gc::StoreIdentityOptions identity_options;
  identity_options.adopt_roots = config.adopt_roots;
  auto identity = gc::EnsureStoreIdentity(stores.meta.get(), stores.chunks.get(), identity_options);
  if (!identity.ok()) {
    return identity.status().WithContext("store identity (metadata " + meta::RedactMetaUrl(url) +
                                         ")");
  }
  if (!identity->action.empty()) fprintf(stderr, "cairn: %s\n", identity->action.c_str());
  stores.store_id = identity->store_id;
  return stores;
}

// What an unclean stop (kill -9, a crash, a power cut) leaves is invisible and reclaimed by
// GC; the next start says what it found, and removes at once the temp files no live writer
// holds (a writer holds its temp file's lock, so another node's uploads are left alone).
// Uploads still WRITING may belong to another node sharing the database: GC reaps them
// once they stall, never here.
void ReportUncleanStop(const Stores& stores, const ServeConfig& config) {
  uint64_t removed = 0, kept = 0;
  for (StorageClass storage_class : kAllStorageClasses) {
    auto temp_files = stores.chunks->ListTempFiles(storage_class);
    if (!temp_files.ok()) continue;
    for (const chunks::TempFileInfo& file : *temp_files) {
      if (stores.chunks->RemoveTempFile(file.path).ok()) {
        ++removed;
      } else {
        ++kept;
      }
    }
  }
  uint64_t writing = 0;
  auto counts = stores.meta->CountObjects();
  if (counts.ok()) {
    for (const auto& row : *counts) {
      if (row.state == ObjectState::kWriting) writing += row.objects;
    }
  }
  if (removed == 0 && writing == 0) return;
  fprintf(stderr,
          "cairn: found what an earlier stop left: %llu temp files removed (%llu held by "
          "live writers kept), %llu uploads in progress (invisible; GC reaps them once they "
          "stall for %lld s)\n",
          static_cast<unsigned long long>(removed), static_cast<unsigned long long>(kept),
          static_cast<unsigned long long>(writing),
          static_cast<long long>(std::max(config.gc_grace_seconds, config.stalled_upload_seconds)));
}

// A duration option where "0" (or nothing) means off: *ms is 0 then, else what `parse`
// makes of `text`. False, after saying why, when `parse` refuses it.
static bool ParseDurationOrOff(const char* flag, const std::string& text,
                               Result<int64_t> (*parse)(std::string_view), int64_t* ms) {
  *ms = 0;
  if (text == "0" || text.empty()) return true;
  Result<int64_t> parsed = parse(text);
  if (!parsed.ok()) {
    fprintf(stderr, "cairn: %s: %s\n", flag, parsed.status().message().c_str());
    return false;
  }
  *ms = *parsed;
  return true;
}

api::console::ConsoleDependencies ConsoleDependenciesFor(objects::ObjectService* objects,
                                                         objects::MultipartService* multipart,
                                                         auth::Authenticator* authenticator,
                                                         Stores* stores, std::string engine) {
  api::console::ConsoleDependencies deps;
  meta::MetaStore* meta_store = stores->meta.get();
  chunks::ChunkStore* chunk_store = stores->chunks.get();
  const auth::SecretBox* secrets = stores->secrets.get();
  deps.objects = objects;
  deps.multipart = multipart;
  deps.authenticator = authenticator;
  deps.secrets = secrets;
  deps.now_ms = [] { return platform::SystemClock()->NowMs(); };
  deps.list_keys = [meta_store]() -> Result<std::vector<api::console::KeyView>> {
    ASSIGN_OR_RETURN(std::vector<KeyInfo> keys, ListKeys(meta_store));
    std::vector<api::console::KeyView> out;
    for (KeyInfo& key : keys) {
      out.push_back(api::console::KeyView{std::move(key.id), key.s3, key.scope, key.revoked,
                                          key.created_at_ms, std::move(key.tenants),
                                          std::move(key.description)});
    }
    return out;
  };
  deps.create_key = [meta_store,
                     secrets](const api::console::NewKey& key) -> Result<api::console::CreatedKey> {
    KeyGrant grant{key.tenants, key.scope, key.description};
    RETURN_IF_ERROR(ValidateGrant(grant, key.s3));
    const TimestampMs now = platform::SystemClock()->NowMs();
    if (key.s3) {
      ASSIGN_OR_RETURN(CreatedS3Key created, CreateS3Key(meta_store, *secrets, grant, now));
      return api::console::CreatedKey{created.access_key, created.secret};
    }
    ASSIGN_OR_RETURN(CreatedApiKey created, CreateApiKey(meta_store, grant, now));
    return api::console::CreatedKey{created.key_id, created.full_text};
  };
  deps.revoke_key = [meta_store](const std::string& id) { return RevokeKey(meta_store, id); };
  deps.store_figures = [meta_store, chunk_store, engine]() -> Result<api::console::StoreFigures> {
    api::console::StoreFigures figures;
    figures.engine = engine;
    ASSIGN_OR_RETURN(StoreSummary summary, SummarizeStore(meta_store, chunk_store));
    auto committed = summary.objects_by_state.find("COMMITTED");
    figures.objects = committed == summary.objects_by_state.end() ? 0 : committed->second;
    figures.logical_bytes = summary.logical_bytes;
    figures.chunks = summary.chunks;
    figures.chunk_bytes = summary.chunk_bytes;
    figures.inline_bytes = summary.inline_bytes;
    figures.unreferenced_chunks = summary.unreferenced_chunks;
    for (StorageClass storage_class : kAllStorageClasses) {
      api::console::StorageRoot root;
      root.storage_class = storage_class;
      struct statvfs fs;
      if (::statvfs(chunk_store->RootOf(storage_class).c_str(), &fs) == 0) {
        root.free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
        root.total_bytes = static_cast<uint64_t>(fs.f_blocks) * fs.f_frsize;
      }
      root.writable = summary.writable;
      auto per_class = summary.by_class.find(storage_class);
      if (per_class != summary.by_class.end()) {
        root.logical_bytes = per_class->second.logical_bytes;
        root.chunks = per_class->second.chunks;
        root.chunk_bytes = per_class->second.chunk_bytes;
        root.inline_bytes = per_class->second.inline_bytes;
      }
      figures.roots.push_back(root);
    }
    figures.metadata = meta_store->Ping();
    ASSIGN_OR_RETURN(std::vector<meta::ObjectCountRow> counts, meta_store->CountObjects());
    std::set<std::string> tenants;
    for (const meta::ObjectCountRow& row : counts) tenants.insert(row.tenant);
    // A tenant whose buckets are all empty holds no object but is still there.
    ASSIGN_OR_RETURN(std::vector<std::string> with_buckets, meta_store->NamespaceTenants());
    tenants.insert(with_buckets.begin(), with_buckets.end());
    figures.tenants.assign(tenants.begin(), tenants.end());
    auto volume = SummarizeVolume(meta_store, platform::SystemClock()->NowMs(), /*usage=*/false);
    if (volume.ok() && *volume) {
      figures.volume = (*volume)->volume.name;
      const TimestampMs now = platform::SystemClock()->NowMs();
      for (const meta::SessionRecord& session : (*volume)->sessions) {
        figures.mounts.push_back(api::console::Mount{session, now < session.expires_ms});
      }
    }
    return figures;
  };
  return deps;
}

int Serve(const ServeConfig& config) {
  auto listen = ParseListenAddress(config.listen);
  if (!listen.ok()) {
    fprintf(stderr, "cairn: %s\n", listen.status().ToString().c_str());
    return 2;
  }
  if (config.access_log != "on" && config.access_log != "off") {
    fprintf(stderr, "cairn: --access-log must be on or off\n");
    return 2;
  }
  int64_t backup_interval_ms = 0, multipart_expiry_ms = 0;
  if (!ParseDurationOrOff("--backup-meta", config.backup_meta_interval, backup::ParseDurationMs,
                          &backup_interval_ms) ||
      !ParseDurationOrOff("--multipart-expiry", config.multipart_expiry, scrub::ParseIntervalMs,
                          &multipart_expiry_ms)) {
    return 2;
  }
  scrub::ScrubLoopOptions scrub_options;
  scrub_options.state_path = scrub::ScrubStatePath(config.store.data_dir);
  {
    auto rate = scrub::ParseByteRate(config.scrub_rate);
    auto interval = scrub::ParseIntervalMs(config.scrub_interval);
    if (!rate.ok() || !interval.ok()) {
      fprintf(stderr, "cairn: %s: %s\n", rate.ok() ? "--scrub-interval" : "--scrub-rate",
              (rate.ok() ? interval.status() : rate.status()).message().c_str());
      return 2;
    }
    scrub_options.max_rate_bytes_per_second = *rate;
    scrub_options.interval_ms = *interval;
  }
  uint64_t min_body_rate = 0, upload_memory_bytes = 0, max_object_bytes = 0;
  {
    auto rate = scrub::ParseByteRate(config.min_body_rate);
    auto memory = scrub::ParseByteSize(config.upload_memory);
    auto max_size = scrub::ParseByteSize(config.max_object_size);
    for (const auto& [option, parsed] :
         {std::pair{"--min-body-rate", &rate}, std::pair{"--upload-memory", &memory},
          std::pair{"--max-object-size", &max_size}}) {
      if (!parsed->ok()) {
        fprintf(stderr, "cairn: %s: %s\n", option, parsed->status().message().c_str());
        return 2;
      }
    }
    if (*max_size == 0) {
      fprintf(stderr, "cairn: --max-object-size must be positive\n");
      return 2;
    }
    min_body_rate = *rate;
    upload_memory_bytes = *memory;
    max_object_bytes = *max_size;
  }
  const size_t max_connections = RaiseOpenFileLimit(config.max_connections);
  auto opened = OpenStores(config.store);
  if (!opened.ok()) {
    fprintf(stderr, "cairn: cannot open the stores: %s\n", opened.status().ToString().c_str());
    return 1;
  }
  Stores stores = std::move(opened).value();
  ReportUncleanStop(stores, config);
  {
    auto bootstrap_lock = BootstrapLock::Acquire(config.store.data_dir);
    if (!bootstrap_lock.ok()) {
      fprintf(stderr, "cairn: %s\n", bootstrap_lock.status().ToString().c_str());
      return 1;
    }
    // Every S3 secret must open with this server's keys (a server given the wrong master
    // key refuses to start rather than reject those keys' requests), and plaintext ones
    // left by an older release are encrypted now, in one transaction.
    auto sealed = SealS3Secrets(stores.meta.get(), *stores.secrets, /*reseal=*/false);
    if (!sealed.ok()) {
      fprintf(stderr, "cairn: S3 secrets: %s\n", sealed.status().ToString().c_str());
      return 1;
    }
    if (sealed->sealed > 0) {
      fprintf(stderr, "cairn: encrypted the secrets of %zu S3 keys at rest with master key %s\n",
              sealed->sealed, stores.secrets->primary_id().c_str());
    }
    Status bootstrap = BootstrapAdminKey(stores.meta.get(), config);
    if (!bootstrap.ok()) {
      fprintf(stderr, "cairn: admin key: %s\n", bootstrap.ToString().c_str());
      return 1;
    }
    if (!config.s3_listen.empty()) {
      Status s3_bootstrap = BootstrapS3Key(stores.meta.get(), *stores.secrets, config);
      if (!s3_bootstrap.ok()) {
        fprintf(stderr, "cairn: S3 key: %s\n", s3_bootstrap.ToString().c_str());
        return 1;
      }
    }
  }

  // Upload buffers (1 MiB pieces, 4 MiB chunks) come from mmap and go back to the system
  // when freed. Left to itself, glibc raises this threshold after the first such free and
  // then keeps freed buffers in per-thread arenas, one set per pool thread, so RSS would
  // grow with the number of threads that ever handled an upload.
  mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
  objects::ObjectServiceOptions object_options;
  object_options.inline_threshold_bytes = config.inline_threshold_bytes;
  objects::ObjectService objects(stores.meta.get(), stores.chunks.get(), platform::SystemClock(),
                                 object_options);
  auth::Authenticator authenticator(stores.meta.get(), config.jwt_secret);
  scrub::ScrubLoop scrub_loop(&objects, scrub_options);
  metrics::Registry registry;
  api::DeclareRequestMetrics(&registry);
  registry.DeclareCounter("cairn_gc_runs_total", "Garbage collection runs.");
  registry.DeclareCounter("cairn_gc_deleted_blobs_total", "Chunk files removed by GC.");
  registry.Increment("cairn_gc_runs_total", {{"result", "ok"}}, 0);
  registry.Increment("cairn_gc_deleted_blobs_total", {}, 0);
  registry.DeclareCounter("cairn_gc_quarantined_files_total",
                          "Orphaned chunk files GC moved into a quarantine directory.");
  registry.DeclareCounter("cairn_gc_deleted_quarantined_files_total",
                          "Quarantined files GC deleted after the grace period.");
  registry.DeclareCounter("cairn_gc_capped_runs_total",
                          "GC runs that stopped at --gc-max-delete-fraction.");
  registry.Increment("cairn_gc_quarantined_files_total", {}, 0);
  registry.Increment("cairn_gc_deleted_quarantined_files_total", {}, 0);
  registry.Increment("cairn_gc_capped_runs_total", {}, 0);
  registry.Increment("cairn_throttled_requests_total", {{"tenant", ""}}, 0);
  registry.DeclareCounter("cairn_multipart_expiry_runs_total",
                          "Passes that abort multipart uploads older than --multipart-expiry.");
  registry.DeclareCounter("cairn_multipart_expired_uploads_total",
                          "Incomplete multipart uploads aborted for being older than "
                          "--multipart-expiry.");
  registry.DeclareCounter("cairn_multipart_orphaned_parts_removed_total",
                          "Parts of multipart uploads that no longer existed, removed.");
  registry.Increment("cairn_multipart_expiry_runs_total", {{"result", "ok"}}, 0);
  registry.Increment("cairn_multipart_expired_uploads_total", {}, 0);
  registry.Increment("cairn_multipart_orphaned_parts_removed_total", {}, 0);
  http::BlockingPool pool(config.blocking_threads);
  api::RateLimiter rate_limiter(config.rate_limit);
  // Uploads wait up to 10 s for room in the budget before SlowDown.
  api::UploadMemory upload_memory(upload_memory_bytes, std::chrono::seconds(10));

  meta::MetaStore* meta_store = stores.meta.get();
  chunks::ChunkStore* chunk_store = stores.chunks.get();
  api::NativeApiDependencies deps;
  deps.objects = &objects;
  deps.authenticator = &authenticator;
  deps.metrics = &registry;
  deps.pool = &pool;
  deps.rate_limiter = &rate_limiter;
  deps.upload_memory = &upload_memory;
  deps.max_object_bytes = max_object_bytes;
  deps.access_log = config.access_log == "on";
  deps.readiness = [meta_store, chunk_store]() -> Status {
    Status status = meta_store->Ping();
    if (!status.ok()) return status.WithContext("metadata store");
    return chunk_store->CheckWritable();
  };
  // /health is polled (load balancers, orchestrators, the harness at 20 Hz): what it reads
  // of the stores is reused for a second, so a probe costs at most one read and one probe
  // file per second.
  struct HealthCache {
    std::mutex mutex;
    std::optional<std::chrono::steady_clock::time_point> at;  // GUARDED_BY(mutex)
    api::StorageHealth last;                                  // GUARDED_BY(mutex)
  };
  auto health_cache = std::make_shared<HealthCache>();
  deps.storage_health = [meta_store, chunk_store, health_cache]() {
    const auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard<std::mutex> lock(health_cache->mutex);
      if (health_cache->at && now - *health_cache->at < std::chrono::seconds(1)) {
        return health_cache->last;
      }
    }
    api::StorageHealth health;
    // Sessions only: the usage reads every inode row, too much for a probe.
    auto volume = SummarizeVolume(meta_store, platform::SystemClock()->NowMs(), /*usage=*/false);
    if (!volume.ok()) {
      health.metadata = volume.status();
    } else if (*volume) {
      health.volume = (*volume)->volume.name;
      health.mounts_alive = (*volume)->mounts_alive;
    }
    health.chunk_store = chunk_store->CheckWritable();
    std::lock_guard<std::mutex> lock(health_cache->mutex);
    health_cache->at = now;
    health_cache->last = health;
    return health;
  };
  deps.extra_metrics = [meta_store, &objects, &scrub_loop]() {
    return StoreGauges(meta_store) + IntegrityMetrics(objects) + scrub_loop.RenderMetrics();
  };
  api::NativeApi native(deps);

  http::HttpServer server;
  server.SetMaxConnections(max_connections);
  http::ListenerOptions listener;
  listener.host = listen->first;
  listener.port = listen->second;
  listener.max_header_bytes = config.max_header_bytes;
  listener.min_body_rate = min_body_rate;
  auto port = server.AddListener(
      listener, [&native](http::Exchange& exchange) { return native.Handle(exchange); },
      api::RenderJsonError);
  if (!port.ok()) {
    fprintf(stderr, "cairn: %s\n", port.status().ToString().c_str());
    return 1;
  }
  objects::MultipartService multipart(&objects);
  multipart.SetMaxObjectBytes(max_object_bytes);
  std::unique_ptr<api::S3Api> s3_api;
  uint16_t s3_port = 0;
  std::string s3_host;
  if (!config.s3_listen.empty()) {
    auto s3_address = ParseListenAddress(config.s3_listen);
    if (!s3_address.ok()) {
      fprintf(stderr, "cairn: --s3-listen: %s\n", s3_address.status().ToString().c_str());
      return 2;
    }
    api::S3ApiDependencies s3_deps;
    s3_deps.objects = &objects;
    s3_deps.multipart = &multipart;
    s3_deps.metrics = &registry;
    s3_deps.pool = &pool;
    s3_deps.rate_limiter = &rate_limiter;
    s3_deps.upload_memory = &upload_memory;
    s3_deps.max_object_bytes = max_object_bytes;
    s3_deps.virtual_host_bases = config.s3_domains;
    s3_deps.region = config.s3_region;
    s3_deps.secrets = stores.secrets.get();
    s3_deps.access_log = config.access_log == "on";
    s3_api = std::make_unique<api::S3Api>(std::move(s3_deps));
    http::ListenerOptions s3_listener;
    s3_listener.host = s3_address->first;
    s3_listener.port = s3_address->second;
    s3_listener.max_header_bytes = config.max_header_bytes;
    s3_listener.min_body_rate = min_body_rate;
    api::S3Api* handler = s3_api.get();
    auto bound = server.AddListener(
        s3_listener, [handler](http::Exchange& exchange) { return handler->Handle(exchange); },
        api::RenderS3ServerError);
    if (!bound.ok()) {
      fprintf(stderr, "cairn: %s\n", bound.status().ToString().c_str());
      return 1;
    }
    s3_port = *bound;
    s3_host = s3_address->first;
  }
  std::unique_ptr<api::console::Console> console;
  std::unique_ptr<api::console::ConsoleApi> console_api;
  uint16_t console_port = 0;
  std::string console_host;
  if (!config.console_listen.empty()) {
    auto console_address = ParseListenAddress(config.console_listen);
    if (!console_address.ok()) {
      fprintf(stderr, "cairn: --console-listen: %s\n", console_address.status().ToString().c_str());
      return 2;
    }
    const std::string engine = meta::SnapshotEngineOfUrl(
        config.store.meta_url.empty() ? "sqlite://" + config.store.data_dir + "/meta.db"
                                      : config.store.meta_url);
    api::console::ConsoleDependencies console_deps =
        ConsoleDependenciesFor(&objects, &multipart, &authenticator, &stores, engine);
    console_deps.max_object_bytes = max_object_bytes;
    metrics::Registry* request_registry = &registry;
    console_deps.request_totals = [request_registry]() {
      auto status_in = [](const metrics::Labels& labels, char first) {
        for (const auto& label : labels) {
          if (label.first == "status") return !label.second.empty() && label.second[0] == first;
        }
        return false;
      };
      auto sum = [&](const std::function<bool(const metrics::Labels&)>& keep) {
        return static_cast<uint64_t>(request_registry->SumCounter("cairn_requests_total", keep));
      };
      api::console::RequestTotals totals;
      totals.requests = sum([](const metrics::Labels&) { return true; });
      totals.client_errors = sum([&](const metrics::Labels& l) { return status_in(l, '4'); });
      totals.server_errors = sum([&](const metrics::Labels& l) { return status_in(l, '5'); });
      return totals;
    };
    // The console's GC and fsck are the server's own passes (its grace and caps); fsck
    // only checks.
    Stores* store_set = &stores;
    // A pass's progress, as the console's job list shows it.
    auto progress_of = [](const api::console::JobProgressFn& report) {
      return [report](const gc::Progress& progress) {
        report(api::console::JobProgress{progress.phase, progress.done, progress.total});
      };
    };
    console_deps.run_gc =
        [store_set, &config, progress_of](
            const api::console::JobProgressFn& report) -> Result<api::console::JobOutcome> {
      gc::GcOptions options;
      options.on_progress = progress_of(report);
      options.grace_ms = config.gc_grace_seconds * 1000;
      options.stalled_upload_ms = config.stalled_upload_seconds * 1000;
      options.store_identity_verified = !store_set->store_id.empty();
      options.max_delete_fraction = config.gc_max_delete_fraction;
      ASSIGN_OR_RETURN(gc::GcStats stats, gc::RunGc(store_set->meta.get(), store_set->chunks.get(),
                                                    platform::SystemClock(), options));
      api::console::JobOutcome outcome;
      outcome.counts = {{"reaped_uploads", stats.reaped_uploads},
                        {"purged_objects", stats.purged_objects},
                        {"deleted_chunks", stats.deleted_chunks},
                        {"deleted_chunk_bytes", stats.deleted_chunk_bytes},
                        {"quarantined_orphan_files", stats.quarantined_orphan_files}};
      outcome.note = stats.capped;
      if (!stats.usage_fold_error.empty()) {
        outcome.note += std::string(outcome.note.empty() ? "" : "; ") +
                        "folding usage counters failed: " + stats.usage_fold_error;
      }
      return outcome;
    };
    console_deps.run_fsck =
        [store_set, &config, progress_of](
            const api::console::JobProgressFn& progress) -> Result<api::console::JobOutcome> {
      gc::FsckOptions options;
      options.on_progress = progress_of(progress);
      options.repair = false;
      options.grace_ms = config.gc_grace_seconds * 1000;
      options.store_identity_verified = !store_set->store_id.empty();
      ASSIGN_OR_RETURN(gc::FsckReport report,
                       gc::RunFsck(store_set->meta.get(), store_set->chunks.get(),
                                   platform::SystemClock(), options));
      api::console::JobOutcome outcome;
      outcome.counts = {{"chunks_checked", report.chunks_checked},
                        {"objects_checked", report.objects_checked},
                        {"missing_chunks", report.missing_chunks.size()},
                        {"corrupt_chunks", report.corrupt_chunks.size()},
                        {"orphaned_chunks", report.orphaned_chunks.size()},
                        {"wrong_ref_counts", report.wrong_ref_counts.size()},
                        {"wrong_usage_counters", report.wrong_usage_counters.size()},
                        {"affected_objects", report.affected_objects.size()}};
      outcome.ok = report.ok();
      if (!report.metadata_problems.empty()) outcome.note = report.metadata_problems.front();
      return outcome;
    };
    if (s3_port != 0) {
      // Share links: presigned GETs on the S3 listener, signed with the session's key.
      meta::MetaStore* key_store = stores.meta.get();
      const auth::SecretBox* secret_box = stores.secrets.get();
      console_deps.presign = [key_store, secret_box, s3_host, s3_port, region = config.s3_region](
                                 const api::console::ShareRequest& share) -> Result<std::string> {
        ASSIGN_OR_RETURN(meta::S3KeyRecord key, key_store->GetS3Key(share.access_key));
        ASSIGN_OR_RETURN(std::string secret, secret_box->Open(key.access_key, key.secret));
        // A wildcard listener has no name of its own: the name the console was reached at.
        std::string host = s3_host;
        if (host == "0.0.0.0" || host == "::" || host.empty()) {
          host = share.console_host.substr(0, share.console_host.rfind(':'));
        }
        const std::string authority = host + ":" + std::to_string(s3_port);
        api::s3::SigningRequest request;
        request.method = "GET";
        request.raw_path = "/" + api::s3::UriEncode(share.bucket, true) + "/" +
                           api::s3::UriEncode(share.key, false);
        request.headers = {{"host", authority}};
        request.now_ms = platform::SystemClock()->NowMs();
        api::s3::SigningCredentials credentials{key.access_key, secret, region, "s3"};
        ASSIGN_OR_RETURN(auto query, api::s3::Presign(request, credentials, share.expires_seconds));
        return "http://" + authority + request.raw_path + "?" + api::s3::EncodeQuery(query);
      };
    }
    console = std::make_unique<api::console::Console>(std::move(console_deps));
    console_api = std::make_unique<api::console::ConsoleApi>(
        console.get(), &pool, config.access_log == "on", &upload_memory);
    http::ListenerOptions console_listener;
    console_listener.host = console_address->first;
    console_listener.port = console_address->second;
    console_listener.max_header_bytes = config.max_header_bytes;
    console_listener.min_body_rate = min_body_rate;
    api::console::ConsoleApi* handler = console_api.get();
    auto bound = server.AddListener(
        console_listener, [handler](http::Exchange& exchange) { return handler->Handle(exchange); },
        api::RenderJsonError);
    if (!bound.ok()) {
      fprintf(stderr, "cairn: %s\n", bound.status().ToString().c_str());
      return 1;
    }
    console_port = *bound;
    console_host = console_address->first;
    // Only the names of this address answer (DNS rebinding); a wildcard address answers to
    // any name, as it cannot know its own.
    const std::string port_text = ":" + std::to_string(console_port);
    if (console_host != "0.0.0.0" && console_host != "::" && !console_host.empty()) {
      std::vector<std::string> hosts{console_host + port_text};
      if (console_host == "127.0.0.1" || console_host == "::1") {
        hosts.push_back("localhost" + port_text);
      }
      console->SetAllowedHosts(std::move(hosts));
    }
  }
  GcLoop gc_loop(&stores, &registry, config, &multipart, multipart_expiry_ms);
  gc_loop.Start();
  scrub_loop.Start();
  std::unique_ptr<backup::BackupLoop> backups =
      StartBackups(config, backup_interval_ms, stores.meta.get(), &registry);
  server.StopOnSignals([] { fprintf(stderr, "cairn: stopping: draining connections\n"); });
  printf("cairn: native API listening on http://%s:%u\n", listen->first.c_str(), *port);
  if (s3_port != 0) {
    printf("cairn: S3 API listening on http://%s:%u (region %s)\n", s3_host.c_str(), s3_port,
           config.s3_region.c_str());
  }
  if (console_port != 0) {
    printf("cairn: web console on http://%s:%u (sign in with an API key or an S3 key pair)\n",
           console_host.c_str(), console_port);
  }
  // Never the database password: logs are read by more people than the secret store.
  const std::string meta_url = config.store.meta_url.empty()
                                   ? "sqlite://" + config.store.data_dir + "/meta.db"
                                   : meta::RedactMetaUrl(config.store.meta_url);
  printf("cairn: data in %s, metadata %s\n", config.store.data_dir.c_str(), meta_url.c_str());
  fflush(stdout);
  server.Run(config.io_threads, config.shutdown_timeout_seconds);
  // Small PUTs still committing (only if the drain timed out) report to the event loop,
  // which must outlive them.
  meta_store->WaitForAsyncWrites();
  gc_loop.Stop();
  scrub_loop.Stop();
  if (backups) backups->Stop();
  pool.Stop();
  fprintf(stderr, "cairn: stopped\n");
  return 0;
}

}  // namespace cairn::server
