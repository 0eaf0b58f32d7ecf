// The expert permutation: a stable counting sort of the T·k slots by expert, in three kernels
// (count per chunk, scan, place), then row gathers and scatters that need no atomics.
#include "ops/cuda/kernel_utils.h"
#include "ops/cuda/router.h"

namespace trident::ops::cuda {
namespace {

using detail::kWarp;

constexpr int kChunk = 1024;  // slots per block in the counting kernels (one per thread)
constexpr int kThreads = 256;

// counts[chunk · (E+1) + e] = slots of the chunk routed to e; entry E counts invalid indices.
__global__ void count_kernel(const int32_t* experts_of_slot, int64_t slots, int experts,
                             int32_t* counts) {
  __shared__ int32_t local[kMaxRouterExperts + 1];
  for (int e = threadIdx.x; e <= experts; e += blockDim.x) local[e] = 0;
  __syncthreads();
  const int64_t slot = blockIdx.x * int64_t{kChunk} + threadIdx.x;
  if (slot < slots) {
    const int32_t e = experts_of_slot[slot];
    atomicAdd(&local[(e >= 0 && e < experts) ? e : experts], 1);
  }
  __syncthreads();
  for (int e = threadIdx.x; e <= experts; e += blockDim.x)
    counts[blockIdx.x * int64_t{experts + 1} + e] = local[e];
}

// One block: totals per expert, their exclusive scan, then each chunk's first row per expert
// (written over the counts).
__global__ void scan_kernel(int32_t* counts, int64_t chunks, int experts, int32_t* totals) {
  __shared__ int32_t offset_of[kMaxRouterExperts + 1];
  const int e = threadIdx.x;
  int32_t total = 0;
  if (e <= experts)
    for (int64_t c = 0; c < chunks; ++c) total += counts[c * (experts + 1) + e];
  if (e <= experts) {
    totals[e] = total;
    offset_of[e] = total;
  }
  __syncthreads();
  if (e == 0) {
    int32_t running = 0;
    for (int x = 0; x < experts; ++x) {
      const int32_t count = offset_of[x];
      offset_of[x] = running;
      running += count;
    }
  }
  __syncthreads();
  if (e < experts) {
    int32_t running = offset_of[e];
    for (int64_t c = 0; c < chunks; ++c) {
      int32_t& cell = counts[c * (experts + 1) + e];
      const int32_t count = cell;
      cell = running;
      running += count;
    }
  }
}

// Places each slot: its row is the chunk's first row for its expert plus the number of earlier
// slots of the chunk with the same expert. Warps take turns so earlier slots go first.
__global__ void place_kernel(const int32_t* experts_of_slot, int64_t slots, int experts,
                             int64_t top_k, const int32_t* first_rows, int32_t* slot_to_row,
                             int32_t* row_to_token) {
  __shared__ int32_t next_row[kMaxRouterExperts];
  for (int e = threadIdx.x; e < experts; e += blockDim.x)
    next_row[e] = first_rows[blockIdx.x * int64_t{experts + 1} + e];
  __syncthreads();
  const int64_t slot = blockIdx.x * int64_t{kChunk} + threadIdx.x;
  const int lane = threadIdx.x % kWarp;
  const int warp = threadIdx.x / kWarp;
  const bool valid = slot < slots;
  const int32_t e = valid ? experts_of_slot[slot] : -1;
  const bool placed = valid && e >= 0 && e < experts;
  for (int turn = 0; turn < static_cast<int>(blockDim.x) / kWarp; ++turn) {
    if (warp == turn) {
      // Lanes with the same expert form one group; unplaced lanes get a group of their own.
      const unsigned peers = __match_any_sync(0xffffffffu, placed ? e : -1 - lane);
      const unsigned earlier = peers & ((1u << lane) - 1u);
      if (placed) {
        const int32_t row = next_row[e] + __popc(earlier);
        slot_to_row[slot] = row;
        row_to_token[row] = static_cast<int32_t>(slot / top_k);
      }
      __syncwarp();
      if (placed && lane == 31 - __clz(peers)) next_row[e] += __popc(peers);
    }
    __syncthreads();
  }
}

__global__ void gather_rows_kernel(const float* x, const int32_t* row_to_token, float* out,
                                   int64_t dim) {
  const int64_t row = blockIdx.x;
  const float* src = x + int64_t{row_to_token[row]} * dim;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) out[row * dim + d] = src[d];
}

// dx[t] (=|+=) Σ_j dout[slot_to_row[t·k + j]]: one block per token, so no atomics.
__global__ void sum_slots_kernel(const float* dout, const int32_t* slot_to_row, float* dx,
                                 int64_t top_k, int64_t dim, bool accumulate) {
  const int64_t t = blockIdx.x;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
    float sum = accumulate ? dx[t * dim + d] : 0.0f;
    for (int64_t j = 0; j < top_k; ++j) sum += dout[int64_t{slot_to_row[t * top_k + j]} * dim + d];
    dx[t * dim + d] = sum;
  }
}

