// Derivative filters (Sobel, Scharr, Prewitt, Laplacian, gradient, gradient magnitude), fused
// in one pass over the image (compiled per ISA).
//
// Algorithm: every op here is one or two separable filters ky0 (x) kx0, ky1 (x) kx1 of the same
// size kh x kw, combined per pixel:
//   single   out0 = V0(H0(src)) + delta                         (sobel, scharr, prewitt)
//   sum      out0 = V0(H0(src)) + V1(H1(src)) + delta           (laplacian: d2x + d2y)
//   pair     out0 = V0(H0(src)), out1 = V1(H1(src))             (gradient: gx, gy)
//   mag_l1   out0 = |V0 H0| + |V1 H1|,  mag_l2: sqrt(gx^2 + gy^2) (gradient_magnitude)
// Each source row is converted and padded once (load_source_segment) and filtered along x by
// both kx into one ring row of two halves (filter_rows.hpp's ring pipeline); each output row
// is the ky-weighted sum of the kh ring rows, combined in registers/L1 and stored once. The
// output type is the accumulator type (float32 for uint8/uint16/float32 sources, float64 for
// float64): the integer -> float32 output path without a second pass (the linear filters'
// sep_filter writes the source dtype; this file keeps its own typed-output loop until a shared
// `dtype=` mechanism exists, and uses the same vfilter/hfilter inner loops).
// 3x3 operators (sobel / scharr / prewitt ksize 3 in single mode, the Laplacian ksize 1 / 3,
// gradient and gradient_magnitude ksize 1 / 3 / Scharr: GradOp, both derivatives from the
// same columns, the pair stored or the magnitude formed in registers and stored once)
// take one fused pass straight from the source rows (fused3_impl: rows of at least 3 vectors
// with 1, 3 or 4 channels): per-column values of the three rows first (the vertical pass,
// three source loads per vector, integer images widened in registers), their neighbours at
// x -+ C by lane shifts, one store; narrower rows and other channel counts take a two-pass
// version of the same (sep_impl<3>) or the 5-tap Laplacian stencil (stencil3_impl). Float
// results round as ky (x) (x (x) ...) columns first instead of rows first (a few ulps apart;
// integer images keep exact sums, the bits of cv2). Sobel ksize 5 and 7 (single mode) take the
// vertical-first pass sep_impl<5 / 7>; the Laplacian ksize 5 / 7 its two-kernel form
// sum_sep_impl (both columns' values from one load of each source vector, both horizontal
// kernels summed in registers; 1080p single thread: sobel ksize 7 and the Laplacian ksize 5 /
// 7 ~25-35% faster than the ring path). The ring path (kernels given non-finite taps, gradient
// and gradient_magnitude ksize 5 / 7) takes both horizontal kernels of a Laplacian from one
// load of each tap (hsum2_sym) and both vertical kernels summed in registers (vsum_sym).
// Cost per pixel and channel: bytes = sizeof(T) read + sizeof(A) per output written;
// FLOPs = 2 (kw + kh) per filter (single) or twice that (two filters), + 3 for magnitudes.
// Scale is folded into the kernels by the caller (as cv2.Sobel does), so a float result has
// the rounding of cv2's sepFilter2D up to the order of the taps.
#include <cmath>
#include <type_traits>
#include <utility>

#include "imkern/filters.hpp"
#include "imkern/parallel.hpp"
#include "common/shuffle.hpp"
#include "filters/filter_rows.hpp"

namespace imkern {
namespace IMKERN_ISA {

namespace {

// The h border columns on each side of a row of per-column values v (C channels, W pixels): a
// border pixel's value is its source column's (border_index), or vcv where the border is constant.
template <typename A>
inline void pad_columns(A* v, int64_t W, int64_t C, int64_t h, Border border, A vcv) {
  for (int64_t j = 1; j <= h; ++j) {
    for (const int64_t x : {-j, W - 1 + j}) {
      const int64_t sx = border_index(x, W, border);
      for (int64_t ch = 0; ch < C; ++ch) v[x * C + ch] = sx < 0 ? vcv : v[sx * C + ch];
    }
  }
}

// The N source rows yy[0 .. N) of image b (yy[i] < 0: outside, constant border) for a pass that
// reads them straight (integer rows widened in registers by the pass): f(P) with P the rows as
// const T* const* where every row lies inside the image, as const A* const* otherwise. A float
// image's rows stay in place and the rows outside point at one cval row; an integer image's rows
// are all converted to A (cval need not be a T) into the thread's scratch (slot 2, taken on first
// use: one SourceRows per thread). The copies are exact, so both forms give the same bits.
template <int N, typename T, typename A>
class SourceRows {
 public:
  SourceRows(const void* src, const ImageDesc& s, int64_t n, A cv) : src_(src), s_(s), n_(n), cv_(cv) {}

  template <typename F>
  void operator()(int64_t b, const int64_t* yy, F&& f) {
    bool outside = false;
    for (int i = 0; i < N; ++i) outside = outside || yy[i] < 0;
    if (!outside) {
      const T* P[N];
      for (int i = 0; i < N; ++i) P[i] = row_ptr<T>(src_, s_, b, yy[i]);
      return f(static_cast<const T* const*>(P));
    }
    const A* P[N];
    if constexpr (std::is_same<T, A>::value) {
      if (!buf_) {
        buf_ = thread_scratch<A>(2, static_cast<size_t>(n_));
        std::fill(buf_, buf_ + n_, cv_);
      }
      for (int i = 0; i < N; ++i) P[i] = yy[i] < 0 ? buf_ : row_ptr<A>(src_, s_, b, yy[i]);
    } else {
      if (!buf_) buf_ = thread_scratch<A>(2, static_cast<size_t>(N * n_));
      for (int i = 0; i < N; ++i) {
        A* r = buf_ + i * n_;
        if (yy[i] < 0) std::fill(r, r + n_, cv_);
        else convert_row(row_ptr<T>(src_, s_, b, yy[i]), r, n_);
        P[i] = r;
      }
    }
    f(static_cast<const A* const*>(P));
  }

