#!/usr/bin/python3
"""Independent PyTorch reference of the DeepSeek-V3 (and DeepSeek-V2) model and its training step.

It implements docs/model.md and nothing else, written for reading rather than speed: plain
functions over a dict of weights keyed by Hugging Face name, gradients from autograd. The golden
test compares Trident's forward pass, hand-written backward and optimiser against it.

Command line (see docs/golden-test.md):
  deepseek_v3_ref.py --model DIR --batch BATCH.safetensors --out OUT.safetensors
                     [--steps N] [--train-json TRAIN.json] [--dtype float32|float64]
"""

import argparse
import dataclasses
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

import safetensors_io

# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class ModelConfig:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    moe_intermediate_size: int
    num_hidden_layers: int
    first_k_dense_replace: int
    num_attention_heads: int
    q_lora_rank: int  # 0: a single q_proj
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int
    n_routed_experts: int  # 0: every layer is dense
    n_shared_experts: int
    num_experts_per_tok: int
    n_group: int
    topk_group: int
    routed_scaling_factor: float
    norm_topk_prob: bool
    rms_norm_eps: float
    rope_theta: float
    yarn: bool
    rope_factor: float
    rope_original_max_position: int
    rope_beta_fast: float
    rope_beta_slow: float
    rope_mscale: float
    rope_mscale_all_dim: float
    num_mtp_layers: int
    model_type: str = "deepseek_v3"  # deepseek_v2: its gate's weighting rule (see route)
    scoring_func: str = "sigmoid"  # or softmax (V2)
    topk_method: str = "noaux_tc"  # or greedy, group_limited_greedy (V2)
    device_balance_weight: float = 0.0  # V2's device-level balance loss, relative to α
    comm_balance_weight: float = 0.0  # V2's communication balance loss, relative to α

    @property
    def qk_head_dim(self):
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    def is_moe_layer(self, layer):
        return self.n_routed_experts > 0 and layer >= self.first_k_dense_replace

    def mtp_layer_index(self, depth):
        """HF layer index of MTP depth `depth` (1-based)."""
        return self.num_hidden_layers + depth - 1

    @staticmethod
    def from_hf(cfg):
        """Builds the config from a Hugging Face DeepSeek-V3 or V2 config.json dict."""
        model_type = cfg.get("model_type", "deepseek_v3")
        if model_type not in ("deepseek_v3", "deepseek_v2"):
            raise ValueError(f"config.json: model_type {model_type!r} is not supported; use "
                             "deepseek_v3 or deepseek_v2")
        v2 = model_type == "deepseek_v2"
        scoring = cfg.get("scoring_func", "softmax" if v2 else "sigmoid")
        if scoring not in ("sigmoid", "softmax"):
            raise ValueError(f"config.json: scoring_func {scoring!r} is not supported; use "
                             "sigmoid or softmax")
        method = cfg.get("topk_method", "greedy" if v2 else "noaux_tc")
        if method not in ("noaux_tc", "greedy", "group_limited_greedy"):
            raise ValueError(f"config.json: topk_method {method!r} is not supported; use "
                             "noaux_tc, greedy or group_limited_greedy")
        if cfg.get("moe_layer_freq", 1) != 1:
            raise ValueError("config.json: moe_layer_freq must be 1")
        scaling = cfg.get("rope_scaling") or {}
        scaling_type = scaling.get("type", scaling.get("rope_type"))
        if scaling and scaling_type != "yarn":
            raise ValueError(f"config.json: rope_scaling type {scaling_type!r} is not supported; "
                             "use yarn or null")
        cfg = ModelConfig(
            vocab_size=cfg["vocab_size"],
            hidden_size=cfg["hidden_size"],
            intermediate_size=cfg["intermediate_size"],
            moe_intermediate_size=cfg["moe_intermediate_size"],
            num_hidden_layers=cfg["num_hidden_layers"],
            first_k_dense_replace=cfg.get("first_k_dense_replace", 0),
            num_attention_heads=cfg["num_attention_heads"],
            q_lora_rank=cfg.get("q_lora_rank") or 0,
            kv_lora_rank=cfg["kv_lora_rank"],
            qk_nope_head_dim=cfg["qk_nope_head_dim"],
            qk_rope_head_dim=cfg["qk_rope_head_dim"],
            v_head_dim=cfg["v_head_dim"],
            n_routed_experts=cfg.get("n_routed_experts") or 0,
            n_shared_experts=cfg.get("n_shared_experts") or 0,
            num_experts_per_tok=cfg.get("num_experts_per_tok") or 0,
            n_group=cfg.get("n_group") or 1,
            topk_group=cfg.get("topk_group") or 1,
            routed_scaling_factor=float(cfg.get("routed_scaling_factor", 1.0)),
            norm_topk_prob=bool(cfg.get("norm_topk_prob", not v2)),
            rms_norm_eps=float(cfg.get("rms_norm_eps", 1e-6)),
            rope_theta=float(cfg.get("rope_theta", 10000.0)),
            yarn=bool(scaling),
            rope_factor=float(scaling.get("factor", 1.0)),
            rope_original_max_position=int(scaling.get("original_max_position_embeddings", 4096)),
            rope_beta_fast=float(scaling.get("beta_fast", 32)),
            rope_beta_slow=float(scaling.get("beta_slow", 1)),
            rope_mscale=float(scaling.get("mscale", 1)),
            rope_mscale_all_dim=float(scaling.get("mscale_all_dim", 0)),
            num_mtp_layers=cfg.get("num_nextn_predict_layers") or 0,
            model_type=model_type,
            scoring_func=scoring,
            topk_method=method,
            device_balance_weight=float(cfg.get("device_balance_weight", 0.0)),
            comm_balance_weight=float(cfg.get("comm_balance_weight", 0.0)),
        )
        cfg.validate()
        return cfg

    def validate(self):
        if self.qk_rope_head_dim % 2:
            raise ValueError("config.json: qk_rope_head_dim must be even (RoPE rotates pairs)")
        if self.n_routed_experts > 0:
            if self.n_routed_experts % self.n_group:
                raise ValueError(f"config.json: n_routed_experts {self.n_routed_experts} is not "
                                 f"divisible by n_group {self.n_group}")
            per_group = self.n_routed_experts // self.n_group
            if not 0 < self.num_experts_per_tok <= self.topk_group * per_group:
                raise ValueError(f"config.json: num_experts_per_tok {self.num_experts_per_tok} "
                                 f"must be in 1..topk_group·experts per group "
                                 f"({self.topk_group * per_group})")
            if not 0 < self.topk_group <= self.n_group:
                raise ValueError(f"config.json: topk_group {self.topk_group} must be in "
                                 f"1..n_group ({self.n_group})")


