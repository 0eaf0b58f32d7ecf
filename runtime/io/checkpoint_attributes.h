#pragma once
// The checkpoint file's root attributes and group names (docs/checkpoint-format.md), shared by
// the collective writer/reader and the serial converter.
#include <hdf5.h>

#include <string>
#include <vector>

#include "runtime/io/checkpoint.h"

namespace trident::io {

inline constexpr const char* kWeights = "/weights";
inline constexpr const char* kExpAvg = "/optimizer/exp_avg";
inline constexpr const char* kExpAvgSq = "/optimizer/exp_avg_sq";

void write_state_attributes(hid_t file, const CheckpointState& state, bool has_optimizer);
// UserError naming `path` if the file is not a Trident checkpoint of this format version.
CheckpointState read_state_attributes(hid_t file, const std::string& path);
// Names of the datasets directly under `group` (empty if the group does not exist).
std::vector<std::string> dataset_names(hid_t file, const char* group);

}  // namespace trident::io
