// The products the CPU backend spreads over threads (ops/cpu/sgemm.cpp cuts C into blocks of rows,
// the grouped products and attention spread experts and heads) give the same bits at one thread as
// at several: the sizes here are above every threshold at which threads start.
#include <gtest/gtest.h>
#include <omp.h>

#include <functional>
#include <random>
#include <tuple>
#include <vector>

#include "gradient_check.h"
#include "ops/cpu/attention.h"
#include "ops/cpu/linear.h"

namespace trident::ops::testing {
namespace {

using namespace trident::ops::cpu;

// The outputs of `run` with one thread and with three (more than this machine has cores, so
// uneven blocks and a busy team are both covered), element for element.
void expect_same_bits_at_one_and_three_threads(const std::function<std::vector<Tensor>()>& run) {
  const int previous = omp_get_max_threads();
  omp_set_num_threads(1);
  const std::vector<Tensor> one = run();
  omp_set_num_threads(3);
  const std::vector<Tensor> three = run();
  omp_set_num_threads(previous);
  ASSERT_EQ(one.size(), three.size());
  for (size_t i = 0; i < one.size(); ++i) {
    EXPECT_EQ(one[i].to_vector(), three[i].to_vector()) << "output " << i;
  }
}

TEST(ThreadIndependence, GemmCutByRowsInEveryTransposeCombination) {
  std::mt19937 rng(21);
  // Above 2^18 multiply-adds: tall ones are computed as blocks of at least 256 rows (uneven:
  // 1000 rows are 3 blocks, 1301 are 5), a wide one with too few rows to cut is one call.
  for (const auto& [m, n, k] :
       {std::tuple<int64_t, int64_t, int64_t>{1301, 40, 97}, {1000, 37, 130}, {33, 517, 61}}) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        const Tensor a = random_tensor(ta ? Shape{k, m} : Shape{m, k}, rng);
        const Tensor b = random_tensor(tb ? Shape{n, k} : Shape{k, n}, rng);
        const Tensor c0 = random_tensor({m, n}, rng);
        expect_same_bits_at_one_and_three_threads([&] {
          Tensor c = c0.clone();
          gemm(ta, tb, 0.5f, a, b, 1.5f, c);
          return std::vector<Tensor>{c};
        });
      }
    }
  }
}

TEST(ThreadIndependence, LinearForwardAndBothBackwards) {
  std::mt19937 rng(22);
  const int64_t tokens = 1024, in = 96, out = 48;
  const Tensor x = random_tensor({tokens, in}, rng);
  const Tensor w = random_tensor({out, in}, rng);
  const Tensor dy = random_tensor({tokens, out}, rng);
  expect_same_bits_at_one_and_three_threads([&] {
    Tensor y = Tensor::empty({tokens, out});
    Tensor dx = Tensor::empty({tokens, in});
    Tensor dw = Tensor::zeros({out, in});
    linear_forward(x, w, y);
    linear_backward_input(dy, w, dx);
    linear_backward_weight(dy, x, dw);
    return std::vector<Tensor>{y, dx, dw};
  });
}

TEST(ThreadIndependence, GroupedLinearSpreadsExpertsOverThreads) {
  std::mt19937 rng(23);
  // Enough groups for two per thread, of uneven sizes, two of them empty.
  const std::vector<int64_t> counts = {40, 0, 7, 64, 1, 33, 0, 19, 50, 12};
  int64_t tokens = 0;
  for (const int64_t c : counts) tokens += c;
  const int64_t groups = static_cast<int64_t>(counts.size()), in = 24, out = 20;
  const Tensor x = random_tensor({tokens, in}, rng);
  const Tensor w = random_tensor({groups, out, in}, rng);
  const Tensor dy = random_tensor({tokens, out}, rng);
  for (DType weight_type : {DType::F32, DType::BF16}) {
    const Tensor wt = w.to(weight_type);
    expect_same_bits_at_one_and_three_threads([&] {
      Tensor y = Tensor::empty({tokens, out});
      Tensor dx = Tensor::empty({tokens, in});
      Tensor dw = Tensor::zeros({groups, out, in});
      grouped_linear_forward(x, wt, counts, y);
      grouped_linear_backward_input(dy, wt, counts, dx);
      grouped_linear_backward_weight(dy, x, counts, dw);
      return std::vector<Tensor>{y, dx, dw};
    });
  }
}

void expect_attention_thread_independent(const AttentionShape& s) {
  std::mt19937 rng(24);
  const int64_t tokens = s.batch * s.seq;
  const Tensor q = random_tensor({tokens, s.heads, s.qk_dim}, rng);
  const Tensor k = random_tensor({tokens, s.heads, s.qk_dim}, rng);
  const Tensor v = random_tensor({tokens, s.heads, s.v_dim}, rng);
  const Tensor dout = random_tensor({tokens, s.heads, s.v_dim}, rng);
  expect_same_bits_at_one_and_three_threads([&] {
    Tensor out = Tensor::empty({tokens, s.heads, s.v_dim});
    Tensor lse = Tensor::empty({s.batch, s.heads, s.seq});
    attention_forward(s, q, k, v, out, lse);
    Tensor dq = Tensor::empty(q.shape());
    Tensor dk = Tensor::empty(k.shape());
    Tensor dv = Tensor::empty(v.shape());
    attention_backward(s, dout, q, k, v, out, lse, dq, dk, dv);
    return std::vector<Tensor>{out, lse, dq, dk, dv};
  });
}

// Small heads (small_gemm), spread over the threads.
TEST(ThreadIndependence, AttentionSpreadsHeadsOverThreads) {
  expect_attention_thread_independent(AttentionShape{3, 40, 4, 24, 16, 0.2f});
}

// Wide heads, fewer than the threads: one head after another, each sgemm cut over the threads.
TEST(ThreadIndependence, AttentionCutsWideHeadsProducts) {
  expect_attention_thread_independent(AttentionShape{1, 150, 2, 72, 66, 0.1f});
}

}  // namespace
}  // namespace trident::ops::testing
