#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>

#include "runtime/train/adamw.h"
#include "runtime/train/lr_schedule.h"
#include "runtime/train/progress.h"

namespace trident::train {
namespace {

// Reference values computed by hand from the torch.optim.AdamW update rule in fp64.
TEST(AdamW, MatchesTorchSemanticsInDouble) {
  AdamWSettings settings{0.9, 0.95, 1e-8, 0.1};
  float p[2] = {1.0f, -2.0f};
  float m[2] = {0, 0}, v[2] = {0, 0};
  const float g1[2] = {0.5f, -1.0f};
  const float g2[2] = {-0.25f, 0.5f};
  double rp[2] = {1.0, -2.0}, rm[2] = {0, 0}, rv[2] = {0, 0};
  const double lr = 1e-2;
  for (int step = 1; step <= 2; ++step) {
    const float* g = step == 1 ? g1 : g2;
    adamw_update(p, g, m, v, 2, settings, lr, step, /*decay=*/true);
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

TEST(AdamW, NoDecayLeavesZeroGradientParameterUnchanged) {
  AdamWSettings settings{0.9, 0.95, 1e-8, 0.1};
  float p = 3.0f, m = 0, v = 0;
  const float g = 0.0f;
  adamw_update(&p, &g, &m, &v, 1, settings, 0.1, 1, /*decay=*/false);
  EXPECT_FLOAT_EQ(p, 3.0f);
  adamw_update(&p, &g, &m, &v, 1, settings, 0.1, 2, /*decay=*/true);
  EXPECT_NEAR(p, 3.0f * (1 - 0.01), 1e-6);
}

// ZeRO-1 applies the update to shards; any split must give identical results.
TEST(AdamW, ShardedUpdateIsBitIdentical) {
  AdamWSettings settings{0.9, 0.95, 1e-8, 0.05};
  std::vector<float> whole(10), grad(10), m(10, 0), v(10, 0);
  for (int i = 0; i < 10; ++i) {
    whole[i] = 0.1f * static_cast<float>(i) - 0.3f;
    grad[i] = std::sin(static_cast<float>(i));
  }
  std::vector<float> sharded = whole, m2 = m, v2 = v;
  adamw_update(whole.data(), grad.data(), m.data(), v.data(), 10, settings, 1e-3, 1, true);
  adamw_update(sharded.data(), grad.data(), m2.data(), v2.data(), 3, settings, 1e-3, 1, true);
  adamw_update(sharded.data() + 3, grad.data() + 3, m2.data() + 3, v2.data() + 3, 7, settings,
               1e-3, 1, true);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(whole[i], sharded[i]);
}

// bf16 moments (train.moment_dtype): each step is the fp32 update of the widened moments, whose
// new values are then rounded to nearest-even bf16; the weights stay fp32.
TEST(AdamW, Bf16MomentsAreTheFp32UpdateRounded) {
  const AdamWSettings settings{0.9, 0.95, 1e-8, 0.05};
  constexpr int64_t n = 40000;  // above the kernel's OpenMP threshold
  std::vector<float> param(n), grad(n), m(n, 0.0f), v(n, 0.0f);
  for (int64_t i = 0; i < n; ++i) param[static_cast<size_t>(i)] = 0.01f * std::cos(0.37f * i);
  std::vector<float> expected = param;
  Tensor m16 = Tensor::zeros({n}, DType::BF16), v16 = Tensor::zeros({n}, DType::BF16);
  for (int64_t step = 1; step <= 3; ++step) {
    for (int64_t i = 0; i < n; ++i) grad[static_cast<size_t>(i)] = std::sin(0.11f * i + step);
    adamw_update(expected.data(), grad.data(), m.data(), v.data(), n, settings, 1e-3, step, true);
    for (int64_t i = 0; i < n; ++i) {
      m[static_cast<size_t>(i)] = bf16_to_float(float_to_bf16(m[static_cast<size_t>(i)]));
      v[static_cast<size_t>(i)] = bf16_to_float(float_to_bf16(v[static_cast<size_t>(i)]));
    }
    adamw_update(param.data(), grad.data(), m16, v16, 0, n, settings, 1e-3, step, true);
  }
  EXPECT_EQ(param, expected);
  EXPECT_EQ(m16.to_vector(), m);
  EXPECT_EQ(v16.to_vector(), v);
  // An offset selects the moments of a shard.
  EXPECT_THROW(adamw_update(param.data(), grad.data(), m16, v16, 1, n, settings, 1e-3, 4, true),
               Error);
}

// The clip coefficient is applied as the gradient is read: the same bits as scaling the
// gradient in place and updating with the scaled one.
TEST(AdamW, GradScaleIsTheUpdateOfTheScaledGradient) {
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
    adamw_update(expected.data(), scaled.data(), m_expected.data(), v_expected.data(), n, settings,
                 1e-3, step, true);
    adamw_update(param.data(), grad.data(), m.data(), v.data(), n, settings, 1e-3, step, true,
                 scale);
  }
  EXPECT_EQ(param, expected);
  EXPECT_EQ(m, m_expected);
  EXPECT_EQ(v, v_expected);
}

// The gradient norm's sum of squares: in double, close to the exact sum, and the same bits
// whatever the thread count (the order of additions depends on the length alone).
TEST(GradNorm, SumOfSquaresIsExactEnoughAndIndependentOfThreads) {
  constexpr int64_t n = (int64_t{1} << 18) + 12345;  // several blocks and a ragged tail
  std::vector<float> values(n);
  long double exact = 0.0L;
  for (int64_t i = 0; i < n; ++i) {
    values[static_cast<size_t>(i)] = 1e-3f * std::sin(0.7f * static_cast<float>(i)) + 1e-4f;
    exact +=
        static_cast<long double>(values[static_cast<size_t>(i)]) * values[static_cast<size_t>(i)];
  }
  const int threads_before = omp_get_max_threads();
  omp_set_num_threads(1);
  const double one_thread = sum_of_squares(values.data(), n);
  omp_set_num_threads(3);
  const double three_threads = sum_of_squares(values.data(), n);
  omp_set_num_threads(threads_before);
  EXPECT_EQ(one_thread, three_threads);
  EXPECT_NEAR(one_thread, static_cast<double>(exact), 1e-12 * static_cast<double>(exact));
  EXPECT_EQ(sum_of_squares(values.data(), 0), 0.0);
}

TEST(LrSchedule, WarmupThenCosine) {
  const LrSchedule schedule{1.0, 0.1, 10, 110};
  EXPECT_DOUBLE_EQ(schedule.at(1), 0.1);
  EXPECT_DOUBLE_EQ(schedule.at(10), 1.0);
  EXPECT_NEAR(schedule.at(60), 0.55, 1e-12);  // half-way through the cosine
  EXPECT_NEAR(schedule.at(110), 0.1, 1e-12);
  EXPECT_NEAR(schedule.at(200), 0.1, 1e-12);  // stays at the floor
}

TEST(Clipping, Coefficient) {
  EXPECT_DOUBLE_EQ(clip_coefficient(0.5, 1.0), 1.0);
  EXPECT_NEAR(clip_coefficient(4.0, 1.0), 0.25, 1e-6);
  EXPECT_DOUBLE_EQ(clip_coefficient(4.0, 0.0), 1.0);
  const Tensor g = Tensor::from_vector({3.0f, 4.0f}, {2});
  EXPECT_DOUBLE_EQ(sum_of_squares(g), 25.0);
}

TEST(Progress, DurationFormat) {
  EXPECT_EQ(ProgressMeter::format_duration(12.2), "12s");
  EXPECT_EQ(ProgressMeter::format_duration(185), "3m05s");
  EXPECT_EQ(ProgressMeter::format_duration(3720), "1h02m");
}

}  // namespace
}  // namespace trident::train
