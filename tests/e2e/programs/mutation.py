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


print(mutate())
print(atoms())
