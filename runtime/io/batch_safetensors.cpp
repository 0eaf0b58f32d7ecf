#include "runtime/io/batch_safetensors.h"

namespace trident::io {

std::vector<StEntry> token_batch_entries(const models::TokenBatch& batch, const std::string& suffix) {
  const Shape shape{batch.batch, batch.seq_len + 1};
  return {{"tokens" + suffix, StDType::I32, shape}, {"loss_mask" + suffix, StDType::I32, shape}};
}

void write_token_batch(SafetensorsWriter& writer, const models::TokenBatch& batch,
                       const std::string& suffix) {
  const Shape shape{batch.batch, batch.seq_len + 1};
  Tensor tokens = Tensor::empty(shape, DType::I32);
  Tensor mask = Tensor::empty(shape, DType::I32);
  for (size_t i = 0; i < batch.tokens.size(); ++i) {
    tokens.data<int32_t>()[i] = batch.tokens[i];
    mask.data<int32_t>()[i] = batch.loss_mask[i];
  }
  writer.write("tokens" + suffix, tokens);
  writer.write("loss_mask" + suffix, mask);
}

}  // namespace trident::io
