#include "runtime/io/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <regex>
#include <sstream>

#include "runtime/config/config.h"
#include "runtime/core/error.h"
#include "runtime/core/fault_injection.h"
#include "runtime/core/logging.h"
#include "runtime/io/checkpoint_attributes.h"
#include "runtime/io/checkpoint_commit.h"
#include "runtime/io/checkpoint_hdf5.h"
#include "runtime/io/checkpoint_selection.h"
#include "runtime/io/collective_watchdog.h"
#include "runtime/io/non_finite.h"
#include "runtime/io/on_root.h"

namespace trident::io {

namespace fs = std::filesystem;

namespace {

// A run of local elements [begin, end) of one rank's slice; `range` indexes the moment
// ranges it lies in (unused for weights).
struct Span {
  int64_t begin = 0;
  int64_t end = 0;
  size_t range = 0;
};

// One rank's part of one global tensor: runs of local elements of its slice, ascending.
struct Piece {
  bool held = false;
  models::ShardSlice slice;
  int64_t flat = 0;  // flat-buffer index of local element 0
  std::vector<Span> spans;

  int64_t count() const {
    int64_t n = 0;
    for (const Span& span : spans) n += span.end - span.begin;
    return n;
  }
};

Piece weight_piece(const models::ParameterStore& store, const models::ParamSpec& spec) {
  Piece piece;
  if (!store.has(spec.name)) return piece;
  const models::Parameter& param = store.get(spec.name);
  piece.held = true;
  piece.slice = param.slice;
  piece.flat = param.offset;
  piece.spans.push_back({0, param.value.numel(), 0});
  return piece;
}

// The parts of the weight's flat range that fall inside the moment ranges (sorted, disjoint).
Piece moment_piece(const models::ParameterStore& store, const models::ParamSpec& spec,
                   const std::vector<MomentRange>& ranges) {
  Piece piece = weight_piece(store, spec);
  if (!piece.held || ranges.empty() || !spec.trained) return Piece{};
  const int64_t lo = piece.flat;
  const int64_t hi = piece.flat + piece.spans.front().end;
  piece.spans.clear();
  // The first range that ends after lo.
  auto it = std::upper_bound(ranges.begin(), ranges.end(), lo,
                             [](int64_t at, const MomentRange& r) { return at < r.flat_end; });
  for (; it != ranges.end() && it->flat_begin < hi; ++it) {
    const int64_t begin = std::max(lo, it->flat_begin);
    const int64_t end = std::min(hi, it->flat_end);
    if (begin >= end) continue;
    piece.spans.push_back(
        {begin - lo, end - lo, static_cast<size_t>(std::distance(ranges.begin(), it))});
  }
  if (piece.spans.empty()) return Piece{};
  return piece;
}

// Identifies a piece across ranks: slice, extent of the local runs, element count and a
// fingerprint of the runs (ranks holding an identical piece hold replicas).
constexpr int kKeyWords = 7;
void append_key(const Piece& piece, std::vector<int64_t>& out) {
  if (!piece.held) {
    out.insert(out.end(), {-2, 0, 0, 0, 0, 0, 0});
    return;
  }
  uint64_t fingerprint = 1469598103934665603ull;
  for (const Span& span : piece.spans) {
    for (int64_t word : {span.begin, span.end}) {
      fingerprint = (fingerprint ^ static_cast<uint64_t>(word)) * 1099511628211ull;
    }
  }
  out.insert(out.end(),
             {piece.slice.dim, piece.slice.begin, piece.slice.extent, piece.spans.front().begin,
              piece.spans.back().end, piece.count(), static_cast<int64_t>(fingerprint >> 1)});
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
    if (!pieces[i].held || pieces[i].count() == 0) continue;
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
    if (writes[i]) written[i] = pieces[i].count();
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

// Copies a moment piece between the ranges' buffers and a contiguous staging buffer (in the
// piece's local order, which is the order of its file selection).
void stage_moments(const Piece& piece, const std::vector<MomentRange>& ranges, bool first_moment,
                   std::vector<float>& staging, bool to_staging) {
  staging.resize(static_cast<size_t>(piece.count()));
  size_t at = 0;
  for (const Span& span : piece.spans) {
    const int64_t begin = piece.flat + span.begin;
    const MomentRange run = ranges[span.range].part(begin, begin + (span.end - span.begin));
    const Tensor moment = Tensor::wrap(first_moment ? run.exp_avg : run.exp_avg_sq,
                                       {run.flat_end - run.flat_begin}, run.dtype);
    const Tensor staged = Tensor::wrap(staging.data() + at, moment.shape(), DType::F32);
    if (to_staging) {
      Tensor(staged).copy_from(moment);  // bf16 moments are widened: files hold fp32
    } else {
      Tensor(moment).copy_from(staged);
    }
    at += static_cast<size_t>(moment.numel());
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

// Writes (or reads) `data` (the piece's elements, contiguous) for this rank's boxes of
// `dataset`; every rank calls it. The runs of a piece ascend in local order, and a slice's local
// row-major order is the global one restricted to the slice, so the union of their boxes is
// traversed in the same order as `data`.
void transfer(hid_t dataset, hid_t dxpl, const Shape& shape, const Piece& piece, bool active,
              float* data, bool write, const std::string& what) {
  h5::Handle file_space = h5::space_handle(H5Dget_space(dataset), "H5Dget_space " + what);
  std::vector<Box> boxes;
  if (active) {
    for (const Span& span : piece.spans) {
      std::vector<Box> part = local_range_boxes(shape, piece.slice, span.begin, span.end);
      boxes.insert(boxes.end(), part.begin(), part.end());
    }
  }
  select_boxes(file_space, boxes);
  const hsize_t n = active ? static_cast<hsize_t>(piece.count()) : 1;
  h5::Handle mem_space = h5::space_handle(H5Screate_simple(1, &n, nullptr), "H5Screate_simple");
  float dummy = 0.0f;
  if (!active) H5Sselect_none(mem_space);
  float* buffer = active ? data : &dummy;
  const herr_t rc = write ? H5Dwrite(dataset, H5T_NATIVE_FLOAT, mem_space, file_space, dxpl, buffer)
                          : H5Dread(dataset, H5T_NATIVE_FLOAT, mem_space, file_space, dxpl, buffer);
  if (rc < 0) {
    const std::string reason = h5::error_stack_summary();
    TRIDENT_FAIL_KIND(ErrorKind::Hdf5, write ? "writing " : "reading ", what, " failed",
                      reason.empty() ? "" : " (" + reason + ")");
  }
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
  for (const char* group : kDatasetGroups) {
    for (const std::string& name : dataset_names(file, group)) {
      const std::string full = std::string(group) + "/" + name;
      h5::Handle dataset = h5::dataset_handle(H5Dopen2(file, full.c_str(), H5P_DEFAULT), full);
      h5::write_attr_u32(dataset, "crc32c", h5::dataset_crc32c(dataset));
    }
  }
  h5::write_attr_i64(file, "complete", 1);
  file.close();
}

}  // namespace

MomentRange MomentRange::part(int64_t begin, int64_t end) const {
  TRIDENT_CHECK(flat_begin <= begin && begin <= end && end <= flat_end, "moment range [",
                flat_begin, ", ", flat_end, ") has no part [", begin, ", ", end, ")");
  const size_t skip = static_cast<size_t>(begin - flat_begin) * dtype_size(dtype);
  return MomentRange{static_cast<char*>(exp_avg) + skip, static_cast<char*>(exp_avg_sq) + skip,
                     begin, end, dtype};
}

std::vector<MomentRange> MomentsView::ranges() const {
  std::vector<MomentRange> all;
  if (exp_avg != nullptr && flat_end > flat_begin) {
    all.push_back({exp_avg, exp_avg_sq, flat_begin, flat_end, dtype});
  }
  for (const MomentRange& range : extra) {
    if (range.exp_avg != nullptr && range.flat_end > range.flat_begin) all.push_back(range);
  }
  std::sort(all.begin(), all.end(),
            [](const MomentRange& a, const MomentRange& b) { return a.flat_begin < b.flat_begin; });
  for (size_t i = 1; i < all.size(); ++i) {
    TRIDENT_CHECK(all[i - 1].flat_end <= all[i].flat_begin, "MomentsView: ranges [",
                  all[i - 1].flat_begin, ", ", all[i - 1].flat_end, ") and [", all[i].flat_begin,
                  ", ", all[i].flat_end, ") overlap");
  }
  return all;
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

namespace {

// Announces the collective step a save enters to the run's watchdog, if it has one.
class Watch {
 public:
  Watch(CollectiveWatchdog* watchdog, std::string what)
      : watchdog_(watchdog), what_("checkpoint save of " + std::move(what)) {}
  ~Watch() {
    if (watchdog_ != nullptr) watchdog_->leave();
  }
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;
  void operator()(const std::string& step) const {
    if (watchdog_ != nullptr) watchdog_->enter(what_ + ": " + step);
  }
  void pause() const {
    if (watchdog_ != nullptr) watchdog_->leave();
  }

 private:
  CollectiveWatchdog* watchdog_;
  std::string what_;
};

// The collective write of every tensor into `tmp_path`. Each part that may fail on some ranks
// only (creating the file, each dataset, the final close: a full disk fails on the ranks that
// write) is followed by an agreement, so every rank stops at the same call and none is left
// waiting in the next collective. Returns "" or the first failing rank's reason, on every rank.
std::string write_checkpoint_file(const std::string& tmp_path, const CheckpointState& state,
                                  const models::ParameterStore& store,
                                  const std::vector<MomentRange>& ranges, bool has_moments,
                                  const std::vector<Piece>& pieces, const std::vector<bool>& writes,
                                  const models::ParameterStore* reference, MPI_Comm comm,
                                  const Watch& watch) {
  const auto& specs = store.registry().specs();
  std::string failure;
  const auto attempt = [&](const std::string& name, auto&& work) {
    watch(name);
    std::string local;
    try {
      work();
    } catch (const std::exception& e) {
      local = failure_text(e);
    }
    failure = agree_on_failure(local, comm);
    return failure.empty();
  };
  h5::Handle fapl, file, dxpl;
  const bool created = attempt("creating the file", [&] {
    fapl = mpio_access(comm);
    file = h5::file_handle(H5Fcreate(tmp_path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl),
                           "creating checkpoint " + tmp_path);
    write_state_attributes(file, state, has_moments);
    dxpl = collective_transfer();
  });
  if (!created) return failure;
  // HDF5 writes from host memory: the values themselves on a CPU run, else a copy of them.
  const Tensor host_values = store.flat_values().on(Device::CPU);
  const float* values = host_values.data<float>();
  std::vector<float> staging;
  for (size_t i = 0; i < specs.size(); ++i) {
    const models::ParamSpec& spec = specs[i];
    const bool written = attempt(spec.name, [&] {
      const Piece& weight = pieces[2 * i];
      h5::Handle dataset =
          h5::create_f32_dataset(file, std::string(kWeights) + "/" + spec.name, spec.shape);
      transfer(dataset, dxpl, spec.shape, weight, writes[2 * i],
               const_cast<float*>(values + weight.flat), true, spec.name);
      if (!has_moments || !spec.trained) return;
      const Piece& moment = pieces[2 * i + 1];
      for (const char* group : {kExpAvg, kExpAvgSq}) {
        const bool active = writes[2 * i + 1];
        if (active) stage_moments(moment, ranges, group == kExpAvg, staging, true);
        h5::Handle m =
            h5::create_f32_dataset(file, std::string(group) + "/" + spec.name, spec.shape);
        transfer(m, dxpl, spec.shape, moment, active, active ? staging.data() : nullptr, true,
                 std::string(group) + "/" + spec.name);
      }
    });
    if (!written) return failure;
    fault_point("checkpoint_write");
  }
  // The reference has the policy's layout: the same pieces, the same writers.
  if (reference != nullptr) {
    const Tensor host_reference = reference->flat_values().on(Device::CPU);
    const float* reference_values = host_reference.data<float>();
    for (size_t i = 0; i < specs.size(); ++i) {
      const models::ParamSpec& spec = specs[i];
      const std::string name = std::string(kReferenceWeights) + "/" + spec.name;
      const bool written = attempt(name, [&] {
        const Piece& weight = pieces[2 * i];
        h5::Handle dataset = h5::create_f32_dataset(file, name, spec.shape);
        transfer(dataset, dxpl, spec.shape, weight, writes[2 * i],
                 const_cast<float*>(reference_values + weight.flat), true, name);
      });
      if (!written) return failure;
    }
  }
  attempt("closing the file", [&] { file.close(); });
  return failure;
}

// The reference store must hold the same slices at the same flat offsets as the policy's (it
// was built for the same layout), and every rank must pass one or none. Collective: every rank
// learns whether any rank's reference is missing or laid out otherwise, and all stop together.
bool agree_on_reference(const models::ParameterStore& store,
                        const models::ParameterStore* reference, MPI_Comm comm) {
  bool same_layout = true;
  if (reference != nullptr) {
    same_layout = reference->registry().specs().size() == store.registry().specs().size() &&
                  reference->numel() == store.numel();
    for (const models::ParamSpec& spec : store.registry().specs()) {
      if (!same_layout) break;
      same_layout = reference->has(spec.name) == store.has(spec.name) &&
                    (!store.has(spec.name) ||
                     reference->get(spec.name).offset == store.get(spec.name).offset);
    }
  }
  // {present anywhere, absent anywhere, laid out otherwise anywhere}
  int flags[3] = {reference != nullptr ? 1 : 0, reference == nullptr ? 1 : 0, same_layout ? 0 : 1};
  TRIDENT_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, flags, 3, MPI_INT, MPI_MAX, comm));
  TRIDENT_CHECK(flags[2] == 0,
                "checkpoint: a rank's reference model is laid out otherwise than its policy");
  TRIDENT_CHECK(flags[0] == 0 || flags[1] == 0,
                "checkpoint: some ranks save a reference model and others do not");
  return flags[0] != 0;
}

// Reads `group`/<name> of every tensor `store` holds into its slices (each rank its own
// hyperslab; collective). A missing tensor or another shape is a UserError naming it.
void read_weights(hid_t file, hid_t dxpl, const std::string& path, const std::string& group,
                  models::ParameterStore& store) {
  // HDF5 reads into host memory: the values themselves on a CPU run, else a copy handed back.
  Tensor values = store.flat_values();
  update_on_host(values, [&](Tensor& host) {
    float* data = host.data<float>();
    // The policy's tensors are named as the user knows them; another group's with the group.
    const std::string where = group == kWeights ? "" : " under " + group;
    for (const models::ParamSpec& spec : store.registry().specs()) {
      const std::string name = group + "/" + spec.name;
      TRIDENT_USER_CHECK(h5::link_exists(file, name), "checkpoint '", path, "' has no tensor '",
                         spec.name, "'", where, " (expected shape ", shape_string(spec.shape),
                         "); was it written for another model config?");
      h5::Handle dataset = h5::dataset_handle(H5Dopen2(file, name.c_str(), H5P_DEFAULT), name);
      const Shape stored = h5::dataset_shape(dataset);
      TRIDENT_USER_CHECK(stored == spec.shape, "tensor '", spec.name, "'", where, " in '", path,
                         "' has shape ", shape_string(stored), " but the model expects ",
                         shape_string(spec.shape));
      const Piece weight = weight_piece(store, spec);
      transfer(dataset, dxpl, spec.shape, weight, weight.held, data + weight.flat, false, name);
    }
  });
  store.refresh_compute_weights();
}

}  // namespace

std::string save_checkpoint(const std::string& dir, const CheckpointState& state,
                            const models::ParameterStore& store, const MomentsView& moments,
                            MPI_Comm comm, const CheckpointSaveOptions& options) {
  h5::silence_errors();
  const std::string final_path = (fs::path(dir) / checkpoint_file_name(state.step)).string();
  const std::string tmp_path = final_path + ".tmp";
  CheckpointState stamped = state;
  if (!options.run_id.empty()) stamped.run_id = options.run_id;
  const Watch watch(options.watchdog, final_path);
  watch("checking the values");

  // Whether anyone holds optimizer state decides whether /optimizer exists (collectively).
  const std::vector<MomentRange> ranges = moments.ranges();
  refuse_non_finite(find_non_finite(store, ranges, comm), "checkpoint '" + final_path + "'");
  int has_moments = ranges.empty() ? 0 : 1;
  TRIDENT_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, &has_moments, 1, MPI_INT, MPI_MAX, comm));
  const bool has_reference = agree_on_reference(store, options.reference, comm);
  const auto& specs = store.registry().specs();
  uint64_t tensor_bytes = 0, datasets = 0;
  for (const models::ParamSpec& spec : specs) {
    const uint64_t copies = (has_moments != 0 && spec.trained ? 3 : 1) + (has_reference ? 1 : 0);
    tensor_bytes += copies * static_cast<uint64_t>(spec.numel()) * sizeof(float);
    datasets += copies;
  }
  watch("preparing the directory");
  on_root(comm, [&] {
    prepare_checkpoint_dir(dir, final_path, tmp_path, stamped.run_id,
                           checkpoint_size_bound(tensor_bytes, datasets));
  });
  watch("electing the writers");

