#pragma once
// The MoE layer's routed experts under expert parallelism: a models::RoutedExpertsEngine built
// on the parallel::ep::Dispatcher, with the all-to-alls overlapped with compute.
//
// Forward, with the tokens cut into k chunks (parallel.a2a_chunks):
//   plan (counts exchanged) -> post dispatches 0..k-1 -> shared expert (while they fly)
//   for chunk i: wait dispatch i; expert GEMMs of chunk i; post combine i
//   wait the combines; gate-weighted sum per token
// so later dispatches and chunk i−1's combine are on the wire while chunk i's experts run; the
// combines queue behind the dispatches, which the GEMMs need first.
// Backward is the mirror image: the gate-weight gradients are computed locally (the combined
// rows were kept), output gradients go out like a dispatch while the router and shared expert
// run their backward, the experts' input gradients come back like a combine, and the expert
// weight gradients (local: every row of a held expert is here) fill the wait for the last
// combines. Only rows move: gate weights, router and shared expert stay on the token's rank.
// forward_backward_input pairs one micro-batch's forward with another's backward, as DualPipe
// does, so that the forward's link-bound all-to-alls and the backward's compute-bound GEMMs
// overlap each other (docs/expert-parallel.md, "Pairing").
#include <cstdint>
#include <memory>

#include "models/deepseek_v3/model.h"
#include "models/deepseek_v3/moe.h"
#include "parallel/comm/communicator.h"
#include "parallel/ep/dispatcher.h"
#include "runtime/config/trident.pb.h"

namespace trident::models::parallelize {

struct ExpertParallelOptions {
  parallel::ep::DispatcherOptions dispatcher;
  // false: every all-to-all is waited for right after it is posted and the shared expert runs
  // after the routed experts (the no-overlap baseline of `trident bench moe`).
  bool overlap = true;
  // true: expert weight gradients are computed in backward_input while the last combine is in
  // flight; false: in backward_weight (keeps the zero-bubble B/W split for the experts too).
  bool weight_grads_in_backward_input = true;
};

class ExpertParallelMoe final : public models::RoutedExpertsEngine {
 public:
  ExpertParallelMoe(std::shared_ptr<parallel::comm::Communicator> ep_group,
                    ExpertParallelOptions options);

  const parallel::ep::Dispatcher& dispatcher() const { return dispatcher_; }
  const ExpertParallelOptions& options() const { return options_; }

  Tensor forward(const Tensor& x, const Tensor& indices, const Tensor& weights, int64_t seq,
                 const models::ExpertBanks& banks, const std::function<void()>& overlap,
                 std::shared_ptr<models::RoutedExpertsState>& state) const override;
  Tensor backward_input(const Tensor& dout, const models::ExpertBanks& banks,
                        const std::function<void(const Tensor& d_weights)>& overlap,
                        models::RoutedExpertsState& state) const override;
  void backward_weight(const models::ExpertBanks& banks,
                       models::RoutedExpertsState& state) const override;
  // With overlap, the two passes share the streams: the link carries the forward's dispatches,
  // then the backward's, then both passes' combines, while the compute stream runs the
  // backward's gate gradients, both passes' shared-expert work and then both passes' expert
  // GEMMs. Without overlap, forward then backward_input.
  Paired forward_backward_input(const ForwardInput& forward_in,
                                const BackwardInput& backward_in) const override;

 private:
  parallel::ep::Dispatcher dispatcher_;
  ExpertParallelOptions options_;
};

// Experts per node for node-limited routing: the EP group's ranks hold E / ep experts each, and
// ranks_per_node / etp consecutive EP ranks share a node (ETP innermost; docs/comm.md).
int64_t experts_per_node(int64_t experts, int64_t ep, int64_t etp, int64_t ranks_per_node);

}  // namespace trident::models::parallelize
