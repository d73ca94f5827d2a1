// The PostgreSQL engine's internals, shared by its source files (postgres_meta_store.cc:
// the object store; postgres_file_tree.cc: the filesystem metadata). Not for use outside
// src/meta/postgres: callers see only postgres_meta_store.h.
#pragma once

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/status.h"
#include "meta/encoding.h"
#include "meta/file_tree.h"
#include "meta/meta_checks.h"
#include "meta/meta_store.h"
#include "meta/postgres/postgres_meta_store.h"
#include "meta/row_decoding.h"

namespace cairn::meta::postgres_internal {

// Type OIDs of the binary results we decode (catalog/pg_type_d.h is a server header).
constexpr Oid kBoolOid = 16;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;

// SQLSTATEs worth a fresh attempt of the whole transaction.
inline bool IsRetryableState(std::string_view state) {
  return state == "40001" || state == "40P01";  // serialization_failure, deadlock_detected
}

// SQLSTATEs meaning "the database is not usable right now", as opposed to a bug.
inline bool IsUnavailableState(std::string_view state) {
  return state.starts_with("08") ||   // connection exception
         state.starts_with("53") ||   // insufficient resources (disk full, too many clients)
         state.starts_with("57P") ||  // admin shutdown, crash shutdown, cannot connect now
         state == "57014" ||          // query canceled (statement timeout)
         state == "55P03" ||          // lock not available (lock_timeout)
         state == "25006" ||          // read-only transaction (a standby)
         IsRetryableState(state);     // still failing after every attempt
}

// Text that PostgreSQL can hold: valid UTF-8 without NUL.
inline bool IsStorableText(std::string_view text) {
  return text.find('\0') == std::string_view::npos && IsValidUtf8(text);
}

inline Status CheckText(std::string_view what, std::string_view text) {
  if (IsStorableText(text)) return OkStatus();
  return InvalidArgumentError(std::string(what) + " (hex " + HexEncode(text.substr(0, 32)) +
                              ") is not valid UTF-8 text without NUL");
}

inline Status CheckObjectText(const ObjectRecord& r) {
  RETURN_IF_ERROR(CheckText("tenant of object " + r.id.ToString(), r.tenant));
  RETURN_IF_ERROR(CheckText("namespace of object " + r.id.ToString(), r.namespace_name));
  RETURN_IF_ERROR(CheckText("key of object " + r.id.ToString(), r.key));
  RETURN_IF_ERROR(CheckText("etag of object " + r.id.ToString(), r.etag));
  return CheckText("content type of object " + r.id.ToString(), r.content_type);
}

// 64-bit FNV-1a over the NUL-separated parts (names never contain NUL).
inline int64_t KeyLockId(const std::string& tenant, const std::string& namespace_name,
                         const std::string& key) {
  uint64_t hash = 0xcbf29ce484222325ull;
  auto mix = [&](std::string_view part) {
    for (unsigned char c : part) {
      hash ^= c;
      hash *= 0x100000001b3ull;
    }
    hash ^= 0;
    hash *= 0x100000001b3ull;
  };
  mix(tenant);
  mix(namespace_name);
  mix(key);
  return static_cast<int64_t>(hash);
}

// ---- parameters and results -----------------------------------------------------------

// Statement parameters: text and integers in text format, bytea in binary format (raw
// bytes, no escaping).
class Params {
 public:
  Params& Text(std::string_view value) { return Add(std::string(value), 0); }
  Params& Int(int64_t value) { return Add(std::to_string(value), 0); }
  Params& Bytes(std::string_view value) { return Add(std::string(value), 1); }
  Params& Id(const ObjectId& id) {
    return Bytes(std::string_view(reinterpret_cast<const char*>(id.bytes.data()), 16));
  }
  Params& Hash(const Digest& digest) {
    return Bytes(std::string_view(reinterpret_cast<const char*>(digest.bytes.data()), 32));
  }
  Params& Class(StorageClass storage_class) { return Text(StorageClassName(storage_class)); }
  Params& Null() {
    values_.emplace_back();
    null_.push_back(true);
    formats_.push_back(0);
    return *this;
  }

