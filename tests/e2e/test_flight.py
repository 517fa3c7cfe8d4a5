"""--ring: a flight recorder keeps only the newest events in the collector's memory and writes
them as a window on a trigger (SIGUSR1 / `pyrewind trigger`, an uncaught exception,
--trigger-on TYPE); nothing is written without one, and the collector's memory stays bounded."""

import json
import os
import signal
import subprocess
import time

from e2e_util import base_env, program, run


def start(pyrewind, interp, work, *options, args=()):
    cmd = [pyrewind.path, "run", "-o", str(work / "fr.rwd"), "--ring", "1M"] + list(options)
    return subprocess.Popen(cmd + ["--", interp.path, program("flight_target.py"), str(work / "stop")] + list(args),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=base_env(), cwd=str(work))


def events(pyrewind, recording, out):
    pyrewind.export(recording, out)
    with open(out) as f:
        return [e for e in map(json.loads, f) if "seq" in e]  # events, not losses


def wait_for(path, seconds=10):
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        assert time.monotonic() < deadline, "%s was not written" % path
        time.sleep(0.05)


def last_i(evs):
    return max(e["locals"]["i"] for e in evs if e["func"] == "<module>" and "i" in e.get("locals", {}))


def rss_anon_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise AssertionError("no RssAnon")


def test_sigusr1_writes_the_newest_window(pyrewind, interp, work):
    proc = start(pyrewind, interp, work)
    try:
        time.sleep(1.5)
        wait_for(work / "stop.progress")
        with open(work / "stop.progress") as f:
            reached = int(f.read())
        proc.send_signal(signal.SIGUSR1)  # to the collector: the program never sees it
        wait_for(work / "fr.rwd")
        (work / "stop").touch()
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    final = int(out)
    info = pyrewind.info_json(work / "fr.rwd")
    assert info["status"] == "complete", info
    evs = events(pyrewind, work / "fr.rwd", work / "fr.jsonl")
    assert evs[0]["seq"] > 0  # older events were forgotten
    # The window ends with what ran when the signal came: at least the iteration the program
    # had reported before it (its events were committed to shared memory before the report).
    assert reached <= last_i(evs) <= final, (reached, last_i(evs), final)
    assert b"wrote window 1" in err


def test_trigger_command_and_series_of_windows(pyrewind, interp, work):
    proc = start(pyrewind, interp, work)
    try:
        time.sleep(1)
        for n in (1, 2):
            res = run([pyrewind.path, "trigger", str(proc.pid)])
            assert res.returncode == 0, res.describe()
            expected = work / ("fr.rwd" if n == 1 else "fr.1.rwd")
            assert res.stdout.decode().strip() == str(expected), res.describe()
            time.sleep(0.3)
        res = run([pyrewind.path, "status"])
        assert "%s  (flight recorder, 2 windows)" % (work / "fr.rwd") in res.stdout.decode(), res.describe()
        (work / "stop").touch()
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    first = events(pyrewind, work / "fr.1.rwd", work / "w2.jsonl")  # a window alone
    both = events(pyrewind, work / "fr.rwd", work / "all.jsonl")  # the series
    assert both[-len(first):] == first and len(both) > len(first)
    seqs = [e["seq"] for e in both]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # The reading commands take the windows, with the gap between them, as one recording.
    gap = first[0]["seq"]
    for cmd in (["stats"], ["html", "-o", str(work / "p.html"), "--from", str(gap - 10), "--max-steps", "50"],
                ["replay", "-c", "goto %d; where; back; where" % gap],
                ["table", "--at", "%s:15" % program("flight_target.py")],
                ["export", "--format", "chrome", "-o", str(work / "c.json")]):
        res = run([pyrewind.path, cmd[0], str(work / "fr.rwd")] + cmd[1:])
        assert res.returncode == 0, res.describe()
    res = run([pyrewind.path, "replay", str(work / "fr.rwd"), "-c", "goto 0"])
    assert ("The recording has steps %d to %d." % (both[0]["seq"], both[-1]["seq"])).encode() in res.stdout, \
        res.describe()


