#pragma once
// The settings, shapes and results that the op API (ops/ops.h) and every backend share. They
// hold no backend state: a RopeTable's or a PermutePlan's tensors live on the device of the
// backend that made them.
#include <cmath>
#include <cstdint>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/core/tensor.h"

namespace trident::ops {

struct AttentionShape {
  int64_t batch = 1;
  int64_t seq = 1;
  int64_t heads = 1;
  int64_t qk_dim = 1;
  int64_t v_dim = 1;
  float scale = 1.0f;  // softmax scale (MLA: qk_dim^-0.5 · mscale²)
};

// One call of ops::latent_attention_decode: `batch` sequences, each with `fresh` new tokens at
// positions [start, start + fresh) that attend causally to a latent cache of `capacity`
// positions per sequence (its first start + fresh filled). Per head: key-nope dims `nope_dim`,
// shared rotary key dims `rope_dim`, value dims `v_dim`; the cache holds `kv_lora` latent
// numbers per position.
struct LatentAttentionShape {
  int64_t batch = 1;
  int64_t fresh = 1;
  int64_t start = 0;
  int64_t capacity = 1;
  int64_t heads = 1;
  int64_t nope_dim = 1;
  int64_t rope_dim = 0;
  int64_t v_dim = 1;
  int64_t kv_lora = 1;
  float scale = 1.0f;  // softmax scale, as AttentionShape's
  int64_t qk_dim() const { return nope_dim + rope_dim; }
  int64_t rows() const { return batch * fresh; }
};

// Checks the shapes of one ops::latent_attention_decode call (every backend runs these).
inline void check_latent_attention(const LatentAttentionShape& shape, const Tensor& q,
                                   const Tensor& q_rope, const Tensor& kv_b,
                                   const Tensor& cache_latent, const Tensor& cache_k_rope,
                                   const Tensor& out) {
  const LatentAttentionShape& s = shape;
  TRIDENT_CHECK(s.batch > 0 && s.fresh > 0 && s.start >= 0 && s.heads > 0 && s.nope_dim > 0 &&
                    s.rope_dim >= 0 && s.v_dim > 0 && s.kv_lora > 0,
                "latent_attention_decode: batch ", s.batch, ", fresh ", s.fresh, ", start ",
                s.start, ", heads ", s.heads, ", dims ", s.nope_dim, "/", s.rope_dim, "/", s.v_dim,
                ", kv_lora ", s.kv_lora, " (all positive, start and rope_dim >= 0)");
  TRIDENT_CHECK(s.start + s.fresh <= s.capacity, "latent_attention_decode: positions up to ",
                s.start + s.fresh, " in a cache of ", s.capacity);
  const auto expect = [](const Tensor& t, int64_t numel, const char* what) {
    TRIDENT_CHECK(t.numel() == numel, "latent_attention_decode: ", what, " is ", t.describe(),
                  ", expected ", numel, " elements");
  };
  expect(q, s.rows() * s.heads * s.qk_dim(), "q [rows, heads, nope + rope]");
  expect(q_rope, s.rows() * s.heads * s.rope_dim, "q_rope [rows, heads, rope]");
  expect(kv_b, s.heads * (s.nope_dim + s.v_dim) * s.kv_lora, "kv_b [heads·(nope + v), kv_lora]");
  expect(cache_latent, s.batch * s.capacity * s.kv_lora, "cache_latent [batch, capacity, kv_lora]");
  expect(cache_k_rope, s.batch * s.capacity * s.rope_dim, "cache_k_rope [batch, capacity, rope]");
  expect(out, s.rows() * s.heads * s.v_dim, "out [rows, heads·v]");
}

// One call of ops::balance_loss_forward/backward: the router's `scores` and chosen `indices` of
// `rows` sequences of `seq` tokens, `experts` experts, top_k of them per token. `sigmoid`: the
// scores are sigmoids (else a softmax). DeepSeek-V2's device-level and communication losses
// fold in with the experts spread evenly over `devices` (at most `max_devices` reached per
// token); both weights 0 leaves DeepSeek-V3's expert-level loss alone.
struct BalanceLossShape {
  int64_t rows = 1;
  int64_t seq = 1;
  int64_t experts = 1;
  int64_t top_k = 1;
  bool sigmoid = true;
  int64_t devices = 1;
  int64_t max_devices = 1;
  double device_weight = 0.0;
  double comm_weight = 0.0;
  constexpr bool device_terms() const { return device_weight > 0.0 || comm_weight > 0.0; }
};

// Checks the shapes of one balance-loss call (every backend runs these).
inline void check_balance_loss(const BalanceLossShape& s, const Tensor& scores,
                               const Tensor& per_expert) {
  TRIDENT_CHECK(s.rows > 0 && s.seq > 0 && s.experts > 0 && s.top_k > 0 && s.devices > 0 &&
                    s.experts % s.devices == 0 && s.max_devices > 0,
                "balance loss: rows ", s.rows, ", seq ", s.seq, ", experts ", s.experts, ", top_k ",
                s.top_k, ", devices ", s.devices, ", max_devices ", s.max_devices,
                " (all must be positive, and devices must divide experts)");
  TRIDENT_CHECK(scores.numel() == s.rows * s.seq * s.experts, "balance loss: scores ",
                scores.describe(), ", expected [", s.rows * s.seq, ", ", s.experts, "]");
  TRIDENT_CHECK(per_expert.numel() == s.rows * s.experts, "balance loss: per-expert weights ",
                per_expert.describe(), ", expected [", s.rows, ", ", s.experts, "]");
}

constexpr int32_t kIgnoreIndex = -100;

// One token's score under softmax(logits): log p(target) and the entropy −Σ p log p.
struct TokenScore {
  double logprob = 0.0;
  double entropy = 0.0;
};

struct CrossEntropyResult {
  double loss_sum = 0.0;  // Σ over counted tokens of −log p(target)
  int64_t tokens = 0;     // tokens counted (target != ignore index)
};

struct RouterSettings {
  int64_t experts = 1;
  int64_t top_k = 1;
  int64_t n_group = 1;     // experts are split into n_group contiguous groups
  int64_t topk_group = 1;  // groups a token may use
  // A group's score is the sum of its group_top best biased scores: 2 for DeepSeek-V3
  // (noaux_tc), 1 for DeepSeek-V2's group_limited_greedy (the group's best expert).
  int64_t group_top = 2;
  float scaling = 1.0f;   // routed_scaling_factor
  bool normalize = true;  // normalise the selected weights to sum 1 (norm_topk_prob)
  bool sigmoid = true;    // sigmoid scores (DeepSeek-V3); false = softmax
  // Node-limited routing (parallel.max_nodes_per_token): experts sit on nodes of
  // experts_per_node consecutive experts, and a token may use at most max_nodes of them: those
  // with the largest sum of their top ceil(k / max_nodes) biased scores. Applied before the
  // group limit and the top-k. 0 in either field = no node limit.
  int64_t experts_per_node = 0;
  int64_t max_nodes = 0;
};

// Token permutation by expert. Slot j of token t (flattened slot t·k + j) goes to the expert
// the router chose for it; rows of one expert keep token order (stable).
struct PermutePlan {
  int64_t tokens = 0;                      // T
  int64_t top_k = 0;                       // k (slots per token)
  std::vector<int64_t> tokens_per_expert;  // [E], on the host: it sizes GEMMs and all-to-alls
  Tensor slot_to_row;                      // [T·k] I32: slot -> row in permuted order
  Tensor row_to_token;                     // [T·k] I32: permuted row -> source token
};

struct YarnSettings {
  double theta = 10000.0;
  double factor = 1.0;  // 1 = plain RoPE
  int64_t original_max_position = 4096;
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double mscale = 1.0;
  double mscale_all_dim = 0.0;
};

struct RopeTable {
  int64_t rotary_dim = 0;  // even; pairs = rotary_dim / 2
  int64_t max_positions = 0;
  Tensor cos;  // [max_positions, rotary_dim / 2], already times the YaRN mscale ratio
  Tensor sin;
};

// AdamW's hyper-parameters (torch.optim.AdamW semantics; docs/model.md).
struct AdamWSettings {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

// What changes from one AdamW update to the next.
struct AdamWStep {
  double lr = 0.0;
  int64_t step = 1;         // 1-based: the bias corrections' exponent
  bool decay = true;        // this tensor is weight-decayed
  float grad_scale = 1.0f;  // the gradient is read as grad · grad_scale (the clip coefficient)
};

// The fp32 numbers an AdamW kernel multiplies by, worked out once on the host (in double, then
// rounded) so that every backend and every shard of a parameter uses the same ones.
struct AdamWScalars {
  float beta1 = 0.0f;
  float beta2 = 0.0f;
  float step_size = 0.0f;   // lr / (1 − β1^t)
  float bias2_sqrt = 0.0f;  // sqrt(1 − β2^t)
  float eps = 0.0f;
  float keep = 1.0f;  // 1 − lr·wd for decayed tensors, else 1
  float grad_scale = 1.0f;
};

inline AdamWScalars adamw_scalars(const AdamWSettings& settings, const AdamWStep& step) {
  const auto t = static_cast<double>(step.step);
  AdamWScalars s;
  s.beta1 = static_cast<float>(settings.beta1);
  s.beta2 = static_cast<float>(settings.beta2);
  s.step_size = static_cast<float>(step.lr / (1.0 - std::pow(settings.beta1, t)));
  s.bias2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(settings.beta2, t)));
  s.eps = static_cast<float>(settings.eps);
  s.keep = step.decay ? static_cast<float>(1.0 - step.lr * settings.weight_decay) : 1.0f;
  s.grad_scale = step.grad_scale;
  return s;
}

