"""Methods that exist, and one that runs, before `pyrewind attach`: the recording must name
them by their qualified names (Ledger.spin), which code objects only carry from 3.11 on."""
import sys
import time


class Ledger:
    def spin(self, seconds):
        end = time.monotonic() + seconds
        turns = 0
        while time.monotonic() < end:
            turns += 1
            time.sleep(0.001)  # a few thousand recorded steps, not millions
        return turns

    @staticmethod
    def helper(value):
        return value + 1


def main():
    print("ready", flush=True)
    Ledger().spin(1.5)
    for i in range(3):
        Ledger.helper(i)
        time.sleep(0.2)


main()
sys.exit(0)
