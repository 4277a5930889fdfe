// Dense 2-D correlation (compiled per ISA).
//
// Algorithm: a ring of the kh source rows an output row needs, each converted and padded
// once; each output element is sum_{i,j} k[i][j] * P_i[x + j*C], computed 4 vectors at a
// time with the kh*kw taps streamed from L1. bytes/pixel = 2 * sizeof(T) * C,
// FLOPs/pixel = 2 * C * kh * kw. Variants: one per dtype.
#include "imkern/filters.hpp"
#include "imkern/parallel.hpp"
#include "filter_rows.hpp"

namespace imkern {
namespace IMKERN_ISA {

template <typename A>
static void correlate_row(const A* const* P, A* o, int64_t n, int64_t C, const A* k, int kh, int kw) {
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  int64_t x = 0;
  for (; x + 4 * L <= n; x += 4 * L) {
    vec_t<A> a0{}, a1{}, a2{}, a3{};
    for (int i = 0; i < kh; ++i) {
      const A* q = P[i] + x;
      const A* ki = k + static_cast<int64_t>(i) * kw;
      for (int j = 0; j < kw; ++j, q += C) {
        const vec_t<A> kv = splat<A>(ki[j]);
        a0 += kv * loadu(q);
        a1 += kv * loadu(q + L);
        a2 += kv * loadu(q + 2 * L);
        a3 += kv * loadu(q + 3 * L);
      }
    }
    storeu(o + x, a0);
    storeu(o + x + L, a1);
    storeu(o + x + 2 * L, a2);
    storeu(o + x + 3 * L, a3);
  }
  for (; x + L <= n; x += L) {
    vec_t<A> a0{};
    for (int i = 0; i < kh; ++i)
      for (int j = 0; j < kw; ++j) a0 += splat<A>(k[i * kw + j]) * loadu(P[i] + x + j * C);
    storeu(o + x, a0);
  }
  for (; x < n; ++x) {
    A a = 0;
    for (int i = 0; i < kh; ++i)
      for (int j = 0; j < kw; ++j) a += k[i * kw + j] * P[i][x + j * C];
    o[x] = a;
  }
}

template <typename T>
static void correlate_impl(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                           const double* k, int kh, int kw, int ay, int ax, Border border, double cval) {
  using A = typename AccOf<T>::type;
  const int64_t H = s.h, W = s.w, C = s.c, WC = W * C;
  const int64_t left = ax, right = kw - 1 - ax, WP = (left + W + right) * C;
  const int64_t rows = s.n * H;
  std::vector<A> kv(k, k + static_cast<int64_t>(kh) * kw);
  const A cv = static_cast<A>(cval);
  parallel_for(0, rows, filter_grain(rows, kh, get_num_threads()), [&](int64_t t0, int64_t t1) {
    A* out = thread_scratch<A>(1, static_cast<size_t>(WC));
    RowRing<A> ring(kh, WP);
    int64_t cur_b = -1;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / H, y = t % H;
      if (b != cur_b) {
        cur_b = b;
        ring.reset();
      }
      const A* const* P = ring.rows_for(y - ay, [&](int64_t sy, A* slot) {
        const int64_t yy = border_index(sy, H, border);
        load_padded_row<T, A>(yy < 0 ? nullptr : row_ptr<T>(src, s, b, yy), slot, W, C, left,
                              right, border, cv);
      });
      T* drow = row_ptr<T>(dst, d, b, y);
      if constexpr (std::is_same<T, A>::value) {
        correlate_row(P, drow, WC, C, kv.data(), kh, kw);
      } else {
        correlate_row(P, out, WC, C, kv.data(), kh, kw);
        store_row(out, drow, WC);
      }
    }
  });
}

void correlate(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
               const double* k, int kh, int kw, int ay, int ax, Border border, double cval) {
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    correlate_impl<T>(src, s, dst, d, k, kh, kw, ay, ax, border, cval);
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
