#pragma once
// The CPU backend's device memory (Device::CPUDevice) is host RAM that only device code may
// touch: the ops, the communicators and the tensor's own copies. Host code reads it through a
// copy (Tensor::on(Device::CPU), to_vector), exactly as it must for a GPU's memory, so a
// missing copy fails on the CPU too. Device code marks itself with a DeviceCode scope on its
// thread; the worker threads of an OpenMP team opened inside it count as device code as well.
namespace trident {

class DeviceCode {
 public:
  DeviceCode();
  ~DeviceCode();
  DeviceCode(const DeviceCode&) = delete;
  DeviceCode& operator=(const DeviceCode&) = delete;
};

// Whether this thread runs device code now (a DeviceCode scope, or inside an OpenMP team).
bool in_device_code();

// Whether this thread is inside an OpenMP team: a kernel's worker threads, which run on behalf
// of the thread that opened the team (a stream's thread when the op runs in a queued item).
bool in_openmp_team();

}  // namespace trident
