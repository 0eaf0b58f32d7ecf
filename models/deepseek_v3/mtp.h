#pragma once
// Multi-token prediction depth d (docs/model.md):
//   e = rms(Emb(t_{i+d}), enorm);  g = rms(h^{d−1}_i, hnorm)
//   h^d = DecoderLayer_N(linear([e ; g], eh_proj)),  logits^d = linear(rms(h^d, shared_head.norm),
//   lm_head)
// The embedding and lm_head are the main model's; gradient reaches the main model through
// h^{d−1} (h⁰ is the main model's normalised output) and through the shared weights.
#include <cstdint>

#include "models/deepseek_v3/decoder_layer.h"
#include "models/deepseek_v3/head.h"

namespace trident::models {

struct MtpContext {
  NormStep enorm;
  NormStep hnorm;
  LinearStep eh_proj;
  DecoderLayerContext layer;
  HeadContext head;
  Tensor ids;  // t_{i+d} (for the embedding gradient)
};

struct MtpInputGradients {
  Tensor embedded;  // d loss / d Emb(t_{i+d})
  Tensor h_prev;    // d loss / d h^{d−1}
};

class MtpModule {
 public:
  // depth d ≥ 1; lm_head is the shared output projection (TP: this rank's vocabulary rows,
  // starting at vocab_begin). eh_proj and the norms are replicated over TP.
  MtpModule(const ModelDims& dims, const config::ModelConfig& config, ParameterStore& store,
            int64_t depth, const Weight& lm_head, parallel::tp::TpGroup tp = {},
            int64_t vocab_begin = 0);

  // embedded = Emb(t_{i+d}) [T, H]; h_prev = h^{d−1} [T, H] -> h^d [T, H]
  Tensor forward(const Tensor& embedded, const Tensor& h_prev, const SequenceLayout& layout,
                 float balance_coef, MtpContext& ctx) const;
  MtpInputGradients backward_input(const Tensor& dh, MtpContext& ctx) const;
  void backward_weight(MtpContext& ctx) const;

  const OutputHead& head() const { return head_; }
  const DecoderLayer& layer() const { return layer_; }
  DecoderLayer& layer() { return layer_; }
  int64_t depth() const { return depth_; }

 private:
  ModelDims dims_;
  int64_t depth_;
  Weight enorm_, hnorm_, eh_proj_;
  DecoderLayer layer_;
  OutputHead head_;
};

}  // namespace trident::models
