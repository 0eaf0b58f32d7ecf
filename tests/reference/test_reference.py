#!/usr/bin/python3
"""Self-test of the PyTorch reference: it must be right before Trident is judged against it.

Run: /usr/bin/python3 tests/reference/test_reference.py
"""

import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import deepseek_v3_ref as ref  # noqa: E402
import make_random_model  # noqa: E402
import safetensors_io  # noqa: E402

torch.set_num_threads(1)


def tiny_config(**overrides):
    config = json.loads(json.dumps(make_random_model.TINY_CONFIG))
    config.update(overrides)
    return config


def tiny_model(dtype, seed=7, **overrides):
    """(ModelConfig, weights dict with grads enabled) for the tiny config."""
    config = tiny_config(**overrides)
    cfg = ref.ModelConfig.from_hf(config)
    arrays = make_random_model.random_weights(config, seed)
    weights = {name: torch.tensor(arrays[name], dtype=dtype, requires_grad=not ref.is_router_bias(
        name)) for name in ref.expected_weight_shapes(cfg)}
    return cfg, weights


def tiny_batch(cfg, batch_size=2, seq_len=16, seed=11):
    tokens, mask = make_random_model.random_batch(cfg.vocab_size, batch_size, seq_len, seed)
    return torch.from_numpy(tokens.astype(np.int64)), torch.from_numpy(mask.astype(np.int64))


def relative_error(actual, expected):
    return (torch.linalg.norm((actual - expected).flatten()) /
            torch.linalg.norm(expected.flatten()).clamp(min=1e-300)).item()


class SafetensorsTest(unittest.TestCase):

    def test_round_trip_every_dtype(self):
        rng = np.random.default_rng(0)
        tensors = {
            "f64": rng.standard_normal((3, 2)),
            "f32": rng.standard_normal((2, 3, 4)).astype(np.float32),
            "f16": rng.standard_normal(5).astype(np.float16),
            "i64": np.arange(-3, 3, dtype=np.int64),
            "i32": np.arange(12, dtype=np.int32).reshape(3, 4),
            "u8": np.array([0, 1, 255], dtype=np.uint8),
            "bf16": np.array([1.0, -2.5, 3.0e38, 1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8],
                             dtype=np.float32),
        }
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "t.safetensors")
            safetensors_io.write(path, tensors, dtypes={"bf16": "BF16"})
            back = safetensors_io.read(path)
            header, _ = safetensors_io.read_header(path)
        self.assertEqual(header["bf16"]["dtype"], "BF16")
        for name, array in tensors.items():
            if name == "bf16":
                continue
            self.assertEqual(back[name].dtype, array.dtype, name)
            np.testing.assert_array_equal(back[name], array)
        # bfloat16 keeps 8 significant bits: 1 + 2^-8 ties to even (1.0), 1 + 3·2^-8 rounds up.
        np.testing.assert_array_equal(
            back["bf16"], np.array([1.0, -2.5, back["bf16"][2], 1.0, 1.0 + 2 ** -6], np.float32))
        self.assertLess(abs(back["bf16"][2] / 3.0e38 - 1), 2 ** -8)


