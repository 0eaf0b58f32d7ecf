#include "runtime/io/jsonl.h"

#include <cerrno>
#include <cstring>

#include "runtime/core/error.h"

namespace trident::io {

JsonlWriter::JsonlWriter(std::string path, bool append) : path_(std::move(path)) {
  file_ = std::fopen(path_.c_str(), append ? "a" : "w");
  TRIDENT_USER_CHECK(file_ != nullptr, "cannot open metrics file '", path_,
                     "': ", std::strerror(errno), " (logging.metrics_path)");
}

JsonlWriter::~JsonlWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

void JsonlWriter::write(const nlohmann::json& record) {
  TRIDENT_CHECK(record.is_object(), "a metrics record must be a JSON object, got ", record.dump());
  // Non-finite numbers become null (JSON has no NaN); invalid UTF-8 is replaced, not thrown.
  const std::string line =
      record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  const bool ok =
      std::fwrite(line.data(), 1, line.size(), file_) == line.size() && std::fflush(file_) == 0;
  TRIDENT_CHECK_IO(ok, "writing metrics to '", path_, "' failed: ", std::strerror(errno));
}

}  // namespace trident::io
