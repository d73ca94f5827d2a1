// `cairn`: one binary, one subcommand per operation. Every flag is also an environment
// variable CAIRN_<NAME> (the flag wins).
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli/commands.h"
#include "core/version.h"

int main(int argc, char** argv) {
  // Every file and directory Cairn creates (chunks, the SQLite database and its WAL,
  // keys, snapshots, state files) is private whatever the caller's umask: chunk files hold
  // every tenant's data, the database holds S3 secrets.
  umask(077);
  CLI::App app{"Cairn: a content-addressable, deduplicating, crash-safe object store"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("cairn ") + cairn::kCairnVersion);
  cairn::cli::RegisterCommands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }
  return cairn::cli::ExitCode();
}
