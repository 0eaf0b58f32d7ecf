#pragma once
// Byte-pair encoding of one pre-tokenized piece: start from one symbol per byte, then
// repeatedly merge the adjacent pair whose merge has the lowest rank (the leftmost pair when
// ranks tie) until no listed merge applies. Symbols are token ids, so merges are looked up by
// (left id, right id) and every intermediate symbol is a vocabulary token.
//
// Results are cached per piece (most text repeats its words), so encode() is not const and a
// BpeEncoder must not be shared between threads. Both lookups (merge rules and the piece
// cache) are open-addressing tables: they are the hot path of encoding.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace trident::io {

struct BpeMerge {
  int32_t left = 0;
  int32_t right = 0;
  int32_t result = 0;  // the vocabulary id of left + right
};

class BpeEncoder {
 public:
  // byte_tokens[b]: the id of the one-byte token b; merges in rank order (rank = index).
  BpeEncoder(std::vector<int32_t> byte_tokens, const std::vector<BpeMerge>& merges);

  // Appends the ids of `piece` (raw bytes, non-empty) to `out`.
  void encode(std::string_view piece, std::vector<int32_t>& out);

  int64_t cached_pieces() const { return cache_used_; }

 private:
  struct Rule {
    uint64_t pair = kEmpty;  // (left << 32) | right
    int32_t rank = 0;
    int32_t result = 0;
  };
  struct CacheSlot {
    uint64_t hash = 0;
    uint32_t key_offset = 0, key_size = 0;   // into cache_keys_; key_size 0 = empty slot
    uint32_t ids_offset = 0, ids_count = 0;  // into cache_ids_
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};

  const Rule* rule(int32_t left, int32_t right) const;
  void merge_piece(std::string_view piece, std::vector<int32_t>& out);
  CacheSlot& cache_slot(std::string_view piece, uint64_t hash);
  void clear_cache();

  std::vector<int32_t> byte_tokens_;
  std::vector<Rule> rules_;  // power-of-two size, linear probing
  uint64_t rule_mask_ = 0;
  std::vector<CacheSlot> cache_;
  std::string cache_keys_;
  std::vector<int32_t> cache_ids_;
  int64_t cache_used_ = 0;
  // Scratch of merge_piece, kept to avoid allocating per piece.
  struct Candidate {
    int32_t rank;
    int32_t left;  // symbol index (= byte offset where it starts)
    int32_t left_id, right_id, result;
  };
  std::vector<Candidate> heap_;
  std::vector<int32_t> ids_, next_, prev_;
};

}  // namespace trident::io
