// The extension module imkern._core: runtime queries (ISA, threads, CUDA) and the registered
// op families (one bindings file each).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>

#include "imkern/dispatch.hpp"
#include "imkern/parallel.hpp"
#include "registry.hpp"

#if defined(IMKERN_WITH_CUDA)
#include "imkern/cuda.hpp"
#endif

namespace imkern_py {
std::vector<std::pair<std::string, RegisterFn>>& registry() {
  static std::vector<std::pair<std::string, RegisterFn>> r;
  return r;
}
}  // namespace imkern_py

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
  m.doc() = "imkern native kernels (use the imkern package, not this module directly)";
  m.attr("__version__") = IMKERN_VERSION;

  m.def("isa_supported", [] { return std::string(imkern::isa_name(imkern::isa_supported())); });
  m.def("l3_cache_bytes", [] { return imkern::last_level_cache_bytes(); });
  m.def("isa_active", [] { return std::string(imkern::isa_name(imkern::isa_active())); });
  m.def("isa_set_cap", [](const std::string& s) {
    if (s == "baseline") imkern::isa_set_cap(imkern::Isa::baseline);
    else if (s == "avx2") imkern::isa_set_cap(imkern::Isa::avx2);
    else if (s == "avx512") imkern::isa_set_cap(imkern::Isa::avx512);
    else throw std::invalid_argument("isa: expected 'baseline', 'avx2' or 'avx512', got '" + s + "'");
  });
  m.def("get_num_threads", &imkern::get_num_threads);
  m.def("set_num_threads", &imkern::set_num_threads);
  m.def("default_num_threads", &imkern::default_num_threads);

#if defined(IMKERN_WITH_CUDA)
  m.attr("cuda_built") = true;
  m.def("cuda_devices", [] {
    py::list out;
    for (const auto& dev : imkern::cuda::devices()) {
      py::dict d;
      d["id"] = dev.id;
      d["name"] = dev.name;
      d["compute_capability"] = py::make_tuple(dev.major, dev.minor);
      d["memory_bytes"] = dev.memory_bytes;
      out.append(d);
    }
    return out;
  });
#else
  m.attr("cuda_built") = false;
  m.def("cuda_devices", [] { return py::list(); });
#endif

  auto& reg = imkern_py::registry();
  std::sort(reg.begin(), reg.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [name, fn] : reg) fn(m);
}
