#!/usr/bin/python3
"""Runs `trident data` and reads what it wrote with an independent parser of the token file
layout documented in docs/data.md (header, tokens, pad to 8, offsets, optional mask).

usage: check_data_command.py TRIDENT_BINARY WORK_DIR
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys

import numpy as np


def read_token_file(path):
    raw = open(path, "rb").read()
    magic, version, dtype, flags, docs, tokens, vocab = struct.unpack_from("<8sIHHQQI", raw, 0)
    assert magic == b"TRDTOK01", magic
    assert version == 1 and dtype in (1, 2) and flags in (0, 1), (version, dtype, flags)
    assert raw[36:64] == bytes(28), "reserved bytes must be zero"
    width = 2 if dtype == 1 else 4
    ids = np.frombuffer(raw, "<u2" if dtype == 1 else "<u4", tokens, 64).astype(np.int64)
    offsets_at = 64 + (tokens * width + 7) // 8 * 8
    offsets = np.frombuffer(raw, "<u8", docs + 1, offsets_at)
    mask_at = offsets_at + (docs + 1) * 8
    mask = np.frombuffer(raw, np.uint8, tokens, mask_at) if flags & 1 else None
    assert len(raw) == mask_at + (tokens if flags & 1 else 0), "file size"
    assert offsets[0] == 0 and offsets[-1] == tokens and np.all(np.diff(offsets.astype(np.int64)) >= 0)
    out = []
    for d in range(docs):
        b, e = int(offsets[d]), int(offsets[d + 1])
        text = bytes(ids[b:e].astype(np.uint8)).decode()
        out.append((text, None if mask is None else mask[b:e].copy()))
    return vocab, out


def run(binary, *args, expect=0):
    proc = subprocess.run([binary, "data", *args], capture_output=True, text=True)
    assert proc.returncode == expect, (args, proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout + proc.stderr


def main():
    binary, work = sys.argv[1], sys.argv[2]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)

    # Synthetic SFT: prompt masked out, completion + EOS counted, answers correct.
    out = run(binary, "--synthetic", "arithmetic", "--count", "50", "--digits", "3", "--seed",
              "4", "--ops", "add,sub,mul", "--sft", "--output", f"{work}/sft.bin")
    assert "50 documents" in out, out
    vocab, docs = read_token_file(f"{work}/sft.bin")
    assert vocab == 256 and len(docs) == 50
    pattern = re.compile(r"^(\d+)([+*-])(\d+)=<think>[^<]*</think><answer>(\d+)</answer>\x03$")
    for text, mask in docs:
        m = pattern.match(text)
        assert m, repr(text)
        a, op, b, c = int(m[1]), m[2], int(m[3]), int(m[4])
        assert c == {"+": a + b, "-": a - b, "*": a * b}[op], text
        prompt_len = text.index("=") + 1
        assert not mask[:prompt_len].any() and mask[prompt_len:].all(), (text, mask)

    # Same seed, same file; the eval split shares no problem with train.
    run(binary, "--synthetic", "arithmetic", "--count", "50", "--digits", "3", "--seed", "4",
        "--ops", "add,sub,mul", "--sft", "--output", f"{work}/sft2.bin")
    assert open(f"{work}/sft.bin", "rb").read() == open(f"{work}/sft2.bin", "rb").read()
    run(binary, "--synthetic", "arithmetic", "--count", "400", "--digits", "1", "--split", "train",
        "--output", f"{work}/train.bin")
    run(binary, "--synthetic", "arithmetic", "--count", "400", "--digits", "1", "--split", "eval",
        "--output", f"{work}/eval.bin")
    prompts = lambda path: {t.split("=")[0] for t, _ in read_token_file(path)[1]}
    train, evaluation = prompts(f"{work}/train.bin"), prompts(f"{work}/eval.bin")
    assert train and evaluation and not (train & evaluation), train & evaluation
    assert read_token_file(f"{work}/train.bin")[1][0][1] is None, "pretrain data has no mask"

    # Plain text: blank lines separate documents; each ends with EOS.
    with open(f"{work}/corpus.txt", "w") as f:
        f.write("first line\nsecond line\n\n\nnext doc\n  \nlast")
    out = run(binary, "--input", f"{work}/corpus.txt", "--output", f"{work}/text.bin", "--dtype",
              "uint32")
    _, docs = read_token_file(f"{work}/text.bin")
    assert [t for t, _ in docs] == ["first line\nsecond line\x03", "next doc\x03", "last\x03"], docs

    # JSONL, pretraining and SFT fields.
    with open(f"{work}/chat.jsonl", "w") as f:
        f.write(json.dumps({"q": "2+2?", "a": "4", "body": "héllo"}) + "\n\n")
        f.write(json.dumps({"q": "hi", "a": "yo", "body": "x"}) + "\n")
    run(binary, "--input", f"{work}/chat.jsonl", "--field", "body", "--output", f"{work}/j.bin")
    assert [t for t, _ in read_token_file(f"{work}/j.bin")[1]] == ["héllo\x03", "x\x03"]
    run(binary, "--input", f"{work}/chat.jsonl", "--sft", "--prompt-field", "q",
        "--response-field", "a", "--output", f"{work}/js.bin")
    _, docs = read_token_file(f"{work}/js.bin")
    assert docs[0][0] == "2+2?4\x03" and list(docs[0][1]) == [0, 0, 0, 0, 1, 1], docs

    # User mistakes: one message, exit code 2, no output file left behind.
    assert "response" in run(binary, "--input", f"{work}/chat.jsonl", "--sft", "--output",
                             f"{work}/bad.bin", expect=2)
    assert "--synthetic 'sudoku'" in run(binary, "--synthetic", "sudoku", "--count", "1",
                                         "--output", f"{work}/bad.bin", expect=2)
    assert "digits" in run(binary, "--synthetic", "arithmetic", "--count", "1", "--digits", "12",
                           "--output", f"{work}/bad.bin", expect=2)
    assert "exactly one" in run(binary, "--output", f"{work}/bad.bin", expect=2)
    assert not os.path.exists(f"{work}/bad.bin") and not os.path.exists(f"{work}/bad.bin.tmp")
    print("ok")


if __name__ == "__main__":
    main()
