"""Self-tests of the reference tracer and of the comparison, against facts written out by
hand. They need no pyrewind build: they keep the yardstick honest, so that the agent and the
reference cannot agree on a wrong answer unnoticed."""

import copy

from compare import check_format, compare, load_jsonl
from e2e_util import base_env, program, run, REFTRACE


def reference(interp, work, args, options=(), cwd=None):
    out = work / "ref.jsonl"
    res = run([interp.path, REFTRACE, "--out", str(out)] + list(options) + ["--"] + list(args),
              env=base_env(), cwd=cwd or str(work))
    return res, load_jsonl(str(out))


def by_func(events, name):
    return [ev for ev in events if ev["func"].rsplit(".", 1)[-1] == name]


def test_loops_golden(interp, work):
    res, events = reference(interp, work, [program("loops.py")])
    assert res.returncode == 0, res.describe()
    check_format(events, "reference")
    assert events[0]["event"] == "call" and events[0]["func"] == "<module>"
    assert events[0]["depth"] == 0 and events[0]["file"] == program("loops.py")
    totals = by_func(events, "totals")
    assert totals[0]["event"] == "call" and totals[0]["depth"] == 1
    assert totals[0]["locals"]["rows"]["type"] == "list"
    assert totals[0]["locals"]["rows"]["len"] == 4
    per_row = [ev["locals"]["per_row"]["items"] for ev in totals
               if ev["event"] == "line" and "per_row" in ev["locals"]]
    assert per_row[0] == [] and [6] in per_row and [6, 10] in per_row and [6, 10, 0, 15.5] in per_row
    ret = totals[-1]
    assert ret["event"] == "return"
    assert ret["value"]["type"] == "tuple" and ret["value"]["items"][0] == 31.5
    assert isinstance(ret["value"]["items"][0], float)
    # settrace reports a line event per iteration of a loop that sits on one line.
    one_line = [ev for ev in by_func(events, "one_line_loop") if ev["event"] == "line"]
    loop_line = max(set(ev["line"] for ev in one_line), key=[ev["line"] for ev in one_line].count)
    assert [ev["line"] for ev in one_line].count(loop_line) >= 5


def test_unwinding_vs_return_none(interp, work):
    res, events = reference(interp, work, [program("generators.py")])
    assert res.returncode == 0, res.describe()
    fragile = by_func(events, "fragile")
    returns = [ev for ev in fragile if ev["event"] == "return"]
    # next(f) yields 1; f.throw(KeyError) unwinds; next(g) yields 1; g.close() unwinds,
    # except on 3.13+, where close() of a generator suspended outside any try block just
    # marks it closed without raising GeneratorExit in it (no events at all).
    closes = [] if interp.minor >= 13 else ["<unwind>"]
    assert [ev.get("value", "<unwind>") for ev in returns] == [1, "<unwind>", 1] + closes
    exceptions = [ev["exception"] for ev in fragile if ev["event"] == "exception"]
    close_exc = [] if interp.minor >= 13 else [{"type": "GeneratorExit", "message": ""}]
    assert exceptions == [{"type": "KeyError", "message": ""}] + close_exc

    res, events = reference(interp, work, [program("exceptions.py")])
    assert res.returncode == 0, res.describe()
    level3 = [ev for ev in by_func(events, "level3") if ev["event"] == "return"]
    assert [ev.get("value", "<unwind>") for ev in level3] == [1, "<unwind>"]
    swallow = [ev for ev in by_func(events, "swallow") if ev["event"] == "return"]
    assert swallow[0]["value"] == "swallowed"
    lookup = [ev for ev in by_func(events, "lookup") if ev["event"] == "exception"]
    # KeyError's str() is the repr of the key (user code): no message. User types: none.
    assert lookup[0]["exception"] == {"type": "KeyError", "message": ""}
    assert lookup[1]["exception"] == {"type": "LedgerError", "message": ""}
    level3 = [ev for ev in by_func(events, "level3") if ev["event"] == "exception"]
    assert level3[0]["exception"] == {"type": "ValueError", "message": "too big: 5"}
    handled = [ev for ev in by_func(events, "safe") if ev["event"] == "exception_handled"]
    assert [ev["exception"]["type"] for ev in handled] == ["ValueError"]


