#include "models/deepseek_v3/parallelize/gradient_layout.h"

namespace trident::models::parallelize {

int GradientBlocks::of(const ParamSpec& spec) const {
  if (spec.mtp_depth >= 1) return mtp(spec.mtp_depth);
  if (spec.kind == ParamKind::kEmbedding) return embedding();
  if (spec.kind == ParamKind::kHead || spec.name == "model.norm.weight") return head();
  TRIDENT_CHECK(spec.layer >= 0 && spec.layer < layers_, "parameter ", spec.name,
                " belongs to no backward block");
  return layer(spec.layer);
}

GradientSharding gradient_sharding(const ParamSpec& spec, const parallel::MeshSizes& sizes) {
  GradientSharding out;
  if (spec.placement.expert_parallel && sizes.ep > 1) {
    // Each EP rank holds its own experts, whichever TP coordinate it has: the experts'
    // gradients are complete over the EP group's tokens and differ from rank to rank, except
    // between the ranks holding the same experts.
    out.reduce_over = parallel::MeshAxis::Edp;
    out.distinct_over_tp = true;
    return out;
  }
  out.reduce_over = parallel::MeshAxis::Dp;
  out.distinct_over_tp =
      !spec.placement.expert_parallel && spec.placement.tp != TpSplit::kReplicated;
  return out;
}

}  // namespace trident::models::parallelize