  int size() const { return static_cast<int>(values_.size()); }
  // Pointers stay valid while this object is not modified.
  std::vector<const char*> Values() const {
    std::vector<const char*> out;
    for (size_t i = 0; i < values_.size(); ++i) {
      out.push_back(null_[i] ? nullptr : values_[i].c_str());
    }
    return out;
  }
  std::vector<int> Lengths() const {
    std::vector<int> out;
    for (const std::string& value : values_) out.push_back(static_cast<int>(value.size()));
    return out;
  }
  const std::vector<int>& Formats() const { return formats_; }

 private:
  Params& Add(std::string value, int format) {
    values_.push_back(std::move(value));
    null_.push_back(false);
    formats_.push_back(format);
    return *this;
  }

  std::vector<std::string> values_;
  std::vector<bool> null_;
  std::vector<int> formats_;
};

// A successful statement result in binary format.
class Rows {
 public:
  explicit Rows(PGresult* result) : result_(result) {}
  Rows(Rows&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}
  Rows& operator=(Rows&& other) noexcept {
    if (this != &other) {
      PQclear(result_);
      result_ = std::exchange(other.result_, nullptr);
    }
    return *this;
  }
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;
  ~Rows() { PQclear(result_); }

  int size() const { return PQntuples(result_); }
  bool empty() const { return size() == 0; }
  // Rows inserted, updated or deleted by the statement.
  int64_t Affected() const {
    const char* text = PQcmdTuples(result_);
    return text[0] == '\0' ? 0 : std::strtoll(text, nullptr, 10);
  }

  bool IsNull(int row, int column) const { return PQgetisnull(result_, row, column) != 0; }
  std::string Bytes(int row, int column) const {
    return std::string(PQgetvalue(result_, row, column),
                       static_cast<size_t>(PQgetlength(result_, row, column)));
  }
  std::string Text(int row, int column) const { return Bytes(row, column); }
  Result<int64_t> Int(int row, int column) const {
    if (IsNull(row, column)) return int64_t{0};  // SUM over no rows
    const auto* p = reinterpret_cast<const unsigned char*>(PQgetvalue(result_, row, column));
    const int length = PQgetlength(result_, row, column);
    const Oid type = PQftype(result_, column);
    auto big_endian = [&](int bytes) {
      uint64_t value = 0;
      for (int i = 0; i < bytes; ++i) value = (value << 8) | p[i];
      return value;
    };
    if (type == kInt8Oid && length == 8) return static_cast<int64_t>(big_endian(8));
    if (type == kInt4Oid && length == 4) {
      return static_cast<int64_t>(static_cast<int32_t>(big_endian(4)));
    }
    if (type == kInt2Oid && length == 2) {
      return static_cast<int64_t>(static_cast<int16_t>(big_endian(2)));
    }
    if (type == kBoolOid && length == 1) return static_cast<int64_t>(p[0] != 0);
    return InternalError("column " + std::to_string(column) + " has type oid " +
                         std::to_string(type) + ", not an integer");
  }
  Result<ObjectId> Id(int row, int column) const {
    std::string bytes = Bytes(row, column);
    if (bytes.size() != 16) return InternalError("stored object id is not 16 bytes");
    ObjectId id;
    std::copy(bytes.begin(), bytes.end(), id.bytes.begin());
    return id;
  }
  Result<Digest> Hash(int row, int column) const {
    std::string bytes = Bytes(row, column);
    if (bytes.size() != 32) return InternalError("stored digest is not 32 bytes");
    Digest digest;
    std::copy(bytes.begin(), bytes.end(), digest.bytes.begin());
    return digest;
  }
  Result<StorageClass> Class(int row, int column) const {
    Result<StorageClass> parsed = ParseStorageClass(Text(row, column));
    if (!parsed.ok()) return InternalError("stored " + parsed.status().message());
    return parsed;
  }

