#include "runtime/io/checkpoint_convert.h"

#include <cstdio>
#include <filesystem>
#include <map>

#include "models/deepseek_v3/registry.h"
#include "runtime/config/config.h"
#include "runtime/core/error.h"
#include "runtime/io/checkpoint_attributes.h"
#include "runtime/io/checkpoint_claim.h"
#include "runtime/io/checkpoint_commit.h"
#include "runtime/io/checkpoint_hdf5.h"
#include "runtime/io/crc32c.h"
#include "runtime/io/hf_weights.h"
#include "runtime/io/non_finite.h"
#include "runtime/io/write_failure.h"

namespace trident::io {

namespace fs = std::filesystem;

namespace {
struct ExportTensor {
  std::string name;    // name in the HF directory
  std::string source;  // dataset under /weights it comes from
  StDType dtype;
  Shape shape;
};

std::vector<ExportTensor> export_plan(const models::ParameterRegistry& registry,
                                      const HfExportConversion& options) {
  std::vector<ExportTensor> plan;
  for (const models::ParamSpec& spec : registry.specs()) {
    const StDType dtype =
        spec.kind == models::ParamKind::kRouterBias ? StDType::F32 : options.dtype;
    plan.push_back({spec.name, spec.name, dtype, spec.shape});
  }
  if (!options.write_mtp_shared_copies) return plan;
  const config::ModelConfig& model = registry.config();
  for (int64_t d = 1; d <= model.num_nextn_predict_layers(); ++d) {
    const std::string prefix = "model.layers." + std::to_string(model.num_hidden_layers() + d - 1);
    for (const auto& [copy, source] :
         {std::pair<std::string, std::string>{prefix + ".embed_tokens.weight",
                                              "model.embed_tokens.weight"},
          {prefix + ".shared_head.head.weight", "lm_head.weight"}}) {
      if (registry.contains(source) && !registry.contains(copy)) {
        plan.push_back({copy, source, options.dtype, registry.spec(source).shape});
      }
    }
  }
  return plan;
}

std::string shard_name(int64_t index, int64_t count) {
  char name[64];
  std::snprintf(name, sizeof(name), "model-%05lld-of-%05lld.safetensors",
                static_cast<long long>(index + 1), static_cast<long long>(count));
  return name;
}
}  // namespace

namespace {

// The tensor read from `dataset` is what the save checksummed, and finite. The same check as
// verify_checkpoint, done on the bytes the conversion reads anyway (one pass over the file).
void check_tensor(hid_t dataset, const Tensor& tensor, const std::string& name,
                  const std::string& checkpoint) {
  TRIDENT_USER_CHECK(h5::has_attr(dataset, "crc32c"), "checkpoint '", checkpoint, "': tensor '",
                     name, "' has no checksum (damaged, or not written by Trident)");
  const uint32_t stored = h5::read_attr_u32(dataset, "crc32c");
  const uint32_t computed = crc32c(tensor.data<float>(), tensor.nbytes());
  TRIDENT_USER_CHECK(stored == computed, "checkpoint '", checkpoint, "': checksum mismatch in ",
                     kWeights, "/", name, " (stored ", stored, ", computed ", computed,
                     "): the file is damaged; convert an earlier checkpoint");
  const int64_t bad = first_non_finite(tensor.data<float>(), tensor.numel());
  TRIDENT_USER_CHECK(bad < 0, "checkpoint '", checkpoint, "': tensor '", name,
                     "' holds a NaN or infinite value (element ", bad,
                     "): refusing to export a diverged model");
}

// An output the user already has is never replaced: a conversion writes only new files.
void refuse_existing_output(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return;
  TRIDENT_USER_CHECK(fs::is_directory(path, ec) && fs::is_empty(path, ec), "--output '", path,
                     "' already exists", fs::is_directory(path, ec) ? " and is not empty" : "",
                     "; remove it or give another --output (convert never overwrites)");
}

}  // namespace

ConversionSummary checkpoint_to_hf(const std::string& checkpoint, const std::string& dir,
                                   const HfExportConversion& options,
                                   const ConvertProgress& progress) {
  TRIDENT_USER_CHECK(options.shard_size_mb > 0, "--shard-size-mb must be positive, got ",
                     options.shard_size_mb);
  refuse_existing_output(dir);
  const h5::Handle file = open_checkpoint(checkpoint);
  const CheckpointState state = read_state_attributes(file, checkpoint);
  TRIDENT_USER_CHECK(h5::has_attr(file, "complete"), "checkpoint '", checkpoint,
                     "' is incomplete (the save did not finish: no 'complete' attribute)");
  const models::ParameterRegistry registry(state.config.model());
  const std::vector<ExportTensor> plan = export_plan(registry, options);

  // Group tensors into shards in registry order.
  const auto limit = static_cast<uint64_t>(options.shard_size_mb * (1 << 20));
  std::vector<std::vector<size_t>> shards(1);
  uint64_t shard_bytes = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    const uint64_t bytes =
        static_cast<uint64_t>(shape_numel(plan[i].shape)) * st_dtype_size(plan[i].dtype);
    if (!shards.back().empty() && shard_bytes + bytes > limit) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(i);
    shard_bytes += bytes;
  }

