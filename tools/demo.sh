#!/usr/bin/env bash
# Builds pyrewind, starts the bundled example as a small service (tools/example/ledger.py
# --serve), attaches to it by PID for two seconds and detaches (the service runs on to its
# end), then records the example from its first line with `pyrewind run`; for each recording
# it shows `pyrewind info` and excerpts of `pyrewind export --format jsonl`; last, the page of
# `pyrewind html` and a short `pyrewind replay -c` session.
#
#   tools/demo.sh            (interpreter: $PYTHON, default /usr/bin/python3)
#
# Build directory: $PYREWIND_BUILD_DIR or ./build. The recording stays in $DEMO_DIR (default:
# a new temporary directory), so you can explore it further.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${PYREWIND_BUILD_DIR:-$root/build}"
python="${PYTHON:-/usr/bin/python3}"
out="${DEMO_DIR:-$(mktemp -d /tmp/pyrewind-demo.XXXXXX)}"
mkdir -p "$out"

"$root/tools/setup-deps.sh"
cmake -S "$root" -B "$build" -G "Unix Makefiles" >/dev/null
cmake --build "$build" -j2 --target pyrewind

pyrewind="$build/bin/pyrewind"

echo
echo "\$ $python tools/example/ledger.py --serve 5 &    # a running service"
"$python" "$root/tools/example/ledger.py" --serve 5 &
service=$!
sleep 1
echo "\$ pyrewind attach $service -o $out/service.rwd --duration 2"
"$pyrewind" attach "$service" -o "$out/service.rwd" --duration 2
echo "\$ pyrewind info $out/service.rwd"
"$pyrewind" info "$out/service.rwd"
"$pyrewind" export "$out/service.rwd" --format jsonl -o "$out/service.jsonl"
echo "\$ grep -m 3 '\"func\":\"serve\"' $out/service.jsonl    # the service's loop, mid-run"
grep -m 3 '"func":"serve"' "$out/service.jsonl"
echo "(the service runs on after the detach:)"
wait "$service"

echo
echo "\$ pyrewind run -o $out/ledger.rwd -- $python tools/example/ledger.py ada"
"$pyrewind" run -o "$out/ledger.rwd" -- "$python" "$root/tools/example/ledger.py" ada
echo
echo "\$ pyrewind info $out/ledger.rwd"
"$pyrewind" info "$out/ledger.rwd"
echo
echo "\$ pyrewind export $out/ledger.rwd --format jsonl -o $out/ledger.jsonl"
"$pyrewind" export "$out/ledger.rwd" --format jsonl -o "$out/ledger.jsonl"
echo "\$ head -n 3 $out/ledger.jsonl"
head -n 3 "$out/ledger.jsonl"
echo "\$ grep -m 8 '\"func\":\"Ledger.add\"' $out/ledger.jsonl    # a method, step by step"
grep -m 8 '"func":"Ledger.add"' "$out/ledger.jsonl"
echo "\$ grep -m 4 '\"func\":\"main\"' $out/ledger.jsonl | tail -n 1    # api_token is redacted"
grep -m 4 '"func":"main"' "$out/ledger.jsonl" | tail -n 1
echo "\$ grep '\"event\":\"exception' $out/ledger.jsonl"
grep '"event":"exception' "$out/ledger.jsonl"
echo "($(wc -l < "$out/ledger.jsonl") events in $out/ledger.jsonl)"

echo
echo "\$ pyrewind html $out/ledger.rwd -o $out/ledger.html    # step through it in a browser"
"$pyrewind" html "$out/ledger.rwd" -o "$out/ledger.html"
echo "(open file://$out/ledger.html: source, call stack with locals, memory diagram, calls over time)"

echo
replay_commands="break ledger.py:26 if total > 2000; continue; where; history total; return; delete 1; break Ledger.add if amount == 0; continue; next; next; rcontinue; print label"
echo "\$ pyrewind replay $out/ledger.rwd -c \"$replay_commands\"    # time travel"
"$pyrewind" replay "$out/ledger.rwd" -c "$replay_commands"
