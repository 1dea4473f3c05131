# Turns one text file into a C file defining `const char NAME[]` (its bytes and a NUL), so the binary
# carries it. Called at build time: cmake -DOUT=... -DSOURCE=... -DNAME=... -P embed_text.cmake
file(READ "${SOURCE}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
get_filename_component(name "${SOURCE}" NAME)
file(WRITE "${OUT}.tmp" "/* Generated from ${name} by cmake/embed_text.cmake: do not edit. */\nconst char ${NAME}[] = {${hex}0x00};\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