@dataclasses.dataclass
class TrainConfig:
    """Training hyper-parameters (TRAIN.json); the defaults apply to keys the file leaves out."""
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 2
    steps: int = 10  # length of the schedule; the command line's --steps overrides a missing one
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    adam_eps: float = 1e-8
    grad_clip: float = 1.0
    mtp_loss_weight: float = 0.3
    aux_loss_alpha: float = 1e-4
    bias_update_speed: float = 1e-3

    @staticmethod
    def from_json(values):
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        unknown = sorted(set(values) - known)
        if unknown:
            print(f"deepseek_v3_ref: ignoring unknown TRAIN.json keys {unknown}", file=sys.stderr)
        return TrainConfig(**{k: v for k, v in values.items() if k in known})


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------


def linear(x, weight):
    """x·Wᵀ with W stored [out, in]."""
    return x @ weight.t()


def rms_norm(x, weight, eps):
    return x / torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * weight


def swiglu(x, gate_proj, up_proj, down_proj):
    return linear(F.silu(linear(x, gate_proj)) * linear(x, up_proj), down_proj)


def yarn_mscale(factor, mscale):
    return 0.1 * mscale * math.log(factor) + 1.0 if factor > 1 else 1.0


def rope_inv_freq(cfg):
    """Per-pair inverse frequencies, YaRN-blended when rope_scaling is on (float64)."""
    d = cfg.qk_rope_head_dim
    base = cfg.rope_theta
    j = torch.arange(d // 2, dtype=torch.float64)
    extra = base ** (-2.0 * j / d)
    if not cfg.yarn:
        return extra
    inter = extra / cfg.rope_factor

    def correction_dim(rotations):
        return d * math.log(cfg.rope_original_max_position / (rotations * 2 * math.pi)) / (
            2 * math.log(base))

    low = max(math.floor(correction_dim(cfg.rope_beta_fast)), 0)
    high = min(math.ceil(correction_dim(cfg.rope_beta_slow)), d - 1)
    if low == high:
        high += 0.001
    ramp = ((j - low) / (high - low)).clamp(0.0, 1.0)
    return inter * ramp + extra * (1.0 - ramp)


def rope_cos_sin(cfg, seq_len, dtype):
    """cos and sin tables [seq_len, dr/2], already multiplied by the YaRN mscale ratio."""
    positions = torch.arange(seq_len, dtype=torch.float64)
    angles = positions[:, None] * rope_inv_freq(cfg)[None, :]
    ratio = 1.0
    if cfg.yarn:
        ratio = yarn_mscale(cfg.rope_factor, cfg.rope_mscale) / yarn_mscale(
            cfg.rope_factor, cfg.rope_mscale_all_dim)
    return (torch.cos(angles) * ratio).to(dtype), (torch.sin(angles) * ratio).to(dtype)


def apply_rope(x, cos, sin):
    """Rotates adjacent pairs (2j, 2j+1) of the last dimension; cos/sin broadcast over [..., dr/2]."""
    pairs = x.reshape(*x.shape[:-1], x.shape[-1] // 2, 2)
    a, b = pairs[..., 0], pairs[..., 1]
    rotated = torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1)
    return rotated.reshape(x.shape)


def softmax_scale(cfg):
    m = 1.0
    if cfg.yarn and cfg.rope_mscale_all_dim > 0:
        m = yarn_mscale(cfg.rope_factor, cfg.rope_mscale_all_dim)
    return cfg.qk_head_dim ** -0.5 * m * m


# ---------------------------------------------------------------------------------------------
# Multi-head latent attention
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class MlaInputs:
    """Everything attention needs, before the scores: per-head queries and the shared latent."""
    q_nope: torch.Tensor  # [B, S, nh, dn]
    q_rope: torch.Tensor  # [B, S, nh, dr], rotated
    c_kv: torch.Tensor  # [B, S, rkv], normalised
    k_rope: torch.Tensor  # [B, S, dr], rotated, shared by all heads


def mla_project(w, prefix, cfg, x, start=0):
    """x [B, S, H] holds positions start … start + S − 1 (start > 0: decoding after a cache)."""
    nh, dn, dr = cfg.num_attention_heads, cfg.qk_nope_head_dim, cfg.qk_rope_head_dim
    batch, seq, _ = x.shape
    if cfg.q_lora_rank > 0:
        cq = rms_norm(linear(x, w[prefix + "q_a_proj.weight"]), w[prefix + "q_a_layernorm.weight"],
                      cfg.rms_norm_eps)
        q = linear(cq, w[prefix + "q_b_proj.weight"])
    else:
        q = linear(x, w[prefix + "q_proj.weight"])
    q = q.view(batch, seq, nh, dn + dr)
    q_nope, q_rope = q[..., :dn], q[..., dn:]

    kv_a = linear(x, w[prefix + "kv_a_proj_with_mqa.weight"])
    c_kv = rms_norm(kv_a[..., :cfg.kv_lora_rank], w[prefix + "kv_a_layernorm.weight"],
                    cfg.rms_norm_eps)
    k_rope = kv_a[..., cfg.kv_lora_rank:]

    cos, sin = rope_cos_sin(cfg, start + seq, x.dtype)
    cos, sin = cos[start:], sin[start:]
    q_rope = apply_rope(q_rope, cos[:, None, :], sin[:, None, :])
    k_rope = apply_rope(k_rope, cos, sin)
    return MlaInputs(q_nope=q_nope, q_rope=q_rope, c_kv=c_kv, k_rope=k_rope)


def causal_softmax(scores):
    """Softmax over the last axis of [B, nh, S, S] scores with future positions masked."""
    seq = scores.shape[-1]
    future = torch.triu(torch.ones(seq, seq, dtype=torch.bool), diagonal=1)
    return torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)


