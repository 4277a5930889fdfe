// Fixed thresholds, integer histograms, and cv2's Otsu / triangle levels (compiled per ISA).
//
// threshold: one pass, 1 compare + 1 select per element (bytes/pixel = 2 sizeof(T) C), in
// vectors for every dtype (32 bytes on AVX2 and AVX-512, see BodyVec; 16 on the baseline; a
// 256-entry table lookup per byte measured ~50x slower than cv2's vector loop), the stores
// aligned to the vector size. It runs at the speed of a copy of the same bytes (np.copyto, one thread),
// the limit of a streaming map. Integer semantics follow cv2.threshold: the
// level is floor(thresh) and maxval is round(maxval) saturated, so integer pixels compare
// exactly as cv2 does; float32 compares against float32(thresh) (as cv2's thresh_32f).
// adaptive_compare_u8: adaptive_threshold's second pass, one uint8 compare per pixel.
// histogram_int: per-chunk private histograms (u8: 8 interleaved tables on the chunk's stack to
// break the store-to-load dependency on repeated values, 256 KiB chunks), summed in chunk order
// (integers: exact).
// otsu_level / triangle_level: cv2's loops over the histogram in the same float64 operation
// order, compiled without FMA contraction so every rounding matches cv2's.
#include <cfloat>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "imkern/cpu_params.hpp"
#include "imkern/filters.hpp"
#include "imkern/parallel.hpp"
#include "common/rows.hpp"
#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace imkern {
namespace IMKERN_ISA {

namespace {

template <typename T, ThreshKind K>
inline T thresh_one(T x, T t, T mv) {
  // NaN: binary and binary_inv give 0, the other kinds keep the NaN (cv2's float32 results).
  switch (K) {
    case ThreshKind::binary: return x > t ? mv : T(0);
    case ThreshKind::binary_inv: return x <= t ? mv : T(0);
    case ThreshKind::trunc: return x > t ? t : x;
    case ThreshKind::tozero: return x <= t ? T(0) : x;
    case ThreshKind::tozero_inv: return x > t ? T(0) : x;
  }
  return x;
}

// A whole vector stored with a non-temporal store (p aligned to the vector's size).
template <typename T>
IMKERN_ALWAYS_INLINE inline void stream_store(T* p, simd::vec_t<T> v) {
#if defined(__AVX512F__)
  _mm512_stream_si512(reinterpret_cast<__m512i*>(p), reinterpret_cast<__m512i>(v));
#elif defined(__AVX__)
  _mm256_stream_si256(reinterpret_cast<__m256i*>(p), reinterpret_cast<__m256i>(v));
#elif defined(__SSE2__)
  _mm_stream_si128(reinterpret_cast<__m128i*>(p), reinterpret_cast<__m128i>(v));
#else
  simd::storeu(p, v);
#endif
}

// The vector form of thresh_one (comparisons are false for NaN lanes: the same results).
template <ThreshKind K, typename V>
IMKERN_ALWAYS_INLINE inline V thresh_vec(V v, V tv, V mvv) {
  const V zero{};
  switch (K) {
    case ThreshKind::binary: return v > tv ? mvv : zero;
    case ThreshKind::binary_inv: return v <= tv ? mvv : zero;
    case ThreshKind::trunc: return v > tv ? tv : v;
    case ThreshKind::tozero: return v <= tv ? zero : v;
    case ThreshKind::tozero_inv: return v > tv ? zero : v;
  }
  return v;
}

// Elements [x0, x1) of a row, fewer than a vector: one masked load and store on AVX-512
// (a masked load does not touch, or fault on, the bytes it skips), else one by one.
template <typename T, ThreshKind K>
IMKERN_ALWAYS_INLINE inline void thresh_part(const T* src, T* dst, int64_t x0, int64_t x1, T t, T mv) {
#if defined(__AVX512BW__) && defined(__BMI2__)
  if (x1 <= x0) return;
  const __mmask64 m = _bzhi_u64(~uint64_t{0}, static_cast<unsigned>((x1 - x0) * static_cast<int64_t>(sizeof(T))));
  const __m512i v = _mm512_maskz_loadu_epi8(m, src + x0);
  const simd::vec_t<T> r = thresh_vec<K>(reinterpret_cast<simd::vec_t<T>>(v), simd::splat<T>(t), simd::splat<T>(mv));
  _mm512_mask_storeu_epi8(dst + x0, m, reinterpret_cast<__m512i>(r));
#else
  for (int64_t x = x0; x < x1; ++x) dst[x] = thresh_one<T, K>(src[x], t, mv);
#endif
}

// The vector of the plain-store body: at most 32 bytes. On Zen 4 (which splits 512-bit
// stores in two) the 256-bit loop ran 4-10% faster than the 512-bit one wherever the image
// lives in the L3 (1080p, one thread, fresh outputs: uint8 RGB 176 -> 153 us, uint16 gray
// 94 -> 92, float32 gray 265 -> 224; imkern/cv2 1.08-1.12 -> 0.98-1.07) and the same in the
// L2 (224x224x3); glibc's memcpy uses 32-byte vectors on this CPU too. The streamed body
// keeps whole 64-byte lines per non-temporal store.
template <typename T>
struct BodyVec {
  typedef T type __attribute__((vector_size(simd::kBytes > 32 ? 32 : simd::kBytes)));
};

// One row (or flat run) of n elements. The vector stores start at the first element whose
// address is aligned to the vector size: a misaligned 64-byte store writes two cache lines,
// and numpy's buffers are only 16-byte aligned (1080p uint8 gray into an output at +16 or
// +48 bytes, one thread, AVX-512: ~50 -> ~45 us).
// The head before it and the tail after the last whole vector are masked (AVX-512); on the
// other ISAs they are one vector each, stored unaligned over elements the body rewrites,
// when src and dst do not overlap (recomputing from the unchanged src gives the same
// values), else element by element (in place: no element may be thresholded twice).
// Stream: the whole 64-byte lines (stream_span) are stored non-temporally.
template <typename T, ThreshKind K, bool Stream = false>
inline void thresh_row(const T* src, T* dst, int64_t n, T t, T mv) {
  using namespace simd;
  constexpr int64_t L = Vec<T>::lanes;
  const vec_t<T> tv = splat<T>(t), mvv = splat<T>(mv);
  const uintptr_t a = reinterpret_cast<uintptr_t>(dst);
  if (n < L || a % sizeof(T) != 0) {
    // short, or dst not even aligned to its element (a view into a byte buffer): plain stores
    int64_t x = 0;
    for (; x + L <= n; x += L) storeu(dst + x, thresh_vec<K>(loadu(src + x), tv, mvv));
    thresh_part<T, K>(src, dst, x, n, t, mv);
    return;
  }
  if constexpr (Stream) {
    // the whole lines of stream_span by non-temporal stores, the partial lines at both ends
    // as plain rows of their own (no line takes both kinds of store)
    const StreamSpan sp = stream_span<T, 1>(dst, n);
    thresh_row<T, K>(src, dst, sp.begin, t, mv);
    for (int64_t x = sp.begin; x < sp.end; x += L)
      stream_store<T>(dst + x, thresh_vec<K>(loadu(src + x), tv, mvv));
    thresh_row<T, K>(src + sp.end, dst + sp.end, n - sp.end, t, mv);
    return;
  }
  const int64_t head = static_cast<int64_t>((kBytes - a % kBytes) % kBytes / sizeof(T));
#if !(defined(__AVX512BW__) && defined(__BMI2__))
  const uintptr_t s0 = reinterpret_cast<uintptr_t>(src), bytes = static_cast<uintptr_t>(n) * sizeof(T);
  const bool disjoint = s0 + bytes <= a || a + bytes <= s0;
#endif
  if (head) {
#if defined(__AVX512BW__) && defined(__BMI2__)
    thresh_part<T, K>(src, dst, 0, head, t, mv);
#else
    if (disjoint) storeu(dst, thresh_vec<K>(loadu(src), tv, mvv));
    else thresh_part<T, K>(src, dst, 0, head, t, mv);
#endif
  }
  int64_t x = head;
  using B = typename BodyVec<T>::type;
  constexpr int64_t LB = static_cast<int64_t>(sizeof(B) / sizeof(T));
  const B tb = B{} + t, mb = B{} + mv;
  for (; x + LB <= n; x += LB) {
    B v;
    std::memcpy(&v, src + x, sizeof(B));
    const B r = thresh_vec<K>(v, tb, mb);
    std::memcpy(dst + x, &r, sizeof(B));
  }
  if (x < n) {
#if defined(__AVX512BW__) && defined(__BMI2__)
    thresh_part<T, K>(src, dst, x, n, t, mv);
#else
    if (disjoint) storeu(dst + n - L, thresh_vec<K>(loadu(src + n - L), tv, mvv));
    else thresh_part<T, K>(src, dst, x, n, t, mv);
#endif
  }
}

template <typename T, ThreshKind K>
void thresh_impl(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, T t, T mv) {
  const int64_t rows = s.n * s.h, n = s.w * s.c;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, n * sizeof(T)));
  // images moving more than the effective L3 (input and output bytes: stream_bytes, as the
  // filters and flip / pad) stream their output: a third less memory traffic (1080p float32
  // RGB, one thread: 1630-1872 vs 2142-2446 us in sweep.py). Rows under 1 KiB keep plain
  // stores (a row's head and tail are a larger share of it).
  const int64_t bytes = 2 * rows * n * static_cast<int64_t>(sizeof(T));
  const bool stream = bytes > cpu_params().stream_bytes && n * static_cast<int64_t>(sizeof(T)) >= 1024;
  // contiguous source and output (the common case): one flat run split into 64 KiB chunks, no
  // per-row setup or row tails; the chunks start on an output line (after a head of less
  // than a line), so only the first and last pay a head or tail (and, streamed, every line
  // between is whole)
  const bool flat = s.row_stride == n && d.row_stride == n &&
                    (s.n == 1 || (s.batch_stride == s.h * n && d.batch_stride == s.h * n));
  if (flat) {
    const T* a = static_cast<const T*>(src);
    T* o = static_cast<T*>(dst);
    const int64_t total = rows * n;
    const uintptr_t oa = reinterpret_cast<uintptr_t>(o);
    const int64_t head = oa % sizeof(T) ? 0 : std::min<int64_t>(total,
        static_cast<int64_t>((64 - oa % 64) % 64 / sizeof(T)));
    const int64_t chunk = (int64_t{1} << 16) / static_cast<int64_t>(sizeof(T));
    if (head) thresh_row<T, K>(a, o, head, t, mv);
    parallel_for(head, total, chunk, [&](int64_t e0, int64_t e1) {
      if (stream) {
        thresh_row<T, K, true>(a + e0, o + e0, e1 - e0, t, mv);
        stream_fence();
      } else {
        thresh_row<T, K>(a + e0, o + e0, e1 - e0, t, mv);
      }
    });
    return;
  }
  parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
    // (b, y) stepped rather than divided out of r for every row (64-bit divisions)
    int64_t b = r0 / s.h, y = r0 % s.h;
    for (int64_t r = r0; r < r1; ++r) {
      const T* a = row_ptr<T>(src, s, b, y);
      T* o = row_ptr<T>(dst, d, b, y);
      if (stream) thresh_row<T, K, true>(a, o, n, t, mv);
      else thresh_row<T, K>(a, o, n, t, mv);
      if (++y == s.h) y = 0, ++b;
    }
    if (stream) stream_fence();
  });
}

