#include "api/common/object_json.h"

namespace cairn::api {

nlohmann::json ObjectJson(const meta::ObjectRecord& object) {
  return nlohmann::json{{"id", object.id.ToString()},
                        {"namespace", object.namespace_name},
                        {"tenant_id", object.tenant},
                        {"key", object.key},
                        {"content_hash", "sha256:" + object.content_hash.ToHex()},
                        {"size_bytes", object.size_bytes},
                        {"storage_class", std::string(StorageClassName(object.storage_class))},
                        {"content_type", object.content_type},
                        {"etag", object.etag},
                        {"created_at", FormatTimestamp(object.created_at_ms)}};
}

}  // namespace cairn::api
