#pragma once

// A SQLite VFS that wraps the platform's default one and gathers the write-ahead log's
// frame writes of a transaction into few large writes.
//
// SQLite writes every WAL frame as two write calls (its 24-byte header, then the page), so
// a commit that changes six pages costs twelve system calls before a byte is fsynced or
// another connection can see it. This VFS keeps consecutive appends to a WAL file in a
// buffer and writes them with one call:
//  - when a commit's last frame (its header carries the database size) has been
//    appended, before the write call for that frame returns. A commit is published to
//    other connections (the wal-index header) only after that, and a failed write fails
//    the commit as it would have without the buffer;
//  - before any other operation on the WAL file (read, sync, truncate, size, lock, file
//    control, close) and before a write that does not follow on;
//  - when the buffer is full (kWalBatchBytes).
// Files other than WAL files, and every operation other than WAL writes, go to the
// default VFS unchanged; the files on disk are exactly what SQLite would have written.

namespace cairn::meta::sqlite_internal {

inline constexpr const char* kWalBatchingVfsName = "cairn-wal-batching";
// SQLite's unix VFS writes at most 128 KiB - 1 bytes per call (it masks larger sizes), so
// a batch stays below that.
inline constexpr int kWalBatchBytes = 124 * 1024;

// Registers the VFS (once; not as the default). Returns its name for sqlite3_open_v2, or
// nullptr if it could not be registered (then the default VFS serves, unbatched).
const char* WalBatchingVfs();

}  // namespace cairn::meta::sqlite_internal
