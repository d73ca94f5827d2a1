#include "api/console/console.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "api/common/object_json.h"
#include "api/s3/wire/s3_request.h"
#include "auth/api_key.h"
#include "core/base64.h"
#include "core/text.h"

namespace cairn::api::console {
namespace {

using Json = nlohmann::json;

constexpr uint32_t kDefaultListLimit = 200;
constexpr uint32_t kMaxListLimit = 1000;
constexpr size_t kMaxDeleteKeys = 1000;

// No inline script or style anywhere: injected markup cannot run, and the page works in a
// browser that allows only its own files.
constexpr char kContentSecurityPolicy[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

Response JsonResponse(int status, const Json& body) {
  Response response;
  response.status = status;
  response.headers.emplace_back("Content-Type", "application/json");
  response.headers.emplace_back("Cache-Control", "no-store");
  // Names a client sent may be invalid UTF-8: replaced in the answer, never a throw.
  response.body = body.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  return response;
}

Response Empty(int status) {
  Response response;
  response.status = status;
  response.headers.emplace_back("Cache-Control", "no-store");
  return response;
}

Response Error(int status, const char* code, const std::string& message) {
  return JsonResponse(status, Json{{"error", {{"code", code}, {"message", message}}}});
}

Response ErrorOf(const Status& status) {
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
      return Error(400, "InvalidArgument", status.message());
    case StatusCode::kUnauthenticated:
      return Error(401, "Unauthenticated", status.message());
    case StatusCode::kPermissionDenied:
      return Error(403, "PermissionDenied", status.message());
    case StatusCode::kNotFound:
      return Error(404, "NotFound", status.message());
    case StatusCode::kAlreadyExists:
    case StatusCode::kAborted:
    case StatusCode::kFailedPrecondition:
      return Error(409, "Conflict", status.message());
    case StatusCode::kUnavailable: {
      // Busy (the upload memory budget, a metadata store that is away): the page retries.
      Response busy = Error(503, "Unavailable", status.message());
      busy.headers.emplace_back("Retry-After", "1");
      return busy;
    }
    default:
      return Error(500, "Internal", status.message());
  }
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    return "";  // the caller refuses to go on without randomness
  }
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

bool SameSecret(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// The value of cookie `name` in a Cookie header ("a=1; b=2"), or "".
std::string CookieValue(const std::string& header, std::string_view name) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find(';', pos);
    if (end == std::string::npos) end = header.size();
    std::string_view part(header.data() + pos, end - pos);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    if (part.size() > name.size() && part.substr(0, name.size()) == name &&
        part[name.size()] == '=') {
      return std::string(part.substr(name.size() + 1));
    }
    pos = end + 1;
  }
  return "";
}

Json SessionJson(const std::string& key_id, const auth::Principal& principal,
                 const std::string& csrf, TimestampMs expires_ms) {
  return Json{{"csrf_token", csrf},
              {"key_id", key_id},
              {"tenants", principal.tenants},
              {"scope", std::string(meta::ScopeName(principal.scope))},
              {"expires_at", FormatTimestamp(expires_ms)}};
}

// Decoded query parameters (the last of a repeated name wins), or why they are malformed.
Result<std::map<std::string, std::string>> QueryOf(const Request& request) {
  ASSIGN_OR_RETURN(auto pairs, http::ParseQuery(request.query));
  std::map<std::string, std::string> out;
  for (auto& pair : pairs) out[pair.first] = std::move(pair.second);
  return out;
}

std::string Param(const std::map<std::string, std::string>& query, const std::string& name) {
  auto it = query.find(name);
  return it == query.end() ? "" : it->second;
}

Result<Json> BodyJson(const Request& request) {
  Json body = Json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    return InvalidArgumentError("the request body must be a JSON object");
  }
  return body;
}

// A string member of `body` ("" when absent); an error when it is there but not a string.
Result<std::string> StringMember(const Json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::string();
  if (!it->is_string()) return InvalidArgumentError(std::string(name) + " must be a string");
  return it->get<std::string>();
}

}  // namespace

const std::string* Request::Header(std::string_view lower_name) const {
  for (const auto& header : headers) {
    if (header.first == lower_name) return &header.second;
  }
  return nullptr;
}

Console::Console(ConsoleDependencies dependencies) : deps_(std::move(dependencies)) {
  if (deps_.request_totals) {
    SampleRates();
    sampler_ = std::thread([this] { SampleLoop(); });
  }
}

void Console::SampleLoop() {
  std::unique_lock<std::mutex> lock(rates_mutex_);
  // Ends when the console does.
  while (!rates_wake_.wait_for(lock, std::chrono::milliseconds(kRateIntervalMs),
                               [this] { return stopping_; })) {
    lock.unlock();
    SampleRates();
    lock.lock();
  }
}

void Console::SampleRates() {
  if (!deps_.request_totals) return;
  RequestTotals totals = deps_.request_totals();
  const TimestampMs now = deps_.now_ms();
  std::lock_guard<std::mutex> lock(rates_mutex_);
  samples_.emplace_back(now, totals);
  while (samples_.size() > kRateSamples) samples_.pop_front();
}

Response Console::Rates() {
  if (!deps_.request_totals) {
    return Error(501, "NotImplemented", "this server's console has no request counters");
  }
  // The minutes sampled, then the one running now.
  std::vector<std::pair<TimestampMs, RequestTotals>> points;
  {
    std::lock_guard<std::mutex> lock(rates_mutex_);
    points.assign(samples_.begin(), samples_.end());
  }
  points.emplace_back(deps_.now_ms(), deps_.request_totals());
  Json list = Json::array();
  for (size_t i = 1; i < points.size(); ++i) {
    const RequestTotals& before = points[i - 1].second;
    const RequestTotals& after = points[i].second;
    auto delta = [](uint64_t a, uint64_t b) { return b >= a ? b - a : 0; };
    list.push_back(Json{{"from", FormatTimestamp(points[i - 1].first)},
                        {"to", FormatTimestamp(points[i].first)},
                        {"requests", delta(before.requests, after.requests)},
                        {"client_errors", delta(before.client_errors, after.client_errors)},
                        {"server_errors", delta(before.server_errors, after.server_errors)}});
  }
  return JsonResponse(200, Json{{"interval_seconds", kRateIntervalMs / 1000}, {"points", list}});
}

Console::~Console() {
  {
    std::lock_guard<std::mutex> lock(rates_mutex_);
    stopping_ = true;
  }
  rates_wake_.notify_all();
  if (sampler_.joinable()) sampler_.join();
  std::map<std::string, std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(jobs_mutex_);
    workers = std::move(workers_);
  }
  for (auto& worker : workers) worker.second.join();
  // No recount starts after this, and a running one stops at its next tenant: a server
  // shutting down does not wait for a sweep over every tenant's chunks.
  std::thread physical;
  {
    std::lock_guard<std::mutex> lock(physical_mutex_);
    physical_stopping_ = true;
    physical = std::move(physical_thread_);
  }
  physical_done_.notify_all();
  if (physical.joinable()) physical.join();
}

void Console::AddSecurityHeaders(http::HeaderList& headers) {
  headers.emplace_back("Content-Security-Policy", kContentSecurityPolicy);
  headers.emplace_back("X-Content-Type-Options", "nosniff");
  headers.emplace_back("Referrer-Policy", "no-referrer");
  headers.emplace_back("X-Frame-Options", "DENY");
}

Response Console::JsonAnswer(int status, const nlohmann::json& body) {
  Response response = JsonResponse(status, body);
  AddSecurityHeaders(response.headers);
  return response;
}

Response Console::ErrorResponse(const Status& status) {
  Response response = ErrorOf(status);
  AddSecurityHeaders(response.headers);
  return response;
}

bool Console::IsStreamed(std::string_view method, std::string_view path) {
  if (path == "/api/upload" || path == "/api/uploads/part") return method == "PUT";
  if (path == "/api/download") return method == "GET" || method == "HEAD";
  return false;
}

size_t Console::session_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return sessions_.size();
}

// One API call of a signed-in session.
class Console::Call {
 public:
  Call(Console* console, const Request& request, Session session)
      : console_(console), request_(request), session_(std::move(session)) {}

  Response Run();

