#include "runtime/io/token_file.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "runtime/core/error.h"

namespace trident::io {

static_assert(std::endian::native == std::endian::little,
              "token files are little-endian and read in place");

namespace {

// The header as it lies on disk (64 bytes, no padding).
struct RawHeader {
  char magic[8];
  uint32_t version;
  uint16_t dtype;
  uint16_t flags;
  uint64_t num_documents;
  uint64_t num_tokens;
  uint32_t vocab_size;
  uint8_t reserved[28];
};
static_assert(sizeof(RawHeader) == kTokenFileHeaderBytes);

uint64_t align8(uint64_t bytes) { return (bytes + 7) & ~uint64_t{7}; }

bool known_dtype(uint16_t code) {
  return code == static_cast<uint16_t>(TokenDType::U16) ||
         code == static_cast<uint16_t>(TokenDType::U32);
}

}  // namespace

size_t token_dtype_bytes(TokenDType dtype) { return dtype == TokenDType::U16 ? 2 : 4; }

const char* token_dtype_name(TokenDType dtype) {
  return dtype == TokenDType::U16 ? "uint16" : "uint32";
}

namespace {
constexpr size_t kTokenBufferBytes = size_t{1} << 20;
}

TokenFileWriter::TokenFileWriter(std::string path, TokenFileOptions options)
    : options_(options), file_(std::make_unique<AtomicFileWriter>(std::move(path))) {
  TRIDENT_USER_CHECK(known_dtype(static_cast<uint16_t>(options_.dtype)), "token file '",
                     file_->path(), "': dtype must be uint16 or uint32");
  const RawHeader placeholder{};
  file_->write(&placeholder, sizeof(placeholder));  // the real header is written by finish()
  offsets_ = std::make_unique<SpillFile>(file_->path() + ".offsets.tmp");
  const uint64_t first_offset = 0;
  offsets_->append(&first_offset, sizeof(first_offset));
  if (options_.with_loss_mask) {
    loss_mask_ = std::make_unique<SpillFile>(file_->path() + ".mask.tmp");
  }
  token_bytes_.reserve(kTokenBufferBytes);
}

TokenFileWriter::~TokenFileWriter() = default;

void TokenFileWriter::append(std::span<const int32_t> tokens, std::span<const uint8_t> loss_mask) {
  TRIDENT_CHECK(!finished_, "append to a finished token file");
  const std::string& path = file_->path();
  TRIDENT_USER_CHECK(loss_mask.empty() || options_.with_loss_mask, "token file '", path,
                     "': a loss mask was given but the file was opened without a mask section");
  TRIDENT_USER_CHECK(loss_mask.empty() || loss_mask.size() == tokens.size(), "token file '", path,
                     "': document ", num_documents(), " has ", tokens.size(), " tokens but ",
                     loss_mask.size(), " mask entries");
  const uint64_t limit =
      options_.dtype == TokenDType::U16 ? (uint64_t{1} << 16) : (uint64_t{1} << 32);
  const uint64_t vocab = options_.vocab_size > 0 ? options_.vocab_size : limit;
  // Everything is checked before anything is buffered, so a refused document leaves no trace.
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int64_t id = tokens[i];
    TRIDENT_USER_CHECK(id >= 0 && static_cast<uint64_t>(id) < std::min(vocab, limit),
                       "token file '", path, "': document ", num_documents(), " token ", i,
                       " has id ", id, ", outside [0, ", std::min(vocab, limit), ") for ",
                       token_dtype_name(options_.dtype), " with vocab_size ", options_.vocab_size);
  }
  for (uint8_t bit : loss_mask) {
    TRIDENT_USER_CHECK(bit <= 1, "token file '", path, "': loss mask entries must be 0 or 1, got ",
                       static_cast<int>(bit));
  }
  const size_t width = token_dtype_bytes(options_.dtype);
  const size_t start = token_bytes_.size();
  token_bytes_.resize(start + tokens.size() * width);
  uint8_t* encoded = token_bytes_.data() + start;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (width == 2) {
      const auto value = static_cast<uint16_t>(tokens[i]);
      std::memcpy(&encoded[i * 2], &value, 2);
    } else {
      const auto value = static_cast<uint32_t>(tokens[i]);
      std::memcpy(&encoded[i * 4], &value, 4);
    }
  }
  if (token_bytes_.size() >= kTokenBufferBytes) flush_tokens();
  if (options_.with_loss_mask) {
    if (loss_mask.empty()) {
      const std::vector<uint8_t> ones(tokens.size(), 1);
      loss_mask_->append(ones.data(), ones.size());
    } else {
      loss_mask_->append(loss_mask.data(), loss_mask.size());
    }
  }
  num_tokens_ += tokens.size();
  ++num_documents_;
  offsets_->append(&num_tokens_, sizeof(num_tokens_));
}

