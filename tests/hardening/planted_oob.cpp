// A planted out-of-bounds write, built only in the AddressSanitizer variant (scripts/test.sh
// --sanitize address): it hands TokenFile::copy a destination one token too short, so the
// library's copy loop writes one int32 past a heap buffer. The ctest around it passes only if
// ASan stops the program with a heap-buffer-overflow report naming that write: the proof that
// the sanitizer build catches such a bug in Trident's code, not just in a toy.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <vector>

#include "runtime/io/token_file.h"

int main() {
  namespace fs = std::filesystem;
  const std::string path = (fs::temp_directory_path() / "trident_planted_oob.bin").string();
  {
    trident::io::TokenFileWriter writer(path, {});
    writer.append(std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 8});
    writer.finish();
  }
  const trident::io::TokenFile file(path);
  auto too_short = std::make_unique<int32_t[]>(file.num_tokens() - 1);  // the planted bug
  file.copy(0, file.num_tokens(), too_short.get());
  fs::remove(path);
  std::puts("the out-of-bounds write went unnoticed");
  return 0;
}
