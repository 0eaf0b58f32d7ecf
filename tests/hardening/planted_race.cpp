// A planted data race, built only in the ThreadSanitizer variant (scripts/test.sh --sanitize
// thread): the threads of an OpenMP parallel region all add into one element of a Trident
// tensor with no reduction and no atomic. The ctest around it passes only if TSan reports the
// race: the proof that the variant, with its options (uninstrumented libraries ignored, Archer
// announcing OpenMP's own ordering), still sees a race between Trident's threads.
#include <omp.h>

#include <cstdio>

#include "runtime/core/tensor.h"

int main() {
  trident::Tensor sum = trident::Tensor::zeros({1}, trident::DType::F32);
  float* target = sum.data<float>();
#pragma omp parallel num_threads(2)
  {
    for (int i = 0; i < 1000; ++i) target[0] += 1.0f;  // the planted bug
  }
  std::printf("the race went unnoticed (sum %g)\n", static_cast<double>(target[0]));
  return 0;
}