 private:
  const void* src_;
  const ImageDesc& s_;
  int64_t n_;
  A cv_;
  A* buf_ = nullptr;
};

template <typename A>
inline void add_const_row(A* o, int64_t n, A delta) {
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  const vec_t<A> dv = splat<A>(delta);
  int64_t x = 0;
  for (; x + L <= n; x += L) storeu(o + x, loadu(o + x) + dv);
  for (; x < n; ++x) o[x] += delta;
}

// o = a + b + delta (laplacian), vectorized; the same order of additions for every element.
template <typename A>
inline void sum_rows(const A* a, const A* b, A* o, int64_t n, A delta) {
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  const vec_t<A> dv = splat<A>(delta);
  int64_t x = 0;
  for (; x + L <= n; x += L) storeu(o + x, (loadu(a + x) + loadu(b + x)) + dv);
  for (; x < n; ++x) o[x] = (a[x] + b[x]) + delta;
}

template <typename A>
inline simd::vec_t<A> vabs(simd::vec_t<A> v) {
  return v < 0 ? -v : v;  // lane-wise select; -0.0 stays -0.0 only for v == -0 (|.| of 0 is 0 anyway)
}

// Lane-wise IEEE sqrt (correctly rounded, so every ISA gives the same bits).
template <typename A>
IMKERN_ALWAYS_INLINE inline simd::vec_t<A> vsqrt(simd::vec_t<A> s) {
  using namespace simd;
#if defined(__AVX512F__)
  if constexpr (std::is_same<A, float>::value) return reinterpret_cast<vec_t<A>>(_mm512_sqrt_ps(reinterpret_cast<__m512>(s)));
  else return reinterpret_cast<vec_t<A>>(_mm512_sqrt_pd(reinterpret_cast<__m512d>(s)));
#elif defined(__AVX__)
  if constexpr (std::is_same<A, float>::value) return reinterpret_cast<vec_t<A>>(_mm256_sqrt_ps(reinterpret_cast<__m256>(s)));
  else return reinterpret_cast<vec_t<A>>(_mm256_sqrt_pd(reinterpret_cast<__m256d>(s)));
#elif defined(__SSE2__)
  if constexpr (std::is_same<A, float>::value) return reinterpret_cast<vec_t<A>>(_mm_sqrt_ps(reinterpret_cast<__m128>(s)));
  else return reinterpret_cast<vec_t<A>>(_mm_sqrt_pd(reinterpret_cast<__m128d>(s)));
#else
  // Other CPUs: per lane (sqrt is correctly rounded, as the instructions above).
  vec_t<A> r;
  for (int l = 0; l < Vec<A>::lanes; ++l) r[l] = std::sqrt(s[l]);
  return r;
#endif
}

// Magnitudes: L2 = sqrt(a*a + b*b) (IEEE sqrt, correctly rounded), L1 = |a| + |b|.
template <typename A, bool L2>
inline void magnitude_rows(const A* a, const A* b, A* o, int64_t n) {
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  int64_t x = 0;
  for (; x + L <= n; x += L) {
    const vec_t<A> va = loadu(a + x), vb = loadu(b + x);
    vec_t<A> r;
    if constexpr (L2) {
      r = vsqrt<A>(va * va + vb * vb);
    } else {
      r = vabs<A>(va) + vabs<A>(vb);
    }
    storeu(o + x, r);
  }
  for (; x < n; ++x) {
    // The scalar tail forms the same sum as the vector body (a*a + b*b contracted alike).
    if constexpr (L2) {
      const A s = a[x] * a[x] + b[x] * b[x];
      o[x] = std::sqrt(s);
    } else {
      o[x] = std::fabs(a[x]) + std::fabs(b[x]);
    }
  }
}

// o = V0(rows0) + V1(rows1) + delta for two symmetric K-tap vertical kernels (laplacian ksize
// 5 and 7: the d2 and smoothing kernels are both symmetric), in registers: each vector's two
// folded sums (IMKERN_SYM_TAPS, as vfilter_sym forms them) and their sum, stored once. The
// same bits as two vfilter_sym rows summed by sum_rows, without the two temporary rows.
template <int K, typename A>
static void vsum_sym(const A* const* ra, const A* const* rb, A* o, int64_t n, const A* ka, const A* kb, A dl) {
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  const A* r0[K];
  const A* r1[K];
  vec_t<A> kv0[K], kv1[K];
  for (int i = 0; i < K; ++i) {
    r0[i] = ra[i];
    r1[i] = rb[i];
    kv0[i] = splat<A>(ka[i]);
    kv1[i] = splat<A>(kb[i]);
  }
  if (n < L) {
    for (int64_t x = 0; x < n; ++x)
      o[x] = (sym_taps<K>(ka, [&](int j) { return r0[j][x]; }) + sym_taps<K>(kb, [&](int j) { return r1[j][x]; })) + dl;
    return;
  }
  const vec_t<A> dv = splat<A>(dl);
  auto one = [&](int64_t x) IMKERN_ALWAYS_INLINE {
    // one kernel's folded sum over its rows r with its taps kv
    auto fold = [&](const A* const* r, const vec_t<A>* kv) IMKERN_ALWAYS_INLINE {
#define TAP(j) loadu(r[j] + x)
      IMKERN_SYM_TAPS(K, TAP)
#undef TAP
      return a + b;
    };
    return (fold(r0, kv0) + fold(r1, kv1)) + dv;
  };
  int64_t x = 0;
  for (; x + 2 * L <= n; x += 2 * L) {
    storeu(o + x, one(x));
    storeu(o + x + L, one(x + L));
  }
  for (; x + L <= n; x += L) storeu(o + x, one(x));
  if (x < n) storeu(o + n - L, one(n - L));
}

// h0 = H0(p), h1 = H1(p) for two symmetric K-tap horizontal kernels over one padded row, each
// tap vector loaded once for both (laplacian ksize 5 and 7). The same sums as hfilter_sym
// (IMKERN_SYM_TAPS; hfilter_align512_sym forms the same products in the same order), so the
// same bits as two hfilter calls.
template <int K, typename A>
static void hsum2_sym(const A* p, A* h0, A* h1, int64_t n, int64_t C, const A* ka, const A* kb) {
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  vec_t<A> kv0[K], kv1[K];
  for (int j = 0; j < K; ++j) {
    kv0[j] = splat<A>(ka[j]);
    kv1[j] = splat<A>(kb[j]);
  }
  auto two = [&](int64_t e) IMKERN_ALWAYS_INLINE {
    vec_t<A> t[K];
#pragma GCC unroll 8
    for (int j = 0; j < K; ++j) t[j] = loadu(p + e + j * C);
#define TAP(j) t[j]
    {
      const vec_t<A>* kv = kv0;
      IMKERN_SYM_TAPS(K, TAP)
      storeu(h0 + e, a + b);
    }
    {
      const vec_t<A>* kv = kv1;
      IMKERN_SYM_TAPS(K, TAP)
      storeu(h1 + e, a + b);
    }
#undef TAP
  };
  int64_t x = 0;
  for (; x + L <= n; x += L) two(x);
  if (x < n && n >= L) return two(n - L);  // the last vector ends at n
  for (; x < n; ++x) {
    h0[x] = sym_taps<K>(ka, [&](int j) { return p[x + j * C]; });
    h1[x] = sym_taps<K>(kb, [&](int j) { return p[x + j * C]; });
  }
}

// 3x3 stencils in one pass over three padded source rows (tap offsets in pixels, r0 r1 r2 the
// rows y - 1, y, y + 1). Lap3: the sum of two 3x3 separable filters whose 2-D kernel has the
// square's symmetries, K = [[a, b, a], [b, c, b], [a, b, a]] (cv2.Laplacian: ksize 1 a = 0,
// ksize 3 b = 0): o = a ((r0[0] + r0[2]) + (r2[0] + r2[2])) + b ((r0[1] + r2[1]) + (r1[0] +
// r1[2])) + c r1[1] + delta, the zero group skipped: 5 loads, 3 adds, 2 multiplies per vector
// (was two horizontal and two vertical passes and a sum through L1). The taps are formed in
// double and rounded once, as cv2 forms K * scale (integer images keep exact integer sums).
// (Sobel / Scharr 3x3 as such a stencil, 6 loads and 3 differences per vector, measured
// slower than their separable passes: 224x224x3 float32 62 vs 54 us, 1080p equal; kept separable.)
// Every element is formed by one expression (eval: the vector body, the last vector ending
// at n, the border pixels and rows under one vector alike), so strips, threads and row ends
// never change a bit.
template <typename V, typename A>
IMKERN_ALWAYS_INLINE inline V splat_as(A x) {
  if constexpr (std::is_same<V, A>::value) return x;
  else return V{} + x;
}

// (as<V>(): the taps broadcast to V once, so that the row loops hold them in registers
// instead of reloading and broadcasting them for every vector.)
template <typename A, bool Corners, bool Edges>
struct Lap3 {
  A ka, kb, kc, dl;
  template <typename V>
  IMKERN_ALWAYS_INLINE Lap3<V, Corners, Edges> as() const {
    return {splat_as<V>(ka), splat_as<V>(kb), splat_as<V>(kc), splat_as<V>(dl)};
  }
  template <typename V, typename P, typename Ld>
  IMKERN_ALWAYS_INLINE V eval(const P* p0, const P* p1, const P* p2, int64_t C, Ld&& ld) const {
    V v = splat_as<V>(kc) * ld(p1 + C);
    if constexpr (Corners) v += splat_as<V>(ka) * ((ld(p0) + ld(p0 + 2 * C)) + (ld(p2) + ld(p2 + 2 * C)));
    if constexpr (Edges) v += splat_as<V>(kb) * ((ld(p0 + C) + ld(p2 + C)) + (ld(p1) + ld(p1 + 2 * C)));
    return v + splat_as<V>(dl);
  }
};

// o[0 .. n) = one(x), a vector of L lanes at a time (n >= L): two vectors a step, the last one
// overlapping its predecessor when L does not divide n; with Stream, on the whole-line rule:
// the whole lines of stream_span by non-temporal stores, plain vectors before and after them
// (none reaching into them). The one store loop of every 3x3 row kernel here.
template <typename A, bool Stream, typename F>
IMKERN_ALWAYS_INLINE inline void store_row_vectors(A* o, int64_t n, F&& one) {
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  int64_t x = 0;
  if constexpr (Stream) {
    const StreamSpan sp = stream_span<A, L>(o, n);
    if (sp.end > sp.begin) {
      plain_vectors<A, A>(o, 0, sp.begin, one);
      for (x = sp.begin; x + 2 * L <= sp.end; x += 2 * L) {
        store_vec_stream<A, A>(o + x, one(x));
        store_vec_stream<A, A>(o + x + L, one(x + L));
      }
      if (x < sp.end) store_vec_stream<A, A>(o + x, one(x));
      plain_vectors<A, A>(o, sp.end, n, one);
      return;
    }
  }
  for (; x + 2 * L <= n; x += 2 * L) {
    storeu(o + x, one(x));
    storeu(o + x + L, one(x + L));
  }
  for (; x + L <= n; x += L) storeu(o + x, one(x));
  if (x < n) storeu(o + n - L, one(n - L));
}

template <typename A, typename K>
IMKERN_ALWAYS_INLINE inline A stencil3_one(const K& k, const A* r0, const A* r1, const A* r2, int64_t C) {
  return k.template eval<A>(r0, r1, r2, C, [](const A* p) IMKERN_ALWAYS_INLINE { return *p; });
}

// One output row of n values from the padded rows P[0..2] (tap j of element x at P[i] + x + j C).
template <typename A, int CC, bool Stream, typename K>
static void stencil3_row(const K& k, const A* const* P, A* o, int64_t n, int64_t Cr) {
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  const int64_t C = CC > 0 ? CC : Cr;  // a compile-time channel count where one is given
  const A* r0 = P[0];
  const A* r1 = P[1];
  const A* r2 = P[2];
  if (n < L) {
    for (int64_t x = 0; x < n; ++x) o[x] = stencil3_one<A>(k, r0 + x, r1 + x, r2 + x, C);
    return;
  }
  const auto kv = k.template as<vec_t<A>>();
  auto one = [&](int64_t x) IMKERN_ALWAYS_INLINE {
    return kv.template eval<vec_t<A>>(r0 + x, r1 + x, r2 + x, C,
                                      [](const A* p) IMKERN_ALWAYS_INLINE { return loadu(p); });
  };
  store_row_vectors<A, Stream>(o, n, one);
}

// The 2-D kernel of a sum of two 3x3 separable filters, when it has the square's symmetries:
// k = {a, b, c} (corner, edge, centre), each tap formed in double and rounded once to A.
template <typename A>
static bool lap3_kernel(const double* kx0, const double* ky0, const double* kx1, const double* ky1, A k[3]) {
  double K[3][3];
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) K[i][j] = ky0[i] * kx0[j] + ky1[i] * kx1[j];
  const double a = K[0][0], b = K[0][1], c = K[1][1];
  if (!(K[0][2] == a && K[2][0] == a && K[2][2] == a && K[1][0] == b && K[1][2] == b && K[2][1] == b)) return false;
  if (!std::isfinite(a) || !std::isfinite(b) || !std::isfinite(c)) return false;
  k[0] = static_cast<A>(a);
  k[1] = static_cast<A>(b);
  k[2] = static_cast<A>(c);
  return true;
}

template <typename T, typename A, typename K>
static void stencil3_impl(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const K& k,
                          Border border, A cv) {
  const int64_t H = s.h, W = s.w, C = s.c;
  const int64_t rows = s.n * H;
  // As correlate: the ring takes the L2 budget (whole rows on usual widths: source rows read
  // and output rows written in one run each).
  const StripPlan plan = plan_strips<A>(dst, s, d, 9, sizeof(A));
  const int64_t SP = plan.widest();
  const bool stream = plan.stream;
  auto row = [&](auto st, const A* const* P, A* o, int64_t n) {
    constexpr bool S = decltype(st)::value;
    if (C == 1) return stencil3_row<A, 1, S>(k, P, o, n, C);
    if (C == 3) return stencil3_row<A, 3, S>(k, P, o, n, C);
    return stencil3_row<A, 0, S>(k, P, o, n, C);
  };
  if constexpr (std::is_same<T, A>::value) {
    // Float images wide enough for one vector of interior pixels: the taps are read straight
    // from the source rows (no converted copy); the first and last pixel of each row take
    // the border rule through a 3-pixel copy, by the same expression.
    if (C <= 4 && (W - 2) * C >= simd::Vec<A>::lanes) {
      parallel_for(0, rows, filter_grain(rows, 3, get_num_threads()), [&](int64_t t0, int64_t t1) {
        SourceRows<3, T, A> src_rows(src, s, W * C, cv);
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t b = t / H, y = t % H;
          int64_t yy[3];
          for (int i = 0; i < 3; ++i) yy[i] = border_index(y - 1 + i, H, border);
          src_rows(b, yy, [&](const A* const* P) {
            A* o = row_ptr<A>(dst, d, b, y);
            if (stream) row(std::true_type{}, P, o + C, (W - 2) * C);
            else row(std::false_type{}, P, o + C, (W - 2) * C);
            for (const int64_t x : {int64_t(0), W - 1}) {
              A tp[3][12];  // pixels x - 1, x, x + 1 of the three rows (C <= 4)
              for (int j = 0; j < 3; ++j) {
                const int64_t sx = border_index(x - 1 + j, W, border);
                for (int i = 0; i < 3; ++i)
                  for (int64_t ch = 0; ch < C; ++ch) tp[i][j * C + ch] = sx < 0 ? cv : P[i][sx * C + ch];
              }
              for (int64_t ch = 0; ch < C; ++ch) o[x * C + ch] = stencil3_one<A>(k, tp[0] + ch, tp[1] + ch, tp[2] + ch, C);
            }
          });
        }
        stream_fence();
      });
      return;
    }
  }
  parallel_for(0, rows, filter_grain(rows, 3, get_num_threads()), [&](int64_t t0, int64_t t1) {
    ring_pipeline<A>(
        t0, t1, H, W, 3, 1, plan.sp, plan.first, plan.merge, (SP + 2) * C,
        [&](int64_t b, int64_t sy, int64_t x0, int64_t x1, A* slot) {
          load_source_segment<T, A>(src, s, b, sy, x0, x1, 1, 1, border, cv, slot);
        },
        [&](const A* const* P, int64_t b, int64_t y, int64_t x0, int64_t x1) {
          A* o = row_ptr<A>(dst, d, b, y) + x0 * C;
          if (stream) row(std::true_type{}, P, o, (x1 - x0) * C);
          else row(std::false_type{}, P, o, (x1 - x0) * C);
        },
        [&](int64_t b, int64_t y, int64_t x0) -> int64_t {
          if (!stream) return 0;  // streaming starts at the first aligned output element: align the ring rows with it
          const int64_t st = stream_start<A, A>(row_ptr<A>(dst, d, b, y) + x0 * C);
          return st % simd::Vec<A>::lanes == 0 ? 0 : simd::Vec<A>::lanes - st;
        });
  });
}


// Separable 3x3 derivatives (sobel / scharr / prewitt ksize 3, single mode; sep_impl<3> where
// the fused pass does not take the image): vertical pass first, straight from the source rows
// (float images read in place, integer images widened in registers: no converted, padded copy
// of each row and no ring), into one L1 row of v = ky (x) rows, then the horizontal pass from
// that row into the output (the border columns of v by the border rule, since v is per
// column). Every 3-tap derivative kernel is symmetric (a, b, a) or antisymmetric (-a, 0, a):
// Sym3 / Anti3 form them with 2 or 1 multiplies and no zero tap. Per vector: 3 source loads,
// the v store, 2-3 loads of v, one output store.
// Integer images with integer taps give exact integer sums (the same bits as before); float
// images round as (ky (x) x) (x) kx instead of ky (x) (x (x) kx), within a few ulps of it.
// Every element is formed by one expression (the vector body, the last vector ending at n and
// rows under one vector alike), so threads never change a bit.
// (as<V>(): the taps broadcast to V once, held in registers by the loops)
// The roundings are explicit: Sym3 one fused multiply-add where the ISA has one (a plain
// multiply and add otherwise), Anti3's product rounded on its own (`rounded`), so that no
// code path contracts differently (GCC's -ffp-contract=fast fused these per context: the
// vectors before the aligned start or at a row's end, and the scalar tails, rounded otherwise
// than the loop, so a float result depended on the output's alignment).
template <typename V>
IMKERN_ALWAYS_INLINE inline V rounded(V v) {
#if defined(__AVX512F__)
  asm("" : "+v"(v));  // opaque: the value is formed here, not fused into its use
#elif defined(__SSE2__)
  asm("" : "+x"(v));
#endif
  return v;
}
template <typename V>
IMKERN_ALWAYS_INLINE inline V mul_add(V a, V b, V c) {  // a * b + c
#if defined(__FMA__)
  if constexpr (std::is_floating_point<V>::value) {
    return std::fma(a, b, c);
  } else {
    using E = std::remove_cv_t<std::remove_reference_t<decltype(a[0])>>;
    if constexpr (std::is_same<E, float>::value) {
      if constexpr (sizeof(V) == 16) return reinterpret_cast<V>(_mm_fmadd_ps((__m128)a, (__m128)b, (__m128)c));
      else if constexpr (sizeof(V) == 32) return reinterpret_cast<V>(_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c));
#if defined(__AVX512F__)
      else return reinterpret_cast<V>(_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c));
#endif
    } else {
      if constexpr (sizeof(V) == 16) return reinterpret_cast<V>(_mm_fmadd_pd((__m128d)a, (__m128d)b, (__m128d)c));
      else if constexpr (sizeof(V) == 32) return reinterpret_cast<V>(_mm256_fmadd_pd((__m256d)a, (__m256d)b, (__m256d)c));
#if defined(__AVX512F__)
      else return reinterpret_cast<V>(_mm512_fmadd_pd((__m512d)a, (__m512d)b, (__m512d)c));
#endif
    }
  }