 private:
  PGresult* result_;
};

// ---- connections ----------------------------------------------------------------------

// One libpq connection, used by one thread at a time (the pool hands it out).
//
// Calls never wait blindly: a server that stops answering without closing connections (a
// stopped process, a hung host) would otherwise hold the calling thread, and the request,
// forever. After each `check_every` of waiting the connection asks `still_answering`
// (the pool's probe over a fresh connection); if the server does not answer that either,
// the call fails with kUnavailable and the connection is given up. A slow statement on a
// live server keeps waiting. Without `still_answering` (the probe's own connection) the
// first `check_every` is the limit.
class Connection {
 public:
  Connection(PGconn* conn, const std::string* label, std::chrono::milliseconds check_every,
             std::function<bool()> still_answering)
      : conn_(conn),
        label_(label),
        check_every_(check_every),
        still_answering_(std::move(still_answering)) {
    // Sends never block either; Await flushes with the same checks.
    PQsetnonblocking(conn_, 1);
  }
  ~Connection() { PQfinish(conn_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool broken() const { return gave_up_ || PQstatus(conn_) != CONNECTION_OK; }
  // Whether a call was abandoned because the server stopped answering.
  bool gave_up() const { return gave_up_; }
  // The SQLSTATE of the last failed statement ("" if it succeeded or was not a server error).
  const std::string& last_state() const { return last_state_; }
  PGconn* raw() { return conn_; }

  // Runs `sql` as a prepared statement (prepared on this connection at first use) with
  // binary results.
  Result<Rows> Exec(std::string_view sql, const Params& params = Params()) {
    last_state_.clear();
    auto it = prepared_.find(sql);
    if (it == prepared_.end()) {
      std::string name = "cairn_" + std::to_string(prepared_.size() + 1);
      std::string text(sql);
      PGresult* prepared = Await(PQsendPrepare(conn_, name.c_str(), text.c_str(), 0, nullptr) == 1);
      Status status = Check(prepared, PGRES_COMMAND_OK);
      PQclear(prepared);
      if (!status.ok()) return status;
      it = prepared_.emplace(std::move(text), std::move(name)).first;
    }
    std::vector<const char*> values = params.Values();
    std::vector<int> lengths = params.Lengths();
    PGresult* result =
        Await(PQsendQueryPrepared(conn_, it->second.c_str(), params.size(), values.data(),
                                  lengths.data(), params.Formats().data(),
                                  /*resultFormat=*/1) == 1);
    const ExecStatusType kind = result != nullptr ? PQresultStatus(result) : PGRES_FATAL_ERROR;
    Status status = Check(result, kind == PGRES_TUPLES_OK ? PGRES_TUPLES_OK : PGRES_COMMAND_OK);
    if (!status.ok()) {
      PQclear(result);
      return status;
    }
    return Rows(result);
  }

  // Runs one or more statements without parameters (transaction control, migrations).
  Status Script(const char* sql) {
    last_state_.clear();
    PGresult* result = Await(PQsendQuery(conn_, sql) == 1);
    const ExecStatusType kind = result != nullptr ? PQresultStatus(result) : PGRES_FATAL_ERROR;
    Status status = Check(result, kind == PGRES_TUPLES_OK ? PGRES_TUPLES_OK : PGRES_COMMAND_OK);
    PQclear(result);
    return status;
  }

 private:
  static bool IsError(const PGresult* result) {
    const ExecStatusType kind = PQresultStatus(result);
    return kind == PGRES_FATAL_ERROR || kind == PGRES_BAD_RESPONSE;
  }

  // Waits until the socket is ready for `events`, up to check_every_; between waits asks
  // whether the server still answers. false: give up (the server stopped answering).
  bool WaitSocket(short events) {
    for (;;) {
      pollfd fd{PQsocket(conn_), events, 0};
      const int ready = ::poll(&fd, 1, static_cast<int>(check_every_.count()));
      if (ready > 0) return true;
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) return true;  // let libpq report the socket's trouble
      if (!still_answering_ || !still_answering_()) {
        gave_up_ = true;
        return false;
      }
    }
  }

  // Collects the answer to what was just sent, like PQexec: the last result, or the first
  // error. nullptr if sending failed, the connection broke, or the server stopped answering.
  PGresult* Await(bool sent) {
    if (!sent) return nullptr;
    for (;;) {
      const int flushed = PQflush(conn_);
      if (flushed == 0) break;
      if (flushed < 0 || !WaitSocket(POLLIN | POLLOUT)) return nullptr;
      if (PQconsumeInput(conn_) == 0) return nullptr;
    }
    PGresult* kept = nullptr;
    for (;;) {
      while (PQisBusy(conn_)) {
        if (!WaitSocket(POLLIN) || PQconsumeInput(conn_) == 0) {
          PQclear(kept);
          return nullptr;
        }
      }
      PGresult* next = PQgetResult(conn_);
      if (next == nullptr) return kept;
      if (kept != nullptr && IsError(kept)) {
        PQclear(next);  // the first error is the one to report
        continue;
      }
      PQclear(kept);
      kept = next;
    }
  }

  // Maps a failed result to a Status: connection trouble and lock/resource waits are
  // kUnavailable (retry later), anything else kInternal with the server's message.
  Status Check(PGresult* result, ExecStatusType expected) {
    if (result != nullptr && PQresultStatus(result) == expected) return OkStatus();
    if (gave_up_) {
      return UnavailableError("metadata database " + *label_ + " stopped answering: no reply for " +
                              std::to_string(check_every_.count()) +
                              " ms, and a new connection got none either");
    }
    std::string detail;
    if (result != nullptr) {
      const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
      if (state != nullptr) last_state_ = state;
      const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
      if (primary != nullptr) detail = primary;
    }
    if (detail.empty()) {
      detail = PQerrorMessage(conn_);
      while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) {
        detail.pop_back();
      }
    }
    if (detail.empty()) detail = "unexpected result";
    const std::string where = "metadata database " + *label_ + ": ";
    if (last_state_ == "53100") {  // disk_full: the caller's 507, as for a full chunk root
      return ResourceExhaustedError(where + detail + " (SQLSTATE 53100)");
    }
    if (broken() || IsUnavailableState(last_state_)) {
      return UnavailableError(where + detail +
                              (last_state_.empty() ? "" : " (SQLSTATE " + last_state_ + ")"));
    }
    return InternalError(where + detail +
                         (last_state_.empty() ? "" : " (SQLSTATE " + last_state_ + ")"));
  }

