// Expert parallelism together with tensor parallelism, one layer of the stack at a time: the
// token shares, then the tiny model with tp = ep = world size (every rank holds the same rows,
// each TP rank dispatches its own share of them) against one rank on every rank. The token
// count is chosen so the shares are uneven (13 tokens over 2 or 4 ranks).
//
// Checked: losses; every gradient (TP slices gathered to global shape, experts by expert index
// on the rank that holds them) within a relative 1e-5; the replicated gradients (router,
// norms, ...) bit-identical on every TP rank, so nothing is counted twice or lost on one of
// them; the expert loads equal to one rank's exactly (each token counted once) — with chunked
// overlap on (3 chunks) and off, and with every all-to-all waited for at once.
#include <gtest/gtest.h>
#include <mpi.h>

#include <memory>
#include <string>
#include <vector>

#include "models/deepseek_v3/model.h"
#include "models/deepseek_v3/parallelize/expert_parallel_moe.h"
#include "models/deepseek_v3/parallelize/parallelize.h"
#include "models/deepseek_v3/parallelize/token_split_moe.h"
#include "tests/models/test_batches.h"
#include "tests/ep/ep_test_model.h"
#include "tests/models/test_configs.h"
#include "tests/support/mpi_helpers.h"
#include "tests/support/tensor_gather.h"
#include "tests/support/world_group.h"

