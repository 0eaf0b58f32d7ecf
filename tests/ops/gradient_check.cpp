#include "gradient_check.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace trident::ops::testing {

Tensor random_tensor(const Shape& shape, std::mt19937& rng, float scale) {
  Tensor t = Tensor::empty(shape);
  std::uniform_real_distribution<float> dist(-scale, scale);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = dist(rng);
  return t;
}

double dot(const Tensor& a, const Tensor& b) {
  TRIDENT_CHECK(a.numel() == b.numel(), "dot of ", a.describe(), " and ", b.describe());
  const std::vector<float> x = a.to_vector();
  const std::vector<float> y = b.to_vector();
  double sum = 0.0;
  for (size_t i = 0; i < x.size(); ++i) sum += static_cast<double>(x[i]) * y[i];
  return sum;
}

Tensor subtract(const Tensor& a, const Tensor& b) {
  TRIDENT_CHECK(a.numel() == b.numel(), "subtract ", a.describe(), " and ", b.describe());
  Tensor out = Tensor::empty(a.shape());
  const std::vector<float> x = a.to_vector();
  const std::vector<float> y = b.to_vector();
  for (int64_t i = 0; i < out.numel(); ++i) {
    out.data<float>()[i] = x[static_cast<size_t>(i)] - y[static_cast<size_t>(i)];
  }
  return out;
}

GradientCheckResult check_gradient(GradientProblem& problem, uint32_t seed) {
  std::mt19937 rng(seed);
  Tensor& input = problem.inputs.at(static_cast<size_t>(problem.wrt));
  TRIDENT_CHECK(input.dtype() == DType::F32, "finite differences need an f32 input");
  const Tensor output = problem.forward(problem.inputs);
  const Tensor upstream = random_tensor(output.shape(), rng);
  const Tensor analytic = problem.gradient(problem.inputs, upstream);
  TRIDENT_CHECK(analytic.numel() == input.numel(), "gradient ", analytic.describe(),
                " does not match input ", input.describe());

  std::vector<int64_t> probe(static_cast<size_t>(input.numel()));
  std::iota(probe.begin(), probe.end(), 0);
  if (input.numel() > problem.max_checked) {
    std::shuffle(probe.begin(), probe.end(), rng);
    probe.resize(static_cast<size_t>(problem.max_checked));
  }
  float* x = input.data<float>();
  const float* g = analytic.data<float>();
  GradientCheckResult result;
  double diff2 = 0.0, numeric2 = 0.0, analytic2 = 0.0;
  for (int64_t i : probe) {
    const float original = x[i];
    x[i] = original + static_cast<float>(problem.eps);
    const double plus = dot(problem.forward(problem.inputs), upstream);
    x[i] = original - static_cast<float>(problem.eps);
    const double minus = dot(problem.forward(problem.inputs), upstream);
    x[i] = original;
    // The actual step taken in fp32 (x ± eps is rounded).
    const double step = static_cast<double>(original + static_cast<float>(problem.eps)) -
                        static_cast<double>(original - static_cast<float>(problem.eps));
    const double numeric = (plus - minus) / step;
    const double difference = numeric - g[i];
    diff2 += difference * difference;
    numeric2 += numeric * numeric;
    analytic2 += static_cast<double>(g[i]) * g[i];
    result.max_abs_difference = std::max(result.max_abs_difference, std::abs(difference));
  }
  result.checked = static_cast<int64_t>(probe.size());
  result.numeric_norm = std::sqrt(numeric2);
  result.analytic_norm = std::sqrt(analytic2);
  result.relative_error = std::sqrt(diff2) / std::max(result.numeric_norm, 1e-30);
  return result;
}

}  // namespace trident::ops::testing
