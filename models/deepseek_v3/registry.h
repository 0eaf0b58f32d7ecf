#pragma once
// The parameter registry: one record per DeepSeek-V3 parameter (HF name, global shape, dtype,
// kind, training flags, placement), derived from the ModelConfig alone and without allocating
// any tensor. Init, gradient reduction groups, ZeRO-1 ownership, checkpoint hyperslabs and the
// planner all read this one list; nothing else keeps its own copy of that knowledge.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/config/trident.pb.h"
#include "runtime/core/dtype.h"
#include "runtime/core/tensor.h"

namespace trident::models {

enum class ParamKind {
  kEmbedding,      // model.embed_tokens
  kHead,           // lm_head
  kNorm,           // input/post-attention layernorms, model.norm
  kAttention,      // everything under self_attn (its two inner norms included)
  kDenseFfn,       // mlp.{gate,up,down}_proj of dense layers
  kRouter,         // mlp.gate.weight
  kRouterBias,     // mlp.gate.e_score_correction_bias: a buffer, updated by the bias rule
  kExpert,         // mlp.experts.j.*
  kSharedExpert,   // mlp.shared_experts.*
  kMtpNorm,        // MTP enorm, hnorm, shared_head.norm
  kMtpProjection,  // MTP eh_proj
};
const char* param_kind_name(ParamKind kind);

// How the tensor-parallel axis splits a parameter. For routed experts the split applies over
// the expert-tensor-parallel axis (ETP) of the MoE fold; for everything else over TP.
enum class TpSplit {
  kReplicated,  // every TP rank holds the whole tensor
  kColumn,      // column-parallel linear: the output dimension (dim 0) is split
  kRow,         // row-parallel linear: the input dimension (dim 1) is split
  kVocab,       // vocab-parallel embedding / head: the vocabulary dimension (dim 0) is split
};
const char* tp_split_name(TpSplit split);

struct Placement {
  TpSplit tp = TpSplit::kReplicated;
  // Routed experts only: the expert lives on EP rank expert_index / (num_experts / ep).
  bool expert_parallel = false;
  int64_t expert_index = -1;
  int64_t num_experts = 0;
};

struct ParamSpec {
  std::string name;  // Hugging Face name
  Shape shape;       // global shape
  DType dtype = DType::F32;
  ParamKind kind = ParamKind::kNorm;
  int64_t layer = -1;  // decoder layer index (MTP depth d: num_hidden_layers + d − 1), −1 if none
  int64_t expert = -1;        // routed expert index, −1 if not an expert
  int64_t mtp_depth = 0;      // 0: main model; d ≥ 1: MTP module d (its own parameters)
  bool trained = true;        // receives gradients (false: the router bias buffer)
  bool weight_decay = false;  // AdamW decay: trained parameters with ≥ 2 dimensions
  Placement placement;

  int64_t numel() const { return shape_numel(shape); }
};

// The part of one dimension a shard holds (a hyperslab along `dim`; dim −1 = the whole tensor).
struct ShardSlice {
  int64_t dim = -1;
  int64_t begin = 0;
  int64_t extent = 0;
};

// Which slice of `spec` a TP rank holds (throws UserError if tp_size does not divide it).
ShardSlice tp_slice(const ParamSpec& spec, int64_t tp_rank, int64_t tp_size);
// Local shape on a TP rank.
Shape local_shape(const ParamSpec& spec, int64_t tp_rank, int64_t tp_size);
// EP rank owning a routed expert (0 for everything that is not expert-parallel).
int64_t ep_owner(const ParamSpec& spec, int64_t ep_size);
// Whether an EP rank holds this parameter (true for every non-expert parameter).
bool held_by_ep_rank(const ParamSpec& spec, int64_t ep_rank, int64_t ep_size);
// Row-major global element index of a shard's local flat element `local_index`.
int64_t global_index(const ParamSpec& spec, const ShardSlice& slice, int64_t local_index);

// Parameter counts (from the registry's records, so they agree with what is allocated).
struct ParameterCounts {
  int64_t total = 0;          // main model (embedding, layers, final norm, head; no MTP)
  int64_t activated = 0;      // main model per token: k routed + shared experts
  int64_t mtp = 0;            // all MTP modules, their own parameters only
  int64_t mtp_activated = 0;  // MTP modules per token
  int64_t embedding = 0;
  int64_t head = 0;
  int64_t trained = 0;  // main + MTP parameters that receive gradients
};

class ParameterRegistry {
 public:
  explicit ParameterRegistry(const config::ModelConfig& config);

  const config::ModelConfig& config() const { return config_; }
  const std::vector<ParamSpec>& specs() const { return specs_; }
  const ParamSpec& spec(const std::string& name) const;
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  int64_t index_of(const std::string& name) const;

  ParameterCounts counts() const;
  // Parameters of one decoder layer of the main model (attention, FFN/MoE, its norms);
  // `activated` counts only k routed experts.
  int64_t layer_parameters(int64_t layer, bool activated = false) const;
  // Parameters of one layer's attention block (self_attn.*).
  int64_t attention_parameters(int64_t layer) const;

 private:
  void add(ParamSpec spec);
  void add_decoder_layer(int64_t layer, int64_t mtp_depth);

  config::ModelConfig config_;
  std::vector<ParamSpec> specs_;
  std::unordered_map<std::string, int64_t> index_;
};

// Structural facts of a config shared by the registry and the model.
bool is_moe_layer(const config::ModelConfig& config, int64_t layer);
// Checks the fields the model needs (positive sizes, divisibility) with messages naming them.
void check_model_config(const config::ModelConfig& config);

}  // namespace trident::models
