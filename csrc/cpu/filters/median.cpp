// Median filter over k x k windows, k odd, centered (compiled per ISA).
//
// Values are compared as order-preserving integer keys: uint8/uint16 as they are, floats
// through their bit pattern (sign-magnitude -> two's complement order; every NaN becomes the
// positive quiet NaN, which orders above +inf, as numpy.sort places NaN). So the result is
// exactly the middle element of the sorted window, NaN counted as the largest value.
//
// Four paths, chosen by dtype and k:
//  * k = 3 (Median3): each source row's pixel triples sorted once, output rows in groups of 4
//    sharing their source rows; ~19 vector min/max and 4.5 loads per L outputs, sources read
//    in place (see Median3 below). bytes/pixel = 2 sizeof(T) C.
//  * k = 5, 7: a median selection network (Batcher's odd-even merge sort pruned to the
//    middle output, median_networks.hpp) run on whole vectors, one lane per output element:
//    113 / 319 vector min/max pairs per L outputs (L = 64 u8 lanes on AVX-512), on a ring of
//    k padded key rows (each source row converted and padded once). k = 5 takes output rows
//    in pairs sharing 4 source rows (network_pair5: 56.5 comparators per output vector; a
//    row left alone: 9 + 85 on presorted columns). bytes/pixel = 2 sizeof(T) C;
//    ops/pixel ~ 2 * comparators / L.
//  * uint8 / uint16, k >= 9: Perreault & Hebert's constant-time median (IEEE TIP 2007):
//    per column strip, a histogram per column (coarse: the high bits, fine: the low bits)
//    updated by one entering and one leaving value per row; the window's coarse histogram
//    slides by one column add and subtract per output, the coarse bin holding the median
//    is found, and that bin's fine histogram is brought up to date lazily (columns added
//    and removed since its last use). u8: 16 x 16 bins, u16: 256 x 256 bins. Cost per
//    pixel does not depend on k (2 column-histogram updates + 2 x coarse-bins adds + the
//    searches + amortized fine updates).
//  * floats, k >= 9: the k*k keys of each window gathered and std::nth_element (O(k^2)).
// Out-of-image pixels by the border rule (constant: cval converted to the image dtype).
#include <algorithm>
#include <cstring>
#include <vector>

#include "imkern/filters.hpp"
#include "imkern/parallel.hpp"
#include "filters/filter_rows.hpp"
#include "common/shuffle.hpp"
#include "filters/median_networks.hpp"

