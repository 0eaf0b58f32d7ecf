#pragma once
// A small byte-level BPE tokenizer.json written by the tests: ids 0..255 are the bytes, then
// one token per merge (in merge order), then the added tokens.
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "runtime/io/byte_level.h"

namespace trident::io::testing {

struct TinyTokenizer {
  std::vector<std::pair<std::string, std::string>> merges;  // raw bytes of left and right
  std::vector<std::string> added;                           // contents, ids after the merges
  nlohmann::json pre_tokenizer = nullptr;
  nlohmann::json normalizer = nullptr;

  int32_t merge_id(size_t merge) const { return 256 + static_cast<int32_t>(merge); }
  int32_t added_id(size_t index) const { return 256 + static_cast<int32_t>(merges.size() + index); }

  nlohmann::json json() const {
    nlohmann::json vocab = nlohmann::json::object();
    for (int b = 0; b < 256; ++b)
      vocab[byte_level_encode(std::string(1, static_cast<char>(b)))] = b;
    nlohmann::json merge_list = nlohmann::json::array();
    for (size_t i = 0; i < merges.size(); ++i) {
      const auto& [left, right] = merges[i];
      vocab[byte_level_encode(left + right)] = merge_id(i);
      merge_list.push_back(byte_level_encode(left) + " " + byte_level_encode(right));
    }
    nlohmann::json added_tokens = nlohmann::json::array();
    for (size_t i = 0; i < added.size(); ++i) {
      added_tokens.push_back({{"id", added_id(i)},
                              {"content", added[i]},
                              {"special", true},
                              {"lstrip", false},
                              {"rstrip", false},
                              {"single_word", false},
                              {"normalized", false}});
    }
    return {{"version", "1.0"},
            {"added_tokens", added_tokens},
            {"normalizer", normalizer},
            {"pre_tokenizer", pre_tokenizer},
            {"decoder", {{"type", "ByteLevel"}}},
            {"model",
             {{"type", "BPE"},
              {"dropout", nullptr},
              {"byte_fallback", false},
              {"vocab", vocab},
              {"merges", merge_list}}}};
  }

  void write(const std::string& path, const nlohmann::json& content) const {
    std::ofstream(path) << content.dump();
  }
  void write(const std::string& path) const { write(path, json()); }
};

}  // namespace trident::io::testing
