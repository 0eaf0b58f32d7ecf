#pragma once
// Hugging Face safetensors files: an 8-byte little-endian header length n, n bytes of JSON
//   {"name": {"dtype": "BF16", "shape": [4096, 7168], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"format": "pt"}}
// then the tensor bytes; offsets are relative to the end of the header. Supported dtypes:
// F32, BF16, F16, I32, I64. F16 has no Trident dtype and is converted to fp32 on load.
//
// Reading memory-maps the file: view() is zero-copy, load() converts into a new tensor.
// Writing streams: the header is computed from the declared names, dtypes and shapes first,
// then each tensor is written at its offset, in any order, one at a time.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/core/tensor.h"
#include "runtime/io/mapped_file.h"

namespace trident::io {

enum class StDType : uint8_t { F32, F16, BF16, I32, I64 };

const char* st_dtype_name(StDType dtype);  // "F32", "F16", ...
size_t st_dtype_size(StDType dtype);
// The Trident dtype a tensor of this file dtype loads as (F16 -> F32).
DType st_native_dtype(StDType dtype);
// The file dtype that stores a Trident dtype unchanged.
StDType st_dtype_for(DType dtype);

struct StTensorInfo {
  std::string name;
  StDType dtype = StDType::F32;
  Shape shape;
  uint64_t begin = 0;  // byte offsets relative to the data section
  uint64_t end = 0;
};

using StMetadata = std::map<std::string, std::string>;

// One safetensors file, memory-mapped and validated.
class SafetensorsFile {
 public:
  // Throws UserError naming the file (and tensor) for a bad header length, malformed JSON,
  // an unknown dtype, a shape/offset mismatch, offsets outside the data or overlapping.
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return file_->path(); }
  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  const StTensorInfo& info(const std::string& name) const;  // UserError if absent
  const StMetadata& metadata() const { return metadata_; }

  // Zero-copy view of the mapped bytes (F32, BF16, I32, I64 at an aligned offset; anything
  // else is a UserError that points to load()). Valid while this object lives.
  Tensor view(const std::string& name) const;
  // A new tensor holding the values converted to `dtype` (F16 is decoded exactly).
  Tensor load(const std::string& name, DType dtype) const;
  // A new tensor in the natural dtype (st_native_dtype).
  Tensor load(const std::string& name) const;

 private:
  std::unique_ptr<MappedFile> file_;
  uint64_t data_start_ = 0;
  std::map<std::string, StTensorInfo> tensors_;
  StMetadata metadata_;
};

struct StEntry {
  std::string name;
  StDType dtype = StDType::F32;
  Shape shape;
};

// Streams a safetensors file: declare every tensor up front, then write() each one (any order);
// finish() checks that all were written and renames the file into place.
class SafetensorsWriter {
 public:
  SafetensorsWriter(std::string path, std::vector<StEntry> entries, StMetadata metadata = {});
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  // Writes a declared tensor, converting from the tensor's dtype (CPU or CUDA) to the declared
  // one: floats among F32/BF16/F16, integers between I32/I64.
  void write(const std::string& name, const Tensor& tensor);
  // Writes raw bytes already in the declared dtype (exactly the declared byte size).
  void write_bytes(const std::string& name, const void* data, size_t bytes);
  void finish();

  uint64_t data_bytes() const { return data_bytes_; }

 private:
  std::unique_ptr<AtomicFileWriter> file_;
  std::map<std::string, StTensorInfo> layout_;
  std::map<std::string, bool> written_;
  uint64_t data_start_ = 0;
  uint64_t data_bytes_ = 0;
};

// A Hugging Face model directory: either one model.safetensors, or shards listed in
// model.safetensors.index.json ({"weight_map": {tensor name: shard file}}).
class SafetensorsDirectory {
 public:
  explicit SafetensorsDirectory(const std::string& dir);

  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const { return owner_.count(name) != 0; }
  const SafetensorsFile& file_of(const std::string& name) const;  // UserError if absent
  const StTensorInfo& info(const std::string& name) const { return file_of(name).info(name); }
  Tensor view(const std::string& name) const { return file_of(name).view(name); }
  Tensor load(const std::string& name, DType dtype) const {
    return file_of(name).load(name, dtype);
  }
  Tensor load(const std::string& name) const { return file_of(name).load(name); }

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*> owner_;
};

// Writes model.safetensors.index.json for shards written with SafetensorsWriter.
void write_safetensors_index(const std::string& dir,
                             const std::map<std::string, std::string>& weight_map,
                             uint64_t total_size);

}  // namespace trident::io
