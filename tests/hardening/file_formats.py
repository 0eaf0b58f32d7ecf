"""Trident's token files and Hugging Face safetensors as bytes, written from their documented
layouts (runtime/io/token_file.h, runtime/io/safetensors.h) independently of the C++ writers:
the bad-input fixtures and the fuzz seeds (fuzz/make_seeds.py) are made with them."""
import json
import struct


def token_file(docs, vocab=256, dtype=1, mask=None, magic=b"TRDTOK01"):
    """A token file of `docs` (lists of ids): dtype 1 = uint16, 2 = uint32; `mask` (one byte
    per token) adds the loss-mask section; `magic` other than TRDTOK01 makes a bad file."""
    width = 2 if dtype == 1 else 4
    tokens = [t for doc in docs for t in doc]
    body = b"".join(struct.pack("<H" if width == 2 else "<I", t) for t in tokens)
    body += b"\0" * (-len(body) % 8)
    offsets = [0]
    for doc in docs:
        offsets.append(offsets[-1] + len(doc))
    body += struct.pack(f"<{len(offsets)}Q", *offsets)
    flags = 0
    if mask is not None:
        body += bytes(mask)
        flags = 1
    header = magic + struct.pack("<IHHQQI", 1, dtype, flags, len(docs), len(tokens), vocab)
    return header + b"\0" * 28 + body


def safetensors_bytes(header, body):
    """A safetensors file: the 8-byte length, the JSON `header` padded to 8 bytes, `body`."""
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + body


def split_safetensors(data):
    """(header dict, body bytes) of a safetensors file's bytes."""
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + n]), data[8 + n:]
