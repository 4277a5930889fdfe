// Separable resize driven by host-built coefficient tables (compiled per ISA).
//
// Algorithm: every output row is computed on its own (threads split the output rows):
//   1. vertical pass: the ky source rows of the row's window are combined into one row of
//      accumulators at the source width (contiguous, SIMD: ky multiply-adds per element);
//   2. horizontal pass: each output element sums kx accumulators of its window (gathers
//      through a per-call index row; kx multiply-adds per output element), then rounds and
//      saturates.
// Vertical first when the height shrinks or stays (the common case): the gathering pass
// runs on output rows only. When the height grows, horizontal first into a ring of ky
// rows (each source row resized horizontally once), then the vertical sums.
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


// The horizontal pass with explicit gathers (GCC's cost model does not emit them): whole
// vectors of output elements, stored rounded and saturated; returns how many were done
// (the rest goes through the scalar loops). Same arithmetic as the scalar path: int32
// products and sums for uint8 (exact), float multiply then add for the others (the scalar
// loop's order; no fused multiply-add, so every ISA level gives the same bits).
template <typename T, typename A>
inline int64_t hpass_simd(const A* v, const int32_t* ip, const A* wp, int kx, int64_t C, int64_t n, int rshift,
                          T* out) {
#if defined(__AVX512F__) || defined(__AVX2__)
  if constexpr (std::is_same<A, int32_t>::value || (std::is_same<A, float>::value && !std::is_same<T, float>::value) ||
                std::is_same<T, float>::value) {
#if defined(__AVX512F__)
    constexpr int L = 16;
#else
    constexpr int L = 8;
#endif
    int64_t e = 0;
    const int32_t half = rshift > 0 ? int32_t(1) << (rshift - 1) : 0;
    for (; e + L <= n; e += L) {
#if defined(__AVX512F__)
      const __m512i id = _mm512_loadu_si512(ip + e);
      if constexpr (std::is_same<A, int32_t>::value) {
        __m512i a = _mm512_mullo_epi32(_mm512_loadu_si512(wp + e), _mm512_i32gather_epi32(id, v, 4));
        for (int k = 1; k < kx; ++k) {
          const __m512i ik = _mm512_add_epi32(id, _mm512_set1_epi32(static_cast<int32_t>(k * C)));
          a = _mm512_add_epi32(a, _mm512_mullo_epi32(_mm512_loadu_si512(wp + k * n + e), _mm512_i32gather_epi32(ik, v, 4)));
        }
        a = _mm512_srai_epi32(_mm512_add_epi32(a, _mm512_set1_epi32(half)), rshift);
        a = _mm512_min_epi32(_mm512_max_epi32(a, _mm512_setzero_si512()), _mm512_set1_epi32(255));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + e), _mm512_cvtepi32_epi8(a));
      } else {
        __m512 a = _mm512_mul_ps(_mm512_loadu_ps(wp + e), _mm512_i32gather_ps(id, v, 4));
        for (int k = 1; k < kx; ++k) {
          const __m512i ik = _mm512_add_epi32(id, _mm512_set1_epi32(static_cast<int32_t>(k * C)));
          a = _mm512_add_ps(a, _mm512_mul_ps(_mm512_loadu_ps(wp + k * n + e), _mm512_i32gather_ps(ik, v, 4)));
        }
        simd::vec_t<float> av;
        std::memcpy(&av, &a, sizeof(av));
        store_vec<T, float>(out + e, av);
      }
#else
      const __m256i id = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ip + e));
      if constexpr (std::is_same<A, int32_t>::value) {
        const int* vi = reinterpret_cast<const int*>(v);
        __m256i a = _mm256_mullo_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp + e)),
                                       _mm256_i32gather_epi32(vi, id, 4));
        for (int k = 1; k < kx; ++k) {
          const __m256i ik = _mm256_add_epi32(id, _mm256_set1_epi32(static_cast<int32_t>(k * C)));
          a = _mm256_add_epi32(a, _mm256_mullo_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp + k * n + e)),
                                                     _mm256_i32gather_epi32(vi, ik, 4)));
        }
        a = _mm256_srai_epi32(_mm256_add_epi32(a, _mm256_set1_epi32(half)), rshift);
        a = _mm256_min_epi32(_mm256_max_epi32(a, _mm256_setzero_si256()), _mm256_set1_epi32(255));
        const __m128i w16 = _mm_packus_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(out + e), _mm_packus_epi16(w16, w16));
      } else {
        __m256 a = _mm256_mul_ps(_mm256_loadu_ps(wp + e), _mm256_i32gather_ps(v, id, 4));
        for (int k = 1; k < kx; ++k) {
          const __m256i ik = _mm256_add_epi32(id, _mm256_set1_epi32(static_cast<int32_t>(k * C)));
          a = _mm256_add_ps(a, _mm256_mul_ps(_mm256_loadu_ps(wp + k * n + e), _mm256_i32gather_ps(v, ik, 4)));
        }
        simd::vec_t<float> av;
        std::memcpy(&av, &a, sizeof(av));
        store_vec<T, float>(out + e, av);
      }
