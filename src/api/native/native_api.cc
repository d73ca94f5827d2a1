#include "api/native/native_api.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

#include "api/common/access_log.h"
#include "api/common/download.h"
#include "api/common/error_log.h"
#include "api/common/object_json.h"
#include "api/common/upload_pipeline.h"
#include "core/base64.h"
#include "objects/chunk_service.h"

namespace cairn::api {
namespace {

using http::Awaitable;
using http::Exchange;
using http::ResponseHead;
using Json = nlohmann::json;

constexpr size_t kTransferBufferBytes = 256 * 1024;
constexpr uint32_t kDefaultListLimit = 100;
constexpr uint32_t kMaxListLimit = 1000;
constexpr char kEveryTenant[] = "*";
// The largest chunk body the chunk door takes (the store's chunks are 4 MiB by default).
constexpr uint64_t kMaxChunkBodyBytes = 64ull << 20;

struct HttpError {
  int status;
  const char* code;
};

HttpError MapStatus(const Status& status) {
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
      return {400, "InvalidArgument"};
    case StatusCode::kUnauthenticated:
      return {401, "Unauthenticated"};
    case StatusCode::kPermissionDenied:
      return {403, "PermissionDenied"};
    case StatusCode::kNotFound:
      return {404, "NotFound"};
    case StatusCode::kAlreadyExists:
    case StatusCode::kAborted:
    case StatusCode::kFailedPrecondition:
      return {409, "Conflict"};
    case StatusCode::kPayloadTooLarge:
      return {413, "PayloadTooLarge"};
    case StatusCode::kOutOfRange:
      return {416, "RangeNotSatisfiable"};
    case StatusCode::kResourceExhausted:
      return {507, "InsufficientStorage"};
    case StatusCode::kDeadlineExceeded:
      return {408, "RequestTimeout"};
    case StatusCode::kUnavailable:
      return {503, "Unavailable"};
    case StatusCode::kDataLoss:
      return {500, "DataLoss"};
    default:
      return {500, "Internal"};
  }
}

// Per-request context: what the metrics and the access log need once the request ends.
struct Call {
  explicit Call(Exchange& exchange) : exchange(exchange), request_id(RandomRequestId()) {}

  Exchange& exchange;
  std::string request_id;  // sent as X-Request-Id with every response
  std::string namespace_name;
  std::string tenant;
  std::string key;
  std::string key_id;  // of the authenticated credential (never its secret)
  int status = 0;

  // Every response carries the request id, which the access log line shows too.
  void Stamp(ResponseHead& head) const { head.headers.emplace_back("X-Request-Id", request_id); }
};

Awaitable<void> SendJson(Call& call, int status, const Json& body, http::HeaderList extra_headers) {
  ResponseHead head;
  head.status = status;
  head.headers = std::move(extra_headers);
  head.headers.emplace_back("Content-Type", "application/json");
  call.Stamp(head);
  call.status = status;
  (void)co_await call.exchange.Respond(std::move(head), body.dump() + "\n");
}

Awaitable<void> SendError(Call& call, const Status& status, http::HeaderList extra) {
  HttpError error = MapStatus(status);
  std::pair<ResponseHead, std::string> rendered =
      RenderJsonError(error.status, error.code, status.message());
  for (auto& header : extra) rendered.first.headers.push_back(std::move(header));
  call.Stamp(rendered.first);
  call.status = error.status;
  LogServerError("native", error.status, error.code, status.message());
  (void)co_await call.exchange.Respond(std::move(rendered.first), std::move(rendered.second));
}

// The overloads without extra headers are plain functions, so the empty list is not a
// temporary inside a coroutine's co_await expression.
Awaitable<void> SendJson(Call& call, int status, const Json& body) {
  return SendJson(call, status, body, http::HeaderList());
}
Awaitable<void> SendError(Call& call, const Status& status) {
  return SendError(call, status, http::HeaderList());
}

// GCC 12 coroutine pitfalls, avoided throughout this file: a capturing lambda temporary
// or a braced aggregate temporary inside a co_await expression is destroyed twice, and
// structured bindings in a coroutine frame are unreliable. So lambdas handed to the pool
// are named locals, responses are built in named variables, and loops use .first/.second.
// GCC 12 also miscompiles string-literal initializer lists inside coroutines; build header
// lists through this function instead.
http::HeaderList Headers(std::string name, std::string value) {
  http::HeaderList list;
  list.emplace_back(std::move(name), std::move(value));
  return list;
}

// The methods RFC 9110 defines (and PATCH): a route that does not take one answers 405
// with Allow; any other method is unknown to the server and answers 501 whatever the path.
bool IsKnownMethod(const std::string& method) {
  static const char* kKnown[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                 "CONNECT", "OPTIONS", "TRACE", "PATCH"};
  for (const char* known : kKnown) {
    if (method == known) return true;
  }
  return false;
}

Awaitable<void> SendMethodError(Call& call, int status, const char* code, std::string message,
                                std::string allow) {
  std::pair<ResponseHead, std::string> rendered = RenderJsonError(status, code, message);
  if (!allow.empty()) rendered.first.headers.emplace_back("Allow", std::move(allow));
  call.Stamp(rendered.first);
  call.status = status;
  (void)co_await call.exchange.Respond(std::move(rendered.first), std::move(rendered.second));
}

// 405 for a method this route does not take; `allow` lists the ones it does.
Awaitable<void> MethodNotAllowed(Call& call, const std::string& method, std::string allow) {
  return SendMethodError(call, 405, "MethodNotAllowed",
                         "method " + method.substr(0, 32) + " is not allowed here; use " + allow,
                         allow);
}

std::string HeaderOr(const http::RequestHead& request, std::string_view name,
                     std::string fallback = "") {
  const std::string* value = request.Header(name);
  return value ? *value : fallback;
}

// Standard Base64 (Content-MD5); the '=' padding may be left out.
Result<std::string> StandardBase64Decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  return Base64Decode(text, {Base64Alphabet::kStandard, /*padding=*/false});
}

