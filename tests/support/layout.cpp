#include "tests/support/layout.h"

namespace trident::testing {

std::string Layout::name() const {
  std::string out;
  const auto add = [&out](const std::string& part) { out += (out.empty() ? "" : "_") + part; };
  if (pp > 1) {
    std::string sched;
    for (const char c : schedule) sched += c == '-' ? '_' : c;
    add("pp" + std::to_string(pp) + "_" + sched);
  }
  if (dp > 1) add("dp" + std::to_string(dp));
  if (tp > 1) add("tp" + std::to_string(tp));
  if (ep > 1) add("ep" + std::to_string(ep));
  if (out.empty()) add("one_rank");
  if (zero1) add("zero1");
  return out;
}

void Layout::apply(config::TridentConfig& config) const {
  config::ParallelConfig& p = *config.mutable_parallel();
  p.set_pp(pp);
  p.set_dp(dp);
  p.set_tp(tp);
  p.set_ep(ep);
  p.set_schedule(schedule);
  p.set_virtual_stages(virtual_stages());
  p.set_zero1(zero1);
}

void PrintTo(const Layout& layout, std::ostream* out) { *out << layout.name(); }

std::vector<Layout> layouts_on(int ranks, int heads, int experts) {
  std::vector<Layout> out;
  for (const int pp : {1, 2}) {
    if (ranks % pp != 0) continue;
    const int stage = ranks / pp;
    const std::vector<std::string> schedules =
        pp == 1 ? std::vector<std::string>{"1f1b"}
                : std::vector<std::string>{"1f1b", "interleaved", "zb-h1", "dualpipev"};
    for (const std::string& schedule : schedules) {
      for (int tp = 1; tp <= stage; ++tp) {
        if (stage % tp != 0 || heads % tp != 0) continue;
        for (int ep = 1; ep <= stage; ++ep) {
          if (stage % ep != 0 || experts % ep != 0) continue;
          for (const bool zero1 : {false, true}) {
            out.push_back(Layout{pp, stage / tp, tp, ep, schedule, zero1});
          }
        }
      }
    }
  }
  return out;
}

std::vector<Layout> layouts_on(const std::vector<int>& ranks, int heads, int experts) {
  std::vector<Layout> out;
  for (const int n : ranks) {
    for (const Layout& layout : layouts_on(n, heads, experts)) out.push_back(layout);
  }
  return out;
}

}  // namespace trident::testing
