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

# trident_protobuf(TARGET PROTO)
# C++ code for PROTO (a .proto in the calling folder), compiled into TARGET. protoc writes it into
# TARGET's root of generated headers at the proto's source path
# (build/include/trident_config.generated/runtime/config/trident.pb.h), which is on TARGET's
# public include path. The header sources include is thus the very file the protoc step
# declares as its output: ninja regenerates it before compiling anything that includes it, and
# recompiles all of those. (Through a link into another folder, ninja saw the included path as a
# file nobody makes, and the first build after a .proto change compiled some of them against the
# old header.)
function(trident_protobuf target proto)
  get_filename_component(abs ${proto} ABSOLUTE)
  file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${abs})
  get_filename_component(rel_dir ${rel} DIRECTORY)
  get_filename_component(base ${proto} NAME_WLE)
  set(gen_root ${PROJECT_BINARY_DIR}/include/${target}.generated)
  # A build folder configured before this scheme holds a link here: replace it by a folder.
  if(IS_SYMLINK ${gen_root}/${rel_dir})
    file(REMOVE ${gen_root}/${rel_dir})
  endif()
  file(MAKE_DIRECTORY ${gen_root}/${rel_dir})
  set(header ${gen_root}/${rel_dir}/${base}.pb.h)
  set(source ${gen_root}/${rel_dir}/${base}.pb.cc)
  # The proto's own folder is protoc's import root, as protobuf_generate_cpp() had it: the
  # generated code names the file "trident.proto" and its .pb.cc includes "trident.pb.h".
  get_filename_component(proto_dir ${abs} DIRECTORY)
  add_custom_command(
    OUTPUT ${header} ${source}
    COMMAND protobuf::protoc --cpp_out=${gen_root}/${rel_dir} -I ${proto_dir} ${abs}
    DEPENDS ${abs} protobuf::protoc
    COMMENT "protoc ${rel}"
    VERBATIM)
  target_sources(${target} PRIVATE ${header} ${source})
  # Generated code is not ours: no -Werror there.
  set_source_files_properties(${source} PROPERTIES COMPILE_OPTIONS "-Wno-error")
  target_include_directories(${target} PUBLIC ${gen_root})
endfunction()

# trident_include_root(TARGET SCOPE DIRS dir...)
# Every header is included by its path from the repository root ("parallel/comm/work.h"), but a
# target must see only the headers of its own layer and of the layers below it. So instead of
# the repository root, each layer exposes a folder of its own, build/include/<target>/, holding
# one link per source folder of the layer (build/include/trident_parallel/parallel ->
# <source>/parallel); generated headers have a root of their own (trident_protobuf). A layer sees its own root and,
# through its PUBLIC links, the roots of the layers below; a header of a layer above is simply
# not on its include path, so an upward include fails to compile.
function(trident_include_root target scope)
  cmake_parse_arguments(ARG "" "" "DIRS" ${ARGN})
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
endfunction()

# trident_library(NAME DIRS dir... [DEPS ...] [PRIVATE_DEPS ...] [EXCLUDE regex...])
# Builds every .cpp under the listed directories into one static library whose include root
# holds exactly those directories.
function(trident_library name)
  cmake_parse_arguments(ARG "" "" "DIRS;DEPS;PRIVATE_DEPS;EXCLUDE" ${ARGN})
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
    trident_include_root(${name} INTERFACE DIRS ${ARG_DIRS})
    target_link_libraries(${name} INTERFACE ${ARG_DEPS} ${ARG_PRIVATE_DEPS})
    return()
  endif()
  add_library(${name} STATIC ${sources})
  trident_include_root(${name} PUBLIC DIRS ${ARG_DIRS})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  trident_warnings(${name})
endfunction()
