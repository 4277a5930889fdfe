// Separable filter, fused in one pass over the image (compiled per ISA).
//
// Algorithm: each source row is converted to the accumulator type, padded horizontally by
// the border rule and filtered along x (kw FMAs/element) into a ring of kh rows; each output
// row is then the ky-weighted sum of the kh ring rows (kh FMAs/element), rounded and
// saturated for integer types. Every source row is read once per chunk of output rows and
// every output element written once: bytes/pixel = sizeof(T) * C * (1 + 1), FLOPs/pixel =
// 2 * C * (kh + kw). The ring (kh x W x C accumulators) stays in L2 for usual sizes.
// Variants: one per dtype (u8, u16, f32 accumulate in float32; f64 in float64), and per output
// dtype (the input's, float32 or float64: written directly, float64 accumulation if either is).
// Symmetric kernels fold their mirrored taps; those of 13 to 31 taps (float32 accumulation)
// take the blocked kernels hfilter_long / vfilter_long, and the vertical pass then writes two
// output rows per step (ring_pipeline2: kh + 1 ring rows), so each loaded vector serves several
// outputs (the long filters are bound by their loads, not their FMAs). On AVX2 (16 registers)
// the ring is mirrored (RowRing), so the vertical kernel reads its rows from four bases at one
// stride instead of reloading row pointers (vfilter_long2_strided), and one-channel rows take
// hfilter_long_c1_avx2 (hfilter's, no cache-line-splitting loads); both keep the sums and bits of the
// kernels they replace. gaussian 31x31 on a 4K float32 image, AVX2, one thread: 19.7 -> 17.4 ms.
#include "imkern/filters.hpp"
#include "imkern/parallel.hpp"
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "filters/filter_rows.hpp"

