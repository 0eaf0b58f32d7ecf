#include "models/deepseek_v3/planner/rank_parameters.h"

#include <algorithm>

#include "runtime/core/error.h"

namespace trident::models::planner {

using models::ParamKind;
using models::ParamSpec;

bool stage_holds(const StageContents& stage, const ParamSpec& spec) {
  if (spec.kind == ParamKind::kEmbedding) return stage.embedding || stage.embedding_copy;
  if (spec.mtp_depth > 0 || spec.kind == ParamKind::kHead) return stage.head;
  if (spec.layer < 0) return stage.head;  // model.norm
  return std::binary_search(stage.layers.begin(), stage.layers.end(), spec.layer);
}

RankParameters rank_parameters(const models::ParameterRegistry& registry, const Layout& layout,
                               const StageContents& stage) {
  const config::ModelConfig& model = registry.config();
  TRIDENT_USER_CHECK(model.n_routed_experts() == 0 || model.n_routed_experts() % layout.ep == 0,
                     "parallel.ep ", layout.ep, " must divide model.n_routed_experts ",
                     model.n_routed_experts());
  RankParameters out;
  for (const ParamSpec& spec : registry.specs()) {
    if (!stage_holds(stage, spec)) continue;
    if (spec.placement.expert_parallel) {
      // Every EP rank holds E / ep experts; count those of EP rank 0.
      if (models::ep_owner(spec, layout.ep) != 0) continue;
      const int64_t n = shape_numel(models::local_shape(spec, 0, layout.etp));
      out.expert += n;
      if (spec.trained) out.expert_trained += n;
    } else {
      const int64_t n = shape_numel(models::local_shape(spec, 0, layout.tp));
      out.dense += n;
      if (spec.kind == ParamKind::kEmbedding && !stage.embedding) {
        out.embedding_copy += n;
      } else if (spec.trained) {
        out.dense_trained += n;
      }
    }
  }
  return out;
}

}  // namespace trident::models::planner
