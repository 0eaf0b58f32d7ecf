#!/usr/bin/python3
"""Independent safetensors reference built with numpy + struct (no safetensors package).

  safetensors_numpy.py write DIR   writes DIR/numpy.safetensors plus DIR/expected_<name>.f32
                                   (the values as float32, converted by numpy)
  safetensors_numpy.py check FILE  checks a file written by Trident's test (values below)
"""
import json
import struct
import sys

import numpy as np


def f16_specials():
    bits = np.array([0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x3C00, 0xC000,
                     0x3555, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x0200, 0x1234], dtype=np.uint16)
    return bits.view(np.float16)


def write(out_dir):
    rng = np.random.default_rng(1234)
    half = np.concatenate([f16_specials(),
                           (rng.standard_normal(15) * 1e-5).astype(np.float16)]).reshape(3, 10)
    f32 = rng.standard_normal((2, 3)).astype(np.float32)
    bf16_source = rng.standard_normal(7).astype(np.float32)
    bf16_bits = (bf16_source.view(np.uint32) >> 16).astype(np.uint16)  # exact after truncation
    bf16_values = (bf16_bits.astype(np.uint32) << 16).view(np.float32)
    i64 = np.array([-(2**40), -1, 0, 2**40 + 3], dtype=np.int64)
    i32 = np.array([[-7, 8], [2**31 - 1, -(2**31)]], dtype=np.int32)
    tensors = [("half", "F16", half, half.astype(np.float32)),
               ("bf16", "BF16", bf16_bits, bf16_values),
               ("float", "F32", f32, f32),
               ("i64", "I64", i64, None),
               ("i32", "I32", i32, None)]
    header, blobs, offset = {}, [], 0
    for name, dtype, array, _ in tensors:
        data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt", "source": "numpy"}
    # Deliberately no padding: data starts at an arbitrary byte, which load() must handle.
    text = json.dumps(header).encode()
    with open(f"{out_dir}/numpy.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    for name, _, array, expected in tensors:
        if expected is None:
            expected = array
            np.ascontiguousarray(expected).astype("<i8").tofile(f"{out_dir}/expected_{name}.i64")
        else:
            np.ascontiguousarray(expected).astype("<f4").tofile(f"{out_dir}/expected_{name}.f32")


def check(path):
    """The C++ test writes arange-based values; verify them with numpy's own conversions."""
    with open(path, "rb") as f:
        raw = f.read()
    (length,) = struct.unpack("<Q", raw[:8])
    assert (8 + length) % 8 == 0, "header should be padded to 8 bytes"
    header = json.loads(raw[8:8 + length])
    base = 8 + length
    assert header["__metadata__"] == {"format": "pt", "writer": "trident"}, header["__metadata__"]
    source = (np.arange(24, dtype=np.float32) - 11.5) / 7.0
    kinds = {"F32": "<f4", "F16": "<f2", "I32": "<i4", "I64": "<i8"}
    for name, want_dtype in [("a.f32", "F32"), ("b.f16", "F16"), ("c.bf16", "BF16"),
                             ("d.i32", "I32"), ("e.i64", "I64")]:
        entry = header[name]
        assert entry["dtype"] == want_dtype, (name, entry)
        begin, end = entry["data_offsets"]
        blob = raw[base + begin:base + end]
        if want_dtype == "BF16":
            got = (np.frombuffer(blob, "<u2").astype(np.uint32) << 16).view(np.float32)
            bits = source.view(np.uint32)
            # round to nearest even on the top 16 bits
            rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
            np.testing.assert_array_equal(got, rounded.astype(np.uint32).view(np.float32))
        else:
            got = np.frombuffer(blob, kinds[want_dtype])
            if want_dtype == "F32":
                np.testing.assert_array_equal(got, source)
            elif want_dtype == "F16":
                np.testing.assert_array_equal(got, source.astype(np.float16))
            else:
                np.testing.assert_array_equal(got, np.arange(24) * 1000003 - 7)
        assert list(entry["shape"]) == [4, 6], entry
    print("ok")


if __name__ == "__main__":
    {"write": write, "check": check}[sys.argv[1]](sys.argv[2])
