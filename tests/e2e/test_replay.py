"""`pyrewind replay FILE -c "..."`: the time-travel debugger, checked against states known
from the program (programs/replay_target.py) and against the JSONL export of the same
recording (the locals at any step, forward or backward)."""

import collections
import json
import os
import re

import pytest

from e2e_util import EXIT_BAD_RECORDING, program, run

TARGET = program("replay_target.py")


def marks():
    found = {}
    with open(TARGET) as source:
        for number, text in enumerate(source, 1):
            if "# mark: " in text:
                found[text.split("# mark: ", 1)[1].strip()] = number
    return found


LINE = marks()
POSITION = re.compile(r"^> (.*)\((\d+)\)(.*)\(\)(?:->(.*))?$", re.M)
STEP = re.compile(r"^\[step (\d+) of (\d+), \+[0-9.]+s, thread (\d+)(?: \"(.*)\")?\]$", re.M)


@pytest.fixture(scope="module")
def recording(pyrewind, tmp_path_factory):
    path = tmp_path_factory.mktemp("replay") / "target.rwd"
    res = pyrewind.record([TARGET], path)
    assert res.returncode == 0, res.describe()
    return path


def replay(pyrewind, recording, commands, check=True):
    res = run([pyrewind.path, "replay", str(recording), "-c", "; ".join(commands)])
    if check:
        assert res.returncode == 0, res.describe()
    return res


def transcript(pyrewind, recording, commands):
    """The output of each command (the first entry: where replay starts)."""
    text = replay(pyrewind, recording, commands).stdout.decode()
    parts = re.split(r"^\(rwd\) .*\n", text, flags=re.M)
    assert len(parts) == len(commands) + 1, text
    return parts


def position(output):
    """(file, line, function, step, thread) of the last position shown in `output`."""
    where = POSITION.findall(output)
    step = STEP.findall(output)
    assert where and step, output
    file, line, function, _ = where[-1]
    return file, int(line), function, int(step[-1][0]), int(step[-1][2])


def locals_of(output):
    return dict(line.split(" = ", 1) for line in output.strip().splitlines() if " = " in line)


def func(interp, qualname):
    return qualname.rsplit(".", 1)[-1] if interp.short_func else qualname


def test_breakpoints_forward_and_backward(pyrewind, recording):
    out = transcript(pyrewind, recording, [
        "break replay_target.py:%d" % LINE["acc-add"], "continue", "p total", "p v",
        "c", "p total", "p v", "rcontinue", "p total", "p v", "rc", "c", "c", "p total", "c"])
    assert position(out[0])[3] == 0  # replay starts at the first step
    assert out[1].startswith("Breakpoint 1 at ")
    assert out[2].startswith("Breakpoint 1\n")
    assert position(out[2])[:3] == (TARGET, LINE["acc-add"], "accumulate")
    assert (out[3], out[4]) == ("0\n", "3\n")
    assert (out[6], out[7]) == ("3\n", "4\n")
    assert (out[9], out[10]) == ("0\n", "3\n")  # back at the first hit
    assert "No breakpoint or watch is hit before this step" in out[11]
    assert position(out[13])[:2] == (TARGET, LINE["acc-add"])  # the third hit
    assert out[14] == "7\n"
    assert "No breakpoint or watch is hit after this step" in out[15]


