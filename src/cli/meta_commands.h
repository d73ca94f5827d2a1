// `cairn meta dump|load`.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "server/app.h"

namespace cairn::cli {

// Adds `meta dump` and `meta load`; `add_store_options` adds the flags every command shares
// (--data-dir, --meta, ...); the command that runs stores its exit code in *exit_code.
void AddMetaCommands(CLI::App& app,
                     const std::function<void(CLI::App*, server::StoreConfig*)>& add_store_options,
                     int* exit_code);

}  // namespace cairn::cli
