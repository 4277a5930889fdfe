// Cache detection, the effective-cache probe and the blocking model (see cpu_params.hpp).
// Built once, for the baseline ISA.
#include "imkern/cpu_params.hpp"
#include "imkern/llc_probe.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <array>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <time.h>

#if defined(__linux__)
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif
#if defined(IMKERN_X86) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <emmintrin.h>
#define IMKERN_HAVE_CPUID 1
#endif

namespace imkern {
namespace {

int usable_cpus() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
#endif
  const unsigned n = std::thread::hardware_concurrency();
  return n ? static_cast<int>(n) : 1;
}

// ---- sysfs: /sys/devices/system/cpu/cpu0/cache/index*/ -----------------------------------------
bool read_line(const std::string& path, std::string& out) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return false;
  char buf[4096];
  const bool ok = std::fgets(buf, sizeof(buf), f) != nullptr;
  std::fclose(f);
  if (!ok) return false;
  out = buf;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return true;
}

int64_t parse_size(const std::string& s) {
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (v <= 0) return 0;
  if (end && (*end == 'K' || *end == 'k')) v <<= 10;
  else if (end && (*end == 'M' || *end == 'm')) v <<= 20;
  else if (end && (*end == 'G' || *end == 'g')) v <<= 30;
  return v;
}

// Number of CPUs in a list like "0-3,8,10-11".
int count_cpu_list(const std::string& s) {
  int n = 0;
  size_t i = 0;
  while (i < s.size()) {
    char* end = nullptr;
    const long a = std::strtol(s.c_str() + i, &end, 10);
    size_t j = static_cast<size_t>(end - s.c_str());
    if (j == i) break;
    long b = a;
    if (j < s.size() && s[j] == '-') {
      const char* p = s.c_str() + j + 1;
      b = std::strtol(p, &end, 10);
      j = static_cast<size_t>(end - s.c_str());
    }
    n += static_cast<int>(std::max(0L, b - a + 1));
    i = j;
    while (i < s.size() && (s[i] == ',' || s[i] == ' ')) ++i;
  }
  return n;
}

bool from_sysfs(CpuCaches& c) {
#if defined(__linux__)
  bool any = false;
  for (int i = 0; i < 16; ++i) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    std::string level, type, v;
    if (!read_line(dir + "level", level)) break;
    if (!read_line(dir + "type", type) || type == "Instruction") continue;
    CacheInfo* ci = level == "1" ? &c.l1d : level == "2" ? &c.l2 : level == "3" ? &c.l3 : nullptr;
    if (!ci || !read_line(dir + "size", v)) continue;
    ci->bytes = parse_size(v);
    if (read_line(dir + "ways_of_associativity", v)) ci->ways = std::atoi(v.c_str());
    if (read_line(dir + "coherency_line_size", v) && std::atoi(v.c_str()) > 0) ci->line = std::atoi(v.c_str());
    if (read_line(dir + "number_of_sets", v)) ci->sets = std::atoi(v.c_str());
    if (read_line(dir + "shared_cpu_list", v)) ci->shared = std::max(1, count_cpu_list(v));
    any = any || ci->bytes > 0;
  }
  return any;
#else
  (void)c;
  return false;
#endif
}

// ---- cpuid: deterministic cache parameters (Intel leaf 4, AMD 0x8000001D) -----------------------
// l3_inclusive: the L3's "inclusive of lower levels" bit (EDX bit 1 of both leaves), where listed.
bool from_cpuid(CpuCaches& c, bool fill_sizes, int& l3_inclusive) {
#if defined(IMKERN_HAVE_CPUID)
  unsigned a, b, cx, d;
  if (!__get_cpuid(0, &a, &b, &cx, &d)) return false;
  const unsigned max_leaf = a;
  const bool amd = b == 0x68747541u;  // "Auth"enticAMD (also Hygon's leaf layout)
  const bool hygon = b == 0x6f677948u;
  unsigned leaf = 4;
  if (amd || hygon) {
    if (!__get_cpuid(0x80000000u, &a, &b, &cx, &d) || a < 0x8000001Du) return false;
    leaf = 0x8000001Du;
  } else if (max_leaf < 4) {
    return false;
  }
  bool any = false;
  for (unsigned i = 0; i < 16; ++i) {
    __cpuid_count(leaf, i, a, b, cx, d);
    const unsigned type = a & 31;
    if (type == 0) break;
    if (type == 2) continue;  // instruction cache
    const unsigned level = (a >> 5) & 7;
    CacheInfo* ci = level == 1 ? &c.l1d : level == 2 ? &c.l2 : level == 3 ? &c.l3 : nullptr;
    if (!ci) continue;
    const int ways = static_cast<int>((b >> 22) + 1), parts = static_cast<int>(((b >> 12) & 1023) + 1);
    const int line = static_cast<int>((b & 4095) + 1), sets = static_cast<int>(cx + 1);
    ci->cpuid_shared = static_cast<int>(((a >> 14) & 4095) + 1);
    if (level == 3) l3_inclusive = static_cast<int>((d >> 1) & 1);
    if (fill_sizes || ci->bytes <= 0) {
      ci->bytes = int64_t(ways) * parts * line * sets;
      ci->ways = ways;
      ci->line = line;
      ci->sets = sets;
    }
    if (ci->ways <= 0) ci->ways = ways;
    any = true;
  }
  return any;
#else
  (void)c;
  (void)fill_sizes;
  (void)l3_inclusive;
  return false;
#endif
}

