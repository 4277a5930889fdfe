// Batch normalization (forward, backward) on NCHW tensors, through the per-channel reduction
// of channel_reduce.cuh: over (N, HW) for every channel c, deterministic in two stages: stage 1, block
// (c, p) sums the p-th chunk of the channel's N * HW elements (fixed thread striding, fixed
// shuffle tree); stage 2, one thread per channel adds the chunk partials in chunk order. The
// chunking depends on the sizes only, so results are bitwise reproducible on any GPU.
// batch_norm2d training: pass 1 mean, pass 2 sum (x - mean)^2 (two-pass variance, no
// cancellation), then y = x * scale[c] + shift[c]; running stats get the unbiased variance.
// Backward: one pass for sum(dy) and sum(dy * xhat), one element-wise pass for dx.
// Bytes: forward training 3 reads + 1 write of x-sized data; backward 2 x 2 reads + 1 write.
#include <algorithm>

#include "imkern/nn.hpp"
#include "common/common.cuh"
#include "nn/channel_reduce.cuh"

namespace imkern {
namespace cuda {

namespace {

using namespace nn::channel;

template <typename T>
struct SqDevOp {  // (x - mean[c])^2
  const T* x;
  const float* mean;
  __device__ float2 operator()(int64_t c, int64_t i) const {
    const float d = to_f(x[i]) - mean[c];
    return make_float2(d * d, 0.f);
  }
};
struct MeanFin {
  float* mean;
  float inv_len;
  __device__ void operator()(int64_t c, float a, float) const { mean[c] = a * inv_len; }
};
// Training statistics -> scale/shift of y = x * scale + shift, running stats update.
struct VarFin {
  const float *mean, *w, *b;
  float *rm, *rv, *scale, *shift;
  float inv_len, unbias, momentum, eps;
  __device__ void operator()(int64_t c, float a, float) const {
    const float var = a * inv_len;
    const float invstd = 1.f / sqrtf(var + eps);
    const float sc = (w ? w[c] : 1.f) * invstd;
    scale[c] = sc;
    shift[c] = (b ? b[c] : 0.f) - mean[c] * sc;
    if (rm) rm[c] = (1.f - momentum) * rm[c] + momentum * mean[c];
    if (rv) rv[c] = (1.f - momentum) * rv[c] + momentum * var * unbias;
    // For the backward formulas: keep invstd in place of the variance.
  }
};

template <typename T>
__global__ void bn_eval_params_kernel(int64_t C, const float* w, const float* b, const float* rm, const float* rv,
                                      float eps, float* scale, float* shift) {
  for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < C;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float invstd = 1.f / sqrtf(rv[c] + eps);
    const float sc = (w ? w[c] : 1.f) * invstd;
    scale[c] = sc;
    shift[c] = (b ? b[c] : 0.f) - rm[c] * sc;
  }
}

inline dim3 plane_grid(int64_t planes, int64_t hw) {
  const int64_t gx = std::min<int64_t>(ceil_div<int64_t>(hw, kThreads), 1024);
  const int64_t gy = std::min<int64_t>(planes, 65535);
  return dim3(static_cast<unsigned>(std::max<int64_t>(gx, 1)), static_cast<unsigned>(gy));
}

template <typename T>
__global__ void bn_apply_kernel(int64_t planes, int64_t C, int64_t hw, const T* __restrict__ x,
                                const float* __restrict__ scale, const float* __restrict__ shift, T* __restrict__ y) {
  for (int64_t pl = blockIdx.y; pl < planes; pl += gridDim.y) {
    const int64_t c = pl % C;
    const float sc = scale[c], sf = shift[c];
    const T* xp = x + pl * hw;
    T* yp = y + pl * hw;
    for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < hw;
         j += static_cast<int64_t>(gridDim.x) * blockDim.x)
      yp[j] = from_f<T>(fmaf(to_f(xp[j]), sc, sf));
  }
}

// Backward: sums of dy and dy * xhat, with xhat = (x - mean[c]) * invstd[c].
template <typename T>
struct GradOp {
  const T *gy, *x;
  const float *mean, *invstd;
  __device__ float2 operator()(int64_t c, int64_t i) const {
    const float g = to_f(gy[i]);
    return make_float2(g, g * (to_f(x[i]) - mean[c]) * invstd[c]);
  }
};
struct GradFin {
  float *sum_g, *sum_gx, *gw, *gb;
  __device__ void operator()(int64_t c, float a, float b) const {
    sum_g[c] = a;
    sum_gx[c] = b;
    if (gb) gb[c] = a;
    if (gw) gw[c] = b;
  }
};

// mean/invstd from batch statistics (training) or running stats (eval).
__global__ void bn_stats_kernel(int64_t C, const float* rm, const float* rv, float eps, float* mean, float* invstd) {
  for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < C;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    mean[c] = rm[c];
    invstd[c] = 1.f / sqrtf(rv[c] + eps);
  }
}
struct InvstdFin {
  float* invstd;
  float inv_len, eps;
  __device__ void operator()(int64_t c, float a, float) const { invstd[c] = 1.f / sqrtf(a * inv_len + eps); }
};

