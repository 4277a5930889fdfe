// CPU feature detection, done once. Compiled for the baseline only.
#include "imkern/dispatch.hpp"

#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif
#if defined(IMKERN_X86) && defined(_MSC_VER)
#include <intrin.h>
#elif defined(IMKERN_X86) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif

namespace imkern {

const char* isa_name(Isa i) {
  switch (i) {
    case Isa::baseline: return "baseline";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "?";
}

#if defined(IMKERN_X86) && defined(_MSC_VER)
// Windows (clang-cl): CPUID and XGETBV directly (__builtin_cpu_supports needs compiler-rt,
// which the MSVC toolchain does not link). The same levels as below: AVX-512 F/BW/CD/DQ/VL
// + AVX2/FMA/BMI2 with zmm state enabled by the OS; AVX2 + FMA/BMI2/F16C with ymm state.
#if defined(__clang__)
__attribute__((target("xsave")))
#endif
static Isa detect() {
  int r[4];
  __cpuid(r, 0);
  if (r[0] < 7) return Isa::baseline;
  __cpuid(r, 1);
  const unsigned ecx1 = static_cast<unsigned>(r[2]);
  const bool fma = ecx1 >> 12 & 1, osxsave = ecx1 >> 27 & 1, f16c = ecx1 >> 29 & 1;
  if (!osxsave) return Isa::baseline;
  const unsigned long long xcr0 = _xgetbv(0);
  __cpuidex(r, 7, 0);
  const unsigned ebx7 = static_cast<unsigned>(r[1]);
  const bool avx2 = ebx7 >> 5 & 1, bmi2 = ebx7 >> 8 & 1;
  const bool avx512 = (ebx7 >> 16 & 1) && (ebx7 >> 17 & 1) && (ebx7 >> 28 & 1) && (ebx7 >> 30 & 1) && (ebx7 >> 31 & 1);
  const bool ymm = (xcr0 & 0x6) == 0x6, zmm = (xcr0 & 0xE6) == 0xE6;
  if (ymm && zmm && avx512 && avx2 && fma && bmi2) return Isa::avx512;
  if (ymm && avx2 && fma && bmi2 && f16c) return Isa::avx2;
  return Isa::baseline;
}
#else
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
#endif

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

static bool feature_detected(CpuFeature f) {
#if defined(IMKERN_X86) && defined(_MSC_VER)
  int r[4];
  __cpuid(r, 0);
  if (r[0] < 7) return false;
  __cpuidex(r, 7, 0);
  const unsigned ecx7 = static_cast<unsigned>(r[2]);
  if (f == CpuFeature::avxvnni) {
    if (r[0] < 1) return false;  // the highest subleaf of leaf 7
    __cpuidex(r, 7, 1);
    return (static_cast<unsigned>(r[0]) >> 4 & 1) != 0;  // CPUID.(EAX=7, ECX=1):EAX[4]
  }
  return f == CpuFeature::avx512vnni ? (ecx7 >> 11 & 1) != 0 : (ecx7 >> 1 & 1) != 0;
#elif defined(IMKERN_X86) && (defined(__GNUC__) || defined(__clang__))
  if (f == CpuFeature::avxvnni) {
    // CPUID.(EAX=7, ECX=1):EAX[4] (older compilers' __builtin_cpu_supports lack the name);
    // the OS's ymm state is checked by the avx2 level it requires.
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || a < 1) return false;
    __get_cpuid_count(7, 1, &a, &b, &c, &d);
    return (a >> 4 & 1) != 0;
  }
  __builtin_cpu_init();
  return f == CpuFeature::avx512vnni ? __builtin_cpu_supports("avx512vnni") != 0
                                     : __builtin_cpu_supports("avx512vbmi") != 0;
#else
  (void)f;
  return false;
#endif
}

// Whether IMKERN_CPU_DISABLE names the feature: its comma-separated items compared with the
// name after trimming blanks, ignoring case (" avxvnni, AVX512VNNI" hides both). Items that
// name no feature are ignored here; the Python package warns about them at import.
static bool feature_disabled(const char* name) {
  const char* s = std::getenv("IMKERN_CPU_DISABLE");
  if (!s) return false;
  const std::string list(s);
  const size_t n = std::strlen(name);
  size_t b = 0;
  while (b <= list.size()) {
    size_t e = list.find(',', b);
    if (e == std::string::npos) e = list.size();
    size_t i = b, j = e;
    while (i < j && std::isspace(static_cast<unsigned char>(list[i]))) ++i;
    while (j > i && std::isspace(static_cast<unsigned char>(list[j - 1]))) --j;
    if (j - i == n) {
      size_t k = 0;
      while (k < n && std::tolower(static_cast<unsigned char>(list[i + k])) == name[k]) ++k;
      if (k == n) return true;
    }
    b = e + 1;
  }
  return false;
}

const char* cpu_feature_name(CpuFeature f) {
  switch (f) {
    case CpuFeature::avx512vnni: return "avx512vnni";
    case CpuFeature::avx512vbmi: return "avx512vbmi";
    case CpuFeature::avxvnni: return "avxvnni";
  }
  return "?";
}

bool cpu_has(CpuFeature f) {
  static const bool has[kCpuFeatureCount] = {
      isa_supported() == Isa::avx512 && feature_detected(CpuFeature::avx512vnni) && !feature_disabled("avx512vnni"),
      isa_supported() == Isa::avx512 && feature_detected(CpuFeature::avx512vbmi) && !feature_disabled("avx512vbmi"),
      static_cast<int>(isa_supported()) >= static_cast<int>(Isa::avx2) && feature_detected(CpuFeature::avxvnni) &&
          !feature_disabled("avxvnni")};
  return has[static_cast<int>(f)];
}

// The L3 the first CPU shares (sysfs; glibc's sysconf may report the sum over all of a
// package's L3 slices, which a thread cannot use); else sysconf; else 8 MiB.
static int64_t l3_from_sysfs() {
#if defined(__linux__)
  for (int i = 0; i < 8; ++i) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    FILE* f = std::fopen((dir + "level").c_str(), "r");
    if (!f) break;
    int level = 0;
    const bool ok = std::fscanf(f, "%d", &level) == 1;
    std::fclose(f);
    if (!ok || level != 3) continue;
    f = std::fopen((dir + "size").c_str(), "r");
    if (!f) return -1;
    long long v = 0;
    char unit = 0;
    const int got = std::fscanf(f, "%lld%c", &v, &unit);
    std::fclose(f);
    if (got < 1 || v <= 0) return -1;
    if (got == 2 && (unit == 'K' || unit == 'k')) v <<= 10;
    else if (got == 2 && (unit == 'M' || unit == 'm')) v <<= 20;
    return static_cast<int64_t>(v);
  }
#endif
  return -1;
}

int64_t last_level_cache_bytes() {
  static const int64_t bytes = [] {
    int64_t v = l3_from_sysfs();
#if defined(_SC_LEVEL3_CACHE_SIZE)
    if (v <= 0) v = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (v <= 0) v = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    return v > 0 ? v : int64_t(8) << 20;
  }();
  return bytes;
}

}  // namespace imkern
