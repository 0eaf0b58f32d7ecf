// trident sample-sft: rejection-sampled SFT data (docs/grpo.md, "Rejection-sampled SFT data").
// Samples k completions of each arithmetic train prompt from a checkpoint or HF directory,
// keeps those the reward accepts (best first: highest reward, fewest tokens, lowest sample
// index) and writes them as a token file with a loss mask that `trident pretrain` reads in SFT
// mode, with a JSON summary. Under mpirun each rank samples its block of the prompts and rank 0
// writes everything.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "launch/cli.h"
#include "parallel/gather.h"
#include "parallel/mpi_session.h"
#include "runtime/core/error.h"
#include "runtime/io/mapped_file.h"
#include "runtime/io/on_root.h"
#include "runtime/io/synthetic_task.h"
#include "runtime/io/text_tokenizer.h"
#include "runtime/io/token_file.h"
#include "runtime/train/grpo/grpo_checkpoint.h"
#include "runtime/train/grpo/rejection_sampling.h"

namespace {

namespace fs = std::filesystem;
namespace grpo = trident::train::grpo;
namespace io = trident::io;
using json = nlohmann::ordered_json;

struct Flags {
  std::string init, output, jsonl, summary, ops = "add", reward_command;
  long long prompts = 256, first = 0, seed = 0, digits = 2, samples = 8, keep = 1, top_k = 0;
  long long max_new_tokens = 64, batch_prompts = 64;
  double temperature = 1.0, top_p = 1.0, min_reward = 1.0, reward_timeout = 60.0;
  bool distinct = false, force = false;
};

// Every file the command writes: refused if it exists (unless --force) or if its folder does
// not, before any sampling.
void check_outputs(const Flags& f) {
  TRIDENT_USER_CHECK(!f.output.empty(), "--output FILE (the token file to write) is required");
  const std::vector<std::pair<const char*, std::string>> outputs = {
      {"--output", f.output}, {"--summary", f.summary}, {"--jsonl", f.jsonl}};
  std::error_code error;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const auto& [flag, path] = outputs[i];
    if (path.empty()) continue;
    for (size_t j = 0; j < i; ++j) {
      TRIDENT_USER_CHECK(
          fs::weakly_canonical(path, error) != fs::weakly_canonical(outputs[j].second, error), flag,
          " '", path, "' is the same file as ", outputs[j].first,
          "; give each output its own path");
    }
    TRIDENT_USER_CHECK(f.force || !fs::exists(path, error), flag, " '", path,
                       "' already exists; pass --force to replace it or choose another path");
    const fs::path parent = fs::path(path).parent_path();
    TRIDENT_USER_CHECK(parent.empty() || fs::is_directory(parent, error), flag, " '", path,
                       "': the folder '", parent.string(), "' does not exist");
  }
}

// The model of `--init`: a Trident checkpoint file or an HF directory, this rank holding all of
// it (each rank of a data-parallel job loads its own copy).
std::unique_ptr<trident::models::DeepSeekV3Model> load_model(const std::string& init) {
  TRIDENT_USER_CHECK(!init.empty(),
                     "--init is required: a Trident checkpoint FILE (step_<N>.h5) or an HF "
                     "directory (config.json + *.safetensors)");
  std::error_code error;
  TRIDENT_USER_CHECK(fs::exists(init, error), "--init '", init,
                     "' does not exist; give a Trident checkpoint FILE (step_<N>.h5) or an HF "
                     "directory (config.json + *.safetensors)");
  auto model = std::make_unique<trident::models::DeepSeekV3Model>(grpo::init_model_config(init), 0);
  grpo::load_init_weights(init, *model, MPI_COMM_SELF);
  return model;
}

