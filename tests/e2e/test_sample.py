"""`pyrewind sample` and `pyrewind top`: every thread's Python stack, sampled from outside the
process at a fixed rate (issue 5), stored as Sample packets in a recording of mode "sample".

Targets: programs/sample_target.py (a CPU-bound hot() on the main thread, a thread "sleeper"
asleep in nap()) and programs/dump_target.py churn (stacks that change all the time). The
exports are checked exactly against the samples of the recording, as the JSONL export shows
them.
"""

import collections
import json
import os
import subprocess
import time

import pytest

from e2e_util import EXIT_NOT_PYTHON, ReadyTarget, pprof_decode, program, run

TARGET = program("sample_target.py")
CHURN = program("dump_target.py")
EXIT_NO_PROCESS = 7


@pytest.fixture
def start_target(interp):
    started = []

    def start(*args):
        started.append(ReadyTarget([interp.path] + list(args)))
        return started[-1]

    yield start
    for target in started:
        target.close()


@pytest.fixture(scope="module")
def hot_recording(tmp_path_factory, pyrewind, interp):
    """A CPU-bound target sampled by PID for 1.5 s at 500 Hz, and its samples."""
    target = ReadyTarget([interp.path, TARGET, "8"])
    try:
        out = tmp_path_factory.mktemp("sample") / "hot.rwd"
        res = run([pyrewind.path, "sample", str(target.pid), "-o", str(out), "--rate", "500", "--duration", "1.5"],
                  timeout=60)
        assert res.returncode == 0, res.describe()
        assert target.proc.poll() is None, "the target died while sampled"
    finally:
        target.close()
    return out, target.started, jsonl(pyrewind, out)


def jsonl(pyrewind, recording):
    res = run([pyrewind.path, "export", str(recording), "--format", "jsonl"])
    assert res.returncode == 0, res.describe()
    return [json.loads(line) for line in res.stdout.splitlines()]


def info(pyrewind, recording):
    res = run([pyrewind.path, "info", str(recording), "--json"])
    assert res.returncode == 0, res.describe()
    return json.loads(res.stdout)


def export(pyrewind, recording, fmt):
    res = run([pyrewind.path, "export", str(recording), "--format", fmt])
    assert res.returncode == 0, res.describe()
    return res.stdout.decode()


def function(interp, qualname):
    return qualname.rsplit(".", 1)[-1] if interp.short_func else qualname


def frame_name(frame, first_lines):
    return "%s (%s:%d)" % (frame["func"], frame["file"], first_lines[(frame["func"], frame["file"])])


def test_sample_attributes_a_cpu_bound_thread_to_its_hot_function(pyrewind, interp, hot_recording):
    out, started, samples = hot_recording
    meta = info(pyrewind, out)
    assert meta["mode"] == "sample" and meta["sample_rate_hz"] == 500 and meta["event_count"] == 0
    assert meta["sample_count"] == len(samples) > 0
    threads = {t["native_id"]: t for t in meta["threads"]}
    main = threads[started["pid"]]["index"]
    main_samples = [s for s in samples if s["tid"] == main]
    assert len(main_samples) >= 300, len(main_samples)  # 1.5 s at 500 Hz, a loaded machine
    hot = [s for s in main_samples if s["stack"] and s["stack"][0]["func"] == "hot"]
    assert len(hot) >= 0.9 * len(main_samples), collections.Counter(
        s["stack"][0]["func"] if s["stack"] else None for s in main_samples)
    assert [f["func"] for f in hot[0]["stack"]] == ["hot", "main", "<module>"]
    assert all(f["file"] == TARGET for f in hot[0]["stack"])
    assert sum(not s["idle"] for s in hot) >= 0.9 * len(hot)
    assert any(s["gil"] for s in hot)


def test_a_sleeping_thread_is_flagged_idle(pyrewind, interp, hot_recording):
    out, started, samples = hot_recording
    threads = {t["native_id"]: t for t in info(pyrewind, out)["threads"]}
    sleeper = threads[started["sleeper"]]
    assert sleeper["name"] == "sleeper"
    mine = [s for s in samples if s["tid"] == sleeper["index"]]
    assert mine and sum(s["idle"] for s in mine) >= 0.9 * len(mine)
    napping = [s for s in mine if s["stack"] and s["stack"][0]["func"] == "nap"]
    assert len(napping) >= 0.9 * len(mine)
    # The GIL holder and the OS thread state are read at different instants: rarely both show
    # a thread that is just going to sleep.
    assert sum(s["gil"] for s in napping if s["idle"]) <= 0.1 * len(napping)


