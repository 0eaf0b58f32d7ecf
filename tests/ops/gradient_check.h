#pragma once
// Central finite differences of L = <forward(inputs), R> against an analytic gradient, for the
// op sweep. Forward runs in fp32 (the op under test); L is accumulated in fp64.
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "runtime/core/tensor.h"

namespace trident::ops::testing {

// One gradient of one op at one shape.
struct GradientProblem {
  std::vector<Tensor> inputs;
  int wrt = 0;  // index into inputs of the (f32) tensor being differentiated
  // The output whose inner product with R defines the scalar loss.
  std::function<Tensor(const std::vector<Tensor>&)> forward;
  // dL/d inputs[wrt] for upstream gradient R (computed with the ops' backward).
  std::function<Tensor(const std::vector<Tensor>&, const Tensor& upstream)> gradient;
  double eps = 1e-2;
  double tolerance = 1e-2;     // on ||numeric − analytic|| / ||numeric||
  bool zero_gradient = false;  // the exact gradient is 0 (e.g. attention with one key)
  int64_t max_checked = 48;    // elements of the input probed (random subset beyond this)
};

struct GradientCheckResult {
  double relative_error = 0.0;
  double numeric_norm = 0.0;
  double analytic_norm = 0.0;
  double max_abs_difference = 0.0;
  int64_t checked = 0;
};

GradientCheckResult check_gradient(GradientProblem& problem, uint32_t seed);

// Uniform(−scale, scale) f32 tensor.
Tensor random_tensor(const Shape& shape, std::mt19937& rng, float scale = 1.0f);
// Σ a·b in fp64.
double dot(const Tensor& a, const Tensor& b);
// a − b, elementwise (f32).
Tensor subtract(const Tensor& a, const Tensor& b);

}  // namespace trident::ops::testing
