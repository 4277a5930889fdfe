// Affine and perspective warps as OpenCV computes them (compiled per ISA).
//
// Float scheme (OpenCV >= 4.11 for uint8/uint16/float32): per output pixel the source
// point in float32, sx = fma(m0, x, m1 * y + m2) (perspective: divided by the third row),
// then nearest (round half to even) or bilinear (two float32 lerps) or bicubic (a = -0.75
// weights of the fractions) with out-of-image taps by the border rule; every operation is
// an explicit fma or a separately rounded float op (no contraction, see fp-contract below),
// so the ISA levels and the CUDA kernel give the same bits.
//
// Fixed scheme (OpenCV's remap tables, float64 images): for each output row, the source
// coordinate of every output pixel is computed in fixed point with INTER_BITS = 5 fractional
// bits (affine: integer sums of host-built per-row and per-column terms, AB_BITS = 10, as
// OpenCV; perspective: float64 per pixel, the same operations as OpenCV, no contraction),
// clamped to int16 as OpenCV stores them; then each output pixel is the K x K weighted sum
// (K = 2 bilinear, 4 bicubic; 1 nearest) of the source pixels around it, with the weights of
// the 32 x 32 sub-pixel table (host-built: int16 scaled by 2^15 for uint8, float otherwise)
// and out-of-image taps resolved by the border rule (cval for "constant").
// uint8 sums are exact int32, rounded as (sum + 2^14) >> 15: the same integers as the CUDA
// kernel, so both devices give the same bits. Cost per output pixel: K^2 * C multiply-adds,
// K^2 * C loads (gathered; the window of neighbouring outputs overlaps in cache).
// Float-scheme bilinear uint8 and float32 with 1, 3 or 4 channels have vector rows on
// AVX2/AVX-512 (warp_bilinear_row: a pass of source points (affine: computed in that pass),
// offsets and fractions, then 8-byte (float32: 8- or 16-byte) loads per tap row, a transpose
// and the same float lerps, 8 or 16 pixels at once; ~4.5 (AVX-512) / ~5 (AVX2) cycles per
// uint8 RGB pixel on Zen 4), cval written in place for the lanes outside by more than a pixel
// (constant border); chunks that are not all inside map each tap's column and row by the
// border rule's closed forms (valid within one period of the edge: every border mode) and read
// the taps by four masked gathers (cval for constant-border taps outside), so only lanes farther
// out, not finite, or whose dword reads would pass the image's end take the scalar loop (1080p
// RGB reflect101 was ~5x the constant border's time through border_index per tap, now ~1.25x).
// Float-scheme nearest (uint8, uint16, float32, 1-4 channels) has vector rows too
// (warp_nearest_row: the same mapping, one dword gather per chunk for pixels of up to 4 bytes;
// gathers lose to plain loads for the bilinear windows on Zen 4, 1-channel included, but win
// for nearest's single taps over a copy per pixel). The tap
// loads, not the arithmetic, are the larger cost of a rotation's rows: with the same
// instructions reading an L1-resident 16 KiB instead, AVX2 warp_affine takes ~0.68 of the
// time. Walking rows in column tiles (64-512 pixels, 2-16 rows) to reuse source lines in L1
// measured 1.2-1.7x slower (it breaks the per-instruction stride that the hardware prefetcher
// learns along a row); software prefetches of the lines that the output row 3 rows below will
// read (the row's source points moved by 3 (m1, m4)) take 1080p RGB rows 25-40% faster.
// No contraction of a * b + c into fused multiply-adds anywhere in this file: the float
// scheme spells out its fmas, and every ISA level (baseline has no FMA) and the CUDA kernel
// must round the same way. (A per-function optimize attribute would do, but GCC then refuses
// to inline across functions with different options.)
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#else
#pragma GCC optimize("fp-contract=off")
#endif

#include <algorithm>
#include <cmath>
#include <climits>
#include <cstring>

#include "imkern/parallel.hpp"
#include "imkern/transform.hpp"
#include "common/rows.hpp"

