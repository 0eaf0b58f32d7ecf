#pragma once
// The GRPO objective (docs/grpo.md): group-relative advantages, the clipped surrogate with a KL
// penalty per token, and the aggregation of token terms into one loss. Everything here is
// scalar arithmetic in double; the trainer turns d loss / d log π(token) into a logits gradient.
#include <cstdint>
#include <string>
#include <vector>

namespace trident::train::grpo {

enum class AdvantageScale : uint8_t { Group, Batch, None };
enum class KlEstimator : uint8_t { K1, K2, K3 };
enum class LossType : uint8_t { Grpo, Bnpo, DrGrpo };

AdvantageScale parse_advantage_scale(const std::string& name);  // "group" | "batch" | "none"
KlEstimator parse_kl_estimator(const std::string& name);        // "k1" | "k2" | "k3"
LossType parse_loss_type(const std::string& name);  // "grpo" | "bnpo" ("dapo") | "dr_grpo"

struct AdvantageOptions {
  AdvantageScale scale = AdvantageScale::Group;
  bool sample_std = false;  // n − 1 (sample) instead of n (population)
  double eps = 1e-8;        // added to the std
};

// rewards: [groups · group_size], group-major. A_i = (r_i − mean_group) / (std + eps), with std
// over the group ("group"), over the whole batch ("batch") or 1 ("none"). A group whose rewards
// are all equal gets A = 0 exactly.
std::vector<double> group_advantages(const std::vector<double>& rewards, int64_t group_size,
                                     const AdvantageOptions& options);
// Per group: true if every reward in it is equal (zero variance).
std::vector<bool> zero_variance_groups(const std::vector<double>& rewards, int64_t group_size);

// KL estimate D of log π_ref − log π_θ = x, and its derivative w.r.t. log π_θ.
struct KlTerm {
  double value = 0.0;
  double dlogp = 0.0;
};
KlTerm kl_term(double logp, double ref_logp, KlEstimator estimator);

struct ObjectiveOptions {
  double epsilon_low = 0.2;
  double epsilon_high = 0.2;
  double beta = 0.0;  // 0: no KL term (ref_logp unused)
  KlEstimator kl = KlEstimator::K3;
};

// One token's objective s = min(ρA, clip(ρ, 1 − ε_low, 1 + ε_high)·A) − β·D, ρ = exp(logp −
// old_logp), and d s / d logp.
struct TokenObjective {
  double value = 0.0;
  double dlogp = 0.0;
  double ratio = 1.0;
  double kl = 0.0;
  bool clipped = false;  // the clipped branch is active (no surrogate gradient)
};
TokenObjective token_objective(double logp, double old_logp, double ref_logp, double advantage,
                               const ObjectiveOptions& options);

// Aggregation: J = Σ_i c_i Σ_t m_it · s_it, with, for N completions of token counts L_i (counted
// tokens after masking):
//   grpo     c_i = 1 / (N · max(L_i, 1))      (mean over completions of the token mean)
//   bnpo     c_i = 1 / max(Σ_i L_i, 1)        (mean over all counted tokens)
//   dr_grpo  c_i = 1 / (N · max_completion_length)
// N counts every completion in the batch (a fully masked one contributes 0 to the sum).
std::vector<double> completion_coefficients(const std::vector<int64_t>& counted_tokens,
                                            LossType type, int64_t max_completion_length);

}  // namespace trident::train::grpo
