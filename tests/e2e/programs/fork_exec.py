"""Forks; the child runs its own function, then exits (or, with "exec", execs another
interpreter run), and the parent waits and goes on. Under `pyrewind run` only the parent is
recorded, and output and status are those of a plain run."""
import os, sys

def in_child(n):
    total = 0
    for i in range(n):
        total += i
    return total

def in_parent(n):
    total = 0
    for i in range(n):
        total += 2 * i
    return total

pid = os.fork()
if pid == 0:
    in_child(50)
    if len(sys.argv) > 1 and sys.argv[1] == "exec":
        os.execv(sys.executable, [sys.executable, "-c", "import sys; print('exec ok'); sys.exit(9)"])
    os._exit(5)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8, flush=True)
print("parent", in_parent(10))
