#include <cstdint>
#include <memory>
#include <numeric>
#include <string>
#include <utility>

#include "ops/cuda/blas_lt.h"
#include "ops/cuda/blas_lt_api.h"
#include "ops/cuda/grouped_gemm.h"
#include "ops/cuda/kernel_utils.h"
#include "ops/cuda/linear.h"
#include "ops/cuda/matmul.h"

namespace trident::ops::cuda {
namespace {

using detail::blocks_for;

// A cuBLASLt descriptor, destroyed through the loaded library's function `Destroy` names.
template <typename Handle, cublasStatus_t (*BlasLtApi::*Destroy)(Handle)>
struct LtObject {
  Handle value = nullptr;
  LtObject() = default;
  LtObject(const LtObject&) = delete;
  LtObject& operator=(const LtObject&) = delete;
  ~LtObject() {
    if (value != nullptr) (blas_lt().*Destroy)(value);
  }
};
using MatmulDesc = LtObject<cublasLtMatmulDesc_t, &BlasLtApi::MatmulDescDestroy>;
using Layout = LtObject<cublasLtMatrixLayout_t, &BlasLtApi::MatrixLayoutDestroy>;
using Preference = LtObject<cublasLtMatmulPreference_t, &BlasLtApi::MatmulPreferenceDestroy>;

cudaDataType_t cuda_type(DType type) {
  switch (type) {
    case DType::F32: return CUDA_R_32F;
    case DType::BF16: return CUDA_R_16BF;
    default: break;
  }
  TRIDENT_FAIL("matmul operands must be f32 or bf16, got ", dtype_name(type));
}

size_t element_bytes(DType type) { return dtype_size(type); }

// Largest power of two (≤ 256) dividing the address: cuBLASLt kernels assume the alignment
// declared in the preference, and views into grouped tensors are often less aligned.
uint32_t alignment_of(const void* pointer) {
  const auto address = reinterpret_cast<uintptr_t>(pointer);
  uint32_t alignment = 256;
  while (alignment > 1 && address % alignment != 0) alignment /= 2;
  return alignment;
}

template <typename T>
__global__ void scale_kernel(T* data, int64_t n, float beta) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    detail::store(data, i, beta == 0.0f ? 0.0f : beta * detail::load(data, i));
  }
}

__global__ void widen_kernel(const __nv_bfloat16* in, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    out[i] = __bfloat162float(in[i]);
  }
}

// C = beta · C, for products with an empty inner dimension.
void scale_output(const Matmul& mm, cudaStream_t stream) {
  const int64_t n = mm.m * mm.n;
  const int threads = 256;
  if (mm.c_type == DType::F32) {
    scale_kernel<<<blocks_for(n, threads), threads, 0, stream>>>(static_cast<float*>(mm.c), n,
                                                                 mm.beta);
  } else {
    scale_kernel<<<blocks_for(n, threads), threads, 0, stream>>>(
        static_cast<__nv_bfloat16*>(mm.c), n, mm.beta);
  }
  TRIDENT_CHECK_LAUNCH();
}

void set_layout(Layout& layout, DType type, int64_t rows, int64_t cols) {
  const BlasLtApi& lt = blas_lt();
  TRIDENT_CHECK_CUBLAS(lt.MatrixLayoutCreate(&layout.value, cuda_type(type),
                                             static_cast<uint64_t>(rows),
                                             static_cast<uint64_t>(cols), rows));
}

// Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, and a row-major matrix read as
// column-major is its transpose: so cuBLASLt gets B first, A second, with the same transposes.
void run(const Matmul& mm, cudaStream_t stream) {
  if (mm.m == 0 || mm.n == 0) return;
  if (mm.k == 0) {
    scale_output(mm, stream);
    return;
  }
  BlasLtContext& context = BlasLtContext::for_current_device();
  const BlasLtApi& lt = blas_lt();

  MatmulDesc desc;
  TRIDENT_CHECK_CUBLAS(lt.MatmulDescCreate(&desc.value, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t op_first = mm.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_second = mm.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  TRIDENT_CHECK_CUBLAS(lt.MatmulDescSetAttribute(desc.value, CUBLASLT_MATMUL_DESC_TRANSA, &op_first,
                                                 sizeof(op_first)));
  TRIDENT_CHECK_CUBLAS(lt.MatmulDescSetAttribute(desc.value, CUBLASLT_MATMUL_DESC_TRANSB,
                                                 &op_second, sizeof(op_second)));

  Layout first, second, out;
  set_layout(first, mm.b_type, mm.trans_b ? mm.k : mm.n, mm.trans_b ? mm.n : mm.k);
  set_layout(second, mm.a_type, mm.trans_a ? mm.m : mm.k, mm.trans_a ? mm.k : mm.m);
  set_layout(out, mm.c_type, mm.n, mm.m);

  const uint32_t align_first = alignment_of(mm.b);
  const uint32_t align_second = alignment_of(mm.a);
  const uint32_t align_out = alignment_of(mm.c);
  const std::string key = ::trident::detail::concat(mm.trans_a, mm.trans_b, ':', mm.m, ',', mm.n, ',', mm.k,
                                         ':', static_cast<int>(mm.a_type),
                                         static_cast<int>(mm.b_type),
                                         static_cast<int>(mm.c_type), ':', align_first, ',',
                                         align_second, ',', align_out, ':', mm.beta != 0.0f);
  cublasLtMatmulAlgo_t algo;
  if (!context.find_algo(key, algo)) {
    Preference preference;
    TRIDENT_CHECK_CUBLAS(lt.MatmulPreferenceCreate(&preference.value));
    const uint64_t workspace_bytes = BlasLtContext::kWorkspaceBytes;
    TRIDENT_CHECK_CUBLAS(
        lt.MatmulPreferenceSetAttribute(preference.value, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                        &workspace_bytes, sizeof(workspace_bytes)));
    // The operands' alignments, so the heuristic only offers kernels these pointers suit.
    const std::pair<cublasLtMatmulPreferenceAttributes_t, const uint32_t*> alignments[] = {
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_first},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_second},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_out},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_out}};
    for (const auto& [attribute, bytes] : alignments) {
      TRIDENT_CHECK_CUBLAS(
          lt.MatmulPreferenceSetAttribute(preference.value, attribute, bytes, sizeof(*bytes)));
    }
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    TRIDENT_CHECK_CUBLAS(lt.MatmulAlgoGetHeuristic(context.handle(), desc.value, first.value,
                                                   second.value, out.value, out.value,
                                                   preference.value, 1, &result, &found));
    TRIDENT_CHECK(found > 0, "cuBLASLt has no algorithm for matmul ", key);
    algo = result.algo;
    context.remember_algo(key, algo);
  }
  TRIDENT_CHECK_CUBLAS(lt.Matmul(context.handle(), desc.value, &mm.alpha, mm.b, first.value, mm.a,
                                 second.value, &mm.beta, mm.c, out.value, mm.c, out.value, &algo,
                                 context.workspace(stream), BlasLtContext::kWorkspaceBytes,
                                 stream));
}

// cuBLASLt wants A and B of one type: a bf16 operand next to an f32 one is widened first,
// into stream-ordered scratch that lives as long as the operands.
struct MatchedOperands {
  Tensor a;
  Tensor b;
  std::unique_ptr<detail::StreamScratch> widened;
};

Tensor widen(const Tensor& t, std::unique_ptr<detail::StreamScratch>& memory,
             cudaStream_t stream) {
  memory = std::make_unique<detail::StreamScratch>(static_cast<size_t>(t.numel()) * sizeof(float), stream);
  Tensor wide = memory->tensor(t.shape(), DType::F32);
  const int threads = 256;
  widen_kernel<<<blocks_for(t.numel(), threads), threads, 0, stream>>>(
      detail::bf16_ptr(t), wide.data<float>(), t.numel());
  TRIDENT_CHECK_LAUNCH();
  return wide;
}

MatchedOperands match_types(const Tensor& a, const Tensor& b, cudaStream_t stream) {
  detail::expect_float_or_bf16(a, "matmul operand A");
  detail::expect_float_or_bf16(b, "matmul operand B");
  MatchedOperands ops{a, b, nullptr};
  if (a.dtype() == DType::BF16 && b.dtype() == DType::F32) ops.a = widen(a, ops.widened, stream);
  if (b.dtype() == DType::BF16 && a.dtype() == DType::F32) ops.b = widen(b, ops.widened, stream);
  return ops;
}

const char* byte_ptr(const Tensor& t, int64_t element_offset) {
  return static_cast<const char*>(t.raw_data()) +
         element_offset * static_cast<int64_t>(element_bytes(t.dtype()));
}

