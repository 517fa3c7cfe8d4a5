"""An exception nobody catches: traceback on stderr, exit status 1."""


def parse(text):
    return int(text)


def load(items):
    return [parse(x) for x in items]


print("loading")
load(["1", "2", "three"])
