// `cairn bench`: a load generator for the native API and any S3 endpoint in the spirit of
// warp. Each worker thread owns one keep-alive connection; latencies are kept per operation
// and merged at the end. Every loop is bounded by --duration or --count.
//
// S3 requests are path-style (/bucket/key) and signed with SigV4 using UNSIGNED-PAYLOAD,
// so the client never hashes bodies and measures the server, not itself.
#include "cli/bench.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "api/s3/sigv4/sigv4.h"
#include "client/http_client.h"
#include "core/text.h"
#include "http/exchange.h"

namespace cairn::cli {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxSamplesPerWorker = 2'000'000;

struct SizeRange {
  uint64_t min_bytes = 4096;
  uint64_t max_bytes = 4096;
};

Result<uint64_t> ParseBytes(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) {
    ++digits;
  }
  if (digits == 0) return InvalidArgumentError("size '" + std::string(text) + "' has no number");
  uint64_t value = std::stoull(std::string(text.substr(0, digits)));
  const std::string unit = ToLowerAscii(text.substr(digits));
  uint64_t scale = 1;
  if (unit.empty() || unit == "b") {
    scale = 1;
  } else if (unit == "kib" || unit == "k") {
    scale = 1ull << 10;
  } else if (unit == "mib" || unit == "m") {
    scale = 1ull << 20;
  } else if (unit == "gib" || unit == "g") {
    scale = 1ull << 30;
  } else if (unit == "kb") {
    scale = 1000;
  } else if (unit == "mb") {
    scale = 1000 * 1000;
  } else if (unit == "gb") {
    scale = 1000ull * 1000 * 1000;
  } else {
    return InvalidArgumentError("unknown size unit '" + unit + "'");
  }
  return value * scale;
}

Result<SizeRange> ParseSizeRange(const std::string& text) {
  SizeRange range;
  size_t dash = text.find('-');
  ASSIGN_OR_RETURN(range.min_bytes, ParseBytes(text.substr(0, dash)));
  range.max_bytes = range.min_bytes;
  if (dash != std::string::npos) {
    ASSIGN_OR_RETURN(range.max_bytes, ParseBytes(text.substr(dash + 1)));
  }
  if (range.max_bytes < range.min_bytes) return InvalidArgumentError("size range is reversed");
  return range;
}

enum class Op { kPut, kGet, kStat, kList, kDelete };
constexpr const char* kOpNames[] = {"put", "get", "stat", "list", "delete"};
constexpr int kOpCount = 5;

Result<Op> ParseOp(std::string_view name) {
  for (int i = 0; i < kOpCount; ++i) {
    if (name == kOpNames[i]) return static_cast<Op>(i);
  }
  return InvalidArgumentError("unknown operation '" + std::string(name) + "'");
}

// Fast deterministic bytes: the same seed gives the same content (identical mode).
// The generator shares the machine with the server it measures, so it stores eight bytes
// at a time (on little-endian hosts; the bytes are the same as one at a time).
void FillPattern(uint64_t seed, uint64_t offset, char* out, size_t n) {
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + (offset / 8) + 1;
  size_t i = 0;
  while (i < n) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    if (std::endian::native == std::endian::little && n - i >= 8) {
      memcpy(out + i, &state, 8);
      i += 8;
      continue;
    }
    for (int b = 0; b < 8 && i < n; ++b, ++i) out[i] = static_cast<char>(state >> (8 * b));
  }
}

struct OpStats {
  std::vector<double> latencies_ms;
  uint64_t ops = 0;
  uint64_t errors = 0;
  uint64_t not_found = 0;  // 404s in a mixed run, where deletes race reads: not errors
  uint64_t bytes = 0;
};

struct WorkerResult {
  OpStats stats[kOpCount];
};

using Pairs = std::vector<std::pair<std::string, std::string>>;

