"""Compare two event streams in the `pyrewind export --format jsonl` format.

Used by the tests to compare the export of a recording with the reference tracer's output for
a separate run of the same program in the same interpreter.

What is compared, and why exactly this:
- Threads are matched by the order of their first event in time (t_ns), so the test programs
  order thread starts with a handshake. Within a thread, the sequence of
  (event, file, func, line, depth) must be identical.
- Values are compared structurally and type-exactly: the JSON int 1 and the JSON float 1.0
  are different values (a float exported as "1" would lose its type).
- Object ids differ between two runs, and the allocator reuses addresses differently in each
  (the reference tracer allocates between the program's steps, the agent does not), so a raw
  id is meaningless across runs and "first appearance in the run" numbering is not stable
  either. Ids are therefore compared by what they mean:
    * within one event, ids are renumbered by first appearance (locals in name order, then
      depth first), so aliasing (a is b), self references and shared sub-objects must match;
    * across events of one frame activation, each top-level local carries a flag "same
      object as at this frame's previous event", so in-place mutation (same id, new items)
      and rebinding (new id) must match.
- Locals are compared as name -> value maps. Their key order is not compared: on 3.9/3.10 an
  argument that a closure captures lives in a cell slot after co_varnames (CPython clears the
  argument slot), so "slot order" legitimately differs from the reference's name order there.
- t_ns is ignored except that it must not decrease within a thread; seq must increase.
- func: 3.11+ compares co_qualname exactly. 3.9/3.10 have no co_qualname (the agent
  reconstructs one), so there only the last dotted component is compared, and a separate
  test checks that the qualified name of a method is reconstructed.
"""

import json

EVENT_KINDS = ("call", "line", "return", "exception", "exception_handled")
HEAD_KEYS = ("seq", "t_ns", "tid", "event", "file", "func", "line", "depth")
TAIL_KEY = {"call": "locals", "line": "locals", "return": "value", "exception": "exception",
            "exception_handled": "exception"}


class FormatError(AssertionError):
    pass


def load_jsonl(path):
    """Events in file order, each a dict that keeps the key order of the file."""
    events = []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.endswith(b"\n"):
                raise FormatError("%s:%d: last line has no newline (torn output)" % (path, n))
            try:
                events.append(json.loads(raw))
            except ValueError as e:
                raise FormatError("%s:%d: not JSON: %s: %r" % (path, n, e, raw[:200]))
    return events


def check_format(events, where, locals_expected=True, contiguous=True):
    """Structural checks of the export format; raises FormatError. `contiguous`: seq counts
    0, 1, 2, ... (a complete recording; loss lines carry no seq)."""
    last_seq = None
    last_t = {}
    for i, ev in enumerate(events):
        keys = list(ev)
        if ev.get("event") == "loss":
            if keys != ["event", "tid", "dropped_records", "dropped_bytes"]:
                raise FormatError("%s: event %d: loss record with keys %s" % (where, i, keys))
            continue
        if tuple(keys[:len(HEAD_KEYS)]) != HEAD_KEYS:
            raise FormatError("%s: event %d: keys %s, expected to start with %s"
                              % (where, i, keys, list(HEAD_KEYS)))
        kind = ev["event"]
        if kind not in EVENT_KINDS:
            raise FormatError("%s: event %d: unknown event %r" % (where, i, kind))
        extra = keys[len(HEAD_KEYS):]
        allowed = {TAIL_KEY[kind]}
        if extra and (len(extra) > 1 or extra[0] not in allowed):
            raise FormatError("%s: event %d (%s): unexpected keys %s" % (where, i, kind, extra))
        if kind in ("call", "line") and locals_expected and "locals" not in ev:
            raise FormatError("%s: event %d (%s) has no locals" % (where, i, kind))
        if kind in ("exception", "exception_handled") and "exception" not in ev:
            raise FormatError("%s: event %d: %s event without exception" % (where, i, kind))
        for k, t in (("seq", int), ("t_ns", int), ("line", int), ("depth", int), ("file", str),
                     ("func", str)):
            if type(ev[k]) is not t:
                raise FormatError("%s: event %d: %s=%r is not %s" % (where, i, k, ev[k], t.__name__))
        if last_seq is not None and ev["seq"] <= last_seq:
            raise FormatError("%s: event %d: seq %d after %d" % (where, i, ev["seq"], last_seq))
        if contiguous and ev["seq"] != (0 if last_seq is None else last_seq + 1):
            raise FormatError("%s: event %d: seq %d, expected %d" % (
                where, i, ev["seq"], 0 if last_seq is None else last_seq + 1))
        last_seq = ev["seq"]
        prev = last_t.get(ev["tid"])
        if prev is not None and ev["t_ns"] < prev:
            raise FormatError("%s: event %d: t_ns %d < %d on thread %r"
                              % (where, i, ev["t_ns"], prev, ev["tid"]))
        last_t[ev["tid"]] = ev["t_ns"]


def split_threads(events):
    """Per-thread event lists, threads ordered by the time of their first event."""
    threads = {}
    first = {}
    for ev in events:
        if ev["event"] == "loss":
            continue
        tid = ev["tid"]
        if tid not in threads:
            threads[tid] = []
            first[tid] = (ev["t_ns"], ev["seq"])
        threads[tid].append(ev)
    order = sorted(threads, key=lambda t: first[t])
    return [threads[t] for t in order]