template <typename T>
void thresh_dispatch(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, ThreshKind kind,
                     T t, T mv) {
  switch (kind) {
    case ThreshKind::binary: return thresh_impl<T, ThreshKind::binary>(src, s, dst, d, t, mv);
    case ThreshKind::binary_inv: return thresh_impl<T, ThreshKind::binary_inv>(src, s, dst, d, t, mv);
    case ThreshKind::trunc: return thresh_impl<T, ThreshKind::trunc>(src, s, dst, d, t, mv);
    case ThreshKind::tozero: return thresh_impl<T, ThreshKind::tozero>(src, s, dst, d, t, mv);
    case ThreshKind::tozero_inv: return thresh_impl<T, ThreshKind::tozero_inv>(src, s, dst, d, t, mv);
  }
  throw std::invalid_argument("threshold: unknown kind");
}

// An integer dtype's level and maxval as cv2 derives them; the caller has handled levels
// outside [0, max) (every pixel then maps to one expression of x, see threshold()).
template <typename T>
void thresh_int(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, ThreshKind kind,
                double thresh, double maxval) {
  constexpr int64_t top = std::numeric_limits<T>::max();
  const double ft = std::floor(thresh);
  // Levels below 0 or at/above the top compare the same as -1 / top (no pixel is > top).
  const int64_t it = ft < -1 ? -1 : (ft > static_cast<double>(top) ? top : static_cast<int64_t>(ft));
  double rm = std::nearbyint(maxval);  // cvRound: to nearest, ties to even
  rm = rm < 0 ? 0 : (rm > static_cast<double>(top) ? static_cast<double>(top) : rm);
  const T mv = static_cast<T>(rm);
  if (it < 0) {
    // every pixel is > thresh: binary -> maxval, binary_inv / trunc (saturate(thresh)) /
    // tozero_inv -> 0, tozero -> x. The kinds at the level top, which no pixel exceeds, give
    // the same: binary_inv -> maxval, tozero_inv -> x, binary -> 0 (the vector loops).
    const T tt = static_cast<T>(top);
    if (kind == ThreshKind::binary) return thresh_dispatch<T>(src, s, dst, d, ThreshKind::binary_inv, tt, mv);
    if (kind == ThreshKind::tozero) return thresh_dispatch<T>(src, s, dst, d, ThreshKind::tozero_inv, tt, mv);
    return thresh_dispatch<T>(src, s, dst, d, ThreshKind::binary, tt, mv);
  }
  const T t = static_cast<T>(it);
  // trunc maps x > t to t itself (maxval is not used)
  thresh_dispatch<T>(src, s, dst, d, kind, t, mv);
}

}  // namespace

