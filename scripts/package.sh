#!/usr/bin/env bash
# Builds the Debian package from this tree (debian/, dpkg-buildpackage with debhelper's
# CMake build) and checks it with lintian. Output: build-deb/qsfs_<version>_<arch>.deb.
# Usage: scripts/package.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit="$commit-dirty"
fi
# dpkg-buildpackage writes next to the tree: build in a copy so the tree's parent stays clean
work=$(mktemp -d /tmp/qsfs-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$work/src"
(cd "$work/src" && QSFS_GIT_COMMIT="$commit" dpkg-buildpackage -b -us -uc >"$work/build.log" 2>&1) || {
  tail -40 "$work/build.log"
  echo "package: dpkg-buildpackage failed (log above)" >&2
  exit 1
}
mkdir -p build-deb
rm -f build-deb/qsfs_*.deb
cp "$work"/qsfs_*.deb build-deb/
deb=$(ls build-deb/qsfs_*.deb)
echo "package: $deb"
lintian --fail-on error,warning --info "$deb"
echo "package: lintian clean"
