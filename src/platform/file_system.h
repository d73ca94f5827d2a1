// The OS seam for files: everything Cairn does to a disk goes through FileSystem, so tests
// can substitute a fault-injecting implementation (ENOSPC, EIO, failed fsync).
//
// Paths are plain strings; errors name the path and the errno text. Thread-safety: a
// FileSystem may be used from any thread; a single file object from one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/types.h"

namespace cairn::platform {

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual Status Append(std::string_view bytes) = 0;
  // A hint for files written once in large pieces that nobody reads soon (chunks): appends
  // whose address, length and offset are page-aligned may then bypass the page cache
  // (direct I/O), saving the copy into it. Durability still takes Sync. Files systems that
  // refuse direct I/O get ordinary writes.
  virtual void PreferDirectIo() {}
  // Makes everything appended so far durable (fdatasync).
  virtual Status Sync() = 0;
  virtual Status Close() = 0;
  virtual const std::string& path() const = 0;
};

class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  // Reads up to `length` bytes at `offset` into `buffer`; returns the count (0 at EOF).
  virtual Result<size_t> ReadAt(uint64_t offset, size_t length, char* buffer) = 0;
  virtual Result<uint64_t> Size() = 0;
  // The OS descriptor, for zero-copy transfers (sendfile); -1 if none.
  virtual int NativeHandle() const { return -1; }
};

struct DirEntry {
  std::string name;
  bool is_directory = false;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  // Creates a new file (fails with kAlreadyExists if it exists), mode 0600. The file is
  // held under an exclusive advisory lock until the WritableFile is destroyed, so that
  // RemoveFileIfUnlocked (used by GC on temp files) never removes a file being written,
  // even from another process.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) = 0;
  virtual Result<std::unique_ptr<ReadableFile>> OpenReadable(const std::string& path) = 0;
  // Atomic replace within one file system.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // Like Rename, but never replaces: kAlreadyExists if `to` exists (atomically, so of two
  // processes renaming different files to the same name exactly one wins).
  virtual Status RenameNoReplace(const std::string& from, const std::string& to) {
    return InternalError("cannot rename '" + from + "' without replacing on this file system");
  }
  // fsyncs a directory so that entries created or renamed in it are durable.
  virtual Status SyncDirectory(const std::string& path) = 0;
  // mkdir -p; every directory it creates is made durable in its parent.
  virtual Status CreateDirectories(const std::string& path) = 0;
  // One mkdir whose entry is NOT made durable (the caller syncs the parent later); true if
  // it created the directory, false if it already existed. Implementations that cannot
  // defer the sync make it durable at once.
  virtual Result<bool> CreateDirectoryUnsynced(const std::string& path) {
    RETURN_IF_ERROR(CreateDirectories(path));
    return true;
  }
  // Makes the data of an existing file durable (fdatasync through a new descriptor).
  virtual Status SyncFile(const std::string& path) {
    return InternalError("cannot sync '" + path + "' by name on this file system");
  }
  // Makes everything written to the file system holding `path` durable (syncfs).
  virtual Status SyncFileSystem(const std::string& path) {
    return InternalError("cannot sync the file system of '" + path + "' on this file system");
  }
  // kNotFound if absent.
  virtual Status RemoveFile(const std::string& path) = 0;
  // Removes `path` only if no writer holds its lock: kFailedPrecondition if one does.
  virtual Status RemoveFileIfUnlocked(const std::string& path) = 0;
  // Whether a writer holds `path`'s lock now (false where there are no locks).
  virtual Result<bool> IsLocked(const std::string& path) { return false; }
  virtual Result<bool> Exists(const std::string& path) = 0;
  virtual Result<std::vector<DirEntry>> ListDirectory(const std::string& path) = 0;
  // The later of the last content change (mtime) and the last inode change (ctime): a
  // file renamed into place counts as changed at the rename, so GC's age checks never
  // take a chunk just installed from an old temp file for an old orphan.
  virtual Result<TimestampMs> ModifiedTime(const std::string& path) = 0;
  virtual Result<uint64_t> FileSize(const std::string& path) = 0;
  // Checks that a file can be created, written, synced and removed in `directory`.
  virtual Status CheckWritable(const std::string& directory) = 0;
  // Restricts a file to its owner (mode 0600), for files that hold credentials (metadata
  // snapshots). Call it before writing anything secret into the file.
  virtual Status MakePrivate(const std::string& path) {
    return InternalError("cannot restrict permissions of '" + path + "' on this file system");
  }
};

// The real POSIX file system. Never null; lives for the whole process.
FileSystem* DefaultFileSystem();

// Writes a small private file (a key, a marker) so that a crash leaves either no file or
// the whole one, never a torn or empty one: a temp file beside `path` made 0600 before
// anything is written, fsync, rename into place, fsync of the directory. With `replace`
// false the rename never replaces: kAlreadyExists if `path` exists (another process won
// the race) and nothing changes. The temp file is removed on failure.
Status WriteFileAtomically(FileSystem* file_system, const std::string& path,
                           std::string_view contents, bool replace);

// The directory part of `path` ("." for a bare name, "/" for a file in the root).
std::string ParentDirectory(const std::string& path);

}  // namespace cairn::platform