// ---- the effective last-level cache --------------------------------------------------------------
// Sequential reads of a footprint of S bytes run at cache speed while S fits the part of the
// last-level cache this process really gets, and drop to memory speed past it (a sequential
// sweep over slightly more than an LRU-like cache misses nearly everywhere). The probe reads
// S = 4 L2, 8 L2, ... up to the cap (half the nominal L3, at most 32 MiB: see detect()) against
// two references, memory (2 L2 of lines flushed with clflush) and cache (a warm 2 L2
// footprint); llc_decide takes the largest S read above their geometric mean (the cut): a
// cache that holds a footprint holds every smaller one, so a slow S before a fast 2 S was a
// disturbed reading. The drop is the first S past that one, confirmed by the next footprint
// reading slow too (or by being the cap's); the result is the footprint that fits, snapped down
// to a power of two, unless that is within a factor 4 of the cap (hysteresis: see there; such a
// drop needs no confirmation, it gives the cap either way), and it stops at the first
// footprint read at cache speed whose successor's drop would lie within that band (the answer
// is then the cap, whatever larger footprints read).
// Its cost, once per process, single thread, on the 2-vCPU Granite Rapids VM (L2 2 MiB, cap
// 32 MiB: the references over 4 MiB and the 8 MiB footprint, which decides): ~13-20 ms of CPU,
// of which the memory reference's clflush loops are ~10 (clflushopt would cost ~1.5, but the
// memory read after it reads ~10% faster there, which moves the cut: not taken); it read
// 16 and 32 MiB too before (21-39 ms, 32 MiB of pages touched). On a quiet machine a fresh
// process pays more, in the first touch of its pages: that VM's kernel reports free memory
// to the host (free page reporting, page_reporting_order=11), which drops it, so touching
// such a page faults in the host too: 7.5 ms of CPU per MiB against 0.09 for recycled pages
// (which a loaded machine hands out first), ~60 ms for the 8 MiB now, ~250 ms for 32 MiB
// before. It only sets thresholds and MC/NC, never a bit of a
// result (GEMM's sums are ordered by KC, which comes from the L1 and L2 alone). What made it
// flip between processes (4 / 8 / 16 / 32 MiB / the nominal share 240 MiB on a 2-vCPU Granite
// Rapids VM with a 480 MiB L3, 4 / 16 / 32 MiB earlier on a Zen 4), and the answers:
//  - preemption: a pass that loses the CPU reads slow in wall time. Passes are timed in
//    thread CPU time, each footprint the best of several, and the budget counts CPU time,
//    so a loaded machine makes the probe late but not different (the wall-time budget used
//    to end it early, and an unfinished probe kept the nominal share: 240 MiB there);
//  - a cold cache: on that Xeon an S that fits reads at memory speed for its first two or
//    three passes (the L3 fills as lines leave the L2) and at cache speed from the fourth;
//    a footprint gets up to kPasses passes (after a warm-up) and stops at the first clearly
//    at cache speed;
//  - the other vCPU's traffic: a neighbour streaming through the shared L3 evicts the
//    footprint, which then refills over those three or four passes again. Under a load of
//    5-13 on the Xeon's 2 vCPUs (the other vCPU running probes and builds) the 8 MiB footprint
//    read 12 -> 14 -> 20 -> 25 -> 27 GB/s, then 12 again, every few ms; a run of passes long
//    enough to refill it came after up to 45 passes, so 3-4% of processes (10% at a load of 14)
//    read no pass of their kPasses + 1 above the cut (18-21 GB/s) and chose 4 MiB instead of
//    32; with 40 ms of patient passes 1 in 120 processes still did (74 passes, none clear) at a
//    load of 14, so the bound is 80 ms (spent only where a drop would count). A footprint whose
//    drop would override the cap (outside the hysteresis band) and that reads below the cut
//    now keeps reading, up to kPatientPasses or kPatientCpu, for one pass clearly at cache
//    speed (kClear times the cut; its best pass otherwise), and is confirmed by the next;
//    the footprints within the band keep kPasses and no confirmation (their drop gives the cap
//    anyway, so the probe costs no more than before under load: its CPU time is mostly spent
//    there, in footprints at memory speed). Huge pages were not it: the buffer's AnonHugePages
//    equalled its Rss at every footprint, and the kernel's thp_fault_fallback stayed 0 in 1.4 M
//    THP faults (THP in madvise mode). They matter: without MADV_HUGEPAGE 8 and 16 MiB read
//    8-12 GB/s there (page walks), below the flushed memory reference of the huge-paged buffer;
//  - one noisy memory reference (13-18 GB/s in one pass): the best of three.
// A probe that cannot decide (no contrast between the references, over its budget, a drop it
// could not confirm) falls back to a conservative bound, never the whole socket's L3 of a VM
// (see detect()).
using Clock = std::chrono::steady_clock;

__attribute__((noinline)) uint64_t sweep(const uint64_t* p, int64_t n) {
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (int64_t i = 0; i + 4 <= n; i += 4) {
    s0 += p[i];
    s1 += p[i + 1];
    s2 += p[i + 2];
    s3 += p[i + 3];
  }
  return s0 + s1 + s2 + s3;
}

// CPU time of the calling thread (preemption excluded), seconds; wall time where unavailable.
double thread_seconds() {
#if defined(__linux__) && defined(CLOCK_THREAD_CPUTIME_ID)
  timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0) return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
#endif
  return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

int64_t floor_pow2(int64_t v) {
  int64_t p = 1;
  while (p <= v / 2) p *= 2;
  return v > 0 ? p : 0;
}

