"""Every way a frame rebinds its variables. At a line event the agent scans only the slots the
previous line can have written (and containers, objects and cells), so each way must show at
the very next step; so must a write from outside the frame's bytecode (a debugger's)."""
import sys


def multiline_targets(pair, triple):
    (first,
     second) = pair
    a, \
        b, \
        c = triple
    x = y = \
        z = first + second
    head, *rest = \
        triple
    return first + second + a + b + c + x + y + z + head + len(rest)


def augmented(n):
    total = 0
    count = 0
    for i in range(n):
        total += \
            i
        count \
            += 1
    return total, count


def walrus(items):
    squares = [last := v * v for v in items]
    if (size := len(squares)) > 2:
        size += last
    return size


def comprehension_scope(items):
    # 3.12+ inlines these: the frame's own `v` is saved, reused and restored within the line.
    v = "outer"
    pairs = [(v, w) for v in items for w in items if v != w]
    total = sum(v for v in items)
    mapping = {v: v * 2 for v in items}
    return v, len(pairs), total, len(mapping)


def deleted(n):
    temp = n * 2
    keep = temp + 1
    del temp
    temp = keep
    del keep
    return temp


class Swallow:
    def __enter__(self):
        return 5

    def __exit__(self, *exc):
        return True


def with_and_except():
    with Swallow() as entered:
        value = entered * 2
        raise KeyError(value)
    try:
        1 / 0
    except ZeroDivisionError as error:
        message = str(error)
    try:
        int("x")
    except ValueError:
        second = "caught"
    finally:
        done = True
    return entered, value, message, second, done


def fail_again():
    raise ValueError("again")


def handler_escapes():
    outcome = "start"
    try:
        try:
            1 / 0
        except ZeroDivisionError as error:
            error = len(str(error))  # now an int, which no code but the frame's changes
            outcome = "inner"
            fail_again()
    except ValueError:
        outcome += " outer"  # `error` is gone: deleted by cleanup code that has no line
    return outcome


def loops_else(items):
    found = None
    for item in items:
        if item > 2:
            found = item
            break
    else:
        found = -1
    n = 0
    last = finished = None
    while n < 3:
        n += 1
        if n == 2:
            continue
        last = n
    else:
        finished = True
    return found, last, finished


def jumps(n):
    i = 0
    while (i < n
           and i != 99):
        i += 1
    j = (i if i > 2
         else -i)
    k = -1
    if i and \
            j:
        k = i + j
    return i, j, k


def one_liners(n):
    a = n; b = a + 1; c = b + 1  # noqa: E702
    for i in range(3): a += i  # noqa: E701
    return a, b, c


def resumed():
    received = yield 1
    doubled = received * 2; again = yield doubled  # noqa: E702
    return again


def defaults(n):
    def helper(k=n):
        return k + 1
    result = helper()
    return result


class Before:
    pass


class After:
    pass


def reclassed():
    thing = Before()
    count = 0
    thing.__class__ = After  # the recorded type changes with no store to `thing`
    count += 1
    return type(thing).__name__, count


def set_local(frame, name, value):
    """What a debugger does to another frame's variable."""
    frame.f_locals[name] = value  # 3.13: a write-through proxy
    if sys.version_info < (3, 13):
        import ctypes
        ctypes.pythonapi.PyFrame_LocalsToFast(ctypes.py_object(frame), ctypes.c_int(0))


def written_from_outside():
    x = 1
    y = 2
    set_local(sys._getframe(), "x", 42)
    z = x + y
    return z


def main():
    print(multiline_targets((1, 2), (3, 4, 5)))
    print(augmented(4))
    print(walrus([1, 2, 3]))
    print(comprehension_scope([1, 2, 3]))
    print(deleted(3))
    print(with_and_except())
    print(handler_escapes())
    print(loops_else([1, 2, 3, 4]))
    print(jumps(5))
    print(one_liners(1))
    generator = resumed()
    print(next(generator), generator.send(5))
    try:
        generator.send(7)
    except StopIteration as stop:
        print("returned", stop.value)
    print(defaults(4))
    print(reclassed())
    print(written_from_outside())
    if sys.version_info >= (3, 10):
        import stores_match
        print(stores_match.matching("go north"), stores_match.matching("look"), stores_match.matching("a b c"))


main()
