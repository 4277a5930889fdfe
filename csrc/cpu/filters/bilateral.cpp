// Bilateral filter, OpenCV's definition (cv2.bilateralFilter), compiled per ISA.
//
// Window: the pixels of the (2r+1)^2 square within distance r of the center (r = max(d/2, 1)),
// space weight exp(-(i^2 + j^2) / (2 sigma_space^2)) (float). Color distance: |a - b| for one
// channel, the L1 sum over the 3 channels for 3. Color weight from OpenCV's tables:
//  * uint8: exp(-t^2 / (2 sigma_color^2)) for every integer distance t (float table);
//  * float32: 4096 * C bins over [0, (max - min) * C] of the padded image's value range
//    (a constant border adds its zeros, as OpenCV computes it), linearly interpolated (an image with max - min < FLT_EPSILON is copied unchanged).
// out = sum(w * v) / sum(w), rounded to nearest for uint8. Sums in float32.
// Vectorized across pixels: rows are converted, padded by the border rule and stored planar
// (one plane per channel) once per chunk in a ring; per window offset one vector load per
// channel, the color weight and 2 + 2C FMAs per L pixels. The color weight is a table gather
// (AVX2/AVX-512); for uint8, one gather per pixel pair: the forward half of the offsets
// gathers and keeps its weight rows in small rings, the backward half reads them back.
// FLOPs/pixel ~ (4 + 3C) * (number of window offsets, ~ 0.785 d^2).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <vector>

#include "imkern/filters.hpp"
#include "imkern/parallel.hpp"
#include "filters/filter_rows.hpp"

