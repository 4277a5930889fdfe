// Run-time choice of the CPU instruction set. Every file in csrc/cpu/ (except the runtime:
// dispatch.cpp, parallel.cpp) is compiled once per ISA inside namespace imkern::<isa>;
// IMKERN_CALL picks the best variant the processor supports, capped by IMKERN_CPU_ISA.
#pragma once
#include <cstdint>

namespace imkern {

enum class Isa : int { baseline = 0, avx2 = 1, avx512 = 2 };

const char* isa_name(Isa);
Isa isa_supported();   // best level this processor (and build) supports
Isa isa_active();      // the level in use: min(supported, cap); read once, cached
void isa_set_cap(Isa); // for tests and embedding code; IMKERN_CPU_ISA sets the initial cap

// Extensions beyond an ISA level's set that some kernels use where the processor has them
// (checked once): avx512vnni and avx512vbmi with AVX-512 (the avx512 level supported),
// avxvnni (AVX-VNNI: the VEX-encoded 256-bit vpdpbusd/vpdpwssd of Alder Lake, Sapphire Rapids
// and later Intel cores and of Zen 5; not an AVX-512 instruction, so kernels of the avx2 level
// may use it: that level means "no AVX-512", as IMKERN_CPU_ISA=avx2 caps it) with the avx2
// level supported. IMKERN_CPU_DISABLE, a comma-separated list of these names
// ("avx512vnni,avx512vbmi,avxvnni"; blanks and case ignored), hides them: for tests of the
// other paths and for comparisons, as OPENCV_CPU_DISABLE does. Read once, at the first call.
enum class CpuFeature : int { avx512vnni = 0, avx512vbmi = 1, avxvnni = 2 };
bool cpu_has(CpuFeature);
// The names of the features cpu_has reports, in the enum's order (for imkern.info()).
const char* cpu_feature_name(CpuFeature);
constexpr int kCpuFeatureCount = 3;

// Size of the L3 cache the first CPU shares, in bytes, as the OS reports it (8 MiB if none).
// Kernels that write more than this stream their output past the caches.
int64_t last_level_cache_bytes();

}  // namespace imkern

// Declare the same functions in every ISA namespace this build has. IMKERN_X86 is defined
// (by the build, and by the imkern::core CMake target for its users) when the library holds
// the AVX2 and AVX-512 variants; otherwise (other CPUs, IMKERN_CPU_ISAS=baseline) only the
// portable baseline exists. Embedding code calls an op as IMKERN_CALL(op, args...).
#if defined(IMKERN_X86)
#define IMKERN_DECLARE_FOR_EACH_ISA(...)   \
  namespace baseline { __VA_ARGS__ }       \
  namespace avx2 { __VA_ARGS__ }           \
  namespace avx512 { __VA_ARGS__ }
#define IMKERN_CALL(fn, ...)                                              \
  (::imkern::isa_active() == ::imkern::Isa::avx512 ? ::imkern::avx512::fn(__VA_ARGS__) \
   : ::imkern::isa_active() == ::imkern::Isa::avx2 ? ::imkern::avx2::fn(__VA_ARGS__)   \
                                                   : ::imkern::baseline::fn(__VA_ARGS__))
#else
#define IMKERN_DECLARE_FOR_EACH_ISA(...) namespace baseline { __VA_ARGS__ }
#define IMKERN_CALL(fn, ...) (::imkern::baseline::fn(__VA_ARGS__))
#endif
