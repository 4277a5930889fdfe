// 2-D pooling on NCHW planes (compiled per ISA): max (with or without indices), average,
// adaptive average, and their backward passes.
//
// Max pool: for each output row, the window's valid tap rows are scanned in torch's order
// (row-major over the window), keeping a running NaN-propagating maximum and its flat index.
// Output columns whose whole window row lies inside the input are done L at a time (L = SIMD
// lanes) for strides 1 and 2 (stride 2 deinterleaves two loads with one shuffle); the border
// columns, other strides and the ragged end use the scalar loop (the last vector chunk
// overlaps the previous one instead when it can, rewriting identical values). Windows two
// columns wide at stride 2 (2x2/2) take each window row as one pair from two aligned loads.
// Bytes/output: sizeof(T) * (sh * sw input + 1 output) (+8 for indices); FLOPs/output: 2 kh kw
// compares/selects. 2x2/2 reads every input once: memory-bound.
// Average pool: the valid window rows are summed into a row buffer with vector adds
// (kh adds/input column), then kw adds and one divide per output, L outputs at a time for
// interior columns at strides 1 and 2 (scalar at the borders); 2x2/2 windows are summed as
// pairs straight from the input rows, without the row buffer.
// Adaptive average pool: global pooling (1x1) sums each plane in float32 blocks of 64 values
// (16 lanes x 4, widened to float64 per block; float64 input in 32 float64 lanes), planes of
// <= 64 values without branches and 8 planes sharing one reduction at AVX-512; the order is
// fixed by the plane size alone (same bits at every ISA and thread count). Disjoint windows of
// <= 64 values run as avg_pool2d (kernel = stride); other windows a float64 sum per window.
// Bytes/output: sizeof(T) * window + sizeof(T). The backward passes write disjoint windows'
// shares row by row; overlapping windows scatter each output's gradient into its window, one
// plane per task (no write conflicts, fixed order).
// Variants: float32 and float64; the max-pool vector path needs h * w < 2^31 (int32 lanes).
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "imkern/nn.hpp"
#include "imkern/parallel.hpp"
#include "common/dtype.hpp"
#include "common/vmath.hpp"
#include "common/shuffle.hpp"

