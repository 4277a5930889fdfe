// Separable resize driven by host-built coefficient tables (compiled per ISA).
//
// Algorithm: every output row is computed on its own (threads split the output rows):
//   1. vertical pass: the ky source rows of the row's window are combined into one row of
//      accumulators at the source width (contiguous, SIMD: ky multiply-adds per element);
//   2. horizontal pass: each output element sums kx accumulators of its window (gathers
//      through a per-call index row; kx multiply-adds per output element), then rounds and
//      saturates.
// Vertical first: when shrinking (the common case) the gathering pass runs on output rows
// only, and no ring of intermediate rows is needed, so every output row is independent.
// uint8: int32 arithmetic on fixed-point weights (exact; the vertical sums are shifted by
// `shift` so the horizontal sums cannot overflow), the same integer formula as the CUDA
// kernel, so both give the same bits. uint16/float32: float32; float64: float64.
// Bytes per output pixel ~ C * sizeof(T) * (ky * src_w / dst_w + 1); MACs per output pixel
// C * (ky * src_w / dst_w + kx).
#include <algorithm>
#include <cstring>

#include "imkern/parallel.hpp"
#include "imkern/transform.hpp"
#include "common/rows.hpp"

namespace imkern {
namespace IMKERN_ISA {

namespace {

template <typename F>
inline void visit_image_dtype(DType dt, F&& f) {
  switch (dt) {
    case DType::u8: f(uint8_t{}); break;
    case DType::u16: f(uint16_t{}); break;
    case DType::f32: f(float{}); break;
    case DType::f64: f(double{}); break;
    default: throw std::invalid_argument(std::string("imkern: dtype ") + dtype_name(dt) +
                                         " is not supported by the CPU kernels");
  }
}

template <typename T> struct RzAcc { using type = float; };
template <> struct RzAcc<uint8_t> { using type = int32_t; };
template <> struct RzAcc<double> { using type = double; };

// Round (uint8: fixed point shifted right by rshift, half up) and saturate a row of sums.
template <typename T, typename A>
inline void store_out(const A* __restrict__ acc, T* __restrict__ out, int64_t n, int rshift) {
  if constexpr (std::is_same<T, uint8_t>::value) {
    const int32_t half = rshift > 0 ? int32_t(1) << (rshift - 1) : 0;
    for (int64_t e = 0; e < n; ++e) {
      const int32_t v = (acc[e] + half) >> rshift;
      out[e] = static_cast<uint8_t>(std::min(std::max(v, 0), 255));
    }
  } else {
    store_row<T, A>(acc, out, n);
  }
}

int64_t rows_grain(int64_t rows, int64_t work_per_row) {
  const int threads = get_num_threads();
  int64_t g = rows / (4 * (threads > 0 ? threads : 1));
  const int64_t min_rows = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, work_per_row));
  return std::max<int64_t>(std::max<int64_t>(g, min_rows), 1);
}

template <typename T>
void resize_impl(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const ResizeTable& ty,
                 const ResizeTable& tx, int shift) {
  using A = typename RzAcc<T>::type;
  const int64_t C = s.c, SWC = s.w * C, DW = d.w, DWC = DW * C;
  const int ky = ty.k, kx = tx.k;
  const A* wy = static_cast<const A*>(ty.w);
  const A* wx = static_cast<const A*>(tx.w);
  const int rshift = std::is_same<T, uint8_t>::value ? ty.bits + tx.bits - shift : 0;
  // Per output element: the source element of its first tap, and its weights tap-major.
  if (SWC + kx * C >= (int64_t(1) << 31)) throw std::overflow_error("resize: a source row is too long for int32 indices");
  aligned_vector<int32_t> idx(static_cast<size_t>(DWC));
  aligned_vector<A> wxe(static_cast<size_t>(kx * DWC));
  for (int64_t x = 0; x < DW; ++x)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t e = x * C + c;
      idx[e] = static_cast<int32_t>(tx.start[x] * C + c);
      for (int k = 0; k < kx; ++k) wxe[k * DWC + e] = wx[x * kx + k];
    }
  const int32_t* ip = idx.data();
  const A* wp = wxe.data();
  const int64_t rows = d.n * d.h;
  parallel_for(0, rows, rows_grain(rows, ky * SWC + kx * DWC), [&](int64_t t0, int64_t t1) {
    A* __restrict__ v = thread_scratch<A>(0, static_cast<size_t>(SWC));
    A* __restrict__ acc = thread_scratch<A>(1, static_cast<size_t>(DWC));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / d.h, y = t % d.h;
      const A* wr = wy + y * ky;
      const int64_t sy = ty.start[y];
      // 1. vertical pass
      {
        const T* r0 = row_ptr<T>(src, s, b, sy);
        const A w0 = wr[0];
        if (ky == 1) {
          for (int64_t j = 0; j < SWC; ++j) v[j] = w0 * static_cast<A>(r0[j]);
        } else {
          const T* r1 = row_ptr<T>(src, s, b, sy + 1);
          const A w1 = wr[1];
          for (int64_t j = 0; j < SWC; ++j) v[j] = w0 * static_cast<A>(r0[j]) + w1 * static_cast<A>(r1[j]);
          for (int k = 2; k < ky; ++k) {
            const T* rk = row_ptr<T>(src, s, b, sy + k);
            const A wk = wr[k];
            for (int64_t j = 0; j < SWC; ++j) v[j] += wk * static_cast<A>(rk[j]);
          }
        }
        if constexpr (std::is_same<T, uint8_t>::value) {
          if (shift > 0) {
            const int32_t half = int32_t(1) << (shift - 1);
            for (int64_t j = 0; j < SWC; ++j) v[j] = (v[j] + half) >> shift;
          }
        }
      }
      // 2. horizontal pass: gathers of 32-bit indices (vpgatherdd / vgatherdps), sums into
      // acc, then one rounding/saturating store pass
      for (int64_t e = 0; e < DWC; ++e) acc[e] = wp[e] * v[ip[e]];
      for (int k = 1; k < kx; ++k) {
        const A* __restrict__ wk = wp + k * DWC;
        const int32_t off = static_cast<int32_t>(k * C);
        for (int64_t e = 0; e < DWC; ++e) acc[e] += wk[e] * v[ip[e] + off];
      }
      store_out<T, A>(acc, row_ptr<T>(dst, d, b, y), DWC, rshift);
    }
  });
}