// Decodes the five predefined XML entities and numeric references in ASCII.
std::string XmlUnescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '&') {
      out += text[i];
      continue;
    }
    size_t semi = text.find(';', i);
    if (semi == std::string_view::npos) {
      out += text.substr(i);
      break;
    }
    std::string_view entity = text.substr(i + 1, semi - i - 1);
    if (entity == "amp") {
      out += '&';
    } else if (entity == "lt") {
      out += '<';
    } else if (entity == "gt") {
      out += '>';
    } else if (entity == "quot") {
      out += '"';
    } else if (entity == "apos") {
      out += '\'';
    } else if (!entity.empty() && entity[0] == '#') {
      const bool hex = entity.size() > 1 && (entity[1] == 'x' || entity[1] == 'X');
      const uint64_t code =
          std::strtoull(std::string(entity.substr(hex ? 2 : 1)).c_str(), nullptr, hex ? 16 : 10);
      out += static_cast<char>(code < 128 ? code : '?');
    } else {
      out += text.substr(i, semi - i + 1);
    }
    i = semi;
  }
  return out;
}

// The text of every <tag>...</tag> element, in order (enough for ListObjectsV2 replies).
std::vector<std::string> XmlElements(std::string_view xml, std::string_view tag) {
  std::vector<std::string> values;
  const std::string open = "<" + std::string(tag) + ">";
  const std::string close = "</" + std::string(tag) + ">";
  size_t pos = 0;
  while ((pos = xml.find(open, pos)) != std::string_view::npos) {
    pos += open.size();
    size_t end = xml.find(close, pos);
    if (end == std::string_view::npos) break;
    values.push_back(XmlUnescape(xml.substr(pos, end - pos)));
    pos = end + close.size();
  }
  return values;
}

class Bench {
 public:
  Bench(const BenchOptions& options, client::Endpoint endpoint, SizeRange sizes,
        std::vector<std::pair<Op, int>> mix)
      : options_(options), endpoint_(std::move(endpoint)), sizes_(sizes), mix_(std::move(mix)) {
    for (const auto& [op, weight] : mix_) total_weight_ += weight;
  }

  int Run();

 private:
  bool s3() const { return options_.api == "s3"; }
  const std::string& bucket() const {
    return options_.bucket.empty() ? options_.namespace_name : options_.bucket;
  }
  std::string ObjectKey(uint64_t index) const {
    return options_.prefix + "obj/" + std::to_string(index);
  }
  // A request on one object: the native by-key route or S3 /bucket/key, signed for S3.
  client::HttpRequest KeyRequest(std::string method, const std::string& key) const;
  // One listing page: native ?cursor= or S3 ListObjectsV2 ?continuation-token=.
  client::HttpRequest ListRequest(int limit, const std::string& cursor) const;
  // Native: bearer and tenant headers. S3: host, x-amz-date, x-amz-content-sha256 and the
  // SigV4 Authorization over all of them; `path` is raw (percent-encoded), `query` decoded.
  void Authorize(client::HttpRequest& request, const std::string& path, const Pairs& query) const;
  Status EnsureBucket();
  // Distinct content per (run seed, worker, sequence): runs with different --seed values
  // upload different bytes, so a second PUT run does not just hit the first run's chunks.
  uint64_t ContentSeed(uint64_t worker, uint64_t sequence) const {
    return (options_.seed * 0x100000001B3ull) ^ ((worker << 40) + sequence);
  }
  uint64_t PickSize(std::mt19937_64& rng) const {
    if (sizes_.min_bytes == sizes_.max_bytes) return sizes_.min_bytes;
    return std::uniform_int_distribution<uint64_t>(sizes_.min_bytes, sizes_.max_bytes)(rng);
  }
  Result<int> Put(client::HttpClient& http, const std::string& key, uint64_t size, uint64_t seed);
  Result<int> DoOp(client::HttpClient& http, Op op, std::mt19937_64& rng, OpStats* stats,
                   uint64_t worker, uint64_t sequence);
  Status Prepare();
  void Cleanup();
  void Worker(uint64_t worker, WorkerResult* result);
  Op PickOp(std::mt19937_64& rng) const;

  const BenchOptions& options_;
  client::Endpoint endpoint_;
  SizeRange sizes_;
  std::vector<std::pair<Op, int>> mix_;
  int total_weight_ = 0;
  std::atomic<uint64_t> issued_{0};
  std::atomic<uint64_t> completed_{0};
  std::atomic<uint64_t> next_delete_{0};
  std::atomic<bool> stop_{false};
  Clock::time_point deadline_;
};

