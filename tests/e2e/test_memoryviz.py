"""`pyrewind export --format memoryviz --step SEQ`: MemoryViz JSON of a real program's state,
checked for content (aliases share one id, nested containers refer to their items) and drawn
by its real consumer, the `memory-viz` npm package (pinned; installed under the build dir on
first use, the test skips when npm or the registry is unavailable). The SVG is kept in
BUILD/test-artifacts/memoryviz/."""

import json
import os

import pytest

from compare import load_jsonl
from e2e_util import EXIT_USAGE, build_dir, npm_modules, program, run

MEMORY_VIZ = "memory-viz@0.8.0"


@pytest.fixture(scope="module")
def memory_viz_cli(pyrewind):
    """The path of memory-viz's command-line script."""
    node, modules = npm_modules(pyrewind.path, [MEMORY_VIZ], os.path.join("memory-viz", "dist", "cli.js"))
    return [node, os.path.join(modules, "memory-viz", "dist", "cli.js")]


def export_state(pyrewind, recording, seq, output):
    res = run([pyrewind.path, "export", str(recording), "--format", "memoryviz", "--step", str(seq),
               "-o", str(output)])
    assert res.returncode == 0, res.describe()
    with open(str(output)) as f:
        return json.load(f)


def test_state_with_aliases(pyrewind, interp, work, memory_viz_cli):
    rec = work / "aliasing.rwd"
    res = pyrewind.record([program("aliasing.py")], rec)
    assert res.returncode == 0, res.describe()
    pyrewind.export(rec, work / "all.jsonl")
    events = [e for e in load_jsonl(str(work / "all.jsonl")) if "seq" in e]
    source = open(program("aliasing.py")).read().splitlines()
    at = next(e for e in events if e["func"].endswith("add_item") and e["event"] == "line"
              and source[e["line"] - 1].strip() == "return count")
    doc = export_state(pyrewind, rec, at["seq"], work / "state.json")

    frames = [d for d in doc if d["type"] == ".frame"]
    assert [f["name"] for f in frames][0] == "<module>"
    assert frames[-2]["name"].endswith("main") and frames[-1]["name"].endswith("add_item"), frames
    objects = {}
    for d in doc:
        if d["type"] != ".frame":
            assert d["id"] not in objects, "one entry per object: %r" % d
            objects[d["id"]] = d
    # Every id referred to is drawn.
    for d in doc:
        refs = d["value"].values() if isinstance(d["value"], dict) else d["value"] if isinstance(d["value"], list) else []
        keys = [int(k) for k in d["value"]] if d["type"] == "dict" else []
        assert all(r in objects for r in list(refs) + keys), d

    main, add_item = frames[-2]["value"], frames[-1]["value"]
    fruits = main["fruits"]
    assert main["same"] == fruits and add_item["basket"] == fruits
    assert objects[fruits]["type"] == "list"
    assert [objects[i]["value"] for i in objects[fruits]["value"]] == ["apple", "pear", "plum"]
    grid = objects[main["grid"]]
    assert grid["value"][0] == fruits and grid["value"][2] == fruits
    assert [objects[i]["value"] for i in objects[grid["value"][1]]["value"]] == [1, 2]
    prices = objects[main["prices"]]
    assert {objects[int(k)]["value"]: objects[v]["value"] for k, v in prices["value"].items()} == \
        {"apple": 1.5, "pear": 2.0}
    assert objects[main["owner"]] == {"type": ".class", "name": "Account", "id": main["owner"], "value": {}}
    assert objects[add_item["count"]] == {"type": "int", "id": add_item["count"], "value": 3}
    assert objects[add_item["item"]]["value"] == "plum" and add_item["item"] == objects[fruits]["value"][2]

    # Drawn by memory-viz itself.
    out_dir = os.path.join(build_dir(pyrewind.path), "test-artifacts", "memoryviz")
    os.makedirs(out_dir, exist_ok=True)
    svg = os.path.join(out_dir, "aliasing-python3.%d.svg" % interp.minor)
    res = run(memory_viz_cli + [str(work / "state.json"), "--output=" + svg])
    assert res.returncode == 0, res.describe()
    drawing = open(svg).read()
    assert drawing.startswith("<svg") or "<svg" in drawing[:200], drawing[:200]
    for text in ("fruits", "basket", "plum", "Account", "id%d" % fruits):
        assert text in drawing, text


def test_bad_steps(pyrewind, work):
    rec = work / "a.rwd"
    res = pyrewind.record(["-c", "x = 1"], rec)
    assert res.returncode == 0, res.describe()
    res = run([pyrewind.path, "export", str(rec), "--format", "memoryviz"])
    assert res.returncode == EXIT_USAGE and "--step" in res.stderr.decode(), res.describe()
    res = run([pyrewind.path, "export", str(rec), "--format", "memoryviz", "--step", "100000"])
    assert res.returncode == EXIT_USAGE and "no step 100000" in res.stderr.decode(), res.describe()
