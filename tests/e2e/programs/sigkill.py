"""Death by SIGKILL: nothing in the process can react; what was committed must survive."""
import os
import signal
import sys


def die():
    values = list(range(10))
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


acc = []
for i in range(50):
    acc.append(i)
print("len", len(acc))
die()