std::string QuotedEtag(const meta::ObjectRecord& object) {
  return "\"" + object.content_hash.ToHex() + "\"";
}

// If-None-Match: "*" or a list of (possibly weak) entity tags.
bool NoneMatchHits(const std::string& header, const std::string& etag) {
  if (header.find('*') != std::string::npos) return true;
  size_t pos = 0;
  while ((pos = header.find(etag, pos)) != std::string::npos) return true;
  return false;
}

// `etag` is QuotedEtag(object), which the caller needs as well.
http::HeaderList ObjectHeaders(const meta::ObjectRecord& object, const std::string& etag) {
  // Built in place: an initializer list would copy every name and value once more.
  http::HeaderList headers;
  headers.reserve(9 + object.user_metadata.size());
  headers.emplace_back("ETag", etag);
  headers.emplace_back("Last-Modified", FormatHttpDate(object.created_at_ms));
  headers.emplace_back("Accept-Ranges", "bytes");
  headers.emplace_back("X-Object-Id", object.id.ToString());
  headers.emplace_back("X-Key", http::PercentEncode(object.key));
  // The quoted ETag is the content hash in hex.
  headers.emplace_back("X-Content-SHA256", etag.substr(1, etag.size() - 2));
  headers.emplace_back("X-Storage-Class", StorageClassName(object.storage_class));
  for (const auto& [name, value] : object.user_metadata) {
    if (objects::IsInternalMetadata(name)) continue;  // S3 tags and bookkeeping
    headers.emplace_back("X-Meta-" + name, value);
  }
  return headers;
}

Json ListJson(const meta::ListPage& page) {
  Json items = Json::array();
  for (const auto& object : page.objects) items.push_back(ObjectJson(object));
  Json body{{"objects", std::move(items)}, {"truncated", page.truncated}};
  if (page.truncated && !page.objects.empty()) {
    body["next_cursor"] = Base64Encode(page.objects.back().key, kBase64Url);
  } else {
    body["next_cursor"] = nullptr;
  }
  return body;
}

Json UsageJson(const objects::UsageReport& report) {
  Json rows = Json::array();
  for (const auto& row : report.rows) {
    rows.push_back({{"namespace", row.namespace_name},
                    {"storage_class", std::string(StorageClassName(row.storage_class))},
                    {"objects", row.objects},
                    {"logical_bytes", row.logical_bytes},
                    {"physical_bytes", row.physical_bytes}});
  }
  return {{"tenant", report.tenant},
          {"namespaces", std::move(rows)},
          {"total",
           {{"objects", report.total_objects},
            {"logical_bytes", report.total_logical_bytes},
            {"physical_bytes", report.total_physical_bytes}}},
          {"incomplete_multipart",
           {{"parts", report.incomplete_multipart_parts},
            {"logical_bytes", report.incomplete_multipart_logical_bytes},
            {"physical_bytes", report.incomplete_multipart_physical_bytes}}}};
}

Json StatusJson(std::string status, std::string reason = "") {
  Json body = Json::object();
  body["status"] = std::move(status);
  if (!reason.empty()) body["reason"] = std::move(reason);
  return body;
}

void RecordRequest(metrics::Registry* registry, const std::string& method, int status,
                   const std::string& namespace_name, double seconds) {
  registry->Increment(
      "cairn_requests_total",
      {{"method", method}, {"status", std::to_string(status)}, {"namespace", namespace_name}});
  registry->Observe("cairn_request_duration_seconds",
                    {{"method", method}, {"namespace", namespace_name}}, seconds);
}

class Router {
 public:
  Router(const NativeApiDependencies& deps, Call& call) : deps_(deps), call_(call) {}

  Awaitable<void> Route();

 private:
  const http::RequestHead& request() const { return call_.exchange.request(); }
  int64_t NowMs() const { return deps_.objects->clock()->NowMs(); }

  // Authenticates and authorizes for `tenant` (kEveryTenant: a key for every tenant, not
  // rate limited); on failure the error is sent.
  Awaitable<bool> Admit(const std::string& tenant, meta::Scope scope);
  // Records the object a call addresses (for the access log), then requires a tenant and
  // admits the caller for it; on failure the error is sent.
  Awaitable<bool> AdmitObjectCall(const std::string& namespace_name, const std::string& tenant,
                                  const std::string& key, meta::Scope scope);
  Awaitable<void> Upload();
  Awaitable<void> Download(std::optional<ObjectId> id, std::string namespace_name,
                           std::string tenant, std::string key);
  Awaitable<void> Delete(std::optional<ObjectId> id, std::string namespace_name, std::string tenant,
                         std::string key);
  Awaitable<void> List();
  Awaitable<void> Chunk(StorageClass storage_class, Digest digest);
  Awaitable<void> ChunkSpace(StorageClass storage_class);
  Awaitable<void> Usage();
  Awaitable<void> Health();
  Awaitable<void> Ready();
  Awaitable<void> Metrics();

