#include "runtime/io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "runtime/core/enum_names.h"
#include "runtime/core/error.h"
#include "runtime/io/half.h"

namespace trident::io {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian and read in place");

namespace {

using nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;  // the limit the format itself sets
constexpr const char* kIndexFile = "model.safetensors.index.json";
constexpr const char* kSingleFile = "model.safetensors";

constexpr EnumName<StDType> kStDTypeNames[] = {{StDType::F32, "F32"},
                                               {StDType::BF16, "BF16"},
                                               {StDType::F16, "F16"},
                                               {StDType::I32, "I32"},
                                               {StDType::I64, "I64"}};

bool is_float(StDType dtype) {
  return dtype == StDType::F32 || dtype == StDType::F16 || dtype == StDType::BF16;
}

float read_float(const uint8_t* src, StDType dtype, size_t i) {
  switch (dtype) {
    case StDType::F32: {
      float v;
      std::memcpy(&v, src + 4 * i, 4);
      return v;
    }
    case StDType::BF16: {
      bf16 v;
      std::memcpy(&v.bits, src + 2 * i, 2);
      return bf16_to_float(v);
    }
    case StDType::F16: {
      uint16_t v;
      std::memcpy(&v, src + 2 * i, 2);
      return f16_to_float(v);
    }
    default:
      break;
  }
  TRIDENT_FAIL("read_float on ", st_dtype_name(dtype));
}

void write_float(uint8_t* dst, StDType dtype, size_t i, float value) {
  switch (dtype) {
    case StDType::F32:
      std::memcpy(dst + 4 * i, &value, 4);
      return;
    case StDType::BF16: {
      const bf16 v = float_to_bf16(value);
      std::memcpy(dst + 2 * i, &v.bits, 2);
      return;
    }
    case StDType::F16: {
      const uint16_t v = float_to_f16(value);
      std::memcpy(dst + 2 * i, &v, 2);
      return;
    }
    default:
      break;
  }
  TRIDENT_FAIL("write_float on ", st_dtype_name(dtype));
}

int64_t read_int(const uint8_t* src, StDType dtype, size_t i) {
  if (dtype == StDType::I32) {
    int32_t v;
    std::memcpy(&v, src + 4 * i, 4);
    return v;
  }
  int64_t v;
  std::memcpy(&v, src + 8 * i, 8);
  return v;
}

// Converts n elements; floats convert among themselves, integers among themselves. `what`
// names the file and tensor for the error raised on a narrowing integer or a kind mismatch.
void convert(const uint8_t* src, StDType from, uint8_t* dst, StDType to, size_t n,
             const std::string& what) {
  if (from == to) {
    // An empty tensor has no buffer: memcpy must not see its null pointer, even for 0 bytes.
    if (n > 0) std::memcpy(dst, src, n * st_dtype_size(from));
    return;
  }
  TRIDENT_USER_CHECK(is_float(from) == is_float(to), what, ": cannot convert ", st_dtype_name(from),
                     " to ", st_dtype_name(to), " (floats and integers do not mix)");
  if (is_float(from)) {
    for (size_t i = 0; i < n; ++i) {
      const float value = read_float(src, from, i);
      write_float(dst, to, i, value);
      // F16 tops out at 65504: a finite weight beyond it would be stored as infinity.
      TRIDENT_USER_CHECK(
          to != StDType::F16 || !std::isfinite(value) || std::isfinite(read_float(dst, to, i)),
          what, ": element ", i, " = ", value,
          " does not fit in F16 (largest 65504); export as f32 or bf16");
    }
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    const int64_t v = read_int(src, from, i);
    if (to == StDType::I32) {
      TRIDENT_USER_CHECK(
          v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max(),
          what, ": element ", i, " = ", v, " does not fit in I32");
      const int32_t narrow = static_cast<int32_t>(v);
      std::memcpy(dst + 4 * i, &narrow, 4);
    } else {
      std::memcpy(dst + 8 * i, &v, 8);
    }
  }
}

std::string describe_tensor(const std::string& path, const std::string& name) {
  return "safetensors file '" + path + "', tensor '" + name + "'";
}

StTensorInfo parse_entry(const std::string& path, const std::string& name, const json& entry,
                         uint64_t data_bytes) {
  const std::string where = describe_tensor(path, name);
  TRIDENT_USER_CHECK(entry.is_object(), where, ": header entry is not an object");
  TRIDENT_USER_CHECK(entry.contains("dtype") && entry["dtype"].is_string(), where,
                     ": missing \"dtype\" string");
  TRIDENT_USER_CHECK(entry.contains("shape") && entry["shape"].is_array(), where,
                     ": missing \"shape\" array");
  TRIDENT_USER_CHECK(entry.contains("data_offsets") && entry["data_offsets"].is_array() &&
                         entry["data_offsets"].size() == 2,
                     where, ": missing \"data_offsets\" [begin, end]");
  StTensorInfo info;
  info.name = name;
  const std::string dtype = entry["dtype"].get<std::string>();
  const std::optional<StDType> st_dtype = parse_enum(kStDTypeNames, dtype);
  TRIDENT_USER_CHECK(st_dtype.has_value(), where, ": dtype \"", dtype,
                     "\" is not supported; valid: ", enum_name_list(kStDTypeNames));
  info.dtype = *st_dtype;
  uint64_t numel = 1;
  for (const json& dim : entry["shape"]) {
    TRIDENT_USER_CHECK(
        dim.is_number_unsigned() || (dim.is_number_integer() && dim.get<int64_t>() >= 0), where,
        ": shape entries must be non-negative integers, got ", dim.dump());
    const uint64_t size = dim.get<uint64_t>();
    TRIDENT_USER_CHECK(size == 0 || numel <= data_bytes / size || numel == 0, where, ": shape ",
                       entry["shape"].dump(), " is larger than the file");
    numel *= size;
    info.shape.push_back(static_cast<int64_t>(size));
  }
  for (const json& offset : entry["data_offsets"]) {
    TRIDENT_USER_CHECK(
        offset.is_number_unsigned() || (offset.is_number_integer() && offset.get<int64_t>() >= 0),
        where, ": data_offsets must be non-negative integers, got ", entry["data_offsets"].dump());
  }
  info.begin = entry["data_offsets"][0].get<uint64_t>();
  info.end = entry["data_offsets"][1].get<uint64_t>();
  TRIDENT_USER_CHECK(info.begin <= info.end && info.end <= data_bytes, where, ": data_offsets [",
                     info.begin, ", ", info.end, "] lie outside the data section of ", data_bytes,
                     " bytes (truncated or corrupt file)");
  TRIDENT_USER_CHECK(info.end - info.begin == numel * st_dtype_size(info.dtype), where,
                     ": data_offsets span ", info.end - info.begin, " bytes but ", dtype, " ",
                     shape_string(info.shape), " needs ", numel * st_dtype_size(info.dtype));
  return info;
}

}  // namespace

const char* st_dtype_name(StDType dtype) { return enum_name(kStDTypeNames, dtype); }

size_t st_dtype_size(StDType dtype) {
  switch (dtype) {
    case StDType::F16:
    case StDType::BF16:
      return 2;
    case StDType::F32:
    case StDType::I32:
      return 4;
    case StDType::I64:
      return 8;
  }
  return 0;
}

DType st_native_dtype(StDType dtype) {
  switch (dtype) {
    case StDType::F32:
    case StDType::F16:
      return DType::F32;
    case StDType::BF16:
      return DType::BF16;
    case StDType::I32:
      return DType::I32;
    case StDType::I64:
      return DType::I64;
  }
  return DType::F32;
}

StDType st_dtype_for(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return StDType::F32;
    case DType::BF16:
      return StDType::BF16;
    case DType::I32:
      return StDType::I32;
    case DType::I64:
      return StDType::I64;
  }
  return StDType::F32;
}

