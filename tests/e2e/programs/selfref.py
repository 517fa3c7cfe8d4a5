"""Self-referencing and mutually referencing containers."""


def cycles():
    a = [1]
    a.append(a)
    d = {"name": "d"}
    d["me"] = d
    x = []
    y = [x]
    x.append(y)
    t = (a, d)
    shared = [0]
    pair = [shared, shared]
    deep = {"l1": {"l2": {"l3": {"l4": "bottom"}}}}
    a.append("tail")
    d["more"] = [d, a]
    return len(a), len(d), len(t), len(pair), len(deep)


print(cycles())
