"""Aliasing for the memory diagram: two names bound to one list, nested containers, a call
that mutates its argument. Known states for tests/e2e/test_html.py and test_memoryviz.py."""


class Account:
    def __init__(self, owner):
        self.owner = owner


def add_item(basket, item):
    basket.append(item)
    count = len(basket)
    return count


def main():
    fruits = ["apple", "pear"]
    same = fruits
    grid = [fruits, [1, 2], fruits]
    prices = {"apple": 1.5, "pear": 2.0}
    owner = Account("ada")
    total = add_item(same, "plum")
    return total + len(grid) + len(prices) + len(owner.owner)


result = main()
