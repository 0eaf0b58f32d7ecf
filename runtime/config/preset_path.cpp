// Named presets: "tiny" is configs/tiny.textproto, looked up where a user is likely to have it.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <vector>

#include "runtime/config/config.h"
#include "runtime/core/error.h"

#ifndef TRIDENT_SOURCE_DIR
#define TRIDENT_SOURCE_DIR ""
#endif

namespace trident::config {

namespace fs = std::filesystem;

namespace {

constexpr const char* kExtension = ".textproto";

fs::path executable_dir() {
  std::error_code error;
  const fs::path self = fs::read_symlink("/proc/self/exe", error);
  return error ? fs::path() : self.parent_path();
}

// In order: $TRIDENT_CONFIG_DIR (the user's own), next to an installed binary, the source tree.
std::vector<fs::path> preset_dirs() {
  std::vector<fs::path> dirs;
  if (const char* env = std::getenv("TRIDENT_CONFIG_DIR"); env != nullptr && *env != '\0') {
    dirs.emplace_back(env);
  }
  if (const fs::path exe = executable_dir(); !exe.empty()) dirs.push_back(exe / ".." / "configs");
  if (const std::string source = TRIDENT_SOURCE_DIR; !source.empty()) {
    dirs.push_back(fs::path(source) / "configs");
  }
  return dirs;
}

bool looks_like_path(const std::string& text) {
  return text.find('/') != std::string::npos || fs::path(text).has_extension();
}

}  // namespace

std::string resolve_config_path(const std::string& name_or_path) {
  TRIDENT_USER_CHECK(!name_or_path.empty(),
                     "no config given: pass a preset name (e.g. tiny) or a .textproto path");
  std::error_code error;
  if (fs::is_regular_file(name_or_path, error)) return name_or_path;
  TRIDENT_USER_CHECK(!fs::is_directory(name_or_path, error), "config '", name_or_path,
                     "' is a directory; give a .textproto file or a preset name (e.g. tiny)");
  TRIDENT_USER_CHECK(!looks_like_path(name_or_path), "config file '", name_or_path,
                     "' does not exist");

  const std::vector<fs::path> dirs = preset_dirs();
  for (const fs::path& dir : dirs) {
    const fs::path candidate = dir / (name_or_path + kExtension);
    if (fs::is_regular_file(candidate, error)) return candidate.lexically_normal().string();
  }
  std::set<std::string> available;
  std::string searched;
  for (const fs::path& dir : dirs) {
    searched += (searched.empty() ? "" : ", ") + dir.lexically_normal().string();
    if (!fs::is_directory(dir, error)) continue;
    for (const auto& entry : fs::directory_iterator(dir, error)) {
      if (entry.path().extension() == kExtension) available.insert(entry.path().stem().string());
    }
  }
  std::string names;
  for (const std::string& name : available) names += (names.empty() ? "" : ", ") + name;
  TRIDENT_USER_FAIL("unknown config preset '", name_or_path,
                    "'; available presets: ", names.empty() ? "(none found)" : names, " (searched ",
                    searched, "; set TRIDENT_CONFIG_DIR or pass a path to a .textproto file)");
}

}  // namespace trident::config
