"""Times training steps of the PyTorch reference (eager, CPU, fp32) on a model directory and a
batch written by `trident bench step`, with a given number of threads. Prints one JSON line:
{"step_seconds": mean seconds per step, "steps": N, "threads": T, "torch": version}."""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_v3_ref as ref  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--batch", required=True)
    parser.add_argument("--train-json", required=True)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with open(args.train_json) as f:
        train = ref.TrainConfig.from_json(json.load(f))
    model = ref.load_model(args.model, torch.float32)
    batch = ref.read_batches(args.batch, 0)[0]
    ref.train_steps(model.weights, model.cfg, [batch] * args.warmup, train)
    start = time.perf_counter()
    ref.train_steps(model.weights, model.cfg, [batch] * args.steps, train)
    seconds = (time.perf_counter() - start) / args.steps
    print(json.dumps({"step_seconds": seconds, "steps": args.steps, "threads": args.threads,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
