#pragma once
// The point-to-point tags of the data communicators, handed out in one table so that no two
// message streams between the same pair of ranks can ever share a tag. A send and its receive
// are matched by (communicator, peer, tag) and, per tag, by order; two streams on one tag would
// match each other's messages. Every user of send/recv takes its tag from here.
namespace trident::parallel::comm::tags {

// A block of consecutive tags [first, first + count).
struct TagRange {
  int first = 0;
  int count = 0;
  constexpr int end() const { return first + count; }
  constexpr bool contains(int tag) const { return tag >= first && tag < end(); }
};

// The pipeline executor's activation and gradient streams (parallel/pp/executor.h): one tag per
// (micro-batch, stage boundary, direction), wrapping inside the range. Even, so the direction
// bit survives the wrap.
inline constexpr TagRange kPipelineStreams{0, 32000};
// The last pipeline stage's copy of the embedding (for MTP): its gradient goes to stage 0's
// rank, the updated table comes back (runtime/train/optimizer.h).
inline constexpr int kEmbeddingCopyGradient = 32000;
inline constexpr int kEmbeddingCopyValue = 32001;
// Decoding through pipeline stages: the hidden states of one decode step (runtime/train/grpo).
inline constexpr int kDecodeActivation = 32002;
// Tests that exchange their own messages on a run's communicators.
inline constexpr TagRange kTests{32100, 100};
// The highest tag a communicator accepts (MPI guarantees at least 32767).
inline constexpr int kMaxTag = 32767;

static_assert(kPipelineStreams.count % 2 == 0, "the direction bit must survive the wrap");
static_assert(kPipelineStreams.end() <= kEmbeddingCopyGradient, "tag ranges overlap");
static_assert(kDecodeActivation < kTests.first, "tag ranges overlap");
static_assert(kTests.end() <= kMaxTag, "tags above the MPI guarantee");

}  // namespace trident::parallel::comm::tags
