#include "meta/file_tree.h"

#include <string>

namespace cairn::meta {

std::string_view FileTypeName(FileType type) {
  switch (type) {
    case FileType::kRegular:
      return "file";
    case FileType::kDirectory:
      return "directory";
    case FileType::kSymlink:
      return "symlink";
    case FileType::kFifo:
      return "fifo";
    case FileType::kSocket:
      return "socket";
    case FileType::kCharDevice:
      return "char-device";
    case FileType::kBlockDevice:
      return "block-device";
  }
  return "unknown";
}

Result<FileType> FileTypeFromNumber(int64_t number) {
  if (number < static_cast<int64_t>(FileType::kRegular) ||
      number > static_cast<int64_t>(FileType::kBlockDevice)) {
    return InvalidArgumentError("file type number " + std::to_string(number) +
                                " names no file type");
  }
  return static_cast<FileType>(number);
}

Result<std::optional<FileTreeTransaction::NamedInode>> FileTreeTransaction::GetNamedInode(
    uint64_t parent, std::string_view name) {
  ASSIGN_OR_RETURN(std::optional<DentryRecord> entry, GetDentry(parent, name));
  if (!entry) return std::optional<NamedInode>();
  ASSIGN_OR_RETURN(std::optional<InodeRecord> inode, GetInode(entry->ino));
  return std::optional<NamedInode>(NamedInode{std::move(*entry), std::move(inode)});
}

Result<uint64_t> FileTreeTransaction::AppendChanges(const std::vector<ChangeRecord>& changes) {
  uint64_t last = 0;
  for (const ChangeRecord& change : changes) {
    ASSIGN_OR_RETURN(last, AppendChange(change));
  }
  return last;
}

ChunkOwner FileChunkOwner(const std::string& volume_uuid, uint64_t ino) {
  return ChunkOwner{std::string(kFileOwnerKind), volume_uuid + ":" + std::to_string(ino)};
}

}  // namespace cairn::meta
