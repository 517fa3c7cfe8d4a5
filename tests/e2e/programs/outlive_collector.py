"""Runs under `pyrewind run` while the test kills the collector: reports whether pyrewind's
tracing is installed (a sys.monitoring tool named "pyrewind" on 3.12+, the threading trace hook
on 3.9-3.11), works, waits for the test's go-ahead on stdin, and reports again once the agent
had time to notice."""
import sys
import threading
import time


def tracing_installed():
    if hasattr(sys, "monitoring"):
        return "pyrewind" in [sys.monitoring.get_tool(tool) for tool in range(6)]
    hook = threading.gettrace() if hasattr(threading, "gettrace") else threading._trace_hook
    return hook is not None


def work(n):
    total = 0
    for i in range(n):
        total += i % 7
    return total


print("before traced=%s work=%d" % (tracing_installed(), work(20000)), flush=True)
sys.stdin.readline()  # the collector is dead now
deadline = time.monotonic() + 5
while tracing_installed() and time.monotonic() < deadline:
    work(1000)
    time.sleep(0.05)
print("after traced=%s work=%d" % (tracing_installed(), work(20000)), flush=True)
sys.exit(4)
