#include "runtime/io/checkpoint_commit.h"

#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>

#include "runtime/core/error.h"
#include "runtime/core/logging.h"
#include "runtime/io/checkpoint_claim.h"
#include "runtime/io/on_root.h"
#include "runtime/io/write_failure.h"

namespace trident::io {

namespace fs = std::filesystem;

namespace {

// The newest checkpoint already in `dir`, for messages that say what is still there.
std::string kept_checkpoints(const std::string& dir) {
  const std::vector<CheckpointFile> kept = list_checkpoints(dir);
  return kept.empty() ? "no earlier checkpoint in '" + dir + "'"
                      : "the newest checkpoint is still " + kept.back().path;
}

// UserError if `bytes_needed` cannot be written next to the checkpoints in `dir`.
void check_space_for_save(const std::string& dir, const std::string& final_path,
                          const std::string& tmp_path, uint64_t bytes_needed) {
  const std::string failure = probe_space(tmp_path, bytes_needed);
  if (failure.empty()) return;
  const std::string why = explain_write_failure(dir, bytes_needed);
  TRIDENT_USER_FAIL("cannot save checkpoint '", final_path, "': it needs up to ", bytes_needed,
                    " bytes and ", why.empty() ? failure : why, " (", failure,
                    "); nothing was replaced: ", kept_checkpoints(dir),
                    ". Fix that and run again (--resume auto continues from there)");
}

}  // namespace

uint64_t checkpoint_size_bound(uint64_t tensor_bytes, uint64_t datasets) {
  return tensor_bytes + datasets * 4096 + (256u << 10);
}

void check_checkpoint_dir(const std::string& dir) {
  std::error_code ec;
  fs::path existing = fs::absolute(dir, ec);
  while (!fs::exists(existing, ec) && existing.has_relative_path())
    existing = existing.parent_path();
  const bool is_dir = fs::is_directory(existing, ec);
  const std::string where = existing == fs::absolute(dir, ec)
                                ? ""
                                : " (it would be created in '" + existing.string() + "')";
  TRIDENT_USER_CHECK(is_dir, "checkpoint.dir '", dir, "': '", existing.string(),
                     "' exists but is not a directory");
  TRIDENT_USER_CHECK(::access(existing.c_str(), W_OK) == 0, "checkpoint.dir '", dir,
                     "' is not writable", where, " (", std::strerror(errno),
                     "); give a --checkpoint-dir this user may write to");
}

void prepare_checkpoint_dir(const std::string& dir, const std::string& final_path,
                            const std::string& tmp_path, const std::string& run_id,
                            uint64_t bytes_needed) {
  // Checked before it is created, with the messages of the claim at start-up; a read-only
  // directory is refused here, before any collective HDF5 call can fail on it.
  check_checkpoint_dir(dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  TRIDENT_USER_CHECK(!ec, "checkpoint.dir: cannot create '", dir, "': ", ec.message());
  if (fs::exists(final_path, ec)) {
    const std::optional<std::string> owner = checkpoint_run_id(final_path);
    TRIDENT_USER_CHECK(!owner || *owner == run_id, "refusing to replace '", final_path,
                       "': it belongs to another run (",
                       owner && !owner->empty() ? *owner : "no id", "; this run is ",
                       run_id.empty() ? "without id" : run_id,
                       "); give this run another --checkpoint-dir");
  }
  check_space_for_save(dir, final_path, tmp_path, bytes_needed);
}

std::string failure_text(const std::exception& e) {
  if (const auto* error = dynamic_cast<const Error*>(&e)) return error->detail();
  const std::string what = e.what();
  return what.empty() ? "unknown error" : what;
}

std::string agree_on_failure(const std::string& local_failure, MPI_Comm comm) {
  struct {
    int failed;
    int rank;
  } mine{local_failure.empty() ? INT_MAX : 0, 0}, first{INT_MAX, 0};
  MPI_Comm_rank(comm, &mine.rank);
  TRIDENT_CHECK_MPI(MPI_Allreduce(&mine, &first, 1, MPI_2INT, MPI_MINLOC, comm));
  if (first.failed == INT_MAX) return "";
  std::string failure = mine.rank == first.rank ? local_failure : "";
  int length = static_cast<int>(failure.size());
  TRIDENT_CHECK_MPI(MPI_Bcast(&length, 1, MPI_INT, first.rank, comm));
  failure.resize(static_cast<size_t>(length));
  if (length > 0) TRIDENT_CHECK_MPI(MPI_Bcast(failure.data(), length, MPI_CHAR, first.rank, comm));
  return "rank " + std::to_string(first.rank) + ": " + failure;
}

void fail_save(const std::string& dir, const std::string& tmp_path, const std::string& final_path,
               const std::string& failure, MPI_Comm comm) {
  on_root(comm, [&] {
    std::error_code ec;
    fs::remove(tmp_path, ec);  // a partial file would only take the space a retry needs
    const std::string why = explain_write_failure(dir);
    TRIDENT_USER_FAIL("cannot save checkpoint '", final_path,
                      "': ", why.empty() ? "the write failed" : why, " (", failure,
                      "); nothing was replaced: ", kept_checkpoints(dir),
                      ". Fix that and run again (--resume auto continues from there)");
  });
  TRIDENT_FAIL("fail_save returned on a rank");  // on_root threw on every rank
}

void prune_after_save(const std::string& dir, const std::string& run_id, int64_t keep_last,
                      const std::string& just_saved) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 7 && name.rfind("step_", 0) == 0 &&
        name.compare(name.size() - 7, 7, ".h5.tmp") == 0) {
      std::error_code remove_error;
      fs::remove(entry.path(), remove_error);  // a save that never completed
    }
  }
  for (const CheckpointFile& file : files_to_prune(dir, run_id, keep_last, just_saved)) {
    fs::remove(file.path, ec);
    if (ec) TLOG_WARN("could not remove old checkpoint ", file.path, ": ", ec.message());
  }
}

}  // namespace trident::io