void Bench::Authorize(client::HttpRequest& request, const std::string& path,
                      const Pairs& query) const {
  request.target = query.empty() ? path : path + "?" + api::s3::EncodeQuery(query);
  if (!s3()) {
    request.headers.emplace_back("Authorization", "Bearer " + options_.key);
    request.headers.emplace_back("X-Tenant", options_.tenant);
    return;
  }
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  api::s3::SigningRequest signing;
  signing.method = request.method;
  signing.raw_path = path;
  signing.query = query;
  signing.now_ms = now_ms;
  const std::string host =
      endpoint_.port == 80 ? endpoint_.host : endpoint_.host + ":" + std::to_string(endpoint_.port);
  signing.headers = {{"host", host},
                     {"x-amz-content-sha256", std::string(api::s3::kUnsignedPayload)},
                     {"x-amz-date", api::s3::FormatAmzDate(now_ms)}};
  api::s3::SigningCredentials credentials{options_.access_key, options_.secret_key, options_.region,
                                          "s3"};
  auto signed_request = api::s3::SignRequest(signing, credentials);
  for (auto& header : signing.headers) request.headers.push_back(std::move(header));
  // A signing failure (bad path) is left to the server to reject: counted as an error.
  if (signed_request.ok()) {
    request.headers.emplace_back("Authorization", signed_request->authorization);
  }
}

client::HttpRequest Bench::KeyRequest(std::string method, const std::string& key) const {
  client::HttpRequest request;
  request.method = std::move(method);
  if (s3()) {
    Authorize(request, "/" + bucket() + "/" + api::s3::UriEncode(key, false), {});
  } else {
    Authorize(request,
              "/v1/objects/by-key/" + options_.namespace_name + "/" + options_.tenant + "/" +
                  http::PercentEncode(key),
              {});
  }
  return request;
}

client::HttpRequest Bench::ListRequest(int limit, const std::string& cursor) const {
  client::HttpRequest request;
  if (s3()) {
    Pairs query = {
        {"list-type", "2"}, {"max-keys", std::to_string(limit)}, {"prefix", options_.prefix}};
    if (!cursor.empty()) query.emplace_back("continuation-token", cursor);
    Authorize(request, "/" + bucket(), query);
  } else {
    Pairs query = {{"namespace", options_.namespace_name},
                   {"tenant", options_.tenant},
                   {"prefix", options_.prefix},
                   {"limit", std::to_string(limit)}};
    if (!cursor.empty()) query.emplace_back("cursor", cursor);
    Authorize(request, "/v1/objects", query);
  }
  return request;
}

Status Bench::EnsureBucket() {
  if (!s3()) return OkStatus();
  client::HttpClient http(endpoint_);
  client::HttpRequest head;
  head.method = "HEAD";
  Authorize(head, "/" + bucket(), {});
  ASSIGN_OR_RETURN(client::HttpResponse exists, http.Send(head));
  if (exists.status == 200) return OkStatus();
  if (exists.status != 404) {
    return UnavailableError("HeadBucket " + bucket() + " answered HTTP " +
                            std::to_string(exists.status) + " (check endpoint and keys)");
  }
  client::HttpRequest create;
  create.method = "PUT";
  std::string configuration;
  if (options_.region != "us-east-1") {
    configuration = "<CreateBucketConfiguration><LocationConstraint>" + options_.region +
                    "</LocationConstraint></CreateBucketConfiguration>";
    create.body = configuration;
  }
  Authorize(create, "/" + bucket(), {});
  ASSIGN_OR_RETURN(client::HttpResponse created, http.Send(create));
  if (created.status == 200 || created.status == 409) return OkStatus();  // 409: a race
  return UnavailableError("CreateBucket " + bucket() + " answered HTTP " +
                          std::to_string(created.status) + ": " + created.body.substr(0, 300));
}