def mla_attention(w, prefix, cfg, x):
    """Expanded form (training): materialise per-head k and v from the latent."""
    nh, dn, dv = cfg.num_attention_heads, cfg.qk_nope_head_dim, cfg.v_head_dim
    batch, seq, _ = x.shape
    inp = mla_project(w, prefix, cfg, x)
    kv = linear(inp.c_kv, w[prefix + "kv_b_proj.weight"]).view(batch, seq, nh, dn + dv)
    k_nope, v = kv[..., :dn], kv[..., dn:]
    k_rope = inp.k_rope[:, :, None, :].expand(batch, seq, nh, cfg.qk_rope_head_dim)
    q = torch.cat((inp.q_nope, inp.q_rope), dim=-1).transpose(1, 2)  # [B, nh, S, dq]
    k = torch.cat((k_nope, k_rope), dim=-1).transpose(1, 2)
    probs = causal_softmax(q @ k.transpose(-1, -2) * softmax_scale(cfg))
    o = (probs @ v.transpose(1, 2)).transpose(1, 2).reshape(batch, seq, nh * dv)
    return linear(o, w[prefix + "o_proj.weight"])


def mla_attention_absorbed(w, prefix, cfg, x):
    """Absorbed form (decode): score queries against the cached latent c_kv and k_rope only."""
    nh, dn, dv = cfg.num_attention_heads, cfg.qk_nope_head_dim, cfg.v_head_dim
    batch, seq, _ = x.shape
    inp = mla_project(w, prefix, cfg, x)
    kv_b = w[prefix + "kv_b_proj.weight"].view(nh, dn + dv, cfg.kv_lora_rank)
    w_kb, w_vb = kv_b[:, :dn, :], kv_b[:, dn:, :]
    q_latent = torch.einsum("bshd,hdc->bshc", inp.q_nope, w_kb)
    scores = (torch.einsum("bshc,btc->bhst", q_latent, inp.c_kv) +
              torch.einsum("bshr,btr->bhst", inp.q_rope, inp.k_rope))
    probs = causal_softmax(scores * softmax_scale(cfg))
    o_latent = torch.einsum("bhst,btc->bshc", probs, inp.c_kv)
    o = torch.einsum("bshc,hvc->bshv", o_latent, w_vb).reshape(batch, seq, nh * dv)
    return linear(o, w[prefix + "o_proj.weight"])


# ---------------------------------------------------------------------------------------------
# DeepSeekMoE
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Routing:
    indices: torch.Tensor  # [T, k] experts, by descending biased score (ties: lower index)
    weights: torch.Tensor  # [T, k] gate weights (differentiable)
    scores: torch.Tensor  # [T, E] sigmoid or softmax scores (differentiable)


def descending_order(values):
    """Indices that sort the last axis descending, equal values keeping the lower index first."""
    return torch.sort(values, dim=-1, descending=True, stable=True).indices


