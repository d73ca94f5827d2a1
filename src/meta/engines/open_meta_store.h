// Opening a metadata engine by URL: the one place that knows every engine, so only the
// edges that open stores (server, CLI, tests, benchmarks) link them all.
#pragma once

#include <memory>
#include <string>

#include "meta/meta_store.h"

namespace cairn::meta {

// Opens the engine named by `url`: "memory:" (the model engine, for tests),
// "sqlite:///abs/path/meta.db" / "sqlite://relative/path.db", or "postgres://...".
// Applies migrations.
Result<std::unique_ptr<MetaStore>> OpenMetaStore(const std::string& url);

// `url` as it may be printed: a PostgreSQL password is replaced by "***".
std::string RedactMetaUrl(const std::string& url);

}  // namespace cairn::meta
