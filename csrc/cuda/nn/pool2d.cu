// 2-D pooling on NCHW planes: max (with torch's int64 indices), average, adaptive average,
// and their backward passes.
//
// Forward: one thread per output element reads its window (kh * kw loads, L1/L2 reuse between
// neighbouring windows). Bytes ~ planes * (H * W + OH * OW) * sizeof(T) (+ 8 per index);
// FLOPs ~ planes * OH * OW * kh * kw compares/adds.
// Backward (deterministic): one thread per INPUT element gathers, in a fixed order, the
// gradients of the output windows that can contain it (max: those whose index points at it;
// avg: every covering window divided by its divisor; adaptive: the covering bins). No atomics,
// so results are bitwise reproducible. max_pool2d_backward without the window parameters
// scatters instead, one thread per plane in output order (still no atomics, still reproducible).
// Semantics follow PyTorch's CUDA kernels: max-pool NaN wins (the last NaN of the window),
// a window of -inf gives -inf with the index of its first in-bounds element; avg-pool divisor
// counts padding (count_include_pad) but never the part of a ceil_mode window past H + pad;
// adaptive bins are [floor(o * I / O), ceil((o + 1) * I / O)).
// Accuracy of the average forwards (as the CPU's double window sums): a window of up to
// kFloatWindow elements is summed by its thread in float (the error of a handful of adds); a
// longer one in double by its thread, and one of kBlockWindow elements or more (global pooling
// of a big plane) by a whole block: fixed thread striding, double accumulation, the fixed
// double tree. Every choice depends on the sizes only, so results stay bitwise reproducible.
#include <algorithm>

#include "imkern/nn.hpp"
#include "common/common.cuh"

