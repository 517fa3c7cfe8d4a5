"""sys.exit(3) from inside nested calls: SystemExit propagates through every frame."""
import sys


def finish(code):
    print("finishing", code)
    sys.exit(code)


def run():
    state = {"step": 1}
    state["step"] = 2
    finish(3)
    state["step"] = 99


run()
print("not reached")