// The wide logical vectors (16 float / 32 double lanes) never cross a function boundary that
// is not inlined.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace imkern {
namespace IMKERN_ISA {
namespace {

using simd::vec_t;


// Valid taps [lo, hi) of a window starting at `start` with `k` taps `d` apart on an axis of `n`.
inline void tap_range(int64_t start, int k, int d, int64_t n, int& lo, int& hi) {
  int64_t a = start < 0 ? (-start + d - 1) / d : 0;
  int64_t b = n - start <= 0 ? 0 : (n - start + d - 1) / d;
  if (b > k) b = k;
  if (a > b) a = b;
  lo = static_cast<int>(a);
  hi = static_cast<int>(b);
}

// Rows (output rows over all planes) per parallel chunk: about 32K outputs.
inline int64_t rows_grain(int64_t ow) {
  int64_t g = 32768 / (ow > 0 ? ow : 1);
  return g < 1 ? 1 : g;
}

// Output columns of a max-pool row whose window row lies inside [0, W): [cx0, cx1).
inline void inner_columns(const Pool2dShape& p, int64_t& cx0, int64_t& cx1) {
  cx0 = p.pw > 0 ? (p.pw + p.sw - 1) / p.sw : 0;
  const int64_t span = static_cast<int64_t>(p.kw - 1) * p.dw;  // last tap's column offset
  cx1 = p.w - 1 - span + p.pw < 0 ? 0 : (p.w - 1 - span + p.pw) / p.sw + 1;
  if (cx1 > p.ow) cx1 = p.ow;
  if (cx0 > cx1) cx0 = cx1;
}

// L: the vector lanes (the native width, or a half or a quarter of it for rows of fewer
// inner columns than the native width has lanes: 16x16 -> 8x8 planes at AVX-512, where the
// scalar loop's data-dependent branch cost 6 ns per input).
template <typename T, bool WithIdx, int L>
void max_pool_rows(const T* x, T* y, int64_t* idx, const Pool2dShape& p, int64_t r0, int64_t r1) {
  using V = vm::vecn_t<T, L>;
  using IV = vm::vecn_t<typename vm::IntOf<T>::type, L>;
  using I32V = vm::vecn_t<int32_t, L>;
  using I64V = vm::vecn_t<int64_t, L>;
  const auto loadu = [](const T* q) {
    V v;
    std::memcpy(&v, q, sizeof(v));
    return v;
  };
  const int64_t H = p.h, W = p.w, OH = p.oh, OW = p.ow;
  const T ninf = -std::numeric_limits<T>::infinity();
  const bool vec_ok = (p.sw == 1 || p.sw == 2) && H * W < (int64_t(1) << 31);
  // Output columns whose window row lies inside [0, W): [cx0, cx1); chunk starts <= vlast.
  int64_t cx0, cx1;
  inner_columns(p, cx0, cx1);
  const int64_t vlast = cx1 - L;  // start of the last vector chunk that stays inside
  IV even{}, ev2{}, od2{};
  for (int k = 0; k < L; ++k) {
    even[k] = k < L / 2 ? 2 * k : L + 1 + 2 * (k - L / 2);
    ev2[k] = 2 * k;
    od2[k] = 2 * k + 1;
  }
  // 2-wide windows at stride 2 (2x2/2, 3x2/2, ...): each window row is one adjacent pair,
  // split from two aligned loads into even and odd columns. The running max is associative
  // (NaN-last, first-of-ties), so combining the pair first gives torch's scan-order result.
  const bool pair = p.kw == 2 && p.dw == 1 && p.sw == 2;
  I32V lane_idx{};
  for (int k = 0; k < L; ++k) lane_idx[k] = k * p.sw;

  for (int64_t r = r0; r < r1; ++r) {
    const int64_t plane = r / OH, oy = r % OH;
    const T* X = x + plane * H * W;
    T* Y = y + plane * OH * OW + oy * OW;
    int64_t* I = WithIdx ? idx + plane * OH * OW + oy * OW : nullptr;
    const int64_t ys = oy * p.sh - p.ph;
    int i0, i1;
    tap_range(ys, p.kh, p.dh, H, i0, i1);

    auto scalar = [&](int64_t ox) {
      const int64_t xs = ox * p.sw - p.pw;
      int j0, j1;
      tap_range(xs, p.kw, p.dw, W, j0, j1);
      T m = ninf;
      int64_t mi = (ys + int64_t(i0) * p.dh) * W + xs + int64_t(j0) * p.dw;
      for (int i = i0; i < i1; ++i) {
        const int64_t iy = ys + int64_t(i) * p.dh;
        const T* row = X + iy * W;
        for (int j = j0; j < j1; ++j) {
          const int64_t ix = xs + int64_t(j) * p.dw;
          const T v = row[ix];
          if (v > m || v != v) {
            m = v;
            mi = iy * W + ix;
          }
        }
      }
      Y[ox] = m;
      if (WithIdx) I[ox] = (i0 < i1 && j0 < j1) ? mi : 0;
    };

    auto vchunk = [&](int64_t ox) {
      const int64_t xs = ox * p.sw - p.pw;
      V m = V{} + ninf;
      I32V mi = I32V{} + static_cast<int32_t>((ys + int64_t(i0) * p.dh) * W + xs) + lane_idx;
      if (pair) {
        for (int i = i0; i < i1; ++i) {
          const int64_t iy = ys + int64_t(i) * p.dh;
          const T* q = X + iy * W + xs;
          const V a = loadu(q), b = loadu(q + L);
          const V e = IMKERN_SHUFFLE2(a, b, ev2), o = IMKERN_SHUFFLE2(a, b, od2);
          const auto uo = (o > e) | (o != o);
          const V pv = uo ? o : e;
          const auto upd = (pv > m) | (pv != pv);
          m = upd ? pv : m;
          if (WithIdx) {
            const I32V base = I32V{} + static_cast<int32_t>(iy * W + xs) + lane_idx;
            const I32V pi = __builtin_convertvector(uo, I32V) ? base + 1 : base;
            mi = __builtin_convertvector(upd, I32V) ? pi : mi;
          }
        }
        std::memcpy(Y + ox, &m, sizeof(m));
        if (WithIdx) {
          const I64V w = __builtin_convertvector(mi, I64V);
          std::memcpy(I + ox, &w, sizeof(w));
        }
        return;
      }
      for (int i = i0; i < i1; ++i) {
        const int64_t iy = ys + int64_t(i) * p.dh;
        const T* row = X + iy * W + xs;
        for (int j = 0; j < p.kw; ++j) {
          const T* q = row + int64_t(j) * p.dw;
          V v;
          if (p.sw == 1) {
            v = loadu(q);
          } else {
            // Columns q[0], q[2], ..., q[2L-2]: the second load ends at q[2L-2], never past it.
            v = IMKERN_SHUFFLE2(loadu(q), loadu(q + L - 1), even);
          }
          const auto upd = (v > m) | (v != v);
          m = upd ? v : m;
          if (WithIdx) {
            const I32V u32 = __builtin_convertvector(upd, I32V);
            const I32V cand = I32V{} + static_cast<int32_t>(iy * W + xs + int64_t(j) * p.dw) + lane_idx;
            mi = u32 ? cand : mi;
          }
        }
      }
      std::memcpy(Y + ox, &m, sizeof(m));
      if (WithIdx) {
        const I64V w = __builtin_convertvector(mi, I64V);
        std::memcpy(I + ox, &w, sizeof(w));
      }
    };

    int64_t ox = 0;
    if (vec_ok && i0 < i1 && cx1 - cx0 >= L) {
      for (; ox < cx0; ++ox) scalar(ox);
      for (; ox <= vlast; ox += L) vchunk(ox);
      if (ox < cx1) {
        vchunk(vlast);
        ox = cx1;
      }
    }
    for (; ox < OW; ++ox) scalar(ox);
  }
}

template <typename T>
void max_pool_impl(const T* x, T* y, int64_t* idx, const Pool2dShape& p) {
  const int64_t rows = p.planes * p.oh;
  constexpr int L = simd::Vec<T>::lanes;
  constexpr int L2 = L / 2 >= 2 ? L / 2 : L, L4 = L / 4 >= 2 ? L / 4 : L2;
  int64_t cx0, cx1;
  inner_columns(p, cx0, cx1);
  const int64_t inner = cx1 - cx0;
  const int lanes = inner >= L ? L : inner >= L2 ? L2 : L4;
  parallel_for(0, rows, rows_grain(p.ow), [&](int64_t r0, int64_t r1) {
    if (lanes == L) {
      if (idx) max_pool_rows<T, true, L>(x, y, idx, p, r0, r1);
      else max_pool_rows<T, false, L>(x, y, nullptr, p, r0, r1);
    } else if (lanes == L2) {
      if (idx) max_pool_rows<T, true, L2>(x, y, idx, p, r0, r1);
      else max_pool_rows<T, false, L2>(x, y, nullptr, p, r0, r1);
    } else {
      if (idx) max_pool_rows<T, true, L4>(x, y, idx, p, r0, r1);
      else max_pool_rows<T, false, L4>(x, y, nullptr, p, r0, r1);
    }
  });
}

inline int64_t planes_grain(int64_t plane_elems) {
  int64_t g = 65536 / (plane_elems > 0 ? plane_elems : 1);
  return g < 1 ? 1 : g;
}

template <typename T>
void max_pool_backward_impl(const T* gy, const int64_t* idx, T* gx, const Pool2dShape& p) {
  const int64_t HW = p.h * p.w, OHW = p.oh * p.ow;
  parallel_for(0, p.planes, planes_grain(HW + OHW), [&](int64_t a, int64_t b) {
    for (int64_t pl = a; pl < b; ++pl) {
      T* G = gx + pl * HW;
      std::fill(G, G + HW, T(0));
      const T* gyp = gy + pl * OHW;
      const int64_t* ip = idx + pl * OHW;
      for (int64_t o = 0; o < OHW; ++o) {
        const int64_t k = ip[o];
        if (k < 0 || k >= HW) throw std::invalid_argument("indices: value outside [0, H*W) of the input plane");
        G[k] += gyp[o];
      }
    }
  });
}

struct AvgWin {
  int64_t y0, y1, x0, x1, div;
};

// torch's avg_pool2d window: clipped to the padded input for the divisor (count_include_pad),
// then to the input for the sum.
inline AvgWin avg_window(const Pool2dShape& p, int64_t oy, int64_t ox, bool cip, int64_t divisor_override) {
  AvgWin w;
  int64_t y0 = oy * p.sh - p.ph, x0 = ox * p.sw - p.pw;
  int64_t y1 = std::min<int64_t>(y0 + p.kh, p.h + p.ph), x1 = std::min<int64_t>(x0 + p.kw, p.w + p.pw);
  const int64_t pool = (y1 - y0) * (x1 - x0);
  y0 = std::max<int64_t>(y0, 0);
  x0 = std::max<int64_t>(x0, 0);
  y1 = std::min<int64_t>(y1, p.h);
  x1 = std::min<int64_t>(x1, p.w);
  w.y0 = y0, w.y1 = y1, w.x0 = x0, w.x1 = x1;
  w.div = divisor_override > 0 ? divisor_override : (cip ? pool : (y1 - y0) * (x1 - x0));
  return w;
}

template <typename T>
inline double window_row_sum(const T* x, int64_t n);

// Windows of more than kWideWindow elements: float64 sums (as torch's CPU kernels accumulate
// float32 in float64), per output window, rows summed by window_row_sum.
constexpr int64_t kWideWindow = 64;

template <typename T>
void avg_pool_wide(const T* x, T* y, const Pool2dShape& p, bool cip, int64_t dov) {
  const int64_t rows = p.planes * p.oh;
  parallel_for(0, rows, rows_grain(p.ow * p.kw), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t plane = r / p.oh, oy = r % p.oh;
      const T* X = x + plane * p.h * p.w;
      T* Y = y + plane * p.oh * p.ow + oy * p.ow;
      for (int64_t ox = 0; ox < p.ow; ++ox) {
        const AvgWin w = avg_window(p, oy, ox, cip, dov);
        if (w.y0 >= w.y1 || w.x0 >= w.x1) {
          Y[ox] = T(0);
          continue;
        }
        double s = 0;
        for (int64_t iy = w.y0; iy < w.y1; ++iy) s += window_row_sum(X + iy * p.w + w.x0, w.x1 - w.x0);
        Y[ox] = static_cast<T>(s / static_cast<double>(w.div));
      }
    }
  });
}

