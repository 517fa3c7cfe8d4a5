"""os._exit(4) in the middle of tracing, with another thread alive and blocked."""
import os
import sys
import threading


def blocked(ready, gate):
    ready.set(); gate.wait()  # noqa: E702  one line: its line event precedes set(), so the
    # trace of this thread is the same whichever thread runs first afterwards


def bail(code):
    marker = "bye"
    sys.stdout.flush()
    os._exit(code)


ready = threading.Event()
gate = threading.Event()
helper = threading.Thread(target=blocked, args=(ready, gate), daemon=True)
helper.start()
ready.wait()
values = [1, 2, 3]
print("before exit", sum(values))
bail(4)
print("not reached")