  PGconn* conn_;
  const std::string* label_;  // "host:port/db", owned by the pool
  const std::chrono::milliseconds check_every_;
  const std::function<bool()> still_answering_;
  bool gave_up_ = false;
  std::string last_state_;
  std::map<std::string, std::string, std::less<>> prepared_;  // sql -> statement name
};

// A bounded pool of connections to one database.
class Pool {
 public:
  Pool(std::string url, std::string label, const PostgresMetaStoreOptions& options)
      : url_(std::move(url)), label_(std::move(label)), options_(options) {}

  const std::string& label() const { return label_; }

  // An idle connection, or a new one while fewer than max_connections are open; waits up
  // to acquire_timeout_ms for one to be released.
  Result<std::unique_ptr<Connection>> Acquire() {
    {
      std::unique_lock lock(mu_);
      const auto deadline =
          std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.acquire_timeout_ms);
      if (!cv_.wait_until(lock, deadline,
                          [&] { return !idle_.empty() || open_ < options_.max_connections; })) {
        return UnavailableError(
            "metadata database " + label_ + ": all " + std::to_string(options_.max_connections) +
            " connections stayed busy for " + std::to_string(options_.acquire_timeout_ms) + " ms");
      }
      if (!idle_.empty()) {
        std::unique_ptr<Connection> conn = std::move(idle_.back());
        idle_.pop_back();
        return conn;
      }
      ++open_;
    }
    Result<std::unique_ptr<Connection>> conn = Connect();
    if (!conn.ok()) {
      {
        std::lock_guard lock(mu_);
        --open_;
      }
      cv_.notify_one();
    }
    return conn;
  }

  // Returns a connection. A broken one is closed, and so is every idle one: whatever broke
  // it (a restart, a failover) has most likely broken them too, and a fresh connection is
  // cheaper than a failed transaction.
  void Release(std::unique_ptr<Connection> conn) {
    std::vector<std::unique_ptr<Connection>> closing;
    {
      std::lock_guard lock(mu_);
      if (conn->broken() || PQtransactionStatus(conn->raw()) != PQTRANS_IDLE) {
        closing.push_back(std::move(conn));
        for (auto& idle : idle_) closing.push_back(std::move(idle));
        idle_.clear();
        open_ -= static_cast<int>(closing.size());
      } else {
        idle_.push_back(std::move(conn));
      }
    }
    cv_.notify_all();
    // `closing` is destroyed here, outside the lock (PQfinish may send a goodbye).
  }

  // Whether the server answers a fresh connection now (see Connection). One probe at a
  // time; its outcome stands for a second, so that every thread waiting at once does not
  // probe in turn.
  bool StillAnswering() {
    std::lock_guard lock(probe_mu_);
    const auto now = std::chrono::steady_clock::now();
    if (probed_ && now - probed_at_ < std::chrono::seconds(1)) return answered_;
    Result<std::unique_ptr<Connection>> probe = Connect(/*probe=*/true);
    answered_ = probe.ok() && (*probe)->Script("SELECT 1").ok();
    probed_ = true;
    probed_at_ = std::chrono::steady_clock::now();
    return answered_;
  }