def test_values_golden(interp, work):
    res, events = reference(interp, work, [program("values.py")])
    assert res.returncode == 0, res.describe()
    last = [ev for ev in by_func(events, "scalars") if ev["event"] == "line"][-1]["locals"]
    assert last["none"] is None and last["yes"] is True and last["small"] == 7
    assert last["edge"] == 2 ** 53 and last["edge_plus"] == str(2 ** 53 + 1)
    assert last["edge_minus"] == -(2 ** 53) and last["edge_minus_minus"] == str(-(2 ** 53) - 1)
    assert last["wide"] == str(2 ** 1024 - 1)
    assert last["too_wide"] == {"type": "int", "bits": 1025, "truncated": True}
    assert last["too_wide_negative"] == {"type": "int", "bits": 4001, "truncated": True}
    assert last["whole"] == 5.0 and isinstance(last["whole"], float)
    assert last["nan"] == "NaN" and last["inf"] == "Infinity" and last["ninf"] == "-Infinity"
    assert last["at_limit"] == "a" * 256
    assert last["over_limit"] == {"type": "str", "len": 257, "value": "b" * 256, "truncated": True}
    assert last["astral_over"]["len"] == 300 and last["astral_over"]["value"] == "\U0001F600" * 256
    assert last["b_short"] == {"type": "bytes", "len": 5, "hex": "00ff616263"}
    assert last["b_limit"] == {"type": "bytes", "len": 256, "hex": "00" * 256}
    assert last["b_over"]["truncated"] is True and last["b_over"]["len"] == 257
    assert len(last["b_over"]["hex"]) == 512

    c = [ev for ev in by_func(events, "containers") if ev["event"] == "line"][-1]["locals"]
    assert c["empty_list"]["items"] == [] and "truncated" not in c["empty_list"]
    assert c["items25"]["len"] == 25 and "truncated" not in c["items25"]
    assert c["items26"]["len"] == 26 and len(c["items26"]["items"]) == 25 and c["items26"]["truncated"]
    assert c["dict26"]["items"][0] == [0, 0] and c["dict26"]["truncated"]
    assert c["keys"]["items"][1] == [{"type": "tuple", "id": c["keys"]["items"][1][0]["id"], "len": 2,
                                      "items": [2, 3]}, "tuple"]
    # depth: the local is level 0; a container at level 3 is not expanded.
    d3 = c["depth3"]["items"][0]["items"][0]
    assert d3["items"] == [1]
    d4 = c["depth4"]["items"][0]["items"][0]["items"][0]
    assert d4["items"] == [] and d4["truncated"] is True and d4["len"] == 1

    o = [ev for ev in by_func(events, "others") if ev["event"] == "line"][-1]["locals"]
    assert o["color"]["type"] == "Color" and o["my_int"]["type"] == "MyInt"
    assert o["my_str"]["type"] == "MyStr" and o["plain"]["type"] == "Plain"
    assert o["od"]["type"] == "collections.OrderedDict"
    assert o["fn"]["type"] == "function" and o["builtin"]["type"] == "builtin_function_or_method"
    assert o["module"]["type"] == "module" and o["ba"]["type"] == "bytearray"
    assert o["exc"]["type"] == "ValueError" and o["dots"]["type"] == "ellipsis"


def test_self_reference_and_redaction(interp, work):
    res, events = reference(interp, work, [program("selfref.py")])
    assert res.returncode == 0, res.describe()
    loc = [ev for ev in by_func(events, "cycles") if ev["event"] == "line"][-1]["locals"]
    a = loc["a"]
    inner = a["items"][1]
    assert inner["id"] == a["id"] and inner["items"] == [] and inner["truncated"] is True
    pair = loc["pair"]
    assert pair["items"][0]["id"] == pair["items"][1]["id"] and pair["items"][1]["items"] == [0]

    res, events = reference(interp, work, [program("redaction.py")])
    assert res.returncode == 0, res.describe()
    loc = [ev for ev in by_func(events, "connect") if ev["event"] == "line"][-1]["locals"]
    for name in ("token", "db_password", "passwd", "client_secret", "apiKey", "auth_header",
                 "author", "credentials", "private_key"):
        assert loc[name] == {"redacted": True}, name
    assert loc["pass_word"] == "not redacted" and loc["host"] == "db"
    assert loc["keys"]["items"] == [["password", "dict keys are not locals"]]
    module = [ev for ev in events if ev["func"] == "<module>" and ev["event"] == "line"][-1]["locals"]
    assert module["password"] == {"redacted": True} and module["API_KEY"] == {"redacted": True}
    assert module["username"] == "ada"


def test_bad_repr_never_called_by_reference(interp, work):
    res, events = reference(interp, work, [program("bad_repr.py")])
    assert res.returncode == 0, res.describe()
    assert b"no dunder called" in res.stdout


def test_compare_detects_differences(interp, work):
    res, events = reference(interp, work, [program("mutation.py")])
    assert res.returncode == 0, res.describe()
    assert compare(events, events) is None
    # Same structure with every id shifted: still equal.
    shifted = copy.deepcopy(events)

    def shift(v):
        if isinstance(v, dict):
            for k in v:
                if k == "id":
                    v[k] += 4096
                else:
                    shift(v[k])
        elif isinstance(v, list):
            for x in v:
                shift(x)
    for ev in shifted:
        shift(ev)
    assert compare(shifted, events) is None

    def first_line_with(name):
        return next(i for i, ev in enumerate(events)
                    if ev["event"] == "line" and name in ev.get("locals", {}))

    # A value that differs.
    bad = copy.deepcopy(events)
    i = first_line_with("d")
    bad[i]["locals"]["d"]["len"] += 1
    assert compare(bad, events) is not None
    # A float where the reference has an int (same number, different type).
    bad = copy.deepcopy(events)
    i, name = next((i, k) for i, ev in enumerate(events) if ev["event"] == "line"
                   for k, v in ev["locals"].items() if type(v) is int)
    bad[i]["locals"][name] = float(bad[i]["locals"][name])
    assert compare(bad, events) is not None
    # A container replaced by a new object with the same contents (rebinding, not mutation).
    bad = copy.deepcopy(events)
    i = first_line_with("alias")
    bad[i + 1]["locals"]["alias"]["id"] += 1
    assert compare(bad, events) is not None
    # Aliasing lost within one event.
    bad = copy.deepcopy(events)
    i = next(i for i, ev in enumerate(events) if ev["event"] == "line" and "alias" in ev.get("locals", {})
             and ev["locals"]["d"]["items"])
    bad[i]["locals"]["alias"]["id"] += 1
    assert compare(bad, events) is not None
    # A missing event, a wrong line, a wrong depth.
    assert compare(events[:-1], events) is not None
    bad = copy.deepcopy(events)
    bad[3]["line"] += 1
    assert compare(bad, events) is not None
    bad = copy.deepcopy(events)
    bad[3]["depth"] += 1
    assert compare(bad, events) is not None
