// Single-GPU throughput of the heavy CUDA ops, each reported against a baseline measured in the
// same run: a large square cuBLASLt GEMM of the same precision. Ratios, not absolute numbers,
// are what to compare across machines. Exits 0 with a note where no GPU is present.
//
//   bench_cuda_ops [--iterations N]
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "ops/cuda/attention.h"
#include "ops/cuda/device.h"
#include "ops/cuda/linear.h"
#include "runtime/core/cuda_check.h"

namespace trident::ops::cuda {
namespace {

// AttentionShape comes from ops::cpu, so unqualified calls would also find the CPU overloads.
namespace cuda = ::trident::ops::cuda;

struct Timing {
  double milliseconds = 0.0;
  double tflops = 0.0;
};

class EventTimer {
 public:
  EventTimer() {
    TRIDENT_CHECK_CUDA(cudaEventCreate(&start_));
    TRIDENT_CHECK_CUDA(cudaEventCreate(&stop_));
  }
  ~EventTimer() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;

  // Mean time of `run` over `iterations` after two warm-up calls.
  Timing measure(const std::function<void()>& run, int iterations, double flops) {
    run();
    run();
    TRIDENT_CHECK_CUDA(cudaDeviceSynchronize());
    TRIDENT_CHECK_CUDA(cudaEventRecord(start_));
    for (int i = 0; i < iterations; ++i) run();
    TRIDENT_CHECK_CUDA(cudaEventRecord(stop_));
    TRIDENT_CHECK_CUDA(cudaEventSynchronize(stop_));
    float total = 0.0f;
    TRIDENT_CHECK_CUDA(cudaEventElapsedTime(&total, start_, stop_));
    Timing t;
    t.milliseconds = static_cast<double>(total) / iterations;
    t.tflops = flops / (t.milliseconds * 1e-3) / 1e12;
    return t;
  }