namespace imkern {
namespace IMKERN_ISA {

namespace {

template <typename T> struct WpAcc { using type = float; };
template <> struct WpAcc<uint8_t> { using type = int32_t; };
template <> struct WpAcc<double> { using type = double; };

inline int32_t clamp_short(int64_t v) {
  return static_cast<int32_t>(v < SHRT_MIN ? SHRT_MIN : (v > SHRT_MAX ? SHRT_MAX : v));
}

template <typename T>
inline typename WpAcc<T>::type cval_acc(double cval) {
  if constexpr (std::is_same<T, uint8_t>::value || std::is_same<T, uint16_t>::value) {
    const double hi = std::is_same<T, uint8_t>::value ? 255.0 : 65535.0;
    double v = std::nearbyint(cval);
    v = v < 0 ? 0 : (v > hi ? hi : v);
    return static_cast<typename WpAcc<T>::type>(v);
  } else {
    return static_cast<typename WpAcc<T>::type>(static_cast<T>(cval));
  }
}

template <typename T>
inline T warp_store(typename WpAcc<T>::type a) {
  if constexpr (std::is_same<T, uint8_t>::value) {
    const int32_t v = (a + (1 << 14)) >> 15;
    return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
  } else {
    return to_output<T, typename WpAcc<T>::type>(a);
  }
}

// One output row from its fixed-point coordinates X[x], Y[x] (5 fractional bits; integers
// for nearest).
template <typename T, int K>
void remap_row(const void* src, const ImageDesc& s, int64_t b, T* out, int64_t w, const int32_t* X,
               const int32_t* Y, const typename WpAcc<T>::type* wtab, Border border, typename WpAcc<T>::type cv,
               T cvt) {
  using A = typename WpAcc<T>::type;
  const int64_t C = s.c, H = s.h, W = s.w;
  const T* base = static_cast<const T*>(src) + b * s.batch_stride;
  for (int64_t x = 0; x < w; ++x) {
    T* o = out + x * C;
    if constexpr (K == 1) {
      int64_t sx = X[x], sy = Y[x];
      if (sx < 0 || sx >= W || sy < 0 || sy >= H) {
        sx = border_index(sx, W, border);
        sy = border_index(sy, H, border);
        if (sx < 0 || sy < 0) {
          for (int64_t c = 0; c < C; ++c) o[c] = cvt;
          continue;
        }
      }
      const T* p = base + sy * s.row_stride + sx * C;
      for (int64_t c = 0; c < C; ++c) o[c] = p[c];
    } else {
      const int32_t xf = X[x], yf = Y[x];
      const int64_t x0 = (xf >> kInterBits) - (K / 2 - 1), y0 = (yf >> kInterBits) - (K / 2 - 1);
      const A* wt = wtab + ((yf & (kInterTab - 1)) * kInterTab + (xf & (kInterTab - 1))) * K * K;
      if (x0 >= 0 && y0 >= 0 && x0 + K <= W && y0 + K <= H) {
        const T* p = base + y0 * s.row_stride + x0 * C;
        for (int64_t c = 0; c < C; ++c) {
          A sum = A(0);
          for (int i = 0; i < K; ++i) {
            const T* r = p + i * s.row_stride + c;
            for (int j = 0; j < K; ++j) sum += wt[i * K + j] * static_cast<A>(r[j * C]);
          }
          o[c] = warp_store<T>(sum);
        }
      } else if (border == Border::constant && (x0 >= W || x0 + K <= 0 || y0 >= H || y0 + K <= 0)) {
        for (int64_t c = 0; c < C; ++c) o[c] = cvt;
      } else {
        int64_t xs[K], ys[K];
        for (int j = 0; j < K; ++j) xs[j] = border_index(x0 + j, W, border);
        for (int i = 0; i < K; ++i) ys[i] = border_index(y0 + i, H, border);
        for (int64_t c = 0; c < C; ++c) {
          A sum = A(0);
          for (int i = 0; i < K; ++i)
            for (int j = 0; j < K; ++j) {
              const A v = (xs[j] < 0 || ys[i] < 0) ? cv : static_cast<A>(base[ys[i] * s.row_stride + xs[j] * C + c]);
              sum += wt[i * K + j] * v;
            }
          o[c] = warp_store<T>(sum);
        }
      }
    }
  }
}

// OpenCV's per-pixel perspective coordinates (fixed scheme), in float64 without contraction
// (the same roundings as OpenCV's and as the CUDA kernel's __dmul_rn / __dadd_rn). OpenCV
// walks the output in blocks bw columns wide and computes X0 = M0 * xb + M1 * y + M2 at the
// block's first column xb, then X0 + M0 * (x - xb): the rounding depends on the block.
void perspective_row(const double* m, int64_t y, int64_t w,
                                                                  int64_t bw, bool nearest, int32_t* X,
                                                                  int32_t* Y) {
  const double yy = static_cast<double>(y);
  const double scale = nearest ? 1.0 : static_cast<double>(kInterTab);
  for (int64_t xb = 0; xb < w; xb += bw) {
    const double xbd = static_cast<double>(xb);
    volatile double t0 = m[0] * xbd, t1 = m[1] * yy;
    volatile double X0 = t0 + t1;
    X0 = X0 + m[2];
    volatile double t3 = m[3] * xbd, t4 = m[4] * yy;
    volatile double Y0 = t3 + t4;
    Y0 = Y0 + m[5];
    volatile double t6 = m[6] * xbd, t7 = m[7] * yy;
    volatile double W0 = t6 + t7;
    W0 = W0 + m[8];
    const int64_t xe = std::min(w, xb + bw);
    for (int64_t x = xb; x < xe; ++x) {
      const double x1 = static_cast<double>(x - xb);
      volatile double mw = m[6] * x1;
      double Wd = W0 + mw;
      Wd = Wd != 0.0 ? scale / Wd : 0.0;
      volatile double mx = m[0] * x1;
      volatile double my = m[3] * x1;
      volatile double sx = X0 + mx;
      volatile double sy = Y0 + my;
      const double fx = std::max(static_cast<double>(INT_MIN), std::min(static_cast<double>(INT_MAX), sx * Wd));
      const double fy = std::max(static_cast<double>(INT_MIN), std::min(static_cast<double>(INT_MAX), sy * Wd));
      const int64_t ix = static_cast<int64_t>(std::nearbyint(fx)), iy = static_cast<int64_t>(std::nearbyint(fy));
      if (nearest) {
        X[x] = clamp_short(ix);
        Y[x] = clamp_short(iy);
      } else {
        X[x] = clamp_short(ix >> kInterBits) * kInterTab + static_cast<int32_t>(ix & (kInterTab - 1));
        Y[x] = clamp_short(iy >> kInterBits) * kInterTab + static_cast<int32_t>(iy & (kInterTab - 1));
      }
    }
  }
}

// OpenCV's block width for warpPerspective (BLOCK_SZ = 32).
inline int64_t perspective_block_width(int64_t w, int64_t h) {
  int64_t bh0 = std::min<int64_t>(16, h);
  return std::min<int64_t>(1024 / std::max<int64_t>(bh0, 1), w);
}

// ---- the float scheme -------------------------------------------------------------------------
// cv2's interpolateCubic (a = -0.75) of a fraction, every operation rounded separately.
inline void cubic_weights(float x, float* c) {
  const float A = -0.75f;
  const float x1 = x + 1.f, omx = 1.f - x;
  c[0] = ((A * x1 - 5.f * A) * x1 + 8.f * A) * x1 - 4.f * A;
  c[1] = ((A + 2.f) * x - (A + 3.f)) * x * x + 1.f;
  c[2] = ((A + 2.f) * omx - (A + 3.f)) * omx * omx + 1.f;
  c[3] = 1.f - c[0] - c[1] - c[2];
}

template <typename T>
inline T float_store(float v) {
  if constexpr (std::is_same<T, uint8_t>::value || std::is_same<T, uint16_t>::value) {
    const float hi = std::is_same<T, uint8_t>::value ? 255.f : 65535.f;
    v = std::nearbyint(v);
    v = v > 0.f ? v : 0.f;  // NaN -> 0
    v = v < hi ? v : hi;
    return static_cast<T>(static_cast<int32_t>(v));
  } else {
    return static_cast<T>(v);
  }
}

template <typename T>
inline float cval_float(double cval) {
  if constexpr (std::is_same<T, uint8_t>::value || std::is_same<T, uint16_t>::value) {
    const double hi = std::is_same<T, uint8_t>::value ? 255.0 : 65535.0;
    double v = std::nearbyint(cval);
    return static_cast<float>(v < 0 ? 0 : (v > hi ? hi : v));
  } else {
    return static_cast<float>(static_cast<T>(cval));
  }
}

// The float32 terms of output row y's source points: sx = fma(m0, x, mx), sy = fma(m3, x, my)
// (perspective: divided by fma(m6, x, mw)).
struct RowTerms {
  float m0, m3, m6, mx, my, mw;
  double m1, m4;  // the source point's step from one output row to the next (affine)
};
inline RowTerms row_terms(const WarpSpec& w, int64_t y) {
  const double* m = w.m;
  const double yy = static_cast<double>(y);
  volatile double t1 = yy * m[1], t4 = yy * m[4], t7 = yy * m[7];
  return {static_cast<float>(m[0]), static_cast<float>(m[3]), static_cast<float>(m[6]),
          static_cast<float>(t1 + m[2]), static_cast<float>(t4 + m[5]), static_cast<float>(t7 + m[8]), m[1], m[4]};
}

// Source point of every pixel of output row y (float32, OpenCV's formula).
void float_coords(const WarpSpec& w, int64_t y, int64_t n, float* FX,
                                                               float* FY) {
  const RowTerms r = row_terms(w, y);
  const float m0 = r.m0, m3 = r.m3, mx = r.mx, my = r.my;
  // x through int32 (the same float: the conversion vectorizes without AVX-512DQ)
  const int32_t n32 = static_cast<int32_t>(std::min<int64_t>(n, INT32_MAX));
  if (!w.perspective) {
    for (int32_t x = 0; x < n32; ++x) {
      const float xf = static_cast<float>(x);
      FX[x] = std::fma(m0, xf, mx);
      FY[x] = std::fma(m3, xf, my);
    }
    for (int64_t x = n32; x < n; ++x) {
      const float xf = static_cast<float>(x);
      FX[x] = std::fma(m0, xf, mx);
      FY[x] = std::fma(m3, xf, my);
    }
  } else {
    const float mw = r.mw, m6 = r.m6;
    for (int32_t x = 0; x < n32; ++x) {
      const float xf = static_cast<float>(x);
      const float wv = std::fma(m6, xf, mw);
      FX[x] = std::fma(m0, xf, mx) / wv;
      FY[x] = std::fma(m3, xf, my) / wv;
    }
    for (int64_t x = n32; x < n; ++x) {
      const float xf = static_cast<float>(x);
      const float wv = std::fma(m6, xf, mw);
      FX[x] = std::fma(m0, xf, mx) / wv;
      FY[x] = std::fma(m3, xf, my) / wv;
    }
  }
}

// Float-scheme samples of one output row.
template <typename T, int CC>
void float_row(const void* src, const ImageDesc& s, int64_t b, T* out,
                                                            int64_t n, const float* FX, const float* FY,
                                                            Interp interp, Border border, float cv) {
  const int64_t C = CC > 0 ? CC : s.c, H = s.h, W = s.w;
  const T* base = static_cast<const T*>(src) + b * s.batch_stride;
  const T cvt = static_cast<T>(cv);
  auto fetch = [&](int64_t xx, int64_t yy, int64_t c) -> float {
    if (xx < 0 || xx >= W || yy < 0 || yy >= H) {
      xx = border_index(xx, W, border);
      yy = border_index(yy, H, border);
      if (xx < 0 || yy < 0) return cv;
    }
    return static_cast<float>(base[yy * s.row_stride + xx * C + c]);
  };
  for (int64_t x = 0; x < n; ++x) {
    T* o = out + x * C;
    const float sx = FX[x], sy = FY[x];
    // NaN or far outside: as OpenCV, cast saturates; treat as outside
    const float lim = 2.0e9f;
    if (!(sx > -lim && sx < lim && sy > -lim && sy < lim)) {
      for (int64_t c = 0; c < C; ++c) o[c] = border == Border::constant ? cvt : float_store<T>(fetch(sx > 0 ? W : -1, sy > 0 ? H : -1, c));
      continue;
    }
    if (interp == Interp::nearest) {
      // OpenCV rounds halves up here (2.5 -> 3)
      const int64_t ix = static_cast<int64_t>(std::floor(sx + 0.5f)), iy = static_cast<int64_t>(std::floor(sy + 0.5f));
      for (int64_t c = 0; c < C; ++c) {
        const float v = fetch(ix, iy, c);
        o[c] = (ix >= 0 && ix < W && iy >= 0 && iy < H) ? base[iy * s.row_stride + ix * C + c] : float_store<T>(v);
      }
      continue;
    }
    const float fx0 = std::floor(sx), fy0 = std::floor(sy);
    const int64_t ix = static_cast<int64_t>(fx0), iy = static_cast<int64_t>(fy0);
    const float ax = sx - fx0, ay = sy - fy0;
    if (interp == Interp::bilinear) {
      if (ix >= 0 && iy >= 0 && ix + 1 < W && iy + 1 < H) {  // inside: direct loads
        const T* p0 = base + iy * s.row_stride + ix * C;
        const T* p1 = p0 + s.row_stride;
        for (int64_t c = 0; c < C; ++c) {
          const float p00 = static_cast<float>(p0[c]), p01 = static_cast<float>(p0[C + c]);
          const float p10 = static_cast<float>(p1[c]), p11 = static_cast<float>(p1[C + c]);
          const float v0 = std::fma(ax, p01 - p00, p00);
          const float v1 = std::fma(ax, p11 - p10, p10);
          o[c] = float_store<T>(std::fma(ay, v1 - v0, v0));
        }
        continue;
      }
      if (border == Border::constant) {
        if (ix < -1 || ix >= W || iy < -1 || iy >= H) {
          for (int64_t c = 0; c < C; ++c) o[c] = cvt;
          continue;
        }
        // the window straddles the edge (ix in [-1, W - 1], iy in [-1, H - 1]): each tap is
        // the pixel or cval, as fetch gives, without border_index per tap
        const bool l = ix >= 0, r = ix + 1 < W, t = iy >= 0, btm = iy + 1 < H;
        const T* q0 = t ? base + iy * s.row_stride : nullptr;
        const T* q1 = btm ? base + (iy + 1) * s.row_stride : nullptr;
        for (int64_t c = 0; c < C; ++c) {
          const float p00 = l && t ? static_cast<float>(q0[ix * C + c]) : cv;
          const float p01 = r && t ? static_cast<float>(q0[(ix + 1) * C + c]) : cv;
          const float p10 = l && btm ? static_cast<float>(q1[ix * C + c]) : cv;
          const float p11 = r && btm ? static_cast<float>(q1[(ix + 1) * C + c]) : cv;
          const float v0 = std::fma(ax, p01 - p00, p00);
          const float v1 = std::fma(ax, p11 - p10, p10);
          o[c] = float_store<T>(std::fma(ay, v1 - v0, v0));
        }
        continue;
      }
      for (int64_t c = 0; c < C; ++c) {
        const float p00 = fetch(ix, iy, c), p01 = fetch(ix + 1, iy, c);
        const float p10 = fetch(ix, iy + 1, c), p11 = fetch(ix + 1, iy + 1, c);
        const float v0 = std::fma(ax, p01 - p00, p00);
        const float v1 = std::fma(ax, p11 - p10, p10);
        o[c] = float_store<T>(std::fma(ay, v1 - v0, v0));
      }
    } else {
      if (border == Border::constant && (ix + 3 < 0 || ix - 1 >= W || iy + 3 < 0 || iy - 1 >= H)) {
        for (int64_t c = 0; c < C; ++c) o[c] = cvt;
        continue;
      }
      float wx[4], wy[4];
      cubic_weights(ax, wx);
      cubic_weights(ay, wy);
      if (ix >= 1 && iy >= 1 && ix + 2 < W && iy + 2 < H) {  // inside: direct loads
        const T* p = base + (iy - 1) * s.row_stride + (ix - 1) * C;
        for (int64_t c = 0; c < C; ++c) {
          float sum = 0.f;
          for (int i = 0; i < 4; ++i) {
            const T* r = p + i * s.row_stride + c;
            float acc = 0.f;
            for (int j = 0; j < 4; ++j) acc = std::fma(wx[j], static_cast<float>(r[j * C]), acc);
            sum = std::fma(wy[i], acc, sum);
          }
          o[c] = float_store<T>(sum);
        }
        continue;
      }
      for (int64_t c = 0; c < C; ++c) {
        float sum = 0.f;
        for (int i = 0; i < 4; ++i) {
          float r = 0.f;
          for (int j = 0; j < 4; ++j) r = std::fma(wx[j], fetch(ix - 1 + j, iy - 1 + i, c), r);
          sum = std::fma(wy[i], r, sum);
        }
        o[c] = float_store<T>(sum);
      }
    }
  }
}

#if defined(__AVX512F__) || defined(__AVX2__)
// The float-scheme bilinear uint8 samples of a row, L = 16 (AVX-512) or 8 (AVX2) output pixels
// per chunk, C = 1, 3 or 4: the same float32 operations as float_row (floor, the fractions,
// two fma lerps and a third, round half to even), lane by lane, so the same bits.
// Two passes over blocks of kWarpBlock pixels, because one pass was bound by its dependency
// chain (coordinates -> offsets -> loads -> shuffles -> lerps -> store, ~100 cycles per chunk,
// too long for the out-of-order window to overlap two chunks):
//  1. warp_prep: per chunk, the byte offsets of the top-left taps, the fractions, and which
//     lanes' 2 x 2 windows lie inside the image;
//  2. warp_chunk: for a chunk with lanes inside, plain 8-byte loads per pixel and row (gathers
//     are slow on several processors: four vpgatherdd per 16 pixels instead of the loads and
//     the transpose took 1.4x the time on Zen 4), a byte shuffle and a dword transpose to one
//     vector per tap (AVX2: broadcast loads, blends and vshufps, pshufb byte extraction and
//     integer tap differences: ~0.94x the row time of the AVX-512 scheme at 8 lanes),
//     the lerps, and the result rounded by adding 2^23 (the sum's low byte
//     is the value rounded half to even: the same as cvtps2dq, and the value lies in [0, 255]
//     because each lerp stays between its float endpoints, so no clamp).
// (Walking a thread's rows in column tiles of 64-256 pixels, to keep the source lines of
// consecutive rows in L1, measured slower than whole rows on Zen 4.) A block whose chunks are
// all inside (most of them) runs a loop of chunks alone, without the bookkeeping for the
// scalar fallback. Perspective rows compute each block's source points (PerspLanes: two
// divisions per pixel) a vector per chunk during the block before (in pass 1 for every block
// they were no faster on AVX2 and slower on AVX-512, in a pass of their own the divider bound
// it); a block without them (the row's first) computes them in pass 1, in registers. Pass 1
// runs the leading chunks that are all inside in a loop of their own (warp_prep_inside: no
// masks), and skips the rest of a chunk wholly outside by more than a pixel (constant border).
// Measured within noise (1080p RGB, single thread, AVX2 and AVX-512) and not kept: prefetching
// this row's taps 2-8 chunks ahead (the loads are not waiting on L2), the AVX2 tap rows by
// movq + movhps + vinserti128 instead of broadcasts and blends, the perspective columns as a
// float stepped per chunk instead of converted, and AVX2 prefetches without the past-the-last one.
constexpr int64_t kWarpBlock = 256;
constexpr int kWarpPrefetchRows = 3;  // output rows ahead

// 8 bytes at the top-left tap (row 0 at base0, offset o) and 8 at the same place one row below
// (base1 = base0 + the row stride: both loads are base + index, no address arithmetic).
inline __m128i warp_win(const uint8_t* base0, const uint8_t* base1, int32_t o) {
  const __m128i lo = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(base0 + o));
  return _mm_castpd_si128(_mm_loadh_pd(_mm_castsi128_pd(lo), reinterpret_cast<const double*>(base1 + o)));
}

// A window's bytes as dwords [p00, p01, p10, p11], C bytes each, zero-padded.
template <int C>
inline __m128i warp_win_ctl() {
  alignas(16) int8_t c[16];
  for (int d = 0; d < 4; ++d)
    for (int i = 0; i < 4; ++i) c[4 * d + i] = i < C ? static_cast<int8_t>((d >> 1) * 8 + (d & 1) * C + i) : int8_t(-1);
  return _mm_load_si128(reinterpret_cast<const __m128i*>(c));
}

constexpr int64_t kWarpLanes = simd::Vec<float>::lanes;
using WVeci = simd::ivec;
#if defined(__AVX512F__)
using WVec = __m512;
inline WVec wv_load(const float* p) { return _mm512_loadu_ps(p); }
inline WVec wv_zero() { return _mm512_setzero_ps(); }
inline void wv_store(float* p, WVec v) { _mm512_storeu_ps(p, v); }
inline WVec wv_floor(WVec v) { return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
inline WVeci wv_set1i(int32_t v) { return _mm512_set1_epi32(v); }
// lanes with lo <= v <= hi (false for NaN), as a bit mask
inline unsigned wv_within(WVec v, float lo, float hi) {
  return _mm512_cmp_ps_mask(v, _mm512_set1_ps(lo), _CMP_GE_OQ) & _mm512_cmp_ps_mask(v, _mm512_set1_ps(hi), _CMP_LE_OQ);
}
inline unsigned wv_outside(WVec v, float lo, float hi) {
  return _mm512_cmp_ps_mask(v, _mm512_set1_ps(lo), _CMP_LT_OQ) | _mm512_cmp_ps_mask(v, _mm512_set1_ps(hi), _CMP_GE_OQ);
}
inline unsigned wv_finite(WVec v) {
  return _mm512_cmp_ps_mask(_mm512_abs_ps(v), _mm512_set1_ps(2.0e9f), _CMP_LT_OQ);
}
constexpr unsigned kAllLanes = 0xFFFF;
#else
using WVec = __m256;
inline WVec wv_load(const float* p) { return _mm256_loadu_ps(p); }
inline WVec wv_zero() { return _mm256_setzero_ps(); }
inline void wv_store(float* p, WVec v) { _mm256_storeu_ps(p, v); }
inline WVec wv_floor(WVec v) { return _mm256_floor_ps(v); }
inline WVeci wv_set1i(int32_t v) { return _mm256_set1_epi32(v); }
inline unsigned wv_within(WVec v, float lo, float hi) {
  return static_cast<unsigned>(_mm256_movemask_ps(
      _mm256_and_ps(_mm256_cmp_ps(v, _mm256_set1_ps(lo), _CMP_GE_OQ), _mm256_cmp_ps(v, _mm256_set1_ps(hi), _CMP_LE_OQ))));
}
inline unsigned wv_outside(WVec v, float lo, float hi) {
  return static_cast<unsigned>(_mm256_movemask_ps(
      _mm256_or_ps(_mm256_cmp_ps(v, _mm256_set1_ps(lo), _CMP_LT_OQ), _mm256_cmp_ps(v, _mm256_set1_ps(hi), _CMP_GE_OQ))));
}
inline unsigned wv_finite(WVec v) {
  const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.f), v);
  return static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(a, _mm256_set1_ps(2.0e9f), _CMP_LT_OQ)));
}
constexpr unsigned kAllLanes = 0xFF;
#endif

