# Warning flags, -Werror and the sanitizer build, applied to every target.
set(SMTPSCOPE_WARNINGS
    -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
    -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wundef
    -Wcast-qual -Wwrite-strings -Wvla -Wnull-dereference)
add_compile_options(${SMTPSCOPE_WARNINGS})
if(SMTPSCOPE_WERROR)
  add_compile_options(-Werror)
endif()
if(SMTPSCOPE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