def test_conditional_breakpoint_and_stack(pyrewind, interp, recording):
    out = transcript(pyrewind, recording, [
        "break fact if n == 1", "c", "where", "return", "rreturn", "p n", "rreturn", "p n", "next", "next", "p n"])
    assert position(out[2])[:3] == (TARGET, LINE["fact-test"] - 1, "fact")  # the CALL of fact(1)
    stack = out[3]
    frames = re.findall(r"^[> ] (.*)\((\d+)\)(.*)\(\)$", stack, re.M)
    assert frames == [(TARGET, str(LINE["main-fact"]), "<module>")] + \
        [(TARGET, str(LINE["fact-rec"]), "fact")] * 3 + [(TARGET, str(LINE["fact-test"] - 1), "fact")]
    assert [int(n) for n in re.findall(r"^      n = (\d+)$", stack, re.M)] == [4, 3, 2, 1]
    assert "      first = 12\n" in stack
    # return: to fact(1)'s RETURN with its value; rreturn: back to its CALL; then its caller's.
    assert "--Return--" in out[4] and position(out[4])[:2] == (TARGET, LINE["fact-base"])
    assert POSITION.findall(out[4])[-1][3] == "1"
    assert "--Call--" in out[5]
    assert out[6] == "1\n"
    assert "--Call--" in out[7] and out[8] == "2\n"
    # next over the call of fact(1) from fact(2)'s first line.
    assert position(out[9])[1] == LINE["fact-test"]
    assert position(out[10])[1] == LINE["fact-rec"]
    assert out[11] == "2\n"


def test_next_steps_over_calls_and_rnext_back(pyrewind, recording):
    out = transcript(pyrewind, recording, [
        "break replay_target.py:%d" % LINE["main-acc"], "c", "next", "p first", "rnext", "p first", "step", "step"])
    assert position(out[2])[1] == LINE["main-acc"]
    assert position(out[3])[1] == LINE["main-fact"] and out[4] == "12\n"
    assert position(out[5])[1] == LINE["main-acc"]
    assert out[6].startswith("*** name 'first' is not defined here")
    assert "--Call--" in out[7] and position(out[7])[2] == "accumulate"
    assert position(out[8])[1] == LINE["acc-init"]


def test_history_and_watch(pyrewind, recording):
    out = transcript(pyrewind, recording, [
        "break accumulate", "c", "history total", "history seen", "watch seen", "c", "p seen", "c", "p seen",
        "rc", "p seen", "delete", "c"])
    assert re.findall(r"step \d+ line (\d+): total = (.*)", out[3]) == [
        (str(LINE["acc-init"] + 1), "0"), (str(LINE["acc-append"]), "3"), (str(LINE["acc-append"]), "7"),
        (str(LINE["acc-append"]), "12")]
    assert [v for _, v in re.findall(r"step \d+ line (\d+): seen = (.*)", out[4])] == [
        "[]", "[3]", "[3, 7]", "[3, 7, 12]"]
    assert out[5].startswith("Watch 2: seen in accumulate (not bound at this step)")
    assert out[6].startswith("Watch 2: seen = []")
    assert out[7] == "[]\n"
    assert out[8].startswith("Watch 2: seen = [3]") and out[9] == "[3]\n"
    assert out[10].startswith("Watch 2: seen = []") and out[11] == "[]\n"
    assert "End of recording." in out[13]


def test_threads(pyrewind, recording):
    out = transcript(pyrewind, recording, [
        "break worker", "c", "threads", "p count"] + ["next"] * 6 + ["p done", "thread 0", "threads"])
    file, line, function, step, thread = position(out[2])
    assert function == "worker" and thread == 1
    assert '"helper"' in out[2]
    assert re.search(r'^\* thread 1 "helper" ', out[3], re.M)
    # The main thread at that moment: starting or joining the helper (by time, not record order).
    main_line = re.search(r'^  thread 0 "MainThread" .*: at .*\((\d+)\)<module>\(\)$', out[3], re.M)
    assert main_line and int(main_line.group(1)) in (LINE["main-start"], LINE["main-join"]), out[3]
    assert out[4] == "3\n"
    assert out[11] == "1\n"  # done after i = 0, 1
    main = position(out[12])
    assert main[4] == 0 and main[1] in (LINE["main-start"], LINE["main-join"])
    assert re.search(r'^\* thread 0 "MainThread"', out[13], re.M)


