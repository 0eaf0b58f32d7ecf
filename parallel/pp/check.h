#pragma once
// Proves a schedule valid before anything runs it. The semantics it checks against: sends
// are buffered (a send never blocks), a receive blocks until the matching send has been
// issued, and each rank runs its list strictly in order.
#include <string>

#include "parallel/pp/schedule.h"

namespace trident::parallel::pp {

struct CheckResult {
  bool ok = true;
  std::string message;  // empty when ok; otherwise the first violation found
};

// Checks, in this order, and reports the first failure:
//  1. shape: one list per rank; micro-batch and stage ids in range; every compute action on
//     the rank that holds its stage; every send/receive names the neighbouring stage's rank;
//     an overlapped F is followed by a B and that B's W;
//  2. coverage: each (micro-batch, stage) has exactly one F, one B and one W, and each
//     cross-rank hand-over exactly one send and one receive;
//  3. local order: F(m,s) after its input arrived (a receive earlier in the list, or F(m,s-1)
//     earlier on the same rank); B(m,s) after F(m,s) and after its output gradient arrived;
//     W(m,s) after B(m,s); a send after the compute that produced its data;
//  4. matching: per (sender, receiver, activation|gradient) the k-th send and the k-th
//     receive carry the same micro-batch and adjacent stages;
//  5. progress: running every rank in order under the semantics above ends with every list
//     finished (no deadlock).
CheckResult check_schedule(const Schedule& schedule);

}  // namespace trident::parallel::pp
