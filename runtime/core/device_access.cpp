#include "runtime/core/device_access.h"

#include <omp.h>

namespace trident {
namespace {
thread_local int device_code_depth = 0;
}  // namespace

DeviceCode::DeviceCode() { ++device_code_depth; }
DeviceCode::~DeviceCode() { --device_code_depth; }

// An OpenMP team is opened only by op kernels (and the parameter initialisation, which writes
// host memory): its worker threads run the body of the kernel whose scope opened it.
bool in_device_code() { return device_code_depth > 0 || in_openmp_team(); }

bool in_openmp_team() { return omp_in_parallel() != 0; }

}  // namespace trident
