// Linked into every fuzz target: libFuzzer (and replay_main.cpp) call this once before the
// first input. The parsers' logging and HDF5's own error printing would otherwise flood the
// fuzzer's output at thousands of inputs a second; findings still print (fuzz_util.h).
#include "runtime/core/logging.h"
#include "runtime/io/checkpoint_hdf5.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  trident::configure_logging({trident::LogLevel::Off, false});
  trident::io::h5::silence_errors();
  return 0;
}