constexpr double kContrast = 1.3;  // cache reads must beat memory by this much to decide anything
constexpr double kClear = 1.15;    // a reading this far above the cut is cache speed at once
constexpr int kPasses = 5;         // passes per footprint after its warm-up (fewer once clear)
constexpr int kPatientPasses = 256;  // at most, for a footprint whose drop would count ...
constexpr double kPatientCpu = 0.08;  // ... and at most this many CPU seconds of them

// The footprint that llc_decide takes to fit when S is the drop (S / 2: the footprints double
// from 4 L2, whose predecessor is the 2 L2 cache reference), snapped as llc_decide snaps it; a
// drop at S overrides the cap only where 4 times that is below the cap (the hysteresis).
bool drop_counts(int64_t s, int64_t cap) { return 4 * floor_pow2(s / 2) < cap; }

}  // namespace

void llc_probe_run(int64_t l2, int64_t cap, LlcProbe& r) {
  r = LlcProbe{};
  r.l2 = l2;
  r.cap = cap;
  void* mem = nullptr;
  if (posix_memalign(&mem, 2 << 20, static_cast<size_t>(cap)) != 0 || !mem) return;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  madvise(mem, static_cast<size_t>(cap), MADV_HUGEPAGE);  // fewer page faults and TLB misses
#endif
  // Pages are written (read-only untouched pages would all map the one zero page) as the
  // footprints grow, so a probe that stops early does not pay for the rest.
  int64_t touched = 0;
  auto touch = [&](int64_t upto) {
    if (upto > touched) std::memset(static_cast<char*>(mem) + touched, 1, static_cast<size_t>(upto - touched));
    touched = std::max(touched, upto);
  };
  const uint64_t* p = static_cast<const uint64_t*>(mem);
  volatile uint64_t sink = 0;
  double spent = 0;  // CPU seconds in timed passes
  auto pass = [&](int64_t bytes) {
    const double t0 = thread_seconds();
    sink = sink + sweep(p, bytes / 8);
    const double t = std::max(thread_seconds() - t0, 1e-9);
    spent += t;
    return double(bytes) / t;
  };
  // Memory reference: 2 L2 (at least 2 MiB) of flushed lines.
  const int64_t ref = std::min<int64_t>(cap, std::max<int64_t>(2 * l2, int64_t(2) << 20));
  touch(std::max(ref, 2 * l2));
#if defined(IMKERN_HAVE_CPUID)
  for (int i = 0; i < 3; ++i) {
    for (int64_t off = 0; off < ref; off += 64) _mm_clflush(reinterpret_cast<const char*>(mem) + off);
    _mm_mfence();
    r.bw_mem = std::max(r.bw_mem, pass(ref));
  }
#endif
  // Cache reference: a 2 L2 footprint, warm.
  pass(2 * l2);
  for (int i = 0; i < kPasses; ++i) r.bw_l3 = std::max(r.bw_l3, pass(2 * l2));
  if (r.bw_mem > 0 && r.bw_l3 >= kContrast * r.bw_mem) {
    const double cut = std::sqrt(r.bw_l3 * r.bw_mem), clear = kClear * cut;
    constexpr double kBudget = 0.25;  // CPU seconds; ~0.03 used on a quiet machine
    for (int64_t s = 4 * l2; s <= cap && r.n < LlcProbe::kMax; s *= 2) {
      if (spent > kBudget) {
        r.timed_out = true;
        break;
      }
      touch(s);
      pass(s);  // warm-up
      double bw = 0;
      int np = 0;
      while (np < kPasses && bw < clear) bw = std::max(bw, pass(s)), ++np;
      // Below the cut where a drop would override the cap: keep reading, up to a bound, for a
      // run of passes undisturbed long enough to refill the cache (see above).
      // Only a pass clearly at cache speed counts among these: the best of many passes at
      // memory speed creeps up to the cut (memory's own speed moves with the load: 12-18 GB/s
      // on the Xeon VM), never to a cache's.
      if (bw < cut && drop_counts(s, cap)) {
        const double t0 = spent;
        while (np < kPatientPasses && spent - t0 < kPatientCpu) {
          const double b = pass(s);
          ++np;
          if (b >= clear) {
            bw = b;
            break;
          }
        }
      }
      r.bytes[r.n] = s;
      r.bw[r.n] = bw;
      r.passes[r.n] = np;
      ++r.n;
      // The drop: confirmed by a second slow footprint in a row, or (within the band) needing
      // no confirmation, since then llc_decide gives the cap either way.
      if (bw < cut && ((r.n >= 2 && r.bw[r.n - 2] < cut) || !drop_counts(s, cap))) break;
      // Decided: a footprint at cache speed whose successor's drop would lie within the band
      // gives the cap whatever the larger footprints read (llc_decide: a slow one is a drop
      // within a factor 4 of the cap, none is cache speed up to the cap), so they are not
      // read, nor their pages touched (first touches cost most of a quiet machine's probe).
      if (bw >= cut && !drop_counts(2 * s, cap)) {
        r.decided = true;
        break;
      }
    }
  }
  std::free(mem);
}