def test_trigger_on_exception_type(pyrewind, interp, work):
    # A trigger the agent had to drop (its ring full) cannot fire: a ring that holds the whole
    # run, whatever the collector's pace, keeps this about the trigger rule.
    proc = start(pyrewind, interp, work, "--trigger-on", "Boom", "--buffer-size", str(512 << 20), args=["boom"])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    evs = events(pyrewind, work / "fr.rwd", work / "fr.jsonl")
    last = evs[-1]
    assert last["event"] == "exception" and last["exception"]["type"] == "Boom", last
    assert last["func"] == "fail"
    assert not os.path.exists(work / "fr.1.rwd")  # raised once: the frames it passed do not re-trigger


def test_uncaught_exception_triggers(pyrewind, interp, work):
    res = run([pyrewind.path, "run", "-o", str(work / "fr.rwd"), "--ring", "1M", "--", interp.path,
               program("uncaught.py")], cwd=str(work))
    assert res.returncode == 1, res.describe()
    evs = events(pyrewind, work / "fr.rwd", work / "fr.jsonl")
    last = evs[-1]
    assert last["event"] == "return" and last["depth"] == 0 and "value" not in last, last
    assert any(e["event"] == "exception" and e["exception"]["type"] == "ValueError" for e in evs)


def test_nothing_written_without_a_trigger_and_memory_bounded(pyrewind, interp, work):
    proc = start(pyrewind, interp, work)
    try:
        time.sleep(1)
        early = rss_anon_kib(proc.pid)
        time.sleep(3)
        late = rss_anon_kib(proc.pid)
        (work / "stop").touch()
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert b"nothing was written" in err, err
    assert not [n for n in os.listdir(work) if n.startswith("fr")]
    # Seconds of events went through a 1 MiB ring: the collector did not grow with them.
    assert late - early < 8 * 1024, (early, late)
    assert late < 64 * 1024, late


def test_trigger_refuses_a_normal_session(pyrewind, interp, work):
    proc = subprocess.Popen([pyrewind.path, "run", "-q", "-o", str(work / "n.rwd"), "--", interp.path,
                             program("flight_target.py"), str(work / "stop")], env=base_env(), cwd=str(work),
                            stdout=subprocess.PIPE)
    try:
        time.sleep(1)
        res = run([pyrewind.path, "trigger", str(proc.pid)])
        assert res.returncode == 2 and b"not a flight recorder" in res.stderr, res.describe()
        (work / "stop").touch()
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0


def test_attach_flight_recorder(pyrewind, interp, work):
    target = subprocess.Popen([interp.path, program("flight_target.py"), str(work / "stop")],
                              stdout=subprocess.PIPE, env=base_env())
    attach = None
    try:
        time.sleep(0.5)
        attach = subprocess.Popen([pyrewind.path, "attach", str(target.pid), "-o", str(work / "fr.rwd"),
                                   "--ring", "300ms"], stderr=subprocess.PIPE, env=base_env())
        time.sleep(2)
        res = run([pyrewind.path, "trigger", str(target.pid)])
        assert res.returncode == 0 and res.stdout.decode().strip() == str(work / "fr.rwd"), res.describe()
        attach.send_signal(signal.SIGTERM)
        _, err = attach.communicate(timeout=30)
        assert attach.returncode == 0, err
        assert b"wrote 1 windows" in err, err
        (work / "stop").touch()
        out, _ = target.communicate(timeout=30)
    finally:
        target.kill()
        if attach:
            attach.kill()
    assert target.returncode == 0
    info = pyrewind.info_json(work / "fr.rwd")
    assert info["status"] == "complete" and info["mode"] == "attach", info
    assert any("SIGUSR1" in m for m in info["agent_messages"]), info
    evs = events(pyrewind, work / "fr.rwd", work / "fr.jsonl")
    # A 300 ms ring: the window spans about that (chunks, written every second at most, are its unit).
    assert evs[-1]["t_ns"] - evs[0]["t_ns"] < 1.5e9
    assert last_i(evs) <= int(out)