namespace trident::models::parallelize::testing {
namespace {

using models::DeepSeekV3Model;
using trident::testing::world_rank;
using trident::testing::world_size;

TEST(TokenShare, CoversEveryTokenOnceInOrder) {
  for (int64_t ranks : {1, 2, 3, 4, 8}) {
    for (int64_t tokens : {0, 1, 5, 13, 16, 31}) {
      int64_t next = 0;
      for (int64_t r = 0; r < ranks; ++r) {
        const TokenShare share = token_share(tokens, r, ranks);
        EXPECT_EQ(share.begin, next) << tokens << " tokens, rank " << r << " of " << ranks;
        EXPECT_GE(share.size(), tokens / ranks);
        EXPECT_LE(share.size(), tokens / ranks + 1);
        next = share.end;
      }
      EXPECT_EQ(next, tokens) << tokens << " tokens over " << ranks << " ranks";
    }
  }
  EXPECT_EQ(token_share(13, 3, 4).size(), 3);
  EXPECT_EQ(token_share(13, 0, 4).size(), 4);
}

struct Variant {
  int64_t chunks = 1;
  bool overlap = true;
  bool v2 = false;  // the tiny model as a DeepSeek-V2 (test_configs.h)
  std::string name() const {
    return "chunks" + std::to_string(chunks) + (overlap ? "Overlap" : "NoOverlap") +
           (v2 ? "DeepSeekV2" : "");
  }
};

config::ModelConfig model_config(bool v2 = false) { return ep_test_model_config(v2); }

void PrintTo(const Variant& v, std::ostream* out) { *out << v.name(); }

// The model with tp = ep = world size; the TP and EP groups are separate communicators over
// the same ranks, as the mesh makes them for dp 1.
struct EpTpModel {
  trident::testing::WorldGroup world{trident::testing::WorldAxes::TpAndEp};
  std::unique_ptr<DeepSeekV3Model> model;
};

std::unique_ptr<EpTpModel> ep_tp_model(const Variant& v) {
  auto m = std::make_unique<EpTpModel>();
  config::ParallelConfig p = m->world.config.parallel();
  p.set_a2a_chunks(v.chunks);
  const parallel::ParallelContext& context = *m->world.context;
  models::ExpertParallelSetup setup = expert_parallel_setup(model_config(v.v2), p, context);
  EXPECT_NE(dynamic_cast<const TokenSplitMoe*>(setup.engine.get()), nullptr);
  if (!v.overlap) {  // every all-to-all waited for at once, the shared expert after the experts
    setup.engine = std::make_shared<TokenSplitMoe>(
        std::make_shared<ExpertParallelMoe>(context.shared_group(parallel::MeshAxis::Ep),
                                            no_overlap_options(model_config(v.v2), v.chunks)),
        context.shared_group(parallel::MeshAxis::Tp));
  }
  models::ModelParallel layout;
  layout.tp = context.tp();
  layout.tp_rank = context.rank(parallel::MeshAxis::Tp);
  layout.tp_size = context.size(parallel::MeshAxis::Tp);
  m->model = std::make_unique<DeepSeekV3Model>(model_config(v.v2), kSeed, layout, setup);
  return m;
}

class ExpertTensorParallelModel : public ::testing::TestWithParam<Variant> {};

TEST_P(ExpertTensorParallelModel, GradientsMatchOneRank) {
  if (world_size() < 2) GTEST_SKIP() << "needs at least 2 ranks";
  if (model_config().num_attention_heads() % world_size() != 0) {
    GTEST_SKIP() << "tp " << world_size() << " does not divide the tiny model's heads";
  }
  auto sharded = ep_tp_model(GetParam());
  DeepSeekV3Model& model = *sharded->model;
  DeepSeekV3Model reference(model_config(GetParam().v2), kSeed);

  // One sequence of 13 tokens: uneven TP shares for 2 and 4 ranks (7/6 and 4/3/3/3).
  const models::TokenBatch batch = models::testing::random_batch(1, 13, 256, 77);
  const models::LossScales scales =
      models::make_loss_scales(models::count_targets(batch, reference.mtp_depth()),
                               /*mtp_weight=*/0.3, /*balance_alpha=*/0.01);
  model.params().zero_grad();
  reference.params().zero_grad();
  model.reset_expert_loads();
  reference.reset_expert_loads();
  const models::LossResult got = model.forward_backward(batch, scales);
  const models::LossResult want = reference.forward_backward(batch, scales);
  EXPECT_LE(trident::testing::relative_difference(got.loss, want.loss), kTolerance);
  EXPECT_LE(trident::testing::relative_difference(got.lm_loss, want.lm_loss), kTolerance);
  EXPECT_LE(trident::testing::relative_difference(got.mtp_loss, want.mtp_loss), kTolerance);
  EXPECT_LE(trident::testing::relative_difference(got.balance_loss, want.balance_loss), kTolerance);

  parallel::comm::Communicator& tp = *sharded->world.comm;
  int64_t experts_held = 0;
  for (const models::Parameter& p : model.params().parameters()) {
    if (!p.grad.defined()) continue;
    const models::Parameter& theirs = reference.params().get(p.spec->name);
    if (p.spec->kind == models::ParamKind::kExpert) {  // this rank's own experts
      ++experts_held;
      EXPECT_LE(relative_error(p.grad, theirs.grad), kTolerance)
          << p.spec->name << " on rank " << world_rank();
      continue;
    }
    const Tensor global = trident::testing::gather_parameter(tp, *p.spec, p.grad);
    EXPECT_LE(relative_error(global, theirs.grad), kTolerance) << p.spec->name;
    if (trident::testing::whole_on_every_tp_rank(*p.spec)) {
      EXPECT_EQ(trident::testing::max_difference_to_rank0(tp, p.grad), 0.0)
          << p.spec->name << ": a replicated gradient must be identical on every TP rank";
    }
  }
  int64_t experts_total = 0;
  for (const models::Parameter& p : reference.params().parameters()) {
    if (p.spec->kind == models::ParamKind::kExpert) ++experts_total;
  }
  EXPECT_EQ(experts_held * world_size(), experts_total) << "each rank holds E / ep experts";

  // Every TP rank counts every token once: its loads are one rank's loads, exactly.
  ASSERT_EQ(model.expert_loads().size(), reference.expert_loads().size());
  for (size_t l = 0; l < reference.expert_loads().size(); ++l) {
    EXPECT_EQ(model.expert_loads()[l].tokens_per_expert,
              reference.expert_loads()[l].tokens_per_expert)
        << "MoE layer " << l;
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, ExpertTensorParallelModel,
                         ::testing::Values(Variant{1, true}, Variant{3, true}, Variant{1, false},
                                           Variant{3, false}, Variant{2, true, /*v2=*/true}),
                         [](const ::testing::TestParamInfo<Variant>& param_info) {
                           return param_info.param.name();
                         });

}  // namespace
}  // namespace trident::models::parallelize::testing
