// Dense and grouped (per-expert) linear layers on OpenBLAS sgemm (ops/cpu/sgemm.cpp).
#include "ops/cpu/linear.h"

#include <omp.h>

#include "ops/cpu/detail.h"
#include "runtime/core/profiler.h"

namespace trident::ops::cpu {

namespace {

using detail::Fp32Values;
using detail::sgemm;

struct LinearDims {
  int64_t tokens = 0;  // T
  int64_t in = 0;      // K
  int64_t out = 0;     // N
};

// x [..., K], w [N, K] (or [G, N, K] for grouped), y [..., N]: `by_in` is x or dx and `by_out`
// is y or dy, both f32; `w` is the weight or its gradient.
LinearDims linear_dims(detail::Operand by_in, detail::Operand by_out, const Tensor& w,
                       int64_t weight_rank) {
  detail::check_f32(by_in.tensor, by_in.name);
  detail::check_f32(by_out.tensor, by_out.name);
  TRIDENT_CHECK(w.dim() == weight_rank, "linear weight must have rank ", weight_rank, ", got ",
                w.describe());
  LinearDims dims;
  dims.in = w.size(-1);
  dims.out = w.size(-2);
  const Tensor& x = by_in.tensor;
  TRIDENT_CHECK(detail::cols(x) == dims.in, "linear input ", x.describe(),
                " does not match weight ", w.describe());
  dims.tokens = detail::rows(x);
  detail::check_numel(by_out.tensor, dims.tokens * dims.out, by_out.name);
  return dims;
}

std::vector<int64_t> group_offsets(const std::vector<int64_t>& counts, int64_t groups,
                                   int64_t tokens) {
  TRIDENT_CHECK(static_cast<int64_t>(counts.size()) == groups, "grouped linear: ", counts.size(),
                " counts for ", groups, " weight groups");
  std::vector<int64_t> offsets(counts.size() + 1, 0);
  for (size_t g = 0; g < counts.size(); ++g) {
    TRIDENT_CHECK(counts[g] >= 0, "grouped linear: negative count for group ", g);
    offsets[g + 1] = offsets[g] + counts[g];
  }
  TRIDENT_CHECK(offsets.back() == tokens, "grouped linear: counts sum to ", offsets.back(),
                " but the input has ", tokens, " rows");
  return offsets;
}

// Runs fn(g, row, count) for each non-empty group g, whose `count` rows start at `row`, after
// checking the counts against the weight's `groups` and the input's `tokens` rows. With at least
// two groups per thread the groups are spread over the threads, each product on one thread
// (an expert's product is too small to cut well: ops/cpu/sgemm.cpp); otherwise they run one
// after another, each product cut over the threads. Every group writes its own rows (or its own
// weight gradient), so the result does not depend on the thread count. `fn` must not throw.
template <typename Fn>
void for_each_group(const std::vector<int64_t>& counts, int64_t groups, int64_t tokens, Fn&& fn) {
  const std::vector<int64_t> offsets = group_offsets(counts, groups, tokens);
  std::vector<int64_t> busy;
  for (size_t g = 0; g < counts.size(); ++g) {
    if (counts[g] > 0) busy.push_back(static_cast<int64_t>(g));
  }
  const auto run = [&](int64_t g) {
    fn(g, offsets[static_cast<size_t>(g)], counts[static_cast<size_t>(g)]);
  };
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (threads > 1 && static_cast<int64_t>(busy.size()) >= 2 * threads) {
    const detail::SingleThreadedBlasInTeam single_threaded;
#pragma omp parallel for schedule(dynamic)
    for (size_t i = 0; i < busy.size(); ++i) run(busy[i]);
    return;
  }
  for (const int64_t g : busy) run(g);
}

// A weight the grouped products widen per group (Fp32Values): its type is checked before any
// group runs, since a throw inside the threads' loop would end the process.
void check_group_weight(const Tensor& w, const char* name) {
  detail::check_host(w, name);
  TRIDENT_CHECK(w.dtype() == DType::F32 || w.dtype() == DType::BF16, name,
                " must be f32 or bf16, got ", w.describe());
}

}  // namespace

void gemm(bool trans_a, bool trans_b, float alpha, const Tensor& a, const Tensor& b, float beta,
          Tensor& c) {
  TRIDENT_PROFILE_SCOPE("gemm");
  detail::check_f32(a, "gemm a");
  detail::check_f32(b, "gemm b");
  detail::check_f32(c, "gemm c");
  TRIDENT_CHECK(a.dim() == 2 && b.dim() == 2 && c.dim() == 2, "gemm needs matrices: ", a.describe(),
                ", ", b.describe(), ", ", c.describe());
  const int64_t m = trans_a ? a.size(1) : a.size(0);
  const int64_t k = trans_a ? a.size(0) : a.size(1);
  const int64_t kb = trans_b ? b.size(1) : b.size(0);
  const int64_t n = trans_b ? b.size(0) : b.size(1);
  TRIDENT_CHECK(k == kb && c.size(0) == m && c.size(1) == n, "gemm shapes do not agree: op(a) ", m,
                "x", k, ", op(b) ", kb, "x", n, ", c ", c.describe());
  sgemm(trans_a, trans_b, m, n, k, alpha, a.data<float>(), a.size(1), b.data<float>(), b.size(1),
        beta, c.data<float>(), n);
}

void linear_forward(const Tensor& x, const Tensor& w, Tensor& y) {
  TRIDENT_PROFILE_SCOPE("linear_forward");
  const LinearDims d = linear_dims({x, "linear x"}, {y, "linear y"}, w, 2);
  const Fp32Values weight(w, "linear w");
  sgemm(false, true, d.tokens, d.out, d.in, 1.0f, x.data<float>(), d.in, weight.data(), d.in, 0.0f,
        y.data<float>(), d.out);
}

void linear_backward_input(const Tensor& dy, const Tensor& w, Tensor& dx, bool accumulate) {
  TRIDENT_PROFILE_SCOPE("linear_backward_input");
  const LinearDims d = linear_dims({dx, "linear dx"}, {dy, "linear dy"}, w, 2);
  const Fp32Values weight(w, "linear w");
  sgemm(false, false, d.tokens, d.in, d.out, 1.0f, dy.data<float>(), d.out, weight.data(), d.in,
        accumulate ? 1.0f : 0.0f, dx.data<float>(), d.in);
}

void linear_backward_weight(const Tensor& dy, const Tensor& x, Tensor& dw) {
  TRIDENT_PROFILE_SCOPE("linear_backward_weight");
  detail::check_f32(dw, "linear dw");
  const LinearDims d = linear_dims({x, "linear x"}, {dy, "linear dy"}, dw, 2);
  sgemm(true, false, d.out, d.in, d.tokens, 1.0f, dy.data<float>(), d.out, x.data<float>(), d.in,
        1.0f, dw.data<float>(), d.in);
}

void grouped_linear_forward(const Tensor& x, const Tensor& w, const std::vector<int64_t>& counts,
                            Tensor& y) {
  TRIDENT_PROFILE_SCOPE("grouped_linear_forward");
  const LinearDims d = linear_dims({x, "grouped_linear x"}, {y, "grouped_linear y"}, w, 3);
  check_group_weight(w, "grouped_linear w");
  const int64_t matrix = d.out * d.in;
  for_each_group(counts, w.size(0), d.tokens, [&](int64_t g, int64_t row, int64_t count) {
    const Fp32Values weight(w, g * matrix, matrix, "grouped_linear w");
    sgemm(false, true, count, d.out, d.in, 1.0f, x.data<float>() + row * d.in, d.in, weight.data(),
          d.in, 0.0f, y.data<float>() + row * d.out, d.out);
  });
}

void grouped_linear_backward_input(const Tensor& dy, const Tensor& w,
                                   const std::vector<int64_t>& counts, Tensor& dx,
                                   bool accumulate) {
  TRIDENT_PROFILE_SCOPE("grouped_linear_backward_input");
  const LinearDims d = linear_dims({dx, "grouped_linear dx"}, {dy, "grouped_linear dy"}, w, 3);
  check_group_weight(w, "grouped_linear w");
  const int64_t matrix = d.out * d.in;
  for_each_group(counts, w.size(0), d.tokens, [&](int64_t g, int64_t row, int64_t count) {
    const Fp32Values weight(w, g * matrix, matrix, "grouped_linear w");
    sgemm(false, false, count, d.in, d.out, 1.0f, dy.data<float>() + row * d.out, d.out,
          weight.data(), d.in, accumulate ? 1.0f : 0.0f, dx.data<float>() + row * d.in, d.in);
  });
}

void grouped_linear_backward_weight(const Tensor& dy, const Tensor& x,
                                    const std::vector<int64_t>& counts, Tensor& dw) {
  TRIDENT_PROFILE_SCOPE("grouped_linear_backward_weight");
  detail::check_f32(dw, "grouped_linear dw");
  const LinearDims d = linear_dims({x, "grouped_linear x"}, {dy, "grouped_linear dy"}, dw, 3);
  const int64_t matrix = d.out * d.in;
  for_each_group(counts, dw.size(0), d.tokens, [&](int64_t g, int64_t row, int64_t count) {
    sgemm(true, false, d.out, d.in, count, 1.0f, dy.data<float>() + row * d.out, d.out,
          x.data<float>() + row * d.in, d.in, 1.0f, dw.data<float>() + g * matrix, d.in);
  });
}

}  // namespace trident::ops::cpu
