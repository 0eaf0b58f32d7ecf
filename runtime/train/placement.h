#pragma once
// Where a run keeps its parameters, and so its activations, gradients and optimizer moments.
//
// train.device = "cuda": the GPU of this process, which must be usable (else one error that
// says why). train.device = "cpu": host memory, or, with TRIDENT_CPU_DEVICE_MEMORY=1, the CPU
// backend's device memory (Device::CPUDevice), which host code may read only through an
// explicit copy: a run in that mode fails, naming the tensor, wherever a GPU run would read
// device memory from the host (docs/streams.md, "The CPU backend's device memory").
#include "runtime/config/trident.pb.h"
#include "runtime/core/dtype.h"

namespace trident::train {

// Refuses a TRIDENT_CPU_DEVICE_MEMORY other than 0 or 1, naming the variable, and
// train.device = "cuda" where no GPU can be used, saying why.
Device training_device(const config::TrainConfig& train);

}  // namespace trident::train