namespace imkern {
namespace cuda {

namespace {


struct P {
  int64_t planes, H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw;
};

constexpr int64_t kFloatWindow = 64;    // up to this many elements: float per thread
constexpr int64_t kBlockWindow = 4096;  // from this many: one block per output (double)

// Window of output idx of the average pools: rows [hs, he) x columns [ws, we) of plane `plane`
// (clipped to the image) and the divisor. Mirrored line by line by the CPU emulation in
// tests/test_cuda_emulation.py.
struct AvgWin {
  int64_t plane, hs, he, ws, we, div;
};

__device__ __forceinline__ AvgWin avg_win(const P& p, bool include_pad, int64_t idx) {
  const int64_t ow = idx % p.OW, t = idx / p.OW, oh = t % p.OH, plane = t / p.OH;
  int64_t hs = oh * p.sh - p.ph, ws = ow * p.sw - p.pw;
  int64_t he = min(hs + p.kh, p.H + p.ph), we = min(ws + p.kw, p.W + p.pw);
  const int64_t pool = (he - hs) * (we - ws);
  hs = max(hs, int64_t(0));
  ws = max(ws, int64_t(0));
  he = min(he, p.H);
  we = min(we, p.W);
  const int64_t div = include_pad ? pool : (he - hs) * (we - ws);
  return {plane, hs, he, ws, we, div};
}

__device__ __forceinline__ int64_t bin_start(int64_t o, int64_t in, int64_t out) { return (o * in) / out; }
__device__ __forceinline__ int64_t bin_end(int64_t o, int64_t in, int64_t out) {
  return ((o + 1) * in + out - 1) / out;
}

__device__ __forceinline__ AvgWin adaptive_win(const P& p, int64_t idx) {
  const int64_t ow = idx % p.OW, t = idx / p.OW, oh = t % p.OH, plane = t / p.OH;
  const int64_t hs = bin_start(oh, p.H, p.OH), he = bin_end(oh, p.H, p.OH);
  const int64_t ws = bin_start(ow, p.W, p.OW), we = bin_end(ow, p.W, p.OW);
  return {plane, hs, he, ws, we, (he - hs) * (we - ws)};
}

// One block per output window (grid-stride over outputs): thread t sums the window's elements
// t, t + kThreads, ... in row-major order in double, then the fixed double tree.
template <typename T, bool Adaptive>
__global__ void avg_window_block_kernel(P p, bool include_pad, const T* __restrict__ x, T* __restrict__ y) {
  __shared__ double sh[kThreads / 32];
  const int64_t total = p.planes * p.OH * p.OW;
  for (int64_t idx = blockIdx.x; idx < total; idx += gridDim.x) {
    const AvgWin w = Adaptive ? adaptive_win(p, idx) : avg_win(p, include_pad, idx);
    const int64_t cols = w.we - w.ws, n = w.hs < w.he && w.ws < w.we ? (w.he - w.hs) * cols : 0;
    const T* xp = x + w.plane * p.H * p.W;
    double s = 0.0;
    for (int64_t e = threadIdx.x; e < n; e += kThreads) {
      const int64_t r = e / cols, c = e - r * cols;
      s += to_f(xp[(w.hs + r) * p.W + w.ws + c]);
    }
    s = block_sum<kThreads>(s, sh);
    if (threadIdx.x == 0) y[idx] = from_f<T>(n ? static_cast<float>(s / static_cast<double>(w.div)) : 0.f);
  }
}


// ---- max ----------------------------------------------------------------------------------
template <typename T>
__global__ void max_pool2d_kernel(P p, const T* __restrict__ x, T* __restrict__ y, int64_t* __restrict__ ind) {
  const int64_t total = p.planes * p.OH * p.OW;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t ow = idx % p.OW, t = idx / p.OW, oh = t % p.OH, plane = t / p.OH;
    int64_t hs = oh * p.sh - p.ph, ws = ow * p.sw - p.pw;
    const int64_t he = min(hs + (p.kh - 1) * p.dh + 1, p.H), we = min(ws + (p.kw - 1) * p.dw + 1, p.W);
    if (hs < 0) hs += ((-hs + p.dh - 1) / p.dh) * p.dh;  // first tap inside the image
    if (ws < 0) ws += ((-ws + p.dw - 1) / p.dw) * p.dw;
    const T* xp = x + plane * p.H * p.W;
    float best = -INFINITY;
    int64_t bi = hs * p.W + ws;
    for (int64_t ih = hs; ih < he; ih += p.dh)
      for (int64_t iw = ws; iw < we; iw += p.dw) {
        const float v = to_f(xp[ih * p.W + iw]);
        if (v > best || isnan(v)) {
          best = v;
          bi = ih * p.W + iw;
        }
      }
    y[idx] = from_f<T>(best);
    if (ind) ind[idx] = bi;
  }
}

template <typename T>
__global__ void max_pool2d_backward_gather_kernel(P p, const T* __restrict__ gy, const int64_t* __restrict__ ind,
                                                  T* __restrict__ gx) {
  const int64_t total = p.planes * p.H * p.W;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t iw = idx % p.W, t = idx / p.W, ih = t % p.H, plane = t / p.H;
    // Windows containing ih: oh * sh - ph + i * dh == ih for some i < kh.
    const int64_t lo_h = ih + p.ph - (p.kh - 1) * p.dh, lo_w = iw + p.pw - (p.kw - 1) * p.dw;
    const int64_t oh0 = lo_h > 0 ? (lo_h + p.sh - 1) / p.sh : 0;
    const int64_t ow0 = lo_w > 0 ? (lo_w + p.sw - 1) / p.sw : 0;
    const int64_t oh1 = min((ih + p.ph) / p.sh, p.OH - 1), ow1 = min((iw + p.pw) / p.sw, p.OW - 1);
    const int64_t self = ih * p.W + iw, base = plane * p.OH * p.OW;
    float g = 0.f;
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const int64_t o = base + oh * p.OW + ow;
        if (ind[o] == self) g += to_f(gy[o]);
      }
    gx[idx] = from_f<T>(g);
  }
}

// Without the window parameters: one thread per (n, c) plane walks that plane's outputs in
// order and adds each gradient at its index. Indices never leave their plane, so no two
// threads touch the same element: no atomics, and the summation order is fixed.
template <typename T, typename Acc>
__global__ void max_pool2d_backward_scatter_kernel(P p, const T* __restrict__ gy, const int64_t* __restrict__ ind,
                                                   Acc* __restrict__ acc) {
  const int64_t ohw = p.OH * p.OW, hw = p.H * p.W;
  for (int64_t plane = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; plane < p.planes;
       plane += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const T* g = gy + plane * ohw;
    const int64_t* id = ind + plane * ohw;
    Acc* a = acc + plane * hw;
    for (int64_t o = 0; o < ohw; ++o) {
      const int64_t i = id[o];
      if (i >= 0 && i < hw) a[i] += to_f(g[o]);
    }
  }
}

