#include "models/deepseek_v3/planner/layout.h"

#include <algorithm>
#include <optional>

#include "runtime/core/enum_names.h"
#include "runtime/core/error.h"

namespace trident::models::planner {

namespace {
constexpr EnumName<Schedule> kScheduleNames[] = {{Schedule::k1F1B, "1f1b"},
                                                 {Schedule::kInterleaved, "interleaved"},
                                                 {Schedule::kZbH1, "zb-h1"},
                                                 {Schedule::kDualPipeV, "dualpipev"}};
}  // namespace

Schedule parse_schedule(const std::string& name) {
  if (name.empty()) return Schedule::k1F1B;
  if (const std::optional<Schedule> schedule = parse_enum(kScheduleNames, name)) return *schedule;
  TRIDENT_USER_FAIL("parallel.schedule '", name, "' is not one of ",
                    enum_name_list(kScheduleNames));
}

const char* schedule_name(Schedule schedule) { return enum_name(kScheduleNames, schedule); }

namespace {
int64_t at_least_one(int64_t value) { return value > 0 ? value : 1; }
}  // namespace

Layout resolve_layout(const config::TridentConfig& config, int64_t gpus, int gpus_per_node) {
  const config::ParallelConfig& p = config.parallel();
  const config::TrainConfig& t = config.train();
  Layout l;
  l.pp = at_least_one(p.pp());
  l.tp = at_least_one(p.tp());
  l.ep = at_least_one(p.ep());
  l.etp = at_least_one(p.etp());
  if (gpus > 0) {
    TRIDENT_USER_CHECK(gpus % (l.pp * l.tp) == 0, "--gpus ", gpus,
                       " is not a multiple of parallel.pp × parallel.tp = ", l.pp * l.tp);
    l.dp = gpus / (l.pp * l.tp);
  } else {
    l.dp = at_least_one(p.dp());
  }
  l.world = l.pp * l.dp * l.tp;
  TRIDENT_USER_CHECK((l.dp * l.tp) % (l.ep * l.etp) == 0,
                     "parallel.ep × parallel.etp = ", l.ep * l.etp,
                     " must divide dp × tp = ", l.dp * l.tp,
                     " (the MoE layers refold each stage's ranks as edp × ep × etp)");
  l.edp = l.dp * l.tp / (l.ep * l.etp);
  l.zero1 = p.zero1();
  l.schedule = parse_schedule(p.schedule());
  if (l.schedule == Schedule::kInterleaved) {
    l.chunks_per_rank = at_least_one(p.virtual_stages());
  } else if (l.schedule == Schedule::kDualPipeV) {
    l.chunks_per_rank = 2;
    TRIDENT_USER_CHECK(l.pp % 2 == 0 || l.pp == 1,
                       "parallel.schedule dualpipev needs an even "
                       "parallel.pp, got ",
                       l.pp);
  }
  l.seq_len = at_least_one(t.seq_len());
  l.micro_batch = at_least_one(t.micro_batch());
  if (p.microbatches() > 0) {
    l.microbatches = p.microbatches();
    l.global_batch = l.microbatches * l.micro_batch * l.dp;
    TRIDENT_USER_CHECK(t.global_batch() <= 0 || t.global_batch() == l.global_batch,
                       "train.global_batch ", t.global_batch(),
                       " ≠ parallel.microbatches × "
                       "train.micro_batch × dp = ",
                       l.global_batch, "; leave parallel.microbatches at 0 to derive it");
  } else {
    l.global_batch = at_least_one(t.global_batch());
    TRIDENT_USER_CHECK(l.global_batch % (l.dp * l.micro_batch) == 0, "train.global_batch ",
                       l.global_batch,
                       " is not a multiple of dp × train.micro_batch = ", l.dp * l.micro_batch);
    l.microbatches = l.global_batch / (l.dp * l.micro_batch);
  }
  l.a2a_chunks = at_least_one(p.a2a_chunks());
  l.max_nodes_per_token = p.max_nodes_per_token();
  l.gpus_per_node = p.ranks_per_node() > 0 ? p.ranks_per_node() : gpus_per_node;
  return l;
}

int64_t total_chunks(const Layout& layout) { return layout.pp * layout.chunks_per_rank; }

namespace {

// Load of every pipeline rank for a cut: the cost of its chunks' layers (+ head on the last).
std::vector<double> rank_loads(const std::vector<double>& prefix, const std::vector<int64_t>& first,
                               const std::vector<int64_t>& rank_of_chunk, double last_extra,
                               int64_t ranks) {
  std::vector<double> load(static_cast<size_t>(ranks), 0.0);
  const size_t chunks = rank_of_chunk.size();
  for (size_t c = 0; c < chunks; ++c) {
    double cost = prefix[static_cast<size_t>(first[c + 1])] - prefix[static_cast<size_t>(first[c])];
    if (c + 1 == chunks) cost += last_extra;
    load[static_cast<size_t>(rank_of_chunk[c])] += cost;
  }
  return load;
}

// Lexicographic: the largest load first, then the spread (sum of squares).
bool better_loads(const std::vector<double>& a, const std::vector<double>& b) {
  const double max_a = *std::max_element(a.begin(), a.end());
  const double max_b = *std::max_element(b.begin(), b.end());
  if (max_a < max_b * (1.0 - 1e-12)) return true;
  if (max_a > max_b * (1.0 + 1e-12)) return false;
  double sa = 0.0, sb = 0.0;
  for (const double x : a) sa += x * x;
  for (const double x : b) sb += x * x;
  return sa < sb * (1.0 - 1e-12);
}

}  // namespace

std::vector<int64_t> chunk_first_layers(const std::vector<double>& layer_cost,
                                        const std::vector<int64_t>& rank_of_chunk,
                                        double last_extra) {
  const int64_t n = static_cast<int64_t>(layer_cost.size());
  const int64_t chunks = static_cast<int64_t>(rank_of_chunk.size());
  TRIDENT_CHECK(chunks >= 1 && n >= chunks, "cannot cut ", n, " layers into ", chunks, " chunks");
  const int64_t ranks = *std::max_element(rank_of_chunk.begin(), rank_of_chunk.end()) + 1;
  std::vector<double> prefix(static_cast<size_t>(n + 1), 0.0);
  for (int64_t l = 0; l < n; ++l) {
    prefix[static_cast<size_t>(l + 1)] =
        prefix[static_cast<size_t>(l)] + layer_cost[static_cast<size_t>(l)];
  }
  // Start from equal shares of the total (head included), each chunk at least one layer.
  const double share = (prefix.back() + last_extra) / static_cast<double>(chunks);
  std::vector<int64_t> first(static_cast<size_t>(chunks + 1), n);
  first[0] = 0;
  for (int64_t c = 1; c < chunks; ++c) {
    int64_t l = first[static_cast<size_t>(c - 1)] + 1;
    while (l < n - (chunks - c) && prefix[static_cast<size_t>(l)] < share * static_cast<double>(c))
      ++l;
    first[static_cast<size_t>(c)] = l;
  }
  // Then move single boundaries by one layer while that lowers the busiest rank's load.
  std::vector<double> best = rank_loads(prefix, first, rank_of_chunk, last_extra, ranks);
  for (bool improved = true; improved;) {
    improved = false;
    for (int64_t c = 1; c < chunks; ++c) {
      for (const int64_t step : {-1, 1}) {
        const int64_t moved = first[static_cast<size_t>(c)] + step;
        if (moved <= first[static_cast<size_t>(c - 1)] ||
            moved >= first[static_cast<size_t>(c + 1)]) {
          continue;
        }
        std::vector<int64_t> trial = first;
        trial[static_cast<size_t>(c)] = moved;
        std::vector<double> loads = rank_loads(prefix, trial, rank_of_chunk, last_extra, ranks);
        if (better_loads(loads, best)) {
          first = std::move(trial);
          best = std::move(loads);
          improved = true;
        }
      }
    }
  }
  return first;
}

LayerCosts layer_costs(const models::ParameterRegistry& registry, int64_t seq_len) {
  const config::ModelConfig& m = registry.config();
  const double attention =
      6.0 * static_cast<double>(m.num_attention_heads()) *
      static_cast<double>(m.qk_nope_head_dim() + m.qk_rope_head_dim() + m.v_head_dim()) *
      static_cast<double>(seq_len) / 2.0;
  LayerCosts costs;
  costs.layers.assign(static_cast<size_t>(m.num_hidden_layers()), attention);
  const int64_t k = m.num_experts_per_tok();
  const double depth = static_cast<double>(m.num_nextn_predict_layers());
  costs.head_and_mtp = depth * attention;
  for (const models::ParamSpec& spec : registry.specs()) {
    if (spec.shape.size() < 2 || spec.kind == models::ParamKind::kEmbedding) continue;
    if (spec.kind == models::ParamKind::kExpert && spec.expert >= k) continue;
    const double flops = 6.0 * static_cast<double>(spec.numel());
    if (spec.kind == models::ParamKind::kHead) {
      costs.head_and_mtp += (1.0 + depth) * flops;
    } else if (spec.mtp_depth > 0) {
      costs.head_and_mtp += flops;
    } else if (spec.layer >= 0) {
      costs.layers[static_cast<size_t>(spec.layer)] += flops;
    }
  }
  return costs;
}

std::vector<int64_t> chunks_of_stage(const Layout& layout, int64_t stage) {
  std::vector<int64_t> chunks;
  if (layout.schedule == Schedule::kDualPipeV) {
    chunks = {stage, 2 * layout.pp - 1 - stage};
  } else {
    for (int64_t v = 0; v < layout.chunks_per_rank; ++v) chunks.push_back(stage + v * layout.pp);
  }
  return chunks;
}

StageContents stage_contents(const Layout& layout, const models::ParameterRegistry& registry,
                             int64_t stage) {
  const config::ModelConfig& model = registry.config();
  const int64_t chunks = total_chunks(layout);
  TRIDENT_USER_CHECK(model.num_hidden_layers() >= chunks, "model.num_hidden_layers ",
                     model.num_hidden_layers(), " < pipeline chunks ", chunks, " (parallel.pp ×",
                     " chunks per rank): every chunk needs a layer");
  const LayerCosts costs = layer_costs(registry, layout.seq_len);
  std::vector<int64_t> rank_of_chunk(static_cast<size_t>(chunks), 0);
  for (int64_t r = 0; r < layout.pp; ++r) {
    for (const int64_t c : chunks_of_stage(layout, r)) rank_of_chunk[static_cast<size_t>(c)] = r;
  }
  const std::vector<int64_t> first =
      chunk_first_layers(costs.layers, rank_of_chunk, costs.head_and_mtp);
  StageContents s;
  s.stage = stage;
  s.chunks = chunks_of_stage(layout, stage);
  for (const int64_t c : s.chunks) {
    for (int64_t l = first[static_cast<size_t>(c)]; l < first[static_cast<size_t>(c + 1)]; ++l) {
      s.layers.push_back(l);
    }
    if (c == 0) s.embedding = true;
    if (c == chunks - 1) s.head = true;
  }
  std::sort(s.layers.begin(), s.layers.end());
  s.embedding_copy = s.head && !s.embedding && model.num_nextn_predict_layers() > 0;
  return s;
}

double inflight_microbatches(const Layout& layout, int64_t stage) {
  const double m = static_cast<double>(layout.microbatches);
  const double pp = static_cast<double>(layout.pp);
  switch (layout.schedule) {
    case Schedule::k1F1B:
    case Schedule::kZbH1:
      return std::min(pp - static_cast<double>(stage), m);
    case Schedule::kDualPipeV:
      return std::min(pp + 1.0, m);
    case Schedule::kInterleaved: {
      const double v = static_cast<double>(layout.chunks_per_rank);
      const double chunk_mbs = std::min(v * m, (v - 1.0) * pp + 2.0 * (pp - 1.0 - stage) + 1.0);
      return chunk_mbs / v;
    }
  }
  return 1.0;
}

}  // namespace trident::models::planner
