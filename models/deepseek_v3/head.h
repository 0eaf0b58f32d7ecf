#pragma once
// Token embedding and the output head logits = linear(rms(h, norm), lm_head) with its
// cross-entropy. The main model and every MTP depth share the embedding and lm_head; each has
// its own norm (model.norm, model.layers.N.shared_head.norm).
#include "models/deepseek_v3/blocks.h"
#include "ops/cpu/cross_entropy.h"

namespace trident::models {

class Embedding {
 public:
  explicit Embedding(Weight table) : table_(std::move(table)) {}
  // ids [T] I32 -> [T, H]
  Tensor forward(const Tensor& ids) const;
  // table.grad += scatter of dout rows by ids
  void backward_weight(const Tensor& ids, const Tensor& dout) const;

 private:
  Weight table_;
};

struct HeadContext {
  NormStep norm;
  LinearStep head;
  Tensor logits;  // [T, V]
  Tensor targets;
  Tensor lse;
  float grad_scale = 0.0f;  // d loss / d Σ CE for this head
};

struct HeadForward {
  Tensor normed;  // rms(h, norm): the main model's h⁰ that feeds MTP
  Tensor logits;  // [T, V]
  ops::cpu::CrossEntropyResult ce;
};

class OutputHead {
 public:
  OutputHead(float eps, Weight norm, Weight head)
      : eps_(eps), norm_(std::move(norm)), head_(std::move(head)) {}
  // h [T, H]; targets [T] I32 (kIgnoreIndex = not counted); grad_scale multiplies the CE sum.
  HeadForward forward(const Tensor& h, const Tensor& targets, float grad_scale,
                      HeadContext& ctx) const;
  // Gradient w.r.t. h. extra_dnormed (optional) is added to the gradient of the normed output
  // before the norm's backward (the MTP module reads the main head's normed output).
  Tensor backward_input(HeadContext& ctx, const Tensor* extra_dnormed = nullptr) const;
  void backward_weight(HeadContext& ctx) const;

 private:
  float eps_;
  Weight norm_;
  Weight head_;
};

}  // namespace trident::models