namespace imkern {
namespace IMKERN_ISA {

namespace {

using simd::vec_t;
using vf = vec_t<float>;
using vi = vec_t<int32_t>;
constexpr int L = simd::Vec<float>::lanes;

inline vf gather(const float* table, vi idx) {
#if defined(__AVX512F__)
  return reinterpret_cast<vf>(_mm512_i32gather_ps(reinterpret_cast<__m512i>(idx), table, 4));
#elif defined(__AVX2__)
  return reinterpret_cast<vf>(_mm256_i32gather_ps(table, reinterpret_cast<__m256i>(idx), 4));
#else
  vf r;
  for (int i = 0; i < L; ++i) r[i] = table[idx[i]];
  return r;
#endif
}

inline vf vabs(vf x) {
  const vi m = reinterpret_cast<vi>(x) & 0x7fffffff;
  return reinterpret_cast<vf>(m);
}

template <typename T, int C>
void bilateral_typed(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int r, double sigma_color,
                     double sigma_space, Border border) {
  const int64_t H = s.h, W = s.w;
  const int64_t rows = s.n * H;
  const int k = 2 * r + 1;
  const float gc = static_cast<float>(-0.5 / (sigma_color * sigma_color));
  const float gs = static_cast<float>(-0.5 / (sigma_space * sigma_space));
  // Window offsets inside the circle and their space weights (OpenCV's order and values).
  std::vector<int> off_i, off_j;
  std::vector<float> sw;
  for (int i = -r; i <= r; ++i)
    for (int j = -r; j <= r; ++j) {
      const double rr = std::sqrt(static_cast<double>(i) * i + static_cast<double>(j) * j);
      if (rr > r) continue;
      sw.push_back(static_cast<float>(std::exp(rr * rr * gs)));
      off_i.push_back(i);
      off_j.push_back(j);
    }
  const int maxk = static_cast<int>(sw.size());
  constexpr bool is_u8 = std::is_same<T, uint8_t>::value;
  // uint8: the color weight of a pixel pair does not depend on which one is the center
  // (|a - b| = |b - a| exactly), so each pair's table lookup is made once: for the offsets
  // q = (i, j) of the forward half (i > 0, or i = 0 and j > 0) the weights cw_q(y, x) of row y
  // go to a ring of i + 1 rows, and the backward offset -q of output (y, x) reads
  // cw_q(y - i, x - j) from it. Half the gathers (the kernel's bottleneck), the same weights
  // and the same sums in the same order: the same bits as one lookup per offset.
  std::vector<int> fwd, ring_first;  // forward offsets (indices into off_*) and their ring rows
  std::vector<int> mirror(maxk, -1);  // per offset: its forward twin's index in fwd (or -1)
  int ring_rows = 0;
  if (is_u8) {
    for (int q = 0; q < maxk; ++q)
      if (off_i[q] > 0 || (off_i[q] == 0 && off_j[q] > 0)) {
        fwd.push_back(q);
        ring_first.push_back(ring_rows);
        ring_rows += off_i[q] + 1;
      }
    for (int q = 0; q < maxk; ++q)
      for (size_t f = 0; f < fwd.size(); ++f)
        if ((off_i[fwd[f]] == off_i[q] && off_j[fwd[f]] == off_j[q]) ||
            (off_i[fwd[f]] == -off_i[q] && off_j[fwd[f]] == -off_j[q]))
          mirror[q] = static_cast<int>(f);
  }
  constexpr int kBinsPerChannel = 1 << 12;
  // Per image for float32: the color table depends on the image's value range.
  std::vector<float> u8_table;
  if (is_u8) {
    u8_table.resize(256 * C + 1);
    for (int i = 0; i < 256 * C + 1; ++i) u8_table[i] = static_cast<float>(std::exp(static_cast<float>(i * i) * gc));
  }
  struct F32Image {
    bool flat = false;
    float minv = 0, scale = 0;
    std::vector<float> lut;
  };
  std::vector<F32Image> f32(is_u8 ? 0 : s.n);
  if (!is_u8) {
    for (int64_t b = 0; b < s.n; ++b) {
      float mn = INFINITY, mx = -INFINITY;
      for (int64_t y = 0; y < H; ++y) {
        const T* row = row_ptr<T>(src, s, b, y);
        for (int64_t e = 0; e < W * C; ++e) {
          const float v = static_cast<float>(row[e]);
          mn = v < mn ? v : mn;  // NaN skipped
          mx = v > mx ? v : mx;
        }
      }
      if (border == Border::constant) {  // OpenCV takes the range of the padded image (zeros included)
        mn = mn < 0.f ? mn : 0.f;
        mx = mx > 0.f ? mx : 0.f;
      }
      F32Image& im = f32[b];
      im.minv = mn;
      if (!(std::fabs(mn - mx) >= FLT_EPSILON)) {
        im.flat = true;
        continue;
      }
      const float len = (mx - mn) * C;
      const int nb = kBinsPerChannel * C;
      im.scale = nb / len;
      im.lut.resize(nb + 2);
      float last = 1.f;
      for (int i = 0; i < nb + 2; ++i) {
        if (last > 0.f) {
          const float val = i / im.scale;
          im.lut[i] = static_cast<float>(std::exp(val * val * gc));
          last = im.lut[i];
        } else {
          im.lut[i] = 0.f;
        }
      }
    }
  }
  const int64_t plane = round_up_line<float>(W + 3 * r + L);  // + r: make_cw reads past W + 2r
  const int64_t slot_len = plane * C;
  parallel_for(0, rows, filter_grain(rows, k, get_num_threads()), [&](int64_t t0, int64_t t1) {
    float* ring = thread_scratch<float>(0, static_cast<size_t>(slot_len * k));
    float* pad = thread_scratch<float>(1, static_cast<size_t>((W + 2 * r) * C));
    float* outp = thread_scratch<float>(2, static_cast<size_t>(C * (W + L)));
    std::vector<int64_t> tag(k, INT64_MIN);
    int64_t cur_b = -1;
    std::vector<const float*> P(k);
    // uint8: the forward weight rings (cw_q(y, x) at [x + r]) and each offset's weight row.
    const int64_t cw_pitch = round_up_line<float>(W + 2 * r + L);
    float* cw_ring = is_u8 ? thread_scratch<float>(3, static_cast<size_t>(cw_pitch * std::max(ring_rows, 1))) : nullptr;
    std::vector<const float*> CW(maxk);
    auto cw_row = [&](size_t f, int64_t yc) {
      const int64_t m = off_i[fwd[f]] + 1;
      return cw_ring + (ring_first[f] + ((yc % m) + m) % m) * cw_pitch + r;
    };
    // cw_q(yc, x) for forward offset f and x in [min(0, -j), max(W, W - j)) (the columns its two
    // uses read), from the planes of rows yc (pc) and yc + i (pn).
    auto make_cw = [&](size_t f, int64_t yc, const float* pc, const float* pn) {
      const int q = fwd[f], j = off_j[q];
      float* o = cw_row(f, yc);
      const int64_t lo = std::min(0, -j), hi = std::max<int64_t>(W, W - j);
      const float* lut = u8_table.data();
      for (int64_t x = lo; x < hi; x += L) {
        vf dist{};
        for (int c = 0; c < C; ++c)
          dist += vabs(simd::loadu(pn + c * plane + x + r + j) - simd::loadu(pc + c * plane + x + r));
        simd::storeu(o + x, gather(lut, __builtin_convertvector(dist, vi)));
      }
    };
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / H, y = t % H;
      const bool seg_start = t == t0 || y == 0;
      T* drow = row_ptr<T>(dst, d, b, y);
      if (!is_u8 && f32[b].flat) {
        std::copy(row_ptr<T>(src, s, b, y), row_ptr<T>(src, s, b, y) + W * C, drow);
        continue;
      }
      if (b != cur_b) {
        cur_b = b;
        std::fill(tag.begin(), tag.end(), INT64_MIN);
      }
      for (int i = 0; i < k; ++i) {
        const int64_t sy = y - r + i;
        const int slot = static_cast<int>(((sy % k) + k) % k);
        float* base = ring + slot * slot_len;
        if (tag[slot] != sy) {
          const int64_t yy = border_index(sy, H, border);
          load_padded_segment<T, float>(yy < 0 ? nullptr : row_ptr<T>(src, s, b, yy), pad, W, C, 0, W, r, r, border,
                                        0.f);
          for (int64_t x = 0; x < W + 2 * r; ++x)
            for (int c = 0; c < C; ++c) base[c * plane + x] = pad[x * C + c];
          for (int c = 0; c < C; ++c) std::fill(base + c * plane + W + 2 * r, base + (c + 1) * plane, 0.f);
          tag[slot] = sy;
        }
        P[i] = base;
      }
      if constexpr (is_u8) {
        // Forward weights of rows y - r .. y - 1 at a segment's start (made by the earlier
        // rows otherwise), then of row y.
        if (seg_start)
          for (int64_t yc = y - r; yc < y; ++yc)
            for (size_t f = 0; f < fwd.size(); ++f)
              if (yc + off_i[fwd[f]] >= y) make_cw(f, yc, P[r + (yc - y)], P[r + (yc - y) + off_i[fwd[f]]]);
        for (size_t f = 0; f < fwd.size(); ++f) make_cw(f, y, P[r], P[r + off_i[fwd[f]]]);
        for (int q = 0; q < maxk; ++q) {
          const int f = mirror[q];
          if (f < 0) CW[q] = nullptr;  // the center: lut[0]
          else if (fwd[f] == q) CW[q] = cw_row(f, y);
          else CW[q] = cw_row(f, y + off_i[q]) + off_j[q];  // cw_f(y - i_f, x - j_f)
        }
      }
      const float* lut = is_u8 ? u8_table.data() : f32[b].lut.data();
      const float minv = is_u8 ? 0.f : f32[b].minv;
      const float scale = is_u8 ? 1.f : f32[b].scale;
      const int nbins = is_u8 ? 256 * C : kBinsPerChannel * C;
      (void)minv;
      for (int64_t x = 0; x < W; x += L) {
        vf v0[C], sum[C];
        vf wsum{};
        for (int c = 0; c < C; ++c) {
          v0[c] = simd::loadu(P[r] + c * plane + x + r);
          sum[c] = vf{};
        }
        for (int q = 0; q < maxk; ++q) {
          const float* row = P[r + off_i[q]] + x + r + off_j[q];
          vf v[C];
          vf dist{};
          for (int c = 0; c < C; ++c) {
            v[c] = simd::loadu(row + c * plane);
            dist += vabs(v[c] - v0[c]);
          }
          vf cw;
          if constexpr (is_u8) {
            (void)dist;
            cw = CW[q] ? simd::loadu(CW[q] + x) : simd::splat(lut[0]);
          } else {
            vf alpha = dist * scale;
            // NaN or out-of-range distances (NaN pixels) use the last bin; the NaN value then
            // propagates through the sums.
            alpha = alpha < static_cast<float>(nbins) ? alpha : static_cast<float>(nbins);
            const vi idx = __builtin_convertvector(alpha, vi);  // alpha >= 0: truncation = floor
            const vf frac = alpha - __builtin_convertvector(idx, vf);
            const vf a = gather(lut, idx), bnext = gather(lut + 1, idx);
            cw = a + frac * (bnext - a);
          }
          const vf w = cw * sw[q];
          for (int c = 0; c < C; ++c) sum[c] += v[c] * w;
          wsum += w;
        }
        if (C == 1) {
          simd::storeu(outp + x, sum[0] / wsum);
        } else {
          const vf inv = 1.f / wsum;
          for (int c = 0; c < C; ++c) simd::storeu(outp + c * (W + L) + x, sum[c] * inv);
        }
      }
      for (int64_t x = 0; x < W; ++x)
        for (int c = 0; c < C; ++c) drow[x * C + c] = to_output<T, float>(outp[c * (W + L) + x]);
    }
  });
}

}  // namespace

void bilateral(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int radius,
               double sigma_color, double sigma_space, Border border) {
  if (s.c != 1 && s.c != 3) throw std::invalid_argument("image: bilateral takes 1 or 3 channels");
  if (dtype == DType::u8) {
    if (s.c == 1) bilateral_typed<uint8_t, 1>(src, s, dst, d, radius, sigma_color, sigma_space, border);
    else bilateral_typed<uint8_t, 3>(src, s, dst, d, radius, sigma_color, sigma_space, border);
  } else if (dtype == DType::f32) {
    if (s.c == 1) bilateral_typed<float, 1>(src, s, dst, d, radius, sigma_color, sigma_space, border);
    else bilateral_typed<float, 3>(src, s, dst, d, radius, sigma_color, sigma_space, border);
  } else {
    throw std::invalid_argument("image: bilateral takes uint8 or float32");
  }
}

}  // namespace IMKERN_ISA
}  // namespace imkern