namespace imkern {
namespace IMKERN_ISA {

namespace {

// Order-preserving keys.
template <typename T> struct KeyOf { using type = T; };
template <> struct KeyOf<float> { using type = int32_t; };
template <> struct KeyOf<double> { using type = int64_t; };

template <typename T>
inline void to_keys(T* p, int64_t n) {
  if constexpr (std::is_floating_point<T>::value) {
    using K = typename KeyOf<T>::type;
    using U = typename std::make_unsigned<K>::type;
    constexpr int sh = 8 * sizeof(K) - 1;
    const K mag = static_cast<K>(~(U(1) << sh));
    const K qnan = std::is_same<T, float>::value ? K(0x7fc00000) : static_cast<K>(0x7ff8000000000000LL);
    for (int64_t i = 0; i < n; ++i) {
      K b;
      std::memcpy(&b, p + i, sizeof(K));
      b = p[i] != p[i] ? qnan : b;
      b ^= (b >> sh) & mag;
      std::memcpy(p + i, &b, sizeof(K));
    }
  }
}

template <typename T, typename K>
inline T from_key(K k) {
  if constexpr (std::is_floating_point<T>::value) {
    constexpr int sh = 8 * sizeof(K) - 1;
    using U = typename std::make_unsigned<K>::type;
    const K mag = static_cast<K>(~(U(1) << sh));
    k ^= (k >> sh) & mag;
    T v;
    std::memcpy(&v, &k, sizeof(T));
    return v;
  } else {
    return static_cast<T>(k);
  }
}

// Source row sy of image b (any integer: the border decides), pixels [-r, W + r), as keys.
template <typename T>
void load_key_row(const void* src, const ImageDesc& s, int64_t b, int64_t sy, int r, Border border, T cv,
                  T* dst) {
  const int64_t yy = border_index(sy, s.h, border);
  load_padded_segment<T, T>(yy < 0 ? nullptr : row_ptr<T>(src, s, b, yy), dst, s.w, s.c, 0, s.w, r, r, border, cv);
  to_keys(dst, (s.w + 2 * r) * s.c);
}

template <typename V>
inline V vmin(V a, V b) { return a < b ? a : b; }
template <typename V>
inline V vmax(V a, V b) { return a < b ? b : a; }

#define IMKERN_MCX(a, b) { const V t_ = vmin(v[a], v[b]); v[b] = vmax(v[a], v[b]); v[a] = t_; }
#define IMKERN_MMIN(a, b) v[a] = vmin(v[a], v[b]);
#define IMKERN_MMAX(a, b) v[b] = vmax(v[a], v[b]);

template <int KS, typename V>
inline void run_network(V* v) {
  if constexpr (KS == 3) { IMKERN_MEDIAN_NET_3(IMKERN_MCX, IMKERN_MMIN, IMKERN_MMAX) }
  else if constexpr (KS == 5) { IMKERN_MEDIAN_NET_5(IMKERN_MCX, IMKERN_MMIN, IMKERN_MMAX) }
  else { IMKERN_MEDIAN_NET_7(IMKERN_MCX, IMKERN_MMIN, IMKERN_MMAX) }
}

// n output keys from the KS padded key rows P (element e of the window (i, j) at P[i][e + j*C]).
// P rows must be readable L elements past their end (the last partial vector).
template <int KS, typename K>
void network_row(const K* const* P, K* o, int64_t n, int64_t C) {
  using namespace simd;
  using V = vec_t<K>;
  constexpr int L = Vec<K>::lanes, N = KS * KS;
  int64_t x = 0;
  for (; x < n; x += L) {
    V v[N];
#pragma GCC unroll 49
    for (int i = 0; i < KS; ++i)
#pragma GCC unroll 7
      for (int j = 0; j < KS; ++j) v[i * KS + j] = loadu(P[i] + x + j * C);
    run_network<KS>(v);
    if (x + L <= n) {
      storeu(o + x, v[N / 2]);
    } else {
      K tmp[L];
      storeu(tmp, v[N / 2]);
      std::copy(tmp, tmp + (n - x), o + x);
    }
  }
}

// n output keys by gathering each window and selecting its middle element.
template <typename K>
void select_row(const K* const* P, K* o, int64_t n, int64_t C, int k, K* buf) {
  const int N = k * k;
  for (int64_t e = 0; e < n; ++e) {
    int t = 0;
    for (int i = 0; i < k; ++i) {
      const K* q = P[i] + e;
      for (int j = 0; j < k; ++j) buf[t++] = q[j * C];
    }
    std::nth_element(buf, buf + N / 2, buf + N);
    o[e] = buf[N / 2];
  }
}

// k = 5 on presorted columns: S[i] is the i-th smallest of the 5 rows' column (sort_columns<5>),
// so each window is 5 sorted columns of 5 and the median takes 85 comparators instead of 113
// (IMKERN_MEDIAN_NET_5_SORTED_COLUMNS, wire 5 j + i); each column is sorted once (9
// comparators) for the 5 windows that hold it. The same median, exactly.
// S[i][x] = the i-th smallest of P[0][x] .. P[R - 1][x], R = 4 (IMKERN_SORT_4, the pair path's
// shared rows) or 5 (IMKERN_SORT_5).
template <int R, typename K>
void sort_columns(const K* const* P, K* const* S, int64_t n) {
  static_assert(R == 4 || R == 5, "sorting networks of 4 and 5 rows");
  using namespace simd;
  using V = vec_t<K>;
  constexpr int L = Vec<K>::lanes;
  for (int64_t x = 0; x < n; x += L) {
    V v[R];
    for (int i = 0; i < R; ++i) v[i] = loadu(P[i] + x);
    if constexpr (R == 5) {
      IMKERN_SORT_5(IMKERN_MCX)
    } else {
      IMKERN_SORT_4(IMKERN_MCX)
    }
    for (int i = 0; i < R; ++i) storeu(S[i] + x, v[i]);
  }
}

template <typename K>
void network_row_sorted5(const K* const* S, K* o, int64_t n, int64_t C) {
  using namespace simd;
  using V = vec_t<K>;
  constexpr int L = Vec<K>::lanes;
  int64_t x = 0;
  for (; x < n; x += L) {
    V v[25];
#pragma GCC unroll 5
    for (int j = 0; j < 5; ++j)
#pragma GCC unroll 5
      for (int i = 0; i < 5; ++i) v[5 * j + i] = loadu(S[i] + x + j * C);
    IMKERN_MEDIAN_NET_5_SORTED_COLUMNS(IMKERN_MCX, IMKERN_MMIN, IMKERN_MMAX)
    if (x + L <= n) {
      storeu(o + x, v[12]);
    } else {
      K tmp[L];
      storeu(tmp, v[12]);
      std::copy(tmp, tmp + (n - x), o + x);
    }
  }
}

// k = 5, two output rows at once (y and y + 1 share the 4 source rows y - 1 .. y + 2): the
// shared rows' columns sorted once per pair (IMKERN_SORT_4, 5 comparators), per window the
// ranks 7 .. 12 of the shared 20 values (IMKERN_MEDIAN_PAIR5_SHARED, 64), then each output's
// median from those 6 and the 5 values of its own row (y - 2 or y + 3; IMKERN_MEDIAN_PAIR5_EXTRA,
// 22): (5 + 64 + 2 x 22) / 2 = 56.5 comparators per output vector instead of 9 + 85. The same
// median, exactly (gen_median_networks.py checks both networks on every 0-1 input and end to end).
// Outputs of rows y (extra row ra: source row y - 2) and y + 1 (rb: y + 3) from the sorted
// columns S of the shared rows.
template <typename K>
void network_pair5(const K* const* S, const K* ra, const K* rb, K* o0, K* o1, int64_t n, int64_t C) {
  using namespace simd;
  using V = vec_t<K>;
  constexpr int L = Vec<K>::lanes;
  auto put = [&](K* o, int64_t x, V r) IMKERN_ALWAYS_INLINE {
    if (x + L <= n) {
      storeu(o + x, r);
    } else {
      K tmp[L];
      storeu(tmp, r);
      std::copy(tmp, tmp + (n - x), o + x);
    }
  };
  for (int64_t x = 0; x < n; x += L) {
    V c[6];
    {
      V v[20];
#pragma GCC unroll 5
      for (int j = 0; j < 5; ++j)
#pragma GCC unroll 4
        for (int i = 0; i < 4; ++i) v[4 * j + i] = loadu(S[i] + x + j * C);
      IMKERN_MEDIAN_PAIR5_SHARED(IMKERN_MCX, IMKERN_MMIN, IMKERN_MMAX)
      for (int i = 0; i < 6; ++i) c[i] = v[7 + i];
    }
    const K* rows[2] = {ra, rb};
    K* outs[2] = {o0, o1};
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      V v[11];
      for (int i = 0; i < 6; ++i) v[i] = c[i];
#pragma GCC unroll 5
      for (int j = 0; j < 5; ++j) v[6 + j] = loadu(rows[h] + x + j * C);
      IMKERN_MEDIAN_PAIR5_EXTRA(IMKERN_MCX, IMKERN_MMIN, IMKERN_MMAX)
      put(outs[h], x, v[5]);
    }
  }
}

// Network and selection paths: a ring of k padded key rows per chunk of output rows.
template <typename T>
void median_ring(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int k, Border border, T cv) {
  using K = typename KeyOf<T>::type;
  constexpr int L = simd::Vec<K>::lanes;
  const int r = k / 2;
  const int64_t H = s.h, W = s.w, C = s.c, WC = W * C;
  const int64_t stride = round_up_line<K>((W + 2 * r) * C + L);
  const int64_t rows = s.n * H;
  parallel_for(0, rows, filter_grain(rows, k, get_num_threads()), [&](int64_t t0, int64_t t1) {
    K* ring = thread_scratch<K>(0, static_cast<size_t>(stride * (k == 5 ? 6 : k)));
    K* obuf = thread_scratch<K>(1, static_cast<size_t>(2 * (WC + L)));
    K* gather = thread_scratch<K>(2, static_cast<size_t>(k) * k);
    K* sorted = k == 5 ? thread_scratch<K>(3, static_cast<size_t>(stride * 5)) : nullptr;
    K* S[5];
    for (int i = 0; i < 5; ++i) S[i] = sorted ? sorted + i * stride : nullptr;
    // k = 5 keeps one more row (pairs of output rows read 6)
    const int slots = k == 5 ? 6 : k;
    std::vector<int64_t> tag(slots);
    int64_t cur_b = -1;
    std::vector<const K*> P(slots);
    for (int64_t t = t0; t < t1;) {
      const int64_t b = t / H, y = t % H;
      if (b != cur_b) {
        cur_b = b;
        std::fill(tag.begin(), tag.end(), INT64_MIN);
      }
      const bool pair = k == 5 && t + 1 < t1 && y + 1 < H;
      const int nrows = pair ? k + 1 : k;
      for (int i = 0; i < nrows; ++i) {
        const int64_t sy = y - r + i;
        const int slot = static_cast<int>(((sy % slots) + slots) % slots);
        K* row = ring + slot * stride;
        if (tag[slot] != sy) {
          load_key_row<T>(src, s, b, sy, r, border, cv, reinterpret_cast<T*>(row));
          tag[slot] = sy;
        }
        P[i] = row;
      }
      T* drow = row_ptr<T>(dst, d, b, y);
      K* o = std::is_same<K, T>::value ? reinterpret_cast<K*>(drow) : obuf;
      if (pair) {
        T* drow1 = row_ptr<T>(dst, d, b, y + 1);
        K* o1 = std::is_same<K, T>::value ? reinterpret_cast<K*>(drow1) : obuf + WC + L;
        sort_columns<4, K>(P.data() + 1, S, (W + 2 * r) * C);
        network_pair5<K>(S, P[0], P[5], o, o1, WC, C);
        if (!std::is_same<K, T>::value)
          for (int64_t e = 0; e < WC; ++e) drow1[e] = from_key<T, K>(o1[e]);
      } else {
        switch (k) {
          case 3: network_row<3, K>(P.data(), o, WC, C); break;
          case 5:
            sort_columns<5, K>(P.data(), S, (W + 2 * r) * C);
            network_row_sorted5<K>(S, o, WC, C);
            break;
          case 7: network_row<7, K>(P.data(), o, WC, C); break;
          default: select_row<K>(P.data(), o, WC, C, k, gather); break;
        }
      }
      if (!std::is_same<K, T>::value)
        for (int64_t e = 0; e < WC; ++e) drow[e] = from_key<T, K>(o[e]);
      t += pair ? 2 : 1;
    }
  });
}

// Keys as vectors: the same maps as to_keys / from_key, lane by lane, so sources are read in
// place (no key copy of the rows) and results stored straight to the output.
template <typename T>
struct KeyVec {
  using K = typename KeyOf<T>::type;
  using V = simd::vec_t<K>;
  static constexpr int L = simd::Vec<K>::lanes;
  IMKERN_ALWAYS_INLINE static V load(const T* p) {
    V b = simd::loadu(reinterpret_cast<const K*>(p));
    if constexpr (std::is_floating_point<T>::value) {
      // sign-magnitude -> two's complement order: |b| for b >= 0, ~|b| for b < 0; every NaN
      // (|b| above the infinity's bits) -> the positive quiet NaN
      using U = typename std::make_unsigned<K>::type;
      constexpr int sh = 8 * sizeof(K) - 1;
      const K mag = static_cast<K>(~(U(1) << sh));
      const K inf = std::is_same<T, float>::value ? K(0x7f800000) : static_cast<K>(0x7ff0000000000000LL);
      const K qnan = std::is_same<T, float>::value ? K(0x7fc00000) : static_cast<K>(0x7ff8000000000000LL);
      const V u = b & mag;
      b = u > inf ? simd::splat<K>(qnan) : (u ^ (b >> sh));
    }
    return b;
  }
  IMKERN_ALWAYS_INLINE static void store(T* p, V k) {
    if constexpr (std::is_floating_point<T>::value) {
      using U = typename std::make_unsigned<K>::type;
      constexpr int sh = 8 * sizeof(K) - 1;
      k ^= (k >> sh) & static_cast<K>(~(U(1) << sh));
    }
    simd::storeu(reinterpret_cast<K*>(p), k);
  }
  static K key1(T v) {
    to_keys(&v, 1);
    K k;
    std::memcpy(&k, &v, sizeof(K));
    return k;
  }
};

// 3 x 3. The median of a window whose three rows are each sorted (lo <= md <= hi) is
//   med3(max of the three lo, med3 of the three md, min of the three hi)
// (exact: the median of the 9; the transpose of cv2.medianBlur's column form). Output rows
// go in groups of 4: their 6 source rows are each sorted across the pixel triples (x - 1, x,
// x + 1: elements -C, 0, +C apart, so interleaved channels need no split; 6 min/max per
// row), and each pair of output rows combines the two source rows it shares once (max of
// lo, min of hi, sorted md: 4), leaving 8 per output row: ~19 min/max and 4.5 loads per
// output vector, 1 store, no intermediate rows (every value stays in registers), sources
// read in place (as keys: floats are mapped lane by lane). Rows are walked left to right
// whole, so the source and output streams stay sequential. Vectors whose triples reach past
// the row's ends read small padded copies of their spans (the border rule), so rows of any
// width and channel count take the same code.
template <typename X>
IMKERN_ALWAYS_INLINE inline X med3(X a, X b, X c) {
  return vmax(vmin(a, b), vmin(vmax(a, b), c));
}

template <typename T>
struct Median3 {
  using KV = KeyVec<T>;
  using K = typename KV::K;
  using V = typename KV::V;
  static constexpr int L = KV::L;
  struct Sorted {
    V lo, md, hi;
  };
  // The pixel triples of the L elements at p, sorted.
  IMKERN_ALWAYS_INLINE static Sorted row_sort(const T* p, int64_t C) {
    const V a = KV::load(p - C), b = KV::load(p), c = KV::load(p + C);
    const V l = vmin(a, b), h = vmax(a, b);
    return Sorted{vmin(l, c), vmax(l, vmin(h, c)), vmax(h, c)};
  }
  // G output rows (G = 1, 2 or 4) from the sorted source rows s[0 .. G + 1].
  template <int G>
  IMKERN_ALWAYS_INLINE static void combine(const Sorted* s, V* out) {
    if constexpr (G == 1) {
      out[0] = med3(vmax(vmax(s[0].lo, s[1].lo), s[2].lo), med3(s[0].md, s[1].md, s[2].md),
                    vmin(vmin(s[0].hi, s[1].hi), s[2].hi));
    } else {
      for (int j = 0; j < G; j += 2) {
        const Sorted &a = s[j], &b = s[j + 1], &c = s[j + 2], &d = s[j + 3];
        const V lo = vmax(b.lo, c.lo), hi = vmin(b.hi, c.hi);
        const V mn = vmin(b.md, c.md), mx = vmax(b.md, c.md);
        out[j] = med3(vmax(a.lo, lo), vmax(mn, vmin(mx, a.md)), vmin(a.hi, hi));
        out[j + 1] = med3(vmax(d.lo, lo), vmax(mn, vmin(mx, d.md)), vmin(d.hi, hi));
      }
    }
  }

