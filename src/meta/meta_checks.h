// Input checks shared by every MetaStore engine, so that each engine rejects exactly the
// same inputs with the same codes (the conformance suite compares engines result by result).
// Internal to src/meta.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/types.h"
#include "meta/file_tree.h"
#include "meta/meta_store.h"

namespace cairn::meta::internal {

inline constexpr uint32_t kMaxListLimit = 10000;

// CreateNamespace when another tenant's explicit namespace has the name.
inline Status NameTakenError(const std::string& name) {
  return PermissionDeniedError("namespace name '" + name + "' is taken by another tenant");
}

// User metadata and API key tenants are stored as JSON text, which must be UTF-8; they
// come from HTTP headers and tokens, so a bad byte is the caller's input error.
inline Status CheckUserMetadata(const ObjectRecord& object) {
  for (const auto& [name, value] : object.user_metadata) {
    if (!IsValidUtf8(name)) {
      return InvalidArgumentError("a user metadata name of object " + object.id.ToString() +
                                  " is not valid UTF-8 (hex " + HexEncode(name.substr(0, 32)) +
                                  ")");
    }
    if (!IsValidUtf8(value)) {
      return InvalidArgumentError("user metadata '" + name + "' of object " + object.id.ToString() +
                                  " is not valid UTF-8");
    }
  }
  return OkStatus();
}

inline Status CheckApiKey(const ApiKeyRecord& key) {
  for (const std::string& tenant : key.tenants) {
    if (!IsValidUtf8(tenant)) {
      return InvalidArgumentError("api key " + key.key_id + " names a tenant that is not UTF-8");
    }
  }
  return OkStatus();
}

inline Status CheckPutCommitted(const ObjectRecord& object, const std::vector<ChunkRef>& chunks) {
  if (object.inline_data.has_value() && !chunks.empty()) {
    return InvalidArgumentError("object " + object.id.ToString() +
                                " has both inline data and chunks");
  }
  return CheckUserMetadata(object);
}

// Text every engine can store (PostgreSQL text holds neither NUL nor invalid UTF-8).
inline bool IsStorableText(std::string_view text) {
  return text.find('\0') == std::string_view::npos && IsValidUtf8(text);
}

// `text` for a message: quoted when it is printable UTF-8, else (a prefix of) its hex.
inline std::string Printable(std::string_view text) {
  const bool printable = IsStorableText(text) && std::none_of(text.begin(), text.end(), [](char c) {
                           return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
                         });
  if (printable && text.size() <= 128) return "'" + std::string(text) + "'";
  return "(hex " + HexEncode(text.substr(0, 32)) + (text.size() > 32 ? "...)" : ")");
}

// The inputs of SetNamespaceSetting (and of a snapshot's setting records).
inline Status CheckNamespaceSetting(std::string_view tenant, std::string_view name,
                                    std::string_view setting,
                                    const std::optional<std::string>& value) {
  if (!IsStorableText(tenant)) {
    return InvalidArgumentError("tenant " + Printable(tenant) +
                                " of a namespace setting is not UTF-8 text without NUL");
  }
  if (!IsStorableText(name)) {
    return InvalidArgumentError("namespace name " + Printable(name) + " of tenant '" +
                                std::string(tenant) + "' is not UTF-8 text without NUL");
  }
  const std::string where = " of namespace '" + std::string(name) + "'";
  if (setting.empty() || setting.size() > kMaxNamespaceSettingNameBytes) {
    return InvalidArgumentError("namespace setting name " + Printable(setting) + where + " is " +
                                std::to_string(setting.size()) + " bytes; it must be 1.." +
                                std::to_string(kMaxNamespaceSettingNameBytes));
  }
  for (char c : setting) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return InvalidArgumentError("namespace setting name " + Printable(setting) + where +
                                  " may contain only a-z, 0-9 and '-'");
    }
  }
  if (!value) return OkStatus();
  if (value->size() > kMaxNamespaceSettingValueBytes) {
    return InvalidArgumentError("the value of setting '" + std::string(setting) + "'" + where +
                                " is " + std::to_string(value->size()) + " bytes; the limit is " +
                                std::to_string(kMaxNamespaceSettingValueBytes));
  }
  if (!IsStorableText(*value)) {
    return InvalidArgumentError("the value of setting '" + std::string(setting) + "'" + where +
                                " is not UTF-8 text without NUL");
  }
  return OkStatus();
}

