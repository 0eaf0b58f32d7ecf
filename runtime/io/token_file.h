#pragma once
// Trident's binary token file: documents of token ids, optionally with a per-token loss mask
// (SFT data: 1 = response token, counted in the loss). All integers are little-endian.
//
//   offset          size                 field
//   0               8                    magic "TRDTOK01"
//   8               4   uint32           version (1)
//   12              2   uint16           token dtype: 1 = uint16, 2 = uint32
//   14              2   uint16           flags: bit 0 = a loss-mask section follows the offsets
//   16              8   uint64           number of documents D
//   24              8   uint64           number of tokens N
//   32              4   uint32           vocabulary size the ids were made for (0 = unknown)
//   36              28                   reserved, zero
//   64              N * 2 or N * 4       tokens, all documents back to back
//   (pad with zeros to a multiple of 8)
//   T               (D + 1) * 8 uint64   document offsets in tokens: 0 = o_0 <= ... <= o_D = N
//   T + (D + 1) * 8 N        uint8       loss mask (only if flag bit 0), one byte per token
//
// The file size must equal exactly the size this layout implies; the reader checks that and
// every header field, and names the file and the field in its error.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "runtime/io/mapped_file.h"
#include "runtime/io/spill_file.h"

namespace trident::io {

enum class TokenDType : uint16_t { U16 = 1, U32 = 2 };

inline constexpr char kTokenFileMagic[8] = {'T', 'R', 'D', 'T', 'O', 'K', '0', '1'};
inline constexpr uint32_t kTokenFileVersion = 1;
inline constexpr size_t kTokenFileHeaderBytes = 64;
inline constexpr uint16_t kTokenFileHasLossMask = 1;

struct TokenFileOptions {
  TokenDType dtype = TokenDType::U16;
  bool with_loss_mask = false;  // whether the file carries a loss-mask section
  uint32_t vocab_size = 0;      // recorded in the header; ids must be below it when non-zero
};

// Streams tokens to disk as documents are appended; offsets (and the mask, if any) go to side
// files next to the output (<path>.offsets.tmp, <path>.mask.tmp) and are copied in by finish(),
// so memory stays constant however large the dataset. The file appears under its name only
// once finish() succeeds; side files are removed either way.
class TokenFileWriter {
 public:
  TokenFileWriter(std::string path, TokenFileOptions options);
  ~TokenFileWriter();  // an unfinished file is discarded
  TokenFileWriter(const TokenFileWriter&) = delete;
  TokenFileWriter& operator=(const TokenFileWriter&) = delete;

  // Appends one document. `loss_mask` (same length as `tokens`) is allowed only when the file
  // has a mask section; a document appended without one gets a mask of all ones.
  void append(std::span<const int32_t> tokens, std::span<const uint8_t> loss_mask = {});
  // Writes offsets, mask and header, then renames the file into place.
  void finish();

  uint64_t num_documents() const { return num_documents_; }
  uint64_t num_tokens() const { return num_tokens_; }

 private:
  void flush_tokens();

  TokenFileOptions options_;
  std::unique_ptr<AtomicFileWriter> file_;
  std::unique_ptr<SpillFile> offsets_;
  std::unique_ptr<SpillFile> loss_mask_;
  std::vector<uint8_t> token_bytes_;  // encoded tokens not yet written
  uint64_t num_documents_ = 0;
  uint64_t num_tokens_ = 0;
  bool finished_ = false;
};

struct DocumentRange {
  uint64_t begin = 0;  // token index of the first token
  uint64_t end = 0;    // one past the last
  uint64_t size() const { return end - begin; }
};

// A validated, memory-mapped token file. Cheap to share between samplers (const methods only).
class TokenFile {
 public:
  // Throws UserError naming the file and what is wrong (bad magic, version, dtype, sizes,
  // offsets, mask values).
  explicit TokenFile(const std::string& path);

  const std::string& path() const { return file_->path(); }
  TokenDType dtype() const { return dtype_; }
  uint32_t vocab_size() const { return vocab_size_; }
  uint64_t num_documents() const { return num_documents_; }
  uint64_t num_tokens() const { return num_tokens_; }
  bool has_loss_mask() const { return loss_mask_ != nullptr; }

  uint32_t token(uint64_t index) const;
  // 1 when token `index` counts in the loss; files without a mask section count everything.
  uint8_t loss_mask(uint64_t index) const { return loss_mask_ ? loss_mask_[index] : 1; }
  DocumentRange document(uint64_t doc) const;
  // Copies tokens [begin, end) into `out` (and the mask into `mask` when it is non-null).
  void copy(uint64_t begin, uint64_t end, int32_t* out, uint8_t* mask = nullptr) const;
  std::vector<int32_t> document_tokens(uint64_t doc) const;
  // Index of the first token whose id is ≥ `limit`, or -1. Reads every token: for files whose
  // header records no vocabulary (vocab_size 0), checked once against the model's before use.
  int64_t first_id_at_least(uint32_t limit) const;

 private:
  std::unique_ptr<MappedFile> file_;
  TokenDType dtype_ = TokenDType::U16;
  uint32_t vocab_size_ = 0;
  uint64_t num_documents_ = 0;
  uint64_t num_tokens_ = 0;
  const uint8_t* tokens_ = nullptr;
  const uint64_t* offsets_ = nullptr;
  const uint8_t* loss_mask_ = nullptr;
};

size_t token_dtype_bytes(TokenDType dtype);
const char* token_dtype_name(TokenDType dtype);  // "uint16" | "uint32"

}  // namespace trident::io