def test_info_shows_samples(pyrewind, hot_recording):
    out, _, samples = hot_recording
    res = run([pyrewind.path, "info", str(out)])
    assert res.returncode == 0, res.describe()
    text = res.stdout.decode()
    assert "mode sample" in text
    assert "Samples:       %d, every thread 500 times a second" % len(samples) in text
    assert "Dropped:       " in text


def test_stats_names_the_hot_function_first(pyrewind, hot_recording):
    out, _, samples = hot_recording
    res = run([pyrewind.path, "stats", str(out)])
    assert res.returncode == 0, res.describe()
    lines = res.stdout.decode().splitlines()
    assert lines[2] == "functions, by own samples"
    assert lines[4].endswith("hot  (%s:%d)" % (TARGET, first_line("def hot(")))
    stats = json.loads(run([pyrewind.path, "stats", str(out), "--format", "json"]).stdout)
    counted = [s for s in samples if not s["idle"]]  # recorded without --idle
    assert stats["samples"] == len(counted)
    assert stats["period_ns"] == 2000000
    top = stats["functions"][0]
    assert top["function"] == "hot"
    assert top["own_samples"] == sum(1 for s in counted if s["stack"] and s["stack"][0]["func"] == "hot")
    assert top["self_ns"] == top["own_samples"] * 2000000


def first_line(prefix):
    with open(TARGET) as source:
        return next(n for n, text in enumerate(source, 1) if text.startswith(prefix))


def first_lines(pyrewind, recording):
    """(function, file) -> first line, from the stats of the recording's code objects."""
    stats = json.loads(run([pyrewind.path, "stats", str(recording), "--format", "json"]).stdout)
    return {(f["function"], f["file"]): f["line"] for f in stats["functions"]}


def test_collapsed_export_of_samples(pyrewind, hot_recording):
    out, _, samples = hot_recording
    lines = first_lines(pyrewind, out)
    expected = collections.Counter()
    for s in samples:
        if s["stack"] and not s["idle"]:
            expected[";".join(frame_name(f, lines) for f in reversed(s["stack"]))] += 1
    got = collections.Counter()
    for line in export(pyrewind, out, "collapsed").splitlines():
        path, count = line.rsplit(" ", 1)
        got[path] += int(count)
    assert got == expected


def test_pprof_export_of_samples(pyrewind, hot_recording, tmp_path):
    """pprof (read back by a real pprof decoder): each stack's sample count and count x period,
    with the line each frame was on; the hot function holds nearly all of them."""
    out, _, samples = hot_recording
    profile_path = tmp_path / "samples.pb.gz"
    res = run([pyrewind.path, "export", str(out), "--format", "pprof", "-o", str(profile_path)])
    assert res.returncode == 0, res.describe()
    profile = pprof_decode(pyrewind.path, profile_path)
    assert profile["sample_type"] == [["samples", "count"], ["wall", "nanoseconds"]]
    period = int(profile["period"])
    assert period == 2000000  # 500 Hz
    expected = collections.Counter()
    for s in samples:
        if s["stack"] and not s["idle"]:
            expected[tuple((f["func"], f["file"], f["line"]) for f in s["stack"])] += 1
    got = collections.Counter()
    for sample in profile["samples"]:
        count, ns = sample["value"]
        assert ns == count * period
        got[tuple((f["name"], f["file"], f["line"]) for f in sample["stack"])] += count
    assert got == expected
    hot = sum(n for stack, n in got.items() if stack[0][0] == "hot")
    assert hot >= 0.9 * sum(got.values())


