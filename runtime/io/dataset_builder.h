#pragma once
// Turns a text corpus into a token file, streaming: one record in memory at a time, the token
// file writer spilling offsets and masks to disk, so a multi-gigabyte input runs in constant
// memory. Formats:
//   kText          documents separated by blank lines
//   kJsonl         one JSON object per line, the text in `field`
//   kPromptResponse  JSONL with `prompt_field` (mask 0) and `response_field` (mask 1, with EOS)
//   kChat          JSONL with a list of {role, content} in `messages_field`, through the
//                  DeepSeek chat template (chat_template.h): only assistant turns are trained
// Documents start with BOS when the tokenizer's config asks for it and end with EOS.
//
// A record that cannot be used (not JSON, a missing field, bytes the tokenizer cannot take,
// over max_record_bytes) is a bad record: reported with its line number through the callback,
// counted, and left out; with `strict` the first one stops the build instead. Invalid UTF-8 in
// text is not a bad record for a tokenizer that repairs it, but is reported and counted too.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "runtime/io/chat_template.h"
#include "runtime/io/progress_bar.h"
#include "runtime/io/text_tokenizer.h"
#include "runtime/io/token_file.h"

namespace trident::io {

enum class InputFormat { kText, kJsonl, kPromptResponse, kChat };

struct DatasetOptions {
  InputFormat format = InputFormat::kText;
  std::string field = "text";
  std::string prompt_field = "prompt";
  std::string response_field = "response";
  std::string messages_field = "messages";
  uint64_t max_record_bytes = uint64_t{256} << 20;
  bool strict = false;
};

struct RecordNote {
  int64_t line = 0;  // first line of the record
  std::string reason;
  bool dropped = true;  // false: kept after repair (invalid UTF-8 replaced)
};

struct DatasetSummary {
  int64_t records = 0;         // documents written
  int64_t tokens = 0;          // tokens written
  int64_t trained_tokens = 0;  // of which have mask 1
  int64_t bad_records = 0;     // left out
  int64_t repaired_records = 0;
  uint64_t bytes_read = 0;
  double seconds = 0.0;
};

class DatasetBuilder {
 public:
  DatasetBuilder(TextTokenizer& tokenizer, TokenFileWriter& writer, DatasetOptions options);

  // Reads `path` to its end. `note` receives every bad or repaired record; `progress` (may be
  // null) is updated as bytes are read.
  DatasetSummary build(const std::string& path, const std::function<void(const RecordNote&)>& note,
                       ProgressBar* progress);

 private:
  void add_text(const std::string& text, int64_t line);
  void add_json_record(const std::string& line_text, int64_t line);
  void append(const std::vector<int32_t>& tokens, const std::vector<uint8_t>& mask);
  // Runs `body` for one record, turning a UserError into a bad record.
  void guarded(int64_t line, const std::function<void()>& body);
  void check_text(const std::string& text, int64_t line);

  TextTokenizer& tokenizer_;
  TokenFileWriter& writer_;
  DatasetOptions options_;
  std::function<void(const RecordNote&)> note_;
  std::string path_;  // the input being read, for the messages
  std::optional<DeepSeekChatTemplate> chat_;  // kChat only
  DatasetSummary summary_;
  std::vector<int32_t> tokens_;
  std::vector<uint8_t> mask_;
};

}  // namespace trident::io
