// The root attributes of a checkpoint and the checksum that covers them (format 2).
//
// Tensors carry their own CRC-32C; the attributes describe them (step, seed, data position,
// the stored config, the writing layout, the run id), and a flipped byte there is as harmful as
// one in a weight: `rope_theta: 10000` read back as `90000` trains or exports a different model.
// So the writer feeds every attribute it writes into one running CRC-32C (name, length, bytes,
// in writing order) and stores it as `metadata_crc32c`; the reader feeds what it reads in the
// same order and refuses a mismatch. Writer and reader sit side by side below so that their
// order cannot drift apart.
#include "runtime/io/checkpoint_attributes.h"

#include <cstring>
#include <filesystem>

#include "runtime/config/config.h"
#include "runtime/core/error.h"
#include "runtime/core/logging.h"
#include "runtime/io/checkpoint_hdf5.h"
#include "runtime/io/crc32c.h"

namespace trident::io {

namespace {

constexpr const char* kMetadataChecksum = "metadata_crc32c";

// A running CRC-32C over (name, value) pairs.
class AttributeDigest {
 public:
  void add(const char* name, const void* bytes, size_t size) {
    crc_ = crc32c(name, std::strlen(name) + 1, crc_);
    const uint64_t length = size;
    crc_ = crc32c(&length, sizeof(length), crc_);
    crc_ = crc32c(bytes, size, crc_);
  }
  void add(const char* name, int64_t value) { add(name, &value, sizeof(value)); }
  void add(const char* name, uint64_t value) { add(name, &value, sizeof(value)); }
  void add(const char* name, const std::string& value) { add(name, value.data(), value.size()); }
  uint32_t value() const { return crc_; }

 private:
  uint32_t crc_ = 0;
};

// Writes an attribute and records it in the digest.
struct DigestingWriter {
  hid_t file;
  AttributeDigest digest;
  void i64(const char* name, int64_t value) {
    h5::write_attr_i64(file, name, value);
    digest.add(name, value);
  }
  void u64(const char* name, uint64_t value) {
    h5::write_attr_u64(file, name, value);
    digest.add(name, value);
  }
  void text(const char* name, const std::string& value) {
    h5::write_attr_string(file, name, value);
    digest.add(name, value);
  }
};

// Reads an attribute and records it in the digest; a missing attribute names the file.
struct DigestingReader {
  hid_t file;
  const std::string& path;
  AttributeDigest digest;
  void require(const char* name) const {
    TRIDENT_USER_CHECK(h5::has_attr(file, name), "checkpoint '", path, "' has no '", name,
                       "' attribute (damaged, or not written by Trident)");
  }
  int64_t i64(const char* name) {
    require(name);
    const int64_t value = h5::read_attr_i64(file, name);
    digest.add(name, value);
    return value;
  }
  uint64_t u64(const char* name) {
    require(name);
    const uint64_t value = h5::read_attr_u64(file, name);
    digest.add(name, value);
    return value;
  }
  std::string text(const char* name) {
    require(name);
    std::string value = h5::read_attr_string(file, name);
    digest.add(name, value);
    return value;
  }
};

}  // namespace

h5::Handle open_checkpoint(const std::string& path) {
  h5::silence_errors();
  std::error_code ec;
  TRIDENT_USER_CHECK(std::filesystem::is_regular_file(path, ec), "checkpoint '", path,
                     "' does not exist or is not a file");
  TRIDENT_USER_CHECK(H5Fis_hdf5(path.c_str()) > 0, "'", path,
                     "' is not an HDF5 file (no HDF5 signature: empty, overwritten, or not a "
                     "checkpoint)");
  const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0) {
    const std::string reason = h5::error_stack_summary();
    TRIDENT_USER_FAIL("checkpoint '", path, "' is truncated or damaged: HDF5 cannot open it",
                      reason.empty() ? "" : " (" + reason + ")");
  }
  return h5::Handle(id, H5Fclose);
}

void write_state_attributes(hid_t file, const CheckpointState& state, bool has_optimizer) {
  DigestingWriter w{file, {}};
  w.i64("format_version", kCheckpointFormatVersion);
  w.text("format", "trident-checkpoint");
  w.i64("step", state.step);
  w.u64("seed", state.seed);
  w.i64("data_position", state.data_position);
  w.text("rng_state", state.rng_state);
  w.text("config", config::to_text(state.config));
  w.i64("layout_pp", state.layout.pp);
  w.i64("layout_dp", state.layout.dp);
  w.i64("layout_tp", state.layout.tp);
  w.i64("layout_ep", state.layout.ep);
  w.i64("layout_etp", state.layout.etp);
  w.i64("layout_zero1", state.layout.zero1 ? 1 : 0);
  w.i64("has_optimizer", has_optimizer ? 1 : 0);
  w.text("run_id", state.run_id);
  w.text("trainer_state", state.trainer_state);
  h5::write_attr_u32(file, kMetadataChecksum, w.digest.value());
}

CheckpointState read_state_attributes(hid_t file, const std::string& path) {
  TRIDENT_USER_CHECK(h5::has_attr(file, "format_version"), "'", path,
                     "' is an HDF5 file but not a Trident checkpoint (no format_version)");
  DigestingReader r{file, path, {}};
  const int64_t version = r.i64("format_version");
  TRIDENT_USER_CHECK(
      version >= kOldestReadableCheckpointFormat && version <= kCheckpointFormatVersion, "'", path,
      "' has checkpoint format ", version, "; this build reads formats ",
      kOldestReadableCheckpointFormat, " to ", kCheckpointFormatVersion);
  const std::string format = r.text("format");
  TRIDENT_USER_CHECK(format == "trident-checkpoint", "'", path, "' has format \"", format,
                     "\", not \"trident-checkpoint\"");
  CheckpointState state;
  state.step = r.i64("step");
  state.seed = r.u64("seed");
  state.data_position = r.i64("data_position");
  state.rng_state = r.text("rng_state");
  const std::string config_text = r.text("config");
  state.layout.pp = r.i64("layout_pp");
  state.layout.dp = r.i64("layout_dp");
  state.layout.tp = r.i64("layout_tp");
  state.layout.ep = r.i64("layout_ep");
  state.layout.etp = r.i64("layout_etp");
  state.layout.zero1 = r.i64("layout_zero1") != 0;
  r.i64("has_optimizer");
  if (version >= 2) {
    state.run_id = r.text("run_id");
    if (version >= 3) state.trainer_state = r.text("trainer_state");
    r.require(kMetadataChecksum);
    const uint32_t stored = h5::read_attr_u32(file, kMetadataChecksum);
    TRIDENT_USER_CHECK(stored == r.digest.value(), "checkpoint '", path,
                       "': metadata checksum mismatch (stored ", stored, ", computed ",
                       r.digest.value(),
                       "): its attributes (step, config, layout, run id) were altered or damaged");
  } else {
    TLOG_WARN("checkpoint '", path, "' has format 1 (written by an older Trident): its step ",
              "and stored config carry no checksum");
  }
  // Parsed only once the checksum holds, so a damaged config is reported as damage.
  state.config = config::parse_config_text(config_text, path + ":config");
  TRIDENT_USER_CHECK(state.step >= 0 && state.data_position >= 0, "checkpoint '", path,
                     "' has step ", state.step, " and data_position ", state.data_position,
                     "; both must be ≥ 0");
  return state;
}

}  // namespace trident::io
