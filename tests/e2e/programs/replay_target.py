"""A program whose every state is known, for `pyrewind replay` (tests/e2e/test_replay.py).
Lines the test refers to are marked `# mark: NAME`."""
import threading


def accumulate(values):
    total = 0  # mark: acc-init
    seen = []
    for v in values:  # mark: acc-loop
        total += v  # mark: acc-add
        seen.append(total)  # mark: acc-append
    return total  # mark: acc-return


def fact(n):
    if n <= 1:  # mark: fact-test
        return 1  # mark: fact-base
    return n * fact(n - 1)  # mark: fact-rec


def worker(count):
    done = 0
    for i in range(count):
        done += i  # mark: worker-add
    return done


first = accumulate([3, 4, 5])  # mark: main-acc
second = fact(4)  # mark: main-fact
helper = threading.Thread(target=worker, args=(3,), name="helper")
helper.start()  # mark: main-start
helper.join()  # mark: main-join
label = "done"  # mark: main-end
