"""Every kind of value the export renders: scalars at the limits, containers at the limits,
and objects of other types (heap and static types, subclasses of builtins)."""
import collections
import decimal
import enum
import sys


Color = enum.IntEnum("Color", "RED")  # functional API: no class body (see class_bodies.py)


class MyInt(int):
    pass


class MyStr(str):
    pass


class Plain:
    __slots__ = ("x",)


def scalars():
    none = None
    yes, no = True, False
    small = 7
    negative = -12
    edge = 2 ** 53
    edge_plus = 2 ** 53 + 1
    edge_minus = -(2 ** 53)
    edge_minus_minus = -(2 ** 53) - 1
    # Digit boundaries: ints of one, two and three 30-bit digits take different paths.
    one_digit_top = 2 ** 30 - 1
    two_digits = 2 ** 30
    two_digits_negative = -(2 ** 30) - 5
    two_digits_top = 2 ** 60 - 1
    three_digits = 2 ** 60
    three_digits_negative = -(2 ** 60)
    three_digits_top = 2 ** 62 - 1
    past_three_digits_top = -(2 ** 62)
    nanoseconds = 1_765_000_000_123_456_789
    word_top = 2 ** 63 - 1
    word_bottom = -(2 ** 63)
    ints = [2 ** 30, -(2 ** 59), 2 ** 61, 3, -(2 ** 30)]
    wide = 2 ** 1024 - 1
    too_wide = 2 ** 1024
    too_wide_negative = -(2 ** 4000)
    tenth = 0.1
    whole = 5.0
    neg_zero = -0.0
    tiny = 5e-324
    large = 1e300
    nan = float("nan")
    inf = float("inf")
    ninf = float("-inf")
    empty = ""
    unicode = "h\u00e9llo \u2603 \U0001F600"
    at_limit = "a" * 256
    over_limit = "b" * 257
    astral_over = "\U0001F600" * 300
    control = "tab\tnul\x00quote\"backslash\\"
    b_empty = b""
    b_short = b"\x00\xffabc"
    b_limit = bytes(256)
    b_over = bytes(range(256)) + b"!"
    return 0


def containers():
    empty_list, empty_tuple, empty_dict = [], (), {}
    empty_set, empty_frozen = set(), frozenset()
    mixed = (1, "two", 3.0, None, True, b"6")
    keys = {1: "int", (2, 3): "tuple", None: "none", "s": [1], 4.5: "float", False: "bool"}
    numbers = {3, 1, 2}
    frozen = frozenset({"z"})
    items25 = list(range(25))
    items26 = list(range(26))
    dict26 = {i: i for i in range(26)}
    depth3 = [[[1]]]
    depth4 = [[[[1]]]]
    dict_depth = {"a": {"b": {"c": {"d": 1}}}}
    return len(mixed) + len(keys)


def others():
    color = Color.RED
    my_int = MyInt(3)
    my_str = MyStr("s")
    plain = Plain()
    dq = collections.deque([1])
    od = collections.OrderedDict(a=1)
    dd = collections.defaultdict(list)
    dec = decimal.Decimal("1.5")
    ba = bytearray(b"ab")
    mv = memoryview(b"ab")
    rng = range(3)
    cplx = 1 + 2j
    sl = slice(1, 2)
    fn = scalars
    lam = lambda: 0  # noqa: E731
    builtin = len
    method = [].append
    module = sys
    cls = Plain
    dots = ...
    ni = NotImplemented
    obj = object()
    exc = ValueError("v")
    it = iter([1])
    gen = (x for x in ())
    return 0


def flags(n):
    # Only None, bools and ints: every line of this frame is written in place.
    found = None
    done = False
    for i in range(n):
        done = i == n - 1
        found = i if done else None
    return found, done


def labelled(n):
    # A str local held across steps that change only ints, then rebound.
    name = "label"
    total = 0
    for i in range(n):
        total += i
        if i == 1:
            name = name.upper()
    return name, total


class Tally:
    def run(self, n):
        # self, recorded by type and id, held across int-only steps.
        total = 0
        for i in range(n):
            total += i
        self.total = total
        return total


def rebound(n):
    # An object local rebound to another (live) object of the same type.
    first = Plain()
    box = first
    for i in range(n):
        if i == 1:
            box = Plain()
    return box is first


def make_plain():
    made = Plain()
    return made  # an object returned: its id must match the caller's local


def keep_made():
    kept = make_plain()
    return kept is not None


def crossing():
    # A counter growing past one digit, then negated: the same local on both paths.
    total = 2 ** 30 - 3
    for _ in range(5):
        total += 1
    total = -total
    return total * 2 ** 29


print(scalars(), containers(), others(), flags(3), labelled(3), Tally().run(3), rebound(3), keep_made(), crossing())
