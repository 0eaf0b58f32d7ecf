#pragma once
// The layouts the layout tests sweep: every way of spreading the tiny test model over a given
// number of ranks with pipeline (pp ∈ {1, 2}, the latter with each of the four schedules),
// data, tensor and expert parallelism, ZeRO-1 off and on.
#include <gtest/gtest.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "runtime/config/trident.pb.h"

namespace trident::testing {

struct Layout {
  int pp = 1;
  int dp = 1;
  int tp = 1;
  int ep = 1;
  std::string schedule = "1f1b";
  bool zero1 = false;

  int ranks() const { return pp * dp * tp; }
  // Rows per step for the layout tests: micro-batches of 2 rows, 2 per data-parallel rank and
  // step without pipelining (gradients accumulate over micro-batches), 4 with it (every
  // schedule at pp = 2 runs 4: DualPipeV needs 2 · pp, interleaved a multiple of pp).
  int64_t global_batch() const { return 2 * dp * (pp == 1 ? 2 : 4); }
  int virtual_stages() const { return schedule == "interleaved" ? 2 : 1; }
  // "pp2_zb_h1_dp2_tp2_ep2_zero1", "dp4_ep2" (sizes of 1 left out).
  std::string name() const;
  // Sets parallel.{pp, dp, tp, ep, schedule, virtual_stages, zero1}.
  void apply(config::TridentConfig& config) const;
};
void PrintTo(const Layout& layout, std::ostream* out);
// The test name of a layout parameter (gtest's name generator).
struct LayoutName {
  std::string operator()(const ::testing::TestParamInfo<Layout>& param) const {
    return param.param.name();
  }
};

// Every layout of a model with `heads` attention heads and `experts` routed experts on exactly
// `ranks` ranks (tp dividing the heads, ep dividing dp · tp and the experts).
std::vector<Layout> layouts_on(int ranks, int heads, int experts);
// The same over several rank counts (the parameters of a gtest suite: each test skips unless
// its layout's rank count is the world size).
std::vector<Layout> layouts_on(const std::vector<int>& ranks, int heads, int experts);

}  // namespace trident::testing
