#include "ops/cuda/blas_lt_api.h"

#include "ops/cuda/library_loader.h"
#include "runtime/core/error.h"

namespace trident::ops::cuda {
namespace {

struct Loaded {
  BlasLtApi api;
  bool ok = false;
  std::string reason;
};

Loaded load() {
  Loaded loaded;
  const std::string name = blas_lt_library_name();
  void* library = detail::open_toolkit_library(name, "cuBLASLt", loaded.reason);
  if (library == nullptr) return loaded;
  loaded.ok = true;
#define TRIDENT_BLAS_LT_RESOLVE(name) \
  loaded.ok =                         \
      loaded.ok && detail::resolve(library, "cublasLt" #name, loaded.api.name, loaded.reason);
  TRIDENT_BLAS_LT_FUNCTIONS(TRIDENT_BLAS_LT_RESOLVE)
#undef TRIDENT_BLAS_LT_RESOLVE
  if (!loaded.ok) loaded.reason = name + ": " + loaded.reason;
  return loaded;
}

const Loaded& loaded() {
  static const Loaded library = load();  // initialised once, thread-safe
  return library;
}

}  // namespace

std::string blas_lt_library_name() { return "libcublasLt.so." + std::to_string(CUBLAS_VER_MAJOR); }

const BlasLtApi* try_blas_lt(std::string* reason) {
  const Loaded& l = loaded();
  if (!l.ok && reason != nullptr) *reason = l.reason;
  return l.ok ? &l.api : nullptr;
}

const BlasLtApi& blas_lt() {
  std::string reason;
  const BlasLtApi* api = try_blas_lt(&reason);
  if (api == nullptr) TRIDENT_FAIL_KIND(ErrorKind::Cuda, reason);
  return *api;
}

bool blas_lt_loaded() { return detail::library_loaded(blas_lt_library_name()); }

}  // namespace trident::ops::cuda
