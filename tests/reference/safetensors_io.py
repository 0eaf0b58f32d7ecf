"""A small safetensors reader and writer built on numpy alone.

File layout: an 8-byte little-endian header length n, then n bytes of JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, optional "__metadata__"}, then the
raw little-endian tensor data; offsets are relative to the first byte after the header.

numpy has no bfloat16, so BF16 tensors are widened to float32 on reading and rounded to nearest
(ties to even) on writing when the caller asks for BF16.
"""

import json
import struct

import numpy as np

# safetensors dtype name -> numpy dtype of the stored bytes (BF16 is stored as raw uint16).
_STORED = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "U8": np.dtype("u1"),
}

# numpy dtype -> safetensors dtype name used when the caller does not choose one.
_DEFAULT_NAME = {
    np.dtype("float64"): "F64",
    np.dtype("float32"): "F32",
    np.dtype("float16"): "F16",
    np.dtype("int64"): "I64",
    np.dtype("int32"): "I32",
    np.dtype("uint8"): "U8",
}


def bf16_bits_to_float32(bits):
    """Widens raw bfloat16 bits (uint16) to float32 exactly."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def float32_to_bf16_bits(values):
    """Rounds float32 to bfloat16 bits, to nearest with ties to even; NaN stays NaN."""
    u = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(values), np.uint16(0x7FC0), rounded)


def read_header(path):
    """Returns (header dict without __metadata__, byte offset of the data section)."""
    with open(path, "rb") as f:
        raw_len = f.read(8)
        if len(raw_len) != 8:
            raise ValueError(f"{path}: too short to be a safetensors file")
        (header_len,) = struct.unpack("<Q", raw_len)
        header = json.loads(f.read(header_len).decode("utf-8"))
    header.pop("__metadata__", None)
    return header, 8 + header_len


def read(path):
    """Reads every tensor of a safetensors file into a dict name -> numpy array.

    BF16 comes back as float32; the other dtypes keep their own numpy dtype.
    """
    header, data_start = read_header(path)
    with open(path, "rb") as f:
        f.seek(data_start)
        data = f.read()
    tensors = {}
    for name, info in header.items():
        dtype_name = info["dtype"]
        if dtype_name not in _STORED:
            raise ValueError(f"{path}: tensor {name} has dtype {dtype_name}; "
                             f"supported: {sorted(_STORED)}")
        stored = _STORED[dtype_name]
        shape = tuple(int(d) for d in info["shape"])
        begin, end = (int(o) for o in info["data_offsets"])
        count = int(np.prod(shape, dtype=np.int64))
        if end - begin != count * stored.itemsize or end > len(data):
            raise ValueError(f"{path}: tensor {name} has data_offsets {begin}..{end} that do not "
                             f"fit shape {list(shape)} of {dtype_name}")
        array = np.frombuffer(data, dtype=stored, count=count, offset=begin).reshape(shape)
        if dtype_name == "BF16":
            array = bf16_bits_to_float32(array)
        tensors[name] = np.array(array)  # own, writable copy
    return tensors


def write(path, tensors, dtypes=None):
    """Writes a dict name -> numpy array.

    dtypes optionally maps a name to the safetensors dtype to store it as (for example "BF16");
    otherwise the array's own dtype decides. Tensors are laid out in name order.
    """
    dtypes = dtypes or {}
    header = {"__metadata__": {"format": "pt"}}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        array = np.asarray(tensors[name])
        dtype_name = dtypes.get(name) or _DEFAULT_NAME.get(array.dtype)
        if dtype_name is None:
            raise ValueError(f"tensor {name}: numpy dtype {array.dtype} has no safetensors name")
        if dtype_name == "BF16":
            payload = float32_to_bf16_bits(array.astype(np.float32))
        else:
            payload = np.ascontiguousarray(array, dtype=_STORED[dtype_name])
        raw = payload.tobytes()
        header[name] = {"dtype": dtype_name, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)  # keep the data section 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for raw in chunks:
            f.write(raw)
