"""Exits 0 if every checkpoint named is complete, its tensors match their stored CRC-32C and
hold only finite values; otherwise prints what is wrong and exits 1. Independent of Trident.
usage: verify_checkpoint.py FILE..."""
import sys

import h5py
import numpy as np

from checkpoint_bytes import dataset_crc, datasets

bad = []
for path in sys.argv[1:]:
    try:
        with h5py.File(path, "r") as f:
            if int(f.attrs.get("complete", 0)) != 1:
                bad.append(f"{path}: not complete")
            for name, dataset in datasets(f):
                values = dataset[...]
                if int(dataset.attrs["crc32c"]) != dataset_crc(values):
                    bad.append(f"{path}: checksum mismatch in {name}")
                if not np.all(np.isfinite(values)):
                    bad.append(f"{path}: non-finite values in {name}")
    except OSError as e:
        bad.append(f"{path}: {e}")
for line in bad:
    print(line)
print(f"{len(sys.argv) - 1} checkpoint(s) checked, {len(bad)} problem(s)")
sys.exit(1 if bad or len(sys.argv) < 2 else 0)
