"""Reference tracer for the end-to-end tests.

Runs a program under a plain ``sys.settrace`` tracer in the interpreter under test and writes
the JSONL that ``pyrewind export --format jsonl`` writes for the same run, so a test can
compare the two event for event. It is deliberately simple and slow; correctness is all
that matters here.

Usage (mirrors the python command line it stands for; options as `pyrewind run`'s):
    python reftrace.py --out FILE [options] -- script.py [args]
    python reftrace.py --out FILE [options] -- -m package.module [args]
    python reftrace.py --out FILE [options] -- -c CODE [args]
options: --max-string N --max-items N --max-depth N --no-redact --no-locals
         --include GLOB --exclude GLOB --trace-all

Rules (the export format, see the README):
- One JSON object per event, keys in order: seq, t_ns, tid, event, file, func, line, depth,
  then "locals" (call, line), "value" (return; omitted when the frame unwinds by an
  exception) or "exception" (exception, exception_handled). tid numbers threads in order of
  their first event (thread idents are reused after a join).
- Events are settrace's. "exception_handled" is sys.monitoring's EXCEPTION_HANDLED on 3.12+
  (registered next to settrace on a free tool id) and, before 3.12, inferred as the agent
  does: an exception event followed by a line event of the same frame activation.
- Traced files are those the agent's filter keeps (--exclude, then --include, then the
  default exclusions): the standard library (sysconfig stdlib/platstdlib),
  site-/dist-packages, pseudo-files ("<frozen ...>", "<string>", ...) and this file are
  excluded; the one pseudo-file traced is the main program's own ("<string>" for -c). Code
  the standard library compiles from strings (namedtuple templates) is not the program's,
  and whether it runs depends on what was imported before, so tracing it would make traces
  depend on the import state.
- depth = number of traced frames below the frame on its thread's stack.
- Locals: function frames list their fast locals as f_locals shows them (cells dereferenced,
  unbound names absent), ordered by slot (co_varnames, co_cellvars, co_freevars); dict-based
  frames (module level, class bodies) list their namespace dict (also a dict subclass from a
  metaclass's __prepare__) minus names that start and end with "__".
- Values: None/bool/int/float/str as JSON scalars (ints beyond +-2**53 as decimal strings,
  beyond 1024 bits {"type":"int","bits":N,"truncated":true}; NaN/inf as "NaN", "Infinity",
  "-Infinity"); long str and all bytes as objects; list/tuple/dict/set/frozenset with id, len
  and the first max-items items; a container at depth max-depth (the local is depth 0) or
  one already on the path from the local (a cycle) has "items": [] and, unless empty,
  "truncated": true; anything else {"type": tp_name, "id": id}; locals named like secrets
  {"redacted": true}.
- Exceptions: {"type": tp_name, "message": str(exc)} where str(exc) runs no user code (a
  builtin exception type with args () or one str; not KeyError), else "message": "".
- Nothing the program defined runs: no __repr__, __str__, __eq__, __hash__, __len__,
  __iter__ or __getattr__; type names are read from the type object itself.

Only the standard library is used, and the syntax stays valid on Python 3.9.
"""

import dis
import fnmatch
import json
import os
import runpy
import sys
import sysconfig
import threading
import time

HEAPTYPE = 1 << 9
CO_OPTIMIZED = 0x0001
SAFE_INT = 2 ** 53
MAX_INT_BITS = 1024
DEFAULT_REDACT = ("password", "passwd", "secret", "token", "api_key", "apikey", "auth",
                  "credential", "private_key")

_type_name = type.__dict__["__name__"].__get__
_type_module = type.__dict__["__module__"].__get__
_type_flags = type.__dict__["__flags__"].__get__

CONTAINERS = {list: "list", tuple: "tuple", dict: "dict", set: "set", frozenset: "frozenset"}

