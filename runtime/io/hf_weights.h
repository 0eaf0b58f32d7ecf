#pragma once
// Model weights in the Hugging Face layout: config.json + model.safetensors (or sharded files
// with model.safetensors.index.json), tensors named by their HF names. This is how real
// checkpoints load into Trident and how Trident's weights load elsewhere; the golden test
// exchanges weights with the PyTorch reference this way.
#include <string>

#include "models/deepseek_v3/parameters.h"
#include "runtime/io/safetensors.h"

namespace trident::io {

struct HfExportOptions {
  StDType dtype = StDType::F32;
  // Also write the MTP module's copies of the shared embedding and head
  // (model.layers.N.embed_tokens.weight, model.layers.N.shared_head.head.weight), as the
  // published checkpoint does.
  bool write_mtp_shared_copies = true;
};

// Writes DIR/config.json for `model` with torch_dtype naming `dtype`.
void write_hf_config(const std::string& dir, const config::ModelConfig& model, StDType dtype);

// Writes config.json and model.safetensors for the parameters `store` holds (whole tensors:
// a single-rank store). Streams tensor by tensor.
void save_hf_weights(const models::ParameterStore& store, const std::string& dir,
                     const HfExportOptions& options = {});

// Loads every parameter the store holds from DIR (F32, BF16 or F16 tensors, converted to fp32),
// taking the store's slice of each global tensor. A missing tensor or a shape mismatch is a
// UserError naming the tensor, the expected and the found shape.
void load_hf_weights(models::ParameterStore& store, const std::string& dir);

}  // namespace trident::io
