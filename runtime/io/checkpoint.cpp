#include "runtime/io/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <sstream>

#include "runtime/config/config.h"
#include "runtime/core/error.h"
#include "runtime/core/logging.h"
#include "runtime/io/checkpoint_attributes.h"
#include "runtime/io/checkpoint_hdf5.h"
#include "runtime/io/checkpoint_selection.h"

namespace trident::io {

namespace fs = std::filesystem;

namespace {

// One rank's part of one global tensor: local elements [begin, end) of its slice.
struct Piece {
  bool held = false;
  models::ShardSlice slice;
  int64_t begin = 0;
  int64_t end = 0;
  int64_t flat = 0;  // flat-buffer index of local element `begin`
};

Piece weight_piece(const models::ParameterStore& store, const models::ParamSpec& spec) {
  Piece piece;
  if (!store.has(spec.name)) return piece;
  const models::Parameter& param = store.get(spec.name);
  piece.held = true;
  piece.slice = param.slice;
  piece.begin = 0;
  piece.end = param.value.numel();
  piece.flat = param.offset;
  return piece;
}

// The part of the weight's flat range that falls inside the moments' range.
Piece moment_piece(const models::ParameterStore& store, const models::ParamSpec& spec,
                   const MomentsView& moments) {
  Piece piece = weight_piece(store, spec);
  if (!piece.held || moments.empty() || !spec.trained) return Piece{};
  const int64_t lo = std::max(piece.flat, moments.flat_begin);
  const int64_t hi = std::min(piece.flat + piece.end, moments.flat_end);
  if (lo >= hi) return Piece{};
  piece.begin = lo - piece.flat;
  piece.end = hi - piece.flat;
  piece.flat = lo;
  return piece;
}

constexpr int kKeyWords = 5;
void append_key(const Piece& piece, std::vector<int64_t>& out) {
  if (!piece.held) {
    out.insert(out.end(), {-2, 0, 0, 0, 0});
    return;
  }
  out.insert(out.end(),
             {piece.slice.dim, piece.slice.begin, piece.slice.extent, piece.begin, piece.end});
}

// For every piece: whether this rank writes it. Ranks holding an identical piece hold replicas
// of the same values; the lowest of them writes, the others select nothing.
std::vector<bool> elect_writers(const std::vector<Piece>& pieces, MPI_Comm comm) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  std::vector<int64_t> mine;
  mine.reserve(pieces.size() * kKeyWords);
  for (const Piece& piece : pieces) append_key(piece, mine);
  std::vector<int64_t> all(mine.size() * static_cast<size_t>(size));
  TRIDENT_CHECK_MPI(MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_INT64_T,
                                  all.data(), static_cast<int>(mine.size()), MPI_INT64_T, comm));
  std::vector<bool> writes(pieces.size(), false);
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (!pieces[i].held || pieces[i].begin >= pieces[i].end) continue;
    bool lower_has_it = false;
    for (int other = 0; other < rank && !lower_has_it; ++other) {
      lower_has_it = std::equal(
          mine.begin() + static_cast<std::ptrdiff_t>(i * kKeyWords),
          mine.begin() + static_cast<std::ptrdiff_t>((i + 1) * kKeyWords),
          all.begin() + static_cast<std::ptrdiff_t>(
                            (static_cast<size_t>(other) * pieces.size() + i) * kKeyWords));
    }
    writes[i] = !lower_has_it;
  }
  return writes;
}

