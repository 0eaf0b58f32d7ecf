#pragma once
// Metrics as JSON Lines: one object per line, flushed after each, so a run that dies keeps
// every step it logged and `tail -f` / pandas.read_json(lines=True) see them at once.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace trident::io {

class JsonlWriter {
 public:
  // append = false starts a new file; true continues an existing one (a resumed run).
  explicit JsonlWriter(std::string path, bool append = true);
  ~JsonlWriter();
  JsonlWriter(const JsonlWriter&) = delete;
  JsonlWriter& operator=(const JsonlWriter&) = delete;

  // Throws if `record` is not an object or cannot be written.
  void write(const nlohmann::json& record);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace trident::io