Result<int> Bench::Put(client::HttpClient& http, const std::string& key, uint64_t size,
                       uint64_t seed) {
  client::HttpRequest request;
  if (s3()) {
    request = KeyRequest("PUT", key);
  } else {
    request.method = "POST";
    request.headers.emplace_back("X-Namespace", options_.namespace_name);
    request.headers.emplace_back("X-Key", http::PercentEncode(key));
    request.headers.emplace_back("X-Storage-Class", options_.storage_class);
    Authorize(request, "/v1/objects", {});
  }
  request.body_size = size;
  uint64_t offset = 0;
  request.body_source = [&offset, seed](char* buffer, size_t n) {
    FillPattern(seed, offset, buffer, n);
    offset += n;
    return n;
  };
  ASSIGN_OR_RETURN(client::HttpResponse response, http.Send(request));
  return response.status;
}

Op Bench::PickOp(std::mt19937_64& rng) const {
  int pick = std::uniform_int_distribution<int>(0, total_weight_ - 1)(rng);
  for (const auto& [op, weight] : mix_) {
    if (pick < weight) return op;
    pick -= weight;
  }
  return mix_.front().first;
}

Result<int> Bench::DoOp(client::HttpClient& http, Op op, std::mt19937_64& rng, OpStats* stats,
                        uint64_t worker, uint64_t sequence) {
  const uint64_t index = std::uniform_int_distribution<uint64_t>(0, options_.objects - 1)(rng);
  switch (op) {
    case Op::kPut: {
      const uint64_t size = PickSize(rng);
      const uint64_t seed = options_.identical ? 1 : ContentSeed(worker, sequence + 1'000'000);
      stats->bytes += size;
      const bool overwrite = mix_.size() > 1;  // mixed: keep the population stable
      const std::string key = overwrite ? ObjectKey(index)
                                        : options_.prefix + "put/" + std::to_string(worker) + "/" +
                                              std::to_string(sequence);
      return Put(http, key, size, seed);
    }
    case Op::kGet:
    case Op::kStat: {
      client::HttpRequest request = KeyRequest(op == Op::kGet ? "GET" : "HEAD", ObjectKey(index));
      ASSIGN_OR_RETURN(client::HttpResponse response, http.Send(request, [](std::string_view) {}));
      stats->bytes += response.body_bytes;
      return response.status;
    }
    case Op::kList: {
      client::HttpRequest request = ListRequest(100, "");
      ASSIGN_OR_RETURN(client::HttpResponse response, http.Send(request));
      return response.status;
    }
    case Op::kDelete: {
      uint64_t target_index = index;
      if (mix_.size() == 1) {  // pure delete: each prepared object once
        target_index = next_delete_++;
        if (target_index >= options_.objects) {
          stop_ = true;
          return 0;
        }
      }
      client::HttpRequest request = KeyRequest("DELETE", ObjectKey(target_index));
      ASSIGN_OR_RETURN(client::HttpResponse response, http.Send(request));
      return response.status;
    }
  }
  return 0;
}

void Bench::Worker(uint64_t worker, WorkerResult* result) {
  client::HttpClient http(endpoint_);
  std::mt19937_64 rng(options_.seed * 1000003 + worker);
  for (uint64_t sequence = 0; !stop_; ++sequence) {
    if (options_.count > 0) {
      if (issued_++ >= options_.count) break;
    } else if (Clock::now() >= deadline_) {
      break;
    }
    const Op op = PickOp(rng);
    OpStats& stats = result->stats[static_cast<int>(op)];
    const auto start = Clock::now();
    Result<int> status = DoOp(http, op, rng, &stats, worker, sequence);
    if (status.ok() && *status == 0) break;  // nothing left to do
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    ++stats.ops;
    if (status.ok() && *status == 404 && mix_.size() > 1) {
      ++stats.not_found;
    } else if (!status.ok() || *status >= 300) {
      ++stats.errors;
    }
    if (stats.latencies_ms.size() < kMaxSamplesPerWorker) stats.latencies_ms.push_back(ms);
    ++completed_;
  }
}