// --- reading -----------------------------------------------------------------------------

SafetensorsFile::SafetensorsFile(const std::string& path)
    : file_(std::make_unique<MappedFile>(path)) {
  const uint64_t size = file_->size();
  TRIDENT_USER_CHECK(size >= 8, "safetensors file '", path, "' is ", size,
                     " bytes, too short for its 8-byte header length");
  uint64_t header_bytes;
  std::memcpy(&header_bytes, file_->data(), 8);
  TRIDENT_USER_CHECK(header_bytes <= size - 8 && header_bytes <= kMaxHeaderBytes,
                     "safetensors file '", path, "': header length ", header_bytes,
                     " exceeds the file (", size,
                     " bytes) or the 100 MiB limit (corrupt or truncated)");
  data_start_ = 8 + header_bytes;
  const uint64_t data_bytes = size - data_start_;

  json header;
  try {
    header = json::parse(file_->data() + 8, file_->data() + data_start_);
  } catch (const json::exception& e) {
    TRIDENT_USER_FAIL("safetensors file '", path, "': header is not valid JSON: ", e.what());
  }
  TRIDENT_USER_CHECK(header.is_object(), "safetensors file '", path,
                     "': header must be a JSON object");
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      TRIDENT_USER_CHECK(entry.is_object(), "safetensors file '", path,
                         "': __metadata__ must be an object of strings");
      for (const auto& [key, value] : entry.items()) {
        TRIDENT_USER_CHECK(value.is_string(), "safetensors file '", path, "': __metadata__ \"", key,
                           "\" is not a string");
        metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    tensors_[name] = parse_entry(path, name, entry, data_bytes);
  }

  // Tensors must not share bytes (the format forbids it; overlap means a corrupt header).
  std::vector<const StTensorInfo*> by_offset;
  for (const auto& [name, info] : tensors_) {
    if (info.end > info.begin) by_offset.push_back(&info);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const StTensorInfo* a, const StTensorInfo* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    TRIDENT_USER_CHECK(by_offset[i]->begin >= by_offset[i - 1]->end, "safetensors file '", path,
                       "': tensors '", by_offset[i - 1]->name, "' and '", by_offset[i]->name,
                       "' overlap in the data section (corrupt header)");
  }
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& [name, info] : tensors_) out.push_back(name);
  return out;
}