#endif
    }
    return e;
  }
#endif
  return 0;
}

// Two-tap horizontal pass with the channel count known: out[x][c] = w0[x] * v[s][c] +
// w1[x] * v[s + 1][c] (multiply, multiply, add: the scalar path's order), into acc, then
// the rounding/saturating store.
template <typename T, typename A, int C, int K>
inline void hpassK(const A* __restrict__ v, const int64_t* __restrict__ start, const A* __restrict__ w, int64_t dw,
                   int rshift, T* __restrict__ out, A* __restrict__ acc) {
#if defined(__SSE4_1__)
  if constexpr ((C == 3 || C == 4) && (std::is_same<A, int32_t>::value || std::is_same<A, float>::value)) {
    // one pixel's C channels per 4-lane vector (a 4th lane of junk for C = 3, overwritten by
    // the next pixel; v and acc are scratch rows with slack at the end): the same products
    // and sums, in the same order, as the scalar loop below
    for (int64_t x = 0; x < dw; ++x) {
      const A* p = v + start[x] * C;
      const A* wx = w + K * x;
      if constexpr (std::is_same<A, int32_t>::value) {
        __m128i a = _mm_mullo_epi32(_mm_set1_epi32(wx[0]), _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
        for (int k = 1; k < K; ++k)
          a = _mm_add_epi32(a, _mm_mullo_epi32(_mm_set1_epi32(wx[k]),
                                               _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + k * C))));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(acc + x * C), a);
      } else {
        __m128 a = _mm_mul_ps(_mm_set1_ps(wx[0]), _mm_loadu_ps(p));
        for (int k = 1; k < K; ++k) a = _mm_add_ps(a, _mm_mul_ps(_mm_set1_ps(wx[k]), _mm_loadu_ps(p + k * C)));
        _mm_storeu_ps(acc + x * C, a);
      }
    }
    store_out<T, A>(acc, out, dw * C, rshift);
    return;
  }
#endif
  for (int64_t x = 0; x < dw; ++x) {
    const A* p = v + start[x] * C;
    const A* wx = w + K * x;
    for (int c = 0; c < C; ++c) {
      A a = wx[0] * p[c];
      for (int k = 1; k < K; ++k) {
        const A t = wx[k] * p[k * C + c];
        a = a + t;
      }
      acc[x * C + c] = a;
    }
  }
  store_out<T, A>(acc, out, dw * C, rshift);
}

// Dispatch on the channel count (1, 3, 4) for a tap count K.
template <typename T, typename A, int K>
inline bool hpass_fixed(const A* v, const int64_t* start, const A* w, int64_t dw, int64_t C, int rshift, T* out,
                        A* acc) {
  if (C == 1) hpassK<T, A, 1, K>(v, start, w, dw, rshift, out, acc);
  else if (C == 3) hpassK<T, A, 3, K>(v, start, w, dw, rshift, out, acc);
  else if (C == 4) hpassK<T, A, 4, K>(v, start, w, dw, rshift, out, acc);
  else return false;
  return true;
}

// Horizontal pass of one source row (T) into accumulators (no rounding): for the
// horizontal-first order used when the height grows.
template <typename T, typename A, int C, int K>
inline void hrowK(const T* __restrict__ src, const int64_t* __restrict__ start, const A* __restrict__ w, int64_t dw,
                  A* __restrict__ out) {
  for (int64_t x = 0; x < dw; ++x) {
    const T* p = src + start[x] * C;
    const A* wx = w + K * x;
    for (int c = 0; c < C; ++c) {
      A a = wx[0] * static_cast<A>(p[c]);
      for (int k = 1; k < K; ++k) {
        const A t = wx[k] * static_cast<A>(p[k * C + c]);
        a = a + t;
      }
      out[x * C + c] = a;
    }
  }
}

