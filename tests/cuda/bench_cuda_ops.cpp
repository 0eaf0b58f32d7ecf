// Single-GPU throughput of the heavy CUDA ops, each reported against a baseline measured in the
// same run: a large square cuBLASLt GEMM of the same precision. Ratios, not absolute numbers,
// are what to compare across machines. Exits 0 with a note where no GPU is present.
//
//   bench_cuda_ops [--iterations N] [--json FILE]
//
// --json also writes the figures as one JSON object (scripts/gpu-check.sh reads it); without a
// GPU the object says so ("device": null and the reason).
#include <cuda_runtime.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <utility>
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

// The --json file: opened (as FILE.tmp) before any timing, so that an unwritable path fails in
// a second rather than after the benchmarks; renamed onto FILE once complete, so a run that
// fails or is killed leaves no partial record and an existing FILE stays as it was.
class JsonFile {
 public:
  explicit JsonFile(std::string path) : path_(std::move(path)), temp_(path_ + ".tmp") {
    file_ = std::fopen(temp_.c_str(), "w");
    if (file_ == nullptr) {
      throw std::runtime_error("--json " + path_ + ": cannot write " + temp_ + ": " +
                               std::strerror(errno));
    }
  }
  ~JsonFile() {
    if (file_ != nullptr) {
      std::fclose(file_);
      std::remove(temp_.c_str());
    }
  }
  JsonFile(const JsonFile&) = delete;
  JsonFile& operator=(const JsonFile&) = delete;

  void commit(const nlohmann::json& record) {
    const std::string text = record.dump(2) + "\n";
    const bool written = std::fwrite(text.data(), 1, text.size(), file_) == text.size();
    const bool closed = std::fclose(file_) == 0;
    file_ = nullptr;
    if (!written || !closed || std::rename(temp_.c_str(), path_.c_str()) != 0) {
      const std::string error = std::strerror(errno);
      std::remove(temp_.c_str());
      throw std::runtime_error("--json " + path_ + ": writing failed: " + error);
    }
  }

 private:
  std::string path_;
  std::string temp_;
  std::FILE* file_ = nullptr;
};

nlohmann::json timing_json(const Timing& t) {
  return {{"ms", t.milliseconds}, {"tflops", t.tflops}};
}

// Small deterministic values (the data does not change the timing, but NaN or denormals could).
Tensor device_tensor(const Shape& shape, DType dtype) {
  Tensor host = Tensor::empty(shape);
  float* data = host.data<float>();
  for (int64_t i = 0; i < host.numel(); ++i) data[i] = 0.01f * static_cast<float>((i * 7) % 13 - 6);
  return (dtype == DType::F32 ? host : host.to(dtype)).to(Device::CUDA);
}

// Prints one line and adds the case to `cases` (the JSON record's list, named without the
// line's indentation).
void report(nlohmann::json& cases, const std::string& name, const char* baseline_name,
            const Timing& t, const Timing& baseline) {
  std::printf("%-46s %9.3f ms %8.1f TFLOP/s  %6.3f x baseline\n", name.c_str(), t.milliseconds,
              t.tflops, t.tflops / baseline.tflops);
  nlohmann::json entry = timing_json(t);
  entry["name"] = name.substr(name.find_first_not_of(' '));
  entry["baseline"] = baseline_name;
  entry["ratio_to_baseline"] = t.tflops / baseline.tflops;
  cases.push_back(std::move(entry));
}

Timing square_gemm(EventTimer& timer, int64_t n, DType dtype, int iterations) {
  const Tensor a = device_tensor({n, n}, dtype);
  const Tensor b = device_tensor({n, n}, dtype);
  Tensor c = Tensor::empty({n, n}, dtype, Device::CUDA);
  return timer.measure([&] { gemm(false, true, 1.0f, a, b, 0.0f, c); }, iterations,
                       2.0 * static_cast<double>(n) * n * n);
}

