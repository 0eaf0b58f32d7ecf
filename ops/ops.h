#pragma once
// The op API: the one set of operations that models, the step engine, the optimizer and GRPO
// call. Each op runs on the backend of the device its tensors live on (ops/cpu, the oracle,
// or ops/cuda); all tensors of one call must share that device, or the call fails naming the op
// and the tensor that is elsewhere. Forward, backward-input and backward-weight are separate
// ops, so zero-bubble schedules can split B and W. The contracts (shapes, dtypes, overwrite or
// accumulate) are documented here once; every backend keeps them, and the backends' headers
// only add what is their own:
//   * inputs are contiguous fp32 tensors (weights may be bf16: converted on the fly, fp32
//     accumulation);
//   * the forward's results that a backward op reads again (the saved x of the linear and
//     RMSNorm weight and input gradients, SwiGLU's gate and up, attention's q, k, v and output,
//     the expert outputs of unpermute_backward and combine_rows_backward) may be bf16 tensors:
//     layers keep them so under bf16 activations, and the op widens them (exactly) first;
//   * outputs are preallocated by the caller with the documented shape;
//   * backward_input writes (overwrites) its result unless `accumulate` is true;
//   * backward_weight always accumulates (+=) into the gradient, so micro-batches add up;
//   * weights are stored [out_features, in_features] as in Hugging Face checkpoints.
#include <cstdint>
#include <string>
#include <vector>

#include "ops/types.h"
#include "runtime/core/tensor.h"

namespace trident::ops {

// ---- linear algebra (fp32 accumulation) ----
// C[M,N] = alpha · op(A) · op(B) + beta · C, row-major. op(X) = Xᵀ when trans_X.
void gemm(bool trans_a, bool trans_b, float alpha, const Tensor& a, const Tensor& b, float beta,
          Tensor& c);
// y[T, N] = x[T, K] · w[N, K]ᵀ
void linear_forward(const Tensor& x, const Tensor& w, Tensor& y);
// dx[T, K] (=|+=) dy[T, N] · w[N, K]
void linear_backward_input(const Tensor& dy, const Tensor& w, Tensor& dx, bool accumulate = false);
// dw[N, K] += dy[T, N]ᵀ · x[T, K]
void linear_backward_weight(const Tensor& dy, const Tensor& x, Tensor& dw);
// Grouped GEMM over experts: rows of x are grouped by expert (group g has counts[g] rows,
// consecutive). y_g = x_g · w[g]ᵀ with w [G, N, K]. Empty groups are allowed.
void grouped_linear_forward(const Tensor& x, const Tensor& w, const std::vector<int64_t>& counts,
                            Tensor& y);
void grouped_linear_backward_input(const Tensor& dy, const Tensor& w,
                                   const std::vector<int64_t>& counts, Tensor& dx,
                                   bool accumulate = false);
void grouped_linear_backward_weight(const Tensor& dy, const Tensor& x,
                                    const std::vector<int64_t>& counts, Tensor& dw);

// ---- element-wise and normalisation ----
// out[T, D] = table[ids[t], :]; ids are I32 in [0, V). With shard_begin ≥ 0 the table is one
// tensor-parallel shard holding the ids [shard_begin, shard_begin + V): other ids give zero rows
// (their rank adds them) and no gradient.
constexpr int64_t kWholeTable = -1;
void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out,
                       int64_t shard_begin = kWholeTable);
// dtable[V, D] += scatter of dout rows by ids (the ids of the shard, with shard_begin ≥ 0).
void embedding_backward_weight(const Tensor& ids, const Tensor& dout, Tensor& dtable,
                               int64_t shard_begin = kWholeTable);
// RMSNorm over the last dimension: y = x / sqrt(mean(x²) + eps) · w; rstd[T] saved for backward.
void rmsnorm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& y, Tensor& rstd);
void rmsnorm_backward_input(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd,
                            Tensor& dx, bool accumulate = false);
void rmsnorm_backward_weight(const Tensor& dy, const Tensor& x, const Tensor& rstd, Tensor& dw);
// SwiGLU: out = silu(gate) · up, all [T, F].
void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out);
void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate,
                     Tensor& dup);