 private:
  // 403 unless the session's key has `scope` (and `tenant`, when given).
  std::optional<Response> Refuse(meta::Scope scope, const std::string& tenant = "") const;
  // Whether this session's tenants include every tenant of `key` (it may see and revoke it).
  bool Covers(const KeyView& key) const;
  // 403 for an S3 key's session on a bucket with a policy: the console does not evaluate
  // bucket policies, and must not be a way around one that binds the key.
  std::optional<Response> RefusePolicyBucket(const std::string& tenant,
                                             const std::string& bucket) const;
  std::vector<std::string> KnownTenants() const;

  Response Overview();
  Response Tenants();
  Response Buckets(const std::map<std::string, std::string>& query);
  Response CreateBucket();
  Response DeleteBucket(const std::map<std::string, std::string>& query);
  Response Objects(const std::map<std::string, std::string>& query);
  Response DeleteObjects();
  Response Keys();
  Response CreateKey();
  Response RevokeKey(const std::string& id);
  Response ObjectDetail(const std::map<std::string, std::string>& query);
  Response CreateUpload();
  Response ListUploadParts(const std::map<std::string, std::string>& query);
  Response CompleteUpload();
  Response AbortUpload(const std::map<std::string, std::string>& query);
  Response Share();
  // 409 for a write into a bucket name that another tenant's bucket holds (bucket names
  // are one space on the S3 API).
  std::optional<Response> RefuseForeignBucket(const std::string& tenant,
                                              const std::string& bucket) const;
  // 403 unless the session may run store-wide operations (admin of every tenant).
  std::optional<Response> RefuseOperations() const;
  // The multipart upload the query names (tenant, bucket, key, upload_id), write scope.
  Result<objects::MultipartUpload> NamedUpload(const std::map<std::string, std::string>& query,
                                               std::optional<Response>* refused) const;

 public:
  std::variant<Response, StreamCall> AdmitStream();

 private:
  Console* console_;
  const Request& request_;
  Session session_;
};

Response Console::Serve(const Request& request) {
  Response response;
  try {
    response = Route(request);
  } catch (const std::exception& e) {
    // The detail is for the operator's log, not for the client.
    fprintf(stderr, "cairn: console: %s %s failed: %s\n", request.method.c_str(),
            request.path.c_str(), e.what());
    response = Error(500, "Internal", "the console call failed; see the server's log");
  } catch (...) {
    response = Error(500, "Internal", "the console call failed; see the server's log");
  }
  AddSecurityHeaders(response.headers);
  return response;
}

std::optional<Response> Console::CheckHost(const Request& request) const {
  // Only the names this console answers to: a page whose own name was rebound to this
  // address (DNS rebinding) sends its name as Host, and gets nothing.
  if (deps_.allowed_hosts.empty()) return std::nullopt;
  const std::string* host = request.Header("host");
  if (host == nullptr || std::find(deps_.allowed_hosts.begin(), deps_.allowed_hosts.end(), *host) ==
                             deps_.allowed_hosts.end()) {
    return Error(421, "MisdirectedRequest",
                 "this console answers to " + deps_.allowed_hosts.front() + " only");
  }
  return std::nullopt;
}

std::optional<Response> Console::CheckOrigin(const Request& request) {
  // A page of another origin must not sign in nor change anything: its Origin differs
  // from this console's, and a cross-site form cannot send a JSON body (nor any PUT)
  // without a CORS preflight, which the console never grants.
  const std::string* origin = request.Header("origin");
  const std::string* host = request.Header("host");
  if (origin != nullptr && (host == nullptr || *origin != "http://" + *host)) {
    return Error(403, "PermissionDenied", "the request comes from another origin");
  }
  return std::nullopt;
}

std::optional<Response> Console::CheckCsrf(const Request& request, const Session& session) {
  // CSRF: a state change needs the session's token in a header, which a page of another
  // origin can neither read nor set.
  const std::string* token = request.Header("x-csrf-token");
  if (token == nullptr || !SameSecret(*token, session.csrf_token)) {
    return Error(403, "PermissionDenied",
                 "the X-CSRF-Token header is missing or wrong (sign in again)");
  }
  return std::nullopt;
}

Response Console::Route(const Request& request) {
  return [&]() -> Response {
    if (auto refused = CheckHost(request)) return *refused;
    if (request.path.rfind("/api/", 0) != 0) {
      if (request.method != "GET" && request.method != "HEAD") {
        return Error(405, "MethodNotAllowed", "the console's pages take GET only");
      }
      const Asset* asset = FindAsset(request.path);
      if (asset == nullptr) return Error(404, "NotFound", "no such page");
      Response page;
      page.headers.emplace_back("Content-Type", std::string(asset->content_type));
      page.headers.emplace_back("Cache-Control", "no-cache");
      page.body = std::string(asset->bytes);
      return page;
    }
    if (request.body.size() > kMaxBodyBytes) {
      return Error(413, "PayloadTooLarge", "a console call's body is at most 64 KiB");
    }
    const bool changes = request.method != "GET" && request.method != "HEAD";
    if (changes) {
      if (auto refused = CheckOrigin(request)) return *refused;
      const std::string* type = request.Header("content-type");
      if (!request.body.empty() && (type == nullptr || type->rfind("application/json", 0) != 0)) {
        return Error(415, "UnsupportedMediaType", "a console call's body is application/json");
      }
    }
    if (request.path == "/api/session" && request.method == "POST") return SignIn(request);
    std::string id;
    Result<Session> session = CurrentSession(request, &id);
    if (!session.ok()) return ErrorOf(session.status());
    if (changes) {
      if (auto refused = CheckCsrf(request, *session)) return *refused;
    }
    if (request.path == "/api/session") {
      if (request.method == "GET") {
        return JsonResponse(200,
                            SessionJson(session->key_id, session->principal, session->csrf_token,
                                        session->created_ms + kSessionLifetimeMs));
      }
      if (request.method == "DELETE") {
        EndSession(id);
        Response out = Empty(204);
        out.headers.emplace_back("Set-Cookie", std::string(kCookieName) +
                                                   "=; HttpOnly; SameSite=Strict; Path=/; "
                                                   "Max-Age=0");
        return out;
      }
      return Error(405, "MethodNotAllowed", "use GET, POST or DELETE on /api/session");
    }
    const std::string key_id = session->key_id;
    Call call(this, request, std::move(session).value());
    Response response = call.Run();
    response.key_id = key_id;
    return response;
  }();
}

