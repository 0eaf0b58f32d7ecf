#include "parallel/planner/layout.h"

#include <algorithm>

#include "runtime/core/error.h"

namespace trident::parallel::planner {

Schedule parse_schedule(const std::string& name) {
  if (name.empty() || name == "1f1b") return Schedule::k1F1B;
  if (name == "interleaved") return Schedule::kInterleaved;
  if (name == "zb-h1") return Schedule::kZbH1;
  if (name == "dualpipev") return Schedule::kDualPipeV;
  TRIDENT_USER_FAIL("parallel.schedule '", name,
                    "' is not one of 1f1b, interleaved, zb-h1, dualpipev");
}

const char* schedule_name(Schedule schedule) {
  switch (schedule) {
    case Schedule::k1F1B: return "1f1b";
    case Schedule::kInterleaved: return "interleaved";
    case Schedule::kZbH1: return "zb-h1";
    case Schedule::kDualPipeV: return "dualpipev";
  }
  return "?";
}

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
  TRIDENT_USER_CHECK((l.dp * l.tp) % (l.ep * l.etp) == 0, "parallel.ep × parallel.etp = ",
                     l.ep * l.etp, " must divide dp × tp = ", l.dp * l.tp,
                     " (the MoE layers refold each stage's ranks as edp × ep × etp)");
  l.edp = l.dp * l.tp / (l.ep * l.etp);
  l.zero1 = p.zero1();
  l.schedule = parse_schedule(p.schedule());
  if (l.schedule == Schedule::kInterleaved) {
    l.chunks_per_rank = at_least_one(p.virtual_stages());
  } else if (l.schedule == Schedule::kDualPipeV) {
    l.chunks_per_rank = 2;
    TRIDENT_USER_CHECK(l.pp % 2 == 0 || l.pp == 1, "parallel.schedule dualpipev needs an even "
                       "parallel.pp, got ", l.pp);
  }
  l.seq_len = at_least_one(t.seq_len());
  l.micro_batch = at_least_one(t.micro_batch());
  if (p.microbatches() > 0) {
    l.microbatches = p.microbatches();
    l.global_batch = l.microbatches * l.micro_batch * l.dp;
    TRIDENT_USER_CHECK(t.global_batch() <= 0 || t.global_batch() == l.global_batch,
                       "train.global_batch ", t.global_batch(), " ≠ parallel.microbatches × "
                       "train.micro_batch × dp = ", l.global_batch,
                       "; leave parallel.microbatches at 0 to derive it");
  } else {
    l.global_batch = at_least_one(t.global_batch());
    TRIDENT_USER_CHECK(l.global_batch % (l.dp * l.micro_batch) == 0, "train.global_batch ",
                       l.global_batch, " is not a multiple of dp × train.micro_batch = ",
                       l.dp * l.micro_batch);
    l.microbatches = l.global_batch / (l.dp * l.micro_batch);
  }
  l.a2a_chunks = at_least_one(p.a2a_chunks());
  l.max_nodes_per_token = p.max_nodes_per_token();
  l.gpus_per_node = p.ranks_per_node() > 0 ? p.ranks_per_node() : gpus_per_node;
  return l;
}

int64_t total_chunks(const Layout& layout) { return layout.pp * layout.chunks_per_rank; }

std::vector<int64_t> chunk_first_layers(int64_t num_layers, int64_t chunks) {
  std::vector<int64_t> first(static_cast<size_t>(chunks + 1), 0);
  const int64_t base = num_layers / chunks, extra = num_layers % chunks;
  for (int64_t c = 0; c < chunks; ++c) {
    first[static_cast<size_t>(c + 1)] = first[static_cast<size_t>(c)] + base + (c < extra ? 1 : 0);
  }
  return first;
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

StageContents stage_contents(const Layout& layout, const config::ModelConfig& model,
                             int64_t stage) {
  const int64_t chunks = total_chunks(layout);
  TRIDENT_USER_CHECK(model.num_hidden_layers() >= chunks, "model.num_hidden_layers ",
                     model.num_hidden_layers(), " < pipeline chunks ", chunks, " (parallel.pp ×",
                     " chunks per rank): every chunk needs a layer");
  const std::vector<int64_t> first = chunk_first_layers(model.num_hidden_layers(), chunks);
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
    case Schedule::kZbH1: return std::min(pp - static_cast<double>(stage), m);
    case Schedule::kDualPipeV: return std::min(pp + 1.0, m);
    case Schedule::kInterleaved: {
      const double v = static_cast<double>(layout.chunks_per_rank);
      const double chunk_mbs = std::min(v * m, (v - 1.0) * pp + 2.0 * (pp - 1.0 - stage) + 1.0);
      return chunk_mbs / v;
    }
  }
  return 1.0;
}

}  // namespace trident::parallel::planner
