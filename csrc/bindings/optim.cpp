// Bindings of the optimizer steps (csrc/include/imkern/optim.hpp). CPU: NumPy arrays, updated in
// place; CUDA: device pointers from python/imkern/optim.py (CuPy arrays) and the caller's stream.
// imkern.optim validates; these checks guard the kernels for callers that reach _core directly.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "arrays.hpp"
#include "imkern/optim.hpp"
#include "registry.hpp"

namespace py = pybind11;
using namespace imkern_py;

namespace {

// A C-contiguous float array of dtype dt and n elements (None allowed when optional).
void* state_ptr(const py::object& o, DType dt, int64_t n, const char* name, bool required) {
  if (o.is_none()) {
    if (required) throw std::invalid_argument(std::string(name) + ": required");
    return nullptr;
  }
  py::array a = py::reinterpret_borrow<py::array>(o);
  if (float_dtype(a, name) != dt) throw py::type_error(std::string(name) + ": dtype differs from the parameter's");
  if (!(a.flags() & py::array::c_style)) throw std::invalid_argument(std::string(name) + ": must be C-contiguous");
  if (static_cast<int64_t>(a.size()) != n) throw std::invalid_argument(std::string(name) + ": size differs from the parameter's");
  return writable_data(a, name);
}

}  // namespace

IMKERN_BINDINGS(optim) {
  m.def("sgd_step", [](py::array& param, const py::array& grad, const py::object& buf, double lr, double momentum,
                       double dampening, double weight_decay, bool nesterov, bool maximize, bool first) {
    const DType dt = float_dtype(param, "param");
    const int64_t n = static_cast<int64_t>(param.size());
    void* p = state_ptr(param, dt, n, "param", true);
    void* g = state_ptr(grad, dt, n, "grad", true);
    void* b = state_ptr(buf, dt, n, "momentum_buffer", momentum != 0.0);
    imkern::SgdStep s;
    s.lr = lr;
    s.momentum = momentum;
    s.dampening = dampening;
    s.weight_decay = weight_decay;
    s.nesterov = nesterov;
    s.maximize = maximize;
    s.first = first;
    py::gil_scoped_release nogil;
    IMKERN_CALL(sgd_step, dt, p, g, b, n, s);
  });
  m.def("adam_step", [](py::array& param, const py::array& grad, py::array& exp_avg, py::array& exp_avg_sq,
                        const py::object& max_exp_avg_sq, double lr, double beta1, double beta2, double eps,
                        double weight_decay, double step_size, double bias2_sqrt, bool decoupled, bool amsgrad,
                        bool maximize) {
    const DType dt = float_dtype(param, "param");
    const int64_t n = static_cast<int64_t>(param.size());
    void* p = state_ptr(param, dt, n, "param", true);
    void* g = state_ptr(grad, dt, n, "grad", true);
    void* ma = state_ptr(exp_avg, dt, n, "exp_avg", true);
    void* va = state_ptr(exp_avg_sq, dt, n, "exp_avg_sq", true);
    void* vm = state_ptr(max_exp_avg_sq, dt, n, "max_exp_avg_sq", amsgrad);
    imkern::AdamStep s;
    s.lr = lr;
    s.beta1 = beta1;
    s.beta2 = beta2;
    s.eps = eps;
    s.weight_decay = weight_decay;
    s.step_size = step_size;
    s.bias2_sqrt = bias2_sqrt;
    s.decoupled = decoupled;
    s.amsgrad = amsgrad;
    s.maximize = maximize;
    py::gil_scoped_release nogil;
    IMKERN_CALL(adam_step, dt, p, g, ma, va, vm, n, s);
  });

#if defined(IMKERN_WITH_CUDA)
  m.def("cuda_sgd_step", [](int dtype, int64_t n, uintptr_t param, uintptr_t grad, uintptr_t buf, double lr,
                            double momentum, double dampening, double weight_decay, bool nesterov, bool maximize,
                            bool first, uintptr_t stream) {
    imkern::SgdStep s;
    s.lr = lr;
    s.momentum = momentum;
    s.dampening = dampening;
    s.weight_decay = weight_decay;
    s.nesterov = nesterov;
    s.maximize = maximize;
    s.first = first;
    py::gil_scoped_release nogil;
    imkern::cuda::sgd_step_cuda(static_cast<DType>(dtype), reinterpret_cast<void*>(param),
                                reinterpret_cast<const void*>(grad), reinterpret_cast<void*>(buf), n, s,
                                reinterpret_cast<void*>(stream));
  });
  m.def("cuda_adam_step", [](int dtype, int64_t n, uintptr_t param, uintptr_t grad, uintptr_t exp_avg,
                             uintptr_t exp_avg_sq, uintptr_t max_exp_avg_sq, double lr, double beta1, double beta2,
                             double eps, double weight_decay, double step_size, double bias2_sqrt, bool decoupled,
                             bool amsgrad, bool maximize, uintptr_t stream) {
    imkern::AdamStep s;
    s.lr = lr;
    s.beta1 = beta1;
    s.beta2 = beta2;
    s.eps = eps;
    s.weight_decay = weight_decay;
    s.step_size = step_size;
    s.bias2_sqrt = bias2_sqrt;
    s.decoupled = decoupled;
    s.amsgrad = amsgrad;
    s.maximize = maximize;
    py::gil_scoped_release nogil;
    imkern::cuda::adam_step_cuda(static_cast<DType>(dtype), reinterpret_cast<void*>(param),
                                 reinterpret_cast<const void*>(grad), reinterpret_cast<void*>(exp_avg),
                                 reinterpret_cast<void*>(exp_avg_sq), reinterpret_cast<void*>(max_exp_avg_sq), n, s,
                                 reinterpret_cast<void*>(stream));
  });
#endif
}
