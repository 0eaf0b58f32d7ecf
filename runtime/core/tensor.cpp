#include "runtime/core/tensor.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

#include "runtime/core/allocator.h"
#include "runtime/core/device_access.h"

#ifdef TRIDENT_WITH_CUDA
#include <cuda_runtime.h>

#include "runtime/core/cuda_check.h"
#endif

namespace trident {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32: return 4;
    case DType::BF16: return 2;
    case DType::I32: return 4;
    case DType::I64: return 8;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "f32";
    case DType::BF16: return "bf16";
    case DType::I32: return "i32";
    case DType::I64: return "i64";
  }
  return "?";
}

const char* device_name(Device device) {
  switch (device) {
    case Device::CPU:
      return "cpu";
    case Device::CUDA:
      return "cuda";
    case Device::CPUDevice:
      return "cpu-device";
  }
  return "?";
}

int64_t shape_numel(const Shape& shape) {
  int64_t count = 1;
  for (int64_t extent : shape) {
    TRIDENT_CHECK(extent >= 0, "negative extent in shape ", shape_string(shape));
    count *= extent;
  }
  return count;
}

std::string shape_string(const Shape& shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

Storage::Storage(size_t bytes, Device device)
    : data_(Allocator::instance(device).allocate(bytes)),
      bytes_(bytes),
      device_(device),
      origin_(current_stream_item()) {}

Storage::Storage(void* external, size_t bytes, Device device)
    : data_(external), bytes_(bytes), device_(device), owning_(false) {}

Storage::~Storage() {
  if (owning_) Allocator::instance(device_).release(data_, bytes_);
}

namespace {
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (bytes == 0) return;
  if (in_host_ram(dst_device) && in_host_ram(src_device)) {
    std::memcpy(dst, src, bytes);
    return;
  }
#ifdef TRIDENT_WITH_CUDA
  cudaMemcpyKind kind = in_host_ram(dst_device)   ? cudaMemcpyDeviceToHost
                        : in_host_ram(src_device) ? cudaMemcpyHostToDevice
                                                  : cudaMemcpyDeviceToDevice;
  TRIDENT_CHECK_CUDA(cudaMemcpy(dst, src, bytes, kind));
#else
  TRIDENT_USER_FAIL("CUDA tensors are not available in this build");
#endif
}

// A CPU tensor of `shape` holding a copy of `values`, which must fill it exactly.
template <typename T>
Tensor host_copy(const std::vector<T>& values, const Shape& shape, DType dtype, const char* what) {
  Tensor t = Tensor::empty(shape, dtype);
  TRIDENT_CHECK(static_cast<int64_t>(values.size()) == t.numel(), what, ": ", values.size(),
                " values for shape ", shape_string(shape));
  if (t.nbytes() > 0) std::memcpy(t.raw_data(), values.data(), t.nbytes());
  return t;
}
}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  Tensor t;
  t.shape_ = shape;
  t.numel_ = shape_numel(shape);
  t.dtype_ = dtype;
  t.device_ = device;
  t.storage_ = std::make_shared<Storage>(t.nbytes(), device);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.zero();
  return t;
}

Tensor Tensor::full(const Shape& shape, float value, DType dtype) {
  Tensor t = empty(shape, dtype);
  t.fill(value);
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape) {
  return host_copy(values, shape, DType::F32, "from_vector");
}

Tensor Tensor::from_ints(const std::vector<int32_t>& values, const Shape& shape) {
  return host_copy(values, shape, DType::I32, "from_ints");
}

Tensor Tensor::wrap(void* data, const Shape& shape, DType dtype, Device device) {
  Tensor t;
  t.shape_ = shape;
  t.numel_ = shape_numel(shape);
  t.dtype_ = dtype;
  t.device_ = device;
  t.storage_ = std::make_shared<Storage>(data, t.nbytes(), device);
  return t;
}

int64_t Tensor::size(int64_t axis) const {
  const int64_t rank = dim();
  if (axis < 0) axis += rank;
  TRIDENT_CHECK(axis >= 0 && axis < rank, "axis ", axis, " out of range for ", describe());
  return shape_[static_cast<size_t>(axis)];
}