void TokenFileWriter::flush_tokens() {
  file_->write(token_bytes_.data(), token_bytes_.size());
  token_bytes_.clear();
}

void TokenFileWriter::finish() {
  TRIDENT_CHECK(!finished_, "token file finished twice");
  const uint64_t token_bytes = num_tokens() * token_dtype_bytes(options_.dtype);
  const uint64_t pad = align8(token_bytes) - token_bytes;
  const uint8_t zeros[8] = {};
  flush_tokens();
  file_->write(zeros, pad);
  offsets_->copy_to(*file_);
  if (options_.with_loss_mask) loss_mask_->copy_to(*file_);

  RawHeader header{};
  std::memcpy(header.magic, kTokenFileMagic, sizeof(header.magic));
  header.version = kTokenFileVersion;
  header.dtype = static_cast<uint16_t>(options_.dtype);
  header.flags = options_.with_loss_mask ? kTokenFileHasLossMask : 0;
  header.num_documents = num_documents();
  header.num_tokens = num_tokens();
  header.vocab_size = options_.vocab_size;
  file_->write_at(0, &header, sizeof(header));
  file_->commit();
  finished_ = true;
}

TokenFile::TokenFile(const std::string& path) : file_(std::make_unique<MappedFile>(path)) {
  const uint64_t size = file_->size();
  TRIDENT_USER_CHECK(size >= kTokenFileHeaderBytes, "token file '", path, "' is ", size,
                     " bytes, shorter than its 64-byte header (truncated or not a token file)");
  RawHeader header;
  std::memcpy(&header, file_->data(), sizeof(header));
  TRIDENT_USER_CHECK(std::memcmp(header.magic, kTokenFileMagic, sizeof(header.magic)) == 0, "'",
                     path,
                     "' is not a Trident token file (magic is not \"TRDTOK01\"); "
                     "make one with `trident data`");
  TRIDENT_USER_CHECK(header.version == kTokenFileVersion, "token file '", path, "' has version ",
                     header.version, "; this build reads version ", kTokenFileVersion);
  TRIDENT_USER_CHECK(known_dtype(header.dtype), "token file '", path, "' has dtype code ",
                     header.dtype, "; valid codes are 1 (uint16) and 2 (uint32)");
  TRIDENT_USER_CHECK((header.flags & ~kTokenFileHasLossMask) == 0, "token file '", path,
                     "' has unknown flag bits 0x", std::hex, header.flags);
  dtype_ = static_cast<TokenDType>(header.dtype);
  vocab_size_ = header.vocab_size;
  num_documents_ = header.num_documents;
  num_tokens_ = header.num_tokens;
  const bool with_mask = (header.flags & kTokenFileHasLossMask) != 0;

  // Bound the counts by the file size before multiplying, so a corrupt header cannot overflow.
  TRIDENT_USER_CHECK(num_tokens_ <= size && num_documents_ <= size / 8, "token file '", path,
                     "' header claims ", num_documents_, " documents and ", num_tokens_,
                     " tokens, more than its ", size, " bytes can hold (corrupt header)");
  const uint64_t offsets_at =
      kTokenFileHeaderBytes + align8(num_tokens_ * token_dtype_bytes(dtype_));
  const uint64_t mask_at = offsets_at + (num_documents_ + 1) * sizeof(uint64_t);
  const uint64_t expected = mask_at + (with_mask ? num_tokens_ : 0);
  TRIDENT_USER_CHECK(size == expected, "token file '", path, "' is ", size,
                     " bytes but its header (", num_documents_, " documents, ", num_tokens_, " ",
                     token_dtype_name(dtype_), " tokens", with_mask ? ", loss mask" : "",
                     ") implies ", expected, " bytes (",
                     size < expected ? "truncated" : "trailing garbage", ")");

  tokens_ = file_->data() + kTokenFileHeaderBytes;
  offsets_ = reinterpret_cast<const uint64_t*>(file_->data() + offsets_at);  // 8-aligned
  loss_mask_ = with_mask ? file_->data() + mask_at : nullptr;

  TRIDENT_USER_CHECK(offsets_[0] == 0 && offsets_[num_documents_] == num_tokens_, "token file '",
                     path, "': document offsets must start at 0 and end at ", num_tokens_,
                     ", found ", offsets_[0], " and ", offsets_[num_documents_]);
  for (uint64_t doc = 0; doc < num_documents_; ++doc) {
    TRIDENT_USER_CHECK(offsets_[doc] <= offsets_[doc + 1], "token file '", path,
                       "': document offsets decrease at document ", doc, " (", offsets_[doc], " > ",
                       offsets_[doc + 1], ")");
  }
  // Token ids and mask values are checked as they are copied (copy()), not here: a scan at
  // open would read every page of a file that may be many gigabytes.
}

