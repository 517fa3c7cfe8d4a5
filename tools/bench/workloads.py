"""CPU-bound workloads for tools/bench/bench.py. Run as a program:

    python workloads.py [--floor DIR | --floor-calls DIR] WORKLOAD SIZE

prints {"elapsed": seconds spent in the workload, "result": ..., "lines": floor LINE count}.
With --floor, the C extension built into DIR is loaded first and installed as the line
tracer (the floor every real tracer is compared with). --floor-calls (3.12+) also gives it
PY_START and PY_RETURN, as a tracer that records calls needs."""
import json
import sys
import time


def loops(n):
    total = 0
    for i in range(n):
        for j in range(20):
            total += (i * j) % 7
    return total


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def strings(n):
    parts = []
    tail = ""
    for i in range(n):
        word = "w%d" % i
        tail += word[-1]
        if len(tail) > 64:
            # Bounded: under any tracer 3.9-3.11 lose the in-place str += optimisation, and an
            # unbounded += would measure quadratic copying instead of tracing.
            tail = ""
        parts.append(word.upper())
    return len("".join(parts)) + len(tail)


def containers(n):
    counts = {}
    window = []
    for i in range(n):
        key = i % 97
        counts[key] = counts.get(key, 0) + i
        window.append(i)
        if len(window) > 50:
            window.pop(0)
    return sum(counts.values()) + len(window)


class Account:
    def __init__(self, owner):
        self.owner = owner
        self.balance = 0
        self.history = []

    def deposit(self, amount, note=None):
        if amount <= 0:
            return False
        self.balance += amount
        if note is not None:
            self.history.append(note)
        return True


def methods(n):
    # Everyday object code: method calls with self, None defaults, bools, a str picked from a
    # list local that never changes, attributes updated in place.
    account = Account("ada")
    labels = ["rent", "food", "fuel", "misc"]
    accepted = 0
    for i in range(n):
        label = labels[i % 4] if i % 10 == 0 else None
        if account.deposit(i % 50 + 1, label):
            accepted += 1
        if len(account.history) > 20:
            account.history.clear()
    return account.balance + accepted


def settings(n, scale=3, offset=7, limit=1000, unit="ms", rate=0.5, verbose=False, label=None):
    # A function with parameters and settings its loop reads but never rebinds.
    total = 0
    for i in range(n):
        total += (i * scale + offset) % limit
    return total


WORKLOADS = {"loops": loops, "fib": fib, "strings": strings, "containers": containers, "methods": methods,
             "settings": settings}


def main(argv):
    floor = None
    if argv[0] in ("--floor", "--floor-calls"):
        sys.path.insert(0, argv[1])
        import _linefloor as floor
        if sys.version_info >= (3, 12):
            mon = sys.monitoring
            tool = next(i for i in (4, 3, 5) if mon.get_tool(i) is None)
            mon.use_tool_id(tool, "linefloor")
            mon.register_callback(tool, mon.events.LINE, floor.on_line)
            events = mon.events.LINE
            if argv[0] == "--floor-calls":
                mon.register_callback(tool, mon.events.PY_START, floor.on_call)
                mon.register_callback(tool, mon.events.PY_RETURN, floor.on_call)
                events |= mon.events.PY_START | mon.events.PY_RETURN
            mon.set_events(tool, events)
        else:
            floor.install_trace()
        argv = argv[2:]
    work = WORKLOADS[argv[0]]
    size = int(argv[1])
    start = time.perf_counter()
    result = work(size)
    elapsed = time.perf_counter() - start
    print(json.dumps({"elapsed": elapsed, "result": result, "lines": floor.lines() if floor else None}))


if __name__ == "__main__":
    main(sys.argv[1:])