  // Row geometry, the border columns and the padded spans of the edge vectors.
  struct Row {
    int64_t C, WC, pitch;
    int64_t xa, xb;            // vectors at x in [xa, xb) (multiples of L) read the rows in place
    const int64_t* pad;        // source element of padded elements -C .. -1, WC .. WC + C - 1 (-1: cval)
    T cv;
    T* span;                   // 6 spans of L + 2C elements
    K* tail;                   // L keys
    // Elements [x - C, x + L + C) of row r into span k (the border rule outside [0, WC),
    // cval past WC + C, where no output reads); returns where element x is.
    const T* fill(const T* r, int64_t x, int k) const {
      const int64_t e = x - C, n = L + 2 * C;
      T* sp = span + k * n;
      const int64_t i0 = std::max<int64_t>(-e, 0), i1 = std::clamp<int64_t>(WC - e, 0, n);
      for (int64_t i = 0; i < i0; ++i) sp[i] = pad[e + i + C] < 0 ? cv : r[pad[e + i + C]];
      if (i1 - i0 >= L) {  // whole vectors, the last one overlapping (no library call: this runs per row)
        for (int64_t i = i0; i < i1 - L; i += L) simd::storeu(sp + i, simd::loadu(r + e + i));
        simd::storeu(sp + i1 - L, simd::loadu(r + e + i1 - L));
      } else {
        for (int64_t i = i0; i < i1; ++i) sp[i] = r[e + i];
      }
      const int64_t i2 = std::min<int64_t>(n, WC + C - e);
      for (int64_t i = i1; i < i2; ++i) sp[i] = pad[e + i - WC + C] < 0 ? cv : r[pad[e + i - WC + C]];
      for (int64_t i = std::max(i1, i2); i < n; ++i) sp[i] = cv;
      return sp + C;
    }
    void put(T* o, int64_t x, V v) const {
      if (x + L <= WC) {
        KV::store(o + x, v);
      } else {
        KV::store(reinterpret_cast<T*>(tail), v);
        std::memcpy(o + x, tail, static_cast<size_t>(WC - x) * sizeof(T));
      }
    }
  };