Response Console::SignIn(const Request& request) {
  Result<Json> body = BodyJson(request);
  if (!body.ok()) return ErrorOf(body.status());
  Result<std::string> api_key = StringMember(*body, "api_key");
  Result<std::string> access = StringMember(*body, "access_key");
  Result<std::string> secret = StringMember(*body, "secret_key");
  if (!api_key.ok() || !access.ok() || !secret.ok()) {
    return Error(400, "InvalidArgument", "api_key, access_key and secret_key must be strings");
  }
  Session session;
  if (!api_key->empty()) {
    // An API key only (not a JWT): a session must be revocable through its key.
    if (!auth::ParseApiKey(*api_key).ok()) {
      return Error(401, "Unauthenticated", "invalid API key");
    }
    Result<auth::Principal> principal =
        deps_.authenticator->Authenticate("Bearer " + *api_key, "", deps_.now_ms());
    if (!principal.ok()) {
      if (principal.status().code() == StatusCode::kUnavailable) return ErrorOf(principal.status());
      return Error(401, "Unauthenticated", principal.status().message());
    }
    session.key_id = principal->subject;
    session.principal = std::move(principal).value();
  } else if (!access->empty() && !secret->empty()) {
    Result<meta::S3KeyRecord> key = deps_.objects->meta_store()->GetS3Key(*access);
    if (!key.ok() && key.status().code() != StatusCode::kNotFound) return ErrorOf(key.status());
    // One answer for an unknown key and a wrong secret: access keys cannot be probed.
    Result<std::string> stored =
        key.ok() ? deps_.secrets->Open(key->access_key, key->secret) : NotFoundError("");
    if (!key.ok() || !stored.ok() || !SameSecret(*stored, *secret)) {
      return Error(401, "Unauthenticated", "invalid access key or secret key");
    }
    if (key->revoked) {
      return Error(401, "Unauthenticated", "the S3 key " + key->access_key + " was revoked");
    }
    session.key_id = key->access_key;
    session.s3 = true;
    session.principal.subject = key->access_key;
    session.principal.tenants = key->tenants;
    session.principal.scope = key->scope;
  } else {
    return Error(400, "InvalidArgument",
                 "sign in with {\"api_key\"} or {\"access_key\", \"secret_key\"}");
  }
  const std::string id = RandomHex(32);
  session.csrf_token = RandomHex(32);
  if (id.empty() || session.csrf_token.empty()) {
    return Error(500, "Internal", "no random bytes for a session");
  }
  const TimestampMs now = deps_.now_ms();
  session.created_ms = now;
  session.last_used_ms = now;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // A sign-in replaces the browser's session, if it sent one.
    if (const std::string* cookie = request.Header("cookie")) {
      sessions_.erase(CookieValue(*cookie, kCookieName));
    }
    // Bounded: at most kMaxSessionsPerKey per key and kMaxSessions in all; the least
    // recently used goes first, so nobody is refused and one key cannot crowd out others.
    auto oldest_of = [&](const std::string* key_id, size_t* count) {
      auto oldest = sessions_.end();
      for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
        if (key_id != nullptr && it->second.key_id != *key_id) continue;
        ++*count;
        if (oldest == sessions_.end() || it->second.last_used_ms < oldest->second.last_used_ms) {
          oldest = it;
        }
      }
      return oldest;
    };
    size_t mine = 0;
    auto my_oldest = oldest_of(&session.key_id, &mine);
    if (mine >= kMaxSessionsPerKey) sessions_.erase(my_oldest);
    if (sessions_.size() >= kMaxSessions) {
      size_t all = 0;
      sessions_.erase(oldest_of(nullptr, &all));
    }
    sessions_[id] = session;
  }
  Response response = JsonResponse(200, SessionJson(session.key_id, session.principal,
                                                    session.csrf_token, now + kSessionLifetimeMs));
  response.key_id = session.key_id;
  response.headers.emplace_back("Set-Cookie", std::string(kCookieName) + "=" + id +
                                                  "; HttpOnly; SameSite=Strict; Path=/; Max-Age=" +
                                                  std::to_string(kSessionLifetimeMs / 1000));
  return response;
}

Result<Console::Session> Console::CurrentSession(const Request& request, std::string* id) {
  const std::string* cookie = request.Header("cookie");
  *id = cookie == nullptr ? "" : CookieValue(*cookie, kCookieName);
  if (id->empty()) return UnauthenticatedError("not signed in");
  const TimestampMs now = deps_.now_ms();
  Session session;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(*id);
    if (it == sessions_.end()) return UnauthenticatedError("the session ended; sign in again");
    if (now >= it->second.created_ms + kSessionLifetimeMs ||
        now >= it->second.last_used_ms + kSessionIdleMs) {
      sessions_.erase(it);
      return UnauthenticatedError("the session expired; sign in again");
    }
    it->second.last_used_ms = now;
    session = it->second;
  }
  // The session acts with its key as the key is now: revoked (or gone) ends it, and its
  // tenants and scope are read afresh.
  bool revoked = false;
  // Both key kinds carry revoked, tenants and scope.
  auto adopt = [&](const auto& key) -> Status {
    if (!key.ok()) return key.status();
    revoked = key->revoked;
    session.principal.tenants = key->tenants;
    session.principal.scope = key->scope;
    return OkStatus();
  };
  meta::MetaStore* store = deps_.objects->meta_store();
  Status read =
      session.s3 ? adopt(store->GetS3Key(session.key_id)) : adopt(store->GetApiKey(session.key_id));
  if (!read.ok() && read.code() != StatusCode::kNotFound) return read;
  if (revoked || !read.ok()) {
    EndSession(*id);
    return UnauthenticatedError("the key of this session was revoked");
  }
  return session;
}

void Console::EndSession(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  sessions_.erase(id);
}

void Console::EndSessionsOf(const std::string& key_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    it = it->second.key_id == key_id ? sessions_.erase(it) : std::next(it);
  }
}

Result<StoreFigures> Console::CachedStoreFigures() {
  const TimestampMs now = deps_.now_ms();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (figures_ && now >= figures_ms_ && now - figures_ms_ < kFiguresCacheMs) return *figures_;
  }
  // Outside the lock: it reads the whole chunk table (two callers at once may both read).
  Result<StoreFigures> figures = deps_.store_figures();
  if (figures.ok()) {
    std::lock_guard<std::mutex> lock(mutex_);
    figures_ = *figures;
    figures_ms_ = now;
  }
  return figures;
}

std::map<std::string, Console::PhysicalFigure> Console::TenantPhysical(
    const std::vector<std::string>& tenants) {
  std::unique_lock<std::mutex> lock(physical_mutex_);
  // A recount already running may have started before the caller's last write: wait for
  // the next one to finish when this call has to start it, else for the running one.
  const uint64_t wanted = physical_finished_ + 1;
  if (!physical_running_ && !physical_stopping_) {
    if (physical_thread_.joinable()) physical_thread_.join();  // finished: only exiting
    physical_running_ = true;
    physical_thread_ = std::thread([this, tenants] {
      const TimestampMs started = deps_.now_ms();
      std::map<std::string, PhysicalFigure> fresh;
      for (const std::string& tenant : tenants) {
        {
          std::lock_guard<std::mutex> check(physical_mutex_);
          if (physical_stopping_) break;
        }
        const TimestampMs as_of = deps_.now_ms();
        Result<objects::UsageReport> usage = deps_.objects->Usage(tenant);
        if (usage.ok()) fresh[tenant] = PhysicalFigure{usage->total_physical_bytes, as_of};
      }
      std::lock_guard<std::mutex> done(physical_mutex_);
      for (auto& [tenant, figure] : fresh) physical_[tenant] = figure;
      physical_running_ = false;
      physical_took_ms_ = deps_.now_ms() - started;
      ++physical_finished_;
      physical_done_.notify_all();
    });
  }
  if (physical_took_ms_ <= kPhysicalWaitMs && !physical_stopping_) {
    physical_done_.wait_for(lock, std::chrono::milliseconds(kPhysicalWaitMs),
                            [&] { return physical_finished_ >= wanted || physical_stopping_; });
  }
  std::map<std::string, PhysicalFigure> out;
  for (const std::string& tenant : tenants) {
    auto it = physical_.find(tenant);
    if (it != physical_.end()) out[tenant] = it->second;
  }
  return out;
}

std::optional<Response> Console::Call::Refuse(meta::Scope scope, const std::string& tenant) const {
  if (!session_.principal.AllowsScope(scope)) {
    return Error(403, "PermissionDenied",
                 "this key's scope is " + std::string(meta::ScopeName(session_.principal.scope)) +
                     "; the call needs " + std::string(meta::ScopeName(scope)));
  }
  if (!tenant.empty() && !session_.principal.AllowsTenant(tenant)) {
    return Error(403, "PermissionDenied", "this key may not use tenant " + tenant);
  }
  return std::nullopt;
}

