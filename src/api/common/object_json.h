// The object JSON of docs/api.md, written once for every API that shows objects (the
// native API, the console).
#pragma once

#include <nlohmann/json.hpp>

#include "meta/records.h"

namespace cairn::api {

nlohmann::json ObjectJson(const meta::ObjectRecord& object);

}  // namespace cairn::api
