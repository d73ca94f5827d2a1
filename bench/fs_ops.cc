// Times the file system's metadata operations in process, without FUSE: create, lookup,
// getattr and unlink of N empty files in one directory, on a fresh SQLite volume with a
// trash, as a mount sets its FileSystem up (relaxed commits, a session). It shows what one
// operation costs in the metadata layer, apart from the kernel's round trip.
//
//   cairn_fs_ops DIR|URL [N] [trash-days]
//
// A DIR gets a new SQLite database; a URL (postgres://...) must name an empty database.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "fs/file_system.h"
#include "meta/engines/open_meta_store.h"
#include "meta/meta_store.h"

namespace {

using Clock = std::chrono::steady_clock;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void Report(const char* what, size_t n, Clock::time_point start) {
  const double us = std::chrono::duration<double, std::micro>(Clock::now() - start).count() /
                    static_cast<double>(n);
  printf("%-24s %8.1f us/op %10.0f ops/s\n", what, us, 1e6 / us);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s DIR|URL [N] [trash-days]\n", argv[0]);
    return 2;
  }
  const std::string where = argv[1];
  const size_t n = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 10000;
  const uint32_t trash_days = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 7;
  std::string url = where;
  if (where.find("://") == std::string::npos) {
    std::filesystem::create_directories(where);
    url = "sqlite://" + (std::filesystem::path(where) / "fs_ops.db").string();
  }
  auto store = cairn::meta::OpenMetaStore(url);
  if (!store.ok()) {
    fprintf(stderr, "%s: %s\n", url.c_str(), store.status().ToString().c_str());
    return 1;
  }
  cairn::meta::FileTree* tree = (*store)->file_tree();
  cairn::meta::InodeRecord root;
  root.mode = 0777;
  root.nlink = 2;
  auto formatted = tree->FormatVolume(
      cairn::meta::VolumeRecord{"bench", "00000000-0000-4000-8000-000000000001", 0, trash_days},
      root);
  if (!formatted.ok()) {
    fprintf(stderr, "format: %s\n", formatted.status().ToString().c_str());
    return 1;
  }
  auto make = [&] {
    cairn::fs::Options options;
    options.now_ns = NowNs;
    options.session = 1;
    options.relaxed_commits = true;
    options.fresh_directory_ms = 1000;
    return std::make_unique<cairn::fs::FileSystem>(tree, options);
  };
  auto fs = make();
  cairn::fs::Caller caller;
  auto made = fs->MakeNode(cairn::meta::kRootInode, "d", cairn::meta::FileType::kDirectory, 0755, 0,
                           caller);
  if (!made.ok()) return 1;
  const uint64_t d = made->ino;
  std::vector<std::string> names;
  for (size_t i = 0; i < n; ++i) names.push_back("f" + std::to_string(i));
  std::vector<uint64_t> inos;
  auto start = Clock::now();
  for (const std::string& name : names) {
    auto file = fs->MakeNode(d, name, cairn::meta::FileType::kRegular, 0644, 0, caller);
    if (!file.ok()) return 1;
    inos.push_back(file->ino);
  }
  Report("create", n, start);
  fs = make();
  start = Clock::now();
  for (const std::string& name : names) {
    if (!fs->Lookup(d, name).ok()) return 1;
  }
  Report("lookup", n, start);
  start = Clock::now();
  for (uint64_t ino : inos) {
    if (!fs->GetAttr(ino).ok()) return 1;
  }
  Report("getattr", n, start);
  fs = make();
  start = Clock::now();
  for (const std::string& name : names) {
    auto status = fs->Unlink(d, name);
    if (!status.ok()) {
      fprintf(stderr, "unlink: %s\n", status.ToString().c_str());
      return 1;
    }
  }
  Report("unlink", n, start);
  // As through a mount: the kernel looks a name up, unlinks it, then reads the directory's
  // attributes (the unlink changed them) before the next name. Reads follow writes here.
  for (const std::string& name : names) {
    if (!fs->MakeNode(d, name, cairn::meta::FileType::kRegular, 0644, 0, caller).ok()) return 1;
  }
  fs = make();
  Clock::duration looking{}, unlinking{}, statting{};
  for (const std::string& name : names) {
    auto t0 = Clock::now();
    if (!fs->Lookup(d, name).ok()) return 1;
    auto t1 = Clock::now();
    if (!fs->Unlink(d, name).ok()) return 1;
    auto t2 = Clock::now();
    if (!fs->GetAttr(d).ok()) return 1;
    auto t3 = Clock::now();
    looking += t1 - t0;
    unlinking += t2 - t1;
    statting += t3 - t2;
  }
  Report("lookup (after a write)", n, Clock::now() - looking);
  Report("unlink (between reads)", n, Clock::now() - unlinking);
  Report("getattr (after a write)", n, Clock::now() - statting);
  return 0;
}
