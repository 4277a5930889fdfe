// Box filter by running sums (compiled per ISA): cost independent of the window size.
//
// Algorithm: per chunk of output rows, column sums over the kh-row window of padded source
// rows are kept in float64 and updated by adding the row entering the window and subtracting
// the row leaving it (2 adds/element). Along x, windows up to 16 wide are summed directly
// (vectorized); wider ones as differences of a running prefix sum (2 adds/element).
// Float64 sums are exact for 8/16-bit data, so uint8/uint16 results equal cv2.blur's up to
// the final rounding. bytes/pixel = 2 * sizeof(T) * C (+ the leaving row, re-read from cache).
#include "imkern/filters.hpp"
#include "imkern/parallel.hpp"
#include "filter_rows.hpp"

namespace imkern {
namespace IMKERN_ISA {

template <typename T>
static void box_impl(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int kh,
                     int kw, int ay, int ax, bool normalize, Border border, double cval) {
  const int64_t H = s.h, W = s.w, C = s.c, WC = W * C;
  const int64_t left = ax, right = kw - 1 - ax, WP = (left + W + right) * C;
  const int64_t rows = s.n * H;
  const double area = static_cast<double>(kh) * kw;  // divide (not multiply by 1/area): exact ties round as the reference
  const std::vector<double> ones(kw, 1.0);
  parallel_for(0, rows, filter_grain(rows, 2, get_num_threads()), [&](int64_t t0, int64_t t1) {
    aligned_vector<double> col(WP), add(WP), sub(WP), out(WC), prefix(kw > 16 ? WP + C : 0);
    auto load = [&](int64_t b, int64_t sy, double* dstrow) {
      const int64_t yy = border_index(sy, H, border);
      load_padded_row<T, double>(yy < 0 ? nullptr : row_ptr<T>(src, s, b, yy), dstrow, W, C, left,
                                 right, border, cval);
    };
    int64_t cur_b = -1;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / H, y = t % H;
      if (b != cur_b) {  // start of a chunk or of an image: full column sums
        cur_b = b;
        std::fill(col.begin(), col.end(), 0.0);
        for (int i = 0; i < kh; ++i) {
          load(b, y - ay + i, add.data());
          for (int64_t x = 0; x < WP; ++x) col[x] += add[x];
        }
      } else {
        load(b, y - ay + kh - 1, add.data());
        load(b, y - 1 - ay, sub.data());
        for (int64_t x = 0; x < WP; ++x) col[x] += add[x] - sub[x];
      }
      if (kw <= 16) {
        hfilter(col.data(), out.data(), WC, C, ones.data(), kw);
      } else {
        for (int64_t m = 0; m < C; ++m) prefix[m] = 0.0;
        for (int64_t m = C; m < WP + C; ++m) prefix[m] = prefix[m - C] + col[m - C];
        const int64_t span = static_cast<int64_t>(kw) * C;
        for (int64_t x = 0; x < WC; ++x) out[x] = prefix[x + span] - prefix[x];
      }
      if (normalize)
        for (int64_t x = 0; x < WC; ++x) out[x] /= area;
      store_row(out.data(), row_ptr<T>(dst, d, b, y), WC);
    }
  });
}

void box(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int kh,
         int kw, int ay, int ax, bool normalize, Border border, double cval) {
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    box_impl<T>(src, s, dst, d, kh, kw, ay, ax, normalize, border, cval);
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
