#include "runtime/train/nonfinite.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ops/ops.h"
#include "parallel/comm/sum_in_rank_order.h"
#include "runtime/core/error.h"
#include "runtime/core/logging.h"
#include "runtime/core/profiler.h"

namespace trident::train {

namespace {

// This rank's first non-finite tensor as an index: i for the weight of registry spec i, n + i
// for its gradient (n specs), 2n when every held tensor is finite. `weights_only` leaves the
// gradients out.
int64_t first_nonfinite_here(const models::ParameterStore& store, bool weights_only) {
  const std::vector<models::ParamSpec>& specs = store.registry().specs();
  const auto n = static_cast<int64_t>(specs.size());
  // Every held tensor is counted in one call (one host read on a GPU), weights then gradients.
  const std::vector<models::Parameter>& params = store.parameters();
  std::vector<Tensor> pieces;
  for (const models::Parameter& p : params) pieces.push_back(p.value);
  if (!weights_only) {
    for (const models::Parameter& p : params) pieces.push_back(p.grad);
  }
  const std::vector<int64_t> counts = ops::count_nonfinite(pieces);
  int64_t first = 2 * n;
  for (size_t i = 0; i < params.size(); ++i) {
    const int64_t index = params[i].spec - specs.data();
    if (counts[i] != 0) {
      first = std::min(first, index);
    } else if (!weights_only && counts[params.size() + i] != 0) {
      first = std::min(first, n + index);
    }
  }
  return first;
}

// The job-wide first non-finite tensor, described; collective over the world.
std::string locate(const models::ParameterStore& store, const parallel::ParallelContext& context,
                   bool weights_only) {
  parallel::comm::Communicator* world = context.world();
  const int ranks = world != nullptr ? world->size() : 1;
  const int me = world != nullptr ? world->rank() : 0;
  std::vector<int64_t> firsts(static_cast<size_t>(ranks), 0);
  firsts[static_cast<size_t>(me)] = first_nonfinite_here(store, weights_only);
  parallel::comm::sum_in_rank_order(world, firsts);  // every slot has one contributor
  int rank = 0;
  for (int r = 1; r < ranks; ++r) {
    if (firsts[static_cast<size_t>(r)] < firsts[static_cast<size_t>(rank)]) rank = r;
  }
  const std::vector<models::ParamSpec>& specs = store.registry().specs();
  const auto n = static_cast<int64_t>(specs.size());
  const int64_t first = firsts[static_cast<size_t>(rank)];
  if (first >= 2 * n) {
    return weights_only ? "every weight is finite" : "every weight and gradient is finite";
  }
  const std::string kind = first < n ? "weight " : "gradient of ";
  return kind + specs[static_cast<size_t>(first % n)].name + " on rank " + std::to_string(rank);
}

const char* describe(double value) { return std::isnan(value) ? "NaN" : "infinite"; }

}  // namespace

NonFiniteSettings nonfinite_settings(const config::TrainConfig& train, const char* lr_field) {
  NonFiniteSettings settings;
  settings.action = train.nonfinite() == "skip" ? NonFiniteAction::Skip : NonFiniteAction::Stop;
  settings.max_skipped_steps = train.max_skipped_steps();
  settings.lr_field = lr_field;
  return settings;
}

std::string locate_nonfinite(const models::ParameterStore& store,
                             const parallel::ParallelContext& context) {
  return locate(store, context, /*weights_only=*/false);
}

NonFiniteGuard::NonFiniteGuard(const models::ParameterStore& store,
                               const parallel::ParallelContext& context, NonFiniteSettings settings)
    : store_(store), context_(context), settings_(settings) {}

bool NonFiniteGuard::admit(const std::string& what, double loss, double grad_norm) {
  if (std::isfinite(loss) && std::isfinite(grad_norm)) return true;
  std::string found;
  if (!std::isfinite(loss)) found = std::string("the loss is ") + describe(loss);
  if (!std::isfinite(grad_norm)) {
    found += (found.empty() ? "the" : " and the");
    found += std::string(" gradient norm is ") + describe(grad_norm);
  }
  const std::string where = locate_nonfinite(store_, context_);
  if (settings_.action == NonFiniteAction::Skip) {
    ++skipped_;
    TRIDENT_USER_CHECK(
        skipped_ <= settings_.max_skipped_steps, what, ": ", found,
        "; first non-finite tensor: ", where, ". That is ", skipped_,
        " skipped steps, more than train.max_skipped_steps = ", settings_.max_skipped_steps,
        ": stopping without saving (lower ", settings_.lr_field, " or set train.grad_clip)");
    TLOG_WARN(what, ": ", found, "; first non-finite tensor: ", where, ". Step skipped (", skipped_,
              " of at most train.max_skipped_steps = ", settings_.max_skipped_steps, ")");
    return false;
  }
  TRIDENT_USER_FAIL(what, ": ", found, "; first non-finite tensor: ", where,
                    ". Stopping without saving (train.nonfinite = stop; lower ", settings_.lr_field,
                    ", set train.grad_clip, or set train.nonfinite = skip to skip such steps)");
}

void NonFiniteGuard::check_update(const std::string& what, double lr,
                                  int64_t nonfinite_here) const {
  TRIDENT_PROFILE_SCOPE("optimizer: finiteness check");
  std::vector<int64_t> count{nonfinite_here};
  parallel::comm::sum_in_rank_order(context_.world(), count);
  if (count[0] == 0) return;
  TRIDENT_USER_FAIL(what, ": the update made weights non-finite; first non-finite tensor: ",
                    locate(store_, context_, /*weights_only=*/true),
                    ". Stopping without saving (lower ", settings_.lr_field, ", now ", lr,
                    ", or set train.grad_clip)");
}

}  // namespace trident::train
