"""Objects whose dunder methods raise: a tracer must not call any of them. Every such call
is counted, and the program exits 1 if the count is not 0 at the end."""
import sys

CALLS = []


def tripwire(name):
    def method(self, *args):
        CALLS.append(name)
        raise RuntimeError("%s called by the tracer" % name)
    return method


class Bad:
    __repr__ = tripwire("__repr__")
    __str__ = tripwire("__str__")
    __format__ = tripwire("__format__")
    __eq__ = tripwire("__eq__")
    __len__ = tripwire("__len__")
    __iter__ = tripwire("__iter__")
    __bool__ = tripwire("__bool__")
    __sizeof__ = tripwire("__sizeof__")
    __getattr__ = tripwire("__getattr__")
    __hash__ = object.__hash__


class BadList(list):
    __repr__ = tripwire("BadList.__repr__")
    __iter__ = tripwire("BadList.__iter__")
    __len__ = tripwire("BadList.__len__")
    __getitem__ = tripwire("BadList.__getitem__")


class BadDict(dict):
    __repr__ = tripwire("BadDict.__repr__")
    __iter__ = tripwire("BadDict.__iter__")
    keys = tripwire("BadDict.keys")
    items = tripwire("BadDict.items")


class BadStr(str):
    __repr__ = tripwire("BadStr.__repr__")
    __str__ = tripwire("BadStr.__str__")
    __len__ = tripwire("BadStr.__len__")


class Liar:
    @property
    def __class__(self):
        CALLS.append("__class__")
        return int


class Meta(type):
    def __repr__(cls):
        CALLS.append("Meta.__repr__")
        raise RuntimeError("metaclass repr")


class WithMeta(metaclass=Meta):
    pass


def use(items):
    first = items[0]
    holder = {"bad": first, "nested": [first, (first,)]}
    keyed = {first: "value"}
    return len(holder) + len(keyed)


bad = Bad()
bad_list = BadList([1, 2])
bad_dict = BadDict(a=1)
bad_str = BadStr("text")
liar = Liar()
meta_instance = WithMeta()
print(use([bad, bad_list, bad_dict]))
objects = [bad, bad_list, bad_dict, bad_str, liar, WithMeta, meta_instance]
count = len(CALLS)
if count:
    print("dunder methods were called:", CALLS)
    sys.exit(1)
print("no dunder called")
