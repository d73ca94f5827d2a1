#include "meta/snapshot.h"

#include "core/base64.h"
#include "core/block_checksums.h"
#include "meta/file_tree.h"

#include <nlohmann/json.hpp>
#include <type_traits>
#include <utility>
#include <variant>

namespace cairn::meta {
namespace {

using Json = nlohmann::json;
// Written records keep their fields in the order given here (type first), for readers.
using OutJson = nlohmann::ordered_json;

constexpr size_t kFlushBytes = 1 << 20;
constexpr size_t kReadBlockBytes = 1 << 20;

// Record kinds in file order; a kind is the index of its SnapshotRecord alternative.
enum Kind {
  kApiKey = 0,
  kS3Key,
  kNamespace,
  kNamespaceSetting,
  kChunk,
  kObject,
  kOwner,
  kVolume,
  kInode,
  kDentry,
  kXattr
};
constexpr const char* kKindNames[] = {"api_key", "s3_key", "namespace", "namespace_setting",
                                      "chunk",   "object", "owner",     "volume",
                                      "inode",   "dentry", "xattr"};
static_assert(std::variant_size_v<SnapshotRecord> == std::size(kKindNames));
static_assert(std::is_same_v<std::variant_alternative_t<kNamespaceSetting, SnapshotRecord>,
                             NamespaceSettingRecord>);
static_assert(std::is_same_v<std::variant_alternative_t<kObject, SnapshotRecord>, SnapshotObject>);
static_assert(std::is_same_v<std::variant_alternative_t<kOwner, SnapshotRecord>, SnapshotOwner>);
static_assert(std::is_same_v<std::variant_alternative_t<kVolume, SnapshotRecord>, SnapshotVolume>);
static_assert(std::is_same_v<std::variant_alternative_t<kInode, SnapshotRecord>, InodeRecord>);
static_assert(std::is_same_v<std::variant_alternative_t<kDentry, SnapshotRecord>, DentryRecord>);
static_assert(std::is_same_v<std::variant_alternative_t<kXattr, SnapshotRecord>, SnapshotXattr>);

// The first version with namespace_setting records. A snapshot without any is written as
// version 1, byte for byte what binaries before them wrote, so that they can load it.
constexpr int kSettingsFormatVersion = 2;
// The first version with owner records; written only when there are owners, so a snapshot
// without any stays readable by binaries that know versions 1 and 2 only.
constexpr int kOwnersFormatVersion = 3;
// The first version with a filesystem volume (volume, inode, dentry and xattr records, and
// the "sequences" of an owner's entries); written only when the store holds a volume.
constexpr int kVolumeFormatVersion = 4;
static_assert(kVolumeFormatVersion == kSnapshotFormatVersion);

bool HasFileTree(const SnapshotCounts& c) {
  return c.volumes != 0 || c.inodes != 0 || c.dentries != 0 || c.xattrs != 0;
}

// ---- field encodings ----------------------------------------------------------------------

OutJson TextValue(const std::string& text) {
  if (IsValidUtf8(text)) return text;
  return OutJson{{"hex", HexEncode(text)}};
}

OutJson CountsJson(const SnapshotCounts& c) {
  OutJson out{{"api_keys", c.api_keys}, {"s3_keys", c.s3_keys}, {"namespaces", c.namespaces}};
  if (c.namespace_settings != 0) out["namespace_settings"] = c.namespace_settings;  // version 2
  out["chunks"] = c.chunks;
  out["objects"] = c.objects;
  if (c.owners != 0) out["owners"] = c.owners;  // version 3
  if (HasFileTree(c)) {                         // version 4
    out["volumes"] = c.volumes;
    out["inodes"] = c.inodes;
    out["dentries"] = c.dentries;
    out["xattrs"] = c.xattrs;
  }
  return out;
}

OutJson TenantsJson(const std::vector<std::string>& tenants) {
  OutJson out = OutJson::array();
  for (const std::string& tenant : tenants) out.push_back(TextValue(tenant));
  return out;
}

OutJson RecordJson(const ApiKeyRecord& r) {
  return OutJson{{"type", kKindNames[kApiKey]},
                 {"key_id", TextValue(r.key_id)},
                 {"secret_hash", r.secret_hash.ToHex()},
                 {"tenants", TenantsJson(r.tenants)},
                 {"scope", ScopeName(r.scope)},
                 {"created_at_ms", r.created_at_ms},
                 {"revoked", r.revoked},
                 {"description", TextValue(r.description)}};
}

OutJson RecordJson(const S3KeyRecord& r) {
  return OutJson{{"type", kKindNames[kS3Key]},    {"access_key", TextValue(r.access_key)},
                 {"secret", TextValue(r.secret)}, {"tenants", TenantsJson(r.tenants)},
                 {"scope", ScopeName(r.scope)},   {"created_at_ms", r.created_at_ms},
                 {"revoked", r.revoked},          {"description", TextValue(r.description)}};
}

OutJson RecordJson(const NamespaceRecord& r) {
  return OutJson{{"type", kKindNames[kNamespace]},
                 {"tenant", TextValue(r.tenant)},
                 {"name", TextValue(r.name)},
                 {"created_at_ms", r.created_at_ms}};
}

OutJson RecordJson(const NamespaceSettingRecord& r) {
  return OutJson{{"type", kKindNames[kNamespaceSetting]},
                 {"tenant", TextValue(r.tenant)},
                 {"namespace", TextValue(r.namespace_name)},
                 {"name", TextValue(r.name)},
                 {"value", TextValue(r.value)}};
}

OutJson RecordJson(const ChunkRecord& r) {
  OutJson out{{"type", kKindNames[kChunk]}, {"storage_class", StorageClassName(r.storage_class)},
              {"digest", r.digest.ToHex()}, {"size_bytes", r.size_bytes},
              {"ref_count", r.ref_count},   {"zero_since_ms", r.zero_since_ms}};
  // Optional fields, written only when set, so a snapshot without them stays version 1.
  if (!r.block_checksums.empty()) out["block_checksums"] = HexEncode(r.block_checksums);
  if (r.damaged_ms != 0) out["damaged_ms"] = r.damaged_ms;
  return out;
}

OutJson RecordJson(const SnapshotObject& s) {
  const ObjectRecord& r = s.object;
  OutJson metadata = OutJson::object();
  for (const auto& [name, value] : r.user_metadata) metadata[name] = TextValue(value);
  OutJson chunks = OutJson::array();
  for (const ChunkRef& chunk : s.chunks)
    chunks.push_back(OutJson{chunk.digest.ToHex(), chunk.size_bytes});
  OutJson out{{"type", kKindNames[kObject]},
              {"id", r.id.ToString()},
              {"tenant", TextValue(r.tenant)},
              {"namespace", TextValue(r.namespace_name)},
              {"key", TextValue(r.key)},
              {"state", ObjectStateName(r.state)},
              {"storage_class", StorageClassName(r.storage_class)},
              {"size_bytes", r.size_bytes},
              {"content_hash", r.content_hash.ToHex()},
              {"etag", TextValue(r.etag)},
              {"content_type", TextValue(r.content_type)},
              {"user_metadata", std::move(metadata)},
              {"created_at_ms", r.created_at_ms},
              {"updated_at_ms", r.updated_at_ms},
              {"chunks", std::move(chunks)}};
  if (r.inline_data) out["inline_data"] = Base64Encode(*r.inline_data);
  return out;
}

OutJson RecordJson(const SnapshotOwner& s) {
  OutJson chunks = OutJson::array();
  for (const OwnerChunk& entry : s.chunks) {
    chunks.push_back(OutJson{StorageClassName(entry.storage_class), entry.chunk.digest.ToHex(),
                             entry.chunk.size_bytes});
  }
  OutJson out{{"type", kKindNames[kOwner]},
              {"kind", TextValue(s.owner.kind)},
              {"id", TextValue(s.owner.id)},
              {"chunks", std::move(chunks)}};
  if (!s.sequences.empty()) out["sequences"] = s.sequences;  // version 4
  return out;
}

OutJson RecordJson(const SnapshotVolume& s) {
  return OutJson{{"type", kKindNames[kVolume]},
                 {"name", TextValue(s.volume.name)},
                 {"uuid", TextValue(s.volume.uuid)},
                 {"created_ms", s.volume.created_ms},
                 {"trash_days", s.volume.trash_days},
                 {"format_version", s.volume.format_version},
                 {"next_ino", s.next_ino}};
}

OutJson RecordJson(const InodeRecord& r) {
  OutJson out{{"type", kKindNames[kInode]},
              {"ino", r.ino},
              {"file_type", FileTypeName(r.type)},
              {"mode", r.mode},
              {"uid", r.uid},
              {"gid", r.gid},
              {"nlink", r.nlink},
              {"size", r.size},
              {"atime_ns", r.atime_ns},
              {"mtime_ns", r.mtime_ns},
              {"ctime_ns", r.ctime_ns},
              {"btime_ns", r.btime_ns},
              {"rdev", r.rdev},
              {"parent", r.parent},
              {"change", r.change}};
  if (r.type == FileType::kSymlink) out["symlink_target"] = TextValue(r.symlink_target);
  return out;
}

OutJson RecordJson(const DentryRecord& r) {
  return OutJson{{"type", kKindNames[kDentry]},
                 {"parent", r.parent},
                 {"name", TextValue(r.name)},
                 {"ino", r.ino},
                 {"file_type", FileTypeName(r.type)}};
}

OutJson RecordJson(const SnapshotXattr& r) {
  return OutJson{{"type", kKindNames[kXattr]},
                 {"ino", r.ino},
                 {"name", TextValue(r.name)},
                 {"value", Base64Encode(r.value)}};
}

// ---- field decodings ----------------------------------------------------------------------

Result<const Json*> Field(const Json& json, const char* name) {
  auto it = json.find(name);
  if (it == json.end()) return InvalidArgumentError(std::string("missing field '") + name + "'");
  return &*it;
}

// A string, or {"hex": "..."} for text that is not valid UTF-8; nullopt otherwise.
std::optional<std::string> TextFromValue(const Json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.size() == 1 && value.contains("hex") && value["hex"].is_string()) {
    Result<std::string> bytes = HexDecode(value["hex"].get<std::string>());
    if (bytes.ok()) return std::move(bytes).value();
  }
  return std::nullopt;
}

Result<std::string> GetText(const Json& json, const char* name) {
  ASSIGN_OR_RETURN(const Json* value, Field(json, name));
  std::optional<std::string> text = TextFromValue(*value);
  if (!text) return InvalidArgumentError(std::string("field '") + name + "' is not text");
  return std::move(*text);
}

Result<std::string> TextOf(const Json& value, const char* what) {
  std::optional<std::string> text = TextFromValue(value);
  if (!text) return InvalidArgumentError(std::string(what) + " is not text");
  return std::move(*text);
}

Result<int64_t> GetInt(const Json& json, const char* name) {
  ASSIGN_OR_RETURN(const Json* value, Field(json, name));
  if (value->is_number_integer() &&
      (value->is_number_unsigned() ? value->get<uint64_t>() <= INT64_MAX : true)) {
    return value->get<int64_t>();
  }
  return InvalidArgumentError(std::string("field '") + name + "' is not an integer");
}

Result<uint64_t> GetSize(const Json& json, const char* name) {
  ASSIGN_OR_RETURN(int64_t value, GetInt(json, name));
  if (value < 0) return InvalidArgumentError(std::string("field '") + name + "' is negative");
  return static_cast<uint64_t>(value);
}

// The full uint64 range (inode numbers, sizes, device numbers).
Result<uint64_t> GetUnsigned(const Json& json, const char* name) {
  ASSIGN_OR_RETURN(const Json* value, Field(json, name));
  if (value->is_number_unsigned()) return value->get<uint64_t>();
  if (value->is_number_integer() && value->get<int64_t>() >= 0) {
    return static_cast<uint64_t>(value->get<int64_t>());
  }
  return InvalidArgumentError(std::string("field '") + name + "' is not a non-negative integer");
}

Result<uint32_t> GetUnsigned32(const Json& json, const char* name) {
  ASSIGN_OR_RETURN(uint64_t value, GetUnsigned(json, name));
  if (value > UINT32_MAX) {
    return InvalidArgumentError(std::string("field '") + name + "' is above 2^32-1");
  }
  return static_cast<uint32_t>(value);
}

Result<FileType> GetFileType(const Json& json) {
  ASSIGN_OR_RETURN(std::string text, GetText(json, "file_type"));
  for (int n = static_cast<int>(FileType::kRegular); n <= static_cast<int>(FileType::kBlockDevice);
       ++n) {
    if (FileTypeName(static_cast<FileType>(n)) == text) return static_cast<FileType>(n);
  }
  return InvalidArgumentError("field 'file_type' names no file type: '" + text + "'");
}

Result<bool> GetBool(const Json& json, const char* name) {
  ASSIGN_OR_RETURN(const Json* value, Field(json, name));
  if (!value->is_boolean())
    return InvalidArgumentError(std::string("field '") + name + "' is not a boolean");
  return value->get<bool>();
}

Result<Digest> GetDigest(const Json& json, const char* name) {
  ASSIGN_OR_RETURN(std::string text, GetText(json, name));
  Result<Digest> digest = Digest::FromHex(text);
  if (!digest.ok()) return InvalidArgumentError(std::string("field '") + name + "' is not 64 hex");
  return digest;
}

Result<StorageClass> GetClass(const Json& json) {
  ASSIGN_OR_RETURN(std::string text, GetText(json, "storage_class"));
  return ParseStorageClass(text);
}

Result<std::vector<std::string>> GetTenants(const Json& json) {
  ASSIGN_OR_RETURN(const Json* value, Field(json, "tenants"));
  if (!value->is_array()) return InvalidArgumentError("field 'tenants' is not an array");
  std::vector<std::string> tenants;
  for (const Json& item : *value) {
    ASSIGN_OR_RETURN(std::string tenant, TextOf(item, "a tenant"));
    tenants.push_back(std::move(tenant));
  }
  return tenants;
}

Result<SnapshotCounts> GetCounts(const Json& json) {
  ASSIGN_OR_RETURN(const Json* value, Field(json, "counts"));
  if (!value->is_object()) return InvalidArgumentError("field 'counts' is not an object");
  SnapshotCounts c;
  ASSIGN_OR_RETURN(c.api_keys, GetSize(*value, "api_keys"));
  ASSIGN_OR_RETURN(c.s3_keys, GetSize(*value, "s3_keys"));
  ASSIGN_OR_RETURN(c.namespaces, GetSize(*value, "namespaces"));
  if (value->contains("namespace_settings")) {  // version 2, when there are any
    ASSIGN_OR_RETURN(c.namespace_settings, GetSize(*value, "namespace_settings"));
  }
  ASSIGN_OR_RETURN(c.chunks, GetSize(*value, "chunks"));
  ASSIGN_OR_RETURN(c.objects, GetSize(*value, "objects"));
  if (value->contains("owners")) {  // version 3, when there are any
    ASSIGN_OR_RETURN(c.owners, GetSize(*value, "owners"));
  }
  if (value->contains("volumes")) {  // version 4, when the store holds a volume
    ASSIGN_OR_RETURN(c.volumes, GetSize(*value, "volumes"));
    ASSIGN_OR_RETURN(c.inodes, GetSize(*value, "inodes"));
    ASSIGN_OR_RETURN(c.dentries, GetSize(*value, "dentries"));
    ASSIGN_OR_RETURN(c.xattrs, GetSize(*value, "xattrs"));
  }
  return c;
}

Result<SnapshotRecord> ParseApiKey(const Json& json) {
  ApiKeyRecord r;
  ASSIGN_OR_RETURN(r.key_id, GetText(json, "key_id"));
  ASSIGN_OR_RETURN(r.secret_hash, GetDigest(json, "secret_hash"));
  ASSIGN_OR_RETURN(r.tenants, GetTenants(json));
  ASSIGN_OR_RETURN(std::string scope, GetText(json, "scope"));
  ASSIGN_OR_RETURN(r.scope, ParseScope(scope));
  ASSIGN_OR_RETURN(r.created_at_ms, GetInt(json, "created_at_ms"));
  ASSIGN_OR_RETURN(r.revoked, GetBool(json, "revoked"));
  ASSIGN_OR_RETURN(r.description, GetText(json, "description"));
  return SnapshotRecord(std::move(r));
}

Result<SnapshotRecord> ParseS3Key(const Json& json) {
  S3KeyRecord r;
  ASSIGN_OR_RETURN(r.access_key, GetText(json, "access_key"));
  ASSIGN_OR_RETURN(r.secret, GetText(json, "secret"));
  ASSIGN_OR_RETURN(r.tenants, GetTenants(json));
  ASSIGN_OR_RETURN(std::string scope, GetText(json, "scope"));
  ASSIGN_OR_RETURN(r.scope, ParseScope(scope));
  ASSIGN_OR_RETURN(r.created_at_ms, GetInt(json, "created_at_ms"));
  ASSIGN_OR_RETURN(r.revoked, GetBool(json, "revoked"));
  ASSIGN_OR_RETURN(r.description, GetText(json, "description"));
  return SnapshotRecord(std::move(r));
}

Result<SnapshotRecord> ParseNamespace(const Json& json) {
  NamespaceRecord r;
  ASSIGN_OR_RETURN(r.tenant, GetText(json, "tenant"));
  ASSIGN_OR_RETURN(r.name, GetText(json, "name"));
  ASSIGN_OR_RETURN(r.created_at_ms, GetInt(json, "created_at_ms"));
  return SnapshotRecord(std::move(r));
}

Result<SnapshotRecord> ParseNamespaceSetting(const Json& json) {
  NamespaceSettingRecord r;
  ASSIGN_OR_RETURN(r.tenant, GetText(json, "tenant"));
  ASSIGN_OR_RETURN(r.namespace_name, GetText(json, "namespace"));
  ASSIGN_OR_RETURN(r.name, GetText(json, "name"));
  ASSIGN_OR_RETURN(r.value, GetText(json, "value"));
  return SnapshotRecord(std::move(r));
}

Result<SnapshotRecord> ParseChunk(const Json& json) {
  ChunkRecord r;
  ASSIGN_OR_RETURN(r.storage_class, GetClass(json));
  ASSIGN_OR_RETURN(r.digest, GetDigest(json, "digest"));
  ASSIGN_OR_RETURN(r.size_bytes, GetSize(json, "size_bytes"));
  ASSIGN_OR_RETURN(r.ref_count, GetInt(json, "ref_count"));
  ASSIGN_OR_RETURN(r.zero_since_ms, GetInt(json, "zero_since_ms"));
  if (r.ref_count < 0) return InvalidArgumentError("negative ref_count");
  if (json.contains("block_checksums")) {
    ASSIGN_OR_RETURN(std::string hex, GetText(json, "block_checksums"));
    ASSIGN_OR_RETURN(r.block_checksums, HexDecode(hex));
    if (!BlockChecksumsFit(r.block_checksums, r.size_bytes)) {
      return InvalidArgumentError("block_checksums do not fit a chunk of " +
                                  std::to_string(r.size_bytes) + " bytes");
    }
  }
  if (json.contains("damaged_ms")) {
    ASSIGN_OR_RETURN(r.damaged_ms, GetInt(json, "damaged_ms"));
  }
  return SnapshotRecord(std::move(r));
}

Result<SnapshotRecord> ParseObject(const Json& json) {
  SnapshotObject s;
  ObjectRecord& r = s.object;
  ASSIGN_OR_RETURN(std::string id, GetText(json, "id"));
  ASSIGN_OR_RETURN(r.id, ObjectId::Parse(id));
  ASSIGN_OR_RETURN(r.tenant, GetText(json, "tenant"));
  ASSIGN_OR_RETURN(r.namespace_name, GetText(json, "namespace"));
  ASSIGN_OR_RETURN(r.key, GetText(json, "key"));
  ASSIGN_OR_RETURN(std::string state, GetText(json, "state"));
  ASSIGN_OR_RETURN(r.state, ParseObjectState(state));
  if (r.state != ObjectState::kCommitted) {
    return InvalidArgumentError("object " + id + " is " + state +
                                "; snapshots hold COMMITTED only");
  }
  ASSIGN_OR_RETURN(r.storage_class, GetClass(json));
  ASSIGN_OR_RETURN(r.size_bytes, GetSize(json, "size_bytes"));
  ASSIGN_OR_RETURN(r.content_hash, GetDigest(json, "content_hash"));
  ASSIGN_OR_RETURN(r.etag, GetText(json, "etag"));
  ASSIGN_OR_RETURN(r.content_type, GetText(json, "content_type"));
  ASSIGN_OR_RETURN(r.created_at_ms, GetInt(json, "created_at_ms"));
  ASSIGN_OR_RETURN(r.updated_at_ms, GetInt(json, "updated_at_ms"));
  ASSIGN_OR_RETURN(const Json* metadata, Field(json, "user_metadata"));
  if (!metadata->is_object()) return InvalidArgumentError("field 'user_metadata' is not an object");
  for (const auto& [name, value] : metadata->items()) {
    ASSIGN_OR_RETURN(std::string text, TextOf(value, "a user metadata value"));
    r.user_metadata.emplace(name, std::move(text));
  }
  if (auto it = json.find("inline_data"); it != json.end()) {
    if (!it->is_string()) return InvalidArgumentError("field 'inline_data' is not base64 text");
    Result<std::string> data = Base64Decode(it->get<std::string>());
    if (!data.ok()) return data.status().WithContext("field 'inline_data'");
    r.inline_data = std::move(data).value();
  }
  ASSIGN_OR_RETURN(const Json* chunks, Field(json, "chunks"));
  if (!chunks->is_array()) return InvalidArgumentError("field 'chunks' is not an array");
  s.chunks.reserve(chunks->size());
  for (const Json& item : *chunks) {
    if (!item.is_array() || item.size() != 2 || !item[0].is_string() ||
        !item[1].is_number_unsigned()) {
      return InvalidArgumentError("a chunk of object " + id + " is not [digest, size]");
    }
    ChunkRef chunk;
    Result<Digest> digest = Digest::FromHex(item[0].get<std::string>());
    if (!digest.ok()) return InvalidArgumentError("a chunk digest of object " + id + " is not hex");
    chunk.digest = *digest;
    chunk.size_bytes = item[1].get<uint64_t>();
    s.chunks.push_back(chunk);
  }
  if (r.inline_data && !s.chunks.empty()) {
    return InvalidArgumentError("object " + id + " has both inline data and chunks");
  }
  return SnapshotRecord(std::move(s));
}

Result<SnapshotRecord> ParseOwner(const Json& json) {
  SnapshotOwner s;
  ASSIGN_OR_RETURN(s.owner.kind, GetText(json, "kind"));
  ASSIGN_OR_RETURN(s.owner.id, GetText(json, "id"));
  ASSIGN_OR_RETURN(const Json* chunks, Field(json, "chunks"));
  if (!chunks->is_array() || chunks->empty()) {
    return InvalidArgumentError("field 'chunks' of an owner is not a non-empty array");
  }
  s.chunks.reserve(chunks->size());
  for (const Json& item : *chunks) {
    if (!item.is_array() || item.size() != 3 || !item[0].is_string() || !item[1].is_string() ||
        !item[2].is_number_unsigned()) {
      return InvalidArgumentError("a chunk of owner " + s.owner.kind +
                                  " is not [storage_class, digest, size]");
    }
    OwnerChunk entry;
    ASSIGN_OR_RETURN(entry.storage_class, ParseStorageClass(item[0].get<std::string>()));
    Result<Digest> digest = Digest::FromHex(item[1].get<std::string>());
    if (!digest.ok()) {
      return InvalidArgumentError("a chunk digest of owner " + s.owner.kind + " is not hex");
    }
    entry.chunk.digest = *digest;
    entry.chunk.size_bytes = item[2].get<uint64_t>();
    s.chunks.push_back(std::move(entry));
  }
  if (auto it = json.find("sequences"); it != json.end()) {
    if (!it->is_array() || it->size() != s.chunks.size()) {
      return InvalidArgumentError("field 'sequences' of owner " + s.owner.kind + " " + s.owner.id +
                                  " is not an array as long as its chunks");
    }
    for (const Json& item : *it) {
      if (!item.is_number_unsigned() ||
          (!s.sequences.empty() && item.get<uint64_t>() <= s.sequences.back())) {
        return InvalidArgumentError("field 'sequences' of owner " + s.owner.kind + " " +
                                    s.owner.id + " is not increasing non-negative integers");
      }
      s.sequences.push_back(item.get<uint64_t>());
    }
  }
  return SnapshotRecord(std::move(s));
}

Result<SnapshotRecord> ParseVolume(const Json& json) {
  SnapshotVolume s;
  ASSIGN_OR_RETURN(s.volume.name, GetText(json, "name"));
  ASSIGN_OR_RETURN(s.volume.uuid, GetText(json, "uuid"));
  ASSIGN_OR_RETURN(s.volume.created_ms, GetInt(json, "created_ms"));
  ASSIGN_OR_RETURN(s.volume.trash_days, GetUnsigned32(json, "trash_days"));
  ASSIGN_OR_RETURN(s.volume.format_version, GetUnsigned32(json, "format_version"));
  ASSIGN_OR_RETURN(s.next_ino, GetUnsigned(json, "next_ino"));
  if (s.next_ino <= kRootInode) {
    return InvalidArgumentError("next_ino " + std::to_string(s.next_ino) + " of volume '" +
                                s.volume.name + "' is not above the root's");
  }
  return SnapshotRecord(std::move(s));
}

Result<SnapshotRecord> ParseInode(const Json& json) {
  InodeRecord r;
  ASSIGN_OR_RETURN(r.ino, GetUnsigned(json, "ino"));
  if (r.ino == 0) return InvalidArgumentError("inode number 0 is not valid");
  ASSIGN_OR_RETURN(r.type, GetFileType(json));
  ASSIGN_OR_RETURN(r.mode, GetUnsigned32(json, "mode"));
  ASSIGN_OR_RETURN(r.uid, GetUnsigned32(json, "uid"));
  ASSIGN_OR_RETURN(r.gid, GetUnsigned32(json, "gid"));
  ASSIGN_OR_RETURN(r.nlink, GetUnsigned32(json, "nlink"));
  ASSIGN_OR_RETURN(r.size, GetUnsigned(json, "size"));
  ASSIGN_OR_RETURN(r.atime_ns, GetInt(json, "atime_ns"));
  ASSIGN_OR_RETURN(r.mtime_ns, GetInt(json, "mtime_ns"));
  ASSIGN_OR_RETURN(r.ctime_ns, GetInt(json, "ctime_ns"));
  ASSIGN_OR_RETURN(r.btime_ns, GetInt(json, "btime_ns"));
  ASSIGN_OR_RETURN(r.rdev, GetUnsigned(json, "rdev"));
  ASSIGN_OR_RETURN(r.parent, GetUnsigned(json, "parent"));
  ASSIGN_OR_RETURN(r.change, GetUnsigned(json, "change"));
  if (r.type == FileType::kSymlink) {
    ASSIGN_OR_RETURN(r.symlink_target, GetText(json, "symlink_target"));
  }
  if (r.nlink == 0) {
    return InvalidArgumentError("inode " + std::to_string(r.ino) +
                                " has no link; snapshots hold linked inodes only");
  }
  return SnapshotRecord(std::move(r));
}

Result<SnapshotRecord> ParseDentry(const Json& json) {
  DentryRecord r;
  ASSIGN_OR_RETURN(r.parent, GetUnsigned(json, "parent"));
  ASSIGN_OR_RETURN(r.name, GetText(json, "name"));
  ASSIGN_OR_RETURN(r.ino, GetUnsigned(json, "ino"));
  ASSIGN_OR_RETURN(r.type, GetFileType(json));
  if (r.name.empty() || r.name.size() > kMaxFileNameBytes ||
      r.name.find_first_of(std::string_view("/\0", 2)) != std::string::npos || r.name == "." ||
      r.name == "..") {
    return InvalidArgumentError("directory entry name " + HexEncode(r.name) + " (hex) in " +
                                std::to_string(r.parent) + " is not a valid file name");
  }
  return SnapshotRecord(std::move(r));
}

Result<SnapshotRecord> ParseXattr(const Json& json) {
  SnapshotXattr r;
  ASSIGN_OR_RETURN(r.ino, GetUnsigned(json, "ino"));
  ASSIGN_OR_RETURN(r.name, GetText(json, "name"));
  ASSIGN_OR_RETURN(const Json* value, Field(json, "value"));
  if (!value->is_string()) return InvalidArgumentError("field 'value' is not base64 text");
  Result<std::string> bytes = Base64Decode(value->get<std::string>());
  if (!bytes.ok()) return bytes.status().WithContext("field 'value' of xattr " + r.name);
  r.value = std::move(bytes).value();
  return SnapshotRecord(std::move(r));
}

uint64_t& CountOf(SnapshotCounts& counts, int kind) {
  switch (kind) {
    case kApiKey:
      return counts.api_keys;
    case kS3Key:
      return counts.s3_keys;
    case kNamespace:
      return counts.namespaces;
    case kNamespaceSetting:
      return counts.namespace_settings;
    case kChunk:
      return counts.chunks;
    case kOwner:
      return counts.owners;
    case kVolume:
      return counts.volumes;
    case kInode:
      return counts.inodes;
    case kDentry:
      return counts.dentries;
    case kXattr:
      return counts.xattrs;
    default:
      return counts.objects;
  }
}

std::string DescribeCounts(const SnapshotCounts& c) {
  return std::to_string(c.api_keys) + " api keys, " + std::to_string(c.s3_keys) + " s3 keys, " +
         std::to_string(c.namespaces) + " namespaces, " + std::to_string(c.namespace_settings) +
         " namespace settings, " + std::to_string(c.chunks) + " chunks, " +
         std::to_string(c.objects) + " objects, " + std::to_string(c.owners) + " owners, " +
         std::to_string(c.volumes) + " volumes, " + std::to_string(c.inodes) + " inodes, " +
         std::to_string(c.dentries) + " directory entries, " + std::to_string(c.xattrs) + " xattrs";
}

}  // namespace

