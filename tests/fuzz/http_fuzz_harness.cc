#include <utility>  // Boost 1.74 coroutine headers need it first.

#include "http_fuzz_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "../s3_sigv4/aws_chunked_encoder.h"
#include "api/native/native_api.h"
#include "api/s3/handlers/s3_api.h"
#include "api/s3/sigv4/checksum.h"
#include "api/s3/sigv4/sigv4.h"
#include "auth/api_key.h"
#include "auth/authenticator.h"
#include "auth/jwt.h"
#include "core/base64.h"
#include "core/hashing.h"
#include "http/server.h"
#include "objects/multipart.h"
#include "server/app.h"

namespace cairn::fuzz {
namespace {

namespace s3 = api::s3;

// Fixed credentials, so that raw-mode seeds can carry a valid native key literally.
// Native: an admin key for every tenant, and a read-only key for tenant "other" (40 bytes
// each: the key id's 8 and the secret's 32, see auth::GenerateApiKey).
constexpr std::string_view kAdminKeyRandom = "fuzz-admin-key-random-bytes-for-cairn-ha";
constexpr std::string_view kReaderKeyRandom = "fuzz-reader-key-random-bytes-for-cairn-h";
constexpr std::string_view kJwtSecret = "fuzz-jwt-secret-of-at-least-32-bytes-long";
// S3: an admin key pair of tenant "default", and a read-only pair of tenant "other".
constexpr std::string_view kS3AccessKey = "FUZZACCESSKEY0000001";
constexpr std::string_view kS3SecretKey = "fuzzsecretkey0000000000000000000000000001";
constexpr std::string_view kS3ReaderAccessKey = "FUZZACCESSKEY0000002";
constexpr std::string_view kS3ReaderSecretKey = "fuzzsecretkey0000000000000000000000000002";

// Small objects still reach the chunk store: anything above 512 bytes is chunked, in
// chunks of 2 KiB, so a body of a few KiB makes a multi-chunk object.
constexpr uint64_t kInlineThresholdBytes = 512;
constexpr uint64_t kChunkSizeBytes = 2048;
// The store is rebuilt from scratch once it outgrows this (checked every kCheckEvery). It
// includes SQLite's space reserve (meta.db-reserve, up to 64 MiB), so a few campaign jobs
// in parallel stay within a few hundred MiB of tmpfs.
constexpr uint64_t kDefaultMaxStoreBytes = 128ull << 20;
constexpr uint64_t kCheckEvery = 1000;
constexpr size_t kMaxRequestsPerInput = 8;
constexpr size_t kMaxResponseBytesKept = 256 * 1024;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

[[noreturn]] void Die(const std::string& message) {
  fprintf(stderr, "http fuzz harness: %s\n", message.c_str());
  fflush(stderr);
  abort();
}

template <typename T>
T CheckOk(Result<T> result, const char* what) {
  if (!result.ok()) Die(std::string(what) + ": " + result.status().ToString());
  return std::move(result).value();
}

void CheckOk(const Status& status, const char* what) {
  if (!status.ok()) Die(std::string(what) + ": " + status.ToString());
}

std::string TempBase() {
  if (const char* dir = getenv("CAIRN_FUZZ_DIR")) return dir;
  std::error_code error;
  if (std::filesystem::is_directory("/dev/shm", error)) return "/dev/shm";  // tmpfs
  if (const char* tmp = getenv("TMPDIR")) return tmp;
  return "/tmp";
}

uint64_t DirectoryBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code error;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, error);
       !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
    std::error_code size_error;
    if (it->is_regular_file(size_error)) {
      const uintmax_t size = it->file_size(size_error);
      if (!size_error) total += size;
    }
  }
  return total;
}

int HangTimeoutMs() {
  static const int timeout_ms = [] {
    const char* text = getenv("CAIRN_FUZZ_HANG_SECONDS");
    const int seconds = text != nullptr ? atoi(text) : 0;
    return (seconds > 0 ? seconds : 10) * 1000;
  }();
  return timeout_ms;
}

