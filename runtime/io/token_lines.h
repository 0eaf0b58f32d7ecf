#pragma once
// Token-id files as `trident score` and `trident generate --tokens` read them: one sequence per
// line, space-separated integer ids; blank lines are skipped.
#include <cstdint>
#include <string>
#include <vector>

namespace trident::io {

// Every id must lie in [0, vocab); a bad word or id is a user error naming the file, the line
// and the word, and so is a file that cannot be opened or holds no sequence. `flag` names the
// option the path came from ("--tokens").
std::vector<std::vector<int32_t>> read_token_lines(const std::string& path, int64_t vocab,
                                                   const std::string& flag);

}  // namespace trident::io