grpo::RejectionOptions rejection_options(const Flags& f) {
  grpo::RejectionOptions o;
  o.samples = f.samples;
  o.keep = grpo::KeepRule{f.keep, f.distinct};
  o.sampling.temperature = f.temperature;
  o.sampling.top_p = f.top_p;
  o.sampling.top_k = f.top_k;
  o.sampling.max_new_tokens = f.max_new_tokens;
  o.sampling.stop = {"</answer>"};
  o.sampling.seed = static_cast<uint64_t>(f.seed);
  o.acceptance.reward_command = f.reward_command;
  o.acceptance.min_reward = f.min_reward;
  o.acceptance.reward_timeout_s = f.reward_timeout;
  return o;
}

json counts_json(const grpo::RejectionCounts& c) {
  return json{{"prompts", c.prompts},
              {"samples", c.samples},
              {"accepted", c.accepted},
              {"kept", c.kept},
              {"prompts_with_accepted", c.prompts_with_accepted},
              {"correct", c.correct},
              {"formatted", c.formatted},
              {"truncated", c.truncated},
              {"sampled_tokens", c.sampled_tokens}};
}

grpo::RejectionCounts counts_from_json(const json& j) {
  grpo::RejectionCounts c;
  c.prompts = j.at("prompts");
  c.samples = j.at("samples");
  c.accepted = j.at("accepted");
  c.kept = j.at("kept");
  c.prompts_with_accepted = j.at("prompts_with_accepted");
  c.correct = j.at("correct");
  c.formatted = j.at("formatted");
  c.truncated = j.at("truncated");
  c.sampled_tokens = j.at("sampled_tokens");
  return c;
}

json kept_json(const grpo::KeptCompletion& k) {
  return json{{"prompt_id", k.prompt_id},   {"sample", k.sample},       {"prompt", k.prompt},
              {"completion", k.completion}, {"reference", k.reference}, {"reward", k.reward},
              {"tokens", k.tokens}};
}

double ratio(int64_t a, int64_t b) {
  return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : 0.0;
}

void write_text(const std::string& path, const std::string& text) {
  io::AtomicFileWriter file(path);
  file.write(text.data(), text.size());
  file.commit();
}

// This rank's block of the prompts (split as GRPO splits prompt groups over dp), sampled in
// batches of --batch-prompts: {"counts", "kept"}.
json sample_block(const Flags& f, const grpo::RejectionOptions& options,
                  const io::ArithmeticOptions& task, int rank, int size,
                  std::chrono::steady_clock::time_point start) {
  const auto model = load_model(f.init);
  const grpo::GroupRange block = grpo::rank_groups(f.prompts, rank, size);
  grpo::RejectionCounts counts;
  json kept = json::array();
  for (int64_t done = 0; done < block.size(); done += f.batch_prompts) {
    const int64_t n = std::min<int64_t>(f.batch_prompts, block.size() - done);
    const auto prompts =
        grpo::arithmetic_prompts(static_cast<uint64_t>(f.seed), io::Split::Train,
                                 static_cast<uint64_t>(f.first + block.begin + done), n, task);
    const grpo::RejectionResult part = grpo::rejection_sample(*model, prompts, options);
    counts += part.counts;
    for (const auto& k : part.kept) kept.push_back(kept_json(k));
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (rank == 0) {
      std::fprintf(stderr,
                   "trident sample-sft: %lld/%lld prompts%s | accepted %lld/%lld (%.1f%%) | "
                   "kept %lld | %.1f s\n",
                   static_cast<long long>(done + n), static_cast<long long>(block.size()),
                   size > 1 ? " (rank 0's block)" : "", static_cast<long long>(counts.accepted),
                   static_cast<long long>(counts.samples),
                   100.0 * ratio(counts.accepted, counts.samples),
                   static_cast<long long>(counts.kept), seconds);
    }
  }
  return json{{"counts", counts_json(counts)}, {"kept", std::move(kept)}};
}

