// The web console's server side (docs/console.md): the embedded page and the JSON admin
// API it calls, with cookie sessions and CSRF checks.
//
// Console::Serve is the whole logic as one blocking call (request in, response out), so it
// is tested without sockets; ConsoleApi (console_http.h) only moves bytes between an
// http::Exchange and it. Key administration and the store's figures come in as functions
// (the composition root wires them to server/key_admin.h), so the console and the `cairn`
// commands run the same operations.
//
// Thread-safety: Serve may run on several threads at once.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "auth/authenticator.h"
#include "auth/principal.h"
#include "auth/secret_box.h"
#include "core/status.h"
#include "core/types.h"
#include "http/exchange.h"
#include "meta/file_tree.h"
#include "objects/multipart.h"
#include "objects/object_service.h"

namespace cairn::api::console {

struct Request {
  std::string method;
  std::string path;          // still percent-encoded
  std::string query;         // still percent-encoded
  http::HeaderList headers;  // names lower-cased
  std::string body;
  const std::string* Header(std::string_view lower_name) const;
};

struct Response {
  int status = 200;
  http::HeaderList headers;
  std::string body;
  std::string key_id;  // the session's key, for the access log (never sent)
};

// One credential as the key list shows it (never a secret).
struct KeyView {
  std::string id;
  bool s3 = false;
  meta::Scope scope = meta::Scope::kRead;
  bool revoked = false;
  TimestampMs created_at_ms = 0;
  std::vector<std::string> tenants;
  std::string description;
};

struct NewKey {
  bool s3 = false;
  std::vector<std::string> tenants;
  meta::Scope scope = meta::Scope::kRead;
  std::string description;
};

struct CreatedKey {
  std::string id;
  std::string secret;  // an API key's whole text, or an S3 key's secret: shown once
};

struct StorageRoot {
  StorageClass storage_class = StorageClass::kHot;
  uint64_t free_bytes = 0;
  uint64_t total_bytes = 0;
  Status writable;
  uint64_t logical_bytes = 0;  // committed objects of this class
  uint64_t chunks = 0;
  uint64_t chunk_bytes = 0;   // physical: each stored chunk once
  uint64_t inline_bytes = 0;  // this class's small objects kept in the metadata
};

struct Mount {
  meta::SessionRecord session;
  bool alive = false;
};

// What only the whole store knows (blocking to gather).
struct StoreFigures {
  uint64_t objects = 0;  // committed
  uint64_t logical_bytes = 0;
  uint64_t chunks = 0;
  uint64_t chunk_bytes = 0;   // physical: each stored chunk once
  uint64_t inline_bytes = 0;  // physical too: small objects kept in the metadata
  uint64_t unreferenced_chunks = 0;
  std::vector<StorageRoot> roots;
  std::string engine;                 // "sqlite", "postgres", "memory"
  Status metadata;                    // reading the store
  std::optional<std::string> volume;  // the filesystem volume's name
  std::vector<std::string> tenants;   // those holding objects (any state) or buckets
  std::vector<Mount> mounts;
};

// What a GC or fsck run reports, as the job list shows it.
struct JobOutcome {
  std::vector<std::pair<std::string, uint64_t>> counts;  // in display order
  std::optional<bool> ok;                                // fsck: whether the store is sound
  std::string note;                                      // GC: why a pass stopped early
};

// Where a running job is: its phase and how far into it (total 0: not known in advance).
struct JobProgress {
  std::string phase;
  uint64_t done = 0;
  uint64_t total = 0;
};
using JobProgressFn = std::function<void(const JobProgress&)>;

struct ShareRequest {
  std::string access_key;  // the session's S3 key
  std::string bucket;
  std::string key;
  int64_t expires_seconds = 0;
  std::string console_host;  // the Host the console was reached at (for a wildcard S3 address)
};

// The server's request counters since it started (from its metrics).
struct RequestTotals {
  uint64_t requests = 0;
  uint64_t client_errors = 0;  // answered 4xx
  uint64_t server_errors = 0;  // answered 5xx
};

struct ConsoleDependencies {
  objects::ObjectService* objects = nullptr;
  objects::MultipartService* multipart = nullptr;
  auth::Authenticator* authenticator = nullptr;
  const auth::SecretBox* secrets = nullptr;  // opens S3 secrets (S3 key pair sign-in)
  std::function<Result<std::vector<KeyView>>()> list_keys;
  std::function<Result<CreatedKey>(const NewKey&)> create_key;
  std::function<Result<std::string>(const std::string& id)> revoke_key;
  std::function<Result<StoreFigures>()> store_figures;
  std::function<TimestampMs()> now_ms;
  // Operations (blocking, may take minutes); fsck never repairs. Unset: 501.
  // They report where they are through the function given.
  std::function<Result<JobOutcome>(const JobProgressFn&)> run_gc;
  std::function<Result<JobOutcome>(const JobProgressFn&)> run_fsck;
  // A presigned S3 GET URL for the share link; unset when the S3 API is off.
  std::function<Result<std::string>(const ShareRequest&)> presign;
  uint64_t max_object_bytes = 5ull << 40;
  // Sampled every minute for the overview's request-rate chart; unset: no chart.
  std::function<RequestTotals()> request_totals;
  // The Host values the console answers to ("127.0.0.1:9001", "localhost:9001"); any other
  // gets 421. Empty: any.
  std::vector<std::string> allowed_hosts;
};

// A call whose body streams (docs/console.md "Bodies"), once admitted: what it may touch.
struct StreamCall {
  enum class Kind { kUpload, kPart, kDownload } kind = Kind::kUpload;
  std::string tenant;
  std::string bucket;
  std::string key;
  std::optional<objects::MultipartUpload> upload;  // kPart
  int part = 0;                                    // kPart
  bool inline_disposition = false;                 // kDownload
  std::string key_id;                              // the session's key (access log)
};

class Console {
 public:
  explicit Console(ConsoleDependencies dependencies);
  ~Console();  // waits for a running GC or fsck job
  Console(const Console&) = delete;
  Console& operator=(const Console&) = delete;

