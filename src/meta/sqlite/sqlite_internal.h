// The SQLite engine's internals, shared by its source files (sqlite_meta_store.cc: the
// object store; sqlite_file_tree.cc: the filesystem metadata). Not for use outside
// src/meta/sqlite: callers see only sqlite_meta_store.h.
#pragma once

#include <sqlite3.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
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
#include "meta/file_tree.h"
#include "meta/meta_store.h"
#include "meta/row_decoding.h"
#include "platform/space_reserve.h"

namespace cairn::meta::sqlite_internal {

// At open, failures to reach the file (missing directory, permissions, I/O, locks held
// past the timeout) mean the database is unavailable rather than that we have a bug.
Status OpenError(int rc, const std::string& path, const std::string& detail);

class Connection;

// A cached prepared statement borrowed for one use: reset (and unbound) when it goes out of
// scope, so it can be reused by the next caller on the same connection.
class Statement {
 public:
  Statement(Connection* conn, sqlite3_stmt* stmt) : conn_(conn), stmt_(stmt) {}
  Statement(Statement&& other) noexcept
      : conn_(other.conn_),
        stmt_(std::exchange(other.stmt_, nullptr)),
        bind_error_(other.bind_error_) {}
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& operator=(Statement&&) = delete;
  ~Statement() {
    if (stmt_ != nullptr) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }

