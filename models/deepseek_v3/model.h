#pragma once
// The DeepSeek-V3 model on the CPU with explicit forward and backward: the oracle every
// parallel layout must reproduce. It owns the parameter registry and store; the blocks
// (decoder layers, MTP modules, embedding, heads) are exposed so a pipeline stage can run a
// contiguous range of layers with explicit inputs and outputs.
//
// Gradients accumulate into params() (call params().zero_grad() before a step), so calling
// forward_backward on several micro-batches with the same global LossScales gives the
// gradient of the whole batch.
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "models/batch.h"
#include "models/deepseek_v3/decoder_layer.h"
#include "models/deepseek_v3/dims.h"
#include "models/deepseek_v3/head.h"
#include "models/deepseek_v3/loss.h"
#include "models/deepseek_v3/mtp.h"
#include "models/deepseek_v3/parameters.h"
#include "models/deepseek_v3/registry.h"
#include "parallel/tp/tp_group.h"

namespace trident::models {

// Tokens routed to each expert of one MoE layer (main model or MTP).
struct ExpertLoad {
  int64_t layer = 0;
  std::vector<int64_t> tokens_per_expert;  // [E]
};

// What the model's outputs (final norm, lm_head, the MTP depths) keep for their backward.
struct OutputContext {
  HeadContext head;
  std::vector<MtpContext> mtp;  // one per MTP depth
};

// Everything one micro-batch's forward keeps for its backward.
struct ModelContext {
  SequenceLayout layout;
  Tensor ids;                               // [T] model inputs
  std::vector<DecoderLayerContext> layers;  // one per main-model layer
  OutputContext outputs;
  LossResult losses;
};

// How this rank takes part in expert parallelism (parallelize/parallelize.h builds it from the
// parallel context). The default is the single-rank model.
struct ExpertParallelSetup {
  ShardSelection shards;  // ep_rank / ep_size: which routed experts this rank holds
  std::shared_ptr<const RoutedExpertsEngine> engine;  // null: the single-rank routed path
  // Node-limited routing (ops::RouterSettings::experts_per_node / max_nodes; 0 = off). It
  // is part of the model's maths: a single-rank reference is given the same values.
  int64_t experts_per_node = 0;
  int64_t max_nodes_per_token = 0;
};

struct ForwardResult {
  // With tensor parallelism the logits are this rank's vocabulary slice [B·S, V/tp]
  // (global ids vocab_begin() + column).
  Tensor logits;                   // [B·S, V] main-model logits (row b·S + s predicts t_{s+1})
  std::vector<Tensor> mtp_logits;  // per depth d: [B·S, V] (row b·S + s predicts t_{s+d+1})
  LossResult losses;
};

// Which parts of the model a pipeline rank holds (docs/pipeline.md); the default holds all.
// Only these parameters are allocated; the blocks of the others are never built, so only the
// held layers may be asked for (layer(i) with holds_layer(i)).
struct PipelineHolding {
  bool embedding = true;     // model.embed_tokens (the first stage, and MTP on the last stage)
  bool head = true;          // model.norm, lm_head and every MTP module's own parameters
  std::vector<bool> layers;  // per main-model layer; empty: every layer
  bool holds_layer(int64_t layer) const {
    return layers.empty() || layers[static_cast<size_t>(layer)];
  }
  bool holds(const ParamSpec& spec) const;
};

// Where this model instance sits in a parallel layout (docs/tensor-parallel.md).
//
// Tensor parallelism: the rank holds its TP slice of every split parameter (registry
// placement) and computes its share of attention heads, dense-FFN and shared-expert features,
// and vocabulary; `tp` must be the communicator of the TP group, with rank tp_rank of tp_size
// (null only for tp_size 1). Routed experts, the router, norms, q_a_proj, kv_a_proj_with_mqa
// and eh_proj are replicated: every TP rank computes them on the whole (replicated) input and
// ends a backward with the complete, identical gradient, so they need no TP reduction.
// Losses and expert loads come out identical on every TP rank (count them once per TP group).
struct ModelParallel {
  parallel::comm::Communicator* tp = nullptr;
  int64_t tp_rank = 0;
  int64_t tp_size = 1;
  // Optional counters of the TP all-reduces (owned by the caller, may be null).
  parallel::tp::TpTraffic* tp_traffic = nullptr;
  // Pipeline parallelism: the stages' parts this rank holds.
  PipelineHolding pipeline{};
  // Mixed precision (train.param_dtype, train.activation_dtype): every layout computes in the
  // same precision, so it travels with the layout.
  Precision precision{};
  // Where the parameter store, and so everything computed from it, lives.
  Device device = Device::CPU;
};

// Asks for a model that only infers (scoring, evaluation, generation) and whose every weight is
// loaded next (io::load_hf_weights, which fails on any tensor it cannot fill): the parameters are
// allocated but not initialised, which saves drawing a random number per parameter that would be
// overwritten, and no gradient buffers are allocated (as much memory again as the weights, and
// the time to zero it); a backward pass through it is an error.
struct ForInference {};

class DeepSeekV3Model {
 public:
  // Builds the registry, allocates every parameter and initialises it from `seed`.
  DeepSeekV3Model(const config::ModelConfig& config, uint64_t seed);
  // The same, uninitialised and without gradients: the caller loads every weight before any use.
  DeepSeekV3Model(const config::ModelConfig& config, ForInference);
  // The same for one rank of a parallel layout: only this rank's slices are allocated, and
  // each is initialised to exactly its part of the single-rank model's tensor.
  DeepSeekV3Model(const config::ModelConfig& config, uint64_t seed, const ModelParallel& parallel);
  // The same with expert parallelism: the store holds setup.shards' experts and every MoE layer
  // (main and MTP) computes its routed experts through setup.engine.
  DeepSeekV3Model(const config::ModelConfig& config, uint64_t seed,
                  const ExpertParallelSetup& setup);
  // Tensor and expert parallelism together (setup.shards' TP fields are taken from `parallel`).
  DeepSeekV3Model(const config::ModelConfig& config, uint64_t seed, const ModelParallel& parallel,
                  const ExpertParallelSetup& setup);
  DeepSeekV3Model(const DeepSeekV3Model&) = delete;
  DeepSeekV3Model& operator=(const DeepSeekV3Model&) = delete;

