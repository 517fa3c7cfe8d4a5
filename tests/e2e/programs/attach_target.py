"""A long-running program for `pyrewind attach` tests.

    attach_target.py MODE

MODE is what the program's threads do while a test attaches to it:
  sleep    the main thread naps in 10 ms sleeps, counting naps
  busy     the main thread computes without pause
  event    the main thread is blocked in threading.Event().wait(); a worker computes
  select   the main thread is blocked in a selector (epoll) on stdin; a worker computes
  alloc8   8 threads allocate and free containers as fast as they can
  threads  two workers run from the start, and the main thread keeps starting short-lived
           threads ("late-N") for as long as the program runs

It prints "ready" once its threads run. On SIGUSR2 it prints the tracing state of the
process ("state ..."), which must be the same before any attach and after a detach. It ends
when a line "quit" arrives on stdin: it prints "done" plus the checks its threads made (each
recomputes what it computed and compares), the same whatever the timing, and exits with 7.

Every function records the invariant the tests check on the recording's locals:
squares(): at the line `total += i * i`, total == sum of k*k for k < i;
naps(): at the line `doubled = count * 2`, the previous doubled == 2 * (count - 1);
allocate(): at its check, words and index hold 2000 items and expected is their total length.
"""

import os
import selectors
import signal
import sys
import threading
import time

stop = threading.Event()
failures = []


def squares(rounds_limit=None):
    rounds = 0
    while not stop.is_set():
        total = 0
        for i in range(10):
            total += i * i
        if total != 285:
            failures.append("squares")
        # CPU work in C (no line events), so a busy thread records thousands of steps a
        # second rather than millions.
        ballast = sum(map(abs, range(-20000, 20000)))
        if ballast != 400000000:
            failures.append("ballast")
        rounds += 1
        if rounds_limit is not None and rounds >= rounds_limit:
            break
    return rounds


def naps():
    count = 0
    doubled = 0
    while not stop.is_set():
        time.sleep(0.01)
        count += 1
        doubled = count * 2
    if doubled != count * 2:
        failures.append("naps")


def allocate():
    expected = sum(map(len, map(str, range(2000))))
    while not stop.is_set():
        words = list(map(str, range(2000)))
        index = dict(zip(words, map(len, words)))
        if sum(index.values()) != expected:
            failures.append("allocate")
        del words, index


def late_threads():
    started = 0
    while not stop.is_set():
        thread = threading.Thread(target=squares, args=(2,), name="late-%d" % started)
        thread.start()
        thread.join()
        started += 1
        time.sleep(0.02)


def report_state(signum, frame):
    tools = []
    if hasattr(sys, "monitoring"):
        tools = [sys.monitoring.get_tool(tool) for tool in range(6)]
    hook = threading.gettrace() if hasattr(threading, "gettrace") else threading._trace_hook
    # os.write, not print: the signal may arrive while the main thread is inside print().
    os.write(1, ("state trace=%r hook=%r tools=%r\n" % (sys.gettrace(), hook, tools)).encode())


def finish(threads, from_main=True):
    for thread in threads:
        thread.join()
    print("done failures=%r" % failures, flush=True)
    if from_main:
        sys.exit(7)  # a normal exit: the interpreter finalizes, code objects are freed
    os._exit(7)


def wait_for_quit(workers=None):
    for line in sys.stdin:
        if line.strip() == "quit":
            break
    stop.set()
    if workers is not None:  # the main thread never wakes up: end the program from here
        finish(workers, from_main=False)


def start(target, name):
    thread = threading.Thread(target=target, name=name)
    thread.start()
    return thread


def main(mode):
    signal.signal(signal.SIGUSR2, report_state)
    threads = []
    if mode in ("event", "select"):
        threads.append(start(squares, "worker"))
    if mode == "event":
        threading.Thread(target=wait_for_quit, args=(list(threads),), name="stdin").start()
    elif mode != "select":
        threads.append(start(wait_for_quit, "stdin"))
    if mode == "alloc8":
        threads += [start(allocate, "alloc-%d" % n) for n in range(8)]
    if mode == "threads":
        threads += [start(squares, "early-%d" % n) for n in range(2)]
    print("ready", flush=True)
    if mode == "sleep":
        naps()
    elif mode == "busy":
        squares()
    elif mode == "event":
        threading.Event().wait()  # forever: the stdin thread ends the program
    elif mode == "select":
        selector = selectors.DefaultSelector()
        selector.register(sys.stdin, selectors.EVENT_READ)
        while not stop.is_set():
            selector.select()  # no timeout: blocked in epoll_wait until stdin has data
            if sys.stdin.readline().strip() == "quit":
                stop.set()
    elif mode == "threads":
        late_threads()
    elif mode == "alloc8":
        while not stop.wait(0.05):  # short waits: the main thread must get the GIL from 8 busy threads
            pass
    finish(threads)


if __name__ == "__main__":
    main(sys.argv[1])
