// The op API (ops/ops.h): each call goes to the backend of the device its tensors live on.
#include <initializer_list>
#include <vector>

#include "ops/cpu/ops.h"
#include "ops/ops.h"
#include "runtime/core/device_access.h"
#ifdef TRIDENT_WITH_CUDA
#include "ops/cuda/ops.h"
#endif

namespace trident::ops {
namespace {

// An optional operand passed as a null pointer counts as an undefined tensor.
const Tensor& as_tensor(const Tensor* tensor) {
  static const Tensor kAbsent;
  return tensor != nullptr ? *tensor : kAbsent;
}
const Tensor& as_tensor(const Tensor& tensor) { return tensor; }

// The first defined tensor of one call (pointers or tensors), after checking that every defined
// one shares its device; null when none is defined. A tensor elsewhere is a bug in the caller (a
// missing copy), reported with the op and the tensor.
template <typename Tensors>
const Tensor* first_on_one_device(const char* op, const Tensors& tensors) {
  const Tensor* first = nullptr;
  for (const auto& entry : tensors) {
    const Tensor& tensor = as_tensor(entry);
    if (!tensor.defined()) continue;
    if (first == nullptr) {
      first = &tensor;
      continue;
    }
    TRIDENT_CHECK(tensor.device() == first->device(), op, ": operands on different devices (",
                  first->describe(), " and ", tensor.describe(),
                  "); copy them to one device first");
  }
  return first;
}

// The device all defined tensors of one call share.
Device device_of(const char* op, std::initializer_list<const Tensor*> tensors) {
  const Tensor* first = first_on_one_device(op, tensors);
  TRIDENT_CHECK(first != nullptr, op, ": no defined tensor to choose a backend by");
  return first->device();
}

// The same for a list of pieces; an empty list (or one of undefined tensors) has nothing on a
// device and runs on the CPU, where it costs nothing.
Device device_of_pieces(const char* op, const std::vector<Tensor>& pieces) {
  const Tensor* first = first_on_one_device(op, pieces);
  return first != nullptr ? first->device() : Device::CPU;
}

// A saved activation as the kernels read it: itself when it is fp32 (or undefined), else a
// transient fp32 copy. Under train.activation_dtype = bfloat16 the layers keep what their
// backward reads in bf16 (models/deepseek_v3/saved_activations.h); the values are bf16 values
// already, so the copy is exact and the backward computes what it would from fp32 buffers.
Tensor widened(const Tensor& saved) {
  if (!saved.defined() || saved.dtype() != DType::BF16) return saved;
  Tensor wide = Tensor::empty(saved.shape(), DType::F32, saved.device());
  convert(saved, wide);  // the op below, on the tensor's backend
  return wide;
}

#ifndef TRIDENT_WITH_CUDA
[[noreturn]] void no_cuda_backend(const char* op) {
  TRIDENT_USER_FAIL(op, ": the tensors are CUDA tensors, but this build has no CUDA backend ",
                    "(configure with TRIDENT_CUDA=ON where the CUDA toolkit is installed)");
}
#endif

}  // namespace

// Runs backend::OP(args...) on the backend of DEVICE. The CUDA ops take the stream last and
// run on the default stream here.
// The CPU backend serves host memory and its own device memory (Device::CPUDevice), which its
// kernels may touch as device code (runtime/core/device_access.h).
#ifdef TRIDENT_WITH_CUDA
#define TRIDENT_ON_DEVICE(OP, DEVICE, ...)                    \
  if ((DEVICE) == Device::CUDA) return cuda::OP(__VA_ARGS__); \
  const DeviceCode device_code;                               \
  return cpu::OP(__VA_ARGS__)
#else
#define TRIDENT_ON_DEVICE(OP, DEVICE, ...)            \
  if ((DEVICE) == Device::CUDA) no_cuda_backend(#OP); \
  const DeviceCode device_code;                       \
  return cpu::OP(__VA_ARGS__)
#endif

void gemm(bool trans_a, bool trans_b, float alpha, const Tensor& a, const Tensor& b, float beta,
          Tensor& c) {
  TRIDENT_ON_DEVICE(gemm, device_of("gemm", {&a, &b, &c}), trans_a, trans_b, alpha, a, b, beta, c);
}

void linear_forward(const Tensor& x, const Tensor& w, Tensor& y) {
  TRIDENT_ON_DEVICE(linear_forward, device_of("linear_forward", {&x, &w, &y}), x, w, y);
}

void linear_backward_input(const Tensor& dy, const Tensor& w, Tensor& dx, bool accumulate) {
  TRIDENT_ON_DEVICE(linear_backward_input, device_of("linear_backward_input", {&dy, &w, &dx}), dy,
                    w, dx, accumulate);
}

void linear_backward_weight(const Tensor& dy, const Tensor& saved_x, Tensor& dw) {
  const Tensor x = widened(saved_x);
  TRIDENT_ON_DEVICE(linear_backward_weight, device_of("linear_backward_weight", {&dy, &x, &dw}), dy,
                    x, dw);
}

void grouped_linear_forward(const Tensor& x, const Tensor& w, const std::vector<int64_t>& counts,
                            Tensor& y) {
  TRIDENT_ON_DEVICE(grouped_linear_forward, device_of("grouped_linear_forward", {&x, &w, &y}), x, w,
                    counts, y);
}

void grouped_linear_backward_input(const Tensor& dy, const Tensor& w,
                                   const std::vector<int64_t>& counts, Tensor& dx,
                                   bool accumulate) {
  TRIDENT_ON_DEVICE(grouped_linear_backward_input,
                    device_of("grouped_linear_backward_input", {&dy, &w, &dx}), dy, w, counts, dx,
                    accumulate);
}

void grouped_linear_backward_weight(const Tensor& dy, const Tensor& saved_x,
                                    const std::vector<int64_t>& counts, Tensor& dw) {
  const Tensor x = widened(saved_x);
  TRIDENT_ON_DEVICE(grouped_linear_backward_weight,
                    device_of("grouped_linear_backward_weight", {&dy, &x, &dw}), dy, x, counts, dw);
}

void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out, int64_t shard_begin) {
  TRIDENT_ON_DEVICE(embedding_forward, device_of("embedding_forward", {&ids, &table, &out}), ids,
                    table, out, shard_begin);
}

void embedding_backward_weight(const Tensor& ids, const Tensor& dout, Tensor& dtable,
                               int64_t shard_begin) {
  TRIDENT_ON_DEVICE(embedding_backward_weight,
                    device_of("embedding_backward_weight", {&ids, &dout, &dtable}), ids, dout,
                    dtable, shard_begin);
}

void rmsnorm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& y, Tensor& rstd) {
  TRIDENT_ON_DEVICE(rmsnorm_forward, device_of("rmsnorm_forward", {&x, &w, &y, &rstd}), x, w, eps,
                    y, rstd);
}