// ---- writer -------------------------------------------------------------------------------

SnapshotWriter::SnapshotWriter(SnapshotByteSink sink, std::string engine, TimestampMs created_at_ms)
    : sink_(std::move(sink)) {
  header_.engine = std::move(engine);
  header_.created_at_ms = created_at_ms;
}

Status SnapshotWriter::Begin(const SnapshotCounts& counts) {
  if (begun_) return InternalError("snapshot writer: Begin called twice");
  begun_ = true;
  header_.counts = counts;
  // The oldest version that can hold what the snapshot holds, so older binaries load it.
  header_.version = HasFileTree(counts)              ? kVolumeFormatVersion
                    : counts.owners != 0             ? kOwnersFormatVersion
                    : counts.namespace_settings != 0 ? kSettingsFormatVersion
                                                     : 1;
  OutJson header{{"format", kSnapshotFormatName},
                 {"version", header_.version},
                 {"engine", header_.engine},
                 {"created_at", FormatTimestamp(header_.created_at_ms)},
                 {"created_at_ms", header_.created_at_ms},
                 {"counts", CountsJson(counts)}};
  if (!header_.store_id.empty()) header["store_id"] = header_.store_id;
  return WriteLine(header.dump(), /*hashed=*/true);
}

Status SnapshotWriter::Visit(const SnapshotRecord& record) {
  if (!begun_) return InternalError("snapshot writer: a record before Begin");
  const int kind = static_cast<int>(record.index());
  const auto* owner = std::get_if<SnapshotOwner>(&record);
  if (owner != nullptr && !owner->sequences.empty() && header_.version < kVolumeFormatVersion) {
    // Numbered entries outside a volume: no engine writes them, and an older reader could not
    // tell them apart from a dense list.
    return InternalError("owner " + owner->owner.kind + " " + owner->owner.id +
                         " has numbered entries but the store holds no filesystem volume");
  }
  ++CountOf(written_, kind);
  OutJson json = std::visit([](const auto& r) { return RecordJson(r); }, record);
  std::string line;
  try {
    // Every text went through TextValue, so this cannot meet invalid UTF-8; metadata names
    // are valid UTF-8 by the engines' own encoding.
    line = json.dump();
  } catch (const OutJson::exception& e) {
    return InvalidArgumentError(std::string("snapshot record cannot be encoded: ") + e.what());
  }
  return WriteLine(line, /*hashed=*/true);
}

