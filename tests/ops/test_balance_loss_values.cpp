// The sequence-wise balance loss: the forward against the formula written out, the backward
// against central differences of Σ_b Σ_e g_e · P_e (g held constant, as the op's gradient holds
// it), for sigmoid and softmax scores, with and without DeepSeek-V2's device terms.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>
#include <vector>

#include "ops/cpu/balance_loss.h"

namespace trident::ops::testing {
namespace {

using cpu::balance_loss_backward;
using cpu::balance_loss_forward;

struct Routing {
  std::vector<double> logits;    // [rows·S, E]
  std::vector<int32_t> indices;  // [rows·S, k], distinct experts per token
};

Routing random_routing(const BalanceLossShape& s, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Routing r;
  const int64_t tokens = s.rows * s.seq;
  for (int64_t i = 0; i < tokens * s.experts; ++i) r.logits.push_back(normal(gen));
  for (int64_t t = 0; t < tokens; ++t) {
    std::set<int32_t> chosen;
    while (static_cast<int64_t>(chosen.size()) < s.top_k) {
      chosen.insert(static_cast<int32_t>(gen() % static_cast<uint32_t>(s.experts)));
    }
    r.indices.insert(r.indices.end(), chosen.begin(), chosen.end());
  }
  return r;
}

std::vector<double> scores_of(const BalanceLossShape& s, const std::vector<double>& logits) {
  std::vector<double> scores(logits.size());
  for (size_t t = 0; t < logits.size() / static_cast<size_t>(s.experts); ++t) {
    const double* l = logits.data() + t * static_cast<size_t>(s.experts);
    double* out = scores.data() + t * static_cast<size_t>(s.experts);
    double total = 0.0;
    for (int64_t e = 0; e < s.experts; ++e) {
      out[e] = s.sigmoid ? 1.0 / (1.0 + std::exp(-l[e])) : std::exp(l[e]);
      total += out[e];
    }
    if (!s.sigmoid) {
      for (int64_t e = 0; e < s.experts; ++e) out[e] /= total;
    }
  }
  return scores;
}

Tensor as_tensor(const std::vector<double>& values, const Shape& shape) {
  return Tensor::from_vector(std::vector<float>(values.begin(), values.end()), shape);
}

// g of each sequence written out: f_e, plus the device terms.
std::vector<double> expected_weights(const BalanceLossShape& s, const Routing& r) {
  const int64_t E = s.experts, S = s.seq, k = s.top_k, per_device = E / s.devices;
  std::vector<double> g(static_cast<size_t>(s.rows * E), 0.0);
  for (int64_t b = 0; b < s.rows; ++b) {
    double* gb = g.data() + b * E;
    std::vector<double> reached(static_cast<size_t>(s.devices), 0.0);
    for (int64_t t = b * S; t < (b + 1) * S; ++t) {
      std::set<int64_t> devices;
      for (int64_t j = 0; j < k; ++j) {
        gb[r.indices[static_cast<size_t>(t * k + j)]] += 1.0;
        devices.insert(r.indices[static_cast<size_t>(t * k + j)] / per_device);
      }
      for (const int64_t d : devices) reached[static_cast<size_t>(d)] += 1.0;
    }
    for (int64_t e = 0; e < E; ++e) gb[e] *= static_cast<double>(E) / static_cast<double>(k * S);
    std::vector<double> f = std::vector<double>(gb, gb + E);
    for (int64_t e = 0; e < E; ++e) {
      const int64_t d = e / per_device;
      double device_f = 0.0;
      for (int64_t i = d * per_device; i < (d + 1) * per_device; ++i) device_f += f[i];
      gb[e] += s.device_weight * device_f / static_cast<double>(per_device) +
               s.comm_weight * static_cast<double>(s.devices) /
                   static_cast<double>(s.max_devices * S) * reached[static_cast<size_t>(d)];
    }
  }
  return g;
}

// Σ_b Σ_e g_e · mean_t s_{e,t} / Z_t.
double loss_with(const BalanceLossShape& s, const std::vector<double>& g,
                 const std::vector<double>& logits) {
  const std::vector<double> scores = scores_of(s, logits);
  double loss = 0.0;
  for (int64_t t = 0; t < s.rows * s.seq; ++t) {
    const double* st = scores.data() + t * s.experts;
    double z = 0.0;
    for (int64_t e = 0; e < s.experts; ++e) z += st[e];
    for (int64_t e = 0; e < s.experts; ++e) {
      loss += g[static_cast<size_t>((t / s.seq) * s.experts + e)] * st[e] / z /
              static_cast<double>(s.seq);
    }
  }
  return loss;
}

BalanceLossShape shape_of(bool sigmoid, bool device_terms) {
  BalanceLossShape s;
  s.rows = 3;
  s.seq = 5;
  s.experts = 8;
  s.top_k = 3;
  s.sigmoid = sigmoid;
  if (device_terms) {
    s.devices = 4;
    s.max_devices = 2;
    s.device_weight = 0.05;
    s.comm_weight = 0.02;
  }
  return s;
}

TEST(BalanceLoss, ForwardAndBackwardMatchTheFormula) {
  for (const bool sigmoid : {true, false}) {
    for (const bool device_terms : {false, true}) {
      const BalanceLossShape s = shape_of(sigmoid, device_terms);
      const Routing r = random_routing(s, sigmoid * 2 + device_terms + 1);
      const int64_t tokens = s.rows * s.seq;
      const Tensor scores = as_tensor(scores_of(s, r.logits), {tokens, s.experts});
      const Tensor indices = Tensor::from_ints(r.indices, {tokens, s.top_k});
      Tensor g = Tensor::full({s.rows, s.experts}, NAN);
      const double loss = balance_loss_forward(s, scores, indices, g);

      const std::vector<double> expected_g = expected_weights(s, r);
      EXPECT_LE(relative_error(g, as_tensor(expected_g, {s.rows, s.experts})), 1e-6)
          << "sigmoid " << sigmoid << ", device terms " << device_terms;
      EXPECT_NEAR(loss, loss_with(s, expected_g, r.logits), 1e-6 * std::abs(loss));

      constexpr float kCoef = 0.7f;
      Tensor dlogits = Tensor::full({tokens, s.experts}, 0.25f);  // the op adds to it
      balance_loss_backward(s, kCoef, scores, g, dlogits);
      const std::vector<double> g_values(g.data<float>(), g.data<float>() + g.numel());
      std::vector<double> numeric(r.logits.size());
      for (size_t i = 0; i < r.logits.size(); ++i) {
        constexpr double kStep = 1e-5;
        std::vector<double> up = r.logits, down = r.logits;
        up[i] += kStep;
        down[i] -= kStep;
        numeric[i] = 0.25 + kCoef * (loss_with(s, g_values, up) - loss_with(s, g_values, down)) /
                                (2 * kStep);
      }
      EXPECT_LE(relative_error(dlogits, as_tensor(numeric, {tokens, s.experts})), 1e-5)
          << "sigmoid " << sigmoid << ", device terms " << device_terms;
    }
  }
}

TEST(BalanceLoss, ShapesThatDoNotFitAreRefused) {
  BalanceLossShape s = shape_of(true, true);
  s.devices = 3;  // does not divide 8 experts
  const Tensor scores = Tensor::zeros({s.rows * s.seq, s.experts});
  const Tensor indices =
      Tensor::from_ints(std::vector<int32_t>(static_cast<size_t>(s.rows * s.seq * s.top_k), 0),
                        {s.rows * s.seq, s.top_k});
  Tensor g = Tensor::empty({s.rows, s.experts});
  EXPECT_THROW(balance_loss_forward(s, scores, indices, g), std::exception);
  s.devices = 4;
  Tensor short_g = Tensor::empty({s.rows, s.experts - 1});
  EXPECT_THROW(balance_loss_forward(s, scores, indices, short_g), std::exception);
}

}  // namespace
}  // namespace trident::ops::testing
