// The FUSE edge of a volume: libfuse 3's low-level API over fs::FileSystem (names, rules)
// and FileData (bytes). Requests run on libfuse's worker threads and answer with the errno
// that fs/errno_map.h gives each Status.
//
// The kernel checks permissions (default_permissions) and keeps attributes and entries for
// the configured times, except what another mount changed: a thread reads the volume's
// change feed and drops those entries, attributes and pages from the kernel's caches
// (fuse_lowlevel_notify_inval_entry / _inode). Locks (fcntl and flock) are the metadata
// store's, so they hold across mounts; the mount is confined to `subdir` (its inode is the mount's
// root; the kernel resolves ".." of the root to the mount point's parent, so nothing above is
// reachable through this mount).
#pragma once

#include <sys/statvfs.h>

#include <cstdint>
#include <functional>
#include <string>

#include "core/status.h"
#include "fs/file_system.h"
#include "mount/file_data.h"
#include "mount/mount_metrics.h"
#include "mount/session.h"

namespace cairn::mount {

// How often the change feed is read: the bound on how stale another mount's change stays in
// this mount's kernel caches (plus one database read).
inline constexpr int kChangePollMs = 10;

struct MountOptions {
  std::string mount_point;
  std::string subdir;               // "" or "/": the volume's root
  double attr_cache_seconds = 1.0;  // how long the kernel keeps attributes
  double entry_cache_seconds = 1.0;
  double dir_entry_cache_seconds = 1.0;
  bool read_only = false;
  bool allow_other = false;  // other users may use the mount (root only)
  bool debug = false;        // libfuse's request log on stderr
  std::string volume_name;   // fsname in /proc/mounts
  // What close committed without waiting for the disk (chunks, metadata) is made durable
  // this often, and at unmount. 0: only at fsync and unmount.
  double sync_interval_seconds = 1.0;
};

struct MountServices {
  fs::FileSystem* file_system = nullptr;
  FileData* file_data = nullptr;
  // The change feed other mounts write: what they change leaves this mount's kernel caches
  // (polled every kChangePollMs while mounted). Null: nothing is invalidated.
  MountSession* session = nullptr;
  std::string chunk_root;  // statfs reports this filesystem's space
  // Or, when set (remote chunks), this: fills the block counts of a statfs answer.
  std::function<Status(struct statvfs*)> space;
  // Counts and times every operation and error reply (--metrics). Null: nothing counted.
  MountMetrics* metrics = nullptr;
};

// Mounts and serves until unmounted (or SIGINT/SIGTERM, which unmount). `ready` runs once
// the mount point is live, with OK or why the mount failed (so a daemonizing parent can
// report it). Returns when the session ends.
Status ServeMount(const MountOptions& options, const MountServices& services,
                  const std::function<void(const Status&)>& ready);

}  // namespace cairn::mount
