#pragma once
// The checkpoint file's root attributes and group names (docs/checkpoint-format.md), shared by
// the collective writer/reader and the serial converter.
#include <hdf5.h>

#include <string>
#include <vector>

#include "runtime/io/checkpoint.h"
#include "runtime/io/checkpoint_hdf5.h"

namespace trident::io {

inline constexpr const char* kWeights = "/weights";
inline constexpr const char* kExpAvg = "/optimizer/exp_avg";
inline constexpr const char* kExpAvgSq = "/optimizer/exp_avg_sq";
inline constexpr const char* kReferenceWeights = "/reference/weights";
// Every group of datasets a checkpoint may hold (each dataset carries its CRC-32C).
inline constexpr const char* kDatasetGroups[] = {kWeights, kExpAvg, kExpAvgSq, kReferenceWeights};

// Opens a checkpoint read-only for a serial reader; a missing, non-HDF5, truncated or damaged
// file is a UserError naming it and what HDF5 found.
h5::Handle open_checkpoint(const std::string& path);

void write_state_attributes(hid_t file, const CheckpointState& state, bool has_optimizer);
// UserError naming `path` if the file is not a Trident checkpoint of this format version.
CheckpointState read_state_attributes(hid_t file, const std::string& path);
// Names of the datasets directly under `group` (empty if the group does not exist).
std::vector<std::string> dataset_names(hid_t file, const char* group);

}  // namespace trident::io