// Average pool over output columns [cx0, cx1) whose window lies inside the row, L lanes at a
// time (the native width, or a half or a quarter of it for narrow rows, as max_pool_rows).
template <typename T, int L>
void avg_pool_run(const T* x, T* y, const Pool2dShape& p, bool cip, int64_t dov, int64_t cx0, int64_t cx1) {
  const int64_t rows = p.planes * p.oh;
  const int64_t H = p.h, W = p.w;
  using V = vm::vecn_t<T, L>;
  using IV = vm::vecn_t<typename vm::IntOf<T>::type, L>;
  const auto loadu = [](const T* q) {
    V v;
    std::memcpy(&v, q, sizeof(v));
    return v;
  };
  IV even{}, ev2{}, od2{};
  for (int k = 0; k < L; ++k) {
    even[k] = k < L / 2 ? 2 * k : L + 1 + 2 * (k - L / 2);
    ev2[k] = 2 * k;
    od2[k] = 2 * k + 1;
  }
  const bool vec_ok = p.sw == 1 || p.sw == 2;
  // 2-wide windows at stride 2 (2x2/2): each window row is one adjacent pair read straight
  // from the input rows (two aligned loads, even + odd); the row buffer is then only needed
  // when some columns are left to the scalar loop.
  const bool pair = p.kw == 2 && p.sw == 2 && cx1 - cx0 >= L;
  const bool need_acc = !(pair && cx0 == 0 && cx1 == p.ow);
  parallel_for(0, rows, rows_grain(p.ow), [&](int64_t r0, int64_t r1) {
    std::vector<T> acc(static_cast<size_t>(W));
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t plane = r / p.oh, oy = r % p.oh;
      const T* X = x + plane * H * W;
      T* Y = y + plane * p.oh * p.ow + oy * p.ow;
      const AvgWin w0 = avg_window(p, oy, 0, cip, dov);
      if (w0.y0 >= w0.y1) {
        std::fill(Y, Y + p.ow, T(0));
        continue;
      }
      // Vertical sums of the valid rows, vectorized along the row.
      if (need_acc) {
        std::copy(X + w0.y0 * W, X + w0.y0 * W + W, acc.begin());
        for (int64_t iy = w0.y0 + 1; iy < w0.y1; ++iy) {
          const T* row = X + iy * W;
          T* a = acc.data();
          for (int64_t i = 0; i < W; ++i) a[i] += row[i];
        }
      }
      auto scalar = [&](int64_t ox) {
        const AvgWin w = avg_window(p, oy, ox, cip, dov);
        if (w.x0 >= w.x1) {
          Y[ox] = T(0);
          return;
        }
        T s = 0;
        for (int64_t ix = w.x0; ix < w.x1; ++ix) s += acc[ix];
        Y[ox] = s / static_cast<T>(w.div);
      };
      int64_t ox = 0;
      if (vec_ok && cx1 - cx0 >= L) {
        // Interior columns: the whole window row is inside, so the divisor is the row's.
        const AvgWin wi = avg_window(p, oy, cx0, cip, dov);
        const V dv = V{} + static_cast<T>(wi.div);
        const T* a = acc.data();
        auto vchunk = [&](int64_t o) {
          const T* q = a + o * p.sw - p.pw;
          V s;
          if (pair) {
            s = V{};
            for (int64_t iy = w0.y0; iy < w0.y1; ++iy) {
              const T* r = X + iy * W + o * 2 - p.pw;
              const V u = loadu(r), v = loadu(r + L);
              s += IMKERN_SHUFFLE2(u, v, ev2) + IMKERN_SHUFFLE2(u, v, od2);
            }
          } else if (p.sw == 1) {
            s = loadu(q);
            for (int j = 1; j < p.kw; ++j) s += loadu(q + j);
          } else {
            s = IMKERN_SHUFFLE2(loadu(q), loadu(q + L - 1), even);
            for (int j = 1; j < p.kw; ++j) s += IMKERN_SHUFFLE2(loadu(q + j), loadu(q + j + L - 1), even);
          }
          const V q2 = s / dv;
          std::memcpy(Y + o, &q2, sizeof(q2));
        };
        for (; ox < cx0; ++ox) scalar(ox);
        for (; ox <= cx1 - L; ox += L) vchunk(ox);
        if (ox < cx1) {
          vchunk(cx1 - L);
          ox = cx1;
        }
      }
      for (; ox < p.ow; ++ox) scalar(ox);
    }
  });
}

