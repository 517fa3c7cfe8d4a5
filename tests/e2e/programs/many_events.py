"""Enough events for several recording chunks (used by the truncation/corruption tests)."""
import sys


def step(state, i):
    state["count"] += 1
    state["last"] = i * 3
    return state["count"]


def main(n):
    state = {"count": 0, "last": None, "label": "x" * 40}
    history = []
    for i in range(n):
        value = step(state, i)
        history.append(value)
        if len(history) > 20:
            history.pop(0)
    return state["count"]


print(main(int(sys.argv[1]) if len(sys.argv) > 1 else 60000))
