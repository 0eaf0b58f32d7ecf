"""trident pretrain with pipeline parallelism (pp 2, 1F1B, tiny model with 8 layers) under
mpirun with 2 ranks, each run a new job:

1. the held-out loss is reported before and after training and every train.eval_every steps
   (log and JSONL);
2. checkpoints every 4 steps; with step_8.h5 removed, `--resume auto` resumes from step 4 and
   the losses of steps 5..8 equal the uninterrupted run's bit for bit;
3. --save-hf writes one shard per pipeline rank and the index, and its tensors equal
   `trident convert` of the final checkpoint (a one-process export of the same weights).

usage: check_pp_pretrain.py MPIRUN TRIDENT CHECKPOINT_TOOL
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

mpirun, trident, tool = sys.argv[1], sys.argv[2], sys.argv[3]
COMMON = ["--config", "tiny", "--set", "model.num_hidden_layers=8", "--set", "train.steps=8",
          "--set", "train.global_batch=8", "--set", "train.micro_batch=2", "--set",
          "train.warmup_steps=2", "--set", "parallel.pp=2", "--set", "parallel.schedule=1f1b",
          "--set", "train.log_every=1", "--set", "train.eval_every=4", "--set",
          "checkpoint.every=4"]


def run(*args):
    command = [mpirun, "-np", "2", "--oversubscribe", trident, "pretrain", *COMMON, *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        sys.exit(f"FAILED (exit {result.returncode}): {' '.join(command)}\n"
                 f"{result.stdout}\n{result.stderr}")
    return result.stdout + result.stderr


def records(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


work = tempfile.mkdtemp(prefix="trident_pp_pretrain_")
try:
    log = run("--checkpoint-dir", f"{work}/a", "--metrics", f"{work}/a.jsonl", "--save-hf",
              f"{work}/hf")
    assert "held-out loss before training" in log, log
    assert "held-out loss after training" in log, log
    assert "step 4: held-out loss" in log, log
    full = records(f"{work}/a.jsonl")
    evals = [r for r in full if "eval_lm_loss" in r]
    assert [r["step"] for r in evals] == [4, 8], evals
    straight = {r["step"]: r["loss"] for r in full if "loss" in r}
    assert sorted(straight) == list(range(1, 9)), straight

    shutil.copytree(f"{work}/a", f"{work}/b")
    os.remove(f"{work}/b/step_8.h5")
    shutil.copy(f"{work}/a.jsonl", f"{work}/b.jsonl")
    log = run("--checkpoint-dir", f"{work}/b", "--resume", "auto", "--metrics", f"{work}/b.jsonl")
    assert "resumed from" in log and "step_4.h5" in log, log
    resumed = {r["step"]: r["loss"] for r in records(f"{work}/b.jsonl")[len(full):]
               if "loss" in r}
    assert sorted(resumed) == [5, 6, 7, 8], resumed
    for step in resumed:
        assert resumed[step] == straight[step], (step, resumed[step], straight[step])

    shards = sorted(n for n in os.listdir(f"{work}/hf") if n.endswith(".safetensors"))
    assert shards == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"], \
        shards
    assert os.path.exists(f"{work}/hf/model.safetensors.index.json")
    assert os.path.exists(f"{work}/hf/config.json")
    subprocess.run([trident, "convert", "--input", f"{work}/a/step_8.h5", "--output",
                    f"{work}/hf_convert"], check=True, timeout=120, capture_output=True)
    subprocess.run([mpirun, "-n", "1", tool, "compare-hf", f"{work}/hf_convert", f"{work}/hf"],
                   check=True, timeout=120)
    print("pp2 pretrain: held-out loss reported, resume bit-exact, sharded HF export equals "
          "the converted checkpoint")
finally:
    shutil.rmtree(work, ignore_errors=True)
