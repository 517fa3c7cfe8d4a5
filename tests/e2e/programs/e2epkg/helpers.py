def double(values):
    out = []
    for v in values:
        out.append(v * 2)
    return out
