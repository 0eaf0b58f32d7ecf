#pragma once
// Expert parallelism together with tensor parallelism (ETP = 1): the MoE layer's input is
// replicated over the TP group, so before anything is dispatched each TP rank takes its own
// contiguous share of the tokens, and only that share goes through the expert-parallel engine
// (the EP group folds over dp · tp ranks, docs/comm.md). Afterwards an all-gather over TP gives
// every TP rank the routed output of every token again.
//
//   forward   x, routing [T, ·] (identical on the TP ranks) -> rows [b_r, e_r) of this rank
//             -> inner engine (dispatch / experts / combine) -> [e_r − b_r, H]
//             -> all-gather over TP -> [T, H] on every TP rank
//   backward  dout [T, H] (identical on the TP ranks) -> this rank's rows -> inner backward;
//             the gate-weight gradients of the share are all-gathered before the layer's
//             router / balance / shared-expert backward runs (inside the inner engine's
//             overlap window), and the routed input gradient of the share is all-gathered
//             after the combine.
//
// So every token is routed, dispatched and computed exactly once in the EP group; the router
// and the balance loss run on all T tokens on every TP rank and get the complete gate-weight
// gradient, hence complete, identical router gradients (no TP reduction, as everywhere else
// under TP); the replicated input's gradient is complete on every TP rank; and each expert's
// gradient holds only the tokens dispatched to it, to be summed over EDP = dp · tp / ep.
//
// Shares are as even as possible: rank r of P takes T / P tokens plus one of the first T % P
// remainders, so any T works (ranks with no tokens still take part in every collective).
// The all-gathers pad each share to ceil(T / P) rows.
#include <cstdint>
#include <memory>

#include "models/deepseek_v3/model.h"
#include "models/deepseek_v3/moe.h"
#include "parallel/comm/communicator.h"
#include "runtime/config/trident.pb.h"

namespace trident::models::parallelize {

// Tokens [begin, end) of rank `rank` of `ranks` out of `tokens`.
struct TokenShare {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
};
TokenShare token_share(int64_t tokens, int64_t rank, int64_t ranks);

class TokenSplitMoe final : public models::RoutedExpertsEngine {
 public:
  // `inner` runs the routed experts of this rank's share over the EP group; `tp` is the TP
  // group whose ranks hold the same (replicated) tokens.
  TokenSplitMoe(std::shared_ptr<const models::RoutedExpertsEngine> inner,
                std::shared_ptr<parallel::comm::Communicator> tp);

  const models::RoutedExpertsEngine& inner() const { return *inner_; }

  Tensor forward(const Tensor& x, const Tensor& indices, const Tensor& weights, int64_t seq,
                 const models::ExpertBanks& banks, const std::function<void()>& overlap,
                 std::shared_ptr<models::RoutedExpertsState>& state) const override;
  Tensor backward_input(const Tensor& dout, const models::ExpertBanks& banks,
                        const std::function<void(const Tensor& d_weights)>& overlap,
                        models::RoutedExpertsState& state) const override;
  void backward_weight(const models::ExpertBanks& banks,
                       models::RoutedExpertsState& state) const override;

 private:
  // [share rows, D] of every TP rank -> [tokens, D] in token order (collective over TP).
  Tensor all_gather_shares(const Tensor& mine, int64_t tokens) const;

  std::shared_ptr<const models::RoutedExpertsEngine> inner_;
  std::shared_ptr<parallel::comm::Communicator> tp_;
};

}  // namespace trident::models::parallelize