  template <int G>
  __attribute__((noinline)) static void edge(const Row& g, const T* const* r, T* const* o, int64_t x) {
    Sorted s[G + 2];
    for (int i = 0; i < G + 2; ++i) s[i] = row_sort(g.fill(r[i], x, i), g.C);
    V v[G];
    combine<G>(s, v);
    for (int i = 0; i < G; ++i) g.put(o[i], x, v[i]);
  }
  // Output rows o[0 .. G - 1] from source rows r[0 .. G + 1].
  template <int G>
  __attribute__((noinline)) static void rows(const Row& g, const T* const* r, T* const* o) {
    const int64_t C = g.C, xa = g.xa, xb = g.xb;
    const T* p[G + 2];
    T* q[G];
    for (int i = 0; i < G + 2; ++i) p[i] = r[i];
    for (int i = 0; i < G; ++i) q[i] = o[i];
    for (int64_t x = 0; x < xa; x += L) edge<G>(g, r, o, x);
    for (int64_t x = xa; x < xb; x += L) {
      Sorted s[G + 2];
#pragma GCC unroll 6
      for (int i = 0; i < G + 2; ++i) s[i] = row_sort(p[i] + x, C);
      V v[G];
      combine<G>(s, v);
#pragma GCC unroll 4
      for (int i = 0; i < G; ++i) KV::store(q[i] + x, v[i]);
    }
    for (int64_t x = std::max(xa, xb); x < g.pitch; x += L) edge<G>(g, r, o, x);
  }