  const NativeApiDependencies& deps_;
  Call& call_;
};

Awaitable<bool> Router::AdmitObjectCall(const std::string& namespace_name,
                                        const std::string& tenant, const std::string& key,
                                        meta::Scope scope) {
  call_.namespace_name = namespace_name;
  call_.tenant = tenant;
  call_.key = key;
  if (tenant.empty()) {
    co_await SendError(call_, InvalidArgumentError("X-Tenant header is required"));
    co_return false;
  }
  co_return co_await Admit(tenant, scope);
}

Awaitable<bool> Router::Admit(const std::string& tenant, meta::Scope scope) {
  auto* authenticator = deps_.authenticator;
  std::string authorization = HeaderOr(request(), "authorization");
  std::string api_key = HeaderOr(request(), "x-api-key");
  const int64_t now = NowMs();
  // A key verified within the cache TTL is checked right here; only a cache miss pays the
  // two thread switches of a trip to the pool (where the store may be asked).
  std::optional<Result<auth::Principal>> cached =
      authenticator->TryAuthenticateCached(authorization, api_key, now);
  Result<auth::Principal> principal = Status(InternalError("not authenticated"));
  if (cached) {
    principal = std::move(*cached);
  } else {
    auto authenticate_work = [authenticator, authorization, api_key,
                              now]() -> Result<auth::Principal> {
      return authenticator->Authenticate(authorization, api_key, now);
    };
    principal = co_await deps_.pool->Run(std::move(authenticate_work));
  }
  if (!principal.ok()) {
    // The challenge belongs to a 401 only: a credential store that is down is a 503.
    if (principal.status().code() == StatusCode::kUnauthenticated) {
      co_await SendError(call_, principal.status(), Headers("WWW-Authenticate", "Bearer"));
    } else {
      co_await SendError(call_, principal.status());
    }
    co_return false;
  }
  call_.key_id = principal->subject;
  if (tenant == kEveryTenant) {
    // The chunk door names no tenant: chunks are shared by all, so only a key for every
    // tenant may use it.
    Status status = principal->AllowsTenant(kEveryTenant) && principal->AllowsScope(scope)
                        ? OkStatus()
                        : PermissionDeniedError(
                              "the chunk API needs a key for every tenant (\"*\") with scope '" +
                              std::string(meta::ScopeName(scope)) + "'");
    if (!status.ok()) co_await SendError(call_, status);
    co_return status.ok();
  }
  Status status = ValidateName("tenant", tenant);
  if (status.ok()) status = auth::Authenticator::Authorize(*principal, tenant, scope);
  if (!status.ok()) {
    co_await SendError(call_, status);
    co_return false;
  }
  int64_t retry_after = deps_.rate_limiter->Acquire(tenant, now);
  if (retry_after > 0) {
    metrics::Labels labels;
    labels.emplace_back("tenant", tenant);
    deps_.metrics->Increment("cairn_throttled_requests_total", labels);
    // 429 is rendered here: kResourceExhausted from storage means a full disk (507).
    std::pair<ResponseHead, std::string> rendered = RenderJsonError(
        429, "RateLimited", "request rate limit exceeded for tenant '" + tenant + "'");
    rendered.first.headers.emplace_back("Retry-After", std::to_string(retry_after));
    call_.Stamp(rendered.first);
    call_.status = 429;
    (void)co_await call_.exchange.Respond(std::move(rendered.first), std::move(rendered.second));
    co_return false;
  }
  co_return true;
}

