"""`pyrewind dump PID`: every thread's Python stack of a running process, read from outside
without stopping it (issue 5).

The target is programs/dump_target.py: threads parked at lines marked `# park: NAME` in nested
calls, a spinning thread that holds the GIL, a frame full of known locals, and a deadlock. The
target keeps running while it is dumped, so a dump taken before every thread reached its park
line is taken again (a few times, briefly) until it does; the assertions are then exact.
"""

import json
import os
import subprocess
import time

import pytest

from e2e_util import EXIT_NOT_PYTHON, UNSUPPORTED_INTERPRETER, ReadyTarget, base_env, program, run

TARGET = program("dump_target.py")
EXIT_NO_PROCESS = 7
EXIT_UNSUPPORTED_TARGET = 10
SETTLE_SECONDS = 10


def marked_lines():
    lines = {}
    with open(TARGET) as source:
        for number, text in enumerate(source, 1):
            for tag in ("# park: ", "# spin: "):
                if tag in text:
                    lines[text.split(tag, 1)[1].strip()] = number
    return lines


LINES = marked_lines()


class Target(ReadyTarget):
    def __init__(self, python, mode):
        super().__init__([python, TARGET, mode])
        self.threads = self.started["threads"]  # label -> native thread id


@pytest.fixture
def start_target(interp):
    started = []

    def start(mode):
        started.append(Target(interp.path, mode))
        return started[-1]

    yield start
    for target in started:
        target.close()


def dump(pyrewind, pid, *options):
    return run([pyrewind.path, "dump", str(pid)] + list(options), timeout=30)


def dump_json(pyrewind, pid, *options):
    res = dump(pyrewind, pid, "--json", *options)
    assert res.returncode == 0, res.describe()
    return json.loads(res.stdout)


def settled_dump(pyrewind, pid, parked, *options):
    """The first JSON dump in which parked(dump) holds (every thread at its park line)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        snapshot = dump_json(pyrewind, pid, *options)
        if parked(snapshot) or time.monotonic() > deadline:
            return snapshot
        time.sleep(0.05)


def by_native_id(snapshot):
    return {thread["native_id"]: thread for thread in snapshot["threads"]}


def function(interp, qualname):
    # 3.9/3.10 code objects have no qualified name.
    return qualname.rsplit(".", 1)[-1] if interp.short_func else qualname


def ours(name, park):
    return (name, TARGET, LINES[park])


def shape(interp, frames):
    """Frames as (function, file, line) for the target's own, (function, 'threading.py') for the
    standard library's threading module (whose line numbers differ between versions)."""
    out = []
    for frame in frames:
        if frame["file"] == TARGET:
            out.append((frame["function"], frame["file"], frame["line"]))
        else:
            assert os.path.basename(frame["file"]) == "threading.py", frame
            assert frame["line"] > 0, frame
            out.append((frame["function"], "threading.py"))
    return out


def thread_tail(interp):
    return [(function(interp, "Thread.run"), "threading.py"),
            (function(interp, "Thread._bootstrap_inner"), "threading.py"),
            (function(interp, "Thread._bootstrap"), "threading.py")]


def event_wait(interp):
    return [(function(interp, "Condition.wait"), "threading.py"), (function(interp, "Event.wait"), "threading.py")]


def expected_stacks(interp):
    wait = event_wait(interp)
    tail = thread_tail(interp)
    return {
        "alpha": wait + [ours("leaf", "leaf"), ours("middle", "middle"), ours("worker", "worker-alpha")] + tail,
        "beta": wait + [ours("leaf", "leaf"), ours("worker", "worker-beta")] + tail,
        "gamma": wait + [ours("leaf", "leaf"), ours("recurse", "recurse-leaf"), ours("recurse", "recurse"),
                         ours("recurse", "recurse"), ours("worker", "worker-gamma")] + tail,
        "main": wait + [ours("main_waits", "main"), ours("stacks", "main-caller"), ours("<module>", "module")],
    }