template <typename T>
__global__ void bn_backward_apply_kernel(int64_t planes, int64_t C, int64_t hw, bool training, float inv_len,
                                         const T* __restrict__ gy, const T* __restrict__ x,
                                         const float* __restrict__ w, const float* __restrict__ mean,
                                         const float* __restrict__ invstd, const float* __restrict__ sum_g,
                                         const float* __restrict__ sum_gx, T* __restrict__ gx) {
  for (int64_t pl = blockIdx.y; pl < planes; pl += gridDim.y) {
    const int64_t c = pl % C;
    const float is = invstd[c], sc = (w ? w[c] : 1.f) * is, mu = mean[c];
    const float mg = sum_g[c] * inv_len, mgx = sum_gx[c] * inv_len;
    const T* gp = gy + pl * hw;
    const T* xp = x + pl * hw;
    T* op = gx + pl * hw;
    for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < hw;
         j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
      const float g = to_f(gp[j]);
      float d;
      if (training) {
        const float xh = (to_f(xp[j]) - mu) * is;
        d = sc * (g - mg - xh * mgx);
      } else {
        d = sc * g;
      }
      op[j] = from_f<T>(d);
    }
  }
}

}  // namespace

void batch_norm2d_cuda(DType dt, int64_t n, int64_t c, int64_t hw, const void* x, const float* weight,
                       const float* bias, float* running_mean, float* running_var, bool training, double momentum,
                       double eps, void* y, void* stream) {
  if (n < 0 || c < 0 || hw < 0) throw std::invalid_argument("batch_norm2d: negative size");
  if (!training && (!running_mean || !running_var))
    throw std::invalid_argument("batch_norm2d: evaluation mode needs running_mean and running_var");
  const Red r = make_red(n, c, hw);
  if (r.len == 0 || c == 0) return;
  cudaStream_t st = as_stream(stream);
  // ws: partials | mean | scale | shift
  const size_t parts_floats = static_cast<size_t>(c * r.parts) * 2;
  DeviceBuffer ws((parts_floats + 3 * static_cast<size_t>(c)) * sizeof(float), st);
  float* partial = ws.get<float>();
  float* mean = partial + parts_floats;
  float* scale = mean + c;
  float* shift = scale + c;
  dispatch_float(dt, "batch_norm2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = static_cast<const T*>(x);
    if (training) {
      const float inv_len = static_cast<float>(1.0 / static_cast<double>(r.len));
      const float unbias = r.len > 1 ? static_cast<float>(static_cast<double>(r.len) / (r.len - 1)) : NAN;
      channel_reduce(r, ValueOp<T>{px}, MeanFin{mean, inv_len}, partial, st);
      channel_reduce(r, SqDevOp<T>{px, mean},
                     VarFin{mean, weight, bias, running_mean, running_var, scale, shift, inv_len, unbias,
                            static_cast<float>(momentum), static_cast<float>(eps)},
                     partial, st);
    } else {
      bn_eval_params_kernel<T><<<grid_for(c), kThreads, 0, st>>>(c, weight, bias, running_mean, running_var,
                                                                          static_cast<float>(eps), scale, shift);
      IMKERN_CUDA_CHECK_LAUNCH();
    }
    bn_apply_kernel<T><<<plane_grid(n * c, hw), kThreads, 0, st>>>(n * c, c, hw, px, scale, shift,
                                                                        static_cast<T*>(y));
    IMKERN_CUDA_CHECK_LAUNCH();
  });
}

void batch_norm2d_backward_cuda(DType dt, int64_t n, int64_t c, int64_t hw, const void* grad_y, const void* x,
                                const float* weight, const float* running_mean, const float* running_var,
                                bool training, double eps, void* grad_x, float* grad_weight, float* grad_bias,
                                void* stream) {
  if (n < 0 || c < 0 || hw < 0) throw std::invalid_argument("batch_norm2d_backward: negative size");
  if (!training && (!running_mean || !running_var))
    throw std::invalid_argument("batch_norm2d_backward: evaluation mode needs running_mean and running_var");
  const Red r = make_red(n, c, hw);
  if (c == 0) return;
  cudaStream_t st = as_stream(stream);
  if (r.len == 0) {  // no elements: zero parameter gradients, nothing else to write
    if (grad_weight) IMKERN_CUDA_CHECK(cudaMemsetAsync(grad_weight, 0, c * sizeof(float), st));
    if (grad_bias) IMKERN_CUDA_CHECK(cudaMemsetAsync(grad_bias, 0, c * sizeof(float), st));
    return;
  }
  const size_t parts_floats = static_cast<size_t>(c * r.parts) * 2;
  DeviceBuffer ws((parts_floats + 4 * static_cast<size_t>(c)) * sizeof(float), st);
  float* partial = ws.get<float>();
  float* mean = partial + parts_floats;
  float* invstd = mean + c;
  float* sum_g = invstd + c;
  float* sum_gx = sum_g + c;
  const float inv_len = static_cast<float>(1.0 / static_cast<double>(r.len));
  dispatch_float(dt, "batch_norm2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = static_cast<const T*>(x);
    const T* pg = static_cast<const T*>(grad_y);
    if (training) {
      channel_reduce(r, ValueOp<T>{px}, MeanFin{mean, inv_len}, partial, st);
      channel_reduce(r, SqDevOp<T>{px, mean}, InvstdFin{invstd, inv_len, static_cast<float>(eps)}, partial, st);
    } else {
      bn_stats_kernel<<<grid_for(c), kThreads, 0, st>>>(c, running_mean, running_var,
                                                                static_cast<float>(eps), mean, invstd);
      IMKERN_CUDA_CHECK_LAUNCH();
    }
    channel_reduce(r, GradOp<T>{pg, px, mean, invstd}, GradFin{sum_g, sum_gx, grad_weight, grad_bias}, partial, st);
    bn_backward_apply_kernel<T><<<plane_grid(n * c, hw), kThreads, 0, st>>>(
        n * c, c, hw, training, inv_len, pg, px, weight, mean, invstd, sum_g, sum_gx, static_cast<T*>(grad_x));
    IMKERN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace cuda
}  // namespace imkern
