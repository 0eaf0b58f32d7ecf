#pragma once
// Small RAII and attribute helpers over the HDF5 C API, shared by the checkpoint writer, reader,
// verifier and converter. Every failing HDF5 call throws (ErrorKind::Hdf5) instead of printing
// HDF5's own error stack: the callers turn failures into messages that name the file.
#include <hdf5.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/core/tensor.h"

namespace trident::io::h5 {

// Owns one hid_t and closes it with the matching H5*close.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer);
  ~Handle() { reset(); }
  Handle(Handle&& other) noexcept : id_(other.id_), closer_(other.closer_) { other.id_ = -1; }
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }  // NOLINT: handles pass straight to the C API
  // Closes now and reports failure (a file's close is where buffered data reaches the disk).
  void close();
  void reset();

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

// Whether closing an HDF5 file failed in this process. HDF5 1.10 then keeps the half-closed
// file registered and crashes on it when it shuts down (at MPI_Finalize): the process must
// end without that shutdown (launch/finalize_guard.cpp).
bool file_close_failed();

// Turns off HDF5's automatic error-stack printing for this process (idempotent).
void silence_errors();
// The innermost messages of HDF5's error stack for the call that just failed (the system or
// MPI-IO error is there: "No space left on device", "MPI_ERR_ACCESS: permission denied"), ""
// if there is none. Call it right after the failing call, before any other HDF5 call.
std::string error_stack_summary();

Handle file_handle(hid_t id, const std::string& what);
Handle dataset_handle(hid_t id, const std::string& what);
Handle group_handle(hid_t id, const std::string& what);
Handle space_handle(hid_t id, const std::string& what);
Handle plist_handle(hid_t id, const std::string& what);

// Scalar attributes on any object (file root, group, dataset).
void write_attr_i64(hid_t object, const char* name, int64_t value);
void write_attr_u64(hid_t object, const char* name, uint64_t value);
void write_attr_u32(hid_t object, const char* name, uint32_t value);
void write_attr_string(hid_t object, const char* name, const std::string& value);
bool has_attr(hid_t object, const char* name);
int64_t read_attr_i64(hid_t object, const char* name);
uint64_t read_attr_u64(hid_t object, const char* name);
uint32_t read_attr_u32(hid_t object, const char* name);
std::string read_attr_string(hid_t object, const char* name);

// Whether `path` (e.g. "/weights/model.norm.weight") exists, creating no intermediate groups.
bool link_exists(hid_t file, const std::string& path);
Shape dataset_shape(hid_t dataset);

// Creates an fp32 dataset of `shape` (contiguous layout, allocated at creation so a missing
// write is visible as zeros rather than as an unreadable hole).
Handle create_f32_dataset(hid_t parent, const std::string& name, const Shape& shape);

// One pass over an fp32 dataset in row blocks of about `block_bytes` (bounded memory for a
// tensor of any size): its CRC-32C over the little-endian fp32 bytes in row-major order, and
// the index of its first NaN or infinity (-1: none).
struct DatasetScan {
  uint32_t crc32c = 0;
  int64_t first_non_finite = -1;
};
DatasetScan scan_dataset(hid_t dataset, size_t block_bytes = 64u << 20);
inline uint32_t dataset_crc32c(hid_t dataset) { return scan_dataset(dataset).crc32c; }
// Reads a whole fp32 dataset (one tensor at a time: converter and tests).
Tensor read_f32_dataset(hid_t dataset);

}  // namespace trident::io::h5
