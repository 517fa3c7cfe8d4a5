"""`--max-overhead PCT`: over the budget, the agent switches off the line events of the busiest
functions (calls and returns go on being recorded) and says so; with nothing left to switch
off, tracing pauses and pyrewind samples the stacks from outside instead, with the reason; a
program that tracing costs little is left alone. The program itself runs to its end unchanged
in every case (programs/overhead.py)."""

import json
import re

from e2e_util import program

PROGRAM = program("overhead.py")
SECONDS = "1.5"


def record(pyrewind, work, mode, budget="50"):
    rec = work / ("%s.rwd" % mode)
    res = pyrewind.record([PROGRAM, mode, SECONDS], rec, options=["--max-overhead", budget])
    assert res.returncode == 0, res.describe()
    assert res.stdout == b"done True\n"
    info = pyrewind.info_json(rec)
    jsonl = work / ("%s.jsonl" % mode)
    pyrewind.export(rec, jsonl)
    events = [json.loads(line) for line in open(jsonl)]
    return info, [e for e in events if "seq" in e]


def test_busy_function_loses_its_line_events_not_its_calls(pyrewind, interp, work):
    info, events = record(pyrewind, work, "hot")
    first = info["agent_messages"][0]
    assert re.match(r"over the --max-overhead budget \(about \d+% > 50%\): line events switched off for 1 "
                    r"function: hot \(line 11\); their calls and returns are still recorded$", first), first
    hot = [e for e in events if e["func"] == "hot"]
    last_line = max(e["seq"] for e in hot if e["event"] == "line")
    later_calls = [e for e in hot if e["event"] == "call" and e["seq"] > last_line]
    later_returns = [e for e in hot if e["event"] == "return" and e["seq"] > last_line]
    assert later_calls and len(later_returns) >= len(later_calls) - 1
    assert all(isinstance(e["value"], int) for e in later_returns if "value" in e)
    # Before it, hot's lines were recorded with their locals.
    assert any(e["event"] == "line" and "total" in e["locals"] for e in hot)


def test_cheap_program_is_left_alone(pyrewind, interp, work):
    info, events = record(pyrewind, work, "idle")
    assert not [m for m in info["agent_messages"] if "max-overhead" in m], info["agent_messages"]
    naps = [e for e in events if e["func"] == "run_idle" and e["event"] == "line"]
    assert naps and naps[-1]["seq"] > events[-1]["seq"] - 10  # lines recorded to the end


def test_calls_alone_over_budget_fall_back_to_sampling(pyrewind, interp, work):
    info, events = record(pyrewind, work, "calls")
    messages = info["agent_messages"]
    assert any(re.search(r"line events switched off for \d functions?: .*one \(line 22\)", m) for m in messages), messages
    over = [i for i, m in enumerate(messages) if re.match(
        r"over the --max-overhead budget \(about \d+% > 50%\) with every line event already off: sampling instead$", m)]
    assert over and messages[over[0] + 1] == "line tracing paused: pyrewind samples the stacks from outside instead", \
        messages
    assert info["exit"] == {"code": 0}  # the program ran on to its end
    assert events  # what was recorded before stays readable
    # From then on the stacks were sampled (100 a second): the program kept calling one().
    samples = samples_of(work / "calls.jsonl")
    assert info["sample_count"] == len(samples) > 0
    assert all(s["t_ns"] > events[-1]["t_ns"] for s in samples)
    assert sum(1 for s in samples if any(f["func"] == "run_calls" for f in s["stack"])) >= 0.9 * len(samples)


def samples_of(jsonl):
    with open(jsonl) as f:
        return [s for s in map(json.loads, f) if "sample" in s]
