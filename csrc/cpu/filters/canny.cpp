// Canny edge detector on uint8 images, the same edge map as cv2.Canny (compiled per ISA).
//
// Algorithm (cv2.Canny's, in integers):
//   1. Sobel dx, dy (ksize 3, 5, 7; replicated borders; ksize 7 scaled by 1/16 and rounded to
//      nearest-even, as cv2 does to keep them in int16), per channel; magnitude |dx| + |dy|
//      (L1) or dx^2 + dy^2 (L2); for C > 1 the channel with the largest magnitude (the first
//      on ties) gives the pixel's dx, dy and magnitude.
//   2. Non-maximum suppression with cv2's fixed-point sector test (tan 22.5 deg = 13573 / 2^15)
//      against the magnitudes of the neighbours (0 outside the image); a pixel is a candidate
//      when it is a maximum and its magnitude > low, strong when also > high.
//   3. Hysteresis: the edges are the candidates 8-connected (through candidates) to a strong
//      one. cv2 marks the same set (its stack order and "prev_flag" shortcut change the work,
//      not the result), so the result is defined independently of the traversal order.
// Steps 1-2 run in one pass over row chunks (threads): each source row is filtered along x
// once into a ring of K int32 rows (smooth and derivative), each gradient row into a ring of
// 3, and the NMS works on int32 vectors of the ISA's width; it writes 0 / 1 (candidate) /
// 2 (strong) into a state map framed by zeros (cv2's layout) and collects the strong pixels.
// Step 3 is a serial flood fill from them (it touches only edge pixels; no bounds checks
// thanks to the frame), then one vector pass maps 2 -> 255, else 0, into the output.
// Cost per pixel: 1 byte read, 1 written, ~2 C K int ops per filter and direction, ~30 int
// vector ops of NMS per W lanes; the flood fill is O(edge pixels).
#include <cstdlib>
#include <cstring>

#include "imkern/filters.hpp"
#include "imkern/parallel.hpp"
#include "common/rows.hpp"

