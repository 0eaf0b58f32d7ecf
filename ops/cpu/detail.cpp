#include "ops/cpu/detail.h"

namespace trident::ops::cpu::detail {

Fp32Values::Fp32Values(const Tensor& t, const char* name) : Fp32Values(t, 0, t.numel(), name) {}

Fp32Values::Fp32Values(const Tensor& t, int64_t begin, int64_t count, const char* name) {
  check_host(t, name);
  TRIDENT_CHECK(begin >= 0 && count >= 0 && begin + count <= t.numel(), name, ": range [", begin,
                ", ", begin + count, ") outside ", t.describe());
  if (count == 0) return;
  if (t.dtype() == DType::F32) {
    data_ = t.data<float>() + begin;
    return;
  }
  TRIDENT_CHECK(t.dtype() == DType::BF16, name, " must be f32 or bf16, got ", t.describe());
  const bf16* source = t.data<bf16>() + begin;
  widened_.resize(static_cast<size_t>(count));
#pragma omp parallel for schedule(static) if (count > 65536)
  for (int64_t i = 0; i < count; ++i) widened_[static_cast<size_t>(i)] = bf16_to_float(source[i]);
  data_ = widened_.data();
}

}  // namespace trident::ops::cpu::detail
