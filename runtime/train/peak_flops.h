#pragma once
// The peak FLOP rate model FLOPs utilisation (MFU) is measured against, per rank.
//
// On a GPU cluster give the accelerator's dense peak (H100/H800 SXM bf16: 989 TFLOPS). The
// default describes the machine the CPU training step was developed on: an fp32 GEMM
// (1024 × 1024 × 1024, best of 5, OMP_NUM_THREADS=1, OpenBLAS) measured on one AMD EPYC core
// there at 0.08 TFLOPS (0.04 while other jobs shared the core). "measure"
// times that GEMM on the running machine instead (about a second at start-up).
#include <cstdint>
#include <string>

namespace trident::train {

inline constexpr double kDefaultPeakTflops = 0.08;

// The best rate of a square fp32 GEMM (size × size × size) over a few repetitions, in FLOP/s,
// on the CPU backend's current threads (ops/cpu_threads.h). 1024 takes about a second on one
// core; `trident bench step` measures 2048, large enough for OpenBLAS to reach its peak.
double measure_gemm_flops_per_second(int64_t size = 1024);

// "--peak-tflops" values: a positive number of TFLOPS, or "measure". A user error names the
// flag otherwise. Returns FLOP/s.
double parse_peak_flops(const std::string& value);

}  // namespace trident::train
