#!/usr/bin/python3
"""`trident sample-sft` end to end: a tiny model trained two steps is sampled with an external
reward (the random model never earns the rule reward), the token file is read back with the
independent parser of tests/io/check_data_command.py and checked against the summary and the
JSONL of kept texts, the best-of-k file against the keep-all file, checkpoint against HF
initialisation, two ranks against one, and `trident pretrain` trains on the result in SFT
mode. Then the refusals: an existing output, k = 0, bad sampling flags, a missing --init, a
reward command that fails on one rank of two, and a run where nothing is accepted.

usage: check_sample_sft_cli.py TRIDENT_BINARY MPIEXEC WORK_DIR
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "io"))
from check_data_command import read_token_ids  # noqa: E402

EOS = 3
# Pays 1 for a completion whose text hash is even: depends on the text only, so any rank
# split of the prompts gets the same rewards.
REWARD = """import hashlib, json, sys
for line in sys.stdin:
    c = json.loads(line)["completion"]
    print(int(hashlib.md5(c.encode()).hexdigest(), 16) % 2 == 0 and 1 or 0)
"""


def run(cmd, cwd, expect=0):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == expect, (cmd, proc.returncode, proc.stdout, proc.stderr)
    return proc


def sample(binary, work, init, output, *extra, expect=0, launcher=()):
    cmd = [*launcher, binary, "sample-sft", "--init", init, "--output", output, "--prompts", "12",
           "--samples", "4", "--max-new-tokens", "10", "--first", "100", "--seed", "5",
           "--reward-command", f"/usr/bin/python3 {work}/reward.py", "--min-reward", "1", *extra]
    return run(cmd, work, expect)


def check_run(work, output, summary_stdout, keep_all):
    summary = json.load(open(output + ".summary.json"))
    assert summary == json.loads(summary_stdout), "printed and written summaries differ"
    kept = [json.loads(l) for l in open(output + ".jsonl")]
    vocab, docs = read_token_ids(output)
    assert vocab == 256, vocab
    assert summary["prompts"] == 12 and summary["samples"] == 48, summary
    assert summary["kept"] == summary["documents"] == len(docs) == len(kept), summary
    assert summary["tokens"] == sum(len(ids) for ids, _ in docs), summary
    assert summary["trained_tokens"] == sum(sum(mask) for _, mask in docs), summary
    assert abs(summary["acceptance_rate"] - summary["accepted"] / 48) < 1e-12, summary
    assert 0 < summary["accepted"] < 48, "the reward must accept some samples, not all"
    if keep_all:
        assert summary["kept"] == summary["accepted"], summary
    else:
        assert summary["kept"] == summary["prompts_with_accepted"], summary
    for (ids, mask), k in zip(docs, kept):
        # prompt (mask 0), completion and EOS (mask 1). The random model writes any bytes; the
        # JSONL holds them as text (invalid UTF-8 replaced), the token file as they are.
        prompt = k["prompt"].encode()
        assert ids[:len(prompt)] == list(prompt) and ids[-1] == EOS, (ids, k)
        completion = bytes(ids[len(prompt):-1])
        assert k["tokens"] in (len(completion), len(completion) + 1), (ids, k)  # + a final EOS
        try:
            assert completion.decode() == k["completion"], (completion, k)
        except UnicodeDecodeError:
            assert "\ufffd" in k["completion"], (completion, k)
        assert mask == [0] * len(prompt) + [1] * (len(completion) + 1), (mask, k)
        assert 100 <= k["prompt_id"] < 112 and 0 <= k["sample"] < 4 and k["reward"] >= 1, k
    return summary, kept


def main():
    binary, mpiexec, work = sys.argv[1], sys.argv[2], sys.argv[3]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    with open(f"{work}/reward.py", "w") as f:
        f.write(REWARD)
    run([binary, "pretrain", "--config", "tiny", "--set", "train.steps=2", "--checkpoint-dir",
         f"{work}/ckpt", "--save-hf", f"{work}/hf"], work)
    ckpt = f"{work}/ckpt/step_2.h5"

    # Every accepted completion, then best-of-k; the same prompts and samples.
    out = sample(binary, work, ckpt, f"{work}/all.bin", "--keep", "0", "--jsonl",
                 f"{work}/all.bin.jsonl")
    summary_all, kept_all = check_run(work, f"{work}/all.bin", out.stdout, keep_all=True)
    out = sample(binary, work, ckpt, f"{work}/best.bin", "--jsonl", f"{work}/best.bin.jsonl")
    summary_best, kept_best = check_run(work, f"{work}/best.bin", out.stdout, keep_all=False)
    for key in ("samples", "accepted", "prompts_with_accepted", "sampled_tokens"):
        assert summary_all[key] == summary_best[key], key
    # Best-of-k: per prompt the accepted sample with the fewest tokens, then the lowest index.
    by_prompt = {}
    for k in kept_all:
        by_prompt.setdefault(k["prompt_id"], []).append(k)
    expected = [min(ks, key=lambda k: (-k["reward"], k["tokens"], k["sample"]))
                for _, ks in sorted(by_prompt.items())]
    assert kept_best == expected, (kept_best, expected)
    assert kept_all == sorted(kept_all, key=lambda k: (k["prompt_id"], -k["reward"], k["tokens"],
                                                       k["sample"])), "keep-all order"

    # The same model from its HF export, and split over two ranks: the same file.
    sample(binary, work, f"{work}/hf", f"{work}/hf.bin", "--keep", "0")
    assert open(f"{work}/hf.bin", "rb").read() == open(f"{work}/all.bin", "rb").read()
    sample(binary, work, ckpt, f"{work}/np2.bin", "--keep", "0", "--batch-prompts", "4",
           launcher=(mpiexec, "--oversubscribe", "-np", "2"))
    assert open(f"{work}/np2.bin", "rb").read() == open(f"{work}/all.bin", "rb").read()
    np2 = json.load(open(f"{work}/np2.bin.summary.json"))
    assert np2["ranks"] == 2 and np2["kept"] == summary_all["kept"], np2

    # SFT on the file.
    out = run([binary, "pretrain", "--config", "tiny", "--set", "train.mode=sft", "--set",
               f"data.train_path={work}/best.bin", "--set", "train.steps=2", "--checkpoint-dir",
               f"{work}/sft"], work)
    assert "trained 2 steps" in out.stdout + out.stderr, out.stderr

    # Refusals: one clear message, exit 2, nothing replaced.
    before = open(f"{work}/best.bin", "rb").read()
    err = sample(binary, work, ckpt, f"{work}/best.bin", expect=2).stderr
    assert "--output" in err and "already exists" in err and "--force" in err, err
    assert open(f"{work}/best.bin", "rb").read() == before
    err = sample(binary, work, ckpt, f"{work}/new.bin", "--jsonl", f"{work}/all.bin.jsonl",
                 expect=2).stderr
    assert "--jsonl" in err and "already exists" in err, err
    assert not os.path.exists(f"{work}/new.bin")
    sample(binary, work, ckpt, f"{work}/best.bin", "--keep", "0", "--force")
    assert open(f"{work}/best.bin", "rb").read() == open(f"{work}/all.bin", "rb").read()
    for flags, name in ((["--samples", "0"], "--samples"), (["--temperature", "-1"],
                        "--temperature"), (["--top-p", "1.5"], "--top-p"),
                        (["--keep", "-2"], "--keep"), (["--prompts", "0"], "--prompts"),
                        (["--digits", "10"], "--digits")):
        err = sample(binary, work, ckpt, f"{work}/bad.bin", *flags, expect=2).stderr
        assert name in err and "valid values" in err and err.count("\n") == 1, (flags, err)
    err = sample(binary, work, f"{work}/missing.h5", f"{work}/bad.bin", expect=2).stderr
    assert "--init" in err and "does not exist" in err, err
    assert not os.path.exists(f"{work}/bad.bin")
    # A reward command that fails on rank 1's block only: every rank stops with its message.
    with open(f"{work}/fail_rank1.py", "w") as f:
        f.write("import os, sys\nlines = sys.stdin.readlines()\n"
                "sys.exit(3) if os.environ.get('OMPI_COMM_WORLD_RANK') == '1' else "
                "print('1\\n' * len(lines), end='')\n")
    proc = run([mpiexec, "--oversubscribe", "-np", "2", binary, "sample-sft", "--init", ckpt,
                "--output", f"{work}/fail.bin", "--prompts", "4", "--samples", "2",
                "--max-new-tokens", "4", "--reward-command",
                f"/usr/bin/python3 {work}/fail_rank1.py"], work, expect=2)
    assert "rank 1: " in proc.stderr and "exited with status 3" in proc.stderr, proc.stderr
    assert not os.path.exists(f"{work}/fail.bin")
    # The rule reward accepts nothing from a random model: an error, no token file, a summary.
    proc = run([binary, "sample-sft", "--init", ckpt, "--output", f"{work}/rule.bin", "--prompts",
                "3", "--samples", "2", "--max-new-tokens", "6"], work, expect=2)
    assert "no completion was accepted" in proc.stderr, proc.stderr
    assert not os.path.exists(f"{work}/rule.bin")
    assert json.load(open(f"{work}/rule.bin.summary.json"))["accepted"] == 0
    print("sample-sft: ok", summary_all["accepted"], "of 48 accepted;",
          summary_best["kept"], "kept best-of-4")


if __name__ == "__main__":
    main()
