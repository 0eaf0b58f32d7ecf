#pragma once
// A dense, row-major (contiguous) tensor: shape, dtype (fp32/bf16/int), device (CPU/CUDA),
// either owning its storage or a view into another tensor's storage (or external memory such
// as a memory-mapped file). Storage is reference counted; views keep it alive.
//
// Tensors are always contiguous: a view is a reshape or a contiguous range of rows along the
// first dimension. That keeps every kernel a plain loop over memory and every shard a slab.

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "runtime/core/dtype.h"
#include "runtime/core/error.h"
#include "runtime/core/stream_origin.h"

namespace trident {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape);
std::string shape_string(const Shape& shape);

class Storage {
 public:
  Storage(size_t bytes, Device device);                  // owning, counted by the allocator
  Storage(void* external, size_t bytes, Device device);  // non-owning (mmap, foreign buffer)
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }
  bool owning() const { return owning_; }
  // The stream work item that allocated this storage (null when the host did):
  // runtime/core/stream_origin.h.
  const StreamOrigin* origin() const { return origin_.get(); }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
  bool owning_ = true;
  std::shared_ptr<const StreamOrigin> origin_;
};

class Tensor {
 public:
  Tensor() = default;  // undefined; defined() is false

  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor full(const Shape& shape, float value, DType dtype = DType::F32);
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape);
  static Tensor from_ints(const std::vector<int32_t>& values, const Shape& shape);
  // A view of memory the tensor does not own; the caller keeps it alive.
  static Tensor wrap(void* data, const Shape& shape, DType dtype, Device device = Device::CPU);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t axis) const;  // negative axes count from the end
  int64_t numel() const { return numel_; }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  bool is_view() const;  // shares storage with another tensor or wraps external memory
  // Whether `other` is a handle on the same elements: the same storage, offset, element count
  // and dtype (its shape may differ: a view). Touches no data, so device tensors may be asked.
  bool same_elements(const Tensor& other) const {
    return storage_ == other.storage_ && offset_bytes_ == other.offset_bytes_ &&
           numel_ == other.numel_ && dtype_ == other.dtype_;
  }

  void* raw_data() const;
  template <typename T>
  T* data() const {
    TRIDENT_CHECK(dtype_ == dtype_of<T>(), "tensor holds ", dtype_name(dtype_), " but ",
                  dtype_name(dtype_of<T>()), " data was requested");
    return static_cast<T*>(raw_data());
  }

  // Same storage, new shape with the same element count (one dimension may be -1).
  Tensor view(const Shape& shape) const;
  // Rows [begin, end) along the first dimension, sharing storage.
  Tensor narrow(int64_t begin, int64_t end) const;
  // A new owning copy.
  Tensor clone() const;
  // Convert (copy) to another dtype or device.
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;
  // This tensor if it is on `device` already (a handle, no copy), else a copy there.
  Tensor on(Device device) const { return device_ == device ? *this : to(device); }

  void fill(float value);
  void zero();
  // Copies values from a tensor of the same element count (dtype converted, devices may differ).
  void copy_from(const Tensor& source);

  // Host-side element access for tests and small utilities (converts bf16).
  float item(int64_t flat_index) const;
  std::vector<float> to_vector() const;

  std::string describe() const;  // "f32[4, 8] cpu"

 private:
  float element(int64_t flat_index) const;  // item() without the host-only check

  std::shared_ptr<Storage> storage_;
  size_t offset_bytes_ = 0;
  Shape shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::F32;
  Device device_ = Device::CPU;
};

// Host code that writes a tensor wherever it lives: fill(host) gets `t` itself when it is on the
// host, else a host copy of its values that is copied back into `t` afterwards (device memory is
// written only by copies or ops).
template <typename Fill>
void update_on_host(Tensor& t, Fill&& fill) {
  if (t.device() == Device::CPU) {
    fill(t);
    return;
  }
  Tensor host = t.to(Device::CPU);
  fill(host);
  t.copy_from(host);
}

// Norm-scaled comparison used across tests: ||a - b|| / max(||b||, tiny).
double relative_error(const Tensor& a, const Tensor& b);

}  // namespace trident
