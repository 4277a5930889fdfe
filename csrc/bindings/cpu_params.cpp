// Run-time CPU parameters (imkern/cpu_params.hpp): the detected caches, the parameters in
// effect per ISA, and their overrides (validated by imkern._runtime.set_cpu_params), and the
// FMA-peak and copy probes of the benchmark.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>

#include "imkern/cpu_params.hpp"
#include "imkern/llc_probe.hpp"
#include "imkern/dispatch.hpp"
#include "imkern/parallel.hpp"
#include "registry.hpp"

namespace py = pybind11;

namespace imkern {
IMKERN_DECLARE_FOR_EACH_ISA(double fma_peak_probe(double seconds);)
}

namespace {

py::dict cache_dict(const imkern::CacheInfo& c) {
  py::dict d;
  d["bytes"] = c.bytes;
  d["ways"] = c.ways;
  d["line"] = c.line;
  d["sets"] = c.sets;
  d["shared_cpus"] = c.shared;
  d["cpuid_shared"] = c.cpuid_shared;
  return d;
}

imkern::Isa isa_from(const std::string& s) {
  if (s == "baseline") return imkern::Isa::baseline;
  if (s == "avx2") return imkern::Isa::avx2;
  if (s == "avx512") return imkern::Isa::avx512;
  if (s.empty()) return imkern::isa_active();
  throw std::invalid_argument("isa: expected 'baseline', 'avx2' or 'avx512', got '" + s + "'");
}

// A 1-D contiguous uint8 array's pointer and size (the copy probe's arguments).
std::pair<char*, int64_t> byte_array(const py::array& a, const char* name, bool writable) {
  if (a.ndim() != 1 || a.itemsize() != 1 || a.dtype().kind() != 'u' || (a.shape(0) > 1 && a.strides(0) != 1))
    throw py::type_error(std::string("copy_probe: ") + name + ": expected a contiguous 1-D uint8 array");
  if (writable && !a.writeable()) throw py::value_error(std::string("copy_probe: ") + name + ": read-only array");
  return {static_cast<char*>(const_cast<void*>(a.data())), static_cast<int64_t>(a.shape(0))};
}

py::dict params_dict(const imkern::CpuParams& p) {
  py::dict d;
  d["gemm_mc"] = p.gemm_mc[0];
  d["gemm_kc"] = p.gemm_kc[0];
  d["gemm_nc"] = p.gemm_nc[0];
  d["gemm_mc_f64"] = p.gemm_mc[1];
  d["gemm_kc_f64"] = p.gemm_kc[1];
  d["gemm_nc_f64"] = p.gemm_nc[1];
  d["l2_block"] = p.l2_block;
  d["wino_m"] = p.wino_m;
  d["strip_l1"] = p.strip_l1;
  d["strip_l2"] = p.strip_l2;
  d["stream_bytes"] = p.stream_bytes;
  d["gelu_table"] = p.gelu_table;
  d["resize_phases"] = p.resize_phases;
  return d;
}

// The probe's readings: bandwidths in bytes per second, footprints in bytes.
py::dict probe_dict(const imkern::LlcProbe& r) {
  py::dict d;
  d["l2"] = r.l2;
  d["cap"] = r.cap;
  d["fallback"] = r.fallback;
  d["bw_mem"] = r.bw_mem;
  d["bw_l3"] = r.bw_l3;
  py::list bytes, bw, passes;
  for (int i = 0; i < r.n; ++i) {
    bytes.append(r.bytes[i]);
    bw.append(r.bw[i]);
    passes.append(r.passes[i]);
  }
  d["bytes"] = bytes;
  d["bw"] = bw;
  d["passes"] = passes;
  d["timed_out"] = r.timed_out;
  d["decided"] = r.decided;
  return d;
}

}  // namespace

