"""Reads all of stdin as bytes and writes derived bytes to stdout and stderr, then exits 7."""
import sys

data = sys.stdin.buffer.read()
sys.stdout.buffer.write(b"len=%d\n" % len(data))
sys.stdout.buffer.write(data[::-1])
sys.stderr.buffer.write(b"err:" + data[:16] + b"\n")
print("args", sys.argv[1:])
sys.stdout.flush()
sys.exit(7)
