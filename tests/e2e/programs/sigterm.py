"""Death by a signal: the program sends itself SIGTERM (default action: terminate)."""
import os
import signal
import sys


def die(sig):
    note = "about to die"
    sys.stdout.flush()
    os.kill(os.getpid(), sig)
    note = "not reached"


counter = 0
for _ in range(3):
    counter += 1
print("counter", counter)
die(signal.SIGTERM)