void rmsnorm_backward_input(const Tensor& dy, const Tensor& saved_x, const Tensor& w,
                            const Tensor& rstd, Tensor& dx, bool accumulate) {
  const Tensor x = widened(saved_x);
  TRIDENT_ON_DEVICE(rmsnorm_backward_input,
                    device_of("rmsnorm_backward_input", {&dy, &x, &w, &rstd, &dx}), dy, x, w, rstd,
                    dx, accumulate);
}

void rmsnorm_backward_weight(const Tensor& dy, const Tensor& saved_x, const Tensor& rstd,
                             Tensor& dw) {
  const Tensor x = widened(saved_x);
  TRIDENT_ON_DEVICE(rmsnorm_backward_weight,
                    device_of("rmsnorm_backward_weight", {&dy, &x, &rstd, &dw}), dy, x, rstd, dw);
}

void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) {
  TRIDENT_ON_DEVICE(swiglu_forward, device_of("swiglu_forward", {&gate, &up, &out}), gate, up, out);
}

void swiglu_backward(const Tensor& dout, const Tensor& saved_gate, const Tensor& saved_up,
                     Tensor& dgate, Tensor& dup) {
  const Tensor gate = widened(saved_gate), up = widened(saved_up);
  TRIDENT_ON_DEVICE(swiglu_backward,
                    device_of("swiglu_backward", {&dout, &gate, &up, &dgate, &dup}), dout, gate, up,
                    dgate, dup);
}

