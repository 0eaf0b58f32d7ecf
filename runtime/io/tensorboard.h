#pragma once
// Writes TensorBoard event files (events.out.tfevents.<time>.<host>) with scalar summaries,
// so `tensorboard --logdir` shows loss, lr, throughput and load balance over steps.
#include <cstdint>
#include <fstream>
#include <string>

namespace trident::io {

class TensorBoardWriter {
 public:
  // Creates the directory if needed and writes the file-version header event.
  explicit TensorBoardWriter(const std::string& directory);
  void add_scalar(const std::string& tag, double value, int64_t step);
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& payload);
  std::string path_;
  std::ofstream out_;
};

}  // namespace trident::io
