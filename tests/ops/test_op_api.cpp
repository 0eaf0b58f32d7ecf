// The op API (ops/ops.h) runs each call on the backend of its tensors: on CPU tensors it is the
// CPU backend exactly, and operands it cannot run (two devices, or CUDA without a CUDA backend)
// are refused with the op's name before any kernel touches them.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "gradient_check.h"
#include "ops/cpu/ops.h"
#include "ops/ops.h"
#include "runtime/core/error.h"
#include "tests/support/expect_user_error.h"

namespace trident::ops::testing {
namespace {

// A tensor tagged as CUDA memory without any allocation: the op API must refuse it before a
// kernel could read it, so the host buffer behind it is never touched.
Tensor tagged_cuda(std::vector<float>& host, const Shape& shape) {
  return Tensor::wrap(host.data(), shape, DType::F32, Device::CUDA);
}

TEST(OpApi, CpuTensorsGetTheCpuBackendExactly) {
  std::mt19937 rng(7);
  const Tensor x = random_tensor({6, 8}, rng);
  const Tensor w = random_tensor({5, 8}, rng);
  Tensor via_api = Tensor::empty({6, 5});
  Tensor direct = Tensor::empty({6, 5});
  ops::linear_forward(x, w, via_api);
  cpu::linear_forward(x, w, direct);
  EXPECT_EQ(relative_error(via_api, direct), 0.0);

  const Tensor norm_w = random_tensor({8}, rng);
  Tensor y_api = Tensor::empty({6, 8}), rstd_api = Tensor::empty({6});
  Tensor y_cpu = Tensor::empty({6, 8}), rstd_cpu = Tensor::empty({6});
  ops::rmsnorm_forward(x, norm_w, 1e-6f, y_api, rstd_api);
  cpu::rmsnorm_forward(x, norm_w, 1e-6f, y_cpu, rstd_cpu);
  EXPECT_EQ(relative_error(y_api, y_cpu), 0.0);
  EXPECT_EQ(relative_error(rstd_api, rstd_cpu), 0.0);

  // The router and the permutation plan, whose index tensors carry the device.
  RouterSettings settings;
  settings.experts = 4;
  settings.top_k = 2;
  const Tensor logits = random_tensor({6, 4}, rng);
  const Tensor bias = Tensor::zeros({4});
  Tensor indices = Tensor::empty({6, 2}, DType::I32), weights = Tensor::empty({6, 2});
  Tensor scores = Tensor::empty({6, 4});
  ops::router_forward(settings, logits, bias, indices, weights, scores);
  const PermutePlan plan = ops::make_permute_plan(indices, 4);
  EXPECT_EQ(plan.slot_to_row.device(), Device::CPU);
  EXPECT_EQ(plan.tokens_per_expert, cpu::make_permute_plan(indices, 4).tokens_per_expert);
  Tensor routed = Tensor::empty({12, 8});
  ops::permute_forward(plan, x, routed);
  Tensor back = Tensor::empty({6, 8});
  ops::unpermute_forward(plan, routed, weights, back);
  Tensor back_cpu = Tensor::empty({6, 8});
  cpu::unpermute_forward(plan, routed, weights, back_cpu);
  EXPECT_EQ(relative_error(back, back_cpu), 0.0);

  const RopeTable table = ops::make_rope_table(8, 16, YarnSettings{});
  EXPECT_EQ(table.cos.device(), Device::CPU);
  EXPECT_EQ(relative_error(table.cos, cpu::make_rope_table(8, 16, YarnSettings{}).cos), 0.0);
}

TEST(OpApi, OperandsOnTwoDevicesAreRefusedNamingTheOp) {
  std::vector<float> host(40, 0.0f);
  const Tensor x = Tensor::zeros({8, 5});
  const Tensor w = tagged_cuda(host, {8, 5});
  Tensor y = Tensor::empty({8, 8});
  const std::string message = trident::testing::error_message([&] { ops::linear_forward(x, w, y); });
  for (const char* words : {"linear_forward", "different devices", "cpu", "cuda"}) {
    EXPECT_NE(message.find(words), std::string::npos) << "'" << words << "' not in: " << message;
  }
}

TEST(OpApi, CudaTensorsNeedACudaBackend) {
#ifdef TRIDENT_WITH_CUDA
  GTEST_SKIP() << "this build has the CUDA backend; tests/cuda checks it against the CPU";
#else
  std::vector<float> host_x(8, 1.0f), host_y(8, 0.0f);
  const Tensor x = tagged_cuda(host_x, {8});
  Tensor y = tagged_cuda(host_y, {8});
  const std::string message = trident::testing::error_message([&] { ops::axpy(2.0f, x, y); });
  EXPECT_NE(message.find("axpy"), std::string::npos) << message;
  EXPECT_NE(message.find("no CUDA backend"), std::string::npos) << message;
  EXPECT_EQ(host_y, std::vector<float>(8, 0.0f));  // nothing ran on the host memory behind it
#endif
}

}  // namespace
}  // namespace trident::ops::testing
