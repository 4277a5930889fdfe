// cross entropy (forward and backward) on logits (N, C, inner) with int64 class targets, label
// smoothing and ignore_index (torch semantics). inner == 1: one warp per sample; inner > 1:
// one thread per sample, consecutive threads reading consecutive addresses.
// Per-sample loss = (1 - eps) * ((max - x_t) + ls) + eps * (ls - mean_c (x_c - max)), ls =
// log(sum exp(x - max)) (stable for large logits); reductions use fixed shuffle trees; mean/sum reductions in one block in a fixed order; the gradient is
// w * (softmax - (1 - eps) * onehot(t) - eps / C), w = dloss (/ number of non-ignored samples).
#include <algorithm>

#include "imkern/nn.hpp"
#include "common/common.cuh"

namespace imkern {
namespace cuda {

namespace {


// ---- cross entropy ---------------------------------------------------------------------------
// Per sample: loss[s] (float) and valid[s] (1 when the target is not ignore_index).
struct CeParams {
  int64_t n, c, inner;
  float eps;
  int64_t ignore;
};

// ls = log sum exp(x - m), mean_d = mean_c (x_c - m): no term is a difference of two
// large numbers (m + ls - x_t cancels for logits ~1e6: 1e8 gave 0).
__device__ __forceinline__ float ce_loss(float m, float ls, float xt, float mean_d, float eps) {
  return (1.f - eps) * ((m - xt) + ls) + eps * (ls - mean_d);
}

// inner == 1: one warp per sample.
template <typename T>
__global__ void ce_forward_warp_kernel(CeParams p, const T* __restrict__ x, const int64_t* __restrict__ tgt,
                                       float* __restrict__ loss, unsigned char* __restrict__ valid) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (int64_t s = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) >> 5; s < p.n; s += warps) {
    const int64_t t = tgt[s];
    if (t == p.ignore) {  // warp-uniform
      if (lane == 0) {
        loss[s] = 0.f;
        valid[s] = 0;
      }
      continue;
    }
    const T* xr = x + s * p.c;
    float m = -INFINITY;
    for (int64_t i = lane; i < p.c; i += 32) m = fmaxf(m, to_f(xr[i]));
    m = warp_max(m);
    float se = 0.f, sx = 0.f;
    for (int64_t i = lane; i < p.c; i += 32) {
      const float v = to_f(xr[i]);
      se += expf(v - m);
      sx += v - m;
    }
    se = warp_sum(se);
    sx = warp_sum(sx);
    if (lane == 0) {
      float l = NAN;
      if (t >= 0 && t < p.c) l = ce_loss(m, logf(se), to_f(xr[t]), sx / static_cast<float>(p.c), p.eps);
      loss[s] = l;
      valid[s] = 1;
    }
  }
}

// inner > 1: one thread per sample (n, j); consecutive threads read consecutive j.
template <typename T>
__global__ void ce_forward_column_kernel(CeParams p, const T* __restrict__ x, const int64_t* __restrict__ tgt,
                                         float* __restrict__ loss, unsigned char* __restrict__ valid) {
  const int64_t total = p.n * p.inner;
  for (int64_t s = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; s < total;
       s += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = tgt[s];
    if (t == p.ignore) {
      loss[s] = 0.f;
      valid[s] = 0;
      continue;
    }
    const int64_t n = s / p.inner, j = s - n * p.inner;
    const T* xc = x + n * p.c * p.inner + j;
    float m = -INFINITY;
    for (int64_t i = 0; i < p.c; ++i) m = fmaxf(m, to_f(xc[i * p.inner]));
    double se = 0.0, sx = 0.0;  // one thread sums all classes: float64 sums
    for (int64_t i = 0; i < p.c; ++i) {
      const float v = to_f(xc[i * p.inner]);
      se += expf(v - m);
      sx += v - m;
    }
    float l = NAN;
    if (t >= 0 && t < p.c)
      l = ce_loss(m, static_cast<float>(::log(se)), to_f(xc[t * p.inner]), static_cast<float>(sx / p.c), p.eps);
    loss[s] = l;
    valid[s] = 1;
  }
}

// One block: total loss and number of valid samples, in a fixed order.
__global__ void ce_sum_kernel(int64_t total, const float* __restrict__ loss, const unsigned char* __restrict__ valid,
                              float* __restrict__ out_sum, float* __restrict__ out_count) {
  // The loss sum in float64 (each thread's run and the tree): a float run over N * d1 * ...
  // / 256 losses per thread drifted with the batch size (the CPU sums in double too).
  __shared__ double sh[kThreads / 32];
  double s = 0.0;
  long long cnt = 0;
  for (int64_t i = threadIdx.x; i < total; i += kThreads) {
    if (loss) s += loss[i];
    cnt += valid[i];
  }
  s = block_sum<kThreads>(s, sh);
  // The count is summed in integers (exact for any size), converted to float at the end.
  __shared__ long long shc[kThreads / 32];
  for (int o = 16; o > 0; o >>= 1) cnt += __shfl_xor_sync(0xffffffffu, cnt, o);
  if ((threadIdx.x & 31) == 0) shc[threadIdx.x >> 5] = cnt;
  __syncthreads();
  if (threadIdx.x == 0) {
    long long c = 0;
    for (int w = 0; w < kThreads / 32; ++w) c += shc[w];
    if (out_sum) *out_sum = static_cast<float>(s);
    *out_count = static_cast<float>(c);
  }
}

template <typename T>
__global__ void ce_finish_kernel(int reduction, const float* __restrict__ sum, const float* __restrict__ count,
                                 T* __restrict__ out) {
  if (threadIdx.x == 0 && blockIdx.x == 0) *out = from_f<T>(reduction == 1 ? *sum / *count : *sum);
}

template <typename T>
__global__ void float_to_t_kernel(int64_t n, const float* __restrict__ src, T* __restrict__ dst) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = from_f<T>(src[i]);
}

