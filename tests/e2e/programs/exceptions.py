"""Exceptions raised and caught, propagating through several frames, finally blocks,
re-raise, chaining, user exception types, and a context manager that suppresses."""


class LedgerError(Exception):
    pass


def level3(x):
    if x > 2:
        raise ValueError("too big: %d" % x)
    return x


def level2(x):
    return level3(x) * 2


def level1(x):
    try:
        return level2(x)
    finally:
        cleanup = "done"


def safe(x):
    try:
        value = level1(x)
    except ValueError as exc:
        message = str(exc)
        value = -1
    else:
        message = None
    return value, message


def lookup(table, key):
    try:
        return table[key]
    except KeyError:
        raise LedgerError("missing " + key) from None


def reraiser():
    try:
        {}["k"]
    except KeyError:
        marker = 1
        raise


def swallow():
    try:
        1 / 0
    finally:
        return "swallowed"


class Suppress:
    def __init__(self, kind):
        self.kind = kind

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        return exc_type is not None and issubclass(exc_type, self.kind)


def guarded():
    with Suppress(ZeroDivisionError):
        ratio = 1 / 0
    return "after"


print(safe(1), safe(5))
try:
    lookup({"a": 1}, "b")
except LedgerError as err:
    print("ledger error", err)
try:
    reraiser()
except KeyError:
    print("reraised")
print(swallow())
print(guarded())
try:
    int("x1")
except (TypeError, ValueError) as e:
    print(type(e).__name__)
