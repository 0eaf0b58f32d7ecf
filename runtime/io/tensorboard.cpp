#include "runtime/io/tensorboard.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "runtime/core/error.h"
#include "runtime/io/crc32c.h"
#include "runtime/io/tensorboard_event.pb.h"

namespace trident::io {

namespace {
double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void put_le(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xffu));
}
}  // namespace

TensorBoardWriter::TensorBoardWriter(const std::string& directory) {
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  TRIDENT_USER_CHECK(!ec, "logging.tensorboard_dir: cannot create '", directory, "': ", ec.message());
  char host[256] = "localhost";
  gethostname(host, sizeof(host) - 1);
  path_ = directory + "/events.out.tfevents." +
          std::to_string(static_cast<long long>(wall_seconds())) + "." + host + ".rank" +
          std::to_string(current_rank());
  out_.open(path_, std::ios::binary | std::ios::trunc);
  TRIDENT_CHECK_IO(out_.good(), "cannot open TensorBoard event file ", path_);
  tensorboard::Event header;
  header.set_wall_time(wall_seconds());
  header.set_file_version("brain.Event:2");
  write_record(header.SerializeAsString());
  flush();
}

void TensorBoardWriter::add_scalar(const std::string& tag, double value, int64_t step) {
  tensorboard::Event event;
  event.set_wall_time(wall_seconds());
  event.set_step(step);
  tensorboard::SummaryValue* entry = event.mutable_summary()->add_value();
  entry->set_tag(tag);
  entry->set_simple_value(static_cast<float>(value));
  write_record(event.SerializeAsString());
}

void TensorBoardWriter::flush() { out_.flush(); }

// TFRecord framing: u64 length, u32 masked crc(length), payload, u32 masked crc(payload).
void TensorBoardWriter::write_record(const std::string& payload) {
  std::string frame;
  put_le(frame, payload.size(), 8);
  const uint32_t length_crc = masked_crc32c(frame.data(), 8);
  put_le(frame, length_crc, 4);
  frame += payload;
  put_le(frame, masked_crc32c(payload.data(), payload.size()), 4);
  out_.write(frame.data(), static_cast<std::streamsize>(frame.size()));
  TRIDENT_CHECK_IO(out_.good(), "write to TensorBoard event file ", path_, " failed");
}

}  // namespace trident::io
