"""`pyrewind stats`: calls, total and self time per function, hits and time per line,
coverage and observed types, for a real program with a known call structure; every count and
time is checked exactly against the same recording's JSONL export."""

import collections
import json

import pytest

from call_tree import FUNCTIONS, SOURCE, Recorded, def_line, source_line
from e2e_util import EXIT_USAGE, run


@pytest.fixture(scope="module")
def recorded(pyrewind, tmp_path_factory):
    return Recorded(pyrewind, tmp_path_factory.mktemp("call_tree"))


def stats(pyrewind, recording, *options, fmt="json"):
    res = run([pyrewind.path, "stats", str(recording), "--format", fmt] + list(options))
    assert res.returncode == 0, res.describe()
    assert res.stderr == b"", res.describe()
    return json.loads(res.stdout) if fmt == "json" else res.stdout.decode()


def expected_times(spans):
    """{function: [total_ns, self_ns]} from spans: total counts each moment once per function."""
    out = collections.defaultdict(lambda: [0, 0])
    for seq in spans.values():
        stack = []  # [function, start, children]
        for phase, func, t in seq:
            if phase == "B":
                stack.append([func, t, 0])
                continue
            name, start, children = stack.pop()
            out[name][1] += t - start - children
            if stack:
                stack[-1][2] += t - start
            if all(f[0] != name for f in stack):
                out[name][0] += t - start
    return out


def test_functions(pyrewind, recorded):
    doc = stats(pyrewind, recorded.path)
    assert doc["events"] == len(recorded.events)
    functions = {f["function"]: f for f in doc["functions"]}
    assert set(functions) == set(FUNCTIONS)
    calls = {name: f["calls"] for name, f in functions.items()}
    assert calls == {"<module>": 1, "main": 1, "middle": 2, "leaf": 5, "label": 3, "count_up": 4, "worker": 1}
    assert calls == collections.Counter(e["func"] for e in recorded.events if e["event"] == "call")
    times = expected_times(recorded.spans())
    for name, f in functions.items():
        assert (f["file"], f["line"]) == (SOURCE, def_line(name))
        assert [f["total_ns"], f["self_ns"]] == times[name], name
    totals = [f["total_ns"] for f in doc["functions"]]
    assert totals == sorted(totals, reverse=True)


def test_types(pyrewind, recorded):
    functions = {f["function"]: f for f in stats(pyrewind, recorded.path)["functions"]}

    def sig(name):
        f = functions[name]
        return [(a["name"], a["types"]) for a in f["arguments"]], f["returns"], f["generator"]

    assert sig("label") == ([("value", ["int", "str", "None"])], ["str"], False)
    assert sig("leaf") == ([("x", ["int"])], ["int"], False)
    assert sig("middle") == ([("n", ["int"])], ["int"], False)
    assert sig("main") == ([], ["int"], False)
    assert sig("worker") == ([], ["None"], False)
    # A generator: arguments from its entry only; what it yields and finally returns.
    assert sig("count_up") == ([("limit", ["int"])], ["int", "None"], True)

    text = stats(pyrewind, recorded.path, fmt="text")
    for line in ("  label(value: int | str | None) -> str\n", "  count_up(limit: int) -> int | None  (generator)\n",
                 "  main() -> int\n"):
        assert line in text, text


def test_lines_and_coverage(pyrewind, recorded):
    doc = stats(pyrewind, recorded.path)
    hits = {(e["function"], e["line"]): e["hits"] for e in doc["lines"]}
    assert hits == collections.Counter((e["func"], e["line"]) for e in recorded.events if e["event"] == "line")
    assert hits[("middle", source_line("total += leaf(i)"))] == 5
    assert hits[("middle", source_line("for i in range(n):"))] == 7  # 3 + 2 items, and each loop's end
    assert hits[("leaf", source_line("return x * 2"))] == 5
    assert hits[("count_up", source_line("yield i"))] == 3
    assert hits[("main", source_line("label(None)"))] == 1

    # A line's time runs to its frame's next event; its self time excludes the calls it made.
    by_frame = {}
    time = collections.Counter()
    for e in recorded.events:
        key = (e["tid"], e["depth"])
        if e["event"] == "call":
            by_frame.pop(key, None)
        elif key in by_frame:
            func, line, since = by_frame.pop(key)
            time[(func, line)] += e["t_ns"] - since
        if e["event"] == "line":
            by_frame[key] = (e["func"], e["line"], e["t_ns"])
    for entry in doc["lines"]:
        assert entry["time_ns"] == time[(entry["function"], entry["line"])], entry
        assert entry["self_ns"] <= entry["time_ns"]
    call_line = [e for e in doc["lines"] if e["function"] == "middle" and e["line"] == source_line("total += leaf(i)")]
    assert call_line[0]["self_ns"] < call_line[0]["time_ns"]

    assert doc["coverage"] == [{"file": SOURCE, "lines": sorted({e["line"] for e in recorded.events
                                                                 if e["event"] == "line"})}]
    text = stats(pyrewind, recorded.path, fmt="text")
    assert "  %s: %d lines: " % (SOURCE, len(doc["coverage"][0]["lines"])) in text


def test_thread_and_range(pyrewind, recorded):
    doc = stats(pyrewind, recorded.path, "--thread", "1")
    assert {f["function"]: f["calls"] for f in doc["functions"]} == {"worker": 1, "middle": 1, "leaf": 2}
    assert doc["events"] == sum(1 for e in recorded.events if e["tid"] == 1)

    first = recorded.seq_of(lambda e: e["func"] == "label" and e["event"] == "call")
    last = recorded.last_seq_of(lambda e: e["func"] == "label" and e["event"] == "return")
    doc = stats(pyrewind, recorded.path, "--from", str(first), "--to", str(last))
    # main and <module> were running before the range: shown, but not called in it.
    assert {f["function"]: f["calls"] for f in doc["functions"]} == {"<module>": 0, "main": 0, "label": 3}
    assert doc["events"] == last - first + 1


def test_usage(pyrewind, recorded, work):
    res = run([pyrewind.path, "stats", str(recorded.path), "--to", "later"])
    assert res.returncode == EXIT_USAGE and "'later' is neither" in res.stderr.decode(), res.describe()
    res = run([pyrewind.path, "stats", str(work / "missing.rwd")])
    assert res.returncode == 3, res.describe()
