// Text encodings the SQL engines share for columns that hold small collections.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace cairn::meta::internal {

// User metadata as a JSON object of strings; kInvalidArgument if it cannot be encoded
// (e.g. invalid UTF-8), kInternal if stored text does not decode.
Result<std::string> EncodeMetadata(const std::map<std::string, std::string>& metadata);
Result<std::map<std::string, std::string>> DecodeMetadata(const std::string& text);

// A tenant list as a JSON array of strings.
Result<std::string> EncodeTenants(const std::vector<std::string>& tenants);
Result<std::vector<std::string>> DecodeTenants(const std::string& text);

}  // namespace cairn::meta::internal
