// The SQLite MetaStore engine: one database file in WAL mode with synchronous=FULL.
//
// Writes go through a single connection behind a mutex, each method one BEGIN IMMEDIATE
// transaction; reads use query_only connections, one per reading thread (up to 32, then a
// small shared pool), so in WAL mode they run concurrently with the writer and with each
// other and never wait for another thread. The schema is migrated forward at
// open (PRAGMA user_version counts the applied steps).
//
// CollectGarbageChunks calls remove_file while holding the write transaction: the
// callback must not call back into this store (it would wait for itself; such a call fails
// with kInternal). The same holds for FileTree transaction bodies.
//
// It is also a FileTree (meta/file_tree.h; sqlite_file_tree.cc): tables fs_volume,
// fs_inodes, fs_dentries and fs_xattrs, block rows in owner_chunks. A FileTree Write is one
// write of the queue above (so it shares its busy handling with other processes on the
// host); a Read is one read transaction.
//
// sqlite3.h stays inside this directory; callers see only MetaStore.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "meta/meta_store.h"

namespace cairn::meta {

struct SqliteMetaStoreOptions {
  // How long a statement waits for a lock held by another process before kUnavailable.
  int busy_timeout_ms = 5000;
  // Shared read-only connections for threads beyond the per-thread readers' bound; reads
  // beyond this many at once wait for a free one.
  int reader_connections = 4;
  // Bytes kept free beside the database (`<path>-reserve`) for deletes and GC on a full
  // disk (see platform/space_reserve.h); 0 = 1% of the file system, 1 to 64 MiB. -1 = none.
  int64_t reserve_bytes = 0;
};

// Opens (creating if absent) the database file at `path` and applies pending migrations.
// The parent directory must exist. kUnavailable if the file cannot be opened or is locked
// beyond the timeout; kFailedPrecondition if it was written by a newer schema.
Result<std::unique_ptr<MetaStore>> OpenSqliteMetaStore(const std::string& path,
                                                       const SqliteMetaStoreOptions& options = {});

// The schema version this binary migrates to (PRAGMA user_version after a successful open).
int SqliteSchemaVersion();

}  // namespace cairn::meta
