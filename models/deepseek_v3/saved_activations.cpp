#include "models/deepseek_v3/saved_activations.h"

#include <utility>

#include "ops/ops.h"

namespace trident::models {
namespace {

void add(std::vector<Tensor*>& out, LinearStep& step) { out.push_back(&step.x); }
void add(std::vector<Tensor*>& out, NormStep& step) { out.push_back(&step.x); }

void add(std::vector<Tensor*>& out, MlaContext& ctx) {
  for (LinearStep* step : {&ctx.q_a, &ctx.q_b, &ctx.q, &ctx.kv_a, &ctx.kv_b, &ctx.o})
    add(out, *step);
  add(out, ctx.q_norm);
  add(out, ctx.kv_norm);
  for (Tensor* t : {&ctx.q_full, &ctx.k_full, &ctx.v, &ctx.out}) out.push_back(t);
}

void add(std::vector<Tensor*>& out, FfnContext& ctx) {
  for (LinearStep* step : {&ctx.gate, &ctx.up, &ctx.down}) add(out, *step);
  out.push_back(&ctx.g);
  out.push_back(&ctx.u);
}

void add(std::vector<Tensor*>& out, MoeContext& ctx) {
  add(out, ctx.router);
  for (Tensor* t : {&ctx.xp, &ctx.gp, &ctx.up, &ctx.ap, &ctx.yp}) out.push_back(t);
  add(out, ctx.shared);
  if (ctx.routed) {
    for (Tensor* t : ctx.routed->saved_activations()) out.push_back(t);
  }
}

}  // namespace

std::vector<Tensor*> saved_activations(DecoderLayerContext& ctx) {
  std::vector<Tensor*> out;
  add(out, ctx.input_norm);
  add(out, ctx.post_norm);
  add(out, ctx.attention);
  add(out, ctx.ffn);
  add(out, ctx.moe);
  return out;
}

std::vector<Tensor*> saved_activations(MtpContext& ctx) {
  std::vector<Tensor*> out = saved_activations(ctx.layer);
  add(out, ctx.enorm);
  add(out, ctx.hnorm);
  add(out, ctx.eh_proj);
  return out;
}

void keep_in_bf16(DType activations, const std::vector<Tensor*>& saved) {
  if (activations != DType::BF16) return;
  // (fp32 elements, their bf16 copy): a handful per layer, so a linear search.
  std::vector<std::pair<Tensor, Tensor>> copies;
  for (Tensor* handle : saved) {
    if (!handle->defined() || handle->dtype() != DType::F32) continue;
    const Tensor* copy = nullptr;
    for (const auto& [wide, narrow] : copies) {
      if (wide.same_elements(*handle)) copy = &narrow;
    }
    if (copy == nullptr) {
      Tensor narrow = Tensor::empty(handle->shape(), DType::BF16, handle->device());
      ops::convert(*handle, narrow);
      copies.emplace_back(*handle, std::move(narrow));
      copy = &copies.back().second;
    }
    *handle = copy->view(handle->shape());
  }
}

}  // namespace trident::models