Awaitable<void> Router::Upload() {
  objects::UploadRequest upload_request;
  upload_request.tenant = HeaderOr(request(), "x-tenant");
  upload_request.namespace_name = HeaderOr(request(), "x-namespace");
  call_.namespace_name = upload_request.namespace_name;
  call_.tenant = upload_request.tenant;
  auto key = http::PercentDecode(HeaderOr(request(), "x-key"), false);
  if (!key.ok()) co_return co_await SendError(call_, key.status());
  upload_request.key = std::move(key).value();
  call_.key = upload_request.key;
  if (upload_request.tenant.empty() || upload_request.namespace_name.empty() ||
      upload_request.key.empty()) {
    co_return co_await SendError(
        call_, InvalidArgumentError("X-Tenant, X-Namespace and X-Key headers are required"));
  }
  auto storage_class = ParseStorageClass(HeaderOr(request(), "x-storage-class", "hot"));
  if (!storage_class.ok()) co_return co_await SendError(call_, storage_class.status());
  upload_request.storage_class = *storage_class;
  upload_request.content_type = HeaderOr(request(), "content-type", "application/octet-stream");
  if (const std::string* sha = request().Header("x-content-sha256")) {
    std::string hex = *sha;
    if (hex.rfind("sha256:", 0) == 0) hex = hex.substr(7);
    auto digest = Digest::FromHex(hex);
    if (!digest.ok()) {
      co_return co_await SendError(
          call_, InvalidArgumentError("X-Content-SHA256 must be 64 hex characters"));
    }
    upload_request.expected_sha256 = *digest;
  }
  size_t metadata_bytes = 0;
  for (const auto& entry : request().headers) {
    const std::string& name = entry.first;
    const std::string& value = entry.second;
    if (name.rfind("x-meta-", 0) == 0 && name.size() > 7) {
      upload_request.user_metadata[name.substr(7)] = value;
      metadata_bytes += name.size() + value.size();
    }
  }
  if (metadata_bytes > 8192) {
    co_return co_await SendError(call_, PayloadTooLargeError("user metadata exceeds 8 KiB"));
  }
  // The MD5 costs more than both SHA-256s together, so it is computed only when asked for:
  // a Content-MD5 to verify, or X-Compute-MD5: true (an S3-style MD5 ETag).
  if (const std::string* md5 = request().Header("content-md5")) {
    Result<std::string> raw = StandardBase64Decode(*md5);
    if (!raw.ok() || raw->size() != 16) {
      co_return co_await SendError(
          call_, InvalidArgumentError("Content-MD5 must be the base64 of 16 bytes"));
    }
    upload_request.expected_md5 = std::move(raw).value();
  }
  upload_request.compute_md5 = HeaderOr(request(), "x-compute-md5") == "true";
  if (!request().chunked) upload_request.expected_size = request().content_length.value_or(0);
  if (!co_await Admit(upload_request.tenant, meta::Scope::kWrite)) co_return;
  const uint64_t max_bytes = deps_.max_object_bytes;
  if (!request().chunked && request().content_length.value_or(0) > max_bytes) {
    co_return co_await SendError(call_, ObjectTooLarge(*request().content_length, max_bytes));
  }
  // Memory first: an upload that cannot get its buffers waits here, before it has begun.
  std::shared_ptr<UploadMemory::Reservation> memory;
  if (deps_.upload_memory != nullptr) {
    const uint64_t wanted = UploadBufferBytes(request(), deps_.objects->options().chunk_size_bytes,
                                              /*decoded_copy=*/false);
    Result<std::shared_ptr<UploadMemory::Reservation>> reserved =
        co_await deps_.upload_memory->Reserve(wanted);
    if (!reserved.ok()) co_return co_await SendError(call_, reserved.status());
    memory = *reserved;
  }

  auto begun = deps_.objects->BeginUpload(std::move(upload_request));
  if (!begun.ok()) co_return co_await SendError(call_, begun.status());
  std::shared_ptr<objects::Upload> upload = std::move(begun).value();
  // Two pieces in turn: the pipeline hashes one while the next is received.
  auto executor = co_await boost::asio::this_coro::executor;
  UploadPipeline pipeline(deps_.pool, upload, executor);
  const size_t piece_bytes = UploadPieceBytes(request());
  std::shared_ptr<char[]> pieces[2];
  int turn = 0;
  uint64_t received = 0;
  // Bounded by the body: each round consumes at least one byte or ends.
  for (;;) {
    if (!pieces[turn]) pieces[turn].reset(new char[piece_bytes]);  // small bodies need one
    std::shared_ptr<char[]> piece = pieces[turn];
    Result<size_t> got = co_await call_.exchange.ReadBody(piece.get(), piece_bytes);
    if (!got.ok()) {
      co_await pipeline.Abort();
      co_return co_await SendError(call_, got.status());
    }
    if (*got == 0) break;
    received += *got;
    if (received > max_bytes) {  // a chunked body has no declared length to refuse early
      co_await pipeline.Abort();
      co_return co_await SendError(call_, ObjectTooLarge(received, max_bytes));
    }
    std::string_view bytes(piece.get(), *got);
    std::shared_ptr<const void> owner = piece;  // a named value, not a converted temporary
    Status written = co_await pipeline.Write(owner, bytes);
    if (!written.ok()) co_return co_await SendError(call_, written);
    turn = 1 - turn;
  }
  Result<meta::CommitResult> committed = co_await pipeline.Commit();
  if (!committed.ok()) co_return co_await SendError(call_, committed.status());
  if (upload->deduplicated_chunks() > 0) {
    deps_.metrics->Increment("cairn_dedup_chunks_total", {},
                             static_cast<double>(upload->deduplicated_chunks()));
    deps_.metrics->Increment("cairn_dedup_bytes_total", {},
                             static_cast<double>(upload->deduplicated_bytes()));
  }
  http::HeaderList headers = Headers("Location", "/v1/objects/" + committed->object.id.ToString());
  headers.emplace_back("ETag", QuotedEtag(committed->object));
  co_await SendJson(call_, 201, ObjectJson(committed->object), std::move(headers));
}

