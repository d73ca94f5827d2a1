#!/usr/bin/env bash
# README command 1: install what is missing, build, and start `cairn serve` with data in
# ./data and metadata in SQLite. Extra arguments go to `cairn serve`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
exec "$root/build/cairn" serve "$@"
