// uint16 Gaussian blur as cv2.GaussianBlur computes it (its fixed-point "bit-exact" path for
// 16-bit images), compiled per ISA.
//
// Algorithm: the taps are integers in 16 fractional bits summing to 65536, symmetric
// (gaussian_kernel_q16 in python/imkern/_kernels.py). Each source row is filtered along x into
// 32-bit sums h = sum_j kx[j] * x[j] (at most 65535 * 65536 < 2^32: exact), kept in a ring of
// kh rows (column strips sized for the cache, as the other row-ring filters); each output row
// is then out = (v + 2^31) >> 32 with v = sum_i ky[i] * h_i (up to 48 bits). v is not formed:
// with h = hi * 2^16 + lo, A = sum ky[i] * hi_i and B = sum ky[i] * lo_i are exact in 32 bits
// (each at most 65535 * 65536), and (v + 2^31) >> 32 = (A + (B >> 16) + 2^15) >> 16 (the bits
// of B below 16 never carry into bit 32 of v + 2^31 once the 2^15 is added to A's scale).
// Mirrored taps are added first on both passes: a side tap is at most 32768, so
// (a + b) * k < 2^32 stays exact. Every sum is exact, so the result does not depend on the
// summation order, the ISA, the strips or the threads, and equals OpenCV's.
// Cost per output element: 2 bytes read, 2 written; (kw + 1) / 2 32-bit multiplies and kw adds
// horizontally, kh + 1 multiplies, 2 kh adds and 2 kh shifts/masks vertically, per lane of 16
// (AVX-512), 8 (AVX2) or 4 (baseline) elements.
#include <vector>

#include "imkern/filters.hpp"
#include "imkern/parallel.hpp"

#include "filters/filter_rows.hpp"

namespace imkern {
namespace IMKERN_ISA {

namespace {

using vu = simd::vec_t<uint32_t>;
constexpr int L = simd::Vec<uint32_t>::lanes;

// L uint16 at p widened to uint32 lanes; L uint32 lanes (each at most 65535) stored as uint16.
IMKERN_ALWAYS_INLINE inline vu load_u16(const uint16_t* p) { return reinterpret_cast<vu>(simd::widen_to_i32(p)); }
IMKERN_ALWAYS_INLINE inline void store_u16(uint16_t* p, vu v) {
  simd::store_narrow_saturated(p, reinterpret_cast<simd::vec_t<int32_t>>(v));
}

// h[e] = sum_j kx[j] * p[e + j * C] for e in [0, n) (p: the padded row, uint16).
void hpass(const uint16_t* p, uint32_t* h, int64_t n, int64_t C, const uint32_t* kx, int kw) {
  const int half = kw / 2;
  int64_t e = 0;
  for (; e + L <= n; e += L) {
    const uint16_t* q = p + e;
    vu acc = load_u16(q + half * C) * kx[half];
    for (int j = 0; j < half; ++j) acc += (load_u16(q + j * C) + load_u16(q + (kw - 1 - j) * C)) * kx[j];
    simd::storeu(h + e, acc);
  }
  for (; e < n; ++e) {
    const uint16_t* q = p + e;
    uint32_t acc = q[half * C] * kx[half];
    for (int j = 0; j < half; ++j) acc += (static_cast<uint32_t>(q[j * C]) + q[(kw - 1 - j) * C]) * kx[j];
    h[e] = acc;
  }
}

// out[e] = (sum_i ky[i] h_i[e] + 2^31) >> 32 through the halves of h (see the top).
void vpass(const uint32_t* const* r, uint16_t* o, int64_t n, const uint32_t* ky, int kh) {
  const int half = kh / 2;
  int64_t e = 0;
  for (; e + L <= n; e += L) {
    const vu c = simd::loadu(r[half] + e);
    vu a = (c >> 16) * ky[half], b = (c & 0xffffu) * ky[half];
    for (int i = 0; i < half; ++i) {
      const vu u = simd::loadu(r[i] + e), w = simd::loadu(r[kh - 1 - i] + e);
      a += ((u >> 16) + (w >> 16)) * ky[i];
      b += ((u & 0xffffu) + (w & 0xffffu)) * ky[i];
    }
    store_u16(o + e, (a + (b >> 16) + 0x8000u) >> 16);
  }
  for (; e < n; ++e) {
    const uint32_t c = r[half][e];
    uint32_t a = (c >> 16) * ky[half], b = (c & 0xffffu) * ky[half];
    for (int i = 0; i < half; ++i) {
      const uint32_t u = r[i][e], w = r[kh - 1 - i][e];
      a += ((u >> 16) + (w >> 16)) * ky[i];
      b += ((u & 0xffffu) + (w & 0xffffu)) * ky[i];
    }
    o[e] = static_cast<uint16_t>((a + (b >> 16) + 0x8000u) >> 16);
  }
}

}  // namespace

void gaussian_u16(const uint16_t* src, const ImageDesc& s, uint16_t* dst, const ImageDesc& d, const int32_t* ky, int kh,
                  const int32_t* kx, int kw, Border border, int cval) {
  const int64_t H = s.h, W = s.w, C = s.c;
  const int ay = kh / 2, ax = kw / 2;
  const int64_t left = ax, right = kw - 1 - ax;
  const int64_t rows = s.n * H;
  const std::vector<uint32_t> tky(ky, ky + kh), tkx(kx, kx + kw);
  StripPlan plan = plan_strips<uint16_t>(dst, s, d, kh, sizeof(uint32_t));
  const int64_t SP = plan.widest();
  const int64_t ring_width = round_up_line<uint32_t>(SP * C + 64);
  parallel_for(0, rows, filter_grain(rows, kh, get_num_threads()), [&](int64_t t0, int64_t t1) {
    uint16_t* padded = thread_scratch<uint16_t>(1, static_cast<size_t>((left + SP + right) * C) + 64);
    ring_pipeline<uint32_t>(
        t0, t1, H, W, kh, ay, plan.sp, plan.first, plan.merge, ring_width,
        [&](int64_t b, int64_t sy, int64_t x0, int64_t x1, uint32_t* slot) {
          // Strips whose taps stay inside the image read the source row in place; the others
          // (and constant rows) from a copy padded by the border rule.
          const int64_t yy = border_index(sy, H, border);
          const uint16_t* p;
          if (yy >= 0 && x0 - left >= 0 && x1 + right <= W) {
            p = row_ptr<uint16_t>(src, s, b, yy) + (x0 - left) * C;
          } else {
            load_source_segment<uint16_t, uint16_t>(src, s, b, sy, x0, x1, left, right, border,
                                                    static_cast<uint16_t>(cval), padded);
            p = padded;
          }
          hpass(p, slot, (x1 - x0) * C, C, tkx.data(), kw);
        },
        [&](const uint32_t* const* r, int64_t b, int64_t y, int64_t x0, int64_t x1) {
          vpass(r, row_ptr<uint16_t>(dst, d, b, y) + x0 * C, (x1 - x0) * C, tky.data(), kh);
        },
        [](int64_t, int64_t, int64_t) -> int64_t { return 0; });
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
