"""HF directory -> checkpoint -> HF directory with `trident convert` is bit-exact.
Usage: check_convert_roundtrip.py MPIEXEC TOOL TRIDENT"""
import os
import shutil
import subprocess
import sys
import tempfile

mpiexec, tool, trident = sys.argv[1], sys.argv[2], sys.argv[3]
work = tempfile.mkdtemp(prefix="trident_convert_")
try:
    subprocess.run([mpiexec, "-n", "1", tool, "hf", f"{work}/hf"], check=True, timeout=120)
    subprocess.run([trident, "convert", "--input", f"{work}/hf", "--output", f"{work}/step_0.h5"],
                   check=True, timeout=120)
    # A small shard size forces several shards and the index file.
    subprocess.run([trident, "convert", "--input", f"{work}/step_0.h5", "--output",
                    f"{work}/hf_back", "--shard-size-mb", "0.1"], check=True, timeout=120)
    shards = [n for n in os.listdir(f"{work}/hf_back") if n.endswith(".safetensors")]
    assert len(shards) > 1, shards
    assert os.path.exists(f"{work}/hf_back/model.safetensors.index.json")
    assert os.path.exists(f"{work}/hf_back/config.json")
    subprocess.run([mpiexec, "-n", "1", tool, "compare-hf", f"{work}/hf", f"{work}/hf_back"],
                   check=True, timeout=120)
    # A damaged input is refused with a message naming it.
    with open(f"{work}/bad.h5", "wb") as f:
        f.write(b"not hdf5")
    bad = subprocess.run([trident, "convert", "--input", f"{work}/bad.h5", "--output",
                          f"{work}/x"], stderr=subprocess.PIPE)
    assert bad.returncode == 2 and b"bad.h5" in bad.stderr, bad.stderr
    print("round trip HF -> h5 -> HF is bit-exact")
finally:
    shutil.rmtree(work, ignore_errors=True)
