#!/usr/bin/python3
"""pyrewind sampling benchmark (`pyrewind sample`).

For each interpreter, runs CPU-bound workloads (tools/bench/workloads.py) plain, under
`pyrewind sample -- ...` and under Debian's `austin` at 100 Hz and 1 kHz (and `pyrewind sample
--native` at 100 Hz: every thread stopped at each sample), interleaved round by round, and reports the median over rounds of (sampled time / plain time of the same round), the
workload's own time (perf_counter inside the program). Debian bookworm's austin (1.0.1) cannot
read Python 3.10+ ("Interpreter state search timed out"): those cells say so. Then it samples one busy thread by PID for two seconds at more and more samples per
second and reports the rate the sampler sustained (samples in the recording / time sampled,
from `pyrewind info --json`) and the sampler's own CPU time per sample.

Reports only; never fails on numbers. Usage:
    tools/bench/sample_bench.py [--build DIR] [--python PATH ...] [--rounds N] [--quick]
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import BASE_SIZES, DEFAULT_PYTHONS, clean_env, log, probe  # noqa: E402

WORKLOADS = os.path.join(HERE, "workloads.py")
RATES = (100, 1000)
ASKED = (1000, 5000, 10000, 20000)


def elapsed(cmd, tmp):
    res = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(), cwd=tmp, timeout=1800)
    if res.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (cmd, res.returncode, res.stderr.strip()[-300:]))
    return json.loads(res.stdout.strip().splitlines()[-1])["elapsed"]


def sized(python, workload, target, tmp):
    """A size for `workload` whose plain run takes about `target` seconds."""
    size = BASE_SIZES[workload]
    for _ in range(12):
        t = elapsed([python, WORKLOADS, workload, str(size)], tmp)
        if t >= target * 0.5:
            return max(1, int(size * target / t)) if workload != "fib" else size
        size = size + 2 if workload == "fib" else size * 4
    return size


def austin_elapsed(austin, rate, prog, tmp):
    """(workload time under austin at `rate` Hz, None), or (None, why austin could not)."""
    out = os.path.join(tmp, "austin.out")
    res = subprocess.run([austin, "-i", str(1000000 // rate), "-o", out] + prog, capture_output=True, text=True,
                         env=clean_env(), cwd=tmp, timeout=1800)
    lines = [line for line in res.stdout.strip().splitlines() if line.startswith("{")]
    if res.returncode != 0 or not lines or not os.path.exists(out) or os.path.getsize(out) == 0:
        why = (res.stderr.strip().splitlines() or ["exit %d" % res.returncode])[0]
        return None, "austin: %s" % why.strip()[:60]
    return json.loads(lines[-1])["elapsed"], None


def sampled_info(pyrewind, recording):
    res = subprocess.run([pyrewind, "info", "--json", recording], capture_output=True, text=True)
    return json.loads(res.stdout)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default=os.path.join(HERE, "..", "..", "build"))
    parser.add_argument("--python", action="append")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    pyrewind = os.path.join(os.path.abspath(args.build), "bin", "pyrewind")
    if not os.access(pyrewind, os.X_OK):
        sys.exit("no pyrewind binary at %s" % pyrewind)
    pythons = args.python or DEFAULT_PYTHONS
    rounds = 3 if args.quick else args.rounds
    target = 0.5 if args.quick else 1.5
    workloads = ("loops", "fib") if not args.quick else ("loops",)
    austin = shutil.which("austin")
    if not austin:
        log("austin is not installed (apt-get install austin): no comparison with it")
    print("| python | workload | plain s | pyrewind 100 Hz | pyrewind 1 kHz | pyrewind --native 100 Hz "
          "| austin 100 Hz | austin 1 kHz |")
    print("|---|---|---|---|---|---|---|---|")
    rates_table = []
    with tempfile.TemporaryDirectory() as tmp:
        recording = os.path.join(tmp, "bench.rwd")
        for python in pythons:
            info = probe(python)
            if info is None:
                log("skipping %s: not runnable" % python)
                continue
            for workload in workloads:
                size = sized(python, workload, target, tmp)
                prog = [python, WORKLOADS, workload, str(size)]
                plain, ratios, native_ratios = [], {rate: [] for rate in RATES}, []
                austin_ratios = {rate: [] for rate in RATES}
                austin_error = "not installed" if not austin else None
                for _ in range(rounds):
                    p = elapsed(prog, tmp)
                    plain.append(p)
                    for rate in RATES:
                        t = elapsed([pyrewind, "sample", "-q", "-o", recording, "--rate", str(rate), "--"] + prog, tmp)
                        ratios[rate].append(t / p)
                        if austin_error is None:
                            t, austin_error = austin_elapsed(austin, rate, prog, tmp)
                            if austin_error is None:
                                austin_ratios[rate].append(t / p)
                    t = elapsed([pyrewind, "sample", "-q", "--native", "-o", recording, "--rate", "100", "--"] + prog, tmp)
                    native_ratios.append(t / p)
                cells = ["%.3fx" % statistics.median(ratios[r]) for r in RATES]
                cells.append("%.3fx" % statistics.median(native_ratios))
                cells += [austin_error or "%.3fx" % statistics.median(austin_ratios[r]) for r in RATES]
                print("| %s | %s | %.3f | %s |" % (info["version"], workload, statistics.median(plain), " | ".join(cells)),
                      flush=True)
            # Sustained rate: one busy thread sampled by PID for two seconds; the sampler's own
            # CPU time (it is our only child waited for meanwhile) per sample.
            busy = subprocess.Popen([python, WORKLOADS, "loops", str(sized(python, "loops", 10.0, tmp))],
                                    stdout=subprocess.DEVNULL, env=clean_env(), cwd=tmp)
            try:
                for asked in ASKED:
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    subprocess.run([pyrewind, "sample", str(busy.pid), "-q", "-o", recording, "--rate", str(asked),
                                    "--duration", "2"], check=True, env=clean_env(), cwd=tmp)
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                    meta = sampled_info(pyrewind, recording)
                    samples = meta["sample_count"]
                    rates_table.append((info["version"], asked, samples / (meta["duration_ns"] / 1e9),
                                        cpu * 1e6 / samples if samples else 0, meta["dropped_samples"]))
            finally:
                busy.kill()
                busy.wait()
    print()
    print("| python | asked /s | sustained samples/s | sampler CPU per sample | dropped |")
    print("|---|---|---|---|---|")
    for version, asked, got, cpu_us, dropped in rates_table:
        print("| %s | %d | %.0f | %.0f us | %d |" % (version, asked, got, cpu_us, dropped))


if __name__ == "__main__":
    main()
