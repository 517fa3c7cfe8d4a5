"""pyrewind's demo program: a small ledger. Run it under `pyrewind run` (tools/demo.sh) and
every line it executes, with its local variables, is in the recording.

    ledger.py [OWNER]                  book four entries and exit
    ledger.py --serve SECONDS [OWNER]  a long-running service: book an entry every 50 ms for
                                       SECONDS, for `pyrewind attach PID` to record while it runs
"""
import sys
import time


class Ledger:
    def __init__(self, owner):
        self.owner = owner
        self.entries = []

    def add(self, label, amount):
        if amount == 0:
            raise ValueError("empty entry: " + label)
        self.entries.append((label, amount))
        return self.balance()

    def balance(self):
        total = 0
        for _, amount in self.entries:
            total += amount
        return total


def serve(seconds, owner):
    ledger = Ledger(owner)
    deadline = time.monotonic() + seconds
    tick = 0
    while time.monotonic() < deadline:
        tick += 1
        amount = (tick * 37) % 200 - 90
        try:
            balance = ledger.add("tick-%d" % tick, amount)
        except ValueError:
            continue
        time.sleep(0.05)
    print("served %d ticks, %d entries, balance %.2f" % (tick, len(ledger.entries), ledger.balance()))
    return 0


def main(argv):
    if argv[:1] == ["--serve"]:
        return serve(float(argv[1]), argv[2] if len(argv) > 2 else "ada")
    ledger = Ledger(argv[0] if argv else "ada")
    api_token = "s3cr3t"  # recorded as {"redacted": true}
    for label, amount in [("salary", 2500), ("rent", -900), ("coffee", -3.5), ("refund", 0)]:
        try:
            balance = ledger.add(label, amount)
        except ValueError as exc:
            print("skipped:", exc)
            continue
        print("%-8s %8.2f  balance %8.2f" % (label, amount, balance))
    return 0 if api_token else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