template <typename T, typename A>
inline void hrow(const T* src, const int64_t* start, const A* w, int kx, int64_t dw, int64_t C, A* out) {
#define IMKERN_HROW(CC, KK) \
  if (C == CC && kx == KK) return hrowK<T, A, CC, KK>(src, start, w, dw, out);
  IMKERN_HROW(1, 2) IMKERN_HROW(3, 2) IMKERN_HROW(4, 2)
  IMKERN_HROW(1, 4) IMKERN_HROW(3, 4) IMKERN_HROW(4, 4)
  IMKERN_HROW(1, 8) IMKERN_HROW(3, 8) IMKERN_HROW(4, 8)
#undef IMKERN_HROW
  for (int64_t x = 0; x < dw; ++x) {
    const T* p = src + start[x] * C;
    const A* wx = w + static_cast<int64_t>(kx) * x;
    for (int64_t c = 0; c < C; ++c) {
      A a = wx[0] * static_cast<A>(p[c]);
      for (int k = 1; k < kx; ++k) {
        const A t = wx[k] * static_cast<A>(p[k * C + c]);
        a = a + t;
      }
      out[x * C + c] = a;
    }
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
  // When the height grows, horizontal first: each source row is resized horizontally once
  // into a ring of ky rows and every output row is a ky-row weighted sum of the ring (rows
  // shared by consecutive output rows are not recomputed). uint8 only when no intermediate
  // shift is needed, so the integer result is the same exact sum in either order (and the
  // CUDA kernel's).
  const bool hfirst = d.h > s.h && (!std::is_same<T, uint8_t>::value || shift == 0);
  if (hfirst) {
    parallel_for(0, rows, rows_grain(rows, ky * DWC + kx * DWC), [&](int64_t t0, int64_t t1) {
      A* __restrict__ ring = thread_scratch<A>(2, static_cast<size_t>(ky * DWC));
      A* __restrict__ acc = thread_scratch<A>(1, static_cast<size_t>(DWC));
      std::vector<int64_t> keys(static_cast<size_t>(ky), -1);
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / d.h, y = t % d.h;
        const int64_t sy0 = ty.start[y];
        const A* wr = wy + y * ky;
        for (int k = 0; k < ky; ++k) {
          const int64_t sy = sy0 + k, slot = sy % ky, key = b * s.h + sy;
          if (keys[slot] != key) {
            hrow<T, A>(row_ptr<T>(src, s, b, sy), tx.start, wx, kx, DW, C, ring + slot * DWC);
            keys[slot] = key;
          }
        }
        {
          const A* r0 = ring + (sy0 % ky) * DWC;
          const A w0 = wr[0];
          for (int64_t e = 0; e < DWC; ++e) acc[e] = w0 * r0[e];
          for (int k = 1; k < ky; ++k) {
            const A* rk = ring + ((sy0 + k) % ky) * DWC;
            const A wk = wr[k];
            for (int64_t e = 0; e < DWC; ++e) {
              const A tk = wk * rk[e];
              acc[e] = acc[e] + tk;
            }
          }
        }
        store_out<T, A>(acc, row_ptr<T>(dst, d, b, y), DWC, rshift);
      }
    });
    return;
  }
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
      T* orow = row_ptr<T>(dst, d, b, y);
      // short windows (bilinear, bicubic, lanczos) per output pixel: plain loads of its
      // source pixels (gathers are slow on some processors; these loads hit L1), taps and
      // channels unrolled
      if (kx == 2 && hpass_fixed<T, A, 2>(v, tx.start, wx, DW, C, rshift, orow, acc)) continue;
      if (kx == 4 && hpass_fixed<T, A, 4>(v, tx.start, wx, DW, C, rshift, orow, acc)) continue;
      if (kx == 8 && hpass_fixed<T, A, 8>(v, tx.start, wx, DW, C, rshift, orow, acc)) continue;
      const int64_t done = hpass_simd<T, A>(v, ip, wp, kx, C, DWC, rshift, orow);
      if (done == DWC) continue;
      for (int64_t e = done; e < DWC; ++e) acc[e] = wp[e] * v[ip[e]];
      for (int k = 1; k < kx; ++k) {
        const A* __restrict__ wk = wp + k * DWC;
        const int32_t off = static_cast<int32_t>(k * C);
        for (int64_t e = done; e < DWC; ++e) acc[e] += wk[e] * v[ip[e] + off];
      }
      store_out<T, A>(acc + done, orow + done, DWC - done, rshift);
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
  visit_dtype(dtype, [&](auto tag) { resize_impl<decltype(tag)>(src, s, dst, d, y, x, shift); });
}

void resize_nearest(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                    const int64_t* sy, const int64_t* sx) {
  visit_dtype(dtype, [&](auto tag) { nearest_impl<decltype(tag)>(src, s, dst, d, sy, sx); });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
