"""Works in a loop until the file argv[1] exists, then prints the last iteration (every 200th is
also written to argv[1] + ".progress"); with argv[2] == "boom", first raises and catches one Boom
after 0.5 s, then works on for 0.3 s."""
import os
import sys
import time


class Boom(Exception):
    pass


def work(i):
    total = 0
    for k in range(50):
        total += k * i
    return total


def fail(i):
    raise Boom("at %d" % i)


if len(sys.argv) > 2 and sys.argv[2] == "boom":
    end = time.monotonic() + 0.5
    i = 0
    while time.monotonic() < end:
        work(i)
        i += 1
    try:
        fail(i)
    except Boom:
        pass
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        work(-i)
    print("boom at", i, flush=True)
    sys.exit(0)

i = 0
while not os.path.exists(sys.argv[1]):
    work(i)
    i += 1
    if i % 200 == 0:
        with open(sys.argv[1] + ".tmp", "w") as progress:
            progress.write(str(i))
        os.replace(sys.argv[1] + ".tmp", sys.argv[1] + ".progress")
print(i, flush=True)