Response Console::Call::Run() {
  Result<std::map<std::string, std::string>> query = QueryOf(request_);
  if (!query.ok()) return ErrorOf(query.status());
  const std::string& path = request_.path;
  const std::string& method = request_.method;
  auto only = [&](const char* allowed) {
    return Error(405, "MethodNotAllowed", "use " + std::string(allowed) + " on " + path);
  };
  if (path == "/api/overview") return method == "GET" ? Overview() : only("GET");
  if (path == "/api/tenants") return method == "GET" ? Tenants() : only("GET");
  if (path == "/api/buckets") {
    if (method == "GET") return Buckets(*query);
    if (method == "POST") return CreateBucket();
    if (method == "DELETE") return DeleteBucket(*query);
    return only("GET, POST or DELETE");
  }
  if (path == "/api/objects") {
    if (method == "GET") return Objects(*query);
    if (method == "DELETE") return DeleteObjects();
    return only("GET or DELETE");
  }
  if (path == "/api/keys") {
    if (method == "GET") return Keys();
    if (method == "POST") return CreateKey();
    return only("GET or POST");
  }
  if (path == "/api/object") return method == "GET" ? ObjectDetail(*query) : only("GET");
  if (path == "/api/uploads") {
    if (method == "POST") return CreateUpload();
    if (method == "DELETE") return AbortUpload(*query);
    return only("POST or DELETE");
  }
  if (path == "/api/uploads/parts") return method == "GET" ? ListUploadParts(*query) : only("GET");
  if (path == "/api/uploads/complete") return method == "POST" ? CompleteUpload() : only("POST");
  if (path == "/api/share") return method == "POST" ? Share() : only("POST");
  if (path == "/api/rates") {
    if (method != "GET") return only("GET");
    if (auto refused = Refuse(meta::Scope::kRead)) return *refused;
    if (!session_.principal.AllowsTenant("*")) {
      return Error(403, "PermissionDenied",
                   "request rates are the whole server's: they need a key of every tenant");
    }
    return console_->Rates();
  }
  if (path == "/api/jobs") {
    if (auto refused = RefuseOperations()) return *refused;
    if (method == "GET") return console_->ListJobs();
    if (method != "POST") return only("GET or POST");
    Result<Json> body = BodyJson(request_);
    if (!body.ok()) return ErrorOf(body.status());
    Result<std::string> kind = StringMember(*body, "kind");
    if (!kind.ok() || (*kind != "gc" && *kind != "fsck")) {
      return Error(400, "InvalidArgument", "kind is \"gc\" or \"fsck\"");
    }
    return console_->StartJob(*kind);
  }
  if (path.rfind("/api/keys/", 0) == 0) {
    if (method != "DELETE") return only("DELETE");
    Result<std::string> id = http::PercentDecode(path.substr(10), false);
    if (!id.ok() || id->empty()) return Error(400, "InvalidArgument", "no key id");
    return RevokeKey(*id);
  }
  return Error(404, "NotFound", "no such console call");
}

std::vector<std::string> Console::Call::KnownTenants() const {
  const std::vector<std::string>& mine = session_.principal.tenants;
  if (std::find(mine.begin(), mine.end(), "*") == mine.end()) return mine;
  // A key of every tenant sees the tenants that keys name and those holding objects or
  // buckets (a tenant has no row of its own).
  std::set<std::string> all;
  Result<std::vector<KeyView>> keys = console_->deps_.list_keys();
  if (keys.ok()) {
    for (const KeyView& key : *keys) {
      for (const std::string& tenant : key.tenants) {
        if (tenant != "*") all.insert(tenant);
      }
    }
  }
  Result<StoreFigures> figures = console_->CachedStoreFigures();
  if (figures.ok()) all.insert(figures->tenants.begin(), figures->tenants.end());
  return std::vector<std::string>(all.begin(), all.end());
}

Response Console::Call::Overview() {
  if (auto refused = Refuse(meta::Scope::kRead)) return *refused;
  const bool everything = session_.principal.AllowsTenant("*");
  Json tenants = Json::array();
  uint64_t objects = 0, logical = 0, physical = 0;
  bool physical_known = true;
  const std::vector<std::string> known = KnownTenants();
  const std::map<std::string, PhysicalFigure> physical_of = console_->TenantPhysical(known);
  for (const std::string& tenant : known) {
    // Objects and logical bytes from the kept counters: exact and instant.
    Result<objects::UsageReport> usage = console_->deps_.objects->Usage(tenant, false);
    if (!usage.ok()) return ErrorOf(usage.status());
    Json row{{"tenant", tenant},
             {"objects", usage->total_objects},
             {"logical_bytes", usage->total_logical_bytes},
             {"physical_bytes", nullptr},
             {"physical_as_of", nullptr}};
    auto figure = physical_of.find(tenant);
    if (figure != physical_of.end()) {
      row["physical_bytes"] = figure->second.bytes;
      row["physical_as_of"] = FormatTimestamp(figure->second.as_of_ms);
      physical += figure->second.bytes;
    } else {
      physical_known = false;
    }
    tenants.push_back(std::move(row));
    objects += usage->total_objects;
    logical += usage->total_logical_bytes;
  }
  Json out{{"tenants", tenants}};
  Json roots = Json::array();
  Json metadata{{"engine", ""}, {"healthy", true}};
  Json volume = nullptr;
  if (everything) {
    // Store-wide figures read the whole chunk table: only for a key of every tenant, and
    // at most every few seconds however often the page asks.
    Result<StoreFigures> figures = console_->CachedStoreFigures();
    if (!figures.ok()) return ErrorOf(figures.status());
    // The store's own totals: physical bytes count each chunk once, whoever shares it,
    // plus the small objects kept inline in the metadata.
    objects = figures->objects;
    logical = figures->logical_bytes;
    physical = figures->chunk_bytes + figures->inline_bytes;
    physical_known = true;
    out["inline_bytes"] = figures->inline_bytes;
    out["chunks"] = figures->chunks;
    out["unreferenced_chunks"] = figures->unreferenced_chunks;
    for (const StorageRoot& root : figures->roots) {
      roots.push_back(Json{{"class", std::string(StorageClassName(root.storage_class))},
                           {"free_bytes", root.free_bytes},
                           {"total_bytes", root.total_bytes},
                           {"writable", root.writable.ok()},
                           {"logical_bytes", root.logical_bytes},
                           {"chunks", root.chunks},
                           {"inline_bytes", root.inline_bytes},
                           {"physical_bytes", root.chunk_bytes + root.inline_bytes}});
    }
    metadata = Json{{"engine", figures->engine}, {"healthy", figures->metadata.ok()}};
    if (figures->volume) {
      Json mounts = Json::array();
      for (const Mount& mount : figures->mounts) {
        mounts.push_back(Json{{"host", mount.session.host},
                              {"mount_point", mount.session.mount_point},
                              {"version", mount.session.version},
                              {"last_heartbeat", FormatTimestamp(mount.session.heartbeat_ms)},
                              {"alive", mount.alive}});
      }
      volume = Json{{"name", *figures->volume}, {"mounts", mounts}};
    }
  } else {
    out["chunks"] = nullptr;
    out["unreferenced_chunks"] = nullptr;
    out["inline_bytes"] = nullptr;
  }
  out["objects"] = objects;
  out["logical_bytes"] = logical;
  if (physical_known) {
    out["physical_bytes"] = physical;
    out["dedup_ratio"] = physical == 0 ? 1.0 : static_cast<double>(logical) / physical;
  } else {
    // A tenant's first recount has not finished: no total rather than a wrong one.
    out["physical_bytes"] = nullptr;
    out["dedup_ratio"] = nullptr;
  }
  out["storage_roots"] = roots;
  out["metadata"] = metadata;
  out["volume"] = volume;
  return JsonResponse(200, out);
}

Response Console::Call::Tenants() {
  if (auto refused = Refuse(meta::Scope::kRead)) return *refused;
  return JsonResponse(200, Json{{"tenants", KnownTenants()}});
}

Response Console::Call::Buckets(const std::map<std::string, std::string>& query) {
  const std::string tenant = Param(query, "tenant");
  if (tenant.empty()) return Error(400, "InvalidArgument", "tenant= is required");
  if (auto refused = Refuse(meta::Scope::kRead, tenant)) return *refused;
  objects::ObjectService* objects = console_->deps_.objects;
  Result<std::vector<meta::NamespaceRecord>> names = objects->ListNamespaces(tenant);
  if (!names.ok()) return ErrorOf(names.status());
  Result<objects::UsageReport> usage = objects->Usage(tenant, /*physical=*/false);
  if (!usage.ok()) return ErrorOf(usage.status());
  // Explicit buckets and those that exist only through their objects, with their figures.
  std::map<std::string, Json> rows;
  for (const meta::NamespaceRecord& record : *names) {
    rows[record.name] = Json{{"name", record.name},
                             {"created_at", FormatTimestamp(record.created_at_ms)},
                             {"objects", 0},
                             {"logical_bytes", 0}};
  }
  for (const meta::UsageRow& row : usage->rows) {
    Json& entry = rows[row.namespace_name];
    if (entry.is_null()) {
      entry = Json{{"name", row.namespace_name},
                   {"created_at", nullptr},
                   {"objects", 0},
                   {"logical_bytes", 0}};
    }
    entry["objects"] = entry["objects"].get<uint64_t>() + row.objects;
    entry["logical_bytes"] = entry["logical_bytes"].get<uint64_t>() + row.logical_bytes;
  }
  Json list = Json::array();
  for (auto& row : rows) list.push_back(std::move(row.second));
  return JsonResponse(200, Json{{"buckets", list}});
}

