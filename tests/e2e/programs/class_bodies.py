"""Class bodies: their locals live in a namespace dict, which a metaclass's __prepare__ may
replace by a dict subclass (enum does). The namespace is read as the dict it is."""
import enum


class Plain:
    kind = "plain"
    size = 2

    class Inner:
        depth = 1


class Color(enum.Enum):
    RED = 1
    GREEN = 2


class Prepared(type):
    @classmethod
    def __prepare__(mcs, name, bases):
        return Namespace()


class Namespace(dict):
    pass


class WithNamespace(metaclass=Prepared):
    first = 1
    second = [first]


print(Plain.kind, Color.GREEN.value, WithNamespace.second)