Status SnapshotWriter::Finish() {
  if (!begun_) return InternalError("snapshot writer: Finish before Begin");
  if (!(written_ == header_.counts)) {
    return InternalError("snapshot export announced " + DescribeCounts(header_.counts) +
                         " but produced " + DescribeCounts(written_));
  }
  OutJson trailer{
      {"type", "end"}, {"counts", CountsJson(written_)}, {"sha256", hasher_.Finish().ToHex()}};
  RETURN_IF_ERROR(WriteLine(trailer.dump(), /*hashed=*/false));
  return Flush();
}

Status SnapshotWriter::WriteLine(const std::string& line, bool hashed) {
  buffer_ += line;
  buffer_ += '\n';
  if (hashed) {
    hasher_.Update(line);
    hasher_.Update("\n");
  }
  if (buffer_.size() >= kFlushBytes) return Flush();
  return OkStatus();
}

Status SnapshotWriter::Flush() {
  if (buffer_.empty()) return OkStatus();
  RETURN_IF_ERROR(sink_(buffer_));
  bytes_written_ += buffer_.size();
  buffer_.clear();
  return OkStatus();
}

// ---- reader -------------------------------------------------------------------------------

SnapshotReader::SnapshotReader(SnapshotByteSource source) : source_(std::move(source)) {}

