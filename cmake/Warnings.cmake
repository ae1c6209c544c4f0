# Picky warnings, in the spirit of curl's PickyWarnings.cmake.
set(MON_WARNINGS
  -Wall -Wextra -Wpedantic -Wshadow -Wformat=2 -Wstrict-prototypes
  -Wmissing-prototypes -Wvla -Wwrite-strings -Wundef -Wimplicit-fallthrough)
if(MON_WERROR)
  list(APPEND MON_WARNINGS -Werror)
endif()
add_compile_options(${MON_WARNINGS})