def all_parked(interp, target):
    expected = expected_stacks(interp)

    def parked(snapshot):
        threads = by_native_id(snapshot)
        spinner = threads.get(target.threads.get("spinner"))
        # The spinner holds the GIL but for a moment now and then, and a parked thread is not
        # idle for that moment (it wakes to check its timeout, or the spinner is preempted on a
        # loaded machine): wait for a snapshot without such a moment too.
        return spinner is not None and spinner["holds_gil"] and all(
            label in target.threads and target.threads[label] in threads
            and shape(interp, threads[target.threads[label]]["frames"]) == stack
            and threads[target.threads[label]]["state"] == "idle"
            for label, stack in expected.items())
    return parked


def test_dump_shows_every_thread_at_its_line(pyrewind, interp, start_target):
    target = start_target("stacks")
    snapshot = settled_dump(pyrewind, target.pid, all_parked(interp, target))
    assert snapshot["pid"] == target.pid
    assert snapshot["python"] == interp.version
    threads = by_native_id(snapshot)
    assert sorted(threads) == sorted(target.threads.values())
    for label, stack in expected_stacks(interp).items():
        thread = threads[target.threads[label]]
        assert shape(interp, thread["frames"]) == stack, label
        assert thread["state"] == "idle", thread
        assert thread["holds_gil"] is False, thread
        assert "error" not in thread
        if label != "main":
            assert thread["name"] == "dump-" + label

    # The one thread running Python holds the GIL; it is somewhere in its loop.
    spinner = threads[target.threads["spinner"]]
    assert spinner["name"] == "dump-spinner"
    assert spinner["state"] == "active" and spinner["holds_gil"] is True, spinner
    innermost = spinner["frames"][0]
    assert (innermost["function"], innermost["file"]) == ("spin", TARGET)
    assert LINES["first"] <= innermost["line"] <= LINES["last"]
    assert shape(interp, spinner["frames"][1:]) == thread_tail(interp)

    # The same in text, py-spy style.
    res = dump(pyrewind, target.pid)
    assert res.returncode == 0, res.describe()
    text = res.stdout.decode()
    assert text.startswith("Process %d: %s %s stacks\nPython %s (" % (target.pid, interp.path, TARGET,
                                                                     interp.version)), text
    assert "\nThread %d (active, holds GIL) \"dump-spinner\"\n    spin (%s:" % (target.threads["spinner"], TARGET) in text
    alpha = "\nThread %d (idle) \"dump-alpha\"\n" % target.threads["alpha"]
    assert alpha in text
    assert text.split(alpha, 1)[1].split("\n\n")[0].splitlines()[2:5] == [
        "    leaf (%s:%d)" % (TARGET, LINES["leaf"]),
        "    middle (%s:%d)" % (TARGET, LINES["middle"]),
        "    worker (%s:%d)" % (TARGET, LINES["worker-alpha"]),
    ]


