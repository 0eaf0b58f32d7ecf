// RoPE with YaRN against the CPU oracle (same host-built table on both sides).
#include "ops/cpu/rope.h"
#include "ops/cuda/rope.h"
#include "tests/cuda/cuda_test_util.h"

namespace trident::cuda_test {
namespace {

struct RopeCase {
  int64_t tokens, heads, rotary;
  double factor;
};
void PrintTo(const RopeCase& c, std::ostream* os) {
  *os << "T" << c.tokens << "_H" << c.heads << "_R" << c.rotary << "_yarn" << c.factor;
}

class CudaRope : public ::testing::TestWithParam<RopeCase> {};

TEST_P(CudaRope, ForwardBackwardAndAliasingMatchCpu) {
  SKIP_WITHOUT_GPU();
  const RopeCase c = GetParam();
  cpu::YarnSettings yarn;
  yarn.factor = c.factor;
  yarn.original_max_position = 64;
  yarn.mscale = 1.0;
  yarn.mscale_all_dim = c.factor > 1.0 ? 0.5 : 0.0;
  const int64_t max_positions = 512;
  const cpu::RopeTable host_table = cpu::make_rope_table(c.rotary, max_positions, yarn);
  const cuda::RopeTable table = cuda::rope_table_to_device(host_table);

  const Tensor x = random_tensor({c.tokens, c.heads, c.rotary}, 1);
  const Tensor positions = random_ids(c.tokens, max_positions, 2);
  Tensor y = Tensor::empty(x.shape());
  cpu::rope_forward(x, positions, host_table, y);
  Tensor y_gpu = poisoned(x.shape());
  cuda::rope_forward(gpu(x), gpu(positions), table, y_gpu);
  EXPECT_LE(gpu_error(y_gpu, y), kFp32Tolerance);
  Tensor in_place = gpu(x);
  cuda::rope_forward(in_place, gpu(positions), table, in_place);
  EXPECT_LE(gpu_error(in_place, y), kFp32Tolerance);

  const Tensor dy = random_tensor(x.shape(), 3);
  EXPECT_LE(written_error(
                x.shape(), [&](Tensor& dx) { cpu::rope_backward(dy, positions, host_table, dx); },
                [&](Tensor& dx) { cuda::rope_backward(gpu(dy), gpu(positions), table, dx); }),
            kFp32Tolerance);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaRope,
                         ::testing::Values(RopeCase{1, 1, 2, 1.0}, RopeCase{9, 1, 64, 40.0},
                                           RopeCase{33, 4, 64, 1.0}, RopeCase{128, 16, 64, 40.0}));

TEST(CudaRopeTable, DeviceTableEqualsHostTable) {
  SKIP_WITHOUT_GPU();
  cpu::YarnSettings yarn;
  yarn.factor = 40.0;
  const cuda::RopeTable table = cuda::make_rope_table(64, 128, yarn);
  const cpu::RopeTable host = cpu::make_rope_table(64, 128, yarn);
  EXPECT_EQ(table.cos.device(), Device::CUDA);
  EXPECT_EQ(gpu_error(table.cos, host.cos), 0.0);
  EXPECT_EQ(gpu_error(table.sin, host.sin), 0.0);
}

}  // namespace
}  // namespace trident::cuda_test