def route(cfg, scores, bias):
    """Top-k selection and gate weights.

    noaux_tc (V3): groups scored by the sum of their top-2 biased scores, the other groups'
    experts masked with −inf, top-k of the biased scores, weights from the unbiased scores,
    normalised, times routed_scaling_factor. group_limited_greedy (V2, as its HF MoEGate): groups
    scored by their best score, other groups' scores set to 0, top-k. greedy: top-k of all. V2
    either normalises (top_k > 1 and norm_topk_prob) or scales by routed_scaling_factor.
    """
    tokens, experts = scores.shape
    k = cfg.num_experts_per_tok
    with torch.no_grad():
        per_group = experts // cfg.n_group
        if cfg.topk_method == "greedy":
            candidates = scores
        elif cfg.topk_method == "group_limited_greedy":
            group_score = scores.view(tokens, cfg.n_group, per_group).max(dim=-1).values
            kept_groups = descending_order(group_score)[:, :cfg.topk_group]
            keep = torch.zeros(tokens, cfg.n_group, dtype=torch.bool)
            keep.scatter_(1, kept_groups, True)
            keep = keep[:, :, None].expand(tokens, cfg.n_group, per_group).reshape(tokens, experts)
            candidates = scores.masked_fill(~keep, 0.0)
        else:
            biased = scores + bias
            groups = biased.view(tokens, cfg.n_group, per_group)
            top_in_group = torch.sort(groups, dim=-1, descending=True).values[..., :min(2, per_group)]
            group_score = top_in_group.sum(dim=-1)  # [T, n_group]
            kept_groups = descending_order(group_score)[:, :cfg.topk_group]
            keep = torch.zeros(tokens, cfg.n_group, dtype=torch.bool)
            keep.scatter_(1, kept_groups, True)
            keep = keep[:, :, None].expand(tokens, cfg.n_group, per_group).reshape(tokens, experts)
            candidates = biased.masked_fill(~keep, float("-inf"))
        indices = descending_order(candidates)[:, :k]
    weights = scores.gather(1, indices)
    if cfg.model_type == "deepseek_v2":
        if k > 1 and cfg.norm_topk_prob:
            return Routing(indices=indices,
                           weights=weights / (weights.sum(dim=-1, keepdim=True) + 1e-20),
                           scores=scores)
        return Routing(indices=indices, weights=weights * cfg.routed_scaling_factor, scores=scores)
    if cfg.norm_topk_prob:
        weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
    return Routing(indices=indices, weights=weights * cfg.routed_scaling_factor, scores=scores)


def reachable_devices(cfg):
    """M of V2's communication loss: the groups (devices) a token's experts can span."""
    if cfg.topk_method == "greedy":
        return min(cfg.num_experts_per_tok, cfg.n_group)
    return cfg.topk_group


def balance_loss(cfg, routing, batch):
    """Sequence-wise balance loss, averaged over rows; f is a constant, gradient flows via P.

    With V2's weights, each row adds the device-level loss Σ_d f'_d P'_d and the communication
    loss Σ_d f''_d P'_d over the n_group devices (DeepSeek-V2 report, section 2.2): P'_d sums
    P over the device's experts, f'_d averages f over them, f''_d = D / (M·S) · the number of
    tokens that send to device d.
    """
    k, experts = cfg.num_experts_per_tok, cfg.n_routed_experts
    seq = routing.scores.shape[0] // batch
    normalised = routing.scores / routing.scores.sum(dim=-1, keepdim=True)
    p = normalised.view(batch, seq, experts).mean(dim=1)  # [B, E]
    with torch.no_grad():
        chosen = torch.zeros(batch * seq, experts, dtype=routing.scores.dtype)
        chosen.scatter_(1, routing.indices, 1.0)
        f = chosen.view(batch, seq, experts).sum(dim=1) * (experts / (k * seq))
    per_row = (f * p).sum(dim=-1)
    if cfg.device_balance_weight or cfg.comm_balance_weight:
        devices = cfg.n_group
        per_device = experts // devices
        p_device = p.view(batch, devices, per_device).sum(dim=-1)
        with torch.no_grad():
            f_device = f.view(batch, devices, per_device).mean(dim=-1)
            sent = chosen.view(batch, seq, devices, per_device).amax(dim=-1).sum(dim=1)
            f_comm = sent * (devices / (reachable_devices(cfg) * seq))
        per_row = (per_row + cfg.device_balance_weight * (f_device * p_device).sum(dim=-1) +
                   cfg.comm_balance_weight * (f_comm * p_device).sum(dim=-1))
    return per_row.mean()


@dataclasses.dataclass
class MoeOutput:
    out: torch.Tensor  # [B, S, H]
    routing: Routing
    load: torch.Tensor  # [E] tokens routed to each expert
    aux_loss: torch.Tensor  # scalar L_bal of this layer