// Rank 0: the token file (and JSONL) of every rank's kept completions, in prompt order, and the
// summary, printed and written.
void write_outputs(const Flags& f, const std::vector<std::string>& parts, double seconds,
                   int ranks) {
  grpo::RejectionCounts counts;
  std::vector<json> kept;
  for (const std::string& part : parts) {
    const json p = json::from_msgpack(part);
    counts += counts_from_json(p.at("counts"));
    for (const json& k : p.at("kept")) kept.push_back(k);
  }
  json summary = counts_json(counts);
  summary["acceptance_rate"] = ratio(counts.accepted, counts.samples);
  summary["prompt_pass_rate"] = ratio(counts.prompts_with_accepted, counts.prompts);
  summary["accuracy"] = ratio(counts.correct, counts.samples);
  summary["format_rate"] = ratio(counts.formatted, counts.samples);
  summary["mean_sampled_length"] = ratio(counts.sampled_tokens, counts.samples);
  summary["samples_per_prompt"] = f.samples;
  summary["keep"] = f.keep;
  summary["distinct"] = f.distinct;
  summary["first_prompt"] = f.first;
  summary["seed"] = f.seed;
  summary["temperature"] = f.temperature;
  summary["top_p"] = f.top_p;
  summary["top_k"] = f.top_k;
  summary["max_new_tokens"] = f.max_new_tokens;
  summary["init"] = f.init;
  summary["output"] = f.output;
  summary["ranks"] = ranks;
  summary["seconds"] = seconds;

  int64_t tokens = 0, trained = 0;
  if (!kept.empty()) {
    const auto tokenizer = io::open_tokenizer("byte");
    io::TokenFileOptions options;
    options.with_loss_mask = true;
    options.vocab_size = static_cast<uint32_t>(tokenizer->vocab_size());
    io::TokenFileWriter writer(f.output, options);
    std::vector<int32_t> ids;
    std::vector<uint8_t> mask;
    std::string lines;
    for (const json& k : kept) {
      io::encode_prompt_response(*tokenizer, k.at("prompt").get<std::string>(),
                                 k.at("completion").get<std::string>(), ids, mask);
      writer.append(ids, mask);
      tokens += static_cast<int64_t>(ids.size());
      for (const uint8_t m : mask) trained += m;
      lines += k.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    }
    writer.finish();
    if (!f.jsonl.empty()) write_text(f.jsonl, lines);
  }
  summary["documents"] = kept.size();
  summary["tokens"] = tokens;
  summary["trained_tokens"] = trained;
  const std::string text = summary.dump(2);
  write_text(f.summary, text + "\n");
  std::printf("%s\n", text.c_str());
  TRIDENT_USER_CHECK(!kept.empty(), "no completion was accepted (0 of ", counts.samples,
                     " samples), so no token file was written (summary in '", f.summary,
                     "'); sample more (--samples), from a better checkpoint, or check the reward");
  std::fprintf(stderr, "trident sample-sft: wrote %s: %zu documents, %lld tokens (%lld trained)\n",
               f.output.c_str(), kept.size(), static_cast<long long>(tokens),
               static_cast<long long>(trained));
}

}  // namespace

