"""For `pyrewind info`: prints its pid and argv, runs two named threads, exits 0."""
import json
import os
import sys
import threading


def work(n):
    total = 0
    for i in range(n):
        total += i
    return total


threads = [threading.Thread(target=work, args=(10,), name="probe-%d" % k) for k in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"pid": os.getpid(), "argv": sys.argv}))