// One complete server: stores, use cases, both APIs, and the HTTP server, all driven by
// the calling thread (see Exchange): the blocking pool runs its work inline.
class Server {
 public:
  Server() {
    std::string pattern = TempBase() + "/cairn-fuzz-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) Die("mkdtemp failed under " + TempBase());
    dir_ = pattern;
    server::StoreConfig store_config;
    store_config.data_dir = dir_;
    stores_ = CheckOk(server::OpenStores(store_config), "open stores");
    ProvisionCredentials();

    objects::ObjectServiceOptions object_options;
    object_options.inline_threshold_bytes = kInlineThresholdBytes;
    object_options.chunk_size_bytes = kChunkSizeBytes;
    objects_ = std::make_unique<objects::ObjectService>(stores_.meta.get(), stores_.chunks.get(),
                                                        platform::SystemClock(), object_options);
    authenticator_ =
        std::make_unique<auth::Authenticator>(stores_.meta.get(), std::string(kJwtSecret));
    api::DeclareRequestMetrics(&registry_);
    pool_ = std::make_unique<http::BlockingPool>(0);  // inline
    multipart_ = std::make_unique<objects::MultipartService>(objects_.get());

    meta::MetaStore* meta_store = stores_.meta.get();
    chunks::ChunkStore* chunk_store = stores_.chunks.get();
    native_ = std::make_unique<api::NativeApi>(
        api::NativeApiDependencies{.objects = objects_.get(),
                                   .authenticator = authenticator_.get(),
                                   .metrics = &registry_,
                                   .pool = pool_.get(),
                                   .rate_limiter = &rate_limiter_,
                                   .readiness = [meta_store, chunk_store]() -> Status {
                                     RETURN_IF_ERROR(meta_store->Ping());
                                     return chunk_store->CheckWritable();
                                   },
                                   .extra_metrics = [] { return std::string(); }});
    api::S3ApiDependencies s3_deps{.objects = objects_.get(),
                                   .multipart = multipart_.get(),
                                   .metrics = &registry_,
                                   .pool = pool_.get(),
                                   .rate_limiter = &rate_limiter_};
    s3_api_ = std::make_unique<api::S3Api>(std::move(s3_deps));

    auto listen = [this](http::RequestHandler handler, http::ErrorRenderer renderer) {
      // The listeners' sockets are never accepted on (Exchange adopts its connections);
      // a listener carries the handler and the limits.
      http::ListenerOptions listener;  // 127.0.0.1, any free port, the server's defaults
      listener.port = 0;
      return CheckOk(http_.AddListener(listener, std::move(handler), std::move(renderer)),
                     "listen");
    };
    api::NativeApi* native = native_.get();
    native_port_ = listen([native](http::Exchange& exchange) { return native->Handle(exchange); },
                          api::RenderJsonError);
    api::S3Api* s3_api = s3_api_.get();
    s3_port_ = listen([s3_api](http::Exchange& exchange) { return s3_api->Handle(exchange); },
                      api::RenderS3ServerError);
  }

  ~Server() {
    stores_.meta->WaitForAsyncWrites();
    pool_->Stop();
    s3_api_.reset();
    native_.reset();
    multipart_.reset();
    pool_.reset();
    authenticator_.reset();
    objects_.reset();
    stores_ = {};
    std::error_code error;
    std::filesystem::remove_all(dir_, error);
  }

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  std::string Exchange(Api api, std::string_view request);
  // The listener's port, for Host headers (nothing connects to it).
  uint16_t port(Api api) const { return api == Api::kNative ? native_port_ : s3_port_; }
  const std::string& dir() const { return dir_; }
  const std::string& admin_key() const { return admin_key_; }
  const std::string& reader_key() const { return reader_key_; }

 private:
  void ProvisionCredentials() {
    const TimestampMs now = NowMs();
    admin_key_ = AddApiKey(kAdminKeyRandom, {"*"}, meta::Scope::kAdmin, now);
    reader_key_ = AddApiKey(kReaderKeyRandom, {"other"}, meta::Scope::kRead, now);
    AddS3Key(kS3AccessKey, kS3SecretKey, {"default"}, meta::Scope::kAdmin, now);
    AddS3Key(kS3ReaderAccessKey, kS3ReaderSecretKey, {"other"}, meta::Scope::kRead, now);
  }

