#pragma once
// The CPU backend's rotary embedding with YaRN; its cos/sin table is the one every backend
// rotates by. Contracts: ops/ops.h.
#include "ops/types.h"

namespace trident::ops::cpu {

using ops::RopeTable;
using ops::yarn_mscale;
using ops::YarnSettings;

RopeTable make_rope_table(int64_t rotary_dim, int64_t max_positions, const YarnSettings& yarn);

void rope_forward(const Tensor& x, const Tensor& positions, const RopeTable& table, Tensor& y);
void rope_backward(const Tensor& dy, const Tensor& positions, const RopeTable& table, Tensor& dx);

}  // namespace trident::ops::cpu
