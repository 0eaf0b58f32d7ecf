// The CPU backend's device memory (Device::CPUDevice, runtime/core/device_access.h): host code
// reads it only through a copy, device code (a DeviceCode scope, an OpenMP team inside it, the
// tensor's own copies) uses it freely.
#include <gtest/gtest.h>

#include <string>

#include "runtime/core/allocator.h"
#include "runtime/core/device_access.h"
#include "runtime/core/tensor.h"

namespace trident {
namespace {

// The message of the error `touch` throws; fails the test when it throws none.
template <typename Touch>
std::string error_of(Touch&& touch) {
  try {
    touch();
  } catch (const std::exception& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an error";
  return "";
}

TEST(DeviceMemory, HostReadsWithoutACopyFailNamingTheTensor) {
  const Tensor device = Tensor::from_vector({1, 2, 3, 4}, {2, 2}).to(Device::CPUDevice);
  EXPECT_EQ(device.describe(), "f32[2, 2] cpu-device");
  const std::string message = error_of([&] { (void)device.data<float>(); });
  EXPECT_NE(message.find("the host touched f32[2, 2] cpu-device"), std::string::npos) << message;
  EXPECT_NE(message.find(".on(Device::CPU)"), std::string::npos) << message;
  EXPECT_NE(error_of([&] { (void)device.item(0); }).find("host only"), std::string::npos);
  Tensor target = Tensor::empty({4}, DType::F32, Device::CPUDevice);
  EXPECT_NE(error_of([&] { target.fill(1.0f); }).find("without a copy"), std::string::npos);
}

TEST(DeviceMemory, CopiesAndDeviceCodeReachIt) {
  const Tensor host = Tensor::from_vector({1, 2, 3, 4}, {4});
  Tensor device = host.to(Device::CPUDevice);
  EXPECT_EQ(device.to_vector(), host.to_vector());  // a copy to the host
  EXPECT_EQ(device.on(Device::CPU).item(3), 4.0f);  // the same, by hand
  Tensor second = Tensor::zeros({4}, DType::F32, Device::CPUDevice);
  second.copy_from(device);  // device to device
  EXPECT_EQ(second.clone().to_vector(), host.to_vector());
  {
    const DeviceCode kernel;  // what the op API opens around a CPU kernel
    float* values = device.data<float>();
    int64_t touched = 0;
#pragma omp parallel for reduction(+ : touched)
    for (int i = 0; i < 4; ++i) {
      values[i] = device.data<float>()[i] * 2.0f;  // worker threads of the kernel's team
      ++touched;
    }
    EXPECT_EQ(touched, 4);
  }
  EXPECT_EQ(device.to_vector(), (std::vector<float>{2, 4, 6, 8}));
  EXPECT_FALSE(in_device_code());
}

TEST(DeviceMemory, HasItsOwnAllocator) {
  Allocator& device = Allocator::instance(Device::CPUDevice);
  Allocator& host = Allocator::instance(Device::CPU);
  EXPECT_NE(&device, &host);
  const int64_t before = device.stats().current_bytes;
  const int64_t host_before = host.stats().current_bytes;
  {
    const Tensor t = Tensor::empty({1024}, DType::F32, Device::CPUDevice);
    EXPECT_GE(device.stats().current_bytes, before + 4096);
    EXPECT_EQ(host.stats().current_bytes, host_before);
  }
  EXPECT_EQ(device.stats().current_bytes, before);
}

}  // namespace
}  // namespace trident