  std::string AddApiKey(std::string_view random, std::vector<std::string> tenants,
                        meta::Scope scope, TimestampMs now) {
    auth::GeneratedApiKey key = CheckOk(auth::GenerateApiKey(random), "api key");
    meta::ApiKeyRecord record;
    record.key_id = key.key_id;
    record.secret_hash = auth::HashSecret(key.secret);
    record.tenants = std::move(tenants);
    record.scope = scope;
    record.created_at_ms = now;
    CheckOk(stores_.meta->CreateApiKey(record), "create api key");
    return key.full_text;
  }

  void AddS3Key(std::string_view access_key, std::string_view secret,
                std::vector<std::string> tenants, meta::Scope scope, TimestampMs now) {
    meta::S3KeyRecord record;
    record.access_key = std::string(access_key);
    record.secret = std::string(secret);
    record.tenants = std::move(tenants);
    record.scope = scope;
    record.created_at_ms = now;
    CheckOk(stores_.meta->CreateS3Key(record), "create S3 key");
  }

  std::string dir_;
  server::Stores stores_;
  std::unique_ptr<objects::ObjectService> objects_;
  std::unique_ptr<auth::Authenticator> authenticator_;
  metrics::Registry registry_;
  api::RateLimiter rate_limiter_{0};
  std::unique_ptr<http::BlockingPool> pool_;
  std::unique_ptr<objects::MultipartService> multipart_;
  std::unique_ptr<api::NativeApi> native_;
  std::unique_ptr<api::S3Api> s3_api_;
  http::HttpServer http_;
  std::string admin_key_;
  std::string reader_key_;
  uint16_t native_port_ = 0;
  uint16_t s3_port_ = 0;
};

Server* g_server = nullptr;
uint64_t g_inputs = 0;

void StopServer() {
  delete g_server;
  g_server = nullptr;
}

Server& GetServer() {
  if (g_server == nullptr) {
    g_server = new Server();
    static bool registered = false;
    if (!registered) {
      registered = true;
      atexit(StopServer);  // removes the temporary directory on a normal exit
    }
  }
  return *g_server;
}

// Sends `request` on a fresh connection to the listener of `api`, half-closes it, and
// reads until the server closes. The connection is a socketpair whose server end the
// HttpServer adopts; this thread runs the server's event loop between its own reads and
// writes, so no TCP handshake and no thread hand-off costs time. Returns what the server
// sent (the first kMaxResponseBytesKept bytes).
std::string Server::Exchange(Api api, std::string_view request) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    Die(std::string("socketpair: ") + strerror(errno));
  }
  const int fd = fds[0];
  http_.Adopt(api == Api::kNative ? 0 : 1, fds[1]);
  std::string response;
  size_t sent = 0;
  bool write_closed = false;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(HangTimeoutMs());
  char buffer[16384];
  for (;;) {
    bool progressed = false;
    if (!write_closed && sent == request.size()) {
      ::shutdown(fd, SHUT_WR);
      write_closed = true;
    }
    if (!write_closed) {
      ssize_t n =
          ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        sent += static_cast<size_t>(n);
        progressed = true;
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        write_closed = true;  // the server closed early (a 400, say); read what it sent
      }
    }
    ssize_t n = ::recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n == 0) break;
    if (n < 0 && errno != EAGAIN && errno != EINTR) break;  // a reset also ends the exchange
    if (n > 0) {
      progressed = true;
      if (response.size() < kMaxResponseBytesKept) {
        response.append(buffer, static_cast<size_t>(n));
      }
    }
    // Only a server handler can change what this end may read or write next, so when
    // this end is stuck, waiting for the server's next handler loses nothing.
    if (http_.RunOneFor(std::chrono::milliseconds(progressed ? 0 : 20)) > 0) continue;
    if (!progressed && std::chrono::steady_clock::now() > deadline) {
      Die("hang: the server neither answered nor closed the connection within " +
          std::to_string(HangTimeoutMs() / 1000) + " s (sent " + std::to_string(sent) + " of " +
          std::to_string(request.size()) + " bytes, received " + std::to_string(response.size()) +
          ")");
    }
  }
  ::close(fd);
  // The server's side finishes (its lingering close, the session's bookkeeping) before
  // the next connection.
  for (int i = 0; i < 10000 && http_.RunOneFor(std::chrono::milliseconds(0)) > 0; ++i) {
  }
  static const bool verbose = getenv("CAIRN_FUZZ_VERBOSE") != nullptr;
  if (verbose) {  // for checking what seeds reach: each request and the head of its answer
    fprintf(stderr, ">>> %.*s\n<<< %.*s\n", static_cast<int>(std::min<size_t>(request.size(), 600)),
            request.data(), static_cast<int>(std::min<size_t>(response.size(), 400)),
            response.data());
  }
  return response;
}

