#!/usr/bin/python3
"""Writes a random DeepSeek-V3 model directory (config.json + model.safetensors) and a batch.

The weights are random but not plain: norm weights are 1 + noise and router biases are small
noise, so a reader that ignores either is caught. The checkpoint also stores the MTP copies of
the embedding and head, as published checkpoints do.

  make_random_model.py --out DIR [--batch BATCH.safetensors] [--steps N] [--batch-size B]
                       [--seq-len S] [--seed N] [--set key=json_value ...]
"""

import argparse
import json
import os

import numpy as np

import deepseek_v3_ref as ref
import safetensors_io

# The small configuration the reference tests use.
TINY_CONFIG = {
    "architectures": ["DeepseekV3ForCausalLM"],
    "model_type": "deepseek_v3",
    "vocab_size": 256,
    "hidden_size": 32,
    "intermediate_size": 48,
    "moe_intermediate_size": 16,
    "num_hidden_layers": 4,
    "first_k_dense_replace": 2,
    "moe_layer_freq": 1,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "q_lora_rank": 16,
    "kv_lora_rank": 16,
    "qk_nope_head_dim": 8,
    "qk_rope_head_dim": 4,
    "v_head_dim": 8,
    "n_routed_experts": 8,
    "n_shared_experts": 1,
    "num_experts_per_tok": 2,
    "n_group": 4,
    "topk_group": 2,
    "routed_scaling_factor": 2.5,
    "scoring_func": "sigmoid",
    "topk_method": "noaux_tc",
    "norm_topk_prob": True,
    "hidden_act": "silu",
    "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0,
    "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16,
                     "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
    "max_position_embeddings": 64,
    "num_nextn_predict_layers": 1,
    "initializer_range": 0.02,
    "tie_word_embeddings": False,
}


def random_weights(config, seed, std=None):
    """name -> float32 array for every weight of the config, plus the MTP shared copies."""
    cfg = ref.ModelConfig.from_hf(config)
    std = config.get("initializer_range", 0.02) if std is None else std
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in ref.expected_weight_shapes(cfg).items():
        if ref.is_router_bias(name):
            weights[name] = 0.01 * rng.standard_normal(shape)
        elif len(shape) == 1:  # RMSNorm weights
            weights[name] = 1.0 + 0.1 * rng.standard_normal(shape)
        else:
            weights[name] = std * rng.standard_normal(shape)
    for copy, source in ref.mtp_shared_copies(cfg).items():
        weights[copy] = weights[source]
    return {name: np.asarray(a, dtype=np.float32) for name, a in weights.items()}


def random_batch(vocab_size, batch_size, seq_len, seed, mask_fraction=0.8):
    """tokens I32 [B, S + 1] and loss_mask U8 [B, S + 1] (about mask_fraction of targets count)."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, vocab_size, size=(batch_size, seq_len + 1), dtype=np.int32)
    mask = (rng.random((batch_size, seq_len + 1)) < mask_fraction).astype(np.uint8)
    mask[:, 0] = 0
    mask[:, 1] = 1  # every row counts at least one target
    return tokens, mask


def write_model(model_dir, config, seed, std=None):
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    safetensors_io.write(os.path.join(model_dir, "model.safetensors"),
                         random_weights(config, seed, std))


def write_batch(path, config, batch_size, seq_len, seed, steps=0):
    """One batch, plus tokens_step{t}/loss_mask_step{t} for t < steps when steps > 0."""
    tensors = {}
    tokens, mask = random_batch(config["vocab_size"], batch_size, seq_len, seed)
    tensors["tokens"], tensors["loss_mask"] = tokens, mask
    for t in range(steps):
        tokens, mask = random_batch(config["vocab_size"], batch_size, seq_len, seed + 1 + t)
        tensors[f"tokens_step{t}"], tensors[f"loss_mask_step{t}"] = tokens, mask
    safetensors_io.write(path, tensors)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="model directory to write")
    parser.add_argument("--batch", help="batch safetensors file to write")
    parser.add_argument("--steps", type=int, default=0, help="also write one batch per step")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                        help="override a config.json field, e.g. --set num_hidden_layers=3")
    args = parser.parse_args()

    config = json.loads(json.dumps(TINY_CONFIG))
    for item in args.set:
        key, _, value = item.partition("=")
        config[key] = json.loads(value)
    write_model(args.out, config, args.seed)
    if args.batch:
        write_batch(args.batch, config, args.batch_size, args.seq_len, args.seed + 1000,
                    args.steps)


if __name__ == "__main__":
    main()
