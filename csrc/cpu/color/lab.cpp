// rgb_to_lab, lab_to_rgb: CIE L*a*b*, D65 (compiled per ISA).
//
// Floats: skimage.color.rgb2lab / lab2rgb in the image's type (pow, cbrt); float32 rgb_to_lab
// with FMA (AVX2, AVX-512) by table-driven polynomials and division-free Newton steps
// (labf::fast in lab_float.hpp: no division or double lane, within the float functor's error
// of skimage). uint8: OpenCV's 8-bit
// integer algorithm (color::rgb_to_lab_u8 / lab_to_rgb_u8 of imkern/color_pixel.hpp, tables of
// imkern/color_lab_tables.hpp), equal to cv2.cvtColor bit for bit and to the CUDA kernels.
// uint8 per pixel: 6 bytes moved; forward 6 table reads (3 sRGB -> linear, 3 cube roots) and
// ~25 integer ops; inverse 4 table reads (L -> y, f(y); 3 linear -> sRGB) and ~40 integer ops.
// The SIMD rows do the same integer arithmetic in native int32 lanes, with hardware gathers
// for the table reads on AVX2 / AVX-512 (the tables total ~15 KiB and stay in L1), except the
// forward's sRGB -> linear reads: register permutes on AVX-512 (32 pixels per step, then 16),
// scalar loads on AVX2 (one block ahead of the vector code that reads them).
#include "color/lab_float.hpp"
#include "color/pixel_map.hpp"

