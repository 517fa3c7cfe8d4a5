"""Faults around a recording: the collector dies while the program runs on."""

import os
import signal
import subprocess
import time

from e2e_util import base_env, program


def test_collector_killed_during_run(pyrewind, interp, work):
    """`pyrewind run` (the collector) is SIGKILLed: the program runs on to its own end with the
    same output and status, its agent notices within a second and removes tracing, and the
    partial recording is readable."""
    recording = work / "killed.rwd"
    proc = subprocess.Popen([pyrewind.path, "run", "-q", "-o", str(recording), "--",
                             interp.path, program("outlive_collector.py")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=base_env(), cwd=str(work))
    try:
        assert proc.stdout.readline() == b"before traced=True work=59997\n"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        killed_at = time.monotonic()
        proc.stdin.write(b"go\n")
        proc.stdin.close()
        # The program is the collector's child: it outlives it and keeps the stdout pipe.
        after = proc.stdout.readline()
        noticed_in = time.monotonic() - killed_at
        rest = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert after == b"after traced=False work=59997\n", after
    assert noticed_in < 2.5, "tracing still installed %.1f s after the collector died" % noticed_in
    assert rest == b""
    info = pyrewind.info_json(recording)
    assert info["status"] in ("recovered", "damaged"), info
