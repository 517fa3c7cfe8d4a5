"""Works for argv[1] seconds, then reports whether pyrewind's tracing is still installed and
exits with status 6: the program a recording limit stops recording while it runs on."""
import sys
import threading
import time


def tracing_installed():
    if hasattr(sys, "monitoring"):
        return "pyrewind" in [sys.monitoring.get_tool(tool) for tool in range(6)]
    hook = threading.gettrace() if hasattr(threading, "gettrace") else threading._trace_hook
    return hook is not None


def work(rounds):
    total = 0
    for i in range(rounds):
        total += i % 7
    return total


end = time.monotonic() + float(sys.argv[1])
batches = 0
while time.monotonic() < end:
    work(1000)
    batches += 1
print("worked traced_at_end=%s" % tracing_installed(), flush=True)
sys.exit(6)