  Statement& Int(int index, int64_t value) {
    Check(sqlite3_bind_int64(stmt_, index, value));
    return *this;
  }
  Statement& Text(int index, std::string_view value) {
    Check(sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT,
                              SQLITE_UTF8));
    return *this;
  }
  Statement& Blob(int index, std::string_view value) {
    // A zero-length blob must not become NULL (bind_blob treats a null pointer as NULL).
    if (value.empty()) {
      Check(sqlite3_bind_zeroblob(stmt_, index, 0));
    } else {
      Check(sqlite3_bind_blob64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT));
    }
    return *this;
  }
  Statement& Id(int index, const ObjectId& id) {
    return Blob(index, std::string_view(reinterpret_cast<const char*>(id.bytes.data()), 16));
  }
  Statement& Hash(int index, const Digest& digest) {
    return Blob(index, std::string_view(reinterpret_cast<const char*>(digest.bytes.data()), 32));
  }
  Statement& Class(int index, StorageClass storage_class) {
    return Text(index, StorageClassName(storage_class));
  }
  Statement& Null(int index) {
    Check(sqlite3_bind_null(stmt_, index));
    return *this;
  }

  // True when a row is available, false when the statement is done.
  Result<bool> Step();
  // Runs a statement that returns no rows (or whose rows are not needed), then resets it
  // so it can be bound and run again.
  Status Run();
  // Ends the current execution early so the statement can be bound and stepped again.
  void Reset() { sqlite3_reset(stmt_); }

  bool IsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  int64_t ColumnInt(int column) const { return sqlite3_column_int64(stmt_, column); }
  std::string ColumnText(int column) const {
    const unsigned char* text = sqlite3_column_text(stmt_, column);
    if (text == nullptr) return std::string();
    return std::string(reinterpret_cast<const char*>(text),
                       static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
  }
  std::string ColumnBlob(int column) const {
    const void* blob = sqlite3_column_blob(stmt_, column);
    if (blob == nullptr) return std::string();
    return std::string(static_cast<const char*>(blob),
                       static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
  }
  Result<ObjectId> ColumnId(int column) const {
    std::string bytes = ColumnBlob(column);
    if (bytes.size() != 16) return InternalError("stored object id is not 16 bytes");
    ObjectId id;
    std::copy(bytes.begin(), bytes.end(), id.bytes.begin());
    return id;
  }
  Result<Digest> ColumnDigest(int column) const {
    std::string bytes = ColumnBlob(column);
    if (bytes.size() != 32) return InternalError("stored digest is not 32 bytes");
    Digest digest;
    std::copy(bytes.begin(), bytes.end(), digest.bytes.begin());
    return digest;
  }
  Result<StorageClass> ColumnClass(int column) const {
    Result<StorageClass> parsed = ParseStorageClass(ColumnText(column));
    if (!parsed.ok()) return InternalError("stored " + parsed.status().message());
    return parsed;
  }

 private:
  // Remembers the first binding failure; Step reports it.
  void Check(int rc) {
    if (rc != SQLITE_OK && bind_error_ == SQLITE_OK) bind_error_ = rc;
  }

  Connection* conn_;
  sqlite3_stmt* stmt_;
  int bind_error_ = SQLITE_OK;
};

class Connection {
 public:
  static Result<std::unique_ptr<Connection>> Open(const std::string& path, bool writer,
                                                  int busy_timeout_ms);
  ~Connection() {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // The cached prepared statement for `sql`, prepared on first use.
  Result<Statement> Prepare(std::string_view sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
      sqlite3_stmt* stmt = nullptr;
      int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                  SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
      if (rc != SQLITE_OK) return Error(rc);
      it = cache_.emplace(std::string(sql), stmt).first;
    }
    return Statement(this, it->second);
  }

  Status Run(std::string_view sql) {
    ASSIGN_OR_RETURN(Statement stmt, Prepare(sql));
    return stmt.Run();
  }

  // Runs a script of several statements (migrations); not cached.
  Status Script(const char* sql) {
    char* message = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &message);
    sqlite3_free(message);
    return rc == SQLITE_OK ? OkStatus() : Error(rc);
  }

  // Maps a SQLite failure to a Status: lock contention beyond busy_timeout is kUnavailable
  // (retry later); so is failing to reach the file while opening; anything else is
  // kInternal with SQLite's message.
  Status Error(int rc) const {
    std::string detail = sqlite3_errmsg(db_);
    if (detail.empty() || detail == "not an error") detail = sqlite3_errstr(rc);
    if (opening_) return OpenError(rc, path_, detail);
    const int primary = rc & 0xff;
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
      return UnavailableError("metadata database " + path_ + " is busy: " + detail);
    }
    // A full disk is the caller's 507, whichever layer meets it first.
    const int system_errno = sqlite3_system_errno(db_);
    if (primary == SQLITE_FULL ||
        (primary == SQLITE_IOERR && (system_errno == ENOSPC || system_errno == EDQUOT))) {
      return ResourceExhaustedError("metadata database " + path_ + ": no space left: " + detail);
    }
    return InternalError("metadata database " + path_ + ": " + detail + " (sqlite code " +
                         std::to_string(rc) + ")");
  }

  // Called once the connection is configured and migrated.
  void FinishOpening() { opening_ = false; }
  // A reader that belongs to one thread for good, not to the shared pool.
  void set_thread_owned() { thread_owned_ = true; }
  bool thread_owned() const { return thread_owned_; }
  bool InOpenTransaction() const { return sqlite3_get_autocommit(db_) == 0; }
  sqlite3* db() { return db_; }
  int64_t Changes() const { return sqlite3_changes64(db_); }
  int64_t LastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }
  const std::string& path() const { return path_; }

 private:
  Connection(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  sqlite3* db_;
  std::string path_;
  bool thread_owned_ = false;
  bool opening_ = true;
  std::map<std::string, sqlite3_stmt*, std::less<>> cache_;
};

// Runs `fn` in one transaction on `conn`, committing if it succeeds.
template <typename Fn>
Status RunTransaction(Connection& conn, std::string_view begin, Fn&& fn) {
  RETURN_IF_ERROR(conn.Run(begin));
  Status status = fn(conn);
  if (status.ok()) status = conn.Run("COMMIT");
  // Some errors make SQLite roll back on its own; only roll back what is still open.
  if (!status.ok() && conn.InOpenTransaction()) conn.Run("ROLLBACK").IgnoreError();
  return status;
}

class SqliteFileTreeTransaction;  // sqlite_file_tree.cc

// The thread running a batch of write transactions, with the store it writes (see Enqueue).
inline thread_local const void* t_writing_store = nullptr;
// The thread running a brief read on the writer connection, with its store (ReadBrief): it
// holds the writer's mutex, so a write from inside its body would wait for itself.
inline thread_local const void* t_brief_reading_store = nullptr;