  static void run(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, Border border, T cv) {
    const int64_t H = s.h, W = s.w, C = s.c, WC = W * C;
    const int64_t rows_total = s.n * H;
    const int64_t pitch = (WC + L - 1) / L * L;  // the last vector may be partial
    // in place: x >= C and x + L + C <= WC
    const int64_t xa = (C + L - 1) / L * L;
    const int64_t xb = WC - C - L >= 0 ? (WC - C - L) / L * L + L : 0;
    std::vector<int64_t> pad(static_cast<size_t>(2 * C));
    for (int64_t i = 0; i < 2 * C; ++i) {
      const int64_t px = i < C ? -1 : W, ch = i % C;
      const int64_t sx = border_index(px, W, border);
      pad[i] = sx < 0 ? -1 : sx * C + ch;
    }
    parallel_for(0, rows_total, filter_grain(rows_total, 3, get_num_threads()), [&](int64_t t0, int64_t t1) {
      T* cvrow = thread_scratch<T>(0, static_cast<size_t>(WC));
      std::fill(cvrow, cvrow + WC, cv);
      const Row g{C, WC, pitch, xa, xb, pad.data(), cv, thread_scratch<T>(1, static_cast<size_t>(6 * (L + 2 * C))),
                  thread_scratch<K>(2, static_cast<size_t>(L))};
      for (int64_t t = t0; t < t1;) {
        const int64_t b = t / H, y = t % H;
        const int64_t left = std::min(t1 - t, H - y);
        const int G = left >= 4 ? 4 : left >= 2 ? 2 : 1;
        const T* r[6];
        T* o[4];
        for (int i = 0; i < G + 2; ++i) {
          const int64_t yy = border_index(y - 1 + i, H, border);
          r[i] = yy < 0 ? cvrow : row_ptr<T>(src, s, b, yy);
        }
        for (int i = 0; i < G; ++i) o[i] = row_ptr<T>(dst, d, b, y + i);
        if (G == 4) rows<4>(g, r, o);
        else if (G == 2) rows<2>(g, r, o);
        else rows<1>(g, r, o);
        t += G;
      }
    });
  }
};

// 16 bins of a histogram as one vector (two on the baseline ISA).
typedef uint16_t v16u __attribute__((vector_size(32)));
inline v16u ld16(const uint16_t* p) {
  v16u v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void st16(uint16_t* p, v16u v) { std::memcpy(p, &v, sizeof(v)); }

// h[c] (+|-)= a[c] for NB bins.
template <int NB>
inline void hist_add(uint16_t* __restrict__ h, const uint16_t* __restrict__ a) {
  for (int c = 0; c < NB; c += 16) st16(h + c, ld16(h + c) + ld16(a + c));
}
template <int NB>
inline void hist_sub(uint16_t* __restrict__ h, const uint16_t* __restrict__ a) {
  for (int c = 0; c < NB; c += 16) st16(h + c, ld16(h + c) - ld16(a + c));
}
template <int NB>
inline void hist_add_sub(uint16_t* __restrict__ h, const uint16_t* __restrict__ a, const uint16_t* __restrict__ b) {
  for (int c = 0; c < NB; c += 16) st16(h + c, ld16(h + c) + ld16(a + c) - ld16(b + c));
}

// Inclusive prefix sums of 16 lanes (log-step shifts).
inline v16u prefix16(v16u p) {
  const v16u z{};
  p += IMKERN_SHUFFLE2(z, p, v16u{0, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30});
  p += IMKERN_SHUFFLE2(z, p, v16u{0, 0, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29});
  p += IMKERN_SHUFFLE2(z, p, v16u{0, 0, 0, 0, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27});
  p += IMKERN_SHUFFLE2(z, p, v16u{0, 0, 0, 0, 0, 0, 0, 0, 16, 17, 18, 19, 20, 21, 22, 23});
  return p;
}

// The first bin c of h (NB bins) where acc + h[0] + ... + h[c] > m; acc gains the counts of
// the bins before it. Branch-free inside each group of 16 bins.
template <int NB>
inline int hist_search(const uint16_t* h, int& acc, int m) {
  for (int c0 = 0;; c0 += 16) {
    const v16u p = prefix16(ld16(h + c0));
    const int t = m - acc;  // >= 0
    if (c0 + 16 < NB && p[15] <= t) {
      acc += p[15];
      continue;
    }
    const v16u le = p <= (v16u{} + static_cast<uint16_t>(t));
#if defined(__AVX2__)
    const int cnt = __builtin_popcount(static_cast<unsigned>(_mm256_movemask_epi8(reinterpret_cast<__m256i>(le)))) / 2;
#else
    int cnt = 0;
    for (int i = 0; i < 16; ++i) cnt -= static_cast<int16_t>(le[i]);
#endif
    if (cnt) acc += p[cnt - 1];
    return c0 + cnt;
  }
}

// Column histograms kept all-zero between uses (undone at the end of each use), so they are
// cleared once per thread, not per strip.
template <typename U>
U* zeroed_histograms(size_t n) {
  static thread_local std::vector<U> buf;
  if (buf.size() < n) {
    buf.clear();
    buf.shrink_to_fit();
    buf.assign(n, U(0));
  }
  return buf.data();
}

// Perreault-Hebert constant-time median for 8/16-bit data: CB coarse bits, FB fine bits.
template <typename T, int CB, int FB>
void median_hist(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int k, Border border, T cv) {
  static_assert(CB + FB == 8 * sizeof(T), "bins must cover the dtype");
  constexpr int NC = 1 << CB, NF = 1 << FB;
  const int r = k / 2;
  const int64_t H = s.h, W = s.w, C = s.c;
  const int64_t rows = s.n * H;
  const int m = (k * k) / 2;  // 0-based rank of the median
  // Strip of output columns: the fine column histograms (NC * NF counts per column) stay
  // within a few MiB.
  const int64_t SW = std::min<int64_t>(W, sizeof(T) == 1 ? 512 : 48);
  const int64_t max_cols = SW + 2 * r;
  parallel_for(0, rows, filter_grain(rows, 2 * k, get_num_threads()), [&](int64_t t0, int64_t t1) {
    uint16_t* colC = zeroed_histograms<uint16_t>(static_cast<size_t>(max_cols) * NC * (NF + 1));
    uint16_t* colF = colC + max_cols * NC;  // [NC][ncol][NF]
    uint16_t* HC = thread_scratch<uint16_t>(0, NC);
    uint16_t* HF = thread_scratch<uint16_t>(1, static_cast<size_t>(NC) * NF);
    int* lo = thread_scratch<int>(2, NC);
    int* hi = thread_scratch<int>(3, NC);
    T* rowbuf = thread_scratch<T>(4, static_cast<size_t>((SW + 2 * r) * C));
    for (int64_t t = t0; t < t1;) {
      const int64_t b = t / H, y0 = t % H;
      const int64_t y1 = std::min<int64_t>(H, y0 + (t1 - t));
      t += y1 - y0;
      for (int64_t x0 = 0; x0 < W; x0 += SW) {
        const int64_t x1 = std::min<int64_t>(W, x0 + SW), nx = x1 - x0, ncol = nx + 2 * r;
        for (int64_t ch = 0; ch < C; ++ch) {
          auto update = [&](int64_t sy, int delta) {
            const int64_t yy = border_index(sy, H, border);
            load_padded_segment<T, T>(yy < 0 ? nullptr : row_ptr<T>(src, s, b, yy), rowbuf, W, C, x0, x1, r, r,
                                      border, cv);
            const T* p = rowbuf + ch;
            for (int64_t j = 0; j < ncol; ++j) {
              const unsigned v = p[j * C];
              const unsigned cb = v >> FB, fb = v & (NF - 1);
              colC[j * NC + cb] = static_cast<uint16_t>(colC[j * NC + cb] + delta);
              uint16_t& f = colF[(cb * ncol + j) * NF + fb];
              f = static_cast<uint16_t>(f + delta);
            }
          };
          for (int64_t sy = y0 - r; sy <= y0 + r; ++sy) update(sy, 1);
          for (int64_t y = y0; y < y1; ++y) {
            if (y > y0) {
              update(y - r - 1, -1);
              update(y + r, 1);
            }
            std::memset(HC, 0, sizeof(uint16_t) * NC);
            for (int j = 0; j < k; ++j) hist_add<NC>(HC, colC + j * NC);
            std::fill(lo, lo + NC, 0);
            std::fill(hi, hi + NC, 0);
            T* drow = row_ptr<T>(dst, d, b, y) + x0 * C + ch;
            for (int64_t x = 0; x < nx; ++x) {
              if (x > 0) hist_add_sub<NC>(HC, colC + (x + k - 1) * NC, colC + (x - 1) * NC);
              int acc = 0;
              const int cb = hist_search<NC>(HC, acc, m);
              uint16_t* hf = HF + cb * NF;
              const uint16_t* cf = colF + static_cast<int64_t>(cb) * ncol * NF;
              const int xi = static_cast<int>(x);
              if (hi[cb] <= xi) {
                std::memset(hf, 0, sizeof(uint16_t) * NF);
                for (int c = xi; c < xi + k; ++c) hist_add<NF>(hf, cf + c * NF);
              } else {
                for (int c = hi[cb]; c < xi + k; ++c) hist_add<NF>(hf, cf + c * NF);
                for (int c = lo[cb]; c < xi; ++c) hist_sub<NF>(hf, cf + c * NF);
              }
              lo[cb] = xi;
              hi[cb] = xi + k;
              const int fb = hist_search<NF>(hf, acc, m);
              drow[x * C] = static_cast<T>((cb << FB) | fb);
            }
          }
          // Leave the column histograms all-zero for the next use.
          for (int64_t sy = y1 - 1 - r; sy <= y1 - 1 + r; ++sy) update(sy, -1);
        }
      }
    }
  });
}

}  // namespace

void median(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int k, Border border,
            double cval) {
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T cv = to_output<T, double>(cval);
    if constexpr (std::is_same<T, uint8_t>::value) {
      if (k >= 9) return median_hist<T, 4, 4>(src, s, dst, d, k, border, cv);
    } else if constexpr (std::is_same<T, uint16_t>::value) {
      if (k >= 9) return median_hist<T, 8, 8>(src, s, dst, d, k, border, cv);
    }
    if (k == 3) return Median3<T>::run(src, s, dst, d, border, cv);
    median_ring<T>(src, s, dst, d, k, border, cv);
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
