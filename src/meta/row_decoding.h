// Row decoders shared by the SQL engines. Each engine adapts its own row type (a SQLite
// statement, a row of a libpq result) to the few column readers below; the decoding of
// objects, chunks and keys, with its validation and its messages, is written once here.
//
// A Row offers, for a 0-based column: IsNull, Text and Bytes (std::string), and Int,
// Hash, Class and Id (Result<int64_t>, Result<Digest>, Result<StorageClass>,
// Result<ObjectId>), failing with a message that names the column's content.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "meta/encoding.h"
#include "meta/records.h"

namespace cairn::meta {

// Storage failures get the operation prepended; the store's own kNotFound etc. already
// name their input.
inline Status AnnotateStorageError(Status status, std::string_view context) {
  if (status.code() == StatusCode::kInternal || status.code() == StatusCode::kUnavailable) {
    return status.WithContext(context);
  }
  return status;
}

inline Status NotWritingError(const ObjectId& id) {
  return NotFoundError("no upload in progress with id " + id.ToString());
}

inline Status NoSuchObjectError(const ObjectId& id) {
  return NotFoundError("object " + id.ToString() + " not found");
}

// A row selected with the engines' object columns: id, tenant, namespace, key, state,
// storage_class, size_bytes, content_hash, etag, content_type, user_metadata (or NULL),
// created_at_ms, updated_at_ms, inline_data (or NULL).
template <typename Row>
Result<ObjectRecord> DecodeObjectRow(const Row& row) {
  ObjectRecord r;
  ASSIGN_OR_RETURN(r.id, row.Id(0));
  r.tenant = row.Text(1);
  r.namespace_name = row.Text(2);
  r.key = row.Text(3);
  Result<ObjectState> state = ParseObjectState(row.Text(4));
  if (!state.ok()) return InternalError("object " + r.id.ToString() + ": stored state invalid");
  r.state = *state;
  ASSIGN_OR_RETURN(r.storage_class, row.Class(5));
  ASSIGN_OR_RETURN(int64_t size, row.Int(6));
  r.size_bytes = static_cast<uint64_t>(size);
  ASSIGN_OR_RETURN(r.content_hash, row.Hash(7));
  r.etag = row.Text(8);
  r.content_type = row.Text(9);
  if (!row.IsNull(10)) {
    Result<std::map<std::string, std::string>> metadata = internal::DecodeMetadata(row.Text(10));
    if (!metadata.ok()) return metadata.status().WithContext("object " + r.id.ToString());
    r.user_metadata = std::move(metadata).value();
  }
  ASSIGN_OR_RETURN(r.created_at_ms, row.Int(11));
  ASSIGN_OR_RETURN(r.updated_at_ms, row.Int(12));
  if (!row.IsNull(13)) r.inline_data = row.Bytes(13);
  return r;
}

// storage_class, digest, size_bytes, ref_count, zero_since_ms, block_checksums (or NULL),
// damaged_ms.
template <typename Row>
Result<ChunkRecord> DecodeChunkRow(const Row& row) {
  ChunkRecord chunk;
  ASSIGN_OR_RETURN(chunk.storage_class, row.Class(0));
  ASSIGN_OR_RETURN(chunk.digest, row.Hash(1));
  ASSIGN_OR_RETURN(int64_t size, row.Int(2));
  chunk.size_bytes = static_cast<uint64_t>(size);
  ASSIGN_OR_RETURN(chunk.ref_count, row.Int(3));
  ASSIGN_OR_RETURN(chunk.zero_since_ms, row.Int(4));
  if (!row.IsNull(5)) chunk.block_checksums = row.Bytes(5);
  ASSIGN_OR_RETURN(chunk.damaged_ms, row.Int(6));
  return chunk;
}

// key_id, secret_hash, tenants, scope, created_at_ms, revoked, description.
template <typename Row>
Result<ApiKeyRecord> DecodeApiKeyRow(const Row& row) {
  ApiKeyRecord key;
  key.key_id = row.Text(0);
  ASSIGN_OR_RETURN(key.secret_hash, row.Hash(1));
  ASSIGN_OR_RETURN(key.tenants, internal::DecodeTenants(row.Text(2)));
  Result<Scope> scope = ParseScope(row.Text(3));
  if (!scope.ok()) return InternalError("api key " + key.key_id + ": stored scope invalid");
  key.scope = *scope;
  ASSIGN_OR_RETURN(key.created_at_ms, row.Int(4));
  ASSIGN_OR_RETURN(int64_t revoked, row.Int(5));
  key.revoked = revoked != 0;
  key.description = row.Text(6);
  return key;
}

// access_key, secret (as stored), tenants, scope, created_at_ms, revoked, description.
template <typename Row>
Result<S3KeyRecord> DecodeS3KeyRow(const Row& row) {
  S3KeyRecord key;
  key.access_key = row.Text(0);
  key.secret = row.Text(1);
  ASSIGN_OR_RETURN(key.tenants, internal::DecodeTenants(row.Text(2)));
  Result<Scope> scope = ParseScope(row.Text(3));
  if (!scope.ok()) return InternalError("S3 key " + key.access_key + ": stored scope invalid");
  key.scope = *scope;
  ASSIGN_OR_RETURN(key.created_at_ms, row.Int(4));
  ASSIGN_OR_RETURN(int64_t revoked, row.Int(5));
  key.revoked = revoked != 0;
  key.description = row.Text(6);
  return key;
}

}  // namespace cairn::meta