# Instructions at which a 'return' event is a real return or a yield (not an unwind).
_RETURN_OPS = {dis.opmap[n] for n in ("RETURN_VALUE", "RETURN_CONST") if n in dis.opmap}
_YIELD_OPS = {dis.opmap["YIELD_VALUE"]}
_YIELD_FROM = dis.opmap.get("YIELD_FROM")  # 3.9/3.10: f_lasti rests on the instruction before it
_RESUME = dis.opmap.get("RESUME")          # 3.13: f_lasti rests on the RESUME after YIELD_VALUE


def _tp_name_reader():
    """PyTypeObject.tp_name, read directly: it is what the agent records. Python exposes it
    only indirectly (a class statement's type has tp_name == __name__, a static or
    PyType_FromSpec type has "module.name"), so read the field itself: it follows
    PyObject_VAR_HEAD (refcount, type, size) in every non-debug build."""
    try:
        import ctypes
    except ImportError:
        return None
    offset = 3 * ctypes.sizeof(ctypes.c_void_p)

    def read(t):
        return ctypes.c_char_p.from_address(id(t) + offset).value.decode("utf-8")
    if read(int) != "int" or read(type(iter(()))) != "tuple_iterator":
        return None
    return read


_tp_name = _tp_name_reader()


def type_name(t):
    """Py_TYPE(x)->tp_name: "int", "collections.OrderedDict", "Ledger"."""
    if _tp_name is not None:
        return _tp_name(t)
    if _type_flags(t) & HEAPTYPE:
        return _type_name(t)
    module = _type_module(t)
    name = _type_name(t)
    return name if module == "builtins" else module + "." + name


class Renderer:
    def __init__(self, max_string=256, max_items=25, max_depth=3, redact=DEFAULT_REDACT):
        self.max_string = max_string
        self.max_items = max_items
        self.max_depth = max_depth
        self.redact = tuple(p.lower() for p in redact)

    def redacted(self, name):
        low = name.lower()
        return any(p in low for p in self.redact)

    def value(self, v, depth=0, path=None):
        t = type(v)
        if v is None or t is bool:
            return v
        if t is int:
            if -SAFE_INT <= v <= SAFE_INT:
                return v
            bits = (-v if v < 0 else v).bit_length()
            if bits <= MAX_INT_BITS:
                return int.__repr__(v)
            return {"type": "int", "bits": bits, "truncated": True}
        if t is float:
            if v != v:
                return "NaN"
            if v in (float("inf"), float("-inf")):
                return "Infinity" if v > 0 else "-Infinity"
            return v
        if t is str:
            if len(v) <= self.max_string:
                return v
            return {"type": "str", "len": len(v), "value": v[:self.max_string], "truncated": True}
        if t is bytes:
            out = {"type": "bytes", "len": len(v), "hex": v[:self.max_string].hex()}
            if len(v) > self.max_string:
                out["truncated"] = True
            return out
        kind = CONTAINERS.get(t)
        if kind is not None:
            out = {"type": kind, "id": id(v), "len": len(v)}
            if path is None:
                path = set()
            if depth >= self.max_depth or id(v) in path:
                out["items"] = []
                if len(v):
                    out["truncated"] = True
                return out
            path.add(id(v))
            items = []
            if t is dict:
                for k, item in dict.items(v):
                    if len(items) >= self.max_items:
                        break
                    items.append([self.value(k, depth + 1, path), self.value(item, depth + 1, path)])
            else:
                for item in v:
                    if len(items) >= self.max_items:
                        break
                    items.append(self.value(item, depth + 1, path))
            path.discard(id(v))
            out["items"] = items
            if len(v) > len(items):
                out["truncated"] = True
            return out
        return {"type": type_name(t), "id": id(v)}

    def local(self, name, v):
        if self.redact and self.redacted(name):
            return {"redacted": True}
        return self.value(v)


