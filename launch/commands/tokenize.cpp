// `trident tokenize`: UTF-8 text on stdin -> token ids as a JSON array on stdout, or the other
// way with --decode, so any user can compare Trident's ids with another tokenizer's.
//
//   echo "Hello 你好" | trident tokenize --tokenizer tokenizer.json
//   echo "[19923, 223]" | trident tokenize --tokenizer tokenizer.json --decode
//   trident tokenize --config small < text.txt          # the config's data.tokenizer
//
// Invalid UTF-8 on stdin is replaced with U+FFFD before encoding (the ids are those of the
// repaired text); --decode writes the exact bytes the ids spell. --stats prints the input size,
// the number of ids and the encoding speed (wall clock and CPU time) on stderr.
#include <time.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "launch/cli.h"
#include "runtime/config/config.h"
#include "runtime/core/error.h"
#include "runtime/io/text_tokenizer.h"

namespace {

double thread_cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

std::string read_stdin() {
  std::ios::sync_with_stdio(false);
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

std::vector<int32_t> parse_ids(const std::string& text) {
  nlohmann::json ids;
  try {
    ids = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    TRIDENT_USER_FAIL("--decode reads a JSON array of token ids on stdin; it is not JSON (",
                      e.what(), ")");
  }
  TRIDENT_USER_CHECK(ids.is_array(), "--decode reads a JSON array of token ids on stdin, got a ",
                     ids.type_name());
  std::vector<int32_t> out;
  out.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    TRIDENT_USER_CHECK(ids[i].is_number_integer() && ids[i].get<int64_t>() >= 0 &&
                           ids[i].get<int64_t>() < (int64_t{1} << 31),
                       "--decode: element ", i, " (", ids[i].dump(),
                       ") is not a non-negative integer id");
    out.push_back(static_cast<int32_t>(ids[i].get<int64_t>()));
  }
  return out;
}

}  // namespace

TRIDENT_COMMAND(tokenize_command, "tokenize",
                "text on stdin -> token ids as JSON (or --decode ids -> text)") {
  std::string tokenizer_path, config_name;
  bool decode = false, stats = false, bos = false, eos = false;
  trident::launch::ArgParser parser("tokenize");
  parser.add_string("--tokenizer", &tokenizer_path,
                    "tokenizer.json of a Hugging Face byte-level BPE, or \"byte\"");
  parser.add_string("--config", &config_name,
                    "take data.tokenizer from this preset or textproto instead");
  parser.add_bool("--decode", &decode, "read a JSON array of ids, write the text they spell");
  parser.add_bool("--bos", &bos, "start the ids with the tokenizer's BOS token");
  parser.add_bool("--eos", &eos, "end the ids with the tokenizer's EOS token");
  parser.add_bool("--stats", &stats, "print bytes, ids and encoding speed on stderr");
  if (!parser.parse(args)) return 0;
  TRIDENT_USER_CHECK(tokenizer_path.empty() != config_name.empty(),
                     "give exactly one of --tokenizer FILE or --config NAME\n", parser.usage());
  if (!config_name.empty()) {
    const auto config =
        trident::config::load_config(trident::config::resolve_config_path(config_name));
    tokenizer_path = config.data().tokenizer();
  }
  auto tokenizer = trident::io::open_tokenizer(tokenizer_path);

  const std::string input = read_stdin();
  if (decode) {
    const std::string text = tokenizer->decode(parse_ids(input));
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }
  TRIDENT_USER_CHECK(!bos || tokenizer->bos_id() >= 0, "--bos: tokenizer ", tokenizer->name(),
                     " has no BOS token (tokenizer_config.json's bos_token)");
  TRIDENT_USER_CHECK(!eos || tokenizer->eos_id() >= 0, "--eos: tokenizer ", tokenizer->name(),
                     " has no EOS token (tokenizer_config.json's eos_token)");
  std::vector<int32_t> ids;
  ids.reserve(input.size() / 3 + 2);  // about 3 bytes per id for mixed text
  if (bos) ids.push_back(tokenizer->bos_id());
  const auto wall_start = std::chrono::steady_clock::now();
  const double cpu_start = thread_cpu_seconds();
  tokenizer->encode(input, ids);
  const double cpu = thread_cpu_seconds() - cpu_start;
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  if (eos) ids.push_back(tokenizer->eos_id());

  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(ids[i]);
  }
  out += "]\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  if (stats) {
    const double mb = static_cast<double>(input.size()) / 1e6;
    std::fprintf(
        stderr,
        "tokenize: %zu bytes -> %zu ids (%.3f bytes/id) in %.3f s wall, %.3f s CPU: "
        "%.2f MB/s wall, %.2f MB/s per core (CPU time)\n",
        input.size(), ids.size(),
        ids.empty() ? 0.0 : static_cast<double>(input.size()) / static_cast<double>(ids.size()),
        wall, cpu, wall > 0 ? mb / wall : 0.0, cpu > 0 ? mb / cpu : 0.0);
  }
  return 0;
}
