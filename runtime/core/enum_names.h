#pragma once
// The names of an enum's values, as config fields and file formats spell them. One table serves
// both directions, so parsing and printing cannot drift apart, and the message for an unknown
// name can list the choices from the same table:
//
//   constexpr EnumName<Recompute> kRecomputeNames[] = {{Recompute::kNone, "none"}, ...};
//   enum_name(kRecomputeNames, Recompute::kNone)   // "none"
//   parse_enum(kRecomputeNames, "full")            // Recompute::kFull; std::nullopt if unknown
//   enum_name_list(kRecomputeNames)                // "none, selective, full"
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace trident {

template <typename E>
struct EnumName {
  E value;
  const char* name;
};

template <typename E, size_t N>
const char* enum_name(const EnumName<E> (&names)[N], E value) {
  for (const EnumName<E>& entry : names) {
    if (entry.value == value) return entry.name;
  }
  return "?";
}

template <typename E, size_t N>
std::optional<E> parse_enum(const EnumName<E> (&names)[N], std::string_view name) {
  for (const EnumName<E>& entry : names) {
    if (name == entry.name) return entry.value;
  }
  return std::nullopt;
}

template <typename E, size_t N>
std::string enum_name_list(const EnumName<E> (&names)[N]) {
  std::string list;
  for (const EnumName<E>& entry : names) list.append(list.empty() ? "" : ", ").append(entry.name);
  return list;
}

}  // namespace trident
