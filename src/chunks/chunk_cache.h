#ifndef CAIRN_CHUNKS_CHUNK_CACHE_H_
#define CAIRN_CHUNKS_CHUNK_CACHE_H_

// A local read cache of chunks (`cairn mount --cache-dir/--cache-size`): copies of chunks
// read from the store, for a store whose chunk directories sit on a slower shared volume.
//
// A copy enters only after its bytes hashed to the chunk's digest while being copied, and
// it is still never trusted on its own: the reader checks every block it serves against
// the chunk's recorded block checksums, and a copy that fails (a torn file after a crash,
// a bit flip on the cache disk) is dropped and read again from the store. So the cache
// needs no fsync and no journal; a crash can only cost a copy. Least recently used copies
// go first once the cache holds more than its capacity.

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/status.h"
#include "core/types.h"
#include "platform/file_system.h"

namespace cairn::chunks {

struct ChunkCacheOptions {
  std::string directory;        // created (0700) if missing
  uint64_t capacity_bytes = 0;  // > 0
};

struct ChunkCacheStats {
  uint64_t hits = 0;       // reads served from a copy
  uint64_t misses = 0;     // reads that found no copy
  uint64_t fills = 0;      // copies added
  uint64_t evictions = 0;  // copies removed to stay within the capacity
  uint64_t dropped = 0;    // copies that failed verification (copy or later block check)
  uint64_t files = 0;      // copies held now
  uint64_t bytes = 0;      // their bytes
  uint64_t capacity_bytes = 0;
};

class ChunkCache {
 public:
  // Opens the directory and indexes the copies already there (oldest modified first),
  // removing unfinished ones; evicts down to the capacity.
  static Result<std::unique_ptr<ChunkCache>> Open(platform::FileSystem* file_system,
                                                  ChunkCacheOptions options);
  ~ChunkCache();

  // The copy of `digest` if the cache has one of `size` bytes (counts a hit or a miss);
  // nullptr otherwise. A copy of another size is dropped.
  std::unique_ptr<platform::ReadableFile> OpenCopy(const Digest& digest, uint64_t size);
  // Whether a copy of `digest` of `size` bytes is held (no hit or miss counted).
  bool Contains(const Digest& digest, uint64_t size);
  // Copies `size` bytes of `source` (the store's file) into the cache, hashing them, and
  // opens the copy. kDataLoss when the bytes do not hash to `digest` (nothing is kept; the
  // caller reads the store's file and its own checks report it); other errors when the
  // cache disk fails. A chunk larger than the capacity is not cached (kResourceExhausted).
  Result<std::unique_ptr<platform::ReadableFile>> Fill(const Digest& digest, uint64_t size,
                                                       platform::ReadableFile& source);
  // The same, with the bytes from `read` (n bytes at offset into out; each offset a
  // multiple of 1 MiB, each n 1 MiB but for the last piece): a chunk fetched from a server.
  using PieceReader = std::function<Status(uint64_t offset, size_t n, char* out)>;
  Result<std::unique_ptr<platform::ReadableFile>> FillFrom(const Digest& digest, uint64_t size,
                                                           const PieceReader& read);
  // Removes the copy of `digest`: it failed a block check (`why` is logged by the caller).
  void Drop(const Digest& digest);

  ChunkCacheStats stats() const;
  const std::string& directory() const { return options_.directory; }

 private:
  ChunkCache(platform::FileSystem* file_system, ChunkCacheOptions options)
      : file_system_(file_system), options_(std::move(options)) {}
  std::string PathOf(const std::string& hex) const;
  // Removes least recently used copies until the bytes held fit `capacity`. Needs mutex_.
  void EvictLocked(uint64_t capacity);
  void RemoveLocked(const std::string& hex);

  struct Entry {
    uint64_t size = 0;
    std::list<std::string>::iterator position;  // in lru_
  };

  platform::FileSystem* file_system_;
  ChunkCacheOptions options_;
  std::unique_ptr<platform::WritableFile> lock_;  // held open: this process owns the directory
  mutable std::mutex mutex_;
  std::list<std::string> lru_;                      // GUARDED_BY(mutex_), most recent first
  std::unordered_map<std::string, Entry> entries_;  // GUARDED_BY(mutex_), by digest hex
  ChunkCacheStats stats_;                           // GUARDED_BY(mutex_)
  uint64_t next_temp_ = 0;                          // GUARDED_BY(mutex_)
};

}  // namespace cairn::chunks

#endif  // CAIRN_CHUNKS_CHUNK_CACHE_H_