  const config::ModelConfig& config() const { return registry_.config(); }
  const ModelDims& dims() const { return dims_; }
  const ParameterRegistry& registry() const { return registry_; }
  ParameterStore& params() { return *store_; }
  const ParameterStore& params() const { return *store_; }
  const parallel::tp::TpGroup& tp() const { return tp_; }
  // First global vocabulary id of this rank's embedding / lm_head rows (0 without TP).
  int64_t vocab_begin() const { return vocab_begin_; }

  // Forward and backward of one micro-batch; gradients accumulate into params(). Expert loads
  // of this forward are added to expert_loads().
  LossResult forward_backward(const TokenBatch& batch, const LossScales& scales);
  // Forward only (no gradients, loads not recorded). Without scales the losses are normalised
  // by this batch's own counts.
  ForwardResult forward(const TokenBatch& batch, const LossScales* scales = nullptr);

  // The two halves of forward_backward, for callers that schedule them apart.
  void forward(const TokenBatch& batch, const LossScales& scales, ModelContext& ctx);
  void backward(ModelContext& ctx);

  // Loads accumulated by forward_backward since the last reset: one entry per MoE layer
  // (main layers in order, then MTP layers).
  const std::vector<ExpertLoad>& expert_loads() const { return loads_; }
  void reset_expert_loads();
  void record_expert_loads(const ModelContext& ctx);
  // Aux-loss-free balancing after an optimiser step: bias_e += γ · sign(mean(load) − load_e),
  // with the step's global loads (summed over micro-batches and ranks). Layers this rank does
  // not hold (pipeline parallelism) are skipped.
  void update_router_bias(const std::vector<ExpertLoad>& global_loads, double gamma);

