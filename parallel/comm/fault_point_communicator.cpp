#include "parallel/comm/fault_point_communicator.h"

#include "runtime/core/fault_injection.h"

namespace trident::parallel::comm {

WorkHandle FaultPointCommunicator::decorate(const std::function<WorkHandle()>& post,
                                            const Exchange&) {
  WorkHandle work = post();
  const CommOp op = work->info().op;
  // The point names of tests/faults: all_to_all_v is "all_to_all", the rest as comm_op_name.
  fault_point(op == CommOp::AllToAllV ? "all_to_all" : comm_op_name(op));
  return work;
}

}  // namespace trident::parallel::comm
