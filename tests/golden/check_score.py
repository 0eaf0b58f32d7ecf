"""`trident score` against the PyTorch reference: a random tiny DeepSeek-V3 is stored as F32,
BF16 and F16 safetensors; for each, Trident's per-token log-probabilities must equal the
reference's log-softmax of the same (dtype-rounded) weights."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import deepseek_v3_ref as ref  # noqa: E402
import safetensors_io  # noqa: E402


def reference_logprobs(model_dir, sequences):
    model = ref.load_model(model_dir, torch.float64)
    out = []
    for seq in sequences:
        tokens = torch.tensor([seq], dtype=torch.int64)
        mask = torch.ones_like(tokens)
        result = ref.forward(model.weights, model.cfg, tokens, mask, 0.0, 0.0)
        logp = torch.log_softmax(result.logits[0], dim=-1)
        out.append([float(logp[i, seq[i + 1]]) for i in range(len(seq) - 1)])
    return out


def main():
    trident = sys.argv[1]
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.join(tmp, "f32")
        subprocess.run([sys.executable, os.path.join(HERE, "..", "reference", "make_random_model.py"),
                        "--out", base], check=True, stdout=subprocess.DEVNULL)
        weights = safetensors_io.read(os.path.join(base, "model.safetensors"))
        config = json.load(open(os.path.join(base, "config.json")))
        vocab = config["vocab_size"]
        sequences = [list(rng.integers(0, vocab, size=n)) for n in (2, 9, 17)]
        tokens_path = os.path.join(tmp, "tokens.txt")
        with open(tokens_path, "w") as f:
            for seq in sequences:
                f.write(" ".join(str(int(t)) for t in seq) + "\n")
        for dtype in ("F32", "BF16", "F16"):
            model_dir = os.path.join(tmp, dtype.lower())
            os.makedirs(model_dir, exist_ok=True)
            safetensors_io.write(os.path.join(model_dir, "model.safetensors"), weights,
                                 {name: dtype for name in weights})
            with open(os.path.join(model_dir, "config.json"), "w") as f:
                json.dump(config, f)
            out = subprocess.run([trident, "score", "--hf-dir", model_dir, "--tokens", tokens_path],
                                 check=True, capture_output=True, text=True).stdout
            ours = json.loads(out)["logprobs"]
            expected = reference_logprobs(model_dir, [[int(t) for t in s] for s in sequences])
            assert [len(r) for r in ours] == [len(r) for r in expected], (ours, expected)
            flat_ours = np.concatenate([np.array(r) for r in ours])
            flat_ref = np.concatenate([np.array(r) for r in expected])
            err = np.linalg.norm(flat_ours - flat_ref) / np.linalg.norm(flat_ref)
            print(f"{dtype}: {len(flat_ours)} log-probs, relative error {err:.2e}")
            assert err < 1e-5, f"{dtype}: relative error {err}"
    print("trident score matches the reference for F32, BF16 and F16 weights")


if __name__ == "__main__":
    main()