void axpy(float alpha, const Tensor& x, Tensor& y) {
  TRIDENT_ON_DEVICE(axpy, device_of("axpy", {&x, &y}), alpha, x, y);
}

void scale(const Tensor& x, float factor, Tensor& y) {
  TRIDENT_ON_DEVICE(scale, device_of("scale", {&x, &y}), x, factor, y);
}

void copy_columns(const Tensor& src, int64_t src_width, int64_t src_begin, Tensor& dst,
                  int64_t dst_width, int64_t dst_begin, int64_t count, bool accumulate) {
  TRIDENT_ON_DEVICE(copy_columns, device_of("copy_columns", {&src, &dst}), src, src_width,
                    src_begin, dst, dst_width, dst_begin, count, accumulate);
}

double balance_loss_forward(const BalanceLossShape& shape, const Tensor& scores,
                            const Tensor& indices, Tensor& per_expert) {
  TRIDENT_ON_DEVICE(balance_loss_forward,
                    device_of("balance_loss_forward", {&scores, &indices, &per_expert}), shape,
                    scores, indices, per_expert);
}

void balance_loss_backward(const BalanceLossShape& shape, float coef, const Tensor& scores,
                           const Tensor& per_expert, Tensor& dlogits) {
  TRIDENT_ON_DEVICE(balance_loss_backward,
                    device_of("balance_loss_backward", {&scores, &per_expert, &dlogits}), shape,
                    coef, scores, per_expert, dlogits);
}

void latent_attention_decode(const LatentAttentionShape& shape, const Tensor& q,
                             const Tensor& q_rope, const Tensor& kv_b, const Tensor& cache_latent,
                             const Tensor& cache_k_rope, Tensor& out) {
  TRIDENT_ON_DEVICE(latent_attention_decode,
                    device_of("latent_attention_decode",
                              {&q, &q_rope, &kv_b, &cache_latent, &cache_k_rope, &out}),
                    shape, q, q_rope, kv_b, cache_latent, cache_k_rope, out);
}

void gather_rows(const Tensor& x, const Tensor& index, Tensor& out) {
  TRIDENT_ON_DEVICE(gather_rows, device_of("gather_rows", {&x, &index, &out}), x, index, out);
}

void combine_rows(const Tensor& rows, const Tensor& slot_row, int64_t top_k, const Tensor& weights,
                  int64_t first_token, Tensor& out) {
  TRIDENT_ON_DEVICE(combine_rows, device_of("combine_rows", {&rows, &slot_row, &weights, &out}),
                    rows, slot_row, top_k, weights, first_token, out);
}

void combine_rows_backward(const Tensor& dout, const Tensor& saved_rows, const Tensor& weights,
                           const Tensor& slot_row, int64_t first_token, Tensor& d_rows,
                           Tensor& d_weights) {
  const Tensor rows = widened(saved_rows);
  TRIDENT_ON_DEVICE(
      combine_rows_backward,
      device_of("combine_rows_backward", {&dout, &rows, &weights, &slot_row, &d_rows, &d_weights}),
      dout, rows, weights, slot_row, first_token, d_rows, d_weights);
}

void shard_row_max(const Tensor& logits, Tensor& row_max) {
  TRIDENT_ON_DEVICE(shard_row_max, device_of("shard_row_max", {&logits, &row_max}), logits,
                    row_max);
}

void shard_softmax_sums(const Tensor& logits, const Tensor& targets, int64_t shard_begin,
                        const Tensor& row_max, Tensor& sums) {
  TRIDENT_ON_DEVICE(shard_softmax_sums,
                    device_of("shard_softmax_sums", {&logits, &targets, &row_max, &sums}), logits,
                    targets, shard_begin, row_max, sums);
}

void shard_cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                                  int64_t shard_begin, float grad_scale, Tensor& dlogits) {
  TRIDENT_ON_DEVICE(shard_cross_entropy_backward,
                    device_of("shard_cross_entropy_backward", {&logits, &targets, &lse, &dlogits}),
                    logits, targets, lse, shard_begin, grad_scale, dlogits);
}

std::vector<double> shard_softmax_stats(const Tensor& logits, const Tensor& targets,
                                        int64_t shard_begin, const Tensor& row_max) {
  TRIDENT_ON_DEVICE(shard_softmax_stats,
                    device_of("shard_softmax_stats", {&logits, &targets, &row_max}), logits,
                    targets, shard_begin, row_max);
}