Status SnapshotReader::Fail(Status status) const {
  return Status(status.code(),
                "snapshot line " + std::to_string(line_number_) + ": " + status.message());
}

Result<std::optional<std::string>> SnapshotReader::ReadLine() {
  while (true) {
    const size_t newline = buffer_.find('\n', buffer_start_);
    if (newline != std::string::npos) {
      std::string line = buffer_.substr(buffer_start_, newline - buffer_start_);
      buffer_start_ = newline + 1;
      ++line_number_;
      return std::optional<std::string>(std::move(line));
    }
    if (buffer_.size() - buffer_start_ > kMaxSnapshotLineBytes) {
      return Fail(InvalidArgumentError("line longer than " + std::to_string(kMaxSnapshotLineBytes) +
                                       " bytes"));
    }
    if (source_done_) {
      if (buffer_start_ == buffer_.size()) return std::optional<std::string>();
      ++line_number_;
      return Fail(DataLossError("the file ends in the middle of a line (truncated)"));
    }
    buffer_.erase(0, buffer_start_);
    buffer_start_ = 0;
    const size_t old_size = buffer_.size();
    buffer_.resize(old_size + kReadBlockBytes);
    Result<size_t> n = source_(buffer_.data() + old_size, kReadBlockBytes);
    if (!n.ok()) {
      buffer_.resize(old_size);
      return n.status().WithContext("reading the snapshot");
    }
    buffer_.resize(old_size + *n);
    if (*n == 0) source_done_ = true;
  }
}

