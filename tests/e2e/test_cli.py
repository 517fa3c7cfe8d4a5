"""Bad input to the CLI and damaged recordings: each gives a clear message and the exit status
of tools/pyrewind/commands.h. Interpreter-independent (marker "cli"; ctest runs these once,
with the first interpreter that has an agent)."""

import json
import os
import shutil

import pytest

import rwd
from compare import check_format, load_jsonl
from e2e_util import (EXIT_BAD_RECORDING, EXIT_IO_ERROR, EXIT_NO_AGENT, EXIT_NOT_PYTHON, EXIT_USAGE,
                      UNSUPPORTED_INTERPRETER, Interpreter, base_env, program, run)

pytestmark = pytest.mark.cli


def err(res):
    return res.stderr.decode("utf-8", "replace")


# --- running what is not a supported Python ----------------------------------------------------

def test_nonexistent_interpreter(pyrewind, work):
    res = pyrewind.record([program("loops.py")], work / "x.rwd", python="/nonexistent/bin/python3")
    assert res.returncode == EXIT_NOT_PYTHON, res.describe()
    assert "/nonexistent/bin/python3" in err(res), res.describe()


def test_not_python(pyrewind, work):
    res = pyrewind.record([], work / "x.rwd", python="/bin/true")
    assert res.returncode == EXIT_NOT_PYTHON, res.describe()
    assert "/bin/true" in err(res) and "python" in err(res).lower(), res.describe()


def test_unsupported_interpreter(pyrewind, work):
    if not Interpreter.probe(UNSUPPORTED_INTERPRETER):
        pytest.skip("%s is not installed" % UNSUPPORTED_INTERPRETER)
    res = pyrewind.record([program("loops.py")], work / "x.rwd", python=UNSUPPORTED_INTERPRETER)
    # A CPython, just one no agent exists for: `run` reports it as kExitNoAgent, naming the
    # version and the agents it has.
    assert res.returncode == EXIT_NO_AGENT, res.describe()
    assert "3.8" in err(res), res.describe()
    assert not (work / "x.rwd").exists()


def test_no_agent_for_that_version(pyrewind, interp, work):
    """A pyrewind installation without the agent for the interpreter's version."""
    bin_dir = work / "inst" / "bin"
    lib_dir = work / "inst" / "lib" / "pyrewind"
    bin_dir.mkdir(parents=True)
    lib_dir.mkdir(parents=True)
    shutil.copy2(pyrewind.path, str(bin_dir / "pyrewind"))
    real_lib = os.path.join(os.path.dirname(os.path.dirname(pyrewind.path)), "lib", "pyrewind")
    for name in os.listdir(real_lib):
        if name.startswith("pyrewind-agent-cpython-3.%d." % interp.minor):
            continue
        shutil.copy2(os.path.join(real_lib, name), str(lib_dir / name))
    res = run([str(bin_dir / "pyrewind"), "run", "-q", "-o", str(work / "x.rwd"), "--", interp.path,
               program("loops.py")])
    assert res.returncode == EXIT_NO_AGENT, res.describe()
    assert "3.%d" % interp.minor in err(res), res.describe()


def test_unwritable_output(pyrewind, work):
    marker = work / "ran"
    args = ["-c", "open(%r, 'w').close()" % str(marker)]
    for target in ("/nonexistent-dir/x.rwd", "/dev/null/x.rwd", str(work)):
        res = pyrewind.record(args, target)
        assert res.returncode == EXIT_IO_ERROR, res.describe()
        assert target in err(res), res.describe()
    assert not marker.exists(), "the program ran although the recording could not be written"


def test_usage_errors(pyrewind, work):
    res = run([pyrewind.path, "run", "-o", str(work / "x.rwd")])
    assert res.returncode == EXIT_USAGE, res.describe()
    res = run([pyrewind.path, "export", str(work / "x.rwd"), "--format", "csv"])
    assert res.returncode == EXIT_USAGE, res.describe()
    res = run([pyrewind.path, "frobnicate"])
    assert res.returncode == EXIT_USAGE, res.describe()


# --- damaged recordings ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def big_recording(pyrewind, tmp_path_factory):
    """A recording of several chunks, its bytes, its layout and its complete export."""
    d = tmp_path_factory.mktemp("big")
    recording = d / "many.rwd"
    res = pyrewind.record([program("many_events.py"), "20000"], recording, cwd=str(d))
    assert res.returncode == 0, res.describe()
    pyrewind.export(recording, d / "full.jsonl")
    events = load_jsonl(str(d / "full.jsonl"))
    check_format(events, "full export")
    data = recording.read_bytes()
    header_end, chunks, summary, footer = rwd.layout(data)
    assert footer is not None and summary is not None, "a finished recording has a summary and footer"
    assert len(chunks) >= 3, "expected several chunks, got %s" % chunks
    assert sum(c.event_count for c in chunks) == len(events)
    return {"dir": d, "data": data, "chunks": chunks, "events": events, "summary": summary}