int64_t llc_decide(const LlcProbe& r, const char** reason) {
  const char* why = "";
  int64_t eff = r.fallback;
  if (!(r.bw_mem > 0) || !(r.bw_l3 > 0)) {
    why = "fallback: no reference readings";
  } else if (r.bw_l3 < kContrast * r.bw_mem) {
    why = "fallback: the L3 reads no faster than memory";
  } else {
    const double cut = std::sqrt(r.bw_l3 * r.bw_mem);
    // A cache that holds a footprint holds every smaller one: the largest footprint read at
    // cache speed fits, whatever a smaller one read before it (that reading was disturbed).
    int64_t fits = 2 * r.l2;  // the cache reference's footprint
    int last_fast = -1;
    for (int i = 0; i < r.n; ++i)
      if (r.bw[i] >= cut) fits = r.bytes[i], last_fast = i;
    // The drop: the first footprint past it, confirmed by the next footprint reading slow too,
    // or by having none after it below the cap.
    const int j = last_fast + 1;
    const bool slow = j < r.n;
    const bool drop = slow && (j + 1 < r.n || 2 * r.bytes[j] > r.cap);
    // Hysteresis: the probe overrides the cap only where the drop lies more than a factor 4
    // below it (and only such a drop needs confirming). Within that band what a process reads
    // depends on its neighbours, not on the machine: the 2-vCPU Xeon read the drop past 32 MiB
    // quiet, past 16 MiB under a load of 13 on its 2 CPUs, past 8 MiB in 14 of 20 processes
    // beside two more busy ones.
    const int64_t m = floor_pow2(fits);
    if (slow && 4 * m >= r.cap) {
      eff = r.cap;
      why = "probe: drop within a factor 4 of the cap";
    } else if (drop) {
      eff = m;
      why = "probe: drop past the result";
    } else if (r.timed_out) {
      why = "fallback: probe over its CPU-time budget";
    } else if (slow) {
      why = "fallback: a drop not confirmed by the next footprint";
    } else {
      eff = r.cap;
      why = "probe: cache speed up to the cap";
    }
  }
  if (reason) *reason = why;
  return floor_pow2(eff);
}

LlcBounds llc_bounds(int64_t l2, int64_t l3, int64_t l3_share, int l3_inclusive, bool hypervisor) {
  LlcBounds b;
  l2 = std::max<int64_t>(l2, 0);
  // A non-inclusive L3 (Intel's server L3 since Skylake-SP, AMD's victim L3) keeps what the L2 evicts, so
  // a footprint of L2 + share stays cached (the probe's footprints count the L2 in too); an
  // inclusive one duplicates the L2's lines. With many sharers and few usable CPUs (a container
  // pinned to 2 of a 128-thread socket) the share alone falls under the L2, which still holds
  // that much; a threshold or panel sized below the L2 would stream or block data that stays in it.
  b.nominal = l3_inclusive == 0 ? l3_share + l2 : std::max(l3_share, l2);
  // At most half the nominal L3 and at most 32 MiB, whatever the probe reads: a footprint
  // of the whole cache runs at cache speed only while nothing else (the neighbours of a
  // shared L3, the process's own code and tables) is in it, so the reading above that
  // depended on the moment (16 or 32 MiB between processes on a 2-vCPU Zen 4 VM with a
  // 32 MiB CCD L3: the cap there is 16 MiB); 32 MiB bounds the probe's cost (and the 480 MiB
  // socket L3 a 2-vCPU Granite Rapids VM is shown read at memory speed from 64 MiB).
  const int64_t ceiling = l3 / 2;
  b.cap = floor_pow2(std::min<int64_t>(ceiling, int64_t(32) << 20));
  // The conservative bound of a probe that cannot decide: the nominal, but in a VM (where the
  // hypervisor rewrites cpuid's and sysfs's sharing to the VM's CPUs: a 2-vCPU slice of a
  // Granite Rapids shows the socket's 480 MiB L3 as its own) no more than the probe could have
  // confirmed; and never under the L2 (the ceiling is over 4 L2 wherever the probe runs).
  b.fallback = std::min(b.nominal, ceiling);
  if (hypervisor) b.fallback = std::min(b.fallback, b.cap);
  b.fallback = std::max(b.fallback, l2);
  return b;
}

namespace {

LlcReport g_llc;  // written once, by detect() under cpu_caches()'s once_flag

// ---- the per-machine cache of the probe's answer -------------------------------------------------
// Every fresh process would pay the probe at its first kernel call (see above: ~15 ms of CPU,
// ~75 on a quiet VM that hands freed memory back to its host), Dask workers and pool workers
// and short scripts each time; and each would read its own answer. So the first process on a
// machine keeps its answer in a small file that the others read: under $IMKERN_CACHE_DIR, else
// $XDG_CACHE_HOME/imkern, else ~/.cache/imkern (IMKERN_CACHE_DIR=0 / off / no / false, or a
// relative path: none).
// The file's first lines hold (and its name hashes, but the boot id) what makes the answer
// valid: the format and probe version, the CPU (brand string, cpuid signature, hypervisor
// bit), the caches read, the usable CPUs, the probe's L2, cap and fallback, and the kernel's
// boot id (a reboot, or a VM migrated to another host, probes again). Only a decision ("probe: ...") is kept, never a
// fallback. Written atomically (a temp file renamed over the name: concurrent first processes
// each write a whole file and one of them stays); read defensively: anything but the exact key
// followed by a valid answer is a miss and the probe runs, and a directory that cannot be
// created or written is left alone, silently (info()["cpu_caches"]["l3_from"] says "probe").
constexpr int kCacheVersion = 1;  // bump whenever the probe or llc_decide may answer differently

std::string llc_cache_dir() {
  if (const char* e = std::getenv("IMKERN_CACHE_DIR"); e && *e) {
    std::string low;
    for (const char* q = e; *q; ++q) low += static_cast<char>(std::tolower(static_cast<unsigned char>(*q)));
    if (low == "0" || low == "off" || low == "no" || low == "false") return "";
    // A relative path (e.g. "~/x" from a .env file, unexpanded) would put a file in each
    // process's working directory: none then, as a relative XDG_CACHE_HOME gives none.
    return e[0] == '/' ? std::string(e) : std::string();
  }
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && x[0] == '/') return std::string(x) + "/imkern";
  if (const char* h = std::getenv("HOME"); h && h[0] == '/') return std::string(h) + "/.cache/imkern";
  return "";
}