  std::error_code ec;
  const bool created = !fs::exists(dir, ec);
  fs::create_directories(dir, ec);
  TRIDENT_USER_CHECK(!ec, "cannot create the output directory '", dir, "': ", ec.message());
  ConversionSummary summary;
  try {
    std::map<std::string, std::string> weight_map;
    const int64_t count = static_cast<int64_t>(shards.size());
    for (int64_t s = 0; s < count; ++s) {
      const std::string name = shard_name(s, count);
      std::vector<StEntry> entries;
      for (size_t i : shards[static_cast<size_t>(s)])
        entries.push_back({plan[i].name, plan[i].dtype, plan[i].shape});
      SafetensorsWriter writer((fs::path(dir) / name).string(), entries, {{"format", "pt"}});
      for (size_t i : shards[static_cast<size_t>(s)]) {
        const std::string path = std::string(kWeights) + "/" + plan[i].source;
        TRIDENT_USER_CHECK(h5::link_exists(file, path), "checkpoint '", checkpoint,
                           "' has no tensor '", plan[i].source, "'");
        h5::Handle dataset = h5::dataset_handle(H5Dopen2(file, path.c_str(), H5P_DEFAULT), path);
        const Tensor tensor = h5::read_f32_dataset(dataset);
        TRIDENT_USER_CHECK(tensor.shape() == plan[i].shape, "tensor '", plan[i].source, "' in '",
                           checkpoint, "' has shape ", shape_string(tensor.shape()),
                           " but its config expects ", shape_string(plan[i].shape));
        check_tensor(dataset, tensor, plan[i].source, checkpoint);
        writer.write(plan[i].name, tensor);
        weight_map[plan[i].name] = name;
        ++summary.tensors;
        if (progress) progress(summary.tensors, static_cast<int64_t>(plan.size()), plan[i].name);
      }
      writer.finish();
      summary.bytes += writer.data_bytes();
    }
    summary.shards = count;
    write_safetensors_index(dir, weight_map, summary.bytes);

    write_hf_config(dir, state.config.model(), options.dtype);
  } catch (...) {
    // No partial export is left to be mistaken for a model: the directory was empty or new.
    if (created) {
      fs::remove_all(dir, ec);
    } else {
      for (const auto& entry : fs::directory_iterator(dir, ec)) fs::remove_all(entry.path(), ec);
    }
    throw;
  }
  return summary;
}

ConversionSummary hf_to_checkpoint(const std::string& dir, const std::string& checkpoint,
                                   const config::TridentConfig& base,
                                   const ConvertProgress& progress) {
  h5::silence_errors();
  refuse_existing_output(checkpoint);
  config::TridentConfig config = base;
  *config.mutable_model() = config::import_hf_config((fs::path(dir) / "config.json").string());
  const models::ParameterRegistry registry(config.model());
  const SafetensorsDirectory files(dir);

  CheckpointState state;
  state.config = config;
  state.layout = CheckpointLayout{};
  state.run_id = new_run_id();  // a converted model starts a run of its own
  const std::string tmp = checkpoint + ".tmp";
  // HDF5 cannot survive running out of room at close: make sure of the room first.
  uint64_t tensor_bytes = 0;
  for (const models::ParamSpec& spec : registry.specs()) {
    tensor_bytes += static_cast<uint64_t>(spec.numel()) * sizeof(float);
  }
  const uint64_t bound = checkpoint_size_bound(tensor_bytes, registry.specs().size());
  const std::string no_room = probe_space(tmp, bound);
  if (!no_room.empty()) {
    const std::string why =
        explain_write_failure(fs::path(checkpoint).parent_path().string(), bound);
    TRIDENT_USER_FAIL("cannot write '", checkpoint, "': it needs up to ", bound, " bytes and ",
                      why.empty() ? no_room : why, " (", no_room, "); nothing was written");
  }
  ConversionSummary summary;
  try {
    h5::Handle file = h5::file_handle(
        H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), "creating " + tmp);
    write_state_attributes(file, state, /*has_optimizer=*/false);
    const int64_t total = static_cast<int64_t>(registry.specs().size());
    for (const models::ParamSpec& spec : registry.specs()) {
      TRIDENT_USER_CHECK(files.contains(spec.name), "weights in '", dir, "' have no tensor '",
                         spec.name, "' (expected shape ", shape_string(spec.shape),
                         "); is config.json the right model?");
      TRIDENT_USER_CHECK(files.info(spec.name).shape == spec.shape, "tensor '", spec.name, "' in '",
                         dir, "' has shape ", shape_string(files.info(spec.name).shape),
                         " but config.json implies ", shape_string(spec.shape));
      const Tensor tensor = files.load(spec.name, DType::F32);
      const int64_t bad = first_non_finite(tensor.data<float>(), tensor.numel());
      TRIDENT_USER_CHECK(bad < 0, "tensor '", spec.name, "' in '", dir,
                         "' holds a NaN or infinite value (element ", bad,
                         "): refusing to make a checkpoint of a diverged model");
      h5::Handle dataset =
          h5::create_f32_dataset(file, std::string(kWeights) + "/" + spec.name, spec.shape);
      if (tensor.numel() > 0) {
        TRIDENT_CHECK_HDF5(H5Dwrite(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                    tensor.data<float>()));
      }
      h5::write_attr_u32(dataset, "crc32c", crc32c(tensor.data<float>(), tensor.nbytes()));
      summary.bytes += tensor.nbytes();
      ++summary.tensors;
      if (progress) progress(summary.tensors, total, spec.name);
    }
    h5::write_attr_i64(file, "complete", 1);
    file.close();
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  std::error_code ec;
  fs::rename(tmp, checkpoint, ec);
  TRIDENT_CHECK_IO(!ec, "renaming ", tmp, " to ", checkpoint, " failed: ", ec.message());
  summary.shards = 1;
  return summary;
}

}  // namespace trident::io
