#pragma once
// An output that would replace one of the command's own inputs is refused before anything is
// read or written: `trident data --input a.txt --output a.txt` would otherwise swap the source
// text for the token file made from it.
#include <string>

namespace trident::io {

// UserError naming both flags if `output` is the same file as `input` (the same path, another
// spelling of it, or a link to it). Nothing to check when either is empty or `output` does not
// exist yet.
void refuse_output_over_input(const std::string& output, const std::string& input,
                              const std::string& output_flag, const std::string& input_flag);

}  // namespace trident::io
