"""Each program is run three times in the interpreter under test: plainly, under
`pyrewind run`, and under the reference sys.settrace tracer (tests/e2e/reference/reftrace.py).
The recorded run must behave exactly like the plain run (exit status, stdout, stderr), and
its export must match the reference event for event (tests/e2e/compare.py says how)."""

import signal

import pytest

from compare import check_format, compare, load_jsonl
from e2e_util import PROGRAMS, program

CODE = (
    "import sys\n"
    "def collect(n):\n"
    "    acc = []\n"
    "    for i in range(n):\n"
    "        acc.append(i * i)\n"
    "    return acc\n"
    "print(collect(4), sys.argv[1:])\n"
)


class Case:
    def __init__(self, name, args, exit=0, options=(), cwd=None, stdin=b""):
        self.name = name
        self.args = args
        self.exit = exit
        self.options = list(options)
        self.cwd = cwd
        self.stdin = stdin


CASES = [
    Case("loops", [program("loops.py")]),
    Case("recursion", [program("recursion.py")]),
    Case("generators", [program("generators.py")]),
    Case("closures", [program("closures.py")]),
    Case("comprehensions", [program("comprehensions.py")]),
    Case("exceptions", [program("exceptions.py")]),
    Case("ledger", [program("ledger.py")]),
    Case("class_bodies", [program("class_bodies.py")]),
    Case("threads", [program("threads.py")]),
    Case("bad_repr", [program("bad_repr.py")]),
    Case("huge", [program("huge.py")]),
    Case("selfref", [program("selfref.py")]),
    Case("mutation", [program("mutation.py")]),
    # Container deltas: growing, shrinking, front inserts, item changes, aliases, rebinding.
    Case("containers_grow", [program("containers_grow.py")]),
    Case("containers_grow_small_limits", [program("containers_grow.py")],
         options=["--max-items", "3", "--max-depth", "1", "--max-string", "8"]),
    Case("redaction", [program("redaction.py")]),
    Case("values", [program("values.py")]),
    Case("many_locals", [program("many_locals.py")]),
    # Rebinding by every kind of instruction and line layout, and from outside the frame.
    Case("stores", [program("stores.py")]),
    # ~15000 events: many ring chunks, so delta-encoded locals cross chunk boundaries.
    Case("many_events", [program("many_events.py"), "3000"]),
    Case("sys_exit", [program("sys_exit.py")], exit=3),
    Case("os_exit", [program("os_exit.py")], exit=4),
    Case("sigterm", [program("sigterm.py")], exit=-signal.SIGTERM),
    Case("sigkill", [program("sigkill.py")], exit=-signal.SIGKILL),
    Case("uncaught", [program("uncaught.py")], exit=1),
    Case("stdin", [program("echo_stdio.py"), "a b", "--x"], exit=7, stdin=b"line1\nline2\n\x00\xff"),
    Case("module", ["-m", "e2epkg.main", "1", "2"], cwd=PROGRAMS),
    Case("code", ["-c", CODE, "arg"]),
    # File filters; depth counts traced frames only, also below excluded callers.
    Case("filters", [program("filters/app.py")]),
    Case("filters_exclude", [program("filters/app.py")], options=["--exclude", "*/lib/*"]),
    Case("filters_include", [program("filters/app.py")], options=["--include", "filters/lib/*.py"]),
    # Non-default capture settings: the reference applies the same limits.
    Case("values_small_limits", [program("values.py")],
         options=["--max-string", "8", "--max-items", "3", "--max-depth", "1"]),
    Case("selfref_depth0", [program("selfref.py")], options=["--max-depth", "0"]),
    Case("redaction_off", [program("redaction.py")], options=["--no-redact"]),
    Case("loops_no_locals", [program("loops.py")], options=["--no-locals"]),
]

# Differences between the agent and settrace that cannot be avoided on some version:
# {(case name, minor version): reason}. Each one is an explicit, strict xfail.
KNOWN_DIFFERENCES = {}


