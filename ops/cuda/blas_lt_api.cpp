#include "ops/cuda/blas_lt_api.h"

#include <dlfcn.h>

#include "runtime/core/error.h"

namespace trident::ops::cuda {
namespace {

struct Loaded {
  BlasLtApi api;
  bool ok = false;
  std::string reason;
};

std::string loader_error() {
  const char* message = ::dlerror();
  return message != nullptr ? message : "unknown dlopen error";
}

template <typename Function>
bool resolve(void* library, const char* symbol, Function& out, std::string& reason) {
  out = reinterpret_cast<Function>(::dlsym(library, symbol));
  if (out == nullptr) reason = std::string("missing function ") + symbol + ": " + loader_error();
  return out != nullptr;
}

Loaded load() {
  Loaded loaded;
  const std::string name = blas_lt_library_name();
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
    loaded.reason = "could not open cuBLASLt: tried " + tried +
                    "; install the CUDA toolkit's cuBLAS or add its directory to LD_LIBRARY_PATH";
    return loaded;
  }
  // The library stays open for the life of the process, as a linked one would.
  loaded.ok = true;
#define TRIDENT_BLAS_LT_RESOLVE(name) \
  loaded.ok = loaded.ok && resolve(library, "cublasLt" #name, loaded.api.name, loaded.reason);
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

bool blas_lt_loaded() {
  void* handle = ::dlopen(blas_lt_library_name().c_str(), RTLD_NOW | RTLD_NOLOAD);
  if (handle == nullptr) return false;
  ::dlclose(handle);  // balances RTLD_NOLOAD's reference
  return true;
}

}  // namespace trident::ops::cuda
