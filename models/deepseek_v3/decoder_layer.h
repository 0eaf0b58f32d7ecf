#pragma once
// One DeepSeek-V3 decoder layer (pre-norm residual):
//   h = x + Attn(rms(x, input_layernorm));  out = h + FFN(rms(h, post_attention_layernorm))
// with FFN the dense SwiGLU for layers < first_k_dense_replace and DeepSeekMoE after.
// Forward / backward_input / backward_weight take and return explicit tensors so that a
// pipeline stage can run any contiguous range of layers.
#include <cstdint>
#include <optional>
#include <utility>

#include "models/deepseek_v3/ffn.h"
#include "models/deepseek_v3/mla.h"
#include "models/deepseek_v3/moe.h"

namespace trident::models {

struct DecoderLayerContext {
  NormStep input_norm;
  NormStep post_norm;
  MlaContext attention;
  FfnContext ffn;
  MoeContext moe;
};

class DecoderLayer {
 public:
  // layer: the HF layer index (MTP depth d uses num_hidden_layers + d − 1).
  // tp: the tensor-parallel group the store's slices belong to (attention heads, the dense FFN
  // and the shared expert are split; the rest is replicated).
  DecoderLayer(const ModelDims& dims, const config::ModelConfig& config, ParameterStore& store,
               int64_t layer, parallel::tp::TpGroup tp = {});

  // x [T, H] -> [T, H]. balance_coef: see MoeLayer::forward (ignored by dense layers).
  Tensor forward(const Tensor& x, const SequenceLayout& layout, float balance_coef,
                 DecoderLayerContext& ctx) const;
  // dout [T, H] -> dx [T, H]
  Tensor backward_input(const Tensor& dout, DecoderLayerContext& ctx) const;
  void backward_weight(DecoderLayerContext& ctx) const;

  // DualPipe's F&B on one layer pair: this layer's forward of one micro-batch and
  // backward_layer's backward_input of another, with the results of the two calls. The
  // forward's attention runs first, then the two FFNs (two MoE layers through
  // MoeLayer::forward_backward_input, so one's all-to-alls travel while the other computes),
  // then the backward's attention. Returns {forward output, input gradient}.
  std::pair<Tensor, Tensor> forward_backward_input(const Tensor& x, const SequenceLayout& layout,
                                                   float balance_coef,
                                                   DecoderLayerContext& forward_ctx,
                                                   const DecoderLayer& backward_layer,
                                                   const Tensor& dout,
                                                   DecoderLayerContext& backward_ctx) const;

  // Decoding with the absorbed MLA cache: x [batch · n, H] are n new tokens per row.
  Tensor forward_decode(const Tensor& x, int64_t n, const ops::RopeTable& rope,
                        MlaCache& cache) const;

  int64_t index() const { return layer_; }
  bool is_moe() const { return moe_.has_value(); }
  const MoeLayer& moe() const { return *moe_; }
  MoeLayer& moe() { return *moe_; }
  const MlaAttention& attention() const { return attention_; }

 private:
  // The forward up to the FFN's input: returns rms(h) and sets h, the residual after attention.
  Tensor forward_attention(const Tensor& x, const SequenceLayout& layout, DecoderLayerContext& ctx,
                           Tensor& h) const;
  // out = ffn_out + h (bf16 under bf16 activations).
  Tensor add_residual(Tensor ffn_out, const Tensor& h) const;
  // The backward below the FFN: d_hn is the FFN's input gradient, dout the layer's output's.
  Tensor backward_attention(const Tensor& dout, const Tensor& d_hn, DecoderLayerContext& ctx) const;

  ModelDims dims_;
  int64_t layer_;
  Weight input_norm_;
  Weight post_norm_;
  MlaAttention attention_;
  std::optional<SwiGluFfn> ffn_;
  std::optional<MoeLayer> moe_;
};

}  // namespace trident::models
