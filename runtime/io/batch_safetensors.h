#pragma once
// A token batch as safetensors tensors "tokens<suffix>" and "loss_mask<suffix>" (I32,
// [batch, seq_len + 1]): how batches are handed to the PyTorch reference (golden test, bench).
#include <string>
#include <vector>

#include "models/batch.h"
#include "runtime/io/safetensors.h"

namespace trident::io {

// The two header entries for a batch of this shape.
std::vector<StEntry> token_batch_entries(const models::TokenBatch& batch, const std::string& suffix = "");
// Writes the two tensors (the writer must have been created with token_batch_entries).
void write_token_batch(SafetensorsWriter& writer, const models::TokenBatch& batch,
                       const std::string& suffix = "");

}  // namespace trident::io