def test_dump_locals(pyrewind, interp, start_target):
    target = start_target("stacks")
    snapshot = settled_dump(pyrewind, target.pid, all_parked(interp, target), "--locals")
    threads = by_native_id(snapshot)

    def frame_locals(label, function_name):
        frame = next(f for f in threads[target.threads[label]]["frames"] if f["function"] == function_name)
        return {local["name"]: {k: v for k, v in local.items() if k != "name"} for local in frame["locals"]}

    main = frame_locals("main", "main_waits")
    for container in ("items", "table", "pair", "unique", "widget"):
        assert main[container].pop("address").startswith("0x")
    assert main == {
        "small": {"type": "int", "value": 42},
        "negative": {"type": "int", "value": -7},
        "big": {"type": "int", "value": str(2 ** 100)},
        "ratio": {"type": "float", "value": 2.5},
        "flag": {"type": "bool", "value": True},
        "nothing": {"type": "NoneType", "value": None},
        "name": {"type": "str", "value": "h\u00e9llo w\u00f6rld", "len": 11},
        "wide": {"type": "str", "value": "\u65e5\u672c\u8a9e", "len": 3},
        "emoji": {"type": "str", "value": "snake \U0001F40D", "len": 7},
        "data": {"type": "bytes", "value": "006162ff", "len": 4},
        "items": {"type": "list", "value": None, "len": 3},
        "table": {"type": "dict", "value": None, "len": 2},
        "pair": {"type": "tuple", "value": None, "len": 2},
        "unique": {"type": "set", "value": None, "len": 4},
        "widget": {"type": "Widget", "value": None},
        "long_text": {"type": "str", "value": "x" * 100, "len": 1000, "truncated": True},
    }
    assert frame_locals("alpha", "leaf") == {"label": {"type": "str", "value": "alpha", "len": 5},
                                             "number": {"type": "int", "value": 6},
                                             "text": {"type": "str", "value": "leaf alpha", "len": 10}}
    # A variable an inner function captures lives in a cell; its value is shown.
    assert frame_locals("beta", "worker")["captured"] == {"type": "int", "value": 41}

    res = dump(pyrewind, target.pid, "--locals", "--max-string", "3")
    assert res.returncode == 0, res.describe()
    text = res.stdout.decode()
    for line in ("        small = 42\n", "        negative = -7\n", "        flag = True\n", "        nothing = None\n",
                 "        name = 'h\u00e9l'... (11 chars)\n", "        data = b'\\x00ab'... (4 bytes)\n",
                 "        items = <list of 3 items at 0x", "        widget = <Widget at 0x",
                 "        ratio = 2.5\n", "        text = 'lea'... (10 chars)\n"):
        assert line in text, line


def test_dump_deadlock(pyrewind, interp, start_target):
    target = start_target("deadlock")
    take = [ours("take", "deadlock")] + thread_tail(interp)

    def parked(snapshot):
        threads = by_native_id(snapshot)
        return all(target.threads[t] in threads and shape(interp, threads[target.threads[t]]["frames"]) == take
                   for t in ("one", "other"))

    snapshot = settled_dump(pyrewind, target.pid, parked)
    threads = by_native_id(snapshot)
    assert sorted(threads) == sorted([target.pid] + list(target.threads.values()))
    for label in ("one", "other"):
        thread = threads[target.threads[label]]
        assert shape(interp, thread["frames"]) == take
        assert thread["state"] == "idle" and thread["holds_gil"] is False, thread
    # The main thread waits in Thread.join (Python code in threading.py down to the lock).
    main = shape(interp, threads[target.pid]["frames"])
    assert main[-2:] == [ours("deadlock", "deadlock-main"), ours("<module>", "module")]
    assert main[:-2] and all(frame[1] == "threading.py" for frame in main[:-2]), main
    assert threads[target.pid]["holds_gil"] is False


@pytest.mark.cli
def test_dump_of_a_process_that_is_not_python(pyrewind):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        res = dump(pyrewind, sleeper.pid)  # Popen returns once the child has exec'd
    finally:
        sleeper.kill()
        sleeper.wait()
    assert res.returncode == EXIT_NOT_PYTHON, res.describe()
    assert b"is not a Python process" in res.stderr
    assert res.stdout == b""


@pytest.mark.cli
def test_dump_of_a_missing_process(pyrewind):
    gone = subprocess.Popen(["true"])
    gone.wait()
    res = dump(pyrewind, gone.pid)
    assert res.returncode == EXIT_NO_PROCESS, res.describe()
    assert res.stderr == b"pyrewind: no such process: %d (check the PID with ps)\n" % gone.pid


