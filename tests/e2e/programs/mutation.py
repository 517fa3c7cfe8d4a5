"""In-place mutation of containers reached through other locals: every change within the
capture limits must show at the very next step."""


def fill(target, n):
    for i in range(n):
        target.append(i)


def mutate():
    d = {"items": []}
    d["items"].append(1)
    d["items"].append(2)
    nested = {"a": {"b": [0]}}
    nested["a"]["b"].append(1)
    nested["a"]["b"][0] = "zero"
    rows = [{"n": 0}, {"n": 1}]
    rows[1]["n"] += 10
    alias = d["items"]
    alias.append(3)
    fill(alias, 2)
    s = {1}
    s.add(2)
    box = ([1],)
    box[0].append(2)
    d["items"] += [4]
    del d["items"][0]
    d.clear()
    return d, nested, rows, alias, s, box


def atoms():
    # Dicts of atoms are fingerprinted by identity and version: every in-place change must
    # still show, including ones that keep the length and the keys.
    counts = {"a": 0, "b": 0}
    same = counts
    for i in range(4):
        counts["a"] = i
        counts["b"] += 1
    counts.pop("a")
    counts["a"] = 3
    counts.update(b=4.5, c="x")
    counts.setdefault("d", None)
    inner = {"k": 1}
    outer = {"inner": inner}
    inner["k"] = 2
    for n in range(3):
        fresh = {"n": n}
        fresh["n"] = n * 10
    return same, outer, fresh


class Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y


def tables():
    # The dict layouts the agent reads in place or not: a table with deleted entries, one
    # large enough for 2-byte indices, a str-keyed one, and an instance's (split) __dict__.
    big = {i: i * i for i in range(300)}
    for i in range(0, 300, 7):
        del big[i]
    big[1] = "one"
    named = {"k%d" % i: i for i in range(40)}
    del named["k0"]
    named["k1"] = [1]
    named["k1"].append(2)
    p = Point(1, 2)
    attrs = p.__dict__
    p.x = 10
    p.z = 3
    del p.y
    return len(big), len(named), attrs


print(mutate())
print(atoms())
print(tables())