def moe(w, prefix, cfg, x):
    batch, seq, hidden = x.shape
    flat = x.reshape(batch * seq, hidden)
    logits = linear(flat, w[prefix + "gate.weight"])
    scores = torch.softmax(logits, dim=-1) if cfg.scoring_func == "softmax" else torch.sigmoid(logits)
    routing = route(cfg, scores, w.get(prefix + "gate.e_score_correction_bias"))
    out = torch.zeros_like(flat)
    for e in range(cfg.n_routed_experts):
        token_ids, slot = (routing.indices == e).nonzero(as_tuple=True)
        if token_ids.numel() == 0:
            continue
        ep = f"{prefix}experts.{e}."
        y = swiglu(flat[token_ids], w[ep + "gate_proj.weight"], w[ep + "up_proj.weight"],
                   w[ep + "down_proj.weight"])
        out = out.index_add(0, token_ids, y * routing.weights[token_ids, slot, None])
    if cfg.n_shared_experts > 0:
        sp = prefix + "shared_experts."
        out = out + swiglu(flat, w[sp + "gate_proj.weight"], w[sp + "up_proj.weight"],
                           w[sp + "down_proj.weight"])
    load = torch.bincount(routing.indices.flatten(), minlength=cfg.n_routed_experts)
    return MoeOutput(out=out.view(batch, seq, hidden), routing=routing, load=load,
                     aux_loss=balance_loss(cfg, routing, batch))


# ---------------------------------------------------------------------------------------------
# Decoder layer and model
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class LayerRecord:
    """What a MoE layer reports besides its output: for losses, bias updates and diagnosis."""
    layer: int
    routing: Routing
    load: torch.Tensor
    aux_loss: torch.Tensor


def decoder_layer(w, cfg, layer, x, records):
    prefix = f"model.layers.{layer}."
    h = x + mla_attention(w, prefix + "self_attn.", cfg, rms_norm(
        x, w[prefix + "input_layernorm.weight"], cfg.rms_norm_eps))
    normed = rms_norm(h, w[prefix + "post_attention_layernorm.weight"], cfg.rms_norm_eps)
    mp = prefix + "mlp."
    if cfg.is_moe_layer(layer):
        result = moe(w, mp, cfg, normed)
        records.append(LayerRecord(layer=layer, routing=result.routing, load=result.load,
                                   aux_loss=result.aux_loss))
        return h + result.out
    return h + swiglu(normed, w[mp + "gate_proj.weight"], w[mp + "up_proj.weight"],
                      w[mp + "down_proj.weight"])


def masked_cross_entropy(logits, targets, counted):
    """Returns (sum of CE over counted targets, number counted)."""
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1).long(),
                         reduction="none")
    mask = counted.reshape(-1).to(logits.dtype)
    return (ce * mask).sum(), mask.sum()


@dataclasses.dataclass
class ForwardResult:
    logits: torch.Tensor  # [B, S, V]
    mtp_logits: list  # per depth d = 1..D: [B, S - d + 1, V]
    lm_loss: torch.Tensor
    mtp_loss: torch.Tensor
    aux_loss: torch.Tensor  # Σ over MoE layers (MTP's included) of L_bal, before α
    loss: torch.Tensor  # lm_loss + λ·mtp_loss + α·aux_loss
    records: list  # LayerRecord per MoE layer, main layers first, then MTP depths


def forward(w, cfg, tokens, loss_mask, mtp_loss_weight, aux_loss_alpha):
    """tokens, loss_mask: [B, S + 1] integer tensors. Returns every loss and the logits."""
    batch, seq = tokens.shape[0], tokens.shape[1] - 1
    eps = cfg.rms_norm_eps
    embed, head = w["model.embed_tokens.weight"], w["lm_head.weight"]
    records = []

    h = F.embedding(tokens[:, :seq].long(), embed)
    for layer in range(cfg.num_hidden_layers):
        h = decoder_layer(w, cfg, layer, h, records)
    h_normed = rms_norm(h, w["model.norm.weight"], eps)
    logits = linear(h_normed, head)
    lm_sum, lm_count = masked_cross_entropy(logits, tokens[:, 1:], loss_mask[:, 1:] != 0)
    lm_loss = lm_sum / lm_count.clamp(min=1)

    # MTP depth d runs over the positions i = 0 … S − d whose input token t_{i+d} exists;
    # the last of them has no target t_{i+d+1} and is never counted.
    mtp_logits, mtp_losses = [], []
    previous = h_normed
    for depth in range(1, cfg.num_mtp_layers + 1):
        length = seq - depth + 1
        if length <= 0:
            break
        prefix = f"model.layers.{cfg.mtp_layer_index(depth)}."
        e = rms_norm(F.embedding(tokens[:, depth:depth + length].long(), embed),
                     w[prefix + "enorm.weight"], eps)
        g = rms_norm(previous[:, :length], w[prefix + "hnorm.weight"], eps)
        x = linear(torch.cat((e, g), dim=-1), w[prefix + "eh_proj.weight"])
        h_depth = decoder_layer(w, cfg, cfg.mtp_layer_index(depth), x, records)
        depth_logits = linear(rms_norm(h_depth, w[prefix + "shared_head.norm.weight"], eps), head)
        targets = torch.zeros(batch, length, dtype=tokens.dtype)
        counted = torch.zeros(batch, length, dtype=torch.bool)
        targets[:, :length - 1] = tokens[:, depth + 1:]
        counted[:, :length - 1] = loss_mask[:, depth + 1:] != 0
        ce_sum, count = masked_cross_entropy(depth_logits, targets, counted)
        mtp_losses.append(ce_sum / count.clamp(min=1))
        mtp_logits.append(depth_logits)
        previous = h_depth

    zero = torch.zeros((), dtype=logits.dtype)
    mtp_loss = torch.stack(mtp_losses).mean() if mtp_losses else zero
    aux_loss = torch.stack([r.aux_loss for r in records]).sum() if records else zero
    loss = lm_loss + mtp_loss_weight * mtp_loss + aux_loss_alpha * aux_loss
    return ForwardResult(logits=logits, mtp_logits=mtp_logits, lm_loss=lm_loss, mtp_loss=mtp_loss,
                         aux_loss=aux_loss, loss=loss, records=records)


