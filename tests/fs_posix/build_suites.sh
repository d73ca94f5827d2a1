#!/usr/bin/env bash
# Builds the pinned POSIX suites from ../shared/third_party into DEST (default
# build/third_party): pjdfstest, and xfstests' fsx and fsstress. Test tools only: nothing of
# them is linked into cairn or copied into this tree. A finished build leaves a stamp named
# after the archive, so a second run does nothing.
# Usage: build_suites.sh [DEST]    prints the paths of the three programs.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
third_party="${CAIRN_THIRD_PARTY:-$root/../shared/third_party}"
dest="${1:-$root/build/third_party}"
mkdir -p "$dest"

archive() {  # the one archive of a suite, by prefix
  local found=("$third_party"/"$1"-*.tar.gz)
  [ -f "${found[0]}" ] || { echo "no $1 archive in $third_party" >&2; exit 1; }
  echo "${found[0]}"
}

pjd="$(archive pjdfstest)"
stamp="$dest/.$(basename "$pjd").built"
if [ ! -f "$stamp" ]; then
  rm -rf "$dest/pjdfstest"
  tar xzf "$pjd" -C "$dest"
  (cd "$dest/pjdfstest" && autoreconf -ifs >/dev/null 2>&1 && ./configure -q >/dev/null &&
    make -s pjdfstest >/dev/null)
  touch "$stamp"
fi

xfs="$(archive xfstests)"
stamp="$dest/.$(basename "$xfs").built"
if [ ! -f "$stamp" ]; then
  rm -rf "$dest/xfstests"
  tar xzf "$xfs" -C "$dest"
  (cd "$dest/xfstests" && make -s configure >/dev/null 2>&1 && ./configure -q >/dev/null &&
    make -s -C include >/dev/null 2>&1 && make -s -C lib >/dev/null 2>&1 &&
    make -s -C ltp fsx fsstress >/dev/null 2>&1)
  touch "$stamp"
fi

echo "$dest/pjdfstest/pjdfstest"
echo "$dest/xfstests/ltp/fsx"
echo "$dest/xfstests/ltp/fsstress"