// Points mm's A and B at the matched operands and C at `c`, each `*_offset` elements in (one
// group's block of a grouped matmul), with their dtypes.
void set_operands(Matmul& mm, const MatchedOperands& ops, int64_t a_offset, int64_t b_offset,
                  const Tensor& c, int64_t c_offset) {
  mm.a = byte_ptr(ops.a, a_offset);
  mm.a_type = ops.a.dtype();
  mm.b = byte_ptr(ops.b, b_offset);
  mm.b_type = ops.b.dtype();
  mm.c = const_cast<char*>(byte_ptr(c, c_offset));
  mm.c_type = c.dtype();
}

int64_t total_rows(const std::vector<int64_t>& counts) {
  for (const int64_t count : counts) TRIDENT_CHECK(count >= 0, "negative group count ", count);
  return std::accumulate(counts.begin(), counts.end(), int64_t{0});
}

struct LinearShape {
  int64_t t = 0;  // rows
  int64_t n = 0;  // out features
  int64_t k = 0;  // in features
};

// The sizes of a linear layer from `w` [N, K] (the weight or its gradient), `by_in` [T, K]
// (x or dx) and `by_out` [T, N] (y or dy), checked against each other.
LinearShape linear_shape(const Tensor& w, const char* w_name, detail::Operand by_in,
                         detail::Operand by_out) {
  TRIDENT_CHECK(w.dim() == 2, w_name, " must be [out, in], got ", w.describe());
  LinearShape s;
  s.n = w.size(0);
  s.k = w.size(1);
  TRIDENT_CHECK(by_in.tensor.numel() % s.k == 0, by_in.name, " ", by_in.tensor.describe(),
                " does not end in ", s.k);
  s.t = by_in.tensor.numel() / s.k;
  detail::expect_numel(by_out.tensor, s.t * s.n, by_out.name);
  return s;
}

}  // namespace

void gemm(bool trans_a, bool trans_b, float alpha, const Tensor& a, const Tensor& b, float beta,
          Tensor& c, cudaStream_t stream) {
  TRIDENT_CHECK(a.dim() == 2 && b.dim() == 2 && c.dim() == 2, "gemm needs 2-D tensors: ",
                a.describe(), ", ", b.describe(), ", ", c.describe());
  detail::expect_float_or_bf16(c, "gemm output C");
  const int64_t m = trans_a ? a.size(1) : a.size(0);
  const int64_t k = trans_a ? a.size(0) : a.size(1);
  const int64_t k_b = trans_b ? b.size(1) : b.size(0);
  const int64_t n = trans_b ? b.size(0) : b.size(1);
  TRIDENT_CHECK(k == k_b && c.size(0) == m && c.size(1) == n, "gemm shapes do not agree: ",
                a.describe(), trans_a ? "ᵀ" : "", " · ", b.describe(), trans_b ? "ᵀ" : "",
                " -> ", c.describe());
  const MatchedOperands ops = match_types(a, b, stream);
  Matmul mm;
  mm.trans_a = trans_a;
  mm.trans_b = trans_b;
  mm.m = m;
  mm.n = n;
  mm.k = k;
  mm.alpha = alpha;
  mm.beta = beta;
  set_operands(mm, ops, 0, 0, c, 0);
  run(mm, stream);
}

void linear_forward(const Tensor& x, const Tensor& w, Tensor& y, cudaStream_t stream) {
  const LinearShape s = linear_shape(w, "linear weight", {x, "linear input"}, {y, "linear output"});
  Tensor y2 = y.view({s.t, s.n});
  gemm(false, true, 1.0f, x.view({s.t, s.k}), w, 0.0f, y2, stream);
}

void linear_backward_input(const Tensor& dy, const Tensor& w, Tensor& dx, bool accumulate,
                           cudaStream_t stream) {
  const LinearShape s = linear_shape(w, "linear weight", {dx, "linear dx"}, {dy, "linear dy"});
  Tensor dx2 = dx.view({s.t, s.k});
  gemm(false, false, 1.0f, dy.view({s.t, s.n}), w, accumulate ? 1.0f : 0.0f, dx2, stream);
}

void linear_backward_weight(const Tensor& dy, const Tensor& x, Tensor& dw, cudaStream_t stream) {
  const LinearShape s =
      linear_shape(dw, "linear weight gradient", {x, "linear input"}, {dy, "linear dy"});
  gemm(true, false, 1.0f, dy.view({s.t, s.n}), x.view({s.t, s.k}), 1.0f, dw, stream);
}

