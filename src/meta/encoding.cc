#include "meta/encoding.h"

#include <nlohmann/json.hpp>
#include <string_view>

namespace cairn::meta::internal {

// Most objects carry no user metadata: "{}" is what the JSON library writes for them and
// reads back as empty, without building a document each time.
constexpr std::string_view kNoMetadata = "{}";

Result<std::string> EncodeMetadata(const std::map<std::string, std::string>& metadata) {
  if (metadata.empty()) return std::string(kNoMetadata);
  nlohmann::json json = nlohmann::json::object();
  for (const auto& [name, value] : metadata) json[name] = value;
  try {
    return json.dump();
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgumentError(std::string("user metadata cannot be encoded: ") + e.what());
  }
}

Result<std::map<std::string, std::string>> DecodeMetadata(const std::string& text) {
  if (text == kNoMetadata) return std::map<std::string, std::string>();
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return InternalError("stored user metadata is not a JSON object");
  std::map<std::string, std::string> metadata;
  for (const auto& [name, value] : json.items()) {
    if (!value.is_string()) return InternalError("stored user metadata value is not a string");
    metadata.emplace(name, value.get<std::string>());
  }
  return metadata;
}

Result<std::string> EncodeTenants(const std::vector<std::string>& tenants) {
  try {
    return nlohmann::json(tenants).dump();
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgumentError(std::string("api key tenants cannot be encoded: ") + e.what());
  }
}

Result<std::vector<std::string>> DecodeTenants(const std::string& text) {
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_array()) return InternalError("stored api key tenants are not a JSON array");
  std::vector<std::string> tenants;
  for (const auto& value : json) {
    if (!value.is_string()) return InternalError("stored api key tenant is not a string");
    tenants.push_back(value.get<std::string>());
  }
  return tenants;
}

}  // namespace cairn::meta::internal