template <typename T>
void avg_pool_impl(const T* x, T* y, const Pool2dShape& p, bool cip, int64_t dov) {
  if (p.kh * p.kw > kWideWindow) return avg_pool_wide(x, y, p, cip, dov);
  // Output columns whose window lies inside [0, W): [cx0, cx1).
  int64_t cx0 = p.pw > 0 ? (p.pw + p.sw - 1) / p.sw : 0;
  int64_t cx1 = p.w - p.kw + p.pw < 0 ? 0 : (p.w - p.kw + p.pw) / p.sw + 1;
  if (cx1 > p.ow) cx1 = p.ow;
  if (cx0 > cx1) cx0 = cx1;
  constexpr int L = simd::Vec<T>::lanes;
  constexpr int L2 = L / 2 >= 2 ? L / 2 : L, L4 = L / 4 >= 2 ? L / 4 : L2;
  const int64_t inner = cx1 - cx0;
  if (inner >= L) return avg_pool_run<T, L>(x, y, p, cip, dov, cx0, cx1);
  if (inner >= L2) return avg_pool_run<T, L2>(x, y, p, cip, dov, cx0, cx1);
  return avg_pool_run<T, L4>(x, y, p, cip, dov, cx0, cx1);
}

template <typename T>
void avg_pool_backward_impl(const T* gy, T* gx, const Pool2dShape& p, bool cip, int64_t dov) {
  const int64_t HW = p.h * p.w, OHW = p.oh * p.ow;
  parallel_for(0, p.planes, planes_grain(HW + OHW), [&](int64_t a, int64_t b) {
    for (int64_t pl = a; pl < b; ++pl) {
      T* G = gx + pl * HW;
      std::fill(G, G + HW, T(0));
      const T* g = gy + pl * OHW;
      for (int64_t oy = 0; oy < p.oh; ++oy)
        for (int64_t ox = 0; ox < p.ow; ++ox) {
          const AvgWin w = avg_window(p, oy, ox, cip, dov);
          if (w.y0 >= w.y1 || w.x0 >= w.x1) continue;
          const T v = g[oy * p.ow + ox] / static_cast<T>(w.div);
          for (int64_t iy = w.y0; iy < w.y1; ++iy) {
            T* row = G + iy * p.w;
            for (int64_t ix = w.x0; ix < w.x1; ++ix) row[ix] += v;
          }
        }
    }
  });
}

// Sum of n values in float64: float64 lanes in blocks (vectorizable), so a window row of any
// length keeps ~1 ulp (of float64) of error; the order depends on n only.
template <typename T>
inline double window_row_sum(const T* x, int64_t n) {
  constexpr int kLanes = 8;
  double lane[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) lane[k] += static_cast<double>(x[i + k]);
  double s = 0;
  for (; i < n; ++i) s += static_cast<double>(x[i]);
  for (int k = 0; k < kLanes; ++k) s += lane[k];
  return s;
}

// The first m (0 <= m <= N) of the N elements at p, the others zero; reads nothing past p + m
// (masked loads at AVX-512 and AVX2, so a plane's tail costs one load, not a copy).
template <typename T, int N>
IMKERN_ALWAYS_INLINE inline vm::vecn_t<T, N> load_first(const T* p, int64_t m) {
  using NV = simd::vec_t<T>;
  constexpr int L = simd::Vec<T>::lanes;
  static_assert(N % L == 0, "whole native vectors");
  NV part[N / L];
  for (int c = 0; c < N / L; ++c) {
    const int64_t k = std::min<int64_t>(std::max<int64_t>(m - int64_t(c) * L, 0), L);
    const T* q = p + int64_t(c) * L;
#if defined(__AVX512F__)
    if constexpr (sizeof(T) == 4)
      part[c] = reinterpret_cast<NV>(_mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << k) - 1), q));
    else
      part[c] = reinterpret_cast<NV>(_mm512_maskz_loadu_pd(static_cast<__mmask8>((1u << k) - 1), q));
#elif defined(__AVX2__)
    if constexpr (sizeof(T) == 4) {
      const vm::vecn_t<int32_t, 8> iota = {0, 1, 2, 3, 4, 5, 6, 7};
      part[c] = reinterpret_cast<NV>(_mm256_maskload_ps(q, reinterpret_cast<__m256i>(iota < static_cast<int32_t>(k))));
    } else {
      const vm::vecn_t<int64_t, 4> iota = {0, 1, 2, 3};
      part[c] = reinterpret_cast<NV>(_mm256_maskload_pd(q, reinterpret_cast<__m256i>(iota < k)));
    }
