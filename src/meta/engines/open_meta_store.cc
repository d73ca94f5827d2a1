#include "meta/engines/open_meta_store.h"

#include <string_view>

#include "meta/memory/memory_meta_store.h"
#include "meta/postgres/postgres_meta_store.h"
#include "meta/sqlite/sqlite_meta_store.h"

namespace cairn::meta {
namespace {

constexpr std::string_view kMemoryUrl = "memory:";
constexpr std::string_view kSqliteScheme = "sqlite://";
constexpr std::string_view kPostgresScheme = "postgres://";

}  // namespace

Result<std::unique_ptr<MetaStore>> OpenMetaStore(const std::string& url) {
  std::string_view view(url);
  if (view == kMemoryUrl) return std::unique_ptr<MetaStore>(new MemoryMetaStore());
  if (view.starts_with(kSqliteScheme)) {
    // "sqlite:///abs/x.db" leaves "/abs/x.db"; "sqlite://rel/x.db" leaves "rel/x.db".
    std::string path(view.substr(kSqliteScheme.size()));
    if (path.empty() || path == "/") {
      return InvalidArgumentError("metadata url '" + url + "' names no database file");
    }
    return OpenSqliteMetaStore(path);
  }
  if (view.starts_with(kPostgresScheme)) {
    // libpq takes the URI as it is (user, password, host, port, database, ?options).
    return OpenPostgresMetaStore(url);
  }
  return InvalidArgumentError("metadata url '" + url +
                              "' has an unknown scheme (expected memory:, sqlite:// or "
                              "postgres://)");
}

std::string RedactMetaUrl(const std::string& url) {
  if (std::string_view(url).starts_with(kPostgresScheme)) return RedactPostgresUrl(url);
  return url;
}

}  // namespace cairn::meta