  // A new connection. A probe's connection waits at most check_every for anything (its
  // connect_timeout is the shortest libpq allows, 2 s).
  Result<std::unique_ptr<Connection>> Connect(bool probe = false) {
    const std::string timeout = std::to_string(probe ? 2 : options_.connect_timeout_s);
    // Parameters after "dbname" (the expanded URL) override it; those before are defaults
    // the URL may override. Keepalives bound how long a call hangs on a server that
    // vanished without closing the connection (a partition, a powered-off host).
    const char* keywords[] = {
        "connect_timeout",  "application_name", "keepalives_idle", "keepalives_interval",
        "keepalives_count", "dbname",           "client_encoding", nullptr};
    const char* values[] = {timeout.c_str(), "cairn", "30",   "10", "3",
                            url_.c_str(),    "UTF8",  nullptr};
    PGconn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
    if (conn == nullptr) {
      return UnavailableError("cannot connect to metadata database " + label_ + ": out of memory");
    }
    if (PQstatus(conn) != CONNECTION_OK) {
      std::string detail = PQerrorMessage(conn);
      PQfinish(conn);
      std::replace(detail.begin(), detail.end(), '\n', ' ');
      while (!detail.empty() && detail.back() == ' ') detail.pop_back();
      return UnavailableError("cannot connect to metadata database " + label_ + ": " + detail);
    }
    const std::chrono::milliseconds check_every(options_.stall_check_ms);
    if (probe) return std::make_unique<Connection>(conn, &label_, check_every, nullptr);
    auto connection = std::make_unique<Connection>(conn, &label_, check_every,
                                                   [this] { return StillAnswering(); });
    // Notices (e.g. "relation already exists, skipping" from the migration) are noise;
    // libpq would print them on stderr.
    RETURN_IF_ERROR(
        connection->Script(("SET lock_timeout = " + std::to_string(options_.lock_timeout_ms) +
                            "; SET client_min_messages = warning")
                               .c_str()));
    return connection;
  }

 private:
  const std::string url_;  // may hold a password: never in a message
  const std::string label_;
  const PostgresMetaStoreOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> idle_;
  int open_ = 0;  // idle + in use
  std::mutex probe_mu_;
  bool probed_ = false;  // GUARDED_BY(probe_mu_), with the two below
  bool answered_ = false;
  std::chrono::steady_clock::time_point probed_at_;
};

enum class Mode { kRead, kWrite };

class PostgresFileTreeTransaction;  // postgres_file_tree.cc

// The store whose FileTree write body the calling thread is running (see Transact).
inline thread_local const void* t_writing_store = nullptr;

class PostgresMetaStore final : public MetaStore, public FileTree {
 public:
  PostgresMetaStore(std::unique_ptr<Pool> pool, const PostgresMetaStoreOptions& options)
      : pool_(std::move(pool)), options_(options) {}

  Status Ping() override;
  Result<std::optional<std::string>> GetStoreIdentity() override;
  Result<std::string> SetStoreIdentityIfAbsent(const std::string& id) override;
  Result<uint64_t> CountChunks() override;
  Result<std::vector<std::string>> CheckIntegrity() override;

  Status BeginUpload(const ObjectRecord& object) override;
  Status AddChunk(const ObjectId& id, uint32_t sequence, const ChunkRef& chunk,
                  TimestampMs now_ms) override;
  Result<CommitResult> CommitUpload(const ObjectId& id, const ObjectRecord& final_fields,
                                    TimestampMs now_ms) override;
  Result<CommitResult> PutCommitted(const ObjectRecord& object, const std::vector<ChunkRef>& chunks,
                                    TimestampMs now_ms) override;
  Status AbortUpload(const ObjectId& id, TimestampMs now_ms) override;

  Result<ObjectRecord> GetObject(const std::string& tenant, const ObjectId& id) override;
  Result<ObjectRecord> GetObjectByKey(const std::string& tenant, const std::string& namespace_name,
                                      const std::string& key) override;
  Result<std::vector<ChunkRef>> GetChunks(const ObjectId& id) override;
  Status SetChunkDamaged(StorageClass storage_class, const Digest& digest,
                         TimestampMs damaged_ms) override;
  Result<ListPage> ListObjects(const ListRequest& request) override;
  Result<std::vector<StatementPlan>> ExplainList(const ListRequest& request) override;

