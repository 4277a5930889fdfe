// Box filter by running sums (compiled per ISA): cost independent of the window size.
//
// Algorithm (vertical first): per chunk of output rows, column sums over the kh-row window
// are updated by adding the row entering the window and subtracting the row leaving it
// (2 adds/element, read straight from the source rows; out-of-image rows by the border
// rule). The column sums are then padded horizontally by the border rule (a padded column's
// sum is the sum of the column it maps to, or kh * cval) and summed along x: for windows up
// to 64 wide by binary decomposition (sums of 1, 2, 4, ... taps by doubling, log2(kw) +
// popcount(kw) vectorized passes), beyond by a running sum (2 adds/element).
// Sums are exact integers (int32) for 8/16-bit data whenever they fit, else float64, so
// uint8/uint16 results are the correctly rounded mean. bytes/pixel = 2 * sizeof(T) * C
// (+ the leaving row, re-read from cache); adds/pixel = C * (2 + ~2 log2(min(kw, 64))).
#include <cmath>
#include <limits>

#include "imkern/filters.hpp"
#include "imkern/parallel.hpp"
#include "filters/filter_rows.hpp"

namespace imkern {
namespace IMKERN_ISA {

template <typename T, typename S>
static void box_typed(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int kh, int kw,
                      int ay, int ax, bool normalize, Border border, double cval) {
  using A = typename AccOf<T>::type;  // type of the normalized value before the final store
  const int64_t H = s.h, W = s.w, C = s.c, WC = W * C;
  const int64_t left = ax, right = kw - 1 - ax, WP = (left + W + right) * C;
  const int64_t rows = s.n * H;
  const double area = static_cast<double>(kh) * kw;
  const S cv = static_cast<S>(cval);
  parallel_for(0, rows, filter_grain(rows, 2, get_num_threads()), [&](int64_t t0, int64_t t1) {
    S* col = thread_scratch<S>(0, static_cast<size_t>(WC));
    S* pad = thread_scratch<S>(1, static_cast<size_t>(WP));
    A* out = thread_scratch<A>(2, static_cast<size_t>(WC));
    S* hs = thread_scratch<S>(3, static_cast<size_t>(WC));
    S* dbl0 = thread_scratch<S>(4, static_cast<size_t>(WP));  // doubling ping-pong rows
    S* dbl1 = thread_scratch<S>(5, static_cast<size_t>(WP));
    auto src_row = [&](int64_t b, int64_t sy) -> const T* {
      const int64_t yy = border_index(sy, H, border);
      return yy < 0 ? nullptr : row_ptr<T>(src, s, b, yy);
    };
    auto add_row = [&](const T* r, S sign) {
      if (r) {
        for (int64_t x = 0; x < WC; ++x) col[x] += sign * static_cast<S>(r[x]);
      } else {
        for (int64_t x = 0; x < WC; ++x) col[x] += sign * cv;
      }
    };
    int64_t cur_b = -1;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / H, y = t % H;
      if (b != cur_b) {  // start of a chunk or of an image: full column sums
        cur_b = b;
        std::fill(col, col + WC, S(0));
        for (int i = 0; i < kh; ++i) add_row(src_row(b, y - ay + i), S(1));
      } else {
        const T* in = src_row(b, y - ay + kh - 1);
        const T* gone = src_row(b, y - 1 - ay);
        if (in && gone) {
          for (int64_t x = 0; x < WC; ++x) col[x] += static_cast<S>(in[x]) - static_cast<S>(gone[x]);
        } else {
          add_row(in, S(1));
          add_row(gone, S(-1));
        }
      }
      // Pad the column sums horizontally.
      std::copy(col, col + WC, pad + left * C);
      for (int64_t x = -left; x < 0; ++x) {
        const int64_t sx = border_index(x, W, border);
        for (int64_t ch = 0; ch < C; ++ch) pad[(x + left) * C + ch] = sx < 0 ? cv * S(kh) : col[sx * C + ch];
      }
      for (int64_t x = W; x < W + right; ++x) {
        const int64_t sx = border_index(x, W, border);
        for (int64_t ch = 0; ch < C; ++ch) pad[(x + left) * C + ch] = sx < 0 ? cv * S(kh) : col[sx * C + ch];
      }
      // Window sums along x (into hs), then scale into the accumulator type.
      if (kw <= 64) {
        // Binary decomposition: sums of 1, 2, 4, ... consecutive taps by doubling, added in
        // for each set bit of kw: log2(kw) + popcount(kw) vectorized passes over the row.
        const S* block = pad;  // sums of `bs` taps starting at each position
        int64_t bs = 1, offset = 0, valid = WP;  // valid: positions where block is defined
        bool first = true;
        S* ping = dbl0;
        for (int rem = kw;;) {
          if (rem & 1) {
            const S* q = block + offset * C;
            if (first) std::copy(q, q + WC, hs);
            else for (int64_t x = 0; x < WC; ++x) hs[x] += q[x];
            first = false;
            offset += bs;
          }
          rem >>= 1;
          if (!rem) break;
          const int64_t nvalid = valid - bs * C;
          for (int64_t x = 0; x < nvalid; ++x) ping[x] = block[x] + block[x + bs * C];
          block = ping;
          ping = ping == dbl0 ? dbl1 : dbl0;
          valid = nvalid;
          bs *= 2;
        }
      } else {
        const int64_t span = static_cast<int64_t>(kw) * C;
        for (int64_t ch = 0; ch < C; ++ch) {
          S acc = 0;
          for (int j = 0; j < kw; ++j) acc += pad[ch + j * C];
          for (int64_t x = ch; x < WC; x += C) {
            hs[x] = acc;
            if (x + C < WC) acc += pad[x + span] - pad[x];
          }
        }
      }
      if (normalize) {
        const A den = static_cast<A>(area);
        for (int64_t x = 0; x < WC; ++x) out[x] = static_cast<A>(hs[x]) / den;
      } else {
        for (int64_t x = 0; x < WC; ++x) out[x] = static_cast<A>(hs[x]);
      }
      store_row(out, row_ptr<T>(dst, d, b, y), WC);
    }
  });
}

template <typename T>
static void box_impl(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int kh, int kw, int ay,
                     int ax, bool normalize, Border border, double cval) {
  bool exact_int = false;
  if constexpr (std::is_integral<T>::value) {
    // int32 sums are exact when the largest possible |sum| fits (cval included).
    const double maxv = std::max<double>(std::numeric_limits<T>::max(), std::fabs(cval));
    const bool cval_ok = border != Border::constant || cval == std::floor(cval);
    exact_int = cval_ok && maxv * kh * kw < 2147483647.0;
  }
  if (exact_int)
    box_typed<T, int32_t>(src, s, dst, d, kh, kw, ay, ax, normalize, border, cval);
  else
    box_typed<T, double>(src, s, dst, d, kh, kw, ay, ax, normalize, border, cval);
}

void box(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int kh, int kw, int ay,
         int ax, bool normalize, Border border, double cval) {
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    box_impl<T>(src, s, dst, d, kh, kw, ay, ax, normalize, border, cval);
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