// Every element of every stored tensor must have exactly one writer; a gap would be saved as
// zeros with a valid checksum. Checked identically on all ranks from the gathered pieces.
void check_coverage(const std::vector<models::ParamSpec>& specs, const std::vector<Piece>& pieces,
                    const std::vector<bool>& writes, bool has_moments, MPI_Comm comm) {
  std::vector<int64_t> written(pieces.size(), 0);
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (writes[i]) written[i] = pieces[i].end - pieces[i].begin;
  }
  TRIDENT_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, written.data(), static_cast<int>(written.size()),
                                  MPI_INT64_T, MPI_SUM, comm));
  for (size_t i = 0; i < specs.size(); ++i) {
    TRIDENT_CHECK(written[2 * i] == specs[i].numel(), "checkpoint: the ranks hold ", written[2 * i],
                  " distinct elements of ", specs[i].name, " but it has ", specs[i].numel(),
                  " (stores that leave part of a tensor unheld, or overlap)");
    if (has_moments && specs[i].trained) {
      TRIDENT_CHECK(written[2 * i + 1] == specs[i].numel(),
                    "checkpoint: the moments' flat ranges "
                    "cover ",
                    written[2 * i + 1], " elements of ", specs[i].name, " but it has ",
                    specs[i].numel());
    }
  }
}

h5::Handle collective_transfer() {
  h5::Handle dxpl = h5::plist_handle(H5Pcreate(H5P_DATASET_XFER), "H5Pcreate(xfer)");
  TRIDENT_CHECK_HDF5(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE));
  return dxpl;
}

h5::Handle mpio_access(MPI_Comm comm) {
  h5::Handle fapl = h5::plist_handle(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate(access)");
  TRIDENT_CHECK_HDF5(H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL));
  TRIDENT_CHECK_HDF5(H5Pset_all_coll_metadata_ops(fapl, true));
  TRIDENT_CHECK_HDF5(H5Pset_coll_metadata_write(fapl, true));
  return fapl;
}

// Writes (or reads) `data` for this rank's boxes of `dataset`; every rank calls it.
void transfer(hid_t dataset, hid_t dxpl, const Shape& shape, const Piece& piece, bool active,
              float* data, bool write, const std::string& what) {
  h5::Handle file_space = h5::space_handle(H5Dget_space(dataset), "H5Dget_space " + what);
  const std::vector<Box> boxes =
      active ? local_range_boxes(shape, piece.slice, piece.begin, piece.end) : std::vector<Box>{};
  select_boxes(file_space, boxes);
  const hsize_t n = active ? static_cast<hsize_t>(piece.end - piece.begin) : 1;
  h5::Handle mem_space = h5::space_handle(H5Screate_simple(1, &n, nullptr), "H5Screate_simple");
  float dummy = 0.0f;
  if (!active) H5Sselect_none(mem_space);
  float* buffer = active ? data : &dummy;
  const herr_t rc = write ? H5Dwrite(dataset, H5T_NATIVE_FLOAT, mem_space, file_space, dxpl, buffer)
                          : H5Dread(dataset, H5T_NATIVE_FLOAT, mem_space, file_space, dxpl, buffer);
  if (rc < 0) TRIDENT_FAIL_KIND(ErrorKind::Hdf5, write ? "writing " : "reading ", what, " failed");
}

}  // namespace

std::vector<std::string> dataset_names(hid_t file, const char* group) {
  std::vector<std::string> names;
  if (!h5::link_exists(file, group)) return names;
  h5::Handle g =
      h5::group_handle(H5Gopen2(file, group, H5P_DEFAULT), std::string("opening ") + group);
  auto visit = [](hid_t, const char* name, const H5L_info_t*, void* out) -> herr_t {
    static_cast<std::vector<std::string>*>(out)->push_back(name);
    return 0;
  };
  TRIDENT_CHECK_HDF5(H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, nullptr, visit, &names));
  return names;
}

namespace {

// Rank 0 computes and stores the CRC-32C of every dataset of a closed checkpoint.
void store_checksums(const std::string& path) {
  h5::Handle file = h5::file_handle(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT),
                                    "reopening " + path + " for checksums");
  for (const char* group : {kWeights, kExpAvg, kExpAvgSq}) {
    for (const std::string& name : dataset_names(file, group)) {
      const std::string full = std::string(group) + "/" + name;
      h5::Handle dataset = h5::dataset_handle(H5Dopen2(file, full.c_str(), H5P_DEFAULT), full);
      h5::write_attr_u32(dataset, "crc32c", h5::dataset_crc32c(dataset));
    }
  }
  h5::write_attr_i64(file, "complete", 1);
  file.close();
}