#else
  return rounded(a * b) + c;
#endif
}

template <typename A>
struct Sym3 {  // a * (t0 + t2) + b * t1
  A a, b;
  template <typename V>
  IMKERN_ALWAYS_INLINE V eval(V t0, V t1, V t2) const {
    return mul_add<V>(a, t0 + t2, b * t1);
  }
  template <typename V>
  IMKERN_ALWAYS_INLINE Sym3<V> as() const {
    return {splat_as<V>(a), splat_as<V>(b)};
  }
  static Sym3 from(const double* k) { return {static_cast<A>(k[0]), static_cast<A>(k[1])}; }
};
template <typename A>
struct Anti3 {  // a * (t2 - t0)
  A a;
  template <typename V>
  IMKERN_ALWAYS_INLINE V eval(V t0, V, V t2) const {
    return rounded<V>(a * (t2 - t0));
  }
  template <typename V>
  IMKERN_ALWAYS_INLINE Anti3<V> as() const {
    return {splat_as<V>(a)};
  }
  static Anti3 from(const double* k) { return {static_cast<A>(k[2])}; }
};

// A 3-tap kernel as Sym3 (0) or Anti3 (1), or neither (-1).
inline int tap3_form(const double* k) {
  if (k[0] == k[2] && std::isfinite(k[0]) && std::isfinite(k[1])) return 0;
  if (k[0] == -k[2] && k[1] == 0 && std::isfinite(k[0])) return 1;
  return -1;
}

// Separable 5x5 derivatives (sobel ksize 5 in single mode: every ky (x) kx whose two 5-tap
// kernels are symmetric or antisymmetric), vertical pass first (sep_impl<5>): per output row,
// v = ky (x) rows from the five source rows (float images read in place, integer images
// widened in registers), into one L1 row with its 2 C border columns by the border rule
// (v is per column), then out = kx (x) v (+ delta) from that row. Per vector: 5 source loads,
// the v store, 5 loads of v from L1, one output store (the ring path converted and padded
// each source row, filtered it along x into the ring and summed 5 ring rows: 3 stores and
// ~11 loads). Sym5 / Anti5 fold the mirrored taps first (3 or 2 multiplies, as fused
// multiply-adds where the ISA has them, the other products rounded on their own), so every
// element has the same roundings on every code path (vector body, the last overlapping
// vector, scalar rows): alignment, strips and threads never change a bit. Integer images
// with integer taps (and cv2's scales that keep them exact) give exact sums, cv2's bits;
// float images round as ky (x) x first (within a few ulps of the rows-first ring path).
template <typename A>
struct Sym5 {  // a (t0 + t4) + b (t1 + t3) + c t2
  A a, b, c;
  template <typename V>
  IMKERN_ALWAYS_INLINE V eval(V t0, V t1, V t2, V t3, V t4) const {
    return mul_add<V>(a, t0 + t4, mul_add<V>(b, t1 + t3, rounded<V>(c * t2)));
  }
  template <typename V>
  IMKERN_ALWAYS_INLINE Sym5<V> as() const {
    return {splat_as<V>(a), splat_as<V>(b), splat_as<V>(c)};
  }
  static Sym5 from(const double* k) { return {static_cast<A>(k[0]), static_cast<A>(k[1]), static_cast<A>(k[2])}; }
};
template <typename A>
struct Anti5 {  // a (t4 - t0) + b (t3 - t1)
  A a, b;
  template <typename V>
  IMKERN_ALWAYS_INLINE V eval(V t0, V t1, V, V t3, V t4) const {
    return mul_add<V>(a, t4 - t0, rounded<V>(b * (t3 - t1)));
  }
  template <typename V>
  IMKERN_ALWAYS_INLINE Anti5<V> as() const {
    return {splat_as<V>(a), splat_as<V>(b)};
  }
  static Anti5 from(const double* k) { return {static_cast<A>(k[4]), static_cast<A>(k[3])}; }
};

// A 5-tap kernel as Sym5 (0) or Anti5 (1), or neither (-1).
inline int tap5_form(const double* k) {
  for (int i = 0; i < 5; ++i)
    if (!std::isfinite(k[i])) return -1;
  if (k[0] == k[4] && k[1] == k[3]) return 0;
  if (k[0] == -k[4] && k[1] == -k[3] && k[2] == 0) return 1;
  return -1;
}

// Separable 7x7 derivatives (sobel ksize 7 in single mode) take the same vertical-first pass
// (sep_impl<7>), as do the Laplacian ksize 5 and 7 (sum_sep_impl); their 7-tap kernels, folded
// as Sym5 / Anti5 fold theirs (the products as fused multiply-adds where the ISA has them, the
// innermost product rounded on its own), so every code path rounds alike.
template <typename A>
struct Sym7 {  // a (t0 + t6) + b (t1 + t5) + c (t2 + t4) + d t3
  A a, b, c, d;
  template <typename V>
  IMKERN_ALWAYS_INLINE V eval(V t0, V t1, V t2, V t3, V t4, V t5, V t6) const {
    return mul_add<V>(a, t0 + t6, mul_add<V>(b, t1 + t5, mul_add<V>(c, t2 + t4, rounded<V>(d * t3))));
  }
  template <typename V>
  IMKERN_ALWAYS_INLINE Sym7<V> as() const {
    return {splat_as<V>(a), splat_as<V>(b), splat_as<V>(c), splat_as<V>(d)};
  }
  static Sym7 from(const double* k) {
    return {static_cast<A>(k[0]), static_cast<A>(k[1]), static_cast<A>(k[2]), static_cast<A>(k[3])};
  }
};
template <typename A>
struct Anti7 {  // a (t6 - t0) + b (t5 - t1) + c (t4 - t2)
  A a, b, c;
  template <typename V>
  IMKERN_ALWAYS_INLINE V eval(V t0, V t1, V t2, V, V t4, V t5, V t6) const {
    return mul_add<V>(a, t6 - t0, mul_add<V>(b, t5 - t1, rounded<V>(c * (t4 - t2))));
  }
  template <typename V>
  IMKERN_ALWAYS_INLINE Anti7<V> as() const {
    return {splat_as<V>(a), splat_as<V>(b), splat_as<V>(c)};
  }
  static Anti7 from(const double* k) { return {static_cast<A>(k[6]), static_cast<A>(k[5]), static_cast<A>(k[4])}; }
};

// A 7-tap kernel as Sym7 (0) or Anti7 (1), or neither (-1).
inline int tap7_form(const double* k) {
  for (int i = 0; i < 7; ++i)
    if (!std::isfinite(k[i])) return -1;
  if (k[0] == k[6] && k[1] == k[5] && k[2] == k[4]) return 0;
  if (k[0] == -k[6] && k[1] == -k[5] && k[2] == -k[4] && k[3] == 0) return 1;
  return -1;
}

// Lanes S .. S + L - 1 of the concatenation (a, b): the vector of elements S further on
// (a constant mask: valignd / vpalignr-like permutes).
template <int S, typename V, size_t... J>
IMKERN_ALWAYS_INLINE inline V lanes_from_seq(V a, V b, std::index_sequence<J...>) {
  using E = std::remove_reference_t<decltype(a[0])>;
  using I = std::conditional_t<sizeof(E) == 4, int32_t, int64_t>;
  typedef I M __attribute__((vector_size(sizeof(V))));
  return IMKERN_SHUFFLE2(a, b, M{static_cast<I>(S + static_cast<int>(J))...});
}
template <int S, typename V>
IMKERN_ALWAYS_INLINE inline V lanes_from(V a, V b) {
  return lanes_from_seq<S>(a, b, std::make_index_sequence<sizeof(V) / sizeof(a[0])>{});
}

// Fused 3x3 rows. Every 3x3 operator here is a function of per-column values of the three
// source rows (Col: the vertical pass) and of those columns at x - C, x, x + C (the horizontal
// pass): the column vector at x is computed once from three source loads, and its neighbours
// are lane shifts of it and the next one (rows of n >= 3 L elements, C < L channels), so each
// output vector takes three source loads and one store.
template <typename V>
struct Col2 {
  V u, w;
};
template <int S, typename V>
IMKERN_ALWAYS_INLINE inline Col2<V> lanes_from(const Col2<V>& a, const Col2<V>& b) {
  return {lanes_from<S>(a.u, b.u), lanes_from<S>(a.w, b.w)};
}

