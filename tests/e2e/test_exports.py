"""`pyrewind export --format chrome|perfetto|speedscope|collapsed`: the calls of a real
program as spans, checked against the spans its JSONL export gives (same recording), and read
by each format's consumer: chrome's JSON parsed and its B/E pairs matched per thread; the
Perfetto trace decoded by protoc with tools/analysis/testdata/perfetto_subset.proto (Perfetto's
field numbers) and by python3-protobuf; the speedscope file validated against the JSON schema
shipped in the `speedscope` npm package (pinned, installed under the build dir; skipped
without npm or network); the collapsed stacks line for line."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

import rwd
from call_tree import Recorded, def_line, folded
from compare import load_jsonl
from e2e_util import EXIT_USAGE, HERE, npm_modules, pprof_decode, program, run

PERFETTO_PROTO = os.path.join(HERE, "..", "..", "tools", "analysis", "testdata", "perfetto_subset.proto")
SPEEDSCOPE = "speedscope@1.22.2"
AJV = "ajv@8.17.1"  # JSON-schema validator for the speedscope schema (draft-07)


@pytest.fixture(scope="module")
def recorded(pyrewind, tmp_path_factory):
    return Recorded(pyrewind, tmp_path_factory.mktemp("call_tree"))


def export(pyrewind, recording, fmt, output, *options):
    res = run([pyrewind.path, "export", str(recording), "--format", fmt, "-o", str(output)] + list(options))
    assert res.returncode == 0, res.describe()
    # No progress line: stderr is not a terminal here.
    assert res.stderr == b"", res.describe()
    return output


def chrome_spans(doc):
    """Per tid, [(phase, name, t_ns)], checking that every E closes the innermost open B."""
    out, stacks = {}, {}
    for e in doc["traceEvents"]:
        if e["ph"] not in "BE":
            continue
        stack = stacks.setdefault(e["tid"], [])
        t = round(e["ts"] * 1000)
        if e["ph"] == "B":
            stack.append(e["name"])
            out.setdefault(e["tid"], []).append(("B", e["name"], t))
        else:
            assert stack, "E without B: %r" % e
            out[e["tid"]].append(("E", stack.pop(), t))
    assert not any(stacks.values()), "unbalanced B/E: %r" % stacks
    return out


def test_chrome(pyrewind, recorded, work):
    doc = json.load(open(str(export(pyrewind, recorded.path, "chrome", work / "trace.json"))))
    assert chrome_spans(doc) == recorded.spans()
    meta = {(e["name"], e["tid"]): e["args"] for e in doc["traceEvents"] if e["ph"] == "M"}
    assert meta[("process_name", 0)] == {"name": "call_tree.py"}
    assert meta[("thread_name", 0)] == {"name": "MainThread"}
    assert meta[("thread_name", 1)] == {"name": "helper"}
    for e in doc["traceEvents"]:
        if e["ph"] == "B":
            assert e["args"] == {"file": recorded.events[0]["file"], "line": def_line(e["name"])}, e


def test_chrome_range_and_thread(pyrewind, recorded, work):
    first = recorded.seq_of(lambda e: e["func"] == "label" and e["event"] == "call")
    last = recorded.last_seq_of(lambda e: e["func"] == "label" and e["event"] == "return")
    doc = json.load(open(str(export(pyrewind, recorded.path, "chrome", work / "range.json",
                                    "--from", str(first), "--to", "#%d" % last))))
    inside = [e for e in recorded.events if first <= e["seq"] <= last]
    t0, t1 = inside[0]["t_ns"], inside[-1]["t_ns"]
    # <module> and main were running at the range start: opened there, closed at its end.
    expected = [("B", "<module>", t0), ("B", "main", t0)] + recorded.spans(inside)[0] + \
        [("E", "main", t1), ("E", "<module>", t1)]
    assert chrome_spans(doc) == {0: expected}
    running = [e["name"] for e in doc["traceEvents"] if e["ph"] == "B" and e["args"].get("running_before")]
    assert running == ["<module>", "main"]

    doc = json.load(open(str(export(pyrewind, recorded.path, "chrome", work / "thread.json", "--thread", "1"))))
    assert chrome_spans(doc) == {1: recorded.spans()[1]}
    assert [s[1] for s in recorded.spans()[1] if s[0] == "B"] == ["worker", "middle", "leaf", "leaf"]


def test_collapsed(pyrewind, recorded, work):
    out = export(pyrewind, recorded.path, "collapsed", work / "stacks.txt")
    lines = open(str(out)).read().splitlines()
    name = lambda f: "%s (%s:%d)" % (f, recorded.events[0]["file"], def_line(f))  # noqa: E731
    assert lines == folded(recorded.spans(), name)
    paths = {line.rsplit(" ", 1)[0].replace(" (%s:" % recorded.events[0]["file"], "(") for line in lines}
    assert {re.sub(r"\(\d+\)", "", p) for p in paths} == {
        "<module>", "<module>;main", "<module>;main;middle", "<module>;main;middle;leaf", "<module>;main;label",
        "<module>;main;count_up", "worker", "worker;middle", "worker;middle;leaf"}


@pytest.fixture(scope="module")
def perfetto_module(tmp_path_factory):
    """perfetto_subset.proto compiled for python3-protobuf."""
    if not shutil.which("protoc"):
        pytest.skip("protoc is not installed")
    try:
        import google.protobuf  # noqa: F401
    except ImportError:
        pytest.skip("python3-protobuf is not installed")
    out = tmp_path_factory.mktemp("perfetto_py")
    proto_dir = os.path.dirname(os.path.abspath(PERFETTO_PROTO))
    subprocess.run(["protoc", "--proto_path=" + proto_dir, "--python_out=" + str(out),
                    os.path.basename(PERFETTO_PROTO)], check=True)
    sys.path.insert(0, str(out))
    try:
        import perfetto_subset_pb2
    finally:
        sys.path.remove(str(out))
    return perfetto_subset_pb2


def test_perfetto(pyrewind, recorded, work, perfetto_module):
    trace = export(pyrewind, recorded.path, "perfetto", work / "trace.pftrace")
    proto_dir = os.path.dirname(os.path.abspath(PERFETTO_PROTO))
    with open(str(trace), "rb") as f:
        res = subprocess.run(["protoc", "--proto_path=" + proto_dir, "--decode=perfetto.protos.Trace",
                              os.path.basename(PERFETTO_PROTO)], stdin=f, capture_output=True)
    assert res.returncode == 0, res.stderr.decode()
    # Every field we write is one the schema declares: protoc shows unknown ones by number.
    assert not re.search(rb"^\s*\d+:", res.stdout, re.M), res.stdout.decode()[:3000]

    packets = perfetto_module.Trace.FromString(open(str(trace), "rb").read()).packet
    assert packets[0].sequence_flags == 1 and all(p.sequence_flags == 2 for p in packets[1:])
    assert {p.trusted_packet_sequence_id for p in packets} == {1}
    info = pyrewind.info_json(recorded.path)
    process = packets[0].track_descriptor
    assert process.process.pid == info["pid"] and process.process.process_name == "call_tree.py"
    threads = {p.track_descriptor.uuid: p.track_descriptor for p in packets
               if p.HasField("track_descriptor") and p.track_descriptor.HasField("thread")}
    assert sorted(t.thread.thread_name for t in threads.values()) == ["MainThread", "helper"]
    assert all(t.parent_uuid == process.uuid and t.thread.pid == info["pid"] for t in threads.values())

    names, locations, spans, stacks = {}, {}, {}, {}
    for p in packets:
        for n in p.interned_data.event_names:
            names[n.iid] = n.name
        for loc in p.interned_data.source_locations:
            locations[loc.iid] = (loc.function_name, loc.file_name, loc.line_number)
        if not p.HasField("track_event"):
            continue
        ev = p.track_event
        thread = threads[ev.track_uuid].thread.thread_name
        stack = stacks.setdefault(thread, [])
        if ev.type == ev.TYPE_SLICE_BEGIN:
            name = names[ev.name_iid]
            assert locations[ev.source_location_iid] == (name, recorded.events[0]["file"], def_line(name))
            stack.append(name)
            spans.setdefault(thread, []).append(("B", name, p.timestamp))
        else:
            assert ev.type == ev.TYPE_SLICE_END and stack
            spans[thread].append(("E", stack.pop(), p.timestamp))
    assert not any(stacks.values())
    expected = recorded.spans()
    assert spans == {"MainThread": expected[0], "helper": expected[1]}


@pytest.fixture(scope="module")
def speedscope_validator(pyrewind):
    """[node, script]: validates a file against speedscope's file-format schema."""
    node, modules = npm_modules(pyrewind.path, [SPEEDSCOPE, AJV],
                                os.path.join("speedscope", "dist", "release", "file-format-schema.json"))
    schema = os.path.join(modules, "speedscope", "dist", "release", "file-format-schema.json")
    prefix = os.path.dirname(modules)
    script = os.path.join(prefix, "validate.js")
    with open(script, "w") as f:
        f.write("""
const Ajv = require(%s);
const fs = require("fs");
const validate = new Ajv({strict: false}).compile(JSON.parse(fs.readFileSync(%s, "utf8")));
if (!validate(JSON.parse(fs.readFileSync(process.argv[2], "utf8")))) {
  console.error(JSON.stringify(validate.errors, null, 1));
  process.exit(1);
}
""" % (json.dumps(os.path.join(modules, "ajv")), json.dumps(schema)))
    return [node, script]