# --- value normalisation ----------------------------------------------------------------------

def _norm(v, ids):
    """A hashable, type-exact canonical form; object ids renumbered through `ids`."""
    if v is None:
        return ("none",)
    t = type(v)
    if t is bool:
        return ("bool", v)
    if t is int:
        return ("int", v)
    if t is float:
        return ("float", repr(v))
    if t is str:
        return ("str", v)
    if t is list:
        return ("array",) + tuple(_norm(x, ids) for x in v)
    if t is dict:
        out = []
        for k in sorted(v):
            x = v[k]
            if k == "id" and type(x) in (int, str):
                out.append((k, ("objid", ids.setdefault(x, len(ids)))))
            else:
                out.append((k, _norm(x, ids)))
        return ("obj",) + tuple(out)
    raise TypeError("unexpected JSON value %r" % (v,))


def _top_id(v):
    if type(v) is dict and type(v.get("id")) in (int, str):
        return v["id"]
    return None


class Normalizer:
    """Turns one thread's events into comparable tuples (see module docstring)."""

    def __init__(self, short_func):
        self.short_func = short_func
        self.stack = []  # per depth: {name: raw id} of the activation's previous event

    def event(self, ev):
        kind = ev["event"]
        func = ev["func"].rsplit(".", 1)[-1] if self.short_func else ev["func"]
        depth = ev["depth"]
        head = (kind, ev["file"], func, ev["line"], depth)
        ids = {}
        body = None
        if kind == "call":
            del self.stack[depth:]
            while len(self.stack) < depth:
                self.stack.append(None)  # activation whose call we did not see
            self.stack.append({})
        activation = self.stack[depth] if depth < len(self.stack) else None
        if "locals" in ev:
            loc = ev["locals"]
            if type(loc) is not dict:
                return head + (("bad-locals", repr(loc)),)
            prev = activation if activation is not None else {}
            items = []
            now = {}
            for name in sorted(loc):
                value = loc[name]
                raw = _top_id(value)
                same = None
                if raw is not None:
                    now[name] = raw
                    if name in prev:
                        same = prev[name] == raw
                items.append((name, _norm(value, ids), same))
            if activation is not None:
                activation.clear()
                activation.update(now)
            body = ("locals",) + tuple(items)
        elif "value" in ev:
            body = ("value", _norm(ev["value"], ids))
        elif "exception" in ev:
            body = ("exception", _norm(ev["exception"], ids))
        if kind == "return":
            del self.stack[depth:]
        return head + (body,)


def normalize_thread(events, short_func):
    n = Normalizer(short_func)
    return [n.event(ev) for ev in events]


def _brief(ev, limit=600):
    s = json.dumps(ev)
    return s if len(s) <= limit else s[:limit] + "...(%d chars)" % len(s)


def compare(actual, expected, short_func=False, context=4):
    """None if the streams match, else a readable description of the first difference.

    `actual` is the export of the recording, `expected` the reference tracer's output."""
    a_threads = split_threads(actual)
    e_threads = split_threads(expected)
    problems = []
    losses = [ev for ev in actual if ev["event"] == "loss"]
    if losses:
        problems.append("the recording lost records: %s" % [_brief(ev) for ev in losses[:5]])
    if len(a_threads) != len(e_threads):
        problems.append("thread count: recording has %d, reference has %d"
                        % (len(a_threads), len(e_threads)))
    for t, (a, e) in enumerate(zip(a_threads, e_threads)):
        na = normalize_thread(a, short_func)
        ne = normalize_thread(e, short_func)
        if na == ne:
            continue
        i = 0
        while i < min(len(na), len(ne)) and na[i] == ne[i]:
            i += 1
        lines = ["thread #%d (by first event): first difference at its event %d "
                 "(recording has %d events, reference %d)" % (t, i, len(na), len(ne))]
        for j in range(max(0, i - context), i):
            lines.append("   same      %s" % _brief(e[j], 300))
        lines.append(" > recording %s" % (_brief(a[i]) if i < len(a) else "<end of thread>"))
        lines.append(" > reference %s" % (_brief(e[i]) if i < len(e) else "<end of thread>"))
        if i < len(na) and i < len(ne):
            lines.append("   normalized recording: %r" % (na[i][:5],))
            lines.append("   normalized reference: %r" % (ne[i][:5],))
            if na[i][:5] == ne[i][:5]:
                lines.append("   (same position; locals/value differ: %s)"
                             % describe_body_diff(na[i][5], ne[i][5]))
        problems.append("\n".join(lines))
    return "\n\n".join(problems) if problems else None


def describe_body_diff(a, b):
    if a is None or b is None or a[0] != b[0]:
        return "kind %r vs %r" % (a and a[0], b and b[0])
    if a[0] != "locals":
        return "%r vs %r" % (a[1:], b[1:])
    da = {n: (v, s) for n, v, s in a[1:]}
    db = {n: (v, s) for n, v, s in b[1:]}
    out = []
    for name in sorted(set(da) | set(db)):
        if da.get(name) != db.get(name):
            if name not in da:
                out.append("%s missing in recording" % name)
            elif name not in db:
                out.append("%s only in recording" % name)
            elif da[name][0] != db[name][0]:
                out.append("%s: value differs" % name)
            else:
                out.append("%s: same-object-as-before flag %r vs %r" % (name, da[name][1], db[name][1]))
    return "; ".join(out)
