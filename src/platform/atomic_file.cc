#include <unistd.h>

#include <string>

#include "platform/file_system.h"

namespace cairn::platform {

std::string ParentDirectory(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

Status WriteFileAtomically(FileSystem* file_system, const std::string& path,
                           std::string_view contents, bool replace) {
  // The pid keeps concurrent writers (nodes sharing a data directory) off each other's
  // temp file; one left by a crash of a process with our pid is ours to remove.
  const std::string temp = path + ".tmp." + std::to_string(getpid());
  file_system->RemoveFile(temp).IgnoreError();
  ASSIGN_OR_RETURN(auto file, file_system->NewWritableFile(temp));
  Status written = file_system->MakePrivate(temp);
  if (written.ok()) written = file->Append(contents);
  if (written.ok()) written = file->Sync();
  Status closed = file->Close();
  if (written.ok()) written = closed;
  if (written.ok()) {
    written = replace ? file_system->Rename(temp, path) : file_system->RenameNoReplace(temp, path);
  }
  if (!written.ok()) {
    file_system->RemoveFile(temp).IgnoreError();
    return written;
  }
  return file_system->SyncDirectory(ParentDirectory(path));
}

}  // namespace cairn::platform
