"""Threads: workers started at the beginning and in the middle of the run. Each thread
works only on its own data, so every thread's trace is deterministic; handshakes order the
threads' first events (the tests match threads by the time of their first event)."""
import threading


class Worker:
    def __init__(self, name, numbers):
        self.name = name
        self.numbers = numbers
        self.result = None


def crunch(worker, started):
    started.set()
    total = 0
    for n in worker.numbers:
        total += n * n
    squares = [n * n for n in worker.numbers]
    worker.result = (total, squares[-1])


def start(worker):
    started = threading.Event()
    thread = threading.Thread(target=crunch, args=(worker, started), name=worker.name)
    thread.start()
    started.wait()
    return thread


first = Worker("first", list(range(5)))
t1 = start(first)
t1.join()
local_total = 0
for i in range(3):
    local_total += i
second = Worker("second", [7, 8, 9])
third = Worker("third", [10])
t2 = start(second)
t3 = start(third)
t2.join()
t3.join()
print(first.result, second.result, third.result, local_total)