// Gradient scale of sample s: reduction none -> g[s]; sum -> g[0]; mean -> g[0] / count.
__device__ __forceinline__ float ce_scale(int reduction, const float* g, const float* count, int64_t s) {
  if (reduction == 0) return g[s];
  if (reduction == 2) return g[0];
  return g[0] / *count;
}

template <typename T>
__global__ void ce_backward_warp_kernel(CeParams p, int reduction, const T* __restrict__ x,
                                        const int64_t* __restrict__ tgt, const float* __restrict__ g,
                                        const float* __restrict__ count, T* __restrict__ gx) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  const float off = p.eps / static_cast<float>(p.c);
  for (int64_t s = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) >> 5; s < p.n; s += warps) {
    const int64_t t = tgt[s];
    const T* xr = x + s * p.c;
    T* gr = gx + s * p.c;
    if (t == p.ignore) {
      for (int64_t i = lane; i < p.c; i += 32) gr[i] = from_f<T>(0.f);
      continue;
    }
    const float w = (t >= 0 && t < p.c) ? ce_scale(reduction, g, count, s) : NAN;
    float m = -INFINITY;
    for (int64_t i = lane; i < p.c; i += 32) m = fmaxf(m, to_f(xr[i]));
    m = warp_max(m);
    float se = 0.f;
    for (int64_t i = lane; i < p.c; i += 32) se += expf(to_f(xr[i]) - m);
    se = warp_sum(se);
    const float inv = 1.f / se;
    for (int64_t i = lane; i < p.c; i += 32) {
      const float sm = expf(to_f(xr[i]) - m) * inv;
      gr[i] = from_f<T>(w * (sm - (i == t ? 1.f - p.eps : 0.f) - off));
    }
  }
}

template <typename T>
__global__ void ce_backward_column_kernel(CeParams p, int reduction, const T* __restrict__ x,
                                          const int64_t* __restrict__ tgt, const float* __restrict__ g,
                                          const float* __restrict__ count, T* __restrict__ gx) {
  const int64_t total = p.n * p.inner;
  const float off = p.eps / static_cast<float>(p.c);
  for (int64_t s = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; s < total;
       s += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = tgt[s];
    const int64_t n = s / p.inner, j = s - n * p.inner;
    const T* xc = x + n * p.c * p.inner + j;
    T* gc = gx + n * p.c * p.inner + j;
    if (t == p.ignore) {
      for (int64_t i = 0; i < p.c; ++i) gc[i * p.inner] = from_f<T>(0.f);
      continue;
    }
    const float w = (t >= 0 && t < p.c) ? ce_scale(reduction, g, count, s) : NAN;
    float m = -INFINITY;
    for (int64_t i = 0; i < p.c; ++i) m = fmaxf(m, to_f(xc[i * p.inner]));
    float se = 0.f;
    for (int64_t i = 0; i < p.c; ++i) se += expf(to_f(xc[i * p.inner]) - m);
    const float inv = 1.f / se;
    for (int64_t i = 0; i < p.c; ++i) {
      const float sm = expf(to_f(xc[i * p.inner]) - m) * inv;
      gc[i * p.inner] = from_f<T>(w * (sm - (i == t ? 1.f - p.eps : 0.f) - off));
    }
  }
}

__global__ void valid_flags_kernel(int64_t n, const int64_t* __restrict__ tgt, int64_t ignore,
                                   unsigned char* __restrict__ valid) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    valid[i] = tgt[i] != ignore;
}

void valid_flags(int64_t n, const int64_t* tgt, int64_t ignore, unsigned char* valid, cudaStream_t st) {
  valid_flags_kernel<<<grid_for(n), kThreads, 0, st>>>(n, tgt, ignore, valid);
  IMKERN_CUDA_CHECK_LAUNCH();
}

