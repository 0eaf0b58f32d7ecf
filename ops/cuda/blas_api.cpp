#include "ops/cuda/blas_api.h"

#include "ops/cuda/library_loader.h"

namespace trident::ops::cuda {
namespace {

struct Loaded {
  BlasApi api;
  bool ok = false;
  std::string reason;
};

Loaded load() {
  Loaded loaded;
  const std::string name = blas_library_name();
  void* library = detail::open_toolkit_library(name, "cuBLAS", loaded.reason);
  if (library == nullptr) return loaded;
  loaded.ok = true;
#define TRIDENT_BLAS_RESOLVE(name) \
  loaded.ok = loaded.ok && detail::resolve(library, "cublas" #name, loaded.api.name, loaded.reason);
  TRIDENT_BLAS_FUNCTIONS(TRIDENT_BLAS_RESOLVE)
#undef TRIDENT_BLAS_RESOLVE
  if (!loaded.ok) loaded.reason = name + ": " + loaded.reason;
  return loaded;
}

}  // namespace

std::string blas_library_name() { return "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR); }

const BlasApi* try_blas(std::string* reason) {
  static const Loaded library = load();  // initialised once, thread-safe
  if (!library.ok && reason != nullptr) *reason = library.reason;
  return library.ok ? &library.api : nullptr;
}

}  // namespace trident::ops::cuda
