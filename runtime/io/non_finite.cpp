#include "runtime/io/non_finite.h"

#include <climits>
#include <cstring>
#include <vector>

#include "ops/ops.h"
#include "runtime/core/error.h"

namespace trident::io {

namespace {

constexpr uint32_t kExponent = 0x7f800000u;  // all ones: infinity or NaN

// Whether any value in the block is non-finite: a branch-free OR over the exponent test, which
// the compiler vectorises (a checkpoint's scan must cost little next to its write).
bool block_has_non_finite(const float* data, int64_t n) {
  uint32_t any = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, data + i, sizeof(bits));
    any |= static_cast<uint32_t>((bits & kExponent) == kExponent);
  }
  return any != 0;
}

bool range_has_non_finite(const float* data, int64_t n) {
  constexpr int64_t kBlock = 1 << 16;
  for (int64_t at = 0; at < n; at += kBlock) {
    if (block_has_non_finite(data + at, std::min(kBlock, n - at))) return true;
  }
  return false;
}

// The same for bf16 values (the top half of an fp32: the same exponent test on 16 bits).
bool range_has_non_finite(const bf16* data, int64_t n) {
  uint32_t any = 0;
  for (int64_t i = 0; i < n; ++i) any |= static_cast<uint32_t>((data[i].bits & 0x7f80u) == 0x7f80u);
  return any != 0;
}

bool moments_have_non_finite(const MomentRange& range) {
  const int64_t n = range.flat_end - range.flat_begin;
  if (range.dtype == DType::BF16) {
    return range_has_non_finite(static_cast<const bf16*>(range.exp_avg), n) ||
           range_has_non_finite(static_cast<const bf16*>(range.exp_avg_sq), n);
  }
  return range_has_non_finite(static_cast<const float*>(range.exp_avg), n) ||
         range_has_non_finite(static_cast<const float*>(range.exp_avg_sq), n);
}

// Registry index of the first held tensor with a non-finite weight, or -1.
int first_bad_weight(const models::ParameterStore& store) {
  // Counted where the weights live (an op: one read back to the host for all of them).
  const auto& specs = store.registry().specs();
  std::vector<Tensor> values;
  std::vector<int> registry_index;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (!store.has(specs[i].name)) continue;
    values.push_back(store.get(specs[i].name).value);
    registry_index.push_back(static_cast<int>(i));
  }
  const std::vector<int64_t> counts = ops::count_nonfinite(values);
  for (size_t j = 0; j < counts.size(); ++j) {
    if (counts[j] > 0) return registry_index[j];
  }
  return -1;
}

// Registry index of the first tensor whose moments (within `moments`) are non-finite, or -1.
int first_bad_moment(const models::ParameterStore& store, const std::vector<MomentRange>& moments) {
  const auto& specs = store.registry().specs();
  for (size_t i = 0; i < specs.size(); ++i) {
    if (!store.has(specs[i].name)) continue;
    const models::Parameter& param = store.get(specs[i].name);
    const int64_t lo = param.offset, hi = param.offset + param.value.numel();
    for (const MomentRange& range : moments) {
      const int64_t begin = std::max(lo, range.flat_begin), end = std::min(hi, range.flat_end);
      if (begin >= end) continue;
      if (moments_have_non_finite(range.part(begin, end))) return static_cast<int>(i);
    }
  }
  return -1;
}

}  // namespace

int64_t first_non_finite(const float* data, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, data + i, sizeof(bits));
    if ((bits & kExponent) == kExponent) return i;
  }
  return -1;
}

NonFiniteTensor find_non_finite(const models::ParameterStore& store) {
  NonFiniteTensor bad;
  const int index = first_bad_weight(store);
  if (index < 0) return bad;
  bad.found = true;
  bad.tensor = store.registry().specs()[static_cast<size_t>(index)].name;
  return bad;
}

NonFiniteTensor find_non_finite(const models::ParameterStore& store,
                                const std::vector<MomentRange>& moments, MPI_Comm comm) {
  const int specs = static_cast<int>(store.registry().specs().size());
  // Weights rank before moments: (index, rank) with moments at specs + index; MINLOC picks the
  // first tensor of the registry, then the lowest rank holding it.
  const int weight = first_bad_weight(store);
  const int moment = weight >= 0 ? -1 : first_bad_moment(store, moments);
  struct {
    int index;
    int rank;
  } mine{INT_MAX, 0}, first{INT_MAX, 0};
  MPI_Comm_rank(comm, &mine.rank);
  if (weight >= 0) mine.index = weight;
  if (moment >= 0) mine.index = specs + moment;
  TRIDENT_CHECK_MPI(MPI_Allreduce(&mine, &first, 1, MPI_2INT, MPI_MINLOC, comm));
  NonFiniteTensor bad;
  if (first.index == INT_MAX) return bad;
  bad.found = true;
  bad.moments = first.index >= specs;
  bad.tensor = store.registry().specs()[static_cast<size_t>(first.index % specs)].name;
  bad.rank = first.rank;
  return bad;
}

void refuse_non_finite(const NonFiniteTensor& bad, const std::string& what) {
  if (!bad.found) return;
  TRIDENT_USER_FAIL("refusing to write ", what, ": ", bad.moments ? "the AdamW moments of " : "",
                    "tensor '", bad.tensor, bad.moments ? "' hold" : "' holds",
                    " NaN or infinite values (rank ", bad.rank,
                    "): the model has diverged; nothing was written (lower train.lr, or keep "
                    "train.grad_clip > 0, and resume from the last checkpoint)");
}

}  // namespace trident::io