def test_goto_and_back_match_the_export(pyrewind, recording, tmp_path):
    """At any step, forward or backward, `locals` shows what the JSONL export says."""
    jsonl = tmp_path / "all.jsonl"
    pyrewind.export(recording, jsonl)
    events = [json.loads(line) for line in open(jsonl)]
    events = [e for e in events if "seq" in e]
    last = events[-1]["seq"]
    picks = sorted({0, 1, last // 3, last // 2, (2 * last) // 3, last - 1, last})
    commands = []
    for seq in picks:
        commands += ["goto %d" % seq, "locals", "back", "locals"]
    out = transcript(pyrewind, recording, commands)
    by_seq = {e["seq"]: e for e in events}
    for i, seq in enumerate(picks):
        shown, shown_locals, backed, backed_locals = out[1 + 4 * i: 5 + 4 * i]
        expected = by_seq[seq]
        assert position(shown)[1:4] == (expected["line"], expected["func"], seq) or \
            position(shown)[3] == seq and position(shown)[1] == expected["line"]
        if expected["event"] in ("call", "line"):
            assert sorted(locals_of(shown_locals)) == sorted(expected["locals"]), (seq, shown_locals)
        if seq == 0:
            assert backed.startswith("Start of recording.")
            continue
        previous = max(e["seq"] for e in events if e["seq"] < seq and e["tid"] == expected["tid"])
        assert position(backed)[3] == previous
        if by_seq[previous]["event"] in ("call", "line"):
            assert sorted(locals_of(backed_locals)) == sorted(by_seq[previous]["locals"])


def test_stepping_back_retraces_every_step(pyrewind, recording):
    count = 40
    out = transcript(pyrewind, recording, ["step"] * count + ["back"] * count)
    forward = [position(o)[3] for o in out[: count + 1]]
    backward = [position(o)[3] for o in out[count:]]
    assert forward == sorted(forward) and len(set(forward)) == count + 1
    assert backward == list(reversed(forward))


def test_index_is_cached_and_rebuilt_when_stale(pyrewind, recording, tmp_path):
    copy = tmp_path / "copy.rwd"
    copy.write_bytes(recording.read_bytes())
    index = tmp_path / "copy.rwdi"
    first = replay(pyrewind, copy, ["goto 30", "where"]).stdout
    assert index.exists() and (os.stat(index).st_mode & 0o777) == 0o600
    assert replay(pyrewind, copy, ["goto 30", "where"]).stdout == first
    index.write_bytes(b"PYRWIDX1" + os.urandom(4096))  # garbage: rebuilt, same answers
    assert replay(pyrewind, copy, ["goto 30", "where"]).stdout == first
    assert index.read_bytes()[:8] == b"PYRWIDX1" and len(index.read_bytes()) != 4104


def test_truncated_and_bad_recordings(pyrewind, tmp_path):
    """A recording cut short (the collector was killed) replays up to its last whole chunk."""
    whole = tmp_path / "whole.rwd"
    assert pyrewind.record([program("many_events.py"), "20000"], whole).returncode == 0
    data = whole.read_bytes()
    cut = tmp_path / "cut.rwd"
    cut.write_bytes(data[: len(data) * 2 // 3])
    res = replay(pyrewind, cut, ["info", "goto 999999999", "where", "back", "locals"])
    assert b"warning" in res.stderr and b"truncated" in res.stderr
    text = res.stdout.decode()
    assert "Damaged:" in text
    last = int(re.search(r"The recording has steps 0 to (\d+)", text).group(1))
    assert last > 1000
    assert "[step %d of " % last in text and "[step %d of " % (last - 1) in text
    garbage = tmp_path / "garbage.rwd"
    garbage.write_bytes(b"not a recording at all")
    res = replay(pyrewind, garbage, ["info"], check=False)
    assert res.returncode == EXIT_BAD_RECORDING
    assert b"not a pyrewind recording" in res.stderr


def test_source_listing(pyrewind, recording, tmp_path):
    out = transcript(pyrewind, recording, ["break replay_target.py:%d" % LINE["acc-add"], "c", "list"])
    listing = out[3].splitlines()
    here = [l for l in listing if "->" in l[:10]]
    assert len(here) == 1 and here[0].split()[0] == str(LINE["acc-add"]) and "total += v" in here[0]
    assert any(l.split()[:2] == [str(LINE["acc-add"]), "B->"] for l in listing)
    # Without the source on disk: said so.
    moved = tmp_path / "moved.py"
    moved.write_text(open(TARGET).read())
    rec = tmp_path / "moved.rwd"
    assert pyrewind.record([str(moved)], rec).returncode == 0
    moved.unlink()
    out = transcript(pyrewind, rec, ["list"])
    assert out[1].startswith("Source unavailable: %s" % moved)


def test_interactive_session_on_a_terminal(pyrewind, recording, tmp_path):
    """At a terminal: a prompt with line editing (libedit), an empty line repeats the last
    command as in pdb, the history is saved, Ctrl-D ends the session."""
    import pty
    import select
    import subprocess
    import time

    env = dict(os.environ, HOME=str(tmp_path), TERM="dumb")
    master, slave = pty.openpty()
    proc = subprocess.Popen([pyrewind.path, "replay", str(recording)], stdin=slave, stdout=slave, stderr=slave,
                            env=env, close_fds=True)
    os.close(slave)
    seen = b""

    def answer(keys, *markers):
        """Types `keys` at the next prompt; returns what it printed until the prompt after."""
        nonlocal seen
        start = len(seen)
        # The line editor switches the terminal to its own mode after printing the prompt,
        # which may flush what was typed before: type after it settles, as a person would.
        time.sleep(0.2)
        os.write(master, keys)
        deadline = time.monotonic() + 20
        while not (seen[start:].endswith(b"(rwd) ") and all(m in seen[start:] for m in markers)):
            assert time.monotonic() < deadline, seen[start:].decode(errors="replace")
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                seen += os.read(master, 65536)
        return seen[start:]

    try:
        answer(b"")  # the first prompt
        answer(b"break replay_target.py:%d\r" % LINE["acc-add"], b"Breakpoint 1 at")
        answer(b"c\r", b"[step ")
        assert b"\n0\r\n" in answer(b"p total\r")
        answer(b"c\r", b"Breakpoint 1\r\n")
        assert b"Breakpoint 1\r\n" in answer(b"\r")  # an empty line repeats `c`: the third hit
        assert b"\n7\r\n" in answer(b"p total\r")
        time.sleep(0.2)
        os.write(master, b"\x04")  # Ctrl-D at the prompt ends the session
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    history = (tmp_path / ".pyrewind_history").read_text().replace("\\040", " ")  # libedit's encoding
    assert "p total" in history and "break replay_target.py:%d" % LINE["acc-add"] in history


# --- sampled recordings (`pyrewind sample`): each sample one step, in time order

SAMPLE_TARGET = program("sample_target.py")
SAMPLE_AT = re.compile(r'^\[sample (\d+) of (\d+), \+([0-9.]+)s, thread (\d+)(?: "(.*)")?, (GIL|no GIL), '
                       r'(idle|running)\]$', re.M)
NO_LOCALS = ("A sample records the stack only, no locals: print, locals, watch and history need a trace "
             "recording (pyrewind record).\n")


@pytest.fixture(scope="module")
def sampled(pyrewind, interp, tmp_path_factory):
    """sample_target.py sampled from its start, and its samples as the export shows them, in
    time order (ties in file order)."""
    path = tmp_path_factory.mktemp("replay-sample") / "sampled.rwd"
    res = run([pyrewind.path, "sample", "-q", "-o", str(path), "--rate", "200", "--", interp.path, SAMPLE_TARGET,
               "1"], timeout=60)
    assert res.returncode == 0, res.describe()
    res = run([pyrewind.path, "export", str(path), "--format", "jsonl"])
    assert res.returncode == 0, res.describe()
    samples = [s for s in map(json.loads, res.stdout.splitlines()) if "sample" in s]
    assert len(samples) >= 100, len(samples)
    return path, sorted(samples, key=lambda s: (s["t_ns"], s["sample"]))


def sample_shown(output):
    """(index, count, time text, thread, gil, idle) of the last sample position in `output`."""
    found = SAMPLE_AT.findall(output)
    assert found, output
    index, count, seconds, thread, _, gil, idle = found[-1]
    return int(index), int(count), seconds, int(thread), gil == "GIL", idle == "idle"


def expected_position(sample, count):
    return (sample["sample"], count, "%.6f" % (sample["t_ns"] / 1e9), sample["tid"], sample["gil"], sample["idle"])


def frame_text(frame):
    if frame.get("native"):
        return "%s (%s)" % (frame["func"], frame["file"])
    return "%s (%s%s)" % (frame["func"], frame["file"], ":%d" % frame["line"] if frame["line"] else "")


def test_sample_replay_steps_through_the_samples_of_every_thread(pyrewind, sampled):
    path, samples = sampled
    count = 40
    out = transcript(pyrewind, path, ["where"] + ["step", "where"] * count + ["back"] * count + ["back", "info"])
    threads = len({s["tid"] for s in samples})  # a thread just starting may be sampled too
    assert out[0].startswith("Sampled recording: %d samples of %d thread(s), 200 a second per thread." %
                             (len(samples), threads))
    for i in range(count + 1):
        shown = out[0] if i == 0 else out[2 * i]
        assert sample_shown(shown) == expected_position(samples[i], len(samples)), i
        where = out[1 + 2 * i]
        assert where.startswith("Stack of thread %d " % samples[i]["tid"])
        assert " at sample %d, " % samples[i]["sample"] in where.splitlines()[0]
        assert [l[2:].split(" ", 1)[1] for l in where.splitlines() if l[:3] in ("> #", "  #")] == \
            [frame_text(f) for f in samples[i]["stack"]], (i, where)
    backward = [sample_shown(o)[0] for o in out[2 * count + 2: 3 * count + 2]]
    assert backward == [s["sample"] for s in reversed(samples[:count])]
    assert out[-2] == "Start of recording.\n"
    assert "Mode:      sample, 200 samples a second per thread" in out[-1]
    assert "Position:  sample %d, " % samples[0]["sample"] in out[-1]
    assert not os.path.exists(str(path) + "i"), "no replay index for a sampled recording"


def test_sample_replay_next_goto_and_threads(pyrewind, sampled):
    path, samples = sampled
    middle = samples[len(samples) // 2]
    time_text = "%dns" % middle["t_ns"]
    counts = collections.Counter(s["tid"] for s in samples)  # a thread just starting may be sampled too
    other_tid = next(tid for tid, n in counts.most_common() if tid != middle["tid"])
    out = transcript(pyrewind, path, ["next", "next", "rnext", "goto #%d" % middle["sample"], "threads",
                                      "thread %d" % other_tid, "goto %s" % time_text, "goto -1s",
                                      "goto %d" % (len(samples) + 5)])
    main = [s for s in samples if s["tid"] == samples[0]["tid"]]
    assert [sample_shown(o)[0] for o in out[1:4]] == [main[1]["sample"], main[2]["sample"], main[1]["sample"]]
    assert sample_shown(out[4])[0] == middle["sample"]
    threads = out[5].splitlines()
    assert len(threads) == len(counts)
    for tid, line in zip(sorted(counts), threads):
        assert line.startswith("%s thread %d " % ("*" if tid == middle["tid"] else " ", tid)), line
        assert ", %d samples): " % counts[tid] in line
    assert any('"sleeper"' in line for line in threads)
    theirs = [s for s in samples if s["tid"] == other_tid]
    other = ([s for s in theirs if s["t_ns"] <= middle["t_ns"]] or theirs[:1])[-1]  # latest by then, else first
    assert sample_shown(out[6])[0] == other["sample"]
    assert sample_shown(out[7])[0] == next(s for s in samples if s["t_ns"] >= middle["t_ns"])["sample"]
    assert sample_shown(out[8])[0] == samples[0]["sample"]
    assert out[9].startswith("The recording has samples 0 to %d.\n" % (len(samples) - 1))
    assert sample_shown(out[9])[0] == len(samples) - 1


def test_sample_replay_breakpoints_anywhere_on_the_stack(pyrewind, sampled):
    path, samples = sampled
    sleep_line = next(n for n, text in enumerate(open(SAMPLE_TARGET), 1) if "# sleep: nap" in text)

    def holds(sample, func=None, line=None):
        return any(not f.get("native") and (f["func"] == func or f["func"].endswith("." + str(func)) if func else
                                            f["file"] == SAMPLE_TARGET and f["line"] == line)
                   for f in sample["stack"])

    napping = [s["sample"] for s in samples[1:] if holds(s, line=sleep_line)]
    hot = [s["sample"] for s in samples[1:] if holds(s, func="hot")]
    assert len(napping) >= 3 and len(hot) >= 3
    out = transcript(pyrewind, path, ["break sample_target.py:%d" % sleep_line, "c", "c", "c", "rc", "delete 1",
                                      "break hot", "c", "c", "break nap if stop", "p total", "locals", "list"])
    assert out[1] == "Breakpoint 1 at sample_target.py:%d\n" % sleep_line
    assert [sample_shown(o)[0] for o in out[2:5]] == napping[:3]
    assert all(o.startswith("Breakpoint 1\n") for o in out[2:5])
    assert sample_shown(out[5])[0] == napping[1]
    assert out[7] == "Breakpoint 2 at samples in hot\n"
    after = [s for s in hot if samples.index(next(x for x in samples if x["sample"] == s)) >
             samples.index(next(x for x in samples if x["sample"] == napping[1]))]
    assert [sample_shown(o)[0] for o in out[8:10]] == after[:2]
    assert out[10] == "A sample records no locals, so a breakpoint condition cannot be tested: set it without 'if'.\n"
    assert out[11] == out[12] == NO_LOCALS
    current = next(s for s in samples if s["sample"] == after[1])
    innermost = next(f for f in current["stack"] if not f.get("native"))
    here = [l for l in out[13].splitlines() if "->" in l[:10]]
    assert len(here) == 1 and here[0].split()[0] == str(innermost["line"]), out[13]


def test_sample_replay_shows_native_frames(pyrewind, interp, tmp_path):
    """With `sample --native`, `where` shows the C frames as `symbol (module)`, in their place
    among the Python frames, and a C symbol can be a breakpoint."""
    path = tmp_path / "native.rwd"
    res = run([pyrewind.path, "sample", "-q", "--native", "-o", str(path), "--rate", "200", "--", interp.path,
               SAMPLE_TARGET, "0.5"], timeout=60)
    assert res.returncode == 0, res.describe()
    res = run([pyrewind.path, "export", str(path), "--format", "jsonl"])
    assert res.returncode == 0, res.describe()
    samples = sorted((s for s in map(json.loads, res.stdout.splitlines()) if "sample" in s),
                     key=lambda s: (s["t_ns"], s["sample"]))
    mixed = [s for s in samples if any(f.get("native") for f in s["stack"]) and
             any(not f.get("native") for f in s["stack"])]
    assert len(mixed) >= 10, len(mixed)
    picks = mixed[:: len(mixed) // 5][:5]
    commands = []
    for s in picks:
        commands += ["goto #%d" % s["sample"], "where"]
    symbol = next(f["func"] for f in mixed[-1]["stack"] if f.get("native"))
    commands += ["goto 0", "break %s" % symbol, "c"]
    out = transcript(pyrewind, path, commands)
    for i, s in enumerate(picks):
        assert sample_shown(out[1 + 2 * i]) == expected_position(s, len(samples))
        assert [l[2:].split(" ", 1)[1] for l in out[2 + 2 * i].splitlines() if l[:3] in ("> #", "  #")] == \
            [frame_text(f) for f in s["stack"]], out[2 + 2 * i]
    first = next(s for s in samples[1:] if any(f.get("native") and f["func"] == symbol for f in s["stack"]))
    assert sample_shown(out[-1])[0] == first["sample"]
