#pragma once
// The peak FLOP rate model FLOPs utilisation (MFU) is measured against, per rank.
//
// `--peak-tflops auto` (the default) picks it by where the run trains (train.device):
//   cuda  the GPU's dense bf16 tensor-core peak from its name (H100 SXM and H200: 989 TFLOPS,
//         H100 PCIe: 756, A100: 312, ...: gpu_dense_bf16_tflops); a GPU not in that table gets
//         a bf16 GEMM timed on it at start-up, as with "measure".
//   cpu   the machine the CPU training step was developed on: an fp32 GEMM (1024³, best of 5,
//         OMP_NUM_THREADS=1, OpenBLAS) measured on one AMD EPYC core there at 0.08 TFLOPS
//         (0.04 while other jobs shared the core).
// "measure" times a GEMM on the running machine instead: fp32 1024³ on the CPU (about a
// second), bf16 8192³ on a GPU. A number is taken as given, in TFLOPS.
#include <cstdint>
#include <string>

#include "runtime/core/dtype.h"

namespace trident::train {

inline constexpr double kDefaultPeakTflops = 0.08;

// The best rate of a square fp32 GEMM (size × size × size) over a few repetitions, in FLOP/s,
// on the CPU backend's current threads (ops/cpu_threads.h). 1024 takes about a second on one
// core; `trident bench step` measures 2048, large enough for OpenBLAS to reach its peak.
double measure_gemm_flops_per_second(int64_t size = 1024);

// The same for a bf16 GEMM with fp32 accumulation on this process's GPU (FLOP/s): operands and
// output bf16, timed between host reads of one element of the output.
double measure_gpu_bf16_gemm_flops_per_second(int64_t size = 8192);

// The dense (no structured sparsity) bf16 tensor-core peak of a GPU known by the name the CUDA
// driver reports ("NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB", ...), in TFLOPS, from the
// vendors' data sheets; 0 for a GPU this table does not know.
double gpu_dense_bf16_tflops(const std::string& gpu_name);

// "--peak-tflops" values: "auto", "measure" or a positive number of TFLOPS, for a run that
// trains on `device` (Device::CUDA: this process's GPU). A user error names the flag otherwise.
// Returns FLOP/s and logs where the figure came from.
double parse_peak_flops(const std::string& value, Device device = Device::CPU);

}  // namespace trident::train