const StTensorInfo& SafetensorsFile::info(const std::string& name) const {
  const auto it = tensors_.find(name);
  TRIDENT_USER_CHECK(it != tensors_.end(), "safetensors file '", path(), "' has no tensor '", name,
                     "' (it holds ", tensors_.size(), " tensors)");
  return it->second;
}

Tensor SafetensorsFile::view(const std::string& name) const {
  const StTensorInfo& entry = info(name);
  TRIDENT_USER_CHECK(entry.dtype != StDType::F16, describe_tensor(path(), name),
                     ": F16 has no Trident dtype to view it as; use load() to convert it");
  uint8_t* data = file_->mutable_data() + data_start_ + entry.begin;
  TRIDENT_USER_CHECK(reinterpret_cast<uintptr_t>(data) % st_dtype_size(entry.dtype) == 0,
                     describe_tensor(path(), name), ": data at byte ", data_start_ + entry.begin,
                     " is not aligned for ", st_dtype_name(entry.dtype), "; use load() to copy it");
  return Tensor::wrap(data, entry.shape, st_native_dtype(entry.dtype));
}

Tensor SafetensorsFile::load(const std::string& name, DType dtype) const {
  const StTensorInfo& entry = info(name);
  Tensor out = Tensor::empty(entry.shape, dtype);
  convert(file_->data() + data_start_ + entry.begin, entry.dtype,
          static_cast<uint8_t*>(out.raw_data()), st_dtype_for(dtype),
          static_cast<size_t>(shape_numel(entry.shape)), describe_tensor(path(), name));
  return out;
}

Tensor SafetensorsFile::load(const std::string& name) const {
  return load(name, st_native_dtype(info(name).dtype));
}

// --- writing -----------------------------------------------------------------------------