def run_case(case, pyrewind, work):
    cwd = case.cwd or str(work)
    plain = pyrewind.plain(case.args, cwd=cwd, stdin=case.stdin)
    assert plain.returncode == case.exit, "the test program itself misbehaves: " + plain.describe()

    recording = work / "run.rwd"
    recorded = pyrewind.record(case.args, recording, case.options, cwd=cwd, stdin=case.stdin)
    assert recorded.returncode == plain.returncode, (
        "exit status not passed through: plain %s, under pyrewind %s\n%s"
        % (plain.returncode, recorded.returncode, recorded.describe()))
    assert recorded.stdout == plain.stdout, "stdout differs from the plain run\n" + recorded.describe()
    assert recorded.stderr == plain.stderr, "stderr differs from the plain run\n" + recorded.describe()

    reference = work / "reference.jsonl"
    ref = pyrewind.reference(case.args, reference, case.options, cwd=cwd, stdin=case.stdin)
    assert ref.returncode == plain.returncode, "reference tracer run failed: " + ref.describe()

    exported = work / "export.jsonl"
    pyrewind.export(recording, exported)
    return load_jsonl(str(exported)), load_jsonl(str(reference))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_trace_matches_reference(case, pyrewind, interp, work, request):
    reason = KNOWN_DIFFERENCES.get((case.name, interp.minor))
    if reason:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
    actual, expected = run_case(case, pyrewind, work)
    with_locals = "--no-locals" not in case.options
    check_format(expected, "reference", locals_expected=with_locals)
    assert expected, "the reference tracer recorded nothing"
    check_format(actual, "export", locals_expected=with_locals)
    if not with_locals:
        assert not any("locals" in ev for ev in actual), "--no-locals run recorded locals"
    diff = compare(actual, expected, short_func=interp.short_func)
    assert diff is None, "export differs from the reference (files in %s):\n%s" % (work, diff)


def test_qualified_names(pyrewind, work):
    """`func` is the qualified name on every version (3.9/3.10 have no co_qualname; the
    comparison above checks only the last component there)."""
    actual, _ = run_case(Case("ledger", [program("ledger.py")]), pyrewind, work)
    funcs = {ev["func"] for ev in actual}
    for name in ("<module>", "Ledger", "Ledger.Entry", "Ledger.__init__", "Ledger.add",
                 "Ledger.Entry.__init__", "Ledger.balance", "Ledger.opening", "Ledger.fmt",
                 "report"):
        assert name in funcs, "%s not among the recorded functions %s" % (name, sorted(funcs))
    actual, _ = run_case(Case("closures", [program("closures.py")]), pyrewind, work)
    funcs = {ev["func"] for ev in actual}
    for name in ("make_counter.<locals>.increment", "outer.<locals>.middle.<locals>.inner",
                 "logged.<locals>.wrapper"):
        assert name in funcs, "%s not among the recorded functions %s" % (name, sorted(funcs))


def test_debugger_jump_shows_at_next_step(pyrewind, interp, work):
    """A debugger that moves a frame's next line (f_lineno, from a sys.settrace tracer beside
    pyrewind's sys.monitoring tool) runs the landing line without a line event and binds None
    to the unbound locals: the frame's next event shows all of it."""
    if interp.hexversion < 0x030C0000:
        pytest.skip("before 3.12 the program's sys.settrace replaces pyrewind's trace function")
    actual, _ = run_case(Case("jumped", [program("jumped.py")]), pyrewind, work)
    events = [ev for ev in actual if ev["func"] == "jumper"]
    first = next(ev["line"] for ev in events if ev["event"] == "call")
    at_total = [ev["locals"] for ev in events if ev["event"] == "line" and ev["line"] == first + 4]
    assert at_total == [{"start": 1, "skipped": None, "landed": 3, "total": None}], events


def test_mutation_shows_at_next_step(pyrewind, work):
    """The issue's explicit example, checked directly rather than only via the reference:
    a list reached through a dict local grows, and the very next line event shows it."""
    actual, _ = run_case(Case("mutation", [program("mutation.py")]), pyrewind, work)
    steps = [ev for ev in actual if ev["func"].endswith("mutate") and ev["event"] == "line"]
    seen = []
    for ev in steps:
        d = ev["locals"].get("d")
        if isinstance(d, dict) and d.get("type") == "dict" and d["items"]:
            key, value = d["items"][0]
            if key == "items":
                seen.append((ev["line"], value["items"]))
    lengths = [items for _, items in seen]
    assert [] in lengths and [1] in lengths and [1, 2] in lengths and [1, 2, 3] in lengths, seen
    # [1] must appear on the line right after the append of 1, not later.
    first_line = min(line for line, items in seen if items == [1])
    assert first_line == min(line for line, items in seen if items == []) + 1, seen