@pytest.mark.cli
def test_dump_of_an_unsupported_python(pyrewind):
    if not os.access(UNSUPPORTED_INTERPRETER, os.X_OK):
        pytest.skip("%s is not installed" % UNSUPPORTED_INTERPRETER)
    old = subprocess.Popen([UNSUPPORTED_INTERPRETER, "-c", "import sys; print(1, flush=True); sys.stdin.read()"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=base_env())
    try:
        old.stdout.readline()
        res = dump(pyrewind, old.pid)
    finally:
        old.kill()
        old.wait()
        old.stdin.close()
        old.stdout.close()
    assert res.returncode == EXIT_UNSUPPORTED_TARGET, res.describe()
    assert b"runs Python 3.8" in res.stderr and b"cannot read" in res.stderr, res.describe()


def test_dump_while_stacks_change_under_it(pyrewind, interp, start_target):
    """A target whose threads, frames and locals change all the time: torn reads are normal;
    every dump succeeds (a thread that does not check out carries an error) and never crashes."""
    target = start_target("churn")
    seen_churn = seen_main = 0
    for attempt in range(60):
        snapshot = dump_json(pyrewind, target.pid, "--locals")
        assert snapshot["pid"] == target.pid
        seen_main += target.pid in by_native_id(snapshot)
        for thread in snapshot["threads"]:
            for frame in thread["frames"]:
                assert frame["function"] and frame["file"], frame
                seen_churn += frame["function"] == "churn_calls"
    assert target.proc.poll() is None, "the target died while dumped"
    assert seen_churn > 0 and seen_main > 0


def test_dump_native_frames_below_python(pyrewind, interp, start_target):
    """--native: the C frames each thread is in (libc's sleep, zlib's deflate) below its Python
    frames, which stand where the evaluation loop's C frames were; the threads run on after."""
    target = start_target("native")
    zipper = target.threads["zipper"]

    def parked(snapshot):
        threads = by_native_id(snapshot)
        main, other = threads.get(target.pid), threads.get(zipper)
        return bool(main and other and main["frames"] and other["frames"] and
                    main["frames"][0]["function"] == "nap" and other["frames"][0]["function"] == "squeeze")

    settled_dump(pyrewind, target.pid, parked)
    for attempt in range(20):
        res = dump(pyrewind, target.pid, "--native", "--json")
        assert res.returncode == 0, res.describe()
        threads = by_native_id(json.loads(res.stdout))
        squeezing = threads[zipper]["frames"]
        # The zipper may be between two compress() calls: take the dump where it is inside one.
        if any(f.get("native") and "libz" in f.get("module", "") for f in squeezing):
            break
    main = threads[target.pid]["frames"]
    python_main = [f["function"] for f in main if not f.get("native")]
    assert python_main[:3] == ["nap", "native", "<module>"], main
    first_python = next(i for i, f in enumerate(main) if not f.get("native"))
    assert first_python > 0 and all(f.get("native") for f in main[:first_python])
    assert any(f["module"].startswith("libc.so") for f in main[:first_python]), main[:first_python]
    # The C frames that run Python code are replaced by the Python frames.
    assert not any(f.get("symbol") == "_PyEval_EvalFrameDefault" for f in main[:first_python + 3])
    assert main[-1].get("native")  # the process's entry point, below <module>

    zlib_at = [i for i, f in enumerate(squeezing) if f.get("native") and "libz" in f.get("module", "")]
    squeeze_at = next(i for i, f in enumerate(squeezing) if f.get("function") == "squeeze")
    assert zlib_at and max(zlib_at) < squeeze_at, squeezing
    assert squeezing[squeeze_at]["line"] == LINES["squeeze"]
    assert threads[zipper]["state"] == "active"  # as it was before the dump stopped it

    # Let go: both threads run on (neither is left stopped).
    for tid in (target.pid, zipper):
        with open("/proc/%d/task/%d/stat" % (target.pid, tid)) as stat:
            assert stat.read().rsplit(")", 1)[1].split()[0] in ("R", "S"), tid
    res = dump(pyrewind, target.pid, "--native")
    assert res.returncode == 0, res.describe()
    assert "[native]" in res.stdout.decode() and "    nap (%s:%d)\n" % (TARGET, LINES["nap"]) in res.stdout.decode()


ASYNCIO_TARGET = program("asyncio_target.py")


def await_lines():
    with open(ASYNCIO_TARGET) as source:
        return {text.split("# await: ", 1)[1].strip(): number
                for number, text in enumerate(source, 1) if "# await: " in text}


AWAIT_LINES = await_lines()


def expected_tasks(interp):
    """Each pending task of programs/asyncio_target.py: its await chain, innermost first, as
    (function, file, line) for the target's coroutines and (function, asyncio module) for the
    standard library's (whose lines differ between versions); what it waits for."""
    def ours(name):
        return (name, ASYNCIO_TARGET, AWAIT_LINES[name])
    return {
        "Task-1": ([ours("main")], {"type": "_GatheringFuture"}),
        "joiner": ([ours("joiner")], {"type": "_asyncio.Task", "task": "worker-1"}),
        "spinner": ([ours("spinner")], {}),
        "waiter": ([(function(interp, "Event.wait"), "locks.py"), ours("waiter")], {"type": "_asyncio.Future"}),
        "worker-1": ([("sleep", "tasks.py"), ours("inner"), ours("worker")], {"type": "_asyncio.Future"}),
    }


def task_shape(task):
    frames = []
    for frame in task["frames"]:
        if frame["file"] == ASYNCIO_TARGET:
            frames.append((frame["function"], frame["file"], frame["line"]))
        else:
            assert os.path.dirname(frame["file"]).endswith("asyncio") and frame["line"] > 0, frame
            frames.append((frame["function"], os.path.basename(frame["file"])))
    waiting = {k: v for k, v in (task["waiting_for"] or {}).items() if k != "address"}
    return frames, waiting


def test_dump_asyncio_tasks(pyrewind, interp):
    """Every pending task with its coroutine chain down to what it awaits, and the task a task
    waits for; the running task is marked; a finished task is not shown."""
    target = ReadyTarget([interp.path, ASYNCIO_TARGET])
    try:
        expected = expected_tasks(interp)

        def parked(snapshot):
            return {t["name"]: task_shape(t) for t in snapshot["tasks"]} == expected

        snapshot = settled_dump(pyrewind, target.pid, parked)
        assert "tasks_error" not in snapshot, snapshot["tasks_error"]
        assert [t["name"] for t in snapshot["tasks"]] == sorted(expected)
        for task in snapshot["tasks"]:
            assert task_shape(task) == expected[task["name"]], task
            assert task["running"] is (task["name"] == "spinner") and "error" not in task, task
            assert task["address"].startswith("0x")
            assert task["name"] == "spinner" or task["waiting_for"]["address"].startswith("0x")
        addresses = {t["name"]: t["address"] for t in snapshot["tasks"]}
        joiner = next(t for t in snapshot["tasks"] if t["name"] == "joiner")
        assert joiner["waiting_for"]["address"] == addresses["worker-1"]
        assert set(snapshot) == {"pid", "command", "python", "image", "threads", "tasks"}

        res = dump(pyrewind, target.pid)
        assert res.returncode == 0, res.describe()
        text = res.stdout.decode()
        assert "\nasyncio tasks: 5 pending\n" in text, text
        assert '\nTask "spinner" (running)\n    spinner (%s:%d)\n' % (ASYNCIO_TARGET, AWAIT_LINES["spinner"]) in text
        assert ('\nTask "joiner" waiting for task "worker-1"\n    joiner (%s:%d)\n'
                % (ASYNCIO_TARGET, AWAIT_LINES["joiner"])) in text, text
        worker = text.split('\nTask "worker-1" waiting for _asyncio.Future at 0x', 1)[1].split("\n\n")[0]
        assert worker.splitlines()[1].startswith("    sleep (") and worker.splitlines()[2:] == [
            "    inner (%s:%d)" % (ASYNCIO_TARGET, AWAIT_LINES["inner"]),
            "    worker (%s:%d)" % (ASYNCIO_TARGET, AWAIT_LINES["worker"]),
        ], worker
        assert '"finished"' not in text
    finally:
        target.close()


def test_dump_without_asyncio_has_no_tasks(pyrewind, interp, start_target):
    target = start_target("deadlock")
    snapshot = dump_json(pyrewind, target.pid)
    assert snapshot["tasks"] == [] and "tasks_error" not in snapshot
    res = dump(pyrewind, target.pid)
    assert res.returncode == 0 and b"asyncio tasks" not in res.stdout, res.describe()