IMKERN_BINDINGS(cpu_params) {
  // The effective-L3 decision on given readings (the keys of cpu_caches()["probe"]; "passes" is
  // not read), for tests: returns (bytes, reason).
  m.def("_llc_decide", [](const py::dict& d) {
    imkern::LlcProbe r;
    r.l2 = d["l2"].cast<int64_t>();
    r.cap = d["cap"].cast<int64_t>();
    r.fallback = d["fallback"].cast<int64_t>();
    r.bw_mem = d["bw_mem"].cast<double>();
    r.bw_l3 = d["bw_l3"].cast<double>();
    r.timed_out = d["timed_out"].cast<bool>();
    const auto bytes = d["bytes"].cast<std::vector<int64_t>>();
    const auto bw = d["bw"].cast<std::vector<double>>();
    if (bytes.size() != bw.size() || bytes.size() > size_t(imkern::LlcProbe::kMax))
      throw std::invalid_argument("_llc_decide: bytes and bw: equal lengths, at most 12");
    r.n = static_cast<int>(bytes.size());
    for (int i = 0; i < r.n; ++i) {
      r.bytes[i] = bytes[size_t(i)];
      r.bw[i] = bw[size_t(i)];
    }
    const char* why = "";
    const int64_t v = imkern::llc_decide(r, &why);
    return py::make_tuple(v, std::string(why));
  });

  // The probe itself on footprints 4 l2, 8 l2, ... up to cap (bytes), for tests: its readings
  // (fallback = cap), as cpu_caches()["probe"] gives the machine's.
  // (l2 > cap / 4, not 4 l2 > cap: no overflow for any l2; and at most kMax footprints up to
  // the cap, or the probe would stop short of it and report the cap as read at cache speed)
  m.def("_llc_probe", [](int64_t l2, int64_t cap) {
    if (l2 <= 0 || cap > (int64_t(1) << 30) || l2 > cap / 4 || cap / 4 / l2 >= (int64_t(1) << imkern::LlcProbe::kMax))
      throw std::invalid_argument("_llc_probe: need 0 < 4 l2 <= cap <= 1 GiB and cap < 4 l2 2^12, got l2 " +
                                  std::to_string(l2) + ", cap " + std::to_string(cap));
    imkern::LlcProbe r;
    {
      py::gil_scoped_release nogil;
      imkern::llc_probe_run(l2, cap, r);
    }
    r.fallback = cap;
    return probe_dict(r);
  }, py::arg("l2"), py::arg("cap"));
  // The effective L3's bounds from a cache description (l3_inclusive: True, False or None for
  // unknown), for tests: {"nominal", "cap", "fallback"} in bytes, as detect() computes them.
  m.def("_llc_bounds", [](int64_t l2, int64_t l3, int64_t l3_share, std::optional<bool> l3_inclusive, bool hypervisor) {
    if (l2 < 0 || l3 <= 0 || l3_share < 0)
      throw std::invalid_argument("_llc_bounds: need l2 >= 0, l3 > 0, l3_share >= 0");
    const imkern::LlcBounds b =
        imkern::llc_bounds(l2, l3, l3_share, l3_inclusive ? int(*l3_inclusive) : -1, hypervisor);
    py::dict d;
    d["nominal"] = b.nominal;
    d["cap"] = b.cap;
    d["fallback"] = b.fallback;
    return d;
  }, py::arg("l2"), py::arg("l3"), py::arg("l3_share"), py::arg("l3_inclusive"), py::arg("hypervisor"));
  // The first call in a process may run the effective-L3 probe (~15-75 ms, up to its time
  // budget): without the GIL, so other Python threads run meanwhile (the probe calls no Python).
  m.def("cpu_caches", [] {
    {
      py::gil_scoped_release nogil;
      imkern::cpu_caches();
    }
    const imkern::CpuCaches& c = imkern::cpu_caches();
    py::dict d;
    d["l1d"] = cache_dict(c.l1d);
    d["l2"] = cache_dict(c.l2);
    d["l3"] = cache_dict(c.l3);
    d["cpus"] = c.cpus;
    d["l3_share"] = c.l3_share;
    d["l3_effective"] = c.l3_effective;
    d["probe_ms"] = c.probe_ms;
    const imkern::LlcReport& llc = imkern::cpu_llc_report();
    d["l3_reason"] = std::string(llc.reason);
    d["hypervisor"] = llc.hypervisor;
    d["l3_inclusive"] = llc.l3_inclusive < 0 ? py::object(py::none()) : py::object(py::bool_(llc.l3_inclusive != 0));
    d["probe_cpu_ms"] = llc.cpu_ms;
    d["probe"] = probe_dict(llc.probe);
    d["l3_from"] = std::string(llc.from);
    d["cache_file"] = llc.cache_file.empty() ? py::object(py::none()) : py::object(py::str(llc.cache_file));
    d["source"] = std::string(c.source);
    return d;
  });
  m.def("cpu_param_names", [] {
    py::list out;
    for (int i = 0; i < imkern::kNumCpuParams; ++i) out.append(std::string(imkern::cpu_param_name(i)));
    return out;
  });
  // The parameters in effect for `isa` ("" = the active one), or the model alone.
  m.def("cpu_params", [](const std::string& isa, bool model) {
    const imkern::Isa i = isa_from(isa);
    imkern::CpuParams p;
    {
      py::gil_scoped_release nogil;  // the model reads cpu_caches(): the first probe (see above)
      p = model ? imkern::cpu_params_model(i) : imkern::cpu_params(i);
    }
    return params_dict(p);
  }, py::arg("isa") = "", py::arg("model") = false);
  m.def("cpu_params_override", [](const std::vector<int64_t>& v) {
    if (v.size() != imkern::kNumCpuParams) throw std::invalid_argument("cpu_params_override: wrong length");
    int64_t a[imkern::kNumCpuParams];
    for (int i = 0; i < imkern::kNumCpuParams; ++i) a[i] = v[static_cast<size_t>(i)];
    imkern::cpu_params_override(a);
  });
  m.def("cpu_params_overrides", [] {
    int64_t a[imkern::kNumCpuParams];
    imkern::cpu_params_overrides(a);
    return std::vector<int64_t>(a, a + imkern::kNumCpuParams);
  });
  // FLOP/s of register-only FMA chains on the calling thread for the active ISA (the bench
  // runs it on every thread at once).
  m.def("fma_peak_probe", [](double seconds) {
    py::gil_scoped_release nogil;
    return IMKERN_CALL(fma_peak_probe, seconds);
  }, py::arg("seconds") = 0.05);
  // Copies src into dst (1-D byte buffers of one size) with the C library's memcpy on the
  // imkern threads, in chunks of whole pages: the bench's reference copy, at the rate the
  // machine copies with the threads the kernels use (a single-thread copy reads ~25 GB/s on the
  // 2-vCPU Zen 4 VM where two threads copy 35-45).
  m.def("copy_probe", [](const py::array& dst, const py::array& src) {
    const auto d = byte_array(dst, "dst", true), s = byte_array(src, "src", false);
    if (d.second != s.second)
      throw py::value_error("copy_probe: dst and src must have the same size, got " + std::to_string(d.second) +
                            " and " + std::to_string(s.second));
    if (d.first < s.first + s.second && s.first < d.first + d.second)
      throw py::value_error("copy_probe: dst and src must not overlap");
    const int64_t n = d.second, threads = std::max(1, imkern::get_num_threads());
    // four chunks per thread (a stolen vCPU's share goes to the other), whole 4 KiB pages, >= 64 KiB
    const int64_t grain = std::max<int64_t>(int64_t{64} << 10, (n / (4 * threads) + 4095) / 4096 * 4096);
    py::gil_scoped_release nogil;
    imkern::parallel_for(0, n, grain, [&](int64_t lo, int64_t hi) {
      std::memcpy(d.first + lo, s.first + lo, static_cast<size_t>(hi - lo));
    });
  }, py::arg("dst"), py::arg("src"));
}
