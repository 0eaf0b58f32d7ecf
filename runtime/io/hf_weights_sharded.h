#pragma once
// A Hugging Face export written by several ranks at once (pipeline parallelism: each rank holds
// only its stages' parameters). Every rank that holds a tensor no lower rank holds writes it
// into its own shard, model-0000k-of-0000n.safetensors (k counts only the ranks that write
// something, so data-parallel replicas add no files); a tensor held by several ranks (replicas,
// or the MTP copy of the embedding on the last stage) is written once, by the lowest. Rank 0
// then writes model.safetensors.index.json from the shards' headers, and config.json. The
// result loads with load_hf_weights like any sharded HF directory and holds the same tensors,
// the MTP module's shared copies included, as save_hf_weights on one rank.
#include <mpi.h>

#include <string>

#include "runtime/io/hf_weights.h"

namespace trident::io {

// Collective over `comm`. Every rank's store must hold whole tensors (no TP or EP slices).
void save_hf_weights_sharded(const models::ParameterStore& store, const std::string& dir,
                             MPI_Comm comm, const HfExportOptions& options = {});

}  // namespace trident::io
