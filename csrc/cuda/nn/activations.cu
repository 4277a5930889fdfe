// Element-wise activations and their gradients: relu, leaky_relu, sigmoid, tanh, gelu (exact,
// erf form). One grid-stride loop per call, float32 math, storage type T.
// Bytes: 2 * sizeof(T) per element forward, 3-4 * sizeof(T) backward; a few FLOPs (sigmoid,
// tanh, gelu: one transcendental). Semantics follow torch: relu/leaky_relu keep NaN, the
// relu gradient is grad * (x > 0), leaky_relu's grad * (x > 0 ? 1 : slope), sigmoid's
// grad * y * (1 - y), tanh's grad * (1 - y^2), gelu's grad * (Phi(x) + x * phi(x)).
#include "imkern/nn.hpp"
#include "common/common.cuh"

namespace imkern {
namespace cuda {

namespace {


__device__ __forceinline__ float act_fwd(Activation a, float x, float slope) {
  switch (a) {
    case Activation::relu: return x < 0.f ? 0.f : x;
    case Activation::leaky_relu: return x > 0.f ? x : x * slope;
    case Activation::sigmoid: return 1.f / (1.f + expf(-x));
    case Activation::tanh: return tanhf(x);
    case Activation::gelu: return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
  }
  return x;
}

template <typename T>
__global__ void activation_kernel(Activation a, int64_t n, const T* __restrict__ x, T* __restrict__ y, float slope) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = from_f<T>(act_fwd(a, to_f(x[i]), slope));
}

// x or y may be null (see cuda_nn.hpp); the launcher guarantees the one needed is present.
template <typename T>
__global__ void activation_backward_kernel(Activation a, int64_t n, const T* __restrict__ gy,
                                           const T* __restrict__ x, const T* __restrict__ y, T* __restrict__ gx,
                                           float slope) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float g = to_f(gy[i]);
    float d;
    switch (a) {
      case Activation::relu: d = (x ? to_f(x[i]) : to_f(y[i])) > 0.f ? g : 0.f; break;
      case Activation::leaky_relu: {
        const float v = x ? to_f(x[i]) : to_f(y[i]);  // y > 0 iff x > 0 for a positive slope
        d = v > 0.f ? g : g * slope;
        break;
      }
      case Activation::sigmoid: {
        const float s = y ? to_f(y[i]) : 1.f / (1.f + expf(-to_f(x[i])));
        d = g * s * (1.f - s);
        break;
      }
      case Activation::tanh: {
        const float t = y ? to_f(y[i]) : tanhf(to_f(x[i]));
        d = g * (1.f - t * t);
        break;
      }
      case Activation::gelu: {
        const float v = to_f(x[i]);
        const float cdf = 0.5f * (1.f + erff(v * 0.70710678118654752f));
        const float pdf = 0.39894228040143268f * expf(-0.5f * v * v);
        d = g * (cdf + v * pdf);
        break;
      }
      default: d = g;
    }
    gx[i] = from_f<T>(d);
  }
}

void check_act(Activation a) {
  const int v = static_cast<int>(a);
  if (v < 0 || v > 4) throw std::invalid_argument("activation: unknown activation code");
}

}  // namespace

void activation_cuda(DType dt, Activation a, int64_t n, const void* x, void* y, float negative_slope, void* stream) {
  check_act(a);
  if (n < 0) throw std::invalid_argument("activation: negative size");
  if (n == 0) return;
  dispatch_float(dt, "activation", [&](auto tag) {
    using T = typename decltype(tag)::type;
    activation_kernel<T><<<grid_for(n), kThreads, 0, as_stream(stream)>>>(
        a, n, static_cast<const T*>(x), static_cast<T*>(y), negative_slope);
    IMKERN_CUDA_CHECK_LAUNCH();
  });
}

void activation_backward_cuda(DType dt, Activation a, int64_t n, const void* grad_y, const void* x, const void* y,
                              void* grad_x, float negative_slope, void* stream) {
  check_act(a);
  if (n < 0) throw std::invalid_argument("activation_backward: negative size");
  const bool needs_x = a == Activation::gelu || (a == Activation::leaky_relu && !(negative_slope > 0.f));
  if (needs_x && !x) throw std::invalid_argument("activation_backward: this activation needs the input x");
  if (!x && !y) throw std::invalid_argument("activation_backward: needs the input x or the output y");
  if (n == 0) return;
  dispatch_float(dt, "activation_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    activation_backward_kernel<T><<<grid_for(n), kThreads, 0, as_stream(stream)>>>(
        a, n, static_cast<const T*>(grad_y), static_cast<const T*>(x), static_cast<const T*>(y),
        static_cast<T*>(grad_x), negative_slope);
    IMKERN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace cuda
}  // namespace imkern