  Result<ObjectRecord> DeleteObject(const std::string& tenant, const ObjectId& id,
                                    TimestampMs now_ms) override;

  Result<std::vector<UsageRow>> Usage(const std::string& tenant) override;
  Result<std::vector<ObjectCountRow>> CountObjects() override;
  Result<std::vector<StorageBytesRow>> StorageBytes() override;
  Result<std::vector<std::string>> CheckUsageCounters() override;
  Result<std::vector<UsageCounterRow>> UsageCounts(const std::string& tenant) override;
  Result<uint64_t> RepairUsageCounters() override;
  Status CompactUsageCounters() override;

  Result<uint64_t> ReapStalledUploads(TimestampMs cutoff_ms, uint32_t limit,
                                      TimestampMs now_ms) override;
  Result<uint64_t> PurgeDeletedObjects(TimestampMs cutoff_ms, uint32_t limit) override;
  Result<std::vector<ChunkRecord>> CollectGarbageChunks(
      TimestampMs cutoff_ms, uint32_t limit,
      const std::function<Status(const ChunkRecord&)>& remove_file) override;

  Result<std::vector<FsckReferenceRow>> CheckReferences() override;
  Result<uint64_t> RepairReferences(TimestampMs now_ms) override;
  Result<std::vector<ChunkRecord>> ListChunks() override;
  Result<std::optional<ChunkRecord>> GetChunk(StorageClass storage_class,
                                              const Digest& digest) override;
  Result<std::vector<ChunkTotalsRow>> ChunkTotals() override;
  Result<std::vector<ObjectId>> FindObjectsWithChunks(StorageClass storage_class,
                                                      const std::vector<Digest>& digests) override;
  Result<std::vector<ObjectId>> DropObjectsWithChunks(StorageClass storage_class,
                                                      const std::vector<Digest>& lost,
                                                      TimestampMs now_ms) override;

  Status SetOwnerChunks(const ChunkOwner& owner, const std::vector<OwnerChunk>& chunks,
                        TimestampMs now_ms) override;
  Status DropOwnerChunks(const ChunkOwner& owner, TimestampMs now_ms) override;
  Result<std::vector<OwnerChunk>> GetOwnerChunks(const ChunkOwner& owner) override;
  Result<std::vector<ChunkOwner>> FindOwnersWithChunks(StorageClass storage_class,
                                                       const std::vector<Digest>& digests) override;
  Result<std::vector<OwnerUsageRow>> OwnerUsage(const std::string& kind) override;

  Status CreateApiKey(const ApiKeyRecord& key) override;
  Result<ApiKeyRecord> GetApiKey(const std::string& key_id) override;
  Result<std::vector<ApiKeyRecord>> ListApiKeys() override;
  Status RevokeApiKey(const std::string& key_id) override;

  Result<CommitResult> PutCommittedAndDelete(const ObjectRecord& object,
                                             const std::vector<ChunkRef>& chunks,
                                             const std::vector<ObjectId>& also_delete,
                                             TimestampMs now_ms) override;
  Result<ObjectRecord> UpdateUserMetadata(const std::string& tenant, const ObjectId& id,
                                          const std::map<std::string, std::string>& user_metadata,
                                          TimestampMs now_ms) override;
  Status CreateNamespace(const NamespaceRecord& record) override;
  Result<std::vector<NamespaceRecord>> ListNamespaces(const std::string& tenant) override;
  Result<NamespaceRecord> GetNamespace(const std::string& tenant, const std::string& name) override;
  Result<std::vector<std::string>> NamespaceOwners(const std::string& name) override;
  Result<std::vector<std::string>> NamespaceTenants() override;
  Status DeleteNamespace(const std::string& tenant, const std::string& name) override;
  Result<std::map<std::string, std::string>> GetNamespaceSettings(const std::string& tenant,
                                                                  const std::string& name) override;
  Status SetNamespaceSetting(const std::string& tenant, const std::string& name,
                             const std::string& setting, const std::optional<std::string>& value,
                             TimestampMs now) override;
  Status CreateS3Key(const S3KeyRecord& key) override;
  Result<S3KeyRecord> GetS3Key(const std::string& access_key) override;
  Result<std::vector<S3KeyRecord>> ListS3Keys() override;
  Status RevokeS3Key(const std::string& access_key) override;
  Status ReplaceS3Secrets(const std::vector<S3SecretChange>& changes) override;

