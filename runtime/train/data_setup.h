#pragma once
// Builds the batch samplers a config asks for: a token file (data.train_path / eval_path) or
// the built-in arithmetic task (train and held-out splits), in pretrain or SFT mode.
#include <memory>

#include "runtime/config/trident.pb.h"
#include "runtime/io/batch_sampler.h"

namespace trident::train {

std::unique_ptr<io::BatchSampler> make_train_sampler(const config::TridentConfig& config);
// nullptr when there is no held-out data (a token file run without data.eval_path).
std::unique_ptr<io::BatchSampler> make_eval_sampler(const config::TridentConfig& config);

}  // namespace trident::train
