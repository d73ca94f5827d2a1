// A whole store for tests, in a temporary directory removed at the end: the real SQLite
// metadata store and chunk store (server::OpenStores), an ObjectService over them, and a
// BlockingPool that runs its work inline (no threads).
#pragma once

#include <utility>  // Boost 1.74's awaitable.hpp needs it first.

#include <memory>
#include <string>
#include <vector>

#include "http/blocking_pool.h"
#include "meta/meta_store.h"
#include "objects/object_service.h"
#include "server/app.h"

namespace cairn::testing {

// A fresh directory under the system temporary directory, removed with its contents.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class TestStore {
 public:
  explicit TestStore(objects::ObjectServiceOptions options = {});
  ~TestStore();
  TestStore(const TestStore&) = delete;
  TestStore& operator=(const TestStore&) = delete;

  // Creates an API key with this scope over these tenants; returns what a client presents.
  std::string AddApiKey(std::vector<std::string> tenants, meta::Scope scope);

  meta::MetaStore* meta() { return stores_.meta.get(); }
  chunks::ChunkStore* chunks() { return stores_.chunks.get(); }
  objects::ObjectService* objects() { return objects_.get(); }
  http::BlockingPool* pool() { return pool_.get(); }
  const std::string& dir() const { return dir_.path(); }
  server::Stores* stores() { return &stores_; }

 private:
  TempDir dir_;
  server::Stores stores_;
  std::unique_ptr<objects::ObjectService> objects_;
  std::unique_ptr<http::BlockingPool> pool_;
};

}  // namespace cairn::testing
