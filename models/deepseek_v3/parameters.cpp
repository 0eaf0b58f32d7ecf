#include "models/deepseek_v3/parameters.h"

#include <string>
#include <utility>

#include "ops/ops.h"
#include "runtime/core/error.h"
#include "runtime/core/rng.h"

namespace trident::models {

namespace {

// "model.layers.3.mlp.experts.17.up_proj.weight" -> "up_proj"
std::string expert_projection(const ParamSpec& spec) {
  for (const char* proj : {"gate_proj", "up_proj", "down_proj"}) {
    if (spec.name.find(std::string(".") + proj + ".") != std::string::npos) return proj;
  }
  TRIDENT_FAIL("expert parameter ", spec.name, " has no known projection");
}

bool selected(const ParamSpec& spec, const ShardSelection& selection) {
  if (!held_by_ep_rank(spec, selection.ep_rank, selection.ep_size)) return false;
  return !selection.include || selection.include(spec);
}

}  // namespace

void initialize_parameter(const ParamSpec& spec, const ShardSlice& slice, uint64_t seed,
                          float initializer_range, Tensor& out) {
  float* data = out.data<float>();
  const int64_t n = out.numel();
  if (spec.kind == ParamKind::kRouterBias) {
    out.zero();
    return;
  }
  if (spec.shape.size() < 2) {  // RMSNorm weights
    out.fill(1.0f);
    return;
  }
  const CounterRng rng(seed, stream_id(spec.name));
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i) {
    const auto global = static_cast<uint64_t>(global_index(spec, slice, i));
    data[i] = initializer_range * rng.normal(global);
  }
}

ParameterStore::ParameterStore(const ParameterRegistry& registry, ShardSelection selection,
                               Precision precision, bool gradients, Device device)
    : registry_(registry), selection_(std::move(selection)), precision_(precision) {
  TRIDENT_CHECK(precision_.weights == DType::F32 || precision_.weights == DType::BF16,
                "compute weights must be f32 or bf16, got ", dtype_name(precision_.weights));
  // First pass: place every held parameter; routed experts of one (layer, projection) get
  // consecutive slots of one bank reserved when the first of them is met.
  int64_t cursor = 0;
  for (const ParamSpec& spec : registry_.specs()) {
    if (!selected(spec, selection_)) continue;
    Parameter param;
    param.spec = &spec;
    const bool expert = spec.kind == ParamKind::kExpert;
    param.slice = expert ? tp_slice(spec, selection_.etp_rank, selection_.etp_size)
                         : tp_slice(spec, selection_.tp_rank, selection_.tp_size);
    const Shape shape = expert ? local_shape(spec, selection_.etp_rank, selection_.etp_size)
                               : local_shape(spec, selection_.tp_rank, selection_.tp_size);
    const int64_t numel = shape_numel(shape);
    if (expert) {
      const BankKey key{spec.layer, expert_projection(spec)};
      auto it = banks_.find(key);
      if (it == banks_.end()) {
        const int64_t per_rank = spec.placement.num_experts / selection_.ep_size;
        BankLayout bank;
        bank.offset = cursor;
        bank.expert_numel = numel;
        bank.expert_shape = shape;
        bank.first_expert = ep_owner(spec, selection_.ep_size) * per_rank;
        bank.count = per_rank;
        cursor += per_rank * numel;
        it = banks_.emplace(key, bank).first;
      }
      param.offset = it->second.offset + (spec.expert - it->second.first_expert) * numel;
    } else {
      param.offset = cursor;
      cursor += numel;
    }
    by_name_.emplace(spec.name, parameters_.size());
    parameters_.push_back(std::move(param));
  }

  values_ = Tensor::zeros({cursor}, DType::F32, device);
  if (gradients) grads_ = Tensor::zeros({cursor}, DType::F32, device);
  if (precision_.weights != DType::F32) {
    compute_ = Tensor::zeros({cursor}, precision_.weights, device);
  }
  for (Parameter& param : parameters_) {
    const ParamSpec& spec = *param.spec;
    const bool expert = spec.kind == ParamKind::kExpert;
    const Shape shape = expert ? local_shape(spec, selection_.etp_rank, selection_.etp_size)
                               : local_shape(spec, selection_.tp_rank, selection_.tp_size);
    const int64_t numel = shape_numel(shape);
    param.value = values_.narrow(param.offset, param.offset + numel).view(shape);
    param.compute = compute_.defined()
                        ? compute_.narrow(param.offset, param.offset + numel).view(shape)
                        : param.value;
    if (spec.trained && gradients) {
      param.grad = grads_.narrow(param.offset, param.offset + numel).view(shape);
    }
  }
}

void ParameterStore::initialize(uint64_t seed) {
  const auto range = static_cast<float>(registry_.config().initializer_range());
  // Drawn on the host (a pure function of seed, name and index), copied to the device once.
  update_on_host(values_, [&](Tensor& host) {
    for (Parameter& param : parameters_) {
      Tensor target =
          host.narrow(param.offset, param.offset + param.value.numel()).view(param.value.shape());
      initialize_parameter(*param.spec, param.slice, seed, range, target);
    }
  });
  refresh_compute_weights();
}

void ParameterStore::refresh_compute_weights() {
  if (compute_.defined()) ops::convert(values_, compute_);
}

void ParameterStore::zero_grad() {
  TRIDENT_CHECK(has_gradients(),
                "zero_grad on a parameter store without gradients (a model "
                "built for inference)");
  grads_.zero();
}

Parameter& ParameterStore::get(const std::string& name) {
  const auto it = by_name_.find(name);
  TRIDENT_CHECK(it != by_name_.end(), "parameter ", name, " is not held by this store");
  return parameters_[it->second];
}

const Parameter& ParameterStore::get(const std::string& name) const {
  const auto it = by_name_.find(name);
  TRIDENT_CHECK(it != by_name_.end(), "parameter ", name, " is not held by this store");
  return parameters_[it->second];
}

ExpertBank ParameterStore::expert_bank(int64_t layer, const std::string& proj) const {
  const auto it = banks_.find(BankKey{layer, proj});
  TRIDENT_CHECK(it != banks_.end(), "no routed experts of layer ", layer, " (", proj,
                ") are held by this store");
  const BankLayout& bank = it->second;
  Shape shape = {bank.count};
  shape.insert(shape.end(), bank.expert_shape.begin(), bank.expert_shape.end());
  const int64_t end = bank.offset + bank.count * bank.expert_numel;
  ExpertBank out;
  out.value = (compute_.defined() ? compute_ : values_).narrow(bank.offset, end).view(shape);
  if (has_gradients()) out.grad = grads_.narrow(bank.offset, end).view(shape);
  out.first_expert = bank.first_expert;
  out.count = bank.count;
  out.activations = precision_.activations;
  return out;
}

}  // namespace trident::models