// ---- Structured inputs ----------------------------------------------------------------

struct Header {
  std::string name;
  std::string value;
};

struct RequestSpec {
  uint8_t flags = 0;
  uint8_t param = 0;
  std::string request_line;  // "METHOD TARGET" (or a whole request line)
  std::vector<Header> headers;
  std::vector<Header> trailers;  // header lines written "~name: value"
  std::string body;
};

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string_view> SplitSpecs(std::string_view rest) {
  constexpr std::string_view kSeparator = "\n~~~\n";
  std::vector<std::string_view> specs;
  while (specs.size() < kMaxRequestsPerInput) {
    size_t at = rest.find(kSeparator);
    specs.push_back(rest.substr(0, at));
    if (at == std::string_view::npos) break;
    rest.remove_prefix(at + kSeparator.size());
  }
  return specs;
}

std::optional<RequestSpec> ParseSpec(std::string_view text) {
  if (text.size() < 2) return std::nullopt;
  RequestSpec spec;
  spec.flags = static_cast<uint8_t>(text[0]);
  spec.param = static_cast<uint8_t>(text[1]);
  text.remove_prefix(2);
  auto next_line = [&text]() {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
  };
  spec.request_line = std::string(next_line());
  while (!text.empty()) {
    std::string_view line = next_line();
    if (line.empty()) break;
    size_t colon = line.find(':');
    std::string_view name = line.substr(0, colon);
    std::string_view value =
        colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (!name.empty() && name.front() == '~') {
      spec.trailers.push_back({std::string(name.substr(1)), std::string(value)});
    } else {
      spec.headers.push_back({std::string(name), std::string(value)});
    }
  }
  spec.body = std::string(text);
  return spec;
}

// Values learnt from earlier responses of the same input, substituted for placeholders.
struct Learnt {
  std::string upload_id;           // @upload: the last <UploadId>
  std::string object_id;           // @id: the last native "id"
  std::vector<std::string> etags;  // @e1..@e9: the ETag headers seen, in order; @etag the last
};

void ReplaceAll(std::string* text, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  for (size_t at = text->find(from); at != std::string::npos; at = text->find(from, at)) {
    text->replace(at, from.size(), to);
    at += to.size();
  }
}

void Substitute(std::string* text, const Learnt& learnt) {
  if (text->find('@') == std::string::npos) return;
  if (!learnt.upload_id.empty()) ReplaceAll(text, "@upload", learnt.upload_id);
  if (!learnt.object_id.empty()) ReplaceAll(text, "@id", learnt.object_id);
  for (size_t i = learnt.etags.size(); i > 0; --i) {  // "@e1" would match "@e10" first
    if (i <= 9) ReplaceAll(text, "@e" + std::to_string(i), learnt.etags[i - 1]);
  }
  if (!learnt.etags.empty()) ReplaceAll(text, "@etag", learnt.etags.back());
}

// The text between the last `open` and the `close` after it. Searched forward: rfind
// compares at every position, and libFuzzer hooks each of those memcmp calls, which cost a
// fifth of the campaign's time on responses with large bodies.
std::string Between(const std::string& text, std::string_view open, std::string_view close) {
  size_t start = std::string::npos;
  for (size_t at = text.find(open); at != std::string::npos; at = text.find(open, at + 1)) {
    start = at;
  }
  if (start == std::string::npos) return {};
  start += open.size();
  size_t end = text.find(close, start);
  if (end == std::string::npos) return {};
  return text.substr(start, end - start);
}