namespace imkern {
namespace IMKERN_ISA {

namespace {
const color::Lab8Tables& T8 = color::kLab8;

struct RgbToLabU8 {
  void operator()(const uint8_t* in, uint8_t* out) const { color::rgb_to_lab_u8(T8, in[0], in[1], in[2], out); }
};
struct LabToRgbU8 {
  void operator()(const uint8_t* in, uint8_t* out) const { color::lab_to_rgb_u8(T8, in[0], in[1], in[2], out); }
};

#if defined(__SSE4_1__)
// color::rgb_to_lab_u8 per lane, from the linear values R, G, B (< 2^11): the matrix rows by
// pmaddwd on (R, G) and (B, 1) pairs, (m0 R + m1 G) + (m2 B + 2^11), exact in int32 (rows sum
// to 4096, so each row's sum is < 2^23); the shifts of negative a, b are arithmetic, as in the
// scalar code. Saturation to [0, 255] happens in the narrowing.
// The same from the pairs rg = R | G << 16 and b1 = B | 1 << 16.
IMKERN_ALWAYS_INLINE inline void lab_from_pairs(vi rg, vi b1, vi& L, vi& A, vi& Bo) {
  const int32_t* m = T8.rgb_to_xyz;
  auto row = [&](int k) IMKERN_ALWAYS_INLINE {
    const vi s = simd::madd_i32(rg, vi{} + (m[3 * k] | (m[3 * k + 1] << 16))) + simd::madd_i32(b1, vi{} + (m[3 * k + 2] | (1 << 27)));
    return gather_u16(T8.cbrt, s >> 12);
  };
  const vi fx = row(0), fy = row(1), fz = row(2);
  L = (296 * fy + (-1336934 + (1 << 14))) >> 15;
  A = (500 * (fx - fy) + ((128 << 15) + (1 << 14))) >> 15;
  Bo = (200 * (fy - fz) + ((128 << 15) + (1 << 14))) >> 15;
}
IMKERN_ALWAYS_INLINE inline void lab_from_linear(vi R, vi G, vi B, vi& L, vi& A, vi& Bo) {
  lab_from_pairs(R | (G << 16), B | (1 << 16), L, A, Bo);
}

struct RgbToLabLanes {
  IMKERN_ALWAYS_INLINE void lanes(vi r, vi g, vi b, vi& L, vi& A, vi& B) const {
    lab_from_linear(gather_u16(T8.gamma, r), gather_u16(T8.gamma, g), gather_u16(T8.gamma, b), L, A, B);
  }
};

#if defined(__AVX512BW__)
// AVX-512: the sRGB -> linear table (256 uint16) held in 8 registers and read by vpermt2w (64
// entries per permute, the index's bits 6 and 7 picking among four), 32 lanes at once: the R
// and G of 16 pixels in one vector, B in another. Gathers cost several times as much on Zen 4.
struct RgbToLabRowU8 {
  int64_t operator()(const uint8_t* in, uint8_t* out, int64_t w) const {
    __m512i t[8];
    for (int k = 0; k < 8; ++k) t[k] = _mm512_loadu_si512(T8.gamma + 32 * k);
    const __m512i b6 = _mm512_set1_epi16(64), b7 = _mm512_set1_epi16(128);
    auto lookup = [&](__m512i i) IMKERN_ALWAYS_INLINE {
      const __m512i a = _mm512_permutex2var_epi16(t[0], i, t[1]), b = _mm512_permutex2var_epi16(t[2], i, t[3]);
      const __m512i c = _mm512_permutex2var_epi16(t[4], i, t[5]), d = _mm512_permutex2var_epi16(t[6], i, t[7]);
      const __mmask32 m6 = _mm512_test_epi16_mask(i, b6), m7 = _mm512_test_epi16_mask(i, b7);
      return _mm512_mask_blend_epi16(m7, _mm512_mask_blend_epi16(m6, a, b), _mm512_mask_blend_epi16(m6, c, d));
    };
    int64_t x = 0;
    // 32 pixels per step: three full lookups (R, G, B words); the pairs (R, G) and (B, 1) by
    // unpacking within 128-bit quarters (pixels 0-3, 8-11, .. in the low dwords, 4-7, 12-15, ..
    // in the high ones), which packssdw undoes; vpmovuswb narrows the words in order.
    const __m512i one = _mm512_set1_epi16(1), zero = _mm512_setzero_si512();
    auto bytes = [&](vi lo, vi hi) IMKERN_ALWAYS_INLINE {
      return _mm512_cvtusepi16_epi8(
          _mm512_max_epi16(_mm512_packs_epi32(reinterpret_cast<__m512i>(lo), reinterpret_cast<__m512i>(hi)), zero));
    };
    for (; x + 32 <= w; x += 32) {
      __m256i rb, gb, bb;
      deinterleave3_u8x32(in + 3 * x, rb, gb, bb);
      const __m512i r = lookup(_mm512_cvtepu8_epi16(rb)), g = lookup(_mm512_cvtepu8_epi16(gb)),
                    b = lookup(_mm512_cvtepu8_epi16(bb));
      vi L[2], A[2], B[2];
      lab_from_pairs(reinterpret_cast<vi>(_mm512_unpacklo_epi16(r, g)), reinterpret_cast<vi>(_mm512_unpacklo_epi16(b, one)),
                     L[0], A[0], B[0]);
      lab_from_pairs(reinterpret_cast<vi>(_mm512_unpackhi_epi16(r, g)), reinterpret_cast<vi>(_mm512_unpackhi_epi16(b, one)),
                     L[1], A[1], B[1]);
      interleave3_u8x32(bytes(L[0], L[1]), bytes(A[0], A[1]), bytes(B[0], B[1]), out + 3 * x);
    }
    for (; x + 16 <= w; x += 16) {
      __m128i rb, gb, bb;
      deinterleave3_u8(in + 3 * x, rb, gb, bb);
      const __m512i rg = lookup(_mm512_cvtepu8_epi16(_mm256_inserti128_si256(_mm256_castsi128_si256(rb), gb, 1)));
      const __m512i bl = lookup(_mm512_cvtepu8_epi16(_mm256_castsi128_si256(bb)));
      vi L, A, B;
      lab_from_linear(reinterpret_cast<vi>(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(rg))),
                      reinterpret_cast<vi>(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(rg, 1))),
                      reinterpret_cast<vi>(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(bl))), L, A, B);
      interleave3_u8(narrow16(&L), narrow16(&A), narrow16(&B), out + 3 * x);
    }
    return x;
  }
};
#elif defined(__AVX2__)
#if defined(__GNUC__) && !defined(__clang__)
#define IMKERN_SCALAR_LOOPS __attribute__((optimize("no-tree-vectorize", "no-tree-slp-vectorize")))
#else
#define IMKERN_SCALAR_LOOPS
#endif
// AVX2: the sRGB -> linear reads as scalar loads straight into the pairs simd::madd_i32 takes
// (R | G << 16, B | 1 << 16), then vector loads of those; only the three cube-root reads per
// pixel stay gathers. (Three gathers of 8 cost more than the 48 scalar loads on Zen 4.)
// The gamma table as the pairs' dwords: R, G << 16 and B | 1 << 16 (3 KiB), so that a pixel's
// pairs take three loads and an or (the uint16 table took three more instructions per pixel).
struct LabGammaPairs {
  alignas(64) int32_t r[256], g[256], b[256];
  LabGammaPairs() {
    for (int i = 0; i < 256; ++i) {
      r[i] = T8.gamma[i];
      g[i] = int32_t(T8.gamma[i]) << 16;
      b[i] = int32_t(T8.gamma[i]) | (1 << 16);
    }
  }
};
struct RgbToLabRowU8 {
  // (Not vectorized by the compiler: its SLP form extracts each byte from a vector, vpextrb,
  // ~20% slower than the scalar loads.)
  IMKERN_SCALAR_LOOPS int64_t operator()(const uint8_t* in, uint8_t* out, int64_t w) const {
    static const LabGammaPairs t;
    if (w < 16) return 0;
    // The pairs of block x + 16 are written while block x is converted: the vector loads of a
    // block's pairs come a whole block after their scalar stores (a vector load right after
    // narrower stores to the same bytes waits for them to reach the cache).
    alignas(32) int32_t pairs[2][32];  // per block: R | G << 16 of 16 pixels, then B | 1 << 16
    auto fill = [&](const uint8_t* p, int32_t* q) IMKERN_ALWAYS_INLINE {
#pragma GCC unroll 16
      for (int j = 0; j < 16; ++j) {
        q[j] = t.r[p[3 * j]] | t.g[p[3 * j + 1]];
        q[16 + j] = t.b[p[3 * j + 2]];
      }
    };
    fill(in, pairs[0]);
    int64_t x = 0;
    for (int cur = 0; x + 16 <= w; x += 16, cur ^= 1) {
      if (x + 32 <= w) fill(in + 3 * (x + 16), pairs[cur ^ 1]);
      const int32_t* q = pairs[cur];
      vi L[2], A[2], B[2];
      for (int k = 0; k < 2; ++k)
        lab_from_pairs(*reinterpret_cast<const vi*>(q + 8 * k), *reinterpret_cast<const vi*>(q + 16 + 8 * k), L[k], A[k],
                       B[k]);
      interleave3_u8(narrow16(L), narrow16(A), narrow16(B), out + 3 * x);
    }
    return x;
  }
};
#endif

