#include "models/deepseek_v3/planner/planner.h"

#include <algorithm>
#include <cstdio>

#include "runtime/core/error.h"

namespace trident::models::planner {

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

int64_t moe_layers_of(const config::ModelConfig& model, const StageContents& stage) {
  int64_t n = 0;
  for (const int64_t layer : stage.layers) n += models::is_moe_layer(model, layer) ? 1 : 0;
  if (stage.head) {
    for (int64_t d = 1; d <= model.num_nextn_predict_layers(); ++d) {
      n += models::is_moe_layer(model, model.num_hidden_layers() + d - 1) ? 1 : 0;
    }
  }
  return n;
}

// A ring collective over n ranks moves (n − 1)/n of the buffer; it runs at InfiniBand speed
// once the group leaves the node (members `stride` ranks apart).
double ring_seconds(double bytes, int64_t n, int64_t stride, const Layout& layout,
                    const HardwareSpec& hw) {
  if (n <= 1) return 0.0;
  const bool inter_node = n * stride > layout.gpus_per_node;
  return bytes / (inter_node ? hw.ib_bytes_per_s() : hw.nvlink_bytes_per_s());
}

std::string gib(double bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f GiB", bytes / kGiB);
  return text;
}

}  // namespace

Plan make_plan(const config::TridentConfig& config, int64_t gpus, const HardwareSpec& hardware,
               const PlanOptions& options) {
  models::check_model_config(config.model());
  const models::ParameterRegistry registry(config.model());
  const Layout layout = resolve_layout(config, gpus, hardware.gpus_per_node);
  return make_plan(config, registry, layout, hardware, options);
}

Plan make_plan(const config::TridentConfig& config, const models::ParameterRegistry& registry,
               const Layout& layout, const HardwareSpec& hardware, const PlanOptions& options) {
  const config::ModelConfig& model = config.model();
  Plan plan;
  plan.layout = layout;
  plan.hardware = hardware;
  plan.options = options;
  plan.counts = registry.counts();
  plan.flops_per_token = model_flops_per_token(registry, layout.seq_len);
  const int64_t act_bytes = activation_bytes(config);

  for (int64_t s = 0; s < layout.pp; ++s) {
    StagePlan stage;
    stage.contents = stage_contents(layout, registry, s);
    stage.params = rank_parameters(registry, layout, stage.contents);
    stage.memory = rank_memory(config, layout, options, stage.contents, stage.params);
    stage.flops =
        stage_flops_per_token(registry, stage.contents, layout.seq_len, options.recompute);
    const int64_t layers = static_cast<int64_t>(stage.contents.layers.size()) +
                           (stage.contents.head ? model.num_nextn_predict_layers() : 0);
    stage.comm = microbatch_comm(model, layout, options, act_bytes,
                                 moe_layers_of(model, stage.contents), layers);
    stage.times = stage_times(stage.flops, stage.comm, layout, hardware);
    plan.stages.push_back(std::move(stage));
  }
  for (int64_t s = 0; s < layout.pp; ++s) {
    const StagePlan& st = plan.stages[static_cast<size_t>(s)];
    if (st.memory.total() > plan.stages[static_cast<size_t>(plan.peak_stage)].memory.total()) {
      plan.peak_stage = s;
    }
    if (st.times.microbatch_total() >
        plan.stages[static_cast<size_t>(plan.slowest_stage)].times.microbatch_total()) {
      plan.slowest_stage = s;
    }
  }

  // The step is paced by the slowest pipeline rank.
  const StagePlan& slow = plan.stages[static_cast<size_t>(plan.slowest_stage)];
  const double m = static_cast<double>(layout.microbatches);
  const StageTimes& t = slow.times;
  plan.step.compute = m * (t.forward + t.backward_input + t.backward_weight);
  plan.step.microbatches = m * t.microbatch_total();
  plan.step.bubble = pipeline_bubble(layout, t);

  const double pbytes = static_cast<double>(param_bytes(config));
  const double gbytes = static_cast<double>(options.grad_bytes);
  StepComm& c = plan.comm;
  c.a2a = 2.0 * m * (slow.comm.a2a_ib + slow.comm.a2a_nvlink);
  c.a2a_ib = 2.0 * m * slow.comm.a2a_ib;
  c.p2p = 2.0 * m * slow.comm.p2p;
  auto ring = [](double n) { return n > 1 ? (n - 1.0) / n : 0.0; };
  const double dp = static_cast<double>(layout.dp), edp = static_cast<double>(layout.edp);
  const double dense = static_cast<double>(slow.params.dense_trained);
  const double expert = static_cast<double>(slow.params.expert_trained);
  c.dp_reduce_scatter = gbytes * (dense * ring(dp) + expert * ring(edp));
  c.dp_all_gather = pbytes * (dense * ring(dp) + expert * ring(edp));
  const int64_t ep_stride = layout.ep * layout.etp;
  const double dp_seconds =
      ring_seconds((gbytes + pbytes) * dense * ring(dp), layout.dp, layout.tp, layout, hardware) +
      ring_seconds((gbytes + pbytes) * expert * ring(edp), layout.edp, ep_stride, layout, hardware);
  // Gradient buckets reduce while the last micro-batch's backward runs.
  plan.step.dp_exposed = std::max(0.0, dp_seconds - t.backward_total());
  // AdamW reads and writes master, m, v (and the gradient, the working copy) per element.
  const double shard =
      dense / slow.memory.optimizer_shard_dense + expert / slow.memory.optimizer_shard_expert;
  const double touched =
      shard * (2.0 * 4.0 + 2.0 * 2.0 * static_cast<double>(options.moment_bytes) + gbytes + pbytes);
  plan.step.optimizer = touched / (hardware.hbm_bandwidth_gbps * 1e9);

  const double step = plan.step.total();
  plan.tokens_per_s = static_cast<double>(layout.tokens_per_step()) / step;
  plan.gpu_hours_per_trillion_tokens =
      static_cast<double>(layout.world) * (1e12 / plan.tokens_per_s) / 3600.0;
  plan.mfu = plan.flops_per_token.total() * plan.tokens_per_s /
             (static_cast<double>(layout.world) * hardware.peak_tflops_bf16 * 1e12);
  plan.fits = plan.stages[static_cast<size_t>(plan.peak_stage)].memory.total() <=
              hardware.usable_hbm_bytes();
  return plan;
}