def test_speedscope_export_of_samples(pyrewind, hot_recording):
    out, _, samples = hot_recording
    doc = json.loads(export(pyrewind, out, "speedscope"))
    frames = doc["shared"]["frames"]
    meta = info(pyrewind, out)
    names = {t["index"]: t["name"] for t in meta["threads"]}
    expected = collections.defaultdict(list)
    for s in samples:
        if s["stack"] and not s["idle"]:
            expected[s["tid"]].append(s)
    assert len(doc["profiles"]) == len(expected)
    for profile, tid in zip(doc["profiles"], sorted(expected)):
        mine = expected[tid]
        assert profile["type"] == "sampled" and profile["unit"] == "nanoseconds"
        assert profile["name"] == "%s (thread %d)" % (names[tid], tid)
        assert profile["weights"] == [2000000] * len(mine)
        assert profile["startValue"] == mine[0]["t_ns"]
        assert profile["endValue"] == max(s["t_ns"] for s in mine) + 2000000
        stacks = [[(frames[i]["name"], frames[i]["file"]) for i in stack] for stack in profile["samples"]]
        assert stacks == [[(f["func"], f["file"]) for f in reversed(s["stack"])] for s in mine]


def test_span_exports_of_samples(pyrewind, hot_recording):
    out, _, _ = hot_recording
    chrome = json.loads(export(pyrewind, out, "chrome"))
    begins = [e for e in chrome["traceEvents"] if e["ph"] == "B"]
    ends = [e for e in chrome["traceEvents"] if e["ph"] == "E"]
    assert len(begins) == len(ends) > 0
    assert any(e["name"] == "hot" for e in begins)
    res = run([pyrewind.path, "export", str(out), "--format", "perfetto"])
    assert res.returncode == 0 and res.stdout, res.describe()


def test_sample_a_program_from_its_start(pyrewind, interp, work):
    out = work / "run.rwd"
    res = run([pyrewind.path, "sample", "-q", "-o", str(out), "--rate", "200", "--", interp.path, TARGET, "0.5"],
              timeout=60)
    assert res.returncode == 0, res.describe()
    started = json.loads(res.stdout.splitlines()[0])  # the program's stdout passes through
    meta = info(pyrewind, out)
    assert meta["pid"] == started["pid"] and meta["exit"] == {"code": 0}
    assert any(s["stack"] and s["stack"][0]["func"] == "hot" for s in jsonl(pyrewind, out))

    code = "import sys, time; print('out'); sys.stderr.write('err'); time.sleep(0.2); sys.exit(7)"
    res = run([pyrewind.path, "sample", "-q", "-o", str(out), "--", interp.path, "-c", code])
    assert (res.returncode, res.stdout, res.stderr) == (7, b"out\n", b"err")


def test_top_once_shows_the_hot_function(pyrewind, interp, start_target):
    target = start_target(TARGET, "30")
    res = run([pyrewind.path, "top", str(target.pid), "--once", "2", "--interval", "0.5", "--rate", "200"], timeout=30)
    assert res.returncode == 0, res.describe()
    refreshes = res.stdout.decode().split("\n\n")
    assert len([r for r in refreshes if r.strip()]) == 2
    for refresh in refreshes[:2]:
        rows = refresh.splitlines()
        assert rows[0].startswith("pyrewind top: process %d, Python " % target.pid)
        assert rows[1].split() == ["own%", "total%", "own", "s", "total", "s", "function", "(file:line)"]
        own, total = rows[2].split()[:2]
        assert rows[2].endswith("hot (%s:%d)" % (TARGET, first_line("def hot("))), refresh
        # The sleeper counts too while it is awake (waiting for the GIL on a loaded machine).
        assert float(own.rstrip("%")) >= 60 and own == total, refresh


def test_sampling_a_churning_target_counts_drops(pyrewind, interp, start_target, work):
    """Stacks, threads and frames that change all the time: torn reads are normal. Sampling at
    2 kHz for three seconds never crashes, and what does not check out is counted as dropped."""
    target = start_target(CHURN, "churn")
    out = work / "churn.rwd"
    res = run([pyrewind.path, "sample", str(target.pid), "-o", str(out), "--rate", "2000", "--duration", "3"],
              timeout=60)
    assert res.returncode == 0, res.describe()
    assert target.proc.poll() is None, "the target died while sampled"
    meta = info(pyrewind, out)
    assert meta["sample_count"] > 1000
    assert "dropped_samples" in meta
    assert b"dropped" in res.stderr
    samples = jsonl(pyrewind, out)
    assert any(f["func"] == function(interp, "churn_calls") for s in samples for f in s["stack"])
    for s in samples:
        for frame in s["stack"]:
            assert frame["func"] and frame["file"], s
    assert run([pyrewind.path, "stats", str(out)]).returncode == 0