// Runs `work` on rank 0 and rethrows its failure on every rank (a UserError stays one).
template <typename Work>
void on_root(MPI_Comm comm, Work&& work) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  std::string error;
  int user = 0;
  if (rank == 0) {
    try {
      work();
    } catch (const UserError& e) {
      error = e.detail();
      user = 1;
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = "unknown error";
    }
  }
  int header[2] = {static_cast<int>(error.size()), user};
  TRIDENT_CHECK_MPI(MPI_Bcast(header, 2, MPI_INT, 0, comm));
  if (header[0] == 0) return;
  error.resize(static_cast<size_t>(header[0]));
  TRIDENT_CHECK_MPI(MPI_Bcast(error.data(), header[0], MPI_CHAR, 0, comm));
  if (header[1] != 0) TRIDENT_USER_FAIL(error);
  TRIDENT_FAIL_KIND(ErrorKind::Io, "checkpoint: rank 0 failed: ", error);
}

void prune(const std::string& dir, int64_t keep_last) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 7 && name.rfind("step_", 0) == 0 &&
        name.compare(name.size() - 7, 7, ".h5.tmp") == 0) {
      std::error_code ec;
      fs::remove(entry.path(), ec);  // a save that never completed
    }
  }
  if (keep_last <= 0) return;
  std::vector<CheckpointFile> files = list_checkpoints(dir);
  const int64_t excess = static_cast<int64_t>(files.size()) - keep_last;
  for (int64_t i = 0; i < excess; ++i) {
    std::error_code ec;
    fs::remove(files[static_cast<size_t>(i)].path, ec);
    if (ec)
      TLOG_WARN("could not remove old checkpoint ", files[static_cast<size_t>(i)].path, ": ",
                ec.message());
  }
}

}  // namespace

void write_state_attributes(hid_t file, const CheckpointState& state, bool has_optimizer) {
  h5::write_attr_i64(file, "format_version", kCheckpointFormatVersion);
  h5::write_attr_string(file, "format", "trident-checkpoint");
  h5::write_attr_i64(file, "step", state.step);
  h5::write_attr_u64(file, "seed", state.seed);
  h5::write_attr_i64(file, "data_position", state.data_position);
  h5::write_attr_string(file, "rng_state", state.rng_state);
  h5::write_attr_string(file, "config", config::to_text(state.config));
  h5::write_attr_i64(file, "layout_pp", state.layout.pp);
  h5::write_attr_i64(file, "layout_dp", state.layout.dp);
  h5::write_attr_i64(file, "layout_tp", state.layout.tp);
  h5::write_attr_i64(file, "layout_ep", state.layout.ep);
  h5::write_attr_i64(file, "layout_etp", state.layout.etp);
  h5::write_attr_i64(file, "layout_zero1", state.layout.zero1 ? 1 : 0);
  h5::write_attr_i64(file, "has_optimizer", has_optimizer ? 1 : 0);
}

CheckpointState read_state_attributes(hid_t file, const std::string& path) {
  TRIDENT_USER_CHECK(h5::has_attr(file, "format_version"), "'", path,
                     "' is an HDF5 file but not a Trident checkpoint (no format_version)");
  const int64_t version = h5::read_attr_i64(file, "format_version");
  TRIDENT_USER_CHECK(version == kCheckpointFormatVersion, "'", path, "' has checkpoint format ",
                     version, "; this build reads format ", kCheckpointFormatVersion);
  CheckpointState state;
  state.step = h5::read_attr_i64(file, "step");
  state.seed = h5::read_attr_u64(file, "seed");
  state.data_position = h5::read_attr_i64(file, "data_position");
  state.rng_state = h5::read_attr_string(file, "rng_state");
  state.config = config::parse_config_text(h5::read_attr_string(file, "config"), path + ":config");
  state.layout.pp = h5::read_attr_i64(file, "layout_pp");
  state.layout.dp = h5::read_attr_i64(file, "layout_dp");
  state.layout.tp = h5::read_attr_i64(file, "layout_tp");
  state.layout.ep = h5::read_attr_i64(file, "layout_ep");
  state.layout.etp = h5::read_attr_i64(file, "layout_etp");
  state.layout.zero1 = h5::read_attr_i64(file, "layout_zero1") != 0;
  return state;
}

