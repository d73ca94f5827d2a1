// ChunkService: chunks by digest, for a client that shares this server's metadata store and
// keeps its own records in it (a filesystem mount with `--storage http://`), but has no
// access to the chunk directories.
//
// The order is the upload's (docs/architecture.md): the client takes its reference in the
// shared metadata store first (the mount's staging owner), then asks whether the server
// holds the chunk and sends the bytes only if not. So the server accepts bytes only for a
// chunk that some owner already names: nobody can fill the store with chunks that no file
// or object holds, and GC can never remove a chunk between its store and its owner's
// commit. A chunk that no owner names is "not found" to every call.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "core/types.h"
#include "meta/records.h"
#include "objects/object_service.h"

namespace cairn::objects {

class ChunkService {
 public:
  explicit ChunkService(ObjectService* objects) : objects_(objects) {}

  // Whether the store holds a copy of the chunk that hashes to its name. When it does, the
  // copy's data and its name are durable before this returns (a mount's deferred write may
  // have renamed it in unsynced), so the client may commit a reference to it at once. A
  // copy that does not hash to its name is reported damaged (quarantined) and answered
  // false, so the client sends the bytes, which heal it.
  Result<bool> Have(StorageClass storage_class, const Digest& digest);

  // Stores `bytes` as the chunk `digest`, durably: they must hash to it and have the
  // length (and block checksums, when known) of the chunk's row.
  Status Put(StorageClass storage_class, const Digest& digest, std::string_view bytes);

  // A reader over the whole chunk, verified against its row's block checksums as any
  // object read is.
  Result<std::unique_ptr<ObjectReader>> Open(StorageClass storage_class, const Digest& digest);

 private:
  // The chunk's row, which an owner must hold (a count above zero).
  Result<meta::ChunkRecord> Referenced(StorageClass storage_class, const Digest& digest);

  ObjectService* objects_;
};

}  // namespace cairn::objects
