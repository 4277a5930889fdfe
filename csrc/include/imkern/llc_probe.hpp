// The effective-L3 probe's readings and its decision (cpu_params.cpp), apart from
// cpu_params.hpp so that the kernels, which read only CpuParams, do not depend on them.
#pragma once
#include <cstdint>
#include <string>

namespace imkern {

// What the effective-L3 probe read (single thread, bytes per second of sequential reads, each
// footprint the best of several passes timed in thread CPU time), and the decision taken from it.
struct LlcProbe {
  static constexpr int kMax = 12;
  int64_t l2 = 0;              // the L2 the footprints are counted in
  int64_t cap = 0;             // the largest footprint the probe may read
  int64_t fallback = 0;        // what an inconclusive probe gives (a conservative bound)
  double bw_mem = 0;           // memory: the best of three passes over 2 L2 of flushed lines
  double bw_l3 = 0;            // cache: a warm 2 L2 footprint
  int n = 0;                   // footprints read: 4 L2, 8 L2, ... (stops at two slow ones in a row)
  int64_t bytes[kMax] = {};
  double bw[kMax] = {};        // the best pass of each footprint
  int passes[kMax] = {};       // timed passes behind each (diagnostics; not read by llc_decide)
  bool timed_out = false;      // stopped by its CPU-time budget before a drop or the cap
  bool decided = false;        // stopped early: a footprint at cache speed past the band (the cap)
};

// The effective L3 from the readings (pure: the same readings give the same answer; exposed for
// tests). Sets *reason to a static string: "probe: drop past <the result>", "probe: drop within a
// factor 4 of the cap", "probe: cache speed up to the cap", or "fallback: ..." when the readings
// cannot decide.
int64_t llc_decide(const LlcProbe& r, const char** reason);

// What the cache description alone bounds the effective L3 by (pure; exposed for tests), from the
// L2, the nominal L3, this process's nominal share of it, the L3's inclusiveness (1, 0, -1 unknown)
// and whether a hypervisor rewrites the sharing counts:
//   nominal: the footprint the description says stays cached: the share plus the L2 where the
//            L3 is not inclusive (it holds what the L2 does not), the larger of the two where it
//            is or where that is unknown; so never under the L2 (many sharers over few usable
//            CPUs make the share alone smaller than it);
//   cap:     the largest footprint the probe reads (half the L3, at most 32 MiB, a power of two);
//   fallback: what a probe that cannot decide gives: the nominal, at most half the L3 and, in a
//            VM, at most the cap; never under the L2.
struct LlcBounds {
  int64_t nominal = 0, cap = 0, fallback = 0;
};
LlcBounds llc_bounds(int64_t l2, int64_t l3, int64_t l3_share, int l3_inclusive, bool hypervisor);

// Runs the probe with footprints counted in `l2` bytes up to `cap` (cap >= 4 l2 > 0): what
// cpu_caches() runs with the machine's L2 and cap, exposed so that tests can read footprints
// past any cache (a cache that is really small, as the probe sees it). fallback is left 0.
void llc_probe_run(int64_t l2, int64_t cap, LlcProbe& r);

// How cpu_caches().l3_effective was reached (filled with it, once per process).
struct LlcReport {
  LlcProbe probe;              // the readings (n = 0: not probed)
  const char* reason = "";     // why l3_effective is what it is (llc_decide's reason, or no probe)
  bool hypervisor = false;     // cpuid leaf 1 ECX bit 31: the sharing counts are the VM's, not the host's
  int l3_inclusive = -1;       // cpuid's L3 "inclusive of lower levels" bit: 1, 0 (victim / non-inclusive), -1 unknown
  double cpu_ms = 0;           // the probe's CPU time (its wall time, probe_ms, grows with the load)
  const char* from = "";       // "probe", "cache" (the per-machine cache file), "" (not probed)
  std::string cache_file;      // the cache file read or written ("": none, or disabled)
};
const LlcReport& cpu_llc_report();

}  // namespace imkern