// ---- int32 lanes: source indices mapped by the border rule, gathers, stores ------------------
// The border rule's closed forms (border_index's results for an index within one period of the
// image: -n <= v < 2n; reflect101 -(n - 1) <= v <= 2n - 2; replicate any v). The callers mark
// the lanes whose taps lie within those ranges (border_range) and leave the others to float_row.
#if defined(__AVX512F__)
inline WVeci wi_cvt(WVec v) { return _mm512_cvttps_epi32(v); }
inline WVeci wi_add(WVeci a, WVeci b) { return _mm512_add_epi32(a, b); }
inline WVeci wi_mul(WVeci a, int32_t m) { return _mm512_mullo_epi32(a, _mm512_set1_epi32(m)); }
inline WVeci wi_load(const int32_t* p) { return _mm512_loadu_si512(p); }
inline void wi_store(int32_t* p, WVeci v) { _mm512_storeu_si512(p, v); }
inline WVeci wi_map(WVeci v, int32_t n, Border b) {
  const __m512i zero = _mm512_setzero_si512(), nv = _mm512_set1_epi32(n);
  if (b == Border::replicate) return _mm512_min_epi32(_mm512_max_epi32(v, zero), _mm512_set1_epi32(n - 1));
  const __mmask16 lo = _mm512_cmplt_epi32_mask(v, zero), hi = _mm512_cmpge_epi32_mask(v, nv);
  if (b == Border::wrap) return _mm512_mask_sub_epi32(_mm512_mask_add_epi32(v, lo, v, nv), hi, v, nv);
  if (b == Border::reflect || b == Border::reflect101) {
    const int32_t r = b == Border::reflect ? 1 : 0;
    v = _mm512_mask_sub_epi32(v, lo, _mm512_set1_epi32(-r), v);
    return _mm512_mask_sub_epi32(v, hi, _mm512_set1_epi32(2 * n - 2 + r), v);
  }
  return v;  // constant: the callers mask the taps outside
}
// lanes of v >= lo (as bits)
inline unsigned wi_ge(WVeci v, int32_t lo) { return _mm512_cmpge_epi32_mask(v, _mm512_set1_epi32(lo)); }
inline unsigned wi_le(WVeci v, int32_t hi) { return _mm512_cmple_epi32_mask(v, _mm512_set1_epi32(hi)); }
// the dwords at base + off of the lanes in m, src elsewhere (no load for those lanes)
inline WVeci wi_gather(WVeci src, unsigned m, WVeci off, const void* base) {
  return _mm512_mask_i32gather_epi32(src, static_cast<__mmask16>(m), off, base, 1);
}
inline WVec wv_gather(WVec src, unsigned m, WVeci off, const void* base) {
  return _mm512_mask_i32gather_ps(src, static_cast<__mmask16>(m), off, base, 1);
}
// lanes in m: v >> s (s a multiple of 8), the others unchanged
inline WVeci wi_srl_masked(WVeci v, unsigned m, int s) {
  return _mm512_mask_srlv_epi32(v, static_cast<__mmask16>(m), v, _mm512_set1_epi32(s));
}
inline WVeci wi_sub_masked(WVeci v, unsigned m, int32_t d) {
  return _mm512_mask_sub_epi32(v, static_cast<__mmask16>(m), v, _mm512_set1_epi32(d));
}
inline unsigned wi_gt(WVeci v, int32_t t) { return _mm512_cmpgt_epi32_mask(v, _mm512_set1_epi32(t)); }
// the low PB (1-4) bytes of each dword, packed to PB * 16 bytes at out
template <int PB>
IMKERN_ALWAYS_INLINE inline void store_dwords(uint8_t* out, WVeci v) {
  if constexpr (PB == 1) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_cvtepi32_epi8(v));
  } else if constexpr (PB == 2) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_cvtepi32_epi16(v));
  } else if constexpr (PB == 3) {
    const __m512i sh = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1));
    v = _mm512_shuffle_epi8(v, sh);
    v = _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 15, 15, 15, 15), v);
    _mm512_mask_storeu_epi8(out, 0x0000FFFFFFFFFFFFULL, v);
  } else {
    _mm512_storeu_si512(out, v);
  }
}
#else
inline WVeci wi_cvt(WVec v) { return _mm256_cvttps_epi32(v); }
inline WVeci wi_add(WVeci a, WVeci b) { return _mm256_add_epi32(a, b); }
inline WVeci wi_mul(WVeci a, int32_t m) { return _mm256_mullo_epi32(a, _mm256_set1_epi32(m)); }
inline WVeci wi_load(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline void wi_store(int32_t* p, WVeci v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
inline WVeci wi_map(WVeci v, int32_t n, Border b) {
  const __m256i zero = _mm256_setzero_si256(), n1 = _mm256_set1_epi32(n - 1);
  if (b == Border::replicate) return _mm256_min_epi32(_mm256_max_epi32(v, zero), n1);
  const __m256i lo = _mm256_cmpgt_epi32(zero, v), hi = _mm256_cmpgt_epi32(v, n1);
  if (b == Border::wrap) {
    const __m256i nv = _mm256_set1_epi32(n);
    return _mm256_sub_epi32(_mm256_add_epi32(v, _mm256_and_si256(lo, nv)), _mm256_and_si256(hi, nv));
  }
  if (b == Border::reflect || b == Border::reflect101) {
    const int32_t r = b == Border::reflect ? 1 : 0;
    v = _mm256_blendv_epi8(v, _mm256_sub_epi32(_mm256_set1_epi32(-r), v), lo);
    return _mm256_blendv_epi8(v, _mm256_sub_epi32(_mm256_set1_epi32(2 * n - 2 + r), v), hi);
  }
  return v;
}
inline unsigned wi_bits(__m256i m) { return static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(m))); }
inline __m256i wi_mask(unsigned bits) {
  const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(static_cast<int32_t>(bits)), sel), sel);
}
inline unsigned wi_ge(WVeci v, int32_t lo) { return wi_bits(_mm256_cmpgt_epi32(v, _mm256_set1_epi32(lo - 1))); }
inline unsigned wi_le(WVeci v, int32_t hi) { return wi_bits(_mm256_cmpgt_epi32(_mm256_set1_epi32(hi + 1), v)); }
inline unsigned wi_gt(WVeci v, int32_t t) { return wi_bits(_mm256_cmpgt_epi32(v, _mm256_set1_epi32(t))); }
inline WVeci wi_gather(WVeci src, unsigned m, WVeci off, const void* base) {
  return _mm256_mask_i32gather_epi32(src, static_cast<const int*>(base), off, wi_mask(m), 1);
}
inline WVec wv_gather(WVec src, unsigned m, WVeci off, const void* base) {
  return _mm256_mask_i32gather_ps(src, static_cast<const float*>(base), off, _mm256_castsi256_ps(wi_mask(m)), 1);
}
inline WVeci wi_srl_masked(WVeci v, unsigned m, int s) {
  return _mm256_blendv_epi8(v, _mm256_srlv_epi32(v, _mm256_set1_epi32(s)), wi_mask(m));
}
inline WVeci wi_sub_masked(WVeci v, unsigned m, int32_t d) {
  return _mm256_sub_epi32(v, _mm256_and_si256(wi_mask(m), _mm256_set1_epi32(d)));
}
template <int PB>
IMKERN_ALWAYS_INLINE inline void store_dwords(uint8_t* out, WVeci v) {
  if constexpr (PB == 1) {
    const __m256i b = _mm256_and_si256(v, _mm256_set1_epi32(255));
    const __m128i w16 = _mm_packus_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packus_epi16(w16, w16));
  } else if constexpr (PB == 2) {
    const __m256i b = _mm256_and_si256(v, _mm256_set1_epi32(0xFFFF));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out),
                     _mm_packus_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1)));
  } else if constexpr (PB == 3) {
    const __m128i sh = _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
    v = _mm256_shuffle_epi8(v, _mm256_broadcastsi128_si256(sh));
    v = _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(v));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + 16), _mm256_extracti128_si256(v, 1));
  } else {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), v);
  }
}
#endif

// The float ranges of a tap's floored coordinate (bilinear: the left / top one, taps - 1 more
// to its right / below) for which every tap of the lane maps by wi_map's closed forms; for
// constant, where some tap is inside (the others are cval). Replicate: any, as long as the
// conversion to int32 is exact (|v| <= 2^30, which also keeps float_row's "far" lanes, beyond
// 2e9, out).
struct BorderRange {
  float lox, hix, loy, hiy;
};
inline BorderRange border_range(Border b, int64_t W, int64_t H, int taps) {
  auto range = [&](int64_t n, float& lo, float& hi) {
    switch (b) {
      case Border::replicate: lo = -1073741824.f, hi = 1073741824.f; return;
      case Border::constant: lo = static_cast<float>(1 - taps), hi = static_cast<float>(n - 1); return;
      case Border::reflect101: lo = static_cast<float>(1 - n), hi = static_cast<float>(2 * n - 1 - taps); return;
      default: lo = static_cast<float>(-n), hi = static_cast<float>(2 * n - taps); return;
    }
  };
  BorderRange r;
  range(W, r.lox, r.hix);
  range(H, r.loy, r.hiy);
  return r;
}

// Pass 1 over n (a multiple of kWarpLanes) pixels from x0: per chunk the mask of lanes whose
// 2 x 2 window (and the 8 bytes each load reads) lies inside the image, the byte offsets of
// the top-left taps (a chunk not all inside: the four taps' mapped offsets, in OFF and mp, and
// mp's masks of the lanes and taps the gathers read) and the fractions; far[k] (constant border only, else 0): the lanes that
// float_row would fill with cval (outside by more than a pixel, or not finite). Affine: the
// source points are computed here (float_coords' fmas, the same bits) and stored to FX/FY for
// float_row; perspective: read from FX/FY.
// PB: bytes per pixel (the offsets' x step); row_stride in bytes; xmax: the largest fx0 whose
// loads stay in the row (uint8: fx0 * C + 8 <= W * C, the last byte a load reads).
//
// Pass 1's results for the chunks that are not all inside (warp_chunk_mapped): every lane whose
// taps wi_map maps (valid), their four tap offsets (the top-left ones in OFF), and per tap the
// lanes that read it (constant: the taps inside; the others are cval).
struct WarpMapped {
  Border border;
  BorderRange br;
  int32_t omax;  // the largest tap offset a dword read may start at (uint8 with 1 or 3 channels)
  alignas(64) int32_t O01[kWarpBlock], O10[kWarpBlock], O11[kWarpBlock];
  uint32_t valid[kWarpBlock / kWarpLanes];
  uint32_t tm[4][kWarpBlock / kWarpLanes];
};

// The source points of an affine row's lanes, a vector at a time from column x0: (m0 x + mx,
// m3 x + my) with the lanes' x as exact floats stepped by kWarpLanes (the caller keeps the row
// under 2^24 pixels), the same floats as float_coords'.
struct AffineLanes {
  WVec m0, m3, mx, my, xf, step;
  AffineLanes(const RowTerms& rt, int64_t x0) {
#if defined(__AVX512F__)
    m0 = _mm512_set1_ps(rt.m0), m3 = _mm512_set1_ps(rt.m3), mx = _mm512_set1_ps(rt.mx), my = _mm512_set1_ps(rt.my);
    xf = _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(x0)),
                                             _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)));
    step = _mm512_set1_ps(static_cast<float>(kWarpLanes));
