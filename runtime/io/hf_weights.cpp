#include "runtime/io/hf_weights.h"

#include <filesystem>
#include <fstream>

#include "runtime/config/config.h"
#include "runtime/core/logging.h"
#include "runtime/io/non_finite.h"

namespace trident::io {

namespace {
// The MTP layer's duplicated names for the shared embedding and head.
std::vector<std::pair<std::string, std::string>> mtp_shared_copies(
    const config::ModelConfig& config) {
  std::vector<std::pair<std::string, std::string>> out;
  for (int64_t d = 1; d <= config.num_nextn_predict_layers(); ++d) {
    const std::string prefix = "model.layers." + std::to_string(config.num_hidden_layers() + d - 1);
    out.emplace_back(prefix + ".embed_tokens.weight", "model.embed_tokens.weight");
    out.emplace_back(prefix + ".shared_head.head.weight", "lm_head.weight");
  }
  return out;
}

bool whole_tensor(const models::Parameter& param) {
  return param.slice.dim < 0 || param.slice.extent == param.spec->shape[static_cast<size_t>(param.slice.dim)];
}

// Copies `slice` of the global tensor `global` into `out` (local shape).
void copy_slice(const Tensor& global, const models::ShardSlice& slice, Tensor& out) {
  if (slice.dim < 0) {
    out.copy_from(global);
    return;
  }
  const Shape& shape = global.shape();
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < slice.dim; ++i) outer *= shape[static_cast<size_t>(i)];
  for (size_t i = static_cast<size_t>(slice.dim) + 1; i < shape.size(); ++i) inner *= shape[i];
  const int64_t full = shape[static_cast<size_t>(slice.dim)];
  // Cut on the host, then one copy to where the parameter lives.
  update_on_host(out, [&](Tensor& cut) {
    const float* src = global.data<float>();
    float* dst = cut.data<float>();
    for (int64_t o = 0; o < outer; ++o) {
      const float* from = src + (o * full + slice.begin) * inner;
      std::copy(from, from + slice.extent * inner, dst + o * slice.extent * inner);
    }
  });
}
}  // namespace

void save_hf_weights(const models::ParameterStore& store, const std::string& dir,
                     const HfExportOptions& options) {
  const config::ModelConfig& model = store.registry().config();
  refuse_non_finite(find_non_finite(store), "Hugging Face weights to '" + dir + "'");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  TRIDENT_USER_CHECK(!ec, "cannot create the output directory '", dir, "': ", ec.message());

  std::vector<StEntry> entries;
  for (const models::Parameter& param : store.parameters()) {
    TRIDENT_CHECK(whole_tensor(param), "save_hf_weights needs whole tensors; ", param.spec->name,
                  " is a shard");
    // The router bias is fp32 in the published checkpoint whatever the weight dtype.
    const StDType dtype = param.spec->kind == models::ParamKind::kRouterBias ? StDType::F32 : options.dtype;
    entries.push_back({param.spec->name, dtype, param.spec->shape});
  }
  const auto copies = mtp_shared_copies(model);
  if (options.write_mtp_shared_copies) {
    for (const auto& [copy, source] : copies) {
      if (store.has(source)) entries.push_back({copy, options.dtype, store.get(source).spec->shape});
    }
  }
  SafetensorsWriter writer(dir + "/model.safetensors", entries, {{"format", "pt"}});
  for (const models::Parameter& param : store.parameters()) writer.write(param.spec->name, param.value);
  if (options.write_mtp_shared_copies) {
    for (const auto& [copy, source] : copies) {
      if (store.has(source)) writer.write(copy, store.get(source).value);
    }
  }
  writer.finish();

  write_hf_config(dir, model, options.dtype);
}

void write_hf_config(const std::string& dir, const config::ModelConfig& model, StDType dtype) {
  config::ModelConfig exported = model;
  exported.set_torch_dtype(dtype == StDType::F32    ? "float32"
                           : dtype == StDType::BF16 ? "bfloat16"
                                                    : "float16");
  std::ofstream json(dir + "/config.json");
  json << config::export_hf_config_json(exported);
  TRIDENT_CHECK_IO(json.good(), "writing ", dir, "/config.json failed");
}

void load_hf_weights(models::ParameterStore& store, const std::string& dir) {
  const SafetensorsDirectory files(dir);
  int64_t loaded = 0;
  for (models::Parameter& param : store.parameters()) {
    const std::string& name = param.spec->name;
    TRIDENT_USER_CHECK(files.contains(name), "weights in '", dir, "' have no tensor '", name,
                       "' (expected shape ", shape_string(param.spec->shape),
                       "); is config.json the right model?");
    const StTensorInfo& info = files.info(name);
    TRIDENT_USER_CHECK(info.shape == param.spec->shape, "tensor '", name, "' in '", dir,
                       "' has shape ", shape_string(info.shape), " but the model expects ",
                       shape_string(param.spec->shape));
    const Tensor global = files.load(name, DType::F32);
    copy_slice(global, param.slice, param.value);
    ++loaded;
  }
  store.refresh_compute_weights();
  TLOG_DEBUG("loaded ", loaded, " tensors from ", dir);
}

}  // namespace trident::io
