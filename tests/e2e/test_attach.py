"""`pyrewind attach PID`: record a program that is already running, then detach and leave it
exactly as it was (issue 3).

The target is programs/attach_target.py in one of its modes. Each test compares what the
recording holds with invariants the target's own code keeps (see the program's docstring), and
what the target prints after the detach with an unattached run.
"""

import ctypes
import os
import queue
import signal
import subprocess
import threading
import time

import pytest

from compare import load_jsonl
from e2e_util import base_env, program, run, UNSUPPORTED_INTERPRETER

TARGET = program("attach_target.py")
LIBC = ctypes.CDLL(None, use_errno=True)
SYS_TGKILL = 234  # x86-64
MODES = ("sleep", "busy", "event", "select", "alloc8", "threads")
ATTACH_TIMEOUT = 60
STRESS_ATTACHES = 200


def source_line(text):
    with open(TARGET) as source:
        for number, line in enumerate(source, 1):
            if line.strip() == text:
                return number
    raise AssertionError("no line %r in %s" % (text, TARGET))


SQUARES_LINE = source_line("total += i * i")
NAPS_LINE = source_line("doubled = count * 2")
ALLOCATE_CHECK_LINE = source_line("if sum(index.values()) != expected:")
ALLOCATED_CHARS = sum(len(str(n)) for n in range(2000))


class Target:
    """attach_target.py running in MODE, driven through its stdin and stdout."""

    def __init__(self, python, mode, preexec_fn=None):
        self.proc = subprocess.Popen([python, TARGET, mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=base_env(), preexec_fn=preexec_fn)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.expect("ready")

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self.lines.put(None)

    @property
    def pid(self):
        return self.proc.pid

    def expect(self, prefix, timeout=30):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("target printed nothing for %ss while %r was expected" % (timeout, prefix))
        assert line is not None and line.startswith(prefix), (
            "target printed %r, expected %r...; stderr: %s" % (line, prefix, self.stderr_now()))
        return line

    def stderr_now(self):
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read().decode("utf-8", "replace")[-2000:]

    def tracing_state(self):
        """What the target reports about sys.gettrace / threading's hook / monitoring tools.
        The signal is sent to the main thread itself (tgkill): Python runs handlers there, and a
        process-directed signal taken by a busy worker would not wake a main thread blocked in
        epoll or a lock."""
        while not self.lines.empty():  # a late answer to an earlier request
            line = self.lines.get()
            assert line is None or line.startswith("state "), "unexpected output %r" % line
        for _ in range(3):
            if LIBC.syscall(SYS_TGKILL, self.pid, self.pid, signal.SIGUSR2) != 0:
                raise AssertionError("tgkill failed: errno %d" % ctypes.get_errno())
            try:
                line = self.lines.get(timeout=10)
            except queue.Empty:
                continue  # ask again
            assert line is not None and line.startswith("state "), (
                "target printed %r; stderr: %s" % (line, self.stderr_now()))
            return line
        raise AssertionError("the target did not report its tracing state in 30 s")

    def scheduler_state(self):
        with open("/proc/%d/stat" % self.pid) as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]

    def finish(self):
        self.proc.stdin.write(b"quit\n")
        self.proc.stdin.flush()
        rest = []
        while True:
            line = self.lines.get(timeout=60)
            if line is None:
                break
            if not line.startswith("state "):  # late answers to a repeated state request
                rest.append(line)
        return rest, self.proc.wait(timeout=60)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def targets():
    started = []

    def start(python, mode, **kw):
        target = Target(python, mode, **kw)
        started.append(target)
        return target

    yield start
    for target in started:
        target.kill()


def attach(pyrewind, pid, output, *options, timeout=ATTACH_TIMEOUT):
    return run([pyrewind.path, "attach", str(pid), "-o", str(output)] + list(options), timeout=timeout)


def recorded_lines(pyrewind, work, recording):
    jsonl = work / (recording.name + ".jsonl")
    pyrewind.export(recording, jsonl)
    return [ev for ev in load_jsonl(str(jsonl)) if ev["event"] == "line" and ev["file"] == TARGET]


def check_invariants(lines):
    """The locals of every recorded step must obey the target's invariants."""
    checked = 0
    for ev in lines:
        names = ev.get("locals", {})
        if ev["line"] == SQUARES_LINE and "i" in names and "total" in names:
            i = names["i"]
            assert names["total"] == i * (i - 1) * (2 * i - 1) // 6, ev
            checked += 1
        if ev["line"] == NAPS_LINE and "count" in names and "doubled" in names:
            assert names["doubled"] == 2 * (names["count"] - 1), ev
            checked += 1
        if ev["line"] == ALLOCATE_CHECK_LINE and "index" in names:
            assert names["expected"] == ALLOCATED_CHARS, ev
            assert names["words"]["len"] == names["index"]["len"] == 2000, ev
            assert names["words"]["items"][:3] == ["0", "1", "2"], ev
            checked += 1
    return checked


