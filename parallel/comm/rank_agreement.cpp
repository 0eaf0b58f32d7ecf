#include "parallel/comm/rank_agreement.h"

#include <vector>

#include "runtime/core/error.h"

namespace trident::parallel::comm {

void require_on_every_rank(const MpiComm& group, const std::string& problem,
                           const std::string& step) {
  const int failed_here = problem.empty() ? 0 : 1;
  std::vector<int> failed(static_cast<size_t>(group.size()), 0);
  TRIDENT_CHECK_MPI(
      MPI_Allgather(&failed_here, 1, MPI_INT, failed.data(), 1, MPI_INT, group.get()));
  std::string failing;
  int count = 0;
  for (int r = 0; r < group.size(); ++r) {
    if (failed[static_cast<size_t>(r)] == 0) continue;
    failing += (count == 0 ? "" : ", ") + group.describe_member(r);
    ++count;
  }
  if (count == 0) return;
  if (failed_here != 0) {
    TRIDENT_USER_FAIL(step, " failed on ", group.describe_member(group.rank()), " of ",
                      group.name(), ": ", problem,
                      count == group.size() ? std::string(" (on every rank)")
                      : count > 1           ? " (it failed on " + failing + ")"
                                            : std::string());
  }
  TRIDENT_USER_FAIL(step, " failed on ", failing, " of ", group.name(), "; this rank stops with ",
                    count > 1 ? "them" : "it", " (the failing rank's message says why)");
}

}  // namespace trident::parallel::comm
