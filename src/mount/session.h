// MountSession: one `cairn mount` process as the volume sees it (meta::SessionRecord).
//
// Start registers the session and reclaims the sessions found dead; a heartbeat thread then
// renews it (expires_ms = now + kExpiryBeats heartbeats) and, on each beat, reclaims dead
// sessions again and trims the change feed. A session is dead when its expiry passed, or at
// once when it ran in this process table (same boot id and pid namespace) and its pid is
// gone: a `kill -9`ed mount is reclaimed by the next mount on its host without waiting.
// Reclaiming deletes its orphans (files unlinked while it had them open), its locks, its
// staging references (chunks of flushes it never committed) and its row.
//
// PollChanges reads the change feed after the last seq it saw and hands every change made
// by another session to the caller (the FUSE edge turns them into kernel invalidations and
// claims the pending orphans it holds open). Each heartbeat records in the row how far the
// feed was applied, and runs the sweep of pending orphans (fs/file_system.h); End sweeps
// once more, so the last mount to go leaves none behind.
//
// Thread-safety: PollChanges from one thread at a time; the rest from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/status.h"
#include "fs/file_system.h"
#include "meta/meta_store.h"

namespace cairn::mount {

inline constexpr int kExpiryBeats = 6;
// Changes older than this are trimmed from the feed: a mount that stalls longer than its
// session's expiry is reclaimed anyway.
inline constexpr TimestampMs kChangeRetentionMs = 10 * 60 * 1000;

struct SessionOptions {
  std::string volume_uuid;
  std::string mount_point;
  std::string version;
  bool read_only = false;
  double heartbeat_seconds = 5.0;
};

// The staging owner of a session's chunks (mount/file_data.h).
meta::ChunkOwner StagingOwner(const std::string& volume_uuid, uint64_t session);

// Boot id and pid namespace of this process: equal keys, one process table.
std::string ThisHostKey();

class MountSession {
 public:
  // Registers a new session (a random id) and reclaims the dead ones.
  static Result<std::unique_ptr<MountSession>> Start(meta::MetaStore* meta_store,
                                                     fs::FileSystem* file_system,
                                                     SessionOptions options);
  ~MountSession();

  uint64_t id() const { return record_.id; }

  // Starts the heartbeat thread; `each_beat` (optional) runs after every renewal (the
  // mount's housekeeping: the trash's expiry).
  void StartHeartbeat(std::function<void()> each_beat = nullptr);
  // Hands each change of another session after the last one seen to `apply`, in order.
  // An error from `apply` stops the poll there: that change comes again at the next poll.
  // The heartbeat records the seq applied so far in the session's row (seen_seq).
  Status PollChanges(const std::function<Status(const meta::ChangeRecord&)>& apply);
  // Stops the heartbeat and removes the session (its locks, orphans, staging, row).
  Status End();

  // Reclaims every dead session but this one; returns how many.
  Result<int> ReclaimDead();

 private:
  MountSession(meta::MetaStore* meta_store, fs::FileSystem* file_system, SessionOptions options);
  Status Renew();
  Status Reclaim(uint64_t id);
  void HeartbeatLoop();

  meta::MetaStore* meta_store_;
  meta::FileTree* tree_;
  fs::FileSystem* file_system_;
  const SessionOptions options_;
  meta::SessionRecord record_;
  uint64_t last_seq_ = 0;
  std::atomic<uint64_t> seen_seq_{0};  // last_seq_ as the heartbeat publishes it
  bool registered_ = false;            // Renew has stored the row once
  bool serving_ = false;  // StartHeartbeat ran: the mount may hold files open from now on

  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // GUARDED_BY(mutex_)
  bool ended_ = false;     // GUARDED_BY(mutex_)
  std::thread heartbeat_;
  std::function<void()> each_beat_;
};

}  // namespace cairn::mount