void Learn(const std::string& response, Learnt* learnt) {
  std::string upload_id = Between(response, "<UploadId>", "</UploadId>");
  if (!upload_id.empty()) learnt->upload_id = upload_id;
  std::string id = Between(response, "\"id\":\"", "\"");
  if (!id.empty()) learnt->object_id = id;
  for (size_t at = 0; (at = response.find("\r\n", at)) != std::string::npos;) {
    at += 2;
    if (response.size() - at > 5 && Lower(response.substr(at, 5)) == "etag:") {
      size_t end = response.find("\r\n", at);
      std::string value = response.substr(at + 5, end == std::string::npos ? 0 : end - at - 5);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      learnt->etags.push_back(value);
    }
  }
  std::string xml_etag = Between(response, "<ETag>", "</ETag>");  // UploadPartCopy's answer
  if (!xml_etag.empty()) {
    ReplaceAll(&xml_etag, "&quot;", "\"");
    learnt->etags.push_back(xml_etag);
  }
}

// Header values that ask the harness to compute something from the body.
void ComputeMagicValues(RequestSpec* spec) {
  for (Header& header : spec->headers) {
    if (header.value.empty() || header.value[0] != '@') continue;
    if (header.value == "@md5") {
      Md5Hasher md5;
      md5.Update(spec->body);
      header.value = Base64Encode(md5.Finish());
    } else if (header.value == "@sha256") {
      header.value = Sha256Of(spec->body).ToHex();
    } else if (header.value == "@checksum") {
      auto algorithm = s3::ChecksumAlgorithmFromHeader(Lower(header.name));
      if (!algorithm) continue;
      s3::Checksummer checksum(*algorithm);
      checksum.Update(spec->body);
      header.value = checksum.FinishBase64();
    }
  }
}

bool HasHeader(const RequestSpec& spec, std::string_view lower_name) {
  for (const Header& header : spec.headers) {
    if (Lower(header.name) == lower_name) return true;
  }
  return false;
}

std::string ChunkedFrame(std::string_view payload, size_t chunk_size, bool extension,
                         const std::vector<Header>& trailers) {
  std::string out;
  for (size_t offset = 0; offset < payload.size(); offset += chunk_size) {
    std::string_view piece = payload.substr(offset, chunk_size);
    out += s3::testing::HexSize(piece.size());
    if (extension) out += ";ext=1";
    out += "\r\n";
    out += piece;
    out += "\r\n";
  }
  out += "0\r\n";
  for (const Header& trailer : trailers) out += trailer.name + ": " + trailer.value + "\r\n";
  out += "\r\n";
  return out;
}

constexpr size_t kChunkSizes[] = {1, 7, 64, 500, 1024, 4096, 8192, 65536};

enum Framing : uint8_t {
  kContentLength = 0,
  kChunked = 1,
  kAwsChunkedSigned = 2,
  kAwsChunkedUnsignedTrailer = 3,
  kAwsChunkedSignedTrailer = 4,
  kUnsignedPayload = 5,
  kAwsChunkedInChunked = 6,
  kNoFraming = 7,
};