CheckpointLayout layout_of(const config::TridentConfig& config) {
  const auto& p = config.parallel();
  CheckpointLayout layout;
  layout.pp = std::max<int64_t>(1, p.pp());
  layout.dp = std::max<int64_t>(1, p.dp());
  layout.tp = std::max<int64_t>(1, p.tp());
  layout.ep = std::max<int64_t>(1, p.ep());
  layout.etp = std::max<int64_t>(1, p.etp());
  layout.zero1 = p.zero1();
  return layout;
}

std::string checkpoint_file_name(int64_t step) { return "step_" + std::to_string(step) + ".h5"; }

std::vector<CheckpointFile> list_checkpoints(const std::string& dir) {
  std::vector<CheckpointFile> files;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return files;
  static const std::regex pattern("step_([0-9]+)\\.h5");
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    std::smatch match;
    if (!std::regex_match(name, match, pattern)) continue;
    files.push_back({std::stoll(match[1].str()), entry.path().string()});
  }
  std::sort(files.begin(), files.end(),
            [](const CheckpointFile& a, const CheckpointFile& b) { return a.step < b.step; });
  return files;
}

std::string save_checkpoint(const std::string& dir, const CheckpointState& state,
                            const models::ParameterStore& store, const MomentsView& moments,
                            MPI_Comm comm, const CheckpointSaveOptions& options) {
  h5::silence_errors();
  const std::string final_path = (fs::path(dir) / checkpoint_file_name(state.step)).string();
  const std::string tmp_path = final_path + ".tmp";
  on_root(comm, [&] {
    std::error_code ec;
    fs::create_directories(dir, ec);
    TRIDENT_USER_CHECK(!ec, "checkpoint.dir: cannot create '", dir, "': ", ec.message());
  });

  // Whether anyone holds optimizer state decides whether /optimizer exists (collectively).
  int has_moments = moments.empty() ? 0 : 1;
  TRIDENT_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, &has_moments, 1, MPI_INT, MPI_MAX, comm));

  const auto& specs = store.registry().specs();
  std::vector<Piece> pieces;  // per spec: weight, moment
  pieces.reserve(specs.size() * 2);
  for (const models::ParamSpec& spec : specs) {
    pieces.push_back(weight_piece(store, spec));
    pieces.push_back(moment_piece(store, spec, moments));
  }
  const std::vector<bool> writes = elect_writers(pieces, comm);
  check_coverage(specs, pieces, writes, has_moments != 0, comm);

  {
    h5::Handle fapl = mpio_access(comm);
    h5::Handle file = h5::file_handle(H5Fcreate(tmp_path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl),
                                      "creating checkpoint " + tmp_path);
    write_state_attributes(file, state, has_moments != 0);
    h5::Handle dxpl = collective_transfer();
    const float* values = store.flat_values().data<float>();
    for (size_t i = 0; i < specs.size(); ++i) {
      const models::ParamSpec& spec = specs[i];
      const Piece& weight = pieces[2 * i];
      h5::Handle dataset =
          h5::create_f32_dataset(file, std::string(kWeights) + "/" + spec.name, spec.shape);
      transfer(dataset, dxpl, spec.shape, weight, writes[2 * i],
               const_cast<float*>(values + weight.flat), true, spec.name);
      if (has_moments == 0 || !spec.trained) continue;
      const Piece& moment = pieces[2 * i + 1];
      const int64_t at = moment.flat - moments.flat_begin;
      for (const char* group : {kExpAvg, kExpAvgSq}) {
        float* base = group == kExpAvg ? moments.exp_avg : moments.exp_avg_sq;
        h5::Handle m =
            h5::create_f32_dataset(file, std::string(group) + "/" + spec.name, spec.shape);
        transfer(m, dxpl, spec.shape, moment, writes[2 * i + 1], base ? base + at : nullptr, true,
                 std::string(group) + "/" + spec.name);
      }
    }
    file.close();
  }
  TRIDENT_CHECK_MPI(MPI_Barrier(comm));
  on_root(comm, [&] { store_checksums(tmp_path); });
  if (options.before_commit) options.before_commit();
  // Every rank has closed the file and the checksums are in: only now does the name appear.
  TRIDENT_CHECK_MPI(MPI_Barrier(comm));
  on_root(comm, [&] {
    std::error_code ec;
    fs::rename(tmp_path, final_path, ec);
    TRIDENT_CHECK_IO(!ec, "renaming ", tmp_path, " to ", final_path, " failed: ", ec.message());
    prune(dir, options.keep_last);
    TLOG_INFO("checkpoint saved: ", final_path);
  });
  return final_path;
}

