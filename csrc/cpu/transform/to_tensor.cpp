// to_tensor (compiled per ISA): crop + horizontal flip + scale/normalize + HWC -> CHW in one
// pass, as DALI's crop_mirror_normalize.
//
// Algorithm: one output row (all C planes) per step, rows split over the thread pool. The
// source span of a row (w pixels, C channels, contiguous) is widened to the output's float
// type into a per-thread scratch row (vector widening loads for 8/16-bit data), then each
// channel plane is written with one multiply-add per element, de-interleaving with a
// compile-time channel count (1, 2, 3, 4, or a generic loop) and walking backwards for the
// flip. Bytes per output element: sizeof(in) read + sizeof(out) written; 1 FMA.
#include <algorithm>
#include <cstring>

#include "common/simd.hpp"
#include "imkern/parallel.hpp"
#include "imkern/transform.hpp"
// GCC 12 reports _mm512_undefined_epi32() inside the zero-extending loads as maybe-uninitialized
// (a known false positive of its AVX-512 headers).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace imkern {
namespace IMKERN_ISA {

namespace {

// Widen n elements to A (float/double).
template <typename TI, typename A>
inline void widen_row(const TI* in, A* out, int64_t n) {
  int64_t i = 0;
  if constexpr (std::is_same<A, float>::value && sizeof(TI) <= 2) {
    constexpr int L = simd::Vec<float>::lanes;
    for (; i + L <= n; i += L) simd::storeu(out + i, simd::widen_to_f32(in + i));
  }
  for (; i < n; ++i) out[i] = static_cast<A>(in[i]);
}

template <int C, bool FLIP, typename A>
inline void planes(const A* row, int64_t w, int64_t cc, A* const* out, const A* sc, const A* sh) {
  if constexpr (C > 0) {
    for (int c = 0; c < C; ++c) {
      A* o = out[c];
      const A a = sc[c], b = sh[c];
      if (FLIP) {
        for (int64_t x = 0; x < w; ++x) o[x] = row[(w - 1 - x) * C + c] * a + b;
      } else {
        for (int64_t x = 0; x < w; ++x) o[x] = row[x * C + c] * a + b;
      }
    }
  } else {
    for (int64_t c = 0; c < cc; ++c) {
      A* o = out[c];
      const A a = sc[c], b = sh[c];
      for (int64_t x = 0; x < w; ++x) o[x] = row[(FLIP ? w - 1 - x : x) * cc + c] * a + b;
    }
  }
}

// C == 3 without flip, float: de-interleave 3 channels with fixed shuffles is what the
// compiler emits for the stride-3 loop above; kept generic.
template <typename TI, typename A>
void to_tensor_typed(const void* src, const ImageDesc& s, int64_t y0, int64_t x0, bool flip, void* dst,
                     const TensorDesc& d, const double* scale, const double* shift) {
  const int64_t C = d.c, w = d.w, h = d.h, rows = d.n * h;
  std::vector<A> sc(C), sh(C);
  for (int64_t c = 0; c < C; ++c) {
    sc[c] = static_cast<A>(scale[c]);
    sh[c] = static_cast<A>(shift[c]);
  }
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, w * C));
  parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
    A* buf = thread_scratch<A>(0, static_cast<size_t>(w * C));
    std::vector<A*> outs(C);
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / h, y = r % h;
      const TI* in = static_cast<const TI*>(src) + b * s.batch_stride + (y0 + y) * s.row_stride + x0 * C;
      A* o = static_cast<A*>(dst) + b * d.batch_stride + y * d.row_stride;
      for (int64_t c = 0; c < C; ++c) outs[c] = o + c * d.plane_stride;
      const A* row;
      if constexpr (std::is_same<TI, A>::value) {
        row = in;
      } else {
        widen_row<TI, A>(in, buf, w * C);
        row = buf;
      }
#define IMKERN_PLANES(CC)                                                        \
  (flip ? planes<CC, true, A>(row, w, C, outs.data(), sc.data(), sh.data())      \
        : planes<CC, false, A>(row, w, C, outs.data(), sc.data(), sh.data()))
      switch (C) {
        case 1: IMKERN_PLANES(1); break;
        case 2: IMKERN_PLANES(2); break;
        case 3: IMKERN_PLANES(3); break;
        case 4: IMKERN_PLANES(4); break;
        default: IMKERN_PLANES(0); break;
      }
#undef IMKERN_PLANES
    }
  });
}

template <typename A>
void dispatch_in(DType in_dtype, const void* src, const ImageDesc& s, int64_t y0, int64_t x0, bool flip, void* dst,
                 const TensorDesc& d, const double* scale, const double* shift) {
  switch (in_dtype) {
    case DType::u8: return to_tensor_typed<uint8_t, A>(src, s, y0, x0, flip, dst, d, scale, shift);
    case DType::u16: return to_tensor_typed<uint16_t, A>(src, s, y0, x0, flip, dst, d, scale, shift);
    case DType::f32: return to_tensor_typed<float, A>(src, s, y0, x0, flip, dst, d, scale, shift);
    case DType::f64: return to_tensor_typed<double, A>(src, s, y0, x0, flip, dst, d, scale, shift);
    default: throw std::invalid_argument("to_tensor: unsupported input dtype");
  }
}

}  // namespace

void to_tensor(DType in_dtype, DType out_dtype, const void* src, const ImageDesc& s, int64_t y0, int64_t x0,
               bool flip, void* dst, const TensorDesc& d, const double* scale, const double* shift) {
  if (out_dtype == DType::f32) return dispatch_in<float>(in_dtype, src, s, y0, x0, flip, dst, d, scale, shift);
  if (out_dtype == DType::f64) return dispatch_in<double>(in_dtype, src, s, y0, x0, flip, dst, d, scale, shift);
  throw std::invalid_argument("to_tensor: output dtype must be float32 or float64");
}

}  // namespace IMKERN_ISA
}  // namespace imkern