bool Tensor::is_view() const {
  return storage_ && (!storage_->owning() || storage_.use_count() > 1 || offset_bytes_ != 0 ||
                      nbytes() != storage_->bytes());
}

void* Tensor::raw_data() const {
  TRIDENT_CHECK(defined(), "access to an undefined tensor");
  if (device_ == Device::CPUDevice && !in_device_code()) {
    TRIDENT_FAIL("the host touched ", describe(),
                 " in device memory without a copy: read it through .on(Device::CPU) (or "
                 "to_vector), as a GPU's memory would need, or run the work as an op");
  }
  // Memory a stream's work made: the host waits for the stream before it touches it. A kernel's
  // OpenMP workers act for the thread that opened the team (which is a stream's thread when
  // the op runs in a queued item; thread-local state does not pass to them).
  if (const StreamOrigin* origin = storage_->origin();
      origin != nullptr && !current_stream_item() && !in_openmp_team() &&
      !origin->host_may_read()) {
    fail_unsynchronized_host_access(*origin, describe());
  }
  return static_cast<char*>(storage_->data()) + offset_bytes_;
}

Tensor Tensor::view(const Shape& shape) const {
  Shape resolved = shape;
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < resolved.size(); ++i) {
    if (resolved[i] == -1) {
      TRIDENT_CHECK(infer < 0, "view: more than one -1 in ", shape_string(shape));
      infer = static_cast<int>(i);
    } else {
      known *= resolved[i];
    }
  }
  if (infer >= 0) {
    TRIDENT_CHECK(known > 0 && numel_ % known == 0, "view: cannot infer ", shape_string(shape),
                  " from ", describe());
    resolved[static_cast<size_t>(infer)] = numel_ / known;
  }
  TRIDENT_CHECK(shape_numel(resolved) == numel_, "view ", shape_string(resolved),
                " does not match ", describe());
  Tensor t = *this;
  t.shape_ = resolved;
  return t;
}

Tensor Tensor::narrow(int64_t begin, int64_t end) const {
  TRIDENT_CHECK(dim() >= 1, "narrow of a scalar");
  TRIDENT_CHECK(begin >= 0 && begin <= end && end <= shape_[0], "narrow [", begin, ", ", end,
                ") out of range for ", describe());
  const int64_t row = shape_[0] == 0 ? 0 : numel_ / shape_[0];
  Tensor t = *this;
  t.shape_[0] = end - begin;
  t.numel_ = row * (end - begin);
  t.offset_bytes_ = offset_bytes_ + static_cast<size_t>(begin * row) * dtype_size(dtype_);
  return t;
}

Tensor Tensor::clone() const {
  const DeviceCode copy;  // the tensor's own copies are device code
  Tensor t = empty(shape_, dtype_, device_);
  copy_bytes(t.raw_data(), device_, raw_data(), device_, nbytes());
  return t;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return clone();
  Tensor t = empty(shape_, dtype, device_);
  t.copy_from(*this);
  return t;
}

Tensor Tensor::to(Device device) const {
  const DeviceCode copy;
  Tensor t = empty(shape_, dtype_, device);
  copy_bytes(t.raw_data(), device, raw_data(), device_, nbytes());
  return t;
}

void Tensor::fill(float value) {
  TRIDENT_CHECK(in_host_ram(device_), "fill on ", describe(), " (host only)");
  switch (dtype_) {
    case DType::F32: {
      float* p = data<float>();
      for (int64_t i = 0; i < numel_; ++i) p[i] = value;
      break;
    }
    case DType::BF16: {
      bf16* p = data<bf16>();
      const bf16 v = float_to_bf16(value);
      for (int64_t i = 0; i < numel_; ++i) p[i] = v;
      break;
    }
    case DType::I32: {
      int32_t* p = data<int32_t>();
      for (int64_t i = 0; i < numel_; ++i) p[i] = static_cast<int32_t>(value);
      break;
    }
    case DType::I64: {
      int64_t* p = data<int64_t>();
      for (int64_t i = 0; i < numel_; ++i) p[i] = static_cast<int64_t>(value);
      break;
    }
  }
}

