#include "meta/snapshot.h"

#include "core/base64.h"
#include "core/block_checksums.h"

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
enum Kind { kApiKey = 0, kS3Key, kNamespace, kNamespaceSetting, kChunk, kObject, kOwner };
constexpr const char* kKindNames[] = {"api_key", "s3_key", "namespace", "namespace_setting",
                                      "chunk",   "object", "owner"};
static_assert(std::variant_size_v<SnapshotRecord> == std::size(kKindNames));
static_assert(std::is_same_v<std::variant_alternative_t<kNamespaceSetting, SnapshotRecord>,
                             NamespaceSettingRecord>);
static_assert(std::is_same_v<std::variant_alternative_t<kObject, SnapshotRecord>, SnapshotObject>);
static_assert(std::is_same_v<std::variant_alternative_t<kOwner, SnapshotRecord>, SnapshotOwner>);

// The first version with namespace_setting records. A snapshot without any is written as
// version 1, byte for byte what binaries before them wrote, so that they can load it.
constexpr int kSettingsFormatVersion = 2;
// The first version with owner records; written only when there are owners, so a snapshot
// without any stays readable by binaries that know versions 1 and 2 only.
constexpr int kOwnersFormatVersion = 3;
static_assert(kOwnersFormatVersion == kSnapshotFormatVersion);

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
  return OutJson{{"type", kKindNames[kOwner]},
                 {"kind", TextValue(s.owner.kind)},
                 {"id", TextValue(s.owner.id)},
                 {"chunks", std::move(chunks)}};
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
  return SnapshotRecord(std::move(s));
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
    default:
      return counts.objects;
  }
}

std::string DescribeCounts(const SnapshotCounts& c) {
  return std::to_string(c.api_keys) + " api keys, " + std::to_string(c.s3_keys) + " s3 keys, " +
         std::to_string(c.namespaces) + " namespaces, " + std::to_string(c.namespace_settings) +
         " namespace settings, " + std::to_string(c.chunks) + " chunks, " +
         std::to_string(c.objects) + " objects, " + std::to_string(c.owners) + " owners";
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
  header_.version = counts.owners != 0               ? kOwnersFormatVersion
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
      (kind == kOwner && header_->version < kOwnersFormatVersion)) {
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
    default:
      record = ParseObject(json);
      break;
  }
  if (!record.ok()) return Fail(record.status());
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
