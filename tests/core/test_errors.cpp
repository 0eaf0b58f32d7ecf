#include <gtest/gtest.h>

#include "runtime/core/error.h"
#include "runtime/core/logging.h"

namespace trident {
namespace {

TEST(Errors, MessageCarriesRankAndLocation) {
  set_current_rank(3);
  try {
    TRIDENT_USER_CHECK(1 + 1 == 3, "parallel.ep = 3 does not divide model.n_routed_experts = 8");
    FAIL() << "expected a throw";
  } catch (const UserError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("[rank 3]"), std::string::npos) << what;
    EXPECT_NE(what.find("tests/core/test_errors.cpp:"), std::string::npos) << what;
    EXPECT_NE(what.find("parallel.ep = 3"), std::string::npos) << what;
    EXPECT_EQ(e.kind(), ErrorKind::User);
  }
  set_current_rank(0);
}

TEST(Errors, InternalCheckIsNotAUserError) {
  try {
    TRIDENT_CHECK(false, "detail ", 42);
    FAIL();
  } catch (const UserError&) {
    FAIL() << "internal check raised a user error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Internal);
    EXPECT_NE(std::string(e.what()).find("detail 42"), std::string::npos);
  }
}

TEST(Errors, MpiAndHdf5Variants) {
  EXPECT_THROW(TRIDENT_CHECK_MPI(1), Error);  // MPI_ERR_BUFFER
  EXPECT_THROW(TRIDENT_CHECK_HDF5(-1), Error);
  EXPECT_EQ(TRIDENT_CHECK_HDF5(5), 5);
}

TEST(Logging, LevelParsing) {
  EXPECT_EQ(parse_log_level("warn"), LogLevel::Warn);
  EXPECT_THROW(parse_log_level("loud"), UserError);
}

}  // namespace
}  // namespace trident
