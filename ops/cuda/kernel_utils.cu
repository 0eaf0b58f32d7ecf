#include <string>

#include "ops/cuda/kernel_utils.h"

namespace trident::ops::cuda::detail {

StreamScratch::StreamScratch(size_t bytes, cudaStream_t stream) : stream_(stream) {
  if (bytes > 0) TRIDENT_CHECK_CUDA(cudaMallocAsync(&memory_, bytes, stream));
}

StreamScratch::~StreamScratch() {
  if (memory_ != nullptr) cudaFreeAsync(memory_, stream_);  // a destructor cannot report failure
}

void expect_cuda(const Tensor& t, const char* what) {
  TRIDENT_CHECK(t.defined(), what, " is undefined");
  TRIDENT_CHECK(t.device() == Device::CUDA, what, " must be a CUDA tensor, got ", t.describe());
}

void expect_dtype(const Tensor& t, DType dtype, const char* what) {
  expect_cuda(t, what);
  TRIDENT_CHECK(t.dtype() == dtype, what, " must be ", dtype_name(dtype), ", got ",
                t.describe());
}

void expect_float_or_bf16(const Tensor& t, const char* what) {
  expect_cuda(t, what);
  TRIDENT_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::BF16, what,
                " must be f32 or bf16, got ", t.describe());
}

void expect_numel(const Tensor& t, int64_t numel, const char* what) {
  TRIDENT_CHECK(t.numel() == numel, what, " must hold ", numel, " elements, got ",
                t.describe());
}

LogitRows logit_rows(const Tensor& logits, const Tensor& targets, const char* op,
                     const char* shape) {
  const std::string logits_name = std::string(op) + " logits";
  const std::string targets_name = std::string(op) + " targets";
  expect_dtype(logits, DType::F32, logits_name.c_str());
  expect_dtype(targets, DType::I32, targets_name.c_str());
  TRIDENT_CHECK(logits.dim() == 2, logits_name, " must be ", shape, ", got ", logits.describe());
  expect_numel(targets, logits.size(0), targets_name.c_str());
  return LogitRows{logits.size(0), logits.size(1)};
}

}  // namespace trident::ops::cuda::detail