// The key's lines ("" where the machine cannot be identified: no cache then).
std::string llc_cache_key(const CpuCaches& c, int64_t l2, int64_t cap, int64_t fallback) {
  std::string boot;
  if (!read_line("/proc/sys/kernel/random/boot_id", boot) || boot.empty()) return "";
  std::string brand;
  unsigned sig = 0;
#if defined(IMKERN_HAVE_CPUID)
  unsigned a, b, cx, d;
  if (__get_cpuid(1, &a, &b, &cx, &d)) sig = a;
  if (__get_cpuid(0x80000000u, &a, &b, &cx, &d) && a >= 0x80000004u) {
    char text[49] = {};
    for (unsigned i = 0; i < 3; ++i) {
      unsigned w[4];
      __get_cpuid(0x80000002u + i, &w[0], &w[1], &w[2], &w[3]);
      std::memcpy(text + 16 * i, w, 16);
    }
    brand = text;
  }
#endif
  for (char& ch : brand)
    if (ch == '\n' || ch == '\r') ch = ' ';
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "imkern llc cache %d\ncpu %s\nsignature %08x hypervisor %d\n"
                "caches %lld %d %lld %d %d %lld %d %d %d\ncpus %d\nprobe %lld %lld %lld\nboot %s\n",
                kCacheVersion, brand.c_str(), sig, int(g_llc.hypervisor), (long long)c.l1d.bytes, c.l1d.ways,
                (long long)c.l2.bytes, c.l2.ways, c.l2.shared, (long long)c.l3.bytes, c.l3.ways, c.l3.shared,
                c.l3.cpuid_shared, c.cpus, (long long)l2, (long long)cap, (long long)fallback, boot.c_str());
  return buf;
}

std::string llc_cache_file(const std::string& key) {
  const std::string dir = llc_cache_dir();
  if (dir.empty() || key.empty()) return "";
  // The name hashes the key but its boot id (its last line): a reboot rewrites the machine's
  // file rather than adding one.
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char ch : key.substr(0, key.rfind("boot "))) h = (h ^ ch) * 1099511628211ull;
  char name[40];
  std::snprintf(name, sizeof(name), "/llc-%016llx.txt", (unsigned long long)h);
  return dir + name;
}

