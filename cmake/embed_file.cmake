# Turns one file into a C byte array compiled into the binary (e.g. api/openapi.yaml served at
# GET /openapi.yaml), so a deployed server never depends on files beside it. Run by the build in
# script mode: cmake -DIN=file -DOUT=file.c -DNAME=symbol -P embed_file.cmake
# Defines `const unsigned char NAME[]` (the bytes plus a terminating NUL) and
# `const size_t NAME_len` (the byte count without the NUL); see server/openapi_embed.h.
if(NOT IN OR NOT OUT OR NOT NAME)
  message(FATAL_ERROR "embed_file.cmake needs -DIN, -DOUT and -DNAME")
endif()
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR len "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
get_filename_component(base ${IN} NAME)
set(body "/* Generated from ${base} by cmake/embed_file.cmake. Do not edit. */\n")
string(APPEND body "#include <stddef.h>\n\n")
string(APPEND body "extern const unsigned char ${NAME}[];\nextern const size_t ${NAME}_len;\n\n")
string(APPEND body "const unsigned char ${NAME}[] = {${hex} 0x00};\n")
string(APPEND body "const size_t ${NAME}_len = ${len};\n")
file(WRITE ${OUT}.tmp "${body}")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