Awaitable<void> Router::Download(std::optional<ObjectId> id, std::string namespace_name,
                                 std::string tenant, std::string key) {
  if (!co_await AdmitObjectCall(namespace_name, tenant, key, meta::Scope::kRead)) co_return;
  auto* objects = deps_.objects;
  auto open_work = [objects, id, tenant, namespace_name,
                    key]() -> Result<std::shared_ptr<objects::ObjectReader>> {
    Result<meta::ObjectRecord> object =
        id ? objects->Stat(tenant, *id) : objects->StatByKey(tenant, namespace_name, key);
    if (!object.ok()) return object.status();
    auto reader = objects->OpenReader(*object);
    if (!reader.ok()) return reader.status();
    return std::shared_ptr<objects::ObjectReader>(std::move(reader).value());
  };
  // A local metadata store answers in microseconds from the page cache; a trip to the
  // pool would cost more than the read. No cache in between: every GET reads the store.
  Result<std::shared_ptr<objects::ObjectReader>> opened = Status(InternalError("not opened"));
  if (objects->point_reads_are_local()) {
    opened = open_work();
  } else {
    opened = co_await deps_.pool->Run(std::move(open_work));
  }
  if (!opened.ok()) co_return co_await SendError(call_, opened.status());
  std::shared_ptr<objects::ObjectReader> reader = *opened;
  const meta::ObjectRecord& object = reader->object();
  call_.namespace_name = object.namespace_name;
  call_.key = object.key;

  ResponseHead head;
  const std::string etag = QuotedEtag(object);
  head.headers = ObjectHeaders(object, etag);
  call_.Stamp(head);
  if (const std::string* none_match = request().Header("if-none-match")) {
    if (NoneMatchHits(*none_match, etag)) {
      head.status = 304;
      call_.status = 304;
      (void)co_await call_.exchange.Respond(std::move(head), "");
      co_return;
    }
  }
  head.headers.emplace_back("Content-Type", object.content_type);
  Result<BodySelection> selection = SelectBody(request(), object.size_bytes, &head.headers);
  if (!selection.ok()) {
    co_return co_await SendError(
        call_, selection.status(),
        Headers("Content-Range", "bytes */" + std::to_string(object.size_bytes)));
  }
  call_.status = selection->status;
  const bool head_only = request().method == "HEAD";
  Status sent = co_await SendObject(call_.exchange, deps_.pool, std::move(reader), std::move(head),
                                    *selection, head_only);
  if (!sent.ok()) co_return co_await SendError(call_, sent);
}

Awaitable<void> Router::Delete(std::optional<ObjectId> id, std::string namespace_name,
                               std::string tenant, std::string key) {
  if (!co_await AdmitObjectCall(namespace_name, tenant, key, meta::Scope::kWrite)) co_return;
  auto* objects = deps_.objects;
  auto remove_work = [objects, id, tenant, namespace_name, key]() -> Result<meta::ObjectRecord> {
    return id ? objects->Delete(tenant, *id) : objects->DeleteByKey(tenant, namespace_name, key);
  };
  Result<meta::ObjectRecord> deleted = co_await deps_.pool->Run(std::move(remove_work));
  if (!deleted.ok()) co_return co_await SendError(call_, deleted.status());
  call_.namespace_name = deleted->namespace_name;
  call_.key = deleted->key;
  call_.status = 204;
  ResponseHead head;
  head.status = 204;
  call_.Stamp(head);
  (void)co_await call_.exchange.Respond(std::move(head), "");
}

Awaitable<void> Router::List() {
  auto query = http::ParseQuery(request().query);
  if (!query.ok()) co_return co_await SendError(call_, query.status());
  meta::ListRequest list_request;
  list_request.limit = kDefaultListLimit;
  for (const auto& entry : *query) {
    const std::string& name = entry.first;
    const std::string& value = entry.second;
    if (name == "namespace") {
      list_request.namespace_name = value;
    } else if (name == "tenant") {
      list_request.tenant = value;
    } else if (name == "prefix") {
      list_request.prefix = value;
    } else if (name == "limit") {
      char* end = nullptr;
      long parsed = strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || parsed < 1 || parsed > kMaxListLimit) {
        co_return co_await SendError(call_,
                                     InvalidArgumentError("limit must be between 1 and 1000"));
      }
      list_request.limit = static_cast<uint32_t>(parsed);
    } else if (name == "cursor") {
      auto decoded = Base64Decode(value, kBase64Url);
      if (!decoded.ok()) {
        co_return co_await SendError(call_, InvalidArgumentError("malformed cursor"));
      }
      list_request.start_after = std::move(decoded).value();
    }
  }
  if (list_request.tenant.empty()) {
    list_request.tenant = HeaderOr(request(), "x-tenant");
  }
  call_.namespace_name = list_request.namespace_name;
  call_.tenant = list_request.tenant;
  if (list_request.tenant.empty() || list_request.namespace_name.empty()) {
    co_return co_await SendError(
        call_, InvalidArgumentError("namespace and tenant query parameters are required"));
  }
  if (!co_await Admit(list_request.tenant, meta::Scope::kRead)) co_return;
  auto* objects = deps_.objects;
  auto list_work = [objects, list_request]() { return objects->List(list_request); };
  Result<meta::ListPage> page = co_await deps_.pool->Run(std::move(list_work));
  if (!page.ok()) co_return co_await SendError(call_, page.status());
  co_await SendJson(call_, 200, ListJson(*page));
}

