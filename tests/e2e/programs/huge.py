"""Huge values: a 100000-item list, a 10 MB str, big bytes, a big dict; mutations inside and
outside the capture limits."""


def grow():
    big = list(range(100000))
    text = "x" * (10 * 1024 * 1024) + "END"
    blob = bytes(range(256)) * 2000
    table = {i: str(i) for i in range(1000)}
    big.append(-1)
    big[0] = "changed"
    big[50000] = 7
    table[0] = "zero"
    text2 = text + "!"
    return len(big), len(text2), len(blob), len(table)


print(grow())
