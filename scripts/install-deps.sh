#!/usr/bin/env bash
# Installs the Debian 12 packages Cairn builds and tests with (only those missing).
set -euo pipefail
packages=(
  build-essential cmake ninja-build ccache pkg-config
  libboost-dev libssl-dev libsqlite3-dev libisal-dev nlohmann-json3-dev libcli11-dev libspdlog-dev
  libgtest-dev libgmock-dev libpugixml-dev zlib1g-dev clang clang-format libclang-rt-14-dev e2fsprogs
  postgresql libpq-dev
  curl python3 python3-pytest python3-requests
  # The web console's browser tests (tests/console_browser): driven by playwright-core.
  chromium
  # The real S3 clients the S3 suite drives.
  awscli python3-boto3 s3cmd rclone s3fs
  # ceph s3-tests (../shared/third_party), its Python dependencies.
  python3-munch python3-gevent python3-isodate python3-tz python3-lxml python3-httplib2 python3-yaml python3-dateutil
  python3-pytest-xdist
  # The POSIX suites of the filesystem tests (pjdfstest, xfstests' fsx and fsstress), built
  # from ../shared/third_party at test time.
  autoconf automake libtool libtool-bin xfslibs-dev libattr1-dev libacl1-dev libaio-dev
  liburing-dev uuid-dev gawk bc perl fuse3 libfuse3-dev
)
# Node.js for the JavaScript AWS SDK tests: Debian's, unless a node is already installed.
command -v node >/dev/null 2>&1 || packages+=(nodejs npm)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
fi
