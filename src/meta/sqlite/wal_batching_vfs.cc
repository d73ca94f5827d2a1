#include "meta/sqlite/wal_batching_vfs.h"

#include <sqlite3.h>

#include <cstddef>
#include <cstring>
#include <mutex>

namespace cairn::meta::sqlite_internal {
namespace {

// A WAL frame header: page number, database size after the commit (0: not a commit
// frame), two salts, two checksums; all big-endian 32-bit (SQLite's file format, wal.c).
constexpr int kFrameHeaderBytes = 24;

sqlite3_vfs* Real(sqlite3_vfs* vfs) { return static_cast<sqlite3_vfs*>(vfs->pAppData); }

// Our file: the default VFS's file lives right after it (szOsFile covers both).
struct BatchingFile {
  sqlite3_file base;  // first: SQLite sees this
  sqlite3_file* real;
  bool wal;
  bool commit_next;       // a commit frame's header is in; its page ends the commit
  unsigned char* buffer;  // appends at [start, start + length), not yet written
  sqlite3_int64 start;
  int length;
};

constexpr size_t kRealOffset = (sizeof(BatchingFile) + 15) & ~static_cast<size_t>(15);

BatchingFile* Of(sqlite3_file* file) { return reinterpret_cast<BatchingFile*>(file); }

int Flush(BatchingFile* f) {
  if (f->length == 0) return SQLITE_OK;
  const int length = f->length;
  f->length = 0;  // a failed write is the transaction's failure: never written later
  return f->real->pMethods->xWrite(f->real, f->buffer, length, f->start);
}

// Before anything but an append reaches a WAL file, what is buffered is written.
int FlushForOther(sqlite3_file* file) {
  BatchingFile* f = Of(file);
  if (!f->wal) return SQLITE_OK;
  f->commit_next = false;
  return Flush(f);
}

int Close(sqlite3_file* file) {
  BatchingFile* f = Of(file);
  int rc = FlushForOther(file);
  int closed = f->real->pMethods->xClose(f->real);
  sqlite3_free(f->buffer);
  f->buffer = nullptr;
  return rc != SQLITE_OK ? rc : closed;
}

int Read(sqlite3_file* file, void* out, int amount, sqlite3_int64 offset) {
  if (int rc = FlushForOther(file); rc != SQLITE_OK) return rc;
  BatchingFile* f = Of(file);
  return f->real->pMethods->xRead(f->real, out, amount, offset);
}

bool IsCommitFrameHeader(const void* data, int amount) {
  if (amount != kFrameHeaderBytes) return false;
  unsigned char size[4];
  std::memcpy(size, static_cast<const unsigned char*>(data) + 4, 4);
  return (size[0] | size[1] | size[2] | size[3]) != 0;
}

int Write(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  BatchingFile* f = Of(file);
  if (!f->wal) return f->real->pMethods->xWrite(f->real, data, amount, offset);
  if (f->length > 0 && offset != f->start + f->length) {
    // Not an append to what is buffered (SQLite rewriting a frame of this transaction):
    // the writes reach the file in the order SQLite made them.
    if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  }
  const bool commit_header = IsCommitFrameHeader(data, amount);
  if (commit_header && f->length == 0) {
    // A commit frame's header with nothing before it is a rewrite of its checksums (the
    // appended header follows the previous frame): straight to the file.
    f->commit_next = true;
    return f->real->pMethods->xWrite(f->real, data, amount, offset);
  }
  if (f->buffer == nullptr) {
    f->buffer = static_cast<unsigned char*>(sqlite3_malloc(kWalBatchBytes));
  }
  if (f->buffer == nullptr || amount > kWalBatchBytes) {
    if (int rc = Flush(f); rc != SQLITE_OK) return rc;
    f->commit_next = commit_header;  // a commit's page written here ends it
    return f->real->pMethods->xWrite(f->real, data, amount, offset);
  }
  if (f->length + amount > kWalBatchBytes) {
    if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  }
  if (f->length == 0) f->start = offset;
  std::memcpy(f->buffer + f->length, data, static_cast<size_t>(amount));
  f->length += amount;
  if (commit_header) {
    f->commit_next = true;
    return SQLITE_OK;
  }
  if (f->commit_next) {
    // The commit's last page: on disk before SQLite publishes the commit.
    f->commit_next = false;
    return Flush(f);
  }
  return SQLITE_OK;
}

int Truncate(sqlite3_file* file, sqlite3_int64 size) {
  if (int rc = FlushForOther(file); rc != SQLITE_OK) return rc;
  return Of(file)->real->pMethods->xTruncate(Of(file)->real, size);
}

int Sync(sqlite3_file* file, int flags) {
  if (int rc = FlushForOther(file); rc != SQLITE_OK) return rc;
  return Of(file)->real->pMethods->xSync(Of(file)->real, flags);
}

int FileSize(sqlite3_file* file, sqlite3_int64* size) {
  if (int rc = FlushForOther(file); rc != SQLITE_OK) return rc;
  return Of(file)->real->pMethods->xFileSize(Of(file)->real, size);
}

int Lock(sqlite3_file* file, int level) {
  if (int rc = FlushForOther(file); rc != SQLITE_OK) return rc;
  return Of(file)->real->pMethods->xLock(Of(file)->real, level);
}

int Unlock(sqlite3_file* file, int level) {
  if (int rc = FlushForOther(file); rc != SQLITE_OK) return rc;
  return Of(file)->real->pMethods->xUnlock(Of(file)->real, level);
}

int CheckReservedLock(sqlite3_file* file, int* out) {
  if (int rc = FlushForOther(file); rc != SQLITE_OK) return rc;
  return Of(file)->real->pMethods->xCheckReservedLock(Of(file)->real, out);
}

int FileControl(sqlite3_file* file, int op, void* arg) {
  if (int rc = FlushForOther(file); rc != SQLITE_OK) return rc;
  return Of(file)->real->pMethods->xFileControl(Of(file)->real, op, arg);
}

int SectorSize(sqlite3_file* file) { return Of(file)->real->pMethods->xSectorSize(Of(file)->real); }

int DeviceCharacteristics(sqlite3_file* file) {
  return Of(file)->real->pMethods->xDeviceCharacteristics(Of(file)->real);
}

int ShmMap(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
  if (int rc = FlushForOther(file); rc != SQLITE_OK) return rc;
  return Of(file)->real->pMethods->xShmMap(Of(file)->real, region, size, extend, out);
}

int ShmLock(sqlite3_file* file, int offset, int n, int flags) {
  if (int rc = FlushForOther(file); rc != SQLITE_OK) return rc;
  return Of(file)->real->pMethods->xShmLock(Of(file)->real, offset, n, flags);
}

void ShmBarrier(sqlite3_file* file) {
  // Called on the database file, never on a WAL file; commits flush at their last frame.
  Of(file)->real->pMethods->xShmBarrier(Of(file)->real);
}

int ShmUnmap(sqlite3_file* file, int delete_flag) {
  if (int rc = FlushForOther(file); rc != SQLITE_OK) return rc;
  return Of(file)->real->pMethods->xShmUnmap(Of(file)->real, delete_flag);
}

int Fetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** out) {
  if (int rc = FlushForOther(file); rc != SQLITE_OK) return rc;
  return Of(file)->real->pMethods->xFetch(Of(file)->real, offset, amount, out);
}

int Unfetch(sqlite3_file* file, sqlite3_int64 offset, void* page) {
  if (int rc = FlushForOther(file); rc != SQLITE_OK) return rc;
  return Of(file)->real->pMethods->xUnfetch(Of(file)->real, offset, page);
}

// Version 3 methods; a real file with fewer (an unusual default VFS) gets its own back.
const sqlite3_io_methods kMethods = {
    3,
    Close,
    Read,
    Write,
    Truncate,
    Sync,
    FileSize,
    Lock,
    Unlock,
    CheckReservedLock,
    FileControl,
    SectorSize,
    DeviceCharacteristics,
    ShmMap,
    ShmLock,
    ShmBarrier,
    ShmUnmap,
    Fetch,
    Unfetch,
};

int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  BatchingFile* f = Of(file);
  f->base.pMethods = nullptr;
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<unsigned char*>(file) + kRealOffset);
  f->wal = (flags & SQLITE_OPEN_WAL) != 0;
  f->commit_next = false;
  f->buffer = nullptr;
  f->start = 0;
  f->length = 0;
  int rc = Real(vfs)->xOpen(Real(vfs), name, f->real, flags, out_flags);
  if (f->real->pMethods == nullptr) return rc;  // nothing to close
  if (f->real->pMethods->iVersion < 3) {        // no shared-memory methods to forward to
    f->real->pMethods->xClose(f->real);
    return SQLITE_CANTOPEN;
  }
  // Only the WAL needs our methods, but every file gets them: forwarding is cheap, and
  // SQLite keeps one method table per file for its life.
  f->base.pMethods = &kMethods;
  return rc;
}

int Delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  return Real(vfs)->xDelete(Real(vfs), name, sync_dir);
}
int Access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return Real(vfs)->xAccess(Real(vfs), name, flags, out);
}
int FullPathname(sqlite3_vfs* vfs, const char* name, int size, char* out) {
  return Real(vfs)->xFullPathname(Real(vfs), name, size, out);
}
void* DlOpen(sqlite3_vfs* vfs, const char* name) { return Real(vfs)->xDlOpen(Real(vfs), name); }
void DlError(sqlite3_vfs* vfs, int size, char* out) { Real(vfs)->xDlError(Real(vfs), size, out); }
void (*DlSym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  return Real(vfs)->xDlSym(Real(vfs), handle, symbol);
}
void DlClose(sqlite3_vfs* vfs, void* handle) { Real(vfs)->xDlClose(Real(vfs), handle); }
int Randomness(sqlite3_vfs* vfs, int size, char* out) {
  return Real(vfs)->xRandomness(Real(vfs), size, out);
}
int Sleep(sqlite3_vfs* vfs, int microseconds) { return Real(vfs)->xSleep(Real(vfs), microseconds); }
int CurrentTime(sqlite3_vfs* vfs, double* out) { return Real(vfs)->xCurrentTime(Real(vfs), out); }
int GetLastError(sqlite3_vfs* vfs, int size, char* out) {
  return Real(vfs)->xGetLastError(Real(vfs), size, out);
}
int CurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  return Real(vfs)->xCurrentTimeInt64(Real(vfs), out);
}

