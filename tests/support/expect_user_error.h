#pragma once
// The check most tests of bad input make: the call throws a UserError (not an internal error or
// nothing) and its message names what the user has to fix, every fragment of it.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "runtime/core/error.h"

namespace trident::testing {

template <typename F>
void expect_user_error(F&& body, const std::vector<std::string>& fragments) {
  try {
    body();
    ADD_FAILURE() << "expected a UserError";
  } catch (const UserError& e) {
    for (const std::string& fragment : fragments) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
          << "'" << fragment << "' not in: " << e.what();
    }
  }
}

// The message of the Error that `body` throws, or "no error": for checks of internal errors,
// whose kind is not the point but whose words are.
template <typename F>
std::string error_message(F&& body) {
  try {
    body();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace trident::testing