#else
    m0 = _mm256_set1_ps(rt.m0), m3 = _mm256_set1_ps(rt.m3), mx = _mm256_set1_ps(rt.mx), my = _mm256_set1_ps(rt.my);
    xf = _mm256_cvtepi32_ps(
        _mm256_add_epi32(_mm256_set1_epi32(static_cast<int32_t>(x0)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
    step = _mm256_set1_ps(static_cast<float>(kWarpLanes));
#endif
  }
  // the next vector of lanes' source points
  void next(WVec& sx, WVec& sy) {
#if defined(__AVX512F__)
    sx = _mm512_fmadd_ps(m0, xf, mx);
    sy = _mm512_fmadd_ps(m3, xf, my);
    xf = _mm512_add_ps(xf, step);
#else
    sx = _mm256_fmadd_ps(m0, xf, mx);
    sy = _mm256_fmadd_ps(m3, xf, my);
    xf = _mm256_add_ps(xf, step);
#endif
  }
};

// The source points of a perspective row's lanes at column x (a multiple of kWarpLanes):
// float_coords' operations (fma(m0, x, mx) / fma(m6, x, mw), likewise y), the same bits. The
// bilinear rows compute the next block's points while they load the taps of this one: two
// divisions per pixel, which were 13% of a 1080p RGB row's time at AVX2 in a pass of their own
// (bound by the divider), overlap the tap loads and shuffles there.
struct PerspLanes {
  WVec m0, m3, m6, mx, my, mw;
  RowTerms rt;
  explicit PerspLanes(const RowTerms& r) : rt(r) {
#if defined(__AVX512F__)
    m0 = _mm512_set1_ps(rt.m0), m3 = _mm512_set1_ps(rt.m3), m6 = _mm512_set1_ps(rt.m6);
    mx = _mm512_set1_ps(rt.mx), my = _mm512_set1_ps(rt.my), mw = _mm512_set1_ps(rt.mw);
#else
    m0 = _mm256_set1_ps(rt.m0), m3 = _mm256_set1_ps(rt.m3), m6 = _mm256_set1_ps(rt.m6);
    mx = _mm256_set1_ps(rt.mx), my = _mm256_set1_ps(rt.my), mw = _mm256_set1_ps(rt.mw);
#endif
  }
  // the points of columns x .. x + kWarpLanes - 1, in registers
  IMKERN_ALWAYS_INLINE void point(int64_t x, WVec& sx, WVec& sy) const {
#if defined(__AVX512F__)
    const __m512 xf = _mm512_cvtepi32_ps(_mm512_add_epi32(
        _mm512_set1_epi32(static_cast<int32_t>(x)), _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)));
    const __m512 wv = _mm512_fmadd_ps(m6, xf, mw);
    sx = _mm512_div_ps(_mm512_fmadd_ps(m0, xf, mx), wv);
    sy = _mm512_div_ps(_mm512_fmadd_ps(m3, xf, my), wv);
#else
    const __m256 xf = _mm256_cvtepi32_ps(
        _mm256_add_epi32(_mm256_set1_epi32(static_cast<int32_t>(x)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
    const __m256 wv = _mm256_fmadd_ps(m6, xf, mw);
    sx = _mm256_div_ps(_mm256_fmadd_ps(m0, xf, mx), wv);
    sy = _mm256_div_ps(_mm256_fmadd_ps(m3, xf, my), wv);
#endif
  }
  // the same, stored to FX / FY at x
  IMKERN_ALWAYS_INLINE void at(int64_t x, float* FX, float* FY) const {
    WVec sx, sy;
    point(x, sx, sy);
    wv_store(FX + x, sx);
    wv_store(FY + x, sy);
  }
  // the points of columns [x0, x1) one at a time (float_coords' scalar loop)
  void tail(int64_t x0, int64_t x1, float* FX, float* FY) const {
    for (int64_t x = x0; x < x1; ++x) {
      const float xf = static_cast<float>(static_cast<int32_t>(x));
      const float wv = std::fma(rt.m6, xf, rt.mw);
      FX[x] = std::fma(rt.m0, xf, rt.mx) / wv;
      FY[x] = std::fma(rt.m3, xf, rt.my) / wv;
    }
  }
};

// One axis of a bilinear window mapped by the border rule (columns against W, scaled by the
// pixel's bytes; rows against H, scaled by the row stride): the two taps' mapped indices times
// `scale`, and the lanes whose first / second tap lies inside [0, n) (constant: the others read
// cval; every other rule maps all of them).
struct MappedAxis {
  WVeci o0, o1;
  unsigned in0, in1;
};
inline MappedAxis map_axis(WVeci i, int32_t n, Border rule, int32_t scale, bool constant) {
  const WVeci i1 = wi_add(i, wv_set1i(1));
  return {wi_mul(wi_map(i, n, rule), scale), wi_mul(wi_map(i1, n, rule), scale),
          constant ? wi_ge(i, 0) : kAllLanes, constant ? wi_le(i, n - 2) : kAllLanes};
}

// Where a chunk's source points come from: the affine lanes (computed), FX / FY (perspective,
// stored by PerspLanes::at during the block before), or PerspLanes::point (perspective,
// computed; kPointsPerspStore also stores them to FX / FY, for float_row).
enum PointsFrom { kPointsAffine, kPointsStored, kPointsPersp, kPointsPerspStore };

// One chunk's source points, their floors (kNearest: floor(s + 0.5f), the pixel float_row's
// nearest reads) and the floors as int32 (negative, NaN and huge values convert to negatives
// or 0x80000000): both loops of pass 1 and the nearest rows take them from here.
struct ChunkPoints {
  WVec sx, sy, fx0, fy0;
  WVeci ix, iy;
};
template <int kFrom, bool kNearest = false>
IMKERN_ALWAYS_INLINE inline ChunkPoints chunk_points(AffineLanes& lanes, const PerspLanes& persp, float* FX, float* FY,
                                                     int64_t x) {
  ChunkPoints p;
  if constexpr (kFrom == kPointsAffine) {
    lanes.next(p.sx, p.sy);
  } else if constexpr (kFrom == kPointsStored) {
    p.sx = wv_load(FX + x);
    p.sy = wv_load(FY + x);
  } else {
    persp.point(x, p.sx, p.sy);
    if constexpr (kFrom == kPointsPerspStore) {
      wv_store(FX + x, p.sx);
      wv_store(FY + x, p.sy);
    }
  }
  if constexpr (kNearest) {
#if defined(__AVX512F__)
    const __m512 half = _mm512_set1_ps(0.5f);
    p.fx0 = wv_floor(_mm512_add_ps(p.sx, half));
    p.fy0 = wv_floor(_mm512_add_ps(p.sy, half));
#else
    const __m256 half = _mm256_set1_ps(0.5f);
    p.fx0 = wv_floor(_mm256_add_ps(p.sx, half));
    p.fy0 = wv_floor(_mm256_add_ps(p.sy, half));
#endif
  } else {
    p.fx0 = wv_floor(p.sx);
    p.fy0 = wv_floor(p.sy);
  }
  p.ix = wi_cvt(p.fx0);
  p.iy = wi_cvt(p.fy0);
  return p;
}

// The lanes whose window lies inside: 0 <= ix <= xlim and 0 <= iy <= ylim, the limits in
// [0, 2^31). inside_bits gives them as bits, all_inside whether they are every lane; both read
// the one test of wi_inside.
#if defined(__AVX512F__)
using WInside = __mmask16;
// unsigned compares: a negative index (NaN and huge values convert to 0x80000000) is above the limit
IMKERN_ALWAYS_INLINE inline WInside wi_inside(WVeci ix, WVeci iy, WVeci xlim, WVeci ylim) {
  return _mm512_mask_cmple_epu32_mask(_mm512_cmple_epu32_mask(ix, xlim), iy, ylim);
}
IMKERN_ALWAYS_INLINE inline unsigned inside_bits(WInside t) { return t; }
IMKERN_ALWAYS_INLINE inline bool all_inside(WInside t) { return t == 0xFFFF; }
#else
using WInside = __m256;  // the sign bit of each lane outside
// the sign bits of ix | (xlim - ix) | iy | (ylim - iy): a negative index (NaN and huge values
// convert to 0x80000000) has its own sign bit, one above the limit the difference's (no
// overflow, the limits lying in [0, 2^31)); all_inside is one vtestps
IMKERN_ALWAYS_INLINE inline WInside wi_inside(WVeci ix, WVeci iy, WVeci xlim, WVeci ylim) {
  return _mm256_castsi256_ps(_mm256_or_si256(_mm256_or_si256(ix, _mm256_sub_epi32(xlim, ix)),
                                             _mm256_or_si256(iy, _mm256_sub_epi32(ylim, iy))));
}
IMKERN_ALWAYS_INLINE inline unsigned inside_bits(WInside t) {
  return ~static_cast<unsigned>(_mm256_movemask_ps(t)) & kAllLanes;
}
IMKERN_ALWAYS_INLINE inline bool all_inside(WInside t) { return _mm256_testz_ps(t, t); }
#endif

// A chunk's fractions (the point less its floor) to AX / AY, and (chunks all inside) the byte
// offsets of its top-left taps to OFF.
IMKERN_ALWAYS_INLINE inline void store_fractions(const ChunkPoints& p, float* AX, float* AY) {
#if defined(__AVX512F__)
  wv_store(AX, _mm512_sub_ps(p.sx, p.fx0));
  wv_store(AY, _mm512_sub_ps(p.sy, p.fy0));
#else
  wv_store(AX, _mm256_sub_ps(p.sx, p.fx0));
  wv_store(AY, _mm256_sub_ps(p.sy, p.fy0));
#endif
}
// the byte offsets iy * row_stride + ix * PB of a chunk's pixels (bilinear: its top-left taps)
template <int PB>
IMKERN_ALWAYS_INLINE inline WVeci chunk_offsets(WVeci ix, WVeci iy, int32_t row_stride) {
  return wi_add(wi_mul(iy, row_stride), wi_mul(ix, PB));
}
template <int PB>
IMKERN_ALWAYS_INLINE inline void store_offsets(const ChunkPoints& p, int32_t row_stride, int32_t* OFF) {
  wi_store(OFF, chunk_offsets<PB>(p.ix, p.iy, row_stride));
}

// Pass 1's leading chunks whose lanes are all inside (most of a row's): the offsets and the
// fractions alone, without the masks; returns the pixels done (a multiple of kWarpLanes, n
// when every chunk is inside). kFrom: kPointsAffine, kPointsStored or kPointsPersp. A function
// of its own (not inlined into the row): the row's register pressure made GCC reload the
// loop's constants from the stack per chunk.
template <int PB, int kFrom>
__attribute__((noinline)) int64_t warp_prep_inside(float* FX, float* FY, int64_t x0, int64_t n, const RowTerms& rt,
                                                   const PerspLanes& persp, int32_t xmax, int32_t ymax,
                                                   int32_t row_stride, int32_t* OFF, float* AX, float* AY) {
  AffineLanes lanes(rt, x0);
  const WVeci xlim = wv_set1i(xmax), ylim = wv_set1i(ymax);
  int64_t x = 0;
  for (; x < n; x += kWarpLanes) {
    const ChunkPoints p = chunk_points<kFrom>(lanes, persp, FX, FY, x0 + x);
    if (!all_inside(wi_inside(p.ix, p.iy, xlim, ylim))) break;
    store_fractions(p, AX + x, AY + x);
    store_offsets<PB>(p, row_stride, OFF + x);
  }
  return x;
}

template <int PB, bool kAffine>
unsigned warp_prep(float* FX, float* FY, int64_t x0, int64_t n, const RowTerms& rt, const PerspLanes& persp,
                   bool have_points, int64_t W, int64_t H, int64_t row_stride, float xmax, bool constant,
                   int32_t* OFF, float* AX, float* AY, uint32_t* inside, uint32_t* far, WarpMapped& mp) {
  // inside: 0 <= fx0 <= xmax, 0 <= fy0 <= H - 2 (NaN and huge values fail)
  const float ymax = static_cast<float>(H - 2);
  const bool any_in = xmax >= 0.f && ymax >= 0.f;
  const int32_t xl = static_cast<int32_t>(std::max(xmax, 0.f)), yl = static_cast<int32_t>(std::max(ymax, 0.f));
  // perspective rows: the points read from FX / FY (have_points: PerspLanes::at stored them
  // during the block before), else computed here and stored for the chunks not all inside
  // (float_row reads them; the chunks all inside need them in registers only)
  const bool compute = !kAffine && !have_points;
  const int32_t rs32 = static_cast<int32_t>(row_stride);
  int64_t x = 0;
  if (any_in) {
    if constexpr (kAffine) {
      x = warp_prep_inside<PB, kPointsAffine>(FX, FY, x0, n, rt, persp, xl, yl, rs32, OFF, AX, AY);
    } else if (have_points) {
      x = warp_prep_inside<PB, kPointsStored>(FX, FY, x0, n, rt, persp, xl, yl, rs32, OFF, AX, AY);
    } else {
      x = warp_prep_inside<PB, kPointsPersp>(FX, FY, x0, n, rt, persp, xl, yl, rs32, OFF, AX, AY);
    }
    if (x == n) return kAllLanes;  // the caller reads neither inside nor far
    for (int64_t k = 0; k < x / kWarpLanes; ++k) inside[k] = kAllLanes, far[k] = 0;
  }
  // the rest, from the first chunk with a lane outside: the masks of every chunk
  const WVeci xlim = wv_set1i(xl), ylim = wv_set1i(yl);
  unsigned all = kAllLanes;
  AffineLanes lanes(rt, x0 + x);  // affine rows
  for (int64_t k = x / kWarpLanes; x < n; x += kWarpLanes, ++k) {
    ChunkPoints p;
    if constexpr (kAffine) {
      p = chunk_points<kPointsAffine>(lanes, persp, FX, FY, x0 + x);
    } else if (compute) {
      p = chunk_points<kPointsPerspStore>(lanes, persp, FX, FY, x0 + x);
    } else {
      p = chunk_points<kPointsStored>(lanes, persp, FX, FY, x0 + x);
    }
    const WVec sx = p.sx, sy = p.sy, fx0 = p.fx0, fy0 = p.fy0;
    const WVeci ix = p.ix, iy = p.iy;
    if (constant) {
      // every lane outside by more than a pixel (cval; a sixth of a rotation's chunks): ix + 1
      // or iy + 1 above W or H as unsigned, as far[k] below has it (fx0 < -1 or fx0 >= W; NaN
      // and values beyond 2^31 convert to 0x80000000, not finite there), the rest skipped
      const WVeci one = wv_set1i(1);
#if defined(__AVX512F__)
      const bool all_far = (_mm512_cmpgt_epu32_mask(_mm512_add_epi32(ix, one), wv_set1i(static_cast<int32_t>(W))) |
                            _mm512_cmpgt_epu32_mask(_mm512_add_epi32(iy, one), wv_set1i(static_cast<int32_t>(H)))) == 0xFFFF;
#else
      const __m256i tx = _mm256_add_epi32(ix, one), ty = _mm256_add_epi32(iy, one);
      const __m256i wx = wv_set1i(static_cast<int32_t>(W + 1)), hy = wv_set1i(static_cast<int32_t>(H + 1));
      const __m256i fv = _mm256_or_si256(_mm256_cmpeq_epi32(_mm256_max_epu32(tx, wx), tx),
                                         _mm256_cmpeq_epi32(_mm256_max_epu32(ty, hy), ty));
      const bool all_far = _mm256_testc_si256(fv, _mm256_set1_epi32(-1));
#endif
      if (all_far) {
        inside[k] = 0;
        far[k] = kAllLanes;
        mp.valid[k] = 0;
        all = 0;
        continue;
      }
    }
    const unsigned in = any_in ? inside_bits(wi_inside(ix, iy, xlim, ylim)) : 0u;
    inside[k] = in;
    all &= in;
    far[k] = in == kAllLanes || !constant
                 ? 0u
                 : ((wv_outside(fx0, -1.f, static_cast<float>(W)) | wv_outside(fy0, -1.f, static_cast<float>(H)) |
                     ~(wv_finite(sx) & wv_finite(sy))) &
                    kAllLanes);
    store_fractions(p, AX + x, AY + x);
    if (in == kAllLanes) {
      store_offsets<PB>(p, rs32, OFF + x);
      continue;
    }
    // a chunk partly or wholly outside: the lanes whose taps the rule maps in vectors
    unsigned vm = wv_within(fx0, mp.br.lox, mp.br.hix) & wv_within(fy0, mp.br.loy, mp.br.hiy);
    mp.valid[k] = 0;
    if (vm == 0) continue;
    const Border mb = constant ? Border::replicate : mp.border;  // constant: in-image offsets, masked
    const MappedAxis cx = map_axis(ix, static_cast<int32_t>(W), mb, PB, constant);
    const MappedAxis ry = map_axis(iy, static_cast<int32_t>(H), mb, static_cast<int32_t>(row_stride), constant);
    const WVeci o00 = wi_add(ry.o0, cx.o0), o01 = wi_add(ry.o0, cx.o1), o10 = wi_add(ry.o1, cx.o0),
                o11 = wi_add(ry.o1, cx.o1);
    wi_store(OFF + x, o00);
    wi_store(mp.O01 + x, o01);
    wi_store(mp.O10 + x, o10);
    wi_store(mp.O11 + x, o11);
    if (mp.omax != INT32_MAX)
      vm &= ~(wi_gt(o00, mp.omax) | wi_gt(o01, mp.omax) | wi_gt(o10, mp.omax) | wi_gt(o11, mp.omax));
    mp.tm[0][k] = vm & cx.in0 & ry.in0;
    mp.tm[1][k] = vm & cx.in1 & ry.in0;
    mp.tm[2][k] = vm & cx.in0 & ry.in1;
    mp.tm[3][k] = vm & cx.in1 & ry.in1;
    mp.valid[k] = vm;
  }
  return all;
}

// Pass 2: one chunk. The taps: one 16-byte window per pixel (warp_win), register j lane
// L holding pixel 4 L + j, a byte shuffle to dwords [p00, p01, p10, p11], then a 4 x 4 dword
// transpose within 128-bit lanes, after which lane L of each tap vector holds pixels
// 4 L .. 4 L + 3: natural order.
template <int C>
IMKERN_ALWAYS_INLINE inline void warp_chunk(const uint8_t* base, const uint8_t* base1, const int32_t* o, const float* AX, const float* AY,
                       uint8_t* out) {
#if defined(__AVX512F__)
  const __m512i ctl = _mm512_broadcast_i32x4(warp_win_ctl<C>());
  __m512i r[4];
  for (int j = 0; j < 4; ++j) {
    __m512i v = _mm512_castsi128_si512(warp_win(base, base1, o[j]));
    v = _mm512_inserti32x4(v, warp_win(base, base1, o[4 + j]), 1);
    v = _mm512_inserti32x4(v, warp_win(base, base1, o[8 + j]), 2);
    v = _mm512_inserti32x4(v, warp_win(base, base1, o[12 + j]), 3);
    r[j] = C == 1 ? _mm512_shuffle_epi8(v, ctl) : v;
  }
  const __m512i t0 = _mm512_unpacklo_epi32(r[0], r[1]), t1 = _mm512_unpackhi_epi32(r[0], r[1]);
  const __m512i t2 = _mm512_unpacklo_epi32(r[2], r[3]), t3 = _mm512_unpackhi_epi32(r[2], r[3]);
  const __m512i a0 = _mm512_unpacklo_epi64(t0, t2), b0 = _mm512_unpackhi_epi64(t0, t2);
  const __m512i a1 = _mm512_unpacklo_epi64(t1, t3), b1 = _mm512_unpackhi_epi64(t1, t3);
  const __m512 ax = _mm512_loadu_ps(AX), ay = _mm512_loadu_ps(AY);
  const __m512i m8 = _mm512_set1_epi32(255);
  const __m512 magic = _mm512_set1_ps(8388608.f);  // 2^23
  __m512i res[4];
  for (int c = 0; c < C; ++c) {
    // channel c of each tap as int32: the bytes past channel C - 1 are zero (warp_win_ctl),
    // so the last channel needs no mask and the first no shift
    auto ext = [&](__m512i t) {
      if (c == C - 1) return c == 0 ? t : _mm512_srli_epi32(t, 8 * c);
      return c == 0 ? _mm512_and_si512(t, m8) : _mm512_and_si512(_mm512_srli_epi32(t, 8 * c), m8);
    };
    // 3 channels: no byte shuffle, the dwords are the window's raw bytes (a = bytes 0-3 of
    // the row's 8, b = bytes 4-7): byte k of the row, zero-extended
    auto byte3 = [&](__m512i a, __m512i b, int k) {
      const __m512i t = k < 4 ? a : b;
      k &= 3;
      return k == 3 ? _mm512_srli_epi32(t, 24) : _mm512_and_si512(k ? _mm512_srli_epi32(t, 8 * k) : t, m8);
    };
    const __m512 p00 = _mm512_cvtepi32_ps(C == 3 ? byte3(a0, b0, c) : ext(a0));
    const __m512 p01 = _mm512_cvtepi32_ps(C == 3 ? byte3(a0, b0, 3 + c) : ext(b0));
    const __m512 p10 = _mm512_cvtepi32_ps(C == 3 ? byte3(a1, b1, c) : ext(a1));
    const __m512 p11 = _mm512_cvtepi32_ps(C == 3 ? byte3(a1, b1, 3 + c) : ext(b1));
    const __m512 v0 = _mm512_fmadd_ps(ax, _mm512_sub_ps(p01, p00), p00);
    const __m512 v1 = _mm512_fmadd_ps(ax, _mm512_sub_ps(p11, p10), p10);
    const __m512 v = _mm512_fmadd_ps(ay, _mm512_sub_ps(v1, v0), v0);
    res[c] = _mm512_castps_si512(_mm512_add_ps(v, magic));  // 0x4B0000vv
  }
  if constexpr (C == 1) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_cvtepi32_epi8(res[0]));
  } else {
    // bytes of each dword [r0, r1, r2 (, r3)]; res[c] << 8c drops the exponent byte for c >= 1
    __m512i px = C == 4 ? _mm512_and_si512(res[0], m8) : res[0];
    px = _mm512_ternarylogic_epi32(px, _mm512_slli_epi32(res[1], 8), _mm512_slli_epi32(res[2], 16), 0xFE);
    if constexpr (C == 4) {
      _mm512_storeu_si512(out, _mm512_or_si512(px, _mm512_slli_epi32(res[3], 24)));
    } else {
      // 3 bytes of each dword, packed: within each 128-bit lane, then the lanes' 12 bytes
      const __m512i sh = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1));
      px = _mm512_shuffle_epi8(px, sh);
      px = _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 15, 15, 15, 15), px);
      _mm512_mask_storeu_epi8(out, 0x0000FFFFFFFFFFFFULL, px);
    }
  }