# ---------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------


def is_router_bias(name):
    return name.endswith("mlp.gate.e_score_correction_bias")


def mtp_shared_copies(cfg):
    """Names under which the HF checkpoint stores copies of the shared embedding and head."""
    copies = {}
    for depth in range(1, cfg.num_mtp_layers + 1):
        prefix = f"model.layers.{cfg.mtp_layer_index(depth)}."
        copies[prefix + "embed_tokens.weight"] = "model.embed_tokens.weight"
        copies[prefix + "shared_head.head.weight"] = "lm_head.weight"
    return copies


def expected_weight_shapes(cfg):
    """Every weight the model reads, name -> shape (docs/model.md, 'Weights')."""
    H, nh = cfg.hidden_size, cfg.num_attention_heads
    dn, dr, dv = cfg.qk_nope_head_dim, cfg.qk_rope_head_dim, cfg.v_head_dim
    shapes = {"model.embed_tokens.weight": [cfg.vocab_size, H], "model.norm.weight": [H],
              "lm_head.weight": [cfg.vocab_size, H]}

    def add_layer(layer):
        p = f"model.layers.{layer}."
        shapes[p + "input_layernorm.weight"] = [H]
        shapes[p + "post_attention_layernorm.weight"] = [H]
        a = p + "self_attn."
        if cfg.q_lora_rank > 0:
            shapes[a + "q_a_proj.weight"] = [cfg.q_lora_rank, H]
            shapes[a + "q_a_layernorm.weight"] = [cfg.q_lora_rank]
            shapes[a + "q_b_proj.weight"] = [nh * (dn + dr), cfg.q_lora_rank]
        else:
            shapes[a + "q_proj.weight"] = [nh * (dn + dr), H]
        shapes[a + "kv_a_proj_with_mqa.weight"] = [cfg.kv_lora_rank + dr, H]
        shapes[a + "kv_a_layernorm.weight"] = [cfg.kv_lora_rank]
        shapes[a + "kv_b_proj.weight"] = [nh * (dn + dv), cfg.kv_lora_rank]
        shapes[a + "o_proj.weight"] = [H, nh * dv]
        m = p + "mlp."
        if cfg.is_moe_layer(layer):
            Fe = cfg.moe_intermediate_size
            shapes[m + "gate.weight"] = [cfg.n_routed_experts, H]
            if cfg.topk_method == "noaux_tc":  # only V3's routing has the bias buffer
                shapes[m + "gate.e_score_correction_bias"] = [cfg.n_routed_experts]
            for e in range(cfg.n_routed_experts):
                shapes[f"{m}experts.{e}.gate_proj.weight"] = [Fe, H]
                shapes[f"{m}experts.{e}.up_proj.weight"] = [Fe, H]
                shapes[f"{m}experts.{e}.down_proj.weight"] = [H, Fe]
            if cfg.n_shared_experts > 0:
                Fs = Fe * cfg.n_shared_experts
                shapes[m + "shared_experts.gate_proj.weight"] = [Fs, H]
                shapes[m + "shared_experts.up_proj.weight"] = [Fs, H]
                shapes[m + "shared_experts.down_proj.weight"] = [H, Fs]
        else:
            shapes[m + "gate_proj.weight"] = [cfg.intermediate_size, H]
            shapes[m + "up_proj.weight"] = [cfg.intermediate_size, H]
            shapes[m + "down_proj.weight"] = [H, cfg.intermediate_size]

    for layer in range(cfg.num_hidden_layers):
        add_layer(layer)
    for depth in range(1, cfg.num_mtp_layers + 1):
        layer = cfg.mtp_layer_index(depth)
        add_layer(layer)
        p = f"model.layers.{layer}."
        for norm in ("enorm", "hnorm", "shared_head.norm"):
            shapes[f"{p}{norm}.weight"] = [H]
        shapes[p + "eh_proj.weight"] = [H, 2 * H]
    return shapes


@dataclasses.dataclass
class LoadedModel:
    cfg: ModelConfig
    weights: dict  # name -> tensor; trained ones require grad, router biases do not
    has_mtp_copies: bool  # the checkpoint stored the MTP copies of embedding and head


