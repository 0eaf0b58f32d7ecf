// The sequence-wise balance loss: DeepSeek-V3's expert-level loss and DeepSeek-V2's device-level
// and communication losses, which are also linear in P (P'_d = Σ_{e on d} P_e) and so fold
// into the per-expert weights g. Sums in double, sequence by sequence in order.
#include "ops/cpu/balance_loss.h"

#include <algorithm>
#include <vector>

#include "ops/cpu/detail.h"
#include "runtime/core/profiler.h"

namespace trident::ops::cpu {
namespace {

// g_e += w_dev · f'_{d(e)} / (E / D) + w_comm · D / (M · S) · #{t : t reaches d(e)} for one
// sequence's indices [S, k].
void add_device_terms(const BalanceLossShape& s, const int32_t* idx, float* g) {
  const int64_t E = s.experts, k = s.top_k, D = s.devices, per_device = E / D, S = s.seq;
  std::vector<double> device_f(static_cast<size_t>(D), 0.0);  // f'_d: Σ f_e over the device
  for (int64_t e = 0; e < E; ++e) device_f[static_cast<size_t>(e / per_device)] += g[e];
  std::vector<double> reached(static_cast<size_t>(D), 0.0);  // tokens sent to each device
  std::vector<char> hit(static_cast<size_t>(D));
  for (int64_t t = 0; t < S; ++t) {
    std::fill(hit.begin(), hit.end(), 0);
    for (int64_t j = 0; j < k; ++j) hit[static_cast<size_t>(idx[t * k + j] / per_device)] = 1;
    for (int64_t d = 0; d < D; ++d) reached[static_cast<size_t>(d)] += hit[static_cast<size_t>(d)];
  }
  const double comm_scale =
      static_cast<double>(D) / (static_cast<double>(s.max_devices) * static_cast<double>(S));
  for (int64_t e = 0; e < E; ++e) {
    const auto d = static_cast<size_t>(e / per_device);
    g[e] += static_cast<float>(s.device_weight * device_f[d] / static_cast<double>(per_device) +
                               s.comm_weight * comm_scale * reached[d]);
  }
}

}  // namespace

double balance_loss_forward(const BalanceLossShape& shape, const Tensor& scores,
                            const Tensor& indices, Tensor& per_expert) {
  TRIDENT_PROFILE_SCOPE("balance_loss_forward");
  check_balance_loss(shape, scores, per_expert);
  detail::check_f32(scores, "balance loss scores");
  detail::check_f32(per_expert, "balance loss per_expert");
  TRIDENT_CHECK(
      indices.dtype() == DType::I32 && indices.numel() == shape.rows * shape.seq * shape.top_k,
      "balance loss: indices ", indices.describe(), ", expected i32 [", shape.rows * shape.seq,
      ", ", shape.top_k, "]");
  const int64_t S = shape.seq, E = shape.experts, k = shape.top_k;
  const float* s = scores.data<float>();
  const int32_t* idx = indices.data<int32_t>();
  float* g = per_expert.data<float>();
  std::fill(g, g + shape.rows * E, 0.0f);
  std::vector<double> p(static_cast<size_t>(E));
  double sum = 0.0;
  for (int64_t b = 0; b < shape.rows; ++b) {
    float* f = g + b * E;
    std::fill(p.begin(), p.end(), 0.0);
    for (int64_t t = b * S; t < (b + 1) * S; ++t) {
      for (int64_t j = 0; j < k; ++j) f[idx[t * k + j]] += 1.0f;
      double z = 0.0;
      for (int64_t e = 0; e < E; ++e) z += s[t * E + e];
      for (int64_t e = 0; e < E; ++e) p[static_cast<size_t>(e)] += s[t * E + e] / z;
    }
    for (int64_t e = 0; e < E; ++e) f[e] *= static_cast<float>(E) / static_cast<float>(k * S);
    if (shape.device_terms()) add_device_terms(shape, idx + b * S * k, f);
    for (int64_t e = 0; e < E; ++e) {
      sum += static_cast<double>(f[e]) * p[static_cast<size_t>(e)] / static_cast<double>(S);
    }
  }
  return sum;
}

// d(coef · L)/d s_{j,t} = (g_j − Σ_e g_e s_{e,t} / Z_t) · coef / (S · Z_t), then through the
// score function (sigmoid: s(1 − s); softmax: its Jacobian).
void balance_loss_backward(const BalanceLossShape& shape, float coef, const Tensor& scores,
                           const Tensor& per_expert, Tensor& dlogits) {
  TRIDENT_PROFILE_SCOPE("balance_loss_backward");
  check_balance_loss(shape, scores, per_expert);
  detail::check_f32(scores, "balance loss scores");
  detail::check_f32(per_expert, "balance loss per_expert");
  detail::check_f32(dlogits, "balance loss dlogits");
  detail::check_numel(dlogits, scores.numel(), "balance loss dlogits");
  if (coef == 0.0f) return;
  const int64_t S = shape.seq, E = shape.experts;
  const float* s = scores.data<float>();
  float* dl = dlogits.data<float>();
  std::vector<double> ds(static_cast<size_t>(E));
  const double scale = static_cast<double>(coef) / static_cast<double>(S);
  for (int64_t b = 0; b < shape.rows; ++b) {
    const float* f = per_expert.data<float>() + b * E;
    for (int64_t t = b * S; t < (b + 1) * S; ++t) {
      const float* st = s + t * E;
      double z = 0.0, mean_g = 0.0;
      for (int64_t e = 0; e < E; ++e) z += st[e];
      for (int64_t e = 0; e < E; ++e) mean_g += static_cast<double>(f[e]) * st[e] / z;
      for (int64_t e = 0; e < E; ++e) ds[static_cast<size_t>(e)] = scale * (f[e] - mean_g) / z;
      if (shape.sigmoid) {
        for (int64_t e = 0; e < E; ++e) {
          dl[t * E + e] += static_cast<float>(ds[static_cast<size_t>(e)] * st[e] * (1.0 - st[e]));
        }
      } else {
        double dot = 0.0;
        for (int64_t e = 0; e < E; ++e) dot += ds[static_cast<size_t>(e)] * st[e];
        for (int64_t e = 0; e < E; ++e) {
          dl[t * E + e] += static_cast<float>(st[e] * (ds[static_cast<size_t>(e)] - dot));
        }
      }
    }
  }
}

}  // namespace trident::ops::cpu
