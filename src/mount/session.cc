#include "mount/session.h"

#include <limits.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <vector>

#include "mount/file_data.h"

namespace cairn::mount {
namespace {

TimestampMs NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

uint64_t RandomSessionId() {
  std::random_device device;
  for (;;) {
    const uint64_t id = ((uint64_t{device()} << 32) | device()) >> 1;  // 1..2^63-1
    if (id != 0) return id;
  }
}

std::string HostName() {
  char host[HOST_NAME_MAX + 1] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) return "unknown";
  return host;
}

// Whether `session` is dead as seen from here at `now`.
bool IsDead(const meta::SessionRecord& session, const std::string& host_key, TimestampMs now) {
  if (session.expires_ms < now) return true;
  if (session.host_key == host_key && !host_key.empty() && session.pid > 0) {
    if (kill(static_cast<pid_t>(session.pid), 0) != 0) return errno == ESRCH;
    // A zombie (killed, not reaped yet) is dead too; a live process of that pid is the
    // mount or a successor, so the expiry decides.
    std::ifstream stat("/proc/" + std::to_string(session.pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    const size_t paren = line.rfind(')');
    if (paren != std::string::npos && paren + 2 < line.size()) {
      const char state = line[paren + 2];
      return state == 'Z' || state == 'X';
    }
  }
  return false;
}

}  // namespace

meta::ChunkOwner StagingOwner(const std::string& volume_uuid, uint64_t session) {
  return meta::ChunkOwner{std::string(kStagingOwnerKind),
                          volume_uuid + ":" + std::to_string(session)};
}

std::string ThisHostKey() {
  std::string boot;
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::getline(in, boot);
  char ns[128] = {};
  const ssize_t n = readlink("/proc/self/ns/pid", ns, sizeof(ns) - 1);
  if (boot.empty() || n <= 0) return "";  // unknown: never judged by pid
  return boot + "/" + std::string(ns, static_cast<size_t>(n));
}

MountSession::MountSession(meta::MetaStore* meta_store, fs::FileSystem* file_system,
                           SessionOptions options)
    : meta_store_(meta_store),
      tree_(meta_store->file_tree()),
      file_system_(file_system),
      options_(std::move(options)) {}

MountSession::~MountSession() {
  Status ended = End();
  if (!ended.ok())
    fprintf(stderr, "cairn mount: ending the session: %s\n", ended.ToString().c_str());
}

Result<std::unique_ptr<MountSession>> MountSession::Start(meta::MetaStore* meta_store,
                                                          fs::FileSystem* file_system,
                                                          SessionOptions options) {
  if (meta_store->file_tree() == nullptr) {
    return FailedPreconditionError("the metadata engine keeps no filesystem");
  }
  std::unique_ptr<MountSession> session(
      new MountSession(meta_store, file_system, std::move(options)));
  const TimestampMs now = NowMs();
  meta::SessionRecord& record = session->record_;
  record.id = RandomSessionId();
  record.host = HostName();
  record.host_key = ThisHostKey();
  record.pid = static_cast<uint32_t>(getpid());
  record.mount_point = session->options_.mount_point;
  record.version = session->options_.version;
  record.read_only = session->options_.read_only;
  record.started_ms = now;
  // Read before the row exists: a session holds nothing open yet, so the pending orphans
  // of changes up to here are not its business (seen_seq starts past them).
  RETURN_IF_ERROR(session->tree_->Read([&](meta::FileTreeTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(session->last_seq_, tx.LastChangeSeq());
    return OkStatus();
  }));
  session->seen_seq_.store(session->last_seq_);
  RETURN_IF_ERROR(session->Renew().WithContext("registering the mount's session"));
  Result<int> reclaimed = session->ReclaimDead();
  if (!reclaimed.ok()) return reclaimed.status().WithContext("reclaiming dead sessions");
  return session;
}

Status MountSession::Renew() {
  const TimestampMs now = NowMs();
  record_.heartbeat_ms = now;
  record_.seen_seq = seen_seq_.load();
  record_.expires_ms =
      now + static_cast<TimestampMs>(options_.heartbeat_seconds * 1000.0 * kExpiryBeats);
  bool was_missing = false;
  RETURN_IF_ERROR(tree_->Write(
      [&](meta::FileTreeTransaction& tx) -> Status {
        // A session whose row went was judged dead (it stalled past its expiry): what it
        // held was reclaimed. Say so; it registers again and goes on.
        was_missing = false;
        if (registered_) {
          ASSIGN_OR_RETURN(std::vector<meta::SessionRecord> sessions, tx.ListSessions());
          was_missing = true;
          for (const meta::SessionRecord& session : sessions) {
            if (session.id == record_.id) was_missing = false;
          }
        }
        RETURN_IF_ERROR(tx.PutSession(record_));
        return tx.TrimChanges(now - kChangeRetentionMs);
      },
      now));
  registered_ = true;
  if (was_missing) {
    fprintf(stderr,
            "cairn mount: session %llu was reclaimed by another mount after missing its "
            "heartbeats; its orphans and locks are gone; registered again\n",
            static_cast<unsigned long long>(record_.id));
  }
  return OkStatus();
}

Status MountSession::Reclaim(uint64_t id) {
  // Before the heartbeat starts, the mount serves nothing and holds no file open: its own
  // row need not keep the dead session's orphans pending. After, `file_system_` (which
  // cannot see the mount's handles) leaves them pending and the feed claims them.
  const uint64_t self = serving_ ? 0 : record_.id;
  RETURN_IF_ERROR(file_system_->ReclaimSession(id, self).status());
  return meta_store_->DropOwnerChunks(StagingOwner(options_.volume_uuid, id), NowMs());
}

Result<int> MountSession::ReclaimDead() {
  std::vector<meta::SessionRecord> sessions;
  RETURN_IF_ERROR(tree_->Read([&](meta::FileTreeTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(sessions, tx.ListSessions());
    return OkStatus();
  }));
  const TimestampMs now = NowMs();
  int reclaimed = 0;
  for (const meta::SessionRecord& session : sessions) {
    if (session.id == record_.id || !IsDead(session, record_.host_key, now)) continue;
    Status status = Reclaim(session.id);
    if (!status.ok()) return status.WithContext("session " + std::to_string(session.id));
    fprintf(stderr, "cairn mount: reclaimed dead session %llu (%s:%s, pid %u)\n",
            static_cast<unsigned long long>(session.id), session.host.c_str(),
            session.mount_point.c_str(), session.pid);
    ++reclaimed;
  }
  return reclaimed;
}

void MountSession::StartHeartbeat(std::function<void()> each_beat) {
  each_beat_ = std::move(each_beat);
  serving_ = true;
  heartbeat_ = std::thread([this] { HeartbeatLoop(); });
}

void MountSession::HeartbeatLoop() {
  const auto interval =
      std::chrono::milliseconds(static_cast<int64_t>(options_.heartbeat_seconds * 1000.0));
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, interval, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    Status renewed = Renew();
    if (!renewed.ok()) {
      fprintf(stderr, "cairn mount: heartbeat failed: %s\n", renewed.ToString().c_str());
    }
    Result<int> reclaimed = ReclaimDead();
    if (!reclaimed.ok()) {
      fprintf(stderr, "cairn mount: reclaiming dead sessions failed: %s\n",
              reclaimed.status().ToString().c_str());
    }
    if (each_beat_) each_beat_();
    lock.lock();
  }
}

Status MountSession::PollChanges(const std::function<Status(const meta::ChangeRecord&)>& apply) {
  constexpr uint32_t kPage = 1000;
  for (int pages = 0; pages < 100; ++pages) {
    std::vector<meta::ChangeRecord> changes;
    RETURN_IF_ERROR(tree_->Read([&](meta::FileTreeTransaction& tx) -> Status {
      ASSIGN_OR_RETURN(changes, tx.ListChanges(last_seq_, kPage));
      return OkStatus();
    }));
    for (const meta::ChangeRecord& change : changes) {
      // A change not applied (a claim that failed) is read again at the next poll.
      if (change.session != record_.id) RETURN_IF_ERROR(apply(change));
      last_seq_ = change.seq;
      seen_seq_.store(last_seq_);
    }
    if (changes.size() < kPage) break;
  }
  return OkStatus();
}

Status MountSession::End() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (ended_) return OkStatus();
    ended_ = true;
    stopping_ = true;
  }
  wake_.notify_all();
  if (heartbeat_.joinable()) heartbeat_.join();
  RETURN_IF_ERROR(Reclaim(record_.id));
  // The last mount to go deletes what was pending on it; others' sweeps do the rest. Best
  // effort: what stays pending waits for the next mount's sweep, and nothing is lost.
  Result<uint64_t> swept = file_system_->SweepPendingOrphans();
  if (!swept.ok()) {
    fprintf(stderr, "cairn mount: deleting pending orphans at the end: %s\n",
            swept.status().ToString().c_str());
  }
  return OkStatus();
}

}  // namespace cairn::mount
