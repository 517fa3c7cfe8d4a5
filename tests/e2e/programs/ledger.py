"""A class with methods: qualified names such as Ledger.add, properties, class/static methods,
a nested class."""


class Ledger:
    currency = "EUR"

    class Entry:
        def __init__(self, label, amount):
            self.label = label
            self.amount = amount

    def __init__(self, owner):
        self.owner = owner
        self.entries = []

    def add(self, label, amount):
        entry = Ledger.Entry(label, amount)
        self.entries.append(entry)
        return len(self.entries)

    @property
    def balance(self):
        total = 0
        for entry in self.entries:
            total += entry.amount
        return total

    @classmethod
    def opening(cls, owner, amount):
        ledger = cls(owner)
        ledger.add("opening", amount)
        return ledger

    @staticmethod
    def fmt(amount):
        return "%.2f" % amount


def report(ledger):
    lines = [Ledger.fmt(e.amount) for e in ledger.entries]
    return "\n".join(lines)


book = Ledger.opening("ada", 100)
book.add("coffee", -3.5)
book.add("salary", 2500)
print(book.balance, Ledger.currency)
print(report(book))