  // Pieces for pipeline stages.
  const Embedding& embedding() const { return embedding_; }
  int64_t num_layers() const { return static_cast<int64_t>(layers_.size()); }
  const PipelineHolding& holding() const { return holding_; }
  const DecoderLayer& layer(int64_t index) const { return *layers_[static_cast<size_t>(index)]; }
  const OutputHead& head() const { return head_; }
  // The model's MTP depth D; the modules themselves exist only where holding().head.
  int64_t mtp_depth() const { return dims_.mtp_depth; }
  const MtpModule& mtp(int64_t depth) const { return *mtp_[static_cast<size_t>(depth - 1)]; }
  // Layout of a [batch, seq] micro-batch (grows the RoPE table when needed).
  SequenceLayout sequence_layout(int64_t batch, int64_t seq);
  // Runs layers [first, last) on x; contexts[i − first] receives layer i's context.
  Tensor forward_layers(int64_t first, int64_t last, const Tensor& x, const SequenceLayout& layout,
                        float balance_coef, std::vector<DecoderLayerContext>& contexts) const;
  // Backward through layers [first, last) from the gradient of their output; with
  // `with_weights` each layer's backward_weight runs right after its backward_input.
  Tensor backward_layers(int64_t first, int64_t last, const Tensor& dout,
                         std::vector<DecoderLayerContext>& contexts, bool with_weights) const;
  // DualPipe's F&B over two layer ranges (two pipeline stages of one rank): forward_layers on
  // [f_first, f_last) and backward_layers (input gradients only) on [b_first, b_last), with the
  // same results, the layers taken in pairs: forward layer f_first + i with backward layer
  // b_last − 1 − i (DecoderLayer::forward_backward_input); the longer range finishes alone.
  // Returns {forward output, input gradient}.
  std::pair<Tensor, Tensor> forward_backward_layers(
      int64_t f_first, int64_t f_last, const Tensor& x, const SequenceLayout& layout,
      float balance_coef, std::vector<DecoderLayerContext>& forward_contexts, int64_t b_first,
      int64_t b_last, const Tensor& dout,
      std::vector<DecoderLayerContext>& backward_contexts) const;
  // The outputs on the final hidden states h_final [T, H] of `batch` (the last pipeline
  // stage's part of forward): main-model cross-entropy, then the MTP depths, each embedding its
  // shifted inputs with the model's embedding; every loss divided by the global counts of
  // `scales`. Sets lm_*, mtp_* and the CE sums of the result (the balance loss comes from the
  // layers).
  LossResult forward_outputs(const TokenBatch& batch, const Tensor& h_final,
                             const SequenceLayout& layout, const LossScales& scales,
                             float balance_coef, OutputContext& ctx) const;
  // Their backward: MTP depths from the last, then the main head; the weight gradients of the
  // MTP modules, lm_head, the final norm and the MTP part of the embedding accumulate. Returns
  // d loss / d h_final and releases the context.
  Tensor backward_outputs(OutputContext& ctx) const;
  // The coefficient of Σ_rows L_bal passed to MoE layers: α / global rows.
  static float balance_coefficient(const LossScales& scales);

 private:
  // No seed: uninitialised and without gradients (ForInference).
  DeepSeekV3Model(const config::ModelConfig& config, std::optional<uint64_t> seed,
                  const ModelParallel& parallel, const ExpertParallelSetup& setup);
  void ensure_rope(int64_t positions);
  void require_gradients(const char* what) const;
  // The dtype the layers' saved activations are kept in between forward and backward.
  DType saved_activation_dtype() const;

  ParameterRegistry registry_;
  PipelineHolding holding_;
  ModelDims dims_;
  parallel::tp::TpGroup tp_;
  int64_t vocab_begin_ = 0;
  std::unique_ptr<ParameterStore> store_;
  Embedding embedding_;
  std::vector<std::unique_ptr<DecoderLayer>> layers_;
  OutputHead head_;
  std::vector<std::unique_ptr<MtpModule>> mtp_;
  ops::RopeTable rope_;
  std::vector<ExpertLoad> loads_;
};

}  // namespace trident::models