template <typename T>
__global__ void float_to_kernel(int64_t n, const float* __restrict__ src, T* __restrict__ dst) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = from_f<T>(src[i]);
}

// ---- average ------------------------------------------------------------------------------
// One thread per output window, accumulating in Acc (float for short windows, else double).
template <typename T, bool Adaptive, typename Acc>
__global__ void avg_thread_kernel(P p, bool include_pad, const T* __restrict__ x, T* __restrict__ y) {
  const int64_t total = p.planes * p.OH * p.OW;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const AvgWin w = Adaptive ? adaptive_win(p, idx) : avg_win(p, include_pad, idx);
    if (w.hs >= w.he || w.ws >= w.we) {
      y[idx] = from_f<T>(0.f);
      continue;
    }
    const T* xp = x + w.plane * p.H * p.W;
    Acc s = 0;
    for (int64_t ih = w.hs; ih < w.he; ++ih)
      for (int64_t iw = w.ws; iw < w.we; ++iw) s += to_f(xp[ih * p.W + iw]);
    y[idx] = from_f<T>(static_cast<float>(s / static_cast<Acc>(w.div)));
  }
}

template <typename T, bool Adaptive>
void launch_avg(const P& p, bool include_pad, int64_t window, const T* x, T* y, cudaStream_t st) {
  const int64_t total = p.planes * p.OH * p.OW;
  if (window >= kBlockWindow) {
    avg_window_block_kernel<T, Adaptive><<<static_cast<unsigned>(std::min<int64_t>(total, 65535 * 16)), kThreads, 0,
                                           st>>>(p, include_pad, x, y);
  } else if (window > kFloatWindow) {
    avg_thread_kernel<T, Adaptive, double><<<grid_for(total), kThreads, 0, st>>>(p, include_pad, x, y);
  } else {
    avg_thread_kernel<T, Adaptive, float><<<grid_for(total), kThreads, 0, st>>>(p, include_pad, x, y);
  }
  IMKERN_CUDA_CHECK_LAUNCH();
}

template <typename T>
__global__ void avg_pool2d_backward_kernel(P p, bool include_pad, const T* __restrict__ gy, T* __restrict__ gx) {
  const int64_t total = p.planes * p.H * p.W;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t iw = idx % p.W, t = idx / p.W, ih = t % p.H, plane = t / p.H;
    const int64_t h = ih + p.ph, w = iw + p.pw;
    const int64_t oh0 = h < p.kh ? 0 : (h - p.kh) / p.sh + 1, oh1 = min(h / p.sh + 1, p.OH);
    const int64_t ow0 = w < p.kw ? 0 : (w - p.kw) / p.sw + 1, ow1 = min(w / p.sw + 1, p.OW);
    const T* gp = gy + plane * p.OH * p.OW;
    float g = 0.f;
    for (int64_t oh = oh0; oh < oh1; ++oh)
      for (int64_t ow = ow0; ow < ow1; ++ow) {
        int64_t hs = oh * p.sh - p.ph, ws = ow * p.sw - p.pw;
        int64_t he = min(hs + p.kh, p.H + p.ph), we = min(ws + p.kw, p.W + p.pw);
        const int64_t pool = (he - hs) * (we - ws);
        hs = max(hs, int64_t(0));
        ws = max(ws, int64_t(0));
        he = min(he, p.H);
        we = min(we, p.W);
        if (hs >= he || ws >= we) continue;
        const int64_t div = include_pad ? pool : (he - hs) * (we - ws);
        g += to_f(gp[oh * p.OW + ow]) / static_cast<float>(div);
      }
    gx[idx] = from_f<T>(g);
  }
}