// GCC 12 reports _mm512_undefined_*() inside the AVX-512 conversion intrinsics as
// maybe-uninitialized (a known false positive of its headers; see color/pixel_map.hpp).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace imkern {
namespace IMKERN_ISA {

namespace {

template <int K> struct SobelTaps;
template <> struct SobelTaps<3> {
  static constexpr int sm[3] = {1, 2, 1}, dv[3] = {-1, 0, 1};
};
template <> struct SobelTaps<5> {
  static constexpr int sm[5] = {1, 4, 6, 4, 1}, dv[5] = {-1, -2, 0, 2, 1};
};
template <> struct SobelTaps<7> {
  static constexpr int sm[7] = {1, 6, 15, 20, 15, 6, 1}, dv[7] = {-1, -4, -5, 0, 5, 4, 1};
};

// v / 16 rounded to nearest, ties to even (cv2's scale 1/16 then cvRound).
inline int32_t div16_rne(int32_t v) {
  const int32_t q = v >> 4, r = v & 15;
  return q + ((r > 8) | ((r == 8) & (q & 1)));
}

// L bytes at p zero-extended to int32 lanes.
inline simd::vec_t<int32_t> widen_u8(const uint8_t* p) {
  using vi = simd::vec_t<int32_t>;
#if defined(__AVX512F__)
  return reinterpret_cast<vi>(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
#elif defined(__AVX2__)
  return reinterpret_cast<vi>(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
#elif defined(__SSE4_1__)
  int32_t w;
  std::memcpy(&w, p, 4);
  return reinterpret_cast<vi>(_mm_cvtepu8_epi32(_mm_cvtsi32_si128(w)));
#else
  vi v;
  for (int k = 0; k < simd::Vec<int32_t>::lanes; ++k) v[k] = p[k];
  return v;
#endif
}

struct Rows {  // per-thread buffers of one chunk
  std::vector<int32_t> hd, hs;         // K rows of W * C: x-derivative and x-smoothed source rows
  std::vector<int64_t> hrow;           // source row held by each ring slot
  std::vector<int32_t> gdx, gdy, gmag;  // 3 gradient rows: dx, dy (W), magnitude (W + 2, 0 at both ends)
  std::vector<int64_t> grow;           // gradient row held by each slot
  std::vector<int32_t> edx, edy, emag; // per-element dx, dy, magnitude (W * C), for C > 1
};

template <int K>
class CannyRows {
 public:
  CannyRows(const uint8_t* src, const ImageDesc& s, bool l2, Rows& R) : src_(src), s_(s), l2_(l2), R_(R) {
    const int64_t W = s.w, C = s.c, WC = W * C;
    R.hd.assign(K * WC, 0);
    R.hs.assign(K * WC, 0);
    R.hrow.assign(K, INT64_MIN);
    R.gdx.assign(3 * W, 0);
    R.gdy.assign(3 * W, 0);
    R.gmag.assign(3 * (W + 2), 0);
    R.grow.assign(3, INT64_MIN);
    if (C > 1) {
      R.edx.assign(WC, 0);
      R.edy.assign(WC, 0);
      R.emag.assign(WC, 0);
    }
  }
  void new_image(int64_t b) {
    b_ = b;
    std::fill(R_.hrow.begin(), R_.hrow.end(), INT64_MIN);
    std::fill(R_.grow.begin(), R_.grow.end(), INT64_MIN);
  }
  // Gradient row y (any y; outside the image: magnitude 0): pointers to dx, dy, mag (mag[-1]
  // and mag[W] are 0).
  void grad(int64_t y, const int32_t*& dx, const int32_t*& dy, const int32_t*& mag) {
    const int64_t W = s_.w;
    const int slot = static_cast<int>(((y % 3) + 3) % 3);
    int32_t* gx = R_.gdx.data() + slot * W;
    int32_t* gy = R_.gdy.data() + slot * W;
    int32_t* gm = R_.gmag.data() + slot * (W + 2) + 1;
    if (R_.grow[slot] != y) {
      R_.grow[slot] = y;
      if (y < 0 || y >= s_.h) std::fill(gm - 1, gm + W + 1, 0);
      else compute(y, gx, gy, gm);
    }
    dx = gx;
    dy = gy;
    mag = gm;
  }

 private:
  // Source row sy (clamped: replicate) filtered along x into ring slot.
  void hrow(int64_t sy, int32_t*& hd, int32_t*& hs) {
    const int64_t W = s_.w, C = s_.c, WC = W * C;
    const int slot = static_cast<int>(((sy % K) + K) % K);
    hd = R_.hd.data() + slot * WC;
    hs = R_.hs.data() + slot * WC;
    if (R_.hrow[slot] == sy) return;
    R_.hrow[slot] = sy;
    const int64_t yy = sy < 0 ? 0 : (sy >= s_.h ? s_.h - 1 : sy);
    const uint8_t* row = src_ + b_ * s_.batch_stride + yy * s_.row_stride;
    constexpr int r = K / 2;
    using namespace simd;
    using vi = vec_t<int32_t>;
    constexpr int L = Vec<int32_t>::lanes;
    // Elements [r C, WC - r C) read only inside the row: vector taps straight from the bytes;
    // the r pixels at each end (replicated neighbours) element by element.
    auto tap = [&](int64_t e, int j) -> int32_t {
      const int64_t x = e / C + j - r, c = e % C;
      return row[(x < 0 ? 0 : (x >= W ? W - 1 : x)) * C + c];
    };
    auto scalar = [&](int64_t e) {
      int32_t a = 0, b = 0;
      for (int j = 0; j < K; ++j) {
        const int32_t v = tap(e, j);
        a += SobelTaps<K>::dv[j] * v;
        b += SobelTaps<K>::sm[j] * v;
      }
      hd[e] = a;
      hs[e] = b;
    };
    const int64_t e0 = std::min<int64_t>(r * C, WC), e1 = std::max<int64_t>(e0, WC - r * C);
    int64_t e = 0;
    for (; e < e0; ++e) scalar(e);
    for (; e + L <= e1; e += L) {
      vi a{}, b{};
#pragma GCC unroll 7
      for (int j = 0; j < K; ++j) {
        const vi v = widen_u8(row + e + (j - r) * C);
        if (SobelTaps<K>::dv[j] != 0) a += SobelTaps<K>::dv[j] * v;
        b += SobelTaps<K>::sm[j] * v;
      }
      storeu(hd + e, a);
      storeu(hs + e, b);
    }
    for (; e < WC; ++e) scalar(e);
  }

  void compute(int64_t y, int32_t* gx, int32_t* gy, int32_t* gm) {
    const int64_t W = s_.w, C = s_.c, WC = W * C;
    constexpr int r = K / 2;
    const int32_t* hd[K];
    const int32_t* hs[K];
    for (int i = 0; i < K; ++i) {
      int32_t *a, *b;
      hrow(y - r + i, a, b);
      hd[i] = a;
      hs[i] = b;
    }
    const bool l2 = l2_;  // a local: the stores below may alias any member
    int32_t* ox = C == 1 ? gx : R_.edx.data();
    int32_t* oy = C == 1 ? gy : R_.edy.data();
    int32_t* om = C == 1 ? gm : R_.emag.data();
    using namespace simd;
    using vi = vec_t<int32_t>;
    constexpr int L = Vec<int32_t>::lanes;
    int64_t e = 0;
    for (; e + L <= WC; e += L) {
      vi dx{}, dy{};
#pragma GCC unroll 7
      for (int i = 0; i < K; ++i) {
        dx += SobelTaps<K>::sm[i] * loadu(hd[i] + e);
        if (SobelTaps<K>::dv[i] != 0) dy += SobelTaps<K>::dv[i] * loadu(hs[i] + e);
      }
      if constexpr (K == 7) {  // div16_rne per lane (comparisons give -1 for true)
        const vi qx = dx >> 4, rx = dx & 15, qy = dy >> 4, ry = dy & 15;
        dx = qx - ((rx > 8) | ((rx == 8) & ((qx & 1) == 1)));
        dy = qy - ((ry > 8) | ((ry == 8) & ((qy & 1) == 1)));
      }
      storeu(ox + e, dx);
      storeu(oy + e, dy);
      const vi m = l2 ? dx * dx + dy * dy : (dx < 0 ? -dx : dx) + (dy < 0 ? -dy : dy);
      storeu(om + e, m);
    }
    for (; e < WC; ++e) {
      int32_t dx = 0, dy = 0;
      for (int i = 0; i < K; ++i) {
        dx += SobelTaps<K>::sm[i] * hd[i][e];
        dy += SobelTaps<K>::dv[i] * hs[i][e];
      }
      if constexpr (K == 7) {
        dx = div16_rne(dx);
        dy = div16_rne(dy);
      }
      ox[e] = dx;
      oy[e] = dy;
      om[e] = l2_ ? dx * dx + dy * dy : std::abs(dx) + std::abs(dy);
    }
    if (C > 1) {
      for (int64_t x = 0; x < W; ++x) {
        int64_t best = x * C;
        for (int64_t c = 1; c < C; ++c)
          if (om[x * C + c] > om[best]) best = x * C + c;
        gm[x] = om[best];
        gx[x] = ox[best];
        gy[x] = oy[best];
      }
    }
    gm[-1] = 0;
    gm[W] = 0;
  }

  const uint8_t* src_;
  const ImageDesc& s_;
  bool l2_;
  Rows& R_;
  int64_t b_ = 0;
};

// Whether any lane of an int32 vector is non-zero (one ptest / vptestmd, not a lane loop).
inline bool any_lane(simd::vec_t<int32_t> v) {
#if defined(__AVX512F__)
  return _mm512_test_epi32_mask(reinterpret_cast<__m512i>(v), reinterpret_cast<__m512i>(v)) != 0;
#elif defined(__AVX2__)
  return !_mm256_testz_si256(reinterpret_cast<__m256i>(v), reinterpret_cast<__m256i>(v));
#elif defined(__SSE4_1__)
  return !_mm_testz_si128(reinterpret_cast<__m128i>(v), reinterpret_cast<__m128i>(v));
#else
  bool any = false;
  for (int k = 0; k < simd::Vec<int32_t>::lanes; ++k) any |= v[k] != 0;
  return any;
#endif
}

// Bit k set where byte k of the comparison result c (0 or -1 per byte) is true.
inline uint64_t byte_bits(simd::vec_t<uint8_t> c) {
#if defined(__AVX512BW__)
  return _mm512_movepi8_mask(reinterpret_cast<__m512i>(c));
#elif defined(__AVX2__)
  return static_cast<uint32_t>(_mm256_movemask_epi8(reinterpret_cast<__m256i>(c)));
#elif defined(__SSE2__)
  return static_cast<uint32_t>(_mm_movemask_epi8(reinterpret_cast<__m128i>(c)));
#else
  uint64_t b = 0;
  for (int k = 0; k < simd::Vec<uint8_t>::lanes; ++k) b |= static_cast<uint64_t>(c[k] != 0) << k;
  return b;
#endif
}

// The seeds of the fill in map row m (states of W pixels, rows m - MW and m + MW its
// neighbours, all final): the strong pixels with a candidate among their 8 neighbours (a
// strong pixel without one has nothing to fill; the values are 0, 1, 2, so bit 0 of the OR
// of the neighbours says whether one of them is a candidate).
inline void seeds_row(uint8_t* m, int64_t W, int64_t MW, std::vector<uint8_t*>& out) {
  using vb = simd::vec_t<uint8_t>;
  constexpr int LB = simd::Vec<uint8_t>::lanes;
  const uint8_t* u = m - MW;
  const uint8_t* d = m + MW;
  int64_t x = 0;
  for (; x + LB <= W; x += LB) {
    using simd::loadu;
    const vb c = loadu(m + x);
    const vb two = simd::splat<uint8_t>(2);
    if (!byte_bits(c == two)) continue;
    const vb nb = loadu(u + x - 1) | loadu(u + x) | loadu(u + x + 1) | loadu(m + x - 1) | loadu(m + x + 1) |
                  loadu(d + x - 1) | loadu(d + x) | loadu(d + x + 1);
    const vb one = simd::splat<uint8_t>(1);
    for (uint64_t bits = byte_bits((c == two) & ((nb & one) == one)); bits != 0; bits &= bits - 1)
      out.push_back(m + x + __builtin_ctzll(bits));
  }
  for (; x < W; ++x)
    if (m[x] == 2 && ((u[x - 1] | u[x] | u[x + 1] | m[x - 1] | m[x + 1] | d[x - 1] | d[x] | d[x + 1]) & 1))
      out.push_back(m + x);
}

// The L int32 lanes of v (each 0, 1 or 2) as L bytes at o: vpmovdb on AVX-512, packs on AVX2 and
// SSE4 (GCC scalarizes __builtin_convertvector there, a byte at a time).
inline void store_bytes(uint8_t* o, simd::vec_t<int32_t> v) {
#if defined(__AVX512F__)
  _mm_storeu_si128(reinterpret_cast<__m128i*>(o), _mm512_cvtepi32_epi8(reinterpret_cast<__m512i>(v)));
#elif defined(__AVX2__)
  const __m256i w = _mm256_packs_epi32(reinterpret_cast<__m256i>(v), reinterpret_cast<__m256i>(v));
  const __m256i b = _mm256_packs_epi16(w, w);  // bytes 0-3 of each 128-bit half: lanes 0-3, 4-7
  const __m128i r = _mm_unpacklo_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(o), r);
#elif defined(__SSE4_1__)
  const __m128i w = _mm_packs_epi32(reinterpret_cast<__m128i>(v), reinterpret_cast<__m128i>(v));
  const int32_t b = _mm_cvtsi128_si32(_mm_packs_epi16(w, w));
  std::memcpy(o, &b, 4);
#else
  for (int k = 0; k < simd::Vec<int32_t>::lanes; ++k) o[k] = static_cast<uint8_t>(v[k]);
#endif
}

// NMS of one row: writes 0 / 1 / 2 into o.
inline void nms_row(const int32_t* dx, const int32_t* dy, const int32_t* mp, const int32_t* ma,
                    const int32_t* mn, int64_t W, int32_t low, int32_t high, uint8_t* o) {
  constexpr int32_t TG22 = 13573;  // (int)(tan(22.5 deg) * 2^15 + 0.5), as cv2
  auto one = [&](int64_t j) -> int {
    const int32_t m = ma[j];
    if (!(m > low)) return 0;
    const int32_t xs = dx[j], ys = dy[j];
    const int32_t x = std::abs(xs), y = std::abs(ys) << 15;
    const int32_t tg22x = x * TG22;
    bool keep;
    if (y < tg22x) {
      keep = m > ma[j - 1] && m >= ma[j + 1];
    } else {
      const int32_t tg67x = tg22x + (x << 16);
      if (y > tg67x) {
        keep = m > mp[j] && m >= mn[j];
      } else {
        const int s = (xs ^ ys) < 0 ? -1 : 1;
        keep = m > mp[j - s] && m > mn[j + s];
      }
    }
    if (!keep) return 0;
    return m > high ? 2 : 1;
  };
  using namespace simd;
  using vi = vec_t<int32_t>;
  constexpr int L = Vec<int32_t>::lanes;
  int64_t j = 0;
  const vi lowv = splat<int32_t>(low), highv = splat<int32_t>(high), tg = splat<int32_t>(TG22);
  const vi zero{};
  for (; j + L <= W; j += L) {
    const vi m = loadu(ma + j);
    const vi over = m > lowv;
    if (!any_lane(over)) {
      std::memset(o + j, 0, L);
      continue;
    }
    const vi xs = loadu(dx + j), ys = loadu(dy + j);
    const vi x = xs < 0 ? -xs : xs;
    const vi y = (ys < 0 ? -ys : ys) << 15;
    const vi tg22x = x * tg;
    const vi tg67x = tg22x + (x << 16);
    const vi c1 = y < tg22x, c2 = y > tg67x;
    const vi neg = (xs ^ ys) < 0;
    const vi pl = loadu(mp + j - 1), pr = loadu(mp + j + 1), nl = loadu(mn + j - 1), nr = loadu(mn + j + 1);
    const vi pd = neg ? pr : pl, nd = neg ? nl : nr;
    const vi hor = (m > loadu(ma + j - 1)) & (m >= loadu(ma + j + 1));
    const vi ver = (m > loadu(mp + j)) & (m >= loadu(mn + j));
    const vi dia = (m > pd) & (m > nd);
    const vi keep = c1 ? hor : (c2 ? ver : dia);
    const vi cand = over & keep, strong_v = cand & (m > highv);
    store_bytes(o + j, zero - cand - strong_v);  // masks are -1: 0, 1 (candidate) or 2 (strong)
  }
  for (; j < W; ++j) {
    o[j] = static_cast<uint8_t>(one(j));
  }
}

template <int K>
void canny_impl(const uint8_t* src, const ImageDesc& s, uint8_t* dst, const ImageDesc& d, bool l2, int low,
                int high) {
  const int64_t H = s.h, W = s.w, rows = s.n * H;
  // The states live in a map with a one-pixel frame of zeros around every image (as cv2's),
  // so the flood fill needs no bounds checks and never crosses into another image.
  // The map is the calling thread's scratch (kept between calls: a fresh zeroed allocation per
  // call cost page faults and a memset of the whole map); NMS writes every interior state, so
  // only the frame is cleared here.
  const int64_t MW = W + 2, MH = H + 2;
  uint8_t* map = thread_scratch<uint8_t>(7, static_cast<size_t>(checked_mul(checked_mul(s.n, MH), MW)));
  for (int64_t b = 0; b < s.n; ++b) {
    uint8_t* m0 = map + b * MH * MW;
    std::memset(m0, 0, static_cast<size_t>(MW));
    std::memset(m0 + (MH - 1) * MW, 0, static_cast<size_t>(MW));
    for (int64_t y = 1; y < MH - 1; ++y) m0[y * MW] = m0[y * MW + MW - 1] = 0;
  }
  auto mrow = [&](int64_t b, int64_t y) { return map + (b * MH + y + 1) * MW + 1; };
  const int64_t grain = std::max<int64_t>(16, rows / (8 * std::max(1, get_num_threads())));
  const int64_t chunks = parallel_chunks(0, rows, grain);
  // Per chunk: the pixels its hysteresis could not follow (neighbours in other chunks' rows).
  std::vector<std::vector<uint8_t*>> deferred(static_cast<size_t>(chunks));
  const int64_t off[8] = {-MW - 1, -MW, -MW + 1, -1, 1, MW - 1, MW, MW + 1};
  parallel_for(0, rows, grain, [&](int64_t t0, int64_t t1) {
    Rows R;
    CannyRows<K> cr(src, s, l2, R);
    std::vector<uint8_t*> st;
    int64_t cur_b = -1;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / H, y = t % H;
      if (b != cur_b) {
        cur_b = b;
        cr.new_image(b);
      }
      const int32_t *dx, *dy, *ma, *mp, *mn, *tx, *ty;
      cr.grad(y - 1, tx, ty, mp);
      cr.grad(y + 1, tx, ty, mn);
      cr.grad(y, dx, dy, ma);
      nms_row(dx, dy, mp, ma, mn, W, low, high, mrow(b, y));
    }
    // The seeds: every strong pixel of the chunk's first and last rows (their fills may need to
    // cross into other chunks), those with a candidate neighbour in the rows between.
    for (int64_t t = t0; t < t1; ++t) {
      uint8_t* m = mrow(t / H, t % H);
      if (t == t0 || t == t1 - 1) {
        for (int64_t x = 0; x < W; ++x)
          if (m[x] == 2) st.push_back(m + x);
      } else {
        seeds_row(m, W, MW, st);
      }
    }
    // Hysteresis inside the chunk: flood fill from its strong pixels through the candidates
    // (8-connected) over its own map rows (written by this chunk only, so no races; the frame
    // rows of its images are zeros nobody writes). A neighbour in another chunk's rows is
    // deferred to the serial pass below, which continues the fill from there.
    const uint8_t* lo = mrow(t0 / H, t0 % H) - 1;
    const uint8_t* hi = mrow((t1 - 1) / H, (t1 - 1) % H) - 1 + MW;
    auto& dfr = deferred[static_cast<size_t>(t0 / grain)];
    while (!st.empty()) {
      uint8_t* m = st.back();
      st.pop_back();
      for (int k = 0; k < 8; ++k) {
        uint8_t* q = m + off[k];
        if (q < lo || q >= hi) {
          dfr.push_back(q);
        } else if (*q == 1) {
          *q = 2;
          st.push_back(q);
        }
      }
    }
  });
  // Hysteresis across chunks: from each deferred pixel that is still a candidate, the fill
  // over the whole map. The edges are the candidates connected to a strong pixel whatever the
  // order of the fills, so the result does not depend on the chunks.
  std::vector<uint8_t*> stack;
  for (auto& v : deferred)
    for (uint8_t* q : v)
      if (*q == 1) {
        *q = 2;
        stack.push_back(q);
      }
  deferred.clear();
  while (!stack.empty()) {
    uint8_t* m = stack.back();
    stack.pop_back();
    for (int k = 0; k < 8; ++k) {
      uint8_t* q = m + off[k];
      if (*q == 1) {
        *q = 2;
        stack.push_back(q);
      }
    }
  }
  // 2 -> 255, 0 / 1 -> 0
  parallel_for(0, rows, 64, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const uint8_t* m = mrow(t / H, t % H);
      uint8_t* o = dst + (t / H) * d.batch_stride + (t % H) * d.row_stride;
      using vb = simd::vec_t<uint8_t>;
      constexpr int LB = simd::Vec<uint8_t>::lanes;
      int64_t x = 0;
      for (; x + LB <= W; x += LB) simd::storeu(o + x, static_cast<vb>(-(simd::loadu(m + x) >> 1)));
      for (; x < W; ++x) o[x] = static_cast<uint8_t>(-(m[x] >> 1));
    }
  });
}

}  // namespace

void canny_u8(const uint8_t* src, const ImageDesc& s, uint8_t* dst, const ImageDesc& d, int ksize, bool l2, int low,
              int high) {
  if (d.n != s.n || d.h != s.h || d.w != s.w || d.c != 1) throw std::invalid_argument("canny: out shape mismatch");
  if (s.n == 0 || s.h == 0 || s.w == 0) return;
  switch (ksize) {
    case 3: return canny_impl<3>(src, s, dst, d, l2, low, high);
    case 5: return canny_impl<5>(src, s, dst, d, l2, low, high);
    case 7: return canny_impl<7>(src, s, dst, d, l2, low, high);
    default: throw std::invalid_argument("canny: ksize must be 3, 5 or 7");
  }
}

}  // namespace IMKERN_ISA
}  // namespace imkern
