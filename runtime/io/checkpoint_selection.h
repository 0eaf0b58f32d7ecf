#pragma once
// Which elements of a global tensor one rank reads or writes: a contiguous range of its local
// slice (the whole slice for weights; a ZeRO-1 range for optimizer moments), expressed as a
// union of hyperslabs of the global tensor.
#include <hdf5.h>

#include <cstdint>
#include <vector>

#include "models/deepseek_v3/registry.h"

namespace trident::io {

struct Box {
  std::vector<hsize_t> start;  // global coordinates
  std::vector<hsize_t> count;
};

// Boxes covering local row-major elements [begin, end) of `slice` of a tensor with global
// `shape`, in row-major order (so the selection's element order is the local order).
std::vector<Box> local_range_boxes(const Shape& shape, const models::ShardSlice& slice,
                                   int64_t begin, int64_t end);

// Selects the boxes in `space` (none when empty).
void select_boxes(hid_t space, const std::vector<Box>& boxes);

}  // namespace trident::io
