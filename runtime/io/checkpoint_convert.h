#pragma once
// Conversion between Trident checkpoints and Hugging Face model directories, streamed tensor
// by tensor: at most one tensor (plus the shard being written, on disk) is in flight, never the
// whole model. Serial (no MPI needed).
#include <cstdint>
#include <functional>
#include <string>

#include "runtime/config/trident.pb.h"
#include "runtime/io/safetensors.h"

namespace trident::io {

// Called after each tensor: (tensors done, tensors total, name just handled).
using ConvertProgress = std::function<void(int64_t, int64_t, const std::string&)>;

struct HfExportConversion {
  StDType dtype = StDType::F32;         // weights dtype (router biases stay F32)
  double shard_size_mb = 5000;          // a shard closes once it would exceed this (MiB)
  bool write_mtp_shared_copies = true;  // MTP's copies of embed_tokens and lm_head, as published
};

struct ConversionSummary {
  int64_t tensors = 0;
  int64_t shards = 0;
  uint64_t bytes = 0;
};

// <checkpoint>.h5 -> DIR/config.json, DIR/model-0000i-of-0000n.safetensors,
// DIR/model.safetensors.index.json. Optimizer state is not exported.
ConversionSummary checkpoint_to_hf(const std::string& checkpoint, const std::string& dir,
                                   const HfExportConversion& options,
                                   const ConvertProgress& progress = {});

// DIR (config.json + safetensors) -> a checkpoint at step 0 without optimizer state, written to
// `checkpoint` (via checkpoint.tmp + rename). `base` supplies the non-model config sections
// stored in the file; its model section is replaced by DIR/config.json.
ConversionSummary hf_to_checkpoint(const std::string& dir, const std::string& checkpoint,
                                   const config::TridentConfig& base,
                                   const ConvertProgress& progress = {});

}  // namespace trident::io
