#include "runtime/io/bpe.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "runtime/core/error.h"

namespace trident::io {

namespace {

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}

// A fast hash of a short byte string, eight bytes at a time.
uint64_t hash_bytes(std::string_view bytes) {
  uint64_t h = 0x9e3779b97f4a7c15ull ^ bytes.size();
  size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, bytes.data() + i, 8);
    h = mix(h ^ word);
  }
  uint64_t tail = 0;
  std::memcpy(&tail, bytes.data() + i, bytes.size() - i);
  return mix(h ^ tail);
}

// Pieces longer than this are not cached: they rarely repeat and would crowd the cache.
constexpr size_t kMaxCachedPiece = 256;
// The cache starts over when half its slots are used; results never depend on it.
constexpr size_t kCacheSlots = size_t{1} << 19;

}  // namespace

BpeEncoder::BpeEncoder(std::vector<int32_t> byte_tokens, const std::vector<BpeMerge>& merges)
    : byte_tokens_(std::move(byte_tokens)), cache_(kCacheSlots) {
  TRIDENT_CHECK(byte_tokens_.size() == 256, "a byte-level BPE needs 256 byte tokens");
  const size_t slots = std::bit_ceil(std::max<size_t>(16, merges.size() * 4));
  rules_.assign(slots, Rule{});
  rule_mask_ = slots - 1;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const BpeMerge& m = merges[rank];
    const uint64_t key = pair_key(m.left, m.right);
    uint64_t slot = mix(key) & rule_mask_;
    while (rules_[slot].pair != kEmpty && rules_[slot].pair != key) slot = (slot + 1) & rule_mask_;
    // A pair listed twice keeps its first (lowest) rank, as a rank lookup by pair would.
    if (rules_[slot].pair == kEmpty) {
      rules_[slot] = Rule{key, static_cast<int32_t>(rank), m.result};
    }
  }
}

const BpeEncoder::Rule* BpeEncoder::rule(int32_t left, int32_t right) const {
  const uint64_t key = pair_key(left, right);
  for (uint64_t slot = mix(key) & rule_mask_;; slot = (slot + 1) & rule_mask_) {
    const Rule& r = rules_[slot];
    if (r.pair == key) return &r;
    if (r.pair == kEmpty) return nullptr;
  }
}

BpeEncoder::CacheSlot& BpeEncoder::cache_slot(std::string_view piece, uint64_t hash) {
  const uint64_t mask = cache_.size() - 1;
  for (uint64_t slot = hash & mask;; slot = (slot + 1) & mask) {
    CacheSlot& s = cache_[slot];
    if (s.key_size == 0) return s;
    if (s.hash == hash && s.key_size == piece.size() &&
        std::memcmp(cache_keys_.data() + s.key_offset, piece.data(), piece.size()) == 0) {
      return s;
    }
  }
}

void BpeEncoder::clear_cache() {
  std::fill(cache_.begin(), cache_.end(), CacheSlot{});
  cache_keys_.clear();
  cache_ids_.clear();
  cache_used_ = 0;
}

void BpeEncoder::encode(std::string_view piece, std::vector<int32_t>& out) {
  if (piece.size() == 1) {
    out.push_back(byte_tokens_[static_cast<uint8_t>(piece[0])]);
    return;
  }
  if (piece.size() > kMaxCachedPiece) {
    merge_piece(piece, out);
    return;
  }
  const uint64_t hash = hash_bytes(piece);
  CacheSlot* slot = &cache_slot(piece, hash);
  if (slot->key_size != 0) {
    const int32_t* ids = cache_ids_.data() + slot->ids_offset;
    out.insert(out.end(), ids, ids + slot->ids_count);
    return;
  }
  const size_t first = out.size();
  merge_piece(piece, out);
  if (static_cast<size_t>(cache_used_) * 2 >= cache_.size()) {
    clear_cache();
    slot = &cache_slot(piece, hash);
  }
  slot->hash = hash;
  slot->key_offset = static_cast<uint32_t>(cache_keys_.size());
  slot->key_size = static_cast<uint32_t>(piece.size());
  slot->ids_offset = static_cast<uint32_t>(cache_ids_.size());
  slot->ids_count = static_cast<uint32_t>(out.size() - first);
  cache_keys_.append(piece);
  cache_ids_.insert(cache_ids_.end(), out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
  ++cache_used_;
}

// Symbols form a linked list over byte positions; a min-heap holds candidate merges ordered by
// (rank, position of the left symbol). Entries go stale when either symbol changes and are
// skipped when popped, so each merge costs O(log n) and a megabyte-long piece stays cheap.
void BpeEncoder::merge_piece(std::string_view piece, std::vector<int32_t>& out) {
  const int32_t n = static_cast<int32_t>(piece.size());
  ids_.resize(static_cast<size_t>(n));
  next_.resize(static_cast<size_t>(n));
  prev_.resize(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    ids_[static_cast<size_t>(i)] =
        byte_tokens_[static_cast<uint8_t>(piece[static_cast<size_t>(i)])];
    next_[static_cast<size_t>(i)] = i + 1 < n ? i + 1 : -1;
    prev_[static_cast<size_t>(i)] = i - 1;
  }
  const auto later = [](const Candidate& a, const Candidate& b) {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  };
  heap_.clear();
  const auto push = [&](int32_t left) {
    const int32_t right = next_[static_cast<size_t>(left)];
    if (right < 0) return;
    const int32_t left_id = ids_[static_cast<size_t>(left)];
    const int32_t right_id = ids_[static_cast<size_t>(right)];
    if (const Rule* r = rule(left_id, right_id)) {
      heap_.push_back(Candidate{r->rank, left, left_id, right_id, r->result});
      std::push_heap(heap_.begin(), heap_.end(), later);
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);

  while (!heap_.empty()) {
    std::pop_heap(heap_.begin(), heap_.end(), later);
    const Candidate c = heap_.back();
    heap_.pop_back();
    const auto left = static_cast<size_t>(c.left);
    const int32_t right = next_[left];
    // Stale: the left symbol was absorbed (id −1), or either side has merged since.
    if (ids_[left] != c.left_id || right < 0 || ids_[static_cast<size_t>(right)] != c.right_id) {
      continue;
    }
    ids_[left] = c.result;
    ids_[static_cast<size_t>(right)] = -1;
    next_[left] = next_[static_cast<size_t>(right)];
    if (next_[left] >= 0) prev_[static_cast<size_t>(next_[left])] = c.left;
    if (prev_[left] >= 0) push(prev_[left]);
    push(c.left);
  }
  for (int32_t i = 0; i >= 0; i = next_[static_cast<size_t>(i)]) {
    out.push_back(ids_[static_cast<size_t>(i)]);
  }
}

}  // namespace trident::io
