// `cairn`: one binary, one subcommand per operation. Every flag is also an environment
// variable CAIRN_<NAME> (the flag wins).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"Cairn: a content-addressable, deduplicating, crash-safe object store"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "cairn 0.1.0");
  cairn::cli::RegisterCommands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }
  return cairn::cli::ExitCode();
}
