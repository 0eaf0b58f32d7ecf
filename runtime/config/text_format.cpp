// Textproto in and out. Parsing runs twice over the same text: once into an empty message, which
// catches syntax errors, unknown fields and duplicated fields with their line and column, and
// once merged on top of default_config(), which is what the caller gets back.
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <vector>

#include "runtime/config/config.h"
#include "runtime/config/field_names.h"
#include "runtime/core/error.h"
#include "runtime/core/logging.h"

namespace trident::config {

namespace gp = google::protobuf;

namespace {

struct ParseProblem {
  int line = 0;    // 1-based
  int column = 0;  // 1-based
  std::string message;
};

class CollectProblems : public gp::io::ErrorCollector {
 public:
  void AddError(int line, gp::io::ColumnNumber column, const std::string& message) override {
    problems.push_back({line + 1, column + 1, message});
  }
  std::vector<ParseProblem> problems;
};

// protobuf says 'Message type "trident.config.ParallelConfig" has no field named "epp".'; the
// user also wants to know which names would have been right.
std::string explain(const std::string& message) {
  const std::string type_marker = "Message type \"";
  const std::string field_marker = "has no field named \"";
  const auto type_at = message.find(type_marker);
  const auto field_at = message.find(field_marker);
  if (type_at == std::string::npos || field_at == std::string::npos) return message;
  const auto type_begin = type_at + type_marker.size();
  const std::string type_name =
      message.substr(type_begin, message.find('"', type_begin) - type_begin);
  const auto field_begin = field_at + field_marker.size();
  const std::string field =
      message.substr(field_begin, message.find('"', field_begin) - field_begin);
  const gp::Descriptor* descriptor =
      gp::DescriptorPool::generated_pool()->FindMessageTypeByName(type_name);
  if (descriptor == nullptr) return message;
  return "unknown field \"" + field + "\" in " + descriptor->name() +
         "; valid fields: " + detail::field_list(*descriptor) +
         detail::did_you_mean(*descriptor, field, "", '"');
}

// A repeated field written in the file replaces the default list instead of appending to it.
void clear_lists_set_in(const gp::Message& from_file, gp::Message& target) {
  const gp::Descriptor* descriptor = from_file.GetDescriptor();
  const gp::Reflection* file_reflection = from_file.GetReflection();
  const gp::Reflection* target_reflection = target.GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const gp::FieldDescriptor* field = descriptor->field(i);
    if (field->is_repeated()) {
      if (file_reflection->FieldSize(from_file, field) > 0)
        target_reflection->ClearField(&target, field);
    } else if (field->cpp_type() == gp::FieldDescriptor::CPPTYPE_MESSAGE &&
               file_reflection->HasField(from_file, field)) {
      clear_lists_set_in(file_reflection->GetMessage(from_file, field),
                         *target_reflection->MutableMessage(&target, field));
    }
  }
}

std::string escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char octal[5];
          std::snprintf(octal, sizeof(octal), "\\%03o", static_cast<unsigned char>(c));
          out += octal;
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string format_double(double value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

std::string scalar_text(const gp::Message& message, const gp::FieldDescriptor& field, int index) {
  const gp::Reflection& r = *message.GetReflection();
  const bool repeated = field.is_repeated();
  switch (field.cpp_type()) {
    case gp::FieldDescriptor::CPPTYPE_INT32:
      return std::to_string(repeated ? r.GetRepeatedInt32(message, &field, index)
                                     : r.GetInt32(message, &field));
    case gp::FieldDescriptor::CPPTYPE_INT64:
      return std::to_string(repeated ? r.GetRepeatedInt64(message, &field, index)
                                     : r.GetInt64(message, &field));
    case gp::FieldDescriptor::CPPTYPE_UINT32:
      return std::to_string(repeated ? r.GetRepeatedUInt32(message, &field, index)
                                     : r.GetUInt32(message, &field));
    case gp::FieldDescriptor::CPPTYPE_UINT64:
      return std::to_string(repeated ? r.GetRepeatedUInt64(message, &field, index)
                                     : r.GetUInt64(message, &field));
    case gp::FieldDescriptor::CPPTYPE_DOUBLE:
      return format_double(repeated ? r.GetRepeatedDouble(message, &field, index)
                                    : r.GetDouble(message, &field));
    case gp::FieldDescriptor::CPPTYPE_FLOAT:
      return format_double(repeated ? r.GetRepeatedFloat(message, &field, index)
                                    : r.GetFloat(message, &field));
    case gp::FieldDescriptor::CPPTYPE_BOOL:
      return (repeated ? r.GetRepeatedBool(message, &field, index) : r.GetBool(message, &field))
                 ? "true"
                 : "false";
    case gp::FieldDescriptor::CPPTYPE_STRING: {
      std::string quoted = "\"";
      quoted.append(escape(repeated ? r.GetRepeatedString(message, &field, index)
                                    : r.GetString(message, &field)));
      quoted.push_back('"');
      return quoted;
    }
    case gp::FieldDescriptor::CPPTYPE_ENUM:
      return (repeated ? r.GetRepeatedEnum(message, &field, index) : r.GetEnum(message, &field))
          ->name();
    case gp::FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  TRIDENT_FAIL("no scalar text for message field ", field.full_name());
}

// Every field is printed, zeros included: a proto3 zero is indistinguishable from "unset", and a
// default that is not zero (grad_clip 1.0) must not come back when the config is re-read.
void print_message(const gp::Message& message, int indent, std::ostringstream& out) {
  const gp::Descriptor* descriptor = message.GetDescriptor();
  const gp::Reflection* reflection = message.GetReflection();
  const std::string pad(static_cast<size_t>(indent) * 2, ' ');
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const gp::FieldDescriptor* field = descriptor->field(i);
    if (field->cpp_type() == gp::FieldDescriptor::CPPTYPE_MESSAGE) {
      const int count = field->is_repeated() ? reflection->FieldSize(message, field) : 1;
      for (int j = 0; j < count; ++j) {
        out << pad << field->name() << " {\n";
        print_message(field->is_repeated() ? reflection->GetRepeatedMessage(message, field, j)
                                           : reflection->GetMessage(message, field),
                      indent + 1, out);
        out << pad << "}\n";
      }
    } else if (field->is_repeated()) {
      for (int j = 0; j < reflection->FieldSize(message, field); ++j) {
        out << pad << field->name() << ": " << scalar_text(message, *field, j) << "\n";
      }
    } else {
      out << pad << field->name() << ": " << scalar_text(message, *field, 0) << "\n";
    }
  }
}

}  // namespace

TridentConfig parse_config_text(const std::string& text, const std::string& origin) {
  CollectProblems collector;
  gp::TextFormat::Parser parser;
  parser.RecordErrorsTo(&collector);
  TridentConfig from_file;
  if (!parser.ParseFromString(text, &from_file)) {
    std::string message;
    for (const ParseProblem& problem : collector.problems) {
      if (!message.empty()) message += "\n";
      message += origin + ":" + std::to_string(problem.line) + ":" +
                 std::to_string(problem.column) + ": " + explain(problem.message);
    }
    if (message.empty()) message = origin + ": not a valid TridentConfig textproto";
    TRIDENT_USER_FAIL(message);
  }
  // The defaults are the full 671B model: a file that sets nothing would silently mean it.
  std::vector<const gp::FieldDescriptor*> set_fields;
  from_file.GetReflection()->ListFields(from_file, &set_fields);
  TRIDENT_USER_CHECK(!set_fields.empty(), origin,
                     " sets no field (empty, or only comments): give a preset name (tiny, small, "
                     "deepseek-v3-671b) or a textproto with at least a model { ... } section");
  if (!from_file.has_model()) {
    TLOG_WARN(origin, " has no model section: the model is the default, deepseek-v3-671b");
  }
  TridentConfig config = default_config();
  clear_lists_set_in(from_file, config);
  TRIDENT_CHECK(parser.MergeFromString(text, &config), "re-parse of ", origin, " failed");
  return config;
}

TridentConfig load_config(const std::string& path) {
  std::ifstream file(path);
  TRIDENT_USER_CHECK(file.good(), "cannot read config file '", path,
                     "' (give a preset name such as 'tiny' or a path to a .textproto file)");
  std::ostringstream text;
  text << file.rdbuf();
  return parse_config_text(text.str(), path);
}

std::string to_text(const TridentConfig& config) {
  std::ostringstream out;
  print_message(config, 0, out);
  return out.str();
}

}  // namespace trident::config
