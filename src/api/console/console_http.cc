#include "api/console/console_http.h"

#include <chrono>
#include <nlohmann/json.hpp>
#include <utility>

#include "api/common/access_log.h"
#include "api/common/download.h"
#include "api/common/object_json.h"
#include "api/common/upload_pipeline.h"

// GCC 12 coroutine rules (docs/architecture.md): work for the pool is a named lambda, no
// structured bindings, and no temporary that owns memory inside a co_await expression.

namespace cairn::api::console {
namespace {

http::Awaitable<void> Send(http::Exchange& exchange, Response response) {
  http::ResponseHead out;
  out.status = response.status;
  out.headers = std::move(response.headers);
  if (exchange.request().method == "HEAD") {
    (void)co_await exchange.BeginBody(std::move(out), response.body.size(), true);
    co_return;
  }
  (void)co_await exchange.Respond(std::move(out), std::move(response.body));
}

http::Awaitable<void> SendError(http::Exchange& exchange, const Status& status) {
  Response response = Console::ErrorResponse(status);
  co_await Send(exchange, std::move(response));
}

// What an inline preview may be labelled: images a browser decodes without running
// anything; everything else is shown as plain text (never HTML or SVG).
std::string PreviewType(const std::string& stored) {
  for (const char* image : {"image/png", "image/jpeg", "image/gif", "image/webp"}) {
    if (stored == image) return stored;
  }
  return "text/plain; charset=utf-8";
}

}  // namespace

http::Awaitable<void> ConsoleApi::Handle(http::Exchange& exchange) {
  const auto start = std::chrono::steady_clock::now();
  const http::RequestHead& head = exchange.request();
  auto request = std::make_shared<Request>();
  request->method = head.method;
  request->path = head.path;
  request->query = head.query;
  request->headers = head.headers;
  std::string key_id;
  if (Console::IsStreamed(head.method, head.path)) {
    key_id = co_await Stream(exchange, request);
  } else {
    co_await Answer(exchange, request, &key_id);
  }
  if (access_log_) {
    Log(exchange, key_id,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
}

http::Awaitable<void> ConsoleApi::Answer(http::Exchange& exchange, std::shared_ptr<Request> request,
                                         std::string* key_id) {
  const http::RequestHead& head = exchange.request();
  // A body larger than a console call takes is not read whole: its size is enough to
  // refuse it (and the connection closes, as the rest is not read).
  if (head.content_length.value_or(0) > Console::kMaxBodyBytes) {
    request->body.assign(Console::kMaxBodyBytes + 1, '\0');
  } else {
    char buffer[16 * 1024];
    for (;;) {
      Result<size_t> n = co_await exchange.ReadBody(buffer, sizeof(buffer));
      if (!n.ok()) co_return;  // a broken body: the server closes the connection
      if (*n == 0) break;
      request->body.append(buffer, *n);
      if (request->body.size() > Console::kMaxBodyBytes) break;
    }
  }
  Console* console = console_;
  auto work = [console, request]() { return console->Serve(*request); };
  Response response = co_await pool_->Run(std::move(work));
  *key_id = response.key_id;
  co_await Send(exchange, std::move(response));
}

void ConsoleApi::Log(http::Exchange& exchange, const std::string& key_id, double seconds) const {
  const http::RequestHead& head = exchange.request();
  // The object a call names, from its query (never the query itself: no value of it is
  // secret today, but the line stays the other APIs' shape).
  std::string tenant, bucket, key;
  Result<std::vector<std::pair<std::string, std::string>>> query = http::ParseQuery(head.query);
  if (query.ok()) {
    for (const auto& pair : *query) {
      if (pair.first == "tenant") tenant = pair.second;
      if (pair.first == "bucket") bucket = pair.second;
      if (pair.first == "key") key = pair.second;
    }
  }
  const std::string request_id = RandomRequestId();
  AccessLogEntry entry;
  entry.api = "console";
  entry.request_id = request_id;
  entry.method = head.method;
  entry.path = head.path;
  entry.bucket = bucket;
  entry.tenant = tenant;
  entry.key = key;
  entry.status = exchange.response_status();
  entry.bytes_in = exchange.request_body_bytes();
  entry.bytes_out = exchange.response_body_bytes();
  entry.seconds = seconds;
  entry.key_id = key_id;
  entry.peer = head.peer;
  LogAccess(entry);
}

http::Awaitable<std::string> ConsoleApi::Stream(http::Exchange& exchange,
                                                std::shared_ptr<Request> request) {
  Console* console = console_;
  auto admit_work = [console, request]() { return console->AdmitStream(*request); };
  std::variant<Response, StreamCall> admitted = co_await pool_->Run(std::move(admit_work));
  if (Response* refused = std::get_if<Response>(&admitted)) {
    std::string key_id = refused->key_id;
    co_await Send(exchange, std::move(*refused));
    co_return key_id;
  }
  StreamCall call = std::move(std::get<StreamCall>(admitted));
  std::string key_id = call.key_id;
  if (call.kind == StreamCall::Kind::kDownload) {
    co_await Download(exchange, std::move(call));
  } else {
    co_await Upload(exchange, std::move(call));
  }
  co_return key_id;
}

http::Awaitable<void> ConsoleApi::Upload(http::Exchange& exchange, StreamCall call) {
  const http::RequestHead& head = exchange.request();
  const uint64_t max_bytes = console_->max_object_bytes();
  if (!head.chunked && head.content_length.value_or(0) > max_bytes) {
    co_return co_await SendError(exchange, ObjectTooLarge(*head.content_length, max_bytes));
  }
  objects::ObjectService* objects = console_->objects();
  objects::MultipartService* multipart = console_->multipart();
  std::optional<uint64_t> expected_size;
  if (!head.chunked) expected_size = head.content_length.value_or(0);
  const std::string* type = nullptr;
  for (const auto& header : head.headers) {
    if (header.first == "content-type") type = &header.second;
  }
  std::string content_type = type == nullptr ? "application/octet-stream" : *type;
  // Memory first, as the other APIs: an upload that cannot get its buffers waits here, and
  // is refused (503 Unavailable, Retry-After) if no room comes, before anything has begun.
  std::shared_ptr<UploadMemory::Reservation> memory;
  if (upload_memory_ != nullptr) {
    Result<std::shared_ptr<UploadMemory::Reservation>> reserved = co_await upload_memory_->Reserve(
        UploadBufferBytes(head, objects->options().chunk_size_bytes, /*decoded_copy=*/false));
    if (!reserved.ok()) co_return co_await SendError(exchange, reserved.status());
    memory = *reserved;
  }
  auto begin_work = [objects, multipart, call, expected_size,
                     content_type]() -> Result<std::shared_ptr<objects::Upload>> {
    if (call.kind == StreamCall::Kind::kPart) {
      ASSIGN_OR_RETURN(std::unique_ptr<objects::Upload> part,
                       multipart->BeginPart(*call.upload, call.part, expected_size));
      return std::shared_ptr<objects::Upload>(std::move(part));
    }
    objects::UploadRequest upload_request;
    upload_request.tenant = call.tenant;
    upload_request.namespace_name = call.bucket;
    upload_request.key = call.key;
    upload_request.content_type = content_type;
    upload_request.expected_size = expected_size;
    ASSIGN_OR_RETURN(std::unique_ptr<objects::Upload> upload,
                     objects->BeginUpload(std::move(upload_request)));
    return std::shared_ptr<objects::Upload>(std::move(upload));
  };
  Result<std::shared_ptr<objects::Upload>> begun = co_await pool_->Run(std::move(begin_work));
  if (!begun.ok()) co_return co_await SendError(exchange, begun.status());
  std::shared_ptr<objects::Upload> upload = *begun;
  auto executor = co_await boost::asio::this_coro::executor;
  UploadPipeline pipeline(pool_, upload, executor);
  const size_t piece_bytes = UploadPieceBytes(head);
  std::shared_ptr<char[]> pieces[2];
  int turn = 0;
  uint64_t received = 0;
  // Bounded by the body: each round consumes at least one byte or ends.
  for (;;) {
    if (!pieces[turn]) pieces[turn].reset(new char[piece_bytes]);
    std::shared_ptr<char[]> piece = pieces[turn];
    Result<size_t> got = co_await exchange.ReadBody(piece.get(), piece_bytes);
    if (!got.ok()) {
      co_await pipeline.Abort();
      co_return co_await SendError(exchange, got.status());
    }
    if (*got == 0) break;
    received += *got;
    if (received > max_bytes) {
      co_await pipeline.Abort();
      co_return co_await SendError(exchange, ObjectTooLarge(received, max_bytes));
    }
    std::string_view bytes(piece.get(), *got);
    std::shared_ptr<const void> owner = piece;
    Status written = co_await pipeline.Write(owner, bytes);
    if (!written.ok()) co_return co_await SendError(exchange, written);
    turn = 1 - turn;
  }
  Result<meta::CommitResult> committed = co_await pipeline.Commit();
  if (!committed.ok()) co_return co_await SendError(exchange, committed.status());
  nlohmann::json body;
  int status = 201;
  if (call.kind == StreamCall::Kind::kPart) {
    status = 200;
    body = nlohmann::json{{"part", call.part},
                          {"etag", committed->object.etag},
                          {"size_bytes", committed->object.size_bytes}};
  } else {
    body = ObjectJson(committed->object);
  }
  Response response = Console::JsonAnswer(status, body);
  co_await Send(exchange, std::move(response));
}

http::Awaitable<void> ConsoleApi::Download(http::Exchange& exchange, StreamCall call) {
  objects::ObjectService* objects = console_->objects();
  auto open_work = [objects, call]() -> Result<std::shared_ptr<objects::ObjectReader>> {
    ASSIGN_OR_RETURN(meta::ObjectRecord object,
                     objects->StatByKey(call.tenant, call.bucket, call.key));
    ASSIGN_OR_RETURN(std::unique_ptr<objects::ObjectReader> reader, objects->OpenReader(object));
    return std::shared_ptr<objects::ObjectReader>(std::move(reader));
  };
  Result<std::shared_ptr<objects::ObjectReader>> opened = co_await pool_->Run(std::move(open_work));
  if (!opened.ok()) co_return co_await SendError(exchange, opened.status());
  std::shared_ptr<objects::ObjectReader> reader = *opened;
  const meta::ObjectRecord& object = reader->object();
  http::ResponseHead head;
  Console::AddSecurityHeaders(head.headers);
  // Whatever the bytes are, a body opened on its own runs nothing.
  for (auto& header : head.headers) {
    if (header.first == "Content-Security-Policy") header.second = "sandbox; default-src 'none'";
  }
  head.headers.emplace_back("Cache-Control", "no-store");
  head.headers.emplace_back("ETag", "\"" + object.etag + "\"");
  if (call.inline_disposition) {
    head.headers.emplace_back("Content-Type", PreviewType(object.content_type));
    head.headers.emplace_back("Content-Disposition", "inline");
  } else {
    head.headers.emplace_back("Content-Type", object.content_type);
    const size_t slash = object.key.find_last_of('/');
    const std::string name = slash == std::string::npos ? object.key : object.key.substr(slash + 1);
    head.headers.emplace_back(
        "Content-Disposition",
        "attachment; filename*=UTF-8''" + http::PercentEncode(name.empty() ? "download" : name));
  }
  Result<BodySelection> selection =
      SelectBody(exchange.request(), object.size_bytes, &head.headers);
  if (!selection.ok()) {
    Response response = Console::ErrorResponse(selection.status());
    response.status = 416;
    response.headers.emplace_back("Content-Range", "bytes */" + std::to_string(object.size_bytes));
    co_return co_await Send(exchange, std::move(response));
  }
  const bool head_only = exchange.request().method == "HEAD";
  Status sent = co_await SendObject(exchange, pool_, std::move(reader), std::move(head), *selection,
                                    head_only);
  if (!sent.ok()) co_await SendError(exchange, sent);
}

}  // namespace cairn::api::console
