"""A target for `pyrewind sample` and `top` (tests/e2e/test_sample.py).

    sample_target.py SECONDS   the main thread spends SECONDS in hot() (pure Python arithmetic)
                               while a thread named "sleeper" sleeps in nap()

Prints one JSON line when both are on their way: the pid and the sleeper's native id.
"""
import ctypes
import ctypes.util
import json
import sys
import threading
import time


def nap(stop):
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.prctl(15, b"sleeper", 0, 0, 0)  # PR_SET_NAME: the kernel's thread name
    while not stop.is_set():
        time.sleep(0.05)  # sleep: nap


def hot(seconds):
    end = time.monotonic() + seconds
    total = 0
    while time.monotonic() < end:
        for i in range(2000):
            total += i * i % 7
    return total


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    stop = threading.Event()
    sleeper = threading.Thread(target=nap, args=(stop,), daemon=True)
    sleeper.start()
    print(json.dumps({"pid": threading.get_native_id(), "sleeper": sleeper.native_id}), flush=True)
    hot(seconds)
    stop.set()
    sleeper.join()


if __name__ == "__main__":
    main()