// Builds the bytes of one request from a spec: credentials, framing and signatures added
// as the spec's flags say.
std::string BuildRequest(Api api, const Server& server, RequestSpec spec) {
  const int auth = spec.flags & 3;
  uint8_t framing = (spec.flags >> 2) & 7;
  const bool expect_continue = (spec.flags & 0x20) != 0;
  const size_t chunk_size = kChunkSizes[spec.param & 7];
  const size_t transfer_chunk_size = kChunkSizes[(spec.param >> 3) & 7];
  const bool chunk_extension = (spec.param & 0x40) != 0;

  std::string method = spec.request_line;
  std::string target = "/";
  std::string version = "HTTP/1.1";
  if (size_t space = method.find(' '); space != std::string::npos) {
    target = method.substr(space + 1);
    method.resize(space);
    if (size_t second = target.find(' '); second != std::string::npos) {
      version = target.substr(second + 1);
      target.resize(second);
    }
  }
  if (!HasHeader(spec, "host")) {
    spec.headers.insert(spec.headers.begin(),
                        {"Host", "127.0.0.1:" + std::to_string(server.port(api))});
  }
  if (expect_continue) spec.headers.push_back({"Expect", "100-continue"});

  std::string payload = spec.body;  // what the framing below encodes
  std::string body = spec.body;     // the bytes sent after the head
  std::vector<Header> framing_headers;
  if (api == Api::kNative) {
    if (framing == kAwsChunkedUnsignedTrailer || framing == kAwsChunkedInChunked) {
      framing = kChunked;
    } else if (framing != kChunked && framing != kNoFraming) {
      framing = kContentLength;
    }
    if (auth == 1) spec.headers.push_back({"Authorization", "Bearer " + server.admin_key()});
    if (auth == 2) spec.headers.push_back({"X-API-Key", server.admin_key()});
    if (auth == 3 && (spec.param & 0x80) != 0) {
      spec.headers.push_back({"Authorization", "Bearer " + server.reader_key()});
    } else if (auth == 3) {
      auth::JwtClaims claims;
      claims.tenants = {"default", "other"};
      claims.scope = meta::Scope::kWrite;
      claims.expires_at_s = NowMs() / 1000 + 3600;
      spec.headers.push_back({"Authorization", "Bearer " + auth::CreateJwt(claims, kJwtSecret)});
    }
  } else {
    const bool reader = auth == 3;
    s3::SigningCredentials credentials;
    credentials.access_key = std::string(reader ? kS3ReaderAccessKey : kS3AccessKey);
    credentials.secret_key = std::string(reader ? kS3ReaderSecretKey : kS3SecretKey);
    const bool header_signed = auth == 1 || auth == 3;
    const bool streaming = framing == kAwsChunkedSigned || framing == kAwsChunkedUnsignedTrailer ||
                           framing == kAwsChunkedSignedTrailer || framing == kAwsChunkedInChunked;
    s3::testing::ChunkedEncoding encoding;
    encoding.chunk_size = chunk_size;
    if (streaming) {
      encoding.mode = framing == kAwsChunkedSigned ? s3::PayloadMode::kStreamingSigned
                      : framing == kAwsChunkedSignedTrailer
                          ? s3::PayloadMode::kStreamingSignedTrailer
                      : (spec.param & 0x80) != 0 ? s3::PayloadMode::kStreamingSigned
                                                 : s3::PayloadMode::kStreamingUnsignedTrailer;
      if (!header_signed) encoding.mode = s3::PayloadMode::kStreamingUnsignedTrailer;
      if (encoding.mode != s3::PayloadMode::kStreamingSigned) {
        encoding.trailer = s3::kAllChecksumAlgorithms[(spec.param >> 3) % 5];
      }
    }
    const TimestampMs now = NowMs();
    std::vector<std::pair<std::string, std::string>> signed_headers;
    for (const Header& header : spec.headers) {
      signed_headers.emplace_back(Lower(header.name), header.value);
    }
    auto add_signed = [&](std::string name, std::string value) {
      for (const auto& header : signed_headers) {
        if (header.first == name) return;  // the input's own value wins
      }
      spec.headers.push_back({name, value});
      signed_headers.emplace_back(std::move(name), std::move(value));
    };
    if (streaming) {
      add_signed("content-encoding", "aws-chunked");
      add_signed("x-amz-decoded-content-length", std::to_string(payload.size()));
      if (encoding.trailer) {
        add_signed("x-amz-trailer", std::string(s3::ChecksumHeaderName(*encoding.trailer)));
      }
    }
    std::string path = target.substr(0, target.find('?'));
    std::string raw_query =
        target.find('?') == std::string::npos ? "" : target.substr(target.find('?') + 1);
    auto query = s3::ParseRawQuery(raw_query);
    if (header_signed && query.ok()) {
      add_signed("x-amz-date", s3::FormatAmzDate(now));
      add_signed("x-amz-content-sha256", streaming ? std::string(s3::PayloadModeName(encoding.mode))
                                         : framing == kUnsignedPayload
                                             ? std::string(s3::kUnsignedPayload)
                                             : Sha256Of(payload).ToHex());
      s3::SigningRequest signing;
      signing.method = method;
      signing.raw_path = path;
      signing.query = *query;
      signing.headers = signed_headers;
      signing.now_ms = now;
      auto signed_request = s3::SignRequest(signing, credentials);
      if (signed_request.ok()) {
        spec.headers.push_back({"Authorization", signed_request->authorization});
        encoding.signing_key = signed_request->signing_key;
        encoding.amz_date = signed_request->amz_date;
        encoding.scope = signed_request->scope;
        encoding.seed_signature = signed_request->signature;
      }
    } else if (auth == 2 && query.ok()) {
      s3::SigningRequest signing;
      signing.method = method;
      signing.raw_path = path;
      signing.query = *query;
      for (const auto& header : signed_headers) {
        if (header.first == "host") signing.headers.push_back(header);
      }
      signing.now_ms = now;
      auto presigned = s3::Presign(signing, credentials, 1 + (spec.param & 0x7f) * 60);
      if (presigned.ok()) target = path + "?" + s3::EncodeQuery(*presigned);
    } else if (!streaming && framing == kUnsignedPayload) {
      add_signed("x-amz-content-sha256", std::string(s3::kUnsignedPayload));
    }
    if (streaming) {
      body = s3::testing::EncodeAwsChunked(payload, encoding);
      if (framing == kAwsChunkedInChunked) {
        framing = kChunked;
        payload = body;
      } else {
        framing = kContentLength;
      }
    } else if (framing == kUnsignedPayload) {
      framing = kContentLength;
    }
  }
  const bool framed_by_input =
      HasHeader(spec, "content-length") || HasHeader(spec, "transfer-encoding");
  if (framing == kChunked) {
    if (!framed_by_input) framing_headers.push_back({"Transfer-Encoding", "chunked"});
    body = ChunkedFrame(payload, transfer_chunk_size, chunk_extension, spec.trailers);
  } else if (framing == kContentLength && !framed_by_input) {
    framing_headers.push_back({"Content-Length", std::to_string(body.size())});
  }

  std::string out = method + " " + target + " " + version + "\r\n";
  for (const Header& header : spec.headers) out += header.name + ": " + header.value + "\r\n";
  for (const Header& header : framing_headers) out += header.name + ": " + header.value + "\r\n";
  out += "\r\n";
  out += body;
  return out;
}

