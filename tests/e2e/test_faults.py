"""Faults around a recording: the collector dies while the program runs on; the program forks,
execs, or exits from a thread."""

import json
import os
import signal
import subprocess
import time

import pytest

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


def plain_run(interp, args, work):
    return subprocess.run([interp.path] + args, capture_output=True, env=base_env(), cwd=str(work), timeout=60)


def recorded_funcs(pyrewind, recording, work):
    jsonl = work / (recording.name + ".jsonl")
    pyrewind.export(recording, jsonl)
    with open(jsonl) as lines:
        return {json.loads(line).get("func") for line in lines}


@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_fork_and_exec(pyrewind, interp, work, mode):
    """The child of a fork never writes into the parent's recording; an exec in it runs as
    usual; output (no warning about threads at fork, either) and status are a plain run's."""
    args = [program("fork_exec.py"), mode]
    plain = plain_run(interp, args, work)
    recording = work / ("%s.rwd" % mode)
    traced = subprocess.run([pyrewind.path, "run", "-q", "-o", str(recording), "--", interp.path] + args,
                            capture_output=True, env=base_env(), cwd=str(work), timeout=60)
    assert (traced.returncode, traced.stdout, traced.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    funcs = recorded_funcs(pyrewind, recording, work)
    assert "in_parent" in funcs and "in_child" not in funcs, funcs


def test_os_exit_in_a_thread(pyrewind, interp, work):
    recording = work / "exit_in_thread.rwd"
    res = subprocess.run([pyrewind.path, "run", "-q", "-o", str(recording), "--", interp.path,
                          program("exit_in_thread.py")], capture_output=True, env=base_env(), cwd=str(work),
                         timeout=60)
    assert res.returncode == 3 and res.stdout == b"exiting from a thread\n", res
    info = pyrewind.info_json(recording)
    assert info["status"] == "complete" and info["exit"] == {"code": 3}, info
    assert "spin" in recorded_funcs(pyrewind, recording, work)


def test_disk_full(pyrewind, interp, work):
    """The recording's file system fills up: a clear error, the file readable up to its last
    whole chunk, tracing removed, and the program runs on to its own end."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    small = work / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(small)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        recording = small / "full.rwd"
        res = subprocess.run([pyrewind.path, "run", "-o", str(recording), "--", interp.path,
                              program("busy_for.py"), "1.0"], capture_output=True, env=base_env(), timeout=60)
        assert res.returncode == 6 and res.stdout == b"worked traced_at_end=False\n", res
        assert b"disk full" in res.stderr and b"readable up to its last whole chunk" in res.stderr, res.stderr
        info = pyrewind.info_json(recording)
        assert info["status"] == "recovered" and info["event_count"] > 0, info
    finally:
        subprocess.run(["umount", "-l", str(small)])
