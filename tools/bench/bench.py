#!/usr/bin/python3
"""pyrewind overhead benchmark.

For each interpreter, runs CPU-bound workloads (tools/bench/workloads.py) in four modes,
interleaved round by round:
  plain     the workload alone
  floor     under a bare C callback that only counts LINE events (sys.monitoring LINE on
            3.12+, a C trace function set with PyEval_SetTrace on 3.9-3.11), compiled here
            against that interpreter's headers
  calls     3.12+: the same callback given PY_START and PY_RETURN too, the least any tracer
            that records calls and returns pays (on 3.9-3.11 the floor already has them)
  locals    `pyrewind run` (default settings: locals captured)
  lines     `pyrewind run --no-locals`
and then times `pyrewind attach` on a running program (--attaches times): command start to
the agent tracing, and to the first recorded line.
and reports, per mode, the median over rounds of (mode time / plain time of the same round).
Times are the workload's own (perf_counter inside the program), so interpreter start-up and
the recording's final flush are not part of the ratio; the "wall" column gives the whole
`pyrewind run` process against the whole plain process. Also reported: events recorded and
bytes per event of the recording (file size / event count from `pyrewind info --json`).

Benchmarks report; they never fail on numbers. The exit status is non-zero only when the
harness itself cannot run (no pyrewind binary).

Usage: tools/bench/run.sh [--quick] [--python PATH ...] [--rounds N] [--json FILE]
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = os.path.join(HERE, "workloads.py")
FLOOR_SOURCE = os.path.join(HERE, "linefloor.c")
PYENV = "/root/.pyenv/versions"
DEFAULT_PYTHONS = [
    PYENV + "/3.9.18/bin/python3.9",
    PYENV + "/3.10.13/bin/python3.10",
    PYENV + "/3.11.7/bin/python3.11",
    PYENV + "/3.12.1/bin/python3.12",
    PYENV + "/3.13.0/bin/python3.13",
    "/usr/bin/python3.11",
]
# Starting sizes; each is scaled per interpreter so the plain run takes about --target seconds.
BASE_SIZES = {"loops": 20000, "fib": 20, "strings": 100000, "containers": 100000, "methods": 100000,
              "settings": 200000}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYREWIND", "LD_PRELOAD"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def probe(python):
    if not os.access(python, os.X_OK):
        return None
    code = ("import sys, sysconfig, platform, json; print(json.dumps({'version': platform.python_version(), "
            "'minor': sys.version_info[1], 'include': sysconfig.get_paths()['include'], "
            "'ext': sysconfig.get_config_var('EXT_SUFFIX') or '.so'}))")
    try:
        out = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return json.loads(out.stdout) if out.returncode == 0 else None


def build_floor(python, info, tmp):
    """Compiles linefloor.c for this interpreter; returns (dir, None) or (None, reason)."""
    out_dir = os.path.join(tmp, "floor-" + python.strip("/").replace("/", "_"))
    os.makedirs(out_dir, exist_ok=True)
    target = os.path.join(out_dir, "_linefloor" + info["ext"])
    cc = os.environ.get("CC", "cc")
    cmd = [cc, "-O2", "-shared", "-fPIC", "-I", info["include"], FLOOR_SOURCE, "-o", target]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        last = res.stderr.strip().splitlines()[-1:] or ["cc failed"]
        return None, "floor not measured, its build failed: " + last[0]
    return out_dir, None


class Runner:
    def __init__(self, pyrewind, python, floor_dir, tmp):
        self.pyrewind = pyrewind
        self.python = python
        self.floor_dir = floor_dir
        self.tmp = tmp

    def run(self, mode, workload, size):
        """(workload seconds, wall seconds, recording path or None) or raises RuntimeError."""
        prog = [WORKLOADS, workload, str(size)]
        recording = None
        if mode == "plain":
            cmd = [self.python] + prog
        elif mode in ("floor", "calls"):
            flag = "--floor" if mode == "floor" else "--floor-calls"
            cmd = [self.python, WORKLOADS, flag, self.floor_dir, workload, str(size)]
        else:
            recording = os.path.join(self.tmp, "bench-%s.rwd" % mode)
            cmd = [self.pyrewind, "run", "-q", "-o", recording]
            if mode == "lines":
                cmd.append("--no-locals")
            cmd += ["--", self.python] + prog
        start = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(), cwd=self.tmp, timeout=1800)
        wall = time.perf_counter() - start
        if res.returncode != 0:
            raise RuntimeError("%s exited %d: %s" % (mode, res.returncode, res.stderr.strip()[-300:]))
        try:
            report = json.loads(res.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise RuntimeError("%s printed no result: %r" % (mode, res.stdout[-300:]))
        return report["elapsed"], wall, recording


def recording_stats(pyrewind, recording):
    res = subprocess.run([pyrewind, "info", "--json", recording], capture_output=True, text=True)
    if res.returncode != 0:
        return None, None
    info = json.loads(res.stdout)
    events = info.get("event_count") or 0
    size = os.path.getsize(recording)
    return events, (size / events if events else None)


def calibrate(runner, workload, target):
    size = BASE_SIZES[workload]
    for _ in range(4):
        elapsed, _, _ = runner.run("plain", workload, size)
        if elapsed <= 0:
            break
        if workload == "fib":  # exponential: adjust n by log_phi of the ratio
            import math
            step = math.log(target / elapsed) / math.log(1.618)
            if abs(step) < 0.5:
                break
            size = max(5, size + int(round(step)))
        else:
            factor = target / elapsed
            if 0.8 < factor < 1.25:
                break
            size = max(1, int(size * factor))
    return size


def fmt_ratio(values):
    return "%.2f×" % statistics.median(values) if values else "–"


def bench_python(python, pyrewind, agent_dir, args, tmp):
    info = probe(python)
    if info is None:
        log("%s: not installed, skipped" % python)
        return None
    label = "%s (%s)" % (info["version"], python)
    agent = os.path.join(agent_dir, "pyrewind-agent-cpython-3.%d.so" % info["minor"])
    modes = ["plain"]
    notes = []
    floor_dir, why = build_floor(python, info, tmp)
    if floor_dir:
        modes += ["floor", "calls"] if info["minor"] >= 12 else ["floor"]
    else:
        notes.append(why)
    if os.path.exists(agent):
        modes += ["locals", "lines"]
    else:
        notes.append("no agent built for 3.%d" % info["minor"])
    runner = Runner(pyrewind, python, floor_dir, tmp)
    rows = []
    for workload in args.workloads:
        size = calibrate(runner, workload, args.target)
        ratios = {m: [] for m in modes if m != "plain"}
        wall_ratios = []
        plain_times = []
        errors = {}
        for r in range(args.rounds):
            order = modes[r % len(modes):] + modes[:r % len(modes)]  # rotate who goes first
            times = {}
            walls = {}
            for mode in order:
                if mode in errors:
                    continue
                try:
                    times[mode], walls[mode], _ = runner.run(mode, workload, size)
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    errors[mode] = str(e)
            if "plain" not in times:
                break
            plain_times.append(times["plain"])
            for mode in ratios:
                if mode in times:
                    ratios[mode].append(times[mode] / times["plain"])
            if "locals" in walls:
                wall_ratios.append(walls["locals"] / walls["plain"])
        row = {"python": info["version"], "interpreter": python, "workload": workload, "size": size,
               "plain_s": statistics.median(plain_times) if plain_times else None,
               "ratios": {m: (statistics.median(v) if v else None) for m, v in ratios.items()},
               "wall_locals": statistics.median(wall_ratios) if wall_ratios else None,
               "errors": errors}
        for mode in ("locals", "lines"):
            if mode in ratios and mode not in errors:
                events, per_event = recording_stats(pyrewind, os.path.join(tmp, "bench-%s.rwd" % mode))
                row["events_" + mode] = events
                row["bytes_per_event_" + mode] = per_event
        rows.append(row)
        log("  %-11s %-10s size %-8d plain %.3fs  %s" % (
            label.split()[0], workload, size, row["plain_s"] or 0,
            "  ".join("%s %s" % (m, fmt_ratio(v)) for m, v in ratios.items())))
        for mode, e in errors.items():
            log("    %s failed: %s" % (mode, e))
    return {"python": info["version"], "interpreter": python, "rows": rows, "notes": notes}


ATTACH_TARGET = "import time\nticks = 0\nwhile True:\n    ticks += 1\n    time.sleep(0.001)\n"


def attach_latency(python, pyrewind, tmp, attaches):
    """Times `pyrewind attach` on a running process: from the command's start to the agent
    tracing (as the command reports it) and to the first recorded line (the recording's first
    event, on the wall clock). Returns a dict of millisecond lists, or an error string."""
    target = subprocess.Popen([python, "-c", ATTACH_TARGET], env=clean_env())
    ready, first_line = [], []
    try:
        time.sleep(0.5)
        recording = os.path.join(tmp, "attach.rwd")
        for _ in range(attaches):
            started_ns = time.time_ns()
            res = subprocess.run([pyrewind, "attach", str(target.pid), "-o", recording, "--duration", "0.1"],
                                 capture_output=True, text=True, env=clean_env(), timeout=60)
            if res.returncode != 0:
                return "attach exited %d: %s" % (res.returncode, res.stderr.strip()[-300:])
            marker = re.search(r"attached to process \d+ \(Python [^)]*\) in ([0-9.]+) ms", res.stderr)
            if marker:
                ready.append(float(marker.group(1)))
            info = json.loads(subprocess.run([pyrewind, "info", "--json", recording], capture_output=True,
                                             text=True, timeout=60).stdout)
            firsts = [t["first_time_ns"] for t in info["threads"] if t.get("first_time_ns") is not None]
            if firsts:
                first_line.append((int(info["start_wall_time_ns"]) + min(firsts) - started_ns) / 1e6)
    finally:
        target.kill()
        target.wait()
    return {"ready_ms": ready, "first_line_ms": first_line}


def latency_markdown(latencies):
    out = ["", "Attach latency over %d attaches to a running program (ms; command start to ...):" %
           max((len(v.get("ready_ms", [])) for v in latencies.values() if isinstance(v, dict)), default=0), "",
           "| Python | agent tracing, median | max | first recorded line, median | max |", "|---|---:|---:|---:|---:|"]
    for name, value in latencies.items():
        if not isinstance(value, dict):
            out.append("| %s | error: %s | | | |" % (name, value))
            continue
        r, f = value["ready_ms"], value["first_line_ms"]
        out.append("| %s | %s | %s | %s | %s |" % (
            name, "%.1f" % statistics.median(r) if r else "–", "%.1f" % max(r) if r else "–",
            "%.1f" % statistics.median(f) if f else "–", "%.1f" % max(f) if f else "–"))
    out.append("")
    out.append("Target (issue 3): ≤ 20 ms median to agent ready; gdb-based tools take 300–1400 ms here.")
    return "\n".join(out)


def markdown(results, args):
    out = []
    out.append("Slowdown against a plain run (median over %d interleaved rounds of the per-round ratio; "
               "workload time measured inside the program)." % args.rounds)
    out.append("")
    out.append("| Python | workload | plain | floor (bare C LINE callback) | floor with calls (3.12+) | "
               "pyrewind, locals | pyrewind --no-locals | locals ÷ floor | wall, locals | events | "
               "B/event locals | B/event no-locals |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for res in results:
        for row in res["rows"]:
            r = row["ratios"]

            def cell(mode):
                if mode in row["errors"]:
                    return "error"
                v = r.get(mode)
                return "%.2f×" % v if v else "–"
            rel = "%.2f" % (r["locals"] / r["floor"]) if r.get("locals") and r.get("floor") else "–"
            name = res["python"] + ("" if res["interpreter"].startswith(PYENV) else " (Debian)")
            out.append("| %s | %s | %.3f s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                name, row["workload"], row["plain_s"] or 0, cell("floor"), cell("calls"), cell("locals"),
                cell("lines"), rel,
                "%.2f×" % row["wall_locals"] if row.get("wall_locals") else "–",
                row.get("events_locals") or "–",
                "%.1f" % row["bytes_per_event_locals"] if row.get("bytes_per_event_locals") else "–",
                "%.1f" % row["bytes_per_event_lines"] if row.get("bytes_per_event_lines") else "–"))
        for note in res["notes"]:
            out.append("")
            out.append("%s: %s" % (res["python"], note))
    out.append("")
    out.append("\"error\" in a cell: that run failed (its stderr is in the log above).")
    out.append("Targets (issue 2): locals ≤ 3× on 3.12+, ≤ 1.3× the floor on 3.9–3.11.")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pyrewind", default=None, help="bin/pyrewind (default: BUILD/bin/pyrewind)")
    parser.add_argument("--build", default=os.environ.get("PYREWIND_BUILD_DIR", "build"),
                        help="build directory (default: ./build or $PYREWIND_BUILD_DIR)")
    parser.add_argument("--python", action="append", help="interpreter to measure (repeatable)")
    parser.add_argument("--workload", dest="workloads", action="append", choices=sorted(BASE_SIZES))
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--target", type=float, default=None, help="seconds per plain run")
    parser.add_argument("--quick", action="store_true", help="short runs, 3 rounds")
    parser.add_argument("--attaches", type=int, default=20, help="attaches timed per interpreter")
    parser.add_argument("--json", help="also write the raw results here")
    args = parser.parse_args()
    args.workloads = args.workloads or ["loops", "fib", "strings", "containers", "methods", "settings"]
    args.rounds = args.rounds or (3 if args.quick else 5)
    args.target = args.target or (0.1 if args.quick else 0.3)
    pyrewind = os.path.abspath(args.pyrewind or os.path.join(args.build, "bin", "pyrewind"))
    if not os.access(pyrewind, os.X_OK):
        log("bench: %s not found; build first (cmake --build build)" % pyrewind)
        return 2
    agent_dir = os.path.join(os.path.dirname(os.path.dirname(pyrewind)), "lib", "pyrewind")
    tmp = tempfile.mkdtemp(prefix="pyrewind-bench-")
    results = []
    latencies = {}
    try:
        for python in args.python or DEFAULT_PYTHONS:
            log("%s:" % python)
            res = bench_python(python, pyrewind, agent_dir, args, tmp)
            if res:
                results.append(res)
                name = res["python"] + ("" if python.startswith(PYENV) else " (Debian)")
                latencies[name] = attach_latency(python, pyrewind, tmp, args.attaches)
                log("  attach latency: %s" % latencies[name])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(markdown(results, args))
    print(latency_markdown(latencies))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
