#include "runtime/train/grpo/loss.h"

#include <algorithm>
#include <cmath>

#include "runtime/core/error.h"

namespace trident::train::grpo {

AdvantageScale parse_advantage_scale(const std::string& name) {
  if (name == "group") return AdvantageScale::Group;
  if (name == "batch") return AdvantageScale::Batch;
  if (name == "none") return AdvantageScale::None;
  TRIDENT_USER_FAIL("grpo.advantage_scale = '", name, "'; valid: group, batch, none");
}

KlEstimator parse_kl_estimator(const std::string& name) {
  if (name == "k1") return KlEstimator::K1;
  if (name == "k2") return KlEstimator::K2;
  if (name == "k3") return KlEstimator::K3;
  TRIDENT_USER_FAIL("grpo.kl_estimator = '", name, "'; valid: k1, k2, k3");
}

LossType parse_loss_type(const std::string& name) {
  if (name == "grpo") return LossType::Grpo;
  if (name == "bnpo" || name == "dapo") return LossType::Bnpo;
  if (name == "dr_grpo") return LossType::DrGrpo;
  TRIDENT_USER_FAIL("grpo.loss_type = '", name, "'; valid: grpo, bnpo (dapo), dr_grpo");
}

namespace {
struct Moments {
  double mean = 0.0;
  double std = 0.0;
};
Moments moments(const double* values, int64_t n, bool sample_std) {
  Moments m;
  for (int64_t i = 0; i < n; ++i) m.mean += values[i];
  m.mean /= static_cast<double>(n);
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += (values[i] - m.mean) * (values[i] - m.mean);
  const int64_t dof = sample_std ? n - 1 : n;
  m.std = dof > 0 ? std::sqrt(ss / static_cast<double>(dof)) : 0.0;
  return m;
}
}  // namespace

std::vector<bool> zero_variance_groups(const std::vector<double>& rewards, int64_t group_size) {
  TRIDENT_CHECK(group_size >= 1 && static_cast<int64_t>(rewards.size()) % group_size == 0,
                rewards.size(), " rewards do not split into groups of ", group_size);
  const int64_t groups = static_cast<int64_t>(rewards.size()) / group_size;
  std::vector<bool> out(static_cast<size_t>(groups));
  for (int64_t g = 0; g < groups; ++g) {
    const auto first = rewards.begin() + g * group_size;
    out[static_cast<size_t>(g)] =
        std::all_of(first, first + group_size, [&](double r) { return r == *first; });
  }
  return out;
}

std::vector<double> group_advantages(const std::vector<double>& rewards, int64_t group_size,
                                     const AdvantageOptions& options) {
  const std::vector<bool> flat = zero_variance_groups(rewards, group_size);
  const int64_t n = static_cast<int64_t>(rewards.size());
  const Moments batch = moments(rewards.data(), n, options.sample_std);
  std::vector<double> out(rewards.size(), 0.0);
  for (int64_t g = 0; g < n / group_size; ++g) {
    if (flat[static_cast<size_t>(g)]) continue;  // all equal: A = 0 exactly
    const double* r = rewards.data() + g * group_size;
    const Moments m = moments(r, group_size, options.sample_std);
    double scale = 1.0;
    if (options.scale == AdvantageScale::Group) scale = m.std + options.eps;
    if (options.scale == AdvantageScale::Batch) scale = batch.std + options.eps;
    for (int64_t i = 0; i < group_size; ++i) {
      out[static_cast<size_t>(g * group_size + i)] = (r[i] - m.mean) / scale;
    }
  }
  return out;
}

KlTerm kl_term(double logp, double ref_logp, KlEstimator estimator) {
  const double x = ref_logp - logp;
  switch (estimator) {
    case KlEstimator::K1:
      return KlTerm{-x, 1.0};
    case KlEstimator::K2:
      return KlTerm{0.5 * x * x, -x};
    case KlEstimator::K3:
      return KlTerm{std::expm1(x) - x, 1.0 - std::exp(x)};
  }
  return {};
}

TokenObjective token_objective(double logp, double old_logp, double ref_logp, double advantage,
                               const ObjectiveOptions& options) {
  TokenObjective t;
  t.ratio = std::exp(logp - old_logp);
  const double clipped_ratio =
      std::clamp(t.ratio, 1.0 - options.epsilon_low, 1.0 + options.epsilon_high);
  const double plain = t.ratio * advantage;
  const double clipped = clipped_ratio * advantage;
  // The clipped branch is active where it is strictly smaller: there ρ lies outside the range
  // on the side that the advantage rewards, and the surrogate has no gradient.
  t.clipped = clipped < plain;
  t.value = t.clipped ? clipped : plain;
  t.dlogp = t.clipped ? 0.0 : plain;  // d(ρA)/d logp = ρA
  if (options.beta != 0.0) {
    const KlTerm kl = kl_term(logp, ref_logp, options.kl);
    t.kl = kl.value;
    t.value -= options.beta * kl.value;
    t.dlogp -= options.beta * kl.dlogp;
  }
  return t;
}

std::vector<double> completion_coefficients(const std::vector<int64_t>& counted_tokens,
                                            LossType type, int64_t max_completion_length) {
  const double n = static_cast<double>(counted_tokens.size());
  std::vector<double> c(counted_tokens.size(), 0.0);
  if (counted_tokens.empty()) return c;
  int64_t total = 0;
  for (const int64_t l : counted_tokens) total += l;
  for (size_t i = 0; i < c.size(); ++i) {
    switch (type) {
      case LossType::Grpo:
        c[i] = 1.0 / (n * static_cast<double>(std::max<int64_t>(counted_tokens[i], 1)));
        break;
      case LossType::Bnpo:
        c[i] = 1.0 / static_cast<double>(std::max<int64_t>(total, 1));
        break;
      case LossType::DrGrpo:
        c[i] = 1.0 / (n * static_cast<double>(std::max<int64_t>(max_completion_length, 1)));
        break;
    }
  }
  return c;
}

}  // namespace trident::train::grpo
