#!/usr/bin/env bash
# Installs the Debian 12 packages that building, running and testing qsfs need.
# Idempotent: does nothing when everything is already installed.
set -euo pipefail
pkgs=(build-essential libsystemd-dev cmake ninja-build pkg-config clang libclang-rt-14-dev
      libisal-dev libssl-dev libsodium-dev libsnappy-dev libzstd-dev liblz4-dev
      libhiredis-dev libfuse3-dev fuse3 libmicrohttpd-dev libcmocka-dev
      python3 python3-cryptography sqlite3 git redis-server redis-tools time prometheus chromium
      scdoc man-db bash-completion systemd debhelper dpkg-dev lintian
      autoconf automake)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
