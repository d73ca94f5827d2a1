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

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
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
  uint64_t chunk_bytes = 0;  // physical: each stored chunk once
  uint64_t unreferenced_chunks = 0;
  std::vector<StorageRoot> roots;
  std::string engine;                 // "sqlite", "postgres", "memory"
  Status metadata;                    // reading the store
  std::optional<std::string> volume;  // the filesystem volume's name
  std::vector<Mount> mounts;
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
  // The Host values the console answers to ("127.0.0.1:9001", "localhost:9001"); any other
  // gets 421. Empty: any.
  std::vector<std::string> allowed_hosts;
};

class Console {
 public:
  explicit Console(ConsoleDependencies dependencies);
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
  static constexpr char kCookieName[] = "cairn_console";

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
  Response SignIn(const Request& request);
  // The live session the request's cookie names (its key still valid), or why there is none.
  Result<Session> CurrentSession(const Request& request, std::string* id);
  void EndSession(const std::string& id);
  void EndSessionsOf(const std::string& key_id);
  Result<StoreFigures> CachedStoreFigures();

  ConsoleDependencies deps_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Session> sessions_;  // GUARDED_BY(mutex_), by cookie value
  std::optional<StoreFigures> figures_;                // GUARDED_BY(mutex_)
  TimestampMs figures_ms_ = 0;                         // GUARDED_BY(mutex_)
};

// The embedded page: "/", "/assets/app.js", "/assets/app.css". nullptr if unknown.
struct Asset {
  std::string_view content_type;
  std::string_view bytes;
};
const Asset* FindAsset(std::string_view path);

}  // namespace cairn::api::console
