#pragma once
// Multi-head latent attention (docs/model.md). Training uses the expanded form: the latent
// c_kv is expanded by kv_b_proj into per-head k_nope and v. Decoding uses the absorbed form:
// only the normalised c_kv and the rotated k_rope are cached, kv_b_proj's k rows are folded
// into the query and its v rows into the output. Both compute the same attention.
//
// Tensor parallel: heads are split across TP ranks. q_b_proj (or q_proj) and kv_b_proj are
// column-parallel by heads, attention runs over the rank's heads, o_proj is row-parallel (its
// output is all-reduced). q_a_proj, kv_a_proj_with_mqa and their norms are replicated and run
// on every rank; the gradients that leave the head-split part (of cq, of the latent and of
// the shared k_rope, each a partial sum over the rank's heads) are all-reduced together, once,
// before the replicated projections' backward. Their weight gradients are therefore complete
// and identical on every TP rank without any further reduction.
#include <string>

#include "models/deepseek_v3/blocks.h"
#include "models/deepseek_v3/dims.h"
#include "models/deepseek_v3/sequence.h"
#include "parallel/tp/tp_group.h"

namespace trident::models {

struct MlaWeights {
  Weight q_a, q_a_norm, q_b;  // low-rank query (q_lora_rank > 0)
  Weight q;                   // plain q_proj (q_lora_rank == 0)
  Weight kv_a, kv_a_norm, kv_b;
  Weight o;
};
// prefix: "model.layers.L.self_attn."
MlaWeights mla_weights(ParameterStore& store, const std::string& prefix, const ModelDims& dims);

// What backward needs from forward (and what backward_input leaves for backward_weight).
struct MlaContext {
  LinearStep q_a, q_b, q, kv_a, kv_b, o;
  NormStep q_norm, kv_norm;
  // nh below is the number of heads on this TP rank.
  Tensor q_full;  // [T, nh, dq] rotated queries
  Tensor k_full;  // [T, nh, dq]
  Tensor v;       // [T, nh, dv]
  Tensor out;     // [T, nh, dv] attention output (o_proj input)
  Tensor lse;     // [B, nh, S]
  SequenceLayout layout;
};

// The absorbed-form cache of one layer: per row and position the normalised latent and the
// rotated shared rope key (kv_lora_rank + qk_rope_head_dim numbers per token).
struct MlaCache {
  MlaCache(int64_t batch, int64_t capacity, const ModelDims& dims, Device device = Device::CPU);
  int64_t batch = 0;
  int64_t capacity = 0;
  int64_t length = 0;  // positions filled (the same for every row)
  Tensor latent;       // [batch, capacity, kv_lora]
  Tensor k_rope;       // [batch, capacity, rope]
};

class MlaAttention {
 public:
  // weights hold this TP rank's heads (all of them for a one-rank group).
  MlaAttention(const ModelDims& dims, MlaWeights weights, parallel::tp::TpGroup tp = {});

  // Heads computed on this rank: heads / tp.
  int64_t local_heads() const { return heads_; }

  // x [T, H] (already normalised by input_layernorm) -> [T, H]
  Tensor forward(const Tensor& x, const SequenceLayout& layout, MlaContext& ctx) const;
  // dout [T, H] -> dx [T, H]
  Tensor backward_input(const Tensor& dout, MlaContext& ctx) const;
  void backward_weight(MlaContext& ctx) const;

  // Absorbed decode: x [batch · n, H] holds n new tokens per row (normalised input) at
  // positions cache.length … cache.length + n − 1; appends them to the cache and returns the
  // attention output [batch · n, H] (each token attends causally to the cache).
  Tensor forward_absorbed(const Tensor& x, int64_t n, const ops::RopeTable& rope,
                          MlaCache& cache) const;

 private:
  struct Projections {
    Tensor q;       // [T, nh·dq], rope part not yet rotated
    Tensor latent;  // [T, rkv] normalised c_kv
    Tensor k_rope;  // [T, dr], not yet rotated
  };
  Projections project(const Tensor& x, MlaContext& ctx) const;

  ModelDims dims_;
  MlaWeights w_;
  parallel::tp::TpGroup tp_;
  int64_t heads_ = 0;
};

}  // namespace trident::models
