"""File filters: user code called back from excluded code (a library excluded by --exclude,
and the standard library's heapq) counts its depth in traced frames only."""
import heapq
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import helper  # noqa: E402


def weight(item):
    w = item % 5
    return w


def double(x):
    y = x * 2
    return y


items = [7, 3, 9, 4]
doubled = helper.apply(double, items)
lightest = heapq.nsmallest(2, items, key=weight)
print(doubled, lightest, helper.total(doubled))
