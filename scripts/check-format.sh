#!/usr/bin/env bash
# Fails if a C++ file of the project differs from what clang-format (.clang-format) makes
# of it, and names the files.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=()
while IFS= read -r file; do
  clang-format --dry-run --Werror "$file" >/dev/null 2>&1 || bad+=("$file")
done < <(git ls-files '*.cc' '*.h')
if ((${#bad[@]})); then
  echo "not clang-formatted (run clang-format -i on them):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "clang-format: every C++ file is formatted"