void threshold(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, ThreshKind kind,
               double thresh, double maxval) {
  switch (dtype) {
    case DType::u8: return thresh_int<uint8_t>(src, s, dst, d, kind, thresh, maxval);
    case DType::u16: return thresh_int<uint16_t>(src, s, dst, d, kind, thresh, maxval);
    case DType::f32:
      return thresh_dispatch<float>(src, s, dst, d, kind, static_cast<float>(thresh), static_cast<float>(maxval));
    case DType::f64: return thresh_dispatch<double>(src, s, dst, d, kind, thresh, maxval);
    default: throw std::invalid_argument("threshold: unsupported dtype");
  }
}

// adaptive_threshold's compare: out = (src - mean > -idelta) ? maxval : 0 (binary) or
// (src - mean <= -idelta) ? maxval : 0 (binary_inv), uint8, in uint8 lanes (32 per vector
// on AVX2 and AVX-512: one pass near the speed of a copy; the 16-bit lanes filled element by element that
// it replaces ran 11x slower: 811 -> 74 us on 1080p gray, np.copyto 46). With lim = -idelta
// (adaptive_threshold passes [-256, 256]), d = src - mean in [-255, 255] and
// a (-) b = max(a - b, 0) (saturating):
//   lim >= 0: d > lim  <=>  (src (-) mean) > min(lim, 255)
//   lim < 0:  d > lim  <=>  (mean (-) src) < -lim  <=>  !((mean (-) src) > -lim - 1)
// so every case is out = (p (-) q) > k ? yes : no, with (p, q) = (src, mean) or (mean, src)
// and (yes, no) = (maxval, 0) or (0, maxval): exact, no widening.
void adaptive_compare_u8(const uint8_t* src, const ImageDesc& s, const uint8_t* mean, const ImageDesc& m,
                         uint8_t* dst, const ImageDesc& d, int idelta, uint8_t maxval, bool inv) {
  const int64_t lim = -static_cast<int64_t>(idelta);  // any int: levels beyond +-255 saturate k
  const bool pos = lim >= 0;
  const uint8_t k = static_cast<uint8_t>(pos ? std::min<int64_t>(lim, 255) : std::min<int64_t>(-lim - 1, 255));
  const bool flip = !pos != inv;
  const uint8_t yes = flip ? 0 : maxval, no = flip ? maxval : 0;
  const int64_t rows = s.n * s.h, n = s.w * s.c;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, n));
  parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
    using namespace simd;
    using v8 = BodyVec<uint8_t>::type;
    constexpr int64_t L = sizeof(v8);
    const v8 kv = v8{} + k, yv = v8{} + yes, nv = v8{} + no;
    int64_t b = r0 / s.h, y = r0 % s.h;
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* a = row_ptr<uint8_t>(src, s, b, y);
      const uint8_t* mm = row_ptr<uint8_t>(mean, m, b, y);
      const uint8_t* p = pos ? a : mm;
      const uint8_t* q = pos ? mm : a;
      uint8_t* o = row_ptr<uint8_t>(dst, d, b, y);
      int64_t x = 0;
      for (; x + L <= n; x += L) {
        v8 vp, vq;
        std::memcpy(&vp, p + x, L);
        std::memcpy(&vq, q + x, L);
        const v8 sub = (vp > vq ? vp : vq) - vq;  // p (-) q
        const v8 r = sub > kv ? yv : nv;
        std::memcpy(o + x, &r, L);
      }
      for (; x < n; ++x) o[x] = (p[x] > q[x] ? p[x] - q[x] : 0) > k ? yes : no;
      if (++y == s.h) y = 0, ++b;
    }
  });
}