__global__ void combine_kernel(const float* y, const float* weights, const int32_t* slot_to_row,
                               float* out, int64_t top_k, int64_t dim) {
  const int64_t t = blockIdx.x;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
    float sum = 0.0f;
    for (int64_t j = 0; j < top_k; ++j)
      sum += weights[t * top_k + j] * y[int64_t{slot_to_row[t * top_k + j]} * dim + d];
    out[t * dim + d] = sum;
  }
}

__global__ void combine_backward_kernel(const float* dout, const float* y, const float* weights,
                                        const int32_t* slot_to_row, float* dy, float* dweights,
                                        int64_t top_k, int64_t dim) {
  __shared__ float scratch[kWarp];
  const int64_t t = blockIdx.x;
  for (int64_t j = 0; j < top_k; ++j) {
    const int64_t row = slot_to_row[t * top_k + j];
    const float w = weights[t * top_k + j];
    float dot = 0.0f;
    for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
      const float g = dout[t * dim + d];
      dy[row * dim + d] = w * g;
      dot += g * y[row * dim + d];
    }
    dot = detail::block_sum(dot, scratch);
    if (threadIdx.x == 0) dweights[t * top_k + j] = dot;
  }
}

void expect_plan(const PermutePlan& plan) {
  detail::expect_dtype(plan.slot_to_row, DType::I32, "permute plan slot_to_row");
  detail::expect_dtype(plan.row_to_token, DType::I32, "permute plan row_to_token");
  detail::expect_numel(plan.slot_to_row, plan.tokens * plan.top_k, "permute plan slot_to_row");
}

int64_t row_dim(const Tensor& t, int64_t rows, const char* what) {
  detail::expect_dtype(t, DType::F32, what);
  TRIDENT_CHECK(rows > 0 && t.numel() % rows == 0, what, " ", t.describe(), " does not have ",
                rows, " rows");
  return t.numel() / rows;
}

void check_indices(const Tensor& indices, int64_t experts) {
  detail::expect_dtype(indices, DType::I32, "router indices");
  TRIDENT_CHECK(indices.dim() == 2, "router indices must be [T, k], got ", indices.describe());
  TRIDENT_CHECK(experts >= 1 && experts <= kMaxRouterExperts, "permute supports 1..",
                kMaxRouterExperts, " experts, got ", experts);
}

// Each chunk's count per expert (then, after the scan, its first row per expert) and the totals
// [experts + 1] (the last: slots outside [0, experts)), in stream-ordered scratch.
struct SlotCounts {
  SlotCounts(const Tensor& indices, int experts, cudaStream_t stream)
      : chunks((indices.numel() + kChunk - 1) / kChunk),
        counts(static_cast<size_t>(chunks * (experts + 1)) * sizeof(int32_t), stream),
        totals(static_cast<size_t>(experts + 1) * sizeof(int32_t), stream) {
    count_kernel<<<static_cast<unsigned>(chunks), kChunk, 0, stream>>>(
        indices.data<int32_t>(), indices.numel(), experts, per_chunk());
    TRIDENT_CHECK_LAUNCH();
    scan_kernel<<<1, static_cast<unsigned>(((experts + 1 + kWarp - 1) / kWarp) * kWarp), 0,
                  stream>>>(per_chunk(), chunks, experts, total());
    TRIDENT_CHECK_LAUNCH();
  }
  int32_t* per_chunk() const { return static_cast<int32_t*>(counts.get()); }
  int32_t* total() const { return static_cast<int32_t*>(totals.get()); }

  // The totals on the host, after the work queued so far on `stream` (a synchronisation).
  std::vector<int64_t> read(int experts, cudaStream_t stream) const {
    std::vector<int32_t> host(static_cast<size_t>(experts + 1));
    TRIDENT_CHECK_CUDA(cudaMemcpyAsync(host.data(), total(), host.size() * sizeof(int32_t),
                                       cudaMemcpyDeviceToHost, stream));
    TRIDENT_CHECK_CUDA(cudaStreamSynchronize(stream));
    TRIDENT_CHECK(host[static_cast<size_t>(experts)] == 0, host[static_cast<size_t>(experts)],
                  " router indices lie outside [0, ", experts, ")");
    return std::vector<int64_t>(host.begin(), host.end() - 1);
  }

  int64_t chunks;
  detail::StreamScratch counts;
  detail::StreamScratch totals;
};

}  // namespace

std::vector<int64_t> count_per_expert(const Tensor& indices, int64_t experts, cudaStream_t stream) {
  check_indices(indices, experts);
  if (indices.numel() == 0) return std::vector<int64_t>(static_cast<size_t>(experts), 0);
  const int e = static_cast<int>(experts);
  return SlotCounts(indices, e, stream).read(e, stream);
}

