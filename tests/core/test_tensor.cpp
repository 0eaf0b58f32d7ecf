#include <gtest/gtest.h>

#include "runtime/core/allocator.h"
#include "runtime/core/block_cache.h"
#include "runtime/core/tensor.h"

namespace trident {
namespace {

TEST(Tensor, ShapeAndViews) {
  Tensor t = Tensor::zeros({4, 3});
  EXPECT_EQ(t.numel(), 12);
  EXPECT_EQ(t.size(-1), 3);
  for (int i = 0; i < 12; ++i) t.data<float>()[i] = static_cast<float>(i);
  Tensor rows = t.narrow(1, 3);
  EXPECT_EQ(rows.shape(), (Shape{2, 3}));
  EXPECT_FLOAT_EQ(rows.item(0), 3.0f);
  EXPECT_TRUE(rows.is_view());
  rows.data<float>()[0] = -1.0f;  // views share storage
  EXPECT_FLOAT_EQ(t.item(3), -1.0f);
  Tensor flat = t.view({-1});
  EXPECT_EQ(flat.shape(), (Shape{12}));
  EXPECT_THROW(t.view({5, -1}), Error);
  EXPECT_THROW(t.narrow(2, 5), Error);
}

TEST(Tensor, Bf16RoundTripRoundsToNearestEven) {
  Tensor f = Tensor::from_vector({1.0f, 1.00390625f, 1.01171875f, -3.5f, 1e-3f}, {5});
  Tensor b = f.to(DType::BF16);
  EXPECT_EQ(b.nbytes(), 10u);
  Tensor back = b.to(DType::F32);
  EXPECT_FLOAT_EQ(back.item(0), 1.0f);
  EXPECT_FLOAT_EQ(back.item(1), 1.0f);         // exact tie -> even mantissa
  EXPECT_FLOAT_EQ(back.item(2), 1.015625f);    // tie -> rounds up to even
  EXPECT_FLOAT_EQ(back.item(3), -3.5f);
  EXPECT_NEAR(back.item(4), 1e-3f, 1e-5f);
}

TEST(Allocator, CountsCurrentAndPeakBytes) {
  Allocator& cpu = Allocator::instance(Device::CPU);
  cpu.reset_peak();
  const int64_t before = cpu.stats().current_bytes;
  {
    Tensor a = Tensor::empty({1024}, DType::F32);
    Tensor b = Tensor::empty({512}, DType::BF16);
    EXPECT_EQ(cpu.stats().current_bytes - before, 4096 + 1024);
    Tensor view = a.narrow(0, 10);  // views allocate nothing
    EXPECT_EQ(cpu.stats().current_bytes - before, 4096 + 1024);
  }
  EXPECT_EQ(cpu.stats().current_bytes, before);
  EXPECT_EQ(cpu.stats().peak_bytes - before, 4096 + 1024);
}

TEST(Allocator, SizeClassesRoundUpByAtMostAnEighth) {
  EXPECT_EQ(block_size_class(0), 0u);
  EXPECT_EQ(block_size_class(1), 64u);
  EXPECT_EQ(block_size_class(4096), 4096u);
  EXPECT_EQ(block_size_class(4097), 4608u);
  for (size_t bytes = 1; bytes < (size_t{1} << 26); bytes = bytes * 3 / 2 + 7) {
    const size_t size_class = block_size_class(bytes);
    EXPECT_GE(size_class, bytes);
    EXPECT_EQ(size_class % 64, 0u);
    if (bytes > 4096) {
      EXPECT_LE(size_class, bytes + bytes / 8) << bytes;
    }
    EXPECT_EQ(block_size_class(size_class), size_class);  // a class is its own class
  }
}

// The second round of the same shapes is served from the cache: no system allocation, and the
// reserved bytes do not grow. Freed blocks count as cached, which fragmentation reports.
TEST(Allocator, ReusesReleasedBlocksOfTheSameClass) {
  Allocator& cpu = Allocator::instance(Device::CPU);
  if (!cpu.caching())
    GTEST_SKIP() << "caching is off (sanitizer build or TRIDENT_ALLOCATOR_CACHE=0)";
  const auto round = [] {
    Tensor a = Tensor::empty({100000});
    Tensor b = Tensor::empty({3, 7}, DType::BF16);
    Tensor c = Tensor::empty({99999});  // a's class: reuses nothing while a is alive
    return a.numel() + b.numel() + c.numel();
  };
  round();
  const MemoryStats before = cpu.stats();
  round();
  const MemoryStats after = cpu.stats();
  EXPECT_EQ(after.system_allocations, before.system_allocations);
  EXPECT_EQ(after.reserved_bytes, before.reserved_bytes);
  EXPECT_EQ(after.total_allocations, before.total_allocations + 3);
  EXPECT_GE(after.cached_bytes, 2 * 400000);
  EXPECT_GT(after.fragmentation(), 0.0);
  cpu.release_cached();
  const MemoryStats drained = cpu.stats();
  EXPECT_EQ(drained.cached_bytes, 0);
  EXPECT_LE(drained.reserved_bytes, after.reserved_bytes - 2 * 400000);
}

TEST(Tensor, CudaTensorWithoutCudaBuildIsAClearError) {
#ifndef TRIDENT_WITH_CUDA
  try {
    Tensor::empty({4}, DType::F32, Device::CUDA);
    FAIL() << "expected an error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("no CUDA support"), std::string::npos);
  }
#else
  GTEST_SKIP() << "built with CUDA; device allocation is tested by the CUDA op tests";
#endif
}

TEST(Tensor, RelativeErrorIsNormScaled) {
  Tensor a = Tensor::from_vector({1.0f, 2.0f, 2.0f}, {3});
  Tensor b = Tensor::from_vector({1.0f, 2.0f, 2.03f}, {3});
  EXPECT_NEAR(relative_error(b, a), 0.01, 1e-6);
}

}  // namespace
}  // namespace trident