sqlite3_vfs batching_vfs;

}  // namespace

const char* WalBatchingVfs() {
  static std::once_flag once;
  static bool registered = false;
  std::call_once(once, [] {
    sqlite3_vfs* real = sqlite3_vfs_find(nullptr);
    // Version 2 is what our forwarding covers (xCurrentTimeInt64); the system-call hooks
    // of version 3 are for SQLite's own tests.
    if (real == nullptr || real->iVersion < 2) return;
    batching_vfs.iVersion = 2;
    batching_vfs.szOsFile = static_cast<int>(kRealOffset) + real->szOsFile;
    batching_vfs.mxPathname = real->mxPathname;
    batching_vfs.zName = kWalBatchingVfsName;
    batching_vfs.pAppData = real;
    batching_vfs.xOpen = Open;
    batching_vfs.xDelete = Delete;
    batching_vfs.xAccess = Access;
    batching_vfs.xFullPathname = FullPathname;
    batching_vfs.xDlOpen = DlOpen;
    batching_vfs.xDlError = DlError;
    batching_vfs.xDlSym = DlSym;
    batching_vfs.xDlClose = DlClose;
    batching_vfs.xRandomness = Randomness;
    batching_vfs.xSleep = Sleep;
    batching_vfs.xCurrentTime = CurrentTime;
    batching_vfs.xGetLastError = GetLastError;
    batching_vfs.xCurrentTimeInt64 = CurrentTimeInt64;
    registered = sqlite3_vfs_register(&batching_vfs, /*makeDflt=*/0) == SQLITE_OK;
  });
  return registered ? kWalBatchingVfsName : nullptr;
}

}  // namespace cairn::meta::sqlite_internal