def exception_info(exc_value, max_string):
    """{"type": tp_name, "message": ...}. The message is str(exc), and only where that runs
    no user code: a builtin (static) exception type whose args are () or one exact str
    (KeyError excepted: its str() is the repr of the key). Otherwise "" (the schema's
    message is a plain proto3 string: absent and empty are one)."""
    exc_type = type(exc_value)
    info = {"type": type_name(exc_type), "message": ""}
    if _type_flags(exc_type) & HEAPTYPE or isinstance(exc_value, KeyError):
        return info
    args = BaseException.__dict__["args"].__get__(exc_value)
    if type(args) is tuple and (len(args) == 0 or (len(args) == 1 and type(args[0]) is str)):
        message = exc_type.__str__(exc_value)
        if len(message) > max_string:
            info["message"] = message[:max_string]
            info["truncated"] = True
        else:
            info["message"] = message
    return info


def glob_matches(pattern, path):
    """fnmatch(3) without flags, as the agent uses it; a relative pattern ("lib/*.py") also
    matches at any directory boundary."""
    if fnmatch.fnmatchcase(path, pattern):
        return True
    if pattern and pattern[0] not in "/*":
        return fnmatch.fnmatchcase(path, "*/" + pattern)
    return False


def slot_names(code):
    seen = set()
    names = []
    for name in code.co_varnames + code.co_cellvars + code.co_freevars:
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


