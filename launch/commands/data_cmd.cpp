// `trident data`: builds a token file from text, JSONL, chat JSONL or the built-in arithmetic
// task, with the tokenizer of the config (data.tokenizer) or --tokenizer.
//
//   trident data --input corpus.txt --output train.bin --tokenizer tokenizer.json
//   trident data --input docs.jsonl --field text --output train.bin --config my-run
//   trident data --input chat.jsonl --chat --output sft.bin --tokenizer tokenizer.json
//   trident data --input qa.jsonl --sft --prompt-field q --response-field a --output sft.bin
//   trident data --synthetic arithmetic --count 10000 --digits 3 --seed 1 --sft --output sft.bin
//
// Text files: documents are separated by blank lines. JSONL: one object per line. The input is
// streamed (constant memory), a progress bar runs on stderr, and a summary ends the run. Bad
// records are reported with their line number, counted and left out (--strict: the first one
// is an error); --bad-records FILE lists every one as JSONL.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "launch/cli.h"
#include "runtime/config/config.h"
#include "runtime/core/error.h"
#include "runtime/io/dataset_builder.h"
#include "runtime/io/synthetic_task.h"
#include "runtime/io/text_tokenizer.h"
#include "runtime/io/token_file.h"

namespace {

namespace fs = std::filesystem;
namespace io = trident::io;

struct DataFlags {
  std::string input, output, field = "text", prompt_field = "prompt", response_field = "response";
  std::string messages_field = "messages", tokenizer, config, bad_records;
  std::string synthetic, split = "train", ops = "add", dtype = "auto";
  long long count = 0, digits = 3, seed = 1, max_record_mb = 256;
  bool sft = false, chat = false, strict = false;
};

constexpr int kListedBadRecords = 20;

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The output must never replace the input, nor the temporary files written next to it.
void refuse_overwriting_input(const DataFlags& flags) {
  if (flags.input.empty()) return;
  std::error_code error;
  const fs::path input = fs::weakly_canonical(flags.input, error);
  for (const std::string suffix : {"", ".tmp", ".offsets.tmp", ".mask.tmp"}) {
    const fs::path output = fs::weakly_canonical(flags.output + suffix, error);
    const bool same = output == input ||
                      (fs::exists(output, error) && fs::equivalent(output, flags.input, error));
    TRIDENT_USER_CHECK(!same, "--output '", flags.output, "' would overwrite the input file '",
                       flags.input,
                       "' (the token file or its temporary files); choose another --output");
  }
}

std::unique_ptr<io::TextTokenizer> tokenizer_of(const DataFlags& flags) {
  TRIDENT_USER_CHECK(flags.tokenizer.empty() || flags.config.empty(),
                     "give --tokenizer or --config (whose data.tokenizer is used), not both");
  if (!flags.config.empty()) {
    const auto config =
        trident::config::load_config(trident::config::resolve_config_path(flags.config));
    return io::open_tokenizer(config.data().tokenizer());
  }
  return io::open_tokenizer(flags.tokenizer.empty() ? "byte" : flags.tokenizer);
}

io::TokenDType token_dtype(const DataFlags& flags, int64_t vocab) {
  TRIDENT_USER_CHECK(flags.dtype == "auto" || flags.dtype == "uint16" || flags.dtype == "uint32",
                     "--dtype '", flags.dtype, "'; valid: auto, uint16, uint32");
  const bool fits16 = vocab <= (int64_t{1} << 16);
  TRIDENT_USER_CHECK(flags.dtype != "uint16" || fits16,
                     "--dtype uint16 holds ids below 65536, "
                     "but the tokenizer's ids go up to ",
                     vocab - 1, "; use uint32 or auto");
  if (flags.dtype == "uint32" || (flags.dtype == "auto" && !fits16)) return io::TokenDType::U32;
  return io::TokenDType::U16;
}

void write_synthetic(const DataFlags& flags, io::TextTokenizer& tokenizer,
                     io::TokenFileWriter& writer) {
  TRIDENT_USER_CHECK(flags.synthetic == "arithmetic", "--synthetic '", flags.synthetic,
                     "' is not a built-in task; valid: arithmetic");
  TRIDENT_USER_CHECK(flags.count > 0, "--count must be positive, got ", flags.count);
  TRIDENT_USER_CHECK(flags.split == "train" || flags.split == "eval", "--split '", flags.split,
                     "'; valid: train, eval");
  TRIDENT_USER_CHECK(flags.seed >= 0, "--seed must be non-negative, got ", flags.seed);
  const io::Split split = flags.split == "train" ? io::Split::Train : io::Split::Eval;
  const io::ArithmeticOptions options{static_cast<int>(flags.digits), io::parse_ops(flags.ops)};
  std::vector<int32_t> tokens;
  std::vector<uint8_t> mask;
  for (long long i = 0; i < flags.count; ++i) {
    const io::ArithmeticProblem problem = io::make_problem(static_cast<uint64_t>(flags.seed), split,
                                                           static_cast<uint64_t>(i), options);
    io::encode_prompt_response(tokenizer, problem.prompt, problem.completion, tokens, mask);
    if (flags.sft) {
      writer.append(tokens, mask);
    } else {
      writer.append(tokens);
    }
  }
}

io::DatasetOptions dataset_options(const DataFlags& flags) {
  const bool jsonl = ends_with(flags.input, ".jsonl") || ends_with(flags.input, ".json");
  TRIDENT_USER_CHECK(!(flags.sft && flags.chat),
                     "give --sft (prompt/response fields) or --chat "
                     "(a messages list), not both");
  TRIDENT_USER_CHECK(!(flags.sft || flags.chat) || jsonl, flags.chat ? "--chat" : "--sft",
                     " needs a .jsonl input (one JSON object per line), got '", flags.input, "'");
  TRIDENT_USER_CHECK(flags.max_record_mb >= 1, "--max-record-mb must be ≥ 1, got ",
                     flags.max_record_mb);
  io::DatasetOptions options;
  options.format = flags.chat  ? io::InputFormat::kChat
                   : flags.sft ? io::InputFormat::kPromptResponse
                   : jsonl     ? io::InputFormat::kJsonl
                               : io::InputFormat::kText;
  options.field = flags.field;
  options.prompt_field = flags.prompt_field;
  options.response_field = flags.response_field;
  options.messages_field = flags.messages_field;
  options.max_record_bytes = static_cast<uint64_t>(flags.max_record_mb) << 20;
  options.strict = flags.strict;
  return options;
}

void build_from_input(const DataFlags& flags, io::TextTokenizer& tokenizer,
                      io::TokenFileWriter& writer, io::TokenDType dtype) {
  std::ofstream bad_file;
  if (!flags.bad_records.empty()) {
    bad_file.open(flags.bad_records);
    TRIDENT_USER_CHECK(bad_file.good(), "--bad-records: cannot write '", flags.bad_records, "'");
  }
  int listed = 0;
  const bool terminal = ::isatty(STDERR_FILENO) != 0;
  io::RecordNote first_bad;
  const auto note = [&](const io::RecordNote& n) {
    if (n.dropped && first_bad.line == 0) first_bad = n;
    if (bad_file.is_open()) {
      bad_file
          << nlohmann::json{{"line", n.line}, {"reason", n.reason}, {"dropped", n.dropped}}.dump()
          << "\n";
    }
    // On a terminal the progress bar holds the line: start a new one first.
    const char* newline = terminal ? "\n" : "";
    if (listed < kListedBadRecords) {
      std::fprintf(stderr, "%strident data: %s line %lld: %s (%s)\n", newline, flags.input.c_str(),
                   static_cast<long long>(n.line), n.reason.c_str(),
                   n.dropped ? "record left out" : "record kept");
    } else if (listed == kListedBadRecords) {
      std::fprintf(stderr, "%strident data: further records are counted but not listed%s\n",
                   newline,
                   flags.bad_records.empty() ? " (--bad-records FILE lists them all)" : "");
    }
    ++listed;
  };
  io::DatasetBuilder builder(tokenizer, writer, dataset_options(flags));
  std::error_code error;
  const uintmax_t size =
      fs::is_regular_file(flags.input, error) ? fs::file_size(flags.input, error) : 0;
  io::ProgressBar progress("trident data", error ? 0 : static_cast<uint64_t>(size));
  const io::DatasetSummary s = builder.build(flags.input, note, &progress);

  TRIDENT_USER_CHECK(s.records > 0 || s.bad_records == 0, "none of the ", s.bad_records,
                     " records of '", flags.input, "' could be used; the first: line ",
                     first_bad.line, ": ", first_bad.reason);
  TRIDENT_USER_CHECK(s.records > 0, "'", flags.input, "' holds no documents");
  writer.finish();
  std::printf("wrote %s: %lld documents, %lld tokens (%s%s), %lld bad records left out",
              flags.output.c_str(), static_cast<long long>(s.records),
              static_cast<long long>(s.tokens), io::token_dtype_name(dtype),
              flags.sft || flags.chat ? ", loss mask" : "", static_cast<long long>(s.bad_records));
  if (s.repaired_records > 0) {
    std::printf(", %lld with invalid UTF-8 repaired", static_cast<long long>(s.repaired_records));
  }
  std::printf("\n  read %.1f MB in %.2f s: %.0f tokens/s", static_cast<double>(s.bytes_read) / 1e6,
              s.seconds, s.seconds > 0 ? static_cast<double>(s.tokens) / s.seconds : 0.0);
  if (flags.sft || flags.chat) {
    std::printf("; %lld of the tokens are trained (mask 1)",
                static_cast<long long>(s.trained_tokens));
  }
  std::printf("\n");
}

}  // namespace

