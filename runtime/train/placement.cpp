#include "runtime/train/placement.h"

#include <cstdlib>
#include <string>

#include "ops/ops.h"
#include "runtime/core/error.h"

namespace trident::train {

Device training_device(const config::TrainConfig& train) {
  if (train.device() == "cuda") {
    const std::string why = ops::cuda_unavailable_reason();
    TRIDENT_USER_CHECK(why.empty(),
                       "train.device = \"cuda\", but this process cannot use a GPU: ", why,
                       ". Set train.device = \"cpu\" to train on the CPU");
    return Device::CUDA;
  }
  const char* setting = std::getenv("TRIDENT_CPU_DEVICE_MEMORY");
  const std::string value = setting == nullptr ? "" : setting;
  TRIDENT_USER_CHECK(value.empty() || value == "0" || value == "1", "TRIDENT_CPU_DEVICE_MEMORY='",
                     value, "' is not 0 or 1 (1 keeps the run's tensors in the CPU backend's ",
                     "device memory, which the host reads only through a copy)");
  return value == "1" ? Device::CPUDevice : Device::CPU;
}

}  // namespace trident::train
