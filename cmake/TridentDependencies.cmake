# Every external dependency comes in through a find_package target.
find_package(Threads REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(MPI REQUIRED COMPONENTS CXX)

set(HDF5_PREFER_PARALLEL ON)
find_package(HDF5 REQUIRED COMPONENTS C)
if(NOT HDF5_IS_PARALLEL)
  message(FATAL_ERROR "Trident needs parallel HDF5 (Debian: libhdf5-openmpi-dev); found a serial one at ${HDF5_INCLUDE_DIRS}")
endif()

find_package(Protobuf REQUIRED)

set(BLA_VENDOR OpenBLAS)
find_package(BLAS REQUIRED)
find_path(CBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas openblas-pthread openblas-openmp REQUIRED)

find_package(nlohmann_json 3.10 REQUIRED)

if(TRIDENT_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(TRIDENT_BUILD_BENCHMARKS)
  find_package(benchmark REQUIRED)
endif()

# One imported target for HDF5 regardless of how FindHDF5 reports it.
if(NOT TARGET trident::hdf5)
  add_library(trident::hdf5 INTERFACE IMPORTED)
  if(TARGET HDF5::HDF5)
    target_link_libraries(trident::hdf5 INTERFACE HDF5::HDF5)
  else()
    target_include_directories(trident::hdf5 INTERFACE ${HDF5_INCLUDE_DIRS})
    target_link_libraries(trident::hdf5 INTERFACE ${HDF5_C_LIBRARIES})
    target_compile_definitions(trident::hdf5 INTERFACE ${HDF5_DEFINITIONS})
  endif()
endif()

# OpenBLAS comes in a pthreads and an OpenMP build (Debian: libopenblas0-pthread,
# libopenblas0-openmp; same ABI, same soname). The pthreads build keeps a thread pool of its own
# beside the OpenMP pool the kernels run on: threads of each spin while the other works, and a
# step with 2 threads on 2 cores took twice as long as with 1 (docs/benchmarks.md). The OpenMP
# build runs its GEMMs on the kernels' pool, so Trident links it wherever it is installed (by
# path, with its directory in the run path, since the soname alone resolves to whichever build
# the system's alternatives select). Only with GCC: that build of OpenBLAS runs on GCC's OpenMP
# runtime, and clang builds (sanitizers, fuzzing) run on LLVM's, which must not share a process
# with it.
find_library(TRIDENT_OPENBLAS_OPENMP NAMES libopenblas.so.0
             PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp NO_DEFAULT_PATH)
add_library(trident::blas INTERFACE IMPORTED)
target_include_directories(trident::blas INTERFACE ${CBLAS_INCLUDE_DIR})
if(TRIDENT_OPENBLAS_OPENMP AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  get_filename_component(_openblas_dir "${TRIDENT_OPENBLAS_OPENMP}" DIRECTORY)
  target_link_libraries(trident::blas INTERFACE "${TRIDENT_OPENBLAS_OPENMP}")
  target_link_options(trident::blas INTERFACE "LINKER:-rpath,${_openblas_dir}")
  message(STATUS "Trident: OpenBLAS OpenMP build (one thread pool with the kernels): ${TRIDENT_OPENBLAS_OPENMP}")
elseif(NOT CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_link_libraries(trident::blas INTERFACE BLAS::BLAS)
  message(STATUS "Trident: pthreads OpenBLAS (${CMAKE_CXX_COMPILER_ID} builds run on another OpenMP runtime)")
else()
  target_link_libraries(trident::blas INTERFACE BLAS::BLAS)
  message(WARNING "Trident: only a pthreads OpenBLAS was found (${BLAS_LIBRARIES}); its threads "
                  "compete with the OpenMP kernels' (install libopenblas0-openmp; scripts/setup.sh does)")
endif()

# The Python interpreter that has torch, numpy, h5py and matplotlib (Debian's).
find_program(TRIDENT_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)

# PCRE2 (Debian: libpcre2-dev) runs the tokenizer's Unicode regular expressions, JIT-compiled.
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
add_library(trident::pcre2 INTERFACE IMPORTED)
target_link_libraries(trident::pcre2 INTERFACE PkgConfig::PCRE2)
