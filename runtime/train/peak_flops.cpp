#include "runtime/train/peak_flops.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "ops/ops.h"
#include "runtime/core/error.h"
#include "runtime/core/logging.h"

namespace trident::train {

double measure_gemm_flops_per_second(int64_t size) {
  constexpr int kRepetitions = 5;
  const Tensor a = Tensor::full({size, size}, 0.5f);
  const Tensor b = Tensor::full({size, size}, 0.25f);
  Tensor c = Tensor::zeros({size, size});
  ops::gemm(false, false, 1.0f, a, b, 0.0f, c);  // warm-up: pages, BLAS threads
  double best_seconds = 0.0;
  for (int i = 0; i < kRepetitions; ++i) {
    const auto start = std::chrono::steady_clock::now();
    ops::gemm(false, false, 1.0f, a, b, 0.0f, c);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (i == 0 || seconds < best_seconds) best_seconds = seconds;
  }
  const double flops =
      2.0 * static_cast<double>(size) * static_cast<double>(size) * static_cast<double>(size);
  return best_seconds > 0 ? flops / best_seconds : 0.0;
}

double parse_peak_flops(const std::string& value) {
  if (value == "measure") {
    const double measured = measure_gemm_flops_per_second();
    TLOG_INFO("peak for MFU: ", measured / 1e12, " TFLOPS per rank (fp32 GEMM measured here)");
    return measured;
  }
  char* end = nullptr;
  const double tflops = std::strtod(value.c_str(), &end);
  TRIDENT_USER_CHECK(!value.empty() && end == value.c_str() + value.size() && tflops > 0,
                     "--peak-tflops must be a positive number of TFLOPS per rank or 'measure', "
                     "got '",
                     value, "'");
  return tflops * 1e12;
}

}  // namespace trident::train
