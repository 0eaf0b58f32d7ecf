// `trident data`: builds a token file from text, JSONL or the built-in arithmetic task.
//
//   trident data --input corpus.txt  --output train.bin
//   trident data --input chat.jsonl  --output sft.bin --sft --prompt-field prompt --response-field
//   response trident data --synthetic arithmetic --count 10000 --digits 3 --seed 1 --output sft.bin
//   --sft
//
// Text files: documents are separated by blank lines. JSONL: one object per line, the text in
// --field (pretraining) or --prompt-field / --response-field (--sft: only the response and
// EOS count in the loss). Every document ends with EOS.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "launch/cli.h"
#include "runtime/core/error.h"
#include "runtime/io/synthetic_task.h"
#include "runtime/io/token_file.h"
#include "runtime/io/tokenizer.h"

namespace {

using trident::io::ByteTokenizer;
using trident::io::TokenFileWriter;

struct DataFlags {
  std::string input, output, field = "text", prompt_field = "prompt", response_field = "response";
  std::string synthetic, split = "train", ops = "add", dtype = "uint16";
  long long count = 0, digits = 3, seed = 1;
  bool sft = false;
};

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void append_text(TokenFileWriter& writer, const std::string& text, const std::string& where) {
  TRIDENT_USER_CHECK(!ByteTokenizer::has_special_bytes(text), where,
                     " contains a NUL, STX or ETX byte, which the byte tokenizer reserves for "
                     "PAD, BOS and EOS");
  writer.append(ByteTokenizer::encode_document(text, /*add_bos=*/false, /*add_eos=*/true));
}

// Prompt tokens are context (mask 0); response tokens and the EOS after them are targets.
void append_sft(TokenFileWriter& writer, const std::string& prompt, const std::string& response,
                const std::string& where) {
  TRIDENT_USER_CHECK(!ByteTokenizer::has_special_bytes(prompt + response), where,
                     " contains a NUL, STX or ETX byte, which the byte tokenizer reserves");
  std::vector<int32_t> tokens = ByteTokenizer::encode(prompt);
  std::vector<uint8_t> mask(tokens.size(), 0);
  for (int32_t id : ByteTokenizer::encode_document(response, false, true)) {
    tokens.push_back(id);
    mask.push_back(1);
  }
  writer.append(tokens, mask);
}

void read_text(const DataFlags& flags, TokenFileWriter& writer) {
  std::ifstream in(flags.input);
  TRIDENT_USER_CHECK(in.good(), "--input '", flags.input, "' cannot be opened");
  std::string line, document;
  long long line_number = 0;
  const auto flush = [&]() {
    if (!document.empty()) {
      append_text(writer, document,
                  "--input '" + flags.input + "' before line " + std::to_string(line_number));
    }
    document.clear();
  };
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) {
      flush();
    } else {
      if (!document.empty()) document += '\n';
      document += line;
    }
  }
  flush();
}

std::string string_field(const nlohmann::json& record, const std::string& field,
                         const std::string& where, const std::string& flag) {
  TRIDENT_USER_CHECK(record.is_object() && record.contains(field) && record[field].is_string(),
                     where, " has no string field \"", field, "\" (set ", flag, ")");
  return record[field].get<std::string>();
}

void read_jsonl(const DataFlags& flags, TokenFileWriter& writer) {
  std::ifstream in(flags.input);
  TRIDENT_USER_CHECK(in.good(), "--input '", flags.input, "' cannot be opened");
  std::string line;
  long long line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = "--input '" + flags.input + "' line " + std::to_string(line_number);
    nlohmann::json record;
    try {
      record = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      TRIDENT_USER_FAIL(where, " is not valid JSON: ", e.what());
    }
    if (flags.sft) {
      append_sft(writer, string_field(record, flags.prompt_field, where, "--prompt-field"),
                 string_field(record, flags.response_field, where, "--response-field"), where);
    } else {
      append_text(writer, string_field(record, flags.field, where, "--field"), where);
    }
  }
}

