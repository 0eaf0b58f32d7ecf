"""Reads a Trident checkpoint with h5py alone: names, global shapes, attributes, checksums.
Usage: check_h5py.py MPIEXEC TOOL"""
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np


def crc32c(data: bytes) -> int:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    crc = 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


mpiexec, tool = sys.argv[1], sys.argv[2]
work = tempfile.mkdtemp(prefix="trident_ckpt_h5py_")
try:
    subprocess.run([mpiexec, "-n", "2", "--oversubscribe", tool, "sample", work], check=True,
                   timeout=120)
    with h5py.File(f"{work}/step_5.h5", "r") as f:
        attrs = f.attrs
        assert attrs["format"] == "trident-checkpoint", attrs["format"]
        assert attrs["format_version"] == 3
        # The metadata checksum, recomputed as docs/checkpoint-format.md defines it.
        covered = b""
        for name in ("format_version", "format", "step", "seed", "data_position", "rng_state",
                     "config", "layout_pp", "layout_dp", "layout_tp", "layout_ep", "layout_etp",
                     "layout_zero1", "has_optimizer", "run_id", "trainer_state"):
            value = attrs[name]
            if isinstance(value, str):
                raw = value.encode()
            else:
                raw = np.array(value, dtype="<u8" if name == "seed" else "<i8").tobytes()
            covered += name.encode() + b"\0" + np.array(len(raw), dtype="<u8").tobytes() + raw
        assert crc32c(covered) == int(attrs["metadata_crc32c"]), "metadata_crc32c"
        assert attrs["step"] == 5 and attrs["data_position"] == 6 and attrs["seed"] == 1234
        assert attrs["layout_tp"] == 2 and attrs["layout_ep"] == 2 and attrs["layout_pp"] == 1
        assert attrs["has_optimizer"] == 1 and attrs["complete"] == 1
        config = attrs["config"]
        assert "hidden_size: 32" in config, config[:200]
        weights = f["weights"]
        assert weights["model.embed_tokens.weight"].shape == (256, 32)
        assert weights["model.embed_tokens.weight"].dtype == np.float32
        assert weights["model.norm.weight"].shape == (32,)
        assert "model.layers.3.mlp.experts.7.down_proj.weight" in weights
        # Column-split weights are whole again: no rows of zeros left by a missing writer.
        q = weights["model.layers.0.self_attn.q_b_proj.weight"][...]
        assert np.all(np.abs(q).sum(axis=1) > 0)
        assert np.all(weights["model.norm.weight"][...] == 1.0)
        checked = 0
        for group in ("weights", "optimizer/exp_avg", "optimizer/exp_avg_sq"):
            for name, dataset in f[group].items():
                data = dataset[...].astype("<f4").tobytes()
                assert crc32c(data) == int(dataset.attrs["crc32c"]), f"{group}/{name}"
                checked += 1
        assert set(f["optimizer/exp_avg"].keys()) <= set(weights.keys())
        assert "model.layers.3.mlp.gate.e_score_correction_bias" in weights
        assert "model.layers.3.mlp.gate.e_score_correction_bias" not in f["optimizer/exp_avg"]
    print(f"h5py: {checked} datasets, names, shapes, attributes and checksums agree")
finally:
    shutil.rmtree(work, ignore_errors=True)
