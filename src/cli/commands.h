#pragma once

#include <CLI/CLI.hpp>

namespace cairn::cli {

// Adds serve, fsck, gc, keys and status; the chosen one runs from its callback.
void RegisterCommands(CLI::App& app);
// The exit code the command that ran chose.
int ExitCode();

}  // namespace cairn::cli
