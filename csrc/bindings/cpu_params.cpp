// Run-time CPU parameters (imkern/cpu_params.hpp): the detected caches, the parameters in
// effect per ISA, and their overrides (validated by imkern._runtime.set_cpu_params), and the
// FMA-peak probe of the benchmark.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "imkern/cpu_params.hpp"
#include "imkern/dispatch.hpp"
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
  return d;
}

}  // namespace

IMKERN_BINDINGS(cpu_params) {
  m.def("cpu_caches", [] {
    const imkern::CpuCaches& c = imkern::cpu_caches();
    py::dict d;
    d["l1d"] = cache_dict(c.l1d);
    d["l2"] = cache_dict(c.l2);
    d["l3"] = cache_dict(c.l3);
    d["cpus"] = c.cpus;
    d["l3_share"] = c.l3_share;
    d["l3_effective"] = c.l3_effective;
    d["probe_ms"] = c.probe_ms;
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
    return params_dict(model ? imkern::cpu_params_model(i) : imkern::cpu_params(i));
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
}
