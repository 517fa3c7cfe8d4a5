"""`pyrewind info` describes a recording truthfully: checked against what the program itself
printed and against the export of the same recording."""

import collections
import json
import signal

from compare import load_jsonl
from e2e_util import program


def record_probe(pyrewind, work):
    args = [program("info_probe.py"), "alpha", "two words"]
    recording = work / "probe.rwd"
    res = pyrewind.record(args, recording, cwd=str(work))
    assert res.returncode == 0, res.describe()
    return recording, json.loads(res.stdout), args


def test_info_json_matches_program_and_export(pyrewind, interp, work):
    recording, printed, args = record_probe(pyrewind, work)
    info = pyrewind.info_json(recording)
    assert info["status"] == "complete" and info["damage"] is None, info
    assert info["python"]["implementation"] == "cpython"
    assert info["python"]["version"] == interp.version
    assert info["python"]["hexversion"] == interp.hexversion
    assert info["pid"] == printed["pid"]
    assert info["argv"][-len(printed["argv"]):] == printed["argv"], (info["argv"], printed["argv"])
    assert info["cwd"] == str(work.resolve())
    assert info["exit"] == {"code": 0}
    assert info["dropped_records"] == 0 and info["dropped_bytes"] == 0
    assert info["duration_ns"] > 0

    pyrewind.export(recording, work / "probe.jsonl")
    events = [ev for ev in load_jsonl(str(work / "probe.jsonl")) if ev["event"] != "loss"]
    assert info["event_count"] == len(events)
    by_kind = collections.Counter(ev["event"] for ev in events)
    assert {k: v for k, v in info["events_by_kind"].items() if v} == dict(by_kind)
    # main thread + the two workers, each with events.
    assert len(info["threads"]) == 3, info["threads"]
    names = sorted(t["name"] for t in info["threads"])
    assert names == ["MainThread", "probe-0", "probe-1"], names
    per_thread = collections.Counter(ev["tid"] for ev in events)
    assert sorted(t["events"] for t in info["threads"]) == sorted(per_thread.values())
    assert all(t["native_id"] > 0 for t in info["threads"])


def test_info_text(pyrewind, interp, work):
    recording, printed, args = record_probe(pyrewind, work)
    res = pyrewind.info(recording)
    assert res.returncode == 0, res.describe()
    text = res.stdout.decode()
    info = pyrewind.info_json(recording)
    for expected in ("Status:        complete", interp.version, "PID:           %d" % printed["pid"],
                     "Events:        %d" % info["event_count"], "Threads:       3", "exit code 0",
                     "'two words'", "probe-0"):
        assert expected in text, "%r not in:\n%s" % (expected, text)
    assert res.stderr == b""


def test_info_reports_signal_death(pyrewind, work):
    recording = work / "term.rwd"
    res = pyrewind.record([program("sigterm.py")], recording, cwd=str(work))
    assert res.returncode == -signal.SIGTERM, res.describe()
    info = pyrewind.info_json(recording)
    assert info["exit"] == {"signal": signal.SIGTERM, "signal_name": "SIGTERM"}, info["exit"]
    assert "killed by SIGTERM" in pyrewind.info(recording).stdout.decode()
