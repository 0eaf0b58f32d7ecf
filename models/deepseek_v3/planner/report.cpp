#include "models/deepseek_v3/planner/report.h"

#include <cstdio>
#include <sstream>

namespace trident::models::planner {

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

std::string format(const char* fmt, double value) {
  char text[64];
  std::snprintf(text, sizeof(text), fmt, value);
  return text;
}
std::string gib(double bytes) { return format("%.2f", bytes / kGiB); }

std::string pad(const std::string& text, size_t width) {
  return text.size() >= width ? text + " " : text + std::string(width - text.size(), ' ');
}

std::string layer_range(const StageContents& s) {
  std::ostringstream out;
  if (s.embedding) out << "emb ";
  if (s.embedding_copy) out << "emb-copy ";
  for (size_t i = 0; i < s.layers.size();) {
    size_t j = i;
    while (j + 1 < s.layers.size() && s.layers[j + 1] == s.layers[j] + 1) ++j;
    out << "L" << s.layers[i];
    if (j > i) out << "-" << s.layers[j];
    out << " ";
    i = j + 1;
  }
  if (s.head) out << "head+mtp";
  return out.str();
}

}  // namespace

std::string with_commas(int64_t value) {
  std::string digits = std::to_string(value < 0 ? -value : value);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return value < 0 ? "-" + out : out;
}

std::string format_plan(const Plan& plan) {
  const Layout& l = plan.layout;
  const models::ParameterCounts& c = plan.counts;
  std::ostringstream out;
  out << "parameters: total " << with_commas(c.total) << ", activated per token "
      << with_commas(c.activated) << ", MTP " << with_commas(c.mtp) << " (activated "
      << with_commas(c.mtp_activated) << ")\n";
  out << "layout: " << l.world << " GPUs = pp " << l.pp << " × dp " << l.dp << " × tp " << l.tp
      << "; MoE: ep " << l.ep << " × etp " << l.etp << " × edp " << l.edp << "; schedule "
      << schedule_name(l.schedule) << " (" << l.chunks_per_rank << " chunk(s)/rank); zero1 "
      << (l.zero1 ? "on" : "off") << "; recompute " << recompute_name(plan.options.recompute)
      << "\n";
  out << "batch: " << l.global_batch << " sequences × " << l.seq_len
      << " tokens = " << with_commas(l.tokens_per_step()) << " tokens/step; " << l.microbatches
      << " micro-batches of " << l.micro_batch << " per pipeline\n";
  out << "FLOPs per token: " << format("%.1f", plan.flops_per_token.total() / 1e9) << " GFLOP (6 × "
      << format("%.3f", plan.flops_per_token.matmul_params / 1e9)
      << " B matmul params + 6 × attention " << format("%.3f", plan.flops_per_token.attention / 1e9)
      << " G)\n\n";

  out << pad("stage", 6) << pad("holds", 26) << pad("params", 15) << pad("weights", 9)
      << pad("optim", 8) << pad("grads", 8) << pad("acts", 8) << pad("inflt", 6) << pad("trans", 7)
      << pad("a2abuf", 7) << pad("total GiB", 10) << pad("F+B+W ms", 9) << "a2a ms\n";
  for (const StagePlan& st : plan.stages) {
    const MemoryBreakdown& m = st.memory;
    const StageTimes& t = st.times;
    out << pad(std::to_string(st.contents.stage), 6) << pad(layer_range(st.contents), 26)
        << pad(with_commas(st.params.total()), 15) << pad(gib(m.weights), 9)
        << pad(gib(m.master + m.moments), 8) << pad(gib(m.grads), 8) << pad(gib(m.activations), 8)
        << pad(format("%.1f", m.inflight), 6) << pad(gib(m.transient), 7)
        << pad(gib(m.a2a_buffers), 7) << pad(gib(m.total()), 10)
        << pad(format("%.1f", 1e3 * (t.forward + t.backward_input + t.backward_weight)), 9)
        << format("%.1f", 1e3 * 2.0 * t.a2a) << "\n";
  }
  const StepComm& cm = plan.comm;
  out << "\nper step, per rank (slowest stage " << plan.slowest_stage << "): all-to-all "
      << format("%.2f", cm.a2a / kGiB) << " GiB (InfiniBand " << format("%.2f", cm.a2a_ib / kGiB)
      << "), pipeline p2p " << format("%.2f", cm.p2p / kGiB) << " GiB, dp reduce-scatter "
      << format("%.2f", cm.dp_reduce_scatter / kGiB) << " GiB + all-gather "
      << format("%.2f", cm.dp_all_gather / kGiB) << " GiB\n";
  const StepTime& s = plan.step;
  out << "step time: " << format("%.3f", s.total()) << " s = micro-batches "
      << format("%.3f", s.microbatches) << " (compute alone " << format("%.3f", s.compute)
      << ") + bubble " << format("%.3f", s.bubble) << " + exposed dp "
      << format("%.3f", s.dp_exposed) << " + optimizer " << format("%.3f", s.optimizer) << "\n";
  out << "throughput: " << with_commas(static_cast<int64_t>(plan.tokens_per_s)) << " tokens/s ("
      << format("%.0f", plan.tokens_per_s / static_cast<double>(l.world)) << " per GPU), MFU "
      << format("%.1f%%", 100.0 * plan.mfu) << ", "
      << format("%.1f", plan.gpu_hours_per_trillion_tokens / 1e3)
      << "K GPU-hours per trillion tokens\n";
  out << "peak memory: " << memory_summary(plan, plan.peak_stage) << "\n";
  return out.str();
}

std::string plan_csv_header() {
  return "gpus,pp,dp,tp,ep,edp,schedule,recompute,microbatches,fits,peak_stage,peak_gib,"
         "step_s,bubble_s,tokens_per_s,mfu,gpu_hours_per_trillion";
}

std::string plan_csv_row(const Plan& plan) {
  const Layout& l = plan.layout;
  std::ostringstream out;
  out << l.world << "," << l.pp << "," << l.dp << "," << l.tp << "," << l.ep << "," << l.edp << ","
      << schedule_name(l.schedule) << "," << recompute_name(plan.options.recompute) << ","
      << l.microbatches << "," << (plan.fits ? 1 : 0) << "," << plan.peak_stage << ","
      << format("%.3f", plan.stages[static_cast<size_t>(plan.peak_stage)].memory.total() / kGiB)
      << "," << format("%.4f", plan.step.total()) << "," << format("%.4f", plan.step.bubble) << ","
      << format("%.1f", plan.tokens_per_s) << "," << format("%.4f", plan.mfu) << ","
      << format("%.1f", plan.gpu_hours_per_trillion_tokens);
  return out.str();
}

}  // namespace trident::models::planner
