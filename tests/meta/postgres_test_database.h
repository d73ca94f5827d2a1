// PostgreSQL for the metadata tests: the test server named by CAIRN_TEST_POSTGRES_URL
// (scripts/postgres-test-server.sh starts one), a fresh database per test, and raw SQL
// access from outside the engine. Shared by tests/meta and tests/meta_s3; tests that need
// PostgreSQL call SKIP_WITHOUT_POSTGRES() so that, without a server, they are skipped
// visibly instead of passing silently.
#pragma once

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/types.h"

namespace cairn::meta::pgtest {

inline constexpr const char* kPostgresUrlVariable = "CAIRN_TEST_POSTGRES_URL";

// The test server's URL, or "" when PostgreSQL tests are to be skipped.
inline std::string PostgresUrl() {
  const char* url = std::getenv(kPostgresUrlVariable);
  return url != nullptr ? url : "";
}

#define SKIP_WITHOUT_POSTGRES()                                                           \
  do {                                                                                    \
    if (::cairn::meta::pgtest::PostgresUrl().empty()) {                                   \
      GTEST_SKIP() << ::cairn::meta::pgtest::kPostgresUrlVariable                         \
                   << " is not set; start a server with scripts/postgres-test-server.sh"; \
    }                                                                                     \
  } while (false)

// `url` with its database replaced by `database`.
inline std::string WithDatabase(const std::string& url, const std::string& database) {
  const size_t authority = url.find("://") + 3;
  const size_t path = url.find_first_of("/?", authority);
  if (path == std::string::npos) return url + "/" + database;
  const size_t query = url.find('?', path);
  return url.substr(0, path) + "/" + database +
         (query == std::string::npos ? "" : url.substr(query));
}

// Executes SQL against a PostgreSQL database from outside the engine (for damage,
// inspection and administration). Parameters are text, or bytea when given as bytes.
class RawPostgres {
 public:
  explicit RawPostgres(const std::string& url) : conn_(PQconnectdb(url.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) {
      ADD_FAILURE() << "cannot connect to the test server: " << PQerrorMessage(conn_);
    }
  }
  ~RawPostgres() { PQfinish(conn_); }
  RawPostgres(const RawPostgres&) = delete;
  RawPostgres& operator=(const RawPostgres&) = delete;

  struct Param {
    bool binary = false;
    std::string bytes;
  };
  static Param Text(std::string s) { return Param{false, std::move(s)}; }
  static Param Int(int64_t n) { return Param{false, std::to_string(n)}; }
  static Param Blob(const Digest& d) {
    return Param{true, std::string(d.bytes.begin(), d.bytes.end())};
  }

  // Runs `sql` and returns every row, each column as text ("" for NULL).
  std::vector<std::vector<std::string>> Rows(const std::string& sql,
                                             const std::vector<Param>& params = {}) {
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    for (const Param& p : params) {
      values.push_back(p.bytes.c_str());
      lengths.push_back(static_cast<int>(p.bytes.size()));
      formats.push_back(p.binary ? 1 : 0);
    }
    PGresult* result = PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr,
                                    values.data(), lengths.data(), formats.data(), 0);
    std::vector<std::vector<std::string>> rows;
    const ExecStatusType status = PQresultStatus(result);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      ADD_FAILURE() << sql << ": " << PQerrorMessage(conn_);
    } else {
      for (int r = 0; r < PQntuples(result); ++r) {
        std::vector<std::string> row;
        for (int c = 0; c < PQnfields(result); ++c) row.emplace_back(PQgetvalue(result, r, c));
        rows.push_back(std::move(row));
      }
    }
    PQclear(result);
    return rows;
  }

  // The first column of the first row ("" if none).
  std::string Query(const std::string& sql, const std::vector<Param>& params = {}) {
    std::vector<std::vector<std::string>> rows = Rows(sql, params);
    return rows.empty() || rows[0].empty() ? "" : rows[0][0];
  }

  void Exec(const std::string& sql, const std::vector<Param>& params = {}) { Rows(sql, params); }

 private:
  PGconn* conn_;
};

// A fresh database on the test server for one test, dropped (with any connections left)
// when this goes out of scope.
class PostgresDatabase {
 public:
  PostgresDatabase() {
    static std::atomic<int> counter{0};
    std::random_device random;
    name_ = "cairn_t_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + "_" +
            std::to_string(random() % 1000000);
    RawPostgres admin(PostgresUrl());
    admin.Exec("CREATE DATABASE " + name_);
    url_ = WithDatabase(PostgresUrl(), name_);
  }
  ~PostgresDatabase() {
    RawPostgres admin(PostgresUrl());
    admin.Exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  }
  PostgresDatabase(const PostgresDatabase&) = delete;
  PostgresDatabase& operator=(const PostgresDatabase&) = delete;

  const std::string& name() const { return name_; }
  const std::string& url() const { return url_; }

 private:
  std::string name_;
  std::string url_;
};

}  // namespace cairn::meta::pgtest
