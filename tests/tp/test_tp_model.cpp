// The tiny model split over every rank of the job as one TP group against the one-rank model
// each rank also builds: the initial slices, the logits and losses of the main and MTP heads,
// and every gradient (gathered to its global shape through the registry) must agree, the
// replicated parameters' gradients must be identical on all TP ranks, and the TP layers must
// send exactly the all-reduces that docs/tensor-parallel.md lists.
#include <gtest/gtest.h>

#include "models/deepseek_v3/model.h"
#include "runtime/core/error.h"
#include "runtime/core/rng.h"
#include "tests/models/test_batches.h"
#include "tests/models/test_configs.h"
#include "tests/support/tensor_gather.h"
#include "tests/support/world_group.h"

namespace trident::models {
namespace {

using trident::testing::gather_columns;
using trident::testing::gather_parameter;
using trident::testing::max_difference_to_rank0;
using trident::testing::WorldGroup;

constexpr double kTolerance = 1e-5;
constexpr uint64_t kSeed = 21;

ModelParallel tp_layout(WorldGroup& group, parallel::tp::TpTraffic* traffic = nullptr) {
  return ModelParallel{group.comm.get(), group.rank(), group.size(), traffic};
}

void expect_losses_match(const LossResult& got, const LossResult& want) {
  EXPECT_NEAR(got.loss, want.loss, kTolerance * want.loss);
  EXPECT_NEAR(got.lm_loss, want.lm_loss, kTolerance * want.lm_loss);
  EXPECT_NEAR(got.mtp_loss, want.mtp_loss, kTolerance * want.mtp_loss);
  EXPECT_NEAR(got.balance_loss, want.balance_loss, kTolerance * want.balance_loss);
  EXPECT_EQ(got.lm_tokens, want.lm_tokens);
  EXPECT_EQ(got.mtp_tokens, want.mtp_tokens);
}

TEST(TensorParallelModel, OneRankLayoutIsTheSingleRankModel) {
  const TokenBatch batch = testing::random_batch(2, 8, 256, 5);
  DeepSeekV3Model plain(testing::tiny_config(), kSeed);
  DeepSeekV3Model layout(testing::tiny_config(), kSeed, ModelParallel{});
  const LossScales scales = make_loss_scales(count_targets(batch, 1), 0.3, 0.01);
  plain.params().zero_grad();
  layout.params().zero_grad();
  const LossResult a = plain.forward_backward(batch, scales);
  const LossResult b = layout.forward_backward(batch, scales);
  EXPECT_EQ(a.loss, b.loss);
  EXPECT_EQ(relative_error(plain.params().flat_grads(), layout.params().flat_grads()), 0.0);
}

TEST(TensorParallelModel, RejectsALayoutThatDoesNotFit) {
  // A split without a communicator, and a communicator of another size.
  EXPECT_THROW(DeepSeekV3Model(testing::tiny_config(), kSeed, ModelParallel{nullptr, 0, 2}),
               UserError);
  WorldGroup group;
  EXPECT_THROW(DeepSeekV3Model(testing::tiny_config(), kSeed,
                               ModelParallel{group.comm.get(), group.rank(), 2 * group.size()}),
               UserError);
}

TEST(TensorParallelModel, SlicesInitialiseToTheSingleRankTensors) {
  WorldGroup group;
  DeepSeekV3Model reference(testing::tiny_config(), kSeed);
  DeepSeekV3Model split(testing::tiny_config(), kSeed, tp_layout(group));
  EXPECT_EQ(split.vocab_begin(), group.rank() * (256 / group.size()));
  for (const Parameter& param : split.params().parameters()) {
    const Tensor global = gather_parameter(*group.comm, *param.spec, param.value);
    EXPECT_EQ(relative_error(global, reference.params().value(param.spec->name)), 0.0)
        << param.spec->name;
  }
}

TEST(TensorParallelModel, ForwardBackwardMatchesOneRank) {
  WorldGroup group;
  parallel::tp::TpTraffic traffic;
  DeepSeekV3Model reference(testing::tiny_config(), kSeed);
  DeepSeekV3Model split(testing::tiny_config(), kSeed, tp_layout(group, &traffic));
  const TokenBatch batch = testing::random_batch(3, 12, 256, 17);
  const LossScales scales =
      make_loss_scales(count_targets(batch, reference.mtp_depth()), 0.3, 0.01);

  // Logits of the main and the MTP head, gathered from the vocabulary slices.
  const ForwardResult want = reference.forward(batch, &scales);
  const ForwardResult got = split.forward(batch, &scales);
  EXPECT_EQ(got.logits.size(1), 256 / group.size());
  EXPECT_LE(relative_error(gather_columns(*group.comm, got.logits), want.logits), kTolerance);
  ASSERT_EQ(got.mtp_logits.size(), want.mtp_logits.size());
  for (size_t d = 0; d < want.mtp_logits.size(); ++d) {
    EXPECT_LE(relative_error(gather_columns(*group.comm, got.mtp_logits[d]), want.mtp_logits[d]),
              kTolerance);
  }
  expect_losses_match(got.losses, want.losses);

  reference.params().zero_grad();
  split.params().zero_grad();
  traffic = parallel::tp::TpTraffic{};
  const LossResult want_losses = reference.forward_backward(batch, scales);
  const LossResult got_losses = split.forward_backward(batch, scales);
  expect_losses_match(got_losses, want_losses);

  for (const Parameter& param : split.params().parameters()) {
    if (!param.spec->trained) continue;
    const std::string& name = param.spec->name;
    const Tensor global = gather_parameter(*group.comm, *param.spec, param.grad);
    EXPECT_LE(relative_error(global, reference.params().grad(name)), kTolerance) << name;
    if (trident::testing::whole_on_every_tp_rank(*param.spec)) {
      EXPECT_EQ(max_difference_to_rank0(*group.comm, param.grad), 0.0)
          << name << " is replicated but its gradient differs between TP ranks";
    }
  }
  ASSERT_EQ(split.expert_loads().size(), reference.expert_loads().size());
  for (size_t i = 0; i < reference.expert_loads().size(); ++i) {
    EXPECT_EQ(split.expert_loads()[i].tokens_per_expert,
              reference.expert_loads()[i].tokens_per_expert);
  }

  // The communication plan of docs/tensor-parallel.md for one forward + backward. Every
  // layer (4 main + 1 MTP) has an FFN or a shared expert; there are 2 heads and 2 lookups.
  const ModelDims& d = split.dims();
  const int64_t T = batch.batch * batch.seq_len, H = d.hidden;
  const int64_t layers = d.layers + d.mtp_depth, heads = 1 + d.mtp_depth;
  const int64_t forward_msgs = heads /*embedding*/ + 2 * layers /*o_proj, FFN*/ + 2 * heads;
  const int64_t backward_msgs = 2 * layers /*MLA packed, FFN*/ + heads;
  EXPECT_EQ(traffic.all_reduces, forward_msgs + backward_msgs);
  const int64_t forward_elems = heads * T * H + 2 * layers * T * H + heads * 3 * T;
  const int64_t backward_elems =
      layers * (T * (d.q_lora + d.kv_lora + d.rope) + T * H) + heads * T * H;
  EXPECT_EQ(traffic.elements, forward_elems + backward_elems);
}

// Decoding with the absorbed MLA cache over the rank's heads (o_proj all-reduced) gives the
// one-rank decoder layer's output, for a dense and a MoE layer, prefill then one token.
TEST(TensorParallelModel, AbsorbedDecodeMatchesOneRank) {
  WorldGroup group;
  DeepSeekV3Model reference(testing::tiny_config(), kSeed);
  DeepSeekV3Model split(testing::tiny_config(), kSeed, tp_layout(group));
  constexpr int64_t B = 2, S = 6;
  const SequenceLayout layout = reference.sequence_layout(B, S);
  const CounterRng rng(9, stream_id("tp-decode"));
  Tensor x = Tensor::empty({B * S, reference.dims().hidden});
  for (int64_t i = 0; i < x.numel(); ++i) {
    x.data<float>()[i] = rng.normal(static_cast<uint64_t>(i));
  }
  for (int64_t layer : {1, 2}) {
    MlaCache want_cache(B, S, reference.dims());
    MlaCache got_cache(B, S, split.dims());
    const Tensor want = reference.layer(layer).forward_decode(x, S, *layout.rope, want_cache);
    const Tensor got = split.layer(layer).forward_decode(x, S, *layout.rope, got_cache);
    EXPECT_LE(relative_error(got, want), kTolerance) << "layer " << layer;
  }
}

}  // namespace
}  // namespace trident::models
