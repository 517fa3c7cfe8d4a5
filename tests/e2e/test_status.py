"""`pyrewind status`: live sessions appear while they record and disappear at their end; the
file of a collector that died is ignored and removed."""

import json
import os
import subprocess
import time

from e2e_util import base_env, program, run


def status(pyrewind, env):
    res = run([pyrewind.path, "status", "--json"], env=env)
    assert res.returncode == 0, res.describe()
    return json.loads(res.stdout)


def test_live_session_listed_then_gone(pyrewind, interp, work):
    runtime = work / "runtime"
    runtime.mkdir(mode=0o700)
    env = base_env(XDG_RUNTIME_DIR=str(runtime))
    recording = work / "live.rwd"
    proc = subprocess.Popen([pyrewind.path, "run", "-q", "-o", str(recording), "--", interp.path,
                             program("busy_for.py"), "2.5"], stdout=subprocess.PIPE, env=env, cwd=str(work))
    try:
        seen = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            sessions = [s for s in status(pyrewind, env) if s["file"] == str(recording)]
            if sessions and sessions[0]["events"] > 0 and sessions[0]["state"] == "tracing":
                seen = sessions[0]
                break
            time.sleep(0.2)
        assert seen, "the session never showed as tracing with events"
        assert seen["mode"] == "run" and seen["collector_pid"] == proc.pid and seen["pid"] != proc.pid, seen
        text = run([pyrewind.path, "status"], env=env)
        assert str(recording) in text.stdout.decode() and " run " in text.stdout.decode(), text.describe()
    finally:
        proc.communicate(timeout=60)
    assert proc.returncode == 6
    assert status(pyrewind, env) == []
    assert b"no live pyrewind sessions" in run([pyrewind.path, "status"], env=env).stdout


def test_stale_session_file_is_removed(pyrewind, work):
    runtime = work / "runtime"
    runtime.mkdir(mode=0o700)
    env = base_env(XDG_RUNTIME_DIR=str(runtime))
    gone = subprocess.Popen(["true"])
    gone.wait()
    (runtime / "pyrewind").mkdir(mode=0o700)
    stale = runtime / "pyrewind" / ("%d.json" % gone.pid)
    stale.write_text('{"collector_pid":%d,"target_pid":1,"mode":"run","file":"/x.rwd","state":"tracing"}\n' % gone.pid)
    assert status(pyrewind, env) == []
    assert not stale.exists()