// The chunk door (objects/chunk_service.h): HEAD answers whether the server holds the
// chunk (200, its copy verified and durable) or not (404: send it); PUT stores it; GET
// reads it, verified. Only chunks that an owner already references exist here.
Awaitable<void> Router::Chunk(StorageClass storage_class, Digest digest) {
  const std::string method = request().method;
  call_.key = digest.ToHex();
  const meta::Scope scope = method == "GET" ? meta::Scope::kRead : meta::Scope::kWrite;
  if (!co_await Admit(kEveryTenant, scope)) co_return;
  objects::ChunkService chunks(deps_.objects);
  if (method == "HEAD") {
    auto have_work = [&chunks, storage_class, digest]() {
      return chunks.Have(storage_class, digest);
    };
    Result<bool> have = co_await deps_.pool->Run(std::move(have_work));
    if (!have.ok()) co_return co_await SendError(call_, have.status());
    ResponseHead head;
    head.status = *have ? 200 : 404;
    call_.status = head.status;
    call_.Stamp(head);
    (void)co_await call_.exchange.Respond(std::move(head), "");
    co_return;
  }
  if (method == "GET") {
    auto open_work = [&chunks, storage_class,
                      digest]() -> Result<std::shared_ptr<objects::ObjectReader>> {
      Result<std::unique_ptr<objects::ObjectReader>> reader = chunks.Open(storage_class, digest);
      if (!reader.ok()) return reader.status();
      return std::shared_ptr<objects::ObjectReader>(std::move(reader).value());
    };
    Result<std::shared_ptr<objects::ObjectReader>> opened =
        co_await deps_.pool->Run(std::move(open_work));
    if (!opened.ok()) co_return co_await SendError(call_, opened.status());
    ResponseHead head;
    head.headers = Headers("Content-Type", "application/octet-stream");
    head.headers.emplace_back("X-Content-SHA256", digest.ToHex());
    const uint64_t size = (*opened)->object().size_bytes;
    Result<BodySelection> selection = SelectBody(request(), size, &head.headers);
    if (!selection.ok()) {
      co_return co_await SendError(call_, selection.status(),
                                   Headers("Content-Range", "bytes */" + std::to_string(size)));
    }
    call_.Stamp(head);
    call_.status = selection->status;
    Status sent = co_await SendObject(call_.exchange, deps_.pool, *opened, std::move(head),
                                      *selection, /*head_only=*/false);
    if (!sent.ok()) co_return co_await SendError(call_, sent);
    co_return;
  }
  // PUT: the whole chunk in one body of a declared length, held once in memory (a chunk is
  // what the store writes in one piece), within the server's upload memory.
  if (request().chunked || !request().content_length) {
    co_return co_await SendError(call_,
                                 InvalidArgumentError("a chunk body needs a Content-Length"));
  }
  const uint64_t size = *request().content_length;
  if (size > kMaxChunkBodyBytes) {
    co_return co_await SendError(
        call_,
        PayloadTooLargeError("a chunk body is at most " + std::to_string(kMaxChunkBodyBytes) +
                             " bytes, not " + std::to_string(size)));
  }
  std::shared_ptr<UploadMemory::Reservation> memory;
  if (deps_.upload_memory != nullptr) {
    Result<std::shared_ptr<UploadMemory::Reservation>> reserved =
        co_await deps_.upload_memory->Reserve(std::max<uint64_t>(size, 1));
    if (!reserved.ok()) co_return co_await SendError(call_, reserved.status());
    memory = *reserved;
  }
  auto body = std::make_shared<std::string>(size, '\0');
  uint64_t received = 0;
  // Bounded by the declared length: each round reads at least one byte or ends.
  while (received < size) {
    Result<size_t> got = co_await call_.exchange.ReadBody(body->data() + received, size - received);
    if (!got.ok()) co_return co_await SendError(call_, got.status());
    if (*got == 0) break;
    received += *got;
  }
  if (received != size) {
    co_return co_await SendError(
        call_, InvalidArgumentError("the chunk body ended after " + std::to_string(received) +
                                    " of " + std::to_string(size) + " bytes"));
  }
  auto put_work = [&chunks, storage_class, digest, body]() {
    return chunks.Put(storage_class, digest, *body);
  };
  Status stored = co_await deps_.pool->Run(std::move(put_work));
  if (!stored.ok()) co_return co_await SendError(call_, stored);
  ResponseHead head;
  head.status = 204;
  call_.status = 204;
  call_.Stamp(head);
  (void)co_await call_.exchange.Respond(std::move(head), "");
}

// The space of a class's storage root (what a remote mount's statfs reports).
Awaitable<void> Router::ChunkSpace(StorageClass storage_class) {
  if (!co_await Admit(kEveryTenant, meta::Scope::kRead)) co_return;
  const std::string root = deps_.objects->chunk_store()->RootOf(storage_class);
  meta::MetaStore* meta_store = deps_.objects->meta_store();
  auto space_work = [root, meta_store]() -> Result<Json> {
    struct statvfs st {};
    if (statvfs(root.c_str(), &st) != 0) {
      return UnavailableError("statfs of the " + root + " storage root: " + strerror(errno));
    }
    // The store's identity, so a client can tell that this server keeps its metadata where
    // the client keeps its own (gc/store_identity.h).
    Result<std::optional<std::string>> store_id = meta_store->GetStoreIdentity();
    if (!store_id.ok()) return store_id.status();
    const uint64_t unit = st.f_frsize != 0 ? st.f_frsize : st.f_bsize;
    Json body = Json::object();
    body["store_id"] = store_id->has_value() ? Json(**store_id) : Json(nullptr);
    body["total_bytes"] = static_cast<uint64_t>(st.f_blocks) * unit;
    body["free_bytes"] = static_cast<uint64_t>(st.f_bfree) * unit;
    body["available_bytes"] = static_cast<uint64_t>(st.f_bavail) * unit;
    return body;
  };
  Result<Json> space = co_await deps_.pool->Run(std::move(space_work));
  if (!space.ok()) co_return co_await SendError(call_, space.status());
  co_await SendJson(call_, 200, *space);
}

