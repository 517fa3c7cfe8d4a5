"""Minimal independent walker of the recording layout (proto/recording/format.h), so the
damage tests know where chunks begin and end without trusting the reader under test."""

import struct

FILE_MAGIC = b"PYRWREC\n"
CHUNK_MAGIC = 0x4B435752
SUMMARY_MAGIC = 0x4D535752
FOOTER_MAGIC = 0x54465752
CHUNK_FRAME = struct.Struct("<IIQQQQQQII")
SUMMARY_FRAME = struct.Struct("<IIQ")
FOOTER = struct.Struct("<IIQ8s")


class Chunk:
    def __init__(self, offset, end, first_seq, event_count, payload_offset):
        self.offset = offset              # of the ChunkFrame
        self.end = end                    # one past the payload
        self.first_seq = first_seq
        self.event_count = event_count
        self.payload_offset = payload_offset

    def __repr__(self):
        return "Chunk(@%d..%d, seq %d+%d)" % (self.offset, self.end, self.first_seq, self.event_count)


def layout(data):
    """(header_end, [Chunk], summary_offset or None, footer_offset or None)."""
    if data[:8] != FILE_MAGIC:
        raise ValueError("not a recording")
    version, header_length = struct.unpack_from("<II", data, 8)
    pos = 16 + header_length
    header_end = pos
    chunks = []
    summary = None
    while pos + 4 <= len(data):
        magic = struct.unpack_from("<I", data, pos)[0]
        if magic == CHUNK_MAGIC and pos + CHUNK_FRAME.size <= len(data):
            (_, _, clen, _, first_seq, count, _, _, _, _) = CHUNK_FRAME.unpack_from(data, pos)
            end = pos + CHUNK_FRAME.size + clen
            if end > len(data):
                break
            chunks.append(Chunk(pos, end, first_seq, count, pos + CHUNK_FRAME.size))
            pos = end
        elif magic == SUMMARY_MAGIC:
            summary = pos
            break
        else:
            break
    footer = None
    if len(data) >= FOOTER.size:
        magic, _, _, fmagic = FOOTER.unpack_from(data, len(data) - FOOTER.size)
        if magic == FOOTER_MAGIC and fmagic == FILE_MAGIC:
            footer = len(data) - FOOTER.size
    return header_end, chunks, summary, footer
