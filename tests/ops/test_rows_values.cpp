// Rows by index (the expert-parallel dispatch and combine): gather, the weighted combine with
// dropped slots, and its gradient, against plain loops.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "gradient_check.h"
#include "ops/ops.h"

namespace trident::ops::testing {
namespace {

TEST(Rows, GatherTakesTheIndexedRows) {
  std::mt19937 rng(7);
  const Tensor x = random_tensor({4, 3}, rng);
  const Tensor index = Tensor::from_ints({2, 0, 2, 3, 1}, {5});
  Tensor out = Tensor::empty({5, 3});
  gather_rows(x, index, out);
  for (int64_t r = 0; r < 5; ++r) {
    const auto from = static_cast<int64_t>(index.item(r));
    EXPECT_EQ(relative_error(out.narrow(r, r + 1), x.narrow(from, from + 1)), 0.0) << r;
  }
  Tensor bad = Tensor::empty({1, 3});
  EXPECT_THROW(gather_rows(x, Tensor::from_ints({4}, {1}), bad), Error);
}

// Tokens 1 and 2 of a batch of 4, top-2: slot (1, 1) dropped.
struct CombineCase {
  int64_t top_k = 2, first = 1, width = 3;
  Tensor rows, weights, slot_row;
  explicit CombineCase(std::mt19937& rng)
      : rows(random_tensor({3, 3}, rng)),
        weights(random_tensor({4, 2}, rng)),
        slot_row(Tensor::from_ints({2, -1, 0, 1}, {4})) {}
  // out[t] for t in {1, 2} by the definition, in slot order.
  float expected(int64_t t, int64_t c, bool weighted) const {
    float acc = 0.0f;
    for (int64_t j = 0; j < top_k; ++j) {
      const auto row = static_cast<int64_t>(slot_row.item((t - first) * top_k + j));
      if (row < 0) continue;
      const float w = weighted ? weights.item(t * top_k + j) : 1.0f;
      acc += w * rows.item(row * width + c);
    }
    return acc;
  }
};

TEST(Rows, CombineSumsKeptSlotsWithTheirWeights) {
  std::mt19937 rng(8);
  const CombineCase k(rng);
  for (bool weighted : {true, false}) {
    Tensor out = Tensor::full({4, 3}, 5.0f);
    combine_rows(k.rows, k.slot_row, k.top_k, weighted ? k.weights : Tensor(), k.first, out);
    for (int64_t c = 0; c < 3; ++c) {
      EXPECT_EQ(out.item(0 * 3 + c), 5.0f);  // other tokens untouched
      EXPECT_EQ(out.item(3 * 3 + c), 5.0f);
      EXPECT_FLOAT_EQ(out.item(1 * 3 + c), k.expected(1, c, weighted));
      EXPECT_FLOAT_EQ(out.item(2 * 3 + c), k.expected(2, c, weighted));
    }
  }
}

TEST(Rows, CombineBackwardGivesRowAndWeightGradients) {
  std::mt19937 rng(9);
  const CombineCase k(rng);
  const Tensor dout = random_tensor({4, 3}, rng);
  Tensor d_rows = Tensor::full({3, 3}, 5.0f);
  Tensor d_weights = Tensor::full({4, 2}, 5.0f);
  combine_rows_backward(dout, k.rows, k.weights, k.slot_row, k.first, d_rows, d_weights);
  for (int64_t s = 0; s < 4; ++s) {
    const int64_t t = k.first + s / 2, slot = t * 2 + s % 2;
    const auto row = static_cast<int64_t>(k.slot_row.item(s));
    if (row < 0) {
      EXPECT_EQ(d_weights.item(slot), 0.0f);
      continue;
    }
    double dot = 0.0;
    for (int64_t c = 0; c < 3; ++c) {
      dot += static_cast<double>(dout.item(t * 3 + c)) * k.rows.item(row * 3 + c);
      EXPECT_FLOAT_EQ(d_rows.item(row * 3 + c), k.weights.item(slot) * dout.item(t * 3 + c));
    }
    EXPECT_FLOAT_EQ(d_weights.item(slot), static_cast<float>(dot));
  }
  EXPECT_EQ(d_weights.item(0), 5.0f);  // tokens outside the chunk untouched
  EXPECT_EQ(d_weights.item(7), 5.0f);
}

}  // namespace
}  // namespace trident::ops::testing
