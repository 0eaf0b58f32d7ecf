#include "models/deepseek_v3/parallelize/token_split_moe.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "runtime/core/error.h"

namespace trident::models::parallelize {
namespace {

// What a layer's forward keeps for its backward: the inner engine's state and the share.
struct TokenSplitState final : models::RoutedExpertsState {
  std::shared_ptr<models::RoutedExpertsState> inner;
  TokenShare share;
  int64_t tokens = 0;

  std::vector<Tensor*> saved_activations() override {
    return inner ? inner->saved_activations() : std::vector<Tensor*>{};
  }
};

TokenSplitState& as_split_state(models::RoutedExpertsState& state) {
  auto* split = dynamic_cast<TokenSplitState*>(&state);
  TRIDENT_CHECK(split != nullptr, "MoE backward got a state the TP token split did not make");
  return *split;
}

}  // namespace

TokenShare token_share(int64_t tokens, int64_t rank, int64_t ranks) {
  TRIDENT_CHECK(ranks >= 1 && rank >= 0 && rank < ranks && tokens >= 0, "token share of rank ",
                rank, " of ", ranks, " over ", tokens, " tokens");
  const int64_t base = tokens / ranks, extra = tokens % ranks;
  TokenShare share;
  share.begin = rank * base + std::min(rank, extra);
  share.end = share.begin + base + (rank < extra ? 1 : 0);
  return share;
}

TokenSplitMoe::TokenSplitMoe(std::shared_ptr<const models::RoutedExpertsEngine> inner,
                             std::shared_ptr<parallel::comm::Communicator> tp)
    : inner_(std::move(inner)), tp_(std::move(tp)) {
  TRIDENT_CHECK(inner_ != nullptr && tp_ != nullptr,
                "the TP token split needs an engine and a group");
}

Tensor TokenSplitMoe::all_gather_shares(const Tensor& mine, int64_t tokens) const {
  const int64_t P = tp_->size();
  const int64_t width = mine.size(1);
  const int64_t block = (tokens + P - 1) / P;
  const TokenShare own = token_share(tokens, tp_->rank(), P);
  TRIDENT_CHECK(mine.size(0) == own.size(), "TP share has ", mine.size(0), " rows, expected ",
                own.size());
  // Copies of whole row blocks (Tensor::copy_from), so the buffers may live on any device.
  const Device device = mine.device();
  Tensor padded = Tensor::zeros({block, width}, DType::F32, device);
  if (own.size() > 0) {
    Tensor head = padded.narrow(0, own.size());
    head.copy_from(mine);
  }
  Tensor gathered = Tensor::empty({P * block, width}, DType::F32, device);
  tp_->all_gather(padded, gathered)->wait();
  Tensor out = Tensor::empty({tokens, width}, DType::F32, device);
  for (int64_t r = 0; r < P; ++r) {
    const TokenShare share = token_share(tokens, r, P);
    if (share.size() == 0) continue;
    Tensor rows = out.narrow(share.begin, share.end);
    rows.copy_from(gathered.narrow(r * block, r * block + share.size()));
  }
  return out;
}

Tensor TokenSplitMoe::forward(const Tensor& x, const Tensor& indices, const Tensor& weights,
                              int64_t seq, const models::ExpertBanks& banks,
                              const std::function<void()>& overlap,
                              std::shared_ptr<models::RoutedExpertsState>& state) const {
  const int64_t T = x.size(0);
  auto s = std::make_shared<TokenSplitState>();
  s->tokens = T;
  s->share = token_share(T, tp_->rank(), tp_->size());
  const TokenShare& share = s->share;
  const Tensor mine =
      inner_->forward(x.narrow(share.begin, share.end), indices.narrow(share.begin, share.end),
                      weights.narrow(share.begin, share.end), seq, banks, overlap, s->inner);
  TRIDENT_CHECK(s->inner != nullptr, "the expert-parallel engine kept no state");
  s->dropped_slots = s->inner->dropped_slots;
  Tensor out = all_gather_shares(mine, T);
  state = std::move(s);
  return out;
}

Tensor TokenSplitMoe::backward_input(const Tensor& dout, const models::ExpertBanks& banks,
                                     const std::function<void(const Tensor&)>& overlap,
                                     models::RoutedExpertsState& state) const {
  TokenSplitState& s = as_split_state(state);
  const TokenShare& share = s.share;
  TRIDENT_CHECK(dout.size(0) == s.tokens, "MoE backward got ", dout.size(0),
                " rows of output gradient, the forward had ", s.tokens);
  // The router, the balance loss and the shared expert run their backward on every token of
  // every TP rank, so they get the whole gate-weight gradient (while the first dispatch flies).
  const auto whole_overlap = [&](const Tensor& d_weights_share) {
    overlap(all_gather_shares(d_weights_share, s.tokens));
  };
  const Tensor dx_share =
      inner_->backward_input(dout.narrow(share.begin, share.end), banks, whole_overlap, *s.inner);
  return all_gather_shares(dx_share, s.tokens);
}

void TokenSplitMoe::backward_weight(const models::ExpertBanks& banks,
                                    models::RoutedExpertsState& state) const {
  inner_->backward_weight(banks, *as_split_state(state).inner);
}

}  // namespace trident::models::parallelize