Response Console::Call::CreateBucket() {
  Result<Json> body = BodyJson(request_);
  if (!body.ok()) return ErrorOf(body.status());
  Result<std::string> tenant = StringMember(*body, "tenant");
  Result<std::string> name = StringMember(*body, "name");
  if (!tenant.ok() || !name.ok() || tenant->empty() || name->empty()) {
    return Error(400, "InvalidArgument", "tenant and name (strings) are required");
  }
  if (auto refused = Refuse(meta::Scope::kWrite, *tenant)) return *refused;
  if (!s3::IsValidS3BucketName(*name)) {
    return Error(400, "InvalidArgument",
                 "a bucket name is 3-63 characters of a-z, 0-9, '.' and '-', starting and "
                 "ending with a letter or digit");
  }
  Status created = console_->deps_.objects->CreateNamespace(*tenant, *name);
  if (created.code() == StatusCode::kPermissionDenied) {
    return Error(409, "Conflict", "the bucket name " + *name + " is taken by another tenant");
  }
  if (created.code() == StatusCode::kAlreadyExists) {
    return Error(409, "Conflict", "the bucket " + *name + " exists");
  }
  if (!created.ok()) return ErrorOf(created);
  return JsonResponse(201, Json{{"name", *name}});
}

Response Console::Call::DeleteBucket(const std::map<std::string, std::string>& query) {
  const std::string tenant = Param(query, "tenant");
  const std::string name = Param(query, "name");
  if (tenant.empty() || name.empty()) {
    return Error(400, "InvalidArgument", "tenant= and name= are required");
  }
  if (auto refused = Refuse(meta::Scope::kWrite, tenant)) return *refused;
  if (!name.empty() && name.front() == '.') return Error(404, "NotFound", "no such bucket");
  if (auto refused = RefusePolicyBucket(tenant, name)) return *refused;
  Status deleted =
      objects::DeleteBucket(console_->deps_.objects, console_->deps_.multipart, tenant, name);
  if (deleted.code() == StatusCode::kFailedPrecondition) {
    return Error(409, "Conflict", "the bucket " + name + " is not empty: delete its objects first");
  }
  if (deleted.code() == StatusCode::kNotFound) {
    return Error(404, "NotFound", "the bucket " + name + " does not exist");
  }
  if (!deleted.ok()) return ErrorOf(deleted);
  return Empty(204);
}

Response Console::Call::Objects(const std::map<std::string, std::string>& query) {
  meta::ListRequest list;
  list.tenant = Param(query, "tenant");
  list.namespace_name = Param(query, "bucket");
  list.prefix = Param(query, "prefix");
  list.delimiter = Param(query, "delimiter");
  // The cursor is opaque: the key to start after, base64url (it may end in a byte that is
  // not UTF-8, past a folder's keys, which JSON could not carry).
  const std::string cursor = Param(query, "cursor");
  if (!cursor.empty()) {
    Result<std::string> start_after = Base64Decode(cursor, kBase64Url);
    if (!start_after.ok() || start_after->empty()) {
      return Error(400, "InvalidArgument", "cursor= is not one this console gave");
    }
    list.start_after = std::move(start_after).value();
  }
  if (list.tenant.empty() || list.namespace_name.empty()) {
    return Error(400, "InvalidArgument", "tenant= and bucket= are required");
  }
  if (list.namespace_name.front() == '.') return Error(404, "NotFound", "no such bucket");
  if (list.delimiter.size() > 1) {
    return Error(400, "InvalidArgument", "delimiter= is one character or empty");
  }
  if (auto refused = Refuse(meta::Scope::kRead, list.tenant)) return *refused;
  if (auto refused = RefusePolicyBucket(list.tenant, list.namespace_name)) return *refused;
  list.limit = kDefaultListLimit;
  const std::string limit = Param(query, "limit");
  if (!limit.empty()) {
    uint64_t value = 0;
    auto parsed = std::from_chars(limit.data(), limit.data() + limit.size(), value);
    if (parsed.ec != std::errc() || parsed.ptr != limit.data() + limit.size() || value < 1 ||
        value > kMaxListLimit) {
      return Error(400, "InvalidArgument", "limit= is 1..1000");
    }
    list.limit = static_cast<uint32_t>(value);
  }
  Result<meta::ListPage> page = console_->deps_.objects->List(list);
  if (!page.ok()) return ErrorOf(page.status());
  Json objects = Json::array();
  for (const meta::ObjectRecord& object : page->objects) objects.push_back(ObjectJson(object));
  Json next = nullptr;
  if (page->truncated) {
    std::string last;
    if (!page->objects.empty()) last = page->objects.back().key;
    if (!page->common_prefixes.empty() && page->common_prefixes.back() > last) {
      // Past every key of the rolled-up prefix: the next page starts after it.
      last = page->common_prefixes.back();
      last.push_back('\xff');
    }
    if (!last.empty()) next = Base64Encode(last, kBase64Url);
  }
  return JsonResponse(
      200, Json{{"prefixes", page->common_prefixes}, {"objects", objects}, {"next_cursor", next}});
}

Response Console::Call::DeleteObjects() {
  Result<Json> body = BodyJson(request_);
  if (!body.ok()) return ErrorOf(body.status());
  Result<std::string> tenant = StringMember(*body, "tenant");
  Result<std::string> bucket = StringMember(*body, "bucket");
  if (!tenant.ok() || !bucket.ok() || tenant->empty() || bucket->empty()) {
    return Error(400, "InvalidArgument", "tenant and bucket (strings) are required");
  }
  auto keys = body->find("keys");
  if (keys == body->end() || !keys->is_array() || keys->empty() || keys->size() > kMaxDeleteKeys) {
    return Error(400, "InvalidArgument", "keys is an array of 1..1000 strings");
  }
  for (const Json& key : *keys) {
    if (!key.is_string()) return Error(400, "InvalidArgument", "keys holds strings only");
  }
  if (auto refused = Refuse(meta::Scope::kWrite, *tenant)) return *refused;
  if (bucket->front() == '.') return Error(404, "NotFound", "no such bucket");
  if (auto refused = RefusePolicyBucket(*tenant, *bucket)) return *refused;
  Json deleted = Json::array();
  Json errors = Json::array();
  for (const Json& key : *keys) {
    const std::string name = key.get<std::string>();
    Status status = console_->deps_.objects->DeleteByKey(*tenant, *bucket, name).status();
    if (status.ok() || status.code() == StatusCode::kNotFound) {
      deleted.push_back(name);
    } else {
      errors.push_back(Json{{"key", name}, {"message", status.message()}});
    }
  }
  return JsonResponse(200, Json{{"deleted", deleted}, {"errors", errors}});
}

Response Console::Call::Keys() {
  if (auto refused = Refuse(meta::Scope::kAdmin)) return *refused;
  Result<std::vector<KeyView>> keys = console_->deps_.list_keys();
  if (!keys.ok()) return ErrorOf(keys.status());
  Json list = Json::array();
  for (const KeyView& key : *keys) {
    if (!Covers(key)) continue;  // another tenant's key: not even its id is shown
    list.push_back(Json{{"id", key.id},
                        {"kind", key.s3 ? "s3" : "api"},
                        {"scope", std::string(meta::ScopeName(key.scope))},
                        {"tenants", key.tenants},
                        {"revoked", key.revoked},
                        {"created_at", FormatTimestamp(key.created_at_ms)},
                        {"description", key.description}});
  }
  return JsonResponse(200, Json{{"keys", list}});
}

