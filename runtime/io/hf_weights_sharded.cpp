#include "runtime/io/hf_weights_sharded.h"

#include <cstdio>
#include <filesystem>
#include <map>
#include <vector>

#include "runtime/config/config.h"
#include "runtime/core/error.h"
#include "runtime/core/logging.h"
#include "runtime/io/non_finite.h"

namespace trident::io {

namespace fs = std::filesystem;

namespace {

std::string shard_file_name(int index, int count) {
  char name[64];
  std::snprintf(name, sizeof(name), "model-%05d-of-%05d.safetensors", index + 1, count);
  return name;
}

// Allgather of one int per rank.
std::vector<int> gather_ints(const std::vector<int>& mine, MPI_Comm comm) {
  int size = 1;
  MPI_Comm_size(comm, &size);
  std::vector<int> all(mine.size() * static_cast<size_t>(size));
  TRIDENT_CHECK_MPI(MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_INT, all.data(),
                                  static_cast<int>(mine.size()), MPI_INT, comm));
  return all;
}

}  // namespace

void save_hf_weights_sharded(const models::ParameterStore& store, const std::string& dir,
                             MPI_Comm comm, const HfExportOptions& options) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  const config::ModelConfig& model = store.registry().config();
  const std::vector<models::ParamSpec>& specs = store.registry().specs();
  refuse_non_finite(find_non_finite(store, {}, comm), "Hugging Face weights to '" + dir + "'");

  // Which tensors this rank writes: those it holds and no lower rank holds.
  std::vector<int> held(specs.size(), 0);
  for (size_t i = 0; i < specs.size(); ++i) {
    if (!store.has(specs[i].name)) continue;
    const models::Parameter& param = store.get(specs[i].name);
    TRIDENT_CHECK(param.slice.dim < 0 ||
                      param.slice.extent == specs[i].shape[static_cast<size_t>(param.slice.dim)],
                  "save_hf_weights_sharded needs whole tensors; ", specs[i].name, " is a shard");
    held[i] = 1;
  }
  const std::vector<int> all_held = gather_ints(held, comm);
  std::vector<bool> writes(specs.size(), false);
  std::map<std::string, bool> writes_name;
  for (size_t i = 0; i < specs.size(); ++i) {
    bool lower = false;
    for (int r = 0; r < rank && !lower; ++r) {
      lower = all_held[static_cast<size_t>(r) * specs.size() + i] != 0;
    }
    writes[i] = held[i] != 0 && !lower;
    writes_name[specs[i].name] = writes[i];
  }
  // Every tensor has a writer.
  std::vector<int> covered(specs.size(), 0);
  for (int r = 0; r < size; ++r) {
    for (size_t i = 0; i < specs.size(); ++i) {
      covered[i] |= all_held[static_cast<size_t>(r) * specs.size() + i];
    }
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    TRIDENT_CHECK(covered[i] != 0, "HF export: no rank holds ", specs[i].name);
  }

  // The MTP module's names for the shared embedding and head go with their source.
  std::vector<std::pair<std::string, std::string>> copies;
  if (options.write_mtp_shared_copies) {
    for (int64_t d = 1; d <= model.num_nextn_predict_layers(); ++d) {
      const std::string prefix =
          "model.layers." + std::to_string(model.num_hidden_layers() + d - 1);
      copies.emplace_back(prefix + ".embed_tokens.weight", "model.embed_tokens.weight");
      copies.emplace_back(prefix + ".shared_head.head.weight", "lm_head.weight");
    }
  }

  std::vector<StEntry> entries;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (!writes[i]) continue;
    // The router bias is fp32 in the published checkpoint whatever the weight dtype.
    const StDType dtype =
        specs[i].kind == models::ParamKind::kRouterBias ? StDType::F32 : options.dtype;
    entries.push_back({specs[i].name, dtype, specs[i].shape});
  }
  for (const auto& [copy, source] : copies) {
    if (writes_name[source]) {
      entries.push_back({copy, options.dtype, store.get(source).spec->shape});
    }
  }

  // Shard numbers count only the ranks that write something.
  const std::vector<int> writers = gather_ints({entries.empty() ? 0 : 1}, comm);
  int index = 0, count = 0;
  for (int r = 0; r < size; ++r) {
    if (r < rank) index += writers[static_cast<size_t>(r)];
    count += writers[static_cast<size_t>(r)];
  }
  if (rank == 0) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    TRIDENT_USER_CHECK(!ec, "cannot create the output directory '", dir, "': ", ec.message());
  }
  TRIDENT_CHECK_MPI(MPI_Barrier(comm));
  if (!entries.empty()) {
    SafetensorsWriter writer((fs::path(dir) / shard_file_name(index, count)).string(), entries,
                             {{"format", "pt"}});
    for (size_t i = 0; i < specs.size(); ++i) {
      if (writes[i]) writer.write(specs[i].name, store.get(specs[i].name).value);
    }
    for (const auto& [copy, source] : copies) {
      if (writes_name[source]) writer.write(copy, store.get(source).value);
    }
    writer.finish();
  }
  TRIDENT_CHECK_MPI(MPI_Barrier(comm));
  if (rank == 0) {
    std::map<std::string, std::string> weight_map;
    uint64_t total = 0;
    for (int s = 0; s < count; ++s) {
      const std::string name = shard_file_name(s, count);
      const SafetensorsFile shard((fs::path(dir) / name).string());
      for (const std::string& tensor : shard.names()) {
        weight_map[tensor] = name;
        total += shard.info(tensor).end - shard.info(tensor).begin;
      }
    }
    write_safetensors_index(dir, weight_map, total);
    write_hf_config(dir, model, options.dtype);
  }
  TRIDENT_CHECK_MPI(MPI_Barrier(comm));
}

}  // namespace trident::io