// The answer kept under `file` for `key`, or false (a miss: missing, unreadable, not a regular
// file, another key, anything malformed). Opened without blocking and read only when fstat
// says a regular file: a FIFO at the name (anyone can place one in a shared directory such as
// /tmp, the name being computable) would block open() and read() for a writer that never
// comes, and a device could too. (Only Linux writes the file: elsewhere every read misses.)
bool llc_cache_read(const std::string& file, const std::string& key, int64_t l2, int64_t cap, int64_t& eff,
                    const char*& reason) {
  char buf[2048];
  size_t n = 0;
#if defined(__linux__)
  const int fd = open(file.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st;
  // a regular file of this user's only: in a shared directory (IMKERN_CACHE_DIR=/tmp) another
  // user's file, whatever it says, is not read (the probe runs, as for any miss)
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
    close(fd);
    return false;
  }
  while (n < sizeof(buf) - 1) {
    const ssize_t got = read(fd, buf + n, sizeof(buf) - 1 - n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    n += size_t(got);
  }
  close(fd);
#else
  (void)file;
  return false;
#endif
  buf[n] = 0;
  if (n >= sizeof(buf) - 1 || n <= key.size() || std::memcmp(buf, key.data(), key.size()) != 0) return false;
  long long v = 0;
  char why[128] = {};
  int used = 0;
  if (std::sscanf(buf + key.size(), "l3_effective %lld\nreason %127[^\n]\n%n", &v, why, &used) != 2 || used == 0 ||
      key.size() + size_t(used) != n)
    return false;
  if (v <= 0 || v > cap || (v & (v - 1)) != 0) return false;
  // Only llc_decide's decisions, as the static strings that info() reports, each with a size it
  // can give for this L2 and cap (a power of two: detect's): a drop's at least 2 L2 snapped and
  // under cap / 4 (the hysteresis), the others the cap.
  static const char* const kDrop = "probe: drop past the result";
  for (const char* known : {kDrop, "probe: drop within a factor 4 of the cap", "probe: cache speed up to the cap"})
    if (std::strcmp(why, known) == 0) {
      const bool fits = known == kDrop ? v >= floor_pow2(2 * l2) && 4 * v < cap : v == cap;
      if (!fits) return false;
      eff = v;
      reason = known;
      return true;
    }
  return false;
}

// Writes the answer (a temp file in the same directory, renamed over `file`); false where it
// could not (no error reported: the next process probes again).
bool llc_cache_write(const std::string& file, const std::string& key, int64_t eff, const char* reason) {
#if defined(__linux__)
  const std::string dir = file.substr(0, file.rfind('/'));
  for (size_t i = 1; i <= dir.size(); ++i)  // mkdir -p, each level private to the user
    if (i == dir.size() || dir[i] == '/') mkdir(dir.substr(0, i).c_str(), 0700);
  char suffix[64];
  std::snprintf(suffix, sizeof(suffix), ".%ld.%lld.tmp", long(getpid()),
                (long long)Clock::now().time_since_epoch().count());
  const std::string tmp = file + suffix;
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  char val[256];
  const int m = std::snprintf(val, sizeof(val), "l3_effective %lld\nreason %s\n", (long long)eff, reason);
  const std::string text = key + std::string(val, size_t(std::max(m, 0)));
  bool ok = write(fd, text.data(), text.size()) == ssize_t(text.size());
  ok = close(fd) == 0 && ok;
  ok = ok && std::rename(tmp.c_str(), file.c_str()) == 0;
  if (!ok) unlink(tmp.c_str());
  return ok;
#else
  (void)file, (void)key, (void)eff, (void)reason;
  return false;
#endif
}

CpuCaches detect() {
  CpuCaches c;
  c.cpus = usable_cpus();
  if (from_sysfs(c)) {
    c.source = "sysfs";
    from_cpuid(c, false, g_llc.l3_inclusive);  // the host's sharing counts (and any level sysfs left out)
  } else if (from_cpuid(c, true, g_llc.l3_inclusive)) {
    c.source = "cpuid";
  }
#if defined(_SC_LEVEL1_DCACHE_SIZE)
  if (c.l1d.bytes <= 0 && c.l2.bytes <= 0) {
    c.l1d.bytes = sysconf(_SC_LEVEL1_DCACHE_SIZE) > 0 ? sysconf(_SC_LEVEL1_DCACHE_SIZE) : 0;
    c.l2.bytes = sysconf(_SC_LEVEL2_CACHE_SIZE) > 0 ? sysconf(_SC_LEVEL2_CACHE_SIZE) : 0;
    c.l3.bytes = sysconf(_SC_LEVEL3_CACHE_SIZE) > 0 ? sysconf(_SC_LEVEL3_CACHE_SIZE) : 0;
    if (c.l1d.bytes > 0) c.source = "sysconf";
  }
#endif
  // Defaults for what is still unknown: a common x86-64 core (32 KiB 8-way L1d, 512 KiB L2).
  if (c.l1d.bytes <= 0) c.l1d = CacheInfo{32 << 10, 8, 64, 64, 1, 0};
  if (c.l1d.ways <= 0) c.l1d.ways = 8;
  if (c.l1d.line <= 0) c.l1d.line = 64;
  if (c.l2.bytes <= 0) c.l2 = CacheInfo{512 << 10, 8, 64, 1024, 1, 0};
  if (c.l2.ways <= 0) c.l2.ways = 8;
  for (CacheInfo* ci : {&c.l1d, &c.l2, &c.l3})
    if (ci->bytes > 0 && ci->ways > 0 && ci->line > 0 && ci->sets <= 0)
      ci->sets = static_cast<int>(ci->bytes / (int64_t(ci->ways) * ci->line));
  const CacheInfo& llc = c.l3.bytes > 0 ? c.l3 : c.l2;
  const int sharing = std::max(llc.shared, llc.cpuid_shared);
  c.l3_share = sharing > c.cpus ? llc.bytes * c.cpus / sharing : llc.bytes;
#if defined(IMKERN_HAVE_CPUID)
  {
    unsigned a, b, cx, d;
    g_llc.hypervisor = __get_cpuid(1, &a, &b, &cx, &d) && (cx >> 31) != 0;
  }
#endif
  if (c.l3.bytes <= 0) {
    c.l3_effective = c.l2.bytes;
    g_llc.reason = "no L3: the L2";
    return c;
  }
  const int64_t l2 = c.l2.bytes;
  const LlcBounds bounds = llc_bounds(l2, c.l3.bytes, c.l3_share, g_llc.l3_inclusive, g_llc.hypervisor);
  const int64_t cap = bounds.cap, fallback = bounds.fallback;
  if (l2 <= 0 || cap < 4 * l2) {  // too small an L3 to probe against the L2
    c.l3_effective = bounds.nominal;
    g_llc.reason = "nominal share: L3 under 8 L2";
    return c;
  }
  const auto start = Clock::now();
  const double cpu0 = thread_seconds();
  const std::string key = llc_cache_key(c, l2, cap, fallback);
  const std::string file = llc_cache_file(key);
  int64_t kept = 0;
  if (!file.empty() && llc_cache_read(file, key, l2, cap, kept, g_llc.reason)) {
    g_llc.from = "cache";
    g_llc.cache_file = file;
    g_llc.probe.l2 = l2;
    g_llc.probe.cap = cap;
    g_llc.probe.fallback = fallback;
    c.l3_effective = kept;
  } else {
    llc_probe_run(l2, cap, g_llc.probe);
    g_llc.probe.fallback = fallback;
    c.l3_effective = llc_decide(g_llc.probe, &g_llc.reason);
    g_llc.from = "probe";
    if (!file.empty() && std::strncmp(g_llc.reason, "probe:", 6) == 0 &&
        llc_cache_write(file, key, c.l3_effective, g_llc.reason))
      g_llc.cache_file = file;
  }
  g_llc.cpu_ms = 1e3 * (thread_seconds() - cpu0);
  c.probe_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  return c;
}

// ---- the model ---------------------------------------------------------------------------------
int64_t round_down(int64_t v, int64_t m) { return std::max<int64_t>(m, v / m * m); }

// KC by the BLIS L1 rule: the A sliver (MR x KC, streaming from the L2) and the B sliver
// (KC x NR, reused from the L1 by every A sliver of the block) take whole L1 ways, one to spare.
int64_t model_kc_l1(const CacheInfo& l1, int mr, int nr, int elem) {
  const int ways = std::max(2, l1.ways);
  const int64_t way = std::max<int64_t>(1024, l1.bytes / ways);
  int64_t best = 64;
  for (int64_t kc = 8; kc <= 1024; kc += 8) {
    const int64_t wa = (int64_t(mr) * kc * elem + way - 1) / way, wb = (int64_t(nr) * kc * elem + way - 1) / way;
    if (wa + wb <= ways - 1) best = kc;
  }
  return std::max<int64_t>(64, best);
}

// KC by the L2 rule: the packed A block square (KC x KC) in half the L2 (BLIS's L2 rule for the
// A block with MC = KC).
int64_t model_kc_l2(const CacheInfo& l2, int elem) {
  const int64_t side = static_cast<int64_t>(std::sqrt(double(std::max<int64_t>(l2.bytes, 1)) / 2 / elem));
  return std::min<int64_t>(1024, std::max<int64_t>(64, side / 8 * 8));
}

// The L1 rule, unless the register tile is so wide that its slivers fit the L1 only at a KC
// under half the L2 rule's (AVX-512's 8 x 48 float32 tile: 224 bytes per k step, KC 128 on a
// 32 KiB L1): then the per-call costs (the C tile read and written once per KC block, the
// microkernel's start and drain, B packed in KC-long runs of its rows) outweigh what the L1
// residency of the B sliver saves, since the L2 feeds that sliver (NR s bytes per MR NR
// multiply-adds, s / (2 MR) bytes per flop) far below its bandwidth; KC is then the L2 rule's.
// Measured on a Zen 4 core (256x4096x4096 float32, one thread): AVX-512 KC 360 ~3% faster
// than 128; AVX2 (6 x 16: the L1 rule gives 320) 320 ~2% faster than 360.
int64_t model_kc(const CacheInfo& l1, const CacheInfo& l2, int mr, int nr, int elem) {
  const int64_t k1 = model_kc_l1(l1, mr, nr, elem), k2 = model_kc_l2(l2, elem);
  return 2 * k1 >= k2 ? k1 : k2;
}

// MC by the L2 rule of the analytical BLIS model (Low, Igual, Smith, Quintana-Orti, "Analytical
// modeling is enough for high-performance BLIS", TOMS 2016), as model_kc_l1 does for the L1: the
// packed A block (MC x KC) takes whole L2 ways, leaving the ways of one B sliver (KC x NR, the one
// the microkernels stream) and one way to spare (the C tiles, the next sliver's lines); never
// less than half the L2 (the rule before, still where the B sliver takes more than a quarter of
// the ways) and at most 128 slivers. Half the L2 gave MC 204 on a Zen 3 core (512 KiB 8-way L2,
// AVX2 KC 320) and so two row blocks (204 + 52) for the 256 rows of x in linear 256x4096 ->
// 4096: the driver's whole-column path (a 2.6 MB B block packed per k block, A packed per row
// block) instead of the one-row-block path (x packed once, W packed a sliver at a time). Six of
// eight ways give 306: x 256 x 4096 W^T 4096 x 4096 single thread 101 -> 94 ms, m = 300 and
// 384 0.91x / 0.95x. Where the L2 is 1 MiB or more (Zen 4, Intel) MC was already over 256 and
// grows (a 1 MiB 8-way L2: AVX2 408 -> 612, AVX-512 360 -> 544; a 2 MiB 16-way L2 at KC 512:
// 512 -> 768 (the cap) and 896): only products with more rows than the old MC change path.
int64_t model_mc(const CacheInfo& l2, int64_t kc, int mr, int nr, int elem) {
  const int ways = std::max(2, l2.ways);
  const int64_t way = std::max<int64_t>(1024, l2.bytes / ways);
  const int64_t wb = (int64_t(nr) * kc * elem + way - 1) / way;
  const int64_t half = l2.bytes / 2, by_ways = std::max<int64_t>(0, ways - 1 - wb) * way;
  return std::min<int64_t>(round_down(std::max(half, by_ways) / (kc * elem), mr), int64_t(mr) * 128);
}

std::once_flag g_caches_once;
CpuCaches* g_caches = nullptr;

std::mutex g_mu;
static_assert(kNumCpuParams == 10, "one -1 per parameter in g_over");
int64_t g_over[kNumCpuParams] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
// Published tables (one CpuParams per ISA); old ones are kept (a few hundred bytes each), so a
// kernel holding a reference never sees it freed.
std::deque<std::array<CpuParams, 3>> g_tables;
std::atomic<const CpuParams*> g_current{nullptr};

void publish_locked() {
  std::array<CpuParams, 3> tab;
  for (int i = 0; i < 3; ++i) {
    CpuParams& p = tab[i];
    p = cpu_params_model(static_cast<Isa>(i));
    for (int t = 0; t < 2; ++t) {
      if (g_over[kParamMc] >= 0) p.gemm_mc[t] = g_over[kParamMc];
      if (g_over[kParamKc] >= 0) p.gemm_kc[t] = g_over[kParamKc];
      if (g_over[kParamNc] >= 0) p.gemm_nc[t] = g_over[kParamNc];
    }
    if (g_over[kParamL2Block] >= 0) p.l2_block = g_over[kParamL2Block];
    if (g_over[kParamWinoM] >= 0) p.wino_m = g_over[kParamWinoM];
    if (g_over[kParamStripL1] >= 0) p.strip_l1 = g_over[kParamStripL1];
    if (g_over[kParamStripL2] >= 0) p.strip_l2 = g_over[kParamStripL2];
    if (g_over[kParamStreamBytes] >= 0) p.stream_bytes = g_over[kParamStreamBytes];
    if (g_over[kParamGeluTable] >= 0) p.gelu_table = g_over[kParamGeluTable];
    if (g_over[kParamResizePhases] >= 0) p.resize_phases = g_over[kParamResizePhases];
  }
  g_tables.push_back(tab);
  g_current.store(g_tables.back().data(), std::memory_order_release);
}

}  // namespace

