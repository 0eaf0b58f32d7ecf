#pragma once
// Token embedding and the output head logits = linear(rms(h, norm), lm_head) with its
// cross-entropy. The main model and every MTP depth share the embedding and lm_head; each has
// its own norm (model.norm, model.layers.N.shared_head.norm).
//
// Tensor parallel: both are vocab-parallel (parallel/tp/vocab_parallel.h). A TP rank holds the
// rows [vocab_begin, vocab_begin + V/tp) of the embedding and of lm_head: the embedding output
// is all-reduced, the logits stay split (cross-entropy reduces three numbers per token instead
// of gathering the row), and the gradient of the head's input is all-reduced.
#include "models/deepseek_v3/blocks.h"
#include "ops/ops.h"
#include "parallel/tp/tp_group.h"

namespace trident::models {

class Embedding {
 public:
  // table: this rank's rows, starting at global id vocab_begin.
  explicit Embedding(Weight table, parallel::tp::TpGroup tp = {}, int64_t vocab_begin = 0)
      : table_(std::move(table)), tp_(tp), vocab_begin_(vocab_begin) {}
  // ids [T] I32 -> [T, H] (complete on every TP rank)
  Tensor forward(const Tensor& ids) const;
  // table.grad += scatter of dout rows by ids (the ids this rank owns)
  void backward_weight(const Tensor& ids, const Tensor& dout) const;

 private:
  Weight table_;
  parallel::tp::TpGroup tp_;
  int64_t vocab_begin_ = 0;
};

struct HeadContext {
  NormStep norm;
  LinearStep head;
  Tensor logits;  // [T, V] (TP: this rank's [T, V/tp] slice)
  Tensor targets;
  Tensor lse;
  float grad_scale = 0.0f;  // d loss / d Σ CE for this head
};

struct HeadForward {
  Tensor normed;  // rms(h, norm): the main model's h⁰ that feeds MTP
  Tensor logits;  // [T, V] (TP: this rank's [T, V/tp] slice)
  ops::CrossEntropyResult ce;
};

class OutputHead {
 public:
  // head: this rank's lm_head rows, starting at global id vocab_begin.
  OutputHead(float eps, Weight norm, Weight head, parallel::tp::TpGroup tp = {},
             int64_t vocab_begin = 0)
      : eps_(eps),
        norm_(std::move(norm)),
        head_(std::move(head)),
        tp_(tp),
        vocab_begin_(vocab_begin) {}
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
  parallel::tp::TpGroup tp_;
  int64_t vocab_begin_ = 0;
};

}  // namespace trident::models
