"""The recording of programs/call_tree.py and what its JSONL export says about it, shared by
test_exports.py and test_stats.py: the span exports and `stats` are checked against spans,
counts and times computed here from the same recording's events."""

import collections

from compare import load_jsonl
from e2e_util import program

SOURCE = program("call_tree.py")
FUNCTIONS = ("<module>", "main", "middle", "leaf", "label", "count_up", "worker")


def source_line(text):
    """The number of the line of call_tree.py that reads `text` (stripped)."""
    lines = [n for n, line in enumerate(open(SOURCE).read().splitlines(), 1) if line.strip() == text]
    assert len(lines) == 1, text
    return lines[0]


def def_line(func):
    return 1 if func == "<module>" else source_line("def %s(%s):" % (func, {
        "main": "", "middle": "n", "leaf": "x", "label": "value", "count_up": "limit", "worker": ""}[func]))


class Recorded:
    def __init__(self, pyrewind, work):
        self.path = work / "call_tree.rwd"
        res = pyrewind.record([SOURCE], self.path)
        assert res.returncode == 0, res.describe()
        pyrewind.export(self.path, work / "call_tree.jsonl")
        self.events = [e for e in load_jsonl(str(work / "call_tree.jsonl")) if "seq" in e]
        assert all(e["file"] == SOURCE for e in self.events)
        assert {e["func"] for e in self.events} == set(FUNCTIONS), "only call_tree.py's own functions"

    def spans(self, events=None):
        """Per thread, [(phase, function, t_ns)]: a call opens a span, a return closes it."""
        out = collections.defaultdict(list)
        stacks = collections.defaultdict(list)
        for e in self.events if events is None else events:
            stack = stacks[e["tid"]]
            if e["event"] == "call":
                stack.append(e["func"])
                out[e["tid"]].append(("B", e["func"], e["t_ns"]))
            elif e["event"] == "return":
                assert stack and stack[-1] == e["func"], e
                stack.pop()
                out[e["tid"]].append(("E", e["func"], e["t_ns"]))
        assert not any(stacks.values()), "every call returned"
        return dict(out)

    def seq_of(self, pred):
        return next(e["seq"] for e in self.events if pred(e))

    def last_seq_of(self, pred):
        return [e["seq"] for e in self.events if pred(e)][-1]


def folded(spans, frame_name):
    """Folded stacks from per-thread spans: self time per stack, summed over threads."""
    weights = collections.Counter()
    for seq in spans.values():
        stack, since = [], None
        for phase, func, t in seq:
            if stack and t > since:
                weights[";".join(frame_name(f) for f in stack)] += t - since
            since = t
            if phase == "B":
                stack.append(func)
            else:
                stack.pop()
    return sorted("%s %d" % (path, w) for path, w in weights.items())