Response Console::Call::CreateKey() {
  if (auto refused = Refuse(meta::Scope::kAdmin)) return *refused;
  Result<Json> body = BodyJson(request_);
  if (!body.ok()) return ErrorOf(body.status());
  Result<std::string> kind = StringMember(*body, "kind");
  Result<std::string> scope_text = StringMember(*body, "scope");
  Result<std::string> description = StringMember(*body, "description");
  if (!kind.ok() || !scope_text.ok() || !description.ok() || (*kind != "api" && *kind != "s3")) {
    return Error(400, "InvalidArgument",
                 "kind is \"api\" or \"s3\"; scope and description strings");
  }
  Result<meta::Scope> scope = meta::ParseScope(*scope_text);
  if (!scope.ok()) return Error(400, "InvalidArgument", "scope is read, write or admin");
  NewKey key;
  key.s3 = *kind == "s3";
  key.scope = *scope;
  key.description = *description;
  auto tenants = body->find("tenants");
  if (tenants == body->end() || !tenants->is_array()) {
    return Error(400, "InvalidArgument", "tenants is an array of tenant names (or \"*\")");
  }
  for (const Json& tenant : *tenants) {
    if (!tenant.is_string()) return Error(400, "InvalidArgument", "tenants holds strings only");
    key.tenants.push_back(tenant.get<std::string>());
  }
  // A key may not hand out more than it has: its tenants only.
  for (const std::string& tenant : key.tenants) {
    if (!session_.principal.AllowsTenant(tenant)) {
      return Error(403, "PermissionDenied", "this key may not grant tenant " + tenant);
    }
  }
  Result<CreatedKey> created = console_->deps_.create_key(key);
  if (!created.ok()) return ErrorOf(created.status());
  return JsonResponse(201, Json{{"id", created->id}, {"secret", created->secret}});
}

Response Console::Call::RevokeKey(const std::string& id) {
  if (auto refused = Refuse(meta::Scope::kAdmin)) return *refused;
  // By id only (never a whole key text in a URL), and only a key whose every tenant this
  // session has: a key of another tenant (or of every tenant) is "not found" to it.
  Result<std::vector<KeyView>> keys = console_->deps_.list_keys();
  if (!keys.ok()) return ErrorOf(keys.status());
  auto key = std::find_if(keys->begin(), keys->end(),
                          [&](const KeyView& candidate) { return candidate.id == id; });
  if (key == keys->end() || !Covers(*key)) {
    return Error(404, "NotFound", "no key " + id + " that this session may manage");
  }
  Result<std::string> revoked = console_->deps_.revoke_key(id);
  if (!revoked.ok()) return ErrorOf(revoked.status());
  if (console_->deps_.authenticator != nullptr) console_->deps_.authenticator->Invalidate(*revoked);
  console_->EndSessionsOf(*revoked);
  return Empty(204);
}

bool Console::Call::Covers(const KeyView& key) const {
  if (key.tenants.empty()) return false;
  for (const std::string& tenant : key.tenants) {
    // "*" is covered only by "*": AllowsTenant("*") holds just for keys of every tenant.
    if (!session_.principal.AllowsTenant(tenant)) return false;
  }
  return true;
}

std::optional<Response> Console::Call::RefusePolicyBucket(const std::string& tenant,
                                                          const std::string& bucket) const {
  if (!session_.s3) return std::nullopt;
  Result<std::map<std::string, std::string>> settings =
      console_->deps_.objects->meta_store()->GetNamespaceSettings(tenant, bucket);
  if (!settings.ok() && settings.status().code() != StatusCode::kNotFound) {
    return ErrorOf(settings.status());
  }
  // The S3 API's name of the bucket policy setting (api/s3/handlers/s3_access.h).
  if (settings.ok() && settings->count("policy") > 0) {
    return Error(403, "PermissionDenied",
                 "the bucket " + bucket +
                     " has a bucket policy, which the console does not evaluate: use the S3 "
                     "API with this key, or sign in with an API key");
  }
  return std::nullopt;
}

std::variant<Response, StreamCall> Console::AdmitStream(const Request& request) {
  std::variant<Response, StreamCall> admitted = Error(500, "Internal", "not admitted");
  try {
    admitted = [&]() -> std::variant<Response, StreamCall> {
      if (auto refused = CheckHost(request)) return *refused;
      const bool changes = request.method == "PUT";
      if (changes) {
        if (auto refused = CheckOrigin(request)) return *refused;
      }
      std::string id;
      Result<Session> session = CurrentSession(request, &id);
      if (!session.ok()) return ErrorOf(session.status());
      if (changes) {
        if (auto refused = CheckCsrf(request, *session)) return *refused;
      }
      const std::string key_id = session->key_id;
      Call call(this, request, std::move(session).value());
      std::variant<Response, StreamCall> admitted = call.AdmitStream();
      if (auto* response = std::get_if<Response>(&admitted)) response->key_id = key_id;
      if (auto* stream = std::get_if<StreamCall>(&admitted)) stream->key_id = key_id;
      return admitted;
    }();
  } catch (const std::exception& e) {
    fprintf(stderr, "cairn: console: %s %s failed: %s\n", request.method.c_str(),
            request.path.c_str(), e.what());
    admitted = Error(500, "Internal", "the console call failed; see the server's log");
  }
  if (auto* response = std::get_if<Response>(&admitted)) AddSecurityHeaders(response->headers);
  return admitted;
}

std::variant<Response, StreamCall> Console::Call::AdmitStream() {
  Result<std::map<std::string, std::string>> query = QueryOf(request_);
  if (!query.ok()) return ErrorOf(query.status());
  StreamCall call;
  call.tenant = Param(*query, "tenant");
  call.bucket = Param(*query, "bucket");
  call.key = Param(*query, "key");
  if (call.tenant.empty() || call.bucket.empty() || call.key.empty()) {
    return Error(400, "InvalidArgument", "tenant=, bucket= and key= are required");
  }
  if (call.bucket.front() == '.') return Error(404, "NotFound", "no such bucket");
  const bool download = request_.path == "/api/download";
  if (auto refused = Refuse(download ? meta::Scope::kRead : meta::Scope::kWrite, call.tenant)) {
    return *refused;
  }
  if (auto refused = RefusePolicyBucket(call.tenant, call.bucket)) return *refused;
  // The bytes are stored as sent: a header asking for anything else is refused, never
  // ignored.
  if (!download) {
    for (const char* unsupported : {"content-encoding", "content-md5"}) {
      const std::string* value = request_.Header(unsupported);
      if (value != nullptr &&
          !(std::string_view(unsupported) == "content-encoding" && *value == "identity")) {
        return Error(400, "InvalidArgument",
                     std::string("console uploads do not support ") + unsupported +
                         ": the bytes are stored as sent (use the S3 or native API)");
      }
    }
  }
  if (download) {
    call.kind = StreamCall::Kind::kDownload;
    const std::string disposition = Param(*query, "disposition");
    if (!disposition.empty() && disposition != "attachment" && disposition != "inline") {
      return Error(400, "InvalidArgument", "disposition= is attachment or inline");
    }
    call.inline_disposition = disposition == "inline";
    return call;
  }
  if (request_.path == "/api/uploads/part") {
    call.kind = StreamCall::Kind::kPart;
    const std::string part = Param(*query, "part");
    int number = 0;
    auto parsed = std::from_chars(part.data(), part.data() + part.size(), number);
    if (parsed.ec != std::errc() || parsed.ptr != part.data() + part.size() || number < 1 ||
        number > objects::kMaxPartNumber) {
      return Error(400, "InvalidArgument", "part= is 1..10000");
    }
    call.part = number;
    std::optional<Response> refused;
    Result<objects::MultipartUpload> upload = NamedUpload(*query, &refused);
    if (refused) return *refused;
    if (!upload.ok()) return ErrorOf(upload.status());
    call.upload = std::move(upload).value();
    return call;
  }
  if (auto refused = RefuseForeignBucket(call.tenant, call.bucket)) return *refused;
  call.kind = StreamCall::Kind::kUpload;
  return call;
}

std::optional<Response> Console::Call::RefuseForeignBucket(const std::string& tenant,
                                                           const std::string& bucket) const {
  Result<std::vector<std::string>> owners =
      console_->deps_.objects->meta_store()->NamespaceOwners(bucket);
  if (!owners.ok()) return ErrorOf(owners.status());
  if (!owners->empty() && std::find(owners->begin(), owners->end(), tenant) == owners->end()) {
    return Error(409, "Conflict", "the bucket name " + bucket + " is taken by another tenant");
  }
  return std::nullopt;
}

