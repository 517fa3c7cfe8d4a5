"""Loops with accumulators: for/while, nesting, break/continue, else clauses."""


def totals(rows):
    grand = 0
    per_row = []
    for row in rows:
        subtotal = 0
        for cell in row:
            if cell < 0:
                continue
            subtotal += cell
        per_row.append(subtotal)
        grand += subtotal
    return grand, per_row


def countdown(n):
    steps = []
    while n > 0:
        steps.append(n)
        n -= 1
        if n == 2:
            break
    else:
        steps.append("never")
    return steps


def one_line_loop(k):
    acc = 0
    for i in range(k): acc += i  # noqa: E701  (backward jumps within one line)
    return acc


def search(words, wanted):
    for index, word in enumerate(words):
        if word == wanted:
            found = index
            break
    else:
        found = -1
    return found


rows = [[1, 2, 3], [4, -5, 6], [], [7.5, 8]]
grand, per_row = totals(rows)
print(grand, per_row)
print(countdown(5))
print(one_line_loop(4))
print(search(["a", "b", "c"], "b"), search(["a"], "z"))
text = ""
for word in ("alpha", "beta", "gamma"):
    text += word[0]
print(text)
