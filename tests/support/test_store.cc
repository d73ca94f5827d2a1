#include <utility>  // Boost 1.74's awaitable.hpp needs it first.

#include "test_store.h"

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>

#include "auth/api_key.h"
#include "platform/clock.h"

namespace cairn::testing {

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "cairn-test-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code error;
  std::filesystem::remove_all(path_, error);
}

TestStore::TestStore(objects::ObjectServiceOptions options) {
  server::StoreConfig config;
  config.data_dir = dir_.path();
  auto stores = server::OpenStores(config);
  if (!stores.ok()) throw std::runtime_error("open stores: " + stores.status().ToString());
  stores_ = std::move(stores).value();
  objects_ = std::make_unique<objects::ObjectService>(stores_.meta.get(), stores_.chunks.get(),
                                                      platform::SystemClock(), options);
  pool_ = std::make_unique<http::BlockingPool>(0);  // inline
}

TestStore::~TestStore() {
  stores_.meta->WaitForAsyncWrites();
  pool_->Stop();
  pool_.reset();
  objects_.reset();
  stores_ = {};
}

std::string TestStore::AddApiKey(std::vector<std::string> tenants, meta::Scope scope) {
  auto key = auth::GenerateApiKey();
  if (!key.ok()) throw std::runtime_error("api key: " + key.status().ToString());
  meta::ApiKeyRecord record;
  record.key_id = key->key_id;
  record.secret_hash = auth::HashSecret(key->secret);
  record.tenants = std::move(tenants);
  record.scope = scope;
  record.created_at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  Status created = stores_.meta->CreateApiKey(record);
  if (!created.ok()) throw std::runtime_error("create api key: " + created.ToString());
  return key->full_text;
}

}  // namespace cairn::testing
