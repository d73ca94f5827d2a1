// RemoteChunks: a mount's chunks through a Cairn server (`cairn mount --storage
// http://HOST:PORT`), for hosts that share the volume's metadata store but not the chunk
// directories. The server's chunk door (objects/chunk_service.h) takes only chunks that an
// owner already references, so the mount stages its reference in the metadata store first,
// asks whether the server holds the chunk (HEAD) and sends the bytes (PUT) only if not.
// Reads fetch the 256 KiB checksum blocks they touch (GET with a Range) and verify each
// against the block checksums the file's block row records: a wrong byte from the server
// or the network is an EIO, never data. With a chunk cache (`--cache-dir`), a chunk read
// is fetched whole once into a local copy (hashed to its name on the way) and later reads
// come from that copy, each block still checked against the row's checksums; a copy that
// fails is dropped and the bytes come from the server.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/types.h"
#include "meta/records.h"

namespace cairn::client {
class HttpClient;
}
namespace cairn::chunks {
class ChunkCache;
}

namespace cairn::mount {

struct RemoteSpace {
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t available_bytes = 0;
  std::string store_id;  // the server's store identity (empty: none yet)
};

class RemoteChunks {
 public:
  // `url` is http://HOST:PORT; `api_key` a key for every tenant with write scope;
  // `store_id` the identity of the client's metadata store. Checks all three with one
  // request, so a wrong address, key or server (one whose metadata is elsewhere: it would
  // refuse every chunk) fails the mount, not its first write.
  static Result<std::unique_ptr<RemoteChunks>> Connect(std::string_view url, std::string api_key,
                                                       const std::string& store_id,
                                                       int timeout_seconds);
  ~RemoteChunks();
  RemoteChunks(const RemoteChunks&) = delete;
  RemoteChunks& operator=(const RemoteChunks&) = delete;

  // Whether the server holds the chunk (verified and durable there).
  Result<bool> Have(StorageClass storage_class, const Digest& digest);
  // Sends the chunk's bytes; durable on the server when this returns.
  Status Put(StorageClass storage_class, const Digest& digest, std::string_view bytes);
  // `length` bytes of `chunk` from `offset` into `out`, whole checksum blocks fetched and
  // verified (kDataLoss when one does not match).
  Status Read(StorageClass storage_class, const meta::ChunkRef& chunk, uint64_t offset,
              size_t length, char* out);
  // Reads go through `cache` from now on (set before the first read; it outlives this).
  void set_cache(chunks::ChunkCache* cache) { cache_ = cache; }
  chunks::ChunkCache* cache() const { return cache_; }
  // The server's space for the class (statfs).
  Result<RemoteSpace> Space(StorageClass storage_class);

  const std::string& url() const { return url_; }
  uint64_t bytes_sent() const;
  uint64_t bytes_received() const;

 private:
  RemoteChunks(std::string url, std::string api_key, int timeout_seconds);
  struct Response {
    int status = 0;
    std::string body;
  };
  // One request on a pooled connection (one connection per concurrent caller).
  // With `sink`, the body goes to it in pieces (Response::body stays empty).
  Result<Response> Send(const std::string& method, const std::string& target, std::string_view body,
                        const std::string& range,
                        const std::function<void(std::string_view)>& sink = nullptr);
  static std::string Target(StorageClass storage_class, const Digest& digest);
  // Fetches [offset, offset + length) of the chunk in whole checksum blocks, each verified
  // when `checked`.
  Status Fetch(const std::string& target, const meta::ChunkRef& chunk, uint64_t offset,
               size_t length, char* out, bool checked);
  // The read served from the cache's copy of the chunk, made from the server's bytes first
  // when there is none. false: not served (the copy failed a check and was dropped: then
  // `*dropped`; or the cache disk failed); the caller asks the server. An error of the
  // server is returned.
  Result<bool> ReadCached(const std::string& target, const meta::ChunkRef& chunk, uint64_t offset,
                          size_t length, char* out, bool* dropped);

  std::string url_;
  std::string api_key_;
  int timeout_seconds_;
  chunks::ChunkCache* cache_ = nullptr;
  std::atomic<uint64_t> cache_failures_{0};  // fills the cache disk refused
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<client::HttpClient>> idle_;  // GUARDED_BY(mutex_)
  uint64_t bytes_sent_ = 0;                                // GUARDED_BY(mutex_)
  uint64_t bytes_received_ = 0;                            // GUARDED_BY(mutex_)
};

}  // namespace cairn::mount
