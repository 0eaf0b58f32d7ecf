#include "runtime/train/data_setup.h"

#include <filesystem>
#include <optional>

#include "runtime/core/error.h"
#include "runtime/io/token_file.h"

namespace trident::train {

namespace {
io::BatchShape batch_shape(const config::TridentConfig& config, uint64_t seed_offset) {
  return io::BatchShape{config.train().global_batch(), config.train().seq_len(),
                        config.train().seed() + seed_offset};
}

std::unique_ptr<io::BatchSampler> file_sampler(const config::TridentConfig& config,
                                               const std::string& field, const std::string& path,
                                               uint64_t seed_offset) {
  std::error_code ec;
  TRIDENT_USER_CHECK(std::filesystem::exists(path, ec), field, " = '", path,
                     "' does not exist (a token file made with `trident data`)");
  auto file = std::make_shared<const io::TokenFile>(path);
  const int64_t vocab = config.model().vocab_size();
  if (vocab > 0 && file->vocab_size() > 0) {
    TRIDENT_USER_CHECK(file->vocab_size() <= static_cast<uint32_t>(vocab), "token file '", path,
                       "' was written for a vocabulary of ", file->vocab_size(),
                       " but model.vocab_size = ", vocab);
  } else if (vocab > 0) {
    // No recorded vocabulary: nothing vouches for the ids, and one beyond the embedding would
    // fail mid-step on one rank. Every rank checks the whole file now, before training.
    const int64_t bad = file->first_id_at_least(static_cast<uint32_t>(vocab));
    TRIDENT_USER_CHECK(bad < 0, "token file '", path, "': token ", bad, " has id ",
                       bad < 0 ? 0 : file->token(static_cast<uint64_t>(bad)),
                       ", outside the model's vocabulary [0, ", vocab,
                       ") (model.vocab_size; the "
                       "file's header records no vocabulary size, so every id was checked)");
  }
  const bool sft = config.train().mode() == "sft";
  TRIDENT_USER_CHECK(!sft || file->has_loss_mask(), "train.mode = \"sft\" needs a token file with a "
                     "loss mask; '", path, "' has none (write it with `trident data --sft`)");
  const io::TokenFileMode mode = sft ? io::TokenFileMode::Documents : io::TokenFileMode::RandomWindows;
  return std::make_unique<io::TokenFileSampler>(std::move(file), batch_shape(config, seed_offset), mode);
}

io::ArithmeticOptions task_options(const config::TridentConfig& config) {
  const std::string& task = config.data().task();
  TRIDENT_USER_CHECK(task == "arithmetic" || task == "arithmetic_prose", "data.task = \"", task,
                     "\" is not a built-in task; valid: \"arithmetic\", \"arithmetic_prose\" (or "
                     "set data.train_path)");
  io::ArithmeticOptions options;
  options.digits = static_cast<int>(config.data().task_digits() > 0 ? config.data().task_digits() : 3);
  return options;
}

// "arithmetic_prose": the same problems, their completions in prose but for a tagged share.
std::optional<io::ProseOptions> prose_options(const config::TridentConfig& config) {
  if (config.data().task() != "arithmetic_prose") return std::nullopt;
  return io::ProseOptions{config.data().prose_tagged_share()};
}
}  // namespace

std::unique_ptr<io::BatchSampler> make_train_sampler(const config::TridentConfig& config) {
  if (!config.data().train_path().empty()) {
    return file_sampler(config, "data.train_path", config.data().train_path(), 0);
  }
  return std::make_unique<io::SyntheticSampler>(task_options(config), io::Split::Train,
                                                config.train().mode() == "sft",
                                                batch_shape(config, 0), prose_options(config));
}

std::unique_ptr<io::BatchSampler> make_eval_sampler(const config::TridentConfig& config) {
  if (!config.data().eval_path().empty()) {
    return file_sampler(config, "data.eval_path", config.data().eval_path(), 1);
  }
  if (!config.data().train_path().empty()) return nullptr;
  return std::make_unique<io::SyntheticSampler>(task_options(config), io::Split::Eval,
                                                config.train().mode() == "sft",
                                                batch_shape(config, 1), prose_options(config));
}

}  // namespace trident::train
