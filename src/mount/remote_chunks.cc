#include "mount/remote_chunks.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "chunks/chunk_cache.h"
#include "client/http_client.h"
#include "core/block_checksums.h"
#include "core/hashing.h"

namespace cairn::mount {
namespace {

// What a server's JSON error says, or the start of the body.
std::string ErrorText(int status, const std::string& body) {
  nlohmann::json parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  std::string message;
  if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_object() &&
      parsed["error"].contains("message") && parsed["error"]["message"].is_string()) {
    message = parsed["error"]["message"].get<std::string>();
  } else {
    message = body.substr(0, 200);
  }
  return "HTTP " + std::to_string(status) + (message.empty() ? "" : ": " + message);
}

// The status code a server's error answer stands for (so ENOSPC stays ENOSPC at the mount).
Status StatusOf(int status, const std::string& body, const std::string& what) {
  const std::string text = what + ": " + ErrorText(status, body);
  switch (status) {
    case 400:
      return InvalidArgumentError(text);
    case 401:
    case 403:
      return PermissionDeniedError(text);
    case 404:
      return NotFoundError(text);
    case 413:
      return PayloadTooLargeError(text);
    case 507:
      return ResourceExhaustedError(text);
    case 503:
      return UnavailableError(text);
    default:
      return status >= 500 ? DataLossError(text) : InternalError(text);
  }
}

// Most bytes one read fetches: a whole 4 MiB chunk, received in place.
constexpr uint64_t kMaxFetchBytes = 16 * kChecksumBlockBytes;

}  // namespace

RemoteChunks::RemoteChunks(std::string url, std::string api_key, int timeout_seconds)
    : url_(std::move(url)), api_key_(std::move(api_key)), timeout_seconds_(timeout_seconds) {}

RemoteChunks::~RemoteChunks() = default;

Result<std::unique_ptr<RemoteChunks>> RemoteChunks::Connect(std::string_view url,
                                                            std::string api_key,
                                                            const std::string& store_id,
                                                            int timeout_seconds) {
  RETURN_IF_ERROR(client::ParseEndpoint(url).status().WithContext("--storage"));
  if (api_key.empty()) {
    return InvalidArgumentError(
        "--storage " + std::string(url) +
        " needs an API key for every tenant with write scope (--storage-key or "
        "CAIRN_STORAGE_KEY)");
  }
  std::unique_ptr<RemoteChunks> remote(
      new RemoteChunks(std::string(url), std::move(api_key), timeout_seconds));
  // The space request needs the same key the chunk calls do: a wrong address, key or scope
  // fails here.
  Result<RemoteSpace> space = remote->Space(StorageClass::kHot);
  if (!space.ok()) return space.status().WithContext("checking --storage " + std::string(url));
  if (space->store_id != store_id) {
    return FailedPreconditionError(
        "the server at " + std::string(url) + " keeps its metadata in another store (store id " +
        (space->store_id.empty() ? std::string("none") : space->store_id) +
        "; this metadata store's is " + (store_id.empty() ? std::string("none") : store_id) +
        "): --storage needs the server whose metadata store holds this volume");
  }
  return remote;
}

std::string RemoteChunks::Target(StorageClass storage_class, const Digest& digest) {
  return "/v1/chunks/" + std::string(StorageClassName(storage_class)) + "/" + digest.ToHex();
}