  std::vector<Piece> pieces;  // per spec: weight, moment
  pieces.reserve(specs.size() * 2);
  for (const models::ParamSpec& spec : specs) {
    pieces.push_back(weight_piece(store, spec));
    pieces.push_back(moment_piece(store, spec, ranges));
  }
  const std::vector<bool> writes = elect_writers(pieces, comm);
  check_coverage(specs, pieces, writes, has_moments != 0, comm);

  const std::string failure =
      write_checkpoint_file(tmp_path, stamped, store, ranges, has_moments != 0, pieces, writes,
                            has_reference ? options.reference : nullptr, comm, watch);
  if (!failure.empty()) fail_save(dir, tmp_path, final_path, failure, comm);
  watch("after the write");
  TRIDENT_CHECK_MPI(MPI_Barrier(comm));
  // Rank 0 reads the whole file back, however large: the others wait for it unwatched.
  watch.pause();
  std::string checksum_failure;
  on_root(comm, [&] {
    try {
      store_checksums(tmp_path);
    } catch (const std::exception& e) {
      checksum_failure = "rank 0: storing the checksums: " + failure_text(e);
    }
  });
  broadcast_string(checksum_failure, comm);
  if (!checksum_failure.empty()) fail_save(dir, tmp_path, final_path, checksum_failure, comm);
  if (options.before_commit) options.before_commit();
  // Every rank has closed the file and the checksums are in: only now does the name appear.
  watch("committing");
  TRIDENT_CHECK_MPI(MPI_Barrier(comm));
  on_root(comm, [&] {
    std::error_code ec;
    fs::rename(tmp_path, final_path, ec);
    TRIDENT_CHECK_IO(!ec, "renaming ", tmp_path, " to ", final_path, " failed: ", ec.message());
    prune_after_save(dir, stamped.run_id, options.keep_last, final_path);
    TLOG_INFO("checkpoint saved: ", final_path);
  });
  return final_path;
}

LoadedCheckpoint load_checkpoint(const std::string& path, models::ParameterStore& store,
                                 const MomentsView& moments, MPI_Comm comm,
                                 models::ParameterStore* reference) {
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
  read_weights(file, dxpl, path, kWeights, store);
  const std::vector<MomentRange> ranges = moments.ranges();
  for (const MomentRange& range : ranges) {
    // All-zero bits are 0.0 in f32 and in bf16.
    const size_t bytes =
        static_cast<size_t>(range.flat_end - range.flat_begin) * dtype_size(range.dtype);
    std::memset(range.exp_avg, 0, bytes);
    std::memset(range.exp_avg_sq, 0, bytes);
  }
  std::vector<float> staging;
  for (const models::ParamSpec& spec : store.registry().specs()) {
    if (!loaded.optimizer_loaded || !spec.trained) continue;
    const Piece moment = moment_piece(store, spec, ranges);
    const bool active = moment.held && moment.count() > 0;
    for (const char* group : {kExpAvg, kExpAvgSq}) {
      const std::string mname = std::string(group) + "/" + spec.name;
      TRIDENT_USER_CHECK(h5::link_exists(file, mname), "checkpoint '", path, "' has no '", mname,
                         "'");
      h5::Handle m = h5::dataset_handle(H5Dopen2(file, mname.c_str(), H5P_DEFAULT), mname);
      staging.resize(static_cast<size_t>(moment.count()));
      transfer(m, dxpl, spec.shape, moment, active, active ? staging.data() : nullptr, false,
               mname);
      if (active) stage_moments(moment, ranges, group == kExpAvg, staging, false);
    }
  }
  loaded.reference_loaded = reference != nullptr && h5::link_exists(file, kReferenceWeights);
  if (loaded.reference_loaded) read_weights(file, dxpl, path, kReferenceWeights, *reference);
  file.close();
  return loaded;
}

CheckpointState read_checkpoint_state(const std::string& path) {
  const h5::Handle file = open_checkpoint(path);
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
    check.reason = std::string("bad attributes: ") + failure_text(e);
    return check;
  }
  for (const char* group : kDatasetGroups) {
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
        const h5::DatasetScan scan = h5::scan_dataset(dataset);
        if (stored != scan.crc32c) {
          char text[96];
          std::snprintf(text, sizeof(text), " (stored %08x, computed %08x)", stored, scan.crc32c);
          check.reason = "checksum mismatch in " + full + text;
          return check;
        }
        if (scan.first_non_finite >= 0) {
          check.reason = full + " holds a NaN or infinite value (element " +
                         std::to_string(scan.first_non_finite) +
                         "): the model had diverged when this was saved";
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