Result<objects::MultipartUpload> Console::Call::NamedUpload(
    const std::map<std::string, std::string>& query, std::optional<Response>* refused) const {
  const std::string tenant = Param(query, "tenant");
  const std::string bucket = Param(query, "bucket");
  const std::string key = Param(query, "key");
  const std::string upload_id = Param(query, "upload_id");
  if (tenant.empty() || bucket.empty() || key.empty() || upload_id.empty()) {
    *refused = Error(400, "InvalidArgument", "tenant=, bucket=, key= and upload_id= are required");
    return InvalidArgumentError("incomplete");
  }
  if (bucket.front() == '.') {
    *refused = Error(404, "NotFound", "no such bucket");
    return NotFoundError("no such bucket");
  }
  if ((*refused = Refuse(meta::Scope::kWrite, tenant))) return PermissionDeniedError("refused");
  if ((*refused = RefusePolicyBucket(tenant, bucket))) return PermissionDeniedError("refused");
  Result<objects::MultipartUpload> upload =
      console_->deps_.multipart->Get(tenant, bucket, key, upload_id);
  if (!upload.ok() && upload.status().code() == StatusCode::kNotFound) {
    *refused = Error(404, "NotFound", "no upload " + upload_id + " of " + key + " in " + bucket);
  }
  return upload;
}

Response Console::Call::ObjectDetail(const std::map<std::string, std::string>& query) {
  const std::string tenant = Param(query, "tenant");
  const std::string bucket = Param(query, "bucket");
  const std::string key = Param(query, "key");
  if (tenant.empty() || bucket.empty() || key.empty()) {
    return Error(400, "InvalidArgument", "tenant=, bucket= and key= are required");
  }
  if (bucket.front() == '.') return Error(404, "NotFound", "no such bucket");
  if (auto refused = Refuse(meta::Scope::kRead, tenant)) return *refused;
  if (auto refused = RefusePolicyBucket(tenant, bucket)) return *refused;
  objects::ObjectService* objects = console_->deps_.objects;
  Result<meta::ObjectRecord> object = objects->StatByKey(tenant, bucket, key);
  if (!object.ok()) return ErrorOf(object.status());
  Json out = ObjectJson(*object);
  Json metadata = Json::object();
  Json tags = Json::object();
  for (const auto& [name, value] : object->user_metadata) {
    if (name.rfind(objects::kTagPrefix, 0) == 0) {
      tags[name.substr(objects::kTagPrefix.size())] = value;
    } else if (!name.empty() && name.front() != '\x01') {
      metadata[name] = value;
    }
  }
  out["metadata"] = metadata;
  out["tags"] = tags;
  out["inline"] = object->inline_data.has_value();
  const bool everything = session_.principal.AllowsTenant("*");
  Json chunks = Json::array();
  uint64_t total = 0;
  if (!object->inline_data) {
    meta::MetaStore* store = objects->meta_store();
    Result<std::vector<meta::ChunkRef>> refs = store->GetChunks(object->id);
    if (!refs.ok()) return ErrorOf(refs.status());
    total = refs->size();
    std::map<std::string, int> within;  // a chunk twice in this object is shared too
    for (const meta::ChunkRef& ref : *refs) ++within[ref.digest.ToHex()];
    // Each chunk's holders cost a lookup: the first chunks only, for a page to show.
    constexpr size_t kShownChunks = 100;
    for (size_t i = 0; i < refs->size() && i < kShownChunks; ++i) {
      const meta::ChunkRef& ref = (*refs)[i];
      Result<std::vector<ObjectId>> holders =
          store->FindObjectsWithChunks(object->storage_class, {ref.digest});
      if (!holders.ok()) return ErrorOf(holders.status());
      // Only what the session may see: that another tenant (or the filesystem) holds the
      // same bytes would tell a tenant what others store. A key of every tenant sees all.
      uint64_t references = 0;
      if (everything) {
        Result<std::vector<meta::ChunkOwner>> owners =
            store->FindOwnersWithChunks(object->storage_class, {ref.digest});
        references = holders->size() + (owners.ok() ? owners->size() : 0);
      } else {
        for (const ObjectId& holder : *holders) {
          references += holder == object->id || store->GetObject(tenant, holder).ok();
        }
      }
      const int repeats = within[ref.digest.ToHex()];
      if (repeats > 1) references += repeats - 1;
      chunks.push_back(Json{{"digest", ref.digest.ToHex()},
                            {"size_bytes", ref.size_bytes},
                            {"references", references},
                            {"shared", references > 1}});
    }
  }
  out["chunks"] = chunks;
  out["chunk_count"] = total;
  return JsonResponse(200, out);
}

Response Console::Call::CreateUpload() {
  Result<Json> body = BodyJson(request_);
  if (!body.ok()) return ErrorOf(body.status());
  Result<std::string> tenant = StringMember(*body, "tenant");
  Result<std::string> bucket = StringMember(*body, "bucket");
  Result<std::string> key = StringMember(*body, "key");
  Result<std::string> type = StringMember(*body, "content_type");
  if (!tenant.ok() || !bucket.ok() || !key.ok() || !type.ok() || tenant->empty() ||
      bucket->empty() || key->empty()) {
    return Error(400, "InvalidArgument", "tenant, bucket and key (strings) are required");
  }
  if (bucket->front() == '.') return Error(404, "NotFound", "no such bucket");
  if (auto refused = Refuse(meta::Scope::kWrite, *tenant)) return *refused;
  if (auto refused = RefusePolicyBucket(*tenant, *bucket)) return *refused;
  if (auto refused = RefuseForeignBucket(*tenant, *bucket)) return *refused;
  const std::string content_type = type->empty() ? "application/octet-stream" : *type;
  if (content_type.size() > 256 || !http::IsSafeHeaderValue(content_type)) {
    return Error(400, "InvalidArgument", "content_type is a header value of at most 256 bytes");
  }
  Result<objects::MultipartUpload> upload = console_->deps_.multipart->Create(
      *tenant, *bucket, *key, StorageClass::kHot, content_type, {});
  if (!upload.ok()) return ErrorOf(upload.status());
  return JsonResponse(201, Json{{"upload_id", upload->upload_id}});
}

Response Console::Call::ListUploadParts(const std::map<std::string, std::string>& query) {
  std::optional<Response> refused;
  Result<objects::MultipartUpload> upload = NamedUpload(query, &refused);
  if (refused) return *refused;
  if (!upload.ok()) return ErrorOf(upload.status());
  bool truncated = false;
  Result<std::vector<objects::PartInfo>> parts =
      console_->deps_.multipart->ListParts(*upload, 0, objects::kMaxPartNumber, &truncated);
  if (!parts.ok()) return ErrorOf(parts.status());
  Json list = Json::array();
  for (const objects::PartInfo& part : *parts) {
    list.push_back(
        Json{{"part", part.part_number}, {"etag", part.etag}, {"size_bytes", part.size_bytes}});
  }
  return JsonResponse(200, Json{{"parts", list}});
}

