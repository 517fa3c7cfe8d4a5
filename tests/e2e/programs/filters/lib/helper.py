"""A "library" for filters/app.py."""


def apply(fn, values):
    out = []
    for v in values:
        out.append(fn(v))
    return out


def total(values):
    acc = 0
    for v in values:
        acc += v
    return acc
