// The MoE layer's sequence-wise balance losses: DeepSeek-V3's expert-level loss and
// DeepSeek-V2's device-level and communication losses, which fold into the same per-expert
// weights (docs/model.md, "Output and losses" and "DeepSeek-V2").
#include <algorithm>
#include <vector>

#include "models/deepseek_v3/moe.h"  // MoeLayer's balance members are defined here

namespace trident::models {

// L_bal per row = Σ_e g_e · P_e with P_e = mean_t s_{e,t} / Σ_e' s_{e',t} and, for the
// expert-level loss alone, g_e = f_e = E / (k · S) · #{t : e ∈ idx_t}. DeepSeek-V2's device-level
// and communication losses are also linear in P (P'_d = Σ_{e ∈ d} P_e), so they fold into g:
// g_e += w_dev · mean_{e' ∈ d(e)} f_e' + w_comm · D / (M · S) · #{t : t reaches device d(e)}.
void MoeLayer::balance_forward(MoeContext& ctx) const {
  const int64_t rows = ctx.layout.batch, S = ctx.layout.seq;
  const int64_t E = dims_.experts, k = dims_.top_k;
  const float* s = ctx.scores.data<float>();
  const int32_t* idx = ctx.indices.data<int32_t>();
  ctx.balance_f.assign(static_cast<size_t>(rows * E), 0.0f);
  ctx.balance_sum = 0.0;
  for (int64_t b = 0; b < rows; ++b) {
    float* f = ctx.balance_f.data() + b * E;
    std::vector<double> p(static_cast<size_t>(E), 0.0);
    for (int64_t t = b * S; t < (b + 1) * S; ++t) {
      for (int64_t j = 0; j < k; ++j) f[idx[t * k + j]] += 1.0f;
      double z = 0.0;
      for (int64_t e = 0; e < E; ++e) z += s[t * E + e];
      for (int64_t e = 0; e < E; ++e) p[static_cast<size_t>(e)] += s[t * E + e] / z;
    }
    for (int64_t e = 0; e < E; ++e) f[e] *= static_cast<float>(E) / static_cast<float>(k * S);
    if (dims_.balance.any()) add_device_balance(idx + b * S * k, S, f);
    for (int64_t e = 0; e < E; ++e) {
      ctx.balance_sum +=
          static_cast<double>(f[e]) * p[static_cast<size_t>(e)] / static_cast<double>(S);
    }
  }
}

void MoeLayer::add_device_balance(const int32_t* idx, int64_t S, float* g) const {
  const BalanceSettings& bal = dims_.balance;
  const int64_t E = dims_.experts, k = dims_.top_k, D = bal.devices, per_device = E / D;
  std::vector<double> device_f(static_cast<size_t>(D), 0.0);  // f'_d: mean f_e over the device
  for (int64_t e = 0; e < E; ++e) device_f[static_cast<size_t>(e / per_device)] += g[e];
  std::vector<double> reached(static_cast<size_t>(D), 0.0);  // tokens sent to each device
  std::vector<char> hit(static_cast<size_t>(D));
  for (int64_t t = 0; t < S; ++t) {
    std::fill(hit.begin(), hit.end(), 0);
    for (int64_t j = 0; j < k; ++j) hit[static_cast<size_t>(idx[t * k + j] / per_device)] = 1;
    for (int64_t d = 0; d < D; ++d) reached[static_cast<size_t>(d)] += hit[static_cast<size_t>(d)];
  }
  const double comm_scale =
      static_cast<double>(D) / (static_cast<double>(bal.max_devices) * static_cast<double>(S));
  for (int64_t e = 0; e < E; ++e) {
    const auto d = static_cast<size_t>(e / per_device);
    g[e] += static_cast<float>(bal.device_weight * device_f[d] / static_cast<double>(per_device) +
                               bal.comm_weight * comm_scale * reached[d]);
  }
}

// d(coef · L_bal)/d s_{j,t} = (g_j − Σ_e g_e s'_{e,t}) / Z_t with g_e = coef · f_e / S, then
// through the score function (sigmoid: s(1 − s); softmax: its Jacobian).
void MoeLayer::balance_backward(const MoeContext& ctx, Tensor& dlogits) const {
  if (ctx.balance_coef == 0.0f) return;
  const int64_t rows = ctx.layout.batch, S = ctx.layout.seq;
  const int64_t E = dims_.experts;
  const float* s = ctx.scores.data<float>();
  float* dl = dlogits.data<float>();
  std::vector<double> ds(static_cast<size_t>(E));
  for (int64_t b = 0; b < rows; ++b) {
    const float* f = ctx.balance_f.data() + b * E;
    for (int64_t t = b * S; t < (b + 1) * S; ++t) {
      const float* st = s + t * E;
      double z = 0.0, mean_g = 0.0;
      for (int64_t e = 0; e < E; ++e) z += st[e];
      for (int64_t e = 0; e < E; ++e) mean_g += static_cast<double>(f[e]) * st[e] / z;
      const double scale = static_cast<double>(ctx.balance_coef) / static_cast<double>(S);
      for (int64_t e = 0; e < E; ++e) {
        ds[static_cast<size_t>(e)] = scale * (f[e] - mean_g) / z;
      }
      if (dims_.router.sigmoid) {
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

}  // namespace trident::models
