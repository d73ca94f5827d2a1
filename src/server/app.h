// The composition root: the only place that picks real implementations (POSIX files,
// the system clock, the configured metadata engine) and wires them together.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/console/console.h"
#include "auth/authenticator.h"
#include "auth/secret_box.h"
#include "chunks/chunk_store.h"
#include "core/status.h"
#include "meta/meta_store.h"
#include "objects/multipart.h"
#include "objects/object_service.h"
#include "server/master_keys.h"

namespace cairn::server {

struct StoreConfig {
  std::string data_dir = "./data";
  std::string meta_url;  // default: sqlite://<data_dir>/meta.db
  std::string hot_dir;   // default: <data_dir>/hot
  std::string cold_dir;  // default: <data_dir>/cold
  // Take the storage roots for this metadata store even where the store identity rule
  // refuses (gc/store_identity.h). An operator's decision, never a default.
  bool adopt_roots = false;
  // The keys that encrypt S3 secrets at rest (server/master_keys.h).
  MasterKeyConfig master_keys;
};

// The stores a command works on.
struct Stores {
  std::unique_ptr<meta::MetaStore> meta;
  std::unique_ptr<chunks::ChunkStore> chunks;
  // The identity both carry, checked by OpenStores: what makes acting on chunk files the
  // metadata does not know (GC's orphan sweep, fsck --repair) safe.
  std::string store_id;
  // Seals and opens the S3 secrets the metadata keeps.
  std::shared_ptr<const auth::SecretBox> secrets;
};

// Opens both stores and checks that they belong to one store (gc/store_identity.h); every
// command that touches the stores comes through here. Also loads the master keys, and
// makes the data directory (0700) and the files Cairn keeps there (0600) private, whatever
// an older release left (docs/security.md).
Result<Stores> OpenStores(const StoreConfig& config);

struct ServeConfig {
  StoreConfig store;
  std::string listen = "127.0.0.1:8080";
  int64_t gc_interval_seconds = 60;
  int64_t gc_grace_seconds = 3600;
  int64_t stalled_upload_seconds = 900;
  double gc_max_delete_fraction = 0.1;  // see gc::GcOptions::max_delete_fraction
  double rate_limit = 0;                // requests/s per tenant; 0 = off
  size_t max_header_bytes = 16 * 1024;
  size_t io_threads = 2;
  size_t blocking_threads = 16;
  uint64_t inline_threshold_bytes = 32 * 1024;
  std::string s3_listen = "127.0.0.1:9000";             // empty: no S3 endpoint
  std::string console_listen;                           // empty: no web console
  std::vector<std::string> s3_domains = {"localhost"};  // virtual-hosted-style bases
  std::string s3_region = "us-east-1";
  std::string s3_tenant = "default";
  std::optional<std::string> s3_access_key;  // CAIRN_S3_ACCESS_KEY
  std::optional<std::string> s3_secret_key;  // CAIRN_S3_SECRET_KEY
  std::optional<std::string> admin_key;      // CAIRN_ADMIN_KEY
  std::optional<std::string> jwt_secret;     // CAIRN_JWT_SECRET
  std::string backup_meta_interval = "0";    // "1h", "90s"...; "0" = no metadata backups
  std::string backup_dir;                    // default: <data_dir>/backups
  int backup_keep = 24;
  int shutdown_timeout_seconds = 30;  // in-flight requests' time to finish on SIGTERM

  // Hostile-client bounds (docs/security.md).
  size_t max_connections = 10000;        // open connections over both APIs; 503 beyond
  std::string min_body_rate = "8KiB";    // per second of waiting; "0" = no minimum
  std::string upload_memory = "1GiB";    // buffers of uploads in flight; "0" = no budget
  std::string max_object_size = "5TiB";  // 413 / EntityTooLarge beyond

  // Background scrubbing: read at most this many bytes/s ("0" = off), and verify every
  // chunk about once per interval.
  std::string scrub_rate = "32MiB";
  std::string scrub_interval = "30d";
  // Incomplete multipart uploads older than this are aborted by the GC loop ("0" = never).
  std::string multipart_expiry = "7d";
  // "on": one line per request of either API on standard error (api/common/access_log.h);
  // "off": none.
  std::string access_log = "on";
};

// Runs `cairn serve` until SIGTERM/SIGINT; returns the process exit code.
int Serve(const ServeConfig& config);

// What the web console runs: the operations `cairn keys` and `cairn status` run
// (key_admin.h) over these stores. `engine` names the metadata engine ("sqlite", ...).
api::console::ConsoleDependencies ConsoleDependenciesFor(objects::ObjectService* objects,
                                                         objects::MultipartService* multipart,
                                                         auth::Authenticator* authenticator,
                                                         Stores* stores, std::string engine);

// Splits "host:port".
Result<std::pair<std::string, uint16_t>> ParseListenAddress(const std::string& text);

}  // namespace cairn::server