void RunStructured(Api api, Server& server, std::string_view rest) {
  Learnt learnt;
  for (std::string_view text : SplitSpecs(rest)) {
    std::optional<RequestSpec> spec = ParseSpec(text);
    if (!spec) continue;
    Substitute(&spec->request_line, learnt);
    for (Header& header : spec->headers) Substitute(&header.value, learnt);
    Substitute(&spec->body, learnt);
    ComputeMagicValues(&*spec);
    const bool twice = (spec->flags & 0x80) != 0;  // the same request again, kept alive
    std::string request = BuildRequest(api, server, std::move(*spec));
    if (twice) request += request;
    Learn(server.Exchange(api, request), &learnt);
  }
}

}  // namespace

void RunInput(Api api, const uint8_t* data, size_t size) {
  Server* server = &GetServer();
  if (++g_inputs % kCheckEvery == 0) {
    static const uint64_t max_bytes = [] {
      const char* text = getenv("CAIRN_FUZZ_MAX_STORE_MB");
      return text != nullptr ? strtoull(text, nullptr, 10) << 20 : kDefaultMaxStoreBytes;
    }();
    if (DirectoryBytes(server->dir()) > max_bytes) {
      StopServer();  // a fresh, empty store
      server = &GetServer();
    }
  }
  if (size == 0) return;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const uint8_t mode = static_cast<uint8_t>(input[0]);
  input.remove_prefix(1);
  if ((mode & 3) == 0) {
    server->Exchange(api, input);  // raw bytes, exactly as given
  } else {
    RunStructured(api, *server, input);
  }
}

}  // namespace cairn::fuzz
