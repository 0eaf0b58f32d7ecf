# TRIDENT_CUDA=AUTO builds the CUDA ops wherever nvcc is found; ON insists; OFF skips.
# The CUDA targets compile and link on machines without a GPU; they only run on one.
set(TRIDENT_HAVE_CUDA OFF)
if(NOT TRIDENT_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      # Hopper (H100/H200) machine code plus PTX so newer GPUs can JIT it.
      set(CMAKE_CUDA_ARCHITECTURES "90-real;90-virtual")
    endif()
    enable_language(CUDA)
    # CMake 3.25 knows no C++20 flag for nvcc; CUDA sources are C++17 (headers they include must be too).
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    # CMake 3.25.1 (Debian 12) stops in FindCUDAToolkit when the toolkit has no libnvToolsExt, as
    # CUDA 13 has not (only the header-only nvtx3). An empty stand-in lets it finish; nothing
    # in Trident links nvToolsExt.
    get_filename_component(_cuda_root "${CMAKE_CUDA_COMPILER}" DIRECTORY)
    get_filename_component(_cuda_root "${_cuda_root}" DIRECTORY)
    find_library(TRIDENT_NVTOOLSEXT_LIBRARY nvToolsExt HINTS ${_cuda_root}
                 PATH_SUFFIXES lib64 lib NO_DEFAULT_PATH)
    if(NOT TRIDENT_NVTOOLSEXT_LIBRARY AND NOT TARGET CUDA::nvToolsExt)
      add_library(CUDA::nvToolsExt INTERFACE IMPORTED)
    endif()
    find_package(CUDAToolkit REQUIRED)
    # NCCL and cuDNN ship no CMake package: look for them inside the toolkit.
    set(_cuda_roots ${CUDAToolkit_LIBRARY_ROOT} ${CUDAToolkit_TARGET_DIR} /usr/local/cuda)
    find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${_cuda_roots} PATH_SUFFIXES include)
    find_library(NCCL_LIBRARY nccl HINTS ${_cuda_roots} PATH_SUFFIXES lib lib64)
    find_path(CUDNN_INCLUDE_DIR cudnn.h HINTS ${_cuda_roots} PATH_SUFFIXES include)
    find_library(CUDNN_LIBRARY cudnn HINTS ${_cuda_roots} PATH_SUFFIXES lib64 lib)
    if(NOT NCCL_INCLUDE_DIR OR NOT NCCL_LIBRARY OR NOT CUDNN_INCLUDE_DIR OR NOT CUDNN_LIBRARY)
      message(FATAL_ERROR "CUDA toolkit found but NCCL (${NCCL_LIBRARY}) or cuDNN (${CUDNN_LIBRARY}) is missing; set TRIDENT_CUDA=OFF to build without CUDA")
    endif()
    add_library(trident::nccl UNKNOWN IMPORTED)
    set_target_properties(trident::nccl PROPERTIES IMPORTED_LOCATION ${NCCL_LIBRARY}
                          INTERFACE_INCLUDE_DIRECTORIES ${NCCL_INCLUDE_DIR})
    add_library(trident::cudnn UNKNOWN IMPORTED)
    set_target_properties(trident::cudnn PROPERTIES IMPORTED_LOCATION ${CUDNN_LIBRARY}
                          INTERFACE_INCLUDE_DIRECTORIES ${CUDNN_INCLUDE_DIR})
    set(TRIDENT_HAVE_CUDA ON)
    message(STATUS "Trident: CUDA ops ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, archs ${CMAKE_CUDA_ARCHITECTURES})")
  elseif(TRIDENT_CUDA STREQUAL "ON")
    message(FATAL_ERROR "TRIDENT_CUDA=ON but no CUDA compiler was found (looked for nvcc on PATH and /usr/local/cuda/bin/nvcc)")
  else()
    message(STATUS "Trident: CUDA ops OFF (no nvcc found)")
  endif()
endif()
