// Affine and perspective warps on CUDA as OpenCV computes them (see
// csrc/cpu/transform/warp.cpp for both coordinate schemes; this kernel does the same
// operations: float32 coordinates and lerps with __fmaf_rn / __fmul_rn / __fadd_rn /
// __fdiv_rn (never contracted), or the fixed-point remap below).
//
// One thread per output pixel (all C channels), a grid-stride loop over 64-bit indices.
// Coordinates: affine from the host-built per-row and per-column int32 terms; perspective
// per pixel in float64 with __dmul_rn / __dadd_rn / __ddiv_rn (no contraction, the same
// roundings as the CPU and OpenCV), OpenCV's 32-column blocks included. Then the K x K taps
// (K = 1, 2, 4) with weights from the 32 x 32 sub-pixel table; uint8 sums exact in int32,
// rounded (sum + 2^14) >> 15, so results equal the CPU's bit for bit. Neighbouring threads
// read neighbouring source pixels for smooth maps (mostly coalesced, cached in L1/L2).
// Cost per output pixel: K^2 * C loads and multiply-adds. Variants: u8, u16, f32, f64.
#include <climits>
#include <cmath>
#include <type_traits>

#include "common/common.cuh"
#include "imkern/transform.hpp"

namespace imkern {
namespace cuda {

namespace {

template <typename T> struct WpAcc { using type = float; };
template <> struct WpAcc<uint8_t> { using type = int32_t; };
template <> struct WpAcc<double> { using type = double; };

__device__ __forceinline__ int32_t clamp_short(int64_t v) {
  return static_cast<int32_t>(v < SHRT_MIN ? SHRT_MIN : (v > SHRT_MAX ? SHRT_MAX : v));
}

template <typename T> __device__ __forceinline__ T warp_store(typename WpAcc<T>::type a);
template <> __device__ __forceinline__ uint8_t warp_store<uint8_t>(int32_t a) {
  const int32_t v = (a + (1 << 14)) >> 15;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}
template <> __device__ __forceinline__ uint16_t warp_store<uint16_t>(float a) {
  return static_cast<uint16_t>(__float2int_rn(fminf(fmaxf(a, 0.f), 65535.f)));
}
template <> __device__ __forceinline__ float warp_store<float>(float a) { return a; }
template <> __device__ __forceinline__ double warp_store<double>(double a) { return a; }

struct WarpGeom {
  int64_t n, h, w;          // output
  int64_t sh, sw, c;        // source
  int64_t s_bs, s_rs, d_bs, d_rs;
};

struct Persp {
  double m[9];
  int64_t bw;
};

__device__ __forceinline__ void affine_coords(const AffineMap& map, bool nearest, int64_t x, int64_t y, int32_t& X,
                                              int32_t& Y) {
  const int64_t fx = (static_cast<int64_t>(map.row_x[y]) + map.col_x[x]) >> map.shift;
  const int64_t fy = (static_cast<int64_t>(map.row_y[y]) + map.col_y[x]) >> map.shift;
  if (nearest) {
    X = clamp_short(fx);
    Y = clamp_short(fy);
  } else {
    X = clamp_short(fx >> kInterBits) * kInterTab + static_cast<int32_t>(fx & (kInterTab - 1));
    Y = clamp_short(fy >> kInterBits) * kInterTab + static_cast<int32_t>(fy & (kInterTab - 1));
  }
}

__device__ __forceinline__ void persp_coords(const Persp& p, bool nearest, int64_t x, int64_t y, int32_t& X,
                                             int32_t& Y) {
  const double* m = p.m;
  const int64_t xb = (x / p.bw) * p.bw;
  const double xbd = static_cast<double>(xb), yy = static_cast<double>(y), x1 = static_cast<double>(x - xb);
  const double X0 = __dadd_rn(__dadd_rn(__dmul_rn(m[0], xbd), __dmul_rn(m[1], yy)), m[2]);
  const double Y0 = __dadd_rn(__dadd_rn(__dmul_rn(m[3], xbd), __dmul_rn(m[4], yy)), m[5]);
  const double W0 = __dadd_rn(__dadd_rn(__dmul_rn(m[6], xbd), __dmul_rn(m[7], yy)), m[8]);
  double W = __dadd_rn(W0, __dmul_rn(m[6], x1));
  W = W != 0.0 ? __ddiv_rn(nearest ? 1.0 : static_cast<double>(kInterTab), W) : 0.0;
  double fx = __dmul_rn(__dadd_rn(X0, __dmul_rn(m[0], x1)), W);
  double fy = __dmul_rn(__dadd_rn(Y0, __dmul_rn(m[3], x1)), W);
  fx = fmax(static_cast<double>(INT_MIN), fmin(static_cast<double>(INT_MAX), fx));
  fy = fmax(static_cast<double>(INT_MIN), fmin(static_cast<double>(INT_MAX), fy));
  const int64_t ix = __double2ll_rn(fx), iy = __double2ll_rn(fy);
  if (nearest) {
    X = clamp_short(ix);
    Y = clamp_short(iy);
  } else {
    X = clamp_short(ix >> kInterBits) * kInterTab + static_cast<int32_t>(ix & (kInterTab - 1));
    Y = clamp_short(iy >> kInterBits) * kInterTab + static_cast<int32_t>(iy & (kInterTab - 1));
  }
}

template <typename T, int K, bool Perspective>
__global__ void __launch_bounds__(kThreads)
    warp_kernel(const T* __restrict__ src, T* __restrict__ dst, WarpGeom g, AffineMap map, Persp persp,
                const typename WpAcc<T>::type* __restrict__ wtab, Border border, typename WpAcc<T>::type cv,
                T cvt) {
  using A = typename WpAcc<T>::type;
  const int64_t total = g.n * g.h * g.w;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t x = i % g.w, row = i / g.w;
    const int64_t y = row % g.h, b = row / g.h;
    int32_t X, Y;
    if constexpr (Perspective) persp_coords(persp, K == 1, x, y, X, Y);
    else affine_coords(map, K == 1, x, y, X, Y);
    const T* base = src + b * g.s_bs;
    T* o = dst + b * g.d_bs + y * g.d_rs + x * g.c;
    if constexpr (K == 1) {
      int64_t sx = X, sy = Y;
      if (sx < 0 || sx >= g.sw || sy < 0 || sy >= g.sh) {
        sx = border_index_dev(sx, g.sw, border);
        sy = border_index_dev(sy, g.sh, border);
        if (sx < 0 || sy < 0) {
          for (int64_t c = 0; c < g.c; ++c) o[c] = cvt;
          continue;
        }
      }
      const T* p = base + sy * g.s_rs + sx * g.c;
      for (int64_t c = 0; c < g.c; ++c) o[c] = p[c];
    } else {
      const int64_t x0 = (X >> kInterBits) - (K / 2 - 1), y0 = (Y >> kInterBits) - (K / 2 - 1);
      const A* wt = wtab + ((Y & (kInterTab - 1)) * kInterTab + (X & (kInterTab - 1))) * K * K;
      if (border == Border::constant && (x0 >= g.sw || x0 + K <= 0 || y0 >= g.sh || y0 + K <= 0)) {
        for (int64_t c = 0; c < g.c; ++c) o[c] = cvt;
        continue;
      }
      int64_t xs[K], ys[K];
      for (int j = 0; j < K; ++j) xs[j] = border_index_dev(x0 + j, g.sw, border);
      for (int k = 0; k < K; ++k) ys[k] = border_index_dev(y0 + k, g.sh, border);
      for (int64_t c = 0; c < g.c; ++c) {
        A sum = A(0);
        for (int k = 0; k < K; ++k)
          for (int j = 0; j < K; ++j) {
            const A v = (xs[j] < 0 || ys[k] < 0) ? cv : static_cast<A>(base[ys[k] * g.s_rs + xs[j] * g.c + c]);
            sum += wt[k * K + j] * v;
          }
        o[c] = warp_store<T>(sum);
      }
    }
  }
}

// ---- float scheme (every operation explicitly rounded, as the CPU's fp-contract=off code)
__device__ __forceinline__ void cubic_weights(float x, float* c) {
  const float A = -0.75f;
  const float x1 = __fadd_rn(x, 1.f), omx = __fsub_rn(1.f, x);
  c[0] = __fsub_rn(__fmul_rn(__fadd_rn(__fmul_rn(__fsub_rn(__fmul_rn(A, x1), __fmul_rn(5.f, A)), x1), __fmul_rn(8.f, A)), x1),
                   __fmul_rn(4.f, A));
  c[1] = __fadd_rn(__fmul_rn(__fmul_rn(__fsub_rn(__fmul_rn(__fadd_rn(A, 2.f), x), __fadd_rn(A, 3.f)), x), x), 1.f);
  c[2] = __fadd_rn(__fmul_rn(__fmul_rn(__fsub_rn(__fmul_rn(__fadd_rn(A, 2.f), omx), __fadd_rn(A, 3.f)), omx), omx), 1.f);
  c[3] = __fsub_rn(__fsub_rn(__fsub_rn(1.f, c[0]), c[1]), c[2]);
}

template <typename T> __device__ __forceinline__ T float_store(float v);
template <> __device__ __forceinline__ uint8_t float_store<uint8_t>(float v) {
  v = fminf(fmaxf(rintf(v), 0.f), 255.f);
  return static_cast<uint8_t>(static_cast<int32_t>(v));
}
template <> __device__ __forceinline__ uint16_t float_store<uint16_t>(float v) {
  v = fminf(fmaxf(rintf(v), 0.f), 65535.f);
  return static_cast<uint16_t>(static_cast<int32_t>(v));
}
template <> __device__ __forceinline__ float float_store<float>(float v) { return v; }
template <> __device__ __forceinline__ double float_store<double>(float v) { return static_cast<double>(v); }

struct FloatMap {
  float m0, m3, m6;  // float(m[0]), float(m[3]), float(m[6])
  double m[9];
};

template <typename T>
__device__ __forceinline__ float fetchf(const T* base, const WarpGeom& g, int64_t xx, int64_t yy, int64_t c,
                                        Border border, float cv) {
  if (xx < 0 || xx >= g.sw || yy < 0 || yy >= g.sh) {
    xx = border_index_dev(xx, g.sw, border);
    yy = border_index_dev(yy, g.sh, border);
    if (xx < 0 || yy < 0) return cv;
  }
  return static_cast<float>(base[yy * g.s_rs + xx * g.c + c]);
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    warp_float_kernel(const T* __restrict__ src, T* __restrict__ dst, WarpGeom g, FloatMap fm, bool perspective,
                      Interp interp, Border border, float cv) {
  const int64_t total = g.n * g.h * g.w;
  const T cvt = float_store<T>(cv);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t x = i % g.w, row = i / g.w;
    const int64_t y = row % g.h, b = row / g.h;
    const double yy = static_cast<double>(y);
    const float mx = static_cast<float>(__dadd_rn(__dmul_rn(yy, fm.m[1]), fm.m[2]));
    const float my = static_cast<float>(__dadd_rn(__dmul_rn(yy, fm.m[4]), fm.m[5]));
    const float xf = static_cast<float>(x);
    float sx = __fmaf_rn(fm.m0, xf, mx), sy = __fmaf_rn(fm.m3, xf, my);
    if (perspective) {
      const float mw = static_cast<float>(__dadd_rn(__dmul_rn(yy, fm.m[7]), fm.m[8]));
      const float wv = __fmaf_rn(fm.m6, xf, mw);
      sx = __fdiv_rn(sx, wv);
      sy = __fdiv_rn(sy, wv);
    }
    const T* base = src + b * g.s_bs;
    T* o = dst + b * g.d_bs + y * g.d_rs + x * g.c;
    const float lim = 2.0e9f;
    if (!(sx > -lim && sx < lim && sy > -lim && sy < lim)) {
      for (int64_t c = 0; c < g.c; ++c)
        o[c] = border == Border::constant ? cvt
                                          : float_store<T>(fetchf(base, g, sx > 0 ? g.sw : -1, sy > 0 ? g.sh : -1, c,
                                                                  border, cv));
      continue;
    }
    if (interp == Interp::nearest) {
      // OpenCV rounds halves up here (2.5 -> 3)
      const int64_t ix = static_cast<int64_t>(floorf(__fadd_rn(sx, 0.5f)));
      const int64_t iy = static_cast<int64_t>(floorf(__fadd_rn(sy, 0.5f)));
      for (int64_t c = 0; c < g.c; ++c) {
        if (ix >= 0 && ix < g.sw && iy >= 0 && iy < g.sh) o[c] = base[iy * g.s_rs + ix * g.c + c];
        else o[c] = float_store<T>(fetchf(base, g, ix, iy, c, border, cv));
      }
      continue;
    }
    const float fx0 = floorf(sx), fy0 = floorf(sy);
    const int64_t ix = static_cast<int64_t>(fx0), iy = static_cast<int64_t>(fy0);
    const float ax = __fsub_rn(sx, fx0), ay = __fsub_rn(sy, fy0);
    if (interp == Interp::bilinear) {
      if (border == Border::constant && (ix < -1 || ix >= g.sw || iy < -1 || iy >= g.sh)) {
        for (int64_t c = 0; c < g.c; ++c) o[c] = cvt;
        continue;
      }
      for (int64_t c = 0; c < g.c; ++c) {
        const float p00 = fetchf(base, g, ix, iy, c, border, cv), p01 = fetchf(base, g, ix + 1, iy, c, border, cv);
        const float p10 = fetchf(base, g, ix, iy + 1, c, border, cv);
        const float p11 = fetchf(base, g, ix + 1, iy + 1, c, border, cv);
        const float v0 = __fmaf_rn(ax, __fsub_rn(p01, p00), p00);
        const float v1 = __fmaf_rn(ax, __fsub_rn(p11, p10), p10);
        o[c] = float_store<T>(__fmaf_rn(ay, __fsub_rn(v1, v0), v0));
      }
    } else {
      if (border == Border::constant && (ix + 3 < 0 || ix - 1 >= g.sw || iy + 3 < 0 || iy - 1 >= g.sh)) {
        for (int64_t c = 0; c < g.c; ++c) o[c] = cvt;
        continue;
      }
      float wx[4], wy[4];
      cubic_weights(ax, wx);
      cubic_weights(ay, wy);
      for (int64_t c = 0; c < g.c; ++c) {
        float sum = 0.f;
        for (int k = 0; k < 4; ++k) {
          float r = 0.f;
          for (int j = 0; j < 4; ++j) r = __fmaf_rn(wx[j], fetchf(base, g, ix - 1 + j, iy - 1 + k, c, border, cv), r);
          sum = __fmaf_rn(wy[k], r, sum);
        }
        o[c] = float_store<T>(sum);
      }
    }
  }
}

template <typename T>
typename WpAcc<T>::type cval_acc(double cval) {
  if (std::is_same<T, uint8_t>::value || std::is_same<T, uint16_t>::value) {
    const double hi = std::is_same<T, uint8_t>::value ? 255.0 : 65535.0;
    double v = std::nearbyint(cval);
    v = v < 0 ? 0 : (v > hi ? hi : v);
    return static_cast<typename WpAcc<T>::type>(v);
  }
  return static_cast<typename WpAcc<T>::type>(static_cast<T>(cval));
}

template <typename F>
void visit(DType dt, F&& f) {
  switch (dt) {
    case DType::u8: f(uint8_t{}); break;
    case DType::u16: f(uint16_t{}); break;
    case DType::f32: f(float{}); break;
    case DType::f64: f(double{}); break;
    default: throw std::invalid_argument(std::string("warp: dtype ") + dtype_name(dt) + " is not supported");
  }
}

WarpGeom geom_of(const ImageDesc& s, const ImageDesc& d) {
  if (s.n != d.n || s.c != d.c) throw std::invalid_argument("warp: batch or channel count differs");
  WarpGeom g;
  g.n = d.n, g.h = d.h, g.w = d.w, g.sh = s.h, g.sw = s.w, g.c = s.c;
  g.s_bs = s.batch_stride, g.s_rs = s.row_stride, g.d_bs = d.batch_stride, g.d_rs = d.row_stride;
  return g;
}

template <typename T>
float cval_float(double cval) {
  if (std::is_same<T, uint8_t>::value || std::is_same<T, uint16_t>::value) {
    const double hi = std::is_same<T, uint8_t>::value ? 255.0 : 65535.0;
    const double v = std::nearbyint(cval);
    return static_cast<float>(v < 0 ? 0 : (v > hi ? hi : v));
  }
  return static_cast<float>(static_cast<T>(cval));
}

}  // namespace

void warp_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const WarpSpec& w,
               void* stream) {
  const WarpGeom g = geom_of(s, d);
  const int64_t total = checked_mul(checked_mul(g.n, g.h), g.w);
  if (total == 0) return;
  if (g.sh < 1 || g.sw < 1) throw std::invalid_argument("warp: empty source image");
  if (w.fixed && !w.perspective && w.map.shift != 5 && w.map.shift != 10)
    throw std::invalid_argument("warp: shift must be 5 or 10");
  const cudaStream_t st = as_stream(stream);
  visit(dtype, [&](auto tag) {
    using T = decltype(tag);
    using A = typename WpAcc<T>::type;
    if (!w.fixed) {
      FloatMap fm;
      for (int i = 0; i < 9; ++i) fm.m[i] = w.m[i];
      fm.m0 = static_cast<float>(w.m[0]);
      fm.m3 = static_cast<float>(w.m[3]);
      fm.m6 = static_cast<float>(w.m[6]);
      warp_float_kernel<T><<<grid_for(total), kThreads, 0, st>>>(static_cast<const T*>(src), static_cast<T*>(dst), g, fm,
                                                                 w.perspective, w.interp, w.border,
                                                                 cval_float<T>(w.cval));
      IMKERN_CUDA_CHECK_LAUNCH();
      return;
    }
    Persp p;
    for (int i = 0; i < 9; ++i) p.m[i] = w.m[i];
    // OpenCV's block width for warpPerspective (BLOCK_SZ = 32), as the CPU kernel
    const int64_t bh0 = d.h < 16 ? d.h : 16;
    const int64_t bw = bh0 > 0 ? 1024 / bh0 : 1;
    p.bw = bw < d.w ? bw : d.w;
    if (p.bw < 1) p.bw = 1;
    const A cv = cval_acc<T>(w.cval);
    const T cvt = static_cast<T>(cv);
    const A* wt = static_cast<const A*>(w.wtab);
    auto go = [&](auto kk, auto persp_tag) {
      constexpr int K = decltype(kk)::value;
      constexpr bool P = decltype(persp_tag)::value;
      warp_kernel<T, K, P><<<grid_for(total), kThreads, 0, st>>>(static_cast<const T*>(src), static_cast<T*>(dst), g,
                                                                 w.map, p, wt, w.border, cv, cvt);
      IMKERN_CUDA_CHECK_LAUNCH();
    };
    auto by_k = [&](auto persp_tag) {
      switch (w.interp) {
        case Interp::nearest: go(std::integral_constant<int, 1>{}, persp_tag); break;
        case Interp::bilinear: go(std::integral_constant<int, 2>{}, persp_tag); break;
        case Interp::bicubic: go(std::integral_constant<int, 4>{}, persp_tag); break;
      }
    };
    if (w.perspective) by_k(std::true_type{});
    else by_k(std::false_type{});
  });
}

}  // namespace cuda
}  // namespace imkern
