#include "parallel/dp/grad_reducer.h"

#include <algorithm>
#include <string>
#include <utility>

#include "runtime/core/error.h"
#include "runtime/core/logging.h"

namespace trident::parallel::dp {

namespace {
int group_size(const comm::Communicator* comm) { return comm == nullptr ? 1 : comm->size(); }
}  // namespace

GradReducer::GradReducer(comm::Communicator* comm, const Tensor& flat_grads, BucketPlan plan,
                         bool zero1)
    : stream_(device_streams().dp_comm),
      comm_(comm),
      flat_grads_(flat_grads),
      plan_(std::move(plan)),
      zero1_(zero1) {
  TRIDENT_CHECK(plan_.dp_size == group_size(comm_), "bucket plan for dp ", plan_.dp_size,
                " used with a group of ", group_size(comm_));
  TRIDENT_CHECK(flat_grads_.numel() == plan_.flat_numel && flat_grads_.dtype() == DType::F32,
                "GradReducer: the flat gradient buffer does not match the bucket plan");
  // The reduced shard and the padded staging buffers live beside the gradients.
  const Device device = flat_grads_.device();
  if (zero1_) shard_grads_ = Tensor::zeros({plan_.shard_numel}, DType::F32, device);
  staging_.resize(plan_.buckets.size());
  for (size_t i = 0; i < plan_.buckets.size(); ++i) {
    if (zero1_ && plan_.buckets[i].needs_padding()) {
      staging_[i] = Tensor::zeros({plan_.buckets[i].padded}, DType::F32, device);
    }
  }
}

GradReducer::~GradReducer() {
  try {
    stream_.synchronize();
  } catch (const std::exception& e) {
    TLOG_WARN("gradient reductions failed while their reducer was destroyed: ", e.what());
  }
}

void GradReducer::start_step() {
  stream_.synchronize();  // nothing of the previous step may still be queued
  TRIDENT_CHECK(pending_.empty(), "GradReducer: the previous step was not finished");
  final_blocks_.clear();
  posted_.assign(plan_.buckets.size(), false);
  posted_early_ = 0;
}

void GradReducer::queue(size_t index) {
  // The bucket's gradients are complete on the compute stream as far as it has been given work
  // (the host's own backward ran before this call).
  stream_.wait(device_streams().compute.record());
  stream_.enqueue("reduce gradient bucket " + std::to_string(index),
                  [this, index] { post(index); });
}

void GradReducer::post(size_t index) {
  const GradBucket& bucket = plan_.buckets[index];
  const Tensor grads = flat_grads_.narrow(bucket.begin, bucket.end);
  if (!zero1_) {
    if (comm_ != nullptr && comm_->size() > 1) {
      pending_.push_back(comm_->all_reduce(grads, comm::ReduceOp::Sum));
    }
    return;
  }
  Tensor input = grads;
  if (staging_[index].defined()) {
    // A copy where the tensors live (device to device on a GPU); the padding stays zero.
    staging_[index].narrow(0, bucket.size()).copy_from(grads);
    input = staging_[index];
  }
  Tensor output = shard_grads_.narrow(bucket.shard_offset, bucket.shard_offset + bucket.block);
  if (comm_ == nullptr || comm_->size() == 1) {
    output.copy_from(input);
    return;
  }
  pending_.push_back(comm_->reduce_scatter(input, output, comm::ReduceOp::Sum));
}

void GradReducer::block_final(int block) {
  const auto at = std::lower_bound(final_blocks_.begin(), final_blocks_.end(), block);
  if (at != final_blocks_.end() && *at == block) return;
  final_blocks_.insert(at, block);
  for (size_t i = 0; i < plan_.buckets.size(); ++i) {
    if (posted_[i]) continue;
    const std::vector<int>& blocks = plan_.buckets[i].blocks;
    if (!std::includes(final_blocks_.begin(), final_blocks_.end(), blocks.begin(), blocks.end())) {
      continue;
    }
    posted_[i] = true;
    queue(i);
    ++posted_early_;
  }
}

void GradReducer::finish() {
  for (size_t i = 0; i < plan_.buckets.size(); ++i) {
    if (!posted_[i]) queue(i);
    posted_[i] = true;
  }
  stream_.enqueue("wait for the gradient reductions", [this] {
    for (const comm::WorkHandle& work : pending_) work->wait();
    pending_.clear();
  });
  stream_.synchronize();
}

void all_gather_weights(comm::Communicator* comm, const BucketPlan& plan,
                        const Tensor& shard_values, const Tensor& flat_values) {
  TRIDENT_CHECK(shard_values.numel() == plan.shard_numel && flat_values.numel() == plan.flat_numel,
                "all_gather_weights: buffers do not match the bucket plan");
  const int size = group_size(comm);
  std::vector<comm::WorkHandle> pending;
  std::vector<Tensor> padded(plan.buckets.size());
  for (size_t i = 0; i < plan.buckets.size(); ++i) {
    const GradBucket& bucket = plan.buckets[i];
    const Tensor mine =
        shard_values.narrow(bucket.shard_offset, bucket.shard_offset + bucket.block);
    Tensor target = flat_values.narrow(bucket.begin, bucket.end);
    if (size == 1) {
      target.copy_from(mine.narrow(0, bucket.size()));
      continue;
    }
    Tensor output = target;
    if (bucket.needs_padding()) {
      padded[i] = Tensor::empty({bucket.padded}, DType::F32, flat_values.device());
      output = padded[i];
    }
    pending.push_back(comm->all_gather(mine, output));
  }
  for (const comm::WorkHandle& work : pending) work->wait();
  for (size_t i = 0; i < plan.buckets.size(); ++i) {
    if (!padded[i].defined()) continue;
    const GradBucket& bucket = plan.buckets[i];
    Tensor target = flat_values.narrow(bucket.begin, bucket.end);
    target.copy_from(padded[i].narrow(0, bucket.size()));
  }
}

}  // namespace trident::parallel::dp
