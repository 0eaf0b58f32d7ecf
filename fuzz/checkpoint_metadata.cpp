// Fuzz target: a checkpoint's metadata, the root attributes every reader parses (--resume,
// `grpo --init`, `trident convert`): format, version, step, seed, data position, RNG state, the
// stored config, the layout, the run id, the trainer state and the checksum over them. The input
// describes a state (stored config text included) that is written as a save writes it, into an HDF5
// file kept in memory, then tampered with: attributes removed, retyped, or overwritten with fuzzed
// values. Untampered, the reader must give back exactly what was written; tampered, it may refuse,
// never crash or accept a changed value silently.
// (The HDF5 container format itself is HDF5's to parse and is not fuzzed here.)
#include <hdf5.h>

#include <algorithm>

#include "fuzz/fuzz_util.h"
#include "runtime/config/config.h"
#include "runtime/io/checkpoint_attributes.h"
#include "runtime/io/checkpoint_hdf5.h"

using namespace trident;

namespace {

constexpr const char* kNames[] = {
    "format_version", "format",        "step",      "seed",          "data_position",  "rng_state",
    "config",         "layout_pp",     "layout_dp", "layout_tp",     "layout_ep",      "layout_etp",
    "layout_zero1",   "has_optimizer", "run_id",    "trainer_state", "metadata_crc32c"};
constexpr size_t kCount = sizeof(kNames) / sizeof(kNames[0]);

// Strings a save stores never hold a NUL (HDF5 strings end at the first one): the writer's
// contract, which the generated state keeps. Tampered values may hold anything.
std::string without_nul(std::string text) {
  text.erase(std::remove(text.begin(), text.end(), '\0'), text.end());
  return text;
}

io::CheckpointState fuzzed_state(fuzz::ByteReader& in) {
  io::CheckpointState state;
  state.step = in.take<int64_t>();
  state.seed = in.take<uint64_t>();
  state.data_position = in.take<int64_t>();
  state.rng_state = without_nul(in.text(32));
  state.run_id = without_nul(in.text(32));
  state.trainer_state = without_nul(in.text(32));
  state.layout.pp = in.take<int8_t>();
  state.layout.dp = in.take<int8_t>();
  state.layout.tp = in.take<int8_t>();
  state.layout.ep = in.take<int8_t>();
  state.layout.etp = in.take<int8_t>();
  state.layout.zero1 = in.flag();
  try {
    state.config = config::parse_config_text(in.text(), "fuzz:config");
  } catch (const UserError&) {
    state.config = config::default_config();
  }
  return state;
}

// Replaces attribute `name` by a fuzzed value of a fuzzed type, or removes it.
void tamper(hid_t file, const char* name, fuzz::ByteReader& in) {
  if (H5Aexists(file, name) > 0) H5Adelete(file, name);
  switch (in.take<uint8_t>() % 4) {
    case 0:
      return;  // removed
    case 1:
      io::h5::write_attr_i64(file, name, in.take<int64_t>());
      return;
    case 2:
      io::h5::write_attr_u32(file, name, in.take<uint32_t>());
      return;
    default:
      io::h5::write_attr_string(file, name, without_nul(in.text()));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::ByteReader in(data, size);
  const io::CheckpointState state = fuzzed_state(in);
  const bool has_optimizer = in.flag();
  const int tamperings = in.take<uint8_t>() % 4;

  const hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_fapl_core(fapl, 1 << 16, /*backing_store=*/0);
  io::h5::Handle file(H5Fcreate("fuzz-metadata.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl), H5Fclose);
  H5Pclose(fapl);
  fuzz::require(file.get() >= 0, "creating the in-memory HDF5 file failed");
  io::write_state_attributes(file, state, has_optimizer);
  bool tampered = false;
  for (int i = 0; i < tamperings; ++i) {
    tamper(file, kNames[in.take<uint8_t>() % kCount], in);
    tampered = true;
  }
  bool read = false;
  fuzz::expect_clean([&] {
    const io::CheckpointState back = io::read_state_attributes(file, "fuzz.h5");
    read = true;
    if (tampered) return;
    fuzz::require(back.step == state.step && back.seed == state.seed &&
                      back.data_position == state.data_position &&
                      back.rng_state == state.rng_state && back.run_id == state.run_id &&
                      back.trainer_state == state.trainer_state,
                  "a saved state read back different");
    fuzz::require(config::to_text(back.config) == config::to_text(state.config),
                  "a saved config read back different");
  });
  // Refusing an untampered save is only right where the state itself is out of range.
  fuzz::require(read || tampered || state.step < 0 || state.data_position < 0,
                "refused metadata exactly as a save wrote it");
  return 0;
}
