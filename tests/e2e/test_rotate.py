"""--rotate: a recording written as a numbered series of bounded files, each a complete
recording, read by every command as one; with --max-size, the newest files within the bound."""

import json
import os
import subprocess
import time

from e2e_util import base_env, program, run

ROTATE = 64 * 1024
EVENTS_ARG = "40000"  # many_events.py iterations: a few MB of events, several files


def parts(work, stem="app"):
    found = []
    for name in os.listdir(work):
        if name == stem + ".rwd":
            found.append((0, name))
        elif name.startswith(stem + ".") and name.endswith(".rwd") and name[len(stem) + 1:-4].isdigit():
            found.append((int(name[len(stem) + 1:-4]), name))
    return [work / name for _, name in sorted(found)]


def export_steps(pyrewind, recording, out):
    pyrewind.export(recording, out)
    steps = []
    with open(out) as f:
        for line in f:
            e = json.loads(line)
            if "seq" in e:  # not a loss
                steps.append((e["seq"], e["event"], e["func"], e["line"], e["depth"]))
    return steps


def test_rotated_series_reads_as_the_whole_recording(pyrewind, interp, work):
    args = [program("many_events.py"), EVENTS_ARG]
    res = pyrewind.record(args, work / "app.rwd", options=["--rotate", "64K"], cwd=str(work))
    assert res.returncode == 0, res.describe()
    files = parts(work)
    assert len(files) >= 3, files
    assert files[0].name == "app.rwd" and files[1].name == "app.1.rwd"
    later = 0
    for f in files:
        info = pyrewind.info_json(f)  # app.N.rwd alone is a complete recording; app.rwd opens the series
        size = os.path.getsize(f)
        assert size <= ROTATE or (size <= 1.1 * ROTATE and info["chunk_count"] == 1), (f, size)
        assert info["status"] == "complete", (f, info)
        later += info["event_count"] if f != files[0] else 0

    whole = work / "whole.rwd"
    res = pyrewind.record(args, whole, cwd=str(work))
    assert res.returncode == 0, res.describe()
    series = export_steps(pyrewind, work / "app.rwd", work / "series.jsonl")
    plain = export_steps(pyrewind, whole, work / "whole.jsonl")
    assert series == plain
    info = pyrewind.info_json(work / "app.rwd")
    assert info["event_count"] == len(plain) and 0 < later < len(plain), info
    assert info["exit"] == {"code": 0}, info

    # Every reading command takes the series.
    for cmd in (["stats", "--format", "json"], ["html", "-o", str(work / "p.html"), "--max-steps", "100"],
                ["replay", "-c", "goto %d; where" % (len(plain) - 5)], ["table", "--at", "%s:14" % program("many_events.py")]):
        res = run([pyrewind.path, cmd[0], str(work / "app.rwd")] + cmd[1:])
        assert res.returncode == 0, res.describe()


def test_max_size_keeps_the_newest_files(pyrewind, interp, work):
    args = [program("many_events.py"), EVENTS_ARG]
    res = pyrewind.record(args, work / "app.rwd", options=["--rotate", "64K", "--max-size", "192K"], cwd=str(work))
    assert res.returncode == 0, res.describe()
    files = parts(work)
    assert sum(os.path.getsize(f) for f in files) <= 192 * 1024, files
    assert files and files[0].name != "app.rwd", files  # the oldest were deleted
    whole = work / "whole.rwd"
    assert pyrewind.record(args, whole, cwd=str(work)).returncode == 0
    plain = export_steps(pyrewind, whole, work / "whole.jsonl")
    # The base name still opens what is left of the series: the newest events, seq kept.
    kept = export_steps(pyrewind, work / "app.rwd", work / "kept.jsonl")
    assert 0 < len(kept) < len(plain)
    assert kept[0][0] > 0
    assert kept == plain[-len(kept):]


def test_rotate_refuses_a_max_size_below_two_files(pyrewind, interp, work):
    res = pyrewind.record([program("many_events.py"), "10"], work / "app.rwd",
                          options=["--rotate", "64K", "--max-size", "100K"])
    assert res.returncode == 2 and b"--max-size" in res.stderr, res.describe()


def test_a_new_series_replaces_an_older_one(pyrewind, interp, work):
    args = [program("many_events.py"), EVENTS_ARG]
    assert pyrewind.record(args, work / "app.rwd", options=["--rotate", "64K"]).returncode == 0
    before = len(parts(work))
    assert pyrewind.record([program("many_events.py"), "10"], work / "app.rwd",
                           options=["--rotate", "64K"]).returncode == 0
    assert before > 1 and [f.name for f in parts(work)] == ["app.rwd"]
    assert pyrewind.info_json(work / "app.rwd")["status"] == "complete"


def test_attach_rotates(pyrewind, interp, work):
    target = subprocess.Popen([interp.path, program("flight_target.py"), str(work / "stop")],
                              stdout=subprocess.PIPE, env=base_env())
    try:
        time.sleep(0.5)
        res = run([pyrewind.path, "attach", str(target.pid), "-o", str(work / "app.rwd"), "--rotate", "64K",
                   "--duration", "1.5"])
        assert res.returncode == 0, res.describe()
        (work / "stop").touch()
        target.communicate(timeout=30)
    finally:
        target.kill()
    files = parts(work)
    assert len(files) >= 2, files
    for f in files:  # a single chunk is never split: one that compressed worse than foreseen may exceed a little
        size = os.path.getsize(f)
        assert size <= ROTATE or (size <= 1.1 * ROTATE and pyrewind.info_json(f)["chunk_count"] == 1), (f, size)
    info = pyrewind.info_json(work / "app.rwd")
    assert info["status"] == "complete" and len(info["files"]) == len(files), info
    steps = export_steps(pyrewind, work / "app.rwd", work / "a.jsonl")
    assert [s[0] for s in steps] == list(range(len(steps))) and len(steps) == info["event_count"]