LoadedCheckpoint load_checkpoint(const std::string& path, models::ParameterStore& store,
                                 const MomentsView& moments, MPI_Comm comm) {
  h5::silence_errors();
  int readable = 0;
  on_root(comm, [&] {
    TRIDENT_USER_CHECK(fs::exists(path), "checkpoint '", path, "' does not exist");
    TRIDENT_USER_CHECK(H5Fis_hdf5(path.c_str()) > 0, "'", path, "' is not an HDF5 file");
    readable = 1;
  });
  (void)readable;
  h5::Handle fapl = mpio_access(comm);
  h5::Handle file = h5::file_handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl),
                                    "opening checkpoint " + path + " (truncated or damaged?)");
  LoadedCheckpoint loaded;
  loaded.state = read_state_attributes(file, path);
  loaded.optimizer_loaded =
      h5::has_attr(file, "has_optimizer") && h5::read_attr_i64(file, "has_optimizer") != 0;
  h5::Handle dxpl = collective_transfer();
  float* values = store.flat_values().data<float>();
  if (!moments.empty()) {
    std::fill(moments.exp_avg, moments.exp_avg + (moments.flat_end - moments.flat_begin), 0.0f);
    std::fill(moments.exp_avg_sq, moments.exp_avg_sq + (moments.flat_end - moments.flat_begin),
              0.0f);
  }
  for (const models::ParamSpec& spec : store.registry().specs()) {
    const std::string name = std::string(kWeights) + "/" + spec.name;
    TRIDENT_USER_CHECK(h5::link_exists(file, name), "checkpoint '", path, "' has no tensor '",
                       spec.name, "' (expected shape ", shape_string(spec.shape),
                       "); was it written for another model config?");
    h5::Handle dataset = h5::dataset_handle(H5Dopen2(file, name.c_str(), H5P_DEFAULT), name);
    const Shape stored = h5::dataset_shape(dataset);
    TRIDENT_USER_CHECK(stored == spec.shape, "tensor '", spec.name, "' in '", path, "' has shape ",
                       shape_string(stored), " but the model expects ", shape_string(spec.shape));
    const Piece weight = weight_piece(store, spec);
    transfer(dataset, dxpl, spec.shape, weight, weight.held, values + weight.flat, false, name);
    if (!loaded.optimizer_loaded || !spec.trained) continue;
    const Piece moment = moment_piece(store, spec, moments);
    const bool active = moment.held && moment.end > moment.begin;
    const int64_t at = moment.flat - moments.flat_begin;
    for (const char* group : {kExpAvg, kExpAvgSq}) {
      const std::string mname = std::string(group) + "/" + spec.name;
      TRIDENT_USER_CHECK(h5::link_exists(file, mname), "checkpoint '", path, "' has no '", mname,
                         "'");
      h5::Handle m = h5::dataset_handle(H5Dopen2(file, mname.c_str(), H5P_DEFAULT), mname);
      float* base = group == kExpAvg ? moments.exp_avg : moments.exp_avg_sq;
      transfer(m, dxpl, spec.shape, moment, active, active ? base + at : nullptr, false, mname);
    }
  }
  file.close();
  return loaded;
}

