"""trident grpo under tensor parallelism, end to end through mpirun: a pretraining checkpoint
written under tp = 2 initialises GRPO (`--init step_N.h5`) on one rank, on tp = 2 (2 ranks) and
on dp2·tp2·ep2 (4 ranks); each run writes its checkpoints and an HF export. The sharded runs
must match the one-rank run: the same rewards and accuracy every step (identical rollouts),
loss and gradient norm close, held-out evaluation the same, and the checkpoint and exported
weights equal tensor by tensor (global names and shapes, written collectively).

With LAYOUTS = pp the same checks run pipeline layouts instead: pp = 2 (2 ranks), pp2·dp2·ep2
and pp2·tp2·ep2 (4 ranks each); with LAYOUTS = schedules, pp = 2 (2 ranks) under each of the four
schedules (1f1b, interleaved with 2 chunks per rank, zb-h1, dualpipev).

usage: check_grpo_sharded_cli.py TRIDENT MPIEXEC [tp | pp | schedules]
"""
import json
import os
import struct
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import cli_runs  # noqa: E402
from cli_runs import mpi  # noqa: E402

GRPO = ["--config", "tiny", "--set", "grpo.prompts_per_step=2", "--set", "grpo.group_size=2",
        "--set", "grpo.max_new_tokens=6", "--set", "grpo.eval_prompts=2", "--set",
        "grpo.steps=2", "--set", "grpo.lr=1e-3", "--set", "grpo.beta=0.04", "--set",
        "grpo.temperature=1.5"]
LAYOUT_SETS = {
    "tp": {"one": (1, []),
           "tp2": (2, ["--set", "parallel.dp=1", "--set", "parallel.tp=2"]),
           "dp2tp2ep2": (4, ["--set", "parallel.dp=2", "--set", "parallel.tp=2", "--set",
                             "parallel.ep=2"])},
    "pp": {"one": (1, []),
           "pp2": (2, ["--set", "parallel.dp=1", "--set", "parallel.pp=2"]),
           "pp2dp2ep2": (4, ["--set", "parallel.dp=2", "--set", "parallel.pp=2", "--set",
                             "parallel.ep=2"]),
           "pp2tp2ep2": (4, ["--set", "parallel.dp=1", "--set", "parallel.pp=2", "--set",
                             "parallel.tp=2", "--set", "parallel.ep=2"])},
    "schedules": {"one": (1, []),
                  **{f"pp2_{name}": (2, ["--set", "parallel.dp=1", "--set", "parallel.pp=2",
                                         "--set", f"parallel.schedule={name}", "--set",
                                         f"parallel.virtual_stages={2 if name == 'interleaved' else 1}"])
                     for name in ("1f1b", "interleaved", "zb-h1", "dualpipev")}}}


def run(command):
    result = cli_runs.run(command)
    return result.stdout + result.stderr


def read_safetensors(directory):
    tensors = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".safetensors"):
            continue
        with open(os.path.join(directory, name), "rb") as f:
            size = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(size))
            data = f.read()
        for key, info in header.items():
            if key == "__metadata__":
                continue
            assert info["dtype"] == "F32", info["dtype"]
            begin, end = info["data_offsets"]
            tensors[key] = np.frombuffer(data[begin:end], dtype=np.float32).reshape(info["shape"])
    return tensors


