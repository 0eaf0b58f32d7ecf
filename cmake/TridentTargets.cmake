# Helpers so that each layer is one library with the same warning policy and its own include
# root (docs/layers.md).

function(trident_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE
      $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow=local -Wno-unused-parameter>)
    if(TRIDENT_WERROR)
      target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
    endif()
  endif()
endfunction()

# trident_include_root(TARGET SCOPE DIRS dir...)
# Every header is included by its path from the repository root ("parallel/comm/work.h"), but a
# target must see only the headers of its own layer and of the layers below it. So instead of
# the repository root, each layer exposes a folder of its own, build/include/<target>/, holding
# one link per source folder of the layer (build/include/trident_parallel/parallel ->
# <source>/parallel), plus the folders of its generated headers. A layer sees its own root and,
# through its PUBLIC links, the roots of the layers below; a header of a layer above is simply
# not on its include path, so an upward include fails to compile.
function(trident_include_root target scope)
  cmake_parse_arguments(ARG "" "" "DIRS;GENERATED" ${ARGN})
  set(root ${PROJECT_BINARY_DIR}/include/${target})
  foreach(dir ${ARG_DIRS})
    file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${dir})
    get_filename_component(parent ${root}/${rel} DIRECTORY)
    file(MAKE_DIRECTORY ${parent})
    if(NOT IS_SYMLINK ${root}/${rel})
      file(CREATE_LINK ${dir} ${root}/${rel} SYMBOLIC)
    endif()
  endforeach()
  target_include_directories(${target} ${scope} ${root})
  # Generated headers (protobuf) live under the build tree at their source path.
  foreach(dir ${ARG_GENERATED})
    file(RELATIVE_PATH rel ${PROJECT_BINARY_DIR} ${dir})
    set(gen_root ${PROJECT_BINARY_DIR}/include/${target}.generated)
    get_filename_component(parent ${gen_root}/${rel} DIRECTORY)
    file(MAKE_DIRECTORY ${parent})
    if(NOT IS_SYMLINK ${gen_root}/${rel})
      file(CREATE_LINK ${dir} ${gen_root}/${rel} SYMBOLIC)
    endif()
    target_include_directories(${target} ${scope} ${gen_root})
  endforeach()
endfunction()

# trident_library(NAME DIRS dir... [DEPS ...] [PRIVATE_DEPS ...] [EXCLUDE regex...]
#                 [GENERATED dir...])
# Builds every .cpp under the listed directories into one static library whose include root
# holds exactly those directories (and the GENERATED build folders).
function(trident_library name)
  cmake_parse_arguments(ARG "" "" "DIRS;DEPS;PRIVATE_DEPS;EXCLUDE;GENERATED" ${ARGN})
  set(sources)
  foreach(dir ${ARG_DIRS})
    file(GLOB_RECURSE found CONFIGURE_DEPENDS ${dir}/*.cpp)
    list(APPEND sources ${found})
  endforeach()
  foreach(pattern ${ARG_EXCLUDE})
    list(FILTER sources EXCLUDE REGEX "${pattern}")
  endforeach()
  if(NOT sources)
    # A layer with no sources yet is a header-only interface; it becomes STATIC once it has code.
    add_library(${name} INTERFACE)
    trident_include_root(${name} INTERFACE DIRS ${ARG_DIRS} GENERATED ${ARG_GENERATED})
    target_link_libraries(${name} INTERFACE ${ARG_DEPS} ${ARG_PRIVATE_DEPS})
    return()
  endif()
  add_library(${name} STATIC ${sources})
  trident_include_root(${name} PUBLIC DIRS ${ARG_DIRS} GENERATED ${ARG_GENERATED})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  trident_warnings(${name})
endfunction()