#else
    NV v{};
    for (int j = 0; j < k; ++j) v[j] = q[j];
    part[c] = v;
#endif
  }
  vm::vecn_t<T, N> v;
  std::memcpy(&v, part, sizeof(v));
  return v;
}

// The first m of the L (native) elements at p, the others zero, from a plain load: p[0, L)
// must be readable. AVX2 and baseline use this where a plane's padded end lies inside the
// array: AVX2's vmaskmov loads ran global pooling of a 12.8 MB input at 1/4 of the speed of
// plain loads on Zen 4 (AVX-512's masked loads are as fast as plain ones).
template <typename T>
IMKERN_ALWAYS_INLINE inline simd::vec_t<T> load_keep(const T* p, int64_t m) {
  using I = typename vm::IntOf<T>::type;
  constexpr int L = simd::Vec<T>::lanes;
  using IV = vm::vecn_t<I, L>;
  IV iota;
  for (int k = 0; k < L; ++k) iota[k] = k;
  const IV keep = iota < static_cast<I>(std::min<int64_t>(std::max<int64_t>(m, 0), L));
  simd::vec_t<T> v;
  std::memcpy(&v, p, sizeof(v));
  return reinterpret_cast<simd::vec_t<T>>(reinterpret_cast<IV>(v) & keep);
}

template <typename T, int N>
IMKERN_ALWAYS_INLINE inline vm::vecn_t<T, N> load_n(const T* p) {
  vm::vecn_t<T, N> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Lanes [0, N/2) (h = 0) or [N/2, N) (h = 1) of v: a register extract, not a round trip through
// memory (which a memcpy of the half became).
template <int H, typename V, size_t... I>
IMKERN_ALWAYS_INLINE inline auto half_impl(V v, std::index_sequence<I...>) {
  return __builtin_shufflevector(v, v, (H * sizeof...(I) + I)...);
}
template <typename T, int N>
IMKERN_ALWAYS_INLINE inline vm::vecn_t<T, N / 2> half(vm::vecn_t<T, N> v, int h) {
  return h ? half_impl<1>(v, std::make_index_sequence<N / 2>{}) : half_impl<0>(v, std::make_index_sequence<N / 2>{});
}

using D8 = vm::vecn_t<double, 8>;
constexpr int kLD = simd::Vec<double>::lanes;  // native float64 lanes: 8, 4 or 2

// 8 logical float64 lanes in native vectors (one at AVX-512; GCC keeps a wider generic vector
// in memory at AVX2, which cost 4-6x there).
struct Lanes8 {
  simd::vec_t<double> v[8 / kLD];
};

// The last steps of every sum below, from 8 float64 lanes b: c[k] = b[k] + b[k + 4], then
// (c[0] + c[2]) + (c[1] + c[3]). The same adds at every width.
IMKERN_ALWAYS_INLINE inline double lanes8_sum(const Lanes8& b) {
  if constexpr (kLD == 8) {
    D8 v;
    std::memcpy(&v, &b, sizeof(v));  // the one native vector (discarded branches still compile)
    const vm::vecn_t<double, 4> c = half<double, 8>(v, 0) + half<double, 8>(v, 1);
    return (c[0] + c[2]) + (c[1] + c[3]);
  } else if constexpr (kLD == 4) {
    const simd::vec_t<double> c = b.v[0] + b.v[1 % (8 / kLD)];
    return (c[0] + c[2 % kLD]) + (c[1] + c[3 % kLD]);
  } else {
    // c01 = lanes 0-1 of c, c23 = lanes 2-3; u = [c0 + c2, c1 + c3]
    const simd::vec_t<double> u = (b.v[0] + b.v[2 % (8 / kLD)]) + (b.v[1 % (8 / kLD)] + b.v[3 % (8 / kLD)]);
    return u[0] + u[1];
  }
}

// lanes8_sum of 8 planes at once at AVX-512 (lane i of the result: lanes8_sum(b[i])), the
// same adds in the same order, as a transpose network: 7 vector adds for 8 sums instead of 24
// scalar steps.
IMKERN_ALWAYS_INLINE inline D8 lanes8_sum8(const Lanes8* lb) {
  D8 b[8], c[4], d[2];
  for (int j = 0; j < 8; ++j) std::memcpy(&b[j], &lb[j], sizeof(D8));
  // c[j]: lanes 0-3 of b[2j] + its lanes 4-7, then the same for b[2j + 1]
  for (int j = 0; j < 4; ++j)
    c[j] = __builtin_shufflevector(b[2 * j], b[2 * j + 1], 0, 1, 2, 3, 8, 9, 10, 11) +
           __builtin_shufflevector(b[2 * j], b[2 * j + 1], 4, 5, 6, 7, 12, 13, 14, 15);
  // d[j]: c0 + c2, c1 + c3 for each of the four planes in c[2j], c[2j + 1]
  for (int j = 0; j < 2; ++j)
    d[j] = __builtin_shufflevector(c[2 * j], c[2 * j + 1], 0, 1, 4, 5, 8, 9, 12, 13) +
           __builtin_shufflevector(c[2 * j], c[2 * j + 1], 2, 3, 6, 7, 10, 11, 14, 15);
  return __builtin_shufflevector(d[0], d[1], 0, 2, 4, 6, 8, 10, 12, 14) +
         __builtin_shufflevector(d[0], d[1], 1, 3, 5, 7, 9, 11, 13, 15);
}

// float32 lanes (half a native vector) widened to a native float64 vector.
IMKERN_ALWAYS_INLINE inline simd::vec_t<double> widen(vm::vecn_t<float, simd::Vec<double>::lanes> v) {
#if defined(__AVX512F__)
  return reinterpret_cast<simd::vec_t<double>>(_mm512_cvtps_pd(reinterpret_cast<__m256>(v)));
#else
  return __builtin_convertvector(v, simd::vec_t<double>);
#endif
}

// Native vectors v[0..K) (K L lanes in all, K L >= 8) folded to the 8 logical lanes
// k + 8 m -> k, halving: v[j] += v[j + K / 2] until 8 lanes are left. Lane k of the result is
// the same sum on every ISA (the logical lanes, not the registers, fix the order).
template <int K, typename NV>
IMKERN_ALWAYS_INLINE inline Lanes8 fold_to_8(NV* v) {
  constexpr int L = sizeof(NV) / sizeof(double);
  for (int w = K / 2; w * L >= 8; w /= 2)
    for (int j = 0; j < w; ++j) v[j] += v[j + w];
  Lanes8 r;
  for (int j = 0; j < 8 / L; ++j) r.v[j] = v[j];
  return r;
}

// 32 float64 lanes over n contiguous values: lane k adds x[32 j + k] in order of j (zero past
// the end: the lanes start at +0 and so are never -0, and l + 0 == l), then folded to 8 lanes
// (k + 16, then k + 8). span_sum finishes with lanes8_sum. Written for 32 logical lanes in
// native vectors, so the order depends on n only, never on the ISA (four independent vector
// chains at AVX-512, so the adds are not held up by their latency); ~1 ulp of float64.
template <typename T>
IMKERN_ALWAYS_INLINE inline Lanes8 span_lanes(const T* x, int64_t n) {
  using NV = simd::vec_t<double>;
  constexpr int L = simd::Vec<double>::lanes, K = 32 / L;
  NV acc[K];
  for (int j = 0; j < K; ++j) acc[j] = NV{};
  const auto add = [&](const T* q, int64_t m) {
    for (int j = 0; j < K; ++j) {
      const int64_t mj = m - int64_t(j) * L;
      if constexpr (std::is_same_v<T, double>) {
        acc[j] += mj >= L ? load_n<double, L>(q + j * L) : load_first<double, L>(q + j * L, mj);
      } else {
        const vm::vecn_t<float, L> f = mj >= L ? load_n<float, L>(q + j * L) : half<float, 2 * L>(load_first<float, 2 * L>(q + j * L, mj), 0);
        acc[j] += widen(f);
      }
    }
  };
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) add(x + i, 32);
  if (i < n) add(x + i, n - i);
  return fold_to_8<K>(acc);
}