def relative(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def main():
    trident, mpiexec = sys.argv[1], sys.argv[2]
    kind_name = sys.argv[3] if len(sys.argv) > 3 else "tp"
    layouts = LAYOUT_SETS[kind_name]
    sharded = [name for name in layouts if name != "one"]
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        pre = os.path.join(tmp, "pre")
        run(mpi(mpiexec, 2, [trident, "pretrain", "--config", "tiny", "--set", "train.steps=2",
                             "--set", "train.global_batch=4", "--set", "train.micro_batch=2",
                             "--set", "parallel.dp=1", "--set", "parallel.tp=2",
                             "--checkpoint-dir", pre]))
        source = os.path.join(pre, "step_2.h5")
        # Rewards that differ within a group (the rule reward of an untrained model is 0 for
        # every completion), so the advantages and the gradient are not zero.
        reward = os.path.join(tmp, "reward.py")
        with open(reward, "w") as f:
            f.write("import sys, json\nfor l in sys.stdin:\n"
                    "    print(sum(map(ord, json.loads(l)['completion'])) % 5)\n")
        records, weights, exported = {}, {}, {}
        for name, (ranks, layout) in layouts.items():
            out = os.path.join(tmp, name)
            log = run(mpi(mpiexec, ranks,
                          [trident, "grpo", *GRPO, *layout, "--init", source, "--set",
                           f"grpo.reward_command=/usr/bin/python3 {reward}",
                           "--checkpoint-dir", out + "-ckpt", "--metrics", out + ".jsonl",
                           "--save-hf", out + "-hf"]))
            if f"policy initialised from checkpoint {source}" not in log:
                failures.append(f"{name}: did not report initialising from {source}")
            with open(out + ".jsonl") as f:
                records[name] = [json.loads(line) for line in f]
            with h5py.File(os.path.join(out + "-ckpt", "step_2.h5"), "r") as h:
                weights[name] = {k: h["weights"][k][()] for k in h["weights"].keys()}
            exported[name] = read_safetensors(out + "-hf")
            if any(n.startswith(".") for n in os.listdir(out + "-hf")):
                failures.append(f"{name}: scratch files left in the HF export")
        one = records["one"]
        for name in sharded:
            mine = records[name]
            if len(mine) != len(one):
                failures.append(f"{name}: {len(mine)} JSONL records, one rank wrote {len(one)}")
                continue
            for a, b in zip(mine, one):
                for key in ("reward", "accuracy", "format_rate", "completion_length",
                            "eval_accuracy", "eval_format_rate"):
                    if key in b and a.get(key) != b[key]:
                        failures.append(f"{name}: {key} {a.get(key)} vs one rank {b[key]}")
                for key in ("loss", "grad_norm"):
                    if key in b and abs(a[key] - b[key]) > 1e-4 * max(abs(b[key]), 1e-6):
                        failures.append(f"{name}: {key} {a[key]} vs one rank {b[key]}")
            for kind, tensors in (("checkpoint", weights), ("HF export", exported)):
                if sorted(tensors[name]) != sorted(tensors["one"]):
                    failures.append(f"{name}: the {kind} holds other tensors than one rank's")
                    continue
                worst = max((relative(tensors[name][k], tensors["one"][k]), k)
                            for k in tensors["one"])
                if worst[0] > 1e-4:
                    failures.append(f"{name}: {kind} tensor {worst[1]} differs by {worst[0]:.2e}")
        # --init-hf under the 2-rank layout: each rank reads its slices; with lr = 0 the
        # checkpoint is the exported one-rank policy exactly.
        hf_init = os.path.join(tmp, "hf-init")
        log = run(mpi(mpiexec, 2, [trident, "grpo", *GRPO, *layouts[sharded[0]][1], "--set",
                                   "grpo.steps=1", "--set", "grpo.lr=0", "--init-hf",
                                   os.path.join(tmp, "one-hf"), "--checkpoint-dir", hf_init]))
        with h5py.File(os.path.join(hf_init, "step_1.h5"), "r") as h:
            common = [k for k in exported["one"] if k in h["weights"]]
            if len(common) != len(h["weights"].keys()):
                failures.append(f"--init-hf under {sharded[0]}: checkpoint tensors missing from "
                                "the HF file")
            for k in common:
                if not np.array_equal(h["weights"][k][()], exported["one"][k]):
                    failures.append(f"--init-hf under {sharded[0]}: {k} differs from the HF file")
        if max(r.get("grad_norm", 0.0) for r in one) < 1e-3:
            failures.append("the one-rank gradient is too small for the comparison to mean much")
        # The policy moved, or equal weights would prove nothing.
        with h5py.File(source, "r") as h:
            start = h["weights"]["lm_head.weight"][()]
        if relative(weights["one"]["lm_head.weight"], start) < 1e-5:
            failures.append("GRPO did not move lm_head")
    if failures:
        sys.exit("FAILED:\n" + "\n".join(failures))
    print(f"trident grpo under {' and '.join(sharded)} matches one rank: OK")


if __name__ == "__main__":
    main()
