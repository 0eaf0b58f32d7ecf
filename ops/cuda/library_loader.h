#pragma once
// Opening one of the CUDA toolkit's large libraries on first use instead of linking it
// (cuBLASLt, cuBLAS: hundreds of MB whose relocation would cost every process at start-up):
// by file name first, so that LD_LIBRARY_PATH and the executable's run path decide, then from
// the toolkit's directory found at configure time.
#include <dlfcn.h>

#include <string>

namespace trident::ops::cuda::detail {

// The library `name` (e.g. "libcublas.so.13"), kept open for the life of the process; null when
// it cannot be opened, with `reason` saying where it was sought and what the loader said, and
// naming `what` (e.g. "cuBLAS").
void* open_toolkit_library(const std::string& name, const char* what, std::string& reason);

// What the loader said last ("unknown dlopen error" when nothing).
std::string loader_error();

// Resolves `symbol` in `library` into `out`; false, with `reason`, when it is missing.
template <typename Function>
bool resolve(void* library, const char* symbol, Function& out, std::string& reason) {
  out = reinterpret_cast<Function>(::dlsym(library, symbol));
  if (out == nullptr) reason = std::string("missing function ") + symbol + ": " + loader_error();
  return out != nullptr;
}

// Whether this process has `name` loaded already (opens nothing).
bool library_loaded(const std::string& name);

}  // namespace trident::ops::cuda::detail
