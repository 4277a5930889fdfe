// uint8 Gaussian blur as cv2.GaussianBlur computes it (its fixed-point "bit-exact" path),
// compiled per ISA.
//
// Algorithm: the taps are integers in 8 fractional bits summing to 256 (gaussian_kernel_q8 in
// python/imkern/_kernels.py). Each source row is filtered along x into 16-bit sums
// h = sum_j kx[j] * x[j] (at most 255 * 256: exact in 16 bits) kept in a ring of kh rows (in
// column strips sized for the cache; strips whose taps stay inside the image read the source
// in place, the others a copy padded by the border rule); each output row is then
// v = sum_i ky[i] * h_i (at most 255 * 2^16: exact in 32 bits) and out = (v + 2^15) >> 16.
// Every sum is exact, so the result is a pure function of the taps and the input: it does not
// depend on the summation order, the ISA, the strips or the threads, and it equals OpenCV's.
//   * Horizontal pass, 16-bit lanes: the taps are symmetric (every Gaussian), so the mirrored
//     bytes are added first (at most 510; a side tap is at most 128, so the product still fits
//     16 bits): (kw + 1) / 2 multiplies (vpmullw) per output vector.
//   * Vertical pass, kh <= 7: the ring holds h's high and low bytes as two 16-bit planes, and
//     both planes' weighted sums stay exact in 16 bits (folded taps again), combined as
//     (SA + (SB >> 8) + 128) >> 8 (see vpass). No 32-bit lanes, no shuffles but the final pack.
//   * Vertical pass, taller kernels: one plane of h - 32768 and vpmaddwd over row pairs (half
//     the ring loads of the two planes, which matters once the ring lives in L2; see vpass_madd).
// Cost per output element: 1 byte read, 1 written (streamed for outputs larger than the cache);
// (kw + 1) / 2 16-bit multiplies and kw adds horizontally; 2 (kh + 1) / 2 multiplies and 2 kh
// adds (kh <= 7) or kh / 2 multiply-adds and unpacks vertically, per lane of 32 (AVX-512BW),
// 16 (AVX2) or 8 (SSE4.1) elements. 4K RGB 5x5 on one Zen 4 core (loaded machine): ~8.5 ms,
// cv2 ~11 ms.
// Variants: vector code for SSE4.1 (baseline), AVX2 and AVX-512BW from one source through the
// small wrappers in V; kw, kh in {3, 5, 7} unrolled; a scalar loop for rows under two vectors
// (and for targets without SSE4.1).
#include "imkern/filters.hpp"
#include "imkern/parallel.hpp"

#include "filters/filter_rows.hpp"