@pytest.mark.cli
def test_sample_of_a_process_that_is_not_python(pyrewind, work):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        res = run([pyrewind.path, "sample", str(sleeper.pid), "-o", str(work / "x.rwd")])
        top = run([pyrewind.path, "top", str(sleeper.pid), "--once", "1"])
    finally:
        sleeper.kill()
        sleeper.wait()
    for r in (res, top):
        assert r.returncode == EXIT_NOT_PYTHON, r.describe()
        assert b"is not a Python process" in r.stderr
    assert not os.path.exists(work / "x.rwd")


@pytest.mark.cli
def test_sample_of_a_missing_process(pyrewind, work):
    gone = subprocess.Popen(["true"])
    gone.wait()
    for command in (["sample", str(gone.pid), "-o", str(work / "x.rwd")], ["top", str(gone.pid), "--once", "1"]):
        res = run([pyrewind.path] + command)
        assert res.returncode == EXIT_NO_PROCESS, res.describe()
        assert res.stderr == b"pyrewind: no such process: %d (check the PID with ps)\n" % gone.pid


def test_a_killed_sampler_leaves_a_readable_recording(pyrewind, interp, start_target, work):
    """The writer's chunks are whole on disk: what a SIGKILLed sampler flushed reads back, and
    the counts come from the chunks (the dropped samples, kept only in the summary, are unknown)."""
    target = start_target(TARGET, "30")
    out = work / "killed.rwd"
    sampler = subprocess.Popen([pyrewind.path, "sample", str(target.pid), "-o", str(out), "--rate", "1000"],
                               stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 2048):
            time.sleep(0.1)  # the chunk being filled is written every second
    finally:
        sampler.kill()
        sampler.wait()
        sampler.stderr.close()
    meta = info(pyrewind, out)
    assert meta["status"] != "complete" and meta["sample_count"] > 0, meta
    assert meta["sample_count"] == len(jsonl(pyrewind, out))
    res = run([pyrewind.path, "info", str(out)])
    assert b"Dropped:       unknown" in res.stdout, res.describe()
    assert run([pyrewind.path, "stats", str(out)]).returncode == 0


def test_idle_samples_count_in_profiles_with_idle(pyrewind, interp, start_target, work):
    target = start_target(TARGET, "30")
    out = work / "idle.rwd"
    res = run([pyrewind.path, "sample", str(target.pid), "-o", str(out), "--rate", "200", "--duration", "0.5",
               "--idle"], timeout=60)
    assert res.returncode == 0, res.describe()
    samples = jsonl(pyrewind, out)
    assert any(s["idle"] for s in samples) and info(pyrewind, out)["sample_idle"] is True
    stats = json.loads(run([pyrewind.path, "stats", str(out), "--format", "json"]).stdout)
    assert stats["samples"] == len(samples)
    nap = next(f for f in stats["functions"] if f["function"] == "nap")
    assert nap["own_samples"] >= sum(1 for s in samples if s["idle"] and s["stack"] and s["stack"][0]["func"] == "nap")