  // Blocking: reads and writes the metadata store.
  Response Serve(const Request& request);

  static constexpr size_t kMaxBodyBytes = 64 * 1024;
  static constexpr TimestampMs kSessionLifetimeMs = 12 * 3600 * 1000;
  static constexpr TimestampMs kSessionIdleMs = 3600 * 1000;
  static constexpr size_t kMaxSessions = 10000;
  static constexpr size_t kMaxSessionsPerKey = 16;
  static constexpr TimestampMs kFiguresCacheMs = 10 * 1000;
  // How long an overview waits for the tenants' physical bytes to be recounted before it
  // shows the last finished count instead (with its time). It does not wait at all once a
  // recount took longer than this: on a store that big the page would always wait.
  static constexpr int kPhysicalWaitMs = 1000;
  static constexpr char kCookieName[] = "cairn_console";
  static constexpr TimestampMs kRateIntervalMs = 60 * 1000;
  static constexpr size_t kRateSamples = 61;  // an hour of minutes

  // Takes a sample of the request counters (the sampler thread does, every minute).
  void SampleRates();

  // Whether ConsoleApi streams this call's body itself (AdmitStream, then the body).
  static bool IsStreamed(std::string_view method, std::string_view path);
  // Host, origin, session, CSRF token and rights for a streamed call (its body not read):
  // what it may touch, or the answer that refuses it.
  std::variant<Response, StreamCall> AdmitStream(const Request& request);
  // An error answer in the console's format, with its security headers.
  static Response ErrorResponse(const Status& status);
  // A JSON answer (no-store, invalid UTF-8 replaced), with its security headers.
  static Response JsonAnswer(int status, const nlohmann::json& body);
  static void AddSecurityHeaders(http::HeaderList& headers);

