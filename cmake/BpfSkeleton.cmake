# Compile a BPF C program with clang and embed it as a libbpf skeleton
# (libbpf-bootstrap's recipe): NAME.bpf.c -> NAME.bpf.o -> NAME.skel.h.
#
#   tcd_bpf_skeleton(NAME SOURCE [DEPENDS header...] [DEFINES -DX=1...])
#
# The skeleton lands in ${TCD_SKEL_DIR}/NAME.skel.h and the object in
# ${TCD_SKEL_DIR}/NAME.bpf.o; target tcd_bpf_NAME builds both.

find_program(CLANG_EXE NAMES clang clang-16 clang-15 clang-14)
if(NOT CLANG_EXE)
  message(FATAL_ERROR "clang not found: install the Debian package 'clang'")
endif()
find_program(BPFTOOL_EXE NAMES bpftool PATHS /usr/sbin /sbin)
if(NOT BPFTOOL_EXE)
  message(FATAL_ERROR "bpftool not found: install the Debian package 'bpftool'")
endif()

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(TCD_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(TCD_BPF_ARCH arm64)
else()
  set(TCD_BPF_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()
if(CMAKE_LIBRARY_ARCHITECTURE)
  set(TCD_BPF_MULTIARCH_INC -idirafter /usr/include/${CMAKE_LIBRARY_ARCHITECTURE})
endif()

set(TCD_SKEL_DIR ${CMAKE_BINARY_DIR}/bpf)
file(MAKE_DIRECTORY ${TCD_SKEL_DIR})

function(tcd_bpf_skeleton NAME SOURCE)
  cmake_parse_arguments(ARG "" "" "DEPENDS;DEFINES" ${ARGN})
  set(obj ${TCD_SKEL_DIR}/${NAME}.bpf.o)
  set(skel ${TCD_SKEL_DIR}/${NAME}.skel.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CLANG_EXE} -g -O2 -target bpf -D__TARGET_ARCH_${TCD_BPF_ARCH}
            ${ARG_DEFINES} -Wall -Werror -I${PROJECT_SOURCE_DIR}/bpf
            -I${PROJECT_SOURCE_DIR}/bpf/include
            ${TCD_BPF_MULTIARCH_INC} -c ${SOURCE} -o ${obj}
    DEPENDS ${SOURCE} ${ARG_DEPENDS}
    COMMENT "BPF ${NAME}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND sh -c "\"${BPFTOOL_EXE}\" gen skeleton \"${obj}\" name ${NAME} > \"${skel}\""
    DEPENDS ${obj}
    COMMENT "skeleton ${NAME}.skel.h"
    VERBATIM)
  add_custom_target(tcd_bpf_${NAME} DEPENDS ${skel} ${obj})
endfunction()
