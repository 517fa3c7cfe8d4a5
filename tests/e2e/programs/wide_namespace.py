"""Binds 3000 module-level names in one step: more changed bindings than one event can hold.
Prints the names it expects to see bound at the end."""
import json

globals().update({"name_%d" % k: [k] * 3 for k in range(3000)})
del name_7
a = 1
b = 2
c = 3
d = 4
print(json.dumps(sorted(k for k in globals() if k.startswith("name_"))))