TRIDENT_COMMAND(
    data_command, "data",
    "build a token file from text, JSONL, chat JSONL or the synthetic arithmetic task") {
  DataFlags flags;
  trident::launch::ArgParser parser("data");
  parser.add_string("--input", &flags.input, "FILE.txt (blank-line separated) or FILE.jsonl");
  parser.add_string("--output", &flags.output, "token file to write (.bin)");
  parser.add_string("--tokenizer", &flags.tokenizer,
                    "tokenizer.json (Hugging Face byte-level BPE) or \"byte\" (the default)");
  parser.add_string("--config", &flags.config,
                    "take the tokenizer from this config's "
                    "data.tokenizer (preset name or textproto)");
  parser.add_string("--field", &flags.field, "JSONL text field for pretraining data (text)");
  parser.add_bool("--chat", &flags.chat,
                  "JSONL of conversations: DeepSeek chat template, only assistant turns trained");
  parser.add_string("--messages-field", &flags.messages_field,
                    "JSONL field with the list of {role, content} for --chat (messages)");
  parser.add_bool("--sft", &flags.sft, "JSONL of prompt/response pairs: only responses trained");
  parser.add_string("--prompt-field", &flags.prompt_field,
                    "JSONL prompt field with --sft (prompt)");
  parser.add_string("--response-field", &flags.response_field,
                    "JSONL response field with --sft (response)");
  parser.add_bool("--strict", &flags.strict, "stop at the first bad record instead of skipping it");
  parser.add_string("--bad-records", &flags.bad_records,
                    "write every bad or repaired record's line and reason to this JSONL file");
  parser.add_int("--max-record-mb", &flags.max_record_mb,
                 "a record (line, or text document) over this many MiB is bad (256)");
  parser.add_string("--synthetic", &flags.synthetic,
                    "built-in task instead of --input: arithmetic");
  parser.add_int("--count", &flags.count, "number of synthetic problems");
  parser.add_int("--digits", &flags.digits, "operand digits of the arithmetic task (3)");
  parser.add_int("--seed", &flags.seed, "seed of the synthetic task (1)");
  parser.add_string("--split", &flags.split, "synthetic split: train | eval (train)");
  parser.add_string("--ops", &flags.ops,
                    "arithmetic operations, comma-separated: add,sub,mul (add)");
  parser.add_string("--dtype", &flags.dtype,
                    "token storage: auto (uint16 when the ids fit) | uint16 | uint32");
  if (!parser.parse(args)) return 0;

  TRIDENT_USER_CHECK(!flags.output.empty(), "--output is required\n", parser.usage());
  TRIDENT_USER_CHECK(flags.input.empty() != flags.synthetic.empty(),
                     "give exactly one of --input FILE or --synthetic arithmetic\n",
                     parser.usage());
  refuse_overwriting_input(flags);
  const auto tokenizer = tokenizer_of(flags);
  const io::TokenDType dtype = token_dtype(flags, tokenizer->vocab_size());
  io::TokenFileOptions options;
  options.dtype = dtype;
  options.with_loss_mask = flags.sft || flags.chat;
  options.vocab_size = static_cast<uint32_t>(tokenizer->vocab_size());
  if (!flags.synthetic.empty()) {
    io::TokenFileWriter writer(flags.output, options);
    write_synthetic(flags, *tokenizer, writer);
    writer.finish();
    std::printf("wrote %s: %llu documents, %llu tokens (%s%s)\n", flags.output.c_str(),
                static_cast<unsigned long long>(writer.num_documents()),
                static_cast<unsigned long long>(writer.num_tokens()), io::token_dtype_name(dtype),
                flags.sft ? ", loss mask" : "");
    return 0;
  }
  std::error_code error;
  TRIDENT_USER_CHECK(fs::exists(flags.input, error), "--input '", flags.input, "' does not exist");
  dataset_options(flags);  // flag mistakes are reported before any output file is created
  io::TokenFileWriter writer(flags.output, options);
  build_from_input(flags, *tokenizer, writer, dtype);
  return 0;
}
