#pragma once
// Storage for the parameters one rank holds: fp32 values and gradients, allocated as two flat
// buffers (so an optimizer or a gradient bucket can walk them as spans) with every parameter a
// view into them. Under bf16 weights (train.param_dtype) a third flat buffer holds the bf16
// compute copies that forward and backward read; the fp32 values stay the master weights. Routed
// experts of one layer and projection sit next to each other, so the grouped expert GEMM sees them
// as one [experts, out, in] bank without copies.
//
// Initialisation is a pure function of (seed, parameter name, global element index), so any
// shard initialises exactly its slice of the global tensor.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "models/deepseek_v3/registry.h"
#include "runtime/core/tensor.h"

namespace trident::models {

// Which parameters (and which slice of each) this rank holds. Defaults: everything, whole.
struct ShardSelection {
  int64_t tp_rank = 0;  // TP slice of attention, dense FFN, shared experts, embedding, head
  int64_t tp_size = 1;
  int64_t etp_rank = 0;  // tensor slice of routed experts
  int64_t etp_size = 1;
  int64_t ep_rank = 0;  // routed experts held: those with ep_owner == ep_rank
  int64_t ep_size = 1;
  // Further filter, e.g. the layers of a pipeline stage; empty keeps every parameter.
  std::function<bool(const ParamSpec&)> include;
};

// How forward and backward compute (docs/precision.md). Masters, gradients, norm statistics,
// softmax, router scores and the loss stay fp32 whatever is chosen here.
struct Precision {
  DType weights = DType::F32;      // the weights the ops read (bf16: rounded copies of fp32)
  DType activations = DType::F32;  // activations and their gradients between ops
};

struct Parameter {
  const ParamSpec* spec = nullptr;
  ShardSlice slice;    // the part of the global tensor held here
  Tensor value;        // local shape, fp32: the master weight
  Tensor compute;      // what forward and backward read: `value` itself, or its bf16 copy
  Tensor grad;         // same shape; undefined for parameters that are not trained
  int64_t offset = 0;  // element offset of value (and grad) in the flat buffers
};

// The routed experts of one layer for one projection: a contiguous [local experts, out, in].
struct ExpertBank {
  Tensor value;  // the compute weights (bf16 copies under bf16 weights)
  Tensor grad;
  int64_t first_expert = 0;  // global index of local expert 0
  int64_t count = 0;
  DType activations = DType::F32;  // the store's activation dtype
};

class ParameterStore {
 public:
  // The registry must outlive the store.
  // Without `gradients` the store holds no gradient buffers (a model built for inference):
  // every Parameter's and ExpertBank's grad is undefined.
  // The flat buffers are allocated on `device`; initialisation draws on the host and copies.
  explicit ParameterStore(const ParameterRegistry& registry, ShardSelection selection = {},
                          Precision precision = {}, bool gradients = true,
                          Device device = Device::CPU);
  ParameterStore(const ParameterStore&) = delete;
  ParameterStore& operator=(const ParameterStore&) = delete;

  // docs/model.md: matrices and the embedding initializer_range · N(0, 1) from
  // CounterRng(seed, stream_id(name)) at the global element index; norms 1; router biases 0.
  void initialize(uint64_t seed);
  void zero_grad();
  bool has_gradients() const { return grads_.defined(); }
  // Rounds the fp32 masters into the bf16 compute copies (nothing under fp32 weights). Whatever
  // writes the values (initialisation, the optimizer, a checkpoint or HF load, a copy from
  // another model) calls it before the next forward.
  void refresh_compute_weights();

  const ParameterRegistry& registry() const { return registry_; }
  const ShardSelection& selection() const { return selection_; }
  const Precision& precision() const { return precision_; }
  std::vector<Parameter>& parameters() { return parameters_; }
  const std::vector<Parameter>& parameters() const { return parameters_; }

  bool has(const std::string& name) const { return by_name_.count(name) != 0; }
  Parameter& get(const std::string& name);
  const Parameter& get(const std::string& name) const;
  Tensor& value(const std::string& name) { return get(name).value; }
  Tensor& grad(const std::string& name) { return get(name).grad; }

  // Routed experts of `layer` for proj "gate_proj" | "up_proj" | "down_proj".
  ExpertBank expert_bank(int64_t layer, const std::string& proj) const;

  // All values / gradients as one flat fp32 tensor each (gradient slots of untrained
  // parameters stay zero).
  const Tensor& flat_values() const { return values_; }
  const Tensor& flat_grads() const { return grads_; }
  int64_t numel() const { return values_.numel(); }
  // Where the weights live: their activations, caches and moments are allocated there.
  Device device() const { return values_.device(); }

 private:
  struct BankKey {
    int64_t layer;
    std::string proj;
    bool operator<(const BankKey& other) const {
      return layer != other.layer ? layer < other.layer : proj < other.proj;
    }
  };
  struct BankLayout {
    int64_t offset = 0;
    int64_t expert_numel = 0;
    Shape expert_shape;
    int64_t first_expert = 0;
    int64_t count = 0;
  };

  const ParameterRegistry& registry_;
  ShardSelection selection_;
  Precision precision_;
  std::vector<Parameter> parameters_;
  std::unordered_map<std::string, size_t> by_name_;
  std::map<BankKey, BankLayout> banks_;
  Tensor values_;
  Tensor grads_;
  Tensor compute_;  // bf16 copies of values_ (undefined under fp32 weights)
};

// Writes the docs/model.md initial values of `slice` of `spec` into `out` (local shape).
void initialize_parameter(const ParamSpec& spec, const ShardSlice& slice, uint64_t seed,
                          float initializer_range, Tensor& out);

}  // namespace trident::models