// Separable: col = ky (x) rows, out = kx (x) col (+ delta).
template <typename V, typename KV, typename KH>
struct SepOp {
  static constexpr int outs = 1;
  KV kv;
  KH kh;
  V dl;
  bool delta;
  IMKERN_ALWAYS_INLINE Col2<V> col(V t0, V t1, V t2) const {
    const V v = kv.template eval<V>(t0, t1, t2);
    return {v, v};
  }
  IMKERN_ALWAYS_INLINE V row(const Col2<V>& l, const Col2<V>& c, const Col2<V>& r) const {
    const V t = kh.template eval<V>(l.u, c.u, r.u);
    return delta ? t + dl : t;
  }
};

// Lap3's kernel [[a, b, a], [b, c, b], [a, b, a]]: col = (r0 + r2, r1), out = c r1[x] +
// a (col.u[x - 1] + col.u[x + 1]) + b (col.u[x] + (r1[x - 1] + r1[x + 1])) + delta (the
// corner sums paired by column instead of by row; the edge sum as Lap3's).
template <typename V, bool Corners, bool Edges>
struct LapOp {
  static constexpr int outs = 1;
  V ka, kb, kc, dl;
  IMKERN_ALWAYS_INLINE Col2<V> col(V t0, V t1, V t2) const { return {t0 + t2, t1}; }
  IMKERN_ALWAYS_INLINE V row(const Col2<V>& l, const Col2<V>& c, const Col2<V>& r) const {
    V v = kc * c.w;
    if constexpr (Corners) v += ka * (l.u + r.u);
    if constexpr (Edges) v += kb * (c.u + (l.w + r.w));
    return v + dl;
  }
};

// Both Sobel / Scharr derivatives from the same columns (gradient, gradient_magnitude): the
// smoothing kernel sm = (a, b, a) and the difference dv = (-c, 0, c) along each axis,
// col = (sm (x) rows, dv (x) rows), gx = dv (x) col.u, gy = sm (x) col.w: the expressions of
// SepOp for sobel (1, 0) and (0, 1), so each derivative has sobel's bits. pair: both stored
// (outs = 2); l1 / l2: |gx| + |gy| or sqrt(gx gx + gy gy) (magnitude_rows' expressions) stored
// once, without the two derivative rows.
enum class GradOut { pair, l1, l2 };
template <typename V>
struct Two {
  V a, b;
};
template <typename A, GradOut M>
struct GradOp {
  using V = simd::vec_t<A>;
  static constexpr int outs = M == GradOut::pair ? 2 : 1;
  Sym3<V> sm;
  Anti3<V> dv;
  IMKERN_ALWAYS_INLINE Col2<V> col(V t0, V t1, V t2) const {
    return {sm.template eval<V>(t0, t1, t2), dv.template eval<V>(t0, t1, t2)};
  }
  IMKERN_ALWAYS_INLINE auto row(const Col2<V>& l, const Col2<V>& c, const Col2<V>& r) const {
    const V gx = dv.template eval<V>(l.u, c.u, r.u);
    const V gy = sm.template eval<V>(l.w, c.w, r.w);
    if constexpr (M == GradOut::pair) return Two<V>{gx, gy};
    else if constexpr (M == GradOut::l1) return vabs<A>(gx) + vabs<A>(gy);
    else return vsqrt<A>(mul_add<V>(gx, gx, gy * gy));
  }
};

// R output rows (1 or 2: rows y and y + 1 share two of their source rows' loads) from the
// R + 2 source rows p. pads (R x 6 L): per output row, the border columns' source values (3
// rows of L lanes: lanes L - C .. L - 1 the left pixel; in the next 3 L, lanes 0 .. C - 1 the
// right one), whose columns stand for col[-C .. -1] and col[n .. n + C - 1]. The loop starts
// at the first aligned element of o[0] (the rows share their alignment; the source rows, as a
// rule, too); the vectors before it and the last two (overlapping: the same values) by direct
// loads. Every element by the same expression, whatever R. Ops with two outputs (outs = 2)
// store row r's to o[r] and o[R + r]. Streamed (Stream), the whole-line rule: the loop's
// vectors inside stream_span's lines [sb, se) of o[0] (every row and output shares its line
// phase: the caller checks) take streaming stores, the others plain ones; the span leaves a
// tail of none or at least 2 L elements, so the last two vectors' plain stores stay in it, or
// (no tail) the last vector is the last of the span's and streams. The R rows' streamed
// lines fill together, vector by vector in turn, in the one loop: a streamed loop of its own
// per section of the row (lambdas over arrays of column vectors) measured slower, its state
// spilled to the stack (4K float32 sobel 3.9 -> 4.3 ms AVX-512, 4.9 -> 6.1 AVX2).
template <typename S, typename A, int C, bool Stream, int R, typename Op>
static void fused3_rows(const S* const* p, A* const* o, int64_t n, const Op& opr, const A* const* pads) {
  using namespace simd;
  using V = vec_t<A>;
  constexpr int L = Vec<A>::lanes;
  static_assert(C < L, "channels under one vector");
  const Op op = opr;  // a local copy: its taps stay in registers across the stores
  constexpr int NO = Op::outs;
  const S* q[R + 2];
  A* out[R * NO];
  for (int r = 0; r < R + 2; ++r) q[r] = p[r];
  for (int r = 0; r < R * NO; ++r) out[r] = o[r];
  // a store, streamed where sn (a span's vector; Stream only)
  auto put1 = [&](bool sn, A* p, V v) IMKERN_ALWAYS_INLINE {
    if constexpr (Stream) {
      if (sn) return store_vec_stream<A, A>(p, v);
    }
    storeu(p, v);
  };
  auto emit = [&](bool sn, int r, int64_t e, const auto& v) IMKERN_ALWAYS_INLINE {
    if constexpr (NO == 2) {
      put1(sn, out[r] + e, v.a);
      put1(sn, out[R + r] + e, v.b);
    } else {
      put1(sn, out[r] + e, v);
    }
  };
  auto cs = [&](int r, int64_t i) IMKERN_ALWAYS_INLINE {
    return op.col(load_vec<A, S>(q[r] + i), load_vec<A, S>(q[r + 1] + i), load_vec<A, S>(q[r + 2] + i));
  };
  Col2<V> pl[R], pr[R];
  for (int r = 0; r < R; ++r) {
    const A* const* pd = pads + r * 6;
    pl[r] = op.col(loadu(pd[0]), loadu(pd[1]), loadu(pd[2]));
    pr[r] = op.col(loadu(pd[3]), loadu(pd[4]), loadu(pd[5]));
  }
  auto out_at = [&](int r, int64_t e, bool sn = false) IMKERN_ALWAYS_INLINE {  // e = 0, L, n - 2 L or n - L
    const Col2<V> c = cs(r, e);
    const Col2<V> l = e >= C ? cs(r, e - C) : lanes_from<L - C>(pl[r], c);
    const Col2<V> rt = e + L + C <= n ? cs(r, e + C) : lanes_from<C>(c, pr[r]);
    emit(sn, r, e, op.row(l, c, rt));
  };
  // the streamed lines [sb, se) (none unstreamed); the loop's vectors lie inside or outside
  uint64_t sb = 0, sl = 0;  // begin, length
  if constexpr (Stream) {
    const StreamSpan sp = stream_span<A, L>(out[0], n, 2 * L);
    sb = static_cast<uint64_t>(sp.begin);
    sl = static_cast<uint64_t>(sp.end - sp.begin);
  }
  int64_t x = stream_start<A, A>(out[0]) % L;
  if (x > 0 && x < C) x += L;  // the loop's first left vector by direct loads
  for (int r = 0; r < R; ++r) {
    if (x > 0) out_at(r, 0);
    if (x > L) out_at(r, L);
  }
  Col2<V> cur[R], left[R];
  for (int r = 0; r < R; ++r) {
    cur[r] = cs(r, x);
    left[r] = x >= C ? cs(r, x - C) : lanes_from<L - C>(pl[r], cur[r]);
  }
  for (; x + 2 * L <= n; x += L) {
#pragma GCC unroll 2
    for (int r = 0; r < R; ++r) {
      const Col2<V> nxt = cs(r, x + L);
      emit(static_cast<uint64_t>(x) - sb < sl, r, x, op.row(left[r], cur[r], lanes_from<C>(cur[r], nxt)));
      left[r] = lanes_from<L - C>(cur[r], nxt);
      cur[r] = nxt;
    }
  }
  for (int r = 0; r < R; ++r) {
    if (x < n - L) out_at(r, n - 2 * L);
    out_at(r, n - L, static_cast<uint64_t>(n - L) - sb < sl);
  }
}

// Whether fused3_impl takes an image of rows of n elements and C channels.
template <typename A>
inline bool fused3_fits(int64_t n, int64_t C) {
  constexpr int64_t L = simd::Vec<A>::lanes;
  return n >= 3 * L && (C == 1 || C == 3 || C == 4) && C < L;
}

