#!/usr/bin/env bash
# README command 1: install what is missing, build, and start `cairn serve` with data in
# ./data and metadata in SQLite. Extra arguments go to `cairn serve`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
# The web console too, on loopback (CAIRN_CONSOLE_LISTEN= turns it off).
export CAIRN_CONSOLE_LISTEN="${CAIRN_CONSOLE_LISTEN-127.0.0.1:9001}"
exec "$root/build/cairn" serve "$@"
