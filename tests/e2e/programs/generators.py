"""Generators: iteration, send, throw (caught and uncaught), close, yield from,
generator expressions, and a coroutine driven by hand."""


def numbers(limit):
    n = 0
    while n < limit:
        yield n
        n += 1


def accumulator():
    total = 0
    while True:
        value = yield total
        if value is None:
            break
        total += value
    return total


def resilient():
    caught = []
    while True:
        try:
            item = yield len(caught)
        except ValueError as exc:
            caught.append(str(exc))
        else:
            if item == "stop":
                return caught


def fragile():
    yield 1
    yield 2


def delegator():
    first = yield from numbers(2)
    inner = yield from accumulator()
    return first, inner


async def fetch(x):
    return x * 3


async def pipeline(values):
    out = []
    for v in values:
        out.append(await fetch(v))
    return out


print(list(numbers(3)))

acc = accumulator()
next(acc)
acc.send(5)
acc.send(7)
try:
    acc.send(None)
except StopIteration as stop:
    print("total", stop.value)

r = resilient()
next(r)
r.throw(ValueError("first"))
r.send("go")
r.throw(ValueError("second"))
try:
    r.send("stop")
except StopIteration as stop:
    print("caught", stop.value)

f = fragile()
next(f)
try:
    f.throw(KeyError("unhandled"))
except KeyError:
    print("fragile gave up")

g = fragile()
next(g)
g.close()

d = delegator()
print(next(d), next(d), next(d))
d.send(4)
try:
    d.send(None)
except StopIteration as stop:
    print("delegator", stop.value)

squares = sum(x * x for x in range(4))
print(squares)

coro = pipeline([1, 2])
try:
    coro.send(None)
except StopIteration as stop:
    print("pipeline", stop.value)