// The whole image by fused3_rows (fused3_fits only). Rows next to a constant border read
// their three rows through SourceRows (the cval rows among them). Ops with two outputs write
// the second to dst1 (d1).
template <typename T, typename A, typename Op>
static void fused3_impl(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const Op& op,
                        Border border, A cv, void* dst1 = nullptr, const ImageDesc* d1 = nullptr) {
  using namespace simd;
  constexpr int64_t L = Vec<A>::lanes;
  constexpr int NO = Op::outs;
  const int64_t H = s.h, W = s.w, C = s.c, n = W * C;
  const int64_t rows = s.n * H;
  // As the ring filters: streaming when source and results cannot all stay in the LLC.
  const bool stream = (1 + NO) * rows * n * static_cast<int64_t>(sizeof(A)) > params().stream_bytes;
  // Two rows at a time for float images where their outputs share an alignment (integer
  // images measured slower so: their widening loads twice over).
  constexpr bool float_src = std::is_same<T, A>::value;
  // Streamed, the rows of a pair (and both outputs) share one stream_span: their rows a whole
  // number of lines apart (else single rows, each on its own span).
  const int64_t ra = stream ? 64 / static_cast<int64_t>(sizeof(A)) : L;
  const bool pairs = float_src && d.row_stride % ra == 0 && (NO == 1 || d1->row_stride % ra == 0);
  // The output rows of rows y .. y + R - 1 (image b) into o (o[R + r]: the second output's).
  auto outs_at = [&](int64_t b, int64_t y, int R, A** o) {
    for (int r = 0; r < R; ++r) {
      o[r] = row_ptr<A>(dst, d, b, y + r);
      if constexpr (NO == 2) o[R + r] = row_ptr<A>(dst1, *d1, b, y + r);
    }
  };
  auto run = [&](auto cc, auto st, auto rr, const auto* const* p, A* const* o, const A* const* pads) {
    using S = std::remove_cv_t<std::remove_pointer_t<std::remove_cv_t<std::remove_pointer_t<decltype(p)>>>>;
    constexpr int CC = decltype(cc)::value;
    constexpr int RR = decltype(rr)::value;
    if constexpr (CC < L && (RR == 1 || float_src)) fused3_rows<S, A, CC, decltype(st)::value, RR>(p, o, n, op, pads);
  };
  auto rows_of = [&](auto rr, const auto* const* p, A* const* o, const A* const* pads) {
    using I4 = std::integral_constant<int, 4>;
    using I3 = std::integral_constant<int, 3>;
    using I1 = std::integral_constant<int, 1>;
    bool st = stream;
    if constexpr (NO == 2) {
      // two outputs stream only when they share their line phase (the span is the first's)
      st = st && reinterpret_cast<uintptr_t>(o[0]) % 64 == reinterpret_cast<uintptr_t>(o[decltype(rr)::value]) % 64;
    }
    if (st) {
      if (C == 4) return run(I4{}, std::true_type{}, rr, p, o, pads);
      if (C == 3) return run(I3{}, std::true_type{}, rr, p, o, pads);
      return run(I1{}, std::true_type{}, rr, p, o, pads);
    }
    if (C == 4) return run(I4{}, std::false_type{}, rr, p, o, pads);
    if (C == 3) return run(I3{}, std::false_type{}, rr, p, o, pads);
    return run(I1{}, std::false_type{}, rr, p, o, pads);
  };
  // Border columns: every source row's left and right border pixel, each as the vector whose
  // lanes fused3_rows reads (L - C .. L - 1 on the left, 0 .. C - 1 on the right; the other
  // lanes 0), built for a block of kBlock output rows before the block's rows run, and a vector
  // of cv for a constant border. Built per row just before its use (scalar stores, then the
  // vector loads that read them), they cost narrow rows a third of their time (one thread,
  // float32 sobel 896x56: 32-35 -> 24.5-27 us; at 224 wide the same within the noise).
  constexpr int64_t kBlock = 32;
  const int64_t sxl = border_index(-1, W, border), sxr = border_index(W, W, border);
  parallel_for(0, rows, filter_grain(rows, 3, get_num_threads()), [&](int64_t t0, int64_t t1) {
    // slots: kBlock + 2 rows of the block, 3 for each of a pair's rows outside it (a wrapped
    // border's far rows), and the cv vector; 2 vectors each
    constexpr int64_t kSlots = kBlock + 2 + 6 + 1;
    A* cols = thread_scratch<A>(3, static_cast<size_t>(kSlots * 2 * L));
    std::fill(cols, cols + kSlots * 2 * L, A(0));
    A* const cvv = cols + (kSlots - 1) * 2 * L;
    std::fill(cvv, cvv + 2 * L, cv);
    // the two vectors of source row yy of image b at slot
    auto build = [&](int64_t b, int64_t yy, int64_t slot) {
      A* v = cols + slot * 2 * L;
      const T* r = row_ptr<T>(src, s, b, yy);
      for (int64_t ch = 0; ch < C; ++ch) {
        v[L - C + ch] = sxl < 0 ? cv : static_cast<A>(r[sxl * C + ch]);
        v[L + ch] = sxr < 0 ? cv : static_cast<A>(r[sxr * C + ch]);
      }
    };
    int64_t blo = 0, bhi = 0;  // the block's source rows (global: b H + yy) at slots g - blo
    SourceRows<3, T, A> src_rows(src, s, n, cv);
    // The source rows of output row y (image b) and its border vectors' pointers in pd (3 left,
    // 3 right); whether a row lies outside (constant border).
    auto prep = [&](int64_t b, int64_t y, int64_t* yy, const A** pd, int k) {
      bool outside = false;
      for (int i = 0; i < 3; ++i) {
        yy[i] = border_index(y - 1 + i, H, border);
        outside = outside || yy[i] < 0;
        const A* v = cvv;
        if (yy[i] >= 0) {
          const int64_t g = b * H + yy[i];
          if (g >= blo && g < bhi) {
            v = cols + (g - blo) * 2 * L;
          } else {
            build(b, yy[i], kBlock + 2 + 3 * k + i);
            v = cols + (kBlock + 2 + 3 * k + i) * 2 * L;
          }
        }
        pd[i] = v;
        pd[3 + i] = v + L;
      }
      return outside;
    };
    const A* pads[12];
    for (int64_t t = t0; t < t1;) {
      if (t + 2 >= bhi && bhi < rows) {
        // a new block: the source rows t - 1 .. t + kBlock (each within its image)
        blo = std::max<int64_t>(t - 1, 0);
        bhi = std::min<int64_t>(t + kBlock + 1, rows);
        for (int64_t g = blo; g < bhi; ++g) build(g / H, g % H, g - blo);
      }
      const int64_t b = t / H, y = t % H;
      int64_t yy[3];
      const bool outside = prep(b, y, yy, pads, 0);
      A* o[4];  // R x outs output rows
      if (!outside && pairs && t + 1 < t1 && y + 1 < H) {
        int64_t yn[3];
        if (!prep(b, y + 1, yn, pads + 6, 1)) {
          const T* P[4] = {row_ptr<T>(src, s, b, yy[0]), row_ptr<T>(src, s, b, yy[1]), row_ptr<T>(src, s, b, yy[2]),
                           row_ptr<T>(src, s, b, yn[2])};
          outs_at(b, y, 2, o);
          rows_of(std::integral_constant<int, 2>{}, P, o, pads);
          t += 2;
          continue;
        }
      }
      t += 1;
      outs_at(b, y, 1, o);
      src_rows(b, yy, [&](auto P) { rows_of(std::integral_constant<int, 1>{}, P, o, pads); });
    }
    stream_fence();
  });
}

// The vertical-first passes of the separable 3x3 and 5x5 derivatives (N = 3 or 5 taps, h = N / 2;
// K: Sym3 / Anti3 or Sym5 / Anti5, eval taking the N taps in order).

// v[0 .. n) = k(p[0] .. p[N - 1]) (p: source rows of S, converted to A exactly).
template <typename S, typename A, typename K, size_t... I>
static void sep_vpass_seq(const S* const* pr, A* v, int64_t n, const K& k, std::index_sequence<I...>) {
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  const S* const p[] = {pr[I]...};
  if (n < L) {
    for (int64_t x = 0; x < n; ++x) v[x] = k.template eval<A>(static_cast<A>(p[I][x])...);
    return;
  }
  const auto kv = k.template as<vec_t<A>>();
  auto one = [&](int64_t x) IMKERN_ALWAYS_INLINE { return kv.template eval<vec_t<A>>(load_vec<A, S>(p[I] + x)...); };
  store_row_vectors<A, false>(v, n, one);
}
template <int N, typename S, typename A, typename K>
static void sep_vpass(const S* const* p, A* v, int64_t n, const K& k) {
  sep_vpass_seq<S, A>(p, v, n, k, std::make_index_sequence<N>{});
}

// Two rows of v at once (output rows y and y + 1: the N + 1 source rows p[0 .. N], each loaded
// once for both), by the same expression as sep_vpass.
template <typename S, typename A, typename K, size_t... I>
static void sep_vpass2_seq(const S* const* p, A* va, A* vb, int64_t n, const K& k, std::index_sequence<I...>) {
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  constexpr int N = sizeof...(I);
  if (n < L) {
    sep_vpass<N, S, A>(p, va, n, k);
    sep_vpass<N, S, A>(p + 1, vb, n, k);
    return;
  }
  const auto kv = k.template as<vec_t<A>>();
  const S* const q[] = {p[I]..., p[N]};
  auto two = [&](int64_t x) IMKERN_ALWAYS_INLINE {
    const vec_t<A> t[] = {load_vec<A, S>(q[I] + x)..., load_vec<A, S>(q[N] + x)};
    storeu(va + x, kv.template eval<vec_t<A>>(t[I]...));
    storeu(vb + x, kv.template eval<vec_t<A>>(t[I + 1]...));
  };
  int64_t x = 0;
  for (; x + L <= n; x += L) two(x);
  if (x < n) two(n - L);
}

// o[0 .. n) = k(v[x - h C] .. v[x + h C]) (+ dl when Delta).
template <typename A, int CC, bool Stream, bool Delta, typename K, size_t... I>
static void sep_hpass_seq(const A* v, A* o, int64_t n, int64_t Cr, const K& k, A dl, std::index_sequence<I...>) {
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  constexpr int64_t h = sizeof...(I) / 2;
  const int64_t C = CC > 0 ? CC : Cr;
  if (n < L) {
    for (int64_t x = 0; x < n; ++x) {
      const A r = k.template eval<A>(v[x + (static_cast<int64_t>(I) - h) * C]...);
      o[x] = Delta ? r + dl : r;
    }
    return;
  }
  const auto kv = k.template as<vec_t<A>>();
  const vec_t<A> dv = splat<A>(dl);
  auto one = [&](int64_t x) IMKERN_ALWAYS_INLINE {
    const vec_t<A> r = kv.template eval<vec_t<A>>(loadu(v + x + (static_cast<int64_t>(I) - h) * C)...);
    if constexpr (Delta) return r + dv;
    else return r;
  };
  store_row_vectors<A, Stream>(o, n, one);
}
template <int N, typename A, int CC, bool Stream, bool Delta, typename K>
static void sep_hpass(const A* v, A* o, int64_t n, int64_t Cr, const K& k, A dl) {
  sep_hpass_seq<A, CC, Stream, Delta>(v, o, n, Cr, k, dl, std::make_index_sequence<N>{});
}

// The vector of elements J C further on than cur (|J| C <= L), from it and its neighbours.
template <int J, int C, typename V>
IMKERN_ALWAYS_INLINE inline V lanes_at(V prev, V cur, V nxt) {
  constexpr int L = sizeof(V) / sizeof(cur[0]);
  if constexpr (J < 0) return lanes_from<L + J * C>(prev, cur);
  else if constexpr (J == 0) return cur;
  else return lanes_from<J * C>(cur, nxt);
}

// The lane-shift loops' streamed stretch of a row of n at o whose aligned loop starts at x0
// (< L; the vector before it plain): common/stream.hpp's whole lines, the vectors before and
// after them plain, the tail's last vector (ending at n, overlapping) too; it stays out of
// the streamed lines because a tail after them is empty or at least one vector. Nothing
// streams (an empty stretch at x0) unless Stream and a whole line. Streaming every aligned
// vector instead put plain and streaming stores on one line at each row end (AVX2: the
// head's lines; every ISA: the overlapping last vector).
template <typename A, bool Stream>
IMKERN_ALWAYS_INLINE inline StreamSpan hpass_span(const A* o, int64_t n, int64_t x0) {
  if constexpr (Stream) {
    const StreamSpan sp = stream_span<A, simd::Vec<A>::lanes>(o, n);
    if (sp.end > sp.begin) return sp;  // begin >= x0: a line boundary on the loop's grid
  }
  return {x0, x0};
}