namespace imkern {
namespace IMKERN_ISA {

namespace {

constexpr int kPlanesMax = 7;  // the tallest kernel whose ring rows hold two planes
constexpr int kBias = 32768;  // the single-plane ring rows hold h - kBias as int16

#if defined(__AVX512BW__) || defined(__AVX2__) || defined(__SSE4_1__)
#define IMKERN_GAUSS_U8_SIMD 1
// The handful of 16/32-bit integer operations the two passes use, for one vector width.
struct V {
#if defined(__AVX512BW__)
  using T = __m512i;
  static constexpr int bytes = 64;
  static T load(const void* p) { return _mm512_loadu_si512(p); }
  static void store(void* p, T v) { _mm512_storeu_si512(p, v); }
  static void stream(void* p, T v) { _mm512_stream_si512(reinterpret_cast<__m512i*>(p), v); }
  static T widen(const uint8_t* p) { return _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static T set16(int v) { return _mm512_set1_epi16(static_cast<short>(v)); }
  static T add16(T a, T b) { return _mm512_add_epi16(a, b); }
  static T mul16(T a, T b) { return _mm512_mullo_epi16(a, b); }
  static T and_(T a, T b) { return _mm512_and_si512(a, b); }
  static T xor_(T a, T b) { return _mm512_xor_si512(a, b); }
  static T set32(int v) { return _mm512_set1_epi32(v); }
  static T add32(T a, T b) { return _mm512_add_epi32(a, b); }
  static T lo16(T a, T b) { return _mm512_unpacklo_epi16(a, b); }
  static T hi16(T a, T b) { return _mm512_unpackhi_epi16(a, b); }
  static T madd(T a, T b) { return _mm512_madd_epi16(a, b); }
  // (vector-extension shift and a zero-masked permute: GCC 12 warns on the intrinsics' undefined source)
  static T shr16_32(T a) { return reinterpret_cast<T>(reinterpret_cast<__v16su>(a) >> 16); }
  static T pack32(T a, T b) { return _mm512_packus_epi32(a, b); }
  static T shr8(T a) { return _mm512_srli_epi16(a, 8); }
  static T pack_bytes(T a, T b) {
    return _mm512_maskz_permutexvar_epi64(0xFF, _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7), _mm512_packus_epi16(a, b));
  }
#elif defined(__AVX2__)
  using T = __m256i;
  static constexpr int bytes = 32;
  static T load(const void* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static void store(void* p, T v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
  static void stream(void* p, T v) { _mm256_stream_si256(reinterpret_cast<__m256i*>(p), v); }
  static T widen(const uint8_t* p) { return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static T set16(int v) { return _mm256_set1_epi16(static_cast<short>(v)); }
  static T add16(T a, T b) { return _mm256_add_epi16(a, b); }
  static T mul16(T a, T b) { return _mm256_mullo_epi16(a, b); }
  static T and_(T a, T b) { return _mm256_and_si256(a, b); }
  static T xor_(T a, T b) { return _mm256_xor_si256(a, b); }
  static T set32(int v) { return _mm256_set1_epi32(v); }
  static T add32(T a, T b) { return _mm256_add_epi32(a, b); }
  static T lo16(T a, T b) { return _mm256_unpacklo_epi16(a, b); }
  static T hi16(T a, T b) { return _mm256_unpackhi_epi16(a, b); }
  static T madd(T a, T b) { return _mm256_madd_epi16(a, b); }
  static T shr16_32(T a) { return _mm256_srli_epi32(a, 16); }
  static T pack32(T a, T b) { return _mm256_packus_epi32(a, b); }
  static T shr8(T a) { return _mm256_srli_epi16(a, 8); }
  static T pack_bytes(T a, T b) { return _mm256_permute4x64_epi64(_mm256_packus_epi16(a, b), 0xD8); }
#else
  using T = __m128i;
  static constexpr int bytes = 16;
  static T load(const void* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
  static void store(void* p, T v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); }
  static void stream(void* p, T v) { _mm_stream_si128(reinterpret_cast<__m128i*>(p), v); }
  static T widen(const uint8_t* p) { return _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }
  static T set16(int v) { return _mm_set1_epi16(static_cast<short>(v)); }
  static T add16(T a, T b) { return _mm_add_epi16(a, b); }
  static T mul16(T a, T b) { return _mm_mullo_epi16(a, b); }
  static T and_(T a, T b) { return _mm_and_si128(a, b); }
  static T xor_(T a, T b) { return _mm_xor_si128(a, b); }
  static T set32(int v) { return _mm_set1_epi32(v); }
  static T add32(T a, T b) { return _mm_add_epi32(a, b); }
  static T lo16(T a, T b) { return _mm_unpacklo_epi16(a, b); }
  static T hi16(T a, T b) { return _mm_unpackhi_epi16(a, b); }
  static T madd(T a, T b) { return _mm_madd_epi16(a, b); }
  static T shr16_32(T a) { return _mm_srli_epi32(a, 16); }
  static T pack32(T a, T b) { return _mm_packus_epi32(a, b); }
  static T shr8(T a) { return _mm_srli_epi16(a, 8); }
  static T pack_bytes(T a, T b) { return _mm_packus_epi16(a, b); }
#endif
  static constexpr int lanes16 = bytes / 2;  // 16-bit lanes per vector
};
#else
#define IMKERN_GAUSS_U8_SIMD 0
#endif

// One element of each pass, for the tails and short rows. A ring row holds h's high bytes
// (plane a) and, `plane` elements further, its low bytes (plane b), each as 16 bits.
template <bool Planes>
inline void h_one(const uint8_t* p, int64_t C, const int32_t* k, int K, uint16_t* a, uint16_t* b) {
  int32_t h = 0;
  for (int j = 0; j < K; ++j) h += k[j] * p[j * C];
  if constexpr (Planes) {
    *a = static_cast<uint16_t>(h >> 8);
    *b = static_cast<uint16_t>(h & 255);
  } else {
    *a = static_cast<uint16_t>(h ^ kBias);
  }
}
inline uint8_t v_one(const uint16_t* const* r, int64_t plane, int64_t x, const int32_t* k, int K) {
  int64_t v = 0;
  for (int i = 0; i < K; ++i) v += static_cast<int64_t>(k[i]) * (r[i][x] * 256 + r[i][plane + x]);
  return static_cast<uint8_t>((v + (1 << 15)) >> 16);
}

// Planes a = h >> 8 and b = h & 255 of h[x] = sum_j k[j] * p[x + j C], x in [0, n), into
// h[0 ..) and h[plane ..); p: n + (K - 1) C bytes. sym: k mirrored (folded taps).
template <int K, bool Planes>
inline void hpass(const uint8_t* p, uint16_t* h, int64_t plane, int64_t n, int64_t C, const int32_t* k, int kw, bool sym) {
  const int taps = K > 0 ? K : kw;
#if IMKERN_GAUSS_U8_SIMD
  constexpr int L = V::lanes16;
  if (n >= L) {
    using T = typename V::T;
    const T low = V::set16(255);
    auto one = [&](int64_t x) IMKERN_ALWAYS_INLINE {
      const uint8_t* q = p + x;
      T a;
      if (sym) {
        const int c = taps / 2;
        a = V::mul16(V::widen(q + c * C), V::set16(k[c]));
#pragma GCC unroll 16
        for (int j = 0; j < c; ++j)
          a = V::add16(a, V::mul16(V::add16(V::widen(q + j * C), V::widen(q + (taps - 1 - j) * C)), V::set16(k[j])));
      } else {
        a = V::mul16(V::widen(q), V::set16(k[0]));
#pragma GCC unroll 16
        for (int j = 1; j < taps; ++j) a = V::add16(a, V::mul16(V::widen(q + j * C), V::set16(k[j])));
      }
      if constexpr (Planes) {
        V::store(h + x, V::shr8(a));
        V::store(h + plane + x, V::and_(a, low));
      } else {
        V::store(h + x, V::xor_(a, V::set16(kBias)));
      }
    };
    int64_t x = 0;
    for (; x + L <= n; x += L) one(x);
    if (x < n) one(n - L);  // the last vector ends at n (rewrites equal values)
    return;
  }
#endif
  (void)sym;
  for (int64_t x = 0; x < n; ++x) h_one<Planes>(p + x, C, k, taps, h + x, h + plane + x);
}

// o[x] = (sum_i k[i] * h_i[x] + 2^15) >> 16 for the K ring rows r, in 16 bits: with
// SA = sum k[i] a_i and SB = sum k[i] b_i (each at most 255 * 256, and with folded taps a side
// tap is at most 128 on a pair sum of at most 510), v = 256 SA + SB, so
// (v + 2^15) >> 16 = (SA + (SB >> 8) + 128) >> 8, whose operand stays below 2^16 because
// v <= 255 * 2^16.
template <int K>
inline void vpass(const uint16_t* const* r, int64_t plane, uint8_t* o, int64_t n, const int32_t* k, int kh, bool sym,
                  bool stream) {
  const int taps = K > 0 ? K : kh;
#if IMKERN_GAUSS_U8_SIMD
  constexpr int L = V::lanes16;
  if (n >= 2 * L) {
    using T = typename V::T;
    const T round = V::set16(128);
    // 16-bit results for the L elements at x: both planes' sums in one walk over the rows
    auto half = [&](int64_t x) IMKERN_ALWAYS_INLINE {
      T sa, sb;
      if (sym) {
        const int c = taps / 2;
        const T kc = V::set16(k[c]);
        sa = V::mul16(V::load(r[c] + x), kc);
        sb = V::mul16(V::load(r[c] + plane + x), kc);
#pragma GCC unroll 16
        for (int i = 0; i < c; ++i) {
          const T ki = V::set16(k[i]);
          const uint16_t *p0 = r[i] + x, *p1 = r[taps - 1 - i] + x;
          sa = V::add16(sa, V::mul16(V::add16(V::load(p0), V::load(p1)), ki));
          sb = V::add16(sb, V::mul16(V::add16(V::load(p0 + plane), V::load(p1 + plane)), ki));
        }
      } else {
        const T k0 = V::set16(k[0]);
        sa = V::mul16(V::load(r[0] + x), k0);
        sb = V::mul16(V::load(r[0] + plane + x), k0);
#pragma GCC unroll 16
        for (int i = 1; i < taps; ++i) {
          const T ki = V::set16(k[i]);
          sa = V::add16(sa, V::mul16(V::load(r[i] + x), ki));
          sb = V::add16(sb, V::mul16(V::load(r[i] + plane + x), ki));
        }
      }
      return V::shr8(V::add16(V::add16(sa, V::shr8(sb)), round));
    };
    int64_t x = 0;
    if (stream) {
      // plain stores up to the first aligned output vector, streaming from there
      const int64_t mis = static_cast<int64_t>(reinterpret_cast<uintptr_t>(o) % V::bytes);
      if (mis) {
        V::store(o, V::pack_bytes(half(0), half(L)));
        x = V::bytes - mis;
      }
      for (; x + 2 * L <= n; x += 2 * L) V::stream(o + x, V::pack_bytes(half(x), half(x + L)));
    } else {
      for (; x + 2 * L <= n; x += 2 * L) V::store(o + x, V::pack_bytes(half(x), half(x + L)));
    }
    if (x < n) V::store(o + n - 2 * L, V::pack_bytes(half(n - 2 * L), half(n - L)));
    return;
  }
#endif
  (void)stream, (void)sym;
  for (int64_t x = 0; x < n; ++x) o[x] = v_one(r, plane, x, k, taps);
}

template <bool Planes>
inline void hpass_k(const uint8_t* p, uint16_t* h, int64_t plane, int64_t n, int64_t C, const int32_t* k, int kw, bool sym) {
  switch (kw) {  // the usual sizes with their loops unrolled
    case 3: return hpass<3, Planes>(p, h, plane, n, C, k, kw, sym);
    case 5: return hpass<5, Planes>(p, h, plane, n, C, k, kw, sym);
    case 7: return hpass<7, Planes>(p, h, plane, n, C, k, kw, sym);
    default: return hpass<0, Planes>(p, h, plane, n, C, k, kw, sym);
  }
}
inline void vpass_k(const uint16_t* const* r, int64_t plane, uint8_t* o, int64_t n, const int32_t* k, int kh, bool sym,
                    bool stream) {
  switch (kh) {
    case 3: return vpass<3>(r, plane, o, n, k, kh, sym, stream);
    case 5: return vpass<5>(r, plane, o, n, k, kh, sym, stream);
    case 7: return vpass<7>(r, plane, o, n, k, kh, sym, stream);
    default: return vpass<0>(r, plane, o, n, k, kh, sym, stream);
  }
}

// The ring rows of tall kernels (kh > kPlanesMax) hold h - 32768 (one plane): the vertical sums
// go by vpmaddwd, two rows per instruction (fewer loads from the ring, which then lives in L2):
// rows i, i + 1 interleaved (unpack lo / hi) times the pair (ky[i], ky[i + 1]) gives
// ky[i] h_i + ky[i + 1] h_{i+1} - 32768 (ky[i] + ky[i + 1]) per 32-bit lane; the sums start at
// 32768 * sum(ky) + 2^15. The unpacks work within 128-bit lanes and packus_epi32 of the
// (lo, hi) pair restores the element order.
inline uint8_t v_one_madd(const uint16_t* const* r, int64_t x, const int32_t* k, int K) {
  int64_t v = 0;
  for (int i = 0; i < K; ++i) v += static_cast<int64_t>(k[i]) * (r[i][x] ^ kBias);
  return static_cast<uint8_t>((v + (1 << 15)) >> 16);
}

inline void vpass_madd(const uint16_t* const* r, uint8_t* o, int64_t n, const int32_t* k, int taps, bool stream) {
#if IMKERN_GAUSS_U8_SIMD
  constexpr int L = V::lanes16;
  if (n >= 2 * L) {
    using T = typename V::T;
    int32_t ksum = 0;
    for (int i = 0; i < taps; ++i) ksum += k[i];
    std::vector<int32_t> kp((taps + 1) / 2);
    for (int i = 0; i < taps; i += 2) {
      const int32_t k1 = i + 1 < taps ? k[i + 1] : 0;
      kp[i / 2] = static_cast<int32_t>(static_cast<uint32_t>(k1) << 16 | static_cast<uint16_t>(k[i]));
    }
    const T start = V::set32(kBias * ksum + (1 << 15));
    auto half = [&](int64_t x) IMKERN_ALWAYS_INLINE {
      T lo = start, hi = start;
      for (int i = 0; i + 1 < taps; i += 2) {
        const T a = V::load(r[i] + x), b = V::load(r[i + 1] + x), kk = V::set32(kp[i / 2]);
        lo = V::add32(lo, V::madd(V::lo16(a, b), kk));
        hi = V::add32(hi, V::madd(V::hi16(a, b), kk));
      }
      if (taps & 1) {
        const T a = V::load(r[taps - 1] + x), kk = V::set32(kp[taps / 2]);  // (a, a) times (k, 0)
        lo = V::add32(lo, V::madd(V::lo16(a, a), kk));
        hi = V::add32(hi, V::madd(V::hi16(a, a), kk));
      }
      return V::pack32(V::shr16_32(lo), V::shr16_32(hi));
    };
    int64_t x = 0;
    if (stream) {
      const int64_t mis = static_cast<int64_t>(reinterpret_cast<uintptr_t>(o) % V::bytes);
      if (mis) {
        V::store(o, V::pack_bytes(half(0), half(L)));
        x = V::bytes - mis;
      }
      for (; x + 2 * L <= n; x += 2 * L) V::stream(o + x, V::pack_bytes(half(x), half(x + L)));
    } else {
      for (; x + 2 * L <= n; x += 2 * L) V::store(o + x, V::pack_bytes(half(x), half(x + L)));
    }
    if (x < n) V::store(o + n - 2 * L, V::pack_bytes(half(n - 2 * L), half(n - L)));
    return;
  }
#endif
  (void)stream;
  for (int64_t x = 0; x < n; ++x) o[x] = v_one_madd(r, x, k, taps);
}

inline bool mirrored(const int32_t* k, int K) {
  bool sym = K % 2 == 1;
  for (int j = 0; j < K / 2; ++j) sym = sym && k[j] == k[K - 1 - j];
  return sym;
}

}  // namespace

void gaussian_u8(const uint8_t* src, const ImageDesc& s, uint8_t* dst, const ImageDesc& d, const int32_t* ky, int kh,
                 const int32_t* kx, int kw, Border border, int cval) {
  const int64_t H = s.h, W = s.w, C = s.c;
  const int ay = kh / 2, ax = kw / 2;
  const int64_t left = ax, right = kw - 1 - ax;
  const int64_t rows = s.n * H;
  const bool sym_x = mirrored(kx, kw), sym_y = mirrored(ky, kh);
  // Short kernels: two 16-bit planes per ring row and 16-bit vertical sums; tall ones: one
  // biased plane and vpmaddwd (see vpass and vpass_madd).
  const bool planes = kh <= kPlanesMax;
  // Column strips keep the ring (kh rows of two 16-bit planes) in cache; the last strip is at
  // least two output vectors wide so it stays on the vector path. Results never depend on them.
  StripPlan plan = plan_strips<uint8_t>(dst, s, d, kh, (planes ? 2 : 1) * sizeof(uint16_t));
  if (plan.sp < W) plan.merge = std::max<int64_t>(plan.merge, 128);
  const int64_t SP = plan.widest();
  const int64_t plane = round_up_line<uint16_t>(SP * C + 64);  // plane b's offset in a ring row
  parallel_for(0, rows, filter_grain(rows, kh, get_num_threads()), [&](int64_t t0, int64_t t1) {
    uint8_t* padded = thread_scratch<uint8_t>(1, static_cast<size_t>((left + SP + right) * C) + 64);
    ring_pipeline<uint16_t>(
        t0, t1, H, W, kh, ay, plan.sp, plan.first, plan.merge, (planes ? 2 : 1) * plane,
        [&](int64_t b, int64_t sy, int64_t x0, int64_t x1, uint16_t* slot) {
          // Strips whose taps stay inside the image read the source row in place; the others
          // (and constant rows) from a copy padded by the border rule.
          const int64_t yy = border_index(sy, H, border);
          const uint8_t* p;
          if (yy >= 0 && x0 - left >= 0 && x1 + right <= W) {
            p = row_ptr<uint8_t>(src, s, b, yy) + (x0 - left) * C;
            const int64_t ahead = sy + 4;
            if (ahead >= 0 && ahead < H) prefetch_span(row_ptr<uint8_t>(src, s, b, ahead) + x0 * C, (x1 - x0) * C);
          } else {
            load_source_segment<uint8_t, uint8_t>(src, s, b, sy, x0, x1, left, right, border, static_cast<uint8_t>(cval),
                                                  padded);
            p = padded;
          }
          if (planes) hpass_k<true>(p, slot, plane, (x1 - x0) * C, C, kx, kw, sym_x);
          else hpass_k<false>(p, slot, plane, (x1 - x0) * C, C, kx, kw, sym_x);
        },
        [&](const uint16_t* const* r, int64_t b, int64_t y, int64_t x0, int64_t x1) {
          uint8_t* o = row_ptr<uint8_t>(dst, d, b, y) + x0 * C;
          if (planes) vpass_k(r, plane, o, (x1 - x0) * C, ky, kh, sym_y, plan.stream);
          else vpass_madd(r, o, (x1 - x0) * C, ky, kh, plan.stream);
        },
        [](int64_t, int64_t, int64_t) -> int64_t { return 0; });
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
