"""Scores token sequences under Hugging Face weights with the PyTorch reference, as `trident score`
does: eager PyTorch, CPU, fp32, inference mode, the sequences of one length in one batch, the
multi-token-prediction modules skipped (scoring needs the main head only). The baseline that
`trident bench score` times as a whole process, start-up and loading included.

    score_reference.py --hf-dir DIR --tokens FILE --threads T --output OUT.json
OUT.json: {"logprobs": [[...], ...]}, log p(t_i | t_<i) for i = 1 … n−1 of each line."""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_v3_ref as ref  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hf-dir", required=True)
    parser.add_argument("--tokens", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    weights, cfg = ref.load_for_inference(args.hf_dir, args.threads)
    sequences = ref.read_token_lines(args.tokens)

    logprobs = [[] for _ in sequences]
    with torch.inference_mode():
        for length, indices in ref.indices_by_length(sequences).items():
            if length < 2:
                continue
            tokens = torch.tensor([sequences[i] for i in indices], dtype=torch.int64)
            result = ref.forward(weights, cfg, tokens, torch.ones_like(tokens), 0.0, 0.0)
            logp = torch.log_softmax(result.logits, dim=-1)
            picked = logp.gather(-1, tokens[:, 1:, None])[..., 0]
            for row, i in enumerate(indices):
                logprobs[i] = picked[row].tolist()
    with open(args.output, "w") as f:
        json.dump({"logprobs": logprobs}, f)


if __name__ == "__main__":
    main()
