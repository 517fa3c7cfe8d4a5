"""A target for `pyrewind sample --subprocesses` (tests/e2e/test_sample.py): the parent waits in
parent_wait() while a child interpreter started with subprocess spins in spun_child(), a forked
multiprocessing child in forked_child(), and a program that is not Python (sleep) runs too.
Prints one JSON line: the pids of the Python children."""
import json
import multiprocessing
import subprocess
import sys
import time

SECONDS = 1.5
CHILD = "import time\ndef spun_child(end):\n    while time.monotonic() < end: pass\nspun_child(time.monotonic() + %r)\n"


def forked_child(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def parent_wait(children):
    for child in children:
        child.join() if hasattr(child, "join") else child.wait()


if __name__ == "__main__":
    spun = subprocess.Popen([sys.executable, "-c", CHILD % SECONDS])
    other = subprocess.Popen(["sleep", str(SECONDS)])
    forked = multiprocessing.get_context("fork").Process(target=forked_child, args=(SECONDS,))
    forked.start()
    print(json.dumps({"spun": spun.pid, "forked": forked.pid}), flush=True)
    parent_wait([spun, other, forked])
