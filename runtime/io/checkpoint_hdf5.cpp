#include "runtime/io/checkpoint_hdf5.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "runtime/core/error.h"
#include "runtime/io/crc32c.h"
#include "runtime/io/non_finite.h"

namespace trident::io::h5 {

namespace {
// " (reason)" from the error stack, or "".
std::string stack_reason() {
  const std::string summary = error_stack_summary();
  return summary.empty() ? "" : " (" + summary + ")";
}

Handle checked(hid_t id, Handle::Closer closer, const std::string& what) {
  if (id < 0) TRIDENT_FAIL_KIND(ErrorKind::Hdf5, what, " failed", stack_reason());
  return Handle(id, closer);
}

template <typename T>
void write_scalar_attr(hid_t object, const char* name, hid_t type, T value) {
  if (H5Aexists(object, name) > 0) H5Adelete(object, name);
  Handle space = space_handle(H5Screate(H5S_SCALAR), "H5Screate");
  Handle attr(H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (attr.get() < 0) TRIDENT_FAIL_KIND(ErrorKind::Hdf5, "creating attribute '", name, "' failed");
  if (H5Awrite(attr, type, &value) < 0) {
    TRIDENT_FAIL_KIND(ErrorKind::Hdf5, "writing attribute '", name, "' failed");
  }
}

template <typename T>
T read_scalar_attr(hid_t object, const char* name, hid_t type) {
  Handle attr(H5Aopen(object, name, H5P_DEFAULT), H5Aclose);
  if (attr.get() < 0) TRIDENT_FAIL_KIND(ErrorKind::Hdf5, "attribute '", name, "' is missing");
  T value{};
  if (H5Aread(attr, type, &value) < 0) {
    TRIDENT_FAIL_KIND(ErrorKind::Hdf5, "reading attribute '", name, "' failed");
  }
  return value;
}
}  // namespace

namespace {
std::atomic<bool> g_file_close_failed{false};

// Runs the closer, remembering a failed file close.
herr_t close_id(hid_t id, Handle::Closer closer) {
  const herr_t rc = closer(id);
  if (rc < 0 && closer == &H5Fclose) g_file_close_failed.store(true);
  return rc;
}
}  // namespace

bool file_close_failed() { return g_file_close_failed.load(); }

Handle::Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = other.id_;
    closer_ = other.closer_;
    other.id_ = -1;
  }
  return *this;
}

void Handle::close() {
  if (id_ < 0) return;
  const hid_t id = id_;
  id_ = -1;
  if (close_id(id, closer_) < 0) {
    TRIDENT_FAIL_KIND(ErrorKind::Hdf5, "closing an HDF5 object failed", stack_reason());
  }
}

void Handle::reset() {
  if (id_ >= 0) close_id(id_, closer_);
  id_ = -1;
}

void silence_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

std::string error_stack_summary() {
  // Walked from the failing API call down to the system call: the last entries name the cause.
  std::vector<std::string> messages;
  auto visit = [](unsigned, const H5E_error2_t* entry, void* out) -> herr_t {
    if (entry->desc != nullptr && entry->desc[0] != '\0') {
      static_cast<std::vector<std::string>*>(out)->push_back(entry->desc);
    }
    return 0;
  };
  if (H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, visit, &messages) < 0 || messages.empty()) {
    return "";
  }
  std::string summary = messages.back();
  if (messages.size() > 1 && messages[messages.size() - 2] != summary) {
    summary = messages[messages.size() - 2] + ": " + summary;
  }
  return summary;
}

Handle file_handle(hid_t id, const std::string& what) { return checked(id, H5Fclose, what); }
Handle dataset_handle(hid_t id, const std::string& what) { return checked(id, H5Dclose, what); }
Handle group_handle(hid_t id, const std::string& what) { return checked(id, H5Gclose, what); }
Handle space_handle(hid_t id, const std::string& what) { return checked(id, H5Sclose, what); }
Handle plist_handle(hid_t id, const std::string& what) { return checked(id, H5Pclose, what); }

