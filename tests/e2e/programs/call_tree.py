"""A known call structure for the span exports and `stats`: nesting, call counts, a
generator, arguments of several types, and a second thread."""
import threading


def leaf(x):
    return x * 2


def middle(n):
    total = 0
    for i in range(n):
        total += leaf(i)
    return total


def label(value):
    return "v=%s" % (value,)


def count_up(limit):
    for i in range(limit):
        yield i


def worker():
    middle(2)


def main():
    middle(3)
    label(1)
    label("a")
    label(None)
    total = sum(count_up(3))
    t = threading.Thread(target=worker, name="helper")
    t.start()
    t.join()
    return total


main()