// sep_hpass for C channels with h C <= L, where v + x is aligned exactly where o + x is (the
// caller shifts v by o's phase): from o's first aligned element on, one aligned load of v per
// vector, its neighbours at x -+ C .. x -+ h C by lane shifts of it and the vectors before and
// after; the vector before the loop and the last one (overlapping) by direct loads; streamed
// stores only on hpass_span's whole lines. The same expression on the same values as
// sep_hpass, so the same bits.
template <typename A, int C, bool Stream, bool Delta, typename K, size_t... I>
static void sep_hpass_lanes_seq(const A* v, A* o, int64_t n, const K& k, A dl, std::index_sequence<I...>) {
  using namespace simd;
  using V = vec_t<A>;
  constexpr int L = Vec<A>::lanes;
  constexpr int N = sizeof...(I), h = N / 2;
  static_assert(h * C <= L, "h pixels under one vector");
  if (n < 2 * L) return sep_hpass<N, A, C, Stream, Delta>(v, o, n, C, k, dl);
  const auto kv = k.template as<V>();
  const V dv = splat<A>(dl);
  auto fin = [&](V r) IMKERN_ALWAYS_INLINE {
    if constexpr (Delta) return r + dv;
    else return r;
  };
  auto direct = [&](int64_t x) IMKERN_ALWAYS_INLINE {
    return fin(kv.template eval<V>(loadu(v + x + (static_cast<int64_t>(I) - h) * C)...));
  };
  int64_t x = stream_start<A, A>(o) % L;
  if (x) storeu(o, direct(0));
  V prev = loadu(v + x - L), cur = loadu(v + x);
  auto run = [&](auto st, int64_t end) IMKERN_ALWAYS_INLINE {
    for (; x + L <= end; x += L) {
      const V nxt = loadu(v + x + L);
      put<A, A, decltype(st)::value>(o + x, fin(kv.template eval<V>(lanes_at<static_cast<int>(I) - h, C>(prev, cur, nxt)...)));
      prev = cur;
      cur = nxt;
    }
  };
  const StreamSpan sp = hpass_span<A, Stream>(o, n, x);
  run(std::false_type{}, sp.begin);
  if constexpr (Stream) run(std::true_type{}, sp.end);
  run(std::false_type{}, n);
  if (x < n) storeu(o + n - L, direct(n - L));
}
template <int N, typename A, int C, bool Stream, bool Delta, typename K>
static void sep_hpass_lanes(const A* v, A* o, int64_t n, const K& k, A dl) {
  sep_hpass_lanes_seq<A, C, Stream, Delta>(v, o, n, k, dl, std::make_index_sequence<N>{});
}

// The Laplacian ksize 5 / 7 (sum mode: out = kx0 (x) (ky0 (x) rows) + kx1 (x) (ky1 (x) rows) +
// delta, four symmetric kernels), vertical pass first as sep_impl: both columns' values from one
// load of each source vector into two L1 rows (sum_vpass), then both horizontal kernels and
// their sum in registers (sum_hpass, by lane shifts of one aligned load of each row per vector
// for 1 / 3 / 4 channels where h pixels fit a vector), one store. Per vector: N source loads,
// 2 stores and 2 loads of L1 rows, one output store (the ring path converted and padded each
// source row, filtered it along x by both kernels into the ring and summed 2 N ring rows).
// Integer images with integer taps give exact sums (cv2's bits); float images round as
// columns first (within a few ulps of the rows-first ring path). Every element by one
// expression, so alignment, threads and row ends never change a bit.
template <typename S, typename A, typename K, size_t... I>
static void sum_vpass_seq(const S* const* pr, A* v0, A* v1, int64_t n, const K& k0, const K& k1,
                          std::index_sequence<I...>) {
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  const S* const p[] = {pr[I]...};
  if (n < L) {
    for (int64_t x = 0; x < n; ++x) {
      v0[x] = k0.template eval<A>(static_cast<A>(p[I][x])...);
      v1[x] = k1.template eval<A>(static_cast<A>(p[I][x])...);
    }
    return;
  }
  const auto kv0 = k0.template as<vec_t<A>>();
  const auto kv1 = k1.template as<vec_t<A>>();
  auto two = [&](int64_t x) IMKERN_ALWAYS_INLINE {
    const vec_t<A> t[] = {load_vec<A, S>(p[I] + x)...};
    storeu(v0 + x, kv0.template eval<vec_t<A>>(t[I]...));
    storeu(v1 + x, kv1.template eval<vec_t<A>>(t[I]...));
  };
  int64_t x = 0;
  for (; x + L <= n; x += L) two(x);
  if (x < n) two(n - L);
}

// Two output rows' columns at once (rows y and y + 1: the N + 1 source rows p[0 .. N], each
// vector loaded once for both) into v[0], v[1] (row y) and v[2], v[3] (row y + 1), by the same
// expressions as sum_vpass_seq.
template <typename S, typename A, typename K, size_t... I>
static void sum_vpass2_seq(const S* const* p, A* const* v, int64_t n, const K& k0, const K& k1,
                           std::index_sequence<I...> seq) {
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  constexpr int N = sizeof...(I);
  if (n < L) {
    sum_vpass_seq<S, A>(p, v[0], v[1], n, k0, k1, seq);
    sum_vpass_seq<S, A>(p + 1, v[2], v[3], n, k0, k1, seq);
    return;
  }
  const auto kv0 = k0.template as<vec_t<A>>();
  const auto kv1 = k1.template as<vec_t<A>>();
  const S* const q[] = {p[I]..., p[N]};
  A* const w[] = {v[0], v[1], v[2], v[3]};
  auto two = [&](int64_t x) IMKERN_ALWAYS_INLINE {
    const vec_t<A> t[] = {load_vec<A, S>(q[I] + x)..., load_vec<A, S>(q[N] + x)};
    storeu(w[0] + x, kv0.template eval<vec_t<A>>(t[I]...));
    storeu(w[1] + x, kv1.template eval<vec_t<A>>(t[I]...));
    storeu(w[2] + x, kv0.template eval<vec_t<A>>(t[I + 1]...));
    storeu(w[3] + x, kv1.template eval<vec_t<A>>(t[I + 1]...));
  };
  int64_t x = 0;
  for (; x + L <= n; x += L) two(x);
  if (x < n) two(n - L);
}

// o[0 .. n) = (k0(v0[x - h C] .. v0[x + h C]) + k1(v1[..])) + dl, by direct loads.
template <typename A, int CC, bool Stream, typename K, size_t... I>
static void sum_hpass_seq(const A* v0, const A* v1, A* o, int64_t n, int64_t Cr, const K& k0, const K& k1, A dl,
                          std::index_sequence<I...>) {
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  constexpr int64_t h = sizeof...(I) / 2;
  const int64_t C = CC > 0 ? CC : Cr;
  if (n < L) {
    for (int64_t x = 0; x < n; ++x)
      o[x] = (k0.template eval<A>(v0[x + (static_cast<int64_t>(I) - h) * C]...) +
              k1.template eval<A>(v1[x + (static_cast<int64_t>(I) - h) * C]...)) +
             dl;
    return;
  }
  const auto kv0 = k0.template as<vec_t<A>>();
  const auto kv1 = k1.template as<vec_t<A>>();
  const vec_t<A> dv = splat<A>(dl);
  auto one = [&](int64_t x) IMKERN_ALWAYS_INLINE {
    return (kv0.template eval<vec_t<A>>(loadu(v0 + x + (static_cast<int64_t>(I) - h) * C)...) +
            kv1.template eval<vec_t<A>>(loadu(v1 + x + (static_cast<int64_t>(I) - h) * C)...)) +
           dv;
  };
  store_row_vectors<A, Stream>(o, n, one);
}

// sum_hpass_seq for C channels with h C <= L, v0 + x and v1 + x aligned where o + x is (as
// sep_hpass_lanes: one aligned load of each row per vector, the neighbours by lane shifts; the
// vector before the loop and the last one by direct loads; the same expression on the same
// values, so the same bits).
template <typename A, int C, bool Stream, typename K, size_t... I>
static void sum_hpass_lanes_seq(const A* v0, const A* v1, A* o, int64_t n, const K& k0, const K& k1, A dl,
                                std::index_sequence<I...> seq) {
  using namespace simd;
  using V = vec_t<A>;
  constexpr int L = Vec<A>::lanes;
  constexpr int N = sizeof...(I), h = N / 2;
  static_assert(h * C <= L, "h pixels under one vector");
  if (n < 2 * L) return sum_hpass_seq<A, C, Stream>(v0, v1, o, n, C, k0, k1, dl, seq);
  const auto kv0 = k0.template as<V>();
  const auto kv1 = k1.template as<V>();
  const V dv = splat<A>(dl);
  auto direct = [&](int64_t x) IMKERN_ALWAYS_INLINE {
    return (kv0.template eval<V>(loadu(v0 + x + (static_cast<int64_t>(I) - h) * C)...) +
            kv1.template eval<V>(loadu(v1 + x + (static_cast<int64_t>(I) - h) * C)...)) +
           dv;
  };
  int64_t x = stream_start<A, A>(o) % L;
  if (x) storeu(o, direct(0));
  V p0 = loadu(v0 + x - L), c0 = loadu(v0 + x), p1 = loadu(v1 + x - L), c1 = loadu(v1 + x);
  auto run = [&](auto st, int64_t end) IMKERN_ALWAYS_INLINE {
    for (; x + L <= end; x += L) {
      const V n0 = loadu(v0 + x + L), n1 = loadu(v1 + x + L);
      put<A, A, decltype(st)::value>(o + x, (kv0.template eval<V>(lanes_at<static_cast<int>(I) - h, C>(p0, c0, n0)...) +
                                             kv1.template eval<V>(lanes_at<static_cast<int>(I) - h, C>(p1, c1, n1)...)) +
                                                dv);
      p0 = c0;
      c0 = n0;
      p1 = c1;
      c1 = n1;
    }
  };
  const StreamSpan sp = hpass_span<A, Stream>(o, n, x);
  run(std::false_type{}, sp.begin);
  if constexpr (Stream) run(std::true_type{}, sp.end);
  run(std::false_type{}, n);
  if (x < n) storeu(o + n - L, direct(n - L));
}

// k(x, .., x): v of a column outside the image (constant border).
template <typename A, typename K, size_t... I>
IMKERN_ALWAYS_INLINE inline A eval_same(const K& k, A x, std::index_sequence<I...>) {
  return k.template eval<A>((static_cast<void>(I), x)...);
}

