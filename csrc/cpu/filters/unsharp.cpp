// Unsharp mask, fused with its blur in one pass over the image (compiled per ISA).
//
// Algorithm: the separable blur of sep_filter (ring of x-filtered rows, filter_rows.hpp); each
// blurred output row stays in L1 as accumulators and is combined at once with the source row:
//   d = src - blur;  out = |d| > threshold ? src + amount * d : src
// rounded to nearest-even and saturated for integer dtypes. The blur never reaches memory.
// Cost per pixel and channel: bytes = sizeof(T) read (plus the source row re-read from L1/L2)
// + sizeof(T) written; FLOPs = 2 (kh + kw) + 5.
#include "imkern/filters.hpp"
#include "imkern/parallel.hpp"
#include "filters/filter_rows.hpp"

namespace imkern {
namespace IMKERN_ISA {

template <typename T>
static void unsharp_impl(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const double* ky, int kh,
                         const double* kx, int kw, double amount, double threshold, Border border, double cval) {
  using A = typename AccOf<T>::type;
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  const int64_t H = s.h, W = s.w, C = s.c;
  const int ay = kh / 2, ax = kw / 2;
  const int64_t left = ax, right = kw - 1 - ax;
  const int64_t rows = s.n * H;
  std::vector<A> kyv(ky, ky + kh), kxv(kx, kx + kw);
  const bool sym_x = is_symmetric(kxv.data(), kw), sym_y = is_symmetric(kyv.data(), kh);
  const A cv = static_cast<A>(cval), am = static_cast<A>(amount), th = static_cast<A>(threshold);
  const int64_t SP = strip_pixels(W, C, kh, sizeof(A));
  parallel_for(0, rows, filter_grain(rows, kh, get_num_threads()), [&](int64_t t0, int64_t t1) {
    A* padded = thread_scratch<A>(1, static_cast<size_t>((left + SP + right) * C));
    A* blur = thread_scratch<A>(2, static_cast<size_t>(SP * C + L));
    ring_pipeline<A>(
        t0, t1, H, W, kh, ay, SP, SP * C,
        [&](int64_t b, int64_t sy, int64_t x0, int64_t x1, A* slot) {
          load_source_segment<T, A>(src, s, b, sy, x0, x1, left, right, border, cv, padded);
          hfilter(padded, slot, (x1 - x0) * C, C, kxv.data(), kw, sym_x);
        },
        [&](const A* const* r, int64_t b, int64_t y, int64_t x0, int64_t x1) {
          const int64_t n = (x1 - x0) * C;
          vfilter<A, A>(r, blur, n, kyv.data(), kh, sym_y, false);
          const T* a = row_ptr<T>(src, s, b, y) + x0 * C;
          T* o = row_ptr<T>(dst, d, b, y) + x0 * C;
          const vec_t<A> amv = splat<A>(am), thv = splat<A>(th);
          int64_t x = 0;
          for (; x + L <= n; x += L) {
            const vec_t<A> sv = load_vec<A, T>(a + x);
            const vec_t<A> dv = sv - loadu(blur + x);
            const vec_t<A> ad = dv < 0 ? -dv : dv;
            const vec_t<A> rv = ad > thv ? sv + amv * dv : sv;
            store_vec<T, A>(o + x, rv);
          }
          for (; x < n; ++x) {
            const A sv = static_cast<A>(a[x]);
            const A dv = sv - blur[x];
            const A ad = dv < 0 ? -dv : dv;
            o[x] = to_output<T, A>(ad > th ? sv + am * dv : sv);
          }
        });
  });
}

void unsharp_mask(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const double* ky,
                  int kh, const double* kx, int kw, double amount, double threshold, Border border, double cval) {
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    unsharp_impl<T>(src, s, dst, d, ky, kh, kx, kw, amount, threshold, border, cval);
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
