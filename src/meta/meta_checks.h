// Input checks shared by every MetaStore engine, so that each engine rejects exactly the
// same inputs with the same codes (the conformance suite compares engines result by result).
// Internal to src/meta.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/types.h"
#include "meta/meta_store.h"

namespace cairn::meta::internal {

inline constexpr uint32_t kMaxListLimit = 10000;

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

inline Status CheckListRequest(const ListRequest& request) {
  if (request.limit < 1 || request.limit > kMaxListLimit) {
    return InvalidArgumentError("list limit " + std::to_string(request.limit) +
                                " is outside 1..10000");
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

}  // namespace cairn::meta::internal
