// The PostgreSQL MetaStore engine: several cairn nodes share one database.
//
// Each method is one transaction on a connection borrowed from a small bounded pool.
// Writes run at READ COMMITTED with explicit row locks (the argument is at the top of the
// .cc); reads run in a REPEATABLE READ READ ONLY snapshot. A connection that breaks (the
// server restarted, a backend was terminated) is dropped together with the idle ones, and
// the next transaction connects afresh, so the store recovers by itself once the server is
// back. Schema migrations run at open under an advisory lock, so nodes may start together.
//
// CollectGarbageChunks calls remove_file while holding row locks on the candidate chunks:
// the callback must not call back into this store on the same chunk (it would wait for
// itself until the lock timeout).
//
// It is also a FileTree (meta/file_tree.h; postgres_file_tree.cc): tables fs_volume,
// fs_inodes, fs_dentries and fs_xattrs (schema version 10), block rows in owner_chunks. Every
// FileTree Write locks the fs_volume row first, so they run one at a time across nodes; a
// body that calls back into the store fails with kInternal.
//
// libpq stays inside this directory; callers see only MetaStore.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "meta/meta_store.h"

namespace cairn::meta {

struct PostgresMetaStoreOptions {
  // Connections opened at most; transactions beyond this many at once wait for one.
  int max_connections = 8;
  // How long a transaction waits for a free connection before kUnavailable.
  int acquire_timeout_ms = 10000;
  // Used unless the URL sets connect_timeout itself.
  int connect_timeout_s = 5;
  // How long a statement waits for a row lock held by another transaction (lock_timeout)
  // before kUnavailable; bounds waits behind a slow GC callback on another node.
  int lock_timeout_ms = 10000;
  // A call waiting this long for the server asks whether a fresh connection gets an
  // answer; if not, it fails with kUnavailable instead of waiting for a server that hangs
  // without closing connections. Slow statements on a live server are not cut short.
  int stall_check_ms = 5000;
  // Attempts per transaction when PostgreSQL aborts it for a deadlock or a serialization
  // failure, or when a pooled connection turns out to be broken before commit.
  int max_attempts = 4;
};

// Opens the database named by `url` ("postgres://user:password@host:port/db?options", any
// URI libpq accepts) and applies pending migrations. kInvalidArgument for a malformed URL,
// kUnavailable when the server cannot be reached (the message names host:port/db, never the
// password), kFailedPrecondition for a newer schema or a database not encoded in UTF8.
Result<std::unique_ptr<MetaStore>> OpenPostgresMetaStore(
    const std::string& url, const PostgresMetaStoreOptions& options = {});

// The schema version this binary migrates to (MAX(version) in schema_version after open).
int PostgresSchemaVersion();

// `url` with any password replaced by "***", for logs and error messages.
std::string RedactPostgresUrl(const std::string& url);

}  // namespace cairn::meta
