"""Capture limits that cut a step short: an event that cannot hold every changed binding says
so (locals_incomplete), and the bindings it could not hold follow in the frame's next events,
so nothing is lost and no step claims to be complete when it is not."""
import json

from compare import load_jsonl
from e2e_util import program


def test_wide_namespace_marks_incomplete_steps_and_catches_up(pyrewind, work):
    recording = work / "wide.rwd"
    res = pyrewind.record([program("wide_namespace.py")], recording, cwd=str(work))
    assert res.returncode == 0, res.describe()
    expected = set(json.loads(res.stdout))
    pyrewind.export(recording, work / "wide.jsonl")
    lines = [ev for ev in load_jsonl(str(work / "wide.jsonl"))
             if ev["event"] == "line" and ev["func"] == "<module>"]
    incomplete = [ev for ev in lines if ev.get("locals_incomplete")]
    assert incomplete, "3000 new bindings in one step should not fit in one event"
    # Every name the program bound shows up by the last step, none that it deleted.
    last = lines[-1]
    assert not last.get("locals_incomplete"), "the deferred bindings never caught up"
    shown = {name for name in last["locals"] if name.startswith("name_")}
    assert shown == expected
    # Each incomplete step shows strictly more of the namespace than the one before it.
    counts = [len(ev["locals"]) for ev in incomplete]
    assert counts == sorted(counts) and len(set(counts)) == len(counts), counts
    assert "name_7" not in expected
