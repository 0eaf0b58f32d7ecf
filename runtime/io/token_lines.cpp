#include "runtime/io/token_lines.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "runtime/core/error.h"

namespace trident::io {

std::vector<std::vector<int32_t>> read_token_lines(const std::string& path, int64_t vocab,
                                                   const std::string& flag) {
  std::ifstream in(path);
  TRIDENT_USER_CHECK(in.good(), flag, ": cannot open '", path, "'");
  std::vector<std::vector<int32_t>> sequences;
  std::string line;
  int64_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    std::istringstream words(line);
    std::vector<int32_t> ids;
    std::string word;
    while (words >> word) {
      char* end = nullptr;
      const long long id = std::strtoll(word.c_str(), &end, 10);
      TRIDENT_USER_CHECK(end && *end == '\0', path, ":", line_number, ": '", word,
                         "' is not a token id (space-separated integers expected)");
      TRIDENT_USER_CHECK(id >= 0 && id < vocab, path, ":", line_number, ": token id ", id,
                         " is outside the vocabulary [0, ", vocab, ")");
      ids.push_back(static_cast<int32_t>(id));
    }
    if (!ids.empty()) sequences.push_back(std::move(ids));
  }
  TRIDENT_USER_CHECK(!sequences.empty(), flag, ": '", path, "' holds no sequences");
  return sequences;
}

}  // namespace trident::io