const char* cpu_param_name(int key) {
  static const char* const names[kNumCpuParams] = {"gemm_mc", "gemm_kc", "gemm_nc", "l2_block", "wino_m",
                                                   "strip_l1", "strip_l2", "stream_bytes", "gelu_table",
                                                   "resize_phases"};
  return key >= 0 && key < kNumCpuParams ? names[key] : "?";
}

const CpuCaches& cpu_caches() {
  std::call_once(g_caches_once, [] { g_caches = new CpuCaches(detect()); });
  return *g_caches;
}

const LlcReport& cpu_llc_report() {
  cpu_caches();
  return g_llc;
}

CpuParams cpu_params_model(Isa isa) {
  const CpuCaches& c = cpu_caches();
  CpuParams p;
  const int mr = gemm_mr(isa);
  const int64_t l3_eff = c.l3.bytes > 0 ? std::min(c.l3_effective, c.l3.bytes) : c.l2.bytes;
  const int64_t per_cpu_l3 = std::max<int64_t>(c.l2.bytes, l3_eff / std::max(1, std::min(c.cpus, c.l3.shared)));
  for (int t = 0; t < 2; ++t) {
    const int elem = t == 0 ? 4 : 8, nr = gemm_nr(isa, elem);
    const int64_t kc = model_kc(c.l1d, c.l2, mr, nr, elem);
    p.gemm_kc[t] = kc;
    p.gemm_mc[t] = model_mc(c.l2, kc, mr, nr, elem);
    p.gemm_nc[t] = std::min<int64_t>(round_down(per_cpu_l3 / 2 / (kc * elem), nr), int64_t(nr) * 128);
  }
  p.l2_block = c.l2.bytes / 2;
  p.wino_m = c.l2.bytes / 8;
  p.strip_l1 = c.l1d.bytes;
  p.strip_l2 = c.l2.bytes;
  p.stream_bytes = l3_eff;
  p.gelu_table = gelu_table_model() ? 1 : 0;
  // (measured on Zen 3 only: 1080p -> 4K RGB bicubic float32, the horizontal pass 4.5 -> 3.5 us
  // per row; the same bits, so any machine may take either)
  p.resize_phases = 1;
  return p;
}