// The kind of a generic chunk owner: 1..32 bytes of [a-z0-9-] starting with a letter, and
// not "object" (objects hold their references through their own chunk lists).
inline Status CheckOwnerKind(std::string_view kind) {
  if (kind.empty() || kind.size() > kMaxOwnerKindBytes) {
    return InvalidArgumentError("owner kind " + Printable(kind) + " is " +
                                std::to_string(kind.size()) + " bytes; it must be 1.." +
                                std::to_string(kMaxOwnerKindBytes));
  }
  if (!(kind[0] >= 'a' && kind[0] <= 'z')) {
    return InvalidArgumentError("owner kind " + Printable(kind) + " must start with a-z");
  }
  for (char c : kind) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return InvalidArgumentError("owner kind " + Printable(kind) +
                                  " may contain only a-z, 0-9 and '-'");
    }
  }
  if (kind == kObjectOwnerKind) {
    return InvalidArgumentError(
        "owner kind 'object' is reserved: objects hold their chunk references themselves");
  }
  return OkStatus();
}

// An owner's kind (above) and id: 1..1024 bytes of UTF-8 without control bytes.
inline Status CheckChunkOwner(const ChunkOwner& owner) {
  RETURN_IF_ERROR(CheckOwnerKind(owner.kind));
  if (owner.id.empty() || owner.id.size() > kMaxOwnerIdBytes) {
    return InvalidArgumentError("owner id " + Printable(owner.id) + " of kind '" + owner.kind +
                                "' is " + std::to_string(owner.id.size()) +
                                " bytes; it must be 1.." + std::to_string(kMaxOwnerIdBytes));
  }
  const bool control = std::any_of(owner.id.begin(), owner.id.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
  if (control || !IsValidUtf8(owner.id)) {
    return InvalidArgumentError("owner id " + Printable(owner.id) + " of kind '" + owner.kind +
                                "' is not UTF-8 text without control bytes");
  }
  return OkStatus();
}

// An owner whose entries a FileTree transaction sets by seq (a mount's staging owner): a
// valid owner that is not a file, whose entries are block rows (PutBlock, DropBlocks).
inline Status CheckGenericOwner(const ChunkOwner& owner, std::string_view operation) {
  RETURN_IF_ERROR(CheckChunkOwner(owner));
  if (owner.kind == kFileOwnerKind) {
    return InvalidArgumentError("a file's blocks are set by PutBlock, not " +
                                std::string(operation));
  }
  return OkStatus();
}

// The owner for messages: kind:'id'.
inline std::string DescribeOwner(const ChunkOwner& owner) {
  return owner.kind + ":" + Printable(owner.id);
}

// A volume's name (1..64 bytes of [A-Za-z0-9._-]) and uuid (canonical UUID text).
inline Status CheckVolumeRecord(const VolumeRecord& volume) {
  const bool name_ok = !volume.name.empty() && volume.name.size() <= 64 &&
                       std::all_of(volume.name.begin(), volume.name.end(), [](char c) {
                         return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
                       });
  if (!name_ok) {
    return InvalidArgumentError("volume name " + Printable(volume.name) +
                                " is not 1..64 bytes of letters, digits, '.', '_' and '-'");
  }
  if (!ObjectId::Parse(volume.uuid).ok()) {
    return InvalidArgumentError("volume uuid " + Printable(volume.uuid) + " is not a UUID");
  }
  return OkStatus();
}

inline Status NoVolumeError() {
  return FailedPreconditionError(
      "this metadata store holds no filesystem volume; "
      "create one with 'cairn format'");
}

// ---- Snapshots of a filesystem volume (records.h says what they hold) ----------------

// Clears `owner.sequences` when they are 0, 1, 2, ... (what an empty list means).
inline void DropDenseSequences(SnapshotOwner& owner) {
  for (size_t i = 0; i < owner.sequences.size(); ++i) {
    if (owner.sequences[i] != i) return;
  }
  owner.sequences.clear();
}

// The sequence number of entry `i` of a snapshot owner.
inline uint64_t OwnerSequence(const SnapshotOwner& owner, size_t i) {
  return owner.sequences.empty() ? i : owner.sequences[i];
}

// An owner record as a load accepts it: a valid owner, a non-empty list and, if given,
// one increasing sequence number per entry.
inline Status CheckSnapshotOwner(const SnapshotOwner& owned) {
  if (owned.chunks.empty()) {
    return InvalidArgumentError("owner " + DescribeOwner(owned.owner) + " has an empty chunk list");
  }
  if (!owned.sequences.empty()) {
    bool increasing = owned.sequences.size() == owned.chunks.size();
    for (size_t i = 1; increasing && i < owned.sequences.size(); ++i) {
      increasing = owned.sequences[i - 1] < owned.sequences[i];
    }
    if (!increasing || owned.sequences.back() > static_cast<uint64_t>(INT64_MAX)) {
      return InvalidArgumentError("owner " + DescribeOwner(owned.owner) +
                                  " has sequence numbers that are not one increasing number "
                                  "per chunk");
    }
  }
  return OkStatus();
}

inline Status CheckSnapshotVolume(const SnapshotVolume& volume) {
  RETURN_IF_ERROR(CheckVolumeRecord(volume.volume));
  if (volume.next_ino <= kRootInode || volume.next_ino > static_cast<uint64_t>(INT64_MAX)) {
    return InvalidArgumentError("next inode number " + std::to_string(volume.next_ino) +
                                " of volume '" + volume.volume.name + "' is out of range");
  }
  return OkStatus();
}

// A filesystem record (inode, entry, xattr) of a snapshot whose volume record has not come.
inline Status SnapshotWithoutVolumeError(const char* what) {
  return InvalidArgumentError(std::string("snapshot is inconsistent: ") + what +
                              " record without a volume record before it");
}

// The fs_inodes columns every engine reads an inode from, in this order, each after
// `prefix` (a table alias and its dot, or nothing); a string literal, so that statements
// built with it stay literals.
#define CAIRN_FS_INODE_COLUMNS(prefix)                                                  \
  prefix "type, " prefix "mode, " prefix "uid, " prefix "gid, " prefix "nlink, " prefix \
         "size, " prefix "atime_ns, " prefix "mtime_ns, " prefix "ctime_ns, " prefix    \
         "btime_ns, " prefix "rdev, " prefix "parent, " prefix "symlink_target, " prefix "change"

// The most change rows FileTreeTransaction::AppendChanges writes with one INSERT.
inline constexpr size_t kChangesPerInsert = 4;

// The INSERT of `rows` change rows: `param(n, column)` spells parameter n (from 1) of column
// `column` (0..5: session, ino, data, parent, name, at_ms) in the engine's dialect.
template <typename Param>
std::string ChangesInsertSql(size_t rows, Param param) {
  std::string sql = "INSERT INTO fs_changes (session, ino, data, parent, name, at_ms) VALUES ";
  for (size_t row = 0; row < rows; ++row) {
    sql += row == 0 ? "(" : ", (";
    for (size_t column = 0; column < 6; ++column) {
      if (column > 0) sql += ", ";
      sql += param(row * 6 + column + 1, column);
    }
    sql += ")";
  }
  return sql;
}

inline Status CheckListRequest(const ListRequest& request) {
  if (request.limit < 1 || request.limit > kMaxListLimit) {
    return InvalidArgumentError("list limit " + std::to_string(request.limit) +
                                " is outside 1..10000");
  }
  return OkStatus();
}

// At commit, the chunks recorded for an upload must add up to the bytes received. They do
// unless a reference was lost, which a database restart can do to AddChunk (it is not
// durable on its own): then the upload must be sent again, and nothing is committed.
inline Status CheckChunkTotal(const ObjectId& id, uint64_t recorded, uint64_t received) {
  if (recorded != received) {
    return UnavailableError("the chunks recorded for upload " + id.ToString() + " add up to " +
                            std::to_string(recorded) + " bytes, not the " +
                            std::to_string(received) +
                            " received (a chunk reference was lost); upload it again");
  }
  return OkStatus();
}

inline Status CheckSequence(const ObjectId& id, uint32_t sequence, uint64_t expected) {
  if (sequence != expected) {
    return InvalidArgumentError("chunk " + std::to_string(sequence) + " of object " +
                                id.ToString() + " is out of order; expected chunk " +
                                std::to_string(expected));
  }
  return OkStatus();
}

// The smallest string greater than every string that starts with `prefix`, or "" when
// there is none (empty prefix or all 0xff bytes). Keys with the prefix are exactly
// [prefix, successor) in byte order, which lets an index answer a prefix query as a range.
inline std::string PrefixSuccessor(std::string_view prefix) {
  std::string out(prefix);
  while (!out.empty() && static_cast<unsigned char>(out.back()) == 0xff) out.pop_back();
  if (out.empty()) return out;
  out.back() = static_cast<char>(static_cast<unsigned char>(out.back()) + 1);
  return out;
}

// With a delimiter, the length of the common prefix that `key` (which starts with a prefix
// of `prefix_size` bytes) rolls up into: the key up to and including the first delimiter
// found at or after prefix_size; npos when the key does not roll up.
inline size_t CommonPrefixLength(std::string_view key, size_t prefix_size,
                                 std::string_view delimiter) {
  if (delimiter.empty() || prefix_size > key.size()) return std::string_view::npos;
  const size_t at = key.find(delimiter, prefix_size);
  return at == std::string_view::npos ? at : at + delimiter.size();
}

// The smallest string that PostgreSQL can store as UTF-8 text (valid UTF-8, no NUL) and
// that is >= `bound` in byte order, or nullopt when there is none. For every storable key
// k: k >= bound  <=>  k >= Utf8Ceiling(bound). That turns a list bound that is not
// storable text (a prefix cut inside a character, "\xff", ...) into an equivalent one that
// can be bound as a text parameter.
inline std::optional<std::string> Utf8Ceiling(std::string_view bound) {
  // The byte range allowed at position `index` (0 = lead) of a character led by `lead`.
  struct Range {
    unsigned lo, hi;
  };
  auto continuation = [](unsigned lead, size_t index) -> Range {
    if (index == 1) {
      if (lead == 0xe0) return {0xa0, 0xbf};
      if (lead == 0xed) return {0x80, 0x9f};
      if (lead == 0xf0) return {0x90, 0xbf};
      if (lead == 0xf4) return {0x80, 0x8f};
    }
    return {0x80, 0xbf};
  };
  auto length_of = [](unsigned lead) -> size_t {
    if (lead < 0x80) return 1;
    if (lead < 0xe0) return 2;
    if (lead < 0xf0) return 3;
    return 4;
  };
  auto lead_allowed = [](unsigned b) {
    return (b >= 0x01 && b <= 0x7f) || (b >= 0xc2 && b <= 0xf4);
  };
  // Smallest allowed byte > b at position `index` of a character led by `lead`, or 0x100.
  auto next_allowed = [&](unsigned lead, size_t index, unsigned b) -> unsigned {
    if (index == 0) {
      if (b < 0x7f) return b + 1;
      if (b < 0xc2) return 0xc2;
      if (b < 0xf4) return b + 1;
      return 0x100;
    }
    Range range = continuation(lead, index);
    unsigned c = std::max(range.lo, b + 1);
    return c <= range.hi ? c : 0x100;
  };
  // Appends the smallest bytes that complete a character led by `lead` whose first
  // `have` bytes are in `out`.
  auto complete = [&](std::string& out, unsigned lead, size_t have) {
    for (size_t index = have; index < length_of(lead); ++index) {
      out += static_cast<char>(continuation(lead, index).lo);
    }
  };

  // Walk `bound`, remembering each byte's (lead, index) context.
  std::vector<std::pair<unsigned, size_t>> context;
  unsigned lead = 0;
  size_t index = 0;
  size_t failed = bound.size();
  for (size_t i = 0; i < bound.size(); ++i) {
    const unsigned b = static_cast<unsigned char>(bound[i]);
    if (index == 0) lead = b;
    context.emplace_back(lead, index);
    bool allowed;
    if (index == 0) {
      allowed = lead_allowed(b);
    } else {
      Range range = continuation(lead, index);
      allowed = b >= range.lo && b <= range.hi;
    }
    if (!allowed) {
      failed = i;
      break;
    }
    index = index + 1 == length_of(lead) ? 0 : index + 1;
  }
  if (failed == bound.size()) {
    // Storable, or a storable prefix cut inside its last character: complete that one.
    std::string out(bound);
    if (index != 0) complete(out, lead, index);
    return out;
  }
  // Nothing storable starts with bound[0..failed]: raise the last byte that can be raised.
  for (size_t j = failed + 1; j-- > 0;) {
    const auto [at_lead, at_index] = context[j];
    const unsigned c = next_allowed(at_lead, at_index, static_cast<unsigned char>(bound[j]));
    if (c > 0xff) continue;
    std::string out(bound.substr(0, j));
    out += static_cast<char>(c);
    complete(out, at_index == 0 ? c : at_lead, at_index + 1);
    return out;
  }
  return std::nullopt;
}

// Usage(): adds a group's distinct chunk bytes to its row, read from the kept counters
// and indexed by (namespace, class name). Counters that drifted from the rows (damage that
// fsck reports and repairs) must not hide a group: one they lack gets a row of its own
// with zero objects, kept in (namespace, class) order.
inline void AddUsagePhysicalBytes(std::vector<UsageRow>& rows,
                                  std::map<std::pair<std::string, std::string>, size_t>& index,
                                  const std::string& namespace_name, StorageClass storage_class,
                                  int64_t bytes) {
  const std::pair<std::string, std::string> key{namespace_name,
                                                std::string(StorageClassName(storage_class))};
  auto it = index.find(key);
  if (it == index.end()) {
    UsageRow missing;
    missing.namespace_name = namespace_name;
    missing.storage_class = storage_class;
    it = index.emplace(key, rows.size()).first;
    rows.push_back(std::move(missing));
  }
  rows[it->second].physical_bytes += static_cast<uint64_t>(std::max<int64_t>(bytes, 0));
}

// Puts rows back in (namespace, class name) order after AddUsagePhysicalBytes appended.
inline void SortUsageRows(std::vector<UsageRow>& rows) {
  std::sort(rows.begin(), rows.end(), [](const UsageRow& a, const UsageRow& b) {
    return std::make_pair(std::string_view(a.namespace_name), StorageClassName(a.storage_class)) <
           std::make_pair(std::string_view(b.namespace_name), StorageClassName(b.storage_class));
  });
}

// fsck's comparison of kept usage counters with a recount (both in any order): one line
// per (tenant, namespace, class) whose figures differ, absent groups counting as zero.
inline std::vector<std::string> CompareUsageCounters(const std::vector<UsageCounterRow>& recorded,
                                                     const std::vector<UsageCounterRow>& actual) {
  using Key = std::tuple<std::string, std::string, StorageClass>;
  std::map<Key, std::pair<UsageCounterRow, UsageCounterRow>> groups;
  for (const UsageCounterRow& row : recorded) {
    groups[{row.tenant, row.namespace_name, row.storage_class}].first = row;
  }
  for (const UsageCounterRow& row : actual) {
    groups[{row.tenant, row.namespace_name, row.storage_class}].second = row;
  }
  auto figures = [](const UsageCounterRow& row) {
    return std::to_string(row.objects) + " objects, " + std::to_string(row.logical_bytes) +
           " bytes, " + std::to_string(row.inline_bytes) + " inline";
  };
  std::vector<std::string> lines;
  for (const auto& [key, pair] : groups) {
    const auto& [kept, counted] = pair;
    if (kept.objects == counted.objects && kept.logical_bytes == counted.logical_bytes &&
        kept.inline_bytes == counted.inline_bytes) {
      continue;
    }
    lines.push_back("usage of tenant '" + std::get<0>(key) + "' namespace '" + std::get<1>(key) +
                    "' class " + std::string(StorageClassName(std::get<2>(key))) + ": kept " +
                    figures(kept) + "; counted " + figures(counted));
  }
  return lines;
}

}  // namespace cairn::meta::internal
