#!/usr/bin/python3
"""DeepSeek-V2 and V2-Lite parameter counts, computed here from the published config.json by a
formula written independently of Trident's parameter registry, must equal what `trident plan`
prints for the imported configs and for the presets; the import must export back to the same
config.json values.

  check_v2_counts.py TRIDENT_BINARY WORK_DIR

Formula (per layer): MLA = [q_lora: rq·H + rq + nh·(dn+dr)·rq | no q_lora: nh·(dn+dr)·H]
+ (rkv+dr)·H + rkv + nh·(dn+dv)·rkv + H·nh·dv; two RMSNorms 2H; a dense FFN 3·H·F; a MoE layer
the gate E·H (no bias buffer for V2's routing) and (E + shared) experts of 3·H·Fe, of which
(k + shared) are activated. Plus embedding and head V·H each and the final norm H.
"""
import json
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def counts(c):
    H, V, nh = c["hidden_size"], c["vocab_size"], c["num_attention_heads"]
    dn, dr, dv = c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"]
    rq, rkv = c["q_lora_rank"] or 0, c["kv_lora_rank"]
    query = rq * H + rq + nh * (dn + dr) * rq if rq else nh * (dn + dr) * H
    attention = query + (rkv + dr) * H + rkv + nh * (dn + dv) * rkv + H * nh * dv
    dense = attention + 2 * H + 3 * H * c["intermediate_size"]
    expert = 3 * H * c["moe_intermediate_size"]
    bias = c["n_routed_experts"] if c["topk_method"] == "noaux_tc" else 0
    moe_fixed = attention + 2 * H + c["n_routed_experts"] * H + bias
    shared = c["n_shared_experts"]
    dense_layers = c["first_k_dense_replace"]
    moe_layers = c["num_hidden_layers"] - dense_layers
    outer = 2 * V * H + H
    total = outer + dense_layers * dense + moe_layers * (
        moe_fixed + (c["n_routed_experts"] + shared) * expert)
    activated = outer + dense_layers * dense + moe_layers * (
        moe_fixed + (c["num_experts_per_tok"] + shared) * expert)
    return total, activated


def run(*args):
    proc = subprocess.run(list(args), capture_output=True, text=True)
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc.stdout


def planned_counts(binary, config):
    out = run(binary, "plan", "--config", config)
    m = re.search(r"parameters: total ([\d,]+), activated per token ([\d,]+), MTP ([\d,]+)", out)
    assert m, out
    return tuple(int(g.replace(",", "")) for g in m.groups())


def main():
    binary, work = sys.argv[1], sys.argv[2]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    for name, preset in (("deepseek-v2", "deepseek-v2"), ("deepseek-v2-lite", "deepseek-v2-lite")):
        published = os.path.join(HERE, "data", name + "-config.json")
        config = json.load(open(published))
        total, activated = counts(config)
        # The imported model inside the preset's layout (a 236B model needs many ranks to fit).
        textproto = os.path.join(work, name + ".textproto")
        exported = os.path.join(work, name + "-exported.json")
        with open(textproto, "w") as f:
            f.write(run(binary, "config", "--config", preset, "--from-hf", published, "--print",
                        "--hf-out", exported))
        assert planned_counts(binary, textproto) == (total, activated, 0), (
            name, planned_counts(binary, textproto), total, activated)
        assert planned_counts(binary, preset) == (total, activated, 0), name
        back = json.load(open(exported))
        assert back["model_type"] == "deepseek_v2", back
        assert back["architectures"] == ["DeepseekV2ForCausalLM"], back
        for key, value in config.items():
            if key in ("architectures", "aux_loss_alpha", "bos_token_id", "eos_token_id",
                       "num_key_value_heads", "pretraining_tp", "use_cache", "attention_dropout"):
                continue  # not model architecture Trident records (training or runtime keys)
            assert back.get(key) == value, (name, key, value, back.get(key))
        print("{}: total {:,}, activated {:,} (formula = trident plan, imported and preset); "
              "exported config.json matches".format(name, total, activated))
    print("ok")


if __name__ == "__main__":
    main()
