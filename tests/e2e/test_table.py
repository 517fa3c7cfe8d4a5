"""`pyrewind table FILE --at FILE:LINE`: the accumulation table of a loop, checked against the
values programs/loops.py computes (known exactly), per interpreter."""

import json

import pytest

from e2e_util import EXIT_USAGE, program, run

LOOPS = program("loops.py")


def line_of(text):
    with open(LOOPS) as source:
        for number, line in enumerate(source, 1):
            if line.strip() == text:
                return number
    raise AssertionError("no line %r in loops.py" % text)


@pytest.fixture(scope="module")
def recording(pyrewind, tmp_path_factory):
    path = tmp_path_factory.mktemp("table") / "loops.rwd"
    res = pyrewind.record([LOOPS], path)
    assert res.returncode == 0, res.describe()
    return path


def table(pyrewind, recording, at, *options):
    res = run([pyrewind.path, "table", str(recording), "--at", at, "--format", "json"] + list(options))
    assert res.returncode == 0, res.describe()
    return json.loads(res.stdout)


def rows(run_, *names):
    return [tuple(row["values"].get(name, "N/A") for name in names) + ((("break",) if row["break"] else ()))
            for row in run_["rows"]]


def test_outer_loop_accumulators(pyrewind, recording):
    result = table(pyrewind, recording, "loops.py:%d" % line_of("for row in rows:"))
    [outer] = result["runs"]
    assert outer["function"] == "totals" and outer["file"] == LOOPS
    assert outer["columns"] == ["grand", "per_row", "row", "subtotal", "cell"]
    assert rows(outer, "grand", "subtotal") == [(0, "N/A"), (6, 6), (16, 10), (16, 0), (31.5, 15.5)]
    lists = [r["values"].get("per_row") for r in outer["rows"]]
    assert [[item for item in value["items"]] for value in lists] == [[], [6], [6, 10], [6, 10, 0], [6, 10, 0, 15.5]]


def test_inner_loop_has_a_table_per_run(pyrewind, recording):
    result = table(pyrewind, recording, "loops.py:%d" % line_of("for cell in row:"), "--vars", "subtotal,cell")
    runs = result["runs"]
    assert [r["columns"] for r in runs] == [["subtotal", "cell"]] * 4
    assert rows(runs[0], "subtotal", "cell") == [(0, "N/A"), (1, 1), (3, 2), (6, 3)]
    assert rows(runs[1], "subtotal", "cell") == [(0, 3), (4, 4), (4, -5), (10, 6)]  # -5 skipped by continue
    assert rows(runs[2], "subtotal", "cell") == [(0, 6)]  # an empty row: no iteration
    assert rows(runs[3], "subtotal", "cell") == [(0, 6), (7.5, 7.5), (15.5, 8)]
    assert all(a["last_step"] < b["first_step"] for a, b in zip(runs, runs[1:]))


def test_while_loop_left_by_break(pyrewind, recording):
    result = table(pyrewind, recording, "loops.py:%d" % line_of("while n > 0:"))
    [loop] = result["runs"]
    assert loop["columns"] == ["n", "steps"]
    assert [(n, steps["items"]) + tuple(extra) for n, steps, *extra in rows(loop, "n", "steps")] == [
        (5, []), (4, [5]), (3, [5, 4]), (2, [5, 4, 3], "break")]


def test_module_level_loop_and_text(pyrewind, recording):
    at = "loops.py:%d" % line_of('for word in ("alpha", "beta", "gamma"):')
    [loop] = table(pyrewind, recording, at)["runs"]
    assert loop["function"] == "<module>"
    assert loop["columns"] == ["text", "word"]
    assert rows(loop, "text", "word") == [("", "N/A"), ("a", "alpha"), ("ab", "beta"), ("abg", "gamma")]
    res = run([pyrewind.path, "table", str(recording), "--at", at])
    assert res.returncode == 0, res.describe()
    text = res.stdout.decode().splitlines()
    assert text[0].startswith("Loop at %s:%s in <module> (thread 0, steps " % (LOOPS, at.split(":")[1]))
    assert text[1].split(" | ") == ["iteration", "text ", "word"]
    assert text[3].split(" | ") == ["0        ", "''   ", "N/A"]
    assert text[6].split(" | ") == ["3        ", "'abg'", "'gamma'"]


@pytest.mark.cli
def test_table_errors(pyrewind, recording):
    res = run([pyrewind.path, "table", str(recording), "--at", "loops.py"])
    assert res.returncode == EXIT_USAGE and b"--at wants FILE:LINE" in res.stderr
    res = run([pyrewind.path, "table", str(recording), "--at", "loops.py:2"])
    assert res.returncode == 0 and res.stdout == b"The loop at loops.py:2 never ran in this recording.\n"