#else
  // AVX2: each tap row's 8 bytes broadcast to a ymm (vpbroadcastq from memory: a load, no
  // shuffle uop), four pixels' rows blended in as qwords, then vshufps picks dword 0 (bytes
  // 0-3) and dword 1 (bytes 4-7) of eight pixels: 4 shuffles and 12 blends per chunk instead
  // of the 8 vmovhpd, 4 vinserti128 and 8 unpacks of the window transpose. Pixels {0, 1, 4, 5}
  // and {2, 3, 6, 7} make the two vectors so that vshufps leaves the lanes in pixel order.
  auto bq = [&](const uint8_t* p) {
    int64_t v;
    std::memcpy(&v, p, 8);
    return _mm256_set1_epi64x(v);
  };
  auto rows4 = [&](const uint8_t* bp, int i0, int i1, int i2, int i3) {
    const __m256i lo = _mm256_blend_epi32(bq(bp + o[i0]), bq(bp + o[i1]), 0x0C);
    const __m256i hi = _mm256_blend_epi32(bq(bp + o[i2]), bq(bp + o[i3]), 0xC0);
    return _mm256_castsi256_ps(_mm256_blend_epi32(lo, hi, 0xF0));
  };
  const __m256 x0 = rows4(base, 0, 1, 4, 5), y0 = rows4(base, 2, 3, 6, 7);
  const __m256 x1 = rows4(base1, 0, 1, 4, 5), y1 = rows4(base1, 2, 3, 6, 7);
  const __m256i a0 = _mm256_castps_si256(_mm256_shuffle_ps(x0, y0, 0x88));
  const __m256i a1 = _mm256_castps_si256(_mm256_shuffle_ps(x1, y1, 0x88));
  // (one channel reads bytes 0 and 1 only)
  const __m256i b0 = C == 1 ? a0 : _mm256_castps_si256(_mm256_shuffle_ps(x0, y0, 0xDD));
  const __m256i b1 = C == 1 ? a1 : _mm256_castps_si256(_mm256_shuffle_ps(x1, y1, 0xDD));
  const __m256 ax = _mm256_loadu_ps(AX), ay = _mm256_loadu_ps(AY);
  const __m256i m8 = _mm256_set1_epi32(255);
  const __m256 magic = _mm256_set1_ps(8388608.f);  // 2^23
  // byte k (0-7) of each pixel's tap row (a: bytes 0-3, b: bytes 4-7), zero-extended to
  // int32: a mask, a shift, or one pshufb (byte 4 d + k of dword d) where it would take both
  auto byte = [&](__m256i a, __m256i b, int k) {
    const __m256i t = k < 4 ? a : b;
    k &= 3;
    if (k == 0) return _mm256_and_si256(t, m8);
    if (k == 3) return _mm256_srli_epi32(t, 24);
    const int32_t z = static_cast<int32_t>(0xFFFFFF00u) | k;
    return _mm256_shuffle_epi8(t, _mm256_setr_epi32(z, z + 4, z + 8, z + 12, z, z + 4, z + 8, z + 12));
  };
  __m256i res[4];
  for (int c = 0; c < C; ++c) {
    // channel c of the left taps is byte c, of the right taps byte C + c (4 + c for C = 4)
    const int kl = c, kr = (C == 4 ? 4 : C) + c;
    const __m256i i00 = byte(a0, b0, kl), i01 = byte(a0, b0, kr);
    const __m256i i10 = byte(a1, b1, kl), i11 = byte(a1, b1, kr);
    const __m256 p00 = _mm256_cvtepi32_ps(i00), p10 = _mm256_cvtepi32_ps(i10);
    // p01 - p00 as an integer difference, converted: the same float as the float difference
    // (both exact), one vector integer op instead of a conversion and a float subtraction
    const __m256 v0 = _mm256_fmadd_ps(ax, _mm256_cvtepi32_ps(_mm256_sub_epi32(i01, i00)), p00);
    const __m256 v1 = _mm256_fmadd_ps(ax, _mm256_cvtepi32_ps(_mm256_sub_epi32(i11, i10)), p10);
    const __m256 v = _mm256_fmadd_ps(ay, _mm256_sub_ps(v1, v0), v0);
    // one channel: the low byte of v + 2^23 (0x4B0000vv); more: cvtps2dq (the same rounding,
    // half to even) and packs, which take fewer instructions than masks, shifts and ors
    res[c] = C == 1 ? _mm256_castps_si256(_mm256_add_ps(v, magic)) : _mm256_cvtps_epi32(v);
  }
  if constexpr (C == 1) {
    const __m256i v = _mm256_and_si256(res[0], m8);
    const __m128i w16 = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packus_epi16(w16, w16));
  } else {
    // per 128-bit lane (pixels 0-3, then 4-7): bytes [r0 of 4 pixels, r1, r2, r3 (C = 3: r2)],
    // then one pshufb to pixel order
    const __m256i w01 = _mm256_packus_epi32(res[0], res[1]);
    const __m256i w23 = _mm256_packus_epi32(res[2], res[C == 4 ? 3 : 2]);
    __m256i px = _mm256_packus_epi16(w01, w23);
    if constexpr (C == 4) {
      const __m128i sh = _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_shuffle_epi8(px, _mm256_broadcastsi128_si256(sh)));
    } else {
      const __m128i sh = _mm_setr_epi8(0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11, -1, -1, -1, -1);
      px = _mm256_shuffle_epi8(px, _mm256_broadcastsi128_si256(sh));
      px = _mm256_permutevar8x32_epi32(px, _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(px));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(out + 16), _mm256_extracti128_si256(px, 1));
    }
  }