int64_t stage_of_rank(const Layout& layout, int64_t rank) {
  TRIDENT_USER_CHECK(rank >= 0 && rank < layout.world, "rank ", rank, " is outside the world of ",
                     layout.world, " ranks");
  return rank / (layout.dp * layout.tp);
}

const StagePlan& plan_for_rank(const Plan& plan, int64_t rank) {
  return plan.stages[static_cast<size_t>(stage_of_rank(plan.layout, rank))];
}

std::string memory_summary(const Plan& plan, int64_t stage) {
  const StagePlan& st = plan.stages[static_cast<size_t>(stage)];
  const MemoryBreakdown& mem = st.memory;
  const Layout& l = plan.layout;
  const int64_t rank = stage * l.dp * l.tp;
  char head[160];
  std::snprintf(head, sizeof(head),
                "rank %lld (pipeline stage %lld) needs %s %s %s usable HBM "
                "(%.2f × %.0f GiB): ",
                static_cast<long long>(rank), static_cast<long long>(stage),
                gib(mem.total()).c_str(),
                mem.total() > plan.hardware.usable_hbm_bytes() ? ">" : "≤",
                gib(plan.hardware.usable_hbm_bytes()).c_str(), plan.hardware.hbm_usable_fraction,
                plan.hardware.hbm_gib);
  std::string out = head;
  const std::string zero =
      l.zero1 ? " (ZeRO-1 over dp=" + std::to_string(l.dp) + ", edp=" + std::to_string(l.edp) + ")"
              : " (no ZeRO-1)";
  char acts[96];
  std::snprintf(acts, sizeof(acts), " (%.1f micro-batches in flight × %s, recompute %s)",
                mem.inflight, gib(mem.activations_per_microbatch).c_str(),
                recompute_name(plan.options.recompute));
  struct Part {
    const char* name;
    double bytes;
    std::string note;
  };
  std::vector<Part> parts = {
      {"weights", mem.weights, ""},
      {"optimizer", mem.master + mem.moments, zero},
      {"gradients", mem.grads, ""},
      {"activations", mem.activations, acts},
      {"backward transient", mem.transient, ""},
      {"all-to-all buffers", mem.a2a_buffers, ""},
  };
  std::stable_sort(parts.begin(), parts.end(),
                   [](const Part& a, const Part& b) { return a.bytes > b.bytes; });
  bool first = true;
  for (const Part& p : parts) {
    if (p.bytes <= 0) continue;
    out += (first ? "" : ", ") + std::string(p.name) + " " + gib(p.bytes) + p.note;
    first = false;
  }
  return out;
}

void check_fits(const Plan& plan) {
  if (plan.fits) return;
  TRIDENT_USER_FAIL(memory_summary(plan, plan.peak_stage),
                    ". Try more pipeline stages (parallel.pp), more expert parallelism "
                    "(parallel.ep), parallel.zero1=true, a smaller train.micro_batch or "
                    "--recompute selective|full.");
}

}  // namespace trident::models::planner
