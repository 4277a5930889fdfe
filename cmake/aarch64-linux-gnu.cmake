# Cross compile for 64-bit Arm Linux with Debian's / Ubuntu's cross toolchain
# (apt-get install g++-aarch64-linux-gnu); programs run under qemu-aarch64 (apt-get install
# qemu-user), which CMake uses as the emulator for try_run and ctest. See .ci/cross-aarch64.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(_triple aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${_triple}-gcc)
set(CMAKE_CXX_COMPILER ${_triple}-g++)
set(CMAKE_FIND_ROOT_PATH /usr/${_triple})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# Packages (find_package(imkern) of the example): the install prefix given by the caller and
# the target root.
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

find_program(_qemu qemu-aarch64)
if(_qemu)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${_qemu} -L /usr/${_triple})
endif()