// color::lab8_f_inv per lane. The truncating i * 108 / 841 of the low branch is taken in float:
// |i * 108| < 2^24 is exact, and a quotient that is not an integer lies at least 1/841 from
// one, far more than its rounding error (< 2^-13 below 1100), so truncation gives C's result.
IMKERN_ALWAYS_INLINE inline vi lab8_f_inv(vi i) {
  const vi lo = __builtin_convertvector(__builtin_convertvector(i * 108, vf) / 841.0f, vi) - 290;
  const vi hi = (((i * i) >> 14) * i) >> 14;
  return i <= 3390 ? lo : hi;
}

// color::lab_to_rgb_u8 per lane (products below 2^31: |x|, |z| <= 72254, |matrix| < 2^14).
struct LabToRgbLanes {
  IMKERN_ALWAYS_INLINE void lanes(vi l, vi a, vi b, vi& R, vi& G, vi& B) const {
    const vi yf = gather_u32(T8.l_to_y_fy, l);
    const vi y = yf & 0xFFFF, fy = reinterpret_cast<vi>(reinterpret_cast<simd::vec_t<uint32_t>>(yf) >> 16);
    const vi x = lab8_f_inv(fy + ((5 * 53687 * a + (1 << 7)) >> 13) - 4194);
    const vi z = lab8_f_inv(fy - ((41943 * b + (1 << 4)) >> 9) + 10484);
    const int32_t* m = T8.xyz_to_rgb;
    auto channel = [&](int c) IMKERN_ALWAYS_INLINE {
      vi v = (m[3 * c] * x + m[3 * c + 1] * y + m[3 * c + 2] * z + (1 << 13)) >> 14;
      v = v < 0 ? vi{} : v;
      v = v > 4095 ? vi{} + 4095 : v;
      return gather_u16(T8.inv_gamma, v);
    };
    R = channel(0);
    G = channel(1);
    B = channel(2);
  }
};
#endif

template <typename T>
struct RgbToLabF {
  void operator()(const T* in, T* out) const { color::rgb_to_lab_float<T>(in[0], in[1], in[2], out); }
};
template <typename T>
struct LabToRgbF {
  void operator()(const T* in, T* out) const { color::lab_to_rgb_float<T>(in[0], in[1], in[2], out); }
};

template <typename T>
void lab_float(bool fwd, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d) {
#if defined(__SSE4_1__)
#if defined(__FMA__)
  if constexpr (std::is_same<T, float>::value) {
    if (fwd)
      return map_pixels<T, T, 3, 3>(src, s, dst, d, RgbToLabF<T>{}, Row3F<T, labf::fast::RgbToLab, RgbToLabF<T>>{});
  }
#endif
  if (fwd) map_pixels<T, T, 3, 3>(src, s, dst, d, RgbToLabF<T>{}, Row3F<T, labf::RgbToLabLanes<T>, RgbToLabF<T>>{});
  else map_pixels<T, T, 3, 3>(src, s, dst, d, LabToRgbF<T>{}, Row3F<T, labf::LabToRgbLanes<T>, LabToRgbF<T>>{});
#else
  if (fwd) map_pixels<T, T, 3, 3>(src, s, dst, d, RgbToLabF<T>{});
  else map_pixels<T, T, 3, 3>(src, s, dst, d, LabToRgbF<T>{});
#endif
}
}  // namespace

void color_lab(ColorOp op, DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d) {
  const bool fwd = op == ColorOp::rgb_to_lab;
  switch (dtype) {
    case DType::u8:
#if defined(__SSE4_1__)
#if defined(__AVX512BW__) || (defined(__AVX2__) && !defined(__AVX512F__))
      if (fwd) map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, RgbToLabU8{}, RgbToLabRowU8{});
#else
      if (fwd) map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, RgbToLabU8{}, Row3U8<RgbToLabLanes>{});
#endif
      else map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, LabToRgbU8{}, Row3U8<LabToRgbLanes>{});
#else
      if (fwd) map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, RgbToLabU8{});
      else map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, LabToRgbU8{});
#endif
      return;
    case DType::f32: return lab_float<float>(fwd, src, s, dst, d);
    case DType::f64: return lab_float<double>(fwd, src, s, dst, d);
    default: throw std::invalid_argument("lab: expected uint8, float32 or float64");
  }
}

}  // namespace IMKERN_ISA
}  // namespace imkern