Awaitable<void> Router::Usage() {
  auto query = http::ParseQuery(request().query);
  if (!query.ok()) co_return co_await SendError(call_, query.status());
  std::string tenant = HeaderOr(request(), "x-tenant");
  for (const auto& entry : *query) {
    if (entry.first == "tenant") tenant = entry.second;
  }
  call_.tenant = tenant;
  if (tenant.empty()) {
    co_return co_await SendError(call_, InvalidArgumentError("tenant is required"));
  }
  if (!co_await Admit(tenant, meta::Scope::kRead)) co_return;
  auto* objects = deps_.objects;
  auto usage_work = [objects, tenant]() { return objects->Usage(tenant); };
  Result<objects::UsageReport> report = co_await deps_.pool->Run(std::move(usage_work));
  if (!report.ok()) co_return co_await SendError(call_, report.status());
  co_await SendJson(call_, 200, UsageJson(*report));
}

// Liveness: 200 while the process answers, whatever the storage section says of what is
// beneath (a monitor alerts on it; /ready is what takes a node out of rotation).
Awaitable<void> Router::Health() {
  Json body = StatusJson("ok");
  if (deps_.storage_health) {
    auto storage_health = deps_.storage_health;
    auto health_work = [storage_health]() { return storage_health(); };
    StorageHealth health = co_await deps_.pool->Run(std::move(health_work));
    auto part = [](const Status& status) {
      Json out{{"healthy", status.ok()}};
      if (!status.ok()) out["error"] = status.ToString();
      return out;
    };
    body["storage"] = {{"volume", health.volume ? Json(*health.volume) : Json(nullptr)},
                       {"mounts_alive", health.mounts_alive},
                       {"metadata", part(health.metadata)},
                       {"chunk_store", part(health.chunk_store)}};
  }
  co_await SendJson(call_, 200, body);
}

Awaitable<void> Router::Ready() {
  auto readiness = deps_.readiness;
  auto readiness_work = [readiness]() { return readiness(); };
  Status status = co_await deps_.pool->Run(std::move(readiness_work));
  if (!status.ok()) {
    co_return co_await SendJson(call_, 503, StatusJson("unavailable", status.message()));
  }
  co_await SendJson(call_, 200, StatusJson("ready"));
}