namespace {

struct GroupedShape {
  int64_t groups = 0;
  int64_t n = 0;
  int64_t k = 0;
  int64_t rows = 0;
};

// The sizes of a grouped linear layer from `w` [G, N, K] (the weights or their gradients) and
// the group counts, with `by_in` [rows, K] (x or dx) and `by_out` [rows, N] (y or dy) checked
// against them.
GroupedShape grouped_shape(const Tensor& w, const std::vector<int64_t>& counts,
                           detail::Operand by_in, detail::Operand by_out) {
  TRIDENT_CHECK(w.dim() == 3, "grouped weight must be [G, out, in], got ", w.describe());
  TRIDENT_CHECK(static_cast<int64_t>(counts.size()) == w.size(0), counts.size(),
                " group counts for ", w.describe());
  const GroupedShape s{w.size(0), w.size(1), w.size(2), total_rows(counts)};
  detail::expect_numel(by_in.tensor, s.rows * s.k, by_in.name);
  detail::expect_numel(by_out.tensor, s.rows * s.n, by_out.name);
  return s;
}

// The matmuls of every non-empty group, in one launch where cuBLAS can, else one matmul each;
// `fill` sets the pointers and sizes of group g whose rows start at `row`.
template <typename Fill>
void for_each_group(const std::vector<int64_t>& counts, Fill fill, cudaStream_t stream) {
  std::vector<Matmul> matmuls;
  int64_t row = 0;
  for (size_t g = 0; g < counts.size(); ++g) {
    if (counts[g] > 0) {
      Matmul mm;
      fill(static_cast<int64_t>(g), row, counts[g], mm);
      matmuls.push_back(mm);
    }
    row += counts[g];
  }
  if (grouped_gemm(matmuls, stream)) return;
  for (const Matmul& mm : matmuls) run(mm, stream);
}

}  // namespace

void grouped_linear_forward(const Tensor& x, const Tensor& w, const std::vector<int64_t>& counts,
                            Tensor& y, cudaStream_t stream) {
  const GroupedShape s =
      grouped_shape(w, counts, {x, "grouped linear input"}, {y, "grouped linear output"});
  detail::expect_float_or_bf16(y, "grouped linear output");
  const MatchedOperands ops = match_types(x, w, stream);
  for_each_group(
      counts,
      [&](int64_t g, int64_t row, int64_t count, Matmul& mm) {
        mm.trans_b = true;
        mm.m = count;
        mm.n = s.n;
        mm.k = s.k;
        set_operands(mm, ops, row * s.k, g * s.n * s.k, y, row * s.n);
      },
      stream);
}

void grouped_linear_backward_input(const Tensor& dy, const Tensor& w,
                                   const std::vector<int64_t>& counts, Tensor& dx,
                                   bool accumulate, cudaStream_t stream) {
  const GroupedShape s =
      grouped_shape(w, counts, {dx, "grouped linear dx"}, {dy, "grouped linear dy"});
  detail::expect_float_or_bf16(dx, "grouped linear dx");
  const MatchedOperands ops = match_types(dy, w, stream);
  for_each_group(
      counts,
      [&](int64_t g, int64_t row, int64_t count, Matmul& mm) {
        mm.m = count;
        mm.n = s.k;
        mm.k = s.n;
        mm.beta = accumulate ? 1.0f : 0.0f;
        set_operands(mm, ops, row * s.n, g * s.n * s.k, dx, row * s.k);
      },
      stream);
}

void grouped_linear_backward_weight(const Tensor& dy, const Tensor& x,
                                    const std::vector<int64_t>& counts, Tensor& dw,
                                    cudaStream_t stream) {
  const GroupedShape s =
      grouped_shape(dw, counts, {x, "grouped linear input"}, {dy, "grouped linear dy"});
  detail::expect_float_or_bf16(dw, "grouped linear dw");
  const MatchedOperands ops = match_types(dy, x, stream);
  for_each_group(
      counts,
      [&](int64_t g, int64_t row, int64_t count, Matmul& mm) {
        mm.trans_a = true;
        mm.m = s.n;
        mm.n = s.k;
        mm.k = count;
        mm.beta = 1.0f;
        set_operands(mm, ops, row * s.n, row * s.k, dw, g * s.n * s.k);
      },
      stream);
}

}  // namespace trident::ops::cuda