// ---- adaptive average ------------------------------------------------------------------------
template <typename T>
__global__ void adaptive_avg_pool2d_backward_kernel(P p, const T* __restrict__ gy, T* __restrict__ gx) {
  const int64_t total = p.planes * p.H * p.W;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t iw = idx % p.W, t = idx / p.W, ih = t % p.H, plane = t / p.H;
    // Bins o with start(o) <= i < end(o): o in [floor(i * O / I), ceil((i + 1) * O / I) - 1].
    const int64_t oh0 = (ih * p.OH) / p.H, oh1 = min(((ih + 1) * p.OH + p.H - 1) / p.H, p.OH);
    const int64_t ow0 = (iw * p.OW) / p.W, ow1 = min(((iw + 1) * p.OW + p.W - 1) / p.W, p.OW);
    const T* gp = gy + plane * p.OH * p.OW;
    float g = 0.f;
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      const int64_t hs = bin_start(oh, p.H, p.OH), he = bin_end(oh, p.H, p.OH);
      if (ih < hs || ih >= he) continue;
      for (int64_t ow = ow0; ow < ow1; ++ow) {
        const int64_t ws = bin_start(ow, p.W, p.OW), we = bin_end(ow, p.W, p.OW);
        if (iw < ws || iw >= we) continue;
        g += to_f(gp[oh * p.OW + ow]) / static_cast<float>((he - hs) * (we - ws));
      }
    }
    gx[idx] = from_f<T>(g);
  }
}

P make_p(const Pool2dShape& s, const char* op, bool window) {
  if (s.planes < 0 || s.h < 0 || s.w < 0 || s.oh < 0 || s.ow < 0)
    throw std::invalid_argument(std::string(op) + ": negative size");
  if (window && (s.kh <= 0 || s.kw <= 0 || s.sh <= 0 || s.sw <= 0 || s.dh <= 0 || s.dw <= 0 || s.ph < 0 || s.pw < 0))
    throw std::invalid_argument(std::string(op) + ": kernel, stride and dilation must be positive, padding non-negative");
  checked_mul(checked_mul(s.planes, s.h), s.w);
  checked_mul(checked_mul(s.planes, s.oh), s.ow);
  // Products in the index math ((o + 1) * in, oh * sh + kh * dh) stay far below 2^63 for any
  // tensor that fits in memory; only reject absurd parameters.
  const int64_t lim = int64_t(1) << 31;
  if (s.h >= lim || s.w >= lim || s.oh >= lim || s.ow >= lim || s.kh >= lim || s.kw >= lim || s.sh >= lim ||
      s.sw >= lim || s.dh >= lim || s.dw >= lim || s.ph >= lim || s.pw >= lim)
    throw std::overflow_error(std::string(op) + ": pooling parameters exceed 2^31");
  return {s.planes, s.h, s.w, s.oh, s.ow, s.kh, s.kw, s.sh, s.sw, s.ph, s.pw, s.dh, s.dw};
}

}  // namespace

void max_pool2d_cuda(DType dt, const Pool2dShape& s, const void* x, void* y, int64_t* indices, void* stream) {
  const P p = make_p(s, "max_pool2d", true);
  const int64_t total = p.planes * p.OH * p.OW;
  if (total == 0) return;
  if (p.H == 0 || p.W == 0) throw std::invalid_argument("max_pool2d: empty input plane");
  dispatch_float(dt, "max_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    max_pool2d_kernel<T><<<grid_for(total), kThreads, 0, as_stream(stream)>>>(
        p, static_cast<const T*>(x), static_cast<T*>(y), indices);
    IMKERN_CUDA_CHECK_LAUNCH();
  });
}

