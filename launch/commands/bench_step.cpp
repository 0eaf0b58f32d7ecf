// trident bench step: one training step of a model in Trident and in the PyTorch reference
// (eager, same model, same batch, same thread count, measured in the same run), the ratio,
// and where Trident's time goes op by op. With --rounds N the two take turns N times and the
// figures are the medians, each round's times and ratio printed too. With train.device = cuda
// the step runs on the GPU, against a bf16 GEMM timed there and the GPU's dense bf16 peak (the
// MFU), without the reference. Every run prints the planner's memory beside the allocator's.
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "launch/cli.h"
#include "launch/commands/config_flags.h"
#include "launch/commands/median.h"
#include "launch/commands/process_race.h"
#include "launch/commands/scratch_dir.h"
#include "launch/commands/subprocess.h"
#include "models/deepseek_v3/planner/planner.h"
#include "ops/cpu_threads.h"
#include "ops/ops.h"
#include "runtime/core/allocator.h"
#include "runtime/core/profiler.h"
#include "runtime/io/batch_safetensors.h"
#include "runtime/io/hf_weights.h"
#include "runtime/io/mapped_file.h"
#include "runtime/io/safetensors.h"
#include "runtime/train/data_setup.h"
#include "runtime/train/mfu.h"
#include "runtime/train/peak_flops.h"
#include "runtime/train/trainer.h"

namespace {

// The largest square GEMM bench step times as the machine's attainable rate: big enough for
// OpenBLAS's blocking to reach its peak, small enough (48 MiB) to take about a second.
constexpr int64_t kSgemmSize = 2048;
// On a GPU: a bf16 GEMM of 8192³ (1.1 TFLOP), long enough for the tensor cores' peak clocks.
constexpr int64_t kGpuGemmSize = 8192;

struct StepTimes {
  double seconds = 0.0;  // mean over the timed steps
  int64_t peak_bytes = 0, reserved_bytes = 0, system_allocations = 0;
  double fragmentation = 0.0;
};

// Untimed warm-up steps, then `steps` timed ones with the per-op profiler on.
StepTimes time_trident_steps(trident::train::Trainer& trainer, long long warmup, long long steps) {
  for (long long i = 0; i < warmup; ++i) trainer.step();
  trident::Profiler::reset();
  trident::Profiler::enable(true);
  StepTimes t;
  for (long long i = 0; i < steps; ++i) {
    const trident::train::StepMetrics m = trainer.step();
    t.seconds += m.step_seconds;
    t.peak_bytes = std::max(t.peak_bytes, m.memory_peak_bytes);
    if (m.memory_reserved_bytes >= t.reserved_bytes) {
      t.reserved_bytes = m.memory_reserved_bytes;
      t.fragmentation = m.memory_fragmentation;
    }
    t.system_allocations += m.system_allocations;
  }
  trident::Profiler::enable(false);
  t.seconds /= static_cast<double>(steps);
  return t;
}

// The reference's inputs in `dir`: the initial weights, the fixed batch and the optimizer
// settings.
void write_reference_inputs(const std::string& dir, const trident::train::Trainer& trainer,
                            const trident::models::TokenBatch& batch,
                            const trident::config::TrainConfig& t) {
  std::filesystem::create_directories(dir);
  trident::io::save_hf_weights(trainer.model().params(), dir + "/model");
  trident::io::SafetensorsWriter writer(dir + "/batch.safetensors",
                                        trident::io::token_batch_entries(batch));
  trident::io::write_token_batch(writer, batch);
  writer.finish();
  std::ofstream(dir + "/train.json") << nlohmann::json{
      {"lr", t.lr()},
      {"min_lr", t.min_lr()},
      {"warmup_steps", t.warmup_steps()},
      {"steps", t.steps()},
      {"weight_decay", t.weight_decay()},
      {"beta1", t.beta1()},
      {"beta2", t.beta2()},
      {"adam_eps", t.adam_eps()},
      {"grad_clip", t.grad_clip()},
      {"mtp_loss_weight", t.mtp_loss_weight()},
      {"aux_loss_alpha", t.aux_loss_alpha()},
      {"bias_update_speed",
       t.bias_update_speed()}}.dump();
}

// Each round's times (and ratio, with the reference), then the ratios' median and range.
void print_rounds(const std::vector<double>& trident, const std::vector<double>& torch) {
  std::printf("%-6s %16s %16s %10s\n", "round", "Trident s/step", "PyTorch s/step", "speed-up");
  std::vector<double> ratios;
  for (size_t r = 0; r < trident.size(); ++r) {
    if (torch.empty()) {
      std::printf("%-6zu %16.4f %16s %10s\n", r + 1, trident[r], "-", "-");
      continue;
    }
    ratios.push_back(torch[r] / trident[r]);
    std::printf("%-6zu %16.4f %16.4f %9.2fx\n", r + 1, trident[r], torch[r], ratios.back());
  }
  if (!ratios.empty()) {
    std::printf("speed-up of the rounds: %s\n", trident::launch::speedup_summary(ratios).c_str());
  }
}

}  // namespace

