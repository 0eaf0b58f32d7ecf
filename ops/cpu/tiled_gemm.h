#pragma once
// A register-tiled matrix product for the mid-sized products of a training step (a thousand
// rows of activations against a weight of a few hundred by a few hundred), where OpenBLAS
// spends about a quarter of its time copying operands into panels and zeroing C: this kernel
// reads A where it lies, walks B from the cache (what it walks at a time must fit there:
// tiled_gemm_suits) and writes C once.
//
// Built for AVX-512, for AVX2 and for the baseline, the best the CPU runs picked at start-up
// (OpenBLAS may be held to AVX2 kernels by OPENBLAS_CORETYPE; this kernel is not). Every element
// of C is the sum over p in ascending order of separately rounded products (no FMA), scaled by
// alpha, then added to C when accumulating: the same bits in every build, however C is cut into
// blocks of rows, at any thread count.
#include <cstdint>
#include <string>

namespace trident::ops::cpu::detail {

enum class TiledGemmIsa { kBaseline, kAvx2, kAvx512 };

// Whether this CPU runs the kernel built for `isa` (the baseline: always).
bool tiled_gemm_runs(TiledGemmIsa isa);

// The best build this CPU runs.
TiledGemmIsa tiled_gemm_best_isa();

// Whether sgemm uses the kernel: the CPU runs its AVX2 or AVX-512 build (the baseline one is
// slower than OpenBLAS) and TRIDENT_CPU_TILED_GEMM is not 0 (which asks for OpenBLAS alone).
// GCC on x86-64 only; elsewhere sgemm calls OpenBLAS for every product.
bool tiled_gemm_available();

// Which products sgemm computes in the kernel, for the logs ("products with a B of at most
// 256 KiB per 128 steps of depth in Trident's AVX-512 kernel"), or "" where it is not available.
std::string tiled_gemm_description();

// Whether an m × n × k product suits the kernel: what it walks of op(B) at a time, at most
// 256 KiB, stays in the core's L2 while every strip of rows of C walks it. That is op(B) whole
// when it is transposed (it is copied into a panel first), else a block of 128 of its rows
// (the product is walked 128 steps of depth at a time). Its shape alone decides, not the machine.
bool tiled_gemm_suits(bool trans_b, int64_t m, int64_t n, int64_t k);

// Row-major C[m × n] (leading dimension ldc) = alpha · op(A) · op(B), or C += … when accumulate;
// op(A) = A or Aᵀ (lda), op(B) = B or Bᵀ (ldb), as cblas_sgemm. A transposed op(B) is first
// copied into a row-major panel of the calling thread.
void tiled_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                const float* a, int64_t lda, const float* b, int64_t ldb, bool accumulate, float* c,
                int64_t ldc, TiledGemmIsa isa = tiled_gemm_best_isa());

}  // namespace trident::ops::cpu::detail
