"""Checkpoint checksums from Python (h5py), independent of Trident's reader: the CRC-32C of a
dataset's little-endian fp32 bytes, as docs/checkpoint-format.md defines it."""
import numpy as np

_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _TABLE.append(_c)


def crc32c(data):
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def dataset_crc(values):
    return crc32c(np.ascontiguousarray(values, dtype="<f4").tobytes())


def datasets(h5file):
    """(path, dataset) of every tensor a checkpoint holds."""
    found = []
    for group in ("weights", "optimizer/exp_avg", "optimizer/exp_avg_sq"):
        if group in h5file:
            for name, dataset in h5file[group].items():
                found.append((f"{group}/{name}", dataset))
    return found