void histogram_int(DType dtype, const void* src, const ImageDesc& s, int64_t* hist) {
  const int nb = dtype == DType::u8 ? 256 : 65536;
  if (dtype != DType::u8 && dtype != DType::u16) throw std::invalid_argument("histogram: uint8 or uint16 only");
  const int64_t rows = s.n * s.h, n = s.w * s.c;
  // uint8: chunks of about 256 KiB of pixels (32 on a 4K image, ~75 us each), so that two
  // threads end within a chunk of each other even when one starts late (a worker woken from
  // sleep, a vCPU the host lends elsewhere): with 1 MiB chunks (8 on 4K, 4 per thread's home
  // range) a late thread left its partner a whole 0.3 ms chunk to finish alone. Each chunk
  // counts into a table on its stack and leaves its 256 sums in one array allocated once per
  // call (no allocation per chunk, no heap blocks of two threads side by side); the sums are
  // added in chunk order (integers: exact, and independent of the thread count).
  // uint16: 256-KiB tables per chunk, so chunks of about 1 MiB of pixels (the table's
  // zeroing and summing stay small beside the counting).
  const int64_t target = dtype == DType::u8 ? (int64_t{1} << 18) : (int64_t{1} << 20);
  const int64_t grain = std::max<int64_t>(1, target / std::max<int64_t>(1, n));
  const int64_t chunks = parallel_chunks(0, rows, grain);
  std::fill(hist, hist + nb, 0);
  if (dtype == DType::u8) {
    std::vector<uint32_t> part(static_cast<size_t>(chunks) * 256);
    parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
      // 8 tables, combined at the end: repeated values do not serialize on one counter; the
      // pixels come 8 at a time in one 64-bit load (one memory operation per pixel fewer:
      // astronaut 1080p gray, one thread, 646 -> 580 us in a standalone loop).
      alignas(64) uint32_t h0[8 * 256];
      std::memset(h0, 0, sizeof h0);
      int64_t b = r0 / s.h, y = r0 % s.h;
      for (int64_t r = r0; r < r1; ++r) {
        const uint8_t* a = row_ptr<uint8_t>(src, s, b, y);
        int64_t x = 0;
        for (; x + 8 <= n; x += 8) {
          uint64_t w;
          std::memcpy(&w, a + x, 8);
          for (int k = 0; k < 8; ++k) ++h0[256 * k + ((w >> (8 * k)) & 255)];
        }
        for (; x < n; ++x) ++h0[a[x]];
        if (++y == s.h) y = 0, ++b;
      }
      uint32_t* o = part.data() + (r0 / grain) * 256;
      for (int v = 0; v < 256; ++v) {
        uint32_t t = 0;
        for (int k = 0; k < 8; ++k) t += h0[256 * k + v];
        o[v] = t;
      }
    });
    for (int64_t c = 0; c < chunks; ++c)
      for (int v = 0; v < 256; ++v) hist[v] += part[static_cast<size_t>(c * 256 + v)];
    return;
  }
  std::vector<std::vector<uint32_t>> part(static_cast<size_t>(chunks));
  parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
    auto& h = part[static_cast<size_t>(r0 / grain)];
    h.assign(65536, 0);
    for (int64_t r = r0; r < r1; ++r) {
      const uint16_t* a = row_ptr<uint16_t>(src, s, r / s.h, r % s.h);
      for (int64_t x = 0; x < n; ++x) ++h[a[x]];
    }
  });
  // A chunk holds < 2^32 elements only when grain rows do; rows are bounded by 2^18 / 2^20
  // pixels per chunk unless a single row is longer, which uint32 still counts exactly (< 2^32).
  for (auto& h : part)
    for (int v = 0; v < nb && v < static_cast<int>(h.size()); ++v) hist[v] += h[v];
}

