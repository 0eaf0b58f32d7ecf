#pragma once
// One asynchronous interface for every communication backend (MPI on CPU tensors, NCCL on
// CUDA tensors, and decorators such as DelayedLink).
//
// Every operation returns at once with a Work handle; the data may be touched again only
// after wait() returns (or test() says true). A Work is shared: keep it as long as you like.
//
// Collectives carry a sequence number: the n-th collective issued on a communicator is #n on
// every member. When wait() runs out of time it asks the other members how far they got and
// throws ErrorKind::Timeout naming the op, its number, the group, and the ranks that have not
// arrived (or that are dead, or that issued a different op under the same number). A rank
// that dies or falls out of step is therefore reported by name instead of hanging the job.
//
// Counts are in elements of the tensor's dtype, never bytes. Tensors must be contiguous and on
// the backend's device; outputs are written in place.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/core/tensor.h"

namespace trident::parallel::comm {

enum class ReduceOp { Sum, Max };
enum class CommOp { AllReduce, ReduceScatter, AllGather, AllToAllV, Broadcast, Send, Recv, Barrier };

const char* comm_op_name(CommOp op);  // "all_reduce", ...
const char* reduce_op_name(ReduceOp op);

// What one operation is: for error messages, the delay model and the benchmark.
struct OpInfo {
  CommOp op = CommOp::Barrier;
  // Collectives: the communicator's collective counter (1-based, equal on all members).
  // send/recv: how many sends to (receives from) `peer` this one is, 1-based.
  uint64_t seq = 0;
  DType dtype = DType::F32;
  int64_t count = 0;  // elements of the local input (recv: of the output)
  int peer = -1;      // send/recv peer, broadcast root (group ranks)
  // "all_reduce #17 (f32 × 1024)"
  std::string describe() const;
};

struct CommOptions {
  // wait() without an explicit timeout gives up after this long (parallel.comm_timeout_s).
  double timeout_seconds = 300.0;
  // After a timeout, how long to wait for the other ranks to say how far they got.
  double probe_grace_seconds = 1.0;
};

class Work {
 public:
  virtual ~Work() = default;
  // Non-blocking: true once the operation completed. Throws the op's error if it failed.
  virtual bool test() = 0;
  // Blocks until completion. timeout_seconds < 0 uses the communicator's default. On timeout
  // throws Error(ErrorKind::Timeout) that names the late ranks; the op stays posted.
  virtual void wait(double timeout_seconds) = 0;
  void wait() { wait(-1.0); }
  virtual const OpInfo& info() const = 0;
};
using WorkHandle = std::shared_ptr<Work>;

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual const std::string& name() const = 0;  // the group's name, e.g. "dp[pp=0,tp=1]"
  virtual Device device() const = 0;
  // "rank 2 (world rank 6)": how messages refer to a member.
  virtual std::string describe_member(int group_rank) const = 0;
  virtual const CommOptions& options() const = 0;

  // In place: every member ends with the element-wise reduction. F32, BF16, I32, I64.
  virtual WorkHandle all_reduce(const Tensor& tensor, ReduceOp op) = 0;
  // input holds size() equal blocks; member r receives the reduction of block r.
  virtual WorkHandle reduce_scatter(const Tensor& input, const Tensor& output, ReduceOp op) = 0;
  // output = the members' inputs concatenated in rank order (equal blocks).
  virtual WorkHandle all_gather(const Tensor& input, const Tensor& output) = 0;
  // input = blocks for ranks 0..n-1 of send_counts[p] elements; output = blocks from ranks
  // 0..n-1 of recv_counts[p] elements. Counts may be zero and need not be equal.
  virtual WorkHandle all_to_all_v(const Tensor& input, const std::vector<int64_t>& send_counts,
                                  const Tensor& output,
                                  const std::vector<int64_t>& recv_counts) = 0;
  virtual WorkHandle broadcast(const Tensor& tensor, int root) = 0;
  // Point to point; `tag` in [0, 32767] separates concurrent streams between the same pair.
  virtual WorkHandle send(const Tensor& tensor, int peer, int tag) = 0;
  virtual WorkHandle recv(const Tensor& tensor, int peer, int tag) = 0;
  virtual WorkHandle barrier() = 0;
};

}  // namespace trident::parallel::comm