class RopeAndScaleTest(unittest.TestCase):

    def test_yarn_inv_freq_by_hand(self):
        # d = 4, orig 16: corr(32) < 0 so low = 0; corr(1) = 4·ln(16/2π)/(2·ln 1e4) ≈ 0.20 so
        # high = 1. Pair 0 keeps the extrapolated frequency, pair 1 takes the interpolated one.
        cfg = ref.ModelConfig.from_hf(tiny_config())
        inv_freq = ref.rope_inv_freq(cfg)
        np.testing.assert_allclose(inv_freq.numpy(), [1.0, 10000 ** -0.5 / 4.0], rtol=1e-15)
        m = 0.1 * math.log(4.0) + 1
        self.assertAlmostEqual(ref.softmax_scale(cfg), 12 ** -0.5 * m * m, places=15)

    def test_mscale_ratio_multiplies_cos_and_sin(self):
        cfg = ref.ModelConfig.from_hf(tiny_config(rope_scaling={
            "type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16,
            "beta_fast": 32, "beta_slow": 1, "mscale": 2.0, "mscale_all_dim": 1.0}))
        cos, sin = ref.rope_cos_sin(cfg, 5, torch.float64)
        ratio = (0.2 * math.log(4) + 1) / (0.1 * math.log(4) + 1)
        np.testing.assert_allclose((cos ** 2 + sin ** 2).numpy(), ratio ** 2, rtol=1e-14)

    def test_interleaved_rope_is_a_permutation_of_the_deinterleaved_form(self):
        cfg = ref.ModelConfig.from_hf(tiny_config(qk_rope_head_dim=8))
        seq, d = 6, 8
        cos, sin = ref.rope_cos_sin(cfg, seq, torch.float64)
        q = torch.randn(seq, d, dtype=torch.float64)
        k = torch.randn(seq, d, dtype=torch.float64)

        def deinterleaved(x):  # even elements first, then odd; rotate halves
            x = torch.cat((x[:, 0::2], x[:, 1::2]), dim=-1)
            a, b = x[:, :d // 2], x[:, d // 2:]
            return torch.cat((a * cos - b * sin, b * cos + a * sin), dim=-1)

        ours = ref.apply_rope(q, cos, sin) @ ref.apply_rope(k, cos, sin).t()
        theirs = deinterleaved(q) @ deinterleaved(k).t()
        self.assertLess(relative_error(ours, theirs), 1e-14)
        # and the rotation depends only on the position difference
        self.assertFalse(torch.allclose(ref.apply_rope(q, cos, sin), q))


class MlaTest(unittest.TestCase):

    def test_absorbed_form_equals_expanded_form(self):
        cfg, w = tiny_model(torch.float64)
        x = torch.randn(2, 9, cfg.hidden_size, dtype=torch.float64)
        for layer in (0, 2):
            prefix = f"model.layers.{layer}.self_attn."
            with torch.no_grad():
                expanded = ref.mla_attention(w, prefix, cfg, x)
                absorbed = ref.mla_attention_absorbed(w, prefix, cfg, x)
            self.assertGreater(expanded.abs().max().item(), 1e-3)
            self.assertLess(relative_error(absorbed, expanded), 1e-12)

    def test_attention_is_causal(self):
        cfg, w = tiny_model(torch.float64)
        x = torch.randn(1, 8, cfg.hidden_size, dtype=torch.float64)
        y = x.clone()
        y[:, 5:] += 1.0
        with torch.no_grad():
            a = ref.mla_attention(w, "model.layers.0.self_attn.", cfg, x)
            b = ref.mla_attention(w, "model.layers.0.self_attn.", cfg, y)
        self.assertLess(relative_error(b[:, :5], a[:, :5]), 1e-14)
        self.assertGreater(relative_error(b[:, 5:], a[:, 5:]), 1e-3)


class RouterTest(unittest.TestCase):

    def test_group_limited_top_k_by_hand(self):
        cfg = ref.ModelConfig.from_hf(tiny_config())  # 8 experts, 4 groups of 2, keep 2, top-2
        scores = torch.tensor([
            # groups: {0,1} sum .95, {2,3} 1.0, {4,5} 1.2, {6,7} .2 -> keep groups 2 and 1.
            # Plain top-2 would take expert 0; 4 and 5 tie, the lower index comes first.
            [0.95, 0.00, 0.50, 0.50, 0.60, 0.60, 0.10, 0.10],
            # all biased scores negative (bias −1): with masked groups set to 0 instead of −inf
            # the masked experts 0 and 1 would win; −inf keeps the choice in groups 3 and 2.
            [0.30, 0.20, 0.10, 0.15, 0.40, 0.05, 0.45, 0.44],
        ], dtype=torch.float64)
        bias = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64)
        first = ref.route(cfg, scores[:1], bias)
        self.assertEqual(first.indices.tolist(), [[4, 5]])
        np.testing.assert_allclose(first.weights.detach().numpy(), [[1.25, 1.25]], rtol=1e-15)

        minus_one = torch.full((8,), -1.0, dtype=torch.float64)
        minus_one[0] = -0.5  # expert 0 biased to −0.2: still loses, its group {0,1} sums to −1.0
        second = ref.route(cfg, scores[1:], minus_one)
        # biased: [-.2,-.8,-.9,-.85,-.6,-.95,-.55,-.56]; group sums -1.0,-1.75,-1.55,-1.11
        # -> keep groups 0 and 3; best experts 0 (−.2) and 6 (−.55).
        self.assertEqual(second.indices.tolist(), [[0, 6]])
        expected = np.array([0.30, 0.45]) / 0.75 * 2.5
        np.testing.assert_allclose(second.weights.detach().numpy(), [expected], rtol=1e-15)

        # Bias decides selection only: shifting expert 7 up makes it chosen, weights still use s.
        shifted = torch.zeros(8, dtype=torch.float64)
        shifted[7] = 2.0
        third = ref.route(cfg, scores[1:], shifted)
        self.assertEqual(third.indices.tolist(), [[7, 6]])
        np.testing.assert_allclose(third.weights.detach().numpy(),
                                   [np.array([0.44, 0.45]) / 0.89 * 2.5], rtol=1e-15)

    def test_negative_scores_never_pick_a_masked_group(self):
        cfg = ref.ModelConfig.from_hf(tiny_config())
        scores = torch.tensor([[0.9, 0.9, 0.1, 0.1, 0.2, 0.2, 0.1, 0.1]], dtype=torch.float64)
        bias = torch.tensor([0.0, 0.0, -5.0, -5.0, -5.0, -5.0, -5.0, -5.0], dtype=torch.float64)
        # groups: {0,1} kept with 1.8; next best {4,5} at −9.6. k = 2 both from group 0.
        self.assertEqual(ref.route(cfg, scores, bias).indices.tolist(), [[0, 1]])
        # with top-3 the third expert must come from the second kept group {4,5}, not a 0-masked one
        cfg3 = ref.ModelConfig.from_hf(tiny_config(num_experts_per_tok=3))
        self.assertEqual(ref.route(cfg3, scores, bias).indices.tolist(), [[0, 1, 4]])


