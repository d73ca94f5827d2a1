#include "cli/commands.h"

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "api/s3/handlers/s3_api.h"
#include "auth/api_key.h"
#include "auth/jwt.h"
#include "cli/bench.h"
#include "cli/fs_commands.h"
#include "cli/meta_commands.h"
#include "gc/collector.h"
#include "platform/clock.h"
#include "platform/file_system.h"
#include "scrub/scrubber.h"
#include "server/app.h"
#include "server/key_admin.h"

namespace cairn::cli {
namespace {

int exit_code = 0;

void AddStoreOptions(CLI::App* command, server::StoreConfig* config) {
  command->add_option("--data-dir", config->data_dir, "Data directory")
      ->envname("CAIRN_DATA_DIR")
      ->capture_default_str();
  command
      ->add_option("--meta", config->meta_url,
                   "Metadata store URL (default sqlite://<data-dir>/meta.db)")
      ->envname("CAIRN_META");
  command
      ->add_option("--hot-dir", config->hot_dir, "Root of the hot class (default <data-dir>/hot)")
      ->envname("CAIRN_HOT_DIR");
  command
      ->add_option("--cold-dir", config->cold_dir,
                   "Root of the cold class (default <data-dir>/cold)")
      ->envname("CAIRN_COLD_DIR");
  // Deliberately no environment variable: an override left in a unit file would disable
  // the check for good.
  command->add_flag("--adopt-roots", config->adopt_roots,
                    "Let this metadata store take storage roots it does not match (see the "
                    "store identity rule in docs/architecture.md)");
  // The key itself only ever comes from a file or CAIRN_MASTER_KEY: a command line is
  // visible to every user of the machine.
  command
      ->add_option("--master-key-file", config->master_keys.key_file,
                   "File of the master key that encrypts S3 secrets at rest (default: "
                   "CAIRN_MASTER_KEY, else <data-dir>/master.key, created on first start)")
      ->envname("CAIRN_MASTER_KEY_FILE");
  command
      ->add_option("--old-master-key-file", config->master_keys.old_key_files,
                   "A previous master key, accepted to decrypt during a rotation (repeatable)")
      ->envname("CAIRN_OLD_MASTER_KEY_FILE")
      ->delimiter(',');
}

// Opens the stores or reports why not; nullopt means exit_code is set.
std::optional<server::Stores> Open(const server::StoreConfig& config) {
  auto stores = server::OpenStores(config);
  if (!stores.ok()) {
    fprintf(stderr, "cairn: cannot open the stores: %s\n", stores.status().ToString().c_str());
    exit_code = 1;
    return std::nullopt;
  }
  return std::move(stores).value();
}

void AddServe(CLI::App& app) {
  auto config = std::make_shared<server::ServeConfig>();
  CLI::App* serve = app.add_subcommand("serve", "Run the native API server");
  AddStoreOptions(serve, &config->store);
  serve->add_option("--listen", config->listen, "Native API address HOST:PORT")
      ->envname("CAIRN_LISTEN")
      ->capture_default_str();
  serve
      ->add_option("--gc-interval", config->gc_interval_seconds,
                   "Seconds between GC runs (0 disables background GC)")
      ->envname("CAIRN_GC_INTERVAL")
      ->capture_default_str();
  serve
      ->add_option("--gc-grace", config->gc_grace_seconds,
                   "Seconds an unreferenced chunk or stale upload is kept before GC removes it")
      ->envname("CAIRN_GC_GRACE")
      ->capture_default_str();
  serve
      ->add_option("--gc-max-delete-fraction", config->gc_max_delete_fraction,
                   "Largest fraction of the chunk files one GC pass may remove or quarantine")
      ->envname("CAIRN_GC_MAX_DELETE_FRACTION")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  serve
      ->add_option("--rate-limit", config->rate_limit,
                   "Requests per second per tenant (0 = unlimited); 429 beyond")
      ->envname("CAIRN_RATE_LIMIT")
      ->capture_default_str();
  serve
      ->add_option("--max-header-bytes", config->max_header_bytes,
                   "Largest request header block accepted (431 beyond)")
      ->envname("CAIRN_MAX_HEADER_BYTES")
      ->capture_default_str();
  serve->add_option("--s3-listen", config->s3_listen, "S3 API address HOST:PORT (empty: off)")
      ->envname("CAIRN_S3_LISTEN")
      ->capture_default_str();
  serve
      ->add_option("--console-listen", config->console_listen,
                   "Web console address HOST:PORT (empty: off), e.g. 127.0.0.1:9001")
      ->envname("CAIRN_CONSOLE_LISTEN")
      ->capture_default_str();
  serve
      ->add_option("--s3-domain", config->s3_domains,
                   "Base domain for virtual-hosted-style S3 requests (repeatable)")
      ->envname("CAIRN_S3_DOMAIN")
      ->delimiter(',')
      ->capture_default_str();
  serve->add_option("--s3-region", config->s3_region, "Region reported to S3 clients")
      ->envname("CAIRN_S3_REGION")
      ->capture_default_str();
  serve->add_option("--s3-tenant", config->s3_tenant, "Tenant of the bootstrap S3 key")
      ->envname("CAIRN_S3_TENANT")
      ->capture_default_str();
  serve->add_option("--io-threads", config->io_threads, "Event loop threads")
      ->envname("CAIRN_IO_THREADS")
      ->capture_default_str();
  serve
      ->add_option("--blocking-threads", config->blocking_threads,
                   "Threads for disk and database work")
      ->check(CLI::Range(1, 1024))
      ->envname("CAIRN_BLOCKING_THREADS")
      ->capture_default_str();
  serve
      ->add_option("--inline-threshold", config->inline_threshold_bytes,
                   "Objects up to this size are stored inline in the metadata")
      ->envname("CAIRN_INLINE_THRESHOLD")
      ->capture_default_str();
  serve
      ->add_option("--backup-meta", config->backup_meta_interval,
                   "Write a metadata snapshot this often (e.g. 90s, 15m, 1h; 0 = off)")
      ->envname("CAIRN_BACKUP_META")
      ->capture_default_str();
  serve
      ->add_option("--backup-dir", config->backup_dir,
                   "Directory of the metadata snapshots (default <data-dir>/backups)")
      ->envname("CAIRN_BACKUP_DIR");
  serve
      ->add_option("--shutdown-timeout", config->shutdown_timeout_seconds,
                   "Seconds in-flight requests get to finish after SIGTERM/SIGINT")
      ->envname("CAIRN_SHUTDOWN_TIMEOUT")
      ->check(CLI::Range(0, 3600))
      ->capture_default_str();
  serve
      ->add_option("--max-connections", config->max_connections,
                   "Most open connections over both APIs (503 beyond; 0 = no limit)")
      ->envname("CAIRN_MAX_CONNECTIONS")
      ->capture_default_str();
  serve
      ->add_option("--min-body-rate", config->min_body_rate,
                   "Slowest request body accepted, bytes per second of waiting after 10 s "
                   "(e.g. 8KiB; 0 = no minimum); a slower upload is cut with 408")
      ->envname("CAIRN_MIN_BODY_RATE")
      ->capture_default_str();
  serve
      ->add_option("--upload-memory", config->upload_memory,
                   "Memory uploads in flight may buffer together (e.g. 1GiB; 0 = no budget); "
                   "beyond it uploads wait, then get 503 SlowDown")
      ->envname("CAIRN_UPLOAD_MEMORY")
      ->capture_default_str();
  serve
      ->add_option("--max-object-size", config->max_object_size,
                   "Largest object (e.g. 5TiB); larger uploads get 413 / EntityTooLarge")
      ->envname("CAIRN_MAX_OBJECT_SIZE")
      ->capture_default_str();
  serve->add_option("--backup-keep", config->backup_keep, "Newest metadata snapshots kept")
      ->envname("CAIRN_BACKUP_KEEP")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  serve
      ->add_option("--scrub-rate", config->scrub_rate,
                   "Most bytes/s background scrubbing reads (e.g. 50MiB; 0 = no scrubbing)")
      ->envname("CAIRN_SCRUB_RATE")
      ->capture_default_str();
  serve
      ->add_option("--scrub-interval", config->scrub_interval,
                   "Background scrubbing verifies every chunk about this often (e.g. 30d, 12h)")
      ->envname("CAIRN_SCRUB_INTERVAL")
      ->capture_default_str();
  serve
      ->add_option("--multipart-expiry", config->multipart_expiry,
                   "Abort incomplete multipart uploads this old (e.g. 7d, 12h, 90s; 0 = never); "
                   "runs with background GC")
      ->envname("CAIRN_MULTIPART_EXPIRY")
      ->capture_default_str();
  serve
      ->add_option("--access-log", config->access_log,
                   "One line per request on standard error (method, bucket/key, status, bytes, "
                   "duration, request id, key id; never a secret): on or off")
      ->envname("CAIRN_ACCESS_LOG")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  serve->footer(
      "Environment: CAIRN_ADMIN_KEY sets the bootstrap admin API key (otherwise one is "
      "generated on first start, printed once and saved in <data-dir>/admin.key); "
      "CAIRN_JWT_SECRET (>= 32 bytes) enables HS256 JWTs; CAIRN_S3_ACCESS_KEY and "
      "CAIRN_S3_SECRET_KEY set the bootstrap S3 key pair (otherwise generated on first start "
      "and saved in <data-dir>/s3.key).");
  serve->callback([config] {
    if (const char* key = getenv("CAIRN_ADMIN_KEY"); key && *key) config->admin_key = key;
    if (const char* key = getenv("CAIRN_S3_ACCESS_KEY"); key && *key) config->s3_access_key = key;
    if (const char* key = getenv("CAIRN_S3_SECRET_KEY"); key && *key) config->s3_secret_key = key;
    if (const char* secret = getenv("CAIRN_JWT_SECRET"); secret && *secret) {
      Status valid = auth::ValidateJwtSecret(secret);
      if (!valid.ok()) {
        fprintf(stderr, "cairn: CAIRN_JWT_SECRET: %s\n", valid.message().c_str());
        exit_code = 2;
        return;
      }
      config->jwt_secret = secret;
    }
    exit_code = server::Serve(*config);
  });
}

nlohmann::json FsckJson(const gc::FsckReport& report) {
  return {{"ok", report.ok()},
          {"metadata_problems", report.metadata_problems},
          {"missing_chunks", report.missing_chunks},
          {"corrupt_chunks", report.corrupt_chunks},
          {"orphaned_chunks", report.orphaned_chunks},
          {"wrong_ref_counts", report.wrong_ref_counts},
          {"wrong_usage_counters", report.wrong_usage_counters},
          {"stale_temp_files", report.stale_temp_files},
          {"stray_files", report.stray_files},
          {"affected_objects", report.affected_objects},
          {"affected_owners", report.affected_owners},
          {"repairs", report.repairs},
          {"objects_checked", report.objects_checked},
          {"chunks_checked", report.chunks_checked}};
}

void AddMassDeleteOptions(CLI::App* command, double* fraction, bool* allow) {
  command
      ->add_option("--gc-max-delete-fraction", *fraction,
                   "Largest fraction of the chunk files one pass may remove or quarantine")
      ->envname("CAIRN_GC_MAX_DELETE_FRACTION")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  // No environment variable, like --adopt-roots: it must be a decision made per run.
  command->add_flag("--allow-mass-delete", *allow,
                    "Remove or quarantine beyond --gc-max-delete-fraction in this run");
}

void AddFsck(CLI::App& app) {
  struct Options {
    server::StoreConfig store;
    bool repair = false;
    bool json = false;
    bool skip_content = false;
    int64_t grace_seconds = 3600;
    double max_delete_fraction = 0.1;
    bool allow_mass_delete = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* fsck = app.add_subcommand(
      "fsck",
      "Check the metadata engine, and metadata against chunks: missing, corrupt, orphaned, "
      "wrong counts; exits 1 whenever it finds a problem");
  AddStoreOptions(fsck, &options->store);
  fsck->add_flag("--repair", options->repair,
                 "Repair what is found: quarantine corrupt and orphaned chunk files (never "
                 "delete them), restore missing chunks from the quarantine, recompute counts");
  fsck->add_flag("--json", options->json, "Print the report as JSON");
  fsck->add_flag("--skip-content", options->skip_content, "Do not re-hash chunk contents");
  fsck->add_option("--grace", options->grace_seconds,
                   "Temp files older than this many seconds count as stale")
      ->envname("CAIRN_GC_GRACE")
      ->capture_default_str();
  AddMassDeleteOptions(fsck, &options->max_delete_fraction, &options->allow_mass_delete);
  fsck->callback([options] {
    auto stores = Open(options->store);
    if (!stores) return;
    gc::FsckOptions fsck_options;
    fsck_options.repair = options->repair;
    fsck_options.verify_content = !options->skip_content;
    fsck_options.grace_ms = options->grace_seconds * 1000;
    fsck_options.store_identity_verified = !stores->store_id.empty();
    fsck_options.max_delete_fraction = options->max_delete_fraction;
    fsck_options.allow_mass_delete = options->allow_mass_delete;
    auto report = gc::RunFsck(stores->meta.get(), stores->chunks.get(), platform::SystemClock(),
                              fsck_options);
    if (!report.ok()) {
      fprintf(stderr, "cairn fsck: %s\n", report.status().ToString().c_str());
      exit_code = 2;
      return;
    }
    // After a repair, what is left (printed, never the exit code: a run that found a
    // problem exits 1 even when it repaired it, so scripts and operators notice).
    std::optional<bool> clean_after_repair;
    if (options->repair && !report->ok()) {
      fsck_options.repair = false;
      auto again = gc::RunFsck(stores->meta.get(), stores->chunks.get(), platform::SystemClock(),
                               fsck_options);
      clean_after_repair = again.ok() && again->ok();
    }
    if (options->json) {
      nlohmann::json json = FsckJson(*report);
      if (clean_after_repair) json["clean_after_repair"] = *clean_after_repair;
      printf("%s\n", json.dump(2).c_str());
    } else {
      printf("objects checked: %llu, chunks checked: %llu\n",
             static_cast<unsigned long long>(report->objects_checked),
             static_cast<unsigned long long>(report->chunks_checked));
      auto print = [](const char* what, const std::vector<std::string>& items) {
        for (const auto& item : items) printf("%s: %s\n", what, item.c_str());
      };
      print("metadata store damaged", report->metadata_problems);
      print("missing chunk", report->missing_chunks);
      print("corrupt chunk", report->corrupt_chunks);
      print("affected object", report->affected_objects);
      print("affected owner", report->affected_owners);
      print("orphaned chunk", report->orphaned_chunks);
      print("wrong reference count", report->wrong_ref_counts);
      print("wrong usage counter", report->wrong_usage_counters);
      print("stale temp file", report->stale_temp_files);
      print("stray file", report->stray_files);
      print("repaired", report->repairs);
      printf("%s\n", report->ok() ? "clean" : "problems found");
      if (clean_after_repair) {
        printf("%s\n",
               *clean_after_repair ? "after repair: clean" : "after repair: problems remain");
      }
    }
    exit_code = report->ok() ? 0 : 1;
  });
}

void AddGc(CLI::App& app) {
  struct Options {
    server::StoreConfig store;
    int64_t grace_seconds = 3600;
    int64_t stalled_upload_seconds = 900;
    double max_delete_fraction = 0.1;
    bool allow_mass_delete = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* gc_command = app.add_subcommand("gc", "Run one garbage collection pass");
  AddStoreOptions(gc_command, &options->store);
  gc_command->add_option("--grace", options->grace_seconds, "Grace period in seconds")
      ->envname("CAIRN_GC_GRACE")
      ->capture_default_str();
  gc_command
      ->add_option("--stalled-upload-timeout", options->stalled_upload_seconds,
                   "Seconds an upload may sit untouched before it is reaped")
      ->envname("CAIRN_STALLED_UPLOAD_TIMEOUT")
      ->capture_default_str();
  AddMassDeleteOptions(gc_command, &options->max_delete_fraction, &options->allow_mass_delete);
  gc_command->callback([options] {
    auto stores = Open(options->store);
    if (!stores) return;
    gc::GcOptions gc_options;
    gc_options.grace_ms = options->grace_seconds * 1000;
    gc_options.stalled_upload_ms = options->stalled_upload_seconds * 1000;
    gc_options.store_identity_verified = !stores->store_id.empty();
    gc_options.max_delete_fraction = options->max_delete_fraction;
    gc_options.allow_mass_delete = options->allow_mass_delete;
    auto stats =
        gc::RunGc(stores->meta.get(), stores->chunks.get(), platform::SystemClock(), gc_options);
    if (!stats.ok()) {
      fprintf(stderr, "cairn gc: %s\n", stats.status().ToString().c_str());
      exit_code = 1;
      return;
    }
    for (const std::string& moved : stats->quarantined) {
      printf("quarantined orphaned chunk %s\n", moved.c_str());
    }
    printf(
        "reaped uploads: %llu\npurged objects: %llu\ndeleted chunks: %llu (%llu bytes)\n"
        "deleted temp files: %llu\nquarantined orphan files: %llu\n"
        "deleted quarantined files: %llu\n",
        static_cast<unsigned long long>(stats->reaped_uploads),
        static_cast<unsigned long long>(stats->purged_objects),
        static_cast<unsigned long long>(stats->deleted_chunks),
        static_cast<unsigned long long>(stats->deleted_chunk_bytes),
        static_cast<unsigned long long>(stats->deleted_temp_files),
        static_cast<unsigned long long>(stats->quarantined_orphan_files),
        static_cast<unsigned long long>(stats->deleted_quarantined_files));
    if (!stats->capped.empty()) {
      printf("capped: %s\n", stats->capped.c_str());
      fprintf(stderr, "cairn gc: %s\n", stats->capped.c_str());
    }
    if (!stats->usage_fold_error.empty()) {
      fprintf(stderr, "cairn gc: folding usage counters failed (next run retries): %s\n",
              stats->usage_fold_error.c_str());
    }
    // Unreferenced chunks beyond the cap are ordinary work for the next pass; orphans left
    // by the cap need a human, and a script running gc should notice.
    if (stats->orphans_left_by_cap > 0) exit_code = 3;
  });
}

nlohmann::json ScrubJson(const scrub::PassReport& report) {
  const scrub::PassStats& stats = report.stats;
  return {{"clean", stats.damaged == 0 && stats.metadata_mismatches == 0},
          {"complete", report.complete},
          {"started_at", FormatTimestamp(stats.started_ms)},
          {"completed_at", FormatTimestamp(stats.completed_ms)},
          {"chunks_verified", stats.chunks_verified},
          {"bytes_verified", stats.bytes_verified},
          {"damaged", stats.damaged},
          {"healed", stats.healed},
          {"metadata_mismatches", stats.metadata_mismatches},
          {"skipped", stats.skipped},
          {"problems", report.problems}};
}

void AddScrub(CLI::App& app) {
  struct Options {
    server::StoreConfig store;
    std::string rate = "0";
    bool json = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* scrub_command = app.add_subcommand(
      "scrub", "Verify every chunk file now; quarantine and mark what is damaged");
  AddStoreOptions(scrub_command, &options->store);
  scrub_command
      ->add_option("--rate", options->rate, "Most bytes/s to read (e.g. 100MiB; 0 = unlimited)")
      ->capture_default_str();
  scrub_command->add_flag("--json", options->json, "Print the report as JSON");
  scrub_command->footer("Exit status: 0 clean, 1 damage found, 2 the pass could not run.");
  scrub_command->callback([options] {
    auto rate = scrub::ParseByteRate(options->rate);
    if (!rate.ok()) {
      fprintf(stderr, "cairn scrub: --rate: %s\n", rate.status().message().c_str());
      exit_code = 2;
      return;
    }
    auto stores = Open(options->store);
    if (!stores) {
      exit_code = 2;
      return;
    }
    objects::ObjectService objects(stores->meta.get(), stores->chunks.get(),
                                   platform::SystemClock(), objects::ObjectServiceOptions());
    scrub::ScrubOptions scrub_options;
    scrub_options.rate_bytes_per_second = *rate;
    scrub_options.state_path = scrub::ScrubStatePath(options->store.data_dir);
    scrub::Scrubber scrubber(&objects, scrub_options);
    auto report = scrubber.RunPass();
    if (!report.ok()) {
      fprintf(stderr, "cairn scrub: %s\n", report.status().ToString().c_str());
      exit_code = 2;
      return;
    }
    const scrub::PassStats& stats = report->stats;
    const bool clean = stats.damaged == 0 && stats.metadata_mismatches == 0;
    if (options->json) {
      printf("%s\n", ScrubJson(*report).dump(2).c_str());
    } else {
      for (const std::string& problem : report->problems) printf("problem: %s\n", problem.c_str());
      printf(
          "chunks verified: %llu (%llu bytes) in %.1fs\ndamaged: %llu\nhealed: %llu\n"
          "metadata mismatches: %llu\nskipped: %llu\n%s\n",
          static_cast<unsigned long long>(stats.chunks_verified),
          static_cast<unsigned long long>(stats.bytes_verified),
          static_cast<double>(stats.completed_ms - stats.started_ms) / 1000.0,
          static_cast<unsigned long long>(stats.damaged),
          static_cast<unsigned long long>(stats.healed),
          static_cast<unsigned long long>(stats.metadata_mismatches),
          static_cast<unsigned long long>(stats.skipped), clean ? "clean" : "damage found");
    }
    exit_code = clean ? 0 : 1;
  });
}

// The volume lines of `cairn status`: the volume, what its files hold and its mounts.
void PrintVolumeStatus(meta::MetaStore* meta_store) {
  const TimestampMs now = platform::SystemClock()->NowMs();
  auto summary = server::SummarizeVolume(meta_store, now);
  if (!summary.ok()) {
    printf("volume: %s\n", summary.status().ToString().c_str());
    exit_code = 1;
    return;
  }
  if (!*summary) {
    printf("volume: none\n");
    return;
  }
  const server::VolumeSummary& volume = **summary;
  auto number = [](uint64_t value) { return static_cast<unsigned long long>(value); };
  printf("volume: %s (uuid %s, trash %u days)\n", volume.volume.name.c_str(),
         volume.volume.uuid.c_str(), volume.volume.trash_days);
  printf("  inodes: %llu, files: %llu (%llu logical bytes)\n", number(volume.usage.inodes),
         number(volume.usage.files), number(volume.usage.file_bytes));
  printf("  file chunks: %llu (%llu physical bytes, each chunk once, shared ones included)\n",
         number(volume.usage.chunks), number(volume.usage.chunk_bytes));
  printf("  mounts: %llu alive, %llu expired\n", number(volume.mounts_alive),
         number(volume.mounts_expired));
  for (const meta::SessionRecord& session : volume.sessions) {
    const bool alive = now < session.expires_ms;
    printf("    %s host=%s mount_point=%s version=%s pid=%u%s heartbeat %.1f s ago\n",
           alive ? "alive  " : "expired", session.host.c_str(), session.mount_point.c_str(),
           session.version.c_str(), session.pid, session.read_only ? " read-only" : "",
           static_cast<double>(now - session.heartbeat_ms) / 1000.0);
  }
  printf(
      "  unlinked while open: %llu held by a mount, %llu pending (deleted once every "
      "live mount has read past them)\n",
      number(volume.orphans_held), number(volume.orphans_pending));
  if (volume.mounts_expired > 0) {
    printf(
        "  warning: %llu mount session(s) expired without ending (the mount died or lost "
        "the metadata store); a mount reclaims them when it starts or beats\n",
        number(volume.mounts_expired));
  }
}

// The scrub lines of `cairn status`, from the state file the scrubbers keep.
void PrintScrubStatus(const std::string& data_dir) {
  auto state = scrub::LoadScrubState(scrub::ScrubStatePath(data_dir));
  if (!state.ok()) {
    printf("scrub: %s\n", state.status().ToString().c_str());
    return;
  }
  if (state->in_progress) {
    const scrub::PassStats& pass = state->current;
    const double percent =
        pass.bytes_total == 0 ? 0 : 100.0 * pass.bytes_verified / pass.bytes_total;
    printf(
        "scrub: pass started %s: %llu of %llu chunks, %llu of %llu bytes (%.1f%%), "
        "%llu damaged, %llu healed\n",
        FormatTimestamp(pass.started_ms).c_str(),
        static_cast<unsigned long long>(pass.chunks_verified),
        static_cast<unsigned long long>(pass.chunks_total),
        static_cast<unsigned long long>(pass.bytes_verified),
        static_cast<unsigned long long>(pass.bytes_total), percent,
        static_cast<unsigned long long>(pass.damaged),
        static_cast<unsigned long long>(pass.healed));
  }
  if (state->has_last) {
    const scrub::PassStats& last = state->last;
    printf(
        "scrub: last pass completed %s (%s): %llu chunks, %llu bytes, %llu damaged, "
        "%llu healed, %llu metadata mismatches\n",
        FormatTimestamp(last.completed_ms).c_str(), state->last_kind.c_str(),
        static_cast<unsigned long long>(last.chunks_verified),
        static_cast<unsigned long long>(last.bytes_verified),
        static_cast<unsigned long long>(last.damaged), static_cast<unsigned long long>(last.healed),
        static_cast<unsigned long long>(last.metadata_mismatches));
  } else if (!state->in_progress) {
    printf("scrub: no pass yet\n");
  }
}

void AddKeys(CLI::App& app) {
  auto store = std::make_shared<server::StoreConfig>();
  CLI::App* keys = app.add_subcommand("keys", "Manage API keys");
  keys->require_subcommand(1);

  struct CreateOptions {
    std::vector<std::string> tenants;
    std::string scope = "read";
    std::string description;
    bool s3 = false;
  };
  auto create_options = std::make_shared<CreateOptions>();
  CLI::App* create = keys->add_subcommand("create", "Create an API key and print it once");
  AddStoreOptions(create, store.get());
  create
      ->add_option("--tenant", create_options->tenants,
                   "Tenant the key is bound to (repeat; * = all)")
      ->required()
      ->delimiter(',');
  create->add_option("--scope", create_options->scope, "read, write or admin")
      ->capture_default_str();
  create->add_option("--description", create_options->description, "Free text");
  create->add_flag("--s3", create_options->s3,
                   "Create an S3 access key pair (first tenant owns its buckets; default "
                   "scope write)");
  create->callback([store, create_options, create] {
    auto scope = meta::ParseScope(create_options->scope);
    if (!scope.ok()) {
      fprintf(stderr, "cairn keys create: %s\n", scope.status().message().c_str());
      exit_code = 2;
      return;
    }
    server::KeyGrant grant;
    grant.tenants = create_options->tenants;
    grant.scope = *scope;
    grant.description = create_options->description;
    // An S3 key without write access is rarely wanted; --scope read still makes one.
    if (create_options->s3 && !create->count("--scope")) grant.scope = meta::Scope::kWrite;
    Status valid = server::ValidateGrant(grant, create_options->s3);
    if (!valid.ok()) {
      fprintf(stderr, "cairn keys create: %s\n", valid.message().c_str());
      exit_code = 2;
      return;
    }
    auto stores = Open(*store);
    if (!stores) return;
    const TimestampMs now = platform::SystemClock()->NowMs();
    if (create_options->s3) {
      auto created = server::CreateS3Key(stores->meta.get(), *stores->secrets, grant, now);
      if (!created.ok()) {
        fprintf(stderr, "cairn keys create: %s\n", created.status().ToString().c_str());
        exit_code = 1;
        return;
      }
      printf("access_key: %s\nsecret_key: %s\n", created->access_key.c_str(),
             created->secret.c_str());
      return;
    }
    auto created = server::CreateApiKey(stores->meta.get(), grant, now);
    if (!created.ok()) {
      fprintf(stderr, "cairn keys create: %s\n", created.status().ToString().c_str());
      exit_code = 1;
      return;
    }
    printf("%s\n", created->full_text.c_str());
  });

  CLI::App* list = keys->add_subcommand("list", "List API keys (never their secrets)");
  AddStoreOptions(list, store.get());
  list->callback([store] {
    auto stores = Open(*store);
    if (!stores) return;
    auto keys_list = server::ListKeys(stores->meta.get());
    if (!keys_list.ok()) {
      fprintf(stderr, "cairn keys list: %s\n", keys_list.status().ToString().c_str());
      exit_code = 1;
      return;
    }
    printf("%-16s  %-6s  %-8s  %-24s  %s\n", "KEY ID", "SCOPE", "STATE", "CREATED", "TENANTS");
    for (const server::KeyInfo& key : *keys_list) {
      std::string tenants;
      for (const auto& tenant : key.tenants) tenants += (tenants.empty() ? "" : ",") + tenant;
      printf("%-16s  %-6s  %-8s  %-24s  %s%s\n", key.id.c_str(),
             std::string(meta::ScopeName(key.scope)).c_str(), key.revoked ? "revoked" : "active",
             FormatTimestamp(key.created_at_ms).c_str(), tenants.c_str(), key.s3 ? " (S3)" : "");
    }
  });

  auto revoke_id = std::make_shared<std::string>();
  CLI::App* revoke = keys->add_subcommand("revoke", "Revoke an API key by its id");
  AddStoreOptions(revoke, store.get());
  revoke->add_option("key_id", *revoke_id, "The 16-hex id (or the whole key)")->required();
  revoke->callback([store, revoke_id] {
    auto stores = Open(*store);
    if (!stores) return;
    auto revoked = server::RevokeKey(stores->meta.get(), *revoke_id);
    if (!revoked.ok()) {
      fprintf(stderr, "cairn keys revoke: %s\n", revoked.status().ToString().c_str());
      exit_code = 1;
      return;
    }
    printf("revoked %s\n", revoked->c_str());
  });

  CLI::App* rotate = keys->add_subcommand(
      "rotate-master",
      "Re-encrypt every S3 secret with the master key (with the default <data-dir>/master.key: "
      "a new key replaces it); see docs/security.md");
  AddStoreOptions(rotate, store.get());
  rotate->callback([store] {
    auto stores = Open(*store);
    if (!stores) return;
    if (server::UsesDefaultMasterKey(store->master_keys)) {
      auto rotated = server::RotateDefaultMasterKey(platform::DefaultFileSystem(), store->data_dir,
                                                    stores->meta.get());
      if (!rotated.ok()) {
        fprintf(stderr, "cairn keys rotate-master: %s\n", rotated.status().ToString().c_str());
        exit_code = 1;
        return;
      }
      printf(
          "master key %s replaced by %s in %s/%s: %zu S3 secrets re-encrypted, %zu "
          "encrypted; restart the server to use it\n",
          rotated->old_id.c_str(), rotated->new_id.c_str(), store->data_dir.c_str(),
          server::kMasterKeyFile, rotated->report.resealed, rotated->report.sealed);
      return;
    }
    auto sealed = server::SealS3Secrets(stores->meta.get(), *stores->secrets, /*reseal=*/true);
    if (!sealed.ok()) {
      fprintf(stderr, "cairn keys rotate-master: %s\n", sealed.status().ToString().c_str());
      exit_code = 1;
      return;
    }
    printf(
        "every S3 secret is encrypted with master key %s: %zu re-encrypted, %zu "
        "encrypted; old keys are no longer needed\n",
        stores->secrets->primary_id().c_str(), sealed->resealed, sealed->sealed);
  });
}

void AddStatus(CLI::App& app) {
  auto store = std::make_shared<server::StoreConfig>();
  CLI::App* status = app.add_subcommand("status", "Summarize what the store holds");
  AddStoreOptions(status, store.get());
  status->callback([store] {
    auto stores = Open(*store);
    if (!stores) return;
    auto summary = server::SummarizeStore(stores->meta.get(), stores->chunks.get());
    if (!summary.ok()) {
      fprintf(stderr, "cairn status: cannot read the metadata store: %s\n",
              summary.status().ToString().c_str());
      exit_code = 1;
      return;
    }
    printf("objects:");
    for (const auto& [state, count] : summary->objects_by_state) {
      printf(" %s=%llu", state.c_str(), static_cast<unsigned long long>(count));
    }
    printf("\n");
    printf(
        "logical bytes: %llu\ninline bytes: %llu (small objects kept in the metadata)\n"
        "chunks: %llu (%llu bytes, %llu awaiting GC)\n",
        static_cast<unsigned long long>(summary->logical_bytes),
        static_cast<unsigned long long>(summary->inline_bytes),
        static_cast<unsigned long long>(summary->chunks),
        static_cast<unsigned long long>(summary->chunk_bytes),
        static_cast<unsigned long long>(summary->unreferenced_chunks));
    printf("storage roots: %s\n",
           summary->writable.ok() ? "writable" : summary->writable.ToString().c_str());
    PrintVolumeStatus(stores->meta.get());
    PrintScrubStatus(store->data_dir);
  });
}

void AddBench(CLI::App& app) {
  auto options = std::make_shared<BenchOptions>();
  CLI::App* bench = app.add_subcommand(
      "bench", "Load generator: put/get/stat/list/delete/mixed against a running server");
  bench->add_option("--endpoint", options->endpoint, "Server URL")
      ->envname("CAIRN_BENCH_ENDPOINT")
      ->capture_default_str();
  bench->add_option("--api", options->api, "native or s3 (SigV4, path-style, UNSIGNED-PAYLOAD)")
      ->check(CLI::IsMember({"native", "s3"}))
      ->capture_default_str();
  bench->add_option("--key", options->key, "API key (write scope on the tenant)")
      ->envname("CAIRN_BENCH_KEY");
  bench->add_option("--access-key", options->access_key, "S3 access key id (--api s3)")
      ->envname("CAIRN_BENCH_ACCESS_KEY");
  bench->add_option("--secret-key", options->secret_key, "S3 secret key (--api s3)")
      ->envname("CAIRN_BENCH_SECRET_KEY");
  bench->add_option("--bucket", options->bucket,
                    "S3 bucket (--api s3; default: --namespace; created when missing)");
  bench->add_option("--region", options->region, "S3 region signed into requests (--api s3)")
      ->capture_default_str();
  bench->add_option("--tenant", options->tenant, "Tenant")->capture_default_str();
  bench->add_option("--namespace", options->namespace_name, "Namespace")->capture_default_str();
  bench->add_option("--prefix", options->prefix, "Key prefix of the objects it creates")
      ->capture_default_str();
  bench->add_option("--op", options->op, "put, get, stat, list, delete or mixed")
      ->capture_default_str();
  bench->add_option("--mix", options->mix, "Weights for --op mixed, e.g. put=1,get=4")
      ->capture_default_str();
  bench->add_option("--size", options->size, "Object size or range, e.g. 4KiB or 1MiB-4MiB")
      ->capture_default_str();
  bench->add_option("--storage-class", options->storage_class, "hot or cold")
      ->capture_default_str();
  bench->add_option("--concurrency,-c", options->concurrency, "Parallel connections")
      ->capture_default_str();
  bench->add_option("--duration", options->duration_s, "Seconds to run")->capture_default_str();
  bench->add_option("--count", options->count, "Stop after this many operations instead");
  bench->add_option("--objects", options->objects, "Objects prepared for get/stat/delete/mixed")
      ->capture_default_str();
  bench->add_option("--seed", options->seed, "Seed for sizes, keys and content")
      ->capture_default_str();
  bench->add_flag("--identical", options->identical,
                  "Every object has the same content (measures dedup)");
  bench->add_flag("--json", options->json, "Print the report as JSON");
  bench->add_flag("!--no-cleanup", options->cleanup, "Keep the objects it created");
  bench->add_flag("--quiet", options->quiet, "No progress line");
  bench->callback([options] { exit_code = RunBench(*options); });
}

}  // namespace

void RegisterCommands(CLI::App& app) {
  AddBench(app);
  AddServe(app);
  AddFsck(app);
  AddGc(app);
  AddScrub(app);
  AddKeys(app);
  AddStatus(app);
  AddMetaCommands(app, AddStoreOptions, &exit_code);
  AddFsCommands(app, AddStoreOptions, &exit_code);
}

int ExitCode() { return exit_code; }

}  // namespace cairn::cli