def test_sample_native_frames_below_python(pyrewind, interp, start_target, work):
    """--native: each sample also holds the C frames (zlib's deflate, libc's sleep), the Python
    frames standing where the evaluation loop's C frames were; the threads run on after, and
    the profiles name the C functions by module."""
    target = start_target(CHURN, "native")
    zipper = target.started["threads"]["zipper"]
    out = work / "native.rwd"
    res = run([pyrewind.path, "sample", str(target.pid), "-o", str(out), "--native", "--rate", "200",
               "--duration", "1.5"], timeout=60)
    assert res.returncode == 0, res.describe()
    assert target.proc.poll() is None, "the target died while sampled"
    index = {t["native_id"]: t["index"] for t in info(pyrewind, out)["threads"]}
    samples = [s for s in jsonl(pyrewind, out) if "sample" in s]

    zipping = [s for s in samples if s["tid"] == index[zipper]]
    assert len(zipping) >= 100, len(zipping)  # 1.5 s at 200 Hz, a loaded machine
    in_zlib = [s for s in zipping if any(f.get("native") and "libz" in f["file"] for f in s["stack"])]
    assert len(in_zlib) >= 0.5 * len(zipping), [s["stack"] for s in zipping[:3]]
    for s in in_zlib:
        stack = s["stack"]
        python = [f["func"] for f in stack if not f.get("native")]
        assert python[:2] == [function(interp, "squeeze"), function(interp, "Thread.run")], stack
        squeeze_at = next(i for i, f in enumerate(stack) if not f.get("native"))
        assert max(i for i, f in enumerate(stack) if f.get("native") and "libz" in f["file"]) < squeeze_at
        assert all(f["line"] == 0 for f in stack if f.get("native"))
        # The C frames that run Python code are replaced by the Python frames.
        assert not any(f["func"] == "_PyEval_EvalFrameDefault" for f in stack[:squeeze_at + 2]), stack
    # Idle under --native: stopped inside a system call (compressing is user code).
    assert sum(not s["idle"] for s in in_zlib) >= 0.8 * len(in_zlib)

    napping = [s for s in samples if s["tid"] == index[target.pid] and s["stack"]
               and any(f["func"] == "nap" for f in s["stack"])]
    assert len(napping) >= 100, len(napping)
    for s in napping:
        first_python = next(i for i, f in enumerate(s["stack"]) if not f.get("native"))
        assert s["stack"][first_python]["func"] == "nap" and first_python > 0, s["stack"]
        assert any(f["file"].startswith("libc.so") for f in s["stack"][:first_python]), s["stack"]
    assert sum(s["idle"] for s in napping) >= 0.9 * len(napping)  # as before the stop, not as stopped

    collapsed = export(pyrewind, out, "collapsed")
    assert "(libz.so" in collapsed and "(libc.so" in collapsed
    stats = run([pyrewind.path, "stats", str(out), "--format", "json"])
    assert stats.returncode == 0, stats.describe()
    natives = [f for f in json.loads(stats.stdout)["functions"] if f.get("native")]
    assert any(f["file"].startswith("libz.so") and f["line"] == 0 for f in natives), natives


def test_sample_subprocesses(pyrewind, interp, work):
    """--subprocesses: the Python processes the program starts (an interpreter run by subprocess,
    a forked multiprocessing child) are sampled too, their threads recorded with their pid; a
    child that is not Python is passed over. Without it only the program itself is sampled."""
    spawner = program("spawner.py")
    out = work / "family.rwd"
    res = run([pyrewind.path, "sample", "-q", "--subprocesses", "-o", str(out), "--rate", "200", "--",
               interp.path, spawner], timeout=60)
    assert res.returncode == 0, res.describe()
    children = json.loads(res.stdout.splitlines()[0])
    meta = info(pyrewind, out)
    threads = {t.get("pid", meta["pid"]): t for t in meta["threads"]}
    assert set(threads) == {meta["pid"], children["spun"], children["forked"]}, meta["threads"]
    samples = jsonl(pyrewind, out)

    def innermost(pid):
        return collections.Counter(s["stack"][0]["func"] for s in samples
                                   if s["tid"] == threads[pid]["index"] and s["stack"])

    for pid, hot in ((children["spun"], "spun_child"), (children["forked"], "forked_child")):
        seen = innermost(pid)
        assert seen[hot] >= 0.8 * sum(seen.values()) and seen[hot] >= 100, (hot, seen)  # 1.5 s at 200 Hz
    waiting = [s for s in samples if s["tid"] == threads[meta["pid"]]["index"]
               and any(f["func"] == "parent_wait" for f in s["stack"])]
    assert len(waiting) >= 100, innermost(meta["pid"])
    res = run([pyrewind.path, "stats", str(out)])
    assert res.returncode == 0 and b"spun_child" in res.stdout and b"forked_child" in res.stdout, res.describe()
    assert b"(pid %d)" % children["spun"] in run([pyrewind.path, "info", str(out)]).stdout

    res = run([pyrewind.path, "sample", "-q", "-o", str(out), "--rate", "200", "--", interp.path, spawner], timeout=60)
    assert res.returncode == 0, res.describe()
    assert len(info(pyrewind, out)["threads"]) == 1
