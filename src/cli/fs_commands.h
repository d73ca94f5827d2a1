// `cairn format`, `cairn mount` and `cairn umount`: the filesystem's commands.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "server/app.h"

namespace cairn::cli {

// `add_store_options` adds the flags every command shares (--data-dir, ...); the command
// that runs stores its exit code in *exit_code.
void AddFsCommands(CLI::App& app,
                   const std::function<void(CLI::App*, server::StoreConfig*)>& add_store_options,
                   int* exit_code);

}  // namespace cairn::cli