Result<SnapshotHeader> SnapshotReader::Header() {
  if (header_) return *header_;
  ASSIGN_OR_RETURN(std::optional<std::string> line, ReadLine());
  if (!line) return DataLossError("the snapshot file is empty");
  Json json = Json::parse(*line, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object() || !json.contains("format") ||
      json["format"] != std::string(kSnapshotFormatName)) {
    return FailedPreconditionError("not a cairn metadata snapshot (the first line is no " +
                                   std::string(kSnapshotFormatName) + " header)");
  }
  SnapshotHeader header;
  Result<int64_t> version = GetInt(json, "version");
  if (!version.ok()) return Fail(version.status());
  if (*version < 1 || *version > kSnapshotFormatVersion) {
    return FailedPreconditionError("snapshot format version " + std::to_string(*version) +
                                   " is not supported (this binary reads versions 1 to " +
                                   std::to_string(kSnapshotFormatVersion) + ")");
  }
  header.version = static_cast<int>(*version);
  Result<std::string> engine = GetText(json, "engine");
  Result<int64_t> created = GetInt(json, "created_at_ms");
  Result<SnapshotCounts> counts = GetCounts(json);
  if (!engine.ok()) return Fail(engine.status());
  if (!created.ok()) return Fail(created.status());
  if (!counts.ok()) return Fail(counts.status());
  header.engine = *engine;
  header.created_at_ms = *created;
  header.counts = *counts;
  if (json.contains("store_id")) {  // absent from snapshots of stores without an identity
    Result<std::string> store_id = GetText(json, "store_id");
    if (!store_id.ok()) return Fail(store_id.status());
    header.store_id = *store_id;
  }
  hasher_.Update(*line);
  hasher_.Update("\n");
  header_ = header;
  return header;
}

