#include "runtime/io/dataset_builder.h"

#include <chrono>
#include <nlohmann/json.hpp>

#include "runtime/core/error.h"
#include "runtime/io/line_reader.h"
#include "runtime/io/utf8.h"

namespace trident::io {

namespace {

bool is_blank(const std::string& line) {
  return line.find_first_not_of(" \t\r") == std::string::npos;
}

bool has_string(const nlohmann::json& record, const std::string& field) {
  const auto found = record.find(field);  // end() for anything but an object
  return found != record.end() && found->is_string();
}

std::string string_field(const nlohmann::json& record, const std::string& field, const char* flag) {
  TRIDENT_USER_CHECK(record.is_object(), "expected a JSON object, got ", record.type_name());
  TRIDENT_USER_CHECK(has_string(record, field), "no string field \"", field, "\" (set ", flag, ")");
  return record[field].get<std::string>();
}

std::string progress_detail(const DatasetSummary& s, double seconds) {
  char text[160];
  std::snprintf(text, sizeof(text), "%lld documents, %lld tokens, %.0f tokens/s",
                static_cast<long long>(s.records), static_cast<long long>(s.tokens),
                seconds > 0 ? static_cast<double>(s.tokens) / seconds : 0.0);
  std::string detail = text;
  if (s.bad_records > 0) detail += ", " + std::to_string(s.bad_records) + " bad";
  return detail;
}

// A record that cannot be used: reported as bad (or fatal under --strict) by guarded().
struct BadRecord {
  std::string reason;
};

}  // namespace

DatasetBuilder::DatasetBuilder(TextTokenizer& tokenizer, TokenFileWriter& writer,
                               DatasetOptions options)
    : tokenizer_(tokenizer), writer_(writer), options_(std::move(options)) {}

void DatasetBuilder::guarded(int64_t line, const std::function<void()>& body) {
  std::string reason;
  try {
    body();
    return;
  } catch (const UserError& e) {
    reason = e.detail();
  } catch (const BadRecord& e) {
    reason = e.reason;
  }
  TRIDENT_USER_CHECK(!options_.strict, "'", path_, "' line ", line, ": ", reason,
                     " (--strict stops at the first bad record)");
  ++summary_.bad_records;
  note_(RecordNote{line, reason, true});
}

void DatasetBuilder::check_text(const std::string& text, int64_t line) {
  if (const std::string problem = tokenizer_.text_problem(text); !problem.empty()) {
    throw BadRecord{problem};
  }
  if (tokenizer_.repairs_invalid_utf8() && !is_valid_utf8(text)) {
    const Utf8Repair repair = repair_utf8(text);
    ++summary_.repaired_records;
    note_(RecordNote{line,
                     "invalid UTF-8 (first at byte " + std::to_string(repair.first_bad_byte) +
                         " of the record) replaced by " + std::to_string(repair.replacements) +
                         " U+FFFD",
                     false});
  }
}

void DatasetBuilder::append(const std::vector<int32_t>& tokens, const std::vector<uint8_t>& mask) {
  writer_.append(tokens, mask);
  ++summary_.records;
  summary_.tokens += static_cast<int64_t>(tokens.size());
  if (mask.empty()) {
    summary_.trained_tokens += static_cast<int64_t>(tokens.size());
  } else {
    for (uint8_t m : mask) summary_.trained_tokens += m;
  }
}

void DatasetBuilder::add_text(const std::string& text, int64_t line) {
  guarded(line, [&] {
    check_text(text, line);
    tokens_.clear();
    if (tokenizer_.bos_starts_documents()) tokens_.push_back(tokenizer_.bos_id());
    tokenizer_.encode(text, tokens_);
    if (tokenizer_.eos_id() >= 0) tokens_.push_back(tokenizer_.eos_id());
    append(tokens_, {});
  });
}

void DatasetBuilder::add_json_record(const std::string& line_text, int64_t line) {
  guarded(line, [&] {
    nlohmann::json record;
    try {
      record = nlohmann::json::parse(line_text);
    } catch (const nlohmann::json::exception& e) {
      throw BadRecord{std::string("not valid JSON (") + e.what() + ")"};
    }
    tokens_.clear();
    mask_.clear();
    if (options_.format == InputFormat::kJsonl) {
      const std::string text = string_field(record, options_.field, "--field");
      check_text(text, line);
      if (tokenizer_.bos_starts_documents()) tokens_.push_back(tokenizer_.bos_id());
      tokenizer_.encode(text, tokens_);
      if (tokenizer_.eos_id() >= 0) tokens_.push_back(tokenizer_.eos_id());
      append(tokens_, {});
      return;
    }
    if (options_.format == InputFormat::kPromptResponse) {
      TRIDENT_USER_CHECK(record.is_object(), "expected a JSON object, got ", record.type_name());
      const bool has_prompt = has_string(record, options_.prompt_field);
      const bool has_response = has_string(record, options_.response_field);
      if (!has_prompt || !has_response) {
        throw BadRecord{
            std::string("no string field ") +
            (has_prompt ? "" : "\"" + options_.prompt_field + "\" (--prompt-field)") +
            (has_prompt || has_response ? "" : " nor ") +
            (has_response ? "" : "\"" + options_.response_field + "\" (--response-field)")};
      }
      const std::string prompt = record[options_.prompt_field].get<std::string>();
      const std::string response = record[options_.response_field].get<std::string>();
      check_text(prompt + response, line);
      encode_prompt_response(tokenizer_, prompt, response, tokens_, mask_);
      append(tokens_, mask_);
      return;
    }
    const std::vector<ChatMessage> messages =
        DeepSeekChatTemplate::parse(record, options_.messages_field);
    for (const ChatMessage& m : messages) check_text(m.content, line);
    const ChatTokens chat = chat_->encode(messages);
    append(chat.tokens, chat.loss_mask);
  });
}

DatasetSummary DatasetBuilder::build(const std::string& path,
                                     const std::function<void(const RecordNote&)>& note,
                                     ProgressBar* progress) {
  note_ = note;
  path_ = path;
  summary_ = DatasetSummary{};
  // The chat template's tokens are checked once, before any record is read.
  if (options_.format == InputFormat::kChat) chat_.emplace(tokenizer_);
  const auto start = std::chrono::steady_clock::now();
  const auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  LineReader reader(path, options_.max_record_bytes);
  const std::string too_long =
      "over " + std::to_string(options_.max_record_bytes) + " bytes (the cap on one record)";
  Line line;
  std::string document;
  int64_t document_line = 0;
  bool document_too_long = false;
  const auto flush_document = [&] {
    if (document_too_long) {
      guarded(document_line, [&] { throw BadRecord{"the document " + too_long}; });
    } else if (!document.empty()) {
      add_text(document, document_line);
    }
    document.clear();
    document_too_long = false;
  };
  while (reader.next(line)) {
    if (options_.format == InputFormat::kText) {
      if (!line.too_long && is_blank(line.text)) {
        flush_document();
      } else {
        if (document.empty() && !document_too_long) document_line = line.number;
        if (line.too_long || document.size() + line.text.size() + 1 > options_.max_record_bytes) {
          document_too_long = true;
          document.clear();
        } else if (!document_too_long) {
          if (!document.empty()) document += '\n';
          document += line.text;
        }
      }
    } else if (line.too_long) {
      guarded(line.number, [&] { throw BadRecord{"the line is " + too_long}; });
    } else if (!is_blank(line.text)) {
      add_json_record(line.text, line.number);
    }
    if (progress) {
      progress->update(reader.bytes_read(), [&] { return progress_detail(summary_, seconds()); });
    }
  }
  if (options_.format == InputFormat::kText) flush_document();
  summary_.bytes_read = reader.bytes_read();
  summary_.seconds = seconds();
  if (progress) progress->finish(reader.bytes_read(), progress_detail(summary_, summary_.seconds));
  return summary_;
}

}  // namespace trident::io