Response Console::Call::CompleteUpload() {
  Result<Json> body = BodyJson(request_);
  if (!body.ok()) return ErrorOf(body.status());
  std::map<std::string, std::string> query;
  for (const char* name : {"tenant", "bucket", "key", "upload_id"}) {
    Result<std::string> value = StringMember(*body, name);
    if (!value.ok()) return ErrorOf(value.status());
    query[name] = *value;
  }
  auto parts = body->find("parts");
  if (parts == body->end() || !parts->is_array() || parts->empty() ||
      parts->size() > static_cast<size_t>(objects::kMaxPartNumber)) {
    return Error(400, "InvalidArgument", "parts is an array of 1..10000 {\"part\",\"etag\"}");
  }
  std::vector<objects::CompletedPartSpec> specs;
  for (const Json& part : *parts) {
    auto number = part.is_object() ? part.find("part") : part.end();
    auto etag = part.is_object() ? part.find("etag") : part.end();
    if (!part.is_object() || number == part.end() || !number->is_number_integer() ||
        etag == part.end() || !etag->is_string()) {
      return Error(400, "InvalidArgument",
                   "each part is {\"part\": <1..10000>, \"etag\": \"...\"}");
    }
    const int64_t value = number->get<int64_t>();
    if (value < 1 || value > objects::kMaxPartNumber) {
      return Error(400, "InvalidArgument", "a part number is 1..10000");
    }
    specs.push_back({static_cast<int>(value), etag->get<std::string>()});
  }
  objects::MultipartService* multipart = console_->deps_.multipart;
  // A retried completion whose first answer was lost gets the same answer.
  auto completed_before = [&]() {
    return multipart->CompletedFrom(query["tenant"], query["bucket"], query["key"],
                                    query["upload_id"], specs);
  };
  std::optional<Response> refused;
  Result<objects::MultipartUpload> upload = NamedUpload(query, &refused);
  if (refused) {
    if (upload.status().code() == StatusCode::kNotFound && query["bucket"].front() != '.') {
      Result<meta::ObjectRecord> done = completed_before();
      if (done.ok()) return JsonResponse(201, ObjectJson(*done));
    }
    return *refused;
  }
  if (!upload.ok()) return ErrorOf(upload.status());
  Result<meta::CommitResult> committed = multipart->Complete(*upload, specs);
  if (!committed.ok()) {
    Result<meta::ObjectRecord> done = completed_before();
    if (done.ok()) return JsonResponse(201, ObjectJson(*done));
    return ErrorOf(committed.status());
  }
  return JsonResponse(201, ObjectJson(committed->object));
}

Response Console::Call::AbortUpload(const std::map<std::string, std::string>& query) {
  std::optional<Response> refused;
  Result<objects::MultipartUpload> upload = NamedUpload(query, &refused);
  if (refused) return *refused;
  if (!upload.ok()) return ErrorOf(upload.status());
  Status aborted = console_->deps_.multipart->Abort(*upload);
  if (!aborted.ok()) return ErrorOf(aborted);
  return Empty(204);
}

Response Console::Call::Share() {
  Result<Json> body = BodyJson(request_);
  if (!body.ok()) return ErrorOf(body.status());
  Result<std::string> tenant = StringMember(*body, "tenant");
  Result<std::string> bucket = StringMember(*body, "bucket");
  Result<std::string> key = StringMember(*body, "key");
  auto expires = body->find("expires_seconds");
  if (!tenant.ok() || !bucket.ok() || !key.ok() || tenant->empty() || bucket->empty() ||
      key->empty() || expires == body->end() || !expires->is_number_integer()) {
    return Error(400, "InvalidArgument",
                 "tenant, bucket, key (strings) and expires_seconds (an integer) are required");
  }
  const int64_t seconds = expires->get<int64_t>();
  if (seconds < 1 || seconds > 604800) {
    return Error(400, "InvalidArgument", "expires_seconds is 1..604800 (7 days)");
  }
  if (bucket->front() == '.') return Error(404, "NotFound", "no such bucket");
  if (auto refused = Refuse(meta::Scope::kRead, *tenant)) return *refused;
  if (auto refused = RefusePolicyBucket(*tenant, *bucket)) return *refused;
  if (!session_.s3) {
    return Error(409, "Conflict",
                 "a share link is a presigned S3 URL, signed with an S3 secret: sign in with "
                 "an S3 key pair to share");
  }
  if (!console_->deps_.presign) {
    return Error(501, "NotImplemented", "the S3 API is off on this server: no share links");
  }
  Result<meta::ObjectRecord> object = console_->deps_.objects->StatByKey(*tenant, *bucket, *key);
  if (!object.ok()) return ErrorOf(object.status());
  const std::string* host = request_.Header("host");
  ShareRequest share{session_.key_id, *bucket, *key, seconds, host == nullptr ? "" : *host};
  Result<std::string> url = console_->deps_.presign(share);
  if (!url.ok()) return ErrorOf(url.status());
  return JsonResponse(
      200, Json{{"url", *url},
                {"expires_at", FormatTimestamp(console_->deps_.now_ms() + seconds * 1000)}});
}

std::optional<Response> Console::Call::RefuseOperations() const {
  if (auto refused = Refuse(meta::Scope::kAdmin)) return refused;
  if (!session_.principal.AllowsTenant("*")) {
    return Error(403, "PermissionDenied",
                 "GC and fsck act on the whole store: they need an admin key of every tenant");
  }
  return std::nullopt;
}

Response Console::StartJob(const std::string& kind) {
  std::function<Result<JobOutcome>(const JobProgressFn&)> run =
      kind == "gc" ? deps_.run_gc : deps_.run_fsck;
  if (!run) return Error(501, "NotImplemented", kind + " cannot run from this server's console");
  std::lock_guard<std::mutex> lock(jobs_mutex_);
  for (const Job& job : jobs_) {
    if (job.kind == kind && !job.outcome) {
      return Error(409, "Conflict",
                   "a " + kind + " job is running (job " + std::to_string(job.id) + ")");
    }
  }
  // The last run of this kind has finished: its thread is joined at once.
  auto previous = workers_.find(kind);
  if (previous != workers_.end()) {
    previous->second.join();
    workers_.erase(previous);
  }
  Job job;
  job.id = next_job_++;
  job.kind = kind;
  job.started_ms = deps_.now_ms();
  jobs_.push_back(job);
  constexpr size_t kKeptJobs = 20;
  // Only finished jobs are dropped: a running one must stay visible, or the next start of
  // its kind would not see it and would wait for its thread while holding this lock.
  for (auto it = jobs_.begin(); jobs_.size() > kKeptJobs && it != jobs_.end();) {
    it = it->outcome ? jobs_.erase(it) : it + 1;
  }
  const uint64_t id = job.id;
  workers_[kind] = std::thread([this, id, run]() {
    Result<JobOutcome> outcome = run([this, id](const JobProgress& progress) {
      std::lock_guard<std::mutex> progress_lock(jobs_mutex_);
      for (Job& entry : jobs_) {
        if (entry.id == id) entry.progress = progress;
      }
    });
    std::lock_guard<std::mutex> done_lock(jobs_mutex_);
    for (Job& entry : jobs_) {
      if (entry.id != id) continue;
      entry.outcome = std::move(outcome);
      entry.finished_ms = deps_.now_ms();
    }
  });
  Json out = Json{{"id", std::to_string(job.id)},
                  {"kind", kind},
                  {"state", "running"},
                  {"started_at", FormatTimestamp(job.started_ms)},
                  {"finished_at", nullptr},
                  {"elapsed_ms", 0},
                  {"progress", nullptr},
                  {"result", nullptr},
                  {"error", nullptr}};
  return JsonResponse(202, out);
}

Response Console::ListJobs() {
  const TimestampMs now = deps_.now_ms();
  Json list = Json::array();
  std::lock_guard<std::mutex> lock(jobs_mutex_);
  for (auto it = jobs_.rbegin(); it != jobs_.rend(); ++it) {
    const Job& job = *it;
    Json entry{{"id", std::to_string(job.id)},
               {"kind", job.kind},
               {"started_at", FormatTimestamp(job.started_ms)},
               {"progress", nullptr},
               {"result", nullptr},
               {"error", nullptr}};
    if (!job.outcome) {
      entry["state"] = "running";
      entry["finished_at"] = nullptr;
      if (!job.progress.phase.empty()) {
        entry["progress"] = Json{{"phase", job.progress.phase},
                                 {"done", job.progress.done},
                                 {"total", job.progress.total}};
      }
      entry["elapsed_ms"] = now > job.started_ms ? now - job.started_ms : 0;
    } else {
      entry["finished_at"] = FormatTimestamp(job.finished_ms);
      entry["elapsed_ms"] = job.finished_ms > job.started_ms ? job.finished_ms - job.started_ms : 0;
      if (job.outcome->ok()) {
        const JobOutcome& outcome = **job.outcome;
        entry["state"] = "done";
        Json result = Json::object();
        for (const auto& [name, value] : outcome.counts) result[name] = value;
        if (outcome.ok) result["ok"] = *outcome.ok;
        if (!outcome.note.empty()) result["note"] = outcome.note;
        entry["result"] = result;
      } else {
        entry["state"] = "failed";
        entry["error"] = job.outcome->status().ToString();
      }
    }
    list.push_back(entry);
  }
  return JsonResponse(200, Json{{"jobs", list}});
}

}  // namespace cairn::api::console
