"""Prints the environment it sees, its child's, its cwd and argv, as JSON."""
import json
import os
import subprocess
import sys

child = subprocess.run([sys.executable, "-c", "import os, json; print(json.dumps(dict(os.environ)))"],
                       capture_output=True, check=True)
print(json.dumps({
    "env": dict(os.environ),
    "child_env": json.loads(child.stdout),
    "cwd": os.getcwd(),
    "argv": sys.argv,
}, sort_keys=True))
