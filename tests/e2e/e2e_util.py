"""Helpers shared by the end-to-end tests: interpreters, runs, exports."""

import json
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")
REFTRACE = os.path.join(HERE, "reference", "reftrace.py")

PYENV = "/root/.pyenv/versions"
DEFAULT_INTERPRETERS = (
    PYENV + "/3.12.1/bin/python3.12",
    PYENV + "/3.13.0/bin/python3.13",
    PYENV + "/3.11.7/bin/python3.11",
    PYENV + "/3.10.13/bin/python3.10",
    PYENV + "/3.9.18/bin/python3.9",
    "/usr/bin/python3.11",
)
UNSUPPORTED_INTERPRETER = PYENV + "/3.8.18/bin/python3.8"

TIMEOUT = 180

# Exit statuses of pyrewind's own failures (tools/pyrewind/commands.h).
EXIT_USAGE = 2
EXIT_BAD_RECORDING = 3
EXIT_IO_ERROR = 4
EXIT_NOT_PYTHON = 5
EXIT_NO_AGENT = 6


def program(name):
    return os.path.join(PROGRAMS, name)


def base_env(**extra):
    """The environment every program run gets: the caller's, minus anything that would
    change how Python or the dynamic loader behave, with fixed hashing (set iteration order
    must be the same in the reference run and the recorded run) and no .pyc writing (the
    programs live in the source tree)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "PYREWIND", "LD_PRELOAD", "PYENV"))}
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.setdefault("LANG", "C.UTF-8")
    env.update(extra)
    return env


class ReadyTarget:
    """A program that prints one JSON line once it is ready (programs/dump_target.py,
    programs/sample_target.py): `started` is that line, `pid` its "pid"."""

    def __init__(self, cmd):
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=base_env())
        first = self.proc.stdout.readline()
        if not first:
            self.proc.kill()
            raise AssertionError("target did not start: %s" % self.proc.stderr.read().decode(errors="replace"))
        self.started = json.loads(first)
        self.pid = self.started["pid"]

    def close(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


class Interpreter:
    def __init__(self, path, version, minor, hexversion):
        self.path = path
        self.version = version
        self.minor = minor
        self.hexversion = hexversion

    @classmethod
    def probe(cls, path):
        if not os.access(path, os.X_OK):
            return None
        try:
            out = subprocess.run(
                [path, "-I", "-S", "-c",
                 "import sys, platform; print(platform.python_implementation(), "
                 "platform.python_version(), sys.version_info[1], sys.hexversion)"],
                capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if out.returncode != 0:
            return None
        impl, version, minor, hexversion = out.stdout.split()
        if impl != "CPython":
            return None
        return cls(path, version, int(minor), int(hexversion))

    def agent_path(self, agent_dir):
        return os.path.join(agent_dir, "pyrewind-agent-cpython-3.%d.so" % self.minor)

    @property
    def short_func(self):
        """3.9/3.10 have no co_qualname: compare only the last component of `func`."""
        return self.minor < 11

    def __repr__(self):
        return "Interpreter(%s, %s)" % (self.path, self.version)


class Result:
    def __init__(self, proc):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.args = proc.args

    def describe(self):
        return "command %s exited %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
            self.args, self.returncode, self.stdout[-3000:].decode("utf-8", "replace"),
            self.stderr[-3000:].decode("utf-8", "replace"))


def run(args, stdin=b"", env=None, cwd=None, timeout=TIMEOUT):
    proc = subprocess.run(args, input=stdin, capture_output=True, env=env or base_env(),
                          cwd=cwd, timeout=timeout)
    return Result(proc)


class Pyrewind:
    def __init__(self, path, interp):
        self.path = path
        self.interp = interp

    # The program, as the python command line after the interpreter.
    def plain(self, prog_args, **kw):
        return run([self.interp.path] + list(prog_args), **kw)

    def record(self, prog_args, output, options=(), quiet=True, python=None, **kw):
        cmd = [self.path, "run", "-o", str(output)]
        if quiet:
            cmd.append("-q")
        cmd += list(options) + ["--", python or self.interp.path] + list(prog_args)
        return run(cmd, **kw)

    def reference(self, prog_args, output, options=(), **kw):
        cmd = [self.interp.path, REFTRACE, "--out", str(output)] + list(options) + ["--"]
        return run(cmd + list(prog_args), **kw)

    def export(self, recording, output, check=True):
        res = run([self.path, "export", str(recording), "--format", "jsonl", "-o", str(output)])
        if check and res.returncode != 0:
            raise AssertionError("export failed: " + res.describe())
        return res

    def info(self, recording, as_json=False):
        cmd = [self.path, "info", str(recording)]
        if as_json:
            cmd.append("--json")
        return run(cmd)

    def info_json(self, recording):
        res = self.info(recording, as_json=True)
        if res.returncode != 0:
            raise AssertionError("info --json failed: " + res.describe())
        try:
            return json.loads(res.stdout)
        except ValueError as e:
            raise AssertionError("info --json printed no JSON (%s): %r" % (e, res.stdout[:500]))


def build_dir(pyrewind_path):
    """The build directory of a pyrewind binary (BUILD/bin/pyrewind)."""
    return os.path.dirname(os.path.dirname(pyrewind_path))


def npm_modules(pyrewind_path, packages, probe):
    """node_modules holding the pinned npm `packages`, installed once under the build directory
    (the formats' real consumers come from npm). `probe`: a path inside node_modules that
    exists once they are installed. Skips the test without npm/node or a registry."""
    import fcntl
    import shutil

    import pytest

    npm, node = shutil.which("npm"), shutil.which("node")
    if not npm or not node:
        pytest.skip("npm/node are not installed: cannot fetch %s to check the output" % " ".join(packages))
    prefix = os.path.join(build_dir(pyrewind_path), "npm", "-".join(p.replace("@", "-") for p in packages))
    modules = os.path.join(prefix, "node_modules")
    os.makedirs(prefix, exist_ok=True)
    # One session per interpreter may run at once: the first installs, the others wait.
    with open(os.path.join(prefix, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(modules, probe)):
            try:
                res = subprocess.run([npm, "install", "--prefix", prefix, "--no-audit", "--no-fund", "--no-save"]
                                     + list(packages), capture_output=True, timeout=300)
            except subprocess.TimeoutExpired:
                pytest.skip("npm install %s timed out (no network?)" % " ".join(packages))
            if res.returncode != 0 or not os.path.exists(os.path.join(modules, probe)):
                pytest.skip("npm install %s failed (no network?): %s" % (" ".join(packages), res.stderr.decode()[-500:]))
    return node, modules


PPROF_FORMAT = "pprof-format@2.1.0"  # the pprof decoder Datadog's and Pyroscope's Node agents use

PPROF_DECODE_JS = """
const {Profile} = require(%s);
const zlib = require("zlib"), fs = require("fs");
const p = Profile.decode(zlib.gunzipSync(fs.readFileSync(process.argv[2])));
const s = i => p.stringTable.strings[Number(i)];
const functions = new Map(p.function.map(f => [Number(f.id), f]));
const locations = new Map(p.location.map(l => [Number(l.id), l]));
const frame = id => {
  const l = locations.get(Number(id)).line[0];
  const f = functions.get(Number(l.functionId));
  return {name: s(f.name), file: s(f.filename), start_line: Number(f.startLine), line: Number(l.line)};
};
console.log(JSON.stringify({
  sample_type: p.sampleType.map(t => [s(t.type), s(t.unit)]),
  period_type: [s(p.periodType.type), s(p.periodType.unit)], period: String(p.period),
  time_nanos: String(p.timeNanos), duration_nanos: String(p.durationNanos),
  samples: p.sample.map(x => ({stack: x.locationId.map(frame), value: x.value.map(Number)})),
}));
"""


def pprof_decode(pyrewind_path, profile_path):
    """A gzipped profile.proto file as decoded by pprof-format (npm): sample types, period and
    samples with their stacks (leaf first) and values. Skips the test without npm."""
    node, modules = npm_modules(pyrewind_path, [PPROF_FORMAT], os.path.join("pprof-format", "package.json"))
    script = os.path.join(os.path.dirname(modules), "decode_pprof.js")
    if not os.path.exists(script):
        with open(script + ".tmp", "w") as f:
            f.write(PPROF_DECODE_JS % json.dumps(os.path.join(modules, "pprof-format")))
        os.rename(script + ".tmp", script)
    res = run([node, script, str(profile_path)])
    if res.returncode != 0:
        raise AssertionError("pprof-format could not decode %s: %s" % (profile_path, res.describe()))
    return json.loads(res.stdout)
