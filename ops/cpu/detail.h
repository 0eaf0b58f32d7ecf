#pragma once
// Shared plumbing for the CPU ops (not part of the public API): argument checks, how loops and
// products use the threads, and a read-only fp32 view of tensors that may be stored as bf16.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "runtime/core/tensor.h"

namespace trident::ops::cpu::detail {

// Whether a loop over `elements` values is worth an OpenMP parallel region. Below this size the
// fork/join costs more than it saves, and on a busy machine a descheduled worker can stall the
// region's barrier for a whole scheduler quantum.
constexpr int64_t kMinParallelElements = int64_t{1} << 17;
inline bool worth_parallel(int64_t elements) { return elements >= kMinParallelElements; }

// Runs fn(begin, end) over [0, n): in one call when `elements` (the values the work touches)
// is below the parallel threshold, otherwise as one contiguous piece per thread. For kernels
// built per instruction set (vector_math.h), which must not hold an OpenMP region themselves.
template <typename Fn>
void for_ranges(int64_t n, int64_t elements, Fn&& fn) {
  if (!worth_parallel(elements)) {
    if (n > 0) fn(int64_t{0}, n);
    return;
  }
#pragma omp parallel
  {
    const int64_t threads = omp_get_num_threads();
    const int64_t thread = omp_get_thread_num();
    const int64_t begin = n * thread / threads;
    const int64_t end = n * (thread + 1) / threads;
    if (begin < end) fn(begin, end);
  }
}

// Sums over rows, per column, that come out the same for any thread count: [0, cols) is cut into
// blocks of kColumnBlock columns, each block belongs to one thread, and fn(begin, end) walks the
// rows in order for its columns. `elements` (rows · cols) decides whether threads are worth it.
constexpr int64_t kColumnBlock = 64;
template <typename Fn>
void for_column_blocks(int64_t cols, int64_t elements, Fn&& fn) {
  const int64_t blocks = (cols + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for schedule(static) if (worth_parallel(elements))
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * kColumnBlock;
    fn(begin, std::min(cols, begin + kColumnBlock));
  }
}

// Rows of a tensor seen as a matrix [numel / last_dim, last_dim].
inline int64_t rows(const Tensor& t) {
  const int64_t cols = t.dim() == 0 ? 1 : t.size(-1);
  return cols == 0 ? 0 : t.numel() / cols;
}
inline int64_t cols(const Tensor& t) { return t.dim() == 0 ? 1 : t.size(-1); }

inline void check_host(const Tensor& t, const char* name) {
  TRIDENT_CHECK(t.defined(), name, " is undefined");
  TRIDENT_CHECK(in_host_ram(t.device()), name, " must be a CPU tensor, got ", t.describe());
}

inline void check_f32(const Tensor& t, const char* name) {
  check_host(t, name);
  TRIDENT_CHECK(t.dtype() == DType::F32, name, " must be f32, got ", t.describe());
}

inline void check_i32(const Tensor& t, const char* name) {
  check_host(t, name);
  TRIDENT_CHECK(t.dtype() == DType::I32, name, " must be i32, got ", t.describe());
}

inline void check_numel(const Tensor& t, int64_t expected, const char* name) {
  TRIDENT_CHECK(t.numel() == expected, name, " has ", t.numel(), " elements (", t.describe(),
                "), expected ", expected);
}

// A tensor an op checks, with the name its messages give it.
struct Operand {
  const Tensor& tensor;
  const char* name;
};

// The operands of an element-wise op: each an f32 CPU tensor (all checked first, in order), then
// each with as many elements as `size_of`. Returns that element count.
inline int64_t check_f32_elementwise(const Tensor& size_of,
                                     std::initializer_list<Operand> operands) {
  for (const Operand& o : operands) check_f32(o.tensor, o.name);
  const int64_t n = size_of.numel();
  for (const Operand& o : operands) check_numel(o.tensor, n, o.name);
  return n;
}

// fp32 values of an f32 or bf16 tensor: f32 data is used in place, bf16 is widened once into
// an owned buffer (the caller accumulates in fp32 either way).
class Fp32Values {
 public:
  Fp32Values(const Tensor& t, const char* name);
  // A contiguous range [begin, begin + count) of the flattened tensor, widened if bf16.
  Fp32Values(const Tensor& t, int64_t begin, int64_t count, const char* name);
  const float* data() const { return data_; }

 private:
  std::vector<float> widened_;
  const float* data_ = nullptr;
};

// Row-major C[M,N] = alpha · op(A) · op(B) + beta · C with leading dimensions (the tiled kernel
// or OpenBLAS sgemm; beta = 0 ignores the old contents of C; any of M, N, K may be 0). Outside an
// OpenMP team a product big enough is cut into blocks of rows of C over the threads
// (ops/cpu/sgemm.cpp).
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// Held while an OpenMP team calls sgemm from each of its threads: keeps a pthreads build of
// OpenBLAS from starting threads of its own under every member of the team.
class SingleThreadedBlasInTeam {
 public:
  SingleThreadedBlasInTeam();
  ~SingleThreadedBlasInTeam();
  SingleThreadedBlasInTeam(const SingleThreadedBlasInTeam&) = delete;
  SingleThreadedBlasInTeam& operator=(const SingleThreadedBlasInTeam&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace trident::ops::cpu::detail
