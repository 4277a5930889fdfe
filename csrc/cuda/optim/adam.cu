// Adam / AdamW step (torch.optim.Adam, AdamW, single-tensor form) in one grid-stride pass over
// param, grad and the moment buffers, on the caller's stream. Storage float32/float16/bfloat16,
// arithmetic in float32. Bytes/element: 7-9 * sizeof(T); ~12 FLOPs, a sqrt and a division.
// Not yet run on a GPU.
#include "imkern/optim.hpp"
#include "common/common.cuh"

namespace imkern {
namespace cuda {

namespace {

template <typename T>
__global__ void adam_step_kernel(int64_t n, T* __restrict__ p, const T* __restrict__ g0, T* __restrict__ m,
                                 T* __restrict__ v, T* __restrict__ vmax, float sign, float wd, float decay,
                                 bool decoupled, bool amsgrad, float w1, float beta2, float one_m_beta2,
                                 float bias2_sqrt, float eps, float neg_step) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float pi = to_f(p[i]);
    float g = sign * to_f(g0[i]);
    if (decoupled)
      pi = pi * decay;
    else
      g = g + wd * pi;
    const float m0 = to_f(m[i]);
    const float mi = w1 < 0.5f ? m0 + w1 * (g - m0) : g - (g - m0) * (1.f - w1);
    const float vi = to_f(v[i]) * beta2 + one_m_beta2 * (g * g);
    m[i] = from_f<T>(mi);
    v[i] = from_f<T>(vi);
    float vu = vi;
    if (amsgrad) {
      const float vm = to_f(vmax[i]);
      vu = (vm < vi || isnan(vi)) ? vi : vm;
      vmax[i] = from_f<T>(vu);
    }
    const float denom = sqrtf(vu) / bias2_sqrt + eps;
    p[i] = from_f<T>(pi + neg_step * (mi / denom));
  }
}

}  // namespace

void adam_step_cuda(DType dt, void* param, const void* grad, void* exp_avg, void* exp_avg_sq, void* max_exp_avg_sq,
                    int64_t n, const AdamStep& s, void* stream) {
  if (n < 0) throw std::invalid_argument("adam_step: negative size");
  if (s.amsgrad && max_exp_avg_sq == nullptr) throw std::invalid_argument("adam_step: max_exp_avg_sq missing");
  if (n == 0) return;
  const bool dec = s.decoupled && s.weight_decay != 0.0;
  dispatch_float(dt, "adam_step", [&](auto tag) {
    using T = typename decltype(tag)::type;
    adam_step_kernel<T><<<grid_for(n), kThreads, 0, as_stream(stream)>>>(
        n, static_cast<T*>(param), static_cast<const T*>(grad), static_cast<T*>(exp_avg),
        static_cast<T*>(exp_avg_sq), static_cast<T*>(max_exp_avg_sq), s.maximize ? -1.f : 1.f,
        s.decoupled ? 0.f : static_cast<float>(s.weight_decay), static_cast<float>(1.0 - s.lr * s.weight_decay), dec,
        s.amsgrad, static_cast<float>(1.0 - s.beta1), static_cast<float>(s.beta2),
        static_cast<float>(1.0 - s.beta2), static_cast<float>(s.bias2_sqrt), static_cast<float>(s.eps),
        static_cast<float>(-s.step_size));
    IMKERN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace cuda
}  // namespace imkern
