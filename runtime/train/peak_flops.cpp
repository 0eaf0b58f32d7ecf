#include "runtime/train/peak_flops.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <vector>

#include "ops/ops.h"
#include "runtime/core/error.h"
#include "runtime/core/logging.h"

namespace trident::train {

namespace {

constexpr int kRepetitions = 5;

double square_gemm_flops(int64_t size) {
  const auto n = static_cast<double>(size);
  return 2.0 * n * n * n;
}

// The best of kRepetitions timings of run(); `finish` makes the work done by then complete.
template <typename Run, typename Finish>
double best_seconds(const Run& run, const Finish& finish) {
  run();  // warm-up: pages, BLAS threads, cuBLASLt's heuristics
  finish();
  double best = 0.0;
  for (int i = 0; i < kRepetitions; ++i) {
    const auto start = std::chrono::steady_clock::now();
    run();
    finish();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (i == 0 || seconds < best) best = seconds;
  }
  return best;
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// Whether `word` occurs in `text` as a whole word (letters and digits around it end it), so
// that "l4" does not match "L40S".
bool has_word(const std::string& text, const std::string& word) {
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) {
    const bool starts = at == 0 || std::isalnum(static_cast<unsigned char>(text[at - 1])) == 0;
    const size_t end = at + word.size();
    const bool ends =
        end == text.size() || std::isalnum(static_cast<unsigned char>(text[end])) == 0;
    if (starts && ends) return true;
  }
  return false;
}

}  // namespace

double measure_gemm_flops_per_second(int64_t size) {
  const Tensor a = Tensor::full({size, size}, 0.5f);
  const Tensor b = Tensor::full({size, size}, 0.25f);
  Tensor c = Tensor::zeros({size, size});
  const double seconds = best_seconds([&] { ops::gemm(false, false, 1.0f, a, b, 0.0f, c); }, [] {});
  return seconds > 0 ? square_gemm_flops(size) / seconds : 0.0;
}

double measure_gpu_bf16_gemm_flops_per_second(int64_t size) {
  const std::string unavailable = ops::cuda_unavailable_reason();
  TRIDENT_USER_CHECK(unavailable.empty(), "measuring the GPU's GEMM rate: ", unavailable);
  const Tensor a = Tensor::full({size, size}, 0.5f).to(DType::BF16).to(Device::CUDA);
  const Tensor b = Tensor::full({size, size}, 0.25f).to(DType::BF16).to(Device::CUDA);
  Tensor c = Tensor::zeros({size, size}, DType::BF16, Device::CUDA);
  constexpr int kCallsPerTiming = 10;  // one timing spans several launches, then one host read
  const double seconds = best_seconds(
      [&] {
        for (int i = 0; i < kCallsPerTiming; ++i) ops::gemm(false, false, 1.0f, a, b, 0.0f, c);
      },
      [&] { (void)c.narrow(0, 1).to(Device::CPU); });
  return seconds > 0 ? kCallsPerTiming * square_gemm_flops(size) / seconds : 0.0;
}

double gpu_dense_bf16_tflops(const std::string& gpu_name) {
  const std::string name = lower(gpu_name);
  // Per family, the board variants first: the PCIe and NVL boards run at lower clocks and power.
  struct Entry {
    const char* family;   // a whole word of the name ("h100" is not found in "gh100")
    const char* variant;  // a part of the name, or "" for any board of the family
    double tflops;
  };
  static const std::vector<Entry> kTable = {
      {"b200", "", 2250.0}, {"gh200", "", 989.4},    {"h200", "nvl", 835.5},
      {"h200", "", 989.4},  {"h100", "pcie", 756.5}, {"h100", "nvl", 835.5},
      {"h100", "", 989.4},  {"h800", "pcie", 756.5}, {"h800", "", 989.4},
      {"h20", "", 148.0},   {"a100", "", 312.0},     {"a800", "", 312.0},
      {"l40s", "", 362.1},  {"l40", "", 181.0},      {"l4", "", 121.0},
      {"a10", "", 125.0},
  };
  for (const Entry& entry : kTable) {
    if (has_word(name, entry.family) &&
        (*entry.variant == '\0' || name.find(entry.variant) != std::string::npos)) {
      return entry.tflops;
    }
  }
  return 0.0;
}

double parse_peak_flops(const std::string& value, Device device) {
  // Without a usable GPU a CUDA run stops at start-up with the reason (training_device); until
  // then its peak is the CPU's, so that this flag is not the one to report it.
  const bool gpu = device == Device::CUDA && ops::cuda_unavailable_reason().empty();
  if (value == "measure") {
    const double measured =
        gpu ? measure_gpu_bf16_gemm_flops_per_second() : measure_gemm_flops_per_second();
    TLOG_INFO("peak for MFU: ", measured / 1e12, " TFLOPS per rank (",
              gpu ? "bf16 GEMM measured on this GPU" : "fp32 GEMM measured here", ")");
    return measured;
  }
  if (value == "auto") {
    if (!gpu) return kDefaultPeakTflops * 1e12;
    const std::string name = ops::cuda_device_name();
    const double tflops = gpu_dense_bf16_tflops(name);
    if (tflops > 0) {
      TLOG_INFO("peak for MFU: ", tflops, " TFLOPS per rank (dense bf16 of ", name,
                "; --peak-tflops sets another)");
      return tflops * 1e12;
    }
    TLOG_WARN("peak for MFU: the GPU '", name,
              "' is not in the table of known peaks; timing a bf16 GEMM on it instead "
              "(--peak-tflops sets the figure)");
    return parse_peak_flops("measure", device);
  }
  char* end = nullptr;
  const double tflops = std::strtod(value.c_str(), &end);
  TRIDENT_USER_CHECK(!value.empty() && end == value.c_str() + value.size() && tflops > 0,
                     "--peak-tflops must be a positive number of TFLOPS per rank, 'auto' or "
                     "'measure', got '",
                     value, "'");
  return tflops * 1e12;
}

}  // namespace trident::train
