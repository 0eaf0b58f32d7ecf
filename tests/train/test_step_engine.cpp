// The one step engine on one rank, where every layout's arithmetic starts: a training pass of a
// one-stage schedule gives exactly (bit for bit) the gradients of the model's own
// forward_backward on the same micro-batches, and each gradient block is reported final only
// once nothing more is added to it, layer by layer during the last micro-batch's backward
// (which is what lets the data-parallel reduction overlap backward).
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <vector>

#include "models/deepseek_v3/parallelize/gradient_layout.h"
#include "models/deepseek_v3/parallelize/pipeline_partition.h"
#include "parallel/context.h"
#include "runtime/config/config.h"
#include "runtime/train/data_setup.h"
#include "runtime/train/model_stage_compute.h"
#include "runtime/train/pretrain_objective.h"
#include "runtime/train/step_engine.h"

namespace trident::train {
namespace {

struct OneRankPass {
  config::TridentConfig config = config::load_config(config::resolve_config_path("tiny"));
  models::parallelize::PipelinePartition partition =
      models::parallelize::pipeline_partition(config.model(), config.parallel());
  models::DeepSeekV3Model model{config.model(), 7};
  std::vector<models::TokenBatch> micros;
  models::LossScales scales;

  OneRankPass() {
    const auto sampler = make_train_sampler(config);
    for (int64_t m = 0; m < 3; ++m) micros.push_back(sampler->rows(1, 2 * m, 2 * m + 2));
    models::TargetCounts counts;
    counts.mtp.assign(static_cast<size_t>(model.mtp_depth()), 0);
    for (const models::TokenBatch& micro : micros) {
      counts.add(models::count_targets(micro, model.mtp_depth()));
    }
    scales = models::make_loss_scales(counts, 0.3, 1e-3);
  }

  // The engine's pass; `sink` hears of every final gradient block.
  void run(const GradientSink& sink) {
    StepEngine engine(config.parallel(), parallel::ParallelContext::one_rank(), partition);
    ModelStageCompute compute(model, partition, 0);
    PretrainObjective objective(model);
    const std::vector<StageInput> inputs = stage_inputs(micros);
    objective.begin_step(micros, scales);
    model.params().zero_grad();
    compute.begin_step(inputs, objective, models::DeepSeekV3Model::balance_coefficient(scales));
    engine.train(compute, static_cast<int>(micros.size()), sink);
  }
};

TEST(StepEngine, OneStageEqualsTheModelsForwardBackwardBitForBit) {
  OneRankPass pass;
  pass.run({});
  models::DeepSeekV3Model reference(pass.config.model(), 7);
  reference.params().zero_grad();
  for (const models::TokenBatch& micro : pass.micros)
    reference.forward_backward(micro, pass.scales);
  const Tensor& a = reference.params().flat_grads();
  const Tensor& b = pass.model.params().flat_grads();
  ASSERT_EQ(a.numel(), b.numel());
  EXPECT_EQ(std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()), 0);
}

TEST(StepEngine, ReportsEachGradientBlockOnceWhenItIsFinal) {
  OneRankPass pass;
  std::map<int, Tensor> at_report;
  std::vector<int> order;
  pass.run([&](int block) {
    EXPECT_EQ(at_report.count(block), 0u) << "block " << block << " reported twice";
    at_report[block] = pass.model.params().flat_grads().clone();
    order.push_back(block);
  });
  const models::parallelize::GradientBlocks blocks(pass.model.num_layers());
  const Tensor& final_grads = pass.model.params().flat_grads();
  int64_t checked = 0;
  for (const models::Parameter& p : pass.model.params().parameters()) {
    if (!p.spec->trained) continue;
    const int block = blocks.of(*p.spec);
    ASSERT_EQ(at_report.count(block), 1u) << p.spec->name << ": block " << block << " unreported";
    const Tensor then = at_report[block].narrow(p.offset, p.offset + p.value.numel());
    const Tensor last = final_grads.narrow(p.offset, p.offset + p.value.numel());
    EXPECT_EQ(std::memcmp(then.raw_data(), last.raw_data(), last.nbytes()), 0)
        << p.spec->name << " changed after its block was reported final";
    ++checked;
  }
  EXPECT_GT(checked, 10);
  // The head (the last micro-batch's backward) finishes first; the last decoder layer is
  // reported while the rest of that backward still runs: the embedding's gradient was not yet
  // complete when it was reported.
  ASSERT_EQ(order.size(), at_report.size());
  EXPECT_EQ(order.front(), blocks.head());
  const models::Parameter& embedding = pass.model.params().get("model.embed_tokens.weight");
  const Tensor embedding_then = at_report[blocks.layer(pass.model.num_layers() - 1)].narrow(
      embedding.offset, embedding.offset + embedding.value.numel());
  const Tensor embedding_final =
      final_grads.narrow(embedding.offset, embedding.offset + embedding.value.numel());
  EXPECT_NE(std::memcmp(embedding_then.raw_data(), embedding_final.raw_data(),
                        embedding_final.nbytes()),
            0)
      << "the last layer was reported only after the embedding's gradient was complete";
}

}  // namespace
}  // namespace trident::train