class SqliteMetaStore final : public MetaStore, public FileTree {
 public:
  SqliteMetaStore(std::unique_ptr<Connection> writer, std::unique_ptr<Connection> checkpointer,
                  std::vector<std::unique_ptr<Connection>> readers, std::string path,
                  int busy_timeout_ms)
      : writer_(std::move(writer)),
        checkpoint_conn_(std::move(checkpointer)),
        path_(std::move(path)),
        busy_timeout_ms_(busy_timeout_ms),
        serial_(NextStoreSerial()),
        readers_(std::move(readers)) {
    for (auto& reader : readers_) free_readers_.push_back(reader.get());
    // Replaces SQLite's automatic checkpoint (see OnWalCommit).
    sqlite3_wal_hook(writer_->db(), &SqliteMetaStore::OnWalCommit, this);
    checkpointer_ = std::thread([this] { CheckpointLoop(); });
  }

  // Takes the space reserve (released at once if the disk is already too full for it).
  void SetReserve(std::unique_ptr<platform::SpaceReserve> reserve) {
    reserve_released_.store(!reserve->TryHold());
    reserve_ = std::move(reserve);
  }

  ~SqliteMetaStore() override {
    {
      std::lock_guard lock(queue_mu_);
      stopping_ = true;
    }
    committer_wake_.notify_one();
    if (committer_.joinable()) committer_.join();
    {
      std::lock_guard lock(checkpoint_mu_);
      checkpoint_stopping_ = true;
    }
    checkpoint_wake_.notify_one();
    checkpointer_.join();
  }

  // ---- checkpoints ----
  // SQLite's automatic checkpoint runs inside the COMMIT that takes the WAL past 1000
  // pages, so the whole batch of writers in that commit waits for it. Instead the WAL hook
  // wakes a thread that checkpoints on its own connection, PASSIVE (it waits for neither
  // the writer nor readers). The WAL is only rewound when a write begins with every frame
  // copied, which under sustained writes the thread may never manage at that instant; so
  // past kInlineCheckpointFrames the committing writer checkpoints what is left itself,
  // as SQLite would, by then little since the thread has copied most of it. The WAL stays
  // bounded by that (plus one batch).
  // The thread is woken once per kBackgroundCheckpointFrames new frames, not at every
  // commit past the first 1000: each checkpoint fdatasyncs the WAL and the database, and
  // woken at every commit of a stream of small ones (a mount creating files) it ran one
  // checkpoint per commit, two fdatasyncs per file, copying a few pages each time.
  static constexpr int kBackgroundCheckpointFrames = 1000;
  static constexpr int kInlineCheckpointFrames = 8000;

