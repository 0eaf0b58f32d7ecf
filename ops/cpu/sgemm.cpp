// The one place the CPU backend multiplies matrices: sgemm on raw pointers, which kernel computes
// a product, and how it uses the threads.
//
// A product whose B is small enough (tiled_gemm_suits) with beta 0 or 1 runs in Trident's own
// register-tiled kernel (tiled_gemm.h), whose sums do not depend on how C is cut: on one thread
// it is one call, on several C is cut into one block of rows per thread. Every other product
// goes to OpenBLAS, as follows.
//
// On small matrices OpenBLAS's own threading loses: measured on the 2-core development machine,
// a [1024 × 96] · [96 × 48] product took 96 µs on one thread and 122 µs on two, and the
// [1024 × 96] · [96 × 512] one gained 1.45×, while cutting C into one block of rows per thread,
// each a single-threaded sgemm, gained 1.84× and 1.91× (docs/benchmarks.md). So OpenBLAS always
// runs single-threaded, and a product big enough is cut here into blocks of rows of C; inside an
// OpenMP team (heads of attention, experts of a grouped product) every sgemm runs on its
// caller's thread.
//
// The result does not depend on the thread count, whatever BLAS kernel runs: a product big
// enough is always computed as the same blocks of rows of C, bounds set by its shape alone, and
// the threads only decide who computes which block (one thread: one after the other). Blocks of
// a single call's rows do not reproduce its bits in general: OpenBLAS's Haswell and Zen kernels
// did for cuts at multiples of 12 rows, its SkylakeX and Cooperlake (AVX-512) kernels did not
// for any tile-aligned cut tried (48 and 192 rows), so C is never cut by the thread count.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <optional>

#include "ops/cpu/detail.h"
#include "ops/cpu/tiled_gemm.h"

namespace trident::ops::cpu::detail {
namespace {

// Below this many multiply-adds one thread finishes before a team would have started: such a
// product is one call.
constexpr int64_t kMinThreadedMacs = int64_t{1} << 18;
// Blocks have at least this many rows of C (the extra calls cost little at one thread: a
// [1024 × 96] · [96 × 48] product is 4 calls) and there are at most kMaxBlocks of them.
constexpr int64_t kMinBlockRows = 256;
constexpr int64_t kMaxBlocks = 16;

void sgemm_one_thread(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                      const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                      float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), alpha, a, static_cast<blasint>(lda), b,
              static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}

// How many blocks of rows an m × n × k product is computed in: a function of its shape alone.
int64_t blocks_for(int64_t m, int64_t n, int64_t k) {
  if (m * n * k < kMinThreadedMacs) return 1;
  return std::clamp<int64_t>(m / kMinBlockRows, 1, kMaxBlocks);
}

// The first row of block `block` of `blocks` of C's m rows (m for block == blocks).
int64_t block_begin(int64_t m, int64_t block, int64_t blocks) { return m * block / blocks; }

// Threads worth using for `blocks` blocks: inside a team, the caller's alone.
int threads_for(int64_t blocks) {
  if (blocks < 2 || omp_in_parallel()) return 1;
  return static_cast<int>(std::min<int64_t>(omp_get_max_threads(), blocks));
}

// Makes the sgemm calls of its scope run on the calling thread alone: OpenBLAS's own threading
// both loses on small products and gives sums that depend on the thread count. Outside a team
// the OpenMP build takes its thread count from OpenMP's, per call; the pthreads build is held
// back as inside a team. Inside a team every call already runs on its thread (whoever started
// the team holds a pthreads pool back), and the global setting must not change under it.
class BlasOnCallingThread {
 public:
  BlasOnCallingThread() {
    if (omp_in_parallel()) return;
    pthreads_pool_.emplace();
    if (openblas_get_parallel() == 2) {
      previous_omp_ = omp_get_max_threads();
      omp_set_num_threads(1);
    }
  }
  ~BlasOnCallingThread() {
    if (previous_omp_ > 0) omp_set_num_threads(previous_omp_);
  }
  BlasOnCallingThread(const BlasOnCallingThread&) = delete;
  BlasOnCallingThread& operator=(const BlasOnCallingThread&) = delete;

 private:
  int previous_omp_ = 0;
  std::optional<SingleThreadedBlasInTeam> pthreads_pool_;
};

// The tiled kernel on `threads` blocks of rows of C (its sums do not depend on the cut), each
// thread copying a transposed B for itself: one call on one thread or inside a team.
void tiled_product(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   const float* a, int64_t lda, const float* b, int64_t ldb, bool accumulate,
                   float* c, int64_t ldc) {
  const int64_t blocks = m * n * k < kMinThreadedMacs ? 1 : std::max<int64_t>(m / kMinBlockRows, 1);
  const int threads = threads_for(blocks);
  if (threads < 2) {
    tiled_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, accumulate, c, ldc);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int64_t begin = block_begin(m, omp_get_thread_num(), threads);
    const int64_t rows = block_begin(m, omp_get_thread_num() + 1, threads) - begin;
    tiled_gemm(trans_a, trans_b, rows, n, k, alpha, a + (trans_a ? begin : begin * lda), lda, b,
               ldb, accumulate, c + begin * ldc, ldc);
  }
}

}  // namespace

SingleThreadedBlasInTeam::SingleThreadedBlasInTeam() {
  // OpenBLAS's OpenMP build runs single-threaded inside a team by itself, and setting its
  // thread count there sets OpenMP's, which would shrink the team that follows to one thread.
  // Only the pthreads build has a pool of its own to hold back.
  if (openblas_get_parallel() == 1) {
    previous_ = openblas_get_num_threads();
    openblas_set_num_threads(1);
  }
}

SingleThreadedBlasInTeam::~SingleThreadedBlasInTeam() {
  if (previous_ > 0) openblas_set_num_threads(previous_);
}

// Row-major C[M,N] = alpha · op(A) · op(B) + beta · C on raw pointers with leading dimensions.
// Degenerate sizes are handled here because BLAS implementations disagree on them.
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i) {
      float* row = c + i * ldc;
      for (int64_t j = 0; j < n; ++j) row[j] = beta == 0.0f ? 0.0f : beta * row[j];
    }
    return;
  }
  if ((beta == 0.0f || beta == 1.0f) && tiled_gemm_available() &&
      tiled_gemm_suits(trans_b, m, n, k)) {
    tiled_product(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta == 1.0f, c, ldc);
    return;
  }
  const int64_t blocks = blocks_for(m, n, k);
  const auto run_block = [&](int64_t block) {
    const int64_t begin = block_begin(m, block, blocks);
    const int64_t rows = block_begin(m, block + 1, blocks) - begin;
    // Rows of op(A): rows of A, or columns of A when it is transposed.
    const float* a_block = a + (trans_a ? begin : begin * lda);
    sgemm_one_thread(trans_a, trans_b, rows, n, k, alpha, a_block, lda, b, ldb, beta,
                     c + begin * ldc, ldc);
  };
  const int threads = threads_for(blocks);
  if (threads < 2) {
    const BlasOnCallingThread one_thread;
    for (int64_t block = 0; block < blocks; ++block) run_block(block);
    return;
  }
  const SingleThreadedBlasInTeam single_threaded;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t block = 0; block < blocks; ++block) run_block(block);
}

}  // namespace trident::ops::cpu::detail
