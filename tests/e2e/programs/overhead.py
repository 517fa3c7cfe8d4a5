"""A program for --max-overhead (tests/e2e/test_overhead.py).

    overhead.py hot SECONDS    a busy loop in hot() (many line events), cold() called now and then
    overhead.py idle SECONDS   sleeps between a few lines: tracing costs it next to nothing
    overhead.py calls SECONDS  one-line functions called in a tight loop: calls dominate
"""
import sys
import time


def hot(n):
    total = 0
    for i in range(n):
        total += i % 7
    return total


def cold(x):
    return x + 1


def one():
    return 1


def run_hot(seconds):
    end = time.monotonic() + seconds
    result = rounds = 0
    while time.monotonic() < end:
        result = cold(result + hot(5000))
        rounds += 1
    return rounds


def run_idle(seconds):
    end = time.monotonic() + seconds
    naps = 0
    while time.monotonic() < end:
        time.sleep(0.02)
        naps += 1
    return naps


def run_calls(seconds):
    end = time.monotonic() + seconds
    calls = 0
    while time.monotonic() < end:
        for _ in range(1000):
            calls += one()
    return calls


if __name__ == "__main__":
    mode, seconds = sys.argv[1], float(sys.argv[2])
    count = {"hot": run_hot, "idle": run_idle, "calls": run_calls}[mode](seconds)
    print("done", count > 0)