# A tiny DeepSeek-V2: softmax scores, group-limited greedy top-k, no q-LoRA (plain q_proj),
# 2 shared experts, weights not normalised, no MTP, device and communication balance losses.
V2_OVERRIDES = {
    "architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2",
    "scoring_func": "softmax", "topk_method": "group_limited_greedy", "q_lora_rank": None,
    "n_shared_experts": 2, "norm_topk_prob": False, "routed_scaling_factor": 1.5,
    "num_nextn_predict_layers": 0, "device_balance_weight": 0.5, "comm_balance_weight": 0.25,
}


def v2_config(**changes):
    return tiny_config(**{**V2_OVERRIDES, **changes})


class DeepSeekV2Test(unittest.TestCase):

    def test_weights_have_q_proj_and_no_router_bias(self):
        cfg = ref.ModelConfig.from_hf(v2_config())
        shapes = ref.expected_weight_shapes(cfg)
        self.assertIn("model.layers.0.self_attn.q_proj.weight", shapes)
        self.assertNotIn("model.layers.0.self_attn.q_a_proj.weight", shapes)
        self.assertFalse(any(ref.is_router_bias(n) for n in shapes))
        self.assertFalse(any(n.startswith("model.layers.4.") for n in shapes))  # no MTP layer
        self.assertEqual(shapes["model.layers.3.mlp.shared_experts.gate_proj.weight"], [32, 32])

    def test_group_limited_greedy_scores_groups_by_their_best_expert(self):
        cfg = ref.ModelConfig.from_hf(v2_config())  # 4 groups of 2, keep 2, top-2
        # group best: .30, .20, .25, .03 -> keep groups 0 and 2 -> experts 0 and 4. Scoring groups
        # by their top-2 sum (V3) would keep groups 1 (.39) and 0 (.30) -> experts 0 and 2.
        scores = torch.tensor([[0.30, 0.00, 0.20, 0.19, 0.25, 0.01, 0.02, 0.03]],
                              dtype=torch.float64)
        routing = ref.route(cfg, scores, None)
        self.assertEqual(routing.indices.tolist(), [[0, 4]])
        # norm_topk_prob false: the scores times routed_scaling_factor.
        np.testing.assert_allclose(routing.weights.numpy(), [[0.45, 0.375]], rtol=1e-15)
        # norm_topk_prob true (top_k > 1): normalised, and V2 then leaves the scaling out.
        normed = ref.ModelConfig.from_hf(v2_config(norm_topk_prob=True))
        np.testing.assert_allclose(ref.route(normed, scores, None).weights.numpy(),
                                   [[0.30 / 0.55, 0.25 / 0.55]], rtol=1e-15)

    def test_greedy_ignores_groups(self):
        scores = torch.tensor([[0.30, 0.00, 0.28, 0.27, 0.29, 0.01, 0.02, 0.03]],
                              dtype=torch.float64)
        one_group = ref.ModelConfig.from_hf(v2_config(topk_group=1))
        self.assertEqual(ref.route(one_group, scores, None).indices.tolist(), [[0, 1]])
        greedy = ref.ModelConfig.from_hf(v2_config(topk_method="greedy"))
        self.assertEqual(ref.route(greedy, scores, None).indices.tolist(), [[0, 4]])

    def test_device_and_communication_losses_by_hand(self):
        # 4 experts on 2 devices, top-2 within 1 device (M = 1), one row of 2 tokens that both
        # choose experts 0 and 1: f = [2, 2, 0, 0], f' = [2, 0], f'' = 2/(1·2)·[2, 0] = [2, 0].
        cfg = ref.ModelConfig.from_hf(v2_config(n_routed_experts=4, n_group=2, topk_group=1))
        scores = torch.tensor([[0.4, 0.3, 0.2, 0.1], [0.5, 0.2, 0.2, 0.1]], dtype=torch.float64)
        routing = ref.Routing(indices=torch.tensor([[0, 1], [0, 1]]), weights=None, scores=scores)
        p = scores.mean(dim=0)  # softmax rows already sum to 1
        p_device0 = (p[0] + p[1]).item()
        expected = 2 * p_device0 + 0.5 * 2 * p_device0 + 0.25 * 2 * p_device0
        self.assertAlmostEqual(ref.balance_loss(cfg, routing, batch=1).item(), expected, places=14)

    def test_autograd_matches_central_differences_in_float64(self):
        cfg, w = tiny_model(torch.float64, vocab_size=64, **V2_OVERRIDES)
        tokens, mask = tiny_batch(cfg, seq_len=8)
        train = ref.TrainConfig(aux_loss_alpha=0.1)
        result, grads = ref.compute_gradients(w, cfg, tokens, mask, train)
        self.assertGreater(result.aux_loss.item(), 0)
        step = 1e-6
        for name in ("model.layers.0.self_attn.q_proj.weight", "model.layers.2.mlp.gate.weight",
                     "model.layers.3.mlp.shared_experts.down_proj.weight",
                     "model.layers.3.mlp.experts.5.up_proj.weight"):
            p, g = w[name], grads[name]
            i = int(torch.argmax(g.abs()).item())
            with torch.no_grad():
                original = p.view(-1)[i].item()
                p.view(-1)[i] = original + step
                plus = ref.forward(w, cfg, tokens, mask, 0.3, 0.1).loss.item()
                p.view(-1)[i] = original - step
                minus = ref.forward(w, cfg, tokens, mask, 0.3, 0.1).loss.item()
                p.view(-1)[i] = original
            numeric = (plus - minus) / (2 * step)
            self.assertLess(abs(g.view(-1)[i].item() - numeric), 1e-6 * abs(numeric) + 1e-8, name)


