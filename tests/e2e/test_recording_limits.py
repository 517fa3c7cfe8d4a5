"""--max-size and --max-duration: the recording stops within its bound, complete and readable,
and the program runs on untraced to its own end with its own output and status."""

import os
import subprocess
import time

from e2e_util import base_env, program, run

LIMIT = 256 * 1024


def record(pyrewind, interp, work, name, *options, seconds="1.5"):
    recording = work / name
    res = run([pyrewind.path, "run", "-o", str(recording)] + list(options) +
              ["--", interp.path, program("busy_for.py"), seconds], env=base_env(), cwd=str(work))
    return recording, res


def test_max_size(pyrewind, interp, work):
    recording, res = record(pyrewind, interp, work, "size.rwd", "--max-size", "256K")
    assert res.returncode == 6, res.describe()
    assert res.stdout == b"worked traced_at_end=False\n", res.describe()
    assert b"--max-size" in res.stderr, res.describe()
    assert 0 < os.path.getsize(recording) <= LIMIT
    info = pyrewind.info_json(recording)
    assert info["status"] == "complete", info
    assert "--max-size" in info["stop_reason"], info
    assert info["event_count"] > 1000, info
    assert info["exit"] == {"code": 6}, info


def test_max_duration(pyrewind, interp, work):
    recording, res = record(pyrewind, interp, work, "duration.rwd", "--max-duration", "0.3")
    assert res.returncode == 6, res.describe()
    assert res.stdout == b"worked traced_at_end=False\n", res.describe()
    info = pyrewind.info_json(recording)
    assert info["status"] == "complete" and "--max-duration" in info["stop_reason"], info
    last = max(t["last_time_ns"] for t in info["threads"])
    # Tracing starts at the first line, a little after the recording's start; the stop takes
    # one collector poll and one agent poll.
    assert 0.2e9 < last < 0.9e9, "last event at %.3f s" % (last / 1e9)


def test_no_limit_records_to_the_end(pyrewind, interp, work):
    recording, res = record(pyrewind, interp, work, "whole.rwd", seconds="0.3")
    assert res.returncode == 6 and res.stdout == b"worked traced_at_end=True\n", res.describe()
    assert pyrewind.info_json(recording)["stop_reason"] is None


def test_attach_max_size(pyrewind, interp, work):
    target = subprocess.Popen([interp.path, program("busy_for.py"), "4"], stdout=subprocess.PIPE, env=base_env())
    try:
        time.sleep(0.5)
        recording = work / "attach.rwd"
        started = time.monotonic()
        res = run([pyrewind.path, "attach", str(target.pid), "-o", str(recording), "--max-size", "256K",
                   "--duration", "30"])
        assert res.returncode == 0, res.describe()
        assert time.monotonic() - started < 3.5, "attach did not stop at the size limit"
        assert b"--max-size" in res.stderr, res.describe()
        assert 0 < os.path.getsize(recording) <= LIMIT
        info = pyrewind.info_json(recording)
        assert info["status"] == "complete" and "--max-size" in info["stop_reason"], info
    finally:
        out, _ = target.communicate(timeout=30)
    assert target.returncode == 6 and out == b"worked traced_at_end=False\n"