// yarn_get_mscale: 0.1 · m · ln(scale) + 1 for scale > 1, else 1.
inline double yarn_mscale(double scale, double m) {
  return scale <= 1.0 ? 1.0 : 0.1 * m * std::log(scale) + 1.0;
}

// The rows of ops::copy_columns, after checking that src and dst hold whole rows of their widths,
// as many of them, and that both column ranges lie inside their rows. Each backend checks the
// dtype and the device itself.
inline int64_t column_copy_rows(const Tensor& src, int64_t src_width, int64_t src_begin,
                                const Tensor& dst, int64_t dst_width, int64_t dst_begin,
                                int64_t count) {
  TRIDENT_CHECK(src_width > 0 && dst_width > 0 && count >= 0 && src_begin >= 0 && dst_begin >= 0 &&
                    src_begin + count <= src_width && dst_begin + count <= dst_width,
                "copy_columns: columns [", src_begin, ", ", src_begin + count, ") of rows of ",
                src_width, " into [", dst_begin, ", ", dst_begin + count, ") of rows of ",
                dst_width, " lie outside the rows");
  TRIDENT_CHECK(src.numel() % src_width == 0 && dst.numel() % dst_width == 0 &&
                    src.numel() / src_width == dst.numel() / dst_width,
                "copy_columns: ", src.describe(), " in rows of ", src_width, " and ",
                dst.describe(), " in rows of ", dst_width, " do not have the same rows");
  return src.numel() / src_width;
}

}  // namespace trident::ops
