// Bindings of the optimizer steps (csrc/include/imkern/optim.hpp), CPU and CUDA side by side
// through the helpers of bind.hpp (the GIL is released by def). CPU: NumPy arrays, updated in
// place; CUDA: device pointers from python/imkern/optim.py (CuPy arrays) and the caller's
// stream. Both take the same scalar arguments, packed into one SgdStep / AdamStep here.
// imkern.optim validates; these checks assert the kernels' assumptions.
#include <string>

#include "bind.hpp"
#include "imkern/optim.hpp"
#include "registry.hpp"

using namespace imkern_py;
using imkern::AdamStep;
using imkern::SgdStep;

namespace {

// A C-contiguous, writeable float array of dtype dt and n elements (None allowed when optional).
void* state_ptr(const Arr& a, DType dt, int64_t n, const char* name, bool required) {
  if (a.is_none()) {
    if (required) throw std::invalid_argument(std::string(name) + ": required");
    return nullptr;
  }
  if (float_dtype(a, name) != dt) throw py::type_error(std::string(name) + ": dtype differs from the parameter's");
  if (!a.c_contiguous()) throw std::invalid_argument(std::string(name) + ": must be C-contiguous");
  if (a.size() != n) throw std::invalid_argument(std::string(name) + ": size differs from the parameter's");
  return writable_data(a, name);
}

SgdStep sgd(double lr, double momentum, double dampening, double weight_decay, bool nesterov, bool maximize,
            bool first) {
  SgdStep s;
  s.lr = lr, s.momentum = momentum, s.dampening = dampening, s.weight_decay = weight_decay;
  s.nesterov = nesterov, s.maximize = maximize, s.first = first;
  return s;
}

AdamStep adam(double lr, double beta1, double beta2, double eps, double weight_decay, double step_size,
              double bias2_sqrt, bool decoupled, bool amsgrad, bool maximize) {
  AdamStep s;
  s.lr = lr, s.beta1 = beta1, s.beta2 = beta2, s.eps = eps, s.weight_decay = weight_decay;
  s.step_size = step_size, s.bias2_sqrt = bias2_sqrt;
  s.decoupled = decoupled, s.amsgrad = amsgrad, s.maximize = maximize;
  return s;
}

}  // namespace

IMKERN_BINDINGS(optim) {
  def(m, "sgd_step", [](const Arr& param, const Arr& grad, const Arr& buf, double lr, double momentum,
                        double dampening, double weight_decay, bool nesterov, bool maximize, bool first) {
    const DType dt = float_dtype(param, "param");
    const int64_t n = param.size();
    IMKERN_CALL(sgd_step, dt, state_ptr(param, dt, n, "param", true), state_ptr(grad, dt, n, "grad", true),
                state_ptr(buf, dt, n, "momentum_buffer", momentum != 0.0), n,
                sgd(lr, momentum, dampening, weight_decay, nesterov, maximize, first));
  });
  def(m, "adam_step", [](const Arr& param, const Arr& grad, const Arr& exp_avg, const Arr& exp_avg_sq,
                         const Arr& max_exp_avg_sq, double lr, double beta1, double beta2, double eps,
                         double weight_decay, double step_size, double bias2_sqrt, bool decoupled, bool amsgrad,
                         bool maximize) {
    const DType dt = float_dtype(param, "param");
    const int64_t n = param.size();
    IMKERN_CALL(adam_step, dt, state_ptr(param, dt, n, "param", true), state_ptr(grad, dt, n, "grad", true),
                state_ptr(exp_avg, dt, n, "exp_avg", true), state_ptr(exp_avg_sq, dt, n, "exp_avg_sq", true),
                state_ptr(max_exp_avg_sq, dt, n, "max_exp_avg_sq", amsgrad), n,
                adam(lr, beta1, beta2, eps, weight_decay, step_size, bias2_sqrt, decoupled, amsgrad, maximize));
  });

#if defined(IMKERN_WITH_CUDA)
  def(m, "cuda_sgd_step", [](int dtype, int64_t n, uintptr_t param, uintptr_t grad, uintptr_t buf, double lr,
                             double momentum, double dampening, double weight_decay, bool nesterov, bool maximize,
                             bool first, uintptr_t stream) {
    imkern::cuda::sgd_step_cuda(static_cast<DType>(dtype), CudaArg<void*>::get(param), CudaArg<const void*>::get(grad),
                                CudaArg<void*>::get(buf), n,
                                sgd(lr, momentum, dampening, weight_decay, nesterov, maximize, first),
                                CudaArg<void*>::get(stream));
  });
  def(m, "cuda_adam_step", [](int dtype, int64_t n, uintptr_t param, uintptr_t grad, uintptr_t exp_avg,
                              uintptr_t exp_avg_sq, uintptr_t max_exp_avg_sq, double lr, double beta1, double beta2,
                              double eps, double weight_decay, double step_size, double bias2_sqrt, bool decoupled,
                              bool amsgrad, bool maximize, uintptr_t stream) {
    imkern::cuda::adam_step_cuda(static_cast<DType>(dtype), CudaArg<void*>::get(param),
                                 CudaArg<const void*>::get(grad), CudaArg<void*>::get(exp_avg),
                                 CudaArg<void*>::get(exp_avg_sq), CudaArg<void*>::get(max_exp_avg_sq), n,
                                 adam(lr, beta1, beta2, eps, weight_decay, step_size, bias2_sqrt, decoupled, amsgrad,
                                      maximize),
                                 CudaArg<void*>::get(stream));
  });
#endif
}
