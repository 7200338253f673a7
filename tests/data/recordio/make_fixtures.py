#!/usr/bin/env python3
"""Writes the RecordIO fixtures the reader in src/data/images/recordio.rs is tested against.

An independent writer, standard library only, following the published MXNet RecordIO format
(dmlc-core recordio.cc, RecordIOWriter::WriteRecord) and mxnet.recordio.pack byte by byte:

  frame  = u32 magic 0xced7230a | u32 (cflag << 29 | length) | data | zero padding to 4 bytes
  cflag  = 0 whole record, 1 first part, 2 middle part, 3 last part; a record is split wherever
           its data holds the magic word at a 4-byte-aligned offset, and that word is dropped
  record = IRHeader struct.pack('<IfQQ', flag, label, id, id2) [+ flag f32 labels] + image bytes
  .idx   = one line per record: key<TAB>byte offset of its first frame

Run from anywhere; it rewrites the files beside itself:
  pack/   insightface layout: record 0 = header (label = (first identity record, end)),
          records 1..6 images, records 7..9 one per identity with label = (start, end);
          image record 3 is split in three parts by two magic words inside a PNG chunk.
  plain/  no header record: every record is an image labelled by its identity (5 or 7), one of
          them with a label vector (flag 2) as some packs carry.
"""
import os
import struct
import zlib

MAGIC = 0xCED7230A
HERE = os.path.dirname(os.path.abspath(__file__))


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(value, extra_chunk=b""):
    """A 112x112 8-bit grey PNG with pixel (x, y) = (value + x) % 256."""
    w = h = 112
    raw = b"".join(b"\x00" + bytes((value + x) % 256 for x in range(w)) for _ in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra_chunk
            + png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b""))


def ir_header(label, id_=0, id2=0):
    """mxnet.recordio.pack's header: a scalar label, or flag = len(labels) floats after it."""
    if isinstance(label, (list, tuple)):
        return struct.pack("<IfQQ", len(label), 0.0, id_, id2) + struct.pack("<%df" % len(label), *label)
    return struct.pack("<IfQQ", 0, float(label), id_, id2)


def frames(data):
    """RecordIOWriter::WriteRecord: the frames of one record."""
    magic = struct.pack("<I", MAGIC)
    out = b""
    lower_align = len(data) // 4 * 4
    dptr = 0
    for i in range(0, lower_align, 4):
        if data[i:i + 4] == magic:
            out += magic + struct.pack("<I", ((1 if dptr == 0 else 2) << 29) | (i - dptr)) + data[dptr:i]
            dptr = i + 4
    tail = data[dptr:]
    out += magic + struct.pack("<I", ((3 if dptr else 0) << 29) | len(tail)) + tail
    out += b"\x00" * (-len(data) % 4)
    return out


def write(folder, records):
    os.makedirs(folder, exist_ok=True)
    rec, idx = b"", ""
    for key, data in records:
        idx += "%d\t%d\n" % (key, len(rec))
        rec += frames(data)
    with open(os.path.join(folder, "train.rec"), "wb") as f:
        f.write(rec)
    with open(os.path.join(folder, "train.idx"), "w") as f:
        f.write(idx)


def magic_chunk(record_prefix_len):
    """A private ancillary PNG chunk ('maGc', ignored by decoders) whose data holds the magic word
    twice at 4-byte-aligned offsets of the record, given the record bytes before the PNG."""
    data_at = record_prefix_len + 8 + 25 + 8  # PNG signature, IHDR chunk, this chunk's len+type
    pad = -data_at % 4
    body = b"\x01" * pad + struct.pack("<I", MAGIC) + b"\x02" * 4 + struct.pack("<I", MAGIC) + b"\x03" * 3
    return png_chunk(b"maGc", body)


def main():
    # pack: identities (keys 1-2), (3), (4-6)
    ranges = [(1, 3), (3, 4), (4, 7)]
    records = [(0, ir_header([7.0, 10.0]))]
    for ident, (a, b) in enumerate(ranges):
        for key in range(a, b):
            extra = magic_chunk(24) if key == 3 else b""
            records.append((key, ir_header(ident, id_=key) + png(10 * key, extra)))
    for i, (a, b) in enumerate(ranges):
        records.append((7 + i, ir_header([float(a), float(b)])))
    write(os.path.join(HERE, "pack"), records)
    with open(os.path.join(HERE, "pack", "property"), "w") as f:
        f.write("3,112,112\n")
    # the split record really is split
    assert frames(records[3][1]).count(struct.pack("<I", MAGIC)) == 3

    plain = [(0, ir_header(7) + png(100)), (1, ir_header(5) + png(110)),
             (2, ir_header([7.0, 0.5]) + png(120)), (3, ir_header(5) + png(130))]
    write(os.path.join(HERE, "plain"), plain)


if __name__ == "__main__":
    main()
