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
