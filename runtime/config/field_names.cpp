#include "runtime/config/field_names.h"

#include <algorithm>
#include <vector>

namespace trident::config::detail {

namespace gp = google::protobuf;

std::string field_list(const gp::Descriptor& message) {
  std::string out;
  for (int i = 0; i < message.field_count(); ++i) {
    if (i > 0) out += ", ";
    out += message.field(i)->name();
  }
  return out;
}

namespace {
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}
}  // namespace

std::string did_you_mean(const gp::Descriptor& message, const std::string& name,
                         const std::string& prefix, char quote) {
  std::vector<std::string> best;
  size_t best_distance = 0;
  for (int i = 0; i < message.field_count(); ++i) {
    const std::string& candidate = message.field(i)->name();
    const size_t distance = edit_distance(name, candidate);
    if (best.empty() || distance < best_distance) {
      best = {candidate};
      best_distance = distance;
    } else if (distance == best_distance) {
      best.push_back(candidate);
    }
  }
  // A suggestion further away than a third of the name is noise, not help.
  if (best.empty() || best_distance > std::max<size_t>(2, name.size() / 3)) return "";
  std::string out = " (did you mean ";
  for (size_t i = 0; i < best.size(); ++i) {
    if (i > 0) out += i + 1 == best.size() ? " or " : ", ";
    out += quote + prefix + best[i] + quote;
  }
  return out + "?)";
}

std::string field_type_name(const gp::FieldDescriptor& field) {
  std::string base;
  switch (field.cpp_type()) {
    case gp::FieldDescriptor::CPPTYPE_INT32:
    case gp::FieldDescriptor::CPPTYPE_INT64:
      base = "integer";
      break;
    case gp::FieldDescriptor::CPPTYPE_UINT32:
    case gp::FieldDescriptor::CPPTYPE_UINT64:
      base = "non-negative integer";
      break;
    case gp::FieldDescriptor::CPPTYPE_DOUBLE:
    case gp::FieldDescriptor::CPPTYPE_FLOAT:
      base = "number";
      break;
    case gp::FieldDescriptor::CPPTYPE_BOOL:
      base = "bool";
      break;
    case gp::FieldDescriptor::CPPTYPE_STRING:
      base = "string";
      break;
    case gp::FieldDescriptor::CPPTYPE_ENUM:
      base = "enum";
      break;
    case gp::FieldDescriptor::CPPTYPE_MESSAGE:
      base = "message";
      break;
  }
  return field.is_repeated() ? "list of " + base + "s" : base;
}

}  // namespace trident::config::detail