CeParams ce_params(int64_t n, int64_t c, int64_t inner, int reduction, double eps, int64_t ignore, const char* op) {
  if (n < 0 || c <= 0 || inner < 0) throw std::invalid_argument(std::string(op) + ": bad logits shape");
  if (reduction < 0 || reduction > 2) throw std::invalid_argument(std::string(op) + ": reduction code must be 0, 1 or 2");
  if (!(eps >= 0.0 && eps <= 1.0)) throw std::invalid_argument(std::string(op) + ": label_smoothing must be in [0, 1]");
  checked_mul(checked_mul(n, c), inner);
  return {n, c, inner, static_cast<float>(eps), ignore};
}

}  // namespace

void cross_entropy_cuda(DType dt, int64_t n, int64_t c, int64_t inner, const void* logits, const int64_t* target,
                        Reduction r, double label_smoothing, int64_t ignore_index, void* loss, void* stream) {
  const int reduction = static_cast<int>(r);
  const CeParams p = ce_params(n, c, inner, reduction, label_smoothing, ignore_index, "cross_entropy");
  const int64_t samples = n * inner;
  cudaStream_t st = as_stream(stream);
  dispatch_float(dt, "cross_entropy", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (samples == 0) {
      if (reduction == 0) return;
      // torch: mean of nothing is NaN, sum of nothing is 0.
      DeviceBuffer sc(2 * sizeof(float), st);
      IMKERN_CUDA_CHECK(cudaMemsetAsync(sc.get<float>(), 0, 2 * sizeof(float), st));  // sum = count = 0.0f
      ce_finish_kernel<T><<<1, 32, 0, st>>>(reduction, sc.get<float>(), sc.get<float>() + 1, static_cast<T*>(loss));
      IMKERN_CUDA_CHECK_LAUNCH();
      return;
    }
    DeviceBuffer lbuf(static_cast<size_t>(samples) * (sizeof(float) + 1) + 2 * sizeof(float) + 16, st);
    float* lf = lbuf.get<float>();
    float* sums = lf + samples;  // [sum, count]
    unsigned char* valid = reinterpret_cast<unsigned char*>(sums + 2);
    const T* px = static_cast<const T*>(logits);
    if (inner == 1)
      ce_forward_warp_kernel<T><<<grid_for(samples * 32), kThreads, 0, st>>>(p, px, target, lf, valid);
    else
      ce_forward_column_kernel<T><<<grid_for(samples), kThreads, 0, st>>>(p, px, target, lf, valid);
    IMKERN_CUDA_CHECK_LAUNCH();
    if (reduction == 0) {
      float_to_t_kernel<T><<<grid_for(samples), kThreads, 0, st>>>(samples, lf, static_cast<T*>(loss));
      IMKERN_CUDA_CHECK_LAUNCH();
      return;
    }
    ce_sum_kernel<<<1, kThreads, 0, st>>>(samples, lf, valid, sums, sums + 1);
    IMKERN_CUDA_CHECK_LAUNCH();
    ce_finish_kernel<T><<<1, 32, 0, st>>>(reduction, sums, sums + 1, static_cast<T*>(loss));
    IMKERN_CUDA_CHECK_LAUNCH();
  });
}

void cross_entropy_backward_cuda(DType dt, int64_t n, int64_t c, int64_t inner, const void* logits,
                                 const int64_t* target, Reduction r, double label_smoothing,
                                 int64_t ignore_index, const float* grad_loss, void* grad_logits, void* stream) {
  const int reduction = static_cast<int>(r);
  const CeParams p = ce_params(n, c, inner, reduction, label_smoothing, ignore_index, "cross_entropy_backward");
  const int64_t samples = n * inner;
  if (samples == 0) return;
  if (!grad_loss) throw std::invalid_argument("cross_entropy_backward: grad_loss is required");
  cudaStream_t st = as_stream(stream);
  dispatch_float(dt, "cross_entropy_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    DeviceBuffer buf(reduction == 1 ? static_cast<size_t>(samples) + 16 : 0, st);
    float* count = nullptr;
    if (reduction == 1) {
      count = buf.get<float>();
      unsigned char* valid = reinterpret_cast<unsigned char*>(count + 2);
      // The valid flags only: a cheap pass over the targets.
      valid_flags(samples, target, ignore_index, valid, st);
      ce_sum_kernel<<<1, kThreads, 0, st>>>(samples, nullptr, valid, nullptr, count);
      IMKERN_CUDA_CHECK_LAUNCH();
    }
    const T* px = static_cast<const T*>(logits);
    T* pg = static_cast<T*>(grad_logits);
    if (inner == 1)
      ce_backward_warp_kernel<T><<<grid_for(samples * 32), kThreads, 0, st>>>(p, reduction, px, target,
                                                                                     grad_loss, count, pg);
    else
      ce_backward_column_kernel<T><<<grid_for(samples), kThreads, 0, st>>>(p, reduction, px, target,
                                                                                  grad_loss, count, pg);
    IMKERN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace cuda
}  // namespace imkern
