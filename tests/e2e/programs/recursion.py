"""Recursion: fib, factorial into big ints, mutual recursion, recursive tree walk."""
import sys


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def factorial(n):
    return 1 if n <= 1 else n * factorial(n - 1)


def is_even(n):
    return True if n == 0 else is_odd(n - 1)


def is_odd(n):
    return False if n == 0 else is_even(n - 1)


def tree_sum(node, depth=0):
    total = node[0]
    for child in node[1]:
        total += tree_sum(child, depth + 1)
    return total


tree = (1, [(2, [(4, [])]), (3, [(5, []), (6, [(7, [])])])])
print(fib(6))
print(factorial(25))
print(is_even(7))
print(tree_sum(tree))
sys.setrecursionlimit(1000)
print(factorial(60) % 1000003)