// Runs the benchmarks, printing each line; `record` receives the same figures.
int run_benchmarks(int iterations, nlohmann::json& record) {
  const DeviceInfo info = query_device();
  record["iterations"] = iterations;
  record["versions"] = {{"cuda_runtime", info.runtime_version},
                        {"driver", info.driver_version},
                        {"cublaslt", info.cublaslt_version},
                        {"cudnn", info.cudnn_version}};
  if (!info.available) {
    std::printf("bench_cuda_ops: no usable CUDA device (%s); nothing to measure\n",
                info.reason.c_str());
    record["device"] = nullptr;
    record["reason"] = info.reason;
    return 0;
  }
  std::printf("device: %s (sm_%d, %d SMs), cuBLASLt %lld, cuDNN %lld\n", info.name.c_str(),
              info.compute_capability, info.multiprocessors,
              static_cast<long long>(info.cublaslt_version),
              static_cast<long long>(info.cudnn_version));
  record["device"] = {{"name", info.name},
                      {"compute_capability", info.compute_capability},
                      {"multiprocessors", info.multiprocessors},
                      {"memory_bytes", info.memory_bytes}};
  EventTimer timer;

  const Timing bf16_base = square_gemm(timer, 8192, DType::BF16, iterations);
  const Timing fp32_base = square_gemm(timer, 4096, DType::F32, iterations);
  std::printf("\nbaselines: bf16 GEMM 8192³ %.1f TFLOP/s, fp32 GEMM 4096³ %.1f TFLOP/s\n\n",
              bf16_base.tflops, fp32_base.tflops);
  record["baselines"] = {{"bf16_gemm_8192", timing_json(bf16_base)},
                         {"fp32_gemm_4096", timing_json(fp32_base)}};
  nlohmann::json& cases = record["cases"] = nlohmann::json::array();

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
    report(cases, c.name, "bf16_gemm_8192",
           timer.measure([&] { linear_forward(x, w, y); }, iterations, 2.0 * tokens * c.out * c.in),
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
  const Timing grouped =
      timer.measure([&] { grouped_linear_forward(xe, we, counts, ye); }, iterations, moe_flops);
  const Tensor w_dense = we.narrow(0, 1).view({moe_inter, hidden});
  const Timing dense =
      timer.measure([&] { linear_forward(xe, w_dense, ye); }, iterations, moe_flops);
  report(cases, "grouped expert GEMM (32 experts, 4096 rows)", "bf16_gemm_8192", grouped,
         bf16_base);
  report(cases, "  same rows as one dense GEMM", "bf16_gemm_8192", dense, bf16_base);
  std::printf("  grouped / dense throughput: %.3f\n\n", grouped.tflops / dense.tflops);
  record["grouped_over_dense"] = grouped.tflops / dense.tflops;

  // Attention (fp32, MLA head dims), causal: half of the S² score matrix is computed. One
  // sequence of 4096 tokens, 16 heads, qk_dim 192, v_dim 128.
  const AttentionShape shape{1, 4096, 16, 192, 128, 1.0f / std::sqrt(192.0f)};
  const int64_t n = shape.batch * shape.seq;
  const Tensor q = device_tensor({n, shape.heads, shape.qk_dim}, DType::F32);
  const Tensor k = device_tensor({n, shape.heads, shape.qk_dim}, DType::F32);
  const Tensor v = device_tensor({n, shape.heads, shape.v_dim}, DType::F32);
  Tensor out = Tensor::empty({n, shape.heads, shape.v_dim}, DType::F32, Device::CUDA);
  Tensor lse = Tensor::empty({shape.batch, shape.heads, shape.seq}, DType::F32, Device::CUDA);
  const double pairs =
      0.5 * static_cast<double>(shape.seq) * (shape.seq + 1) * shape.batch * shape.heads;
  const double fwd_flops = 2.0 * pairs * (shape.qk_dim + shape.v_dim);
  report(cases, "attention forward fp32 (S=4096, H=16, 192/128)", "fp32_gemm_4096",
         timer.measure([&] { cuda::attention_forward(shape, q, k, v, out, lse); }, iterations,
                       fwd_flops),
         fp32_base);
  Tensor dq = Tensor::empty(q.shape(), DType::F32, Device::CUDA);
  Tensor dk = Tensor::empty(k.shape(), DType::F32, Device::CUDA);
  Tensor dv = Tensor::empty(v.shape(), DType::F32, Device::CUDA);
  report(cases, "attention backward fp32", "fp32_gemm_4096",
         timer.measure([&] { cuda::attention_backward(shape, out, q, k, v, out, lse, dq, dk, dv); },
                       iterations, 2.5 * fwd_flops),
         fp32_base);
  return 0;
}

}  // namespace
}  // namespace trident::ops::cuda

int main(int argc, char** argv) {
  int iterations = 10;
  const char* json_path = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--iterations") == 0 && i + 1 < argc) {
      iterations = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
      json_path = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--iterations N] [--json FILE]\n", argv[0]);
      return 2;
    }
  }
  if (iterations < 1) {
    std::fprintf(stderr, "--iterations must be at least 1\n");
    return 2;
  }
  try {
    std::unique_ptr<trident::ops::cuda::JsonFile> json_file;
    if (json_path != nullptr) json_file = std::make_unique<trident::ops::cuda::JsonFile>(json_path);
    nlohmann::json record = nlohmann::json::object();
    const int status = trident::ops::cuda::run_benchmarks(iterations, record);
    if (json_file) json_file->commit(record);
    return status;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
