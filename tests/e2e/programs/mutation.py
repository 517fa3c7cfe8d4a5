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


print(mutate())