// cv2's getThreshVal_Otsu (imgproc/thresh.cpp) on a histogram, operation for operation.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#else
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif
double otsu_level(const int64_t* h, int N) {
  int64_t total = 0;
  for (int i = 0; i < N; ++i) total += h[i];
  if (total == 0) return 0;
  double mu = 0;
  const double scale = 1. / static_cast<double>(total);
  for (int i = 0; i < N; ++i) mu += i * static_cast<double>(h[i]);
  mu *= scale;
  double mu1 = 0, q1 = 0, max_sigma = 0, max_val = 0;
  for (int i = 0; i < N; ++i) {
    const double p_i = static_cast<double>(h[i]) * scale;
    mu1 *= q1;
    q1 += p_i;
    const double q2 = 1. - q1;
    if (std::min(q1, q2) < FLT_EPSILON || std::max(q1, q2) > 1. - FLT_EPSILON) continue;
    mu1 = (mu1 + i * p_i) / q1;
    const double mu2 = (mu - q1 * mu1) / q2;
    const double sigma = q1 * q2 * (mu1 - mu2) * (mu1 - mu2);
    if (sigma > max_sigma) {
      max_sigma = sigma;
      max_val = i;
    }
  }
  return max_val;
}
#if defined(__clang__)
#pragma STDC FP_CONTRACT DEFAULT
#else
#pragma GCC pop_options
#endif

