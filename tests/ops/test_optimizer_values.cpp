// The optimizer's ops (AdamW, the gradient norm's sum of squares, the finiteness count) through
// the op API on CPU tensors: torch.optim.AdamW's arithmetic, shards that update as the whole,
// bf16 moments, and reductions whose result does not depend on the thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>
#include <vector>

#include "ops/ops.h"

namespace trident::ops {
namespace {

Tensor wrap(std::vector<float>& values) {
  return Tensor::wrap(values.data(), {static_cast<int64_t>(values.size())}, DType::F32);
}

void update(const AdamWSettings& settings, std::vector<float>& param, std::vector<float>& grad,
            std::vector<float>& m, std::vector<float>& v, double lr, int64_t step, bool decay,
            float grad_scale = 1.0f) {
  Tensor p = wrap(param), mt = wrap(m), vt = wrap(v);
  adamw_update(settings, AdamWStep{lr, step, decay, grad_scale}, p, wrap(grad), mt, vt);
}

// Reference values computed from the torch.optim.AdamW update rule in fp64.
TEST(AdamWOp, MatchesTorchSemanticsInDouble) {
  const AdamWSettings settings{0.9, 0.95, 1e-8, 0.1};
  std::vector<float> p = {1.0f, -2.0f}, m = {0, 0}, v = {0, 0};
  std::vector<float> g1 = {0.5f, -1.0f}, g2 = {-0.25f, 0.5f};
  double rp[2] = {1.0, -2.0}, rm[2] = {0, 0}, rv[2] = {0, 0};
  const double lr = 1e-2;
  for (int step = 1; step <= 2; ++step) {
    std::vector<float>& g = step == 1 ? g1 : g2;
    update(settings, p, g, m, v, lr, step, /*decay=*/true);
    for (int i = 0; i < 2; ++i) {
      rp[i] *= 1.0 - lr * settings.weight_decay;
      rm[i] = 0.9 * rm[i] + 0.1 * g[i];
      rv[i] = 0.95 * rv[i] + 0.05 * g[i] * g[i];
      const double mhat_step = lr / (1.0 - std::pow(0.9, step));
      const double denom = std::sqrt(rv[i]) / std::sqrt(1.0 - std::pow(0.95, step)) + 1e-8;
      rp[i] -= mhat_step * rm[i] / denom;
    }
  }
  for (int i = 0; i < 2; ++i) EXPECT_NEAR(p[i], rp[i], 1e-6);
}

TEST(AdamWOp, NoDecayLeavesZeroGradientParameterUnchanged) {
  const AdamWSettings settings{0.9, 0.95, 1e-8, 0.1};
  std::vector<float> p = {3.0f}, g = {0.0f}, m = {0.0f}, v = {0.0f};
  update(settings, p, g, m, v, 0.1, 1, /*decay=*/false);
  EXPECT_FLOAT_EQ(p[0], 3.0f);
  update(settings, p, g, m, v, 0.1, 2, /*decay=*/true);
  EXPECT_NEAR(p[0], 3.0f * (1 - 0.01), 1e-6);
}

// ZeRO-1 applies the update to shards; any split must give identical results.
TEST(AdamWOp, ShardedUpdateIsBitIdentical) {
  const AdamWSettings settings{0.9, 0.95, 1e-8, 0.05};
  std::vector<float> whole(10), grad(10), m(10, 0), v(10, 0);
  for (int i = 0; i < 10; ++i) {
    whole[i] = 0.1f * static_cast<float>(i) - 0.3f;
    grad[i] = std::sin(static_cast<float>(i));
  }
  std::vector<float> sharded = whole, m2 = m, v2 = v;
  update(settings, whole, grad, m, v, 1e-3, 1, true);
  Tensor p = wrap(sharded), mt = wrap(m2), vt = wrap(v2);
  const Tensor g = wrap(grad);
  for (const auto& [begin, end] : {std::pair<int64_t, int64_t>{0, 3}, {3, 10}}) {
    Tensor ps = p.narrow(begin, end), ms = mt.narrow(begin, end), vs = vt.narrow(begin, end);
    adamw_update(settings, AdamWStep{1e-3, 1, true}, ps, g.narrow(begin, end), ms, vs);
  }
  EXPECT_EQ(whole, sharded);
  EXPECT_EQ(m, m2);
  EXPECT_EQ(v, v2);
}

// bf16 moments (train.moment_dtype): each step is the fp32 update of the widened moments, whose
// new values are then rounded to nearest-even bf16; the weights stay fp32.
TEST(AdamWOp, Bf16MomentsAreTheFp32UpdateRounded) {
  const AdamWSettings settings{0.9, 0.95, 1e-8, 0.05};
  constexpr int64_t n = 40000;  // above the kernel's OpenMP threshold
  std::vector<float> param(n), grad(n), m(n, 0.0f), v(n, 0.0f);
  for (int64_t i = 0; i < n; ++i) param[static_cast<size_t>(i)] = 0.01f * std::cos(0.37f * i);
  std::vector<float> expected = param;
  Tensor m16 = Tensor::zeros({n}, DType::BF16), v16 = Tensor::zeros({n}, DType::BF16);
  for (int64_t step = 1; step <= 3; ++step) {
    for (int64_t i = 0; i < n; ++i) grad[static_cast<size_t>(i)] = std::sin(0.11f * i + step);
    update(settings, expected, grad, m, v, 1e-3, step, true);
    for (int64_t i = 0; i < n; ++i) {
      m[static_cast<size_t>(i)] = bf16_to_float(float_to_bf16(m[static_cast<size_t>(i)]));
      v[static_cast<size_t>(i)] = bf16_to_float(float_to_bf16(v[static_cast<size_t>(i)]));
    }
    Tensor p = wrap(param);
    adamw_update(settings, AdamWStep{1e-3, step, true}, p, wrap(grad), m16, v16);
  }
  EXPECT_EQ(param, expected);
  EXPECT_EQ(m16.to_vector(), m);
  EXPECT_EQ(v16.to_vector(), v);
}

TEST(AdamWOp, RefusesMismatchedOperands) {
  const AdamWSettings settings;
  std::vector<float> param(4, 0.0f), grad(4, 0.0f);
  Tensor p = wrap(param);
  Tensor m = Tensor::zeros({4}), v16 = Tensor::zeros({4}, DType::BF16),
         short_m = Tensor::zeros({3});
  EXPECT_THROW(adamw_update(settings, AdamWStep{1e-3, 1, true}, p, wrap(grad), m, v16), Error);
  EXPECT_THROW(adamw_update(settings, AdamWStep{1e-3, 1, true}, p, wrap(grad), short_m, short_m),
               Error);
  Tensor v = Tensor::zeros({4});
  EXPECT_THROW(adamw_update(settings, AdamWStep{1e-3, 0, true}, p, wrap(grad), m, v), Error);
}

// The update counts the weights it makes NaN or infinite into an i64[1], adding to what the
// counter holds, in both moment dtypes and on both sides of the OpenMP threshold; the counter
// must be i64[1].
TEST(AdamWOp, CountsTheWeightsItMakesNonFinite) {
  const AdamWSettings settings{0.9, 0.95, 1e-8, 0.1};
  for (const DType moments : {DType::F32, DType::BF16}) {
    for (const int64_t n : {int64_t{7}, int64_t{70000}}) {
      std::vector<float> param(static_cast<size_t>(n), 0.5f), grad(static_cast<size_t>(n), 0.1f);
      grad[1] = std::numeric_limits<float>::quiet_NaN();
      grad[static_cast<size_t>(n) - 1] = std::numeric_limits<float>::infinity();
      param[2] = std::numeric_limits<float>::infinity();
      Tensor p = wrap(param), m = Tensor::zeros({n}, moments), v = Tensor::zeros({n}, moments);
      Tensor count = Tensor::zeros({1}, DType::I64);
      adamw_update(settings, AdamWStep{1e-3, 1, true}, p, wrap(grad), m, v, &count);
      EXPECT_EQ(count.data<int64_t>()[0], 3) << dtype_name(moments) << " n=" << n;
      int64_t expected = 0;
      for (const float x : param) expected += std::isfinite(x) ? 0 : 1;
      EXPECT_EQ(expected, 3);
      // A finite update adds nothing; the count accumulates over calls.
      std::vector<float> fine(4, 0.5f), fine_grad(4, 0.1f);
      Tensor fp = wrap(fine), fm = Tensor::zeros({4}, moments), fv = Tensor::zeros({4}, moments);
      adamw_update(settings, AdamWStep{1e-3, 1, true}, fp, wrap(fine_grad), fm, fv, &count);
      EXPECT_EQ(count.data<int64_t>()[0], 3);
    }
  }
  std::vector<float> param(4, 0.0f), grad(4, 0.0f);
  Tensor p = wrap(param), m = Tensor::zeros({4}), v = Tensor::zeros({4});
  Tensor wrong = Tensor::zeros({1}, DType::F32);
  EXPECT_THROW(adamw_update(settings, AdamWStep{1e-3, 1, true}, p, wrap(grad), m, v, &wrong),
               Error);
}

// The clip coefficient is applied as the gradient is read: the same bits as scaling the
// gradient in place and updating with the scaled one.
TEST(AdamWOp, GradScaleIsTheUpdateOfTheScaledGradient) {
  const AdamWSettings settings{0.9, 0.95, 1e-8, 0.05};
  constexpr int64_t n = 40000;  // above the kernel's OpenMP threshold
  std::vector<float> param(n), grad(n), m(n, 0.0f), v(n, 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    param[static_cast<size_t>(i)] = 0.02f * std::cos(0.29f * i);
    grad[static_cast<size_t>(i)] = std::sin(0.13f * i);
  }
  std::vector<float> expected = param, m_expected = m, v_expected = v, scaled = grad;
  const float scale = 0.3183f;
  for (float& g : scaled) g *= scale;
  for (int64_t step = 1; step <= 2; ++step) {
    update(settings, expected, scaled, m_expected, v_expected, 1e-3, step, true);
    update(settings, param, grad, m, v, 1e-3, step, true, scale);
  }
  EXPECT_EQ(param, expected);
  EXPECT_EQ(m, m_expected);
  EXPECT_EQ(v, v_expected);
}

// The gradient norm's sum of squares: in double, close to the exact sum, the same bits whatever
// the thread count (the order of additions depends on the lengths alone), and the pieces of a
// list add as one.
TEST(SumOfSquaresOp, IsExactEnoughAndIndependentOfThreads) {
  constexpr int64_t n = (int64_t{1} << 18) + 12345;  // several blocks and a ragged tail
  std::vector<float> values(n);
  long double exact = 0.0L;
  for (int64_t i = 0; i < n; ++i) {
    values[static_cast<size_t>(i)] = 1e-3f * std::sin(0.7f * static_cast<float>(i)) + 1e-4f;
    exact +=
        static_cast<long double>(values[static_cast<size_t>(i)]) * values[static_cast<size_t>(i)];
  }
  const Tensor all = wrap(values);
  const int threads_before = omp_get_max_threads();
  omp_set_num_threads(1);
  const double one_thread = sum_of_squares({all});
  omp_set_num_threads(3);
  const double three_threads = sum_of_squares({all});
  omp_set_num_threads(threads_before);
  EXPECT_EQ(one_thread, three_threads);
  EXPECT_NEAR(one_thread, static_cast<double>(exact), 1e-12 * static_cast<double>(exact));
  const double split = sum_of_squares({all.narrow(0, 1000), Tensor(), all.narrow(1000, n)});
  EXPECT_NEAR(split, one_thread, 1e-12 * one_thread);
  EXPECT_EQ(sum_of_squares({}), 0.0);
  EXPECT_EQ(sum_of_squares({Tensor::from_vector({3.0f, 4.0f}, {2})}), 25.0);
}

TEST(CountNonfiniteOp, CountsNanAndInfinityPerPiece) {
  constexpr int64_t n = 100000;  // above the OpenMP threshold
  std::vector<float> values(n, 1.0f);
  values[7] = std::numeric_limits<float>::quiet_NaN();
  values[n - 1] = -std::numeric_limits<float>::infinity();
  values[n / 2] = std::numeric_limits<float>::infinity();
  const Tensor all = wrap(values);
  const std::vector<int64_t> counts =
      count_nonfinite({all, Tensor(), all.narrow(0, 7), all.narrow(8, n / 2), Tensor::zeros({0})});
  EXPECT_EQ(counts, (std::vector<int64_t>{3, 0, 0, 0, 0}));
  EXPECT_TRUE(count_nonfinite({}).empty());
}

}  // namespace
}  // namespace trident::ops
