import sys

from . import PACKAGE_STATE
from .helpers import double


def main(argv):
    numbers = [int(a) for a in argv]
    doubled = double(numbers)
    print(__name__, PACKAGE_STATE, doubled)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