def test_speedscope(pyrewind, recorded, work, speedscope_validator):
    out = export(pyrewind, recorded.path, "speedscope", work / "profile.speedscope.json")
    res = run(speedscope_validator + [str(out)])
    assert res.returncode == 0, res.describe()

    doc = json.load(open(str(out)))
    frames = doc["shared"]["frames"]
    for frame in frames:
        assert frame == {"name": frame["name"], "file": recorded.events[0]["file"], "line": def_line(frame["name"])}
    expected = recorded.spans()
    assert [p["name"] for p in doc["profiles"]] == ["MainThread (thread 0)", "helper (thread 1)"]
    for tid, profile in enumerate(doc["profiles"]):
        assert profile["type"] == "evented" and profile["unit"] == "nanoseconds"
        events = [("B" if e["type"] == "O" else "E", frames[e["frame"]]["name"], e["at"]) for e in profile["events"]]
        assert events == expected[tid]
        assert (profile["startValue"], profile["endValue"]) == (expected[tid][0][2], expected[tid][-1][2])


# Runs a command and prints its peak RSS. It runs in a small process of its own because Linux
# carries the peak of the forking process's memory over fork and exec: measured from pytest,
# every command would weigh at least as much as pytest.
RSS_PROBE = """
import os, subprocess, sys
with open(os.devnull, "wb") as null:
    proc = subprocess.Popen(sys.argv[1:], stdout=null)
    _, status, usage = os.wait4(proc.pid, 0)
sys.exit("failed: %r" % sys.argv[1:]) if status else print(usage.ru_maxrss)
"""


