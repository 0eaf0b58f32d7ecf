#pragma once
// RingReduction: a Communicator decorator for tests whose f32 sums (all_reduce and
// reduce_scatter) run as a ring over point-to-point messages, in the order a ring
// reduce-scatter uses (as NCCL's does): block j's partial sum starts on member j + 1, goes
// round the ring and ends on member j, each member adding its own contribution to the partial
// it received. The order in which an element's contributions are added therefore depends on
// which member owns the element's block, i.e. on where the element sits in the reduced
// buffer; the MPI library of this machine reduces by a tree to rank 0 instead, where the order
// never depends on the position. Everything else goes to the wrapped communicator unchanged.
//
// Each ring operation completes before it returns (the Work handed back is already done).
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "parallel/comm/communicator.h"
#include "runtime/core/error.h"

namespace trident::parallel::testing {

class RingReduction final : public Communicator {
 public:
  explicit RingReduction(std::shared_ptr<Communicator> inner) : inner_(std::move(inner)) {}

  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  const std::string& name() const override { return inner_->name(); }
  Device device() const override { return inner_->device(); }
  std::string describe_member(int group_rank) const override {
    return inner_->describe_member(group_rank);
  }
  const CommOptions& options() const override { return inner_->options(); }

  WorkHandle all_reduce(const Tensor& tensor, ReduceOp op) override {
    if (!ring_applies(tensor, op)) return inner_->all_reduce(tensor, op);
    const std::vector<Block> blocks = even_blocks(tensor.numel());
    float* data = tensor.data<float>();
    reduce_blocks(data, blocks);
    // All-gather round the same ring: member r passes on the finished block it got last.
    const int n = size(), r = rank();
    for (int k = 0; k < n - 1; ++k) {
      const Block out = blocks[static_cast<size_t>((r - k + n) % n)];
      const Block in = blocks[static_cast<size_t>((r - k - 1 + 2 * n) % n)];
      exchange(data + out.begin, out.count, data + in.begin, in.count);
    }
    return done(CommOp::AllReduce, tensor.numel());
  }

  WorkHandle reduce_scatter(const Tensor& input, const Tensor& output, ReduceOp op) override {
    if (!ring_applies(input, op)) return inner_->reduce_scatter(input, output, op);
    const int64_t block = output.numel();
    TRIDENT_CHECK(input.numel() == block * size(), "RingReduction: reduce_scatter sizes");
    std::vector<Block> blocks;
    for (int b = 0; b < size(); ++b) blocks.push_back(Block{b * block, block});
    Tensor work = input.clone();
    reduce_blocks(work.data<float>(), blocks);
    std::memcpy(output.data<float>(), work.data<float>() + rank() * block,
                static_cast<size_t>(block) * sizeof(float));
    return done(CommOp::ReduceScatter, input.numel());
  }

  WorkHandle all_gather(const Tensor& input, const Tensor& output) override {
    return inner_->all_gather(input, output);
  }
  WorkHandle all_to_all_v(const Tensor& input, const std::vector<int64_t>& send_counts,
                          const Tensor& output, const std::vector<int64_t>& recv_counts) override {
    return inner_->all_to_all_v(input, send_counts, output, recv_counts);
  }
  WorkHandle broadcast(const Tensor& tensor, int root) override {
    return inner_->broadcast(tensor, root);
  }
  WorkHandle send(const Tensor& tensor, int peer, int tag) override {
    return inner_->send(tensor, peer, tag);
  }
  WorkHandle recv(const Tensor& tensor, int peer, int tag) override {
    return inner_->recv(tensor, peer, tag);
  }
  WorkHandle barrier() override { return inner_->barrier(); }

 private:
  static constexpr int kTag = 32750;
  struct Block {
    int64_t begin = 0;
    int64_t count = 0;
  };

  class DoneWork final : public Work {
   public:
    explicit DoneWork(OpInfo info) : info_(std::move(info)) {}
    bool test() override { return true; }
    void wait(double) override {}
    const OpInfo& info() const override { return info_; }

   private:
    OpInfo info_;
  };

  bool ring_applies(const Tensor& tensor, ReduceOp op) const {
    return op == ReduceOp::Sum && tensor.dtype() == DType::F32 && size() > 1;
  }

  WorkHandle done(CommOp op, int64_t count) const {
    OpInfo info;
    info.op = op;
    info.count = count;
    return std::make_shared<DoneWork>(info);
  }

  std::vector<Block> even_blocks(int64_t numel) const {
    const int n = size();
    std::vector<Block> blocks;
    int64_t at = 0;
    for (int b = 0; b < n; ++b) {
      const int64_t count = numel / n + (b < numel % n ? 1 : 0);
      blocks.push_back(Block{at, count});
      at += count;
    }
    return blocks;
  }

  // Sends `count` floats to the next member and receives `in_count` from the previous one.
  void exchange(const float* out, int64_t count, float* in, int64_t in_count) {
    const int n = size(), r = rank();
    const Tensor outgoing = Tensor::empty({count});
    if (count > 0) std::memcpy(outgoing.data<float>(), out, static_cast<size_t>(count) * 4);
    const Tensor incoming = Tensor::empty({in_count});
    const WorkHandle received = inner_->recv(incoming, (r - 1 + n) % n, kTag);
    const WorkHandle sent = inner_->send(outgoing, (r + 1) % n, kTag);
    received->wait();
    sent->wait();
    if (in_count > 0) std::memcpy(in, incoming.data<float>(), static_cast<size_t>(in_count) * 4);
  }

  // Afterwards block r of `data` holds the sum over the members (other blocks: partial sums).
  void reduce_blocks(float* data, const std::vector<Block>& blocks) {
    const int n = size(), r = rank();
    // Step k: send the partial of block r − 1 − k, receive the partial of block r − 2 − k and
    // add this member's contribution to it.
    for (int k = 0; k < n - 1; ++k) {
      const Block out = blocks[static_cast<size_t>((r - 1 - k + 2 * n) % n)];
      const Block in = blocks[static_cast<size_t>((r - 2 - k + 2 * n) % n)];
      std::vector<float> partial(static_cast<size_t>(in.count));
      exchange(data + out.begin, out.count, partial.data(), in.count);
      for (int64_t i = 0; i < in.count; ++i) {
        data[in.begin + i] = partial[static_cast<size_t>(i)] + data[in.begin + i];
      }
    }
  }

  std::shared_ptr<Communicator> inner_;
};

}  // namespace trident::parallel::testing