class Tracer:
    def __init__(self, out_fd, renderer, capture_locals=True):
        self.fd = out_fd
        self.render = renderer
        self.capture_locals = capture_locals
        self.lock = threading.Lock()
        self.seq = 0
        self.start_ns = time.monotonic_ns()
        self.keep_cache = {}
        self.slot_cache = {}
        self.qualname_cache = {}
        excluded = {os.path.realpath(sysconfig.get_paths()[k]) for k in ("stdlib", "platstdlib")}
        excluded |= {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib")}
        self.excluded_dirs = tuple(d.rstrip("/") + "/" for d in excluded)
        self.own_file = os.path.realpath(__file__)
        self.main_pseudo_file = None  # "<string>" when the program is -c code
        self.includes = []
        self.excludes = []
        self.default_excludes = True
        self.thread_ids = threading.local()
        self.thread_count = 0
        # 3.12+: the agent reports sys.monitoring's EXCEPTION_HANDLED; so does the reference
        # (its own tool id, next to settrace). Before 3.12 "handled" is inferred.
        self.infer_handled = sys.version_info < (3, 12)

    def install(self):
        threading.settrace(self.global_trace)
        sys.settrace(self.global_trace)
        if not self.infer_handled:
            mon = sys.monitoring
            tool = next(i for i in (4, 3, 5, 1, 2, 0) if mon.get_tool(i) is None)
            mon.use_tool_id(tool, "pyrewind-reftrace")
            mon.register_callback(tool, mon.events.EXCEPTION_HANDLED, self.on_handled)
            mon.set_events(tool, mon.events.EXCEPTION_HANDLED)

    def on_handled(self, code, offset, exc):
        if not self.keep(code):
            return
        frame = sys._getframe(1)
        if frame.f_code is not code:
            return
        self.emit(frame, "exception_handled", {"exception": exception_info(exc, self.render.max_string)})

    # --- filter ---------------------------------------------------------------------------
    def keep(self, code):
        fn = code.co_filename
        r = self.keep_cache.get(fn)
        if r is None:
            r = self._keep(fn)
            self.keep_cache[fn] = r
        return r

    def _keep(self, fn):
        # The agent's rule (agent/src/filters.cpp): --exclude globs, then --include globs
        # (when any is given, only matching files), then the default exclusions.
        if fn == __file__ or (fn.startswith("/") and os.path.realpath(fn) == self.own_file):
            return False
        if any(glob_matches(p, fn) for p in self.excludes):
            return False
        if any(glob_matches(p, fn) for p in self.includes):
            return True
        if self.includes:
            return False
        return not (self.default_excludes and self.default_excluded(fn))

    def default_excluded(self, fn):
        if fn.startswith("<"):
            return fn != self.main_pseudo_file
        if "/site-packages/" in fn or "/dist-packages/" in fn:
            return True
        if fn.startswith(self.excluded_dirs):
            return True
        return fn.startswith("/") and os.path.realpath(fn).startswith(self.excluded_dirs)

    def depth(self, frame):
        d = 0
        f = frame.f_back
        while f is not None:
            if self.keep(f.f_code):
                d += 1
            f = f.f_back
        return d

    # --- naming ---------------------------------------------------------------------------
    def func_name(self, code):
        # 3.11+: co_qualname. 3.9/3.10 have none; the tests compare only the last component
        # there, so co_name is what we write.
        return getattr(code, "co_qualname", code.co_name)

    # --- locals ---------------------------------------------------------------------------
    def frame_locals(self, frame):
        code = frame.f_code
        loc = frame.f_locals
        out = {}
        if code.co_flags & CO_OPTIMIZED:
            names = self.slot_cache.get(code)
            if names is None:
                names = slot_names(code)
                self.slot_cache[code] = names
            snapshot = dict(loc)  # 3.13: FrameLocalsProxy; older: the f_locals dict
            for name in names:
                if name in snapshot:
                    out[name] = self.render.local(name, snapshot[name])
        elif issubclass(type(loc), dict):
            # Module globals, a class namespace, or a dict subclass from a metaclass's
            # __prepare__ (enum's _EnumDict): the dict's own storage, read without user code.
            for name, v in dict.items(loc):
                if type(name) is str and name.startswith("__") and name.endswith("__"):
                    continue
                out[name] = self.render.local(name, v)
        elif code.co_name == "<module>" and frame.f_locals is not frame.f_globals:
            # 3.13: inside a comprehension inlined into module code, f_locals is a proxy of
            # the comprehension's hidden fast locals only. The frame's namespace is still the
            # module dict; its locals are that dict plus the bound hidden variables.
            hidden = dict(loc)
            for name, v in dict.items(frame.f_globals):
                if name in hidden or (type(name) is str and name.startswith("__") and name.endswith("__")):
                    continue
                out[name] = self.render.local(name, v)
            for name, v in hidden.items():
                out[name] = self.render.local(name, v)
        # Any other mapping (a custom __prepare__) can only be read by running its code: none.
        return out

    # --- output ---------------------------------------------------------------------------
    def emit(self, frame, event, extra):
        code = frame.f_code
        rec_head = (event, code.co_filename, self.func_name(code), frame.f_lineno, self.depth(frame))
        with self.lock:
            tid = getattr(self.thread_ids, "tid", None)
            if tid is None:  # thread idents are reused after a join: number threads instead
                tid = self.thread_ids.tid = self.thread_count
                self.thread_count += 1
            rec = {"seq": self.seq, "t_ns": time.monotonic_ns() - self.start_ns,
                   "tid": tid, "event": rec_head[0], "file": rec_head[1],
                   "func": rec_head[2], "line": rec_head[3], "depth": rec_head[4]}
            rec.update(extra)
            self.seq += 1
            # One write per event, unbuffered: os._exit and fatal signals lose nothing.
            os.write(self.fd, (json.dumps(rec) + "\n").encode())

    # --- settrace callbacks -----------------------------------------------------------------
    def global_trace(self, frame, event, arg):
        if event != "call" or not self.keep(frame.f_code):
            return None
        state = FrameState(self)
        state.on_event(frame, event, arg)
        return state.local_trace


class FrameState:
    """Per frame activation (a generator resume is a new activation)."""

    __slots__ = ("tracer", "last_event", "pending")

    def __init__(self, tracer):
        self.tracer = tracer
        self.last_event = None
        self.pending = None  # exception info awaiting a line event (inferred "handled")

    def local_trace(self, frame, event, arg):
        self.on_event(frame, event, arg)
        return self.local_trace

    def on_event(self, frame, event, arg):
        tr = self.tracer
        extra = {}
        if event in ("call", "line"):
            if tr.capture_locals:
                extra["locals"] = tr.frame_locals(frame)
        elif event == "return":
            if not self.unwinding(frame):
                extra["value"] = tr.render.value(arg)
        elif event == "exception":
            extra["exception"] = exception_info(arg[1], tr.render.max_string)
        else:
            return
        if tr.infer_handled:
            # settrace has no "handled" event; before 3.12 the agent infers one, as here: an
            # exception followed by a line event of the same activation was caught there.
            if event == "line" and self.pending is not None:
                tr.emit(frame, "exception_handled", {"exception": self.pending})
            self.pending = extra["exception"] if event == "exception" else None
        tr.emit(frame, event, extra)
        self.last_event = event

    def unwinding(self, frame):
        """settrace passes None both for `return None` and for an unwind; tell them apart by
        the instruction the frame stopped at. A throw() into a suspended generator that is
        not caught unwinds from the yield itself: there the preceding 'exception' event of
        this activation decides."""
        code = frame.f_code
        raw = code.co_code
        i = frame.f_lasti
        if i < 0 or i >= len(raw):
            return True
        op = raw[i]
        if op in _RETURN_OPS:
            return False
        is_yield = op in _YIELD_OPS
        if _YIELD_FROM is not None and i + 2 < len(raw) and raw[i + 2] == _YIELD_FROM:
            is_yield = True
        if _RESUME is not None and op == _RESUME and i >= 2 and raw[i - 2] in _YIELD_OPS:
            is_yield = True
        if is_yield:
            return self.last_event == "exception"
        return True


def parse_args(argv):
    opts = {"out": None, "max_string": 256, "max_items": 25, "max_depth": 3,
            "redact": True, "locals": True, "include": [], "exclude": [], "trace_all": False}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            return opts, argv[i + 1:]
        if a == "--out":
            opts["out"] = argv[i + 1]
            i += 2
        elif a in ("--max-string", "--max-items", "--max-depth"):
            opts[a[2:].replace("-", "_")] = int(argv[i + 1])
            i += 2
        elif a in ("--include", "--exclude"):
            opts[a[2:]].append(argv[i + 1])
            i += 2
        elif a == "--trace-all":
            opts["trace_all"] = True
            i += 1
        elif a == "--no-redact":
            opts["redact"] = False
            i += 1
        elif a == "--no-locals":
            opts["locals"] = False
            i += 1
        else:
            raise SystemExit("reftrace: unknown option " + a)
    raise SystemExit("reftrace: missing -- before the program")


def main():
    # runpy imports these lazily; importing them after settrace would put stdlib-generated
    # "<string>" code (namedtuple templates) into the trace before the program starts.
    import importlib.machinery  # noqa: F401
    import importlib.util  # noqa: F401
    import pkgutil  # noqa: F401
    import types  # noqa: F401

    opts, prog = parse_args(sys.argv[1:])
    if not opts["out"] or not prog:
        raise SystemExit("usage: reftrace.py --out FILE [options] -- script|-m mod|-c code [args]")
    fd = os.open(opts["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    renderer = Renderer(opts["max_string"], opts["max_items"], opts["max_depth"],
                        DEFAULT_REDACT if opts["redact"] else ())
    tracer = Tracer(fd, renderer, opts["locals"])
    tracer.includes = opts["include"]
    tracer.excludes = opts["exclude"]
    tracer.default_excludes = not opts["trace_all"]

    if prog[0] == "-m":
        mode, target, args = "module", prog[1], prog[2:]
        sys.argv = [target] + args    # runpy replaces argv[0] with the module's file
        sys.path[0] = os.getcwd()
    elif prog[0] == "-c":
        mode, target, args = "code", prog[1], prog[2:]
        sys.argv = ["-c"] + args
        sys.path[0] = ""
    else:
        mode, target, args = "script", prog[0], prog[1:]
        sys.argv = [target] + args
        sys.path[0] = os.path.dirname(os.path.realpath(target))

    if mode == "code":
        import types
        module = types.ModuleType("__main__")
        module.__dict__["__builtins__"] = __builtins__
        sys.modules["__main__"] = module
        code = compile(target, "<string>", "exec")
        tracer.main_pseudo_file = "<string>"
        tracer.install()
        exec(code, module.__dict__)
    elif mode == "module":
        tracer.install()
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        tracer.install()
        runpy.run_path(target, run_name="__main__")
    # Stay installed: threads and interpreter shutdown see the same tracer the agent does.


if __name__ == "__main__":
    main()