Awaitable<void> Router::Metrics() {
  auto extra = deps_.extra_metrics;
  auto gauges_work = [extra]() { return extra ? extra() : ""; };
  std::string text = co_await deps_.pool->Run(std::move(gauges_work));
  text = deps_.metrics->Render() + text;
  call_.status = 200;
  ResponseHead head;
  head.headers = Headers("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
  call_.Stamp(head);
  (void)co_await call_.exchange.Respond(std::move(head), std::move(text));
}

Awaitable<void> Router::Route() {
  const std::string& method = request().method;
  const std::string& path = request().path;
  const bool read = method == "GET" || method == "HEAD";
  if (!IsKnownMethod(method)) {
    co_return co_await SendMethodError(
        call_, 501, "NotImplemented",
        "method " + method.substr(0, 32) + " is not implemented by this server", "");
  }
  if (path == "/health" || path == "/ready" || path == "/metrics" || path == "/v1/usage") {
    if (!read) co_return co_await MethodNotAllowed(call_, method, "GET, HEAD");
    if (path == "/health") co_return co_await Health();
    if (path == "/ready") co_return co_await Ready();
    if (path == "/metrics") co_return co_await Metrics();
    co_return co_await Usage();
  }
  if (path == "/v1/objects" || path == "/v1/objects/") {
    if (method == "POST" || method == "PUT") co_return co_await Upload();
    if (read) co_return co_await List();
    co_return co_await MethodNotAllowed(call_, method, "GET, HEAD, POST, PUT");
  }
  constexpr std::string_view kByKey = "/v1/objects/by-key/";
  constexpr std::string_view kById = "/v1/objects/";
  if (path.rfind(kByKey, 0) == 0) {
    // {namespace}/{tenant}/{key...}; the key keeps its slashes.
    std::string_view rest = std::string_view(path).substr(kByKey.size());
    size_t first_slash = rest.find('/');
    size_t second_slash =
        first_slash == std::string_view::npos ? first_slash : rest.find('/', first_slash + 1);
    if (second_slash == std::string_view::npos) {
      co_return co_await SendError(
          call_, InvalidArgumentError("expected /v1/objects/by-key/{namespace}/{tenant}/{key}"));
    }
    auto namespace_name = http::PercentDecode(rest.substr(0, first_slash), false);
    auto tenant =
        http::PercentDecode(rest.substr(first_slash + 1, second_slash - first_slash - 1), false);
    auto key = http::PercentDecode(rest.substr(second_slash + 1), false);
    if (!namespace_name.ok() || !tenant.ok() || !key.ok()) {
      co_return co_await SendError(call_, InvalidArgumentError("malformed percent-encoding"));
    }
    if (read) co_return co_await Download(std::nullopt, *namespace_name, *tenant, *key);
    if (method == "DELETE") co_return co_await Delete(std::nullopt, *namespace_name, *tenant, *key);
    co_return co_await MethodNotAllowed(call_, method, "GET, HEAD, DELETE");
  }
  if (path.rfind(kById, 0) == 0) {
    auto id = ObjectId::Parse(std::string_view(path).substr(kById.size()));
    if (!id.ok()) {
      co_return co_await SendError(call_, InvalidArgumentError("object id is not a valid UUID"));
    }
    std::string tenant = HeaderOr(request(), "x-tenant");
    if (read) co_return co_await Download(*id, "", tenant, "");
    if (method == "DELETE") co_return co_await Delete(*id, "", tenant, "");
    co_return co_await MethodNotAllowed(call_, method, "GET, HEAD, DELETE");
  }
  constexpr std::string_view kChunks = "/v1/chunks/";
  if (path.rfind(kChunks, 0) == 0) {
    // {class}/{sha256 hex}
    std::string_view rest = std::string_view(path).substr(kChunks.size());
    const size_t slash = rest.find('/');
    if (slash == std::string_view::npos) {  // {class}: the space its root has
      Result<StorageClass> space_class = ParseStorageClass(rest);
      if (!space_class.ok()) co_return co_await SendError(call_, space_class.status());
      if (!read) co_return co_await MethodNotAllowed(call_, method, "GET, HEAD");
      co_return co_await ChunkSpace(*space_class);
    }
    Result<StorageClass> storage_class = ParseStorageClass(rest.substr(0, slash));
    Result<Digest> digest = Digest::FromHex(rest.substr(slash + 1));
    if (!storage_class.ok() || !digest.ok()) {
      co_return co_await SendError(
          call_, InvalidArgumentError("expected /v1/chunks/{hot|cold}/{64 hex characters}"));
    }
    if (read || method == "PUT") co_return co_await Chunk(*storage_class, *digest);
    co_return co_await MethodNotAllowed(call_, method, "GET, HEAD, PUT");
  }
  co_await SendError(call_, NotFoundError("no route for " + method + " " + path.substr(0, 200)));
}

std::string MetricMethod(const std::string& method) {
  static const char* kKnown[] = {"GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"};
  for (const char* known : kKnown) {
    if (method == known) return method;
  }
  return "OTHER";
}

}  // namespace

std::pair<ResponseHead, std::string> RenderJsonError(int status, const std::string& code,
                                                     const std::string& message) {
  ResponseHead head;
  head.status = status;
  head.headers.emplace_back("Content-Type", "application/json");
  // 503 means a dependency (the metadata database, a storage root) is down right now; the
  // store reconnects by itself, so a client may simply try again shortly.
  if (status == 503) head.headers.emplace_back("Retry-After", "1");
  Json body{{"error", {{"code", code}, {"message", message}}}};
  return {std::move(head), body.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n"};
}

void DeclareRequestMetrics(metrics::Registry* registry) {
  registry->DeclareCounter("cairn_requests_total", "Requests answered, by method and status.");
  registry->DeclareHistogram(
      "cairn_request_duration_seconds", "Request latency from head received to response sent.",
      {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60});
  registry->DeclareCounter("cairn_throttled_requests_total",
                           "Requests refused with 429 by the per-tenant rate limit.");
  registry->DeclareCounter("cairn_dedup_chunks_total",
                           "Uploaded chunks that were already stored and not written again.");
  registry->DeclareCounter("cairn_dedup_bytes_total",
                           "Uploaded bytes that were already stored and not written again.");
}

NativeApi::NativeApi(NativeApiDependencies dependencies) : deps_(std::move(dependencies)) {}

Awaitable<void> NativeApi::Handle(Exchange& exchange) {
  const auto start = std::chrono::steady_clock::now();
  Call call(exchange);
  Router router(deps_, call);
  co_await router.Route();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (deps_.access_log) {
    const http::RequestHead& head = exchange.request();
    AccessLogEntry entry;
    entry.api = "native";
    entry.request_id = call.request_id;
    entry.method = head.method;
    entry.path = head.path;
    entry.bucket = call.namespace_name;
    entry.tenant = call.tenant;
    entry.key = call.key;
    // The status that went out: the server's own if it answered a broken body itself.
    entry.status = exchange.response_status() != 0 ? exchange.response_status() : call.status;
    entry.bytes_in = exchange.request_body_bytes();
    entry.bytes_out = exchange.response_body_bytes();
    entry.seconds = seconds;
    entry.key_id = call.key_id;
    entry.peer = head.peer;
    LogAccess(entry);
  }
  const std::string method = MetricMethod(exchange.request().method);
  // Only well-formed names become label values, so clients cannot flood the label space
  // with garbage.
  if (!ValidateName("namespace", call.namespace_name).ok()) call.namespace_name.clear();
  RecordRequest(deps_.metrics, method, call.status, call.namespace_name, seconds);
}

}  // namespace cairn::api
