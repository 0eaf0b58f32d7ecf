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

add_library(trident::blas INTERFACE IMPORTED)
target_link_libraries(trident::blas INTERFACE BLAS::BLAS)
target_include_directories(trident::blas INTERFACE ${CBLAS_INCLUDE_DIR})

# The Python interpreter that has torch, numpy, h5py and matplotlib (Debian's).
find_program(TRIDENT_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)

# PCRE2 (Debian: libpcre2-dev) runs the tokenizer's Unicode regular expressions, JIT-compiled.
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
add_library(trident::pcre2 INTERFACE IMPORTED)
target_link_libraries(trident::pcre2 INTERFACE PkgConfig::PCRE2)