  Status ExportSnapshot(SnapshotVisitor& visitor, TimestampMs now_ms) override;
  Result<SnapshotCounts> ImportSnapshot(SnapshotSource& source) override;

  // ---- FileTree (postgres_file_tree.cc) ----
  FileTree* file_tree() override { return this; }
  Result<VolumeRecord> FormatVolume(const VolumeRecord& requested,
                                    const InodeRecord& root) override;
  Result<std::optional<VolumeRecord>> GetVolume() override;
  Status Read(const std::function<Status(FileTreeTransaction&)>& body) override;
  Status Write(const std::function<Status(FileTreeTransaction&)>& body,
               TimestampMs now_ms) override;
  Status WriteRelaxed(const std::function<Status(FileTreeTransaction&)>& body,
                      TimestampMs now_ms) override;
  Status Sync() override;

 private:
  friend class PostgresFileTreeTransaction;
  static Status ExportNamespaceSettings(Connection& c, SnapshotVisitor& visitor);
  static Status ExportChunks(Connection& c, SnapshotVisitor& visitor, TimestampMs now_ms);
  static Status ExportObjects(Connection& c, SnapshotVisitor& visitor);

  // Runs `fn` in one transaction, committing if it returns OK. `fn` may run more than once
  // (deadlock, serialization failure, a pooled connection found broken before COMMIT), so
  // it must reset whatever it reports; `retry` = false runs it at most once.
  template <typename Fn>
  Status Transact(std::string_view context, Mode mode, Fn&& fn, bool retry = true) {
    // A FileTree Write body that calls back into the store would wait for a lock its own
    // transaction holds (the fs_volume row), or for a pooled connection: it fails instead.
    if (t_writing_store == this) {
      return AnnotateStorageError(
          InternalError("a write transaction of this metadata database called back into "
                        "the store, which would wait for itself"),
          context);
    }
    Status last;
    const int attempts = retry ? std::max(1, options_.max_attempts) : 1;
    for (int attempt = 1; attempt <= attempts; ++attempt) {
      Result<std::unique_ptr<Connection>> acquired = pool_->Acquire();
      if (!acquired.ok()) return AnnotateStorageError(acquired.status(), context);
      std::unique_ptr<Connection> conn = std::move(acquired).value();
      bool retryable = false;
      last = RunOnce(*conn, mode, fn, &retryable);
      pool_->Release(std::move(conn));
      if (last.ok() || !retryable) break;
      if (attempt < attempts) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5 * attempt));
      }
    }
    return AnnotateStorageError(std::move(last), context);
  }

  template <typename Fn>
  static Status RunOnce(Connection& c, Mode mode, Fn& fn, bool* retryable) {
    const char* begin = mode == Mode::kRead ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                                            : "BEGIN ISOLATION LEVEL READ COMMITTED";
    Status status = c.Script(begin);
    if (!status.ok()) {
      // Nothing ran: a stale pooled connection is simply replaced (not when the server
      // stopped answering: a new connection would only wait again).
      *retryable = c.broken() && !c.gave_up();
      return status;
    }
    status = fn(c);
    if (!status.ok()) {
      // Aborted before COMMIT, so nothing happened: a deadlock victim or a connection lost
      // mid-transaction may start over.
      *retryable = IsRetryableState(c.last_state()) || (c.broken() && !c.gave_up());
      if (!c.broken()) c.Script("ROLLBACK").IgnoreError();
      return status;
    }
    status = c.Script("COMMIT");
    if (!status.ok() && c.broken()) {
      return UnavailableError(status.message() +
                              " (connection lost during COMMIT; the outcome is unknown)");
    }
    // A server-side COMMIT failure rolled back; under READ COMMITTED it does not happen
    // for serialization reasons, but retrying it would be safe.
    *retryable = IsRetryableState(c.last_state());
    return status;
  }

  template <typename Fn>
  Status Write(std::string_view context, Fn&& fn) {
    return Transact(context, Mode::kWrite, std::forward<Fn>(fn));
  }
  template <typename Fn>
  Status Read(std::string_view context, Fn&& fn) {
    return Transact(context, Mode::kRead, std::forward<Fn>(fn));
  }

  // Helpers used inside a write transaction.
  static Status LockKey(Connection& c, const ObjectRecord& r);
  static Status InsertObject(Connection& c, const ObjectRecord& r, ObjectState state,
                             bool* inserted);
  // References to take, per (class name, digest): the order in which every transaction
  // takes and locks chunk rows.
  struct ReferenceCounts {
    struct Entry {
      uint64_t size_bytes = 0;
      int64_t references = 0;
      const std::string* block_checksums = nullptr;
    };
    std::map<std::pair<std::string_view, Digest>, Entry> entries;
    void Add(StorageClass storage_class, const ChunkRef& chunk) {
      Entry& entry = entries[{StorageClassName(storage_class), chunk.digest}];
      entry.size_bytes = chunk.size_bytes;
      entry.references += 1;
      if (!chunk.block_checksums.empty()) entry.block_checksums = &chunk.block_checksums;
    }
  };
  // The reference rule, shared by objects and generic owners: each list entry holds one
  // reference, taken and dropped by these.
  static Status TakeReferences(Connection& c, const ReferenceCounts& counts, TimestampMs now_ms);
  static Status TakeReferences(Connection& c, StorageClass storage_class,
                               const std::vector<ChunkRef>& chunks, TimestampMs now_ms);
  static Status TakeReferences(Connection& c, const std::vector<OwnerChunk>& chunks,
                               TimestampMs now_ms);
  static Status DropReferences(Connection& c, const ObjectId& id, StorageClass storage_class,
                               TimestampMs now_ms);
  static Status DropReferences(Connection& c, const ChunkOwner& owner, TimestampMs now_ms);
  // Sets the owner's entry `seq`: takes the reference on its chunk, then drops the replaced
  // entry's (so rewriting an entry with the same chunk never lets its count touch zero).
  static Status PutOwnerEntry(Connection& c, const ChunkOwner& owner, uint64_t seq,
                              const OwnerChunk& entry, TimestampMs now_ms);
  // Adds the owner's entry `seq`, which must be free (the insert fails otherwise), and
  // takes the reference on its chunk.
  static Status AddOwnerEntry(Connection& c, const ChunkOwner& owner, uint64_t seq,
                              const OwnerChunk& entry, TimestampMs now_ms);
  // Deletes the owner's entries with seq in [first, last], dropping their references.
  static Status DropOwnerEntries(Connection& c, const ChunkOwner& owner, uint64_t first,
                                 uint64_t last, TimestampMs now_ms);
  static Status ReplaceOwnerChunks(Connection& c, const ChunkOwner& owner,
                                   const std::vector<OwnerChunk>& chunks, TimestampMs now_ms);
  static Status ExportOwners(Connection& c, SnapshotVisitor& visitor);
  static Status ExportFileTree(Connection& c, SnapshotVisitor& visitor);
  // The caller holds the object's row lock and has checked it is live.
  static Status MarkDeleting(Connection& c, const ObjectId& id, StorageClass storage_class,
                             TimestampMs now_ms);
  // Makes the COMMITTED object at (tenant, namespace, key), if any, DELETING. The caller
  // holds the key lock.
  static Result<std::optional<ObjectId>> RetireObjectAtKey(Connection& c, const ObjectRecord& r,
                                                           TimestampMs now_ms);
  static Result<std::vector<FsckReferenceRow>> ReferenceRows(Connection& c);
  // The body of PutCommitted (also_delete empty) and PutCommittedAndDelete.
  static Status PutCommittedIn(Connection& c, const ObjectRecord& object,
                               const std::vector<ChunkRef>& chunks,
                               const std::vector<ObjectId>& also_delete, TimestampMs now_ms,
                               CommitResult* result);

  // Readers of the usage counters fold their change rows first, at most every few seconds
  // per process, so that a sum never reads more than a few seconds of commits.
  void CompactUsageCountersNowAndThen();
  // Folds the change rows; without `wait`, skips when another fold or repair holds the lock.
  Status FoldUsageCounters(bool wait);

  std::unique_ptr<Pool> pool_;
  const PostgresMetaStoreOptions options_;
  std::atomic<int64_t> usage_compacted_at_ms_{0};  // steady clock
  // The volume row once seen (a file tree read does not read it again: see Read).
  std::mutex volume_mu_;
  std::optional<VolumeRecord> known_volume_;
};

}  // namespace cairn::meta::postgres_internal