void shard_logprob_backward(const Tensor& logits, const Tensor& targets, int64_t shard_begin,
                            const std::vector<double>& lse, const std::vector<double>& weights,
                            Tensor& dlogits) {
  TRIDENT_ON_DEVICE(shard_logprob_backward,
                    device_of("shard_logprob_backward", {&logits, &targets, &dlogits}), logits,
                    targets, shard_begin, lse, weights, dlogits);
}

std::string cuda_unavailable_reason() {
#ifdef TRIDENT_WITH_CUDA
  const cuda::DeviceInfo info = cuda::query_device();
  return info.available ? "" : info.reason;
#else
  return "this build has no CUDA backend (configure with TRIDENT_CUDA=ON where the CUDA toolkit "
         "is installed)";
#endif
}

std::string cuda_device_name() {
#ifdef TRIDENT_WITH_CUDA
  const cuda::DeviceInfo info = cuda::query_device();
  return info.available ? info.name : "";
#else
  return "";
#endif
}

void convert(const Tensor& src, Tensor& dst) {
  TRIDENT_ON_DEVICE(convert, device_of("convert", {&src, &dst}), src, dst);
}

void round_to_bf16(Tensor& x) {
  TRIDENT_ON_DEVICE(round_to_bf16, device_of("round_to_bf16", {&x}), x);
}

RopeTable make_rope_table(int64_t rotary_dim, int64_t max_positions, const YarnSettings& yarn,
                          Device device) {
  if (device == Device::CPUDevice) {  // the host's table, copied into the device memory
    RopeTable table = cpu::make_rope_table(rotary_dim, max_positions, yarn);
    table.cos = table.cos.to(device);
    table.sin = table.sin.to(device);
    return table;
  }
  TRIDENT_ON_DEVICE(make_rope_table, device, rotary_dim, max_positions, yarn);
}

void rope_forward(const Tensor& x, const Tensor& positions, const RopeTable& table, Tensor& y) {
  TRIDENT_ON_DEVICE(rope_forward,
                    device_of("rope_forward", {&x, &positions, &table.cos, &table.sin, &y}), x,
                    positions, table, y);
}

void rope_backward(const Tensor& dy, const Tensor& positions, const RopeTable& table, Tensor& dx) {
  TRIDENT_ON_DEVICE(rope_backward,
                    device_of("rope_backward", {&dy, &positions, &table.cos, &table.sin, &dx}), dy,
                    positions, table, dx);
}

void attention_forward(const AttentionShape& shape, const Tensor& q, const Tensor& k,
                       const Tensor& v, Tensor& out, Tensor& lse) {
  TRIDENT_ON_DEVICE(attention_forward, device_of("attention_forward", {&q, &k, &v, &out, &lse}),
                    shape, q, k, v, out, lse);
}

void attention_backward(const AttentionShape& shape, const Tensor& dout, const Tensor& saved_q,
                        const Tensor& saved_k, const Tensor& saved_v, const Tensor& saved_out,
                        const Tensor& lse, Tensor& dq, Tensor& dk, Tensor& dv) {
  const Tensor q = widened(saved_q), k = widened(saved_k), v = widened(saved_v),
               out = widened(saved_out);
  TRIDENT_ON_DEVICE(attention_backward,
                    device_of("attention_backward", {&dout, &q, &k, &v, &out, &lse, &dq, &dk, &dv}),
                    shape, dout, q, k, v, out, lse, dq, dk, dv);
}

void router_forward(const RouterSettings& settings, const Tensor& logits, const Tensor& bias,
                    Tensor& indices, Tensor& weights, Tensor& scores) {
  TRIDENT_ON_DEVICE(router_forward,
                    device_of("router_forward", {&logits, &bias, &indices, &weights, &scores}),
                    settings, logits, bias, indices, weights, scores);
}

void router_backward(const RouterSettings& settings, const Tensor& dweights, const Tensor& indices,
                     const Tensor& scores, Tensor& dlogits) {
  TRIDENT_ON_DEVICE(router_backward,
                    device_of("router_backward", {&dweights, &indices, &scores, &dlogits}),
                    settings, dweights, indices, scores, dlogits);
}

