"""Closures: cell and free variables, nonlocal rebinding, captured arguments, decorators."""
import functools


def make_counter(start):
    count = start

    def increment(step=1):
        nonlocal count
        count += step
        return count

    def peek():
        return count

    return increment, peek


def captured_argument(base, items):
    # `base` is an argument that a closure captures: a cell from the start.
    def add(x):
        return base + x
    results = [add(i) for i in items]
    base = base * 10
    results.append(add(1))
    return results


def outer(a):
    b = a + 1

    def middle(c):
        d = b + c

        def inner(e):
            return a + b + c + d + e
        return inner(5)
    return middle(3)


def logged(fn):
    calls = []

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        calls.append(args)
        result = fn(*args, **kwargs)
        return result
    wrapper.calls = calls
    return wrapper


@logged
def scale(x, factor=2):
    return x * factor


inc, peek = make_counter(10)
inc()
inc(5)
print(peek())
print(captured_argument(2, [1, 2]))
print(outer(1))
print(scale(4), scale(3, factor=3), len(scale.calls))
adders = [lambda x, k=k: x + k for k in range(3)]
print([f(10) for f in adders])
