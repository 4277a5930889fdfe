// CPU feature detection, done once. Compiled for the baseline only.
#include "imkern/dispatch.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

namespace imkern {

const char* isa_name(Isa i) {
  switch (i) {
    case Isa::baseline: return "baseline";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "?";
}

static Isa detect() {
#if defined(IMKERN_X86) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  // x86-64-v4 as our avx512 variant is compiled: F, BW, CD, DQ, VL (and the OS saves zmm
  // state, which __builtin_cpu_supports checks through XGETBV in recent compilers).
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") &&
      __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2"))
    return Isa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("f16c"))
    return Isa::avx2;
#endif
  return Isa::baseline;
}

static Isa cap_from_env() {
  const char* s = std::getenv("IMKERN_CPU_ISA");
  if (!s || !*s) return Isa::avx512;
  std::string v(s);
  if (v == "baseline") return Isa::baseline;
  if (v == "avx2") return Isa::avx2;
  // "avx512" or anything unknown: no cap (the Python layer warns about unknown values).
  return Isa::avx512;
}

Isa isa_supported() {
  static const Isa s = detect();
  return s;
}

static std::atomic<int> g_active{-1};

Isa isa_active() {
  int a = g_active.load(std::memory_order_relaxed);
  if (a < 0) {
    Isa cap = cap_from_env();
    a = static_cast<int>(isa_supported()) < static_cast<int>(cap) ? static_cast<int>(isa_supported())
                                                                   : static_cast<int>(cap);
    g_active.store(a, std::memory_order_relaxed);
  }
  return static_cast<Isa>(a);
}

void isa_set_cap(Isa cap) {
  int s = static_cast<int>(isa_supported());
  int c = static_cast<int>(cap);
  g_active.store(c < s ? c : s, std::memory_order_relaxed);
}

}  // namespace imkern
