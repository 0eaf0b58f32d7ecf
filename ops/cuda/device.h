#pragma once
// CUDA device discovery for the op library and its tests.
#include <string>

namespace trident::ops::cuda {

struct DeviceInfo {
  bool available = false;
  std::string reason;  // why no device is usable (driver missing, no GPU, ...)
  std::string name;
  int compute_capability = 0;  // e.g. 90
  int multiprocessors = 0;
};

// Never throws: a machine without a GPU returns available=false with the reason.
DeviceInfo query_device();

}  // namespace trident::ops::cuda