  // Called by SQLite on the writer's thread after each commit, with the WAL's page count.
  static int OnWalCommit(void* self, sqlite3* db, const char* name, int frames) {
    auto* store = static_cast<SqliteMetaStore*>(self);
    // Only the writer's thread runs this hook: no lock for the mark.
    if (frames < store->wal_frames_at_wake_) store->wal_frames_at_wake_ = 0;  // rewound
    if (frames >= kInlineCheckpointFrames) {
      // Errors are left for the next one, as with SQLite's own automatic checkpoint.
      (void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    } else if (frames >= kBackgroundCheckpointFrames &&
               frames - store->wal_frames_at_wake_ >= kBackgroundCheckpointFrames) {
      store->wal_frames_at_wake_ = frames;
      {
        std::lock_guard lock(store->checkpoint_mu_);
        store->checkpoint_wanted_ = true;
      }
      store->checkpoint_wake_.notify_one();
    }
    return SQLITE_OK;
  }

  void CheckpointLoop() {
    std::unique_lock lock(checkpoint_mu_);
    for (;;) {
      checkpoint_wake_.wait(lock, [this] { return checkpoint_wanted_ || checkpoint_stopping_; });
      if (checkpoint_stopping_) return;
      checkpoint_wanted_ = false;
      lock.unlock();
      (void)sqlite3_wal_checkpoint_v2(checkpoint_conn_->db(), "main", SQLITE_CHECKPOINT_PASSIVE,
                                      nullptr, nullptr);
      lock.lock();
    }
  }

  // In WAL mode a reader never waits for the writer, and each thread reads on its own
  // connection, so a point read waits for nothing but this machine's page cache or disk.
  bool point_reads_are_local() const override { return true; }

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
  bool PutCommittedAsync(ObjectRecord&& object, TimestampMs now_ms,
                         std::function<void(Result<CommitResult>)> done) override;
  void WaitForAsyncWrites() override {
    std::unique_lock lock(queue_mu_);
    async_drained_.wait(lock, [this] { return async_writes_ == 0; });
  }
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

  Status CreateApiKey(const ApiKeyRecord& key) override;
  Result<ApiKeyRecord> GetApiKey(const std::string& key_id) override;
  Result<std::vector<ApiKeyRecord>> ListApiKeys() override;
  Status RevokeApiKey(const std::string& key_id) override;

  Status ExportSnapshot(SnapshotVisitor& visitor, TimestampMs now_ms) override;
  Result<SnapshotCounts> ImportSnapshot(SnapshotSource& source) override;

  // ---- FileTree (sqlite_file_tree.cc) ----
  FileTree* file_tree() override { return this; }
  Result<VolumeRecord> FormatVolume(const VolumeRecord& requested,
                                    const InodeRecord& root) override;
  Result<std::optional<VolumeRecord>> GetVolume() override;
  Status Read(const std::function<Status(FileTreeTransaction&)>& body) override;
  Status ReadBrief(const std::function<Status(FileTreeTransaction&)>& body) override;
  Status Write(const std::function<Status(FileTreeTransaction&)>& body,
               TimestampMs now_ms) override;
  Status WriteRelaxed(const std::function<Status(FileTreeTransaction&)>& body,
                      TimestampMs now_ms) override;
  Status WriteFreeing(const std::function<Status(FileTreeTransaction&)>& body,
                      TimestampMs now_ms) override;
  Status Sync() override;

 private:
  friend class SqliteFileTreeTransaction;
  static Status ImportRecord(Connection& c, const SnapshotRecord& record);
  // The start of a file tree transaction: the volume as known, and whether it was read
  // just now (sqlite_file_tree.cc).
  struct FileTreeStart {
    VolumeRecord volume;
    bool fresh = false;
  };
  Result<FileTreeStart> StartFileTree(Connection& c);
  std::function<Status(Connection&)> FileTreeReader(
      const std::function<Status(FileTreeTransaction&)>& body);
  std::function<Status(Connection&)> FileTreeWriter(
      const std::function<Status(FileTreeTransaction&)>& body, TimestampMs now_ms);
  std::mutex volume_mu_;
  std::optional<VolumeRecord> known_volume_;  // GUARDED_BY(volume_mu_); never unset
  static Status ExportObjects(Connection& c, SnapshotVisitor& visitor);
  static Status ExportOwners(Connection& c, SnapshotVisitor& visitor);
  static Status ExportFileTree(Connection& c, SnapshotVisitor& visitor);
  // One write transaction on the writer connection. BEGIN IMMEDIATE takes the database
  // write lock up front, so the transaction cannot fail half-way on lock upgrade when
  // another process (e.g. an offline fsck) also writes.
  //
  // Group commit: concurrent writers queue up; one of them (the leader) runs everything
  // queued in one transaction, each write inside its own SAVEPOINT so that one failing
  // write rolls back alone, and commits once: one fsync for the whole batch. A write's
  // result is only reported after that COMMIT, so nothing is acknowledged before it is
  // durable; if the COMMIT fails, every write of the batch fails. An asynchronous write
  // (PutCommittedAsync) waits in the same queue with no thread parked on it: when it
  // heads the queue the committer thread leads, and its result is handed to a callback.
  //
  // A write with `durable` false commits without waiting for the disk (synchronous =
  // NORMAL: the WAL is not fsynced), for steps whose durability the next durable commit
  // provides: WAL frames are synced in order, so fsyncing a later commit makes every
  // earlier one durable too. Only a batch of such writes alone skips the fsync.
  //
  // Space reserve (platform/space_reserve.h): a write that frees space (FreeingWrite:
  // deletes, aborts, GC) that fails for lack of space releases the reserve and runs again;
  // while the reserve is released, every other write fails at once with kResourceExhausted
  // (unless the reserve can be taken back), so the freed blocks serve deletes only.
  template <typename Fn>
  Status Write(std::string_view context, Fn&& fn, bool durable = true) {
    RETURN_IF_ERROR(CheckReserve(context));
    return Enqueue(context, fn, durable);
  }
  template <typename Fn>
  Status FreeingWrite(std::string_view context, Fn&& fn) {
    Status status = Enqueue(context, fn, /*durable=*/true);
    if (status.code() == StatusCode::kResourceExhausted && reserve_ && reserve_->Release()) {
      reserve_released_.store(true);
      fprintf(stderr,
              "cairn: metadata disk full: released the %llu-byte space reserve %s so that "
              "deletes and GC can commit; writes that take space answer 507 until it is back\n",
              static_cast<unsigned long long>(reserve_->bytes()), reserve_->path().c_str());
      status = Enqueue(context, fn, /*durable=*/true);
    }
    return status;
  }
  Status CheckReserve(std::string_view context) {
    if (!reserve_ || !reserve_released_.load(std::memory_order_relaxed)) return OkStatus();
    if (reserve_->HeldOrRetry()) {
      reserve_released_.store(false);
      return OkStatus();
    }
    return AnnotateStorageError(
        ResourceExhaustedError("the disk of metadata database " + path_ +
                               " is full; its reserve is kept for deletes and GC "
                               "until space is freed"),
        context);
  }

  template <typename Fn>
  Status Enqueue(std::string_view context, Fn& fn, bool durable) {
    // A write transaction (a FileTree Write body, a GC callback) that calls back into the
    // store would wait for its own batch forever: it fails instead.
    if (t_writing_store == this) {
      return AnnotateStorageError(
          InternalError("a write transaction of metadata database " + path_ +
                        " called back into the store, which would wait for itself"),
          context);
    }
    if (t_brief_reading_store == this) {
      return AnnotateStorageError(InternalError("a brief read of metadata database " + path_ +
                                                " wrote to the store, which would wait for itself"),
                                  context);
    }
    PendingWrite pending;
    pending.fn = [&fn](Connection& c) { return fn(c); };
    pending.durable = durable;
    std::unique_lock lock(queue_mu_);
    queue_.push_back(&pending);
    while (!pending.done) {
      if (leader_active_) {
        pending.wake.wait(lock);
        continue;
      }
      LeadOneBatch(lock);
    }
    return AnnotateStorageError(std::move(pending.result), context);
  }

  struct PendingWrite {
    std::function<Status(Connection&)> fn;
    Status result;
    bool durable = true;
    bool done = false;             // GUARDED_BY(queue_mu_)
    std::condition_variable wake;  // with queue_mu_: done, or time to lead a batch
    // Set for an asynchronous write, which no thread waits for: the leader calls it after
    // the batch, outside the lock, and it reports the result and frees the write.
    std::function<void(PendingWrite*)> finish;
  };
  static constexpr size_t kMaxWriteBatch = 256;
  // Asynchronous writes queued or running; beyond this PutCommittedAsync declines and the
  // caller blocks in PutCommitted instead, so a burst cannot grow the queue without bound.
  static constexpr size_t kMaxAsyncWrites = 1024;

  // Runs the writes at the head of the queue as one batch. Called with the lock held and
  // no leader active; returns with the lock held.
  void LeadOneBatch(std::unique_lock<std::mutex>& lock) {
    leader_active_ = true;
    std::vector<PendingWrite*> batch;
    while (!queue_.empty() && batch.size() < kMaxWriteBatch) {
      batch.push_back(queue_.front());
      queue_.pop_front();
    }
    lock.unlock();
    t_writing_store = this;
    RunWriteBatch(batch);
    t_writing_store = nullptr;
    std::vector<PendingWrite*> finished_async;
    lock.lock();
    // Only the writers of this batch are woken, and whoever leads the next one: waking
    // every waiter would have them all fight for the lock only to go back to sleep.
    // (Notified under the lock: a finished writer may return and destroy its condition
    // variable as soon as the lock is free.)
    for (PendingWrite* write : batch) {
      if (write->finish) {
        finished_async.push_back(write);
        continue;
      }
      write->done = true;
      write->wake.notify_one();
    }
    leader_active_ = false;
    WakeNextLeader();
    if (finished_async.empty()) return;
    lock.unlock();
    for (PendingWrite* write : finished_async) {
      // Moved out first: finish frees the write that holds it.
      std::function<void(PendingWrite*)> finish = std::move(write->finish);
      finish(write);
    }
    lock.lock();
    async_writes_ -= finished_async.size();
    if (async_writes_ == 0) {
      async_drained_.notify_all();
      if (stopping_) committer_wake_.notify_one();
    }
  }

  // With the lock held: a synchronous writer leads the batch it heads; an asynchronous
  // write has the committer thread lead it.
  void WakeNextLeader() {
    if (queue_.empty()) return;
    if (queue_.front()->finish) {
      committer_wake_.notify_one();
    } else {
      queue_.front()->wake.notify_one();
    }
  }

  // The committer thread: leads batches while asynchronous writes wait, and on shutdown
  // returns only once every one of them has been committed and reported.
  void CommitLoop() {
    std::unique_lock lock(queue_mu_);
    for (;;) {
      if (!leader_active_ && !queue_.empty()) {
        LeadOneBatch(lock);
        continue;
      }
      if (stopping_ && async_writes_ == 0) return;
      committer_wake_.wait(lock);
    }
  }

  void RunWriteBatch(const std::vector<PendingWrite*>& batch) {
    std::lock_guard writer_lock(writer_mu_);
    Connection& c = *writer_;
    bool durable = false;
    for (const PendingWrite* write : batch) durable = durable || write->durable;
    if (durable != writer_synchronous_full_) {
      Status set = c.Run(durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
      if (set.ok()) {
        writer_synchronous_full_ = durable;
      } else if (durable) {  // never commit a durable write without the fsync
        for (PendingWrite* write : batch) write->result = set;
        return;
      }
    }
    if (batch.size() == 1) {
      batch[0]->result = RunTransaction(c, "BEGIN IMMEDIATE", batch[0]->fn);
      return;
    }
    Status status = c.Run("BEGIN IMMEDIATE");
    for (PendingWrite* write : batch) {
      if (!status.ok()) break;
      status = c.Run("SAVEPOINT cairn_write");
      if (!status.ok()) break;
      write->result = write->fn(c);
      if (!c.InOpenTransaction()) {
        // SQLite rolled the whole transaction back (I/O error, disk full): the batch is
        // lost, including the writes that had succeeded.
        status = write->result.ok() ? InternalError("transaction rolled back") : write->result;
        break;
      }
      if (!write->result.ok()) status = c.Run("ROLLBACK TO cairn_write");
      if (status.ok()) status = c.Run("RELEASE cairn_write");
    }
    if (status.ok()) status = c.Run("COMMIT");
    if (!status.ok()) {
      if (c.InOpenTransaction()) c.Run("ROLLBACK").IgnoreError();
      for (PendingWrite* write : batch) {
        if (write->result.ok()) write->result = status;
      }
    }
  }

  // One read transaction (a consistent snapshot) on a pooled reader connection.
  template <typename Fn>
  Status Read(std::string_view context, Fn&& fn) {
    Connection* conn = AcquireReader();
    Status status = RunTransaction(*conn, "BEGIN", fn);
    ReleaseReader(conn);
    return AnnotateStorageError(std::move(status), context);
  }

  Connection* AcquireReader() {
    if (Connection* own = ThreadReaderConnection()) return own;
    std::unique_lock lock(readers_mu_);
    readers_cv_.wait(lock, [&] { return !free_readers_.empty(); });
    Connection* conn = free_readers_.back();
    free_readers_.pop_back();
    return conn;
  }
  void ReleaseReader(Connection* conn) {
    if (conn->thread_owned()) return;
    {
      std::lock_guard lock(readers_mu_);
      free_readers_.push_back(conn);
    }
    readers_cv_.notify_one();
  }

  // The calling thread's own reader connection, opened on its first read; nullptr once
  // kMaxThreadReaders threads have one (or if opening fails): then the shared pool serves.
  // So no reader waits for another thread, which lets an event loop read and keeps the
  // worker threads from queueing for a few shared connections.
  Connection* ThreadReaderConnection();
  // A serial number for a new store, never reused (see ThreadReader).
  static uint64_t NextStoreSerial();

  // Helpers used inside a write transaction.
  static Status InsertObject(Connection& c, const ObjectRecord& r, ObjectState state);
  static Status TakeReference(Connection& c, StorageClass storage_class, const ChunkRef& chunk,
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
  static Status PutCommittedIn(Connection& c, const ObjectRecord& object,
                               const std::vector<ChunkRef>& chunks, TimestampMs now_ms,
                               CommitResult* result);
  static Status MarkDeleting(Connection& c, const ObjectId& id, StorageClass storage_class,
                             TimestampMs now_ms);
  // Makes the COMMITTED object at (tenant, namespace, key), if any, DELETING.
  static Result<std::optional<ObjectId>> RetireObjectAtKey(Connection& c, const ObjectRecord& r,
                                                           TimestampMs now_ms);
  static Result<std::optional<ObjectRecord>> FindWriting(Connection& c, const ObjectId& id);
  static Result<std::vector<FsckReferenceRow>> ReferenceRows(Connection& c);

  std::mutex queue_mu_;
  std::deque<PendingWrite*> queue_;         // GUARDED_BY(queue_mu_)
  bool leader_active_ = false;              // GUARDED_BY(queue_mu_)
  size_t async_writes_ = 0;                 // GUARDED_BY(queue_mu_)
  bool stopping_ = false;                   // GUARDED_BY(queue_mu_)
  std::condition_variable committer_wake_;  // with queue_mu_
  std::condition_variable async_drained_;   // with queue_mu_: async_writes_ is 0
  std::thread committer_;                   // started by the first PutCommittedAsync
  std::mutex writer_mu_;
  std::unique_ptr<Connection> writer_;
  std::unique_ptr<Connection> checkpoint_conn_;  // used by checkpointer_ only
  std::mutex checkpoint_mu_;
  std::condition_variable checkpoint_wake_;  // with checkpoint_mu_
  bool checkpoint_wanted_ = false;           // GUARDED_BY(checkpoint_mu_)
  int wal_frames_at_wake_ = 0;               // the writer's thread only (OnWalCommit)
  bool checkpoint_stopping_ = false;         // GUARDED_BY(checkpoint_mu_)
  std::thread checkpointer_;
  bool writer_synchronous_full_ = true;  // GUARDED_BY(writer_mu_): the writer's PRAGMA

  // Bounds the connections (each with its own page cache) that reading threads open.
  static constexpr size_t kMaxThreadReaders = 32;
  const std::string path_;
  const int busy_timeout_ms_;
  const uint64_t serial_;
  std::unique_ptr<platform::SpaceReserve> reserve_;  // set once, before any write
  std::atomic<bool> reserve_released_{false};

  std::mutex readers_mu_;
  std::condition_variable readers_cv_;
  std::vector<std::unique_ptr<Connection>> readers_;
  std::vector<Connection*> free_readers_;                    // GUARDED_BY(readers_mu_)
  std::vector<std::unique_ptr<Connection>> thread_readers_;  // GUARDED_BY(readers_mu_)
};

}  // namespace cairn::meta::sqlite_internal