def funcs_by_thread(pyrewind, recording, lines):
    names = {t["index"]: t.get("name", "") for t in pyrewind.info_json(recording)["threads"]}
    seen = {}
    for ev in lines:
        seen.setdefault(names.get(ev["tid"], "?"), set()).add(ev["func"].rsplit(".", 1)[-1])
    return seen


def unattached_result(interp, mode):
    target = Target(interp.path, mode)
    try:
        state = target.tracing_state()
        return state, target.finish()
    finally:
        target.kill()


@pytest.mark.parametrize("mode", MODES)
def test_attach_records_and_detaches_cleanly(pyrewind, interp, work, targets, mode):
    target = targets(interp.path, mode)
    before = target.tracing_state()
    recording = work / ("%s.rwd" % mode)
    res = attach(pyrewind, target.pid, recording, "--duration", "1")
    assert res.returncode == 0, res.describe()

    # The target runs on, untouched.
    assert target.scheduler_state() not in ("T", "t"), "target left stopped"
    assert target.tracing_state() == before, "tracing left behind after detach"
    rest, code = target.finish()
    plain_state, (plain_rest, plain_code) = unattached_result(interp, mode)
    assert (rest, code) == (plain_rest, plain_code) == (["done failures=[]"], 7), (rest, code)
    assert before == plain_state

    lines = recorded_lines(pyrewind, work, recording)
    assert check_invariants(lines) > 0, "no step of the target's loops was recorded"
    threads = funcs_by_thread(pyrewind, recording, lines)
    if mode == "sleep":
        assert "naps" in threads.get("MainThread", set()), threads
    elif mode == "busy":
        assert "squares" in threads.get("MainThread", set()), threads
    elif mode in ("event", "select"):
        assert "squares" in threads.get("worker", set()), threads
    elif mode == "alloc8":
        allocating = [name for name, funcs in threads.items() if name.startswith("alloc-") and "allocate" in funcs]
        assert len(allocating) >= 2, threads
    elif mode == "threads":
        assert any(name.startswith("early-") for name in threads), threads
        late = [name for name in threads if name.startswith("late-")]
        assert len(late) >= 2, "threads started after the attach were not traced: %s" % threads


def test_reattach_after_detach(pyrewind, interp, work, targets):
    target = targets(interp.path, "sleep")
    before = target.tracing_state()
    for attempt in range(3):
        recording = work / ("again-%d.rwd" % attempt)
        res = attach(pyrewind, target.pid, recording, "--duration", "0.5")
        assert res.returncode == 0, res.describe()
        assert check_invariants(recorded_lines(pyrewind, work, recording)) > 0, attempt
        assert target.tracing_state() == before
    assert target.finish() == (["done failures=[]"], 7)


