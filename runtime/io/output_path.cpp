#include "runtime/io/output_path.h"

#include <filesystem>

#include "runtime/core/error.h"

namespace trident::io {

void refuse_output_over_input(const std::string& output, const std::string& input,
                              const std::string& output_flag, const std::string& input_flag) {
  if (output.empty() || input.empty()) return;
  namespace fs = std::filesystem;
  // equivalent() follows links and compares devices and inodes (false when either is missing);
  // the spelled-out comparison catches an input that does not exist (yet) under either name.
  std::error_code ec, out_error, in_error;
  const fs::path out = fs::weakly_canonical(output, out_error);
  const fs::path in = fs::weakly_canonical(input, in_error);
  const bool same = fs::equivalent(output, input, ec) || (!out_error && !in_error && out == in);
  TRIDENT_USER_CHECK(!same, output_flag, " '", output, "' is the same file as ", input_flag, " '",
                     input, "': writing it would destroy the input; give another ", output_flag);
}

}  // namespace trident::io
