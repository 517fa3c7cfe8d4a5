"""Containers that change at every step in the ways container deltas must get right: growing
past the item limit (only the length changes), growing within it (new items after the same
first ones), inserts at the front and in-place item changes (the captured items change),
pops, a different container of the same length, aliases, and module-level bindings."""


def lists():
    parts = []
    for i in range(30):
        parts.append("w%d" % i)
    parts.insert(0, "front")
    parts.append("end")
    parts[3] = "changed"
    parts[24] = "last captured"
    parts[28] = "beyond the limit"
    parts.pop()
    parts.pop(0)
    nested = [[0]] + list(range(30))
    nested[0].append(1)
    nested.append(30)
    other = list(parts)
    parts = other
    alias = parts
    alias.append("via alias")
    parts.append("via parts")
    same_len = list(range(len(parts)))
    parts = same_len
    parts.append(None)
    del parts[:]
    for i in range(3):
        parts.append(i)
    parts = None
    return len(alias)


def dicts():
    table = {}
    for i in range(30):
        table["k%d" % i] = i
    table["k29"] = "new value, beyond the limit"
    table["k0"] = "new value, captured"
    del table["k1"]
    table["k1"] = "back, now last"
    table.pop("k2")
    table.setdefault("k30", [])
    table["k30"].append(1)
    shared = table
    shared["via shared"] = True
    table = dict(table)
    table["copy"] = 1
    return len(table), len(shared)


def sets_and_tuples():
    seen = set()
    for i in range(40):
        seen.add(i * 7 % 41)
    seen.discard(0)
    frozen = frozenset(seen)
    pair = (seen, [])
    pair[1].append(1)
    for i in range(30):
        pair[1].append(i)
    return len(frozen)


def generator(n):
    acc = []
    for i in range(n):
        acc.append(i)
        yield len(acc)
        acc.append(-i)


def deep():
    rows = []
    for i in range(28):
        rows.append({"i": i, "sq": [i] * (i % 3)})
    rows[0]["sq"].append("x")
    rows[27]["sq"].append("beyond")
    text = []
    for i in range(27):
        text.append("x" * (300 + i))
    text[0] += "!"
    return len(rows) + len(text)


print(lists())
print(dicts())
print(sets_and_tuples())
print(sum(generator(30)))
print(deep())

log = []
for step in range(35):
    log.append(step)
registry = {}
for step in range(30):
    registry[step] = str(step)
registry[0] = "zero"
log.insert(0, "first")


class Body:
    members = []
    for member in range(30):
        members.append(member)
    members.append("done")
    del member


print(len(log), len(registry), len(Body.members))