// y += alpha · x (same numel)
void axpy(float alpha, const Tensor& x, Tensor& y);
// y = x · factor
void scale(const Tensor& x, float factor, Tensor& y);
// Columns of row-major f32 matrices with the same rows: dst[r, dst_begin + c] = src[r,
// src_begin + c] (accumulate: +=) for c < count, src viewed as [rows, src_width] and dst as
// [rows, dst_width] (MLA's split of its projections into heads' parts, MTP's concatenation).
void copy_columns(const Tensor& src, int64_t src_width, int64_t src_begin, Tensor& dst,
                  int64_t dst_width, int64_t dst_begin, int64_t count, bool accumulate = false);
// x (f32) := the nearest bf16 values, ties to even (the values a bf16 activation holds; NaN stays
// NaN, ±inf stays ±inf).
void round_to_bf16(Tensor& x);
// dst := src, one element count, f32 -> bf16 (nearest, ties to even; NaN stays NaN) or
// bf16 -> f32 (exact), or a plain copy when the dtypes agree: the bf16 compute copies of the
// weights, made where the weights live.
void convert(const Tensor& src, Tensor& dst);

// ---- rotary embedding (DeepSeek-V3 interleaved pairs, YaRN) ----
// DeepSeek-V3 style: adjacent (interleaved) pairs (x[2i], x[2i+1]) rotate by pos · inv_freq[i].
// The cos/sin table on `device`; every backend rotates by the numbers the CPU computes. YaRN:
// inv_freq blends interpolated and extrapolated frequencies with a linear ramp between the
// correction dims for beta_fast/beta_slow; cos/sin carry mscale(factor, mscale) /
// mscale(factor, mscale_all_dim) as in the reference implementation.
RopeTable make_rope_table(int64_t rotary_dim, int64_t max_positions, const YarnSettings& yarn,
                          Device device = Device::CPU);
// x [T, H, R] (R = rotary_dim; H may be 1), positions [T] (I32). y may alias x.
void rope_forward(const Tensor& x, const Tensor& positions, const RopeTable& table, Tensor& y);
// Rotation by the opposite angle; dx may alias dy.
void rope_backward(const Tensor& dy, const Tensor& positions, const RopeTable& table, Tensor& dx);

// ---- causal attention ----
// Separate q/k and v head dims (MLA: 192 and 128). Rows are the tokens of `batch` sequences of
// length `seq` (row = b·seq + s).
// q, k [B·S, H, Dqk]; v [B·S, H, Dv] -> out [B·S, H, Dv]; lse [B, H, S] saved for backward.
void attention_forward(const AttentionShape& shape, const Tensor& q, const Tensor& k,
                       const Tensor& v, Tensor& out, Tensor& lse);
// Writes dq, dk, dv (overwrite).
void attention_backward(const AttentionShape& shape, const Tensor& dout, const Tensor& q,
                        const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                        Tensor& dq, Tensor& dk, Tensor& dv);

// ---- MLA decoding from the latent cache ----
// Attention of the new tokens of `shape` against the latent cache with kv_b_proj absorbed (the
// per-token keys and values are never expanded). q [B·n, H, Dn + Dr] (its nope columns are read),
// q_rope [B·n, H, Dr] (rotated), kv_b [H·(Dn + Dv), R] (f32 or bf16; per head Dn key rows, then
// Dv value rows), cache_latent [B, C, R] and cache_k_rope [B, C, Dr] (rotated) filled up to
// start + n -> out [B·n, H·Dv] (overwrite). For the token at position t of sequence b and head h:
//   q_lat = W_kᵀ q_nope ;  score_s = scale · (q_lat · latent[b, s] + q_rope · k_rope[b, s]), s ≤ t
//   out = W_v · Σ_s softmax(score)_s · latent[b, s]
void latent_attention_decode(const LatentAttentionShape& shape, const Tensor& q,
                             const Tensor& q_rope, const Tensor& kv_b, const Tensor& cache_latent,
                             const Tensor& cache_k_rope, Tensor& out);

// ---- router and expert permutation ----
// logits [T, E] + bias [E] (selection only) -> indices [T, k] (I32, descending biased score),
// weights [T, k] (unbiased scores of the chosen experts, normalised, × scaling), scores [T, E]
// (sigmoid/softmax scores, saved for backward).
void router_forward(const RouterSettings& settings, const Tensor& logits, const Tensor& bias,
                    Tensor& indices, Tensor& weights, Tensor& scores);
// dweights [T, k] -> dlogits [T, E] (overwrite). Selection is not differentiated.
void router_backward(const RouterSettings& settings, const Tensor& dweights, const Tensor& indices,
                     const Tensor& scores, Tensor& dlogits);
