#!/usr/bin/env bash
# Builds Cairn into build/ (RelWithDebInfo) or, with --sanitize, build-asan/ (ASan+UBSan).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build
args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [ "${1:-}" = "--sanitize" ]; then
  dir=build-asan
  args=(-DCMAKE_BUILD_TYPE=Debug -DCAIRN_SANITIZE=ON)
fi
# Paths relative to the checkout, so clones in other directories share ccache entries.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
cmake -S . -B "$dir" -G Ninja "${args[@]}" >/dev/null
ninja -C "$dir" -j "$(nproc)"