template <typename T>
inline double span_sum(const T* x, int64_t n) {
  return lanes8_sum(span_lanes(x, n));
}

// Global-pool sum of a float32 plane: blocks of 64 values (the last one zero-padded); in each,
// 16 float32 lanes add their 4 values in order (lane k: x[b + k] + x[b + 16 + k] + ...), and
// the lane sums go to 16 float64 lanes, folded at the end (k + 8, then lanes8_sum).
// Written for 16 logical lanes in native vectors: the order depends on n only, never on the
// ISA or threads. Error: 3 float32 roundings per lane and block, each at most u = 2^-24 of the
// partial sum, so at most 3u sum|x| overall (float64 adds add ~n 2^-53); for values of one
// sign the mean is within 4u (2 ulp) after the final rounding. The conversion to float64 is
// per block, not per value: 2 float64 adds and conversions per 64 values instead of 8 each.
IMKERN_ALWAYS_INLINE inline Lanes8 global_lanes(const float* x, int64_t n) {
  using NF = simd::vec_t<float>;
  using ND = simd::vec_t<double>;
  constexpr int L = simd::Vec<float>::lanes, K = 16 / (L < 16 ? L : 16);
  static_assert(L <= 16, "at most 16 float lanes");
  ND lo[K], hi[K];  // float lane k of vector j: double lanes in lo[j] (first half), hi[j]
  for (int j = 0; j < K; ++j) lo[j] = hi[j] = ND{};
  const auto add = [&](const NF* s) {
    for (int j = 0; j < K; ++j) {
      lo[j] += widen(half<float, L>(s[j], 0));
      hi[j] += widen(half<float, L>(s[j], 1));
    }
  };
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    NF s[K];
    for (int j = 0; j < K; ++j) {
      const float* q = x + i + j * L;
      s[j] = load_n<float, L>(q) + load_n<float, L>(q + 16);
      s[j] += load_n<float, L>(q + 32);
      s[j] += load_n<float, L>(q + 48);
    }
    add(s);
  }
  if (i < n) {
    // 0 + a == a, and the zero padding adds nothing: the block order above, exactly.
    NF s[K];
    for (int j = 0; j < K; ++j) s[j] = NF{};
    for (; i + 16 <= n; i += 16)
      for (int j = 0; j < K; ++j) s[j] += load_n<float, L>(x + i + j * L);
    if (i < n)
      for (int j = 0; j < K; ++j) s[j] += load_first<float, L>(x + i + j * L, n - i - int64_t(j) * L);
    add(s);
  }
  // Logical double lanes 0..15 in order: lo[0], hi[0], lo[1], hi[1], ...
  ND d[2 * K];
  for (int j = 0; j < K; ++j) d[2 * j] = lo[j], d[2 * j + 1] = hi[j];
  return fold_to_8<2 * K>(d);
}

// The first m values at q in one native vector, the others zero (m may be <= 0 or past the
// lanes), for the small planes: Safe (q[0, lanes) readable) plain loads with cleared lanes
// below AVX-512, else masked loads (load_first).
template <bool Safe, typename T>
IMKERN_ALWAYS_INLINE inline auto load_small(const T* q, int64_t m) {
  constexpr int L = simd::Vec<T>::lanes;
  if constexpr (Safe && L * sizeof(T) < 64) return load_keep(q, m);
  else return load_first<T, L>(q, m);
}

