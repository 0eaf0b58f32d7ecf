"""`trident score` against the PyTorch reference: a random tiny DeepSeek-V3 is stored as F32,
BF16 and F16 safetensors, and two random tiny DeepSeek-V2s (softmax routing, group-limited and
greedy top-k, plain q_proj, 2 shared experts, no MTP; V2's Hugging Face config.json and weight
names) as F32 and BF16; for each, Trident's per-token log-probabilities must equal the
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

# Top-3 of 8 experts in 4 groups of which 2 are kept: more experts than kept groups, so the group
# limit changes the choice.
V2 = {"architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2",
      "scoring_func": "softmax", "q_lora_rank": None, "n_shared_experts": 2,
      "num_experts_per_tok": 3, "norm_topk_prob": False, "routed_scaling_factor": 1.5,
      "num_nextn_predict_layers": None}
MODELS = [
    ("deepseek-v3", {}, ("F32", "BF16", "F16")),
    ("deepseek-v2 group-limited", dict(V2, topk_method="group_limited_greedy"), ("F32", "BF16")),
    ("deepseek-v2 greedy", dict(V2, topk_method="greedy", n_group=1, topk_group=1), ("F32",)),
]


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


def check_model(trident, tmp, label, changes, dtypes, rng):
    base = os.path.join(tmp, label.replace(" ", "_"), "f32")
    sets = [f"--set={key}={json.dumps(value)}" for key, value in changes.items()]
    subprocess.run([sys.executable, os.path.join(HERE, "..", "reference", "make_random_model.py"),
                    "--out", base] + sets, check=True, stdout=subprocess.DEVNULL)
    weights = safetensors_io.read(os.path.join(base, "model.safetensors"))
    config = json.load(open(os.path.join(base, "config.json")))
    if changes.get("model_type") == "deepseek_v2":
        assert not any("e_score_correction_bias" in n for n in weights)
        assert any(n.endswith("self_attn.q_proj.weight") for n in weights)
    vocab = config["vocab_size"]
    # Two pairs of equal lengths: trident score runs each pair as one batch, the reference one by
    # one.
    sequences = [list(rng.integers(0, vocab, size=n)) for n in (2, 9, 17, 9, 17)]
    tokens_path = os.path.join(tmp, "tokens.txt")
    with open(tokens_path, "w") as f:
        for seq in sequences:
            f.write(" ".join(str(int(t)) for t in seq) + "\n")
    for dtype in dtypes:
        model_dir = os.path.join(os.path.dirname(base), dtype.lower())
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
        print(f"{label} {dtype}: {len(flat_ours)} log-probs, relative error {err:.2e}")
        assert err < 1e-5, f"{label} {dtype}: relative error {err}"


def main():
    trident = sys.argv[1]
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        for label, changes, dtypes in MODELS:
            check_model(trident, tmp, label, changes, dtypes, rng)
    print("trident score matches the reference for DeepSeek-V3 and DeepSeek-V2 weights")


if __name__ == "__main__":
    main()
