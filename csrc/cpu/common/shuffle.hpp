// IMKERN_SHUFFLE2(a, b, mask): the lanes of (a, b) picked by mask, GCC's two-operand
// __builtin_shuffle. GCC gets the builtin itself (through the inline simd::shuffle2 GCC 12
// emits slightly longer code for some runtime-built masks, measured in pool2d); Clang, which
// lacks the two-operand form, gets simd::shuffle2's lane loop (common/simd.hpp). A variadic
// macro, so masks written as braced lists pass through whole.
#pragma once
#include "common/simd.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#define IMKERN_SHUFFLE2(...) __builtin_shuffle(__VA_ARGS__)
#else
#define IMKERN_SHUFFLE2(...) ::imkern::IMKERN_ISA::simd::shuffle2(__VA_ARGS__)
#endif