#endif
}

// Pass 2 for float32 images, 8 pixels with 256-bit vectors: the same float operations as
// float_row (two fma lerps along x, one along y), lane by lane, so the same bits.
// One channel: each tap row's 8 bytes (p00, p01) broadcast, blended and split by vshufps as
// warp_chunk's AVX2 code does (no shuffle beyond the two vshufps per tap row). Three or four
// channels: a pixel per 128-bit half, each tap's channels one 16-byte load (three channels: the
// fourth float is the next pixel's, a lane whose result is dropped; the caller keeps fx0 + 2
// inside), the fractions spread over each half's lanes by vpermps; three channels are packed
// back to 12 bytes a pixel by vpermps and stores that overlap the next pair's.
template <int C>
IMKERN_ALWAYS_INLINE inline void warp_chunk8_f32(const uint8_t* base, const uint8_t* base1, const int32_t* o,
                                                 const float* AX, const float* AY, float* out) {
  const __m256 ax = _mm256_loadu_ps(AX), ay = _mm256_loadu_ps(AY);
  auto lerp = [](__m256 axv, __m256 ayv, __m256 p00, __m256 p01, __m256 p10, __m256 p11) {
    const __m256 v0 = _mm256_fmadd_ps(axv, _mm256_sub_ps(p01, p00), p00);
    const __m256 v1 = _mm256_fmadd_ps(axv, _mm256_sub_ps(p11, p10), p10);
    return _mm256_fmadd_ps(ayv, _mm256_sub_ps(v1, v0), v0);
  };
  if constexpr (C == 1) {
    auto bq = [&](const uint8_t* p) { return _mm256_castpd_ps(_mm256_broadcast_sd(reinterpret_cast<const double*>(p))); };
    auto rows4 = [&](const uint8_t* bp, int i0, int i1, int i2, int i3) {
      const __m256 lo = _mm256_blend_ps(bq(bp + o[i0]), bq(bp + o[i1]), 0x0C);
      const __m256 hi = _mm256_blend_ps(bq(bp + o[i2]), bq(bp + o[i3]), 0xC0);
      return _mm256_blend_ps(lo, hi, 0xF0);
    };
    const __m256 x0 = rows4(base, 0, 1, 4, 5), y0 = rows4(base, 2, 3, 6, 7);
    const __m256 x1 = rows4(base1, 0, 1, 4, 5), y1 = rows4(base1, 2, 3, 6, 7);
    _mm256_storeu_ps(out, lerp(ax, ay, _mm256_shuffle_ps(x0, y0, 0x88), _mm256_shuffle_ps(x0, y0, 0xDD),
                               _mm256_shuffle_ps(x1, y1, 0x88), _mm256_shuffle_ps(x1, y1, 0xDD)));
  } else {
    constexpr int PB = 4 * C;
    // pixel a in the low half, b in the high half: a plain load and a 128-bit broadcast, blended
    auto two = [](const uint8_t* pa, const uint8_t* pb) {
      return _mm256_blend_ps(_mm256_castps128_ps256(_mm_loadu_ps(reinterpret_cast<const float*>(pa))),
                             _mm256_broadcast_ps(reinterpret_cast<const __m128*>(pb)), 0xF0);
    };
    for (int k = 0; k < 4; ++k) {
      const int a = 2 * k, b = a + 1;
      const __m256i sel = _mm256_setr_epi32(a, a, a, a, b, b, b, b);
      const __m256 v = lerp(_mm256_permutevar8x32_ps(ax, sel), _mm256_permutevar8x32_ps(ay, sel),
                            two(base + o[a], base + o[b]), two(base + o[a] + PB, base + o[b] + PB),
                            two(base1 + o[a], base1 + o[b]), two(base1 + o[a] + PB, base1 + o[b] + PB));
      if constexpr (C == 4) {
        _mm256_storeu_ps(out + 8 * k, v);
      } else {
        const __m256 q = _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7));
        if (k < 3) {
          _mm256_storeu_ps(out + 6 * k, q);  // floats 6 and 7: the next pair's store rewrites them
        } else {
          _mm_storeu_ps(out + 18, _mm256_castps256_ps128(q));
          _mm_storel_pi(reinterpret_cast<__m64*>(out + 22), _mm256_extractf128_ps(q, 1));
        }
      }
    }
  }
}

// One float32 chunk of kWarpLanes pixels.
template <int C>
IMKERN_ALWAYS_INLINE inline void warp_chunk_f32(const uint8_t* base, const uint8_t* base1, const int32_t* o,
                                                const float* AX, const float* AY, float* out) {
  warp_chunk8_f32<C>(base, base1, o, AX, AY, out);
#if defined(__AVX512F__)
  warp_chunk8_f32<C>(base, base1, o + 8, AX + 8, AY + 8, out + 8 * C);
#endif
}

// One chunk of either dtype (always inlined: a call per chunk would reload the constants and
// spill the loop's vectors, every vector register being caller-saved).
template <int C, typename T>
IMKERN_ALWAYS_INLINE inline void warp_chunk_t(const uint8_t* b0, const uint8_t* b1, const int32_t* o, const float* ax,
                                              const float* ay, T* dst) {
  if constexpr (std::is_same<T, uint8_t>::value) warp_chunk<C>(b0, b1, o, ax, ay, dst);
  else warp_chunk_f32<C>(b0, b1, o, ax, ay, dst);
}

// One chunk whose taps pass 1 mapped (warp_prep's WarpMapped): each tap by a masked gather
// (uint8: a dword holding the pixel's C bytes; float32: one per channel), cval where the tap's
// lane is left out, then float_row's operations lane by lane (the lerps; uint8: rounded half to
// even, the value lying in [0, 255]), so the same bits. All kWarpLanes pixels are written; the
// caller rewrites the lanes that are not valid.
#if defined(__AVX512F__)
inline WVec wv_fma(WVec a, WVec b, WVec c) { return _mm512_fmadd_ps(a, b, c); }
inline WVec wv_sub(WVec a, WVec b) { return _mm512_sub_ps(a, b); }
inline WVec wv_set1(float v) { return _mm512_set1_ps(v); }
inline WVec wi_to_f(WVeci v) { return _mm512_cvtepi32_ps(v); }
inline WVeci wv_round(WVec v) { return _mm512_cvtps_epi32(v); }
inline WVeci wi_byte(WVeci v, int k) {
  return _mm512_and_si512(_mm512_srlv_epi32(v, _mm512_set1_epi32(8 * k)), _mm512_set1_epi32(255));
}
inline WVeci wi_or_shl(WVeci a, WVeci b, int k) { return _mm512_or_si512(a, _mm512_sllv_epi32(b, _mm512_set1_epi32(8 * k))); }
#else
inline WVec wv_fma(WVec a, WVec b, WVec c) { return _mm256_fmadd_ps(a, b, c); }
inline WVec wv_sub(WVec a, WVec b) { return _mm256_sub_ps(a, b); }
inline WVec wv_set1(float v) { return _mm256_set1_ps(v); }
inline WVec wi_to_f(WVeci v) { return _mm256_cvtepi32_ps(v); }
inline WVeci wv_round(WVec v) { return _mm256_cvtps_epi32(v); }
inline WVeci wi_byte(WVeci v, int k) {
  return _mm256_and_si256(_mm256_srlv_epi32(v, _mm256_set1_epi32(8 * k)), _mm256_set1_epi32(255));
}
inline WVeci wi_or_shl(WVeci a, WVeci b, int k) { return _mm256_or_si256(a, _mm256_sllv_epi32(b, _mm256_set1_epi32(8 * k))); }
#endif

template <int C, typename T>
IMKERN_ALWAYS_INLINE inline void warp_chunk_mapped(const uint8_t* base, const int32_t* o00, const int32_t* o01,
                                                   const int32_t* o10, const int32_t* o11, const unsigned* tm,
                                                   const float* AX, const float* AY, float cv, T* out) {
  const WVec ax = wv_load(AX), ay = wv_load(AY);
  const WVeci i00 = wi_load(o00), i01 = wi_load(o01), i10 = wi_load(o10), i11 = wi_load(o11);
  auto lerp = [&](WVec p00, WVec p01, WVec p10, WVec p11) {
    const WVec v0 = wv_fma(ax, wv_sub(p01, p00), p00);
    const WVec v1 = wv_fma(ax, wv_sub(p11, p10), p10);
    return wv_fma(ay, wv_sub(v1, v0), v0);
  };
  if constexpr (std::is_same<T, uint8_t>::value) {
    const int32_t cb = static_cast<int32_t>(cv) * 0x01010101;
    const WVeci cvv = wv_set1i(cb);
    const WVeci t00 = wi_gather(cvv, tm[0], i00, base), t01 = wi_gather(cvv, tm[1], i01, base);
    const WVeci t10 = wi_gather(cvv, tm[2], i10, base), t11 = wi_gather(cvv, tm[3], i11, base);
    WVeci px = wv_set1i(0);
    for (int c = 0; c < C; ++c) {
      const WVec v = lerp(wi_to_f(wi_byte(t00, c)), wi_to_f(wi_byte(t01, c)), wi_to_f(wi_byte(t10, c)),
                          wi_to_f(wi_byte(t11, c)));
      px = wi_or_shl(px, wv_round(v), c);
    }
    store_dwords<C>(out, px);
  } else {
    const WVec cvv = wv_set1(cv);
    alignas(64) float tmp[C][kWarpLanes];
    for (int c = 0; c < C; ++c) {
      const uint8_t* bc = base + 4 * c;
      const WVec v = lerp(wv_gather(cvv, tm[0], i00, bc), wv_gather(cvv, tm[1], i01, bc),
                          wv_gather(cvv, tm[2], i10, bc), wv_gather(cvv, tm[3], i11, bc));
      if constexpr (C == 1) wv_store(out, v);
      else wv_store(tmp[c], v);
    }
    if constexpr (C > 1) {
      for (int j = 0; j < kWarpLanes; ++j)
        for (int c = 0; c < C; ++c) out[j * C + c] = tmp[c][j];
    }
  }
}

// Prefetches for one chunk: the lines at pbase + the offsets of lanes 0, 4, ... and (kPast:
// warp_bilinear_row's windows) past the last one.
template <int PB, bool kPast = true>
IMKERN_ALWAYS_INLINE inline void warp_prefetch(uintptr_t pbase, const int32_t* q) {
  for (int j = 0; j < kWarpLanes; j += 4)
    _mm_prefetch(reinterpret_cast<const char*>(pbase + static_cast<uintptr_t>(static_cast<intptr_t>(q[j]))), _MM_HINT_T0);
  if constexpr (kPast) {
    _mm_prefetch(
        reinterpret_cast<const char*>(pbase + static_cast<uintptr_t>(static_cast<intptr_t>(q[kWarpLanes - 1] + 2 * PB))),
        _MM_HINT_T0);
  }
}

