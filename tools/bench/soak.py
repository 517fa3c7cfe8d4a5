#!/usr/bin/env python3
"""pyrewind soak benchmark: records a multi-threaded service (tests/e2e/programs/soak_target.py)
for a given time and reports, once per interval, the resident memory of the traced program and
of the collector (`pyrewind run` itself) -- private memory, and the shared-memory ring's pages
in use, which grow up to the ring's size --, the recording's size and the events per second, then
the drops. Memory must stay flat: a recording of any length costs the same memory.

    tools/bench/soak.py [--seconds 600] [--interval 10] [--python PATH] [--build DIR] [--json FILE]

Reports only (exit status 0 unless the harness cannot run); tests/e2e/test_soak.py runs a short
version and asserts flat memory."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.path.join(ROOT, "tests", "e2e", "programs", "soak_target.py")


def memory_kib(pid):
    """(private anonymous resident memory, shared memory resident) in KiB: the first must stay
    flat; the second grows up to the ring's size as the ring's chunks are first used."""
    fields = {}
    try:
        with open("/proc/%d/status" % pid) as status:
            for line in status:
                name, _, value = line.partition(":")
                if name in ("RssAnon", "RssShmem"):
                    fields[name] = int(value.split()[0])
    except OSError:
        return None
    return (fields["RssAnon"], fields["RssShmem"]) if len(fields) == 2 else None


def child_of(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as children:
            found = children.read().split()
        return int(found[0]) if found else None
    except OSError:
        return None


def soak(pyrewind, python, seconds, interval, workdir):
    """Runs the soak; returns {"samples": [...], "info": {...}, "returncode": N, "output": str}."""
    recording = os.path.join(workdir, "soak.rwd")
    collector = subprocess.Popen([pyrewind, "run", "-q", "-o", recording, "--", python, TARGET, str(seconds)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    started = time.monotonic()
    target = None
    samples = []
    while collector.poll() is None:
        time.sleep(min(interval, 1.0) if not samples else interval)
        target = target or child_of(collector.pid)
        elapsed = time.monotonic() - started
        size = os.path.getsize(recording) if os.path.exists(recording) else 0
        target_memory = memory_kib(target) if target else None
        collector_memory = memory_kib(collector.pid)
        if target_memory is None or collector_memory is None:
            break
        samples.append({"t": round(elapsed, 1), "target_anon_kib": target_memory[0],
                        "target_shmem_kib": target_memory[1], "collector_anon_kib": collector_memory[0],
                        "collector_shmem_kib": collector_memory[1], "file_bytes": size})
    out, err = collector.communicate()
    info = subprocess.run([pyrewind, "info", "--json", recording], capture_output=True)
    return {"samples": samples, "returncode": collector.returncode, "output": out.decode(),
            "stderr": err.decode(), "info": json.loads(info.stdout) if info.returncode == 0 else None}


def report(result, seconds):
    lines = ["| t (s) | target private (MiB) | target ring (MiB) | collector private (MiB) | file (MiB) |",
             "|---:|---:|---:|---:|---:|"]
    for s in result["samples"]:
        lines.append("| %.0f | %.1f | %.1f | %.1f | %.1f |" % (
            s["t"], s["target_anon_kib"] / 1024, s["target_shmem_kib"] / 1024, s["collector_anon_kib"] / 1024,
            s["file_bytes"] / 2**20))
    info = result["info"] or {}
    events = info.get("event_count", 0)
    lines.append("")
    lines.append("events %d (%.0f/s), dropped %d, file %.1f MiB, program exit %s" % (
        events, events / seconds, info.get("dropped_records", 0),
        (result["samples"][-1]["file_bytes"] if result["samples"] else 0) / 2**20, result["returncode"]))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--interval", type=float, default=10)
    parser.add_argument("--python", default="/usr/bin/python3")
    parser.add_argument("--build", default=os.environ.get("PYREWIND_BUILD_DIR", os.path.join(ROOT, "build")))
    parser.add_argument("--json", help="also write the samples here")
    args = parser.parse_args()
    pyrewind = os.path.join(args.build, "bin", "pyrewind")
    if not os.access(pyrewind, os.X_OK):
        sys.exit("soak: %s is missing: build first" % pyrewind)
    with tempfile.TemporaryDirectory(prefix="pyrewind-soak.") as workdir:
        result = soak(pyrewind, args.python, args.seconds, args.interval, workdir)
    print(report(result, args.seconds))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=1)


if __name__ == "__main__":
    main()