Result<RemoteChunks::Response> RemoteChunks::Send(
    const std::string& method, const std::string& target, std::string_view body,
    const std::string& range, const std::function<void(std::string_view)>& sink) {
  std::unique_ptr<client::HttpClient> connection;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!idle_.empty()) {
      connection = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (!connection) {
    ASSIGN_OR_RETURN(client::Endpoint endpoint, client::ParseEndpoint(url_));
    endpoint.timeout_seconds = timeout_seconds_;
    connection = std::make_unique<client::HttpClient>(endpoint);
  }
  client::HttpRequest request;
  request.method = method;
  request.target = target;
  request.headers.emplace_back("Authorization", "Bearer " + api_key_);
  if (!range.empty()) request.headers.emplace_back("Range", range);
  request.body = body;
  Result<client::HttpResponse> response = connection->Send(request, sink);
  if (!response.ok()) {
    return response.status().WithContext(method + " " + url_ + target);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  bytes_sent_ += body.size();
  bytes_received_ += response->body_bytes;
  idle_.push_back(std::move(connection));  // kept alive for the next caller
  Response out;
  out.status = response->status;
  out.body = std::move(response->body);
  return out;
}

Result<bool> RemoteChunks::Have(StorageClass storage_class, const Digest& digest) {
  const std::string target = Target(storage_class, digest);
  ASSIGN_OR_RETURN(Response response, Send("HEAD", target, {}, ""));
  if (response.status == 200) return true;
  if (response.status == 404) return false;
  return StatusOf(response.status, response.body, "HEAD " + url_ + target);
}

Status RemoteChunks::Put(StorageClass storage_class, const Digest& digest, std::string_view bytes) {
  const std::string target = Target(storage_class, digest);
  ASSIGN_OR_RETURN(Response response, Send("PUT", target, bytes, ""));
  if (response.status == 204 || response.status == 200) return OkStatus();
  return StatusOf(response.status, response.body, "PUT " + url_ + target);
}

Status RemoteChunks::Read(StorageClass storage_class, const meta::ChunkRef& chunk, uint64_t offset,
                          size_t length, char* out) {
  if (offset > chunk.size_bytes || length > chunk.size_bytes - offset) {
    return OutOfRangeError("bytes " + std::to_string(offset) + "+" + std::to_string(length) +
                           " of a chunk of " + std::to_string(chunk.size_bytes));
  }
  const std::string target = Target(storage_class, chunk.digest);
  if (!BlockChecksumsFit(chunk.block_checksums, chunk.size_bytes)) {
    // No block checksums recorded (an old row): the whole chunk is fetched and its SHA-256
    // checked against its name, whatever part was asked for.
    std::string bytes(chunk.size_bytes, '\0');
    for (uint64_t at = 0; at < chunk.size_bytes; at += kMaxFetchBytes) {
      const uint64_t n = std::min<uint64_t>(kMaxFetchBytes, chunk.size_bytes - at);
      RETURN_IF_ERROR(Fetch(target, chunk, at, n, bytes.data() + at, /*checked=*/false));
    }
    if (Sha256Of(bytes) != chunk.digest) {
      Status mismatch = DataLossError("chunk " + chunk.digest.ToHex() + " from " + url_ +
                                      " does not hash to its name");
      fprintf(stderr, "cairn mount: integrity: %s; the read fails (EIO)\n",
              mismatch.message().c_str());
      return mismatch;
    }
    std::memcpy(out, bytes.data() + offset, length);
    return OkStatus();
  }
  if (cache_ != nullptr) {
    // A copy that failed its check is dropped and made again once from the server's bytes.
    for (int attempt = 0; attempt < 2; ++attempt) {
      bool dropped = false;
      ASSIGN_OR_RETURN(bool served, ReadCached(target, chunk, offset, length, out, &dropped));
      if (served) return OkStatus();
      if (!dropped) break;
    }
  }
  return Fetch(target, chunk, offset, length, out, /*checked=*/true);
}

Result<bool> RemoteChunks::ReadCached(const std::string& target, const meta::ChunkRef& chunk,
                                      uint64_t offset, size_t length, char* out, bool* dropped) {
  std::unique_ptr<platform::ReadableFile> copy = cache_->OpenCopy(chunk.digest, chunk.size_bytes);
  if (!copy) {
    // The whole chunk, 1 MiB at a time, each piece's blocks checked as it arrives; the
    // cache hashes the whole against the name before keeping it.
    Status fetched = OkStatus();
    Result<std::unique_ptr<platform::ReadableFile>> filled =
        cache_->FillFrom(chunk.digest, chunk.size_bytes, [&](uint64_t at, size_t n, char* into) {
          fetched = Fetch(target, chunk, at, n, into, /*checked=*/true);
          return fetched;
        });
    if (!fetched.ok()) return fetched;  // the server's error: the same as a direct read
    if (filled.status().code() == StatusCode::kDataLoss) {
      // Every block matched its checksum but the whole does not hash to the chunk's name:
      // these are not the chunk's bytes, whatever the checksums say.
      Status mismatch = DataLossError("chunk " + chunk.digest.ToHex() + " from " + url_ +
                                      " does not hash to its name");
      fprintf(stderr, "cairn mount: integrity: %s; the read fails (EIO)\n",
              mismatch.message().c_str());
      return mismatch;
    }
    if (!filled.ok()) {
      // A full or failing cache disk fails every fill: logged at the 1st, 2nd, 4th, ... time.
      const uint64_t failures = cache_failures_.fetch_add(1) + 1;
      if (filled.status().code() != StatusCode::kResourceExhausted &&
          (failures & (failures - 1)) == 0) {
        fprintf(stderr,
                "cairn mount: the chunk cache could not keep chunk %s (%llu failures so far; the "
                "reads go to %s): %s\n",
                chunk.digest.ToHex().c_str(), static_cast<unsigned long long>(failures),
                url_.c_str(), filled.status().message().c_str());
      }
      return false;
    }
    copy = std::move(filled).value();
  }
  // Whole blocks from the copy, each checked before any of its bytes are used.
  std::string block_bytes;
  uint64_t done = 0;
  while (done < length) {
    const uint64_t block = (offset + done) / kChecksumBlockBytes;
    const uint64_t start = block * kChecksumBlockBytes;
    const uint64_t n = std::min<uint64_t>(kChecksumBlockBytes, chunk.size_bytes - start);
    block_bytes.resize(n);
    Result<size_t> got = copy->ReadAt(start, n, block_bytes.data());
    std::string failed;
    if (!got.ok()) {
      failed = got.status().message();
    } else if (*got != n) {
      failed = "the copy is short";
    } else if (Crc32c(block_bytes) != BlockChecksumAt(chunk.block_checksums, block)) {
      failed = "checksum mismatch";
    }
    if (!failed.empty()) {
      fprintf(stderr,
              "cairn mount: the cached copy of chunk %s failed its check at block %llu (%s); "
              "dropped, read from %s\n",
              chunk.digest.ToHex().c_str(), static_cast<unsigned long long>(block), failed.c_str(),
              url_.c_str());
      cache_->Drop(chunk.digest);
      *dropped = true;
      return false;
    }
    const uint64_t from = offset + done - start;
    const uint64_t take = std::min<uint64_t>(length - done, n - from);
    std::memcpy(out + done, block_bytes.data() + from, take);
    done += take;
  }
  return true;
}

Status RemoteChunks::Fetch(const std::string& target, const meta::ChunkRef& chunk, uint64_t offset,
                           size_t length, char* out, bool checked) {
  uint64_t done = 0;
  std::string staging;
  // Bounded by `length`: each round fetches at least one block or fails.
  while (done < length) {
    const uint64_t first_block = (offset + done) / kChecksumBlockBytes;
    const uint64_t start = first_block * kChecksumBlockBytes;
    const uint64_t end = std::min<uint64_t>(
        chunk.size_bytes,
        std::min<uint64_t>(start + kMaxFetchBytes,
                           ((offset + length + kChecksumBlockBytes - 1) / kChecksumBlockBytes) *
                               kChecksumBlockBytes));
    const uint64_t want = end - start;
    // Whole blocks inside what was asked for land in `out` itself (nothing there is used
    // unless every block checks); a range sticking out of it goes through `staging`.
    const bool direct = start >= offset + done && end <= offset + length;
    char* destination;
    if (direct) {
      destination = out + (start - offset);  // only formed when it lies inside `out`
    } else {
      staging.resize(want);
      destination = staging.data();
    }
    uint64_t received = 0;
    bool overflow = false;
    auto sink = [&](std::string_view piece) {
      if (received + piece.size() > want) {
        overflow = true;
        return;
      }
      std::memcpy(destination + received, piece.data(), piece.size());
      received += piece.size();
    };
    const std::string range = "bytes=" + std::to_string(start) + "-" + std::to_string(end - 1);
    ASSIGN_OR_RETURN(Response response, Send("GET", target, {}, range, sink));
    if (response.status != 206 &&
        !(response.status == 200 && start == 0 && end == chunk.size_bytes)) {
      return StatusOf(response.status, std::string(destination, std::min<uint64_t>(received, 4096)),
                      "GET " + url_ + target);
    }
    if (overflow || received != want) {
      return DataLossError(
          "GET " + url_ + target + " " + range + " sent " +
          (overflow ? "more than " + std::to_string(want) : std::to_string(received)) +
          " bytes, not " + std::to_string(want));
    }
    if (checked) {
      for (uint64_t block = first_block; block * kChecksumBlockBytes < end; ++block) {
        const uint64_t at = block * kChecksumBlockBytes - start;
        const uint64_t n = std::min<uint64_t>(kChecksumBlockBytes, want - at);
        if (Crc32c(std::string_view(destination + at, n)) !=
            BlockChecksumAt(chunk.block_checksums, block)) {
          Status mismatch =
              DataLossError("block " + std::to_string(block) + " of chunk " + chunk.digest.ToHex() +
                            " from " + url_ + " does not match its recorded checksum");
          fprintf(stderr, "cairn mount: integrity: %s; the read fails (EIO)\n",
                  mismatch.message().c_str());
          return mismatch;
        }
      }
    }
    const uint64_t from = offset + done - start;
    const uint64_t n = std::min<uint64_t>(length - done, want - from);
    if (!direct) std::memcpy(out + done, destination + from, n);
    done += n;
  }
  return OkStatus();
}

Result<RemoteSpace> RemoteChunks::Space(StorageClass storage_class) {
  const std::string target = "/v1/chunks/" + std::string(StorageClassName(storage_class));
  ASSIGN_OR_RETURN(Response response, Send("GET", target, {}, ""));
  if (response.status != 200) {
    return StatusOf(response.status, response.body, "GET " + url_ + target);
  }
  nlohmann::json parsed = nlohmann::json::parse(response.body, nullptr, false);
  RemoteSpace space;
  if (!parsed.is_object() || !parsed["total_bytes"].is_number_unsigned() ||
      !parsed["free_bytes"].is_number_unsigned() ||
      !parsed["available_bytes"].is_number_unsigned()) {
    return DataLossError("GET " + url_ + target +
                         " answered no space figures: " + response.body.substr(0, 200));
  }
  space.total_bytes = parsed["total_bytes"].get<uint64_t>();
  space.free_bytes = parsed["free_bytes"].get<uint64_t>();
  space.available_bytes = parsed["available_bytes"].get<uint64_t>();
  if (parsed.contains("store_id") && parsed["store_id"].is_string()) {
    space.store_id = parsed["store_id"].get<std::string>();
  }
  return space;
}

uint64_t RemoteChunks::bytes_sent() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_sent_;
}

uint64_t RemoteChunks::bytes_received() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_received_;
}

}  // namespace cairn::mount