// One chunk of a nearest row at column x: its points (affine: the lanes; perspective: FX / FY,
// computed kNearestAhead pixels ahead so the divisions are off the chain of this chunk's
// gather) rounded to their pixels. Both nearest loops take them from here.
constexpr int64_t kNearestAhead = 8 * kWarpLanes;
template <bool kAffine>
IMKERN_ALWAYS_INLINE inline ChunkPoints nearest_points(AffineLanes& lanes, const PerspLanes& persp, float* FX,
                                                       float* FY, int64_t x, int64_t n, int64_t& ready) {
  if constexpr (kAffine) {
    return chunk_points<kPointsAffine, true>(lanes, persp, FX, FY, x);
  } else {
    for (; ready < x + kNearestAhead && ready + kWarpLanes <= n; ready += kWarpLanes) persp.at(ready, FX, FY);
    return chunk_points<kPointsStored, true>(lanes, persp, FX, FY, x);
  }
}

// A row of float-scheme bilinear uint8 or float32 samples (the caller checks that the image's
// extent fits int32 byte offsets). A chunk with some lanes inside runs the vector code for all of
// them, then float_row redoes the others (cval, the border rule, the right edge).
template <typename T, int C, bool kAffine>
void warp_bilinear_row(const void* src, const ImageDesc& s, int64_t b, T* out, int64_t n, float* FX, float* FY,
                       const RowTerms& rt, Border border, float cv) {
  constexpr bool kU8 = std::is_same<T, uint8_t>::value;
  constexpr int PB = C * static_cast<int>(sizeof(T));
  constexpr int64_t L = kWarpLanes;
  alignas(64) int32_t OFF[kWarpBlock];
  alignas(64) float AX[kWarpBlock], AY[kWarpBlock];
  uint32_t inside[kWarpBlock / L];
  uint32_t far[kWarpBlock / L];
  const uint8_t* base = static_cast<const uint8_t*>(src) + b * s.batch_stride * int64_t(sizeof(T));
  const int64_t rsb = s.row_stride * int64_t(sizeof(T));  // bytes
  const bool constant = border == Border::constant;
  const T cvt = static_cast<T>(cv);
  // the largest fx0 whose loads stay in the row: uint8 reads 8 bytes from the left tap;
  // float32 the two taps (three channels: 4 floats from the right tap)
  const float xmax = static_cast<float>(kU8 ? s.w - (8 + C - 1) / C : s.w - (C == 3 ? 3 : 2));
  WarpMapped mp;
  mp.border = border;
  mp.br = border_range(border, s.w, s.h, 2);
  // uint8 dword reads of 1- or 3-byte pixels end past the pixel: not at the image's last bytes
  mp.omax = kU8 && C != 4 ? static_cast<int32_t>(std::max<int64_t>(0, (s.h - 1) * rsb) + s.w * PB - 4) : INT32_MAX;
  auto scalar = [&](int64_t x0, int64_t x1) {
    if constexpr (kAffine) {  // the source points of these pixels (float_coords' formula)
      for (int64_t x = x0; x < x1; ++x) {
        const float xf = static_cast<float>(static_cast<int32_t>(x));
        FX[x] = std::fma(rt.m0, xf, rt.mx);
        FY[x] = std::fma(rt.m3, xf, rt.my);
      }
    }
    float_row<T, C>(src, s, b, out + x0 * C, x1 - x0, FX + x0, FY + x0, Interp::bilinear, border, cv);
  };
  const int64_t nv = n / L * L;
  int64_t pending = 0;  // [pending, x): not yet written, for float_row
  // prefetch for the output row kWarpPrefetchRows below: its source points are these plus
  // kWarpPrefetchRows (m1, m4) (affine; roughly so for perspective), so the lower tap row
  // of lanes 0, 4, 8, 12 and past the last one, moved by that many source rows and
  // columns, is what that row will read. The source lines of a rotation's or a zoom's row
  // lie along a diagonal (a line or two per source row), a pattern the hardware prefetchers
  // do not follow: without this, the lower tap row's loads wait on memory (float32 RGB
  // 1080p 7.6 -> 4.3 ms; uint8 RGB 3.8 -> 2.8 ms on Zen 4; the earlier prefetch 64 pixels
  // ahead in the same row, which found its lines already on their way, gained less).
  // Every chunk whose lanes are all inside prefetches, also in blocks that are not (the
  // rows that cross the image's edge: a sixth of a rotation's 1080p output).
  const bool pf = std::abs(rt.m1) < 64 && std::abs(rt.m4) < 64;
  const uintptr_t pbase =
      reinterpret_cast<uintptr_t>(base + rsb) +
      static_cast<uintptr_t>(pf ? static_cast<int64_t>(std::nearbyint(kWarpPrefetchRows * rt.m4)) * rsb +
                                      static_cast<int64_t>(std::nearbyint(kWarpPrefetchRows * rt.m1)) * PB
                                : 0);
  // perspective: the source points of [x0, ready) are in FX / FY (PerspLanes::at during the
  // block before); a block without them (the row's first, or after a block that was not all
  // inside) computes them in pass 1, where the divisions overlap its other work
  const PerspLanes persp(rt);
  int64_t ready = 0;
  for (int64_t x0 = 0; x0 < nv; x0 += kWarpBlock) {
    const int64_t m = std::min(kWarpBlock, nv - x0);
    const bool have_points = !kAffine && ready >= x0 + m;
    if (!have_points) ready = x0 + m;
    const unsigned all = warp_prep<PB, kAffine>(FX, FY, x0, m, rt, persp, have_points, s.w, s.h, rsb, xmax, constant,
                                                OFF, AX, AY, inside, far, mp);
    if (all == kAllLanes) {  // the common case, a loop of chunks alone
      // Measured no faster (uint8 1080p, 1-4 channels, single thread, AVX2 and AVX-512, 0.99-1.03x
      // of this loop): this loop as a non-inlined function of its own (its vector constants then
      // stay in registers; time goes to the chunk's ~100 instructions at an IPC of ~3, a
      // translation taking as long as a rotation); two 8-pixel chunks per iteration at AVX2;
      // three channels' 24 bytes by one 32-byte store overwritten by the next chunk; blocks of
      // 128 pixels (1.00-1.06x).
      if (pending < x0) scalar(pending, x0);
      const uint8_t* b0 = base;
      const uint8_t* b1 = base + rsb;
      T* o = out + x0 * C;
      for (int64_t i = 0; i < m; i += L) {
        if (pf) warp_prefetch<PB>(pbase, OFF + i);
        warp_chunk_t<C>(b0, b1, OFF + i, AX + i, AY + i, o + i * C);
        if constexpr (!kAffine) {  // the next block's points, a vector per chunk
          if (ready < nv) {
            persp.at(ready, FX, FY);
            ready += L;
          }
        }
      }
      pending = x0 + m;
      continue;
    }
    for (int64_t i = 0; i < m; i += L) {
      if constexpr (!kAffine) {  // here too, the next block's points
        if (ready < nv) {
          persp.at(ready, FX, FY);
          ready += L;
        }
      }
      const int64_t k = i / L;
      const unsigned in = inside[k], fr = far[k], vm = in == kAllLanes ? in : mp.valid[k];
      const int64_t x = x0 + i;
      if (vm == 0 && fr == 0) continue;  // float_row's, with the pixels before
      if (pending < x) scalar(pending, x);
      pending = x + L;
      if (fr == kAllLanes) {
        std::fill_n(out + x * C, L * C, cvt);
        continue;
      }
      if (in == kAllLanes) {
        if (pf) warp_prefetch<PB>(pbase, OFF + i);
        warp_chunk_t<C>(base, base + rsb, OFF + i, AX + i, AY + i, out + x * C);
        continue;
      }
      // taps mapped by the border rule (inside lanes too: their map is the identity)
      if (vm != 0) {
        const unsigned tm[4] = {mp.tm[0][k], mp.tm[1][k], mp.tm[2][k], mp.tm[3][k]};
        warp_chunk_mapped<C>(base, OFF + i, mp.O01 + i, mp.O10 + i, mp.O11 + i, tm, AX + i, AY + i, cv,
                             out + x * C);
      }
      // the other lanes, by runs of set bits: cval where far, float_row for the rest (taps no
      // closed form maps, not finite, or dword reads at the image's end)
      auto runs = [&](unsigned bits, auto&& f) {
        while (bits != 0) {
          const int j = __builtin_ctz(bits);
          const int e = j + __builtin_ctz(~(bits >> j));  // bits < 2^16: a zero above the run
          f(j, e);
          bits &= ~(((1u << (e - j)) - 1u) << j);
        }
      };
      runs(fr, [&](int j, int e) { std::fill_n(out + (x + j) * C, (e - j) * C, cvt); });
      runs(kAllLanes & ~(vm | fr), [&](int j, int e) { scalar(x + j, x + e); });
    }
  }
  if constexpr (!kAffine) {  // the tail's points
    persp.tail(ready, n, FX, FY);
  }
  if (pending < n) scalar(pending, n);
}

// The nearest rows' runs of chunks whose lanes are all inside and whose dword reads end inside
// the image (most of a row's), from column x: warp_nearest_row's operations for those lanes
// alone (the same points, floor(s + 0.5f), offsets, one unmasked gather), without its masks,
// border map and scalar fallback; returns the column of the first chunk that is not such (or
// the last whole chunk's end). A function of its own, as warp_prep_inside: inlined into the row,
// its constants were reloaded from the stack per chunk.
template <typename T, int C, bool kAffine>
__attribute__((noinline)) int64_t warp_nearest_inside(const uint8_t* base, int64_t rsb, int32_t W, int32_t H,
                                                      int32_t omax, T* out, int64_t x, int64_t n, float* FX,
                                                      float* FY, const RowTerms& rt, const PerspLanes& persp,
                                                      int64_t& ready, bool pf, uintptr_t pbase) {
  constexpr int PB = C * static_cast<int>(sizeof(T));
  constexpr int64_t L = kWarpLanes;
  static_assert(PB <= 4, "dword gathers");
  AffineLanes lanes(rt, x);
  const WVeci xl = wv_set1i(W - 1), yl = wv_set1i(H - 1);
  alignas(64) int32_t OFF[L];
  for (; x + L <= n; x += L) {
    const ChunkPoints p = nearest_points<kAffine>(lanes, persp, FX, FY, x, n, ready);
    if (!all_inside(wi_inside(p.ix, p.iy, xl, yl))) break;
    const WVeci offv = chunk_offsets<PB>(p.ix, p.iy, static_cast<int32_t>(rsb));
    if constexpr (PB < 4) {
      if (wi_gt(offv, omax) != 0) break;  // a dword read past the image's end: the row's way
    }
    if (pf) {
      wi_store(OFF, offv);
      warp_prefetch<PB, false>(pbase, OFF);
    }
#if defined(__AVX512F__)
    const WVeci v = _mm512_i32gather_epi32(offv, base, 1);
#else
    const WVeci v = _mm256_i32gather_epi32(reinterpret_cast<const int*>(base), offv, 1);
#endif
    store_dwords<PB>(reinterpret_cast<uint8_t*>(out + x * C), v);
  }
  return x;
}

