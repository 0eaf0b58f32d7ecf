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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tiny_hf_tokenizer  # noqa: E402


def read_token_ids(path):
    """(vocab, [(ids, mask or None)]) of a token file, every layout rule checked."""
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
    return vocab, [(list(ids[offsets[d]:offsets[d + 1]]),
                    None if mask is None else list(mask[offsets[d]:offsets[d + 1]]))
                   for d in range(docs)]


def read_token_file(path):
    """(vocab, [(text, mask or None)]) of a byte-tokenizer token file."""
    vocab, docs = read_token_ids(path)
    return vocab, [(bytes(np.array(ids, dtype=np.uint8)).decode(),
                    None if mask is None else np.array(mask, dtype=np.uint8))
                   for ids, mask in docs]


def run(binary, *args, expect=0):
    proc = subprocess.run([binary, "data", *args], capture_output=True, text=True)
    assert proc.returncode == expect, (args, proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout + proc.stderr


def encode(binary, tokenizer, text):
    proc = subprocess.run([binary, "tokenize", "--tokenizer", tokenizer], input=text.encode(),
                          capture_output=True, check=True)
    return json.loads(proc.stdout)


def check_hf_tokenizer_data(binary, work):
    """Text, JSONL and chat JSONL through a Hugging Face tokenizer; bad records; refusals."""
    tokenizer, added = tiny_hf_tokenizer.write(os.path.join(work, "tok"))
    bos, eos = added["<｜begin▁of▁sentence｜>"], added["<｜end▁of▁sentence｜>"]
    user, assistant = added["<｜User｜>"], added["<｜Assistant｜>"]

    # Plain text: BOS (add_bos_token) + the ids `trident tokenize` gives + EOS per document.
    with open(f"{work}/hf.txt", "w") as f:
        f.write("the theme in 12345\r\nline two\n\nsecond document")
    out = run(binary, "--input", f"{work}/hf.txt", "--tokenizer", tokenizer, "--output",
              f"{work}/hf.bin")
    assert "2 documents" in out and "0 bad records" in out and "tokens/s" in out, out
    vocab, docs = read_token_ids(f"{work}/hf.bin")
    assert vocab == 256 + 4 + 4, vocab
    assert [d for d, _ in docs] == [
        [bos] + encode(binary, tokenizer, "the theme in 12345\r\nline two") + [eos],
        [bos] + encode(binary, tokenizer, "second document") + [eos]], docs
    assert docs[0][0][1] == 256 + 1, "merges apply (th + e)"

    # JSONL with bad records: reported by line number, counted, left out.
    lines = [json.dumps({"text": "the first"}), "{not json", json.dumps({"body": "no text"}),
             json.dumps({"text": 7}), "", json.dumps({"text": "the last"})]
    with open(f"{work}/bad.jsonl", "w") as f:
        f.write("\n".join(lines) + "\n")
    out = run(binary, "--input", f"{work}/bad.jsonl", "--tokenizer", tokenizer, "--output",
              f"{work}/good.bin", "--bad-records", f"{work}/bad.records.jsonl")
    assert "2 documents" in out and "3 bad records left out" in out, out
    for line, words in ((2, "not valid JSON"), (3, 'no string field "text"'),
                        (4, 'no string field "text"')):
        assert re.search(rf"line {line}: .*{re.escape(words)}", out), (line, out)
    listed = [json.loads(l) for l in open(f"{work}/bad.records.jsonl")]
    assert [r["line"] for r in listed] == [2, 3, 4] and all(r["dropped"] for r in listed), listed
    _, docs = read_token_ids(f"{work}/good.bin")
    assert len(docs) == 2
    assert "line 2" in run(binary, "--input", f"{work}/bad.jsonl", "--tokenizer", tokenizer,
                           "--output", f"{work}/strict.bin", "--strict", expect=2)
    assert not os.path.exists(f"{work}/strict.bin")

    # Invalid UTF-8 is repaired (U+FFFD), kept, and reported.
    with open(f"{work}/latin1.txt", "wb") as f:
        f.write(b"caf\xe9 au lait")
    out = run(binary, "--input", f"{work}/latin1.txt", "--tokenizer", tokenizer, "--output",
              f"{work}/latin1.bin")
    assert "1 with invalid UTF-8 repaired" in out and "record kept" in out, out
    _, docs = read_token_ids(f"{work}/latin1.bin")
    assert docs[0][0][1:-1] == encode(binary, tokenizer, "caf\ufffd au lait")

    # Chat: DeepSeek's template; the mask covers assistant content and its EOS only.
    chats = [
        {"messages": [{"role": "system", "content": "be brief"},
                      {"role": "user", "content": "the 2+2"}, {"role": "assistant", "content": "4"},
                      {"role": "user", "content": "in"}, {"role": "assistant", "content": "the"}]},
        {"messages": [{"role": "tool", "content": "x"}]},
        {"messages": [{"role": "user", "content": "only a question"}]},
        {"messages": "not a list"},
    ]
    with open(f"{work}/chat.jsonl", "w") as f:
        f.write("\n".join(json.dumps(c) for c in chats) + "\n")
    out = run(binary, "--input", f"{work}/chat.jsonl", "--chat", "--tokenizer", tokenizer,
              "--output", f"{work}/chat.bin")
    assert "1 documents" in out and "3 bad records" in out, out
    assert re.search(r'line 2: .*role "tool"', out) and re.search(r"line 3: .*no assistant", out)
    assert re.search(r'line 4: .*no list field "messages"', out), out
    _, docs = read_token_ids(f"{work}/chat.bin")
    ids, mask = docs[0]
    e = lambda text: encode(binary, tokenizer, text)  # noqa: E731
    expected = ([bos] + e("be brief") + [user] + e("the 2+2") + [assistant] + e("4") + [eos] +
                [user] + e("in") + [assistant] + e("the") + [eos])
    assert ids == expected, (ids, expected)
    trained = [t for t, m in zip(ids, mask) if m]
    assert trained == e("4") + [eos] + e("the") + [eos], (ids, mask)
    assert "chat template needs" in run(binary, "--input", f"{work}/chat.jsonl", "--chat",
                                        "--output", f"{work}/nochat.bin", expect=2)

    # The file trains as SFT data as it is (the sampler takes the mask from it): a few steps of
    # the tiny model as a DeepSeek-V2 with its balance losses on.
    v2 = ["model.model_type=deepseek_v2", "model.scoring_func=softmax",
          "model.topk_method=group_limited_greedy", "model.q_lora_rank=0",
          "model.n_shared_experts=2", "model.num_nextn_predict_layers=0",
          "model.device_balance_weight=0.5", "model.comm_balance_weight=0.25",
          "train.aux_loss_alpha=0.01", f"model.vocab_size={vocab}",
          f"data.train_path={work}/chat.bin", "train.mode=sft", "train.steps=3",
          "train.global_batch=2", "train.micro_batch=1", "train.seq_len=32", "checkpoint.dir="]
    sets = [arg for assignment in v2 for arg in ("--set", assignment)]
    proc = subprocess.run([binary, "pretrain", "--config", "tiny", *sets, "--metrics",
                           f"{work}/sft.jsonl"], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    steps = [json.loads(line) for line in open(f"{work}/sft.jsonl") if '"loss"' in line]
    assert len(steps) == 3 and all(np.isfinite(r["loss"]) and r["balance_loss"] > 0
                                   for r in steps), steps

    # The output never replaces the input.
    before = open(f"{work}/hf.txt", "rb").read()
    assert "would overwrite the input" in run(binary, "--input", f"{work}/hf.txt", "--output",
                                              f"{work}/./hf.txt", expect=2)
    shutil.copy(f"{work}/hf.txt", f"{work}/out.bin.tmp")  # the writer's temporary name
    assert "would overwrite the input" in run(binary, "--input", f"{work}/out.bin.tmp", "--output",
                                              f"{work}/out.bin", expect=2)
    assert open(f"{work}/hf.txt", "rb").read() == before
    assert open(f"{work}/out.bin.tmp", "rb").read() == before

    # Ids above 65535 need uint32: chosen by default, refused for an explicit uint16.
    config = json.load(open(tokenizer))
    config["added_tokens"][-1]["id"] = 70000
    os.makedirs(f"{work}/big", exist_ok=True)
    with open(f"{work}/big/tokenizer.json", "w") as f:
        json.dump(config, f)
    big = f"{work}/big/tokenizer.json"
    assert "uint32" in run(binary, "--input", f"{work}/hf.txt", "--tokenizer", big, "--output",
                           f"{work}/big.bin")
    assert "--dtype uint16 holds ids below 65536" in run(
        binary, "--input", f"{work}/hf.txt", "--tokenizer", big, "--output", f"{work}/big16.bin",
        "--dtype", "uint16", expect=2)


def peak_rss_mib(binary, *args):
    """Peak resident memory of one `trident data` run (a fresh child, so its own peak)."""
    code = ("import resource, subprocess, sys; "
            "subprocess.run(sys.argv[1:], check=True, capture_output=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, binary, "data", *args], check=True,
                         capture_output=True, text=True).stdout
    return int(out) / 1024


def check_constant_memory(binary, work):
    """SFT JSONL of 2 MB and of 40 MB: the writer keeps neither offsets nor masks in memory,
    so the peak resident memory does not grow with the input."""
    if "ASAN_OPTIONS" in os.environ:
        # AddressSanitizer's quarantine holds freed blocks (up to 256 MiB), so resident memory
        # grows with what was ever allocated: the figure means nothing in that build.
        print("constant memory: not measured in the AddressSanitizer build")
        return
    record = json.dumps({"prompt": "What is the answer? " * 3, "response": "It is 42. " * 6})
    peaks = []
    for count in (6000, 120000):
        path = f"{work}/sft_{count}.jsonl"
        with open(path, "w") as f:
            f.write((record + "\n") * count)
        peaks.append(peak_rss_mib(binary, "--input", path, "--sft", "--output", f"{work}/m.bin"))
        os.remove(path)
    print(f"peak RSS {peaks[0]:.1f} MiB for 2 MB, {peaks[1]:.1f} MiB for 40 MB of SFT JSONL")
    assert peaks[1] - peaks[0] < 8, peaks


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
    check_hf_tokenizer_data(binary, work)
    check_constant_memory(binary, work)
    print("ok")


if __name__ == "__main__":
    main()