CheckpointState read_checkpoint_state(const std::string& path) {
  h5::silence_errors();
  TRIDENT_USER_CHECK(H5Fis_hdf5(path.c_str()) > 0, "'", path, "' is not an HDF5 file");
  h5::Handle file = h5::file_handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT),
                                    "opening checkpoint " + path + " (truncated or damaged?)");
  return read_state_attributes(file, path);
}

CheckpointCheck verify_checkpoint(const std::string& path) {
  h5::silence_errors();
  CheckpointCheck check;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    check.reason = "not a regular file";
    return check;
  }
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    check.reason = "not an HDF5 file (no HDF5 signature; empty or overwritten?)";
    return check;
  }
  const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0) {
    check.reason = "truncated or damaged: HDF5 cannot open it (file size " +
                   std::to_string(fs::file_size(path, ec)) + " bytes)";
    return check;
  }
  h5::Handle file(id, H5Fclose);
  try {
    read_state_attributes(file, path);
    if (!h5::has_attr(file, "complete")) {
      check.reason = "incomplete: the save did not finish (no 'complete' attribute)";
      return check;
    }
  } catch (const std::exception& e) {
    check.reason = std::string("bad attributes: ") + e.what();
    return check;
  }
  for (const char* group : {kWeights, kExpAvg, kExpAvgSq}) {
    std::vector<std::string> names;
    try {
      names = dataset_names(file, group);
    } catch (const std::exception&) {
      check.reason = std::string("damaged: cannot list ") + group;
      return check;
    }
    for (const std::string& name : names) {
      const std::string full = std::string(group) + "/" + name;
      try {
        h5::Handle dataset = h5::dataset_handle(H5Dopen2(file, full.c_str(), H5P_DEFAULT), full);
        if (!h5::has_attr(dataset, "crc32c")) {
          check.reason = "no checksum on " + full;
          return check;
        }
        const uint32_t stored = h5::read_attr_u32(dataset, "crc32c");
        const uint32_t computed = h5::dataset_crc32c(dataset);
        if (stored != computed) {
          char text[96];
          std::snprintf(text, sizeof(text), " (stored %08x, computed %08x)", stored, computed);
          check.reason = "checksum mismatch in " + full + text;
          return check;
        }
      } catch (const std::exception&) {
        check.reason = "truncated or damaged: cannot read " + full;
        return check;
      }
    }
  }
  check.valid = true;
  return check;
}

LatestCheckpoint find_latest_valid(const std::string& dir) {
  LatestCheckpoint latest;
  std::vector<CheckpointFile> files = list_checkpoints(dir);
  for (auto it = files.rbegin(); it != files.rend(); ++it) {
    const CheckpointCheck check = verify_checkpoint(it->path);
    if (check.valid) {
      latest.path = it->path;
      latest.step = it->step;
      break;
    }
    TLOG_WARN("refusing checkpoint ", it->path, ": ", check.reason);
    latest.refused.push_back({it->path, check.reason});
  }
  return latest;
}

LatestCheckpoint find_latest_valid(const std::string& dir, MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  LatestCheckpoint latest;
  on_root(comm, [&] { latest = find_latest_valid(dir); });
  int64_t header[2] = {latest.step, static_cast<int64_t>(latest.path.size())};
  TRIDENT_CHECK_MPI(MPI_Bcast(header, 2, MPI_INT64_T, 0, comm));
  latest.step = header[0];
  latest.path.resize(static_cast<size_t>(header[1]));
  if (header[1] > 0) {
    TRIDENT_CHECK_MPI(
        MPI_Bcast(latest.path.data(), static_cast<int>(header[1]), MPI_CHAR, 0, comm));
  }
  return latest;
}

}  // namespace trident::io