// On Zen 3 (EPYC 7xx3 VM, measured): 4 VPERMPS ymm beside 8 independent FMAs take 7.8 cycles,
// the FMAs alone 3.9 (each permute holds an FMA pipe ~2 cycles), so gelu's table form costs
// ~16 cycles per all-near vector and ~37 per mixed one against ~16 everywhere for the one fit;
// on Intel cores (port 5) and Zen 4 / 5 (shuffle pipes of their own) the permutes run beside
// the FMAs and the table is the faster form (Granite Rapids AVX2: 0.43 against 0.59 ns per
// element). Zen 3 models of family 19h: 00-0F (Milan, Chagall) and 20-5F (Vermeer, Rembrandt,
// Cezanne); Zen 4 is 10-1F and 60-AF.
bool gelu_table_model() {
#if defined(IMKERN_HAVE_CPUID)
  unsigned a, b, cx, d;
  if (!__get_cpuid(0, &a, &b, &cx, &d)) return true;
  const bool amd = b == 0x68747541u, hygon = b == 0x6f677948u;
  if (!(amd || hygon) || !__get_cpuid(1, &a, &b, &cx, &d)) return true;
  const unsigned base_family = (a >> 8) & 15;
  const unsigned family = base_family == 15 ? base_family + ((a >> 20) & 255) : base_family;
  const unsigned model = base_family == 15 ? (((a >> 16) & 15) << 4) | ((a >> 4) & 15) : (a >> 4) & 15;
  if (family == 0x17 || family == 0x18) return false;
  if (family == 0x19 && (model <= 0x0f || (model >= 0x20 && model <= 0x5f))) return false;
#endif
  return true;
}

const CpuParams& cpu_params(Isa isa) {
  const CpuParams* t = g_current.load(std::memory_order_acquire);
  if (!t) {
    cpu_caches();  // outside the lock: the probe takes a few ms
    std::lock_guard<std::mutex> lk(g_mu);
    t = g_current.load(std::memory_order_acquire);
    if (!t) {
      publish_locked();
      t = g_current.load(std::memory_order_acquire);
    }
  }
  return t[static_cast<int>(isa)];
}

void cpu_params_override(const int64_t (&values)[kNumCpuParams]) {
  std::lock_guard<std::mutex> lk(g_mu);
  for (int i = 0; i < kNumCpuParams; ++i) g_over[i] = values[i] < 0 ? -1 : values[i];
  // Republished on next use (so that setting overrides at import does not run the probe).
  g_current.store(nullptr, std::memory_order_release);
}

void cpu_params_overrides(int64_t (&values)[kNumCpuParams]) {
  std::lock_guard<std::mutex> lk(g_mu);
  for (int i = 0; i < kNumCpuParams; ++i) values[i] = g_over[i];
}

}  // namespace imkern
