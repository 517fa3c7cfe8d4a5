"""A frame with more locals than one-byte slot numbers reach: ints, floats, deletions and
redacted names on both sides of slot 127, and a function whose locals are all scalars."""

NAMES = ["v%d" % i for i in range(200)]
SOURCE = "def wide(seed):\n" + "".join("    %s = seed + %d\n" % (name, i) for i, name in enumerate(NAMES)) + """\
    v5 = 0.5
    v150 = 1.5
    del v3
    del v180
    token = seed * 2
    v199 = -2.5
    v3 = v150 + v5
    v180 = None
    return v3 + v199
"""
exec(compile(SOURCE, __file__, "exec"))


def scalars(n):
    total = 0
    ratio = 1.0
    for i in range(n):
        total += i
        ratio /= 2
        if i == 2:
            del ratio
            ratio = 0.125
    return total, ratio


print(wide(1), scalars(5))
