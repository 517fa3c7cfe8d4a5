"""`pyrewind run` must be invisible to the program: stdin, stdout, stderr, argv, environment,
working directory and exit status pass through unchanged (compared with a plain run)."""

import json
import os
import random

from compare import load_jsonl
from e2e_util import base_env, program


def same_behaviour(plain, recorded):
    assert recorded.returncode == plain.returncode, (
        "exit status: plain %s, under pyrewind %s\n%s" % (plain.returncode, recorded.returncode,
                                                          recorded.describe()))
    assert recorded.stdout == plain.stdout, "stdout differs\n" + recorded.describe()
    assert recorded.stderr == plain.stderr, "stderr differs\n" + recorded.describe()


def test_stdio_bytes_exact(pyrewind, work):
    rnd = random.Random(1234)
    data = bytes(rnd.getrandbits(8) for _ in range(300000)) + b"\n\x00tail"
    args = [program("echo_stdio.py"), "", "two words", "--", "-o", "-q", "\u00fcn\u00ef"]
    plain = pyrewind.plain(args, stdin=data, cwd=str(work))
    assert plain.returncode == 7, plain.describe()
    recorded = pyrewind.record(args, work / "stdio.rwd", stdin=data, cwd=str(work))
    same_behaviour(plain, recorded)
    assert recorded.stdout.startswith(b"len=%d\n" % len(data))


def test_stdout_untouched_without_quiet(pyrewind, work):
    """Without -q pyrewind may report on stderr; stdout stays the program's alone."""
    args = [program("echo_stdio.py"), "x"]
    plain = pyrewind.plain(args, stdin=b"abc", cwd=str(work))
    recorded = pyrewind.record(args, work / "loud.rwd", quiet=False, stdin=b"abc", cwd=str(work))
    assert recorded.returncode == plain.returncode == 7, recorded.describe()
    assert recorded.stdout == plain.stdout, recorded.describe()
    assert plain.stderr in recorded.stderr, recorded.describe()


def environment_case(pyrewind, work, env, name):
    args = [program("environ.py"), "arg one", "ar\u00e7"]
    plain = pyrewind.plain(args, env=env, cwd=str(work))
    assert plain.returncode == 0, plain.describe()
    recording = work / (name + ".rwd")
    recorded = pyrewind.record(args, recording, env=env, cwd=str(work))
    same_behaviour(plain, recorded)
    seen = json.loads(recorded.stdout)
    for which in ("env", "child_env"):
        leaked = sorted(k for k in seen[which] if k.startswith("PYREWIND_") and k not in env)
        assert not leaked, "pyrewind variables leaked into the %s: %s" % (which, leaked)
        assert seen[which].get("LD_PRELOAD") == env.get("LD_PRELOAD"), (which, seen[which].get("LD_PRELOAD"))
    assert seen["cwd"] == os.path.realpath(str(work))
    # And it was traced all the same.
    pyrewind.export(recording, work / (name + ".jsonl"))
    events = load_jsonl(str(work / (name + ".jsonl")))
    assert any(ev.get("file") == program("environ.py") for ev in events), "nothing recorded"
    return seen


def test_environment_passthrough(pyrewind, work):
    env = base_env(E2E_EMPTY="", E2E_UNICODE="\u00fc\u00f1\u00ee", E2E_SPACES="a b  c",
                   PYREWIND_USER_SETTING="a user's own variable that happens to share the prefix")
    seen = environment_case(pyrewind, work, env, "env")
    assert seen["env"]["PYREWIND_USER_SETTING"] == env["PYREWIND_USER_SETTING"]
    assert "LD_PRELOAD" not in seen["env"]


def test_user_ld_preload_kept(pyrewind, work):
    """A user's own LD_PRELOAD reaches the program and its children exactly as given."""
    lib = next((p for p in ("/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6",
                            "/lib64/libm.so.6") if os.path.exists(p)), None)
    assert lib, "no libm to preload"
    env = base_env(LD_PRELOAD=lib)
    seen = environment_case(pyrewind, work, env, "preload")
    assert seen["env"]["LD_PRELOAD"] == lib and seen["child_env"]["LD_PRELOAD"] == lib


def test_argv_and_exit_status(pyrewind, work):
    for code in ("0", "1", "3", "255"):
        args = ["-c", "import sys; print(sys.argv); sys.exit(int(sys.argv[1]))", code, "-o", "--"]
        plain = pyrewind.plain(args, cwd=str(work))
        assert plain.returncode == int(code)
        recorded = pyrewind.record(args, work / ("exit%s.rwd" % code), cwd=str(work))
        same_behaviour(plain, recorded)


def test_system_exit_with_message(pyrewind, work):
    args = ["-c", "raise SystemExit('fatal: \\u00e9')"]
    plain = pyrewind.plain(args, cwd=str(work))
    assert plain.returncode == 1
    recorded = pyrewind.record(args, work / "msg.rwd", cwd=str(work))
    same_behaviour(plain, recorded)


def test_interpreter_options_pass_through(pyrewind, work):
    """Interpreter options before the script (-u, -X, -W) are the program's, not pyrewind's."""
    args = ["-u", "-W", "error::DeprecationWarning", "-X", "utf8", "-c",
            "import sys; print(sys.flags.utf8_mode, sys.warnoptions)"]
    plain = pyrewind.plain(args, cwd=str(work))
    assert plain.returncode == 0, plain.describe()
    recorded = pyrewind.record(args, work / "opts.rwd", cwd=str(work))
    same_behaviour(plain, recorded)



def test_interpreter_found_on_path_and_through_a_wrapper(pyrewind, interp, work):
    """`pyrewind run -- python3 app.py` finds python3 on PATH, also when it is a shell wrapper
    that execs the interpreter (as pyenv's shims do); the program is traced all the same."""
    bin_dir = work / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(interp.path)
    wrapper = bin_dir / "pywrapper"
    wrapper.write_text("#!/bin/sh\nexec %s \"$@\"\n" % interp.path)
    wrapper.chmod(0o755)
    env = base_env()
    env["PATH"] = "%s:%s" % (bin_dir, env.get("PATH", "/usr/bin:/bin"))
    args = [program("loops.py")]
    plain = pyrewind.plain(args, cwd=str(work))
    for name in ("python3", "pywrapper"):
        recording = work / (name + ".rwd")
        recorded = pyrewind.record(args, recording, python=name, env=env, cwd=str(work))
        same_behaviour(plain, recorded)
        pyrewind.export(recording, work / (name + ".jsonl"))
        events = load_jsonl(str(work / (name + ".jsonl")))
        assert any(ev.get("func", "").endswith("totals") for ev in events), "%s: not traced" % name