TRIDENT_COMMAND(bench_step_command, "bench step",
                "time a training step in Trident vs the PyTorch reference, with a per-op profile "
                "(train.device = cuda: against a bf16 GEMM on the GPU, with the MFU)") {
  trident::launch::ArgParser parser("bench step");
  trident::launch::ConfigFlags config_flags;
  config_flags.config = "small";
  config_flags.add_to(parser);
  long long steps = 5, warmup = 2, threads = 0, rounds = 1;
  bool no_reference = false;
  std::string python = TRIDENT_PYTHON_PATH, json_path;
  parser.add_int("--steps", &steps, "timed steps (5)");
  parser.add_int("--warmup", &warmup, "untimed steps first (2)");
  parser.add_int("--threads", &threads,
                 "threads for both (default: what trident chooses, ops/cpu_threads.h)");
  parser.add_int("--rounds", &rounds,
                 "rounds, each timing Trident then PyTorch (1); the figures are their medians");
  parser.add_bool("--no-reference", &no_reference, "time Trident only");
  parser.add_string("--python", &python, "interpreter with torch (/usr/bin/python3)");
  parser.add_string("--json", &json_path,
                    "also write the figures to FILE as one JSON record "
                    "(launch/experiments/step_cost.py)");
  if (!parser.parse(args)) return 0;
  TRIDENT_USER_CHECK(steps >= 1 && warmup >= 0 && rounds >= 1,
                     "--steps and --rounds must be ≥ 1 and --warmup ≥ 0, got ", steps, ", ", rounds,
                     " and ", warmup);
  // Opened now, so that an unwritable --json path fails before minutes of timing, not after;
  // written beside the path and renamed into place, so a failed run leaves no partial record.
  std::unique_ptr<trident::io::AtomicFileWriter> json_file;
  if (!json_path.empty()) json_file = std::make_unique<trident::io::AtomicFileWriter>(json_path);
  trident::config::TridentConfig config = config_flags.load(1);
  // On a GPU the step is measured against a bf16 GEMM on the same GPU and the GPU's dense bf16
  // peak (the MFU); the PyTorch reference is a CPU one, so it is not run there.
  const bool gpu = config.train().device() == "cuda";
  const trident::Device device = gpu ? trident::Device::CUDA : trident::Device::CPU;
  TRIDENT_USER_CHECK(!gpu || no_reference,
                     "bench step with train.device = \"cuda\" times the GPU against its own bf16 "
                     "GEMM; the PyTorch reference runs on the CPU: add --no-reference");
  const trident::ops::CpuThreads chosen =
      threads > 0 ? trident::ops::set_cpu_threads(static_cast<int>(threads), "--threads")
                  : trident::ops::cpu_threads();
  threads = chosen.threads;
  // The reference trains on the whole global batch at once; so does Trident here.
  config.mutable_train()->set_micro_batch(config.train().global_batch());
  config.mutable_train()->set_steps(warmup + steps);

  // The same fixed batch every step, for both.
  auto sampler = trident::train::make_train_sampler(config);
  const trident::models::TokenBatch batch = sampler->global_batch(1);
  struct FixedSampler final : trident::io::BatchSampler {
    FixedSampler(trident::io::BatchShape shape, trident::models::TokenBatch b)
        : BatchSampler(shape), batch(std::move(b)) {}
    void fill_row(uint64_t sample, int32_t* tokens, uint8_t* mask) const override {
      const int64_t row = static_cast<int64_t>(sample) % batch.batch, width = batch.seq_len + 1;
      std::copy_n(batch.tokens.begin() + row * width, width, tokens);
      std::copy_n(batch.loss_mask.begin() + row * width, width, mask);
    }
    trident::models::TokenBatch batch;
  };
  // Trident's steps, then its model is freed, and the allocator's cache returned to the system,
  // before the reference starts: a `medium` model and its optimizer state take 15 GB, and the
  // two side by side would not fit a 24 GB machine.
  const trident::launch::ScratchDir scratch("bench_step");
  const std::string dir = scratch.path().string();
  // Quoted as bench score quotes its reference: an interpreter or source path with spaces.
  using trident::launch::shell_quote;
  const std::string reference_command =
      shell_quote(python) + " " +
      shell_quote(std::string(TRIDENT_SOURCE_PATH) + "/tests/reference/bench_reference.py") +
      " --model " + shell_quote(dir + "/model") + " --batch " +
      shell_quote(dir + "/batch.safetensors") + " --train-json " +
      shell_quote(dir + "/train.json") + " --steps " + std::to_string(steps) + " --warmup " +
      std::to_string(warmup) + " --threads " + std::to_string(threads);
  // Each round builds the model anew from the same seed and times it on the same batch, then
  // the reference; the profile and the memory figures are the last round's.
  std::vector<double> trident_rounds, torch_rounds;
  StepTimes trident_step;
  int64_t parameters = 0;
  double sgemm_flops = 0.0;
  std::string torch_version;
  for (long long round = 0; round < rounds; ++round) {
    {
      trident::train::Trainer trainer(config,
                                      std::make_unique<FixedSampler>(sampler->shape(), batch));
      parameters = trainer.model().registry().counts().total;
      if (round == 0 && !no_reference) write_reference_inputs(dir, trainer, batch, config.train());
      trident_step = time_trident_steps(trainer, warmup, steps);
      trident_rounds.push_back(trident_step.seconds);
    }
    trident::Allocator::instance(device).release_cached();
    // The GEMM rate this machine reaches with the same threads (on a GPU: a bf16 GEMM on it),
    // measured in the same run; its matrices go back to the system too, so later rounds'
    // memory figures are their own.
    if (round == 0) {
      sgemm_flops = gpu ? trident::train::measure_gpu_bf16_gemm_flops_per_second(kGpuGemmSize)
                        : trident::train::measure_gemm_flops_per_second(kSgemmSize);
      trident::Allocator::instance(device).release_cached();
    }
    if (!no_reference) {
      const nlohmann::json result =
          nlohmann::json::parse(trident::launch::run_process(reference_command).output);
      torch_rounds.push_back(result.at("step_seconds").get<double>());
      torch_version = result.at("torch").get<std::string>();
    }
  }
  const double model_flops_per_step =
      trident::train::make_throughput_model(config, sgemm_flops).model_flops_per_token *
      static_cast<double>(batch.batch * batch.seq_len);
  const double trident_seconds = trident::launch::median(trident_rounds);
  const double torch_seconds = no_reference ? 0.0 : trident::launch::median(torch_rounds);

  const double tokens = static_cast<double>(batch.batch * batch.seq_len);
  std::printf("CPU threads: %d (%s; %s)\n", chosen.threads, chosen.reason.c_str(),
              chosen.blas.c_str());
  std::printf(
      "model '%s': %lld parameters, batch %lld × %lld tokens, %lld threads, %lld timed steps\n",
      config.model().name().c_str(), static_cast<long long>(parameters),
      static_cast<long long>(batch.batch), static_cast<long long>(batch.seq_len), threads, steps);
  std::printf("%-28s %12s %12s\n", "", "s/step", "tokens/s");
  std::printf("%-28s %12.4f %12.0f\n", "Trident (C++)", trident_seconds, tokens / trident_seconds);
  if (!no_reference) {
    std::printf("%-28s %12.4f %12.0f\n", ("PyTorch " + torch_version + " eager").c_str(), torch_seconds,
                tokens / torch_seconds);
  }
  if (rounds > 1) print_rounds(trident_rounds, torch_rounds);
  if (!no_reference) {
    std::printf("speed-up (PyTorch time / Trident time): %.2fx\n", torch_seconds / trident_seconds);
  }
  const double model_flops = model_flops_per_step / trident_seconds;
  const std::string gemm_reference =
      gpu ? "bf16 GEMM " + std::to_string(kGpuGemmSize) + "³ on this GPU"
          : "fp32 sgemm " + std::to_string(kSgemmSize) + "³, same threads";
  if (gpu) {
    std::printf(
        "FLOP rate: Trident %.4g TFLOP/s (%.4g GFLOP per step, the planner's model FLOPs), bf16 "
        "GEMM %lld³ %.4g TFLOP/s (this GPU, this run): ratio to the GEMM %.3g\n",
        model_flops / 1e12, model_flops_per_step / 1e9, static_cast<long long>(kGpuGemmSize),
        sgemm_flops / 1e12, model_flops / sgemm_flops);
  } else {
    std::printf(
        "FLOP rate: Trident %.4g GFLOP/s (%.4g GFLOP per step, the planner's model FLOPs), fp32 "
        "sgemm %lld³ %.4g GFLOP/s (same threads, this run): ratio to sgemm %.3g\n",
        model_flops / 1e9, model_flops_per_step / 1e9, static_cast<long long>(kSgemmSize),
        sgemm_flops / 1e9, model_flops / sgemm_flops);
  }
  // On a GPU, the MFU against its dense bf16 peak (--peak-tflops auto: the data sheet's figure
  // for its name, else the GEMM above).
  const double peak_flops = gpu ? trident::train::parse_peak_flops("auto", device) : 0.0;
  if (gpu) {
    std::printf("MFU: %.1f%% of %s's dense bf16 peak, %.4g TFLOP/s\n",
                100.0 * model_flops / peak_flops, trident::ops::cuda_device_name().c_str(),
                peak_flops / 1e12);
  }
  // The planner's memory for this one-rank step (`trident plan`), beside the allocator's peak.
  const trident::models::planner::Plan plan = trident::models::planner::make_plan(
      config, 0, trident::models::planner::HardwareSpec{}, trident::models::planner::PlanOptions{});
  const double planned_bytes = trident::models::planner::plan_for_rank(plan, 0).memory.total();
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf(
      "memory (%s): peak in tensors %.1f MiB, reserved by the caching allocator %.1f MiB "
      "(%.1f%% not in tensors at the peak), system allocations per timed step %.1f; peak "
      "resident set %.1f MiB\n",
      gpu ? "GPU" : "host", static_cast<double>(trident_step.peak_bytes) / (1 << 20),
      static_cast<double>(trident_step.reserved_bytes) / (1 << 20),
      100.0 * trident_step.fragmentation,
      static_cast<double>(trident_step.system_allocations) / static_cast<double>(steps),
      static_cast<double>(usage.ru_maxrss) / 1024.0);
  std::printf("memory planned by `trident plan`: %.2f MiB; peak in tensors / planned %.3f\n",
              planned_bytes / (1 << 20),
              static_cast<double>(trident_step.peak_bytes) / planned_bytes);
  if (json_file) {
    const trident::config::ModelConfig& m = config.model();
    nlohmann::json record{
        {"config", config_flags.config},
        {"model", m.name()},
        {"hidden_size", m.hidden_size()},
        {"intermediate_size", m.intermediate_size()},
        {"moe_intermediate_size", m.moe_intermediate_size()},
        {"layers", m.num_hidden_layers()},
        {"parameters", parameters},
        {"batch", batch.batch},
        {"seq_len", batch.seq_len},
        {"tokens_per_step", batch.batch * batch.seq_len},
        {"threads", threads},
        {"steps", steps},
        {"rounds", rounds},
        {"trident_step_s_rounds", trident_rounds},
        {"trident_step_s", trident_seconds},
        {"device", gpu ? "cuda" : "cpu"},
        {"model_gflop_per_step", model_flops_per_step / 1e9},
        {"model_tflops_per_s", model_flops / 1e12},
        {"gemm_reference", gemm_reference},
        {"sgemm_gflops", sgemm_flops / 1e9},
        {"ratio_to_sgemm", model_flops / sgemm_flops},
        {"peak_tflops", nullptr},
        {"mfu", nullptr},
        {"peak_tensor_mib", static_cast<double>(trident_step.peak_bytes) / (1 << 20)},
        {"planned_memory_mib", planned_bytes / (1 << 20)},
        {"peak_resident_mib", static_cast<double>(usage.ru_maxrss) / 1024.0},
        {"torch_step_s", nullptr},
        {"torch_version", nullptr}};
    if (gpu) {
      record["gpu"] = trident::ops::cuda_device_name();
      record["peak_tflops"] = peak_flops / 1e12;
      record["mfu"] = model_flops / peak_flops;
    }
    if (!no_reference) {
      record["torch_step_s"] = torch_seconds;
      record["torch_step_s_rounds"] = torch_rounds;
      record["torch_version"] = torch_version;
    }
    const std::string text = record.dump(2) + "\n";
    json_file->write(text.data(), text.size());
    json_file->commit();
  }
  // The profile is the last round's, so its shares are of that round's step.
  const double profiled_seconds = trident_step.seconds;
  std::printf("\nTrident profile (mean per step%s; ops and optimizer phases, the rest is glue):\n",
              rounds > 1 ? " of the last round" : "");
  std::printf("%-34s %10s %8s %8s\n", "op", "ms/step", "% step", "calls");
  double accounted = 0.0;
  for (const trident::ProfileEntry& entry : trident::Profiler::snapshot()) {
    const double ms = 1e3 * entry.seconds / static_cast<double>(steps);
    accounted += entry.seconds / static_cast<double>(steps);
    std::printf("%-34s %10.3f %7.1f%% %8lld\n", entry.name.c_str(), ms,
                100.0 * ms / (1e3 * profiled_seconds), static_cast<long long>(entry.calls / steps));
  }
  std::printf("%-34s %10.3f %7.1f%%\n", "(outside ops)", 1e3 * (profiled_seconds - accounted),
              100.0 * (profiled_seconds - accounted) / profiled_seconds);
  return 0;
}