void write_attr_i64(hid_t object, const char* name, int64_t value) {
  write_scalar_attr(object, name, H5T_NATIVE_INT64, value);
}
void write_attr_u64(hid_t object, const char* name, uint64_t value) {
  write_scalar_attr(object, name, H5T_NATIVE_UINT64, value);
}
void write_attr_u32(hid_t object, const char* name, uint32_t value) {
  write_scalar_attr(object, name, H5T_NATIVE_UINT32, value);
}

void write_attr_string(hid_t object, const char* name, const std::string& value) {
  // HDF5 strings end at the first NUL: what follows it would silently not be stored.
  TRIDENT_CHECK(value.find('\0') == std::string::npos, "attribute '", name, "' holds a NUL byte");
  if (H5Aexists(object, name) > 0) H5Adelete(object, name);
  // A variable-length UTF-8 string: h5py returns it as str.
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  Handle space = space_handle(H5Screate(H5S_SCALAR), "H5Screate");
  Handle attr(H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (attr.get() < 0) TRIDENT_FAIL_KIND(ErrorKind::Hdf5, "creating attribute '", name, "' failed");
  const char* text = value.c_str();
  if (H5Awrite(attr, type, &text) < 0) {
    TRIDENT_FAIL_KIND(ErrorKind::Hdf5, "writing attribute '", name, "' failed");
  }
}

bool has_attr(hid_t object, const char* name) { return H5Aexists(object, name) > 0; }

int64_t read_attr_i64(hid_t object, const char* name) {
  return read_scalar_attr<int64_t>(object, name, H5T_NATIVE_INT64);
}
uint64_t read_attr_u64(hid_t object, const char* name) {
  return read_scalar_attr<uint64_t>(object, name, H5T_NATIVE_UINT64);
}
uint32_t read_attr_u32(hid_t object, const char* name) {
  return read_scalar_attr<uint32_t>(object, name, H5T_NATIVE_UINT32);
}

std::string read_attr_string(hid_t object, const char* name) {
  Handle attr(H5Aopen(object, name, H5P_DEFAULT), H5Aclose);
  if (attr.get() < 0) TRIDENT_FAIL_KIND(ErrorKind::Hdf5, "attribute '", name, "' is missing");
  Handle type(H5Aget_type(attr), H5Tclose);
  if (H5Tget_class(type) != H5T_STRING) {
    TRIDENT_FAIL_KIND(ErrorKind::Hdf5, "attribute '", name, "' is not a string");
  }
  Handle mem_type(H5Tcopy(H5T_C_S1), H5Tclose);
  if (H5Tis_variable_str(type) > 0) {
    H5Tset_size(mem_type, H5T_VARIABLE);
    H5Tset_cset(mem_type, H5Tget_cset(type));
    char* text = nullptr;
    if (H5Aread(attr, mem_type, &text) < 0) {
      TRIDENT_FAIL_KIND(ErrorKind::Hdf5, "reading attribute '", name, "' failed");
    }
    std::string out = text ? text : "";
    Handle space(H5Aget_space(attr), H5Sclose);
    H5Dvlen_reclaim(mem_type, space, H5P_DEFAULT, &text);
    return out;
  }
  const size_t size = H5Tget_size(type);
  std::string out(size, '\0');
  H5Tset_size(mem_type, size);
  if (H5Aread(attr, mem_type, out.data()) < 0) {
    TRIDENT_FAIL_KIND(ErrorKind::Hdf5, "reading attribute '", name, "' failed");
  }
  out.resize(std::strlen(out.c_str()));
  return out;
}

bool link_exists(hid_t file, const std::string& path) {
  // H5Lexists fails on a missing intermediate group, so walk the path component by component.
  size_t pos = 1;
  while (pos <= path.size()) {
    const size_t next = path.find('/', pos);
    const std::string prefix = path.substr(0, next == std::string::npos ? path.size() : next);
    if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (next == std::string::npos) break;
    pos = next + 1;
  }
  return true;
}

Shape dataset_shape(hid_t dataset) {
  Handle space = space_handle(H5Dget_space(dataset), "H5Dget_space");
  const int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 0)));
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  return Shape(dims.begin(), dims.end());
}

