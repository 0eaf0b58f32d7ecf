#pragma once
// A model holding a NaN or an infinity is never written: checkpoints and Hugging Face exports
// look at every value they are about to store and refuse, naming the first such tensor and the
// rank holding it, before any file is created. (A diverged run's last good checkpoint is then
// still the newest one in its directory.)
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "models/deepseek_v3/parameters.h"
#include "runtime/io/checkpoint.h"

namespace trident::io {

// Index of the first NaN or infinity in data[0, n), or -1 if every value is finite.
int64_t first_non_finite(const float* data, int64_t n);

struct NonFiniteTensor {
  bool found = false;
  std::string tensor;    // HF name
  bool moments = false;  // in the AdamW moments, not the weights
  int rank = 0;          // the rank (of the communicator searched) that holds it
};

// Serial: the first parameter of `store` (registry order) with a non-finite value.
NonFiniteTensor find_non_finite(const models::ParameterStore& store);
// Collective over `comm`: every rank's store and moment ranges; the same answer on every rank
// (the lowest rank among those holding the first such tensor of the registry).
NonFiniteTensor find_non_finite(const models::ParameterStore& store,
                                const std::vector<MomentRange>& moments, MPI_Comm comm);

// UserError "refusing to write <what>: tensor '...' holds NaN or infinite values ..." if found.
void refuse_non_finite(const NonFiniteTensor& bad, const std::string& what);

}  // namespace trident::io