def peak_rss_kib(args):
    res = run([sys.executable, "-I", "-S", "-c", RSS_PROBE] + list(args))
    assert res.returncode == 0, res.describe()
    return int(res.stdout)


def test_constant_memory(pyrewind, work):
    """Ten times the events, the same memory: every export streams."""
    peaks = {}
    for n in (20000, 200000):
        rec = work / ("many-%d.rwd" % n)
        res = pyrewind.record([program("many_events.py"), str(n)], rec, options=["--no-locals"])
        assert res.returncode == 0, res.describe()
        for fmt in ("chrome", "perfetto", "speedscope", "collapsed"):
            peaks[(fmt, n)] = peak_rss_kib([pyrewind.path, "export", str(rec), "--format", fmt, "-o",
                                            str(work / ("out." + fmt))])
        peaks[("stats", n)] = peak_rss_kib([pyrewind.path, "stats", str(rec), "-o", os.devnull])
    for fmt in ("chrome", "perfetto", "speedscope", "collapsed", "stats"):
        assert peaks[(fmt, 200000)] < peaks[(fmt, 20000)] + 4096, peaks


def test_truncated_recording(pyrewind, work):
    """A recording cut inside a chunk: the calls still running where it ends are closed at its
    last event, in every format."""
    rec = work / "many.rwd"
    res = pyrewind.record([program("many_events.py"), "20000"], rec)
    assert res.returncode == 0, res.describe()
    data = rec.read_bytes()
    chunks = rwd.layout(data)[1]
    assert len(chunks) >= 3, chunks
    victim = chunks[len(chunks) // 2]
    cut = work / "cut.rwd"
    cut.write_bytes(data[:victim.offset + (victim.end - victim.offset) // 2])
    pyrewind.export(cut, work / "cut.jsonl")
    events = [e for e in load_jsonl(str(work / "cut.jsonl")) if "seq" in e]
    expected, stack = [], []
    for e in events:
        if e["event"] == "call":
            stack.append(e["func"])
            expected.append(("B", e["func"], e["t_ns"]))
        elif e["event"] == "return":
            expected.append(("E", stack.pop(), e["t_ns"]))
    assert stack == ["<module>", "main"], "the cut leaves the program running"
    expected += [("E", f, events[-1]["t_ns"]) for f in reversed(stack)]

    res = run([pyrewind.path, "export", str(cut), "--format", "chrome", "-o", str(work / "cut.json")])
    assert res.returncode == 0 and "truncated" in res.stderr.decode(), res.describe()
    assert chrome_spans(json.load(open(str(work / "cut.json")))) == {0: expected}
    res = run([pyrewind.path, "stats", str(cut), "--format", "json"])
    assert res.returncode == 0 and "truncated" in res.stderr.decode(), res.describe()
    calls = {f["function"]: f["calls"] for f in json.loads(res.stdout)["functions"]}
    assert calls == {"<module>": 1, "main": 1, "step": sum(1 for s in expected if s[:2] == ("B", "step"))}


def test_bad_options(pyrewind, recorded):
    res = run([pyrewind.path, "export", str(recorded.path), "--format", "jsonl", "--from", "10"])
    assert res.returncode == EXIT_USAGE and "--from" in res.stderr.decode(), res.describe()
    res = run([pyrewind.path, "export", str(recorded.path), "--format", "chrome", "--from", "soon"])
    assert res.returncode == EXIT_USAGE and "'soon' is neither" in res.stderr.decode(), res.describe()
    res = run([pyrewind.path, "export", str(recorded.path), "--format", "chrome", "--from", "20", "--to", "10"])
    assert res.returncode == EXIT_USAGE and "empty" in res.stderr.decode(), res.describe()
    res = run([pyrewind.path, "export", str(recorded.path), "--format", "svg"])
    assert res.returncode == EXIT_USAGE, res.describe()


def test_pprof(pyrewind, recorded, work):
    """The pprof profile, read by a real pprof decoder, holds the same stacks and times as the
    collapsed export of the same recording (each stack's leaf self time, in ns)."""
    out = export(pyrewind, recorded.path, "pprof", work / "profile.pb.gz")
    assert open(str(out), "rb").read(2) == b"\x1f\x8b"  # gzip
    profile = pprof_decode(pyrewind.path, out)
    assert profile["sample_type"] == [["wall", "nanoseconds"]]
    assert profile["period_type"] == ["wall", "nanoseconds"]
    file = recorded.events[0]["file"]
    stacks = {}
    for sample in profile["samples"]:
        assert all(f["file"] == file and f["line"] == f["start_line"] == def_line(f["name"]) for f in sample["stack"]), sample
        path = ";".join("%s (%s:%d)" % (f["name"], f["file"], f["line"]) for f in reversed(sample["stack"]))
        stacks[path] = stacks.get(path, 0) + sample["value"][0]
    collapsed = {}
    for line in open(str(export(pyrewind, recorded.path, "collapsed", work / "stacks.txt"))).read().splitlines():
        path, weight = line.rsplit(" ", 1)
        collapsed[path] = collapsed.get(path, 0) + int(weight)
    assert stacks == collapsed
    assert int(profile["duration_nanos"]) > 0
