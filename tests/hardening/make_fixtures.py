"""Builds the inputs the bad-input suite (bad_inputs.cases) points at, once per ctest run:
a tiny run's checkpoints and their damaged copies, a Hugging Face export and its damaged
variants, token files, texts and configs. Everything is made here from Trident's own outputs
and documented formats (docs/checkpoint-format.md, docs/data.md); nothing is downloaded.

usage: make_fixtures.py TRIDENT FIXTURE_DIR
"""
import json
import os
import shutil
import struct
import subprocess
import sys

import h5py
import numpy as np

from checkpoint_bytes import dataset_crc
from file_formats import safetensors_bytes, split_safetensors, token_file

TRIDENT, FIX = sys.argv[1], sys.argv[2]


def run(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([TRIDENT, *args], cwd=FIX, env=env, capture_output=True, text=True,
                          timeout=300)
    if done.returncode != 0:
        sys.exit(f"fixture command failed ({done.returncode}): trident {' '.join(args)}\n"
                 f"{done.stdout}{done.stderr}")


def write(name, data):
    path = os.path.join(FIX, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return path


def replace_once(path, old, new):
    data = open(path, "rb").read()
    assert data.count(old) >= 1, f"{old!r} not found in {path}"
    open(path, "wb").write(data.replace(old, new, 1))


# --- checkpoints --------------------------------------------------------------------------
def checkpoints():
    run("pretrain", "--config", "tiny", "--set", "train.steps=6", "--set", "checkpoint.every=2",
        "--checkpoint-dir", "run_a")
    run("pretrain", "--config", "tiny", "--set", "train.steps=2", "--set", "model.hidden_size=64",
        "--checkpoint-dir", "run_wide")
    good = os.path.join(FIX, "run_a", "step_6.h5")
    size = os.path.getsize(good)
    for name in ("truncated", "flipped_data", "flipped_config", "nan"):
        shutil.copy(good, os.path.join(FIX, f"ckpt_{name}.h5"))
    with open(os.path.join(FIX, "ckpt_truncated.h5"), "r+b") as f:
        f.truncate(size // 2)
    with open(os.path.join(FIX, "ckpt_flipped_data.h5"), "r+b") as f:
        # Inside the embedding's data (well past the superblock and object headers).
        with h5py.File(good, "r") as h:
            offset = h["weights/model.embed_tokens.weight"].id.get_offset()
        f.seek(offset + 1000)
        byte = f.read(1)
        f.seek(offset + 1000)
        f.write(bytes([byte[0] ^ 0x10]))
    # The example: one byte of the stored config, rope_theta 10000 -> 90000.
    replace_once(os.path.join(FIX, "ckpt_flipped_config.h5"), b"rope_theta: 10000",
                 b"rope_theta: 90000")
    # A diverged model whose checksums are right: only the finite check can refuse it.
    with h5py.File(os.path.join(FIX, "ckpt_nan.h5"), "r+") as h:
        d = h["weights/model.norm.weight"]
        values = d[...]
        values[0] = np.nan
        d[...] = values
        d.attrs["crc32c"] = np.uint32(dataset_crc(values))
    write("ckpt_text.h5", "this is not a checkpoint\n")
    with h5py.File(os.path.join(FIX, "ckpt_plain.h5"), "w") as h:
        h["weights/x"] = np.zeros(4, dtype=np.float32)


# --- Hugging Face directories -------------------------------------------------------------
def read_safetensors(path):
    return split_safetensors(open(path, "rb").read())


def write_safetensors(path, header, body):
    open(path, "wb").write(safetensors_bytes(header, body))


def hf_variant(name, edit=None, config=None):
    target = os.path.join(FIX, name)
    shutil.copytree(os.path.join(FIX, "hf"), target)
    shard = os.path.join(target, "model-00001-of-00001.safetensors")
    if edit:
        edit(shard)
    if config is not None:
        write(os.path.join(name, "config.json"), config)
    return target


def drop_tensor(shard):
    header, body = read_safetensors(shard)
    del header["model.norm.weight"]
    write_safetensors(shard, header, body)


def reshape_tensor(shard):
    header, body = read_safetensors(shard)
    entry = header["model.norm.weight"]
    entry["shape"] = [entry["shape"][0] // 2, 2]
    write_safetensors(shard, header, body)


def offsets_past_end(shard):
    header, body = read_safetensors(shard)
    header["model.norm.weight"]["data_offsets"][1] = len(body) + 64
    write_safetensors(shard, header, body)


def nan_weight(shard):
    header, body = read_safetensors(shard)
    begin = header["model.norm.weight"]["data_offsets"][0]
    body = body[:begin] + struct.pack("<f", float("nan")) + body[begin + 4:]
    write_safetensors(shard, header, body)


def truncate_half(shard):
    with open(shard, "r+b") as f:
        f.truncate(os.path.getsize(shard) // 2)


def huge_header(shard):
    with open(shard, "r+b") as f:
        f.write(struct.pack("<Q", 1 << 60))


def hf_dirs():
    run("convert", "--input", "run_a/step_6.h5", "--output", "hf", "--quiet")
    config = json.load(open(os.path.join(FIX, "hf", "config.json")))
    hf_variant("hf_bad_json", config="{ not json")
    hf_variant("hf_wrong_type", config=json.dumps(dict(config, hidden_size="32")))
    hf_variant("hf_llama", config=json.dumps(dict(config, model_type="llama")))
    hf_variant("hf_zero_layers", config=json.dumps(dict(config, num_hidden_layers=0)))
    os.remove(os.path.join(hf_variant("hf_no_config"), "config.json"))
    hf_variant("hf_missing_tensor", edit=drop_tensor)
    hf_variant("hf_wrong_shape", edit=reshape_tensor)
    hf_variant("hf_offsets", edit=offsets_past_end)
    hf_variant("hf_truncated", edit=truncate_half)
    hf_variant("hf_huge_header", edit=huge_header)
    hf_variant("hf_nan", edit=nan_weight)
    write("hf_bad_index/config.json", json.dumps(config))
    write("hf_bad_index/model.safetensors.index.json", '{"weight_map": {"x": "../escape"}}')


# --- token files, texts, configs ----------------------------------------------------------
def data_files():
    run("data", "--synthetic", "arithmetic", "--count", "200", "--output", "tokens_ok.bin")
    run("data", "--synthetic", "arithmetic", "--count", "200", "--sft", "--output",
        "tokens_sft.bin")
    doc = list(range(2, 60))
    write("tokens_vocab0_bad.bin", token_file([doc, doc[:20] + [300] + doc], vocab=0))
    write("tokens_big_vocab.bin", token_file([doc, doc], vocab=1000))
    write("tokens_bad_magic.bin", token_file([doc], vocab=256, magic=b"TRDTOK99"))
    write("tokens_empty.bin", token_file([], vocab=256))
    ok = open(os.path.join(FIX, "tokens_ok.bin"), "rb").read()
    write("tokens_truncated.bin", ok[:len(ok) - 13])
    write("a.txt", "The first document.\nIts second line.\n\nThe second document.\n")
    write("bad.jsonl", '{"text": "fine"}\n{"text": broken\n')
    write("missing_field.jsonl", '{"body": "no text field"}\n')
    write("nul.txt", "a NUL \0 inside\n")
    write("empty.textproto", "")
    write("comments.textproto", "# a comment\n# and another\n")
    write("syntax.textproto", "train { steps: 3\n")
    write("unknown.textproto", 'model { name: "x" }\ntrain { stepz: 3 }\n')
    write("bad_value.textproto", 'model { name: "x" }\ntrain { steps: "many" }\n')
    os.makedirs(os.path.join(FIX, "a_directory"), exist_ok=True)


if __name__ == "__main__":
    shutil.rmtree(FIX, ignore_errors=True)
    os.makedirs(FIX)
    checkpoints()
    hf_dirs()
    data_files()
    # Read by the unprivileged user of the permission cases.
    for root, dirs, files in os.walk(FIX):
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)
    print("fixtures ready in", FIX)