SafetensorsWriter::SafetensorsWriter(std::string path, std::vector<StEntry> entries,
                                     StMetadata metadata)
    : file_(std::make_unique<AtomicFileWriter>(std::move(path))) {
  // Widest elements first, so every tensor starts at a multiple of its element size and a
  // reader can view it in place (the data section itself starts 8-aligned).
  std::stable_sort(entries.begin(), entries.end(), [](const StEntry& a, const StEntry& b) {
    return st_dtype_size(a.dtype) > st_dtype_size(b.dtype);
  });
  json header = json::object();
  uint64_t offset = 0;
  for (const StEntry& entry : entries) {
    TRIDENT_USER_CHECK(entry.name != "__metadata__" && !entry.name.empty(), "safetensors file '",
                       file_->path(), "': invalid tensor name '", entry.name, "'");
    TRIDENT_USER_CHECK(layout_.count(entry.name) == 0, "safetensors file '", file_->path(),
                       "': tensor '", entry.name, "' declared twice");
    StTensorInfo info{entry.name, entry.dtype, entry.shape, offset, 0};
    info.end =
        offset + static_cast<uint64_t>(shape_numel(entry.shape)) * st_dtype_size(entry.dtype);
    offset = info.end;
    header[entry.name] = {{"dtype", st_dtype_name(entry.dtype)},
                          {"shape", entry.shape},
                          {"data_offsets", {info.begin, info.end}}};
    layout_[entry.name] = info;
    written_[entry.name] = false;
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  data_bytes_ = offset;

  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // 8 + header length stays a multiple of 8
  const uint64_t header_bytes = text.size();
  file_->write(&header_bytes, 8);
  file_->write(text.data(), text.size());
  data_start_ = 8 + header_bytes;
}

SafetensorsWriter::~SafetensorsWriter() = default;

void SafetensorsWriter::write_bytes(const std::string& name, const void* data, size_t bytes) {
  const auto it = layout_.find(name);
  TRIDENT_USER_CHECK(it != layout_.end(), "safetensors file '", file_->path(), "': tensor '", name,
                     "' was not declared");
  TRIDENT_USER_CHECK(bytes == it->second.end - it->second.begin,
                     describe_tensor(file_->path(), name), ": got ", bytes, " bytes, declared ",
                     it->second.end - it->second.begin);
  file_->write_at(data_start_ + it->second.begin, data, bytes);
  written_[name] = true;
}

void SafetensorsWriter::write(const std::string& name, const Tensor& tensor) {
  const auto it = layout_.find(name);
  TRIDENT_USER_CHECK(it != layout_.end(), "safetensors file '", file_->path(), "': tensor '", name,
                     "' was not declared");
  const StTensorInfo& entry = it->second;
  TRIDENT_USER_CHECK(tensor.shape() == entry.shape, describe_tensor(file_->path(), name),
                     ": declared shape ", shape_string(entry.shape), ", got ", tensor.describe());
  const Tensor host = tensor.on(Device::CPU);
  const StDType from = st_dtype_for(host.dtype());
  const auto* src = static_cast<const uint8_t*>(host.raw_data());
  // Convert in slices so a large tensor never needs a second full-size buffer.
  constexpr size_t kSlice = size_t{1} << 20;
  const size_t numel = static_cast<size_t>(host.numel());
  std::vector<uint8_t> buffer(std::min(numel, kSlice) * st_dtype_size(entry.dtype));
  for (size_t start = 0; start < numel; start += kSlice) {
    const size_t count = std::min(kSlice, numel - start);
    convert(src + start * st_dtype_size(from), from, buffer.data(), entry.dtype, count,
            describe_tensor(file_->path(), name));
    file_->write_at(data_start_ + entry.begin + start * st_dtype_size(entry.dtype), buffer.data(),
                    count * st_dtype_size(entry.dtype));
  }
  written_[name] = true;
}

void SafetensorsWriter::finish() {
  for (const auto& [name, done] : written_) {
    TRIDENT_USER_CHECK(done, "safetensors file '", file_->path(), "': tensor '", name,
                       "' was declared but never written");
  }
  file_->commit();
}

// --- directories -------------------------------------------------------------------------

SafetensorsDirectory::SafetensorsDirectory(const std::string& dir) : dir_(dir) {
  namespace fs = std::filesystem;
  const fs::path root(dir);
  TRIDENT_USER_CHECK(fs::is_directory(root), "'", dir, "' is not a directory");
  const fs::path index = root / kIndexFile;
  if (!fs::exists(index)) {
    const fs::path single = root / kSingleFile;
    TRIDENT_USER_CHECK(fs::exists(single), "'", dir, "' holds neither ", kSingleFile, " nor ",
                       kIndexFile);
    files_.push_back(std::make_unique<SafetensorsFile>(single.string()));
    for (const std::string& name : files_.back()->names()) owner_[name] = files_.back().get();
    return;
  }
  json parsed;
  try {
    std::ifstream in(index);
    parsed = json::parse(in);
  } catch (const json::exception& e) {
    TRIDENT_USER_FAIL("'", index.string(), "' is not valid JSON: ", e.what());
  }
  TRIDENT_USER_CHECK(
      parsed.is_object() && parsed.contains("weight_map") && parsed["weight_map"].is_object(), "'",
      index.string(), "' has no \"weight_map\" object");
  std::map<std::string, const SafetensorsFile*> by_file;
  for (const auto& [name, shard] : parsed["weight_map"].items()) {
    TRIDENT_USER_CHECK(shard.is_string(), "'", index.string(), "': weight_map entry '", name,
                       "' is not a file name");
    const std::string shard_name = shard.get<std::string>();
    TRIDENT_USER_CHECK(shard_name.find('/') == std::string::npos, "'", index.string(), "': shard '",
                       shard_name, "' must be a file name inside the directory");
    auto found = by_file.find(shard_name);
    if (found == by_file.end()) {
      files_.push_back(std::make_unique<SafetensorsFile>((root / shard_name).string()));
      found = by_file.emplace(shard_name, files_.back().get()).first;
    }
    TRIDENT_USER_CHECK(found->second->contains(name), "'", index.string(), "' maps tensor '", name,
                       "' to '", shard_name, "', which does not hold it");
    owner_[name] = found->second;
  }
}

std::vector<std::string> SafetensorsDirectory::names() const {
  std::vector<std::string> out;
  for (const auto& [name, file] : owner_) out.push_back(name);
  return out;
}

const SafetensorsFile& SafetensorsDirectory::file_of(const std::string& name) const {
  const auto it = owner_.find(name);
  TRIDENT_USER_CHECK(it != owner_.end(), "safetensors directory '", dir_, "' has no tensor '", name,
                     "'");
  return *it->second;
}

void write_safetensors_index(const std::string& dir,
                             const std::map<std::string, std::string>& weight_map,
                             uint64_t total_size) {
  const json index = {{"metadata", {{"total_size", total_size}}}, {"weight_map", weight_map}};
  const std::string text = index.dump(2) + "\n";
  AtomicFileWriter file((std::filesystem::path(dir) / kIndexFile).string());
  file.write(text.data(), text.size());
  file.commit();
}

}  // namespace trident::io
