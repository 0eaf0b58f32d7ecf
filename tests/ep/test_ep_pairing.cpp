// DualPipe's pairing under expert parallelism: one micro-batch's forward and another's backward
// in one call (MoeLayer::forward_backward_input), their all-to-alls and GEMMs interleaved on the
// streams, must give exactly what the two give one after the other: the forward's output, the
// backward's input gradient and, after backward_weight, every weight gradient, bit for bit.
// Each pass runs the same ops on the same rows in the same order; only the interleaving differs.
// The backward may be the same layer's or another layer's (DualPipeV pairs the forward of one
// pipeline stage's layer with the backward of another stage's).
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/deepseek_v3/dims.h"
#include "models/deepseek_v3/moe.h"
#include "models/deepseek_v3/parallelize/expert_parallel_moe.h"
#include "models/deepseek_v3/parameters.h"
#include "models/deepseek_v3/registry.h"
#include "parallel/context.h"
#include "runtime/config/config.h"
#include "runtime/core/rng.h"
#include "tests/ep/ep_test_model.h"
#include "tests/support/mpi_helpers.h"

namespace trident::models::parallelize::testing {
namespace {

using trident::testing::world_rank;
using trident::testing::world_size;

constexpr int64_t kSeq = 16;
constexpr int64_t kTokens = 48;  // per rank: three sequences

// Two MoE layers (the tiny model's, as its only layers) with this rank's experts, routed through
// one overlapped expert-parallel engine over every rank.
struct EpMoeLayers {
  config::TridentConfig config;
  std::unique_ptr<parallel::ParallelContext> context;
  std::unique_ptr<ParameterRegistry> registry;
  std::unique_ptr<ParameterStore> store;
  std::unique_ptr<MoeLayer> moe[2];

  explicit EpMoeLayers(int64_t chunks) : config(config::default_config()) {
    config::ModelConfig& model = *config.mutable_model();
    model = ep_test_model_config();
    model.set_num_hidden_layers(2);
    model.set_first_k_dense_replace(0);
    model.set_num_nextn_predict_layers(0);
    config::ParallelConfig& parallel = *config.mutable_parallel();
    parallel.set_dp(world_size());
    parallel.set_ep(world_size());
    parallel.set_a2a_chunks(chunks);
    context = parallel::make_parallel_context(config);
    registry = std::make_unique<ParameterRegistry>(model);
    store = std::make_unique<ParameterStore>(
        *registry, ShardSelection{0, 1, 0, 1, world_rank(), world_size(), {}});
    store->initialize(kSeed);
    const ModelDims dims = model_dims(model);
    ExpertParallelOptions options;
    options.dispatcher.experts = model.n_routed_experts();
    options.dispatcher.chunks = chunks;
    const auto engine =
        std::make_shared<ExpertParallelMoe>(context->shared_group(parallel::MeshAxis::Ep), options);
    for (int64_t l = 0; l < 2; ++l) {
      const std::string prefix = "model.layers." + std::to_string(l) + ".mlp.";
      moe[l] = std::make_unique<MoeLayer>(dims, moe_weights(*store, l, prefix, dims));
      moe[l]->set_routed_engine(engine);
    }
  }
};

Tensor random_rows(uint64_t stream) {
  const CounterRng rng(static_cast<uint64_t>(world_rank()) + 1, stream);
  Tensor t = Tensor::empty({kTokens, ep_test_model_config().hidden_size()});
  float* d = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) d[i] = rng.normal(static_cast<uint64_t>(i));
  return t;
}

std::vector<float> values(const Tensor& t) { return t.to_vector(); }

struct Results {
  std::vector<float> forward_out;  // micro-batch B's output
  std::vector<float> backward_dx;  // micro-batch A's input gradient
  std::vector<float> grads;        // every weight gradient after A's backward_weight
};

// Micro-batch A's forward through layer `a_layer`, then B's forward through layer 0 and A's
// backward_input (paired or one after the other), then A's backward_weight.
Results run(bool paired, int64_t chunks, int a_layer) {
  EpMoeLayers layers(chunks);
  const MoeLayer& forward_layer = *layers.moe[0];
  const MoeLayer& backward_layer = *layers.moe[a_layer];
  SequenceLayout sequences;
  sequences.batch = kTokens / kSeq;
  sequences.seq = kSeq;
  const Tensor xa = random_rows(1), xb = random_rows(2), dout_a = random_rows(3);
  layers.store->zero_grad();
  MoeContext a, b;
  backward_layer.forward(xa, sequences, 0.01f, a);
  Results r;
  if (paired) {
    auto [out_b, dx_a] =
        forward_layer.forward_backward_input(xb, sequences, 0.01f, b, backward_layer, dout_a, a);
    r.forward_out = values(out_b);
    r.backward_dx = values(dx_a);
  } else {
    r.forward_out = values(forward_layer.forward(xb, sequences, 0.01f, b));
    r.backward_dx = values(backward_layer.backward_input(dout_a, a));
  }
  backward_layer.backward_weight(a);
  r.grads = values(layers.store->flat_grads());
  return r;
}

TEST(ExpertParallelPairing, ForwardAndBackwardOfTwoMicroBatchesMatchThemApart) {
  for (const int a_layer : {0, 1}) {
    for (const int64_t chunks : {1, 3}) {
      SCOPED_TRACE(::testing::Message() << chunks << " chunks, backward through layer " << a_layer);
      const Results apart = run(false, chunks, a_layer);
      const Results paired = run(true, chunks, a_layer);
      EXPECT_EQ(paired.forward_out, apart.forward_out);
      EXPECT_EQ(paired.backward_dx, apart.backward_dx);
      EXPECT_EQ(paired.grads, apart.grads);
      // The gradients are not trivially equal: the backward wrote some of them.
      bool any_nonzero = false;
      for (const float g : apart.grads) any_nonzero = any_nonzero || g != 0.0f;
      EXPECT_TRUE(any_nonzero);
    }
  }
}

}  // namespace
}  // namespace trident::models::parallelize::testing