// How many slots of indices [T, k] (I32) chose each of `experts` experts, on the host (on a GPU
// one synchronisation); an index outside [0, experts) is an error.
std::vector<int64_t> count_per_expert(const Tensor& indices, int64_t experts);
// The plan on the device of indices [T, k] (I32); tokens_per_expert is always on the host.
// Stable: rows of one expert keep token order.
PermutePlan make_permute_plan(const Tensor& indices, int64_t experts);
// out [T·k, D] = x rows in expert order.
void permute_forward(const PermutePlan& plan, const Tensor& x, Tensor& out);
// dx [T, D] (=|+=) sum of the rows that came from each token.
void permute_backward(const PermutePlan& plan, const Tensor& dout, Tensor& dx,
                      bool accumulate = false);
// out [T, D] = Σ_j weights[t, j] · y[slot_to_row[t·k+j]]
void unpermute_forward(const PermutePlan& plan, const Tensor& y, const Tensor& weights,
                       Tensor& out);
// dy [T·k, D] = weights · dout rows; dweights [T, k] = <dout[t], y[row]>.
void unpermute_backward(const PermutePlan& plan, const Tensor& dout, const Tensor& y,
                        const Tensor& weights, Tensor& dy, Tensor& dweights);

// ---- the sequence-wise balance loss (docs/model.md, "Output and losses") ----
// Per sequence b: L_b = Σ_e g_e · P_e with P_e = mean_t s_{e,t} / Σ_e' s_{e',t} and
// g_e = f_e = E / (k · S) · #{t : e chosen at t}, plus, with device terms,
// w_dev · mean_{e' on d(e)} f_e' + w_comm · D / (M · S) · #{t : t reaches d(e)}.
// scores [rows·S, E], indices [rows·S, k] (I32) -> per_expert [rows, E] = g (overwrite);
// returns Σ_b L_b to the host (in double; on a GPU one synchronisation).
double balance_loss_forward(const BalanceLossShape& shape, const Tensor& scores,
                            const Tensor& indices, Tensor& per_expert);
// dlogits [rows·S, E] += coef · ∂(Σ_b L_b)/∂logits through the score function, g held constant.
void balance_loss_backward(const BalanceLossShape& shape, float coef, const Tensor& scores,
                           const Tensor& per_expert, Tensor& dlogits);

// ---- cross-entropy over the vocabulary ----
// logits [T, V]; targets [T] (I32, kIgnoreIndex = skip). lse [T] saved for backward.
CrossEntropyResult cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& lse);
// dlogits = (softmax − onehot) · grad_scale for counted tokens, 0 for ignored (overwrite).
// grad_scale is typically 1 / (total counted tokens in the global batch).
void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                            float grad_scale, Tensor& dlogits);
// log p(target) per token (for scoring and GRPO); ignored tokens get 0.
void token_logprobs(const Tensor& logits, const Tensor& targets, Tensor& logprobs);
// GRPO's scores: per token with a target, log p(target) and the entropy of softmax(logits[t]),
// in double and returned to the host (on a GPU one synchronisation); ignored tokens give {0, 0}.
std::vector<TokenScore> token_scores(const Tensor& logits, const Tensor& targets);
// The gradient of Σ_t weights[t] · log p(target_t): dlogits[t] = weights[t] · (onehot(target_t) −
// softmax(logits[t])) (overwrite; 0 for ignored tokens and zero weights). weights [T] on the host.
void token_logprobs_backward(const Tensor& logits, const Tensor& targets,
                             const std::vector<double>& weights, Tensor& dlogits);

// ---- rows by index: the expert-parallel dispatch's send rows and its combine ----
// out[r, :] = x[index[r], :]; index i32 [R] with entries in [0, rows of x); out [R, width].
void gather_rows(const Tensor& x, const Tensor& index, Tensor& out);
// For the tokens i < n = slot_row.numel() / top_k: out[first_token + i, :] = Σ_j
// weights[first_token + i, j] · rows[slot_row[i·top_k + j], :] over the slots j < top_k whose
// row is not −1 (a dropped slot), added in slot order; every weight is 1 when `weights` is
// undefined. Other rows of out are untouched. weights [T, top_k] f32; slot_row i32.
void combine_rows(const Tensor& rows, const Tensor& slot_row, int64_t top_k, const Tensor& weights,
                  int64_t first_token, Tensor& out);
