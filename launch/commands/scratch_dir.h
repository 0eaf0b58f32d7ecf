#pragma once
// A benchmark's scratch folder in the temporary directory, named after the command and the
// process, removed when the object goes: also when the benchmark fails, since what it holds
// (a model's weights) can be gigabytes.
#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace trident::launch {

class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name)
      : path_(std::filesystem::temp_directory_path() /
              ("trident_" + name + "_" + std::to_string(getpid()))) {}
  ~ScratchDir() {
    std::error_code ignored;  // a destructor cannot report; the folder is a temporary one
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  // The folder (created by the first writer), and a file in it.
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace trident::launch