TRIDENT_COMMAND(sample_sft_command, "sample-sft",
                "rejection-sampled SFT data: best-of-k completions the reward accepts") {
  Flags f;
  trident::launch::ArgParser parser("sample-sft");
  parser.add_string("--init", &f.init,
                    "model: a Trident checkpoint FILE (step_<N>.h5) or an HF directory");
  parser.add_string("--output", &f.output, "token file to write (SFT: prompt mask 0)");
  parser.add_string("--summary", &f.summary, "summary JSON (default OUTPUT.summary.json)");
  parser.add_string("--jsonl", &f.jsonl, "also write the kept prompt/completion texts as JSONL");
  parser.add_bool("--force", &f.force, "replace output files that already exist");
  parser.add_int("--prompts", &f.prompts, "arithmetic train problems to sample from (256)");
  parser.add_int("--first", &f.first, "index of the first train problem (0)");
  parser.add_int("--seed", &f.seed, "task and sampling seed, as train.seed (0)");
  parser.add_int("--digits", &f.digits, "operand digits, as data.task_digits (2)");
  parser.add_string("--ops", &f.ops, "operations: any of add,sub,mul (add)");
  parser.add_int("--samples", &f.samples, "completions sampled per prompt, k ≥ 1 (8)");
  parser.add_double("--temperature", &f.temperature, "sampling temperature, 0 = greedy (1)");
  parser.add_double("--top-p", &f.top_p, "nucleus sampling threshold in (0, 1] (1)");
  parser.add_int("--top-k", &f.top_k, "keep the k most likely tokens, 0 = off (0)");
  parser.add_int("--max-new-tokens", &f.max_new_tokens, "tokens to generate at most (64)");
  parser.add_int("--keep", &f.keep,
                 "accepted completions kept per prompt: N best, 0 = all (1: best-of-k)");
  parser.add_bool("--distinct", &f.distinct, "keep at most one completion per distinct text");
  parser.add_string("--reward-command", &f.reward_command,
                    "external reward (as grpo.reward_command) instead of correct + format");
  parser.add_double("--min-reward", &f.min_reward,
                    "with --reward-command: accept rewards ≥ this (1)");
  parser.add_double("--reward-timeout", &f.reward_timeout, "seconds per reward command run (60)");
  parser.add_int("--batch-prompts", &f.batch_prompts, "prompts decoded together (64)");
  if (!parser.parse(args)) return 0;

  if (f.summary.empty() && !f.output.empty()) f.summary = f.output + ".summary.json";
  TRIDENT_USER_CHECK(f.prompts >= 1, "--prompts = ", f.prompts, ": valid values are ≥ 1");
  TRIDENT_USER_CHECK(f.first >= 0, "--first = ", f.first, ": valid values are ≥ 0");
  TRIDENT_USER_CHECK(f.seed >= 0, "--seed = ", f.seed, ": valid values are ≥ 0");
  TRIDENT_USER_CHECK(f.batch_prompts >= 1, "--batch-prompts = ", f.batch_prompts,
                     ": valid values are ≥ 1");
  const grpo::RejectionOptions options = rejection_options(f);
  grpo::check_rejection_options(options);
  TRIDENT_USER_CHECK(f.digits >= 1 && f.digits <= 9, "--digits = ", f.digits,
                     ": valid values are 1 to 9 (operand digits)");
  const io::ArithmeticOptions task{static_cast<int>(f.digits), io::parse_ops(f.ops)};

  trident::parallel::MpiSession session(nullptr, nullptr);
  const MPI_Comm world = MPI_COMM_WORLD;
  const int rank = session.world_rank(), size = session.world_size();
  io::on_root(world, [&] { check_outputs(f); });

  // Each rank loads the model and samples its block; a failure on any rank (a reward command
  // that fails on its completions, a file it cannot read) travels with the results to rank 0,
  // so every rank stops with that rank's message instead of waiting in the gather.
  const auto start = std::chrono::steady_clock::now();
  json part;
  try {
    part = sample_block(f, options, task, rank, size, start);
  } catch (const trident::UserError& e) {
    part = json{{"error", e.detail()}, {"user", true}};
  } catch (const std::exception& e) {
    part = json{{"error", e.what()}, {"user", false}};
  }
  // MessagePack carries the texts' bytes as they are (JSON text would need valid UTF-8).
  const std::vector<uint8_t> packed = json::to_msgpack(part);
  const std::vector<std::string> parts =
      trident::parallel::gather_strings(std::string(packed.begin(), packed.end()), world);
  std::string error;
  int user = 0;
  for (size_t r = 0; r < parts.size() && error.empty(); ++r) {
    const json p = json::from_msgpack(parts[r]);
    if (!p.contains("error")) continue;
    error = (size > 1 ? "rank " + std::to_string(r) + ": " : "") + p.at("error").get<std::string>();
    user = p.at("user").get<bool>() ? 1 : 0;
  }
  io::broadcast_string(error, world);
  TRIDENT_CHECK_MPI(MPI_Bcast(&user, 1, MPI_INT, 0, world));
  if (!error.empty() && user != 0) TRIDENT_USER_FAIL(error);
  if (!error.empty()) throw std::runtime_error(error);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  io::on_root(world, [&] { write_outputs(f, parts, seconds, size); });
  return 0;
}