// Its gradient for dout [T, width]: d_rows[slot_row[s], :] = w · dout[t, :] and d_weights[t, j]
// = dout[t, :] · rows[slot_row[s], :] (added in double; 0 for a dropped slot), for each slot
// s = i·top_k + j of the tokens t = first_token + i, w = weights[t, j]; top_k is weights' last
// dimension.
void combine_rows_backward(const Tensor& dout, const Tensor& rows, const Tensor& weights,
                           const Tensor& slot_row, int64_t first_token, Tensor& d_rows,
                           Tensor& d_weights);

// ---- vocabulary shards: cross-entropy over logits split by columns across tensor parallelism ----
// A rank holds logits [T, V/tp] for the ids [shard_begin, shard_begin + V/tp); targets [T] are
// global ids (kIgnoreIndex: not counted). The caller combines the pieces with all-reduces
// (parallel/tp/vocab_parallel.cpp).
// row_max[t] = the largest of the shard's logits of row t (f32 [T]).
void shard_row_max(const Tensor& logits, Tensor& row_max);
// Given row_max, the row max over the whole vocabulary: sums[t] = Σ_v exp(logits[t, v] −
// row_max[t]) over the shard (added in double, stored f32) and sums[T + t] = the target's logit
// where this shard holds it, else 0 (f32 [2T]).
void shard_softmax_sums(const Tensor& logits, const Tensor& targets, int64_t shard_begin,
                        const Tensor& row_max, Tensor& sums);
// dlogits = (exp(logits − lse[t]) − onehot(target)) · grad_scale over the shard's columns, 0 for
// ignored rows (overwrite); lse [T] is the whole vocabulary's.
void shard_cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                                  int64_t shard_begin, float grad_scale, Tensor& dlogits);

// GRPO's scores over a shard, one row per completion token (logits [n, V/tp], targets [n]
// global ids, row_max [n] the whole vocabulary's row maxima): per row, in double with libm's
// exp, Z = Σ_v exp(l_v − max), W = Σ_v exp(l_v − max) · l_v over the shard's columns and the
// target's logit where the shard holds it (else 0), returned to the host as [Z, W, z] per row
// (on a GPU one synchronisation).
std::vector<double> shard_softmax_stats(const Tensor& logits, const Tensor& targets,
                                        int64_t shard_begin, const Tensor& row_max);
// The gradient of Σ_i weights[i] · log p(target_i) over the shard: dlogits[i, v] = −w_i ·
// exp(l_v − lse_i), plus w_i at the target's column where the shard holds it; 0 for rows whose
// weight is 0 (overwrite). lse and weights [n] on the host, lse the whole vocabulary's.
void shard_logprob_backward(const Tensor& logits, const Tensor& targets, int64_t shard_begin,
                            const std::vector<double>& lse, const std::vector<double>& weights,
                            Tensor& dlogits);

// ---- devices ----
// Why no CUDA tensor can be made in this process (a build without the CUDA backend, no usable
// GPU, with the driver's reason), or "" when one can.
std::string cuda_unavailable_reason();
// The name the CUDA driver gives this process's GPU ("NVIDIA H100 80GB HBM3"), or "" when there
// is none.
std::string cuda_device_name();

// ---- optimizer ----
// One AdamW step, fp32 arithmetic, on `param` (f32) with `grad` (f32) and the moments (both f32
// or both bf16: read as fp32, written back rounded to nearest even), all of one element count.
// Element-wise, so a contiguous range of a parameter (a ZeRO-1 shard) updates exactly as the
// whole parameter would:
//   g = grad · step.grad_scale ;  p <- p·(1 − lr·wd) when step.decay
//   m <- β1·m + (1 − β1)·g ;  v <- β2·v + (1 − β2)·g²
//   p <- p − lr/(1 − β1^t) · m / (sqrt(v)/sqrt(1 − β2^t) + eps)
// `nonfinite` (i64[1] on the same device, optional) has the number of updated weights that came
// out NaN or infinite added to it: the finiteness check of the update, in the same pass.
void adamw_update(const AdamWSettings& settings, const AdamWStep& step, Tensor& param,
                  const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq,
                  Tensor* nonfinite = nullptr);
// Σ x² over every element of every piece (f32), accumulated in double and returned to the host:
// on a GPU the one synchronisation the global gradient norm needs. The order of the additions
// depends on the pieces' sizes alone, so every rank, run and thread count adds alike.
double sum_of_squares(const std::vector<Tensor>& pieces);
// For each piece (f32; an undefined piece counts 0), how many of its elements are NaN or
// infinite; all counts come back to the host together.
std::vector<int64_t> count_nonfinite(const std::vector<Tensor>& pieces);

}  // namespace trident::ops
