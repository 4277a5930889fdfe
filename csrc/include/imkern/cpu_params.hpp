// Run-time CPU parameters: the caches of the machine (cpuid leaf 4 / AMD 0x8000001D and
// sysfs, plus a measured effective last-level cache), and the blocking and thresholds the CPU
// kernels derive from them (GEMM MC/KC/NC, the L2 blocks of conv2d and Winograd, the filters'
// strip budgets, the streaming-store threshold). Computed once per process (lazily, on first
// use), read once per kernel call; overridable for experiments and tests.
//
// The model, in the spirit of BLIS's analytical one (Low et al., "Analytical modeling is
// enough for high-performance BLIS", TOMS 2016), for an MR x NR register microkernel whose
// B sliver (KC x NR) is reused from L1 across the A slivers of an MC x KC block held in L2:
//   KC: the largest multiple of 8 with ceil(MR KC s / w) + ceil(NR KC s / w) <= W1 - 1
//       (s = sizeof(T), w = the L1 way size, W1 its ways): the A sliver streaming through L1
//       and the B sliver staying there each take whole ways, one way left for the rest (the
//       L1 rule); unless that is under half of KC2 = the largest multiple of 8 with
//       KC2^2 s <= L2 / 2 (the L2 rule: a square A block in half the L2), then KC = KC2 (a
//       tile too wide to share the L1 at a useful KC, AVX-512's 8 x 48, streams its B
//       sliver from the L2; see cpu_params.cpp);
//   MC: the A block (MC x KC) takes whole L2 ways, leaving those of one B sliver (KC x NR)
//       and one way to spare (the C tiles and lines passing through), never under half of the
//       L2, a multiple of MR, at most 128 slivers (the L2 rule of the same model, see
//       cpu_params.cpp's model_mc);
//   NC: the B panel (KC x NC) fills half of this CPU's share of the effective L3.
// Only KC changes results (a C element sums its k products in KC blocks), so KC comes from the
// nominal L1 and L2 geometry alone (fixed on a machine: same bits in every process); the measured
// cache only sets MC/NC and thresholds that never change a bit.
#pragma once
#include <cstdint>

#include "imkern/dispatch.hpp"

namespace imkern {

// The register tile of the GEMM microkernel per ISA (gemm_kernel.hpp's Blocking checks it):
// MR rows by NR columns, NR = NV vectors of the ISA's width.
constexpr int gemm_mr(Isa isa) { return isa == Isa::avx512 ? 8 : 6; }
constexpr int gemm_nr(Isa isa, int elem_bytes) {
  return (isa == Isa::avx512 ? 3 * 64 : isa == Isa::avx2 ? 2 * 32 : 2 * 16) / elem_bytes;
}

struct CacheInfo {
  int64_t bytes = 0;   // size of one instance (0: this level is absent)
  int ways = 0;        // associativity (0: unknown)
  int line = 64;       // line size in bytes
  int sets = 0;        // bytes / (ways * line) where known
  int shared = 1;      // logical CPUs sharing one instance, as the OS lists them (sysfs)
  int cpuid_shared = 0;  // "maximum threads sharing" from cpuid (the host's view in a VM; 0: unknown)
};

struct CpuCaches {
  CacheInfo l1d, l2, l3;
  int cpus = 1;                // logical CPUs this process may run on
  int64_t l3_share = 0;        // nominal share of the L3: l3 * min(1, cpus / max(shared, cpuid_shared))
  int64_t l3_effective = 0;    // measured: the largest read footprint that still runs at cache speed
  double probe_ms = 0;         // what the measurement cost
  const char* source = "default";  // "sysfs", "cpuid", "sysconf" or "default"
};

// The parameters every CPU kernel reads (once per call). Sizes in bytes unless noted.
struct CpuParams {
  // GEMM blocking in elements, [0] float32, [1] float64, for the active ISA's microkernel.
  int64_t gemm_mc[2] = {0, 0}, gemm_kc[2] = {0, 0}, gemm_nc[2] = {0, 0};
  int64_t l2_block = 0;    // conv2d column / row blocks and the Winograd V block (half the L2)
  int64_t wino_m = 0;      // Winograd M chunk (an eighth of the L2)
  int64_t strip_l1 = 0;    // filter ring budget, small kernels (the L1d)
  int64_t strip_l2 = 0;    // filter ring budget, tall kernels (the L2)
  int64_t stream_bytes = 0;  // outputs whose input + output bytes exceed this are streamed
  // float32 gelu / gelu_backward with FMA: 1 = the piecewise table (8 pieces, VPERMPS lookups),
  // 0 = one fit for every lane (a divide and exp(-x^2 / 2), no lookups). Both within ~6 ulp;
  // the bits differ, so the choice is fixed per machine (gelu_table_model, from cpuid).
  int64_t gelu_table = 1;
  // float32 / uint16 resize by an integer factor (2x, 4x; 1 or 2 channels: 2x) at AVX2, bicubic
  // and wider: 1 = each phase's horizontal sums from plain loads, then the pixels interleaved
  // by 16-byte copies; 0 = one lane permute per tap. Also width shrunk by exactly 2 (1 to 4
  // channels, vertical first): 1 = the even and odd pixels from plain loads, weights in
  // registers, 0 = pixel by pixel. The same bits either way.
  int64_t resize_phases = 1;
};

// The keys of CpuParams that can be overridden, in this order (values: elements for the GEMM
// keys, bytes for the others; -1 = the model's value).
enum CpuParamKey : int { kParamMc = 0, kParamKc, kParamNc, kParamL2Block, kParamWinoM, kParamStripL1,
                         kParamStripL2, kParamStreamBytes, kParamGeluTable,
                         kParamResizePhases, kNumCpuParams };
const char* cpu_param_name(int key);

const CpuCaches& cpu_caches();  // detected (and measured) once, thread-safe
// The parameters in effect for kernels compiled for `isa` (the model for that ISA's
// microkernel, then the overrides). Cheap: a pointer load after the first call.
const CpuParams& cpu_params(Isa isa);
inline const CpuParams& cpu_params() { return cpu_params(isa_active()); }
// Whether the table form of gelu pays on this core (CpuParams::gelu_table's default): false on
// the cores whose 256-bit lane-crossing permutes issue to the FMA pipes (AMD family 17h and 18h,
// Zen 1 / 2 and Hygon; family 19h's Zen 3 models), where the table's 8 VPERMPS per vector cost
// what 16 FMAs do. Deterministic (cpuid only), so a machine's gelu bits never change.
bool gelu_table_model();
// The model alone, without overrides.
CpuParams cpu_params_model(Isa isa);
// Overrides: values[key] >= 0 replaces the model's value, -1 keeps it (all -1: the defaults).
// Callers validate (positive GEMM sizes; non-negative bytes). Not to be called while kernels run.
void cpu_params_override(const int64_t (&values)[kNumCpuParams]);
void cpu_params_overrides(int64_t (&values)[kNumCpuParams]);

#if defined(IMKERN_ISA)
// In the per-ISA kernels: the parameters for the ISA this file is compiled for.
namespace IMKERN_ISA {
inline const CpuParams& params() { return cpu_params(Isa::IMKERN_ISA); }
}  // namespace IMKERN_ISA
#endif

}  // namespace imkern