PermutePlan make_permute_plan(const Tensor& indices, int64_t experts, cudaStream_t stream) {
  check_indices(indices, experts);
  PermutePlan plan;
  plan.tokens = indices.size(0);
  plan.top_k = indices.size(1);
  const int64_t slots = indices.numel();
  plan.slot_to_row = Tensor::empty({slots}, DType::I32, Device::CUDA);
  plan.row_to_token = Tensor::empty({slots}, DType::I32, Device::CUDA);
  plan.tokens_per_expert.assign(static_cast<size_t>(experts), 0);
  if (slots == 0) return plan;

  const int e = static_cast<int>(experts);
  const SlotCounts counts(indices, e, stream);
  place_kernel<<<static_cast<unsigned>(counts.chunks), kChunk, 0, stream>>>(
      indices.data<int32_t>(), slots, e, plan.top_k, counts.per_chunk(),
      plan.slot_to_row.data<int32_t>(), plan.row_to_token.data<int32_t>());
  TRIDENT_CHECK_LAUNCH();
  plan.tokens_per_expert = counts.read(e, stream);
  return plan;
}

void permute_forward(const PermutePlan& plan, const Tensor& x, Tensor& out, cudaStream_t stream) {
  expect_plan(plan);
  if (plan.tokens == 0) return;
  const int64_t dim = row_dim(x, plan.tokens, "permute input");
  detail::expect_dtype(out, DType::F32, "permute output");
  detail::expect_numel(out, plan.tokens * plan.top_k * dim, "permute output");
  gather_rows_kernel<<<static_cast<unsigned>(plan.tokens * plan.top_k), kThreads, 0, stream>>>(
      x.data<float>(), plan.row_to_token.data<int32_t>(), out.data<float>(), dim);
  TRIDENT_CHECK_LAUNCH();
}

void permute_backward(const PermutePlan& plan, const Tensor& dout, Tensor& dx, bool accumulate,
                      cudaStream_t stream) {
  expect_plan(plan);
  if (plan.tokens == 0) return;
  const int64_t dim = row_dim(dx, plan.tokens, "permute dx");
  detail::expect_dtype(dout, DType::F32, "permute dout");
  detail::expect_numel(dout, plan.tokens * plan.top_k * dim, "permute dout");
  sum_slots_kernel<<<static_cast<unsigned>(plan.tokens), kThreads, 0, stream>>>(
      dout.data<float>(), plan.slot_to_row.data<int32_t>(), dx.data<float>(), plan.top_k, dim,
      accumulate);
  TRIDENT_CHECK_LAUNCH();
}

void unpermute_forward(const PermutePlan& plan, const Tensor& y, const Tensor& weights,
                       Tensor& out, cudaStream_t stream) {
  expect_plan(plan);
  if (plan.tokens == 0) return;
  const int64_t dim = row_dim(out, plan.tokens, "unpermute output");
  detail::expect_dtype(y, DType::F32, "unpermute y");
  detail::expect_dtype(weights, DType::F32, "unpermute weights");
  detail::expect_numel(y, plan.tokens * plan.top_k * dim, "unpermute y");
  detail::expect_numel(weights, plan.tokens * plan.top_k, "unpermute weights");
  combine_kernel<<<static_cast<unsigned>(plan.tokens), kThreads, 0, stream>>>(
      y.data<float>(), weights.data<float>(), plan.slot_to_row.data<int32_t>(), out.data<float>(),
      plan.top_k, dim);
  TRIDENT_CHECK_LAUNCH();
}

void unpermute_backward(const PermutePlan& plan, const Tensor& dout, const Tensor& y,
                        const Tensor& weights, Tensor& dy, Tensor& dweights, cudaStream_t stream) {
  expect_plan(plan);
  if (plan.tokens == 0) return;
  const int64_t dim = row_dim(dout, plan.tokens, "unpermute dout");
  detail::expect_dtype(y, DType::F32, "unpermute y");
  detail::expect_dtype(weights, DType::F32, "unpermute weights");
  detail::expect_dtype(dy, DType::F32, "unpermute dy");
  detail::expect_dtype(dweights, DType::F32, "unpermute dweights");
  detail::expect_numel(y, plan.tokens * plan.top_k * dim, "unpermute y");
  detail::expect_numel(dy, plan.tokens * plan.top_k * dim, "unpermute dy");
  detail::expect_numel(weights, plan.tokens * plan.top_k, "unpermute weights");
  detail::expect_numel(dweights, plan.tokens * plan.top_k, "unpermute dweights");
  combine_backward_kernel<<<static_cast<unsigned>(plan.tokens), kThreads, 0, stream>>>(
      dout.data<float>(), y.data<float>(), weights.data<float>(),
      plan.slot_to_row.data<int32_t>(), dy.data<float>(), dweights.data<float>(), plan.top_k,
      dim);
  TRIDENT_CHECK_LAUNCH();
}

}  // namespace trident::ops::cuda