void Tensor::zero() {
  if (nbytes() == 0) return;  // an empty tensor has no storage: nothing to clear
  const DeviceCode clear;     // a memset on the device, as cudaMemset is
  if (in_host_ram(device_)) {
    std::memset(raw_data(), 0, nbytes());
    return;
  }
#ifdef TRIDENT_WITH_CUDA
  TRIDENT_CHECK_CUDA(cudaMemset(raw_data(), 0, nbytes()));
#endif
}

void Tensor::copy_from(const Tensor& source) {
  TRIDENT_CHECK(source.numel() == numel_, "copy_from ", source.describe(), " into ", describe());
  // A dtype conversion is host code (a GPU needs ops::convert): on device memory only inside an
  // op, on the CPU backend, whose kernels may widen a bf16 operand this way.
  const bool converts_here =
      (device_ == Device::CPU && source.device() == Device::CPU) ||
      (in_host_ram(device_) && in_host_ram(source.device()) && in_device_code());
  const DeviceCode copy;
  if (source.dtype() == dtype_) {
    copy_bytes(raw_data(), device_, source.raw_data(), source.device(), nbytes());
    return;
  }
  TRIDENT_CHECK(converts_here, "dtype conversion is host-only: ", source.describe(), " -> ",
                describe(), " (ops::convert converts on a device)");
  if (dtype_ == DType::F32 && source.dtype() == DType::BF16) {
    const bf16* src = source.data<bf16>();
    float* dst = data<float>();
    for (int64_t i = 0; i < numel_; ++i) dst[i] = bf16_to_float(src[i]);
  } else if (dtype_ == DType::BF16 && source.dtype() == DType::F32) {
    const float* src = source.data<float>();
    bf16* dst = data<bf16>();
    for (int64_t i = 0; i < numel_; ++i) dst[i] = float_to_bf16(src[i]);
  } else {
    for (int64_t i = 0; i < numel_; ++i) {
      const float v = source.element(i);
      switch (dtype_) {
        case DType::F32: data<float>()[i] = v; break;
        case DType::BF16: data<bf16>()[i] = float_to_bf16(v); break;
        case DType::I32: data<int32_t>()[i] = static_cast<int32_t>(v); break;
        case DType::I64: data<int64_t>()[i] = static_cast<int64_t>(v); break;
      }
    }
  }
}

float Tensor::item(int64_t flat_index) const {
  TRIDENT_CHECK(device_ == Device::CPU, "item() on ", describe(),
                " (host only: copy it to the host first, with .on(Device::CPU))");
  TRIDENT_CHECK(flat_index >= 0 && flat_index < numel_, "item ", flat_index, " of ", describe());
  return element(flat_index);
}

float Tensor::element(int64_t flat_index) const {
  switch (dtype_) {
    case DType::F32: return data<float>()[flat_index];
    case DType::BF16: return bf16_to_float(data<bf16>()[flat_index]);
    case DType::I32: return static_cast<float>(data<int32_t>()[flat_index]);
    case DType::I64: return static_cast<float>(data<int64_t>()[flat_index]);
  }
  return 0.0f;
}

std::vector<float> Tensor::to_vector() const {
  const Tensor host = on(Device::CPU);
  std::vector<float> out(static_cast<size_t>(numel_));
  for (int64_t i = 0; i < numel_; ++i) out[static_cast<size_t>(i)] = host.item(i);
  return out;
}

std::string Tensor::describe() const {
  if (!defined()) return "undefined tensor";
  return std::string(dtype_name(dtype_)) + shape_string(shape_) + " " + device_name(device_);
}

double relative_error(const Tensor& a, const Tensor& b) {
  TRIDENT_CHECK(a.numel() == b.numel(), "relative_error of ", a.describe(), " and ", b.describe());
  const std::vector<float> x = a.to_vector();
  const std::vector<float> y = b.to_vector();
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = static_cast<double>(x[i]) - static_cast<double>(y[i]);
    diff += d * d;
    norm += static_cast<double>(y[i]) * static_cast<double>(y[i]);
  }
  if (std::isnan(diff)) return std::numeric_limits<double>::infinity();
  return std::sqrt(diff) / std::max(std::sqrt(norm), 1e-30);
}

}  // namespace trident
