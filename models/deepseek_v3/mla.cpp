#include "models/deepseek_v3/mla.h"

#include <vector>

#include "ops/ops.h"
#include "runtime/core/error.h"

namespace trident::models {

MlaWeights mla_weights(ParameterStore& store, const std::string& prefix, const ModelDims& dims) {
  MlaWeights w;
  if (dims.q_lora > 0) {
    w.q_a = weight_of(store, prefix + "q_a_proj.weight");
    w.q_a_norm = weight_of(store, prefix + "q_a_layernorm.weight");
    w.q_b = weight_of(store, prefix + "q_b_proj.weight");
  } else {
    w.q = weight_of(store, prefix + "q_proj.weight");
  }
  w.kv_a = weight_of(store, prefix + "kv_a_proj_with_mqa.weight");
  w.kv_a_norm = weight_of(store, prefix + "kv_a_layernorm.weight");
  w.kv_b = weight_of(store, prefix + "kv_b_proj.weight");
  w.o = weight_of(store, prefix + "o_proj.weight");
  return w;
}

MlaAttention::MlaAttention(const ModelDims& dims, MlaWeights weights, parallel::tp::TpGroup tp)
    : dims_(dims), w_(std::move(weights)), tp_(tp), heads_(dims.heads / tp.size) {
  TRIDENT_USER_CHECK(dims.heads % tp.size == 0, "tensor parallel size ", tp.size,
                     " must divide model.num_attention_heads (", dims.heads, ")");
  TRIDENT_CHECK(w_.kv_b.value.size(0) == heads_ * (dims.nope + dims.v_dim), "kv_b_proj holds ",
                w_.kv_b.value.size(0), " rows for ", heads_, " local heads");
}

MlaCache::MlaCache(int64_t batch_rows, int64_t max_positions, const ModelDims& dims, Device device)
    : batch(batch_rows),
      capacity(max_positions),
      latent(Tensor::zeros({batch_rows, max_positions, dims.kv_lora}, DType::F32, device)),
      k_rope(Tensor::zeros({batch_rows, max_positions, dims.rope}, DType::F32, device)) {}

MlaAttention::Projections MlaAttention::project(const Tensor& x, MlaContext& ctx) const {
  Projections p;
  if (dims_.q_lora > 0) {
    const Tensor qa = linear_step_forward(w_.q_a, x, ctx.q_a);
    const Tensor cq = norm_step_forward(w_.q_a_norm, dims_.eps, qa, ctx.q_norm);
    p.q = linear_step_forward(w_.q_b, cq, ctx.q_b);
  } else {
    p.q = linear_step_forward(w_.q, x, ctx.q);
  }
  const int64_t kv_width = dims_.kv_lora + dims_.rope;
  const Tensor kva = linear_step_forward(w_.kv_a, x, ctx.kv_a);
  const Tensor latent_raw = take_columns(kva, kv_width, 0, dims_.kv_lora);
  p.k_rope = take_columns(kva, kv_width, dims_.kv_lora, dims_.rope);
  p.latent = norm_step_forward(w_.kv_a_norm, dims_.eps, latent_raw, ctx.kv_norm);
  return p;
}

Tensor MlaAttention::forward(const Tensor& x, const SequenceLayout& layout, MlaContext& ctx) const {
  const int64_t T = x.size(0);
  TRIDENT_CHECK(T == layout.tokens(), "MLA input has ", T, " rows, layout ", layout.tokens());
  const int64_t nh = heads_, dn = dims_.nope, dr = dims_.rope, dv = dims_.v_dim;
  const int64_t dq = dims_.qk_dim;
  ctx.layout = layout;

  Projections p = project(x, ctx);
  const Tensor kv = linear_step_forward(w_.kv_b, p.latent, ctx.kv_b);  // [T, nh·(dn+dv)]

  // Queries: rotate the rope part of every head.
  Tensor q_rope = take_columns(p.q, dq, dn, dr).view({T, nh, dr});
  ops::rope_forward(q_rope, layout.positions, *layout.rope, q_rope);
  round_activations(w_.o.activations, {&q_rope});
  ctx.q_full = p.q.view({T, nh, dq});
  put_columns(ctx.q_full, dq, dn, q_rope, false);

  // Keys: per-head k_nope from the latent, the one rotated k_rope shared by all heads.
  Tensor k_rope = p.k_rope.view({T, 1, dr});
  ops::rope_forward(k_rope, layout.positions, *layout.rope, k_rope);
  round_activations(w_.o.activations, {&k_rope});  // rotated q and k are bf16 activations too
  const Device device = x.device();
  ctx.k_full = Tensor::empty({T, nh, dq}, DType::F32, device);
  put_columns(ctx.k_full, dq, 0, take_columns(kv, dn + dv, 0, dn), false);
  for (int64_t h = 0; h < nh; ++h) {
    ops::copy_columns(k_rope, dr, 0, ctx.k_full, nh * dq, h * dq + dn, dr);
  }
  ctx.v = take_columns(kv, dn + dv, dn, dv).view({T, nh, dv});

  ops::AttentionShape shape{layout.batch, layout.seq, nh, dq, dv, dims_.softmax_scale};
  ctx.out = Tensor::empty({T, nh, dv}, DType::F32, device);
  ctx.lse = Tensor::empty({layout.batch, nh, layout.seq}, DType::F32, device);
  ops::attention_forward(shape, ctx.q_full, ctx.k_full, ctx.v, ctx.out, ctx.lse);
  round_activations(w_.o.activations, {&ctx.out});  // the softmax and lse stay fp32
  Tensor y = linear_step_forward(w_.o, ctx.out.view({T, nh * dv}), ctx.o);
  parallel::tp::tp_leave_forward(tp_, y);  // o_proj is row-parallel
  return y;
}

Tensor MlaAttention::backward_input(const Tensor& dout, MlaContext& ctx) const {
  const SequenceLayout& layout = ctx.layout;
  const int64_t T = layout.tokens();
  const int64_t nh = heads_, dn = dims_.nope, dr = dims_.rope, dv = dims_.v_dim;
  const int64_t dq = dims_.qk_dim;

  const Tensor d_out = linear_step_backward_input(w_.o, dout, ctx.o).view({T, nh, dv});
  ops::AttentionShape shape{layout.batch, layout.seq, nh, dq, dv, dims_.softmax_scale};
  const Device device = dout.device();
  Tensor dq_full = Tensor::empty({T, nh, dq}, DType::F32, device);
  Tensor dk_full = Tensor::empty({T, nh, dq}, DType::F32, device);
  Tensor dv_full = Tensor::empty({T, nh, dv}, DType::F32, device);
  ops::attention_backward(shape, d_out, ctx.q_full, ctx.k_full, ctx.v, ctx.out, ctx.lse, dq_full,
                          dk_full, dv_full);
  round_activations(w_.o.activations, {&dq_full, &dk_full, &dv_full});
  ctx.q_full = ctx.k_full = ctx.v = ctx.out = ctx.lse = Tensor();

  // Query: un-rotate the rope part's gradient in place.
  Tensor dq_rope = take_columns(dq_full, dq, dn, dr).view({T, nh, dr});
  ops::rope_backward(dq_rope, layout.positions, *layout.rope, dq_rope);
  put_columns(dq_full, dq, dn, dq_rope, false);
  const Tensor dq_flat = dq_full.view({T, nh * dq});

  // kv_b output gradient [T, nh·(dn+dv)]: per head [dk_nope | dv].
  Tensor dkv = Tensor::empty({T, nh * (dn + dv)}, DType::F32, device);
  put_columns(dkv, dn + dv, 0, take_columns(dk_full, dq, 0, dn), false);
  put_columns(dkv, dn + dv, dn, dv_full, false);

  // The shared rope key collects the gradient of every head (in head order), then is un-rotated.
  Tensor dk_rope = Tensor::zeros({T, 1, dr}, DType::F32, device);
  for (int64_t h = 0; h < nh; ++h) {
    ops::copy_columns(dk_full, nh * dq, h * dq + dn, dk_rope, dr, 0, dr, /*accumulate=*/true);
  }
  ops::rope_backward(dk_rope, layout.positions, *layout.rope, dk_rope);

  Tensor d_latent = linear_step_backward_input(w_.kv_b, dkv, ctx.kv_b);
  // With q_lora: the gradient of cq; without: of x through q_proj.
  Tensor d_query_input = dims_.q_lora > 0 ? linear_step_backward_input(w_.q_b, dq_flat, ctx.q_b)
                                          : linear_step_backward_input(w_.q, dq_flat, ctx.q);
  // Leaving the head-split part: each of these is a sum over this rank's heads only.
  parallel::tp::tp_all_reduce_packed(tp_, {&d_query_input, &d_latent, &dk_rope});

  const Tensor d_latent_raw = norm_step_backward_input(w_.kv_a_norm, d_latent, ctx.kv_norm);
  const int64_t kv_width = dims_.kv_lora + dr;
  Tensor dkva = Tensor::empty({T, kv_width}, DType::F32, device);
  put_columns(dkva, kv_width, 0, d_latent_raw, false);
  put_columns(dkva, kv_width, dims_.kv_lora, dk_rope, false);

  Tensor dx;
  if (dims_.q_lora > 0) {
    const Tensor dqa = norm_step_backward_input(w_.q_a_norm, d_query_input, ctx.q_norm);
    dx = linear_step_backward_input(w_.q_a, dqa, ctx.q_a);
  } else {
    dx = d_query_input;
  }
  linear_step_backward_input_into(w_.kv_a, dkva, ctx.kv_a, dx, true);
  return dx;
}

void MlaAttention::backward_weight(MlaContext& ctx) const {
  linear_step_backward_weight(w_.o, ctx.o);
  linear_step_backward_weight(w_.kv_b, ctx.kv_b);
  norm_step_backward_weight(w_.kv_a_norm, ctx.kv_norm);
  linear_step_backward_weight(w_.kv_a, ctx.kv_a);
  if (dims_.q_lora > 0) {
    linear_step_backward_weight(w_.q_b, ctx.q_b);
    norm_step_backward_weight(w_.q_a_norm, ctx.q_norm);
    linear_step_backward_weight(w_.q_a, ctx.q_a);
  } else {
    linear_step_backward_weight(w_.q, ctx.q);
  }
  ctx.layout = SequenceLayout{};
}

Tensor MlaAttention::forward_absorbed(const Tensor& x, int64_t n, const ops::RopeTable& rope,
                                      MlaCache& cache) const {
  const int64_t B = cache.batch;
  TRIDENT_CHECK(x.size(0) == B * n, "absorbed MLA input has ", x.size(0), " rows, expected ",
                B * n);
  TRIDENT_CHECK(cache.length + n <= cache.capacity, "MLA cache full: ", cache.length, " + ", n,
                " > ", cache.capacity);
  const int64_t nh = heads_, dn = dims_.nope, dr = dims_.rope, dv = dims_.v_dim;
  const int64_t dq = dims_.qk_dim, rkv = dims_.kv_lora;
  const int64_t start = cache.length;

  MlaContext scratch;  // projections only; nothing is kept for backward
  Projections p = project(x, scratch);
  std::vector<int32_t> pos(static_cast<size_t>(B * n));
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t i = 0; i < n; ++i)
      pos[static_cast<size_t>(b * n + i)] = static_cast<int32_t>(start + i);
  }
  const Tensor positions = Tensor::from_ints(pos, {B * n}).on(x.device());
  Tensor q_rope = take_columns(p.q, dq, dn, dr).view({B * n, nh, dr});
  ops::rope_forward(q_rope, positions, rope, q_rope);
  Tensor k_rope = p.k_rope.view({B * n, 1, dr});
  ops::rope_forward(k_rope, positions, rope, k_rope);
  round_activations(w_.o.activations, {&q_rope, &k_rope});  // as the training forward does

  // Append the new tokens to the cache: each sequence's row of the cache gets its n new
  // positions at start … start + n − 1 (qk_rope_head_dim ≥ 2 is validated, so k_rope has columns).
  put_columns(cache.latent, cache.capacity * rkv, start * rkv, p.latent, false);
  put_columns(cache.k_rope, cache.capacity * dr, start * dr, k_rope, false);
  cache.length = start + n;

  ops::LatentAttentionShape shape;
  shape.batch = B;
  shape.fresh = n;
  shape.start = start;
  shape.capacity = cache.capacity;
  shape.heads = nh;
  shape.nope_dim = dn;
  shape.rope_dim = dr;
  shape.v_dim = dv;
  shape.kv_lora = rkv;
  shape.scale = dims_.softmax_scale;
  Tensor out = Tensor::empty({B * n, nh * dv}, DType::F32, x.device());
  ops::latent_attention_decode(shape, p.q, q_rope, w_.kv_b.value, cache.latent, cache.k_rope, out);
  round_activations(w_.o.activations, {&out});
  Tensor y = linear_step_forward(w_.o, out, scratch.o);
  parallel::tp::tp_leave_forward(tp_, y);
  return y;
}

}  // namespace trident::models