class GradientTest(unittest.TestCase):

    def test_autograd_matches_central_differences_in_float64(self):
        cfg, w = tiny_model(torch.float64, vocab_size=64)
        tokens, mask = tiny_batch(cfg, seq_len=8)
        train = ref.TrainConfig(mtp_loss_weight=0.3, aux_loss_alpha=0.1)
        result, grads = ref.compute_gradients(w, cfg, tokens, mask, train)
        routing = [r.routing.indices.clone() for r in result.records]

        def loss_and_routing():
            with torch.no_grad():
                r = ref.forward(w, cfg, tokens, mask, train.mtp_loss_weight, train.aux_loss_alpha)
            return r.loss.item(), [x.routing.indices for x in r.records]

        checked = [
            "model.embed_tokens.weight", "lm_head.weight", "model.norm.weight",
            "model.layers.0.input_layernorm.weight", "model.layers.0.self_attn.q_a_proj.weight",
            "model.layers.0.self_attn.q_a_layernorm.weight",
            "model.layers.0.self_attn.q_b_proj.weight",
            "model.layers.1.self_attn.kv_a_proj_with_mqa.weight",
            "model.layers.1.self_attn.kv_a_layernorm.weight",
            "model.layers.1.self_attn.kv_b_proj.weight", "model.layers.1.self_attn.o_proj.weight",
            "model.layers.1.mlp.gate_proj.weight", "model.layers.1.mlp.down_proj.weight",
            "model.layers.2.post_attention_layernorm.weight", "model.layers.2.mlp.gate.weight",
            "model.layers.3.mlp.shared_experts.up_proj.weight",
            "model.layers.4.enorm.weight", "model.layers.4.hnorm.weight",
            "model.layers.4.eh_proj.weight", "model.layers.4.shared_head.norm.weight",
            "model.layers.4.mlp.gate.weight",
        ]
        for e in range(cfg.n_routed_experts):
            checked.append(f"model.layers.3.mlp.experts.{e}.down_proj.weight")
        step = 1e-6
        for name in checked:
            p, g = w[name], grads[name]
            self.assertGreater(g.abs().max().item(), 0, f"{name}: gradient is zero")
            flat_g = g.flatten()
            picks = torch.argsort(flat_g.abs(), descending=True)[:2].tolist()
            picks.append(int(torch.randint(p.numel(), (1,)).item()))
            numeric, analytic = [], []
            for i in picks:
                with torch.no_grad():
                    original = p.view(-1)[i].item()
                    p.view(-1)[i] = original + step
                    plus, routing_plus = loss_and_routing()
                    p.view(-1)[i] = original - step
                    minus, routing_minus = loss_and_routing()
                    p.view(-1)[i] = original
                same = all(torch.equal(a, b) and torch.equal(a, c)
                           for a, b, c in zip(routing, routing_plus, routing_minus))
                if not same:
                    continue  # a routing flip makes the loss discontinuous here
                numeric.append((plus - minus) / (2 * step))
                analytic.append(flat_g[i].item())
            self.assertGreaterEqual(len(numeric), 2, f"{name}: routing flipped too often")
            # Central differences carry about |loss|·1e-16 / step ≈ 1e-9 of round-off.
            for a, n in zip(analytic, numeric):
                self.assertLess(abs(a - n), 1e-6 * abs(n) + 1e-8,
                                f"{name}: autograd {analytic} vs numeric {numeric}")

    def test_balance_loss_changes_gate_gradient(self):
        cfg, w = tiny_model(torch.float64, vocab_size=64)
        tokens, mask = tiny_batch(cfg, seq_len=8)
        name = "model.layers.2.mlp.gate.weight"
        _, without = ref.compute_gradients(w, cfg, tokens, mask, ref.TrainConfig(aux_loss_alpha=0))
        _, with_aux = ref.compute_gradients(w, cfg, tokens, mask, ref.TrainConfig(aux_loss_alpha=1))
        self.assertGreater(relative_error(with_aux[name], without[name]), 1e-3)


