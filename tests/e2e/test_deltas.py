"""Container deltas (trace.proto Container.reused_items) are really sent, and only where the
reader has the value they refer to. That the values reconstructed from them are exact is
checked against the reference tracer by test_trace.py (cases containers_grow*); this reads the
recording's raw packets, so a regression that silently re-sends whole containers shows too."""

import ctypes
import ctypes.util

import pytest

import rwd
from e2e_util import program

ZSTD = 1


def zstd_decompress(data, size):
    name = ctypes.util.find_library("zstd")
    if not name:
        pytest.skip("libzstd not found")
    lib = ctypes.CDLL(name)
    lib.ZSTD_decompress.restype = ctypes.c_size_t
    lib.ZSTD_decompress.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t]
    out = ctypes.create_string_buffer(size)
    n = lib.ZSTD_decompress(out, size, data, len(data))
    assert n == size, "chunk does not decompress to its stated size"
    return out.raw


def fields(buf):
    """(number, value) of each field of a protobuf message: ints for varints, bytes for
    length-delimited fields (fixed-width fields are skipped)."""
    pos = 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(buf, pos)
        elif wire == 2:
            size, pos = varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            continue
        else:
            raise AssertionError("wire type %d" % wire)
        yield number, value


def varint(buf, pos):
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def events(path):
    """Each event as (kind, full_state, [reused_items of each binding's container value])."""
    data = path.read_bytes()
    _, chunks, _, _ = rwd.layout(data)
    assert chunks, "no chunks"
    for chunk in chunks:
        frame = rwd.CHUNK_FRAME.unpack_from(data, chunk.offset)
        compression, uncompressed = frame[1], frame[3]
        payload = data[chunk.payload_offset:chunk.end]
        if compression == ZSTD:
            payload = zstd_decompress(payload, uncompressed)
        for number, packet in fields(payload):
            assert number == 1
            for body_number, body in fields(packet):
                if body_number != 5:
                    continue
                kind, full_state, reused = 0, False, []
                for n, v in fields(body):
                    if n == 1:
                        kind = v
                    elif n == 12:
                        full_state = bool(v)
                    elif n == 6:
                        reused.append(binding_reuse(v))
                yield kind, full_state, reused


def binding_reuse(binding):
    for n, value in fields(binding):
        if n == 3:
            for m, container in fields(value):
                if m == 8:
                    return dict(fields(container)).get(6, 0)
    return 0


CALL, LINE = 1, 2


@pytest.mark.parametrize("options", [[], ["--max-items", "3"]], ids=["default", "max_items_3"])
def test_growing_containers_are_sent_as_deltas(pyrewind, work, options):
    recording = work / "grow.rwd"
    res = pyrewind.record([program("containers_grow.py")], recording, options, cwd=str(work))
    assert res.returncode == 0, res.describe()
    deltas = 0
    for kind, full_state, reused in events(recording):
        if any(reused):
            assert kind == LINE and not full_state, "a delta where the reader has no previous value"
            deltas += sum(1 for r in reused if r)
    # Every append of the growing loops (about 30 each in lists, dicts, sets, the generator, the
    # module level and the class body) is a delta, apart from the ones that change a captured item.
    assert deltas >= 150, "only %d container deltas" % deltas