void write_synthetic(const DataFlags& flags, TokenFileWriter& writer) {
  TRIDENT_USER_CHECK(flags.synthetic == "arithmetic", "--synthetic '", flags.synthetic,
                     "' is not a built-in task; valid: arithmetic");
  TRIDENT_USER_CHECK(flags.count > 0, "--count must be positive, got ", flags.count);
  TRIDENT_USER_CHECK(flags.split == "train" || flags.split == "eval", "--split '", flags.split,
                     "'; valid: train, eval");
  TRIDENT_USER_CHECK(flags.seed >= 0, "--seed must be non-negative, got ", flags.seed);
  const trident::io::Split split =
      flags.split == "train" ? trident::io::Split::Train : trident::io::Split::Eval;
  const trident::io::ArithmeticOptions options{static_cast<int>(flags.digits),
                                               trident::io::parse_ops(flags.ops)};
  for (long long i = 0; i < flags.count; ++i) {
    const trident::io::ArithmeticProblem problem = trident::io::make_problem(
        static_cast<uint64_t>(flags.seed), split, static_cast<uint64_t>(i), options);
    if (flags.sft) {
      append_sft(writer, problem.prompt, problem.completion, "arithmetic problem");
    } else {
      append_text(writer, problem.prompt + problem.completion, "arithmetic problem");
    }
  }
}

}  // namespace

TRIDENT_COMMAND(data_command, "data",
                "build a token file from text/JSONL or the synthetic arithmetic task") {
  DataFlags flags;
  trident::launch::ArgParser parser("data");
  parser.add_string("--input", &flags.input, "FILE.txt (blank-line separated) or FILE.jsonl");
  parser.add_string("--output", &flags.output, "token file to write (.bin)");
  parser.add_string("--field", &flags.field, "JSONL text field for pretraining data (text)");
  parser.add_bool("--sft", &flags.sft, "write a loss mask: only responses/completions count");
  parser.add_string("--prompt-field", &flags.prompt_field,
                    "JSONL prompt field with --sft (prompt)");
  parser.add_string("--response-field", &flags.response_field,
                    "JSONL response field with --sft (response)");
  parser.add_string("--synthetic", &flags.synthetic,
                    "built-in task instead of --input: arithmetic");
  parser.add_int("--count", &flags.count, "number of synthetic problems");
  parser.add_int("--digits", &flags.digits, "operand digits of the arithmetic task (3)");
  parser.add_int("--seed", &flags.seed, "seed of the synthetic task (1)");
  parser.add_string("--split", &flags.split, "synthetic split: train | eval (train)");
  parser.add_string("--ops", &flags.ops,
                    "arithmetic operations, comma-separated: add,sub,mul (add)");
  parser.add_string("--dtype", &flags.dtype, "token storage: uint16 | uint32 (uint16)");
  if (!parser.parse(args)) return 0;

  TRIDENT_USER_CHECK(!flags.output.empty(), "--output is required\n", parser.usage());
  TRIDENT_USER_CHECK(flags.input.empty() != flags.synthetic.empty(),
                     "give exactly one of --input FILE or --synthetic arithmetic\n",
                     parser.usage());
  TRIDENT_USER_CHECK(flags.dtype == "uint16" || flags.dtype == "uint32", "--dtype '", flags.dtype,
                     "'; valid: uint16, uint32");
  const bool jsonl = ends_with(flags.input, ".jsonl") || ends_with(flags.input, ".json");
  TRIDENT_USER_CHECK(!flags.sft || !flags.synthetic.empty() || jsonl,
                     "--sft with --input needs a .jsonl file with prompt and response fields");

  trident::io::TokenFileOptions options;
  options.dtype =
      flags.dtype == "uint16" ? trident::io::TokenDType::U16 : trident::io::TokenDType::U32;
  options.with_loss_mask = flags.sft;
  options.vocab_size = ByteTokenizer::kVocabSize;
  TokenFileWriter writer(flags.output, options);
  if (!flags.synthetic.empty()) {
    write_synthetic(flags, writer);
  } else if (jsonl) {
    read_jsonl(flags, writer);
  } else {
    read_text(flags, writer);
  }
  writer.finish();
  std::printf("wrote %s: %llu documents, %llu tokens (%s%s)\n", flags.output.c_str(),
              static_cast<unsigned long long>(writer.num_documents()),
              static_cast<unsigned long long>(writer.num_tokens()), flags.dtype.c_str(),
              flags.sft ? ", loss mask" : "");
  return 0;
}