class OptimiserTest(unittest.TestCase):

    def test_adamw_matches_torch_with_decay_only_on_matrices(self):
        train = ref.TrainConfig(weight_decay=0.1, beta1=0.8, beta2=0.9, adam_eps=1e-6)
        matrix = torch.randn(3, 4, dtype=torch.float64)
        vector = torch.randn(4, dtype=torch.float64)
        ours = {"m": matrix.clone(), "v": vector.clone()}
        theirs_m = matrix.clone().requires_grad_(True)
        theirs_v = vector.clone().requires_grad_(True)
        opt = torch.optim.AdamW([{"params": [theirs_m], "weight_decay": 0.1},
                                 {"params": [theirs_v], "weight_decay": 0.0}],
                                lr=0.05, betas=(0.8, 0.9), eps=1e-6)
        adam = ref.AdamW(train)
        for step in range(1, 6):
            gm, gv = torch.randn(3, 4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
            adam.step(ours, {"m": gm, "v": gv}, step, 0.05)
            theirs_m.grad, theirs_v.grad = gm.clone(), gv.clone()
            opt.step()
        self.assertLess(relative_error(ours["m"], theirs_m.detach()), 1e-14)
        self.assertLess(relative_error(ours["v"], theirs_v.detach()), 1e-14)

    def test_schedule_and_clipping(self):
        train = ref.TrainConfig(lr=1.0, min_lr=0.1, warmup_steps=4, steps=14)
        self.assertAlmostEqual(ref.learning_rate(train, 1), 0.25)
        self.assertAlmostEqual(ref.learning_rate(train, 4), 1.0)
        self.assertAlmostEqual(ref.learning_rate(train, 9), 0.1 + 0.45 * (1 + math.cos(math.pi / 2)))
        self.assertAlmostEqual(ref.learning_rate(train, 14), 0.1)
        grads = {"a": torch.tensor([3.0, 0.0], dtype=torch.float64),
                 "b": torch.tensor([[4.0]], dtype=torch.float64)}
        self.assertAlmostEqual(ref.clip_gradients(grads, 1.0), 5.0)
        self.assertAlmostEqual(grads["a"][0].item(), 3.0 / (5.0 + 1e-6))
        small = {"a": torch.tensor([0.3], dtype=torch.float64)}
        ref.clip_gradients(small, 1.0)
        self.assertEqual(small["a"].item(), 0.3)

    def test_router_bias_moves_against_load(self):
        cfg, w = tiny_model(torch.float64)
        tokens, mask = tiny_batch(cfg)
        before = {n: p.clone() for n, p in w.items() if ref.is_router_bias(n)}
        result = ref.forward(w, cfg, tokens, mask, 0.3, 0.0)
        ref.update_router_biases(w, result.records, 0.001)
        moe_layers = [r.layer for r in result.records]
        self.assertEqual(moe_layers, [2, 3, 4])  # the MTP layer is updated too
        for r in result.records:
            name = f"model.layers.{r.layer}.mlp.gate.e_score_correction_bias"
            load = r.load.double()
            self.assertEqual(load.sum().item(), tokens.shape[0] * 16 * cfg.num_experts_per_tok)
            expected = before[name] + 0.001 * torch.sign(load.mean() - load)
            self.assertTrue(torch.equal(w[name], expected), name)
            self.assertFalse(torch.equal(w[name], before[name]), name)

    def test_ten_steps_lower_the_loss(self):
        cfg, w = tiny_model(torch.float32)
        batch = tiny_batch(cfg)
        train = ref.TrainConfig(lr=3e-3, min_lr=3e-4, warmup_steps=2, steps=10)
        history = ref.train_steps(w, cfg, [batch] * 10, train)
        self.assertEqual(len(history.losses), 10)
        self.assertTrue(all(math.isfinite(x) for x in history.losses))
        self.assertLess(history.losses[-1], history.losses[0] - 0.5, history.losses)
        self.assertLess(history.mtp_losses[-1], history.mtp_losses[0], history.mtp_losses)


class CommandLineTest(unittest.TestCase):

    def run_ref(self, *args):
        subprocess.run([sys.executable, os.path.join(HERE, "deepseek_v3_ref.py"), *args],
                       check=True)

    def test_protocol(self):
        with tempfile.TemporaryDirectory() as tmp:
            model_dir, batch = os.path.join(tmp, "model"), os.path.join(tmp, "batch.safetensors")
            config = tiny_config()
            make_random_model.write_model(model_dir, config, seed=3)
            make_random_model.write_batch(batch, config, 2, 16, seed=4)
            train_json = os.path.join(tmp, "train.json")
            with open(train_json, "w") as f:
                json.dump({"lr": 1e-3, "min_lr": 1e-4, "warmup_steps": 1, "steps": 2,
                           "weight_decay": 0.1, "beta1": 0.9, "beta2": 0.95, "adam_eps": 1e-8,
                           "grad_clip": 1.0, "mtp_loss_weight": 0.3, "aux_loss_alpha": 1e-3,
                           "bias_update_speed": 1e-3}, f)
            one = os.path.join(tmp, "one.safetensors")
            one64 = os.path.join(tmp, "one64.safetensors")
            two = os.path.join(tmp, "two.safetensors")
            common = ["--model", model_dir, "--batch", batch, "--train-json", train_json]
            self.run_ref(*common, "--out", one)
            self.run_ref(*common, "--out", one64, "--dtype", "float64")
            self.run_ref(*common, "--out", two, "--steps", "2")
            a = safetensors_io.read(one)
            a64 = safetensors_io.read(one64)
            b = safetensors_io.read(two)
            weights = safetensors_io.read(os.path.join(model_dir, "model.safetensors"))

        cfg = ref.ModelConfig.from_hf(config)
        self.assertEqual(a["logits"].shape, (2, 16, 256))
        self.assertEqual(a["mtp_logits.1"].shape, (2, 16, 256))
        for key in ("loss", "lm_loss", "mtp_loss", "aux_loss"):
            self.assertEqual(a[key].shape, (1,), key)
        self.assertAlmostEqual(a["loss"][0], a["lm_loss"][0] + 0.3 * a["mtp_loss"][0] +
                               1e-3 * a["aux_loss"][0], places=5)
        trained = {n for n in ref.expected_weight_shapes(cfg) if not ref.is_router_bias(n)}
        self.assertEqual({k[5:] for k in a if k.startswith("grad.")}, trained)
        for layer in (2, 3, 4):
            self.assertEqual(a[f"router_indices.{layer}"].dtype, np.int32)
            self.assertEqual(a[f"router_indices.{layer}"].shape, (32, 2))
        self.assertLess(np.linalg.norm(a64["logits"] - a["logits"]) / np.linalg.norm(a["logits"]),
                        1e-5)
        g, g64 = a["grad.model.layers.0.self_attn.q_a_proj.weight"], a64[
            "grad.model.layers.0.self_attn.q_a_proj.weight"]
        self.assertLess(np.linalg.norm(g - g64) / np.linalg.norm(g64), 1e-4)

        for key in ("losses", "lm_losses", "mtp_losses", "grad_norms"):
            self.assertEqual(b[key].shape, (2,), key)
        self.assertAlmostEqual(b["losses"][0], a["loss"][0], places=5)
        self.assertEqual(set(weights) - set(b), set())  # every stored weight comes back
        for name in weights:
            self.assertEqual(b[name].shape, weights[name].shape, name)
        bias = "model.layers.4.mlp.gate.e_score_correction_bias"
        moved = (b[bias] - weights[bias]) * 1e3  # two updates of ±γ or 0 each
        np.testing.assert_allclose(moved, np.round(moved), atol=1e-3)
        self.assertGreater(np.abs(b[bias] - weights[bias]).max(), 1e-4)
        self.assertTrue(np.array_equal(b["model.layers.4.embed_tokens.weight"],
                                       b["model.embed_tokens.weight"]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
