#include "ops/cuda/library_loader.h"

namespace trident::ops::cuda::detail {

std::string loader_error() {
  const char* message = ::dlerror();
  return message != nullptr ? message : "unknown dlopen error";
}

void* open_toolkit_library(const std::string& name, const char* what, std::string& reason) {
  void* library = ::dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  std::string tried;
  if (library == nullptr) tried = name + " (" + loader_error() + ")";
#ifdef TRIDENT_CUDA_LIBRARY_DIR
  if (library == nullptr) {
    const std::string path = std::string(TRIDENT_CUDA_LIBRARY_DIR) + "/" + name;
    library = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) tried += ", " + path + " (" + loader_error() + ")";
  }
#endif
  if (library == nullptr) {
    reason = std::string("could not open ") + what + ": tried " + tried +
             "; install the CUDA toolkit's cuBLAS or add its directory to LD_LIBRARY_PATH";
  }
  return library;
}

bool library_loaded(const std::string& name) {
  void* handle = ::dlopen(name.c_str(), RTLD_NOW | RTLD_NOLOAD);
  if (handle == nullptr) return false;
  ::dlclose(handle);  // balances RTLD_NOLOAD's reference
  return true;
}

}  // namespace trident::ops::cuda::detail
