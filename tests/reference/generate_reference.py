"""Greedy generation under Hugging Face weights with the PyTorch reference, as `trident generate
--tokens FILE --no-stop` does it: eager PyTorch, CPU, fp32, inference mode; the prompts of one
length in one batch; the prompt prefilled and then one token per step against the MLA latent
cache in absorbed form (queries scored against the cached normalised latent and rotated key
part, never expanded per head); the multi-token-prediction modules skipped. The baseline that
`trident bench generate` times as a whole process, start-up and loading included.

    generate_reference.py --hf-dir DIR --tokens FILE --new-tokens N --threads T --output OUT.json
        [--follow TRIDENT.json]

OUT.json: {"tokens": [[...], ...]}, this run's best (greedy) id at each of the N steps of each
prompt line. With --follow, each step is fed the token that trident chose instead of this run's
own (the same work, and the same cache contents), and OUT.json also holds "max_regret": the
largest gap between this run's best logit and the logit of the token trident chose: 0 where both
chose alike, a round-off where they split a near-tie."""
import argparse
import dataclasses
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_v3_ref as ref  # noqa: E402


@dataclasses.dataclass
class LatentCache:
    """One layer's cache: the normalised latent and the rotated key part of every position."""
    c_kv: torch.Tensor  # [B, capacity, kv_lora_rank]
    k_rope: torch.Tensor  # [B, capacity, qk_rope_head_dim]


def cached_attention(w, prefix, cfg, x, cache, start):
    """Absorbed MLA for positions start … start + S − 1 of x [B, S, H], appending to the cache."""
    nh, dn, dv = cfg.num_attention_heads, cfg.qk_nope_head_dim, cfg.v_head_dim
    batch, seq, _ = x.shape
    inp = ref.mla_project(w, prefix, cfg, x, start)
    end = start + seq
    cache.c_kv[:, start:end] = inp.c_kv
    cache.k_rope[:, start:end] = inp.k_rope
    c_kv, k_rope = cache.c_kv[:, :end], cache.k_rope[:, :end]
    kv_b = w[prefix + "kv_b_proj.weight"].view(nh, dn + dv, cfg.kv_lora_rank)
    w_kb, w_vb = kv_b[:, :dn, :], kv_b[:, dn:, :]
    q_latent = torch.einsum("bshd,hdc->bshc", inp.q_nope, w_kb)
    scores = (torch.einsum("bshc,btc->bhst", q_latent, c_kv) +
              torch.einsum("bshr,btr->bhst", inp.q_rope, k_rope)) * ref.softmax_scale(cfg)
    # Query s sits at position start + s and sees keys 0 … start + s.
    future = torch.arange(end)[None, :] > (start + torch.arange(seq))[:, None]
    probs = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
    o_latent = torch.einsum("bhst,btc->bshc", probs, c_kv)
    o = torch.einsum("bshc,hvc->bshv", o_latent, w_vb).reshape(batch, seq, nh * dv)
    return ref.linear(o, w[prefix + "o_proj.weight"])


def decoder_layer(w, cfg, layer, x, cache, start):
    prefix = f"model.layers.{layer}."
    h = x + cached_attention(w, prefix + "self_attn.", cfg, ref.rms_norm(
        x, w[prefix + "input_layernorm.weight"], cfg.rms_norm_eps), cache, start)
    normed = ref.rms_norm(h, w[prefix + "post_attention_layernorm.weight"], cfg.rms_norm_eps)
    mp = prefix + "mlp."
    if cfg.is_moe_layer(layer):
        return h + ref.moe(w, mp, cfg, normed).out
    return h + ref.swiglu(normed, w[mp + "gate_proj.weight"], w[mp + "up_proj.weight"],
                          w[mp + "down_proj.weight"])


def last_logits(w, cfg, ids, caches, start):
    """Runs ids [B, S] at positions start … and returns the logits of the last position."""
    h = torch.nn.functional.embedding(ids, w["model.embed_tokens.weight"])
    for layer in range(cfg.num_hidden_layers):
        h = decoder_layer(w, cfg, layer, h, caches[layer], start)
    h = ref.rms_norm(h[:, -1], w["model.norm.weight"], cfg.rms_norm_eps)
    return ref.linear(h, w["lm_head.weight"])


def generate(w, cfg, prompts, new_tokens, follow, lengths=None):
    """This run's greedy ids [B, new_tokens] (lowest id on ties) and the largest regret of the
    followed tokens; `follow` [B, new_tokens] is what each step is fed, or None for its own.
    `lengths` [B] (with `follow`): how many steps of each row count; a row that ended earlier is
    fed filler (EOS, as trident feeds it) and its later steps are left out of the regret."""
    batch, prompt_len = prompts.shape
    capacity = prompt_len + new_tokens
    caches = [LatentCache(torch.zeros(batch, capacity, cfg.kv_lora_rank),
                          torch.zeros(batch, capacity, cfg.qk_rope_head_dim))
              for _ in range(cfg.num_hidden_layers)]
    logits = last_logits(w, cfg, prompts, caches, 0)
    chosen, regret = [], 0.0
    for step in range(new_tokens):
        best = torch.argmax(logits, dim=-1)
        if follow is not None:
            taken = follow[:, step]
            gap = logits.max(dim=-1).values - logits.gather(-1, taken[:, None])[:, 0]
            if lengths is not None:
                gap = gap[lengths > step]
            if gap.numel() > 0:
                regret = max(regret, gap.max().item())
        else:
            taken = best
        chosen.append(best)
        if step + 1 < new_tokens:
            logits = last_logits(w, cfg, taken[:, None], caches, prompt_len + step)
    return torch.stack(chosen, dim=1), regret


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hf-dir", required=True)
    parser.add_argument("--tokens", required=True)
    parser.add_argument("--new-tokens", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", required=True)
    parser.add_argument("--follow")
    args = parser.parse_args()
    weights, cfg = ref.load_for_inference(args.hf_dir, args.threads)
    prompts = ref.read_token_lines(args.tokens)
    followed = None
    if args.follow:
        with open(args.follow) as f:
            followed = json.load(f)["tokens"]

    generated = [[] for _ in prompts]
    max_regret = 0.0
    with torch.inference_mode():
        for indices in ref.indices_by_length(prompts).values():
            ids = torch.tensor([prompts[i] for i in indices], dtype=torch.int64)
            follow = None
            if followed is not None:
                follow = torch.tensor([followed[i] for i in indices], dtype=torch.int64)
            tokens, regret = generate(weights, cfg, ids, args.new_tokens, follow)
            max_regret = max(max_regret, regret)
            for row, i in enumerate(indices):
                generated[i] = tokens[row].tolist()
    result = {"tokens": generated}
    if followed is not None:
        result["max_regret"] = max_regret
    with open(args.output, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
