// How the model and the batch are cut across ranks. Rules:
//  - world = pp × dp × tp; the MoE part refolds dp × tp ranks as edp × ep × etp, so ep × etp
//    must divide dp × tp; experts split over ep, expert FFNs over etp; heads, vocabulary, dense
//    and shared-expert FFNs over tp.
//  - Micro-batches per step m = train.global_batch / (train.micro_batch × parallel.dp);
//    parallel.microbatches is 0 (derive it) or must equal m.
//  - Schedules: 1f1b takes any m ≥ 1 (m < pp only widens the bubble); zb-h1 needs m ≥ pp;
//    interleaved needs pp ≥ 2, parallel.virtual_stages ≥ 2 and m divisible by pp; dualpipev
//    runs two model chunks per rank and needs an even pp ≥ 2 and m ≥ 2·pp.
//  - Every model chunk holds at least one decoder layer (MTP layers count).
#include <algorithm>
#include <utility>

#include "runtime/config/problems.h"

namespace trident::config::detail {

namespace {

int64_t chunks_per_rank(const ParallelConfig& parallel) {
  if (parallel.schedule() == "interleaved") return std::max<int64_t>(parallel.virtual_stages(), 1);
  if (parallel.schedule() == "dualpipev") return 2;
  return 1;
}

void check_sizes(const TridentConfig& config, int world_size, Problems& p) {
  const ParallelConfig& par = config.parallel();
  const ModelConfig& m = config.model();
  const int64_t pp = par.pp(), dp = par.dp(), tp = par.tp(), ep = par.ep(), etp = par.etp();
  if (world_size > 0) {
    std::string hint;
    if (world_size % (pp * tp) == 0) {
      hint = " (e.g. parallel.dp = " + std::to_string(world_size / (pp * tp)) + ")";
    }
    p.require(pp * dp * tp == world_size, "parallel.pp × parallel.dp × parallel.tp = ", pp, " × ",
              dp, " × ", tp, " = ", pp * dp * tp, " must equal the number of ranks, ", world_size,
              hint);
  }
  p.require((dp * tp) % (ep * etp) == 0, "parallel.ep × parallel.etp = ", ep * etp,
            " must divide parallel.dp × parallel.tp = ", dp * tp,
            " (the MoE layers refold the data- and tensor-parallel ranks)");
  p.require(m.n_routed_experts() % ep == 0, "model.n_routed_experts = ", m.n_routed_experts(),
            " must be divisible by parallel.ep = ", ep);
  p.require(m.num_attention_heads() % tp == 0,
            "model.num_attention_heads = ", m.num_attention_heads(),
            " must be divisible by parallel.tp = ", tp);
  p.require(m.vocab_size() % tp == 0, "model.vocab_size = ", m.vocab_size(),
            " must be divisible by parallel.tp = ", tp,
            " (vocabulary-parallel embedding and head)");
  p.require(m.intermediate_size() % tp == 0, "model.intermediate_size = ", m.intermediate_size(),
            " must be divisible by parallel.tp = ", tp);
  p.require((m.moe_intermediate_size() * m.n_shared_experts()) % tp == 0,
            "model.moe_intermediate_size × model.n_shared_experts = ",
            m.moe_intermediate_size() * m.n_shared_experts(),
            " (the shared experts' width) must be divisible by parallel.tp = ", tp);
  p.require(m.moe_intermediate_size() % etp == 0,
            "model.moe_intermediate_size = ", m.moe_intermediate_size(),
            " must be divisible by parallel.etp = ", etp);
}

void check_pipeline(const TridentConfig& config, Problems& p) {
  const ParallelConfig& par = config.parallel();
  const TrainConfig& train = config.train();
  const std::string& schedule = par.schedule();
  const int64_t pp = par.pp();
  p.require_one_of("parallel.schedule", schedule, {"1f1b", "interleaved", "zb-h1", "dualpipev"});
  p.require(par.virtual_stages() >= 1, "parallel.virtual_stages = ", par.virtual_stages(),
            " must be ≥ 1");
  if (schedule == "interleaved") {
    p.require(pp >= 2, "parallel.schedule = \"interleaved\" needs parallel.pp ≥ 2, got ", pp);
    p.require(par.virtual_stages() >= 2,
              "parallel.schedule = \"interleaved\" needs "
              "parallel.virtual_stages ≥ 2 model chunks per rank, got ",
              par.virtual_stages());
  } else if (schedule == "dualpipev") {
    p.require(pp >= 2 && pp % 2 == 0,
              "parallel.schedule = \"dualpipev\" needs an even "
              "parallel.pp ≥ 2, got parallel.pp = ",
              pp);
    p.require(par.virtual_stages() <= 2,
              "parallel.schedule = \"dualpipev\" always runs 2 model "
              "chunks per rank; parallel.virtual_stages = ",
              par.virtual_stages(), " must be 1 or 2");
  } else {
    p.require(par.virtual_stages() == 1, "parallel.virtual_stages = ", par.virtual_stages(),
              " is only used by parallel.schedule = \"interleaved\"; with \"", schedule,
              "\" it must be 1");
  }

  const ModelConfig& m = config.model();
  const int64_t layers = m.num_hidden_layers() + std::max<int64_t>(m.num_nextn_predict_layers(), 0);
  const int64_t chunks = pp * chunks_per_rank(par);
  p.require(layers >= chunks, "model.num_hidden_layers + model.num_nextn_predict_layers = ", layers,
            " must be ≥ the number of pipeline model chunks = ", chunks, " (parallel.pp = ", pp,
            " × ", chunks_per_rank(par), " per rank for \"", schedule, "\")");

  p.require(par.microbatches() >= 0, "parallel.microbatches = ", par.microbatches(),
            " must be ≥ 0 (0: derive from train.global_batch / (train.micro_batch × parallel.dp))");
  if (train.global_batch() < 1 || train.micro_batch() < 1) return;  // reported with train.*
  const int64_t per_step = train.micro_batch() * par.dp();
  p.require(train.global_batch() % per_step == 0, "train.global_batch = ", train.global_batch(),
            " must be divisible by train.micro_batch × parallel.dp = ", train.micro_batch(), " × ",
            par.dp(), " = ", per_step);
  if (train.global_batch() % per_step != 0) return;
  const int64_t micro = train.global_batch() / per_step;
  p.require(par.microbatches() == 0 || par.microbatches() == micro,
            "parallel.microbatches = ", par.microbatches(),
            " disagrees with train.global_batch / "
            "(train.micro_batch × parallel.dp) = ",
            micro, "; set it to ", micro, " or 0 to derive it");
  if (pp < 2) return;
  if (schedule == "zb-h1") {
    p.require(micro >= pp, "parallel.schedule = \"zb-h1\" needs at least parallel.pp = ", pp,
              " micro-batches per step, got ", micro,
              " (train.global_batch / (train.micro_batch × parallel.dp))");
  } else if (schedule == "interleaved") {
    p.require(micro % pp == 0,
              "parallel.schedule = \"interleaved\" needs the micro-batches per "
              "step (train.global_batch / (train.micro_batch × parallel.dp) = ",
              micro, ") to be divisible by parallel.pp = ", pp);
  } else if (schedule == "dualpipev") {
    p.require(micro >= 2 * pp,
              "parallel.schedule = \"dualpipev\" needs at least 2 × parallel.pp"
              " = ",
              2 * pp, " micro-batches per step, got ", micro,
              " (train.global_batch / (train.micro_batch × parallel.dp))");
  }
}

void check_communication(const TridentConfig& config, Problems& p) {
  const ParallelConfig& par = config.parallel();
  const TrainConfig& train = config.train();
  p.require(par.a2a_chunks() >= 1, "parallel.a2a_chunks = ", par.a2a_chunks(),
            " must be ≥ 1 (1: no all-to-all/compute overlap)");
  if (par.a2a_chunks() >= 1 && train.micro_batch() >= 1 && train.seq_len() >= 1) {
    const int64_t tokens = train.micro_batch() * train.seq_len();
    p.require(
        par.a2a_chunks() <= tokens, "parallel.a2a_chunks = ", par.a2a_chunks(),
        " must be ≤ the tokens of a micro-batch, train.micro_batch × train.seq_len = ", tokens);
  }
  p.require(par.ranks_per_node() >= 0, "parallel.ranks_per_node = ", par.ranks_per_node(),
            " must be ≥ 0 (0: derive from host names)");
  p.require(par.max_nodes_per_token() >= 0 &&
                par.max_nodes_per_token() <= config.model().num_experts_per_tok(),
            "parallel.max_nodes_per_token = ", par.max_nodes_per_token(),
            " must be in [0, model.num_experts_per_tok = ", config.model().num_experts_per_tok(),
            "] (0: unlimited)");
  p.require(par.max_nodes_per_token() == 0 || par.ranks_per_node() > 0,
            "parallel.max_nodes_per_token = ", par.max_nodes_per_token(),
            " needs parallel.ranks_per_node > 0 (the routing mask must not depend on where the "
            "job happens to run)");
  p.require(par.capacity_factor() == 0 || par.capacity_factor() >= 1,
            "parallel.capacity_factor = ", par.capacity_factor(), " must be 0 (dropless) or ≥ 1");
  p.require(par.dp_bucket_mb() >= 1, "parallel.dp_bucket_mb = ", par.dp_bucket_mb(),
            " must be ≥ 1");
  p.require_one_of("parallel.backend", par.backend(), {"mpi", "nccl"});
  p.require(par.comm_timeout_s() > 0, "parallel.comm_timeout_s = ", par.comm_timeout_s(),
            " must be > 0");

  const GrpoConfig& grpo = config.grpo();
  const int64_t completions = grpo.prompts_per_step() * grpo.group_size();
  if (par.dp() >= 1 && completions >= 1) {
    p.require(completions % par.dp() == 0,
              "grpo.prompts_per_step × grpo.group_size = ", completions,
              " must be divisible by parallel.dp = ", par.dp(),
              " (each data-parallel rank takes the same number of completions)");
  }
}

}  // namespace

void check_layout(const TridentConfig& config, int world_size, Problems& p) {
  const ParallelConfig& par = config.parallel();
  bool sizes_ok = true;
  for (const auto& [name, value] : {std::pair<const char*, int64_t>{"pp", par.pp()},
                                    {"dp", par.dp()},
                                    {"tp", par.tp()},
                                    {"ep", par.ep()},
                                    {"etp", par.etp()}}) {
    p.require(value >= 1, "parallel.", name, " = ", value, " must be ≥ 1");
    sizes_ok = sizes_ok && value >= 1;
  }
  if (!sizes_ok) return;  // the divisibility rules below would divide by zero
  check_sizes(config, world_size, p);
  check_pipeline(config, p);
  check_communication(config, p);
}

void check_runnable_layout(const TridentConfig& config, Problems& p) {
  const ParallelConfig& par = config.parallel();
  p.require(par.etp() <= 1, "parallel.etp = ", par.etp(),
            ": expert tensor parallelism is not implemented yet (set parallel.etp = 1; the "
            "routed experts are split over parallel.ep)");
  // NCCL carries CUDA tensors, and the trainer's communicators are MPI's. Accepting the setting
  // would run MPI while the user believes the job talks over NCCL.
  p.require(
      par.backend() != "nccl", "parallel.backend = \"nccl\": the trainer's groups ",
      "communicate over MPI; NCCL in the trainer is not done yet (docs/cuda.md says what runs ",
      "on a GPU). Set parallel.backend = \"mpi\"");
  // MPI reads host memory: a run on GPUs of several ranks needs NCCL (or host staging) first.
  const int64_t ranks = std::max<int64_t>(1, par.pp()) * std::max<int64_t>(1, par.dp()) *
                        std::max<int64_t>(1, par.tp());
  p.require(config.train().device() != "cuda" || ranks == 1, "train.device = \"cuda\" with ", ranks,
            " ranks (pp × dp × tp): training on GPUs runs on one GPU for now, since the ",
            "trainer's groups communicate over MPI, which reads host memory (docs/cuda.md, \"Not ",
            "done yet\"). Use one rank, or train.device = \"cpu\"");
  // With ep > 1 and tp > 1 each TP rank dispatches its own share of the tokens, and the shares
  // cut sequences, so the per-sequence capacity cannot be applied.
  p.require(par.ep() <= 1 || par.tp() <= 1 || par.capacity_factor() <= 0.0,
            "parallel.capacity_factor = ", par.capacity_factor(), " with parallel.ep = ", par.ep(),
            " and parallel.tp = ", par.tp(),
            ": expert capacity is not supported when tensor-parallel ranks split the tokens "
            "(set parallel.capacity_factor = 0, dropless)");
}

}  // namespace trident::config::detail