def export_damaged(pyrewind, work, data, name):
    path = work / name
    path.write_bytes(data)
    out = work / (name + ".jsonl")
    res = pyrewind.export(path, out, check=False)
    events = load_jsonl(str(out)) if out.exists() else []
    return path, res, events


def test_truncated_inside_a_chunk(pyrewind, big_recording, work):
    chunks = big_recording["chunks"]
    victim = chunks[len(chunks) // 2]
    cut = victim.offset + (victim.end - victim.offset) // 2
    path, res, events = export_damaged(pyrewind, work, big_recording["data"][:cut], "cut.rwd")
    whole = sum(c.event_count for c in chunks if c.end <= cut)
    assert res.returncode == 0, res.describe()
    assert "warning" in err(res) and "truncated" in err(res), res.describe()
    assert 0 < whole < len(big_recording["events"])
    check_format(events, "export of the truncated file")
    assert events == big_recording["events"][:whole], \
        "expected exactly the %d events of the whole chunks, got %d" % (whole, len(events))
    info = pyrewind.info_json(path)
    assert info["status"] == "damaged" and "truncated" in info["damage"], info
    assert info["event_count"] == whole
    assert info["exit"] is None
    res = pyrewind.info(path)
    assert res.returncode == 0 and "damaged" in res.stdout.decode() and "warning" in err(res), res.describe()


def test_footer_and_summary_missing(pyrewind, big_recording, work):
    """The collector was killed after its last chunk: every event is still there."""
    data = big_recording["data"][:big_recording["summary"]]
    path, res, events = export_damaged(pyrewind, work, data, "nofooter.rwd")
    assert res.returncode == 0, res.describe()
    assert "warning" in err(res), res.describe()
    check_format(events, "export of the footer-less file")
    assert events == big_recording["events"]
    info = pyrewind.info_json(path)
    assert info["status"] in ("recovered", "damaged") and info["damage"], info
    assert info["event_count"] == len(big_recording["events"])


def test_corrupt_chunk_payload(pyrewind, big_recording, work):
    chunks = big_recording["chunks"]
    victim = chunks[1]
    data = bytearray(big_recording["data"])
    mid = (victim.payload_offset + victim.end) // 2
    for i in range(mid, mid + 8):
        data[i] ^= 0xA5
    path, res, events = export_damaged(pyrewind, work, bytes(data), "corrupt.rwd")
    assert res.returncode == 0, res.describe()
    assert "CRC" in err(res) or "corrupt" in err(res), res.describe()
    check_format(events, "export of the corrupt file", contiguous=False)
    # Nothing from the damaged chunk, nothing invented: the events before it, exactly.
    assert events[:chunks[0].event_count] == big_recording["events"][:chunks[0].event_count]
    bad_seqs = set(range(victim.first_seq, victim.first_seq + victim.event_count))
    assert not any(ev.get("seq") in bad_seqs for ev in events), "events of the corrupt chunk were exported"
    good = {json.dumps(ev, sort_keys=True) for ev in big_recording["events"]}
    assert all(json.dumps(ev, sort_keys=True) in good for ev in events), "exported events that were never recorded"


@pytest.fixture(scope="module")
def small_recording(pyrewind, tmp_path_factory):
    d = tmp_path_factory.mktemp("small")
    res = pyrewind.record([program("loops.py")], d / "small.rwd", cwd=str(d))
    assert res.returncode == 0, res.describe()
    return (d / "small.rwd").read_bytes()


@pytest.mark.parametrize("kind", ["text", "empty", "wrong_magic", "future_version", "header_cut", "missing"])
def test_not_a_recording(pyrewind, small_recording, work, kind):
    data = small_recording
    path = work / ("bad-" + kind)
    if kind == "text":
        path.write_bytes(b"just some text, not a recording\n" * 10)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "wrong_magic":
        path.write_bytes(b"XYRWREC\n" + data[8:])
    elif kind == "future_version":
        path.write_bytes(data[:8] + (999).to_bytes(4, "little") + data[12:])
    elif kind == "header_cut":
        path.write_bytes(data[:20])
    for cmd in (["info"], ["info", "--json"], ["export", "--format", "jsonl", "-o", str(work / "o.jsonl")]):
        res = run([pyrewind.path] + cmd[:1] + [str(path)] + cmd[1:])
        assert res.returncode == EXIT_BAD_RECORDING, res.describe()
        message = err(res)
        assert str(path) in message and message.startswith("pyrewind: "), res.describe()
        assert res.stdout == b"", res.describe()
    if kind == "future_version":
        assert "version" in message
