// Causal softmax attention. Each (batch, head) is processed in query blocks: a block of queries
// only meets the keys at or before its last row, so the causal half of the score matrix is
// skipped. Heads of at most kSmallHeadDim dimensions (the `small` presets) go through a product
// written for them (ops/cpu/small_gemm.h), in strips of four queries that stop at their own last
// key; wider heads through OpenBLAS sgemm calls that read q/k/v in place through leading
// dimensions (no gathers). Heads run in parallel on OpenMP threads when there are enough of
// them, otherwise one after another with each sgemm cut over the threads (ops/cpu/sgemm.cpp).
#include "ops/cpu/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/cpu/detail.h"
#include "ops/cpu/small_gemm.h"
#include "ops/cpu/vector_math.h"
#include "runtime/core/profiler.h"

namespace trident::ops::cpu {
namespace {

// Query rows per block of the sgemm path.
constexpr int64_t kQueryBlock = 128;
// Heads whose query/key and value dimensions are both at most this use small_gemm: below it an
// sgemm call spends more time packing its operands and zeroing C than multiplying.
constexpr int64_t kSmallHeadDim = 64;
// Query rows per strip of the small-head path (small_gemm's strip height), and per block of its
// backward (dK and dV are accumulated once per block).
constexpr int64_t kStrip = 4;
constexpr int64_t kSmallBackwardBlock = 32;
// small_gemm's vector of columns: the small-head path's scratch rows come in whole vectors.
constexpr int64_t kVector = 8;

// Pointers and leading dimensions of one (batch, head) slice.
struct HeadView {
  int64_t q_ld = 0;  // H · Dqk
  int64_t v_ld = 0;  // H · Dv
  int64_t q_offset = 0;
  int64_t v_offset = 0;
  int64_t lse_offset = 0;
};

HeadView head_view(const AttentionShape& s, int64_t b, int64_t h) {
  HeadView view;
  view.q_ld = s.heads * s.qk_dim;
  view.v_ld = s.heads * s.v_dim;
  view.q_offset = b * s.seq * view.q_ld + h * s.qk_dim;
  view.v_offset = b * s.seq * view.v_ld + h * s.v_dim;
  view.lse_offset = (b * s.heads + h) * s.seq;
  return view;
}

void check_shape(const AttentionShape& s, const Tensor& q, const Tensor& k, const Tensor& v,
                 const Tensor& out, const Tensor& lse) {
  TRIDENT_CHECK(s.batch >= 0 && s.seq >= 0 && s.heads > 0 && s.qk_dim > 0 && s.v_dim > 0,
                "bad attention shape B=", s.batch, " S=", s.seq, " H=", s.heads, " Dqk=", s.qk_dim,
                " Dv=", s.v_dim);
  const int64_t tokens = s.batch * s.seq;
  detail::check_f32(q, "attention q");
  detail::check_f32(k, "attention k");
  detail::check_f32(v, "attention v");
  detail::check_f32(out, "attention out");
  detail::check_f32(lse, "attention lse");
  detail::check_numel(q, tokens * s.heads * s.qk_dim, "attention q");
  detail::check_numel(k, tokens * s.heads * s.qk_dim, "attention k");
  detail::check_numel(v, tokens * s.heads * s.v_dim, "attention v");
  detail::check_numel(out, tokens * s.heads * s.v_dim, "attention out");
  detail::check_numel(lse, s.batch * s.heads * s.seq, "attention lse");
}

bool small_heads(const AttentionShape& s) {
  return s.qk_dim <= kSmallHeadDim && s.v_dim <= kSmallHeadDim;
}

// Runs run(b, h, scratch) for every (batch, head). With at least as many heads as threads, or
// for small heads (`always_spread`: their products are never cut), the heads are spread over
// OpenMP threads, each with its own scratch; otherwise heads run one after another and each
// product is cut over the threads (ops/cpu/sgemm.cpp).
template <typename PerHead>
void for_each_head(const AttentionShape& s, size_t scratch_floats, bool always_spread,
                   const PerHead& run) {
  const int64_t units = s.batch * s.heads;
  const int threads = omp_get_max_threads();
  if (threads > 1 && units > 1 && (units >= threads || always_spread)) {
    const detail::SingleThreadedBlasInTeam single_threaded;
#pragma omp parallel
    {
      std::vector<float> scratch(scratch_floats);
#pragma omp for schedule(dynamic)
      for (int64_t unit = 0; unit < units; ++unit)
        run(unit / s.heads, unit % s.heads, scratch.data());
    }
    return;
  }
  std::vector<float> scratch(scratch_floats);
  for (int64_t unit = 0; unit < units; ++unit) run(unit / s.heads, unit % s.heads, scratch.data());
}

// Scores of one query block (rows i0 … i0 + rows − 1, `ld` apart, each with keys 0 … i0 + rows − 1)
// into probabilities in place: row r sees keys 0 … i0 + r; the keys after those are set to 0.
// Writes each row's log-sum-exp.
TRIDENT_AVX2_CLONE void causal_softmax_rows(float* p, int64_t ld, int64_t i0, int64_t rows,
                                            float* lse) {
  const int64_t keys = i0 + rows;
  for (int64_t r = 0; r < rows; ++r) {
    float* row = p + r * ld;
    const int64_t visible = i0 + r + 1;
    const float max_score = detail::max_f32(row, visible);
    const double sum = detail::exp_shifted(row, max_score, row, visible);
    const float inv = static_cast<float>(1.0 / sum);
#pragma omp simd
    for (int64_t j = 0; j < visible; ++j) row[j] *= inv;
    std::fill(row + visible, row + keys, 0.0f);
    lse[r] = max_score + static_cast<float>(std::log(sum));
  }
}

// The backward of causal_softmax_rows for one query block: p holds the recomputed scores and
// becomes P = e^(score − lse), dp holds dO·Vᵀ and becomes dS = P ∘ (dO·Vᵀ − Δ); the hidden keys
// of both are set to 0.
TRIDENT_AVX2_CLONE void causal_softmax_gradient_rows(float* p, float* dp, int64_t ld, int64_t i0,
                                                     int64_t rows, const float* lse,
                                                     const float* delta) {
  const int64_t keys = i0 + rows;
  for (int64_t r = 0; r < rows; ++r) {
    float* prow = p + r * ld;
    float* dprow = dp + r * ld;
    const int64_t visible = i0 + r + 1;
    const float row_lse = lse[r];
    const float row_delta = delta[r];
#pragma omp simd
    for (int64_t j = 0; j < visible; ++j) {
      prow[j] = detail::exp_f32(prow[j] - row_lse);
      dprow[j] = prow[j] * (dprow[j] - row_delta);
    }
    std::fill(prow + visible, prow + keys, 0.0f);
    std::fill(dprow + visible, dprow + keys, 0.0f);
  }
}

void forward_head(const AttentionShape& s, int64_t b, int64_t h, const Tensor& q, const Tensor& k,
                  const Tensor& v, Tensor& out, Tensor& lse, float* p) {
  const int64_t block = std::min(kQueryBlock, s.seq);
  const HeadView hv = head_view(s, b, h);
  const float* qh = q.data<float>() + hv.q_offset;
  const float* kh = k.data<float>() + hv.q_offset;
  const float* vh = v.data<float>() + hv.v_offset;
  float* oh = out.data<float>() + hv.v_offset;
  float* lh = lse.data<float>() + hv.lse_offset;
  for (int64_t i0 = 0; i0 < s.seq; i0 += block) {
    const int64_t rows = std::min(block, s.seq - i0);
    const int64_t keys = i0 + rows;
    detail::sgemm(false, true, rows, keys, s.qk_dim, s.scale, qh + i0 * hv.q_ld, hv.q_ld, kh,
                  hv.q_ld, 0.0f, p, s.seq);
    causal_softmax_rows(p, s.seq, i0, rows, lh + i0);
    detail::sgemm(false, false, rows, s.v_dim, keys, 1.0f, p, s.seq, vh, hv.v_ld, 0.0f,
                  oh + i0 * hv.v_ld, hv.v_ld);
  }
}

// Δ_i = <dO_i, O_i> for every query row of one head (both backward paths).
TRIDENT_AVX2_CLONE void row_deltas(const AttentionShape& s, const HeadView& hv, const float* doh,
                                   const float* oh, float* delta) {
  for (int64_t i = 0; i < s.seq; ++i) {
    delta[i] = static_cast<float>(detail::dot_f64(doh + i * hv.v_ld, oh + i * hv.v_ld, s.v_dim));
  }
}

// Scratch: probabilities and their gradients for one query block, plus Δ for the head.
size_t backward_scratch(const AttentionShape& s) {
  const int64_t block = std::min(kQueryBlock, s.seq);
  return static_cast<size_t>(2 * block * s.seq + s.seq);
}

void backward_head(const AttentionShape& s, int64_t b, int64_t h, const Tensor& dout,
                   const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                   const Tensor& lse, Tensor& dq, Tensor& dk, Tensor& dv, float* scratch) {
  const int64_t block = std::min(kQueryBlock, s.seq);
  float* p = scratch;
  float* dp = scratch + block * s.seq;
  float* delta = dp + block * s.seq;
  const HeadView hv = head_view(s, b, h);
  const float* qh = q.data<float>() + hv.q_offset;
  const float* kh = k.data<float>() + hv.q_offset;
  const float* vh = v.data<float>() + hv.v_offset;
  const float* oh = out.data<float>() + hv.v_offset;
  const float* doh = dout.data<float>() + hv.v_offset;
  const float* lh = lse.data<float>() + hv.lse_offset;
  float* dqh = dq.data<float>() + hv.q_offset;
  float* dkh = dk.data<float>() + hv.q_offset;
  float* dvh = dv.data<float>() + hv.v_offset;
  row_deltas(s, hv, doh, oh, delta);
  for (int64_t i0 = 0; i0 < s.seq; i0 += block) {
    const int64_t rows = std::min(block, s.seq - i0);
    const int64_t keys = i0 + rows;
    const float* q_block = qh + i0 * hv.q_ld;
    const float* do_block = doh + i0 * hv.v_ld;
    detail::sgemm(false, true, rows, keys, s.qk_dim, s.scale, q_block, hv.q_ld, kh, hv.q_ld, 0.0f,
                  p, s.seq);
    detail::sgemm(false, true, rows, keys, s.v_dim, 1.0f, do_block, hv.v_ld, vh, hv.v_ld, 0.0f, dp,
                  s.seq);
    causal_softmax_gradient_rows(p, dp, s.seq, i0, rows, lh + i0, delta + i0);
    // dK and dV rows of this head belong to this head alone: no other thread writes them.
    detail::sgemm(true, false, keys, s.v_dim, rows, 1.0f, p, s.seq, do_block, hv.v_ld, 1.0f, dvh,
                  hv.v_ld);
    detail::sgemm(false, false, rows, s.qk_dim, keys, s.scale, dp, s.seq, kh, hv.q_ld, 0.0f,
                  dqh + i0 * hv.q_ld, hv.q_ld);
    detail::sgemm(true, false, keys, s.qk_dim, rows, s.scale, dp, s.seq, q_block, hv.q_ld, 1.0f,
                  dkh, hv.q_ld);
  }
}

// ---- Small heads: small_gemm, the causal triangle skipped strip by strip ----

// n rounded up to whole vectors: the columns of scores a strip ending at row n (exclusive)
// computes, so that small_gemm runs whole vectors.
int64_t whole_vectors(int64_t n) { return (n + kVector - 1) / kVector * kVector; }

// Key columns of the small-head path's scratch rows.
int64_t padded_keys(const AttentionShape& s) { return whole_vectors(s.seq); }

// dst[c · ld + j] = src[j · src_ld + c] for j < rows, c < cols, and 0 for rows ≤ j < ld.
void transpose_into(const float* src, int64_t src_ld, int64_t rows, int64_t cols, float* dst,
                    int64_t ld) {
  for (int64_t c = 0; c < cols; ++c) {
    float* out = dst + c * ld;
    for (int64_t j = 0; j < rows; ++j) out[j] = src[j * src_ld + c];
    std::fill(out + rows, out + ld, 0.0f);
  }
}

// Kᵀ, then one strip of probabilities.
size_t small_forward_scratch(const AttentionShape& s) {
  return static_cast<size_t>((s.qk_dim + kStrip) * padded_keys(s));
}

TRIDENT_AVX2_CLONE void small_forward_head(const AttentionShape& s, int64_t b, int64_t h,
                                           const Tensor& q, const Tensor& k, const Tensor& v,
                                           Tensor& out, Tensor& lse, float* scratch) {
  const int64_t ld = padded_keys(s);
  const HeadView hv = head_view(s, b, h);
  const float* qh = q.data<float>() + hv.q_offset;
  const float* vh = v.data<float>() + hv.v_offset;
  float* oh = out.data<float>() + hv.v_offset;
  float* lh = lse.data<float>() + hv.lse_offset;
  float* kt = scratch;
  float* p = scratch + s.qk_dim * ld;
  transpose_into(k.data<float>() + hv.q_offset, hv.q_ld, s.seq, s.qk_dim, kt, ld);
  for (int64_t i0 = 0; i0 < s.seq; i0 += kStrip) {
    const int64_t rows = std::min(kStrip, s.seq - i0);
    const int64_t keys = i0 + rows;
    detail::small_gemm(rows, whole_vectors(keys), s.qk_dim, s.scale,
                       {qh + i0 * hv.q_ld, hv.q_ld, 1}, kt, ld, p, ld, false);
    causal_softmax_rows(p, ld, i0, rows, lh + i0);
    detail::small_gemm(rows, s.v_dim, keys, 1.0f, {p, ld, 1}, vh, hv.v_ld, oh + i0 * hv.v_ld,
                       hv.v_ld, false);
  }
}

// Kᵀ, Vᵀ, a block of probabilities and one of their gradients, and Δ for the head.
size_t small_backward_scratch(const AttentionShape& s) {
  const int64_t ld = padded_keys(s);
  return static_cast<size_t>((s.qk_dim + s.v_dim + 2 * kSmallBackwardBlock) * ld + s.seq);
}

TRIDENT_AVX2_CLONE void small_backward_head(const AttentionShape& s, int64_t b, int64_t h,
                                            const Tensor& dout, const Tensor& q, const Tensor& k,
                                            const Tensor& v, const Tensor& out, const Tensor& lse,
                                            Tensor& dq, Tensor& dk, Tensor& dv, float* scratch) {
  const int64_t ld = padded_keys(s);
  const HeadView hv = head_view(s, b, h);
  const float* qh = q.data<float>() + hv.q_offset;
  const float* kh = k.data<float>() + hv.q_offset;
  const float* oh = out.data<float>() + hv.v_offset;
  const float* doh = dout.data<float>() + hv.v_offset;
  const float* lh = lse.data<float>() + hv.lse_offset;
  float* dqh = dq.data<float>() + hv.q_offset;
  float* dkh = dk.data<float>() + hv.q_offset;
  float* dvh = dv.data<float>() + hv.v_offset;
  float* kt = scratch;
  float* vt = kt + s.qk_dim * ld;
  float* p = vt + s.v_dim * ld;
  float* dp = p + kSmallBackwardBlock * ld;
  float* delta = dp + kSmallBackwardBlock * ld;
  transpose_into(kh, hv.q_ld, s.seq, s.qk_dim, kt, ld);
  transpose_into(v.data<float>() + hv.v_offset, hv.v_ld, s.seq, s.v_dim, vt, ld);
  row_deltas(s, hv, doh, oh, delta);
  for (int64_t i0 = 0; i0 < s.seq; i0 += kSmallBackwardBlock) {
    const int64_t rows = std::min(kSmallBackwardBlock, s.seq - i0);
    const int64_t keys = i0 + rows;
    // Scores and dO·Vᵀ, each strip only as far as its last row's keys (the rest of the block's
    // rows are zeroed by causal_softmax_gradient_rows).
    for (int64_t r0 = i0; r0 < keys; r0 += kStrip) {
      const int64_t strip = std::min(kStrip, keys - r0);
      const int64_t columns = whole_vectors(r0 + strip);
      float* p_strip = p + (r0 - i0) * ld;
      float* dp_strip = dp + (r0 - i0) * ld;
      detail::small_gemm(strip, columns, s.qk_dim, s.scale, {qh + r0 * hv.q_ld, hv.q_ld, 1}, kt, ld,
                         p_strip, ld, false);
      detail::small_gemm(strip, columns, s.v_dim, 1.0f, {doh + r0 * hv.v_ld, hv.v_ld, 1}, vt, ld,
                         dp_strip, ld, false);
    }
    causal_softmax_gradient_rows(p, dp, ld, i0, rows, lh + i0, delta + i0);
    // dV += Pᵀ dO and dK += scale · dSᵀ Q over the block's rows; dK and dV rows of this head
    // belong to this head alone.
    detail::small_gemm(keys, s.v_dim, rows, 1.0f, {p, 1, ld}, doh + i0 * hv.v_ld, hv.v_ld, dvh,
                       hv.v_ld, true);
    detail::small_gemm(keys, s.qk_dim, rows, s.scale, {dp, 1, ld}, qh + i0 * hv.q_ld, hv.q_ld, dkh,
                       hv.q_ld, true);
    // dQ = scale · dS K, each strip over the keys it sees.
    for (int64_t r0 = i0; r0 < keys; r0 += kStrip) {
      const int64_t strip = std::min(kStrip, keys - r0);
      detail::small_gemm(strip, s.qk_dim, r0 + strip, s.scale, {dp + (r0 - i0) * ld, ld, 1}, kh,
                         hv.q_ld, dqh + r0 * hv.q_ld, hv.q_ld, false);
    }
  }
}

}  // namespace

void attention_forward(const AttentionShape& s, const Tensor& q, const Tensor& k, const Tensor& v,
                       Tensor& out, Tensor& lse) {
  TRIDENT_PROFILE_SCOPE("attention_forward");
  check_shape(s, q, k, v, out, lse);
  if (small_heads(s)) {
    for_each_head(s, small_forward_scratch(s), true, [&](int64_t b, int64_t h, float* scratch) {
      small_forward_head(s, b, h, q, k, v, out, lse, scratch);
    });
    return;
  }
  const size_t scratch = static_cast<size_t>(std::min(kQueryBlock, s.seq) * s.seq);
  for_each_head(s, scratch, false, [&](int64_t b, int64_t h, float* p) {
    forward_head(s, b, h, q, k, v, out, lse, p);
  });
}

// With P = softmax(scale · Q Kᵀ) (recomputed from lse) and Δ_i = <dO_i, O_i>:
// dV = Pᵀ dO, dS = P ∘ (dO Vᵀ − Δ), dQ = scale · dS K, dK = scale · dSᵀ Q.
void attention_backward(const AttentionShape& s, const Tensor& dout, const Tensor& q,
                        const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                        Tensor& dq, Tensor& dk, Tensor& dv) {
  TRIDENT_PROFILE_SCOPE("attention_backward");
  check_shape(s, q, k, v, out, lse);
  detail::check_f32(dout, "attention dout");
  detail::check_f32(dq, "attention dq");
  detail::check_f32(dk, "attention dk");
  detail::check_f32(dv, "attention dv");
  detail::check_numel(dout, out.numel(), "attention dout");
  detail::check_numel(dq, q.numel(), "attention dq");
  detail::check_numel(dk, k.numel(), "attention dk");
  detail::check_numel(dv, v.numel(), "attention dv");
  dk.zero();
  dv.zero();
  if (small_heads(s)) {
    for_each_head(s, small_backward_scratch(s), true, [&](int64_t b, int64_t h, float* scratch) {
      small_backward_head(s, b, h, dout, q, k, v, out, lse, dq, dk, dv, scratch);
    });
    return;
  }
  for_each_head(s, backward_scratch(s), false, [&](int64_t b, int64_t h, float* scratch) {
    backward_head(s, b, h, dout, q, k, v, out, lse, dq, dk, dv, scratch);
  });
}

}  // namespace trident::ops::cpu