// global_lanes of a plane of n <= 64 values without branches: four masked loads (the masks
// the same for every plane), their sum, one conversion, the fold. The same sums: the zero lanes
// add nothing, and a -0 that the +0 start would have made +0 becomes +0 where the caller adds
// +0 (global_pool_planes, after the reduction).
// Safe: x[0, 64) is readable (plain loads with cleared lanes below AVX-512).
template <bool Safe>
IMKERN_ALWAYS_INLINE inline Lanes8 global_lanes_small(const float* x, int64_t n) {
  using NF = simd::vec_t<float>;
  using ND = simd::vec_t<double>;
  constexpr int L = simd::Vec<float>::lanes, K = 16 / L;
  NF s[K];
  for (int j = 0; j < K; ++j) {
    const float* q = x + j * L;
    const int64_t m = n - int64_t(j) * L;
    s[j] = load_small<Safe>(q, m) + load_small<Safe>(q + 16, m - 16);
    s[j] += load_small<Safe>(q + 32, m - 32);
    s[j] += load_small<Safe>(q + 48, m - 48);
  }
  ND d[2 * K];
  for (int j = 0; j < K; ++j) d[2 * j] = widen(half<float, L>(s[j], 0)), d[2 * j + 1] = widen(half<float, L>(s[j], 1));
  return fold_to_8<2 * K>(d);
}

// span_lanes of n <= 64 float64 values without branches: two masked loads per native vector
// (the masks the same for every plane), one add, the fold; the same sums (see
// global_lanes_small on -0).
template <bool Safe>
IMKERN_ALWAYS_INLINE inline Lanes8 span_lanes_small(const double* x, int64_t n) {
  using ND = simd::vec_t<double>;
  constexpr int L = simd::Vec<double>::lanes, K = 32 / L;
  ND acc[K];
  for (int j = 0; j < K; ++j) {
    const int64_t m = n - int64_t(j) * L;
    acc[j] = load_small<Safe>(x + j * L, m) + load_small<Safe>(x + 32 + j * L, m - 32);
  }
  return fold_to_8<K>(acc);
}

IMKERN_ALWAYS_INLINE inline Lanes8 global_lanes(const double* x, int64_t n) { return span_lanes(x, n); }

// span_sum out of line, for the rare planes the float32 blocks cannot sum (kept out of the
// hot loop, whose registers it would take).
__attribute__((noinline, cold)) double span_sum_cold(const float* x, int64_t n) { return span_sum(x, n); }

// Global average pool of planes [a, b) of `planes`: 8 planes at a time share the final
// reduction (lanes8_sum8) and one vector division at AVX-512; the rest one by one, with the
// same adds.
template <typename T>
void global_pool_planes(const T* x, T* y, int64_t HW, int64_t planes, int64_t a, int64_t b) {
  const double n = static_cast<double>(HW);
  const bool small = HW <= 64;
  // Planes whose padded 64 values lie inside the array: [0, safe)
  const int64_t total = planes * HW;
  const int64_t safe = total >= 64 ? (total - 64) / HW + 1 : 0;
  const auto lanes = [&](const T* p, auto safe_tag) IMKERN_ALWAYS_INLINE {
    constexpr bool S = decltype(safe_tag)::value;
    if constexpr (std::is_same_v<T, float>) return small ? global_lanes_small<S>(p, HW) : global_lanes(p, HW);
    else return small ? span_lanes_small<S>(p, HW) : global_lanes(p, HW);
  };
  // A float32 block sum can overflow where the float64 sum does not (values near FLT_MAX):
  // a plane whose sum is not finite is summed again in float64 lanes (span_lanes, the
  // previous algorithm), which also gives an inf or NaN input its inf or NaN.
  const auto finish = [&](int64_t p, double sum) IMKERN_ALWAYS_INLINE {
    if constexpr (std::is_same_v<T, float>) {
      if (__builtin_expect(!std::isfinite(sum), 0)) sum = span_sum_cold(x + p * HW, HW);
    }
    y[p] = static_cast<T>((sum + 0.0) / n);
  };
  int64_t pl = a;
  if constexpr (kLD == 8) {
    for (; pl + 8 <= b; pl += 8) {
      Lanes8 l8[8];
      for (int j = 0; j < 8; ++j) l8[j] = lanes(x + (pl + j) * HW, std::false_type{});
      const D8 sum = lanes8_sum8(l8);
      // + 0: a plane of -0 sums to -0 without the +0 start of the lanes (see global_lanes_small)
      const D8 mean = (sum + D8{}) / n;
      const vm::vecn_t<T, 8> v = __builtin_convertvector(mean, vm::vecn_t<T, 8>);
      std::memcpy(y + pl, &v, sizeof(v));
      if constexpr (std::is_same_v<T, float>) {
        const D8 z = sum - sum;  // 0, or NaN where the sum is inf or NaN
        Lanes8 lz;
        std::memcpy(&lz, &z, sizeof(z));
        if (__builtin_expect(lanes8_sum(lz) != 0.0, 0)) {
          for (int j = 0; j < 8; ++j)
            if (z[j] != 0.0) finish(pl + j, sum[j]);
        }
      }
    }
  } else {
    for (; pl < std::min(b, safe); ++pl) finish(pl, lanes8_sum(lanes(x + pl * HW, std::true_type{})));
  }
  for (; pl < b; ++pl) finish(pl, lanes8_sum(lanes(x + pl * HW, std::false_type{})));
}

inline int64_t start_index(int64_t o, int64_t out, int64_t in) { return (o * in) / out; }
inline int64_t end_index(int64_t o, int64_t out, int64_t in) { return ((o + 1) * in + out - 1) / out; }

