// Fuzz target: what an external reward command writes on stdout (grpo.reward_command): one
// finite number per completion, one per line. The first byte says how many are expected.
#include <cmath>

#include "fuzz/fuzz_util.h"
#include "runtime/train/grpo/rewards.h"

using namespace trident;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::ByteReader reader(data, size);
  const size_t expected = reader.take<uint8_t>() % 16;
  const std::string out = reader.rest();
  fuzz::expect_clean([&] {
    const std::vector<double> rewards =
        train::grpo::parse_reward_output(out, expected, "grpo.reward_command 'fuzz'");
    fuzz::require(rewards.size() == expected, "accepted the wrong number of rewards");
    for (const double r : rewards) fuzz::require(std::isfinite(r), "accepted a non-finite reward");
  });
  return 0;
}