Status Bench::Prepare() {
  bool needs_objects = false;
  for (const auto& [op, weight] : mix_) needs_objects |= op != Op::kPut && op != Op::kList;
  RETURN_IF_ERROR(EnsureBucket());
  if (!needs_objects) return OkStatus();
  fprintf(stderr, "preparing %llu objects...\n", static_cast<unsigned long long>(options_.objects));
  std::atomic<uint64_t> next{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < options_.concurrency; ++t) {
    threads.emplace_back([&, t] {
      client::HttpClient http(endpoint_);
      std::mt19937_64 rng(options_.seed + 7 * t);
      for (uint64_t i = next++; i < options_.objects && !failed; i = next++) {
        auto status =
            Put(http, ObjectKey(i), PickSize(rng), options_.identical ? 1 : ContentSeed(0, i + 1));
        if (!status.ok() || *status < 200 || *status >= 300) failed = true;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  if (failed) return UnavailableError("preparing objects failed (check endpoint, key, tenant)");
  return OkStatus();
}

void Bench::Cleanup() {
  client::HttpClient http(endpoint_);
  // Bounded: each page (the first one under the prefix, since the previous page is gone)
  // removes up to 1000 keys; stop at an empty or failed page or one where nothing went.
  for (int page = 0; page < 100000; ++page) {
    auto response = http.Send(ListRequest(1000, ""));
    if (!response.ok() || response->status != 200) break;
    std::vector<client::HttpRequest> removals;
    if (s3()) {
      for (const std::string& key : XmlElements(response->body, "Key")) {
        removals.push_back(KeyRequest("DELETE", key));
      }
    } else {
      auto body = nlohmann::json::parse(response->body, nullptr, false);
      if (body.is_discarded() || !body.contains("objects")) break;
      for (const auto& object : body["objects"]) {
        client::HttpRequest remove;
        remove.method = "DELETE";
        Authorize(remove, "/v1/objects/" + object["id"].get<std::string>(), {});
        removals.push_back(std::move(remove));
      }
    }
    if (removals.empty()) break;
    size_t removed = 0;
    for (const auto& remove : removals) {
      auto result = http.Send(remove);
      if (result.ok() && result->status >= 200 && result->status < 300) ++removed;
    }
    if (removed == 0) {
      fprintf(stderr, "cairn bench: cleanup could not delete anything; stopping\n");
      break;
    }
  }
}

double Percentile(std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t index = static_cast<size_t>(std::ceil(p / 100.0 * sorted.size())) - 1;
  return sorted[std::min(index, sorted.size() - 1)];
}

int Bench::Run() {
  Status prepared = Prepare();
  if (!prepared.ok()) {
    fprintf(stderr, "cairn bench: %s\n", prepared.message().c_str());
    return 1;
  }
  std::vector<WorkerResult> results(options_.concurrency);
  const auto start = Clock::now();
  deadline_ = start + std::chrono::milliseconds(static_cast<int64_t>(options_.duration_s * 1000));
  std::vector<std::thread> threads;
  for (int t = 0; t < options_.concurrency; ++t) {
    threads.emplace_back([this, t, &results] { Worker(t, &results[t]); });
  }
  std::atomic<bool> done{false};
  std::thread progress([&] {
    uint64_t last = 0;
    for (int tick = 1; !done; ++tick) {
      for (int i = 0; i < 10 && !done; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (done || options_.quiet) continue;
      uint64_t now = completed_.load();
      fprintf(stderr, "\r%4ds  %llu ops  %.0f ops/s   ", tick, static_cast<unsigned long long>(now),
              static_cast<double>(now - last));
      last = now;
    }
  });
  for (auto& thread : threads) thread.join();
  done = true;
  progress.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  if (!options_.quiet) fprintf(stderr, "\n");

  nlohmann::json report = {
      {"endpoint", options_.endpoint},  {"api", options_.api},
      {"bucket", s3() ? bucket() : ""}, {"concurrency", options_.concurrency},
      {"size", options_.size},          {"identical", options_.identical},
      {"elapsed_seconds", elapsed},     {"operations", nlohmann::json::object()}};
  uint64_t total_errors = 0;
  if (!options_.json) {
    printf("%-7s %10s %11s %10s %9s %9s %9s %9s %8s\n", "op", "ops", "ops/s", "MB/s", "p50 ms",
           "p90 ms", "p99 ms", "max ms", "errors");
  }
  for (int i = 0; i < kOpCount; ++i) {
    OpStats merged;
    for (auto& result : results) {
      OpStats& stats = result.stats[i];
      merged.ops += stats.ops;
      merged.errors += stats.errors;
      merged.not_found += stats.not_found;
      merged.bytes += stats.bytes;
      merged.latencies_ms.insert(merged.latencies_ms.end(), stats.latencies_ms.begin(),
                                 stats.latencies_ms.end());
    }
    if (merged.ops == 0) continue;
    total_errors += merged.errors;
    std::sort(merged.latencies_ms.begin(), merged.latencies_ms.end());
    const double ops_per_second = merged.ops / elapsed;
    const double mb_per_second = merged.bytes / elapsed / 1e6;
    const double p50 = Percentile(merged.latencies_ms, 50),
                 p90 = Percentile(merged.latencies_ms, 90),
                 p99 = Percentile(merged.latencies_ms, 99);
    const double max = merged.latencies_ms.empty() ? 0 : merged.latencies_ms.back();
    report["operations"][kOpNames[i]] = {{"ops", merged.ops},
                                         {"ops_per_second", ops_per_second},
                                         {"mb_per_second", mb_per_second},
                                         {"p50_ms", p50},
                                         {"p90_ms", p90},
                                         {"p99_ms", p99},
                                         {"max_ms", max},
                                         {"errors", merged.errors}};
    if (!options_.json) {
      printf("%-7s %10llu %11.1f %10.1f %9.3f %9.3f %9.3f %9.3f %8llu\n", kOpNames[i],
             static_cast<unsigned long long>(merged.ops), ops_per_second, mb_per_second, p50, p90,
             p99, max, static_cast<unsigned long long>(merged.errors));
    }
  }
  if (options_.json) printf("%s\n", report.dump(2).c_str());
  if (options_.cleanup) Cleanup();
  return total_errors == 0 ? 0 : 3;
}

}  // namespace

int RunBench(const BenchOptions& options) {
  if (options.api != "native" && options.api != "s3") {
    fprintf(stderr, "cairn bench: --api must be native or s3, not '%s'\n", options.api.c_str());
    return 2;
  }
  auto endpoint = client::ParseEndpoint(options.endpoint);
  auto sizes = ParseSizeRange(options.size);
  if (!endpoint.ok() || !sizes.ok()) {
    fprintf(stderr, "cairn bench: %s\n",
            (!endpoint.ok() ? endpoint.status() : sizes.status()).message().c_str());
    return 2;
  }
  if (options.api == "native" && options.key.empty()) {
    fprintf(stderr, "cairn bench: --key (or CAIRN_BENCH_KEY) is required\n");
    return 2;
  }
  if (options.api == "s3" && (options.access_key.empty() || options.secret_key.empty())) {
    fprintf(stderr,
            "cairn bench: --access-key and --secret-key (or CAIRN_BENCH_ACCESS_KEY and "
            "CAIRN_BENCH_SECRET_KEY) are required with --api s3\n");
    return 2;
  }
  if (options.concurrency < 1 || options.objects < 1 ||
      (options.count == 0 && options.duration_s <= 0)) {
    fprintf(stderr, "cairn bench: concurrency, objects and duration or count must be positive\n");
    return 2;
  }
  std::vector<std::pair<Op, int>> mix;
  if (options.op == "mixed") {
    std::string text = options.mix;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t comma = text.find(',', pos);
      std::string part = text.substr(pos, comma - pos);
      pos = comma == std::string::npos ? text.size() : comma + 1;
      size_t eq = part.find('=');
      auto op = ParseOp(part.substr(0, eq));
      int weight = eq == std::string::npos ? 1 : atoi(part.c_str() + eq + 1);
      if (!op.ok() || weight <= 0) {
        fprintf(stderr, "cairn bench: bad --mix entry '%s'\n", part.c_str());
        return 2;
      }
      mix.emplace_back(*op, weight);
    }
    if (mix.empty()) {
      fprintf(stderr, "cairn bench: --mix is empty\n");
      return 2;
    }
  } else {
    auto op = ParseOp(options.op);
    if (!op.ok()) {
      fprintf(stderr, "cairn bench: %s\n", op.status().message().c_str());
      return 2;
    }
    mix.emplace_back(*op, 1);
  }
  Bench bench(options, *endpoint, *sizes, std::move(mix));
  return bench.Run();
}

}  // namespace cairn::cli
