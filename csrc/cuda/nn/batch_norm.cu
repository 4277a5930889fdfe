// Per-channel reductions of NCHW tensors and batch normalization (forward, backward).
//
// Reduction over (N, HW) for every channel c, deterministic in two stages: stage 1, block
// (c, p) sums the p-th chunk of the channel's N * HW elements (fixed thread striding, fixed
// shuffle tree); stage 2, one thread per channel adds the chunk partials in chunk order. The
// chunking depends on the sizes only, so results are bitwise reproducible on any GPU.
// batch_norm2d training: pass 1 mean, pass 2 sum (x - mean)^2 (two-pass variance, no
// cancellation), then y = x * scale[c] + shift[c]; running stats get the unbiased variance.
// Backward: one pass for sum(dy) and sum(dy * xhat), one element-wise pass for dx.
// Bytes: forward training 3 reads + 1 write of x-sized data; backward 2 x 2 reads + 1 write.
#include <algorithm>

#include "imkern/cuda_nn.hpp"
#include "common/nn_common.cuh"

namespace imkern {
namespace cuda {

namespace {

using nn::from_f;
using nn::to_f;

constexpr int64_t kChunk = 8192;    // elements per stage-1 block (32 per thread)
constexpr int64_t kMaxParts = 1024;  // partials per channel

struct Red {
  int64_t n, c, hw, len, parts, chunk;  // len = n * hw
};

Red make_red(int64_t n, int64_t c, int64_t hw) {
  Red r{n, c, hw, checked_mul(n, hw), 1, 1};
  checked_mul(r.len, c);
  r.parts = std::min<int64_t>(std::max<int64_t>(ceil_div<int64_t>(r.len, kChunk), 1), kMaxParts);
  r.chunk = std::max<int64_t>(ceil_div<int64_t>(r.len, r.parts), 1);
  if (checked_mul(r.c, r.parts) > INT32_MAX) throw std::overflow_error("imkern CUDA nn: too many channels");
  return r;
}

// Op(c, offset) -> float2 of the element at x[offset] (channel c). Writes ws[(c * parts + p) * 2 + {0, 1}].
template <class Op>
__global__ void channel_partial_kernel(Red r, Op op, float* __restrict__ ws) {
  __shared__ float sh[nn::kThreads / 32];
  const int64_t c = blockIdx.x / r.parts, p = blockIdx.x - c * r.parts;
  const int64_t beg = p * r.chunk, end = min(beg + r.chunk, r.len);
  float a = 0.f, b = 0.f;
  if (r.hw >= 64) {
    // Row by row: contiguous j within a row, no division per element.
    for (int64_t n = beg / r.hw; n * r.hw < end; ++n) {
      const int64_t j0 = max(beg - n * r.hw, int64_t(0)), j1 = min(end - n * r.hw, r.hw);
      const int64_t base = (n * r.c + c) * r.hw;
      for (int64_t j = j0 + threadIdx.x; j < j1; j += nn::kThreads) {
        const float2 v = op(c, base + j);
        a += v.x;
        b += v.y;
      }
    }
  } else {
    for (int64_t e = beg + threadIdx.x; e < end; e += nn::kThreads) {
      const int64_t n = e / r.hw, j = e - n * r.hw;
      const float2 v = op(c, (n * r.c + c) * r.hw + j);
      a += v.x;
      b += v.y;
    }
  }
  a = nn::block_sum<nn::kThreads>(a, sh);
  b = nn::block_sum<nn::kThreads>(b, sh);
  if (threadIdx.x == 0) {
    ws[(c * r.parts + p) * 2] = a;
    ws[(c * r.parts + p) * 2 + 1] = b;
  }
}

template <class Fin>
__global__ void channel_final_kernel(Red r, const float* __restrict__ ws, Fin fin) {
  for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < r.c;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float a = 0.f, b = 0.f;
    for (int64_t p = 0; p < r.parts; ++p) {
      a += ws[(c * r.parts + p) * 2];
      b += ws[(c * r.parts + p) * 2 + 1];
    }
    fin(c, a, b);
  }
}

template <class Op, class Fin>
void channel_reduce(const Red& r, const Op& op, const Fin& fin, float* ws, cudaStream_t st) {
  channel_partial_kernel<<<static_cast<unsigned>(r.c * r.parts), nn::kThreads, 0, st>>>(r, op, ws);
  IMKERN_CUDA_CHECK_LAUNCH();
  channel_final_kernel<<<nn::grid_for(r.c), nn::kThreads, 0, st>>>(r, ws, fin);
  IMKERN_CUDA_CHECK_LAUNCH();
}

// ---- ops and finals --------------------------------------------------------------------------
template <typename T>
struct ValueOp {
  const T* x;
  __device__ float2 operator()(int64_t, int64_t i) const { return make_float2(to_f(x[i]), 0.f); }
};
template <typename T>
struct StoreSum {
  T* out;
  __device__ void operator()(int64_t c, float a, float) const { out[c] = from_f<T>(a); }
};

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
  const int64_t gx = std::min<int64_t>(ceil_div<int64_t>(hw, nn::kThreads), 1024);
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

void channel_sum_cuda(DType dt, int64_t n, int64_t c, int64_t hw, const void* x, void* out, void* stream) {
  if (n < 0 || c < 0 || hw < 0) throw std::invalid_argument("channel_sum: negative size");
  if (c == 0) return;
  const Red r = make_red(n, c, hw);
  cudaStream_t st = as_stream(stream);
  nn::StreamBuffer ws(static_cast<size_t>(c * r.parts) * 2 * sizeof(float), st);
  nn::dispatch_float(dt, "channel_sum", [&](auto tag) {
    using T = typename decltype(tag)::type;
    channel_reduce(r, ValueOp<T>{static_cast<const T*>(x)}, StoreSum<T>{static_cast<T*>(out)}, ws.as<float>(), st);
  });
}

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
  nn::StreamBuffer ws((parts_floats + 3 * static_cast<size_t>(c)) * sizeof(float), st);
  float* partial = ws.as<float>();
  float* mean = partial + parts_floats;
  float* scale = mean + c;
  float* shift = scale + c;
  nn::dispatch_float(dt, "batch_norm2d", [&](auto tag) {
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
      bn_eval_params_kernel<T><<<nn::grid_for(c), nn::kThreads, 0, st>>>(c, weight, bias, running_mean, running_var,
                                                                          static_cast<float>(eps), scale, shift);
      IMKERN_CUDA_CHECK_LAUNCH();
    }
    bn_apply_kernel<T><<<plane_grid(n * c, hw), nn::kThreads, 0, st>>>(n * c, c, hw, px, scale, shift,
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
  nn::StreamBuffer ws((parts_floats + 4 * static_cast<size_t>(c)) * sizeof(float), st);
  float* partial = ws.as<float>();
  float* mean = partial + parts_floats;
  float* invstd = mean + c;
  float* sum_g = invstd + c;
  float* sum_gx = sum_g + c;
  const float inv_len = static_cast<float>(1.0 / static_cast<double>(r.len));
  nn::dispatch_float(dt, "batch_norm2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = static_cast<const T*>(x);
    const T* pg = static_cast<const T*>(grad_y);
    if (training) {
      channel_reduce(r, ValueOp<T>{px}, MeanFin{mean, inv_len}, partial, st);
      channel_reduce(r, SqDevOp<T>{px, mean}, InvstdFin{invstd, inv_len, static_cast<float>(eps)}, partial, st);
    } else {
      bn_stats_kernel<<<nn::grid_for(c), nn::kThreads, 0, st>>>(c, running_mean, running_var,
                                                                static_cast<float>(eps), mean, invstd);
      IMKERN_CUDA_CHECK_LAUNCH();
    }
    channel_reduce(r, GradOp<T>{pg, px, mean, invstd}, GradFin{sum_g, sum_gx, grad_weight, grad_bias}, partial, st);
    bn_backward_apply_kernel<T><<<plane_grid(n * c, hw), nn::kThreads, 0, st>>>(
        n * c, c, hw, training, inv_len, pg, px, weight, mean, invstd, sum_g, sum_gx, static_cast<T*>(grad_x));
    IMKERN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace cuda
}  // namespace imkern
