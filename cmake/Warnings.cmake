# Project-wide settings as INTERFACE targets, linked by every library and executable.
add_library(walvault_warnings INTERFACE)
target_compile_options(walvault_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion
  -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual
  -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough)
if(WALVAULT_WERROR)
  target_compile_options(walvault_warnings INTERFACE -Werror)
endif()

add_library(walvault_settings INTERFACE)
target_include_directories(walvault_settings INTERFACE ${PROJECT_SOURCE_DIR})
target_compile_options(walvault_settings INTERFACE -fno-omit-frame-pointer)
if(WALVAULT_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "WALVAULT_FUZZ needs clang (libFuzzer): CXX=clang++-14 (tests/fuzz/run.sh sets it)")
  endif()
  # Every library gets libFuzzer's coverage and the sanitizers; only the targets link its main.
  target_compile_options(walvault_settings INTERFACE -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined)
  target_link_options(walvault_settings INTERFACE -fsanitize=address,undefined)
elseif(WALVAULT_SANITIZE)
  target_compile_options(walvault_settings INTERFACE -fsanitize=address,undefined -fno-sanitize-recover=undefined)
  target_link_options(walvault_settings INTERFACE -fsanitize=address,undefined)
endif()