std::vector<int64_t> count_per_expert(const Tensor& indices, int64_t experts) {
  TRIDENT_ON_DEVICE(count_per_expert, device_of("count_per_expert", {&indices}), indices, experts);
}

PermutePlan make_permute_plan(const Tensor& indices, int64_t experts) {
  TRIDENT_ON_DEVICE(make_permute_plan, device_of("make_permute_plan", {&indices}), indices,
                    experts);
}

void permute_forward(const PermutePlan& plan, const Tensor& x, Tensor& out) {
  TRIDENT_ON_DEVICE(permute_forward,
                    device_of("permute_forward", {&plan.slot_to_row, &plan.row_to_token, &x, &out}),
                    plan, x, out);
}

void permute_backward(const PermutePlan& plan, const Tensor& dout, Tensor& dx, bool accumulate) {
  TRIDENT_ON_DEVICE(
      permute_backward,
      device_of("permute_backward", {&plan.slot_to_row, &plan.row_to_token, &dout, &dx}), plan,
      dout, dx, accumulate);
}

void unpermute_forward(const PermutePlan& plan, const Tensor& y, const Tensor& weights,
                       Tensor& out) {
  TRIDENT_ON_DEVICE(
      unpermute_forward,
      device_of("unpermute_forward", {&plan.slot_to_row, &plan.row_to_token, &y, &weights, &out}),
      plan, y, weights, out);
}

void unpermute_backward(const PermutePlan& plan, const Tensor& dout, const Tensor& saved_y,
                        const Tensor& weights, Tensor& dy, Tensor& dweights) {
  const Tensor y = widened(saved_y);
  TRIDENT_ON_DEVICE(unpermute_backward,
                    device_of("unpermute_backward", {&plan.slot_to_row, &plan.row_to_token, &dout,
                                                     &y, &weights, &dy, &dweights}),
                    plan, dout, y, weights, dy, dweights);
}

CrossEntropyResult cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& lse) {
  TRIDENT_ON_DEVICE(cross_entropy_forward,
                    device_of("cross_entropy_forward", {&logits, &targets, &lse}), logits, targets,
                    lse);
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                            float grad_scale, Tensor& dlogits) {
  TRIDENT_ON_DEVICE(cross_entropy_backward,
                    device_of("cross_entropy_backward", {&logits, &targets, &lse, &dlogits}),
                    logits, targets, lse, grad_scale, dlogits);
}

void token_logprobs(const Tensor& logits, const Tensor& targets, Tensor& logprobs) {
  TRIDENT_ON_DEVICE(token_logprobs, device_of("token_logprobs", {&logits, &targets, &logprobs}),
                    logits, targets, logprobs);
}

std::vector<TokenScore> token_scores(const Tensor& logits, const Tensor& targets) {
  TRIDENT_ON_DEVICE(token_scores, device_of("token_scores", {&logits, &targets}), logits, targets);
}

void token_logprobs_backward(const Tensor& logits, const Tensor& targets,
                             const std::vector<double>& weights, Tensor& dlogits) {
  TRIDENT_ON_DEVICE(token_logprobs_backward,
                    device_of("token_logprobs_backward", {&logits, &targets, &dlogits}), logits,
                    targets, weights, dlogits);
}

void adamw_update(const AdamWSettings& settings, const AdamWStep& step, Tensor& param,
                  const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, Tensor* nonfinite) {
  TRIDENT_ON_DEVICE(adamw_update,
                    device_of("adamw_update", {&param, &grad, &exp_avg, &exp_avg_sq, nonfinite}),
                    settings, step, param, grad, exp_avg, exp_avg_sq, nonfinite);
}

double sum_of_squares(const std::vector<Tensor>& pieces) {
  TRIDENT_ON_DEVICE(sum_of_squares, device_of_pieces("sum_of_squares", pieces), pieces);
}

std::vector<int64_t> count_nonfinite(const std::vector<Tensor>& pieces) {
  TRIDENT_ON_DEVICE(count_nonfinite, device_of_pieces("count_nonfinite", pieces), pieces);
}

#undef TRIDENT_ON_DEVICE

}  // namespace trident::ops
