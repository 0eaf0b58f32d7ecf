// --set path.to.field=value: the path is walked with protobuf reflection, so every field of the
// schema can be overridden without a hand-written table that would fall out of date.
#include <cerrno>
#include <cstdlib>
#include <limits>

#include "runtime/config/config.h"
#include "runtime/config/field_names.h"
#include "runtime/core/error.h"

namespace trident::config {

namespace gp = google::protobuf;

namespace {

std::string trim(const std::string& text) {
  const auto begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  const auto end = text.find_last_not_of(" \t");
  return text.substr(begin, end - begin + 1);
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  size_t begin = 0;
  while (true) {
    const auto end = text.find(separator, begin);
    parts.push_back(text.substr(begin, end == std::string::npos ? std::string::npos : end - begin));
    if (end == std::string::npos) break;
    begin = end + 1;
  }
  return parts;
}

[[noreturn]] void bad_value(const std::string& path, const std::string& value,
                            const std::string& expected) {
  TRIDENT_USER_FAIL("--set ", path, "=", value, ": ", path, " takes ", expected, ", got '", value,
                    "'");
}

long long parse_integer(const std::string& path, const gp::FieldDescriptor& field,
                        const std::string& value, long long lowest, long long highest) {
  char* end = nullptr;
  errno = 0;
  const long long parsed = std::strtoll(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || errno == ERANGE || parsed < lowest || parsed > highest) {
    bad_value(path, value,
              "an integer in [" + std::to_string(lowest) + ", " + std::to_string(highest) + "]");
  }
  return parsed;
}

unsigned long long parse_unsigned(const std::string& path, const gp::FieldDescriptor& field,
                                  const std::string& value, unsigned long long highest) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long parsed = std::strtoull(value.c_str(), &end, 10);
  if (value.empty() || value[0] == '-' || *end != '\0' || errno == ERANGE || parsed > highest) {
    bad_value(path, value, "a non-negative integer up to " + std::to_string(highest));
  }
  return parsed;
}

double parse_number(const std::string& path, const gp::FieldDescriptor& field,
                    const std::string& value) {
  char* end = nullptr;
  const double parsed = std::strtod(value.c_str(), &end);
  if (value.empty() || *end != '\0') bad_value(path, value, "a number (e.g. 3e-4)");
  return parsed;
}

bool parse_bool(const std::string& path, const gp::FieldDescriptor& field,
                const std::string& value) {
  if (value == "true" || value == "1") return true;
  if (value == "false" || value == "0") return false;
  bad_value(path, value, "a bool (true, false, 1 or 0)");
}

void set_scalar(gp::Message& message, const gp::FieldDescriptor& field, const std::string& path,
                const std::string& value) {
  const gp::Reflection& r = *message.GetReflection();
  using Limits32 = std::numeric_limits<int32_t>;
  using Limits64 = std::numeric_limits<int64_t>;
  switch (field.cpp_type()) {
    case gp::FieldDescriptor::CPPTYPE_INT32:
      r.SetInt32(&message, &field,
                 static_cast<int32_t>(
                     parse_integer(path, field, value, Limits32::min(), Limits32::max())));
      return;
    case gp::FieldDescriptor::CPPTYPE_INT64:
      r.SetInt64(&message, &field,
                 parse_integer(path, field, value, Limits64::min(), Limits64::max()));
      return;
    case gp::FieldDescriptor::CPPTYPE_UINT32:
      r.SetUInt32(&message, &field,
                  static_cast<uint32_t>(
                      parse_unsigned(path, field, value, std::numeric_limits<uint32_t>::max())));
      return;
    case gp::FieldDescriptor::CPPTYPE_UINT64:
      r.SetUInt64(&message, &field,
                  parse_unsigned(path, field, value, std::numeric_limits<uint64_t>::max()));
      return;
    case gp::FieldDescriptor::CPPTYPE_DOUBLE:
      r.SetDouble(&message, &field, parse_number(path, field, value));
      return;
    case gp::FieldDescriptor::CPPTYPE_FLOAT:
      r.SetFloat(&message, &field, static_cast<float>(parse_number(path, field, value)));
      return;
    case gp::FieldDescriptor::CPPTYPE_BOOL:
      r.SetBool(&message, &field, parse_bool(path, field, value));
      return;
    case gp::FieldDescriptor::CPPTYPE_STRING:
      r.SetString(&message, &field, value);
      return;
    case gp::FieldDescriptor::CPPTYPE_ENUM: {
      const gp::EnumValueDescriptor* named = field.enum_type()->FindValueByName(value);
      if (named == nullptr) {
        std::string names;
        for (int i = 0; i < field.enum_type()->value_count(); ++i) {
          names += (i ? ", " : "") + field.enum_type()->value(i)->name();
        }
        bad_value(path, value, "one of " + names);
      }
      r.SetEnum(&message, &field, named);
      return;
    }
    case gp::FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  TRIDENT_FAIL("set_scalar on message field ", field.full_name());
}

void set_repeated(gp::Message& message, const gp::FieldDescriptor& field, const std::string& path,
                  const std::string& value) {
  const gp::Reflection& r = *message.GetReflection();
  TRIDENT_USER_CHECK(field.cpp_type() == gp::FieldDescriptor::CPPTYPE_STRING, "--set ", path,
                     ": only lists of strings can be set from the command line; edit the "
                     "textproto for ",
                     path);
  r.ClearField(&message, &field);
  if (value.empty()) return;  // "--set grpo.stop=" empties the list
  for (const std::string& item : split(value, ',')) r.AddString(&message, &field, item);
}

}  // namespace

void apply_override(TridentConfig& config, const std::string& assignment) {
  const auto equals = assignment.find('=');
  TRIDENT_USER_CHECK(equals != std::string::npos, "--set expects path.to.field=value (e.g. ",
                     "parallel.ep=4), got '", assignment, "'");
  const std::string path = trim(assignment.substr(0, equals));
  const std::string value = trim(assignment.substr(equals + 1));
  TRIDENT_USER_CHECK(!path.empty(), "--set '", assignment, "': the field path before '=' is empty");

  gp::Message* message = &config;
  std::string walked;
  const std::vector<std::string> parts = split(path, '.');
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& name = parts[i];
    const gp::Descriptor& descriptor = *message->GetDescriptor();
    const gp::FieldDescriptor* field = descriptor.FindFieldByName(name);
    const std::string where = walked.empty() ? "the top level" : walked;
    walked += (walked.empty() ? "" : ".") + name;
    if (field == nullptr) {
      const std::string prefix = where == "the top level" ? "" : where + ".";
      TRIDENT_USER_FAIL("--set ", assignment, ": unknown config field '", walked, "'",
                        detail::did_you_mean(descriptor, name, prefix, '\''), "; valid fields at ",
                        where, ": ", detail::field_list(descriptor));
    }
    const bool last = i + 1 == parts.size();
    if (field->cpp_type() == gp::FieldDescriptor::CPPTYPE_MESSAGE) {
      TRIDENT_USER_CHECK(!last, "--set ", assignment, ": ", walked,
                         " is a message, set one of its fields: ", walked, ".{",
                         detail::field_list(*field->message_type()), "}");
      TRIDENT_USER_CHECK(!field->is_repeated(), "--set ", assignment, ": ", walked,
                         " is a list of messages and cannot be set from the command line");
      message = message->GetReflection()->MutableMessage(message, field);
      continue;
    }
    TRIDENT_USER_CHECK(last, "--set ", assignment, ": ", walked, " is a ",
                       detail::field_type_name(*field), ", it has no field '", parts[i + 1], "'");
    if (field->is_repeated()) {
      set_repeated(*message, *field, walked, value);
    } else {
      set_scalar(*message, *field, walked, value);
    }
  }
}

void apply_overrides(TridentConfig& config, const std::vector<std::string>& assignments) {
  for (const std::string& assignment : assignments) apply_override(config, assignment);
}

}  // namespace trident::config