template <typename T>
void adaptive_impl(const T* x, T* y, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW) {
  if (OH == 1 && OW == 1) {
    // Global pooling (a CNN's last layers): one blocked sum per plane over its contiguous
    // span, no window arithmetic (a sum per row and two divisions per plane made small planes
    // cost 3-4x torch's time).
    const int64_t HW = H * W;
    // Chunks of ~128K values: a second thread only where the work outweighs waking it
    // (32x64x7x7 runs on one; the sums never depend on the chunking).
    const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 17) / std::max<int64_t>(HW, 1));
    parallel_for(0, planes, grain, [&](int64_t a, int64_t b) { global_pool_planes(x, y, HW, planes, a, b); });
    return;
  }
  if (H % OH == 0 && W % OW == 0 && (H / OH) * (W / OW) <= kWideWindow) {
    // Disjoint windows of at most 64 elements (14x14 -> 7x7, 56x56 -> 7x7): avg_pool2d with
    // kernel = stride = the window, whose vector rows sum them in float32 (as it does for
    // windows of this size; the same bits on every ISA and thread count).
    Pool2dShape p;
    p.planes = planes, p.h = H, p.w = W, p.oh = OH, p.ow = OW;
    p.kh = p.sh = H / OH, p.kw = p.sw = W / OW;
    return avg_pool_impl(x, y, p, false, 0);
  }
  parallel_for(0, planes * OH, rows_grain(OW), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t plane = r / OH, oy = r % OH;
      const T* X = x + plane * H * W;
      T* Y = y + plane * OH * OW + oy * OW;
      const int64_t y0 = start_index(oy, OH, H), y1 = end_index(oy, OH, H);
      if (OW == 1) {
        // Windows of whole rows: one blocked sum over the rows' contiguous span
        const double s = span_sum(X + y0 * W, (y1 - y0) * W);
        Y[0] = static_cast<T>(s / static_cast<double>((y1 - y0) * W));
        continue;
      }
      for (int64_t ox = 0; ox < OW; ++ox) {
        const int64_t x0 = start_index(ox, OW, W), x1 = end_index(ox, OW, W);
        // Blocked float64 sum (window_sum): a float32 running sum drifted by 4% over a 2048^2
        // window; this stays within an ulp of the exact mean, deterministically.
        double s = 0;
        for (int64_t iy = y0; iy < y1; ++iy) s += window_row_sum(X + iy * W + x0, x1 - x0);
        Y[ox] = static_cast<T>(s / static_cast<double>((y1 - y0) * (x1 - x0)));
      }
    }
  });
}

template <typename T>
void adaptive_backward_impl(const T* gy, T* gx, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW) {
  if (H % OH == 0 && W % OW == 0) {
    // Disjoint windows (global pooling included): each input gets exactly one output's share,
    // 0 + g / (kh kw) as the scatter below adds it (the 0 + keeps its -0 -> +0), written
    // row by row: one expanded row per output row, copied to the window's kh input rows.
    const int64_t kh = H / OH, kw = W / OW;
    const T div = static_cast<T>(kh * kw);
    parallel_for(0, planes * OH, rows_grain(W * kh), [&](int64_t r0, int64_t r1) {
      std::vector<T> row(kw == W ? 0 : static_cast<size_t>(W));
      for (int64_t r = r0; r < r1; ++r) {
        const T* g = gy + r * OW;  // output row r of all planes' rows
        T* G = gx + r * kh * W;    // its kh input rows, contiguous
        if (kw == W) {
          std::fill(G, G + kh * W, T(0) + g[0] / div);
          continue;
        }
        T* e = row.data();
        for (int64_t ox = 0; ox < OW; ++ox) std::fill(e + ox * kw, e + ox * kw + kw, T(0) + g[ox] / div);
        for (int64_t i = 0; i < kh; ++i) std::copy(e, e + W, G + i * W);
      }
    });
    return;
  }
  parallel_for(0, planes, planes_grain(H * W + OH * OW), [&](int64_t a, int64_t b) {
    for (int64_t pl = a; pl < b; ++pl) {
      T* G = gx + pl * H * W;
      std::fill(G, G + H * W, T(0));
      const T* g = gy + pl * OH * OW;
      for (int64_t oy = 0; oy < OH; ++oy) {
        const int64_t y0 = start_index(oy, OH, H), y1 = end_index(oy, OH, H);
        for (int64_t ox = 0; ox < OW; ++ox) {
          const int64_t x0 = start_index(ox, OW, W), x1 = end_index(ox, OW, W);
          const T v = g[oy * OW + ox] / static_cast<T>((y1 - y0) * (x1 - x0));
          for (int64_t iy = y0; iy < y1; ++iy)
            for (int64_t ix = x0; ix < x1; ++ix) G[iy * W + ix] += v;
        }
      }
    }
  });
}

}  // namespace

void max_pool2d(DType dtype, const void* x, void* y, int64_t* indices, const Pool2dShape& p) {
  visit_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    max_pool_impl<T>(static_cast<const T*>(x), static_cast<T*>(y), indices, p);
  });
}

void max_pool2d_backward(DType dtype, const void* gy, const int64_t* indices, void* gx, const Pool2dShape& p) {
  visit_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    max_pool_backward_impl<T>(static_cast<const T*>(gy), indices, static_cast<T*>(gx), p);
  });
}

void avg_pool2d(DType dtype, const void* x, void* y, const Pool2dShape& p, bool cip, int64_t dov) {
  visit_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    avg_pool_impl<T>(static_cast<const T*>(x), static_cast<T*>(y), p, cip, dov);
  });
}

void avg_pool2d_backward(DType dtype, const void* gy, void* gx, const Pool2dShape& p, bool cip, int64_t dov) {
  visit_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    avg_pool_backward_impl<T>(static_cast<const T*>(gy), static_cast<T*>(gx), p, cip, dov);
  });
}

void adaptive_avg_pool2d(DType dtype, const void* x, void* y, const Pool2dShape& p) {
  visit_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    adaptive_impl<T>(static_cast<const T*>(x), static_cast<T*>(y), p.planes, p.h, p.w, p.oh, p.ow);
  });
}

void adaptive_avg_pool2d_backward(DType dtype, const void* gy, void* gx, const Pool2dShape& p) {
  visit_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    adaptive_backward_impl<T>(static_cast<const T*>(gy), static_cast<T*>(gx), p.planes, p.h, p.w, p.oh, p.ow);
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
