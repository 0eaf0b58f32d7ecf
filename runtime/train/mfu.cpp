#include "runtime/train/mfu.h"

#include <algorithm>

#include "models/deepseek_v3/planner/cost.h"
#include "models/deepseek_v3/registry.h"

namespace trident::train {

double ThroughputModel::model_flops_per_second(double tokens_per_second) const {
  return tokens_per_second * model_flops_per_token;
}

double ThroughputModel::mfu(double tokens_per_second) const {
  const double job_peak = peak_flops_per_rank * static_cast<double>(ranks);
  if (job_peak <= 0.0) return 0.0;
  return model_flops_per_second(tokens_per_second) / job_peak;
}

ThroughputModel make_throughput_model(const config::TridentConfig& config,
                                      double peak_flops_per_rank) {
  const models::ParameterRegistry registry(config.model());
  ThroughputModel model;
  model.model_flops_per_token =
      models::planner::model_flops_per_token(registry, config.train().seq_len()).total();
  model.peak_flops_per_rank = peak_flops_per_rank;
  const auto& p = config.parallel();
  model.ranks =
      std::max<int64_t>(1, p.pp()) * std::max<int64_t>(1, p.dp()) * std::max<int64_t>(1, p.tp());
  return model;
}

}  // namespace trident::train
