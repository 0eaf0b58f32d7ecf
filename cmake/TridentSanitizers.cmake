# Sanitizer and fuzzing builds (docs/hardening.md). Included before any target is defined, so
# the flags reach every library, test and tool of the build; each variant lives in a build
# directory of its own (scripts/test.sh --sanitize address|thread, scripts/fuzz.sh).
#
#   TRIDENT_SANITIZE=address  AddressSanitizer + UndefinedBehaviorSanitizer (any UB is fatal)
#   TRIDENT_SANITIZE=thread   ThreadSanitizer
#   TRIDENT_FUZZ=ON           libFuzzer coverage on everything, and the fuzz/ targets linked with
#                             libFuzzer's driver (clang only); combine it with address.
# Flags apply to C and C++ only: nvcc never sees them (sanitizer builds set TRIDENT_CUDA=OFF).
set(TRIDENT_SANITIZE "" CACHE STRING "Sanitizer build: empty, address (ASan+UBSan) or thread")
set_property(CACHE TRIDENT_SANITIZE PROPERTY STRINGS "" address thread)
option(TRIDENT_FUZZ "Build the libFuzzer targets under fuzz/ (clang)" OFF)

set(trident_lang "$<COMPILE_LANGUAGE:C,CXX>")
if(TRIDENT_SANITIZE STREQUAL "address")
  set(trident_san_flags -fsanitize=address,undefined -fno-sanitize-recover=undefined
      -fno-omit-frame-pointer)
elseif(TRIDENT_SANITIZE STREQUAL "thread")
  set(trident_san_flags -fsanitize=thread -fno-omit-frame-pointer)
elseif(NOT TRIDENT_SANITIZE STREQUAL "")
  message(FATAL_ERROR "TRIDENT_SANITIZE='${TRIDENT_SANITIZE}': valid values are address, thread "
                      "or empty")
endif()
if(trident_san_flags)
  if(TRIDENT_CUDA STREQUAL "ON")
    message(FATAL_ERROR "TRIDENT_SANITIZE=${TRIDENT_SANITIZE} with TRIDENT_CUDA=ON: sanitizer "
                        "builds are CPU only (set TRIDENT_CUDA=OFF)")
  endif()
  add_compile_options("$<${trident_lang}:${trident_san_flags}>")
  add_link_options(${trident_san_flags})
  message(STATUS "Trident: sanitizer build (${TRIDENT_SANITIZE}): ${trident_san_flags}")
endif()

# The project's warning flags are GCC's; clang does not know -Wshadow=local and says so for
# every file of a sanitizer build.
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang" AND (trident_san_flags OR TRIDENT_FUZZ))
  add_compile_options("$<${trident_lang}:-Wno-unknown-warning-option>")
endif()

if(TRIDENT_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "TRIDENT_FUZZ=ON needs clang (libFuzzer): configure with "
                        "-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang")
  endif()
  add_compile_options("$<${trident_lang}:-fsanitize=fuzzer-no-link>")
  message(STATUS "Trident: libFuzzer coverage instrumentation on")
endif()