void max_pool2d_backward_cuda(DType dt, const Pool2dShape& s, bool with_window, const void* grad_y,
                              const int64_t* indices, void* grad_x, void* stream) {
  const P p = make_p(s, "max_pool2d_backward", with_window);
  const int64_t in_total = p.planes * p.H * p.W, out_total = p.planes * p.OH * p.OW;
  if (in_total == 0) return;
  cudaStream_t st = as_stream(stream);
  dispatch_float(dt, "max_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (with_window) {
      max_pool2d_backward_gather_kernel<T><<<grid_for(in_total), kThreads, 0, st>>>(
          p, static_cast<const T*>(grad_y), indices, static_cast<T*>(grad_x));
      IMKERN_CUDA_CHECK_LAUNCH();
      return;
    }
    if constexpr (std::is_same<T, float>::value) {
      IMKERN_CUDA_CHECK(cudaMemsetAsync(grad_x, 0, static_cast<size_t>(in_total) * sizeof(float), st));
      if (out_total) {
        max_pool2d_backward_scatter_kernel<T, float><<<grid_for(p.planes), kThreads, 0, st>>>(
            p, static_cast<const T*>(grad_y), indices, static_cast<float*>(grad_x));
        IMKERN_CUDA_CHECK_LAUNCH();
      }
    } else {
      DeviceBuffer acc(static_cast<size_t>(in_total) * sizeof(float), st);
      IMKERN_CUDA_CHECK(cudaMemsetAsync(acc.get<float>(), 0, static_cast<size_t>(in_total) * sizeof(float), st));
      if (out_total) {
        max_pool2d_backward_scatter_kernel<T, float><<<grid_for(p.planes), kThreads, 0, st>>>(
            p, static_cast<const T*>(grad_y), indices, acc.get<float>());
        IMKERN_CUDA_CHECK_LAUNCH();
      }
      float_to_kernel<T><<<grid_for(in_total), kThreads, 0, st>>>(in_total, acc.get<float>(),
                                                                           static_cast<T*>(grad_x));
      IMKERN_CUDA_CHECK_LAUNCH();
    }
  });
}

void avg_pool2d_cuda(DType dt, const Pool2dShape& s, bool count_include_pad, const void* x, void* y, void* stream) {
  const P p = make_p(s, "avg_pool2d", true);
  const int64_t total = p.planes * p.OH * p.OW;
  if (total == 0) return;
  dispatch_float(dt, "avg_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_avg<T, false>(p, count_include_pad, p.kh * p.kw, static_cast<const T*>(x), static_cast<T*>(y),
                         as_stream(stream));
  });
}

void avg_pool2d_backward_cuda(DType dt, const Pool2dShape& s, bool count_include_pad, const void* grad_y,
                              void* grad_x, void* stream) {
  const P p = make_p(s, "avg_pool2d_backward", true);
  const int64_t total = p.planes * p.H * p.W;
  if (total == 0) return;
  dispatch_float(dt, "avg_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    avg_pool2d_backward_kernel<T><<<grid_for(total), kThreads, 0, as_stream(stream)>>>(
        p, count_include_pad, static_cast<const T*>(grad_y), static_cast<T*>(grad_x));
    IMKERN_CUDA_CHECK_LAUNCH();
  });
}

void adaptive_avg_pool2d_cuda(DType dt, const Pool2dShape& s, const void* x, void* y, void* stream) {
  const P p = make_p(s, "adaptive_avg_pool2d", false);
  const int64_t total = p.planes * p.OH * p.OW;
  if (total == 0) return;
  if (p.H == 0 || p.W == 0) throw std::invalid_argument("adaptive_avg_pool2d: empty input plane");
  dispatch_float(dt, "adaptive_avg_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    // The largest bin: ceil(H / OH) + 1 rows by ceil(W / OW) + 1 columns at most.
    const int64_t window = (ceil_div<int64_t>(p.H, p.OH) + 1) * (ceil_div<int64_t>(p.W, p.OW) + 1);
    launch_avg<T, true>(p, false, window, static_cast<const T*>(x), static_cast<T*>(y), as_stream(stream));
  });
}

void adaptive_avg_pool2d_backward_cuda(DType dt, const Pool2dShape& s, const void* grad_y, void* grad_x,
                                       void* stream) {
  const P p = make_p(s, "adaptive_avg_pool2d_backward", false);
  const int64_t total = p.planes * p.H * p.W;
  if (total == 0) return;
  if (p.OH == 0 || p.OW == 0) throw std::invalid_argument("adaptive_avg_pool2d_backward: empty output plane");
  dispatch_float(dt, "adaptive_avg_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    adaptive_avg_pool2d_backward_kernel<T><<<grid_for(total), kThreads, 0, as_stream(stream)>>>(
        p, static_cast<const T*>(grad_y), static_cast<T*>(grad_x));
    IMKERN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace cuda
}  // namespace imkern
