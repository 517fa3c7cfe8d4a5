#!/usr/bin/env bash
# pyrewind overhead benchmark: builds, then prints a Markdown table of the slowdown of
# `pyrewind run` (with and without locals) and of a bare C line callback (the floor) against
# plain runs, per interpreter and workload, plus bytes per recorded event.
#
#   tools/bench/run.sh [--quick] [--python /path/to/python3.X ...] [--rounds N] [--json FILE]
#
# Build directory: $PYREWIND_BUILD_DIR or ./build. Reports only; never fails on numbers.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${PYREWIND_BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build" -G "Unix Makefiles" >/dev/null
cmake --build "$build" -j2 --target pyrewind >/dev/null
exec /usr/bin/python3 "$root/tools/bench/bench.py" --build "$build" "$@"
