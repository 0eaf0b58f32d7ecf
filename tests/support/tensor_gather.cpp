#include "tests/support/tensor_gather.h"

#include <algorithm>
#include <cmath>

namespace trident::testing {

namespace {
Tensor gather_flat(parallel::comm::Communicator& comm, const Tensor& local) {
  const Tensor input = local.to(Device::CPU).view({local.numel()});  // a host copy
  Tensor all = Tensor::empty({comm.size() * local.numel()});
  comm.all_gather(input, all)->wait();
  return all;
}
}  // namespace

bool whole_on_every_tp_rank(const models::ParamSpec& spec) {
  return spec.placement.tp == models::TpSplit::kReplicated ||
         spec.kind == models::ParamKind::kExpert;
}

Tensor gather_parameter(parallel::comm::Communicator& comm, const models::ParamSpec& spec,
                        const Tensor& local) {
  const Tensor all = gather_flat(comm, local);
  const int64_t n = local.numel();
  Tensor global = Tensor::zeros(spec.shape);
  float* out = global.data<float>();
  const float* in = all.data<float>();
  for (int r = 0; r < comm.size(); ++r) {
    if (whole_on_every_tp_rank(spec)) {  // take rank 0's copy
      if (r == 0) std::copy_n(in, n, out);
      continue;
    }
    const models::ShardSlice slice = models::tp_slice(spec, r, comm.size());
    for (int64_t i = 0; i < n; ++i) out[models::global_index(spec, slice, i)] = in[r * n + i];
  }
  return global;
}

Tensor gather_columns(parallel::comm::Communicator& comm, const Tensor& local) {
  const int64_t rows = local.size(0), cols = local.size(1), P = comm.size();
  const Tensor all = gather_flat(comm, local);
  Tensor global = Tensor::empty({rows, cols * P});
  const float* in = all.data<float>();
  float* out = global.data<float>();
  for (int64_t r = 0; r < P; ++r) {
    for (int64_t t = 0; t < rows; ++t) {
      std::copy_n(in + (r * rows + t) * cols, cols, out + t * cols * P + r * cols);
    }
  }
  return global;
}

double max_difference_to_rank0(parallel::comm::Communicator& comm, const Tensor& local) {
  const Tensor all = gather_flat(comm, local);
  const int64_t n = local.numel();
  const float* in = all.data<float>();
  const float* mine = in + comm.rank() * n;
  double worst = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    worst = std::max(worst, static_cast<double>(std::fabs(mine[i] - in[i])));
  }
  return worst;
}

}  // namespace trident::testing