// The separable N x N derivative (sobel / scharr / prewitt ksize 3 on images fused3_fits does
// not take, sobel ksize 5), vertical pass first: per output row, v = ky (x) rows from the N
// source rows (float images read in place, integer images widened in registers) into one L1
// row with its h C border columns by the border rule (v is per column), then out = kx (x) v
// (+ delta) from that row; two output rows from N + 1 source rows where both rows' source rows
// lie inside the image (a constant border's rows one at a time, through SourceRows), the
// horizontal pass by lane shifts for 1 / 3 / 4 channels where h pixels fit a vector.
// Row pairs and lane shifts (Wide) for 5 taps only: with 3 taps, one row at a time by direct
// loads as before measured faster (1 thread, AVX-512: scharr dy 1080x960x2 float32 +27% with
// row pairs; 2000x40 float32 +13%, 4000x13x3 +20% with lane shifts and v aligned with o).
template <int N, typename T, typename A, typename KV, typename KH>
static void sep_impl(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const KV& kv, const KH& kh,
                     A dl, Border border, A cv) {
  using namespace simd;
  constexpr int64_t L = Vec<A>::lanes;
  constexpr int h = N / 2;
  constexpr bool Wide = N >= 5;
  const int64_t H = s.h, W = s.w, C = s.c, n = W * C;
  const int64_t rows = s.n * H;
  const int64_t off = (h * C + L - 1) / L * L;  // v's first column: aligned, with room for the left pad
  // a v row: the pads, the output's phase (< L), n values and the lane loop's reads past them
  const int64_t vlen = (off + n + 3 * L + h * C + L - 1) / L * L;
  // As the ring filters: streaming when source and result cannot both stay in the LLC.
  const bool stream = 2 * rows * n * static_cast<int64_t>(sizeof(A)) > params().stream_bytes;
  auto hpass = [&](auto st, auto de, const A* v, A* o) {
    constexpr bool St = decltype(st)::value, D = decltype(de)::value;
    if constexpr (Wide && h * 4 <= L) {
      if (C == 4) return sep_hpass_lanes<N, A, 4, St, D>(v, o, n, kh, dl);
    }
    if constexpr (Wide && h * 3 <= L) {
      if (C == 3) return sep_hpass_lanes<N, A, 3, St, D>(v, o, n, kh, dl);
    }
    if constexpr (Wide && h <= L) {
      if (C == 1) return sep_hpass_lanes<N, A, 1, St, D>(v, o, n, kh, dl);
    } else {
      if (C == 1) return sep_hpass<N, A, 1, St, D>(v, o, n, C, kh, dl);
    }
    if (C == 3) return sep_hpass<N, A, 3, St, D>(v, o, n, C, kh, dl);
    return sep_hpass<N, A, 0, St, D>(v, o, n, C, kh, dl);
  };
  auto hrow = [&](const A* v, A* o) {
    if (stream) {
      if (dl != 0) hpass(std::true_type{}, std::true_type{}, v, o);
      else hpass(std::true_type{}, std::false_type{}, v, o);
    } else {
      if (dl != 0) hpass(std::false_type{}, std::true_type{}, v, o);
      else hpass(std::false_type{}, std::false_type{}, v, o);
    }
  };
  parallel_for(0, rows, filter_grain(rows, N, get_num_threads()), [&](int64_t t0, int64_t t1) {
    A* vrows = thread_scratch<A>(1, static_cast<size_t>(2 * vlen));
    SourceRows<N, T, A> src_rows(src, s, n, cv);
    const A vcv = eval_same(kv, cv, std::make_index_sequence<N>{});  // v of a column outside the image
    // v of output row y in buffer i: shifted so that v + x is aligned where o + x is (Wide)
    auto v_for = [&](int i, const A* o) {
      return vrows + i * vlen + off + (Wide ? (L - stream_start<A, A>(o) % L) % L : 0);
    };
    // the border columns of v: v is per column, so a border pixel's v is its source column's
    auto pad = [&](A* v) { pad_columns<A>(v, W, C, h, border, vcv); };
    for (int64_t t = t0; t < t1;) {
      const int64_t b = t / H, y = t % H;
      int64_t yy[N + 1];
      bool outside = false;
      for (int i = 0; i < N + Wide; ++i) {
        yy[i] = i < N || y + 1 < H ? border_index(y - h + i, H, border) : 0;
        outside = outside || (i < N && yy[i] < 0);
      }
      A* o = row_ptr<A>(dst, d, b, y);
      A* v = v_for(0, o);
      if (Wide && !outside && t + 1 < t1 && y + 1 < H && yy[N] >= 0) {
        // two output rows from N + 1 source rows
        A* o1 = row_ptr<A>(dst, d, b, y + 1);
        A* v1 = v_for(1, o1);
        const T* P[N + 1];
        for (int i = 0; i <= N; ++i) P[i] = row_ptr<T>(src, s, b, yy[i]);
        sep_vpass2_seq<T, A>(P, v, v1, n, kv, std::make_index_sequence<N>{});
        pad(v);
        pad(v1);
        hrow(v, o);
        hrow(v1, o1);
        t += 2;
        continue;
      }
      t += 1;
      src_rows(b, yy, [&](auto P) { sep_vpass<N>(P, v, n, kv); });
      pad(v);
      hrow(v, o);
    }
    stream_fence();
  });
}

// The Laplacian ksize 5 / 7 by sum_vpass / sum_hpass (see there): v0 = ky0 (x) rows and
// v1 = ky1 (x) rows into two L1 rows with their h C border columns by the border rule (per
// column), then (kx0 (x) v0 + kx1 (x) v1) + delta; two output rows from N + 1 source rows where
// both rows' source rows lie inside the image (sum_vpass2_seq: 1 thread AVX-512, 1080p, 5-15%
// faster than one row at a time), the others one at a time. Rows next to a constant border
// read their N rows through SourceRows (the cval rows among them).
template <int N, typename T, typename A, typename K>
static void sum_sep_impl(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const K& ky0,
                         const K& kx0, const K& ky1, const K& kx1, A dl, Border border, A cv) {
  using namespace simd;
  constexpr int64_t L = Vec<A>::lanes;
  constexpr int h = N / 2;
  const int64_t H = s.h, W = s.w, C = s.c, n = W * C;
  const int64_t rows = s.n * H;
  const int64_t off = (h * C + L - 1) / L * L;
  const int64_t vlen = (off + n + 3 * L + h * C + L - 1) / L * L;
  const bool stream = 2 * rows * n * static_cast<int64_t>(sizeof(A)) > params().stream_bytes;
  auto hpass = [&](auto st, const A* v0, const A* v1, A* o) {
    constexpr bool St = decltype(st)::value;
    if constexpr (h * 4 <= L) {
      if (C == 4) return sum_hpass_lanes_seq<A, 4, St>(v0, v1, o, n, kx0, kx1, dl, std::make_index_sequence<N>{});
    }
    if constexpr (h * 3 <= L) {
      if (C == 3) return sum_hpass_lanes_seq<A, 3, St>(v0, v1, o, n, kx0, kx1, dl, std::make_index_sequence<N>{});
    }
    if constexpr (h <= L) {
      if (C == 1) return sum_hpass_lanes_seq<A, 1, St>(v0, v1, o, n, kx0, kx1, dl, std::make_index_sequence<N>{});
    }
    if (C == 3) return sum_hpass_seq<A, 3, St>(v0, v1, o, n, C, kx0, kx1, dl, std::make_index_sequence<N>{});
    return sum_hpass_seq<A, 0, St>(v0, v1, o, n, C, kx0, kx1, dl, std::make_index_sequence<N>{});
  };
  parallel_for(0, rows, filter_grain(rows, N, get_num_threads()), [&](int64_t t0, int64_t t1) {
    A* vrows = thread_scratch<A>(1, static_cast<size_t>(4 * vlen));
    SourceRows<N, T, A> src_rows(src, s, n, cv);
    // v row i of an output row o: shifted so that v + x is aligned where o + x is
    auto v_for = [&](int i, const A* o) { return vrows + i * vlen + off + (L - stream_start<A, A>(o) % L) % L; };
    const A vcv0 = eval_same(ky0, cv, std::make_index_sequence<N>{});
    const A vcv1 = eval_same(ky1, cv, std::make_index_sequence<N>{});
    auto pad = [&](A* v, A vcv) { pad_columns<A>(v, W, C, h, border, vcv); };
    for (int64_t t = t0; t < t1;) {
      const int64_t b = t / H, y = t % H;
      int64_t yy[N + 1];
      bool outside = false;
      for (int i = 0; i <= N; ++i) {
        yy[i] = i < N || y + 1 < H ? border_index(y - h + i, H, border) : 0;
        outside = outside || (i < N && yy[i] < 0);
      }
      A* o = row_ptr<A>(dst, d, b, y);
      A* v0 = v_for(0, o);
      A* v1 = v_for(1, o);
      if (!outside && t + 1 < t1 && y + 1 < H && yy[N] >= 0) {
        // two output rows from N + 1 source rows
        A* o1 = row_ptr<A>(dst, d, b, y + 1);
        A* const v[] = {v0, v1, v_for(2, o1), v_for(3, o1)};
        const T* P[N + 1];
        for (int i = 0; i <= N; ++i) P[i] = row_ptr<T>(src, s, b, yy[i]);
        sum_vpass2_seq<T, A>(P, v, n, ky0, ky1, std::make_index_sequence<N>{});
        for (int r = 0; r < 2; ++r) {
          pad(v[2 * r], vcv0);
          pad(v[2 * r + 1], vcv1);
          if (stream) hpass(std::true_type{}, v[2 * r], v[2 * r + 1], r ? o1 : o);
          else hpass(std::false_type{}, v[2 * r], v[2 * r + 1], r ? o1 : o);
        }
        t += 2;
        continue;
      }
      t += 1;
      src_rows(b, yy, [&](auto P) { sum_vpass_seq(P, v0, v1, n, ky0, ky1, std::make_index_sequence<N>{}); });
      pad(v0, vcv0);
      pad(v1, vcv1);
      if (stream) hpass(std::true_type{}, v0, v1, o);
      else hpass(std::false_type{}, v0, v1, o);
    }
    stream_fence();
  });
}

// The Laplacian ksize 5 / 7 by sum_sep_impl; false when a kernel is not symmetric.
template <int N, typename T, typename A>
static bool deriv_sum_sep(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const double* kx0,
                          const double* ky0, const double* kx1, const double* ky1, double delta, Border border,
                          double cval) {
  static_assert(N == 5 || N == 7, "5 or 7 taps");
  auto form = [](const double* k) { return N == 5 ? tap5_form(k) : tap7_form(k); };
  if (form(kx0) != 0 || form(ky0) != 0 || form(kx1) != 0 || form(ky1) != 0) return false;
  using Sym = std::conditional_t<N == 5, Sym5<A>, Sym7<A>>;
  sum_sep_impl<N, T, A>(src, s, dst, d, Sym::from(ky0), Sym::from(kx0), Sym::from(ky1), Sym::from(kx1),
                        static_cast<A>(delta), border, static_cast<A>(cval));
  return true;
}

// The fused 3x3 stencil of deriv_filter (see above); false when the kernels have none.
template <typename T, typename A>
static bool deriv_3x3(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const double* kx0,
                      const double* ky0, const double* kx1, const double* ky1, DerivMode mode, double delta,
                      Border border, double cval) {
  const A dl = static_cast<A>(delta), cv = static_cast<A>(cval);
  if (mode == DerivMode::sum) {
    A k3[3];
    if (!lap3_kernel<A>(kx0, ky0, kx1, ky1, k3)) return false;
    const A ka = k3[0], kb = k3[1], kc = k3[2];
    if (fused3_fits<A>(s.w * s.c, s.c)) {
      using V = simd::vec_t<A>;
      auto sp = [](A v) { return simd::splat<A>(v); };
      if (ka != 0 && kb != 0) fused3_impl<T, A>(src, s, dst, d, LapOp<V, true, true>{sp(ka), sp(kb), sp(kc), sp(dl)}, border, cv);
      else if (ka != 0) fused3_impl<T, A>(src, s, dst, d, LapOp<V, true, false>{sp(ka), sp(kb), sp(kc), sp(dl)}, border, cv);
      else fused3_impl<T, A>(src, s, dst, d, LapOp<V, false, true>{sp(ka), sp(kb), sp(kc), sp(dl)}, border, cv);
      return true;
    }
    if (ka != 0 && kb != 0) stencil3_impl<T, A>(src, s, dst, d, Lap3<A, true, true>{ka, kb, kc, dl}, border, cv);
    else if (ka != 0) stencil3_impl<T, A>(src, s, dst, d, Lap3<A, true, false>{ka, kb, kc, dl}, border, cv);
    else stencil3_impl<T, A>(src, s, dst, d, Lap3<A, false, true>{ka, kb, kc, dl}, border, cv);
    return true;
  }
  return false;
}