Result<std::optional<SnapshotRecord>> SnapshotReader::Next() {
  if (finished_) return std::optional<SnapshotRecord>();
  RETURN_IF_ERROR(Header().status());
  ASSIGN_OR_RETURN(std::optional<std::string> line, ReadLine());
  if (!line) {
    return DataLossError("the snapshot ends after line " + std::to_string(line_number_) +
                         " without its trailer (truncated)");
  }
  Json json = Json::parse(*line, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return Fail(DataLossError("not a JSON object (corrupted)"));
  Result<std::string> type = GetText(json, "type");
  if (!type.ok()) return Fail(type.status());

  if (*type == "end") {
    Result<SnapshotCounts> counts = GetCounts(json);
    Result<std::string> sha256 = GetText(json, "sha256");
    if (!counts.ok()) return Fail(counts.status());
    if (!sha256.ok()) return Fail(sha256.status());
    if (sha256.value() != hasher_.Finish().ToHex()) {
      return DataLossError("snapshot checksum mismatch: the file is corrupted");
    }
    if (!(*counts == read_) || !(header_->counts == read_)) {
      return DataLossError("snapshot holds " + DescribeCounts(read_) + " but its header says " +
                           DescribeCounts(header_->counts) + " and its trailer " +
                           DescribeCounts(*counts));
    }
    ASSIGN_OR_RETURN(std::optional<std::string> extra, ReadLine());
    if (extra) return Fail(DataLossError("data after the trailer"));
    finished_ = true;
    return std::optional<SnapshotRecord>();
  }

  int kind = -1;
  for (int i = 0; i < static_cast<int>(std::size(kKindNames)); ++i) {
    if (*type == kKindNames[i]) kind = i;
  }
  if (kind < 0) return Fail(InvalidArgumentError("unknown record type '" + *type + "'"));
  if ((kind == kNamespaceSetting && header_->version < kSettingsFormatVersion) ||
      (kind == kOwner && header_->version < kOwnersFormatVersion) ||
      (kind >= kVolume && header_->version < kVolumeFormatVersion) ||
      (kind == kOwner && json.contains("sequences") && header_->version < kVolumeFormatVersion)) {
    return Fail(InvalidArgumentError("a " + *type + " record in a version " +
                                     std::to_string(header_->version) + " snapshot"));
  }
  if (kind < last_kind_) {
    return Fail(InvalidArgumentError("a " + *type + " record after the " + kKindNames[last_kind_] +
                                     " records"));
  }
  last_kind_ = kind;
  Result<SnapshotRecord> record = InvalidArgumentError("unreachable");
  switch (kind) {
    case kApiKey:
      record = ParseApiKey(json);
      break;
    case kS3Key:
      record = ParseS3Key(json);
      break;
    case kNamespace:
      record = ParseNamespace(json);
      break;
    case kNamespaceSetting:
      record = ParseNamespaceSetting(json);
      break;
    case kChunk:
      record = ParseChunk(json);
      break;
    case kOwner:
      record = ParseOwner(json);
      break;
    case kVolume:
      if (read_.volumes != 0) return Fail(InvalidArgumentError("a second volume record"));
      record = ParseVolume(json);
      break;
    case kInode:
      record = ParseInode(json);
      break;
    case kDentry:
      record = ParseDentry(json);
      break;
    case kXattr:
      record = ParseXattr(json);
      break;
    default:
      record = ParseObject(json);
      break;
  }
  if (!record.ok()) return Fail(record.status());
  if (kind > kVolume && read_.volumes == 0) {
    return Fail(InvalidArgumentError("a " + *type + " record without a volume record"));
  }
  hasher_.Update(*line);
  hasher_.Update("\n");
  ++CountOf(read_, kind);
  return std::optional<SnapshotRecord>(std::move(record).value());
}

// ---- helpers ------------------------------------------------------------------------------

Result<SnapshotCounts> DumpSnapshot(MetaStore& store, const std::string& engine, TimestampMs now_ms,
                                    const SnapshotByteSink& sink, uint64_t* bytes_written) {
  SnapshotWriter writer(sink, engine, now_ms);
  ASSIGN_OR_RETURN(std::optional<std::string> store_id, store.GetStoreIdentity());
  if (store_id) writer.set_store_id(*store_id);
  RETURN_IF_ERROR(store.ExportSnapshot(writer, now_ms));
  RETURN_IF_ERROR(writer.Finish());
  if (bytes_written != nullptr) *bytes_written = writer.bytes_written();
  return writer.counts();
}

std::string SnapshotEngineOfUrl(const std::string& url) {
  if (url.starts_with("sqlite:")) return "sqlite";
  if (url.starts_with("postgres:") || url.starts_with("postgresql:")) return "postgres";
  if (url.starts_with("memory:")) return "memory";
  return "unknown";
}

}  // namespace cairn::meta
