#pragma once
// The policy as one rank runs it: the whole model, or one stage of a pipeline (parallel.pp > 1).
//
// Under pipeline parallelism the ranks of the pp group form a chain of linear stages, rank s
// holding the contiguous decoder layers of stage s (models::PipelineHolding): stage 0 also the
// embedding, the last stage also the final norm and lm_head. A forward of token rows embeds them
// on stage 0, runs each stage's layers and sends the hidden states on with one blocking
// point-to-point message per stage boundary; the last stage returns the logits. A backward starts
// from the logits gradient on the last stage and sends the hidden-state gradient back stage by
// stage. Nothing is overlapped (fill-drain per call): GRPO's forwards are few and large (every
// completion of a prompt group at once), so the simple schedule costs (pp − 1) idle stages per
// forward, not per token.
//
// Under pp × tp each stage is TP-split (the model's own TP group): the pp group joins the ranks of
// the same TP rank, the last stage's decode gathers whole vocabulary rows over TP and its
// backward sums lm_head's input gradient over TP, as policy.h does without pp.
//
// Without a pp group every call is the single-rank one of policy.h / scoring.h.
#include <cstdint>
#include <vector>

#include "models/deepseek_v3/model.h"
#include "parallel/comm/communicator.h"
#include "runtime/train/grpo/policy.h"
#include "runtime/train/grpo/scoring.h"

namespace trident::train::grpo {

// What pipeline rank `rank` of `pp_size` holds under GRPO's linear stages: the layers split as
// pretraining splits them (stage_layers: parallel.stage_layers, may be empty), the embedding on
// the first stage, norm and lm_head (and the unused MTP modules) on the last. The policy runs no
// MTP, so the last stage keeps no embedding copy.
models::PipelineHolding grpo_pipeline_holding(int64_t layers, int pp_size, int rank,
                                              const std::vector<int64_t>& stage_layers);

class StagedPolicy {
 public:
  // `pp`: the pipeline group (null or one rank: the whole model on this rank). `model` must hold
  // exactly the parts of stage pp->rank() (grpo_pipeline_holding).
  explicit StagedPolicy(models::DeepSeekV3Model& model, parallel::Communicator* pp = nullptr);

  models::DeepSeekV3Model& model() { return *model_; }
  bool pipelined() const { return pp_ != nullptr; }
  bool first_stage() const { return !pipelined() || pp_->rank() == 0; }
  bool last_stage() const { return !pipelined() || pp_->rank() == pp_->size() - 1; }

  // Forward of token rows ([batch · seq] ids, read on the first stage only); fwd.logits is set
  // on the last stage only.
  void forward(const Tensor& ids, int64_t batch, int64_t seq, PolicyForward& fwd);
  // Backward from d loss / d logits (read on the last stage only); gradients accumulate into
  // this stage's parameters.
  void backward(const Tensor& dlogits, PolicyForward& fwd);
  // Scores of the rows (forward only); empty on every stage but the last.
  CompletionScores score(const std::vector<ScoredRow>& rows);

  // One decode step through the stages with each stage's MLA caches (one per model layer; only
  // the held layers' are used): ids [rows · n] (read on the first stage) -> logits of each row's
  // last position [rows, V] on the last stage, undefined elsewhere.
  Tensor decode(const std::vector<int32_t>& ids, int64_t rows, int64_t n,
                const ops::cpu::RopeTable& rope, std::vector<models::MlaCache>& caches);

  // ForwardLockstep filler work on this stage's layers only (a stage's fillers pair with the
  // same stage of the other expert-parallel ranks; nothing crosses stages).
  void filler_forward();
  void filler_forward_backward();

  // Sums over the pipeline group: values known on one stage (zeros elsewhere) reach every stage.
  std::vector<double> sum_over_stages(const std::vector<double>& values);
  // The last stage's `values` on every stage (the same length everywhere).
  std::vector<int32_t> from_last_stage(std::vector<int32_t> values);

 private:
  Tensor stage_input(const Tensor& ids, int64_t rows);
  void send_forward(const Tensor& h);
  void filler(bool backward);

  models::DeepSeekV3Model* model_;
  parallel::Communicator* pp_ = nullptr;
  int64_t first_layer_ = 0;
  int64_t last_layer_ = 0;
};

}  // namespace trident::train::grpo