// cv2's getThreshVal_Triangle_8u on a histogram (integer arithmetic up to the distances,
// whose products are exact in float64).
double triangle_level(const int64_t* hin, int N) {
  std::vector<int64_t> h(hin, hin + N);
  int left = 0, right = 0, max_ind = 0;
  int64_t mx = 0;
  for (int i = 0; i < N; ++i)
    if (h[i] > 0) {
      left = i;
      break;
    }
  if (left > 0) left--;
  for (int i = N - 1; i > 0; --i)
    if (h[i] > 0) {
      right = i;
      break;
    }
  if (right < N - 1) right++;
  for (int i = 0; i < N; ++i)
    if (h[i] > mx) {
      mx = h[i];
      max_ind = i;
    }
  bool flipped = false;
  if (max_ind - left < right - max_ind) {
    flipped = true;
    std::reverse(h.begin(), h.end());
    left = N - 1 - right;
    max_ind = N - 1 - max_ind;
  }
  double thresh = left, dist = 0;
  const double a = static_cast<double>(mx), b = left - max_ind;
  for (int i = left + 1; i <= max_ind; ++i) {
    const double tempdist = a * i + b * static_cast<double>(h[i]);
    if (tempdist > dist) {
      dist = tempdist;
      thresh = i;
    }
  }
  thresh--;
  if (flipped) thresh = N - 1 - thresh;
  return thresh;
}

}  // namespace IMKERN_ISA
}  // namespace imkern
