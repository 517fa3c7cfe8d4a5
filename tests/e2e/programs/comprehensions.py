"""Comprehensions (inlined into the enclosing frame on 3.12+), nested and shadowing."""


def build(n):
    y = "outer"
    squares = [y * y for y in range(n)]
    evens = {x: x // 2 for x in range(n) if x % 2 == 0}
    letters = {c.upper() for c in "abca"}
    grid = [[r * c for c in range(3)] for r in range(2)]
    flat = [v for row in grid for v in row if v]
    total = sum(v for v in flat)
    return y, squares, evens, sorted(letters), grid, flat, total


print(build(4))
module_level = [w.title() for w in ("x", "yz")]
print(module_level)
