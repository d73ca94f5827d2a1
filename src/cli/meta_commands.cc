// `cairn meta dump` and `cairn meta load`: a consistent, engine-neutral snapshot of all
// metadata (meta/snapshot.h), taken from a running or stopped server, and restored into an
// empty store of either engine.
#include "cli/meta_commands.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "backup/backup.h"
#include "meta/engines/open_meta_store.h"
#include "meta/snapshot.h"
#include "platform/clock.h"
#include "platform/file_system.h"

namespace cairn::cli {
namespace {

std::string MetaUrl(const server::StoreConfig& config) {
  return config.meta_url.empty() ? "sqlite://" + config.data_dir + "/meta.db" : config.meta_url;
}

std::string Describe(const meta::SnapshotCounts& c) {
  return std::to_string(c.objects) + " objects, " + std::to_string(c.chunks) + " chunks, " +
         std::to_string(c.namespaces) + " namespaces, " + std::to_string(c.namespace_settings) +
         " namespace settings, " + std::to_string(c.api_keys) + " API keys, " +
         std::to_string(c.s3_keys) + " S3 keys" +
         (c.owners != 0 ? ", " + std::to_string(c.owners) + " chunk owners" : "") +
         (c.volumes != 0 ? ", a filesystem volume of " + std::to_string(c.inodes) + " inodes, " +
                               std::to_string(c.dentries) + " names and " +
                               std::to_string(c.xattrs) + " xattrs"
                         : "");
}

// Opens only the metadata store: dump and load never touch the chunk roots.
std::unique_ptr<meta::MetaStore> OpenMeta(const server::StoreConfig& config, const char* what,
                                          int* exit_code) {
  if (config.meta_url.empty()) {
    Status created = platform::DefaultFileSystem()->CreateDirectories(config.data_dir);
    if (!created.ok()) {
      fprintf(stderr, "cairn meta %s: %s\n", what, created.ToString().c_str());
      *exit_code = 1;
      return nullptr;
    }
  }
  auto store = meta::OpenMetaStore(MetaUrl(config));
  if (!store.ok()) {
    fprintf(stderr, "cairn meta %s: cannot open the metadata store: %s\n", what,
            store.status().ToString().c_str());
    *exit_code = 1;
    return nullptr;
  }
  return std::move(store).value();
}

int Dump(const server::StoreConfig& config, const std::string& out) {
  int exit_code = 0;
  std::unique_ptr<meta::MetaStore> store = OpenMeta(config, "dump", &exit_code);
  if (!store) return exit_code;
  const std::string engine = meta::SnapshotEngineOfUrl(MetaUrl(config));
  const TimestampMs now_ms = platform::SystemClock()->NowMs();
  if (out == "-") {
    uint64_t bytes = 0;
    auto counts = meta::DumpSnapshot(
        *store, engine, now_ms,
        [](std::string_view data) -> Status {
          if (fwrite(data.data(), 1, data.size(), stdout) != data.size()) {
            return InternalError(std::string("writing to stdout: ") + strerror(errno));
          }
          return OkStatus();
        },
        &bytes);
    if (counts.ok() && fflush(stdout) != 0) {
      counts = InternalError(std::string("writing to stdout: ") + strerror(errno));
    }
    if (!counts.ok()) {
      fprintf(stderr, "cairn meta dump: %s\n", counts.status().ToString().c_str());
      return 1;
    }
    fprintf(stderr, "cairn meta dump: %s (%llu bytes) to stdout\n", Describe(*counts).c_str(),
            static_cast<unsigned long long>(bytes));
    return 0;
  }
  auto written =
      backup::WriteSnapshotFile(store.get(), platform::DefaultFileSystem(), out, engine, now_ms);
  if (!written.ok()) {
    fprintf(stderr, "cairn meta dump: %s\n", written.status().ToString().c_str());
    return 1;
  }
  fprintf(stderr, "cairn meta dump: %s (%llu bytes) to %s\n", Describe(written->counts).c_str(),
          static_cast<unsigned long long>(written->size_bytes), out.c_str());
  return 0;
}

int Load(const server::StoreConfig& config, const std::string& in) {
  meta::SnapshotByteSource source;
  std::unique_ptr<platform::ReadableFile> file;
  if (in == "-") {
    source = [](char* buffer, size_t capacity) -> Result<size_t> {
      while (true) {
        ssize_t n = ::read(STDIN_FILENO, buffer, capacity);
        if (n >= 0) return static_cast<size_t>(n);
        if (errno != EINTR) return InternalError(std::string("reading stdin: ") + strerror(errno));
      }
    };
  } else {
    auto opened = platform::DefaultFileSystem()->OpenReadable(in);
    if (!opened.ok()) {
      fprintf(stderr, "cairn meta load: %s\n", opened.status().ToString().c_str());
      return 1;
    }
    file = std::move(opened).value();
    auto offset = std::make_shared<uint64_t>(0);
    platform::ReadableFile* raw = file.get();
    source = [raw, offset](char* buffer, size_t capacity) -> Result<size_t> {
      ASSIGN_OR_RETURN(size_t n, raw->ReadAt(*offset, capacity, buffer));
      *offset += n;
      return n;
    };
  }
  meta::SnapshotReader reader(std::move(source));
  // The header is checked before the store is even opened: a wrong file changes nothing.
  auto header = reader.Header();
  if (!header.ok()) {
    fprintf(stderr, "cairn meta load: %s: %s\n", in.c_str(), header.status().ToString().c_str());
    return 1;
  }
  int exit_code = 0;
  std::unique_ptr<meta::MetaStore> store = OpenMeta(config, "load", &exit_code);
  if (!store) return exit_code;
  // The snapshot's store identity comes with it, so that the storage roots of that store
  // recognise the restored metadata (gc/store_identity.h). A store that already has
  // another identity belongs to another store's roots: loading would make them disagree.
  auto existing_id = store->GetStoreIdentity();
  if (!existing_id.ok()) {
    fprintf(stderr, "cairn meta load: %s\n", existing_id.status().ToString().c_str());
    return 1;
  }
  if (!header->store_id.empty() && *existing_id && **existing_id != header->store_id) {
    fprintf(stderr,
            "cairn meta load: %s: the snapshot is of store %s but this metadata store belongs "
            "to store %s (nothing was loaded); load it into a new, empty metadata store\n",
            in.c_str(), header->store_id.c_str(), (*existing_id)->c_str());
    return 1;
  }
  auto loaded = store->ImportSnapshot(reader);
  if (!loaded.ok()) {
    fprintf(stderr, "cairn meta load: %s: %s (nothing was loaded)\n", in.c_str(),
            loaded.status().ToString().c_str());
    return 1;
  }
  if (!header->store_id.empty()) {
    auto recorded = store->SetStoreIdentityIfAbsent(header->store_id);
    if (!recorded.ok() || *recorded != header->store_id) {
      fprintf(stderr,
              "cairn meta load: the metadata was loaded, but recording its store identity %s "
              "failed: %s\n",
              header->store_id.c_str(),
              recorded.ok() ? ("the store has " + *recorded).c_str()
                            : recorded.status().ToString().c_str());
      return 1;
    }
  } else if (!*existing_id) {
    fprintf(stderr,
            "cairn meta load: the snapshot carries no store identity (it predates them); if "
            "the storage roots have one, the first start needs --adopt-roots\n");
  }
  // The S3 secrets are carried encrypted: this setup must hold the key that sealed them.
  auto secrets =
      server::LoadSecretBox(platform::DefaultFileSystem(), config.data_dir, config.master_keys);
  auto sealed = secrets.ok() ? server::SealS3Secrets(store.get(), **secrets, /*reseal=*/false)
                             : Result<server::SealReport>(secrets.status());
  if (!sealed.ok()) {
    fprintf(stderr,
            "cairn meta load: the metadata was loaded, but its S3 secrets cannot be decrypted "
            "here: %s\n  the server will not start until it is given the master key of the "
            "store the snapshot was taken from\n",
            sealed.status().ToString().c_str());
    return 1;
  }
  if (sealed->sealed > 0) {
    fprintf(stderr, "cairn meta load: encrypted %zu plaintext S3 secrets with master key %s\n",
            sealed->sealed, (*secrets)->primary_id().c_str());
  }
  fprintf(stderr,
          "cairn meta load: %s from a %s snapshot taken %s\n"
          "  run `cairn fsck` against the same storage roots to check every chunk is there\n",
          Describe(*loaded).c_str(), header->engine.c_str(),
          FormatTimestamp(header->created_at_ms).c_str());
  return 0;
}

}  // namespace

void AddMetaCommands(CLI::App& app,
                     const std::function<void(CLI::App*, server::StoreConfig*)>& add_store_options,
                     int* exit_code) {
  CLI::App* meta_command =
      app.add_subcommand("meta", "Dump or load a snapshot of all metadata (engine-neutral)");
  meta_command->require_subcommand(1);

  struct DumpOptions {
    server::StoreConfig store;
    std::string out;
  };
  auto dump_options = std::make_shared<DumpOptions>();
  CLI::App* dump = meta_command->add_subcommand(
      "dump", "Write a consistent snapshot of all metadata (safe while the server runs)");
  add_store_options(dump, &dump_options->store);
  dump->add_option("--out", dump_options->out,
                   "Snapshot file (written atomically, mode 0600), or - for stdout")
      ->required();
  dump->callback(
      [dump_options, exit_code] { *exit_code = Dump(dump_options->store, dump_options->out); });

  struct LoadOptions {
    server::StoreConfig store;
    std::string in;
  };
  auto load_options = std::make_shared<LoadOptions>();
  CLI::App* load = meta_command->add_subcommand(
      "load", "Restore a snapshot into an empty metadata store (all or nothing)");
  add_store_options(load, &load_options->store);
  load->add_option("--in", load_options->in, "Snapshot file, or - for stdin")->required();
  load->callback(
      [load_options, exit_code] { *exit_code = Load(load_options->store, load_options->in); });
}

}  // namespace cairn::cli
