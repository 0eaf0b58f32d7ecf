#pragma once
// What the last pipeline stage computes in GRPO's passes over the rollouts, as objectives of the
// one step engine (runtime/train/model_stage_compute.h): the policy's head (final norm and
// lm_head) on the final hidden states, then
//   ScoringObjective  the log-probability and entropy of every completion token (forward only:
//                     the rollout policy π_old and the frozen reference π_ref);
//   PolicyObjective   the clipped surrogate with the KL penalty (loss.h), whose gradient with
//                     respect to each token's log-probability becomes a logits gradient, and the
//                     head's backward from it.
// One micro-batch is one prompt group (its G completions as rows). Ranks with fewer groups than
// others pad their pass with filler micro-batches (one token, no loss, zero gradient): every
// rank of an expert-parallel group must run as many MoE forwards as the others.
//
// Both score the distribution the rollouts were sampled from: the logits divided by the sampling
// temperature T (grpo.temperature). So π_old is the sampler's own distribution, the ratio ρ
// starts at 1 for the tokens it drew, and KL and entropy are those of what is sampled; with the
// T = 1 head instead, every T ≠ 1 run would push on a distribution it never samples.
//
// Under tensor parallelism the logits are a vocabulary slice; scores and gradients go through
// the vocabulary-parallel log-softmax of vocab_sharded.h, identically on every TP rank.
#include <cstdint>
#include <map>
#include <vector>

#include "models/deepseek_v3/model.h"
#include "runtime/train/grpo/loss.h"
#include "runtime/train/grpo/scoring.h"
#include "runtime/train/model_stage_compute.h"

namespace trident::train::grpo {

// One micro-batch of a GRPO pass.
struct GroupBatch {
  bool filler = false;
  RowBatch rows;                  // model inputs: prompt + completion per row, padded
  std::vector<ScoredRow> source;  // the rows' prompts and completions
  // Update passes: per row, its advantage and aggregation coefficient (0: masked), and the
  // rollout policy's and the reference's scores of its tokens (ref: empty with β = 0).
  std::vector<double> advantages;
  std::vector<double> coefficients;
  const CompletionScores* old_scores = nullptr;
  const CompletionScores* ref_scores = nullptr;
};
// A filler: one row of one token.
GroupBatch filler_group();
// The model inputs of a pass.
std::vector<StageInput> stage_inputs(const std::vector<GroupBatch>& groups);

// The head's forward with what its backward needs.
struct HeadPass {
  models::NormStep norm;
  models::LinearStep head;
  Tensor logits;
};

class ScoringObjective final : public StageObjective {
 public:
  ScoringObjective(models::DeepSeekV3Model& model, double temperature)
      : model_(model), temperature_(temperature) {}
  // The pass's groups (kept by reference until it ends); scores() is reset.
  void begin_pass(const std::vector<GroupBatch>& groups);
  // Per micro-batch (empty for fillers and off the last stage).
  const std::vector<CompletionScores>& scores() const { return scores_; }

  void forward(int micro, const Tensor& h, const models::SequenceLayout& layout, float balance_coef,
               StageRecord& record) override;
  Tensor backward(int micro) override;

 private:
  models::DeepSeekV3Model& model_;
  double temperature_;
  const std::vector<GroupBatch>* groups_ = nullptr;
  std::vector<CompletionScores> scores_;
};

// Sums over one update pass of this rank's token terms (last stage only).
struct PolicyPassSums {
  double objective = 0.0;  // J = Σ c · s
  double tokens = 0.0;     // counted tokens
  double clipped = 0.0;
  double kl = 0.0;
  double entropy = 0.0;
};

class PolicyObjective final : public StageObjective {
 public:
  PolicyObjective(models::DeepSeekV3Model& model, const ObjectiveOptions& options,
                  double temperature)
      : model_(model), options_(options), temperature_(temperature) {}
  void begin_pass(const std::vector<GroupBatch>& groups);
  const PolicyPassSums& sums() const { return sums_; }

  void forward(int micro, const Tensor& h, const models::SequenceLayout& layout, float balance_coef,
               StageRecord& record) override;
  Tensor backward(int micro) override;
  std::vector<int> gradient_blocks(
      const models::parallelize::GradientBlocks& blocks) const override {
    return {blocks.head()};
  }

 private:
  struct Kept {
    HeadPass head;
    Tensor dlogits;
  };
  models::DeepSeekV3Model& model_;
  ObjectiveOptions options_;
  double temperature_;
  const std::vector<GroupBatch>* groups_ = nullptr;
  std::map<int, Kept> kept_;
  PolicyPassSums sums_;
};

}  // namespace trident::train::grpo