def read_safetensors_dir(model_dir):
    """{name: array} of model.safetensors, or of every shard that model.safetensors.index.json
    names (what `trident convert` and `--save-hf` write)."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if not os.path.exists(index):
        return safetensors_io.read(os.path.join(model_dir, "model.safetensors"))
    with open(index) as f:
        shards = sorted(set(json.load(f)["weight_map"].values()))
    stored = {}
    for shard in shards:
        stored.update(safetensors_io.read(os.path.join(model_dir, shard)))
    return stored


def load_model(model_dir, dtype):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = ModelConfig.from_hf(json.load(f))
    stored = read_safetensors_dir(model_dir)
    shapes = expected_weight_shapes(cfg)
    weights = {}
    for name, shape in shapes.items():
        if name not in stored:
            raise ValueError(f"{model_dir}: missing weight {name} {shape}")
        if list(stored[name].shape) != shape:
            raise ValueError(f"{model_dir}: {name} has shape "
                             f"{list(stored[name].shape)}, expected {shape}")
        weights[name] = torch.tensor(stored[name], dtype=dtype,
                                     requires_grad=not is_router_bias(name))
    copies = mtp_shared_copies(cfg)
    unused = sorted(set(stored) - set(shapes) - set(copies))
    if unused:
        print(f"deepseek_v3_ref: ignoring weights {unused}", file=sys.stderr)
    return LoadedModel(cfg=cfg, weights=weights, has_mtp_copies=any(n in stored for n in copies))


def load_for_inference(model_dir, threads):
    """(weights, cfg) as `trident score` and `trident generate` use them: fp32, the
    multi-token-prediction modules left out, `threads` torch threads."""
    torch.set_num_threads(threads)
    model = load_model(model_dir, torch.float32)
    return model.weights, dataclasses.replace(model.cfg, num_mtp_layers=0)


def read_token_lines(path):
    """One sequence of integer ids per non-blank line (the files `trident score` reads)."""
    with open(path) as f:
        return [[int(t) for t in line.split()] for line in f if line.strip()]


def indices_by_length(sequences):
    """{length: [indices]} in first-seen order: the sequences that go through as one batch."""
    groups = {}
    for index, sequence in enumerate(sequences):
        groups.setdefault(len(sequence), []).append(index)
    return groups


def trained_names(weights):
    return [name for name in weights if not is_router_bias(name)]


# ---------------------------------------------------------------------------------------------
# Training step: clipping, AdamW, schedule, router bias update
# ---------------------------------------------------------------------------------------------


def learning_rate(train, step):
    """lr at the 1-based step: linear warmup, then cosine to min_lr (held after the schedule)."""
    if step <= train.warmup_steps:
        return train.lr * step / train.warmup_steps
    span = max(train.steps - train.warmup_steps, 1)
    progress = min((step - train.warmup_steps) / span, 1.0)
    return train.min_lr + 0.5 * (train.lr - train.min_lr) * (1 + math.cos(math.pi * progress))


def clip_gradients(grads, clip):
    """Scales gradients in place by min(1, clip / (norm + 1e-6)); returns the norm before."""
    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads.values())).item()
    if clip > 0:
        factor = min(1.0, clip / (norm + 1e-6))
        for g in grads.values():
            g.mul_(factor)
    return norm


class AdamW:
    """torch.optim.AdamW semantics, with decoupled decay only on parameters of ≥ 2 dimensions."""

    def __init__(self, train):
        self.train = train
        self.m = {}
        self.v = {}

    def step(self, weights, grads, step, lr):
        t = self.train
        with torch.no_grad():
            for name, g in grads.items():
                p = weights[name]
                if p.dim() >= 2:
                    p.mul_(1 - lr * t.weight_decay)
                m = self.m.setdefault(name, torch.zeros_like(p))
                v = self.v.setdefault(name, torch.zeros_like(p))
                m.mul_(t.beta1).add_(g, alpha=1 - t.beta1)
                v.mul_(t.beta2).addcmul_(g, g, value=1 - t.beta2)
                bias1 = 1 - t.beta1 ** step
                bias2 = 1 - t.beta2 ** step
                denom = v.sqrt() / math.sqrt(bias2) + t.adam_eps
                p.addcdiv_(m, denom, value=-lr / bias1)


def update_router_biases(weights, records, speed):
    """bias_e += γ·sign(mean(load) − load_e) for every MoE layer run this step that has one."""
    loads = {}
    for r in records:
        loads[r.layer] = loads.get(r.layer, 0) + r.load
    with torch.no_grad():
        for layer, load in loads.items():
            load = load.to(torch.float64)
            bias = weights.get(f"model.layers.{layer}.mlp.gate.e_score_correction_bias")
            if bias is None:  # V2's routing has no bias to move
                continue
            bias.add_((speed * torch.sign(load.mean() - load)).to(bias.dtype))


def compute_gradients(w, cfg, tokens, loss_mask, train):
    """Forward + autograd backward; returns (ForwardResult, {name: grad})."""
    names = trained_names(w)
    result = forward(w, cfg, tokens, loss_mask, train.mtp_loss_weight, train.aux_loss_alpha)
    grads = torch.autograd.grad(result.loss, [w[n] for n in names], allow_unused=True)
    return result, {n: (g if g is not None else torch.zeros_like(w[n]))
                    for n, g in zip(names, grads)}


@dataclasses.dataclass
class TrainHistory:
    losses: list
    lm_losses: list
    mtp_losses: list
    aux_losses: list
    grad_norms: list
    lrs: list


def train_steps(w, cfg, batches, train):
    """Runs len(batches) optimiser steps on w in place; batches: list of (tokens, loss_mask)."""
    optimizer = AdamW(train)
    history = TrainHistory([], [], [], [], [], [])
    for step, (tokens, loss_mask) in enumerate(batches, start=1):
        result, grads = compute_gradients(w, cfg, tokens, loss_mask, train)
        norm = clip_gradients(grads, train.grad_clip)
        lr = learning_rate(train, step)
        optimizer.step(w, grads, step, lr)
        update_router_biases(w, result.records, train.bias_update_speed)
        history.losses.append(result.loss.item())
        history.lm_losses.append(result.lm_loss.item())
        history.mtp_losses.append(result.mtp_loss.item())
        history.aux_losses.append(result.aux_loss.item())
        history.grad_norms.append(norm)
        history.lrs.append(lr)
    return history


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def to_numpy_f32(t):
    return t.detach().to(torch.float32).numpy()


def read_batches(path, steps):
    """Returns one (tokens, loss_mask) per step (at least one), as int64 tensors."""
    stored = safetensors_io.read(path)

    def pair(tok_name, mask_name):
        if tok_name not in stored or mask_name not in stored:
            raise ValueError(f"{path}: needs tensors {tok_name} and {mask_name}")
        tokens = torch.from_numpy(stored[tok_name].astype(np.int64))
        mask = torch.from_numpy(stored[mask_name].astype(np.int64))
        if tokens.dim() != 2 or tokens.shape != mask.shape or tokens.shape[1] < 2:
            raise ValueError(f"{path}: {tok_name} and {mask_name} must both be [B, S + 1], S ≥ 1; "
                             f"got {list(tokens.shape)} and {list(mask.shape)}")
        return tokens, mask

    batches = []
    for t in range(max(steps, 1)):
        if f"tokens_step{t}" in stored:
            batches.append(pair(f"tokens_step{t}", f"loss_mask_step{t}"))
        else:
            batches.append(pair("tokens", "loss_mask"))
    return batches


def forward_backward_outputs(model, tokens, loss_mask, train):
    cfg = model.cfg
    result, grads = compute_gradients(model.weights, cfg, tokens, loss_mask, train)
    seq = tokens.shape[1] - 1
    out = {"logits": to_numpy_f32(result.logits)}
    for depth, logits in enumerate(result.mtp_logits, start=1):
        padded = np.zeros((tokens.shape[0], seq, cfg.vocab_size), dtype=np.float32)
        padded[:, :logits.shape[1]] = to_numpy_f32(logits)
        out[f"mtp_logits.{depth}"] = padded
    for key in ("loss", "lm_loss", "mtp_loss", "aux_loss"):
        out[key] = to_numpy_f32(getattr(result, key)).reshape(1)
    for name, g in grads.items():
        out["grad." + name] = to_numpy_f32(g)
    for r in result.records:
        out[f"router_indices.{r.layer}"] = r.routing.indices.numpy().astype(np.int32)
    return out


def training_outputs(model, batches, train):
    history = train_steps(model.weights, model.cfg, batches, train)
    out = {"losses": np.array(history.losses, dtype=np.float32),
           "lm_losses": np.array(history.lm_losses, dtype=np.float32),
           "mtp_losses": np.array(history.mtp_losses, dtype=np.float32),
           "aux_losses": np.array(history.aux_losses, dtype=np.float32),
           "grad_norms": np.array(history.grad_norms, dtype=np.float32),
           "lrs": np.array(history.lrs, dtype=np.float32)}
    for name, p in model.weights.items():
        out[name] = to_numpy_f32(p)
    if model.has_mtp_copies:
        for copy, source in mtp_shared_copies(model.cfg).items():
            out[copy] = out[source]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="directory with config.json and "
                        "model.safetensors")
    parser.add_argument("--batch", required=True, help="safetensors with tokens and loss_mask")
    parser.add_argument("--out", required=True, help="safetensors file to write")
    parser.add_argument("--steps", type=int, default=0, help="training steps (0: one forward "
                        "and backward, no update)")
    parser.add_argument("--train-json", help="training hyper-parameters")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)  # deterministic reductions; the models here are small
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    train_values = {}
    if args.train_json:
        with open(args.train_json) as f:
            train_values = json.load(f)
    if args.steps > 0 and "steps" not in train_values:
        train_values["steps"] = args.steps
    train = TrainConfig.from_json(train_values)

    model = load_model(args.model, dtype)
    batches = read_batches(args.batch, args.steps)
    if args.steps > 0:
        out = training_outputs(model, batches, train)
    else:
        out = forward_backward_outputs(model, *batches[0], train)
    safetensors_io.write(args.out, out)


if __name__ == "__main__":
    main()
