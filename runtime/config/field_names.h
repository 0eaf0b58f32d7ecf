#pragma once
// Helpers shared by the textproto loader and the --set parser: both must tell the user which
// fields exist when a name is wrong, so the listing and the "did you mean" live in one place.

#include <google/protobuf/descriptor.h>

#include <string>

namespace trident::config::detail {

// "pp, dp, tp, ..." in declaration order.
std::string field_list(const google::protobuf::Descriptor& message);

// " (did you mean 'parallel.pp' or 'parallel.ep'?)" naming the fields closest to `name` by edit
// distance (each written as prefix + field inside `quote`), or "" when none is reasonably close.
std::string did_you_mean(const google::protobuf::Descriptor& message, const std::string& name,
                         const std::string& prefix, char quote);

// "int64", "double", "bool", "string", "list of strings", "message" — for error messages.
std::string field_type_name(const google::protobuf::FieldDescriptor& field);

}  // namespace trident::config::detail
