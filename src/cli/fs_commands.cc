#include "cli/fs_commands.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "backup/backup.h"
#include "chunks/chunk_cache.h"
#include "client/http_client.h"
#include "core/text.h"
#include "core/version.h"
#include "meta/engines/open_meta_store.h"
#include "meta/snapshot.h"
#include "mount/file_data.h"
#include "mount/fuse_mount.h"
#include "mount/mount_metrics.h"
#include "mount/remote_chunks.h"
#include "mount/session.h"
#include "objects/object_service.h"
#include "platform/clock.h"
#include "platform/file_system.h"

namespace cairn::cli {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::optional<server::Stores> OpenOrReport(const server::StoreConfig& config, int* exit_code) {
  auto stores = server::OpenStores(config);
  if (!stores.ok()) {
    fprintf(stderr, "cairn: cannot open the stores: %s\n", stores.status().ToString().c_str());
    *exit_code = 1;
    return std::nullopt;
  }
  return std::move(stores).value();
}

meta::FileTree* TreeOrReport(server::Stores& stores, const std::string& meta_url, int* exit_code) {
  meta::FileTree* tree = stores.meta->file_tree();
  if (tree == nullptr) {
    fprintf(stderr, "cairn: the metadata engine of %s keeps no filesystem\n", meta_url.c_str());
    *exit_code = 1;
  }
  return tree;
}

void AddFormat(CLI::App& app,
               const std::function<void(CLI::App*, server::StoreConfig*)>& add_store_options,
               int* exit_code) {
  struct Args {
    server::StoreConfig store;
    std::string name;
    uint32_t trash_days = 7;
  };
  auto args = std::make_shared<Args>();
  CLI::App* command = app.add_subcommand(
      "format",
      "Create the filesystem volume of a metadata store (again with the same name: "
      "nothing changes)");
  add_store_options(command, &args->store);
  command->add_option("META_URL", args->store.meta_url, "Metadata store URL")->required();
  command->add_option("NAME", args->name, "Volume name: 1..64 of [A-Za-z0-9._-]")->required();
  command->add_option("--trash-days", args->trash_days, "Days deleted files stay in .trash")
      ->envname("CAIRN_TRASH_DAYS")
      ->check(CLI::Range(uint32_t{0}, fs::kMaxTrashDays))
      ->capture_default_str();
  command->callback([args, exit_code] {
    auto stores = OpenOrReport(args->store, exit_code);
    if (!stores) return;
    meta::FileTree* tree = TreeOrReport(*stores, args->store.meta_url, exit_code);
    if (tree == nullptr) return;
    const int64_t now = NowNs();
    meta::VolumeRecord requested;
    requested.name = args->name;
    requested.uuid = platform::NewObjectId().ToString();
    requested.created_ms = now / 1'000'000;
    requested.trash_days = args->trash_days;
    meta::InodeRecord root;
    root.type = meta::FileType::kDirectory;
    // Shared by the users and containers of every mount (as /tmp is, without the sticky
    // bit): tighten with chmod after the first mount.
    root.mode = 0777;
    root.nlink = 2;
    root.atime_ns = root.mtime_ns = root.ctime_ns = root.btime_ns = now;
    Result<meta::VolumeRecord> volume = tree->FormatVolume(requested, root);
    if (!volume.ok()) {
      fprintf(stderr, "cairn format: %s\n", volume.status().ToString().c_str());
      *exit_code = 1;
      return;
    }
    printf("volume %s (uuid %s, trash %u days) in %s\n", volume->name.c_str(), volume->uuid.c_str(),
           volume->trash_days, args->store.meta_url.c_str());
  });
}

std::string RealPath(const std::string& path) {
  char real[PATH_MAX] = {};
  return realpath(path.c_str(), real) != nullptr ? std::string(real) : path;
}

// --backup-meta of a mount: the rotating snapshots of `cairn serve --backup-meta`
// (backup/backup.h), written by the mount process. The mounts of a volume share the
// directory and take turns: each skips its turn while the newest snapshot there is younger
// than half the interval, so they write one about every half to one interval together.
struct MountBackupArgs {
  std::string interval = "0";
  std::string directory;  // default <data-dir>/backups
  int keep = 24;
  int64_t interval_ms = 0;  // parsed from `interval`
};

std::unique_ptr<backup::BackupLoop> StartMountBackups(const MountBackupArgs& args,
                                                      const server::StoreConfig& store,
                                                      meta::MetaStore* meta) {
  if (args.interval_ms <= 0) return nullptr;
  backup::BackupOptions options;
  options.directory = args.directory.empty() ? store.data_dir + "/backups" : args.directory;
  options.keep = args.keep;
  options.engine = meta::SnapshotEngineOfUrl(store.meta_url);
  options.min_age_ms = args.interval_ms / 2;
  auto loop = std::make_unique<backup::BackupLoop>(
      meta, platform::DefaultFileSystem(), platform::SystemClock(), options, args.interval_ms,
      [](const Result<backup::SnapshotFile>& result) {
        if (!result.ok()) {
          fprintf(stderr, "cairn mount: metadata backup failed: %s\n",
                  result.status().ToString().c_str());
        }
      });
  loop->Start();
  return loop;
}

// --storage http://HOST:PORT and its API key.
struct RemoteStorageArgs {
  std::string url;
  std::string key;
};
// How long one request to the --storage server may take before the operation fails (EIO)
// instead of hanging.
constexpr int kRemoteTimeoutSeconds = 10;

// Runs the mount in this process; `ready` reports the outcome of mounting.
int RunMount(const server::StoreConfig& store, mount::MountOptions options,
             mount::FileDataOptions data_options, double heartbeat_seconds,
             const std::optional<std::pair<std::string, uint16_t>>& metrics_listen,
             const std::function<void(const Status&)>& ready, const MountBackupArgs& backups,
             const chunks::ChunkCacheOptions& cache_options, int64_t trash_days,
             const RemoteStorageArgs& remote_args) {
  int exit_code = 0;
  // glibc hands a thread heap's free top back to the kernel once 128 KiB lie there, and
  // each hand-back (madvise, or munmap of a large buffer) interrupts every thread of this
  // many-threaded process to flush its TLB: about one per unlink. Up to 8 MiB stay (the
  // mapping threshold is raised with the trim one, which would otherwise freeze it at
  // 128 KiB and map every block buffer afresh). Measured: +15% unlinks, same peak RSS.
  mallopt(M_TRIM_THRESHOLD, 8 << 20);
  mallopt(M_MMAP_THRESHOLD, 8 << 20);
  // With --storage http:// only the metadata store is opened here: the chunks are the
  // server's, and this host may not even have its chunk directories.
  server::Stores stores;
  std::unique_ptr<mount::RemoteChunks> remote;
  if (remote_args.url.empty()) {
    auto opened = server::OpenStores(store);
    if (!opened.ok()) {
      ready(opened.status().WithContext("opening the stores"));
      return 1;
    }
    stores = std::move(opened).value();
    // Files are stored one small chunk after another: their temp files are made ahead.
    if (!options.read_only) stores.chunks->KeepSpareTempFiles(data_options.storage_class, 16);
  } else {
    auto meta_store = meta::OpenMetaStore(store.meta_url);
    if (!meta_store.ok()) {
      ready(meta_store.status().WithContext("opening the metadata store"));
      return 1;
    }
    stores.meta = std::move(meta_store).value();
    Result<std::optional<std::string>> store_id = stores.meta->GetStoreIdentity();
    if (!store_id.ok()) {
      ready(store_id.status().WithContext("reading the metadata store's identity"));
      return 1;
    }
    auto connected = mount::RemoteChunks::Connect(remote_args.url, remote_args.key,
                                                  store_id->value_or(""), kRemoteTimeoutSeconds);
    if (!connected.ok()) {
      ready(connected.status());
      return 1;
    }
    remote = std::move(connected).value();
  }
  meta::FileTree* tree = stores.meta->file_tree();
  if (tree == nullptr) {
    ready(FailedPreconditionError("the metadata engine of " + store.meta_url +
                                  " keeps no filesystem"));
    return 1;
  }
  Result<std::optional<meta::VolumeRecord>> volume = tree->GetVolume();
  if (!volume.ok() || !*volume) {
    ready(volume.ok() ? FailedPreconditionError("no volume in " + store.meta_url +
                                                ": run cairn format first")
                      : volume.status());
    return 1;
  }
  options.volume_name = (*volume)->name;
  // --trash-days sets the volume's value (what `cairn format --trash-days` set): the trash is
  // one directory for the whole volume, so one value serves every mount of it.
  if (trash_days >= 0 && static_cast<uint32_t>(trash_days) != (*volume)->trash_days) {
    if (options.read_only) {
      ready(FailedPreconditionError(
          "--trash-days " + std::to_string(trash_days) + " would change volume " + (*volume)->name +
          " (it keeps deleted files " + std::to_string((*volume)->trash_days) +
          " days), which a read-only mount does not do"));
      return 1;
    }
    fs::FileSystem setter(tree, fs::Options{});
    Result<uint32_t> before = setter.SetTrashDays(static_cast<uint32_t>(trash_days));
    if (!before.ok()) {
      ready(before.status().WithContext("setting the volume's trash days"));
      return 1;
    }
    fprintf(stderr,
            "cairn mount: volume %s now keeps deleted files in .trash %lld days (was %u); "
            "every mount of it follows\n",
            (*volume)->name.c_str(), static_cast<long long>(trash_days), *before);
  }
  std::unique_ptr<chunks::ChunkCache> cache;
  if (!cache_options.directory.empty()) {
    auto opened = chunks::ChunkCache::Open(platform::DefaultFileSystem(), cache_options);
    if (!opened.ok()) {
      ready(opened.status().WithContext("opening --cache-dir"));
      return 1;
    }
    cache = std::move(opened).value();
    // With --storage http:// the copies are of the server's chunks: most worth keeping.
    if (remote) remote->set_cache(cache.get());
  }
  objects::ObjectServiceOptions object_options;
  object_options.read_cache = cache.get();
  std::optional<objects::ObjectService> objects;  // local chunks only
  if (stores.chunks) {
    objects.emplace(stores.meta.get(), stores.chunks.get(), platform::SystemClock(),
                    object_options);
  }
  objects::ObjectService* object_service = objects ? &*objects : nullptr;
  data_options.remote = remote.get();
  std::unique_ptr<mount::FileData> data;
  // The session id names this mount's change rows, orphans, locks and staging owner; it is
  // chosen (at random) before anything is written.
  fs::FileSystem reclaimer(tree, fs::Options{});
  mount::SessionOptions session_options;
  session_options.volume_uuid = (*volume)->uuid;
  session_options.mount_point = RealPath(options.mount_point);
  session_options.version = kCairnVersion;
  session_options.read_only = options.read_only;
  session_options.heartbeat_seconds = heartbeat_seconds;
  Result<std::unique_ptr<mount::MountSession>> session =
      mount::MountSession::Start(stores.meta.get(), &reclaimer, session_options);
  if (!session.ok()) {
    ready(session.status());
    return 1;
  }
  fs::Options fs_options;
  fs_options.is_open = [&data](uint64_t ino) { return data && data->IsOpen(ino); };
  fs_options.now_ns = NowNs;
  fs_options.session = (*session)->id();
  fs_options.relaxed_commits = true;  // close survives the mount's death; fsync the machine's
  // The kernel's attribute timeout, capped: the change feed's ForgetAttr (Invalidate in
  // mount/fuse_mount.cc) keeps it as fresh as the kernel's own cache; 0 turns both off.
  fs_options.fresh_directory_ms =
      static_cast<int64_t>(std::min(options.attr_cache_seconds, 1.0) * 1000.0);
  fs::FileSystem file_system(tree, fs_options);
  data = std::make_unique<mount::FileData>(&file_system, stores.meta.get(), stores.chunks.get(),
                                           object_service, (*volume)->uuid,
                                           std::to_string((*session)->id()), data_options,
                                           [] { return platform::SystemClock()->NowMs(); });
  // The trash's expiry: every mount tries once a minute (a purge is idempotent), with the
  // volume's days as they are then (another mount's --trash-days may have changed them).
  int64_t last_purge_ns = 0;
  (*session)->StartHeartbeat([&file_system, tree, &last_purge_ns, &options] {
    // Files unlinked on another mount that no live mount claimed: their space comes back.
    // Housekeeping like the reclaim of dead sessions, so a read-only mount does it too.
    Result<uint64_t> swept = file_system.SweepPendingOrphans();
    if (!swept.ok()) {
      fprintf(stderr, "cairn mount: deleting pending orphans: %s\n",
              swept.status().ToString().c_str());
    }
    const int64_t now = NowNs();
    if (options.read_only || now - last_purge_ns < 60'000'000'000) return;
    last_purge_ns = now;
    Result<std::optional<meta::VolumeRecord>> current = tree->GetVolume();
    if (!current.ok() || !*current) {
      fprintf(stderr, "cairn mount: reading the volume's trash days: %s\n",
              current.ok() ? "the volume is gone" : current.status().ToString().c_str());
      return;
    }
    const uint32_t trash_days = (*current)->trash_days;
    if (trash_days == 0) return;
    Result<uint64_t> purged = file_system.PurgeTrash(
        now - static_cast<int64_t>(trash_days) * 86400 * 1'000'000'000, 100000);
    if (!purged.ok()) {
      fprintf(stderr, "cairn mount: purging the trash: %s\n", purged.status().ToString().c_str());
    } else if (*purged > 0) {
      fprintf(stderr, "cairn mount: purged %llu expired trash entries\n",
              static_cast<unsigned long long>(*purged));
    }
  });
  mount::MountServices services;
  services.file_system = &file_system;
  services.file_data = data.get();
  services.session = session->get();
  if (remote) {
    mount::RemoteChunks* remote_chunks = remote.get();
    services.space = [remote_chunks](struct statvfs* st) -> Status {
      ASSIGN_OR_RETURN(mount::RemoteSpace space, remote_chunks->Space(StorageClass::kHot));
      st->f_bsize = st->f_frsize = 4096;
      st->f_blocks = space.total_bytes / 4096;
      st->f_bfree = space.free_bytes / 4096;
      st->f_bavail = space.available_bytes / 4096;
      return OkStatus();
    };
  } else {
    services.chunk_root = stores.chunks->RootOf(StorageClass::kHot);
  }
  mount::MountMetrics metrics(data.get(), object_service, cache.get());
  std::unique_ptr<mount::MetricsEndpoint> endpoint;
  Status served = OkStatus();
  if (metrics_listen) {
    services.metrics = &metrics;
    Result<std::unique_ptr<mount::MetricsEndpoint>> started = mount::MetricsEndpoint::Start(
        metrics_listen->first, metrics_listen->second, [&metrics] { return metrics.Render(); });
    if (started.ok()) {
      endpoint = std::move(started).value();
      fprintf(stderr, "cairn mount: metrics on http://%s:%u/metrics\n",
              metrics_listen->first.c_str(), static_cast<unsigned>(endpoint->port()));
    } else {
      served = started.status();
      ready(served);
    }
  }
  std::unique_ptr<backup::BackupLoop> backup_loop;
  if (served.ok()) {
    backup_loop = StartMountBackups(backups, store, stores.meta.get());
    served = mount::ServeMount(options, services, ready);
  }
  if (backup_loop) backup_loop->Stop();
  endpoint.reset();  // before `metrics` and `data` go
  data->Shutdown();  // its background stores end before the session does
  if (!served.ok()) {
    fprintf(stderr, "cairn mount: %s\n", served.ToString().c_str());
    exit_code = 1;
  }
  Status ended = (*session)->End();
  if (!ended.ok()) {
    fprintf(stderr, "cairn mount: ending the session: %s\n", ended.ToString().c_str());
    exit_code = 1;
  }
  return exit_code;
}

void AddMount(CLI::App& app,
              const std::function<void(CLI::App*, server::StoreConfig*)>& add_store_options,
              int* exit_code) {
  struct Args {
    server::StoreConfig store;
    mount::MountOptions mount;
    uint64_t buffer_mib = 64;
    unsigned max_uploads = 4;
    unsigned prefetch = 1;
    std::string cache_dir;
    uint64_t cache_mib = 0;   // 0: 1024 with --cache-dir
    int64_t trash_days = -1;  // -1: as the volume has it
    RemoteStorageArgs remote;
    double heartbeat_seconds = 5.0;
    bool background = false;
    std::string log_file;
    std::string metrics;
    MountBackupArgs backups;
  };
  auto args = std::make_shared<Args>();
  CLI::App* command =
      app.add_subcommand("mount", "Mount the filesystem volume of a metadata store (FUSE)");
  command
      ->add_option("--backup-meta", args->backups.interval,
                   "Write a metadata snapshot (the volume's tree included) this often, e.g. 15m "
                   "or 1h (0 = off); the mounts of a volume take turns")
      ->envname("CAIRN_BACKUP_META")
      ->check([](const std::string& text) {
        Result<int64_t> ms = backup::ParseDurationMs(text);
        return ms.ok() ? std::string() : ms.status().message();
      })
      ->capture_default_str();
  command
      ->add_option("--backup-dir", args->backups.directory,
                   "Directory of the metadata snapshots (default <data-dir>/backups)")
      ->envname("CAIRN_BACKUP_DIR");
  command->add_option("--backup-keep", args->backups.keep, "Newest metadata snapshots kept")
      ->envname("CAIRN_BACKUP_KEEP")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  add_store_options(command, &args->store);
  command->add_option("META_URL", args->store.meta_url, "Metadata store URL")->required();
  command->add_option("MOUNTPOINT", args->mount.mount_point, "An existing empty directory")
      ->required();
  command->add_option("--subdir", args->mount.subdir, "Mount only this directory of the volume")
      ->envname("CAIRN_SUBDIR");
  command
      ->add_option("--attr-cache", args->mount.attr_cache_seconds,
                   "Seconds the kernel keeps attributes")
      ->envname("CAIRN_ATTR_CACHE")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  command
      ->add_option("--entry-cache", args->mount.entry_cache_seconds,
                   "Seconds the kernel keeps file names")
      ->envname("CAIRN_ENTRY_CACHE")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  command
      ->add_option("--dir-entry-cache", args->mount.dir_entry_cache_seconds,
                   "Seconds the kernel keeps directory names")
      ->envname("CAIRN_DIR_ENTRY_CACHE")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  command
      ->add_option("--buffer-size", args->buffer_mib,
                   "MiB of written data one file holds before it is stored")
      ->envname("CAIRN_BUFFER_SIZE")
      ->check(CLI::Range(4, 1 << 20))
      ->capture_default_str();
  command
      ->add_option("--max-uploads", args->max_uploads,
                   "Blocks stored in the background at once: a block a sequential write "
                   "fills is stored while the writer goes on (0: each close stores its "
                   "blocks itself)")
      ->envname("CAIRN_MAX_UPLOADS")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  command
      ->add_option("--prefetch", args->prefetch,
                   "Blocks (4 MiB) read ahead of a sequential reader, in the background, "
                   "each verified whole (0: none)")
      ->envname("CAIRN_PREFETCH")
      ->check(CLI::Range(0, 16))
      ->capture_default_str();
  command
      ->add_option("--cache-dir", args->cache_dir,
                   "Keep local copies of the chunks read here (for chunks behind --storage "
                   "http:// or on a slower shared volume); each copy is hashed when made and "
                   "checked block by block when read. One mount per directory. Default: no "
                   "cache")
      ->envname("CAIRN_CACHE_DIR");
  command
      ->add_option("--cache-size", args->cache_mib,
                   "MiB the --cache-dir copies may take; least recently used go first "
                   "(default 1024 with --cache-dir)")
      ->envname("CAIRN_CACHE_SIZE")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 30));
  command
      ->add_option("--heartbeat", args->heartbeat_seconds,
                   "Seconds between the session's heartbeats; it is dead after 6 missed")
      ->envname("CAIRN_HEARTBEAT")
      ->check(CLI::Range(0.2, 300.0))
      ->capture_default_str();
  command
      ->add_option("--sync-interval", args->mount.sync_interval_seconds,
                   "Seconds between the syncs that make closed files durable (close stores "
                   "and commits without waiting for the disk; fsync waits). 0: only at fsync "
                   "and unmount")
      ->envname("CAIRN_SYNC_INTERVAL")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  command
      ->add_option("--trash-days", args->trash_days,
                   "Set the volume's trash days (how long deleted files stay in .trash; 0: "
                   "none) before mounting; every mount of the volume follows. Default: as "
                   "the volume has it (cairn format --trash-days)")
      ->envname("CAIRN_TRASH_DAYS")
      ->check(CLI::Range(int64_t{0}, int64_t{fs::kMaxTrashDays}));
  command
      ->add_option("--storage", args->remote.url,
                   "Store and read the chunks through the Cairn server at http://HOST:PORT "
                   "(which must use this metadata store) instead of the chunk directories; "
                   "a chunk the server holds is never sent again. Default: the chunk "
                   "directories (--data-dir, --hot-dir, --cold-dir)")
      ->envname("CAIRN_STORAGE")
      ->check([](const std::string& text) {
        Result<client::Endpoint> endpoint = client::ParseEndpoint(text);
        return endpoint.ok() ? std::string() : endpoint.status().message();
      });
  command
      ->add_option("--storage-key", args->remote.key,
                   "API key for --storage: a key for every tenant (\"*\") with write scope "
                   "(prefer the environment variable: a command line is visible to others)")
      ->envname("CAIRN_STORAGE_KEY");
  command->add_flag("--read-only", args->mount.read_only, "Mount read-only (writes: EROFS)")
      ->envname("CAIRN_READ_ONLY");
  command->add_flag("-d,--background", args->background,
                    "Return once mounted and serve in the background");
  command->add_option("--log-file", args->log_file, "Where a background mount logs")
      ->envname("CAIRN_LOG_FILE");
  command->add_flag("--debug", args->mount.debug, "Log every FUSE request");
  command
      ->add_option("--metrics", args->metrics,
                   "Serve Prometheus metrics on ADDR:PORT (GET /metrics; port 0: any free "
                   "port; default: off)")
      ->envname("CAIRN_METRICS");
  command->callback([args, exit_code] {
    std::optional<std::pair<std::string, uint16_t>> metrics_listen;
    if (!args->metrics.empty()) {
      auto parsed = server::ParseListenAddress(args->metrics);
      if (!parsed.ok()) {
        fprintf(stderr, "cairn mount: --metrics: %s\n", parsed.status().ToString().c_str());
        *exit_code = 2;
        return;
      }
      metrics_listen = *parsed;
    }
    chunks::ChunkCacheOptions cache_options;
    if (args->cache_mib > 0 && args->cache_dir.empty()) {
      fprintf(stderr, "cairn mount: --cache-size needs --cache-dir (where the copies go)\n");
      *exit_code = 2;
      return;
    }
    if (!args->cache_dir.empty()) {
      std::error_code error;
      cache_options.directory = std::filesystem::absolute(args->cache_dir, error).string();
      if (error) cache_options.directory = args->cache_dir;
      cache_options.capacity_bytes = (args->cache_mib == 0 ? 1024 : args->cache_mib) << 20;
    }
    args->mount.allow_other = geteuid() == 0;
    Result<int64_t> backup_ms = backup::ParseDurationMs(args->backups.interval);  // checked above
    args->backups.interval_ms = backup_ms.ok() ? *backup_ms : 0;
    mount::FileDataOptions data_options;
    data_options.buffer_bytes = args->buffer_mib << 20;
    data_options.max_uploads = args->max_uploads;
    data_options.prefetch = args->prefetch;
    data_options.deferred_durability = true;
    if (!args->background) {
      *exit_code = RunMount(
          args->store, args->mount, data_options, args->heartbeat_seconds, metrics_listen,
          [&](const Status& status) {
            if (!status.ok()) {
              fprintf(stderr, "cairn mount: %s\n", status.ToString().c_str());
            } else {
              fprintf(stderr, "cairn mount: %s mounted on %s\n", args->store.meta_url.c_str(),
                      args->mount.mount_point.c_str());
            }
          },
          args->backups, cache_options, args->trash_days, args->remote);
      return;
    }
    // Background: the child mounts and reports through a pipe; the parent returns with
    // its outcome, so a script may use the mount as soon as the command returns.
    int report[2];
    if (pipe(report) != 0) {
      perror("cairn mount: pipe");
      *exit_code = 1;
      return;
    }
    const pid_t child = fork();
    if (child < 0) {
      perror("cairn mount: fork");
      *exit_code = 1;
      return;
    }
    if (child > 0) {
      close(report[1]);
      std::string message;
      char buffer[512];
      ssize_t n;
      while ((n = read(report[0], buffer, sizeof(buffer))) > 0) message.append(buffer, n);
      close(report[0]);
      if (message == "ok") {
        printf("cairn mount: %s mounted on %s (pid %d)\n", args->store.meta_url.c_str(),
               args->mount.mount_point.c_str(), static_cast<int>(child));
        return;
      }
      fprintf(stderr, "cairn mount: %s\n",
              message.empty() ? "the mount process died before mounting" : message.c_str());
      waitpid(child, nullptr, 0);
      *exit_code = 1;
      return;
    }
    close(report[0]);
    setsid();
    const int null_in = open("/dev/null", O_RDONLY);
    if (null_in >= 0) dup2(null_in, STDIN_FILENO);
    const int log = args->log_file.empty()
                        ? open("/dev/null", O_WRONLY)
                        : open(args->log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (log >= 0) {
      dup2(log, STDOUT_FILENO);
      // With a log file, everything goes there from the start (sessions reclaimed while
      // mounting included); without one, errors reach the caller until the mount is live.
      if (!args->log_file.empty()) dup2(log, STDERR_FILENO);
    }
    _exit(RunMount(
        args->store, args->mount, data_options, args->heartbeat_seconds, metrics_listen,
        [&](const Status& status) {
          const std::string message = status.ok() ? "ok" : status.ToString();
          (void)!write(report[1], message.data(), message.size());
          close(report[1]);
          // The store's paths may be relative: the working directory stays.
          if (log >= 0) dup2(log, STDERR_FILENO);
        },
        args->backups, cache_options, args->trash_days, args->remote));
  });
}

void AddUmount(CLI::App& app, int* exit_code) {
  auto mount_point = std::make_shared<std::string>();
  auto lazy = std::make_shared<bool>(false);
  CLI::App* command = app.add_subcommand("umount", "Unmount a mounted volume");
  command->add_option("MOUNTPOINT", *mount_point, "Where it is mounted")->required();
  command->add_flag("-z,--lazy", *lazy, "Detach now, finish when no longer busy");
  command->callback([mount_point, lazy, exit_code] {
    const pid_t child = fork();
    if (child == 0) {
      if (*lazy) {
        execlp("fusermount3", "fusermount3", "-u", "-z", mount_point->c_str(), nullptr);
      } else {
        execlp("fusermount3", "fusermount3", "-u", mount_point->c_str(), nullptr);
      }
      perror("cairn umount: fusermount3");
      _exit(127);
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) < 0 || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
      *exit_code = 1;
    }
  });
}

std::string FormatTimeNs(int64_t ns) {
  const time_t seconds = static_cast<time_t>(ns / 1'000'000'000);
  tm parts{};
  gmtime_r(&seconds, &parts);
  char text[32];
  strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

// `cairn fs trash list|restore|purge`: what the volume's trash holds (fs/file_system.h).
void AddFsTrash(CLI::App& app,
                const std::function<void(CLI::App*, server::StoreConfig*)>& add_store_options,
                int* exit_code) {
  CLI::App* fs_command = app.add_subcommand("fs", "Filesystem volume tools");
  fs_command->require_subcommand(1);
  CLI::App* trash = fs_command->add_subcommand(
      "trash", "List, restore or purge the files deleted or replaced in the volume");
  trash->require_subcommand(1);

  struct Args {
    server::StoreConfig store;
    std::vector<std::string> entries;
    std::string to;
    bool all = false;
    double older_than_days = -1;
  };
  auto args = std::make_shared<Args>();
  // Opens the store and the volume, then runs `body` with a FileSystem over it.
  auto with_volume =
      [args,
       exit_code](const std::function<void(fs::FileSystem&, const meta::VolumeRecord&)>& body) {
        auto stores = OpenOrReport(args->store, exit_code);
        if (!stores) return;
        meta::FileTree* tree = TreeOrReport(*stores, args->store.meta_url, exit_code);
        if (tree == nullptr) return;
        Result<std::optional<meta::VolumeRecord>> volume = tree->GetVolume();
        if (!volume.ok() || !*volume) {
          fprintf(stderr, "cairn fs trash: %s\n",
                  volume.ok() ? ("no volume in " + args->store.meta_url).c_str()
                              : volume.status().ToString().c_str());
          *exit_code = 1;
          return;
        }
        fs::Options options;
        options.now_ns = NowNs;
        fs::FileSystem file_system(tree, options);
        body(file_system, **volume);
      };

  CLI::App* list = trash->add_subcommand("list", "List the trash: hour, entry, size, origin");
  add_store_options(list, &args->store);
  list->add_option("META_URL", args->store.meta_url, "Metadata store URL")->required();
  list->callback([args, exit_code, with_volume] {
    with_volume([&](fs::FileSystem& file_system, const meta::VolumeRecord& volume) {
      uint64_t count = 0;
      uint64_t bytes = 0;
      printf("%-13s  %-20s  %12s  %s\n", "HOUR", "DELETED", "BYTES", "ENTRY (parent-ino-name)");
      // Printed page by page: a trash of millions of entries takes no more memory than a few.
      Status listed = file_system.VisitTrash([&](const fs::TrashEntry& entry) {
        ++count;
        bytes += entry.inode.size;
        printf("%-13s  %-20s  %12llu  %s%s\n", entry.hour.c_str(),
               FormatTimeNs(entry.inode.ctime_ns).c_str(),
               static_cast<unsigned long long>(entry.inode.size),
               QuoteForMessage(entry.name).c_str(), entry.name_cut ? " (name cut)" : "");
        return OkStatus();
      });
      if (!listed.ok()) {
        fflush(stdout);
        fprintf(stderr, "cairn fs trash list: %s\n", listed.ToString().c_str());
        *exit_code = 1;
        return;
      }
      printf("%llu entries, %llu bytes\n", static_cast<unsigned long long>(count),
             static_cast<unsigned long long>(bytes));
    });
  });

  CLI::App* restore = trash->add_subcommand(
      "restore", "Put entries back where they were deleted (or into --to DIR)");
  add_store_options(restore, &args->store);
  restore->add_option("META_URL", args->store.meta_url, "Metadata store URL")->required();
  restore->add_option("ENTRIES", args->entries, "HOUR/ENTRY as `list` prints them")->required();
  restore->add_option("--to", args->to, "A directory of the volume (path from its root)");
  restore->callback([args, exit_code, with_volume] {
    with_volume([&](fs::FileSystem& file_system, const meta::VolumeRecord& volume) {
      uint64_t to_parent = 0;
      if (!args->to.empty()) {
        uint64_t ino = meta::kRootInode;
        std::string_view rest = args->to;
        while (!rest.empty()) {
          const size_t slash = rest.find('/');
          const std::string_view part = rest.substr(0, slash);
          rest = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
          if (part.empty() || part == ".") continue;
          Result<meta::InodeRecord> step = file_system.Lookup(ino, part);
          if (!step.ok() || step->type != meta::FileType::kDirectory) {
            fprintf(stderr, "cairn fs trash restore: --to %s: %s is not a directory\n",
                    args->to.c_str(), std::string(part).c_str());
            *exit_code = 1;
            return;
          }
          ino = step->ino;
        }
        to_parent = ino;
      }
      for (const std::string& item : args->entries) {
        const size_t slash = item.find('/');
        if (slash == std::string::npos) {
          fprintf(stderr, "cairn fs trash restore: %s is not HOUR/ENTRY\n", item.c_str());
          *exit_code = 1;
          continue;
        }
        const std::string hour = item.substr(0, slash);
        const std::string name = item.substr(slash + 1);
        Status status = file_system.RestoreFromTrash(hour, name, to_parent);
        if (!status.ok()) {
          fprintf(stderr, "cairn fs trash restore: %s: %s\n", item.c_str(),
                  status.ToString().c_str());
          *exit_code = 1;
          continue;
        }
        printf("restored %s\n", item.c_str());
      }
    });
  });

  CLI::App* purge = trash->add_subcommand(
      "purge", "Delete trash hours for good: --all, or --older-than DAYS (default: trash days)");
  add_store_options(purge, &args->store);
  purge->add_option("META_URL", args->store.meta_url, "Metadata store URL")->required();
  purge->add_flag("--all", args->all, "Everything in the trash");
  purge->add_option("--older-than", args->older_than_days, "Hours that ended this many days ago")
      ->check(CLI::Range(0.0, 36500.0));
  purge->callback([args, exit_code, with_volume] {
    if (args->all && args->older_than_days >= 0) {
      fprintf(stderr, "cairn fs trash purge: give --all or --older-than, not both\n");
      *exit_code = 1;
      return;
    }
    with_volume([&](fs::FileSystem& file_system, const meta::VolumeRecord& volume) {
      int64_t before = INT64_MAX;
      if (!args->all) {
        const double days = args->older_than_days >= 0 ? args->older_than_days
                                                       : static_cast<double>(volume.trash_days);
        before = NowNs() - static_cast<int64_t>(days * 86400.0 * 1e9);
      }
      Result<uint64_t> purged = file_system.PurgeTrash(before, UINT64_MAX);
      if (!purged.ok()) {
        fprintf(stderr, "cairn fs trash purge: %s\n", purged.status().ToString().c_str());
        *exit_code = 1;
        return;
      }
      printf("purged %llu entries (their chunks go at the next gc after its grace)\n",
             static_cast<unsigned long long>(*purged));
    });
  });
}

}  // namespace

void AddFsCommands(CLI::App& app,
                   const std::function<void(CLI::App*, server::StoreConfig*)>& add_store_options,
                   int* exit_code) {
  AddFormat(app, add_store_options, exit_code);
  AddMount(app, add_store_options, exit_code);
  AddUmount(app, exit_code);
  AddFsTrash(app, add_store_options, exit_code);
}

}  // namespace cairn::cli