template <typename T>
void nearest_impl(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const int64_t* sy,
                  const int64_t* sx) {
  const int64_t C = s.c, DW = d.w;
  const int64_t rows = d.n * d.h;
  std::vector<int64_t> off(static_cast<size_t>(DW));
  for (int64_t x = 0; x < DW; ++x) off[x] = sx[x] * C;
  parallel_for(0, rows, rows_grain(rows, DW * C), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / d.h, y = t % d.h;
      const T* in = row_ptr<T>(src, s, b, sy[y]);
      T* out = row_ptr<T>(dst, d, b, y);
      // the same source row as the previous output row: copy it
      if (t > t0 && y > 0 && sy[y] == sy[y - 1]) {
        std::memcpy(out, row_ptr<T>(dst, d, b, y - 1), static_cast<size_t>(DW * C) * sizeof(T));
        continue;
      }
      if (C == 1) {
        for (int64_t x = 0; x < DW; ++x) out[x] = in[off[x]];
      } else if (C == 3) {
        for (int64_t x = 0; x < DW; ++x) {
          const T* p = in + off[x];
          out[3 * x] = p[0];
          out[3 * x + 1] = p[1];
          out[3 * x + 2] = p[2];
        }
      } else {
        for (int64_t x = 0; x < DW; ++x) std::memcpy(out + x * C, in + off[x], static_cast<size_t>(C) * sizeof(T));
      }
    }
  });
}

}  // namespace

void resize(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const ResizeTable& y,
            const ResizeTable& x, int shift) {
  visit_image_dtype(dtype, [&](auto tag) { resize_impl<decltype(tag)>(src, s, dst, d, y, x, shift); });
}

void resize_nearest(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                    const int64_t* sy, const int64_t* sx) {
  visit_image_dtype(dtype, [&](auto tag) { nearest_impl<decltype(tag)>(src, s, dst, d, sy, sx); });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