Handle create_f32_dataset(hid_t parent, const std::string& name, const Shape& shape) {
  const std::vector<hsize_t> dims(shape.begin(), shape.end());
  Handle space = space_handle(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                              "H5Screate_simple for " + name);
  Handle dcpl = plist_handle(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate");
  H5Pset_layout(dcpl, H5D_CONTIGUOUS);
  H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
  Handle lcpl = plist_handle(H5Pcreate(H5P_LINK_CREATE), "H5Pcreate");
  H5Pset_create_intermediate_group(lcpl, 1);
  return dataset_handle(
      H5Dcreate2(parent, name.c_str(), H5T_IEEE_F32LE, space, lcpl, dcpl, H5P_DEFAULT),
      "creating dataset " + name);
}

DatasetScan scan_dataset(hid_t dataset, size_t block_bytes) {
  const Shape shape = dataset_shape(dataset);
  Handle file_space = space_handle(H5Dget_space(dataset), "H5Dget_space");
  DatasetScan scan;
  if (shape.empty()) {
    float value = 0.0f;
    if (H5Dread(dataset, H5T_IEEE_F32LE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &value) < 0) {
      TRIDENT_FAIL_KIND(ErrorKind::Hdf5, "reading a scalar dataset failed");
    }
    scan.crc32c = crc32c(&value, sizeof(value));
    scan.first_non_finite = first_non_finite(&value, 1);
    return scan;
  }
  const int64_t rows = shape[0];
  const int64_t row_numel = rows == 0 ? 0 : shape_numel(shape) / rows;
  const int64_t block_rows =
      std::max<int64_t>(1, static_cast<int64_t>(block_bytes / 4) / std::max<int64_t>(row_numel, 1));
  std::vector<float> buffer(static_cast<size_t>(std::min(rows, block_rows) * row_numel));
  for (int64_t row = 0; row < rows; row += block_rows) {
    const int64_t count_rows = std::min(block_rows, rows - row);
    std::vector<hsize_t> start(shape.size(), 0), count(shape.begin(), shape.end());
    start[0] = static_cast<hsize_t>(row);
    count[0] = static_cast<hsize_t>(count_rows);
    H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
    const hsize_t n = static_cast<hsize_t>(count_rows * row_numel);
    Handle mem_space = space_handle(H5Screate_simple(1, &n, nullptr), "H5Screate_simple");
    if (H5Dread(dataset, H5T_IEEE_F32LE, mem_space, file_space, H5P_DEFAULT, buffer.data()) < 0) {
      TRIDENT_FAIL_KIND(ErrorKind::Hdf5, "reading rows ", row, "..", row + count_rows, " failed");
    }
    scan.crc32c = crc32c(buffer.data(), n * sizeof(float), scan.crc32c);
    if (scan.first_non_finite < 0) {
      const int64_t at = first_non_finite(buffer.data(), static_cast<int64_t>(n));
      if (at >= 0) scan.first_non_finite = row * row_numel + at;
    }
  }
  return scan;
}

Tensor read_f32_dataset(hid_t dataset) {
  Tensor out = Tensor::empty(dataset_shape(dataset));
  if (out.numel() == 0) return out;
  if (H5Dread(dataset, H5T_IEEE_F32LE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data<float>()) < 0) {
    TRIDENT_FAIL_KIND(ErrorKind::Hdf5, "reading a dataset failed");
  }
  return out;
}

}  // namespace trident::io::h5
