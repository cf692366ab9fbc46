#!/usr/bin/env bash
# Installs dependencies, builds qsfs and runs the whole test suite (unit, fuzz-corpus
# replay and integration tests). Usage: scripts/test.sh [--sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
build=build
opts=()
if [ "${1:-}" = "--sanitize" ]; then
  build=build-asan
  opts=(-DQSFS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
fi
cmake -S . -B "$build" -G Ninja "${opts[@]}" >/dev/null
ninja -C "$build"
if [ "$build" = build ]; then
  # -O3 finds maybe-uninitialized warnings that -O2 does not: compile that too.
  cmake -S . -B build-rel -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  ninja -C build-rel
fi
cd "$build"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --output-on-failure -j2 --timeout 900
if [ "$build" = build ] && [ -z "${QSFS_SKIP_PACKAGE:-}" ]; then
  # the Debian package, built, installed with dpkg, tried and purged (changes this
  # machine's /usr: QSFS_SKIP_PACKAGE=1 skips it)
  cd ..
  tests/package/test_package.py
fi