def test_second_concurrent_attach_is_refused(pyrewind, interp, work, targets):
    target = targets(interp.path, "busy")
    first = subprocess.Popen([pyrewind.path, "attach", str(target.pid), "-o", str(work / "first.rwd"),
                              "--duration", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=base_env())
    try:
        deadline = time.monotonic() + 30
        while not (work / "first.rwd").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        second = attach(pyrewind, target.pid, work / "second.rwd")
        assert second.returncode != 0, second.describe()
        assert b"already" in second.stderr, second.describe()
    finally:
        out, err = first.communicate(timeout=ATTACH_TIMEOUT)
    assert first.returncode == 0, err.decode("utf-8", "replace")
    assert check_invariants(recorded_lines(pyrewind, work, work / "first.rwd")) > 0
    assert target.finish() == (["done failures=[]"], 7)


def test_collector_killed_mid_recording(pyrewind, interp, work, targets):
    """If `pyrewind attach` dies (SIGKILL: no detach request), the agent notices and removes
    tracing by itself; what was recorded up to then is readable."""
    target = targets(interp.path, "sleep")
    before = target.tracing_state()
    recording = work / "killed.rwd"
    attacher = subprocess.Popen([pyrewind.path, "attach", str(target.pid), "-o", str(recording)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=base_env())
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and b"attached" not in attacher.stderr.peek():
            time.sleep(0.05)
        time.sleep(2.5)  # past the collector's periodic flush, so the file has whole chunks
    finally:
        attacher.kill()
        attacher.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and target.tracing_state() != before:
        time.sleep(0.1)
    assert target.tracing_state() == before, "tracing left behind after the collector died"
    assert target.scheduler_state() not in ("T", "t")
    assert check_invariants(recorded_lines(pyrewind, work, recording)) > 0
    assert target.finish() == (["done failures=[]"], 7)


@pytest.mark.slow
def test_attach_detach_stress(pyrewind, interp, work, targets):
    """Attach to and detach from a busy 8-thread target many times in a row."""
    target = targets(interp.path, "alloc8")
    before = target.tracing_state()
    slowest = 0.0
    for attempt in range(STRESS_ATTACHES):
        recording = work / "stress.rwd"
        started = time.monotonic()
        res = attach(pyrewind, target.pid, recording, "--duration", "0.02", timeout=30)
        slowest = max(slowest, time.monotonic() - started)
        assert res.returncode == 0, "attach %d: %s" % (attempt, res.describe())
        assert target.scheduler_state() not in ("T", "t"), "target left stopped after attach %d" % attempt
    assert target.tracing_state() == before
    assert target.finish() == (["done failures=[]"], 7)
    print("slowest of %d attach/detach cycles: %.2f s" % (STRESS_ATTACHES, slowest))


def test_attach_to_stopped_process_fails_and_leaves_it_stopped(pyrewind, interp, work, targets):
    target = targets(interp.path, "sleep")
    os.kill(target.pid, signal.SIGSTOP)
    try:
        res = attach(pyrewind, target.pid, work / "stopped.rwd")
        assert res.returncode != 0, res.describe()
        assert b"stopped" in res.stderr, res.describe()
        assert target.scheduler_state() in ("T", "t")
    finally:
        os.kill(target.pid, signal.SIGCONT)
    assert target.finish() == (["done failures=[]"], 7)


def test_attach_to_exited_process_fails_cleanly(pyrewind, interp, work):
    # A zombie: the interpreter has exited, its parent (this test) has not reaped it yet.
    exited = subprocess.Popen([interp.path, "-c", "import os; os._exit(3)"])
    deadline = time.monotonic() + 10
    while proc_state(exited.pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc_state(exited.pid) == "Z"
    res = attach(pyrewind, exited.pid, work / "zombie.rwd")
    assert res.returncode == 9, res.describe()
    assert b"exiting" in res.stderr, res.describe()
    assert exited.wait() == 3


def test_target_exiting_during_attach(pyrewind, interp, work):
    """Targets that exit at staggered moments around the attach: each attach either records
    and ends with the target, or fails with a clear error; none hangs, and every target exits
    normally with its own status."""
    code = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end: pass\nsys.exit(5)\n"
    outcomes = {}
    for attempt in range(24):
        lifetime = 0.004 * attempt
        target = subprocess.Popen([interp.path, "-c", code, str(lifetime)])
        try:
            res = attach(pyrewind, target.pid, work / ("exiting%d.rwd" % attempt), "--duration", "5", timeout=30)
        finally:
            status = target.wait(timeout=30)
        assert status == 5, "target %d (%.3f s) ended with %d; attach: %s" % (attempt, lifetime, status, res.describe())
        assert res.returncode in (0, 7, 9, 11), res.describe()
        if res.returncode != 0:
            assert res.stderr.strip().count(b"\n") <= 2, "not a short, clear message: " + res.describe()
        outcomes[res.returncode] = outcomes.get(res.returncode, 0) + 1
    print("attach outcomes by exit code: %s" % outcomes)


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


# --- errors that do not depend on the interpreter under test ---------------------------------

@pytest.mark.cli
def test_no_such_process(pyrewind, work):
    gone = subprocess.Popen(["true"])
    gone.wait()
    res = attach(pyrewind, gone.pid, work / "x.rwd")
    assert res.returncode != 0, res.describe()
    assert b"no such process" in res.stderr.lower(), res.describe()
    assert not (work / "x.rwd").exists()


@pytest.mark.cli
def test_process_in_another_pid_namespace(pyrewind, work):
    if os.geteuid() != 0 or not os.path.exists("/usr/bin/unshare") or not os.path.exists(WORLD_PYTHON):
        pytest.skip("needs root, unshare and %s" % WORLD_PYTHON)
    contained = subprocess.Popen(["unshare", "--pid", "--fork", WORLD_PYTHON, "-c",
                                  "import time\nwhile True: time.sleep(0.1)"])
    try:
        deadline = time.monotonic() + 10
        inner = None
        while inner is None and time.monotonic() < deadline:
            children = open("/proc/%d/task/%d/children" % (contained.pid, contained.pid)).read().split()
            inner = int(children[0]) if children else None
            time.sleep(0.05)
        assert inner, "the namespaced python did not start"
        res = attach(pyrewind, inner, work / "x.rwd")
        assert res.returncode != 0, res.describe()
        assert b"namespace" in res.stderr, res.describe()
    finally:
        contained.kill()
        contained.wait()
        subprocess.run(["pkill", "-f", "import time\nwhile True: time.sleep\\(0.1\\)"])


@pytest.mark.cli
def test_not_a_python_process(pyrewind, work):
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        res = attach(pyrewind, sleeper.pid, work / "x.rwd")
        assert res.returncode != 0, res.describe()
        assert b"not a python" in res.stderr.lower(), res.describe()
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.cli
def test_unsupported_python_version(pyrewind, work):
    if not os.path.exists(UNSUPPORTED_INTERPRETER):
        pytest.skip("%s is not installed" % UNSUPPORTED_INTERPRETER)
    old = subprocess.Popen([UNSUPPORTED_INTERPRETER, "-c", "import time\nwhile True: time.sleep(0.1)"])
    try:
        res = attach(pyrewind, old.pid, work / "x.rwd")
        assert res.returncode != 0, res.describe()
        assert b"3.8" in res.stderr, res.describe()
        assert b"3.12" in res.stderr, "the message should name the supported versions: " + res.describe()
        assert old.poll() is None
    finally:
        old.kill()
        old.wait()


def as_user(uid, gid):
    def switch():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    return switch


WORLD_PYTHON = "/usr/bin/python3.11"  # pyenv's interpreters live under /root, unreadable to others


@pytest.mark.cli
def test_permission_denied_for_another_users_process(pyrewind, work, targets):
    if os.geteuid() != 0 or not os.path.exists(WORLD_PYTHON):
        pytest.skip("needs root (to run the target as nobody and pyrewind as daemon) and %s" % WORLD_PYTHON)
    target = targets(WORLD_PYTHON, "sleep", preexec_fn=as_user(65534, 65534))
    os.chmod(str(work), 0o777)
    res = run(["setpriv", "--reuid=1", "--regid=1", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
               pyrewind.path, "attach", str(target.pid), "-o", str(work / "x.rwd")], timeout=ATTACH_TIMEOUT)
    assert res.returncode != 0, res.describe()
    text = res.stderr.lower()
    assert b"permission" in text and b"ptrace" in text, res.describe()
    assert target.finish() == (["done failures=[]"], 7)


@pytest.mark.cli
def test_agent_not_readable_by_target_user(pyrewind, work, targets, pytestconfig):
    if os.geteuid() != 0 or not os.path.exists(WORLD_PYTHON):
        pytest.skip("needs root and %s" % WORLD_PYTHON)
    agent_dir = pytestconfig._pyrewind_env["agent_dir"]
    private = work / "private-agents"
    private.mkdir(mode=0o700)
    for name in os.listdir(agent_dir):
        with open(os.path.join(agent_dir, name), "rb") as src, open(str(private / name), "wb") as dst:
            dst.write(src.read())
        os.chmod(str(private / name), 0o600)
    target = targets(WORLD_PYTHON, "sleep", preexec_fn=as_user(65534, 65534))
    res = run([pyrewind.path, "attach", str(target.pid), "-o", str(work / "x.rwd")],
              env=base_env(PYREWIND_AGENT_DIR=str(private)), timeout=ATTACH_TIMEOUT)
    assert res.returncode != 0, res.describe()
    assert b"readable" in res.stderr.lower(), res.describe()
    assert target.finish() == (["done failures=[]"], 7)


def test_code_defined_before_the_attach_has_qualified_names(pyrewind, interp, work):
    target = subprocess.Popen([interp.path, program("attach_methods.py")], stdout=subprocess.PIPE, env=base_env())
    try:
        assert target.stdout.readline() == b"ready\n"
        recording = work / "methods.rwd"
        res = attach(pyrewind, target.pid, recording, "--duration", "1.5")
        assert res.returncode == 0, res.describe()
    finally:
        target.communicate(timeout=60)
    assert target.returncode == 0
    jsonl = work / "methods.jsonl"
    pyrewind.export(recording, jsonl)
    funcs = {ev["func"] for ev in load_jsonl(str(jsonl)) if "func" in ev}
    assert {"Ledger.spin", "Ledger.helper"} <= funcs, funcs
