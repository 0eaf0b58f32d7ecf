#pragma once
// AdamW with fp32 master weights and moments, torch.optim.AdamW semantics (docs/model.md):
//   p <- p·(1 − lr·wd)                    (weight-decayed parameters only)
//   m <- β1·m + (1 − β1)·g ; v <- β2·v + (1 − β2)·g²
//   p <- p − lr/(1 − β1^t) · m / (sqrt(v)/sqrt(1 − β2^t) + eps)
// The update works on flat fp32 spans so ZeRO-1 can apply it to any contiguous shard of a
// parameter with exactly the same arithmetic as the unsharded update.
#include <cstdint>
#include <vector>

#include "runtime/core/tensor.h"

namespace trident::train {

struct AdamWSettings {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

// One AdamW step on `count` contiguous fp32 elements. `step` is 1-based. The gradient is read
// as grad · grad_scale (the clip coefficient), exactly as if it had been scaled in place first,
// without a pass of its own over the gradients.
void adamw_update(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t count,
                  const AdamWSettings& settings, double lr, int64_t step, bool decay,
                  float grad_scale = 1.0f);
// The same with the moments elements [offset, offset + count) of f32 or bf16 tensors
// (train.moment_dtype): bf16 moments are read as fp32, updated in fp32 and rounded back to
// nearest-even, as DeepSeek-V3 keeps them.
void adamw_update(float* param, const float* grad, Tensor& exp_avg, Tensor& exp_avg_sq,
                  int64_t offset, int64_t count, const AdamWSettings& settings, double lr,
                  int64_t step, bool decay, float grad_scale = 1.0f);

// Optimizer state of one parameter (or one shard of it).
struct AdamWState {
  Tensor exp_avg;     // m, fp32
  Tensor exp_avg_sq;  // v, fp32
};                    // (the Optimizer's own moments may be bf16: train.moment_dtype)

AdamWState make_adamw_state(int64_t numel);

// Sum of squares of a gradient, accumulated in double (for the global grad norm). The order of
// the additions is fixed by `count` alone (blocks of 64K elements, eight interleaved partial
// sums in each, blocks added in order), so every rank, run and thread count adds alike; the
// blocks run in parallel and the partial sums vectorise.
double sum_of_squares(const float* values, int64_t count);
double sum_of_squares(const Tensor& grad);
// Clip coefficient for global-norm clipping: min(1, max_norm / (norm + 1e-6)); 1 if max_norm ≤ 0.
double clip_coefficient(double global_norm, double max_norm);

}  // namespace trident::train
