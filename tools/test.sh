#!/usr/bin/env bash
# Builds pyrewind and runs every test: the GoogleTest unit tests and the end-to-end suite
# (tests/e2e, one ctest test per interpreter). Installs missing Debian packages first.
#
#   tools/test.sh [extra ctest arguments, e.g. -R e2e_pyenv-3.12]
#
# Build directory: $PYREWIND_BUILD_DIR or ./build.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${PYREWIND_BUILD_DIR:-$root/build}"

"$root/tools/setup-deps.sh"
cmake -S "$root" -B "$build" -G "Unix Makefiles"
cmake --build "$build" -j2
ctest --test-dir "$build" --output-on-failure -j2 "$@"
