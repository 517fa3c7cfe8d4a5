"""A target for `pyrewind dump` (tests/e2e/test_dump.py): threads parked at known lines.

    dump_target.py stacks    three workers parked in nested calls, a spinning thread holding
                             the GIL, the main thread parked in a frame full of known locals
    dump_target.py deadlock  two threads deadlocked on two locks, the main thread joining one
    dump_target.py churn     stacks, threads and locals that change all the time (torn reads)
    dump_target.py native    the main thread in time.sleep, a thread in zlib.compress (C frames)

Prints one JSON line once the threads are on their way to park: the pid and each thread's
native id. The lines marked `# park: NAME` are where the threads wait; the test reads them
from this file.
"""
import ctypes
import ctypes.util
import json
import sys
import threading

release = threading.Event()
started = threading.Semaphore(0)
native_ids = {}
spinning = [True]


def name_os_thread(name):
    # The kernel's thread name (what `dump` shows); Python 3.9-3.13 do not set it themselves.
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME


class Widget:
    pass


def leaf(label, number):
    text = "leaf " + label
    started.release()
    release.wait()  # park: leaf
    return text, number


def middle(label, items):
    count = len(items)
    return leaf(label, count * 2)  # park: middle


def recurse(label, depth):
    if depth == 0:
        return leaf(label, depth)  # park: recurse-leaf
    return recurse(label, depth - 1)  # park: recurse


def worker(label):
    name_os_thread("dump-" + label)
    native_ids[label] = threading.get_native_id()
    captured = 41

    def read_captured():
        return captured

    if label == "alpha":
        middle(label, [1, 2, 3])  # park: worker-alpha
    elif label == "beta":
        leaf(label, read_captured())  # park: worker-beta
    else:
        recurse(label, 2)  # park: worker-gamma


def spin():
    name_os_thread("dump-spinner")
    native_ids["spinner"] = threading.get_native_id()
    started.release()
    turns = 0
    while spinning[0]:  # spin: first
        turns = (turns + 1) % 1000
    return turns  # spin: last


def main_waits():
    small = 42
    negative = -7
    big = 2 ** 100
    ratio = 2.5
    flag = True
    nothing = None
    name = "h\u00e9llo w\u00f6rld"
    wide = "\u65e5\u672c\u8a9e"
    emoji = "snake \U0001F40D"
    data = b"\x00ab\xff"
    items = [1, 2, 3]
    table = {"a": 1, "b": 2}
    pair = (1, "x")
    unique = {1, 2, 3, 4}
    widget = Widget()
    long_text = "x" * 1000
    release.wait()  # park: main
    return (small, negative, big, ratio, flag, nothing, name, wide, emoji, data, items, table, pair,
            unique, widget, long_text)


def stacks():
    threads = [threading.Thread(target=worker, args=(label,), daemon=True) for label in ("alpha", "beta", "gamma")]
    threads.append(threading.Thread(target=spin, daemon=True))
    for thread in threads:
        thread.start()
    for _ in threads:
        started.acquire()
    native_ids["main"] = threading.get_native_id()
    print(json.dumps({"pid": threading.get_native_id(), "threads": native_ids}), flush=True)
    main_waits()  # park: main-caller


def take(first, second, both_hold):
    with first:
        both_hold.wait()
        with second:  # park: deadlock
            pass


def deadlock():
    first, second = threading.Lock(), threading.Lock()
    both_hold = threading.Barrier(2)
    one = threading.Thread(target=take, args=(first, second, both_hold), daemon=True)
    other = threading.Thread(target=take, args=(second, first, both_hold), daemon=True)
    one.start()
    other.start()
    print(json.dumps({"pid": threading.get_native_id(), "threads": {"one": one.native_id, "other": other.native_id}}),
          flush=True)
    one.join()  # park: deadlock-main


def churn_calls(depth, values):
    if depth == 0:
        return len(values)
    values = values + [str(depth) * depth, depth / 3, {depth: values}]
    return churn_calls(depth - 1, values) + churn_calls(depth // 2, values[:depth])


def churn_thread(rounds):
    total = 0
    for turn in range(rounds):
        total += churn_calls(turn % 12, [])
    return total


def churn():
    print(json.dumps({"pid": threading.get_native_id(), "threads": {}}), flush=True)
    while True:
        threads = [threading.Thread(target=churn_thread, args=(200,)) for _ in range(3)]
        for thread in threads:
            thread.start()
        churn_thread(100)
        for thread in threads:
            thread.join()


def nap():
    import time
    time.sleep(600)  # park: nap


def squeeze(data):
    import zlib
    while True:
        zlib.compress(data, 9)  # park: squeeze


def native():
    data = bytes(range(256)) * 20000
    zipper = threading.Thread(target=squeeze, args=(data,), name="zipper", daemon=True)
    zipper.start()
    print(json.dumps({"pid": threading.get_native_id(), "threads": {"zipper": zipper.native_id}}), flush=True)
    nap()  # park: native-main


if __name__ == "__main__":
    {"stacks": stacks, "deadlock": deadlock, "churn": churn, "native": native}[sys.argv[1]]()  # park: module