uint32_t TokenFile::token(uint64_t index) const {
  if (dtype_ == TokenDType::U16) {
    uint16_t value;
    std::memcpy(&value, tokens_ + index * 2, 2);
    return value;
  }
  uint32_t value;
  std::memcpy(&value, tokens_ + index * 4, 4);
  return value;
}

DocumentRange TokenFile::document(uint64_t doc) const {
  TRIDENT_CHECK(doc < num_documents_, "document ", doc, " of ", num_documents_, " in '", path(),
                "'");
  return DocumentRange{offsets_[doc], offsets_[doc + 1]};
}

void TokenFile::copy(uint64_t begin, uint64_t end, int32_t* out, uint8_t* mask) const {
  TRIDENT_CHECK(begin <= end && end <= num_tokens_, "token range [", begin, ", ", end,
                ") outside '", path(), "' with ", num_tokens_, " tokens");
  for (uint64_t i = begin; i < end; ++i) {
    const uint32_t id = token(i);
    TRIDENT_USER_CHECK(vocab_size_ == 0 || id < vocab_size_, "token file '", path(), "': token ", i,
                       " has id ", id, ", not below the recorded vocab_size ", vocab_size_);
    out[i - begin] = static_cast<int32_t>(id);
    if (mask != nullptr) {
      const uint8_t bit = loss_mask(i);
      TRIDENT_USER_CHECK(bit <= 1, "token file '", path(), "': loss mask entry ", i, " is ",
                         static_cast<int>(bit), "; entries must be 0 or 1");
      mask[i - begin] = bit;
    }
  }
}

namespace {
template <typename Id>
int64_t first_at_least(const uint8_t* bytes, uint64_t count, uint32_t limit) {
  constexpr uint64_t kBlock = 1 << 16;  // a branch-free max per block, then the exact index
  for (uint64_t at = 0; at < count; at += kBlock) {
    const uint64_t n = std::min(kBlock, count - at);
    Id largest = 0;
    for (uint64_t i = 0; i < n; ++i) {
      Id id;
      std::memcpy(&id, bytes + (at + i) * sizeof(Id), sizeof(Id));
      largest = std::max(largest, id);
    }
    if (largest < limit) continue;
    for (uint64_t i = 0; i < n; ++i) {
      Id id;
      std::memcpy(&id, bytes + (at + i) * sizeof(Id), sizeof(Id));
      if (id >= limit) return static_cast<int64_t>(at + i);
    }
  }
  return -1;
}
}  // namespace

int64_t TokenFile::first_id_at_least(uint32_t limit) const {
  return dtype_ == TokenDType::U16 ? first_at_least<uint16_t>(tokens_, num_tokens_, limit)
                                   : first_at_least<uint32_t>(tokens_, num_tokens_, limit);
}

std::vector<int32_t> TokenFile::document_tokens(uint64_t doc) const {
  const DocumentRange range = document(doc);
  std::vector<int32_t> out(range.size());
  copy(range.begin, range.end, out.data());
  return out;
}

}  // namespace trident::io
