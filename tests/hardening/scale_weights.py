"""Copies a checkpoint with every weight multiplied by a factor and its checksums rewritten: a
valid, finite checkpoint whose values exceed what f16 can hold.
usage: scale_weights.py IN OUT FACTOR"""
import shutil
import sys

import h5py
import numpy as np

from checkpoint_bytes import dataset_crc, datasets

source, target, factor = sys.argv[1], sys.argv[2], float(sys.argv[3])
shutil.copy(source, target)
with h5py.File(target, "r+") as f:
    for name, dataset in datasets(f):
        if name.startswith("weights/"):
            values = (dataset[...] * factor).astype(np.float32)
            dataset[...] = values
            dataset.attrs["crc32c"] = np.uint32(dataset_crc(values))