  objects::ObjectService* objects() const { return deps_.objects; }
  objects::MultipartService* multipart() const { return deps_.multipart; }
  uint64_t max_object_bytes() const { return deps_.max_object_bytes; }

  size_t session_count() const;
  // The Host values to answer to, once the listener's port is known (before serving).
  void SetAllowedHosts(std::vector<std::string> hosts) { deps_.allowed_hosts = std::move(hosts); }

 private:
  struct Session {
    std::string key_id;
    bool s3 = false;
    auth::Principal principal;
    std::string csrf_token;
    TimestampMs created_ms = 0;
    TimestampMs last_used_ms = 0;
  };
  class Call;

  Response Route(const Request& request);
  std::optional<Response> CheckHost(const Request& request) const;
  static std::optional<Response> CheckOrigin(const Request& request);
  static std::optional<Response> CheckCsrf(const Request& request, const Session& session);
  Response SignIn(const Request& request);
  // The live session the request's cookie names (its key still valid), or why there is none.
  Result<Session> CurrentSession(const Request& request, std::string* id);
  void EndSession(const std::string& id);
  void EndSessionsOf(const std::string& key_id);
  Result<StoreFigures> CachedStoreFigures();
  // Physical bytes of a tenant count distinct chunks over its object rows (seconds at a
  // million objects), so they are recounted in the background, one recount at a time; a
  // caller waits for the recount it started (or the one running) up to kPhysicalWaitMs,
  // then takes the last finished figure of each tenant (absent: none finished yet).
  struct PhysicalFigure {
    uint64_t bytes = 0;
    TimestampMs as_of_ms = 0;
  };
  std::map<std::string, PhysicalFigure> TenantPhysical(const std::vector<std::string>& tenants);

  struct Job {
    uint64_t id = 0;
    std::string kind;  // "gc" or "fsck"
    TimestampMs started_ms = 0;
    TimestampMs finished_ms = 0;  // 0 while running
    JobProgress progress;         // the last reported
    std::optional<Result<JobOutcome>> outcome;
  };
  Response StartJob(const std::string& kind);
  Response ListJobs();
  Response Rates();
  void SampleLoop();

  ConsoleDependencies deps_;
  std::mutex jobs_mutex_;
  std::vector<Job> jobs_;                       // GUARDED_BY(jobs_mutex_), oldest first, bounded
  std::map<std::string, std::thread> workers_;  // GUARDED_BY(jobs_mutex_), by kind
  uint64_t next_job_ = 1;                       // GUARDED_BY(jobs_mutex_)
  std::mutex rates_mutex_;
  std::condition_variable rates_wake_;
  bool stopping_ = false;                                      // GUARDED_BY(rates_mutex_)
  std::deque<std::pair<TimestampMs, RequestTotals>> samples_;  // GUARDED_BY(rates_mutex_)
  std::thread sampler_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Session> sessions_;  // GUARDED_BY(mutex_), by cookie value
  std::optional<StoreFigures> figures_;                // GUARDED_BY(mutex_)
  TimestampMs figures_ms_ = 0;                         // GUARDED_BY(mutex_)
  std::mutex physical_mutex_;
  std::condition_variable physical_done_;
  std::map<std::string, PhysicalFigure> physical_;  // GUARDED_BY(physical_mutex_)
  bool physical_running_ = false;                   // GUARDED_BY(physical_mutex_)
  uint64_t physical_finished_ = 0;                  // GUARDED_BY(physical_mutex_), recounts
  TimestampMs physical_took_ms_ = 0;                // GUARDED_BY(physical_mutex_), the last
  std::thread physical_thread_;                     // GUARDED_BY(physical_mutex_)
  bool physical_stopping_ = false;                  // GUARDED_BY(physical_mutex_), set by ~Console
};

// The embedded page: "/", "/assets/app.js", "/assets/app.css". nullptr if unknown.
struct Asset {
  std::string_view content_type;
  std::string_view bytes;
};
const Asset* FindAsset(std::string_view path);

}  // namespace cairn::api::console
