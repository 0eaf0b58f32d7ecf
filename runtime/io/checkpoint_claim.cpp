#include "runtime/io/checkpoint_claim.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>

#include "runtime/core/error.h"
#include "runtime/core/logging.h"
#include "runtime/io/checkpoint_commit.h"
#include "runtime/io/on_root.h"

namespace trident::io {

namespace fs = std::filesystem;

namespace {

// "step_4.h5, step_6.h5" (at most a handful, then how many more).
std::string file_list(const std::vector<std::string>& names) {
  constexpr size_t kShown = 4;
  std::string text;
  for (size_t i = 0; i < names.size() && i < kShown; ++i) {
    text += (i == 0 ? "" : ", ") + names[i];
  }
  if (names.size() > kShown) text += " and " + std::to_string(names.size() - kShown) + " more";
  return text;
}

}  // namespace

std::string new_run_id() {
  std::random_device device;
  const uint64_t clock =
      static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  const uint64_t mixed = (static_cast<uint64_t>(device()) << 32 ^ device()) ^
                         clock * 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(::getpid()) << 17;
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(mixed));
  return text;
}

std::optional<std::string> checkpoint_run_id(const std::string& path) {
  try {
    return read_checkpoint_state(path).run_id;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

CheckpointClaim claim_checkpoint_dir(const std::string& dir, const std::string& resume_path,
                                     MPI_Comm comm) {
  CheckpointClaim claim;
  claim.resumed = !resume_path.empty();
  on_root(comm, [&] {
    if (claim.resumed) claim.run_id = read_checkpoint_state(resume_path).run_id;
    // A format 1 checkpoint has no id: its run goes on under a new one, and the id-less files
    // beside it count as its own.
    const bool legacy = claim.resumed && claim.run_id.empty();
    if (claim.run_id.empty()) claim.run_id = new_run_id();
    if (dir.empty()) return;
    check_checkpoint_dir(dir);
    std::string other_run;  // the first other run id seen
    std::vector<std::string> others;
    for (const CheckpointFile& file : list_checkpoints(dir)) {
      const std::optional<std::string> id = checkpoint_run_id(file.path);
      const std::string name = fs::path(file.path).filename().string();
      if (!id) {
        // Damaged: in a resumed run's directory it is that run's (resume auto skipped it).
        if (!claim.resumed) others.push_back(name + " (unreadable)");
        continue;
      }
      if (*id == claim.run_id || (legacy && id->empty())) continue;
      if (other_run.empty() && !id->empty()) other_run = "run " + *id + ": ";
      others.push_back(id->empty() ? name + " (no run id)" : name);
    }
    if (others.empty()) return;
    TRIDENT_USER_FAIL("checkpoint.dir '", dir, "' holds checkpoints of another run (", other_run,
                      file_list(others), "), and this run ",
                      claim.resumed ? "continues run " + claim.run_id + " from " + resume_path
                                    : "is a new one (run " + claim.run_id + ")",
                      ": Trident never writes into another run's checkpoints. Continue that "
                      "run with --resume auto, or give this one another --checkpoint-dir");
  });
  broadcast_string(claim.run_id, comm);
  return claim;
}

std::vector<CheckpointFile> files_to_prune(const std::string& dir, const std::string& run_id,
                                           int64_t keep_last, const std::string& just_saved) {
  std::vector<CheckpointFile> mine;
  if (keep_last <= 0) return mine;
  for (const CheckpointFile& file : list_checkpoints(dir)) {  // ascending steps
    const std::optional<std::string> id = checkpoint_run_id(file.path);
    if (id && *id == run_id) mine.push_back(file);
  }
  std::vector<CheckpointFile> prune;
  const int64_t excess = static_cast<int64_t>(mine.size()) - keep_last;
  for (int64_t i = 0; i < excess; ++i) {
    const CheckpointFile& file = mine[static_cast<size_t>(i)];
    std::error_code ec;
    if (fs::equivalent(file.path, just_saved, ec)) continue;
    prune.push_back(file);
  }
  return prune;
}

}  // namespace trident::io