namespace imkern {
namespace IMKERN_ISA {

template <typename T, typename U>
static void sep_filter_impl(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                            const double* ky, int kh, int ay, const double* kx, int kw, int ax,
                            Border border, double cval) {
  using A = typename OutAccOf<T, U>::type;
  const int64_t H = s.h, W = s.w, C = s.c;
  const int64_t left = ax, right = kw - 1 - ax;
  const int64_t rows = s.n * H;
  std::vector<A> kyv(ky, ky + kh), kxv(kx, kx + kw);
  const A cv = static_cast<A>(cval);
  // Symmetric kernels (every Gaussian) fold their mirrored taps (see IMKERN_SYM_TAPS, vfilter_long).
  const bool sym_x = is_symmetric(kxv.data(), kw), sym_y = is_symmetric(kyv.data(), kh);
  if constexpr (std::is_same<A, float>::value) {
    // 3x3 / 5x5 symmetric taps: vertical first in registers, one pass (sep_direct)
    if (sym_x && sym_y && sep_direct_ok(kh, kw, ay, ax, C)) {
      const StripPlan whole = plan_strips_px<U>(dst, s, d, W);
      return sep_direct<0, T, U>(static_cast<const T*>(src), s, static_cast<U*>(dst), d, kh, kyv.data(), kxv.data(),
                                 false, 1.f, border, cv, whole.stream);
    }
  }
  // Long symmetric vertical kernels write two output rows at a time (vfilter2, vfilter_long).
  const bool pairs = vfilter_pairs<U, A>(kh, sym_y);
#if defined(__AVX2__) && !defined(__AVX512F__)
  // a mirrored ring (RowRing): twice the rows in memory, for vfilter_long2_strided
  const bool mirror = pairs && kh + 1 <= kLongStridedRows;
#else
  const bool mirror = false;
#endif
  // Column strips keep the ring in cache and, when the output streams, start on output lines
  // (see plan_strips); results do not depend on them.
  const StripPlan plan = plan_strips<U>(dst, s, d, (pairs ? kh + 1 : kh) * (mirror ? 2 : 1), sizeof(A));
  const int64_t SP = plan.widest();
  // Float outputs of kernels past 7 taps stream only when their rows start on lines (the old
  // rule): otherwise the ring rows are shifted to the output's alignment, and the wide
  // horizontal pass's split stores into them cost more than the saved read-for-ownership
  // (gaussian 31x31 on a 4K float32 image, one thread: 23.9 ms streaming, 21.6 ms plain).
  const bool stream = plan.stream && (Saturate<U>::integer || (kh <= 7 && kw <= 7) || stream_output<U>(dst, s, d, SP));
  // uint8 rows with a fused horizontal kernel (hfilter_u8) are padded as bytes and converted in
  // registers; a constant border then needs a cval that is a uint8 value.
  bool u8_rows = false;
  if constexpr (std::is_same<T, uint8_t>::value && std::is_same<A, float>::value)
    u8_rows = hfilter_u8_supported(C, kw) &&
              (border != Border::constant || (cval >= 0 && cval <= 255 && cval == std::floor(cval)));
  parallel_for(0, rows, filter_grain(rows, kh, get_num_threads()), [&](int64_t t0, int64_t t1) {
    const size_t padn = static_cast<size_t>((left + SP + right) * C);
    A* padded = u8_rows ? nullptr : thread_scratch<A>(1, padn);
    T* padded_t = u8_rows ? thread_scratch<T>(1, padn) : nullptr;
    auto make = [&](int64_t b, int64_t sy, int64_t x0, int64_t x1, A* slot) {
      if constexpr (std::is_same<T, uint8_t>::value && std::is_same<A, float>::value) {
        if (u8_rows) {
          load_source_segment<T, T>(src, s, b, sy, x0, x1, left, right, border, static_cast<T>(cval), padded_t);
          hfilter_u8(padded_t, slot, (x1 - x0) * C, C, kxv.data(), kw, sym_x);
          return;
        }
      }
      load_source_segment<T, A>(src, s, b, sy, x0, x1, left, right, border, cv, padded);
      hfilter(padded, slot, (x1 - x0) * C, C, kxv.data(), kw, sym_x);
    };
    auto emit = [&](const A* const* r, int64_t b, int64_t y, int64_t x0, int64_t x1) {
      vfilter<U, A>(r, row_ptr<U>(dst, d, b, y) + x0 * C, (x1 - x0) * C, kyv.data(), kh, sym_y, stream);
    };
    auto emit2 = [&](const A* const* r, int64_t b, int64_t y, int64_t x0, int64_t x1) {
      vfilter2<U, A>(r, row_ptr<U>(dst, d, b, y) + x0 * C, row_ptr<U>(dst, d, b, y + 1) + x0 * C, (x1 - x0) * C,
                     kyv.data(), kh, sym_y, stream);
    };
    auto shift = [&](int64_t b, int64_t y, int64_t x0) -> int64_t {
      // streaming starts at the first aligned output element: align the ring rows with it
      if (!stream) return 0;
      const int64_t st = stream_start<U, A>(row_ptr<U>(dst, d, b, y) + x0 * C);
      return st % simd::Vec<A>::lanes == 0 ? 0 : simd::Vec<A>::lanes - st;
    };
    if constexpr (std::is_same<A, float>::value) {
      if (pairs)
        return ring_pipeline2<A>(t0, t1, H, W, kh, ay, plan.sp, plan.first, plan.merge, SP * C, make, emit, emit2,
                                 shift, mirror);
    }
    (void)emit2, (void)mirror;
    ring_pipeline<A>(t0, t1, H, W, kh, ay, plan.sp, plan.first, plan.merge, SP * C, make, emit, shift);
  });
}

void sep_filter(DType dtype, const void* src, const ImageDesc& s, DType out_dtype, void* dst, const ImageDesc& d,
                const double* ky, int kh, int ay, const double* kx, int kw, int ax, Border border,
                double cval) {
  visit_dtype_pair(dtype, out_dtype, [&](auto tag, auto otag) {
    using T = decltype(tag);
    using U = decltype(otag);
    sep_filter_impl<T, U>(src, s, dst, d, ky, kh, ay, kx, kw, ax, border, cval);
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
