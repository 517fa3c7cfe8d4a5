"""A program for `pyrewind ctl` (tests/e2e/test_ctl.py): for each line read from stdin, a phase
of work named after it (a long one, about a second untraced, for a name starting with "long"),
then side() of ctl_helper.py, then "<phase> done" on stdout. While it waits for the next line it
ticks (a traced call every 10 ms), as a service does between requests."""
import select
import sys

import ctl_helper  # beside this file: the script's directory is sys.path[0]


def work(phase, n):
    total = 0
    for i in range(n):
        total += i
    return total


def tick(count):
    return count + 1


def main():
    ticks = 0
    print("ready", flush=True)
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], 0.01)
        if not ready:
            ticks = tick(ticks)
            continue
        line = sys.stdin.readline()
        if not line:
            break
        phase = line.strip()
        work(phase, 10000000 if phase.startswith("long") else 3000)
        ctl_helper.side(phase)
        print(phase, "done", flush=True)


main()