 private:
  cudaEvent_t start_ = nullptr;
  cudaEvent_t stop_ = nullptr;
};

// Small deterministic values (the data does not change the timing, but NaN or denormals could).
Tensor device_tensor(const Shape& shape, DType dtype) {
  Tensor host = Tensor::empty(shape);
  float* data = host.data<float>();
  for (int64_t i = 0; i < host.numel(); ++i) data[i] = 0.01f * static_cast<float>((i * 7) % 13 - 6);
  return (dtype == DType::F32 ? host : host.to(dtype)).to(Device::CUDA);
}

void report(const std::string& name, const Timing& t, const Timing& baseline) {
  std::printf("%-46s %9.3f ms %8.1f TFLOP/s  %6.3f x baseline\n", name.c_str(), t.milliseconds,
              t.tflops, t.tflops / baseline.tflops);
}

Timing square_gemm(EventTimer& timer, int64_t n, DType dtype, int iterations) {
  const Tensor a = device_tensor({n, n}, dtype);
  const Tensor b = device_tensor({n, n}, dtype);
  Tensor c = Tensor::empty({n, n}, dtype, Device::CUDA);
  return timer.measure([&] { gemm(false, true, 1.0f, a, b, 0.0f, c); }, iterations,
                       2.0 * static_cast<double>(n) * n * n);
}

int run_benchmarks(int iterations) {
  const DeviceInfo info = query_device();
  if (!info.available) {
    std::printf("bench_cuda_ops: no usable CUDA device (%s); nothing to measure\n",
                info.reason.c_str());
    return 0;
  }
  std::printf("device: %s (sm_%d, %d SMs), cuBLASLt %lld, cuDNN %lld\n", info.name.c_str(),
              info.compute_capability, info.multiprocessors,
              static_cast<long long>(info.cublaslt_version),
              static_cast<long long>(info.cudnn_version));
  EventTimer timer;

  const Timing bf16_base = square_gemm(timer, 8192, DType::BF16, iterations);
  const Timing fp32_base = square_gemm(timer, 4096, DType::F32, iterations);
  std::printf("\nbaselines: bf16 GEMM 8192³ %.1f TFLOP/s, fp32 GEMM 4096³ %.1f TFLOP/s\n\n",
              bf16_base.tflops, fp32_base.tflops);

  // Linear layers of DeepSeek-V3 at 4096 tokens (bf16 storage, fp32 accumulation).
  const int64_t tokens = 4096, hidden = 7168;
  struct LinearCase {
    const char* name;
    int64_t out, in;
  };
  for (const LinearCase& c : {LinearCase{"linear q_a_proj 4096x7168 -> 1536", 1536, hidden},
                              LinearCase{"linear o_proj 4096x16384 -> 7168", hidden, 16384},
                              LinearCase{"linear dense up 4096x7168 -> 18432", 18432, hidden}}) {
    const Tensor x = device_tensor({tokens, c.in}, DType::BF16);
    const Tensor w = device_tensor({c.out, c.in}, DType::BF16);
    Tensor y = Tensor::empty({tokens, c.out}, DType::BF16, Device::CUDA);
    report(c.name, timer.measure([&] { linear_forward(x, w, y); }, iterations,
                                 2.0 * tokens * c.out * c.in),
           bf16_base);
  }

  // MoE expert GEMM: 32 local experts, uneven counts, against one dense GEMM of the same rows.
  const int64_t experts = 32, moe_inter = 2048, rows = 4096 * 8 / 8;
  std::vector<int64_t> counts(static_cast<size_t>(experts));
  int64_t assigned = 0;
  for (int64_t g = 0; g < experts; ++g) {
    counts[static_cast<size_t>(g)] = (g % 4 == 0) ? 0 : (rows / experts) * (1 + g % 3) / 2;
    assigned += counts[static_cast<size_t>(g)];
  }
  counts.back() += rows - assigned;
  const Tensor xe = device_tensor({rows, hidden}, DType::BF16);
  const Tensor we = device_tensor({experts, moe_inter, hidden}, DType::BF16);
  Tensor ye = Tensor::empty({rows, moe_inter}, DType::BF16, Device::CUDA);
  const double moe_flops = 2.0 * rows * moe_inter * hidden;
  const Timing grouped = timer.measure([&] { grouped_linear_forward(xe, we, counts, ye); },
                                       iterations, moe_flops);
  const Tensor w_dense = we.narrow(0, 1).view({moe_inter, hidden});
  const Timing dense = timer.measure([&] { linear_forward(xe, w_dense, ye); }, iterations,
                                     moe_flops);
  report("grouped expert GEMM (32 experts, 4096 rows)", grouped, bf16_base);
  report("  same rows as one dense GEMM", dense, bf16_base);
  std::printf("  grouped / dense throughput: %.3f\n\n", grouped.tflops / dense.tflops);

  // Attention (fp32, MLA head dims), causal: half of the S² score matrix is computed. One
  // sequence of 4096 tokens, 16 heads, qk_dim 192, v_dim 128.
  const AttentionShape shape{1, 4096, 16, 192, 128, 1.0f / std::sqrt(192.0f)};
  const int64_t n = shape.batch * shape.seq;
  const Tensor q = device_tensor({n, shape.heads, shape.qk_dim}, DType::F32);
  const Tensor k = device_tensor({n, shape.heads, shape.qk_dim}, DType::F32);
  const Tensor v = device_tensor({n, shape.heads, shape.v_dim}, DType::F32);
  Tensor out = Tensor::empty({n, shape.heads, shape.v_dim}, DType::F32, Device::CUDA);
  Tensor lse = Tensor::empty({shape.batch, shape.heads, shape.seq}, DType::F32, Device::CUDA);
  const double pairs = 0.5 * static_cast<double>(shape.seq) * (shape.seq + 1) * shape.batch *
                       shape.heads;
  const double fwd_flops = 2.0 * pairs * (shape.qk_dim + shape.v_dim);
  report("attention forward fp32 (S=4096, H=16, 192/128)",
         timer.measure([&] { cuda::attention_forward(shape, q, k, v, out, lse); }, iterations,
                       fwd_flops),
         fp32_base);
  Tensor dq = Tensor::empty(q.shape(), DType::F32, Device::CUDA);
  Tensor dk = Tensor::empty(k.shape(), DType::F32, Device::CUDA);
  Tensor dv = Tensor::empty(v.shape(), DType::F32, Device::CUDA);
  report("attention backward fp32",
         timer.measure([&] { cuda::attention_backward(shape, out, q, k, v, out, lse, dq, dk, dv); },
                       iterations, 2.5 * fwd_flops),
         fp32_base);
  return 0;
}

}  // namespace
}  // namespace trident::ops::cuda

int main(int argc, char** argv) {
  int iterations = 10;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--iterations") == 0 && i + 1 < argc) {
      iterations = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--iterations N]\n", argv[0]);
      return 2;
    }
  }
  if (iterations < 1) {
    std::fprintf(stderr, "--iterations must be at least 1\n");
    return 2;
  }
  try {
    return trident::ops::cuda::run_benchmarks(iterations);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