// A row of float-scheme nearest samples (uint8, uint16 or float32, C = 1-4), kWarpLanes pixels
// a chunk: the source points (affine: float_coords' fmas; perspective: read from FX/FY),
// floor(s + 0.5f) as float_row, the lanes inside or (other borders) mapped by wi_map, their byte
// offsets, then the pixels copied: pixels of at most 4 bytes by one masked dword gather (the
// lanes left out get the cval dword) and a pack; wider pixels by a memcpy each. Lanes that no
// closed form maps (farther than a period, not finite) are float_row's. The copies are the
// pixels' own bits, as float_row's (float_store of an integer or a float32 is the value).
// A dword read at the image's last bytes would run past them: such lanes (uint8 C = 1-3,
// uint16 C = 1) read the dword that ends at the pixel's last byte and shift it down.
// Runs of chunks all inside whose dword reads end inside the image take warp_nearest_inside's
// loop (1080p single thread, the bench's rotation: AVX2 gray uint8 2.25 -> 1.69 ms, float32
// 2.14 -> 1.74, RGB uint8 2.35 -> 2.00; AVX-512 gray uint8 1.69 -> 1.48; perspective rows
// AVX2 0.92-0.93x, AVX-512 1.00x, their divisions remaining).
// The gather is the chunk's largest cost for 1-channel uint8 (perf: ~47% of the AVX2 row's
// samples, ~62% at AVX-512; ~20 cycles per 16-lane vpgatherdd on Zen 4 with the lines in L1,
// 16 scalar byte loads and stores 1.4x that). Measured and not kept (1080p gray, the bench's
// rotation, single thread, alternating processes): the chunk's bytes picked from its source
// rows without a gather, when the lanes lie within 4 rows and 64 (AVX-512) / 16 (AVX2) columns
// of the first or last lane's pixel: each row's bytes loaded whole and permuted (AVX-512 vpermw
// of 32 words and a shift for the odd byte; AVX2 pshufb of 16 bytes broadcast to both halves),
// the rows merged by the lanes' row. AVX-512 affine 0.87-0.91x the time, perspective 0.95-1.00x;
// AVX2 1.23-1.35x (slower); with 32-byte rows and only the rows the first / last lane reach,
// AVX-512 0.94-1.06x. The extra rows' lines (loaded whole, not prefetched) waited on memory.
template <typename T, int C, bool kAffine>
void warp_nearest_row(const void* src, const ImageDesc& s, int64_t b, T* out, int64_t n, float* FX, float* FY,
                      const RowTerms& rt, Border border, float cv, const BorderRange& br) {
  constexpr int PB = C * static_cast<int>(sizeof(T));
  constexpr int64_t L = kWarpLanes;
  constexpr bool kGather = PB <= 4;
  const uint8_t* base = static_cast<const uint8_t*>(src) + b * s.batch_stride * int64_t(sizeof(T));
  const int64_t rsb = s.row_stride * int64_t(sizeof(T));
  const int32_t W = static_cast<int32_t>(s.w), H = static_cast<int32_t>(s.h);
  const bool constant = border == Border::constant;
  const T cvt = static_cast<T>(cv);
  // the last dword that ends inside the image (the caller keeps the image >= 8 bytes)
  const int32_t omax = static_cast<int32_t>(std::max<int64_t>(0, (s.h - 1) * rsb) + s.w * PB - 4);
  int32_t cvd = 0;  // cval's pixel, as a gathered dword holds it
  for (int c = 0; c < C && kGather; ++c) std::memcpy(reinterpret_cast<uint8_t*>(&cvd) + c * sizeof(T), &cvt, sizeof(T));
  const WVeci xl = wv_set1i(W - 1), yl = wv_set1i(H - 1);
  alignas(64) int32_t OFF[L];
  auto scalar = [&](int64_t x0, int64_t x1) {
    if constexpr (kAffine) {
      for (int64_t x = x0; x < x1; ++x) {
        const float xf = static_cast<float>(static_cast<int32_t>(x));
        FX[x] = std::fma(rt.m0, xf, rt.mx);
        FY[x] = std::fma(rt.m3, xf, rt.my);
      }
    }
    float_row<T, C>(src, s, b, out + x0 * C, x1 - x0, FX + x0, FY + x0, Interp::nearest, border, cv);
  };
  // the lines that the output row kWarpPrefetchRows below will read, as warp_bilinear_row
  const bool pf = std::abs(rt.m1) < 64 && std::abs(rt.m4) < 64;
  const uintptr_t pbase =
      reinterpret_cast<uintptr_t>(base) +
      static_cast<uintptr_t>(pf ? static_cast<int64_t>(std::nearbyint(kWarpPrefetchRows * rt.m4)) * rsb +
                                      static_cast<int64_t>(std::nearbyint(kWarpPrefetchRows * rt.m1)) * PB
                                : 0);
  AffineLanes lanes(rt, 0);  // affine rows
  const PerspLanes persp(rt);  // perspective rows (the points of float_coords, computed here)
  int64_t ready = 0;  // perspective: the points of [0, ready) are in FX / FY
  const WVeci cvv = wv_set1i(cvd);
  int64_t x = 0;
  bool try_inside = kGather;  // the next chunk may start a run of warp_nearest_inside's
  for (; x + L <= n; x += L) {
    if constexpr (kGather) {
      if (try_inside) {
        const int64_t x1 = warp_nearest_inside<T, C, kAffine>(base, rsb, W, H, omax, out, x, n, FX, FY, rt, persp,
                                                              ready, pf, pbase);
        if (x1 != x) {
          x = x1;
          if constexpr (kAffine) lanes = AffineLanes(rt, x);
          if (x + L > n) break;
        }
      }
    }
    const ChunkPoints p = nearest_points<kAffine>(lanes, persp, FX, FY, x, n, ready);
    // inside: 0 <= ix <= W - 1, 0 <= iy <= H - 1 (floor's values are integers; NaN and values
    // beyond 2^31 convert to 0x80000000, outside)
    const unsigned in = inside_bits(wi_inside(p.ix, p.iy, xl, yl));
    WVeci ix = p.ix, iy = p.iy;
    unsigned valid = in, fill = 0;
    // a run inside may follow where this chunk's last lane is inside
    try_inside = (in >> (L - 1) & 1u) != 0;
    if (in != kAllLanes) {
      if (constant) {
        fill = kAllLanes & ~in;
      } else {
        valid = wv_within(p.fx0, br.lox, br.hix) & wv_within(p.fy0, br.loy, br.hiy);
        ix = wi_map(ix, W, border);
        iy = wi_map(iy, H, border);
      }
    }
    WVeci offv = chunk_offsets<PB>(ix, iy, static_cast<int32_t>(rsb));
    T* o = out + x * C;
    if (pf) {
      wi_store(OFF, offv);
      warp_prefetch<PB, false>(pbase, OFF);
    }
    if constexpr (kGather) {
      unsigned late = 0;
      if constexpr (PB < 4) {
        late = wi_gt(offv, omax) & valid;
        if (late) offv = wi_sub_masked(offv, late, 4 - PB);
      }
      WVeci v = wi_gather(cvv, valid, offv, base);
      if constexpr (PB < 4) {
        if (late) v = wi_srl_masked(v, late, 8 * (4 - PB));
      }
      store_dwords<PB>(reinterpret_cast<uint8_t*>(o), v);
    } else {
      wi_store(OFF, offv);
      if (valid == kAllLanes) {
        for (int j = 0; j < L; ++j) std::memcpy(o + j * C, base + OFF[j], PB);
      } else {
        for (int j = 0; j < L; ++j) {
          if (valid >> j & 1u) std::memcpy(o + j * C, base + OFF[j], PB);
          else std::fill_n(o + j * C, C, cvt);
        }
      }
    }
    unsigned rest = kAllLanes & ~(valid | fill);
    while (rest != 0) {  // runs of lanes for float_row
      const int j = __builtin_ctz(rest);
      const int e = j + __builtin_ctz(~(rest >> j));
      scalar(x + j, x + e);
      rest &= ~(((1u << (e - j)) - 1u) << j);
    }
  }
  if constexpr (!kAffine) {
    persp.tail(std::max(x, ready), n, FX, FY);  // the tail's points
  }
  if (x < n) scalar(x, n);
}
#endif

template <typename T>
void warp_impl(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const WarpSpec& w) {
  using A = typename WpAcc<T>::type;
  const A* wt = static_cast<const A*>(w.wtab);
  const A cv = cval_acc<T>(w.cval);
  const T cvt = static_cast<T>(cv);
  const float cvf = cval_float<T>(w.cval);
  const bool nearest = w.interp == Interp::nearest;
  const int64_t bw = std::max<int64_t>(1, perspective_block_width(d.w, d.h));
  const int64_t rows = d.n * d.h;
  // the vector bilinear rows gather with int32 byte offsets from the image's row 0
  const int64_t esz = sizeof(T);
  const bool simd_ok = !w.fixed && w.interp == Interp::bilinear && s.h >= 2 && s.w >= 2 &&
                       (std::abs(s.row_stride) * s.h + s.w * s.c + 8 * s.h + 16) * esz < (int64_t(1) << 31) &&
                       d.w < (int64_t(1) << 24);
  (void)simd_ok;
  // the vector nearest rows: the same int32 offsets, and the image's span at least 8 bytes (a
  // dword read that would run past its end reads the dword before instead)
  const bool near_ok = !w.fixed && nearest && s.c <= 4 &&
                       (std::abs(s.row_stride) * (s.h - 1) + s.w * s.c) * esz >= 8 &&
                       (std::abs(s.row_stride) * s.h + s.w * s.c + 16) * esz < (int64_t(1) << 31) &&
                       d.w < (int64_t(1) << 24);
  (void)near_ok;
#if defined(__AVX512F__) || defined(__AVX2__)
  const BorderRange near_range = border_range(w.border, s.w, s.h, 1);
#endif
  // chunks of at most 16 rows: enough of them for the threads to finish together. (1080p RGB
  // bilinear, per-chunk thread CPU clocks: at 2 threads the two threads' CPU times sum to the
  // 1-thread time within 3% at both ISAs, affine and perspective, so the second thread costs no
  // per-row efficiency (no contention for the source lines, no first-touch: the bench passes
  // out=); what 2 threads lose beyond that is the wait for the last chunk, at most one chunk,
  // ~50 us of a 1.7 ms call.)
  const int64_t grain = std::max<int64_t>(1, std::min<int64_t>(16, rows / (4 * std::max(1, get_num_threads()))));
  parallel_for(0, rows, grain, [&](int64_t t0, int64_t t1) {
    int32_t* X = thread_scratch<int32_t>(0, static_cast<size_t>(d.w));
    int32_t* Y = thread_scratch<int32_t>(1, static_cast<size_t>(d.w));
    float* FX = thread_scratch<float>(2, static_cast<size_t>(d.w));
    float* FY = thread_scratch<float>(3, static_cast<size_t>(d.w));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / d.h, y = t % d.h;
      T* out = row_ptr<T>(dst, d, b, y);
      if (!w.fixed) {
#if defined(__AVX512F__) || defined(__AVX2__)
        if constexpr (std::is_same<T, uint8_t>::value || std::is_same<T, float>::value) {
          if (simd_ok && (s.c == 3 || s.c == 4 || s.c == 1)) {
            const RowTerms rt = row_terms(w, y);
            // the vector rows compute the source points themselves
            auto row = [&](auto cc, auto affine) {
              warp_bilinear_row<T, decltype(cc)::value, decltype(affine)::value>(src, s, b, out, d.w, FX, FY, rt,
                                                                             w.border, cvf);
            };
            using yes = std::true_type;
            using no = std::false_type;
            if (s.c == 3) w.perspective ? row(std::integral_constant<int, 3>{}, no{}) : row(std::integral_constant<int, 3>{}, yes{});
            else if (s.c == 4) w.perspective ? row(std::integral_constant<int, 4>{}, no{}) : row(std::integral_constant<int, 4>{}, yes{});
            else w.perspective ? row(std::integral_constant<int, 1>{}, no{}) : row(std::integral_constant<int, 1>{}, yes{});
            continue;
          }
        }
        if constexpr (!std::is_same<T, double>::value) {
          if (near_ok) {
            const RowTerms rt = row_terms(w, y);
            auto row = [&](auto cc, auto affine) {
              warp_nearest_row<T, decltype(cc)::value, decltype(affine)::value>(src, s, b, out, d.w, FX, FY, rt,
                                                                              w.border, cvf, near_range);
            };
            auto by_c = [&](auto affine) {
              switch (s.c) {
                case 1: row(std::integral_constant<int, 1>{}, affine); break;
                case 2: row(std::integral_constant<int, 2>{}, affine); break;
                case 3: row(std::integral_constant<int, 3>{}, affine); break;
                default: row(std::integral_constant<int, 4>{}, affine); break;
              }
            };
            if (w.perspective) by_c(std::false_type{});
            else by_c(std::true_type{});
            continue;
          }
        }
#endif
        float_coords(w, y, d.w, FX, FY);
        if (s.c == 3) float_row<T, 3>(src, s, b, out, d.w, FX, FY, w.interp, w.border, cvf);
        else if (s.c == 1) float_row<T, 1>(src, s, b, out, d.w, FX, FY, w.interp, w.border, cvf);
        else if (s.c == 4) float_row<T, 4>(src, s, b, out, d.w, FX, FY, w.interp, w.border, cvf);
        else float_row<T, 0>(src, s, b, out, d.w, FX, FY, w.interp, w.border, cvf);
        continue;
      }
      if (w.perspective) {
        perspective_row(w.m, y, d.w, bw, nearest, X, Y);
      } else {
        const AffineMap& map = w.map;
        const int64_t rx = map.row_x[y], ry = map.row_y[y];
        for (int64_t x = 0; x < d.w; ++x) {
          const int64_t fx = (rx + map.col_x[x]) >> map.shift, fy = (ry + map.col_y[x]) >> map.shift;
          if (nearest) {
            X[x] = clamp_short(fx);
            Y[x] = clamp_short(fy);
          } else {
            X[x] = clamp_short(fx >> kInterBits) * kInterTab + static_cast<int32_t>(fx & (kInterTab - 1));
            Y[x] = clamp_short(fy >> kInterBits) * kInterTab + static_cast<int32_t>(fy & (kInterTab - 1));
          }
        }
      }
      switch (w.interp) {
        case Interp::nearest: remap_row<T, 1>(src, s, b, out, d.w, X, Y, wt, w.border, cv, cvt); break;
        case Interp::bilinear: remap_row<T, 2>(src, s, b, out, d.w, X, Y, wt, w.border, cv, cvt); break;
        case Interp::bicubic: remap_row<T, 4>(src, s, b, out, d.w, X, Y, wt, w.border, cv, cvt); break;
      }
    }
  });
}

}  // namespace

void warp(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const WarpSpec& w) {
  visit_dtype(dtype, [&](auto tag) { warp_impl<decltype(tag)>(src, s, dst, d, w); });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
