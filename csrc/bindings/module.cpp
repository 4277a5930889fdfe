// The extension module imkern._core: runtime queries (ISA, threads, CUDA) and the registered
// op families (one bindings file each).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <limits>
#include <mutex>
#include <string>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <vector>

#include "imkern/dispatch.hpp"
#include "imkern/parallel.hpp"
#include "bind.hpp"
#include "registry.hpp"

#if defined(IMKERN_WITH_CUDA)
#include "imkern/devices.hpp"
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
  m.def("cpu_feature_names", [] {  // every name IMKERN_CPU_DISABLE knows, present or not
    std::vector<std::string> names;
    for (int f = 0; f < imkern::kCpuFeatureCount; ++f)
      names.emplace_back(imkern::cpu_feature_name(static_cast<imkern::CpuFeature>(f)));
    return names;
  });
  m.def("cpu_features", [] {
    std::vector<std::string> names;
    for (int f = 0; f < imkern::kCpuFeatureCount; ++f)
      if (imkern::cpu_has(static_cast<imkern::CpuFeature>(f)))
        names.emplace_back(imkern::cpu_feature_name(static_cast<imkern::CpuFeature>(f)));
    return names;
  });
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
  m.def("set_thread_local_num_threads", &imkern::set_thread_local_num_threads);
  m.def("get_thread_local_num_threads", &imkern::get_thread_local_num_threads);
  m.def("max_num_threads", &imkern::max_num_threads);
  // For tests of the thread pool: runs parallel_for over [begin, end) with `grain` and returns,
  // per chunk in order, (lo, hi, how many times it ran, a thread id: 0 for the calling thread,
  // else 1 + the order in which other threads first appeared). With `throw_at` in a chunk,
  // that chunk throws and the call raises RuntimeError after every other chunk ran.
  imkern_py::def(m, "_parallel_probe", [](int64_t begin, int64_t end, int64_t grain, int64_t throw_at) {
    const int64_t n = imkern::parallel_chunks(begin, end, grain);
    if (n < 0 || n > (int64_t(1) << 20)) throw std::invalid_argument("_parallel_probe: 0..2^20 chunks");
    std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>> out(static_cast<size_t>(n), {-1, -1, 0, -1});
    std::mutex mu;
    std::vector<std::thread::id> seen{std::this_thread::get_id()};
    const int64_t g = grain < 1 ? 1 : grain;
    imkern::parallel_for(begin, end, grain, [&](int64_t a, int64_t b) {
      const int64_t c = (a - begin) / g;
      std::lock_guard<std::mutex> lk(mu);
      const auto me = std::this_thread::get_id();
      auto it = std::find(seen.begin(), seen.end(), me);
      if (it == seen.end()) it = seen.insert(seen.end(), me);
      auto& [lo, hi, runs, tid] = out[static_cast<size_t>(c)];
      lo = a;
      hi = b;
      ++runs;
      tid = it - seen.begin();
      if (throw_at >= a && throw_at < b) throw std::runtime_error("chunk failed on purpose");
    });
    return out;
  }, py::arg("begin"), py::arg("end"), py::arg("grain"), py::arg("throw_at") = std::numeric_limits<int64_t>::min());

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
  // The shared descriptors and enums ("types") first, so every later signature names them as
  // Python types (pybind11 writes a signature when the function is defined); then by name.
  std::sort(reg.begin(), reg.end(), [](const auto& a, const auto& b) {
    return std::make_pair(a.first != "types", a.first) < std::make_pair(b.first != "types", b.first);
  });
  for (auto& [name, fn] : reg) fn(m);
}