// The separable N x N pass of deriv_filter (single mode: sobel / scharr / prewitt ksize 3 by
// the fused pass where fused3_fits takes the image, by sep_impl<3> otherwise; sobel ksize 5 by
// sep_impl<5>); false when a kernel is neither symmetric nor antisymmetric.
template <int N, typename T, typename A>
static bool deriv_sep(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const double* kx,
                      const double* ky, double delta, Border border, double cval) {
  static_assert(N == 3 || N == 5 || N == 7, "3, 5 or 7 taps");
  auto form = [](const double* k) { return N == 3 ? tap3_form(k) : N == 5 ? tap5_form(k) : tap7_form(k); };
  const int fx = form(kx), fy = form(ky);
  if (fx < 0 || fy < 0) return false;
  const A dl = static_cast<A>(delta), cv = static_cast<A>(cval);
  using Sym = std::conditional_t<N == 3, Sym3<A>, std::conditional_t<N == 5, Sym5<A>, Sym7<A>>>;
  using Anti = std::conditional_t<N == 3, Anti3<A>, std::conditional_t<N == 5, Anti5<A>, Anti7<A>>>;
  auto run = [&](const auto& kvert, const auto& khor) {
    if constexpr (N == 3) {
      if (fused3_fits<A>(s.w * s.c, s.c)) {
        using V = simd::vec_t<A>;
        const SepOp<V, decltype(kvert.template as<V>()), decltype(khor.template as<V>())> op{
            kvert.template as<V>(), khor.template as<V>(), simd::splat<A>(dl), dl != 0};
        fused3_impl<T, A>(src, s, dst, d, op, border, cv);
        return;
      }
    }
    sep_impl<N, T, A>(src, s, dst, d, kvert, khor, dl, border, cv);
  };
  auto run_h = [&](const auto& kvert) {
    if (fx == 0) run(kvert, Sym::from(kx));
    else run(kvert, Anti::from(kx));
  };
  if (fy == 0) run_h(Sym::from(ky));
  else run_h(Anti::from(ky));
  return true;
}

// gradient / gradient_magnitude 3x3 (Sobel ksize 1 or 3, Scharr): gx = dv (x) sm, gy = sm (x)
// dv with dv antisymmetric and sm symmetric (the kernels transposed), in one fused pass; the
// pair on images fused3_fits does not take by sobel's two-pass path for each (so gradient
// equals the two sobel calls bit for bit on every path); false when the kernels do not fit,
// or for magnitudes of such images (the ring path).
template <typename T, typename A>
static bool deriv_grad3(const void* src, const ImageDesc& s, void* dst0, const ImageDesc& d0, void* dst1,
                        const ImageDesc& d1, const double* kx0, const double* ky0, const double* kx1,
                        const double* ky1, DerivMode mode, Border border, double cval) {
  if (mode != DerivMode::pair && mode != DerivMode::mag_l1 && mode != DerivMode::mag_l2) return false;
  if (tap3_form(kx0) != 1 || tap3_form(ky0) != 0) return false;
  for (int i = 0; i < 3; ++i)
    if (kx1[i] != ky0[i] || ky1[i] != kx0[i]) return false;
  if (!fused3_fits<A>(s.w * s.c, s.c)) {
    if (mode != DerivMode::pair) return false;
    deriv_sep<3, T, A>(src, s, dst0, d0, kx0, ky0, 0.0, border, cval);
    deriv_sep<3, T, A>(src, s, dst1, d1, kx1, ky1, 0.0, border, cval);
    return true;
  }
  using V = simd::vec_t<A>;
  const Sym3<V> sm{simd::splat<A>(static_cast<A>(ky0[0])), simd::splat<A>(static_cast<A>(ky0[1]))};
  const Anti3<V> dv{simd::splat<A>(static_cast<A>(kx0[2]))};
  const A cv = static_cast<A>(cval);
  if (mode == DerivMode::pair) fused3_impl<T, A>(src, s, dst0, d0, GradOp<A, GradOut::pair>{sm, dv}, border, cv, dst1, &d1);
  else if (mode == DerivMode::mag_l1) fused3_impl<T, A>(src, s, dst0, d0, GradOp<A, GradOut::l1>{sm, dv}, border, cv);
  else fused3_impl<T, A>(src, s, dst0, d0, GradOp<A, GradOut::l2>{sm, dv}, border, cv);
  return true;
}

}  // namespace

template <typename T>
static void deriv_impl(const void* src, const ImageDesc& s, void* dst0, const ImageDesc& d0, void* dst1,
                       const ImageDesc& d1, const double* kx0, const double* ky0, const double* kx1,
                       const double* ky1, int kw, int kh, DerivMode mode, double delta, Border border,
                       double cval) {
  using A = typename AccOf<T>::type;
  if (kw == 3 && kh == 3 && deriv_3x3<T, A>(src, s, dst0, d0, kx0, ky0, kx1, ky1, mode, delta, border, cval)) return;
  if (kw == 3 && kh == 3 && mode == DerivMode::single &&
      deriv_sep<3, T, A>(src, s, dst0, d0, kx0, ky0, delta, border, cval))
    return;
  if (kw == 3 && kh == 3 && delta == 0 &&
      deriv_grad3<T, A>(src, s, dst0, d0, dst1, d1, kx0, ky0, kx1, ky1, mode, border, cval))
    return;
  if (kw == 5 && kh == 5 && mode == DerivMode::single &&
      deriv_sep<5, T, A>(src, s, dst0, d0, kx0, ky0, delta, border, cval))
    return;
  if (kw == 7 && kh == 7 && mode == DerivMode::single &&
      deriv_sep<7, T, A>(src, s, dst0, d0, kx0, ky0, delta, border, cval))
    return;
  if (kw == 5 && kh == 5 && mode == DerivMode::sum &&
      deriv_sum_sep<5, T, A>(src, s, dst0, d0, kx0, ky0, kx1, ky1, delta, border, cval))
    return;
  if (kw == 7 && kh == 7 && mode == DerivMode::sum &&
      deriv_sum_sep<7, T, A>(src, s, dst0, d0, kx0, ky0, kx1, ky1, delta, border, cval))
    return;
  const int64_t H = s.h, W = s.w, C = s.c;
  const int ay = kh / 2, ax = kw / 2;
  const int64_t left = ax, right = kw - 1 - ax;
  const int64_t rows = s.n * H;
  const bool two = mode != DerivMode::single;
  std::vector<A> kx0v(kx0, kx0 + kw), ky0v(ky0, ky0 + kh);
  std::vector<A> kx1v, ky1v;
  if (two) {
    kx1v.assign(kx1, kx1 + kw);
    ky1v.assign(ky1, ky1 + kh);
  }
  const bool sx0 = is_symmetric(kx0v.data(), kw), sy0 = is_symmetric(ky0v.data(), kh);
  const bool sx1 = two && is_symmetric(kx1v.data(), kw), sy1 = two && is_symmetric(ky1v.data(), kh);
  const A cv = static_cast<A>(cval), dl = static_cast<A>(delta);
  // Two ring halves per source row when two filters run: the strip budget counts both.
  // (plan_strips: strips on output lines when the single-mode output streams)
  const StripPlan plan = plan_strips<A>(dst0, s, d0, two ? 2 * kh : kh, sizeof(A));
  const int64_t SP = plan.widest();
  const int64_t half = round_up_line<A>(SP * C + simd::Vec<A>::lanes);  // second half's offset
  // Non-temporal stores for outputs too large for the caches (sep_filter's rule); single mode
  // only (the combined modes write from L1-resident temporaries through plain stores).
  const bool stream = !two && dl == 0 && plan.stream;
  parallel_for(0, rows, filter_grain(rows, kh, get_num_threads()), [&](int64_t t0, int64_t t1) {
    A* padded = thread_scratch<A>(1, static_cast<size_t>((left + SP + right) * C));
    A* tmp = thread_scratch<A>(2, static_cast<size_t>(2 * half));
    std::vector<const A*> r1(kh);
    ring_pipeline<A>(
        t0, t1, H, W, kh, ay, plan.sp, plan.first, plan.merge, two ? 2 * half : SP * C,
        [&](int64_t b, int64_t sy, int64_t x0, int64_t x1, A* slot) {
          load_source_segment<T, A>(src, s, b, sy, x0, x1, left, right, border, cv, padded);
          const int64_t n = (x1 - x0) * C;
          if (mode == DerivMode::sum && sx0 && sx1 && (kw == 5 || kw == 7)) {
            if (kw == 5) hsum2_sym<5, A>(padded, slot, slot + half, n, C, kx0v.data(), kx1v.data());
            else hsum2_sym<7, A>(padded, slot, slot + half, n, C, kx0v.data(), kx1v.data());
            return;
          }
          hfilter(padded, slot, n, C, kx0v.data(), kw, sx0);
          if (two) hfilter(padded, slot + half, n, C, kx1v.data(), kw, sx1);
        },
        [&](const A* const* r0, int64_t b, int64_t y, int64_t x0, int64_t x1) {
          const int64_t n = (x1 - x0) * C;
          A* o0 = row_ptr<A>(dst0, d0, b, y) + x0 * C;
          if (mode == DerivMode::single) {
            vfilter<A, A>(r0, o0, n, ky0v.data(), kh, sy0, stream);
            if (dl != 0) add_const_row(o0, n, dl);
            return;
          }
          for (int i = 0; i < kh; ++i) r1[i] = r0[i] + half;
          switch (mode) {
            case DerivMode::pair: {
              A* o1 = row_ptr<A>(dst1, d1, b, y) + x0 * C;
              vfilter<A, A>(r0, o0, n, ky0v.data(), kh, sy0, false);
              vfilter<A, A>(r1.data(), o1, n, ky1v.data(), kh, sy1, false);
              break;
            }
            case DerivMode::sum:
              if (sy0 && sy1 && (kh == 5 || kh == 7)) {
                if (kh == 5) vsum_sym<5, A>(r0, r1.data(), o0, n, ky0v.data(), ky1v.data(), dl);
                else vsum_sym<7, A>(r0, r1.data(), o0, n, ky0v.data(), ky1v.data(), dl);
                break;
              }
              vfilter<A, A>(r0, tmp, n, ky0v.data(), kh, sy0, false);
              vfilter<A, A>(r1.data(), tmp + half, n, ky1v.data(), kh, sy1, false);
              sum_rows(tmp, tmp + half, o0, n, dl);
              break;
            case DerivMode::mag_l1:
            case DerivMode::mag_l2:
              vfilter<A, A>(r0, tmp, n, ky0v.data(), kh, sy0, false);
              vfilter<A, A>(r1.data(), tmp + half, n, ky1v.data(), kh, sy1, false);
              if (mode == DerivMode::mag_l2) magnitude_rows<A, true>(tmp, tmp + half, o0, n);
              else magnitude_rows<A, false>(tmp, tmp + half, o0, n);
              break;
            default: break;
          }
        },
        [&](int64_t b, int64_t y, int64_t x0) -> int64_t {
          // streaming starts at the first aligned output element: align the ring rows with it
          if (!stream) return 0;
          const int64_t st = stream_start<A, A>(row_ptr<A>(dst0, d0, b, y) + x0 * C);
          return st % simd::Vec<A>::lanes == 0 ? 0 : simd::Vec<A>::lanes - st;
        });
  });
}

void deriv_filter(DType dtype, const void* src, const ImageDesc& s, void* dst0, const ImageDesc& d0, void* dst1,
                  const ImageDesc& d1, const double* kx0, const double* ky0, const double* kx1, const double* ky1,
                  int kw, int kh, DerivMode mode, double delta, Border border, double cval) {
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    deriv_impl<T>(src, s, dst0, d0, dst1, d1, kx0, ky0, kx1, ky1, kw, kh, mode, delta, border, cval);
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
