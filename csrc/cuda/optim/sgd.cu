// SGD step (torch.optim.SGD, single-tensor form) in one grid-stride pass over param, grad and
// the momentum buffer, on the caller's stream. Storage float32/float16/bfloat16, arithmetic in
// float32 (torch's opmath for the half types). Bytes/element: 3-5 * sizeof(T); ~6 FLOPs.
// Not yet run on a GPU.
#include "imkern/optim.hpp"
#include "common/common.cuh"

namespace imkern {
namespace cuda {

namespace {

template <typename T>
__global__ void sgd_step_kernel(int64_t n, T* __restrict__ p, const T* __restrict__ g0, T* __restrict__ buf,
                                float sign, float wd, float mom, float damp1, float lr, bool use_momentum,
                                bool nesterov, bool first) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float pi = to_f(p[i]);
    float g = sign * to_f(g0[i]);
    g = g + wd * pi;
    if (use_momentum) {
      float m = first ? g : to_f(buf[i]) * mom + damp1 * g;
      buf[i] = from_f<T>(m);
      m = to_f(buf[i]);
      g = nesterov ? g + mom * m : m;
    }
    p[i] = from_f<T>(pi - lr * g);
  }
}

}  // namespace

void sgd_step_cuda(DType dt, void* param, const void* grad, void* momentum_buf, int64_t n, const SgdStep& s,
                   void* stream) {
  if (n < 0) throw std::invalid_argument("sgd_step: negative size");
  if (s.momentum != 0.0 && momentum_buf == nullptr) throw std::invalid_argument("sgd_step: momentum buffer missing");
  if (n == 0) return;
  dispatch_float(dt, "sgd_step", [&](auto tag) {
    using T = typename decltype(tag)::type;
    sgd_step_kernel<T><<<grid_for(n), kThreads, 0, as_stream(stream)>>>(
        n, static_cast<T*>(param), static_cast<const T*>(grad), static_cast<T*>(momentum_buf),
        s.maximize ? -1.f : 1.f, static_cast<float>(s.weight_decay), static_cast<float>(s.momentum),
        static_cast<float>(1.0 - s.dampening), static_cast<float>(s.lr), s.momentum != 0.0, s.nesterov, s.first);
    IMKERN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace cuda
}  // namespace imkern
